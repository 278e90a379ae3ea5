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

from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, NoiseSupport, Spread, check, discount
from mfax.games.kernels import deterministic_kernel
from mfax.games.openspiel.common import CPP_LOG_EPSILON, time_observation, torus_spread
from mfax.params import param

MOVES = (-1, 0, 1)


class WindNoise(NamedTuple):
    """gust: (T+1,) float, 1 where a gust shifts the crowd after step t (0 at t = T)."""

    gust: jax.Array


class CrowdModelling(Game):
    name: ClassVar[str] = "openspiel.crowd_modelling"

    size: int = param(10, "number of sites on the ring (states 0..size-1), >= 2")
    horizon: int = param(10, "number of decision steps T")
    gamma: float = discount(1.0)
    wind: float = param(
        0.0,
        "probability of a gust shifting the whole crowd one site at each step (mfax's common noise; 0: OpenSpiel's)",
    )

    n_actions: ClassVar[int] = 3

    @property
    def common_noise_off(self) -> dict:
        """No gusts (OpenSpiel's game)."""
        return {"wind": 0.0}

    def __check_init__(self):
        check(self.size >= 2, f"size must be >= 2 (the centre reward divides by size // 2), got {self.size}")
        check(0.0 <= self.wind <= 1.0, f"wind must lie in [0, 1], got {self.wind}")
        noisy = 0.0 < self.wind < 1.0
        check(
            not noisy or self.horizon <= 16, f"with wind, horizon must be <= 16 (2^T noise paths), got {self.horizon}"
        )

    @property
    def own_history_informative(self) -> bool:
        """With random gusts, an agent's own moves reveal them; the mean field may not
        (a crowd spread evenly looks the same shifted)."""
        return 0.0 < self.wind < 1.0

    # -- the common noise (gusts) --------------------------------------------------------
    def sample_noise(self, key):
        gust = jax.random.bernoulli(key, self.wind, (self.horizon,)).astype(float)
        return WindNoise(jnp.concatenate([gust, jnp.zeros(1)]))

    def noise_support(self):
        if self.wind in (0.0, 1.0):
            return NoiseSupport(WindNoise(jnp.full((1, self.horizon + 1), self.wind).at[:, -1].set(0.0)), jnp.ones(1))
        bits = (np.arange(2**self.horizon)[:, None] >> np.arange(self.horizon - 1, -1, -1)) & 1
        count = bits.sum(axis=1)
        weight = self.wind**count * (1.0 - self.wind) ** (self.horizon - count)
        gust = np.concatenate([bits.astype(float), np.zeros((len(bits), 1))], axis=1)
        return NoiseSupport(WindNoise(jnp.asarray(gust)), jnp.asarray(weight))

    def describe_noise(self, noise):
        gusts = [t for t, g in enumerate(np.asarray(noise.gust)[:-1]) if g > 0]
        return f"gusts at t = {gusts}" if gusts else "no gust"

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
        index = (index + noise.gust[t].astype(jnp.int32)) % self.size  # the gust, if any
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
