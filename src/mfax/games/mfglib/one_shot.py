"""MFGLib's two choice games from Cui and Koeppl (2021): left-right
(``mfglib.left_right``) and rock-paper-scissors (``mfglib.rock_paper_scissors``);
MFGLib 0.3.0, ``mfglib.env.Environment.left_right`` and ``.rock_paper_scissors``.

Both start in a state ``0`` where nothing is paid; action ``a`` leads from every state to
state ``1 + a`` (the choice is then visible in the mean field), and a state is paid by
how many agents made each choice:

* left-right, states ``{start, left, right}``, actions ``{left, right}``:
  ``r_t(left) = -mu_t(left)``, ``r_t(right) = -2 mu_t(right)``;
* rock-paper-scissors, states ``{start, rock, paper, scissors}``, actions
  ``{rock, paper, scissors}``: ``r_t(rock) = 2 mu_t(scissors) - mu_t(paper)``,
  ``r_t(paper) = 4 mu_t(rock) - 2 mu_t(scissors)``,
  ``r_t(scissors) = 6 mu_t(paper) - 3 mu_t(rock)`` (Shapley's non-zero-sum variant).

The reward does not depend on the action taken at ``t``. MFGLib's ``T`` (steps
``0..T``, mfax ``horizon = T + 1``) is fixed at 1 for left-right and defaults to 1 for
rock-paper-scissors; here both may be set (each later step repeats the choice).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import check
from mfax.games.kernels import deterministic_kernel
from mfax.games.mfglib.common import initial_distribution, mfglib_T, no_discount
from mfax.games.no_noise import NoCommonNoise
from mfax.params import param


class _Choice(NoCommonNoise):
    """A choice game: every state moves to ``1 + a``; subclasses pay by state."""

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def n_states(self) -> int:
        return self.n_actions + 1

    def _check(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        initial_distribution(self.mu0, self.n_states)

    def state_features(self):
        return jnp.arange(self.n_states, dtype=float)[:, None] / (self.n_states - 1)

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(self.n_actions, dtype=float)

    def initial_mean_field(self, noise):
        return jnp.asarray(initial_distribution(self.mu0, self.n_states))

    def kernel(self, mu, noise, t):
        return deterministic_kernel(np.broadcast_to(1 + np.arange(self.n_actions), (self.n_states, self.n_actions)))

    def reward(self, mu, mu_next, noise, t):
        return jnp.broadcast_to(self.state_reward(mu)[:, None], (self.n_states, self.n_actions))

    def observation(self, mu, noise, t):
        return mu


class MFGLibLeftRight(_Choice):
    name: ClassVar[str] = "mfglib.left_right"

    T: int = mfglib_T(1, "MFGLib fixes T = 1")
    mu0: tuple = param((1.0, 0.0, 0.0), "initial distribution over start, left, right")
    gamma: float = no_discount()

    n_actions: ClassVar[int] = 2

    def __check_init__(self):
        self._check()

    def state_reward(self, mu):
        return jnp.stack([jnp.zeros((), mu.dtype), -mu[1], -2.0 * mu[2]])


class MFGLibRockPaperScissors(_Choice):
    name: ClassVar[str] = "mfglib.rock_paper_scissors"

    T: int = mfglib_T(1)
    mu0: tuple = param((1.0, 0.0, 0.0, 0.0), "initial distribution over start, rock, paper, scissors")
    gamma: float = no_discount()

    n_actions: ClassVar[int] = 3

    def __check_init__(self):
        self._check()

    def state_reward(self, mu):
        rock, paper, scissors = mu[1], mu[2], mu[3]
        return jnp.stack(
            [jnp.zeros((), mu.dtype), 2.0 * scissors - paper, 4.0 * rock - 2.0 * scissors, 6.0 * paper - 3.0 * rock]
        )


__all__ = ["MFGLibLeftRight", "MFGLibRockPaperScissors"]
