"""Tabular policies on the tree of public-observation histories (finite common noise).

When the common noise has a finite support of ``P`` paths, a policy that may depend on
the public history ``o_0..o_t`` is a table over (history node, t, s, a). It is stored
per path, ``table[i, t]`` being the action probabilities at the node that path ``i``
reaches at ``t``, so it must be equal on paths that share ``o_0..o_t``. Inside a rollout
the policy sees observations only: it finds its node by matching the history seen so
far against the stored observations of every path (the carry is the mask of support
paths still consistent), and plays the path-weighted average of the table over that
set. On its own rollout, where the set is exactly the node's paths, this is the table.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from mfax.errors import GameError
from mfax.policies.base import Policy

# Two public observations are the same when they agree within this relative and absolute
# tolerance (paths with equal histories give equal observations up to rounding): one
# definition of a history node for the training's information partition, the evaluation's
# (``mfax.evaluation.same_history``) and the table policy's look-up below. The look-up
# once used 1e-5: paths 1e-6..1e-5 apart, two nodes to the solver, were one to the policy
# it was scored as, which played their average (every reported figure off, up to 17%).
OBS_RTOL = 1e-6
OBS_ATOL = 1e-6


def _agree(a: Array, b: Array, rtol: float, atol: float) -> Array:
    """Whether observations ``a`` and ``b`` (``(..., d)``) agree within the tolerance; a
    non-finite entry agrees with nothing (an infinite one made the bound infinite, and
    agreed with every finite observation)."""
    close = jnp.abs(a - b) <= atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b))
    return jnp.all(close & jnp.isfinite(a) & jnp.isfinite(b), axis=-1)


def history_nodes(obs: Float[Array, "P T1 d"], rtol: float = OBS_RTOL, atol: float = OBS_ATOL) -> Int[Array, "T1 P"]:
    """The public-history node of each path at each ``t``, as a label: path ``i`` is
    labelled, at ``t``, by the first path ``j`` (in the support's order) of its own node
    at ``t - 1`` whose observation at ``t`` agrees with its own within the tolerance
    (itself at the latest; every path is one node before ``t = 0``), and two paths share
    a node exactly when their labels are equal: a partition of the paths that refines
    with ``t``. The labelling path need not be in the node it labels (observations 0,
    0.9e-6, 1.8e-6: labels 0, 0, 1, nodes {0, 1} and {2}). Agreement within a tolerance
    is not transitive (there: neighbours agree, the outer two do not); taken pairwise,
    path 1 would have shared a node with 0 and with 2 while 0 and 2 had none, and the
    information-consistent figure computed on such overlapping sets exceeded the
    non-anticipative one. Where agreement is transitive (equal histories giving equal
    observations up to rounding: every game's own paths), the nodes are the groups of
    paths whose observations agree at every ``t' <= t``. A path whose observation is not
    finite agrees with no other path (the evaluation refuses such a rollout)."""
    num_paths = obs.shape[0]
    if num_paths == 1:
        return jnp.zeros((obs.shape[1], 1), jnp.int32)

    def step(before, o):  # (P,) labels at t - 1, (P, d) observations at t
        # (a path agrees with itself even where its observation is NaN: its own node)
        agree = _agree(o[:, None], o[None, :], rtol, atol) | jnp.eye(num_paths, dtype=bool)
        joins = agree & (before[:, None] == before[None, :])
        label = jnp.argmax(joins, axis=-1).astype(jnp.int32)  # the first such path (itself at the latest)
        return label, label

    _, labels = jax.lax.scan(step, jnp.zeros(num_paths, jnp.int32), jnp.moveaxis(obs, 1, 0))
    return labels


class HistoryTabular(Policy):
    """``pi(a | o_0..o_t, s)`` from a per-path table (see module docstring).

    Attributes:
        table: ``(P, T, n, m)`` action probabilities per support path, equal on paths
            sharing the same public history.
        path_obs: ``(P, T+1, d)`` the public observations of each path when the whole
            population plays this policy (they identify the node).
        weight: ``(P,)`` path probabilities, used to average within a node.
        rtol, atol: tolerance when comparing an observation with a stored one
            (:data:`OBS_RTOL`, :data:`OBS_ATOL`: the nodes the solvers and the
            evaluation see).
        nodes: ``(T+1, P)`` the stored paths' nodes, :func:`history_nodes` of
            ``path_obs`` (``None``: computed at each call from ``path_obs``, which
            costs ``T P^2`` a step).
    """

    table: Float[Array, "P T n m"]
    path_obs: Float[Array, "P T1 d"]
    weight: Float[Array, " P"]
    rtol: float = eqx.field(static=True, default=OBS_RTOL)
    atol: float = eqx.field(static=True, default=OBS_ATOL)
    nodes: Int[Array, "T1 P"] | None = None

    def __check_init__(self):
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (self.rtol, self.atol)):
            raise GameError(
                f"HistoryTabular rtol and atol must be numbers, got {type(self.rtol).__name__} and "
                f"{type(self.atol).__name__} (give the stored nodes as nodes=...)"
            )
        expected = (self.path_obs.shape[1], self.path_obs.shape[0])
        if self.nodes is not None and tuple(self.nodes.shape) != expected:
            raise GameError(
                f"HistoryTabular nodes have shape {tuple(self.nodes.shape)}; (T+1, P) = {expected} expected "
                "(history_nodes of path_obs)"
            )

    def initial_carry(self) -> Bool[Array, " P"]:
        return jnp.ones(self.weight.shape, dtype=bool)

    def __call__(self, carry, obs, t):
        nodes = history_nodes(self.path_obs, self.rtol, self.atol) if self.nodes is None else self.nodes
        # the node an observation continues: :func:`history_nodes`' rule, the first path of
        # the node so far whose observation agrees (on a stored path's own observations, its node)
        agree = carry & _agree(self.path_obs[:, t], obs[None], self.rtol, self.atol)
        first = jnp.argmax(agree)
        mask = carry & (nodes[t] == first)
        # (an observation between stored ones whose first match is no node's first path: that path's node)
        mask = jnp.where(jnp.any(mask), mask, carry & (nodes[t] == nodes[t, first]))
        # an observation no stored path produced (another population): keep the last node
        mask = jnp.where(jnp.any(agree), mask, carry)
        w = jnp.where(mask, self.weight, 0.0)
        w = w / jnp.sum(w)
        return mask, jnp.einsum("p,pnm->nm", w.astype(self.table.dtype), self.table[:, t])
