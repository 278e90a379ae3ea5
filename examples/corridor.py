"""An evacuation corridor: a complete mean-field game written outside the mfax package.

The documentation's "Writing a game" page (docs/tutorials/writing-a-game.md) takes this file
through ``mfax check-game``, ``mfax train``, ``mfax eval`` and ``mfax plot``.

The game. A corridor has ``length`` cells, numbered ``1..length`` from the exit; state
``0`` is outside (absorbing). Each step an agent inside either waits (action 0) or walks
one cell towards the exit (action 1). Walking is slowed by the crowd ahead: from cell
``s >= 2`` the step succeeds with probability ``1 - congestion * mu_t(s - 1)``; from cell
1 it succeeds only when the exit door is open. The door is the common noise: at every
step it is open with probability ``p_open``, independently, and everybody sees whether it
is open now (the public observation also carries the share of the population still
inside). Every step inside costs ``time_cost``, walking costs ``walk_cost`` more, and a
crowded cell costs ``crowd_aversion * mu_t(s)``; whoever is still inside at the last
step pays ``stranded_cost`` more (the terminal reward, which replaces the step reward
at ``t = T - 1``).

.. math::

    P(s \\to s - 1 \\mid \\text{walk}) = \\begin{cases}
        1 - c\\, \\mu_t(s - 1) & s \\ge 2 \\\\ \\text{door}_t & s = 1 \\end{cases},\\qquad
    r_t(s, a) = -[s \\ge 1]\\,\\big(c_T + c_W [a = \\text{walk}] + \\kappa\\, \\mu_t(s)\\big)

The noise has finite support (``2^T`` door sequences), so mfax evaluates it exactly.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport, check, discount
from mfax.params import param


class DoorNoise(NamedTuple):
    """open: (T+1,) float in {0, 1}: whether the exit door is open at t = 0..T."""

    open: jax.Array


class Corridor(Game):
    name: ClassVar[str] = "corridor"

    length: int = param(8, "number of cells inside the corridor (states: outside + length cells)")
    horizon: int = param(10, "number of steps T (exact noise enumerates 2^T door sequences)")
    gamma: float = discount(1.0)
    p_open: float = param(0.7, "probability that the exit door is open at a step (static: it sets the support)")
    congestion: float = param(0.8, "how much the crowd in the next cell slows a walker, in [0, 1]", traced=True)
    time_cost: float = param(1.0, "cost of a step spent inside", traced=True)
    walk_cost: float = param(0.2, "extra cost of walking", traced=True)
    crowd_aversion: float = param(2.0, "cost per unit of the share of the population in one's cell", traced=True)
    stranded_cost: float = param(5.0, "extra cost of being inside at the last step", traced=True)
    common_noise: bool = param(True, "random door (off: the door is always open)")

    def __check_init__(self):
        check(self.length >= 1, f"length must be >= 1, got {self.length}")
        check(self.horizon <= 14, f"horizon must be <= 14 for the corridor game (2^T noise paths), got {self.horizon}")
        check((0.0 < self.p_open) & (self.p_open <= 1.0), f"p_open must lie in (0, 1], got {self.p_open}")
        check(
            (0.0 <= self.congestion) & (self.congestion <= 1.0), f"congestion must lie in [0, 1], got {self.congestion}"
        )

    n_actions: ClassVar[int] = 2

    @property
    def n_states(self) -> int:
        return self.length + 1

    @property
    def own_history_informative(self) -> bool:
        """The door is public and the mean field follows from the public door history,
        so an agent's own past cells tell it nothing more."""
        return False

    def state_features(self):
        return (jnp.arange(self.n_states, dtype=float) / self.length)[:, None]

    def action_values(self):
        return jnp.array([0.0, 1.0])

    def sample_noise(self, key):
        if not self.common_noise:
            return DoorNoise(jnp.ones(self.horizon + 1))
        door = jax.random.bernoulli(key, self.p_open, (self.horizon,)).astype(float)
        return DoorNoise(jnp.concatenate([door, jnp.ones(1)]))  # t = T: nobody moves any more

    def noise_support(self):
        if not self.common_noise or self.p_open == 1.0:
            return NoiseSupport(DoorNoise(jnp.ones((1, self.horizon + 1))), jnp.ones(1))
        # every door sequence, the bits of 0..2^T-1 (first step = highest bit)
        bits = (np.arange(2**self.horizon)[:, None] >> np.arange(self.horizon - 1, -1, -1)) & 1
        opened = bits.sum(axis=1)
        weight = self.p_open**opened * (1.0 - self.p_open) ** (self.horizon - opened)
        door = np.concatenate([bits, np.ones((len(bits), 1))], axis=1)
        return NoiseSupport(DoorNoise(jnp.asarray(door, float)), jnp.asarray(weight, float))

    def initial_mean_field(self, noise):
        inside = jnp.arange(self.n_states) >= 1
        return inside / self.length

    def kernel(self, mu, noise, t):
        s = jnp.arange(self.n_states)
        ahead = mu[jnp.maximum(s - 1, 0)]  # the share of the population one cell closer to the exit
        success = jnp.where(s == 1, noise.open[t], 1.0 - self.congestion * ahead)
        success = jnp.where(s == 0, 0.0, success)  # outside: nowhere to walk to
        wait = jnp.stack([s, s], axis=-1), jnp.stack([jnp.ones(self.n_states), jnp.zeros(self.n_states)], axis=-1)
        walk = jnp.stack([jnp.maximum(s - 1, 0), s], axis=-1), jnp.stack([success, 1.0 - success], axis=-1)
        index = jnp.stack([wait[0], walk[0]], axis=1).astype(jnp.int32)  # (n, m, 2)
        prob = jnp.stack([wait[1], walk[1]], axis=1)
        return Kernel(index, prob)

    def reward(self, mu, mu_next, noise, t):
        inside = (jnp.arange(self.n_states) >= 1).astype(float)
        cost = self.time_cost + self.crowd_aversion * mu
        return -inside[:, None] * (cost[:, None] + self.walk_cost * self.action_values()[None, :])

    def terminal_reward(self, mu, mu_next, noise, t):
        inside = (jnp.arange(self.n_states) >= 1).astype(float)
        return self.reward(mu, mu_next, noise, t) - self.stranded_cost * inside[:, None]

    def observation(self, mu, noise, t):
        return jnp.stack([1.0 - mu[0], noise.open[t]])

    def describe_noise(self, noise):
        return f"door open {int(np.sum(np.asarray(noise.open)[:-1]))} of {len(noise.open) - 1} steps"
