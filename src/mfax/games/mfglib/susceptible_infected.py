"""MFGLib's susceptible-infected game (``mfglib.susceptible_infected``; MFGLib 0.3.0,
``mfglib.env.Environment.susceptible_infected``), after Cui and Koeppl (2021).

States ``{susceptible, infected}``, actions ``{go out, distance}``, steps ``t = 0..T``
(mfax ``horizon = T + 1``), no discount. A susceptible agent who goes out is infected
with probability ``beta I_t`` (``I_t = mu_t(infected)``, ``beta = 0.9^2``), one who
distances is not; an infected agent recovers with probability ``0.3`` whatever it does.
The reward is ``-1`` for being infected and ``-0.5`` for distancing, added.

MFGLib's game has only ``T`` and ``mu0`` as parameters; the rates and costs are
parameters here too, with MFGLib's values as defaults.

Common-noise variant (``beta_shock`` > 0, off by default): the infection rate is
``beta (1 + beta_shock z)`` for the whole episode, ``z = -1`` or ``+1`` with probability
1/2, drawn once and not observed; the public observation is the infected share, so the
population learns ``z`` only through the epidemic.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport, check
from mfax.games.mfglib.common import initial_distribution, mfglib_T, no_discount
from mfax.params import param


class RateNoise(NamedTuple):
    """z: () float, the sign of the infection-rate shock (0 without the shock)."""

    z: jax.Array


class MFGLibSusceptibleInfected(Game):
    name: ClassVar[str] = "mfglib.susceptible_infected"

    T: int = mfglib_T(50)
    mu0: tuple = param((0.4, 0.6), "initial distribution over susceptible, infected")
    beta: float = param(0.81, "infection probability of a susceptible agent going out, per infected share", traced=True)
    recovery: float = param(0.3, "recovery probability of an infected agent", traced=True)
    infection_cost: float = param(1.0, "cost of a step spent infected", traced=True)
    distancing_cost: float = param(0.5, "cost of a step of distancing", traced=True)
    beta_shock: float = param(0.0, "common noise: beta is scaled by 1 +- beta_shock for the episode (0: off, MFGLib)")
    gamma: float = no_discount()

    n_states: ClassVar[int] = 2
    n_actions: ClassVar[int] = 2

    @property
    def common_noise_off(self) -> dict:
        """No shock to the infection rate (MFGLib's game)."""
        return {"beta_shock": 0.0}

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        initial_distribution(self.mu0, 2)
        check((0.0 <= self.recovery) & (self.recovery <= 1.0), f"recovery must lie in [0, 1], got {self.recovery}")
        check(0.0 <= self.beta_shock <= 1.0, f"beta_shock must lie in [0, 1], got {self.beta_shock}")
        top = self.beta * (1.0 + self.beta_shock)
        check((self.beta >= 0.0) & (top <= 1.0), f"beta (1 + beta_shock) must lie in [0, 1], got {top}")

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def own_history_informative(self) -> bool:
        """``True`` with the shock on: an agent's own infection depends on the hidden rate."""
        return self.beta_shock > 0.0

    def state_features(self):
        return jnp.array([[0.0], [1.0]])

    def action_values(self):
        return jnp.array([0.0, 1.0])

    def sample_noise(self, key):
        if self.beta_shock == 0.0:
            return RateNoise(jnp.zeros(()))
        return RateNoise(jnp.where(jax.random.bernoulli(key), 1.0, -1.0))

    def noise_support(self):
        if self.beta_shock == 0.0:
            return NoiseSupport(RateNoise(jnp.zeros(1)), jnp.ones(1))
        return NoiseSupport(RateNoise(jnp.array([-1.0, 1.0])), jnp.full(2, 0.5))

    def describe_noise(self, noise):
        z = float(np.asarray(noise.z))
        return "no common noise" if z == 0.0 else f"infection rate {'up' if z > 0 else 'down'}"

    def initial_mean_field(self, noise):
        return jnp.asarray(initial_distribution(self.mu0, 2))

    def kernel(self, mu, noise, t):
        beta = self.beta * (1.0 + self.beta_shock * noise.z) if self.beta_shock else self.beta
        p = beta * mu[1]
        infected_next = jnp.stack(
            [jnp.stack([p, jnp.zeros_like(p)]), jnp.full(2, 1.0 - self.recovery, mu.dtype)]
        )  # (s, a): probability of being infected next
        index = jnp.broadcast_to(jnp.array([0, 1], jnp.int32), (2, 2, 2))
        return Kernel(index, jnp.stack([1.0 - infected_next, infected_next], axis=-1))

    def reward(self, mu, mu_next, noise, t):
        infected = jnp.array([0.0, 1.0], mu.dtype)[:, None]
        distancing = jnp.array([0.0, 1.0], mu.dtype)[None, :]
        return -self.infection_cost * infected - self.distancing_cost * distancing

    def observation(self, mu, noise, t):
        return mu[1:]


__all__ = ["MFGLibSusceptibleInfected", "RateNoise"]
