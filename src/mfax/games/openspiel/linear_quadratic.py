"""OpenSpiel's linear-quadratic game (``openspiel.linear_quadratic``), defined in
``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``python/mfg/games/linear_quadratic.py`` (``mean_field_lin_quad``);
Perrin et al. (2020), "Fictitious play for mean field games: continuous time analysis and
applications", §4.1.

States ``x = 0..size-1`` on a ring, actions ``a = -k..k`` (``k = n_actions_per_side``),
``m_t = sum_x x mu_t(x)`` the population's mean. The agent moves to
``y = (x + round((a + K (m_t - x)) dt)) mod size`` (``K`` = ``mean_revert``), then to
``round(y + sqrt(dt) sigma c) mod size`` with ``c = -k..k`` drawn with the probabilities
of a normal of standard deviation ``sigma`` rounded to the nearest integer (tails folded
onto ``+-k``); ``round`` is Python's (ties to even), so the reduction of ``y`` before the
noise matters on a ring of odd size; a value within ``1e-5`` (relative) of a
half-integer is taken as that half (:func:`~mfax.games.kernels.snap_halves`), so the
move meets the definition's exact ties in either precision. At each ``t = 0..T-1`` the agent
at ``x_t`` receives

.. math::

    \\tfrac{dt}{2}\\big(-a_{t-1}^2 + 2 q\\, a_{t-1} (m_t - x_t) - \\kappa (m_t - x_t)^2\\big),

with ``a_{-1} = 0``: the terms of the *previous* action are paid one step later, at the
position it led to. In mfax's time convention ``R_t(x, a)`` holds ``-dt/2 \\kappa (m_t -
x)^2`` plus, for ``t < T - 1``, the expectation over the move's outcome of the terms of
``a`` paid at ``t + 1`` (an expectation, so values and exploitability are exact; a sampled
agent is paid that expectation instead of its draw). OpenSpiel 2.0.2's tree never pays
the terminal cost ``-c/2 (m_T - x_T)^2`` (its terminal node is a mean-field node, whose
reward is 0); ``pay_terminal_cost=true`` adds it to ``R_{T-1}`` (in expectation).
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import Kernel, Spread, check, discount
from mfax.games.kernels import snap_halves
from mfax.games.no_noise import NoCommonNoise
from mfax.games.openspiel.common import time_observation
from mfax.params import param


def _normal_cdf(x: np.ndarray, scale: float) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / (scale * math.sqrt(2.0))))


class LinearQuadratic(NoCommonNoise):
    name: ClassVar[str] = "openspiel.linear_quadratic"

    size: int = param(10, "number of positions on the ring (states 0..size-1)")
    horizon: int = param(10, "number of decision steps T (OpenSpiel's horizon is T dt)")
    dt: float = param(1.0, "time step (static: it sets the rounded moves)")
    n_actions_per_side: int = param(3, "actions (and noise values) -k..k, k = n_actions_per_side")
    volatility: float = param(1.0, "volatility sigma (static: it sets the noise)")
    mean_revert: float = param(0.0, "mean reversion K of the move (static: the rounded moves depend on it)")
    cross_q: float = param(0.01, "cross term q", traced=True)
    kappa: float = param(0.5, "weight kappa of the distance to the mean", traced=True)
    terminal_cost: float = param(1.0, "terminal cost c (paid only with pay_terminal_cost)", traced=True)
    pay_terminal_cost: bool = param(False, "pay -c/2 (m_T - x_T)^2 at the end (OpenSpiel 2.0.2's tree never pays it)")
    gamma: float = discount(1.0)

    def __check_init__(self):
        check(self.size >= 1, f"size must be >= 1, got {self.size}")
        check(self.n_actions_per_side >= 0, f"n_actions_per_side must be >= 0, got {self.n_actions_per_side}")
        check(self.dt > 0.0, f"dt must be > 0, got {self.dt}")
        check(self.volatility > 0.0, f"volatility must be > 0, got {self.volatility}")

    @property
    def n_states(self) -> int:
        return self.size

    @property
    def n_actions(self) -> int:
        return 2 * self.n_actions_per_side + 1

    def _moves(self) -> np.ndarray:
        return np.arange(-self.n_actions_per_side, self.n_actions_per_side + 1)

    def noise_probabilities(self) -> np.ndarray:
        """Probabilities of the noise values ``c = -k..k``: a normal of standard deviation
        ``volatility`` rounded to the nearest integer, the tails folded onto ``+-k``."""
        c = self._moves().astype(float)
        probs = _normal_cdf(c + 0.5, self.volatility) - _normal_cdf(c - 0.5, self.volatility)
        probs[0] += _normal_cdf(c[:1] - 0.5, self.volatility)[0]
        probs[-1] += 1.0 - _normal_cdf(c[-1:] + 0.5, self.volatility)[0]
        return probs

    def _spread(self) -> Spread:
        # x + c sqrt(dt) sigma, rounded half to even (Python's round), on the ring
        x = np.arange(self.size)[:, None].astype(float)
        shifted = np.round(x + self._moves()[None, :] * math.sqrt(self.dt) * self.volatility)
        index = (shifted.astype(np.int64) % self.size).astype(np.int32)
        prob = np.broadcast_to(self.noise_probabilities(), index.shape)
        return Spread(jnp.asarray(index), jnp.asarray(prob))

    def state_features(self):
        return (jnp.arange(self.size, dtype=float) / max(self.size - 1, 1))[:, None]

    def action_values(self):
        return jnp.asarray(self._moves(), dtype=float)

    def initial_mean_field(self, noise):
        return jnp.full(self.size, 1.0 / self.size)

    def _mean(self, mu):
        return jnp.sum(jnp.arange(self.size, dtype=mu.dtype) * mu)

    def kernel(self, mu, noise, t):
        x = jnp.arange(self.size, dtype=mu.dtype)[:, None]
        move = jnp.asarray(self._moves(), dtype=mu.dtype)[None, :]
        full = (move + self.mean_revert * (self._mean(mu) - x)) * self.dt
        # the definition's ties (a mean field symmetric about its mean puts K (m_t - x) dt
        # on a half-integer) met whatever m_t's rounding: float64 went off them by an ulp
        moved = jnp.mod(x + jnp.round(snap_halves(full)), self.size).astype(jnp.int32)
        spread = self._spread()
        return Kernel(
            moved[..., None], jnp.ones((*moved.shape, 1), mu.dtype), Spread(spread.index, spread.prob.astype(mu.dtype))
        )

    def _position_reward(self, mu):
        gap = self._mean(mu) - jnp.arange(self.size, dtype=mu.dtype)
        return -0.5 * self.dt * self.kappa * gap**2

    def _expected_next(self, mu, t):
        """``E[x_{t+1} | x, a]`` under the kernel at ``t``."""
        return self.kernel(mu, None, t).expect(jnp.arange(self.size, dtype=mu.dtype))

    def reward(self, mu, mu_next, noise, t):
        move = jnp.asarray(self._moves(), dtype=mu.dtype)[None, :]
        gap_next = self._mean(mu_next) - self._expected_next(mu, t)
        deferred = 0.5 * self.dt * (-(move**2) + 2 * self.cross_q * move * gap_next)
        return self._position_reward(mu)[:, None] + deferred

    def terminal_reward(self, mu, mu_next, noise, t):
        r = jnp.broadcast_to(self._position_reward(mu)[:, None], (self.size, self.n_actions))
        if not self.pay_terminal_cost:
            return r
        x_next = jnp.arange(self.size, dtype=mu.dtype)
        gap2 = self.kernel(mu, noise, t).expect((self._mean(mu_next) - x_next) ** 2)
        return r - 0.5 * self.terminal_cost * gap2

    def observation(self, mu, noise, t):
        return time_observation(mu, t, self.horizon)
