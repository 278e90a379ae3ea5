"""OpenSpiel's mean-field normal-form games (``openspiel.normal_form``), defined in
``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``python/mfg/games/normal_form_game.py`` (``mean_field_nfg``).
One decision: every agent picks one of three actions, and is paid by a function of its
action and of the share ``nu`` of the population playing each action:

* ``coop``: ``10 nu_A - 200/9 (nu_A - nu_C) nu_C - 20 nu_B``,
  ``20 (nu_A - nu_B) - 2380 nu_C``, ``2000/9 (nu_A - nu_C) nu_C``;
* ``dom`` (a dominated reward source): ``nu_A + nu_C``, ``nu_B``, ``nu_A + nu_C - 1/4``;
* ``biased_indirect_rps``: with ``(a, b, c) = (0.7 nu_A, 0.5 nu_B, 0.3 nu_C)``,
  ``b - c``, ``c - a``, ``a - b``.

As an mfax game: horizon ``T = 1``, state 0 the start and state ``1 + a`` "played ``a``",
so that ``mu_1(1 + a) = nu_a`` and ``R_0(0, a) = f_a(nu)`` reads ``mu_1``.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from mfax.games.base import check, discount
from mfax.games.kernels import deterministic_kernel
from mfax.games.no_noise import NoCommonNoise
from mfax.params import param


def _coop(a, b, c):
    return jnp.stack([10 * a - 200 / 9 * (a - c) * c - 20 * b, 20 * (a - b) - 2380 * c, 2000 / 9 * (a - c) * c])


def _dom(a, b, c):
    return jnp.stack([a + c, b, a + c - 0.25])


def _biased_indirect_rps(a, b, c):
    a, b, c = 0.7 * a, 0.5 * b, 0.3 * c
    return jnp.stack([b - c, c - a, a - b])


REWARDS = {"coop": _coop, "dom": _dom, "biased_indirect_rps": _biased_indirect_rps}


class NormalForm(NoCommonNoise):
    name: ClassVar[str] = "openspiel.normal_form"

    reward_function: str = param("coop", "payoffs: coop, dom or biased_indirect_rps")
    num_actions: int = param(3, "number of actions (OpenSpiel's payoffs are defined for 3)")
    gamma: float = discount(1.0)

    horizon: ClassVar[int] = 1

    def __check_init__(self):
        check(
            self.reward_function in REWARDS,
            f"reward_function must be one of {', '.join(REWARDS)}, got {self.reward_function!r}",
        )
        check(
            self.num_actions == 3, f"num_actions must be 3 (OpenSpiel's payoffs use 3 actions), got {self.num_actions}"
        )

    @property
    def n_states(self) -> int:
        return 1 + self.num_actions

    @property
    def n_actions(self) -> int:
        return self.num_actions

    def state_features(self):
        return (jnp.arange(self.n_states, dtype=float) / self.num_actions)[:, None]

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(self.num_actions, dtype=float)

    def initial_mean_field(self, noise):
        return jnp.zeros(self.n_states).at[0].set(1.0)

    def kernel(self, mu, noise, t):
        played = 1 + jnp.arange(self.num_actions)
        return deterministic_kernel(jnp.broadcast_to(played, (self.n_states, self.num_actions)))

    def reward(self, mu, mu_next, noise, t):
        payoff = REWARDS[self.reward_function](*mu_next[1:4])
        return jnp.broadcast_to(payoff[None, :], (self.n_states, self.num_actions))

    def observation(self, mu, noise, t):
        return mu
