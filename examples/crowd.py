"""A game written outside mfax: crowd aversion on a ring (no common noise).

Use it from the command line or from Python by its file reference::

    mfax list examples/crowd.py:Crowd
    mfax train --game examples/crowd.py:Crowd --algo fp --iterations 50 --set crowd_aversion=2
    python -c "import mfax; print(mfax.make('examples/crowd.py:Crowd', n_sites=7))"

The game. ``n_sites`` sites lie on a ring; every agent starts at site 0 and at each step
moves one site left, stays, or moves one site right (actions ``-1, 0, +1``). Staying at
a crowded site costs in proportion to its share of the population, and a move costs a
fixed amount:

.. math::

    s_{t+1} = (s_t + a_t) \\bmod n,\\qquad
    r_t(s, a) = -c\\, \\mu_t(s) - k\\, |a|

with ``c = crowd_aversion`` and ``k = move_cost``. Nothing is random besides the agents'
own choices: the game extends :class:`mfax.games.NoCommonNoise`, which supplies the
noise path (one constant path of weight one), and the public observation is the mean
field itself.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from mfax.games import NoCommonNoise, deterministic_kernel
from mfax.games.base import check, discount
from mfax.params import param


class Crowd(NoCommonNoise):
    name: ClassVar[str] = "crowd"
    n_actions: ClassVar[int] = 3

    n_sites: int = param(5, "sites on the ring")
    horizon: int = param(4, "time steps T")
    gamma: float = discount(1.0)
    crowd_aversion: float = param(1.0, "cost per unit of population share at the agent's site", traced=True)
    move_cost: float = param(0.1, "cost of a move to a neighbouring site", traced=True)

    def __check_init__(self):
        check(self.n_sites >= 2, f"n_sites must be >= 2, got {self.n_sites}")

    @property
    def n_states(self) -> int:
        return self.n_sites

    def state_features(self):
        return (jnp.arange(self.n_sites) / (self.n_sites - 1))[:, None]

    def action_values(self):
        return jnp.array([-1.0, 0.0, 1.0])

    def initial_mean_field(self, noise):
        return jnp.zeros(self.n_sites).at[0].set(1.0)

    def kernel(self, mu, noise, t):
        sites = jnp.arange(self.n_sites)[:, None]
        return deterministic_kernel((sites + jnp.array([-1, 0, 1])[None, :]) % self.n_sites)

    def reward(self, mu, mu_next, noise, t):
        return -self.crowd_aversion * mu[:, None] - self.move_cost * jnp.abs(self.action_values())[None, :]

    def observation(self, mu, noise, t):
        return mu
