"""MFGLib's linear-quadratic game (``mfglib.linear_quadratic``; MFGLib 0.3.0,
``mfglib.env.Environment.linear_quadratic``), after Perrin et al. (2020).

Positions ``x = -el..el``, moves ``a = -m..m``, MFGLib's steps ``t = 0..T`` (mfax
``horizon = T + 1``), no discount. With the population mean ``m_t = sum_x x mu_t(x)``,

.. math::

    x' = \\mathrm{clip}(\\mathrm{round}(x + (k (m_t - x) + a) \\delta + \\sigma \\epsilon
        \\sqrt{\\delta}), -el, el), \\qquad \\epsilon \\in \\sigma \\{-3, .., 3\\}
        \\text{ with weights } \\propto e^{-\\epsilon^2 / 2},

    r_t(x, a) = (-a^2 / 2 + q a (m_t - x) - \\kappa (m_t - x)^2 / 2) \\delta \\ (t < T),
    \\qquad r_T(x, a) = -c_{term} (m_T - x)^2 / 2.

``round`` is round-half-to-even (PyTorch's and JAX's), and the next position is computed
in MFGLib's order of operations, so that exact half-integer ties fall the same way
(``docs/games/mfglib.md``).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from mfax.games.base import Kernel, check
from mfax.games.mfglib.common import initial_distribution, mfglib_T, no_discount
from mfax.games.no_noise import NoCommonNoise
from mfax.params import param


class MFGLibLinearQuadratic(NoCommonNoise):
    name: ClassVar[str] = "mfglib.linear_quadratic"

    T: int = mfglib_T(3)
    el: int = param(5, "positions -el..el (2 el + 1 states)")
    m: int = param(2, "moves -m..m (2 m + 1 actions)")
    sigma: float = param(3.0, "noise scale: offsets sigma * {-3..3} weighted by exp(-offset^2 / 2)", traced=True)
    delta: float = param(0.1, "time step", traced=True)
    k: float = param(1.0, "mean reversion of the drift", traced=True)
    q: float = param(0.01, "weight of the cross term a (m_t - x)", traced=True)
    kappa: float = param(0.5, "weight of the distance-to-mean penalty", traced=True)
    c_term: float = param(1.0, "weight of the terminal distance-to-mean penalty", traced=True)
    mu0: tuple = param((), "initial distribution over positions -el..el (empty: uniform)")
    gamma: float = no_discount()

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        check(self.el >= 1, f"el must be >= 1, got {self.el}")
        check(self.m >= 0, f"m must be >= 0, got {self.m}")
        check(self.delta > 0.0, f"delta must be > 0, got {self.delta}")
        initial_distribution(self.mu0, self.n_states)

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def n_states(self) -> int:
        return 2 * self.el + 1

    @property
    def n_actions(self) -> int:
        return 2 * self.m + 1

    def _x(self, dtype=float):
        return jnp.arange(-self.el, self.el + 1, dtype=dtype)

    def state_features(self):
        return (self._x()[:, None] + self.el) / (2 * self.el)

    def action_values(self):
        return jnp.arange(-self.m, self.m + 1, dtype=float)

    def initial_mean_field(self, noise):
        return jnp.asarray(initial_distribution(self.mu0, self.n_states))

    def _mean(self, mu):
        # sum_{x>0} x (mu(x) - mu(-x)): the same number as sum_x x mu(x), with far less
        # rounding noise on near-symmetric mean fields (mu(x) - mu(-x) is then exact).
        # The noise matters: the kernel rounds x + (m_t - x + a) delta at exact
        # half-integer ties, and a population mean off zero by ~2e-15 moves a tie.
        i = jnp.arange(1, self.el + 1, dtype=mu.dtype)
        return jnp.sum(i * (mu[self.el + 1 :] - mu[self.el - 1 :: -1]))

    def kernel(self, mu, noise, t):
        m_t = self._mean(mu)
        s = jnp.arange(self.n_states)[:, None, None].astype(mu.dtype)
        a = jnp.arange(self.n_actions)[None, :, None].astype(mu.dtype)
        offsets = jnp.arange(-3, 4, dtype=mu.dtype) * self.sigma
        weight = jnp.exp(-0.5 * offsets**2)
        # MFGLib's order: s - el + (k (m_t - s + el) + a - m) delta + sigma eps sqrt(delta)
        drift = (self.k * (m_t - s + self.el) + a - self.m) * self.delta
        nxt = (s - self.el) + drift + self.sigma * offsets * jnp.sqrt(jnp.asarray(self.delta, mu.dtype))
        idx = jnp.clip(jnp.round(nxt).astype(jnp.int32), -self.el, self.el) + self.el
        prob = jnp.broadcast_to(weight / jnp.sum(weight), idx.shape)
        return Kernel(idx.astype(jnp.int32), prob)

    def reward(self, mu, mu_next, noise, t):
        gap = (self._mean(mu) - self._x(mu.dtype))[:, None]
        a = self.action_values().astype(mu.dtype)[None, :]
        return (-0.5 * a**2 + self.q * a * gap - 0.5 * self.kappa * gap**2) * self.delta

    def terminal_reward(self, mu, mu_next, noise, t):
        gap = (self._mean(mu) - self._x(mu.dtype))[:, None]
        return jnp.broadcast_to(-0.5 * self.c_term * gap**2, (self.n_states, self.n_actions))

    def observation(self, mu, noise, t):
        return jnp.stack([(self._mean(mu) + self.el) / (2 * self.el)])

    def aggregates(self, mu, noise, t):
        return {"mean position m_t": self._mean(mu)}


__all__ = ["MFGLibLinearQuadratic"]
