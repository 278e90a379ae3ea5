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
  averaged, with the path probabilities, over the paths sharing that history, then
  maximised.

The population's mean-field path is fixed (it is the population's, not the deviator's).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mfax.dynamics.pushforward import Trajectory
from mfax.games.base import Game, Noise, reward_matrix


def q_values(game: Game, mu, mu_next, noise: Noise, t, v_next, rewards=None) -> Float[Array, "n m"]:
    """``Q_t`` on one path given ``V_{t+1}`` (recomputes ``R_t`` unless given)."""
    kernel = game.kernel(mu, noise, t)
    if rewards is None:
        rewards = reward_matrix(game, mu, mu_next, noise, t)
    return rewards + game.gamma * kernel.expect(v_next)


Combine = Callable[[Float[Array, "P n m"], Array, dict], Float[Array, "P n"]]


def backward_induction(
    game: Game, traj: Trajectory, noise: Noise, combine: Combine, emit_q: bool = False
) -> Float[Array, "P n"] | tuple[Float[Array, "P n"], Float[Array, "P T n m"]]:
    """Generic batched backward recursion; ``combine(Q, t, xs)`` turns ``Q_t`` into ``V_t``.

    ``traj`` and ``noise`` carry a leading path axis ``P``. Returns ``V_0`` ``(P, n)``,
    and with ``emit_q`` also every ``Q_t`` as ``(P, T, n, m)``.
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

    def body(v_next, x):
        rewards = x.get("rewards")
        q = jax.vmap(q_values, in_axes=(None, 0, 0, 0, None, 0, 0 if rewards is not None else None))(
            game, x["mu"], x["mu_next"], noise, x["t"], v_next, rewards
        )
        v = combine(q, x["t"], x)
        return v, q if emit_q else None

    v0, qs = jax.lax.scan(body, jnp.zeros((num_paths, n), traj.mu.dtype), xs, reverse=True)
    return (v0, jnp.swapaxes(qs, 0, 1)) if emit_q else v0


def policy_value(game: Game, traj: Trajectory, noise: Noise, emit_q: bool = False):
    """``V^pi_0`` on each path (and every ``Q^pi_t`` with ``emit_q``); needs ``traj.probs``."""
    if traj.probs is None:
        raise ValueError("policy_value needs a trajectory recorded with record=True")
    return backward_induction(game, traj, noise, lambda q, t, x: jnp.sum(x["probs"] * q, axis=-1), emit_q)


def best_response_value(game: Game, traj: Trajectory, noise: Noise) -> Float[Array, "P n"]:
    """``V*_0`` on each path, the deviator knowing the whole noise path (upper bound)."""
    return backward_induction(game, traj, noise, lambda q, t, x: jnp.max(q, axis=-1))


def same_history(obs: Float[Array, "P T1 d"], rtol: float = 1e-6, atol: float = 1e-6) -> Array:
    """``(T+1, P, P)`` booleans: paths ``i`` and ``j`` share ``o_0..o_t``.

    Observations are compared to a tolerance (paths with equal histories give equal
    observations up to rounding); the relation is cumulative in ``t``, so the
    information partition refines over time as it must.
    """
    a, b = obs[:, None], obs[None, :]
    close = jnp.all(jnp.abs(a - b) <= atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)), axis=-1)  # (P, P, T1)
    return jnp.moveaxis(jnp.cumprod(close, axis=-1).astype(bool), -1, 0)


def info_best_response_value(
    game: Game, traj: Trajectory, noise: Noise, weight: Float[Array, " P"]
) -> Float[Array, "P n"]:
    """``V*_0`` of a deviator who sees only public history (exact for enumerated noise).

    At each ``t`` the Q-values are averaged over the paths with the same observation
    history (weighted by ``weight``) before the max over actions: the max is taken after
    the expectation over what the deviator cannot tell apart.
    """
    same = same_history(traj.obs)[: game.horizon]  # (T, P, P)

    def combine(q, t, x):
        share = same[t] * weight[None, :]
        share = share / jnp.sum(share, axis=1, keepdims=True)
        q_info = jnp.einsum("ij,jnm->inm", share.astype(q.dtype), q)
        return jnp.max(q_info, axis=-1)

    return backward_induction(game, traj, noise, combine)
