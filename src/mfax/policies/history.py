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
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from mfax.policies.base import Policy

# Two public observations are the same when they agree within this relative and absolute
# tolerance (paths with equal histories give equal observations up to rounding): one
# definition of a history node for the training's information partition, the evaluation's
# (``mfax.evaluation.same_history``) and the table policy's look-up below. The look-up
# once used 1e-5: paths 1e-6..1e-5 apart, two nodes to the solver, were one to the policy
# it was scored as, which played their average (every reported figure off, up to 17%).
OBS_RTOL = 1e-6
OBS_ATOL = 1e-6


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
    """

    table: Float[Array, "P T n m"]
    path_obs: Float[Array, "P T1 d"]
    weight: Float[Array, " P"]
    rtol: float = eqx.field(static=True, default=OBS_RTOL)
    atol: float = eqx.field(static=True, default=OBS_ATOL)

    def initial_carry(self) -> Bool[Array, " P"]:
        return jnp.ones(self.weight.shape, dtype=bool)

    def __call__(self, carry, obs, t):
        stored = self.path_obs[:, t]  # (P, d)
        scale = jnp.maximum(jnp.abs(stored), jnp.abs(obs)[None])
        close = jnp.all(jnp.abs(stored - obs[None]) <= self.atol + self.rtol * scale, axis=-1)
        mask = carry & close
        # an observation no stored path produced (another population): keep the last node
        mask = jnp.where(jnp.any(mask), mask, carry)
        w = jnp.where(mask, self.weight, 0.0)
        w = w / jnp.sum(w)
        return mask, jnp.einsum("p,pnm->nm", w.astype(self.table.dtype), self.table[:, t])
