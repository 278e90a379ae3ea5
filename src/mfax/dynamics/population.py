"""Sampled populations: N agents drawn from the same kernel as the exact push-forward.

The mean field is replaced by the empirical histogram of the agents' states; each agent
sees its own state and the public observation (computed from the histogram). This is
the environment model-free learners use; as ``N`` grows it converges to the exact
push-forward (the histogram's total-variation error is ``O(sqrt(n / N))``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from mfax import compiling, params
from mfax.dynamics.pushforward import Trajectory, forward_scan
from mfax.errors import GameError
from mfax.games.base import Game, Kernel, Noise, reward_matrix
from mfax.policies.base import Policy, check_policy


class PopulationStep(NamedTuple):
    """Result of one population step.

    Attributes:
        agents: ``(N,)`` next states.
        rewards: ``(N,)`` each agent's reward ``R_t(s_i, a_i)``.
        mu_next: ``(n,)`` empirical mean field after the step.
    """

    agents: Int[Array, " N"]
    rewards: Float[Array, " N"]
    mu_next: Float[Array, " n"]


class PopulationTrajectory(NamedTuple):
    """A sampled episode: ``mu (T+1, n)`` histograms, ``obs (T+1, d)``,
    ``agents (T+1, N)`` states, ``actions (T, N)`` and ``rewards (T, N)``."""

    mu: Float[Array, "T1 n"]
    obs: Float[Array, "T1 d"]
    agents: Int[Array, "T1 N"]
    actions: Int[Array, "T N"]
    rewards: Float[Array, "T N"]


def empirical_mean_field(agents: Int[Array, " N"], n_states: int, dtype=float) -> Float[Array, " n"]:
    """Histogram of the agents' states, normalised to a probability vector. Counted in
    integers: a float32 count stops at 2^24 (with 2e7 agents in one state it read 0.8389
    and no longer summed to one)."""
    counts = jnp.zeros(n_states, jnp.int32).at[agents].add(1)
    return counts.astype(dtype) / agents.shape[0]


def population_reset(game: Game, key: PRNGKeyArray, noise: Noise, num_agents: int) -> Int[Array, " N"]:
    """Draw ``num_agents`` initial states i.i.d. from ``mu_0``."""
    mu0 = game.initial_mean_field(noise)
    return jax.random.categorical(key, jnp.log(mu0), shape=(num_agents,)).astype(jnp.int32)


def sample_transitions(key: PRNGKeyArray, kernel: Kernel, agents, actions) -> Int[Array, " N"]:
    """Next state of each agent drawn from its kernel row ``P(. | s_i, a_i)`` (of the
    flattened kernel: the same draws for a kernel given in one or two stages)."""
    kernel = kernel.flat()
    probs = kernel.prob[agents, actions]  # (N, K)
    pick = jax.random.categorical(key, jnp.log(probs), axis=-1)
    return jnp.take_along_axis(kernel.index[agents, actions], pick[:, None], axis=-1)[:, 0]


def population_step(game: Game, key: PRNGKeyArray, agents, actions, noise: Noise, t) -> PopulationStep:
    """Move every agent one step; the aggregate state is the empirical histogram."""
    mu = empirical_mean_field(agents, game.n_states)
    nxt = sample_transitions(key, game.kernel(mu, noise, t), agents, actions)
    mu_next = empirical_mean_field(nxt, game.n_states)
    rewards = reward_matrix(game, mu, mu_next, noise, t)[agents, actions]
    return PopulationStep(nxt, rewards, mu_next)


def sample_actions(key: PRNGKeyArray, probs: Float[Array, "n m"], agents) -> Int[Array, " N"]:
    """Each agent's action drawn from the mean-field policy's row for its state."""
    return jax.random.categorical(key, jnp.log(probs[agents]), axis=-1).astype(jnp.int32)


def check_agents(num_agents: Any) -> None:
    """A number of agents is an integer >= 1 (zero agents have no histogram: NaN)."""
    if not params.is_integer_from(num_agents, 1):
        raise GameError(f"num_agents must be an integer >= 1, got {num_agents!r}")


def population_rollout(
    game: Game, policy: Policy, noise: Noise, key: PRNGKeyArray, num_agents: int
) -> PopulationTrajectory:
    """A sampled episode of ``num_agents`` agents following a mean-field policy.

    The policy is fed the public observation of the *empirical* mean field, exactly as
    agents of a finite population would see it. A number of agents below one and a
    policy that is not one of ``game`` (:func:`~mfax.policies.base.check_policy`) are
    one-line errors.
    """
    check_agents(num_agents)
    check_policy(game, policy)
    return _population_rollout(game, policy, noise, key, num_agents)


@compiling.precise
@eqx.filter_jit
def _population_rollout(
    game: Game, policy: Policy, noise: Noise, key: PRNGKeyArray, num_agents: int
) -> PopulationTrajectory:
    k_reset, k_run = jax.random.split(key)
    agents0 = population_reset(game, k_reset, noise, num_agents)

    def one(agents, policy_carry, t):
        mu = empirical_mean_field(agents, game.n_states)
        obs = game.observation(mu, noise, t)
        policy_carry, probs = policy(policy_carry, obs, t)
        k_act, k_move = jax.random.split(jax.random.fold_in(k_run, t))
        actions = sample_actions(k_act, probs, agents)
        out = population_step(game, k_move, agents, actions, noise, t)
        return out.agents, policy_carry, (mu, obs, actions, out.rewards)

    ts = jnp.arange(game.horizon, dtype=jnp.int32)
    agents, (mus, obs, actions, rewards), _ = forward_scan(one, agents0, ts, policy.initial_carry())
    mu_last = empirical_mean_field(agents[-1], game.n_states)
    t_end = jnp.int32(game.horizon)
    return PopulationTrajectory(
        mu=jnp.concatenate([mus, mu_last[None]]),
        obs=jnp.concatenate([obs, game.observation(mu_last, noise, t_end)[None]]),
        agents=agents,
        actions=actions,
        rewards=rewards,
    )


def agent_returns(game: Game, traj: Trajectory, noise: Noise, key: PRNGKeyArray, num_agents: int) -> Float[Array, " N"]:
    """Discounted returns of ``num_agents`` (an integer >= 1) independent agents along a
    *fixed* exact mean-field path (one path, no leading axis), acting with ``traj.probs``.

    A Monte Carlo check of :func:`mfax.evaluation.policy_value`: the mean of the
    returns estimates ``sum_s mu_0(s) V_0(s)``.
    """
    check_agents(num_agents)
    return _agent_returns(game, traj, noise, key, num_agents)


@compiling.precise
@eqx.filter_jit
def _agent_returns(game: Game, traj: Trajectory, noise: Noise, key: PRNGKeyArray, num_agents: int):
    agents0 = population_reset(game, key, noise, num_agents)

    def body(carry, t):
        agents, total = carry
        mu, mu_next = traj.mu[t], traj.mu[t + 1]
        k_act, k_move = jax.random.split(jax.random.fold_in(key, t + 1))
        actions = sample_actions(k_act, traj.probs[t], agents)
        reward = reward_matrix(game, mu, mu_next, noise, t)[agents, actions]
        nxt = sample_transitions(k_move, game.kernel(mu, noise, t), agents, actions)
        return (nxt, total + game.gamma**t * reward), None

    zeros = jnp.zeros(num_agents, traj.mu.dtype)
    (_, total), _ = jax.lax.scan(body, (agents0, zeros), jnp.arange(game.horizon, dtype=jnp.int32))
    return total
