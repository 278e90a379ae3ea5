"""Exact values along fixed mean-field paths: policy value and best responses.

All functions take a batch of ``P`` exact trajectories (one per noise path, from
:func:`mfax.dynamics.rollout_batch`) and run one backward ``lax.scan`` over time:

.. math::

    Q_t(s, a) = R_t(s, a) + \\gamma \\sum_{s'} P_t(s'|s, a) V_{t+1}(s'), \\qquad V_T = 0

* policy value: ``V_t(s) = sum_a pi_t(a|s) Q_t(s, a)``;
* best response per path (the published definition: the deviator knows the realised
  noise path): ``V*_t(s) = max_a Q_t(s, a)``;
* information-consistent best response (finite noise): the deviator knows the public
  history ``o_0..o_t`` and its current state (not its past ones), so ``Q`` is first
  averaged over the paths sharing that history (weights: the path probabilities times
  the population's state distribution), then maximised; the deviation so chosen is
  scored on each path with that path's own kernels and rewards (:func:`info_deviation`).

The population's mean-field path is fixed (it is the population's, not the deviator's).
Every backward pass in the library is one :func:`backward_scan` (``Q_t`` from
``V_{t+1}`` by a Bellman step such as :func:`backup`, then ``V_t`` from ``Q_t`` by a
``combine``); :func:`backward_induction` feeds it the game's kernels and rewards along
the population's paths, the classical solvers and the macro oracle call it too.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mfax.dynamics.pushforward import Trajectory
from mfax.games.base import Game, Kernel, Noise, reward_matrix
from mfax.policies.history import OBS_ATOL, OBS_RTOL, history_nodes


def q_values(game: Game, mu, mu_next, noise: Noise, t, v_next, rewards=None) -> Float[Array, "n m"]:
    """``Q_t`` on one path given ``V_{t+1}`` (recomputes ``R_t`` unless given)."""
    kernel = game.kernel(mu, noise, t)
    if rewards is None:
        rewards = reward_matrix(game, mu, mu_next, noise, t)
    return backup(rewards, kernel, game.gamma, v_next)


def backup(
    rewards: Float[Array, "n m"], kernel: Kernel, gamma, v_next: Float[Array, "n ..."]
) -> Float[Array, "n m ..."]:
    """The one-step Bellman backup ``Q(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V(s')``
    (``v_next`` may stack several value functions on trailing axes: one ``Q`` each)."""
    expected = kernel.expect(v_next)
    return rewards.reshape(rewards.shape + (1,) * (expected.ndim - rewards.ndim)) + gamma * expected


def backward_scan(bellman, combine, v_last, xs, emit_q: bool | Callable = False):
    """The backward primitive: ``t = T-1..0`` over the leading axis of ``xs`` (one
    reverse ``lax.scan``).

    ``Q_t = bellman(V_{t+1}, x_t)``, ``V_t = combine(Q_t, x_t)`` from ``V_T = v_last``.
    Returns ``V_0``, and with ``emit_q`` also the stacked ``Q_0..Q_{T-1}`` (time-major;
    ``emit_q`` a function: the stacked ``emit_q(Q_t)``, the part of ``Q_t`` to keep).
    """

    def body(v_next, x):
        q = bellman(v_next, x)
        kept = (emit_q(q) if callable(emit_q) else q) if emit_q else None
        return combine(q, x), kept

    v0, qs = jax.lax.scan(body, v_last, xs, reverse=True)
    return (v0, qs) if emit_q else v0


Combine = Callable[[Float[Array, "P n m"], Array, dict], Float[Array, "P n"]]


def backward_induction(
    game: Game,
    traj: Trajectory,
    noise: Noise,
    combine: Combine,
    emit_q: bool | Callable = False,
    values: tuple[int, ...] = (),
) -> Float[Array, "P n"] | tuple[Float[Array, "P n"], Float[Array, "P T n m"]]:
    """Batched backward recursion along the population's paths (:func:`backward_scan`
    with :func:`q_values` mapped over paths); ``combine(Q, t, xs)`` turns ``Q_t`` into ``V_t``.

    ``traj`` and ``noise`` carry a leading path axis ``P``. Returns ``V_0`` ``(P, n)``,
    and with ``emit_q`` also every ``Q_t`` as ``(P, T, n, m)`` (``emit_q`` a function:
    what it keeps of each ``Q_t``). ``values``: trailing axes of ``V`` for several value
    functions recursed together along the same kernels (``Q`` gets them too).
    """
    num_paths, _, n = traj.mu.shape
    xs = {
        "t": jnp.arange(game.horizon, dtype=jnp.int32),
        "mu": jnp.swapaxes(traj.mu[:, :-1], 0, 1),
        "mu_next": jnp.swapaxes(traj.mu[:, 1:], 0, 1),
    }
    if traj.probs is not None:
        xs["probs"] = jnp.swapaxes(traj.probs, 0, 1)
    if traj.rewards is not None:
        xs["rewards"] = jnp.swapaxes(traj.rewards, 0, 1)

    def bellman(v_next, x):
        rewards = x.get("rewards")
        return jax.vmap(q_values, in_axes=(None, 0, 0, 0, None, 0, 0 if rewards is not None else None))(
            game, x["mu"], x["mu_next"], noise, x["t"], v_next, rewards
        )

    v_last = jnp.zeros((num_paths, n, *values), traj.mu.dtype)
    out = backward_scan(bellman, lambda q, x: combine(q, x["t"], x), v_last, xs, emit_q)
    return (out[0], jnp.swapaxes(out[1], 0, 1)) if emit_q else out


def policy_value(game: Game, traj: Trajectory, noise: Noise, emit_q: bool = False):
    """``V^pi_0`` on each path (and every ``Q^pi_t`` with ``emit_q``); needs ``traj.probs``."""
    if traj.probs is None:
        raise ValueError("policy_value needs a trajectory recorded with record=True")
    return backward_induction(game, traj, noise, lambda q, t, x: jnp.sum(x["probs"] * q, axis=-1), emit_q)


def best_response_value(game: Game, traj: Trajectory, noise: Noise) -> Float[Array, "P n"]:
    """``V*_0`` on each path, the deviator knowing the whole noise path (upper bound)."""
    return backward_induction(game, traj, noise, lambda q, t, x: jnp.max(q, axis=-1))


def policy_and_best_response_values(
    game: Game, traj: Trajectory, noise: Noise
) -> tuple[Float[Array, "P n"], Float[Array, "P T n m"], Float[Array, "P n"]]:
    """``V^pi_0``, every ``Q^pi_t`` and ``V*_0`` on each path: :func:`policy_value` (with
    ``emit_q``) and :func:`best_response_value` in one backward recursion, so each step's
    kernel is computed and read once for both value functions (stacked on a trailing axis)."""
    if traj.probs is None:
        raise ValueError("policy_and_best_response_values needs a trajectory recorded with record=True")
    v0, q = backward_induction(game, traj, noise, _policy_and_best(), emit_q=lambda q: q[..., 0], values=(2,))
    return v0[..., 0], q, v0[..., 1]


def same_history(obs: Float[Array, "P T1 d"], rtol: float = OBS_RTOL, atol: float = OBS_ATOL) -> Array:
    """``(T+1, P, P)`` booleans: paths ``i`` and ``j`` share ``o_0..o_t``.

    Observations are compared to a tolerance (paths with equal histories give equal
    observations up to rounding; :data:`~mfax.policies.history.OBS_RTOL`, the one the
    table policies' look-up uses), and the nodes are
    :func:`~mfax.policies.history.history_nodes`': a partition of the paths at each
    ``t`` (an equivalence, even where agreement within the tolerance is not transitive),
    refining over time as it must.
    """
    nodes = history_nodes(obs, rtol, atol)  # (T+1, P)
    return nodes[:, :, None] == nodes[:, None, :]


def info_share(obs: Float[Array, "P T1 d"], weight: Float[Array, " P"], horizon: int) -> Float[Array, "T P P"]:
    """Row-stochastic ``share[t, i, j]``: the weight of path ``j`` in the node of path ``i``
    at ``t`` (``w_j`` normalised over the paths sharing ``o_0..o_t`` with ``i``)."""
    same = same_history(obs)[:horizon].astype(weight.dtype) * weight[None, None, :]
    return same / jnp.sum(same, axis=-1, keepdims=True)


def info_average(share: Float[Array, "T P P"], x: Float[Array, "P T ..."]) -> Float[Array, "P T ..."]:
    """Average ``x`` over the paths of each history node: ``sum_j share[t, i, j] x[j, t]``."""
    return jnp.einsum("tij,jt...->it...", share.astype(x.dtype), x)


def maximisers(q: Float[Array, "... m"]) -> Array:
    """The actions whose ``q`` is the maximum up to a few ulps of the dtype (ties that
    rounding broke one way or the other), a boolean mask."""
    tol = 64 * jnp.finfo(q.dtype).eps
    top = jnp.max(q, axis=-1, keepdims=True)
    return q >= top - tol * (1.0 + jnp.abs(top))


def split_maximisers(q: Float[Array, "... m"]) -> Float[Array, "... m"]:
    """Uniform over the maximisers of ``q`` (:func:`maximisers`)."""
    near = maximisers(q).astype(q.dtype)
    return near / jnp.sum(near, axis=-1, keepdims=True)


def info_max(share: Float[Array, "T P P"]) -> Combine:
    """The information-consistent ``combine``: ``V_t = max_a sum_j share[t, i, j] Q^j_t``,
    the max taken after the expectation over what the deviator cannot tell apart."""

    def combine(q, t, x):
        return jnp.max(jnp.einsum("ij,jnm->inm", share[t].astype(q.dtype), q), axis=-1)

    return combine


def info_deviation(share: Float[Array, "T P P"]) -> Combine:
    """The information-consistent deviation's value on each path: at ``t``, in the node
    of path ``i`` and state ``s``, the actions that maximise the deviation's own ``Q``
    averaged over the node's paths ``j`` with weights ``share[t, i, j] mu^j_t(s)`` (ties
    split evenly), scored on each path with that path's ``Q``. The choice depends on the
    public history and the current state only: an agent can play it, so its return is a
    lower bound of the non-anticipative best response.

    The weights are the belief over the node's paths of an agent in ``s`` that has played
    the population's policy (``mu^j_t(s)``, the population's state distribution, is
    Bayes' likelihood of ``s``); a state no path of the node reaches keeps the prior
    ``share``. Where an agent's own states tell it nothing about the paths of its node
    (``Game.own_history_informative`` ``False``: the mean fields, kernels and initial
    distributions agree within a node), these weights are the prior, every deviation's
    belief, and the deviation is the best response. (Averaging with the prior alone, as
    :func:`info_max` does, is no agent's return elsewhere: it can exceed even the
    per-path figure.)"""

    def combine(q, t, x):
        chosen = split_maximisers(belief_mix(share[t].astype(q.dtype), x["mu"].astype(q.dtype), q))
        return jnp.sum(chosen * q, axis=-1)

    return combine


def belief(share_t: Float[Array, "P P"], mu_t: Float[Array, "P n"]) -> Float[Array, "P P n"]:
    """``[i, j, s]``: the weight of path ``j`` in the belief of an agent in state ``s`` on
    the node of path ``i`` at one date, ``share_t[i, j] mu^j_t(s)`` normalised over ``j``
    (the prior ``share_t[i, j]`` where no path of the node reaches ``s``); see
    :func:`info_deviation`."""
    joint = share_t[:, :, None] * mu_t[None]  # (i, j, s)
    total = jnp.sum(joint, axis=1, keepdims=True)
    return jnp.where(total > 0, joint / jnp.where(total > 0, total, 1.0), share_t[:, :, None])


def belief_average(
    share: Float[Array, "T P P"], mu: Float[Array, "P T1 n"], q: Float[Array, "P T n m"]
) -> Float[Array, "P T n m"]:
    """``q`` averaged over the paths of each node with the belief of an agent in each state
    (:func:`belief`): the ``Qbar*`` whose maximisers the information-consistent deviation
    plays (:func:`info_deviation`), what the exact solvers' best responses and soft
    targets read."""
    horizon = q.shape[1]
    if share.shape[-1] == 1:  # one path: its own values (belief_mix)
        return q
    mix = jax.vmap(belief_mix, in_axes=(0, 1, 1), out_axes=1)
    return mix(share.astype(q.dtype), mu[:, :horizon].astype(q.dtype), q)


def belief_mix(
    share_t: Float[Array, "P P"], mu_t: Float[Array, "P n"], q: Float[Array, "P n m"]
) -> Float[Array, "P n m"]:
    """``sum_j belief(share_t, mu_t)[i, j, s] q[j, s, m]`` at one date without forming the
    ``(P, P, n)`` weights of :func:`belief` (FP on a 401-state beach bar, 402 paths: they
    were 7.8 GB in float32). Within a node every row of ``share_t`` is the same,
    ``share_t[i, j] = share_t[j, j]``, so the belief of an agent in ``s`` is
    ``a_j(s) / sum_{k in node} a_k(s)`` with ``a_j(s) = share_t[j, j] mu_t[j, s]``; ``a`` is
    divided by its maximum over the node (the mass by its node maximum first) so that
    products with ``q`` do not underflow where the mass is tiny (float32 masses near 1e-37
    would give zeros), and one product of the node indicator with
    ``[a q, share_t[j, j] q, a]`` gives the weighted sum, the prior's sum (for states no
    path of the node reaches) and the normaliser. Memory ``O(P n m)``."""
    paths, m = share_t.shape[0], q.shape[-1]
    if paths == 1:  # the one path's own values, exactly (weights 1 or the prior's 1)
        return q
    member = share_t > 0
    # the first path of each path's node; a path whose node has no weight at all (its row
    # of share_t is 0/0) its own node, so that it touches no other path's
    node = jnp.where(jnp.any(member, axis=1), jnp.argmax(member, axis=1), jnp.arange(paths))

    def node_max(x):
        return jax.ops.segment_max(x, node, num_segments=paths)[node]

    def scaled(x):
        top = node_max(x)
        return jnp.where(top > 0, x / jnp.where(top > 0, top, 1.0), 0.0)

    prior = jnp.nan_to_num(jnp.diagonal(share_t))[:, None]  # (such a path's 0/0: no weight)
    mass = scaled(prior * scaled(mu_t))[..., None]
    stacked = jnp.concatenate([mass * q, prior[..., None] * q, mass], axis=-1)
    mixed = jnp.einsum("ij,jsk->isk", member.astype(q.dtype), stacked)
    weighted, prior_sum, total = mixed[..., :m], mixed[..., m : 2 * m], mixed[..., 2 * m :]
    return jnp.where(total > 0, weighted / jnp.where(total > 0, total, 1.0), prior_sum)


def info_best_response_value(
    game: Game, traj: Trajectory, noise: Noise, weight: Float[Array, " P"]
) -> Float[Array, "P n"]:
    """``V_0`` on each path of the information-consistent deviation (:func:`info_deviation`;
    exact for enumerated noise): at each ``t`` the deviation's Q-values are averaged over
    the paths with the same observation history (weighted by ``weight``,
    :func:`info_share`, and the population's state distribution) and their maximisers
    chosen; the value is that choice's on each path.
    """
    return backward_induction(game, traj, noise, info_deviation(info_share(traj.obs, weight, game.horizon)))


def policy_and_info_values(
    game: Game, traj: Trajectory, noise: Noise, share: Float[Array, "T P P"]
) -> tuple[Array, Array, Array, Float[Array, "P T n m 2"]]:
    """What an exact tabular step needs of its policy, in one backward recursion along
    the same kernels: ``(V^pi_0, V^info_0, V*_0, Q)``, the policy's values
    (:func:`policy_value`), the information-consistent deviation's true values
    (:func:`info_deviation` with ``share``), the per-path best response's
    (:func:`best_response_value`; with one path it is the information-consistent one and
    is not recursed twice), each ``(P, n)``, and ``Q`` stacking ``Q^pi_t`` and the
    deviation's ``Q_t`` on each path (before averaging over history nodes:
    :func:`belief_average` gives the ``Qbar*`` it chooses from) on a trailing axis. Each
    recursion step of a ``lax.scan`` has a fixed cost in XLA's CPU runtime that
    dominates small games, so one recursion instead of several is what makes them
    faster."""
    if traj.probs is None:
        raise ValueError("policy_and_info_values needs a trajectory recorded with record=True")
    per_path = traj.mu.shape[0] > 1
    if not per_path:  # one path: the deviation's value is the recursion's, the per-path best response
        v0, q = backward_induction(game, traj, noise, _policy_and_best(), emit_q=lambda q: q, values=(2,))
        return v0[..., 0], v0[..., 1], v0[..., 1], q
    deviation = info_deviation(share)

    def combine(q, t, x):
        v = [jnp.sum(x["probs"] * q[..., 0], axis=-1), deviation(q[..., 1], t, x)]
        return jnp.stack([*v, jnp.max(q[..., 2], axis=-1)], axis=-1)

    v0, q = backward_induction(game, traj, noise, combine, emit_q=lambda q: q[..., :2], values=(3,))
    return v0[..., 0], v0[..., 1], v0[..., 2], q


def _policy_and_best() -> Combine:
    """``[V^pi, max_a Q]`` from ``Q`` stacking ``Q^pi`` and the best response's."""

    def combine(q, t, x):
        return jnp.stack([jnp.sum(x["probs"] * q[..., 0], axis=-1), jnp.max(q[..., 1], axis=-1)], axis=-1)

    return combine


def path_return(traj: Trajectory, v: Float[Array, "P n"]) -> Float[Array, " P"]:
    """``sum_s mu_0(s) V_0(s)`` on each path: the expected value of an agent drawn from ``mu_0``."""
    return jnp.sum(traj.mu[:, 0] * v, axis=-1)
