"""MFGLib's linear-quadratic and beach-bar games written as mfax games, as a user would.

Definitions follow MFGLib 0.3 (``mfglib.env.Environment.linear_quadratic`` and
``.beach_bar``) term for term, so both libraries can be compared on the same game:

* time steps ``t = 0..T`` with an action at each (mfax ``horizon = T + 1``), no
  discounting; rewards and transitions at ``t`` depend on the mean field ``mu_t``;
* linear-quadratic: positions ``x = -el..el``, moves ``a' = -m..m``,
  ``x' = clip(round(x + (k (m_t - x) + a') delta + sigma eps sqrt(delta)), -el, el)``
  with ``eps in sigma * (-3..3)`` weighted by ``exp(-eps^2/2)``;
  reward ``(-a'^2/2 + q a' (m_t - x) - kappa/2 (m_t - x)^2) delta``, at ``t = T``
  ``-c_term/2 (m_T - x)^2``. The next-position arithmetic is done in the same order
  as MFGLib's so that ties of the rounding fall the same way;
* beach bar: ``n`` positions, moves ``-1, 0, +1`` with idiosyncratic ``-1/0/+1`` w.p.
  ``(1-p)/2, p, (1-p)/2``, clipped; reward ``-d(s, bar) - |a'|/n - log(mu_t(s) + eps)``
  with MFGLib's distance to the bar (on the torus), the same at ``t = T``.

No common noise: one noise path (a dummy scalar).
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport
from mfax.params import param


class NoNoise(NamedTuple):
    dummy: jax.Array


def _one_path() -> NoiseSupport:
    return NoiseSupport(NoNoise(jnp.zeros(1)), jnp.ones(1))


class MFGLibLinearQuadratic(Game):
    name: ClassVar[str] = "mfglib_linear_quadratic"

    T: int = param(3, "MFGLib's T: time steps 0..T (mfax horizon T + 1)")
    el: int = param(5, "positions -el..el")
    m: int = param(2, "moves -m..m")
    sigma: float = param(3.0, "noise scale")
    delta: float = param(0.1, "time step")
    k: float = param(1.0, "mean reversion")
    q: float = param(0.01, "cross term")
    kappa: float = param(0.5, "distance-to-mean penalty")
    c_term: float = param(1.0, "terminal penalty")
    gamma: float = param(1.0, "discount (MFGLib: none)")

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

    def sample_noise(self, key):
        return NoNoise(jnp.zeros(()))

    def noise_support(self):
        return _one_path()

    def initial_mean_field(self, noise):
        return jnp.full(self.n_states, 1.0 / self.n_states)

    def _mean(self, mu):
        # sum_{x>0} x (mu(x) - mu(-x)): the same number as sum_x x mu(x), with far less
        # rounding noise on near-symmetric mean fields (mu(x) - mu(-x) is then exact).
        # The noise matters: MFGLib's kernel rounds x + (m_t - x + a') delta at exact
        # half-integer ties, and a population mean off zero by ~2e-15 moves a tie.
        i = jnp.arange(1, self.el + 1, dtype=mu.dtype)
        return jnp.sum(i * (mu[self.el + 1 :] - mu[self.el - 1 :: -1]))

    def kernel(self, mu, noise, t):
        m_t = self._mean(mu)
        s = jnp.arange(self.n_states)[:, None, None]
        a = jnp.arange(self.n_actions)[None, :, None]
        kk = np.arange(-3, 4, dtype=np.float64)
        eps = jnp.asarray(kk * self.sigma, dtype=mu.dtype)
        w = np.exp(-0.5 * (kk * self.sigma) ** 2) / math.sqrt(2 * math.pi)
        # MFGLib: s - el + (k (m_t - s + el) + a - m) delta + sigma eps sqrt(delta)
        drift = (self.k * (m_t - s.astype(mu.dtype) + self.el) + a.astype(mu.dtype) - self.m) * self.delta
        nxt = (s - self.el).astype(mu.dtype) + drift + self.sigma * eps * math.sqrt(self.delta)
        idx = jnp.clip(jnp.round(nxt).astype(jnp.int32), -self.el, self.el) + self.el
        prob = jnp.broadcast_to(jnp.asarray(w / w.sum(), dtype=mu.dtype), idx.shape)
        return Kernel(idx.astype(jnp.int32), prob)

    def reward(self, mu, mu_next, noise, t):
        gap = (self._mean(mu) - self._x(mu.dtype))[:, None]
        a = self.action_values().astype(mu.dtype)[None, :]
        return (-0.5 * a**2 + self.q * a * gap - 0.5 * self.kappa * gap**2) * self.delta

    def terminal_reward(self, mu, mu_next, noise, t):
        gap = (self._mean(mu) - self._x(mu.dtype))[:, None]
        return jnp.broadcast_to(-0.5 * self.c_term * gap**2, (self.n_states, self.n_actions))

    def observation(self, mu, noise, t):
        return jnp.stack([self._mean(mu)])


class MFGLibBeachBar(Game):
    name: ClassVar[str] = "mfglib_beach_bar"

    T: int = param(2, "MFGLib's T: time steps 0..T (mfax horizon T + 1)")
    n: int = param(4, "positions 0..n-1")
    bar_loc: int = param(2, "bar position")
    log_eps: float = param(1e-20, "mu + log_eps inside the crowd-aversion log")
    p_still: float = param(0.5, "probability of no idiosyncratic move")
    gamma: float = param(1.0, "discount (MFGLib: none)")

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def n_states(self) -> int:
        return self.n

    @property
    def n_actions(self) -> int:
        return 3

    def state_features(self):
        return jnp.arange(self.n, dtype=float)[:, None] / max(self.n - 1, 1)

    def action_values(self):
        return jnp.array([-1.0, 0.0, 1.0])

    def sample_noise(self, key):
        return NoNoise(jnp.zeros(()))

    def noise_support(self):
        return _one_path()

    def initial_mean_field(self, noise):
        return jnp.full(self.n, 1.0 / self.n)

    def kernel(self, mu, noise, t):
        s = np.arange(self.n)[:, None, None]
        a = np.arange(3)[None, :, None]
        e = np.array([-1, 0, 1])
        idx = np.clip(s + a - 1 + e, 0, self.n - 1)
        prob = np.broadcast_to(np.array([(1 - self.p_still) / 2, self.p_still, (1 - self.p_still) / 2]), idx.shape)
        return Kernel(jnp.asarray(idx, jnp.int32), jnp.asarray(prob, dtype=mu.dtype))

    def _distance(self) -> np.ndarray:
        n = self.n
        return np.minimum(np.roll(np.arange(n), self.bar_loc), np.roll(np.arange(n)[::-1], self.bar_loc + 1))

    def reward(self, mu, mu_next, noise, t):
        c1 = -jnp.asarray(self._distance(), dtype=mu.dtype)[:, None]
        c2 = -jnp.array([1.0, 0.0, 1.0], dtype=mu.dtype)[None, :] / self.n
        c3 = -jnp.log(mu + self.log_eps)[:, None]
        return c1 + c2 + c3

    def observation(self, mu, noise, t):
        return jnp.stack([mu @ jnp.arange(self.n, dtype=mu.dtype)])
