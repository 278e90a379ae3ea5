"""A solver written outside mfax: the damped softmax best response.

Each iteration rolls the population's policy ``pi_k`` out to its mean-field path, computes
the optimal action values ``Q*_k`` against that path by backward induction, and moves
the policy part of the way towards their softmax:

    pi_{k+1} = (1 - d) pi_k + d softmax(Q*_k / tau).

Exact and tabular, for games without common noise (one enumerated noise path).
``docs/tutorials/writing-a-solver.md`` walks through this file; train it with
``mfax train --algo examples/soft_best_response.py:SPEC``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mfax.dynamics import rollout_batch
from mfax.errors import GameError
from mfax.evaluation.values import backward_induction, policy_value
from mfax.games.base import Game, check
from mfax.params import param
from mfax.policies import Tabular
from mfax.solvers.base import Metrics, Setting, Solver, SolverSpec


class SoftBestResponseParams(eqx.Module):
    """The hyper-parameters (``--hp key=value``); ``search`` is the range ``mfax tune`` draws from."""

    damping: float = param(0.5, "weight d in (0, 1] of the softmax best response", search=(0.05, 1.0, "log"))
    temperature: float = param(0.1, "temperature tau > 0 of the softmax of Q*", search=(0.01, 1.0, "log"))

    def __check_init__(self):
        check(0.0 < self.damping <= 1.0, f"soft best response: damping must lie in (0, 1], got {self.damping}")
        check(self.temperature > 0.0, f"soft best response: temperature must be > 0, got {self.temperature}")


class SoftBestResponseState(NamedTuple):
    """One run's training state: arrays only, with the iteration the driver counts by."""

    probs: jax.Array  # (T, n, m): pi_k(a | t, s)
    iteration: jax.Array  # int32 scalar


class SoftBestResponse(Solver):
    game: Game
    noise: Any  # the game's one noise path, with a leading path axis of 1
    hp: SoftBestResponseParams = eqx.field(static=True)

    def init(self, key, lr) -> SoftBestResponseState:
        # deterministic: the seed's key and the learning rate are not used (seeded=False, uses_lr=False)
        shape = (self.game.horizon, self.game.n_states, self.game.n_actions)
        return SoftBestResponseState(jnp.full(shape, 1.0 / self.game.n_actions), jnp.zeros((), jnp.int32))

    def step(self, state: SoftBestResponseState) -> tuple[SoftBestResponseState, Metrics]:
        traj = rollout_batch(self.game, Tabular(state.probs), self.noise)  # mean fields mu_t, t = 0..T
        v_policy = policy_value(self.game, traj, self.noise)[0]  # V^pi_0(s)
        v_best, q_best = backward_induction(
            self.game, traj, self.noise, lambda q, t, x: jnp.max(q, axis=-1), emit_q=True
        )  # V*_0(s) and Q*_t(s, a) against the population's path
        mu0 = traj.mu[0, 0]
        policy_return = jnp.sum(mu0 * v_policy)
        exploitability = jnp.sum(mu0 * (v_best[0] - v_policy))
        target = jax.nn.softmax(q_best[0] / self.hp.temperature, axis=-1)
        probs = (1.0 - self.hp.damping) * state.probs + self.hp.damping * target
        change = jnp.max(jnp.sum(jnp.abs(probs - state.probs), axis=-1))  # the update's size (grad_norm)
        # the driver stops a run where `finite` is false: the solver says what it computed is finite
        finite = jnp.isfinite(policy_return) & jnp.isfinite(exploitability) & jnp.all(jnp.isfinite(probs))
        nan = jnp.full((), jnp.nan, probs.dtype)  # no learning rate, no loss
        metrics = Metrics(policy_return, exploitability, exploitability, change, nan, nan, finite)
        return SoftBestResponseState(probs, state.iteration + 1), metrics

    def policy(self, state: SoftBestResponseState) -> Tabular:
        return Tabular(state.probs)


def build(game: Game, hp: SoftBestResponseParams, setting: Setting) -> SoftBestResponse:
    if setting.exact is None or setting.exact.num_paths != 1:
        raise GameError(
            f"soft best response solves games without common noise (one enumerated noise path); {game.name!r} "
            "has several: set its common noise off (for instance --set common_noise=false)"
        )
    return SoftBestResponse(game, setting.exact.noise, hp)


SPEC = SolverSpec(
    "soft_best_response",
    "damped softmax best response: pi' = (1 - d) pi + d softmax(Q* / tau) (exact, tabular, no common noise)",
    build,
    SoftBestResponseParams,
    uses_lr=False,
    seeded=False,
)
