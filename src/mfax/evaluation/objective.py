"""The objective of a deviating policy against a fixed population, by plain autodiff.

.. math::

    J(\\pi) = \\sum_i w_i \\sum_s \\mu^i_0(s)\\, V^{i,\\pi}_0(s)

with the population's mean-field path and observations held fixed (stop-gradient): the
return of one agent switching to ``pi`` while everyone else keeps the population's
policy. Its gradient is the structural policy gradient
(:mod:`mfax.solvers.structural` computes the same gradient without autodiff through
the recursion); a learned best response maximises it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from mfax.dynamics.pushforward import Trajectory
from mfax.evaluation.values import policy_value
from mfax.games.base import Game, Noise
from mfax.policies.networks import NetworkPolicy


def objective(game: Game, policy: NetworkPolicy, traj: Trajectory, noise: Noise, weight) -> Array:
    """``J = sum_i w_i sum_s mu_0 V_0`` of ``policy`` played against the fixed population
    path ``traj`` (its observations feed the policy's memory): differentiable in
    ``policy`` by plain autodiff through the backward recursion."""
    probs = policy.sequence_probs(jax.lax.stop_gradient(traj.obs[:, :-1]))
    fixed = traj._replace(mu=jax.lax.stop_gradient(traj.mu), probs=probs)
    v0 = policy_value(game, fixed, noise)
    return jnp.sum(weight * jnp.sum(fixed.mu[:, 0] * v0, -1))
