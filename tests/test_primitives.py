"""The forward-scan and backward-induction primitives every pass is built on: their time
order, outputs and boundary values against plain loops, and the fixed point linking the
exact rollout to mass pushed along given kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import mfax
from conftest import random_policy_table
from mfax.dynamics import enumerate_noise, forward_scan, push_path, rollout_batch
from mfax.evaluation import backup, backward_scan
from mfax.games import dense_kernel
from mfax.games.base import Kernel
from mfax.policies import Tabular

T, N, M = 5, 4, 3


def _random_mdp(seed: int):
    """Time-dependent dense transition matrices ``(T, n, m, n)``, rewards ``(T, n, m)``
    and policies ``(T, n, m)``, in float64."""
    rng = np.random.default_rng(seed)
    kernels = rng.random((T, N, M, N))
    kernels /= kernels.sum(-1, keepdims=True)
    policies = rng.random((T, N, M))
    policies /= policies.sum(-1, keepdims=True)
    return kernels, rng.normal(size=(T, N, M)), policies


def _dense(kernel) -> Kernel:
    """A dense ``(n, m, n)`` matrix as a sparse kernel whose ``K`` entries are all states."""
    return dense_kernel(jnp.asarray(kernel))


def test_forward_scan_matches_a_loop_in_time_order():
    kernels, _, policies = _random_mdp(0)
    mu0 = np.full(N, 1.0 / N)
    expected = [mu0]
    for t in range(T):
        expected.append(np.einsum("s,sa,sak->k", expected[-1], policies[t], kernels[t]))
    expected = np.stack(expected)

    def step(mu, count, x):
        kernel, policy, t = x
        return jnp.einsum("s,sa,sak->k", mu, policy, kernel), count + t, jnp.sum(mu) * t

    with jax.enable_x64(True):
        xs = (jnp.asarray(kernels), jnp.asarray(policies), jnp.arange(T, dtype=jnp.float64))
        mus, outs, total = forward_scan(step, jnp.asarray(mu0), xs, jnp.float64(0.0))
        pushed = push_path(jnp.asarray(mu0), jnp.asarray(policies), _dense, jnp.asarray(kernels))
    assert mus.shape == pushed.shape == (T + 1, N) and outs.shape == (T,)
    np.testing.assert_allclose(np.asarray(mus), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(pushed), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(outs), np.arange(T) * expected[:-1].sum(-1), rtol=1e-12)
    assert float(total) == sum(range(T))


def test_backward_scan_matches_a_loop_in_time_order():
    kernels, rewards, policies = _random_mdp(1)
    gamma, v_last = 0.9, np.linspace(-1.0, 1.0, N)  # a terminal value that is not zero
    v, expected_q = v_last, [None] * T
    for t in reversed(range(T)):
        expected_q[t] = rewards[t] + gamma * kernels[t] @ v
        v = np.sum(policies[t] * expected_q[t], -1)

    def bellman(v_next, x):
        kernel, reward, _ = x
        return backup(reward, _dense(kernel), gamma, v_next)

    def combine(q, x):
        return jnp.sum(x[2] * q, -1)

    with jax.enable_x64(True):
        xs = (jnp.asarray(kernels), jnp.asarray(rewards), jnp.asarray(policies))
        v0, qs = backward_scan(bellman, combine, jnp.asarray(v_last), xs, emit_q=True)
        v0_alone = backward_scan(bellman, combine, jnp.asarray(v_last), xs)
    np.testing.assert_allclose(np.asarray(v0), v, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(qs), np.stack(expected_q), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(v0_alone), np.asarray(v0))


def test_agents_playing_the_population_policy_follow_the_population():
    """Mass pushed along the population's own kernels under the population's own policy
    (what fictitious play does with its best response) is the population's path."""
    with jax.enable_x64(True):
        game = mfax.make("beach_bar", num_states=11, horizon=6)
        batch = enumerate_noise(game)
        table = random_policy_table(jax.random.key(4), game)
        traj = rollout_batch(game, Tabular(table), batch.noise)
        ts = jnp.arange(game.horizon, dtype=jnp.int32)

        def along(mus, z):
            return push_path(mus[0], table, lambda x: game.kernel(x[0], z, x[1]), (mus[:-1], ts))

        nus = jax.vmap(along)(traj.mu, batch.noise)
    assert batch.num_paths > 1
    np.testing.assert_allclose(np.asarray(nus), np.asarray(traj.mu), rtol=0, atol=1e-14)
