"""Sampled-population environments shared by the model-free solvers (IPPO, RIPPO, M-OMD).

``E`` parallel populations of ``N`` agents each run the game's own kernel
(:mod:`mfax.dynamics.population`); every population has its own common-noise path drawn
with ``game.sample_noise`` and its mean field is the empirical histogram of its agents.
Every agent sees its own state and the public observation of *its* population.

The agent policy of every model-free solver here is a mean-field
:class:`~mfax.policies.networks.NetworkPolicy`: agent ``i`` in state ``s_i`` acts with
row ``s_i`` of the network's output for the public observation (history), so the policy
scored exactly is the very module the agents act with. :func:`agent_head` evaluates the
same network on the agents' rows only (cheaper than all ``n`` rows when ``N < n``).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from mfax.dynamics.population import population_rollout
from mfax.games.base import Game, check
from mfax.params import param
from mfax.policies.base import Policy
from mfax.policies.heads import head_log_probs, per_state_mlp
from mfax.policies.networks import NetworkPolicy


class SampledParams(eqx.Module):
    """Hyper-parameters of every solver that learns from sampled populations (``--hp``)."""

    num_envs: int = param(16, "parallel sampled populations per iteration, each with its own noise path")
    num_agents: int = param(8, "agents per population (published sweep: 8, 128, 1024; the macro game defaults to 128)")
    updates: int = param(50, "gradient steps per iteration (published sweep: 50, 100, 200)")

    def __check_init__(self):
        for name in ("num_envs", "num_agents", "updates"):
            check(getattr(self, name) >= 1, f"hyper-parameter {name} must be >= 1, got {getattr(self, name)}")


class Rollout(NamedTuple):
    """Episodes of ``E`` sampled populations of ``N`` agents.

    Attributes:
        obs: ``(E, T+1, d)`` public observations of each population's empirical mean field.
        agents: ``(E, T+1, N)`` agent states.
        actions: ``(E, T, N)`` actions.
        rewards: ``(E, T, N)`` rewards ``R_t(s_i, a_i)``.
    """

    obs: Float[Array, "E T1 d"]
    agents: Int[Array, "E T1 N"]
    actions: Int[Array, "E T N"]
    rewards: Float[Array, "E T N"]


def collect(game: Game, policy: Policy, key: PRNGKeyArray, num_envs: int, num_agents: int) -> Rollout:
    """One episode in each of ``num_envs`` populations, each with its own noise path."""
    k_noise, k_run = jax.random.split(key)
    noise = jax.vmap(game.sample_noise)(jax.random.split(k_noise, num_envs))
    traj = jax.vmap(lambda z, k: population_rollout(game, policy, z, k, num_agents))(
        noise, jax.random.split(k_run, num_envs)
    )
    return Rollout(traj.obs, traj.agents, traj.actions, traj.rewards)


def discounted_returns(rewards: Float[Array, "*b T N"], gamma: float) -> Float[Array, "*b N"]:
    """``sum_t gamma^t r_t`` of every agent."""
    discount = gamma ** jnp.arange(rewards.shape[-2], dtype=rewards.dtype)
    return jnp.einsum("...tn,t->...n", rewards, discount)


def update_scale(scale: Array, iteration: Array, rewards: Float[Array, "*b T N"], gamma: float) -> Array:
    """The fixed scale of value / Q targets: set once, at iteration 0, to the std of that
    iteration's sampled discounted returns (the initial policy's), floored at 1e-3; kept
    afterwards. Keeps network outputs O(1) whatever the game's reward units, without a
    drifting normaliser and without a separate compiled rollout."""
    first = jnp.maximum(jnp.std(discounted_returns(rewards, gamma)), 1e-3)
    return jnp.where(iteration == 0, first, scale)


def agent_head(net: NetworkPolicy, g: Float[Array, "*b gd"], states: Int[Array, "*b N"]) -> Float[Array, "*b N k"]:
    """Raw outputs of ``net``'s per-state head (before the head's distribution) at the
    agents' states.

    ``g`` are aggregate embeddings (``net.aggregate_sequence`` or ``net._encode``); the result
    equals ``net``'s full ``(n, k)`` head gathered at ``states`` (computed on the rows that
    are needed when ``N < n``, on all rows and gathered otherwise), through the same
    :func:`~mfax.policies.heads.per_state_mlp`.
    """
    table = net.state_table()
    a = g @ net.aggregate_proj.weight.T + net.aggregate_proj.bias  # (*b, w)
    few = states.shape[-1] < table.shape[0]
    pre = (table[states] if few else table) + a[..., None, :]  # (*b, N or n, w)
    y = per_state_mlp(pre, net.hidden, net.out)
    return y if few else jnp.take_along_axis(y, states[..., None], axis=-2)


def agent_log_probs(net: NetworkPolicy, g: Float[Array, "*b gd"], states: Int[Array, "*b N"]) -> Float[Array, "*b N m"]:
    """Log action probabilities of agents in ``states``: the log of ``net``'s rows, through
    the head's one definition (:func:`~mfax.policies.heads.head_log_probs`), so they are
    the log-probabilities of the distribution the agents are sampled from."""
    return head_log_probs(net.head, agent_head(net, g, states), net.game.action_values())


def env_minibatches(key: PRNGKeyArray, num_envs: int, minibatches: int) -> Int[Array, "M E_mb"]:
    """A random split of the population indices into ``minibatches`` equal groups (whole
    sequences stay together, as a recurrent policy needs)."""
    return jax.random.permutation(key, num_envs).reshape(minibatches, num_envs // minibatches)
