"""Exact push-forward of the mean field: how the world moves without sampling.

.. math::

    \\mu_{t+1}(s') = \\sum_s \\sum_a \\mu_t(s)\\, \\pi_t(a|s)\\, P_t(s'|s, a)

computed from the sparse kernel ``(index, prob)`` of shape ``(n, m, K)``: ``O(n m K)``
work and memory per step and path (two-stage kernels: ``O(n m K + n_mid K2)``), never
an ``n x n`` operator unless asked for.

Every forward pass in the library is one :func:`forward_scan` over ``t = 0..T-1``:
:func:`rollout` / :func:`rollout_batch` (the policy is called on the way and the kernel
depends on ``mu_t``), the sampled :func:`~mfax.dynamics.population.population_rollout`,
and :func:`push_path` for mass pushed along kernels fixed in advance (agents against a
population's path in fictitious play, a population against a price path in the macro
oracle).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from mfax import compiling, params
from mfax.errors import GameError
from mfax.games.base import Game, Kernel, Noise, prefix_groups, reward_matrix
from mfax.policies.base import Policy
from mfax.tracing import count_trace

PushMethod = Literal["scatter", "dense"]


class Trajectory(NamedTuple):
    """One exact rollout along one noise path (add a leading path axis for batches).

    Attributes:
        mu: ``(T+1, n)`` mean fields ``mu_0..mu_T``.
        obs: ``(T+1, d)`` public observations ``o_0..o_T``.
        probs: ``(T, n, m)`` action probabilities ``pi_t`` (``None`` if not recorded).
        rewards: ``(T, n, m)`` reward matrices ``R_t`` (``None`` if not recorded).
    """

    mu: Float[Array, "T1 n"]
    obs: Float[Array, "T1 d"]
    probs: Float[Array, "T n m"] | None
    rewards: Float[Array, "T n m"] | None


def state_action_mass(mu: Float[Array, " n"], probs: Float[Array, "n m"], kernel: Kernel) -> Float[Array, "n m K"]:
    """Mass moving along each (first-stage) kernel edge: ``mu(s) pi(a|s) P(k|s,a)``."""
    return (mu[:, None] * probs)[..., None] * kernel.prob


def push_forward(
    mu: Float[Array, " n"],
    probs: Float[Array, "n m"],
    kernel: Kernel,
    method: PushMethod = "scatter",
) -> Float[Array, " n"]:
    """One exact step of the mean field.

    ``"scatter"`` adds each edge's mass at its target index (linear in the kernel's
    entries, the default); a two-stage kernel is pushed one stage at a time, through its
    intermediate states, touching ``n m K + n_mid K2`` entries instead of the flattened
    kernel's ``n m K K2``. ``"dense"`` forms the one-hot operator of the flattened kernel
    and uses a matrix product (``O(n^2 m K)``); ``bench/pushforward.py`` compares the
    two, and dense is kept only as a reference (measurements:
    ``bench/results/compiler_options.md``).
    """
    if method == "dense":
        flat = kernel.flat()
        mass = state_action_mass(mu, probs, flat).reshape(-1)
        return mass @ jax.nn.one_hot(flat.index.reshape(-1), mu.shape[0], dtype=mu.dtype)
    if method != "scatter":
        raise ValueError(f"unknown push-forward method {method!r}; allowed: scatter, dense")
    mass = state_action_mass(mu, probs, kernel)
    if kernel.then is None:
        return _add_first_stage(mu.shape[0], kernel.index, mass)
    mid = _add_first_stage(kernel.then.index.shape[0], kernel.index, mass)
    return _add_at(mu.shape[0], kernel.then.index, mid[:, None] * kernel.then.prob)


def push_forward_paths(
    mu: Float[Array, "P n"], probs: Float[Array, "P n m"], kernel: Kernel, method: PushMethod = "scatter"
) -> Float[Array, "P n"]:
    """:func:`push_forward` of a batch of paths (leading axis ``P`` on every argument,
    the kernel's arrays included), the same sums.

    ``"scatter"`` adds all paths' edges into one flat ``P n`` vector (each path's
    indices offset by its position) instead of mapping the scatter over paths, which
    XLA's CPU backend compiles to a scatter with ``(path, state)`` index pairs built
    element by element (measurement: ``bench/results/macro_speed.md``).

    With more than one device the paths may be split over them, and a scatter into one
    flat vector cannot be: XLA would gather every path's mass onto every device (the
    push-forward of all paths on each). The scatter is then mapped over paths, which
    partitions with them (``tests/test_sharding.py``)."""
    if method != "scatter" or jax.device_count() > 1:
        return jax.vmap(push_forward, in_axes=(0, 0, 0, None))(mu, probs, kernel, method)
    num_paths, n = mu.shape
    mass = (mu[:, :, None] * probs)[..., None] * kernel.prob

    def offset(index, size):
        return index + (jnp.arange(num_paths, dtype=index.dtype) * size).reshape((-1,) + (1,) * (index.ndim - 1))

    if kernel.then is None:
        return _add_first_stage(num_paths * n, offset(kernel.index, n), mass).reshape(num_paths, n)
    n_mid = kernel.then.index.shape[1]
    mid = _add_first_stage(num_paths * n_mid, offset(kernel.index, n_mid), mass).reshape(num_paths, n_mid)
    return _add_at(num_paths * n, offset(kernel.then.index, n), mid[..., None] * kernel.then.prob).reshape(num_paths, n)


def _add_first_stage(size: int, index, mass) -> Float[Array, " size"]:
    """:func:`_add_at` of a first kernel stage ``(..., n, m, K)``. A large stage with a
    few successors (``K <= 4``, ``n m >= 4096``; the same order on one path and on a
    batch) is added with the successors outermost, so that its indices are formed a whole
    ``(state, action)`` block at a time rather than along the short last axis element by
    element (macro's two wealth neighbours). On the small tabular games the transposed
    mass costs more than it saves (MFGLib's equilibrium price, ``K = 4``), so they keep
    the plain order. Measurements: bench/results/profiler_and_levers_2026-12-03.md."""
    n, m, successors = index.shape[-3:]
    if successors > 4 or n * m < 4096:
        return _add_at(size, index, mass)
    return _add_at(size, jnp.moveaxis(index, -1, 0), jnp.moveaxis(mass, -1, 0))


def _add_at(size: int, index, mass) -> Float[Array, " size"]:
    """A length-``size`` vector holding the sum of ``mass`` at each ``index`` (same shapes)."""
    return jnp.zeros(size, mass.dtype).at[index.reshape(-1)].add(mass.reshape(-1))


def step(game: Game, mu, probs, noise: Noise, t, method: PushMethod = "scatter"):
    """``mu_{t+1}`` from ``mu_t`` under ``pi_t`` along one noise path."""
    return push_forward(mu, probs, game.kernel(mu, noise, t), method)


def forward_scan(move, mu0, xs, carry=None):
    """The forward primitive: ``t = 0..T-1`` over the leading axis of ``xs`` (one ``lax.scan``).

    ``mu_{t+1}, carry_{t+1}, out_t = move(mu_t, carry_t, x_t)``. Returns the path
    ``mu_0..mu_T`` stacked on a new leading axis (``T+1``), the stacked ``out_t``
    (``T``) and the last carry. What is pushed is a distribution (a batch of them with
    a leading path axis, ``move``'s business) or a sampled population's agent states;
    it, the carry (e.g. a recurrent policy's) and the outputs are pytrees of arrays.
    """

    def body(state, x):
        mu_next, carry_next, out = move(*state, x)
        return (mu_next, carry_next), (state[0], out)

    (mu_last, carry_last), (mus, outs) = jax.lax.scan(body, (mu0, carry), xs)
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), mus, mu_last), outs, carry_last


def push_path(mu0: Float[Array, " n"], probs: Float[Array, "T n m"], kernel_at, xs) -> Float[Array, "T1 n"]:
    """``mu_0..mu_T`` of mass pushed along given kernels: ``mu_{t+1} =`` :func:`push_forward`
    ``(mu_t, probs[t], kernel_at(x_t))``. The kernels do not depend on the mass pushed
    (the population's flow is given, or the prices are): agents playing ``probs``
    against a population path, or a whole population against a price path."""

    def one(mu, carry, x):
        p, x = x
        return push_forward(mu, p, kernel_at(x)), carry, None

    return forward_scan(one, mu0, (probs, xs))[0]


def rollout(
    game: Game, policy: Policy, noise: Noise, *, record: bool = True, method: PushMethod = "scatter"
) -> Trajectory:
    """Exact rollout of ``policy`` for ``T`` steps along one noise path (one ``lax.scan``).

    With ``record=False`` only mean fields and observations are kept (``O(T n)`` memory
    instead of ``O(T n m)``). The mean-field path is under ``stop_gradient``: derivatives
    of the recorded ``probs`` with respect to policy parameters are those of one agent
    deviating against a fixed population. (The rollout of a batch of one path.)
    """
    one = jax.tree.map(lambda x: x[None], noise)
    return jax.tree.map(lambda x: x[0], _rollout_paths(game, policy, one, record, method))


class Prefix(eqx.Module):
    """Paths of a batch that share their start (:attr:`mfax.games.base.Game.shared_until`):
    path ``i`` starts as path ``reps[members[i]]`` until ``until``.

    Attributes:
        until: ``t_b`` (static): mean fields ``mu_0..mu_{t_b}``, observations and
            decisions of ``t < t_b`` are shared.
        reps: ``(G,)`` one path of each group (its index in the batch).
        members: ``(P,)`` the group of each path (an index into ``reps``).
    """

    until: int = eqx.field(static=True)
    reps: Array
    members: Array


@compiling.precise
@eqx.filter_jit
def rollout_batch(
    game: Game,
    policy: Policy,
    noise: Noise,
    *,
    record: bool = True,
    method: PushMethod = "scatter",
    prefix: Prefix | None = None,
) -> Trajectory:
    """:func:`rollout` over a batch of noise paths (leading axis ``P``), compiled once.

    One ``lax.scan`` over time steps all paths together: the game's functions are mapped
    over paths, the policy is called once per step for every path
    (:meth:`~mfax.policies.base.Policy.call_batch`), so a network's per-state head is a
    single ``(P n) x w`` matrix product per layer rather than ``P`` small ones.
    Mathematically identical to mapping :func:`rollout` over paths.

    With a ``prefix`` the steps ``t < prefix.until`` run on one path per group
    (``prefix.reps``) and the later ones on every path, started from its group's mean
    field and policy carry: the same trajectory (the same operations; a smaller batch
    may sum in another order, so float32 results can differ in the last places), with
    the shared start computed once (beach bar, exact noise: 51 instead of 102 paths for
    the first 15 of 30 steps). Its derivative adds the members' cotangents of the
    shared steps, as the shared computation should.
    """
    count_trace("rollout")
    if prefix is None or prefix.until <= 0:
        return _rollout_paths(game, policy, noise, record, method)
    return _rollout_split(game, policy, noise, record, method, prefix)


def _mover(game: Game, policy: Policy, noise: Noise, method: PushMethod, keep: int):
    """The forward step of a batch of paths for :func:`forward_scan`: observe, decide,
    push; it outputs the first ``keep`` of ``(obs, probs, rewards)`` (rewards computed
    only when kept)."""
    observe = jax.vmap(game.observation, in_axes=(0, 0, None))

    def one(mu, policy_carry, t):
        mu = jax.lax.stop_gradient(mu)  # the population path is given: gradients flow only through pi
        obs = observe(mu, noise, t)
        policy_carry, probs = policy.call_batch(policy_carry, obs, t)
        kernel = jax.vmap(lambda m, z: game.kernel(m, z, t))(mu, noise)
        mu_next = push_forward_paths(mu, probs, kernel, method)
        if keep < 3:
            return mu_next, policy_carry, (obs, probs)[:keep]
        rewards = jax.vmap(lambda m, m1, z: reward_matrix(game, m, m1, z, t))(mu, mu_next, noise)
        return mu_next, policy_carry, (obs, probs, rewards)

    return one


def _rollout_paths(game: Game, policy: Policy, noise: Noise, record: bool, method: PushMethod) -> Trajectory:
    observe = jax.vmap(game.observation, in_axes=(0, 0, None))
    one = _mover(game, policy, noise, method, 3 if record else 1)
    mu0 = jax.vmap(game.initial_mean_field)(noise)
    ts = jnp.arange(game.horizon, dtype=jnp.int32)
    mus, out, _ = forward_scan(one, mu0, ts, policy.initial_carry_batch(mu0.shape[0]))
    last_obs = observe(mus[-1], noise, jnp.int32(game.horizon))
    # time-major -> path-major, then the last mean field and observation joined on (so
    # that XLA writes the joined arrays in place instead of transposing a joined copy)
    head, obs, *recorded = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (mus[:-1], *out))
    mus = jnp.concatenate([head, mus[-1][:, None]], axis=1)
    obs = jnp.concatenate([obs, last_obs[:, None]], axis=1)
    probs, rewards = recorded if record else (None, None)
    return Trajectory(mus, obs, probs, rewards)


def _rollout_split(game: Game, policy: Policy, noise: Noise, record: bool, method: PushMethod, prefix: Prefix):
    """:func:`_rollout_paths` in two stages (:func:`rollout_batch` with a prefix); the
    rewards are computed after both, from the joined mean-field path (the reward of
    ``t_b - 1`` may read what the groups' members do not share)."""
    observe = jax.vmap(game.observation, in_axes=(0, 0, None))
    keep = 2 if record else 1  # obs (and probs); rewards after both stages
    until, horizon = prefix.until, game.horizon
    shared = jax.tree.map(lambda x: x[prefix.reps], noise)
    mu0 = jax.vmap(game.initial_mean_field)(shared)
    ts = jnp.arange(horizon, dtype=jnp.int32)
    carry0 = policy.initial_carry_batch(mu0.shape[0])
    mus_a, out_a, carry_a = forward_scan(_mover(game, policy, shared, method, keep), mu0, ts[:until], carry0)
    spread = jax.tree.map(lambda x: x[prefix.members], (mus_a[-1], carry_a))
    mus_b, out_b, _ = forward_scan(_mover(game, policy, noise, method, keep), spread[0], ts[until:], spread[1])
    last_obs = observe(mus_b[-1], noise, jnp.int32(horizon))
    # time-major -> path-major: the shared steps read through each path's group
    head = jax.tree.map(lambda x: jnp.swapaxes(x[:, prefix.members], 0, 1), (mus_a[:-1], *out_a))
    tail = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (mus_b, *out_b))
    mus, obs, *probs = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), head, tail)
    obs = jnp.concatenate([obs, last_obs[:, None]], axis=1)
    if not record:
        return Trajectory(mus, obs, None, None)
    (probs,) = probs
    rewards = jax.vmap(
        lambda t: jax.vmap(lambda m, m1, z: reward_matrix(game, m, m1, z, t))(mus[:, t], mus[:, t + 1], noise),
        out_axes=1,
    )(ts)
    return Trajectory(mus, obs, probs, rewards)


# The exact evaluation shares a start only where that spares at least this many
# state-steps: on a small game the second stage's compilation costs more of a first
# result than it ever saves (a 10-state beach bar spares 900, the published one 77,265;
# measured: bench/results/latency_checks_2026-12-04.md).
EVALUATION_MIN_SAVED = 1 << 14


def prefix_of(until: int, groups: Array, size: int) -> Prefix:
    """The :class:`Prefix` of a batch whose paths belong to ``groups`` (``(P,)`` ids; a
    traced array, e.g. the groups of the paths an iteration drew), with at most ``size``
    distinct groups: ``reps`` the first path of each (padding groups, when fewer are
    present, repeat path 0 and are never read)."""
    ids, members = jnp.unique(groups, size=size, fill_value=groups[0], return_inverse=True)
    reps = jnp.argmax(groups[None, :] == ids[:, None], axis=1).astype(jnp.int32)
    return Prefix(until, reps, members.reshape(-1).astype(jnp.int32))


def batch_prefix(game: Game, noise: Noise, min_saved: int = 0) -> Prefix | None:
    """The :class:`Prefix` of a host-side batch of paths where the game declares a
    shared start and some paths share it (``None`` otherwise), built on the host: the
    first path of each group represents it. ``min_saved``: also ``None`` when sharing
    spares fewer state-steps than this (paths not computed, times ``until``, times the
    states): the second rollout stage costs compile time that a small game never earns
    back (:data:`EVALUATION_MIN_SAVED`)."""
    until = game.shared_until
    if not params.is_integer_from(until, 0):
        raise GameError(f"game {game.name!r}: shared_until must be an integer >= 0, got {until!r}")
    if until == 0:
        return None
    paths = jax.tree.leaves(noise)[0].shape[0]
    if (paths - 1) * until * game.n_states < min_saved:  # (not even the groups' program)
        return None
    groups, count = prefix_groups(game, noise)
    if count == paths or (paths - count) * until * game.n_states < min_saved:
        return None
    reps = np.unique(groups, return_index=True)[1]  # groups are numbered by first appearance
    # device_put of int32 host arrays: no conversion program compiled (or read from the
    # cache) in every fresh process
    return Prefix(int(until), jax.device_put(reps.astype(np.int32)), jax.device_put(groups.astype(np.int32)))
