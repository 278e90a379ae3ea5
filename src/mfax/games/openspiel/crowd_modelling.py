"""OpenSpiel's 1-D crowd modelling game (``openspiel.crowd_modelling``), defined in
``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``open_spiel/games/mfg/crowd_modelling.cc`` (``mfg_crowd_modelling``;
``python/mfg/games/crowd_modelling.py`` is the same game in Python). Perrin et al. (2020),
"Fictitious play for mean field games: continuous time analysis and applications", §4.2.

Agents on a ring of ``size`` sites start uniformly, move ``-1, 0, +1`` and are then
shifted by an idiosyncratic ``-1, 0, +1`` (1/3 each), all modulo ``size``. At each
``t = 0..T-1`` an agent at ``x`` receives

.. math::

    r_t(x) = 1 - \\frac{|x - \\lfloor size/2 \\rfloor|}{\\lfloor size/2 \\rfloor}
             - \\log(\\mu_t(x) + 10^{-25}) - \\frac{|a_{t-1}|}{size},

the move cost being that of the *previous* action (none at ``t = 0``). In mfax's time
convention the cost of ``a_t`` is therefore part of ``R_t`` for ``t < T - 1``, and the
last action is free: the terminal reward is the step reward without it.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from mfax.games.base import Spread, check, discount
from mfax.games.kernels import deterministic_kernel
from mfax.games.no_noise import NoCommonNoise
from mfax.games.openspiel.common import CPP_LOG_EPSILON, time_observation, torus_spread
from mfax.params import param

MOVES = (-1, 0, 1)


class CrowdModelling(NoCommonNoise):
    name: ClassVar[str] = "openspiel.crowd_modelling"

    size: int = param(10, "number of sites on the ring (states 0..size-1), >= 2")
    horizon: int = param(10, "number of decision steps T")
    gamma: float = discount(1.0)

    n_actions: ClassVar[int] = 3

    def __check_init__(self):
        check(self.size >= 2, f"size must be >= 2 (the centre reward divides by size // 2), got {self.size}")

    @property
    def n_states(self) -> int:
        return self.size

    def state_features(self):
        return (jnp.arange(self.size, dtype=float) / (self.size - 1))[:, None]

    def action_values(self):
        return jnp.asarray(MOVES, dtype=float)

    def initial_mean_field(self, noise):
        return jnp.full(self.size, 1.0 / self.size)

    def kernel(self, mu, noise, t):
        x = jnp.arange(self.size)[:, None]
        moved = (x + jnp.asarray(MOVES)[None, :]) % self.size
        index, prob = torus_spread(self.size, MOVES, (1 / 3, 1 / 3, 1 / 3))
        return deterministic_kernel(moved, Spread(index, prob.astype(mu.dtype)))

    def _state_reward(self, mu):
        half = self.size // 2
        x = jnp.arange(self.size, dtype=mu.dtype)
        return 1.0 - jnp.abs(x - half) / half - jnp.log(mu + CPP_LOG_EPSILON)

    def reward(self, mu, mu_next, noise, t):
        move_cost = jnp.abs(jnp.asarray(MOVES, dtype=mu.dtype)) / self.size
        return self._state_reward(mu)[:, None] - move_cost[None, :]

    def terminal_reward(self, mu, mu_next, noise, t):
        # the last action's cost would be paid at t = T, where the tree has ended
        return jnp.broadcast_to(self._state_reward(mu)[:, None], (self.size, 3))

    def observation(self, mu, noise, t):
        return time_observation(mu, t, self.horizon)
