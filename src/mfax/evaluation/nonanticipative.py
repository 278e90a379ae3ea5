"""Exact non-anticipative best response: a brute-force oracle for small finite games.

The information-consistent best response (:func:`mfax.evaluation.info_best_response_value`)
is the exact return of one deviation that sees the public history ``o_0..o_t`` and its
own *current* state (chosen with the population's state distribution as the evidence
its state gives). A real deviator also remembers its own past states and actions. Where
its own transitions depend on common noise that the public history hides (in ``sis``
the infection probability depends on the hidden transmission regime), that memory can
tell it more than the public record, and the information-consistent figure is then a
lower bound of what a non-anticipative deviator gains. This module computes that gain
exactly.

The deviator's information at decision time ``t`` is its public node (the paths ``j``
whose observations agree with the realised ones up to ``o_t``, grouped as in
:func:`mfax.evaluation.same_history`) and its own history ``s_0, a_0, .., s_t``. Its
belief over the paths of the node is

.. math::

    b_t(j) \\propto w_j\\, \\mu^j_0(s_0) \\prod_{k < t} P^j_k(s_{k+1} \\mid s_k, a_k),

the prior path probability ``w_j`` updated by Bayes' rule with its own transitions (the
population's mean-field path on each ``j`` is fixed by the population policy). The
value is found by backward induction over (public node, own history): at each node and
own state, the max over actions of the belief-weighted ``R^j_t(s, a) + gamma *
E^j[V_{t+1}]``. The recursion carries the unnormalised belief ``w_j mu_0^j(s_0) prod P``
(a sufficient statistic of the own history) and enumerates every own history, so its
cost grows like ``(n m C)^T`` (``C`` public children per node): use it on games with a
handful of states, actions and steps. It runs in numpy float64.

Rewards are not treated as extra observations: in every registered game the step reward
is a function of the public observations up to ``o_{t+1}`` and the agent's own state and
action, so observing it tells the deviator nothing new.

Deviation classes, each containing the previous one, so for every population policy
``information-consistent <= non-anticipative <= per-path`` (best-response returns):

* information-consistent: one policy of (public history, own current state);
* non-anticipative: policies of (public history, own state and action history);
* per path: policies of (whole noise path, own current state); the future is known.
"""

from __future__ import annotations

import numpy as np

from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import rollout_batch
from mfax.evaluation.values import same_history
from mfax.games.base import Game
from mfax.policies.base import Policy


def dense_kernels(game: Game, traj, noise) -> np.ndarray:
    """``(P, T, n, m, n)`` float64 transition matrices along each path's mean-field flow."""
    import jax
    import jax.numpy as jnp

    num_paths, n, m, horizon = traj.mu.shape[0], game.n_states, game.n_actions, game.horizon
    out = np.zeros((num_paths, horizon, n, m, n))
    s, a = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    for t in range(horizon):
        kernels = jax.vmap(lambda mu, z, t=t: game.kernel(mu, z, jnp.int32(t)).flat())(traj.mu[:, t], noise)
        index, prob = np.asarray(kernels.index), np.asarray(kernels.prob, dtype=np.float64)
        for p in range(num_paths):
            for k in range(index.shape[-1]):
                np.add.at(out[p, t], (s, a, index[p, :, :, k]), prob[p, :, :, k])
    return out


def public_nodes(obs) -> np.ndarray:
    """``(P, T+1)`` ints: the public node of each path at each ``t`` (the smallest index
    of a path with the same observation history), as the information-consistent best
    response groups them."""
    same = np.asarray(same_history(obs))  # (T+1, P, P)
    return np.argmax(same, axis=-1).T


def nonanticipative_return(
    kernels: np.ndarray,
    rewards: np.ndarray,
    mu0: np.ndarray,
    nodes: np.ndarray,
    weight: np.ndarray,
    gamma: float,
) -> float:
    """Best expected return ``E[sum_t gamma^t r_t]`` of a non-anticipative deviator.

    Args:
        kernels: ``(P, T, n, m, n)`` transition matrices ``P^j_t(s' | s, a)``.
        rewards: ``(P, T, n, m)`` reward matrices ``R^j_t``.
        mu0: ``(P, n)`` initial distributions (the deviator's ``s_0 ~ mu^j_0``).
        nodes: ``(P, T+1)`` public node labels (:func:`public_nodes`).
        weight: ``(P,)`` path probabilities.
        gamma: discount factor.
    """
    _, horizon, n, m, _ = kernels.shape
    kernels, rewards = np.asarray(kernels, np.float64), np.asarray(rewards, np.float64)
    nodes = np.asarray(nodes)

    def value(t: int, lik: np.ndarray, s: int) -> float:
        # unnormalised: (sum of lik) x (the deviator's optimal expected return from here)
        if t == horizon:
            return 0.0
        q = lik @ rewards[:, t, s, :]  # (m,)
        for a in range(m):
            for s_next in range(n):
                lik_next = lik * kernels[:, t, s, a, s_next]
                alive = lik_next > 0.0
                for node in np.unique(nodes[alive, t + 1]):
                    q[a] += gamma * value(t + 1, np.where(nodes[:, t + 1] == node, lik_next, 0.0), s_next)
        return float(q.max())

    total = 0.0
    for s in range(n):
        for node in np.unique(nodes[:, 0]):
            lik = np.where(nodes[:, 0] == node, np.asarray(weight, np.float64) * mu0[:, s], 0.0)
            if np.any(lik > 0.0):
                total += value(0, lik, s)
    return total


def nonanticipative_best_response_return(game: Game, policy: Policy, batch: NoiseBatch) -> float:
    """The non-anticipative best-response return against ``policy`` on the enumerated
    noise ``batch`` (the game's whole finite support): roll the population out exactly,
    then :func:`nonanticipative_return`. Run it under ``jax.enable_x64`` for float64
    mean-field flows."""
    if not batch.exact:
        raise ValueError("the non-anticipative oracle needs the enumerated noise support (exact noise)")
    traj = rollout_batch(game, policy, batch.noise)
    return nonanticipative_return(
        dense_kernels(game, traj, batch.noise),
        np.asarray(traj.rewards, np.float64),
        np.asarray(traj.mu[:, 0], np.float64),
        public_nodes(traj.obs),
        np.asarray(batch.weight, np.float64),
        game.gamma,
    )
