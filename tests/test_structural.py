"""Structural policy gradient (SPG / RSPG): the gradient itself and short training runs."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import slow
from mfax.dynamics import enumerate_noise, rollout_batch, sample_noise
from mfax.errors import GameError
from mfax.evaluation.objective import objective
from mfax.policies.networks import NetworkPolicy
from mfax.solvers.optim import split_trainable as split_policy
from mfax.solvers.structural import structural_gradient

SMALL_NET = dict(obs_embed=8, gru_hidden=8, state_embed=4, aggregate_embed=4, mlp_width=8)


def _tiny(recurrent, name="beach_bar", **params):
    game = mfax.make(name, **({"num_states": 15, "horizon": 6} if name == "beach_bar" else {}) | params)
    head = "beta" if name == "macro" else "discrete"
    state_input = "features" if name == "macro" else "embedding"
    policy = NetworkPolicy(
        game, jax.random.PRNGKey(0), recurrent=recurrent, head=head, state_input=state_input, **SMALL_NET
    )
    return game, policy


def _dot(a, b):
    return sum(float(jnp.sum(x * y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.parametrize(
    ("name", "recurrent", "autodiff"),
    [
        pytest.param("beach_bar", False, False, id="beach_bar-spg"),
        slow("beach_bar", False, True, id="beach_bar-spg-autodiff"),
        slow("macro", False, True, id="macro-spg"),
        slow("beach_bar", True, True, id="beach_bar-rspg"),
        slow("macro", True, True, id="macro-rspg"),
    ],
)
def test_structural_gradient_equals_finite_differences_of_exact_objective(recurrent, name, autodiff):
    """d/dtheta of J = sum_i w_i mu0 V0 with the population path held fixed, against
    central differences along random directions (float64); and (``autodiff``, a third
    compiled program: the slow tier) against JAX's gradient of that objective."""
    with jax.enable_x64(True):
        extra = {"num_wealth": 8, "num_income": 2, "horizon": 5, "num_actions": 4} if name == "macro" else {}
        game, policy = _tiny(recurrent, name, **extra)
        noise = enumerate_noise(game) if name == "beach_bar" else sample_noise(game, jax.random.PRNGKey(3), 3)
        params, static = split_policy(policy)
        grads, ret, _ = jax.jit(structural_gradient, static_argnums=(0, 2))(
            game, params, static, noise.noise, noise.weight
        )
        traj = rollout_batch(game, policy, noise.noise)

        @jax.jit
        def loss(p):
            return -objective(game, eqx.combine(p, static), traj, noise.noise, noise.weight)

        assert float(loss(params)) == pytest.approx(-float(ret), rel=1e-12)
        if autodiff:
            by_jax = jax.grad(loss)(params)
            for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(by_jax), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        eps = 1e-6
        for k in range(3):
            leaves, treedef = jax.tree.flatten(params)
            keys = jax.random.split(jax.random.PRNGKey(10 + k), len(leaves))
            direction = treedef.unflatten([jax.random.normal(kk, x.shape) for kk, x in zip(keys, leaves, strict=True)])
            plus = loss(jax.tree.map(lambda p, d: p + eps * d, params, direction))
            minus = loss(jax.tree.map(lambda p, d: p - eps * d, params, direction))
            fd = float(plus - minus) / (2 * eps)
            assert _dot(grads, direction) == pytest.approx(fd, rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_exact_and_sampled_noise_objectives_agree_in_expectation():
    """J and its gradient with enumerated noise vs the mean over 3000 sampled paths."""
    game, policy = _tiny(True)
    params, static = split_policy(policy)
    exact = enumerate_noise(game)
    g_exact, j_exact, _ = structural_gradient(game, params, static, exact.noise, exact.weight)
    sampled = sample_noise(game, jax.random.PRNGKey(0), 3000)
    traj = rollout_batch(game, policy, sampled.noise)
    from mfax.evaluation import policy_value

    per_path = np.asarray(jnp.sum(traj.mu[:, 0] * policy_value(game, traj, sampled.noise), -1), dtype=np.float64)
    stderr = per_path.std() / np.sqrt(per_path.size)
    assert abs(per_path.mean() - float(j_exact)) <= 4 * stderr
    g_sampled, _, _ = structural_gradient(game, params, static, sampled.noise, sampled.weight)
    a, b = (
        np.concatenate([x.ravel() for x in jax.tree.leaves(g_exact)]),
        np.concatenate([x.ravel() for x in jax.tree.leaves(g_sampled)]),
    )
    cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cosine > 0.98, cosine


@pytest.mark.slow
def test_sampled_draws_on_small_support_are_the_same_estimator():
    """Counts over the support == the explicit batch of drawn paths (same picks)."""
    from mfax.dynamics.noise import draw_noise, small_support

    game, policy = _tiny(True)
    params, static = split_policy(policy)
    support = small_support(game, 64)
    assert support is not None and support.weight.shape[0] == 9 * 2  # bar locations 3..11 x open/closed
    key = jax.random.PRNGKey(4)
    noise, weight = draw_noise(game, key, 64, None, support)
    assert float(weight.sum()) == pytest.approx(1.0) and np.allclose(np.asarray(weight) * 64 % 1, 0, atol=1e-5)
    picks = jax.random.choice(key, support.weight.shape[0], (64,), p=support.weight)
    explicit = jax.tree.map(lambda x: x[picks], support.noise)
    g_counts, r_counts, _ = structural_gradient(game, params, static, noise, weight)
    g_paths, r_paths, _ = structural_gradient(game, params, static, explicit, jnp.full(64, 1 / 64))
    assert float(r_counts) == pytest.approx(float(r_paths), rel=1e-5)
    for a, b in zip(jax.tree.leaves(g_counts), jax.tree.leaves(g_paths), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_packed_draws_give_the_same_gradient_as_the_whole_support():
    """Only the drawn paths are computed (packed into a capacity), and an overflowing
    draw falls back to the whole support: the gradient is the same either way."""
    from mfax.dynamics.noise import compact_draws, draw_noise, drawn_capacity, small_support

    game, policy = _tiny(False)  # the packing is the same for SPG and RSPG (RSPG: the slow train-step test)
    params, static = split_policy(policy)
    support = small_support(game, 24)  # 18 paths
    capacity = drawn_capacity(support, 24, sds=1.0)
    assert 0 < capacity < support.weight.shape[0]
    for multiple in (2, 4, 7):  # a whole number of paths per device, never above the support
        rounded = drawn_capacity(support, 24, sds=1.0, multiple=multiple)
        assert rounded == min(-(-capacity // multiple) * multiple, support.weight.shape[0])
    noise, weight = draw_noise(game, jax.random.PRNGKey(5), 24, None, support)
    assert int(jnp.sum(weight > 0)) <= capacity
    (packed, packed_weight), overflow = compact_draws(noise, weight, capacity)
    assert not bool(overflow) and float(packed_weight.sum()) == pytest.approx(1.0)
    gradient = jax.jit(structural_gradient, static_argnums=(0, 2))
    g_full, r_full, e_full = gradient(game, params, static, noise, weight)
    g_packed, r_packed, e_packed = gradient(game, params, static, packed, packed_weight)
    assert float(r_packed) == pytest.approx(float(r_full), rel=1e-5)
    assert float(e_packed) == pytest.approx(float(e_full), rel=1e-5)
    for a, b in zip(jax.tree.leaves(g_full), jax.tree.leaves(g_packed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # a draw with more distinct paths than slots reports the overflow
    (_, _), overflow = compact_draws(noise, weight, int(jnp.sum(weight > 0)) - 1)
    assert bool(overflow)


@pytest.mark.slow
def test_train_step_with_packing_equals_train_step_without():
    from mfax.dynamics.noise import drawn_capacity, small_support
    from mfax.solvers.optim import optimizer
    from mfax.solvers.structural import StructuralParams, StructuralSolver, TrainState

    game, policy = _tiny(True)
    params, static = split_policy(policy)
    support = small_support(game, 24)
    hp = StructuralParams(**SMALL_NET)
    state = TrainState(params, optimizer(hp).init(params), jnp.int32(0), jax.random.PRNGKey(2), jnp.asarray(1e-2))

    def solver(capacity):
        return StructuralSolver(game, static, hp, True, 10, 24, None, support, capacity, None)

    for capacity in (drawn_capacity(support, 24, sds=1.0), 2):  # 2 slots: always overflows -> whole support
        a, ma = solver(None).step(state)
        b, mb = solver(capacity).step(state)
        assert float(mb.policy_return) == pytest.approx(float(ma.policy_return), rel=1e-5)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_written_out_head_derivative_equals_autodiff():
    """mlp_head's hand-written VJP against plain autodiff of the same expression."""
    from mfax.policies.networks import mlp_head

    keys = jax.random.split(jax.random.PRNGKey(5), 7)
    n, width, k, batch = 7, 16, 5, 3
    args = (
        jax.random.normal(keys[0], (n, width)),
        jax.random.normal(keys[1], (batch, width)),
        jax.random.normal(keys[2], (width, width)) / 4,
        jax.random.normal(keys[3], (width,)),
        jax.random.normal(keys[4], (k, width)) / 4,
        jax.random.normal(keys[5], (k,)),
    )

    def plain(table, a, hidden_w, hidden_b, out_w, out_b):
        x = jax.nn.relu(table + a[:, None, :]).reshape(-1, width)
        return jax.nn.relu(x @ hidden_w.T + hidden_b) @ out_w.T + out_b

    cotangent = jax.random.normal(keys[6], (batch * n, k))
    y, vjp = jax.vjp(mlp_head, *args)
    y_ref, vjp_ref = jax.vjp(plain, *args)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6)
    for got, want in zip(vjp(cotangent), vjp_ref(cotangent), strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_shared_noise_prefix_gives_the_same_trajectory_gradient_and_step():
    """Beach bar's two closure outcomes of a bar share their start (``shared_until``
    ``T//2``): computing it once per bar gives the same trajectory (to float32 rounding:
    a smaller batch may sum in another order), the same exact gradient, and the same
    training step (the slow test below)."""
    from mfax.dynamics.noise import enumerate_noise
    from mfax.dynamics.pushforward import prefix_of, rollout_batch
    from mfax.games.base import prefix_groups

    game, policy = _tiny(False)  # SPG; RSPG's carry through the split: the slow test below
    assert game.shared_until == 3
    batch = enumerate_noise(game)  # 9 bars x 2 outcomes
    groups, count = prefix_groups(game, batch.noise)
    np.testing.assert_array_equal(groups, np.repeat(np.arange(9), 2))
    prefix = prefix_of(game.shared_until, jnp.asarray(groups), count)
    whole, split = rollout_batch(game, policy, batch.noise), rollout_batch(game, policy, batch.noise, prefix=prefix)
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    params, static = split_policy(policy)
    gradient = jax.jit(structural_gradient, static_argnums=(0, 2))
    g_whole, r_whole, e_whole = gradient(game, params, static, batch.noise, batch.weight)
    g_split, r_split, e_split = gradient(game, params, static, batch.noise, batch.weight, prefix)
    assert (float(r_split), float(e_split)) == pytest.approx((float(r_whole), float(e_whole)), rel=1e-5)
    for a, b in zip(jax.tree.leaves(g_whole), jax.tree.leaves(g_split), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_shared_noise_prefix_gives_the_same_step_with_packed_draws():
    """The training step with packed draws, the groups of the drawn paths found in the
    step, equals the step that computes every drawn path in full."""
    from mfax.dynamics.noise import drawn_capacity, small_support
    from mfax.dynamics.pushforward import batch_prefix
    from mfax.solvers.optim import optimizer
    from mfax.solvers.structural import StructuralParams, StructuralSolver, TrainState

    game, policy = _tiny(True)
    params, static = split_policy(policy)
    support = small_support(game, 24)
    hp = StructuralParams(**SMALL_NET)
    state = TrainState(params, optimizer(hp).init(params), jnp.int32(0), jax.random.PRNGKey(2), jnp.asarray(1e-2))
    capacity = drawn_capacity(support, 24, sds=1.0)
    plain = StructuralSolver(game, static, hp, True, 10, 24, None, support, capacity, None)
    shared = StructuralSolver(
        game, static, hp, True, 10, 24, None, support, capacity, None, batch_prefix(game, support.noise)
    )
    step = eqx.filter_jit(lambda solver, state: solver.step(state))
    (a, ma), (b, mb) = step(plain, state), step(shared, state)
    assert float(mb.policy_return) == pytest.approx(float(ma.policy_return), rel=1e-5)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_a_bad_shared_until_is_refused_in_one_line():
    from mfax.dynamics.noise import enumerate_noise
    from mfax.dynamics.pushforward import batch_prefix

    game, _ = _tiny(False)
    batch = enumerate_noise(game)
    for bad in (-1, 2.5, True):
        broken = type("Broken", (), {"shared_until": bad, "name": "beach_bar"})()
        with pytest.raises(GameError, match=r"^game 'beach_bar': shared_until must be an integer >= 0, got "):
            batch_prefix(broken, batch.noise)
    assert batch_prefix(game, batch.noise).until == 3


def test_the_learning_rate_schedule_is_in_the_rates_precision():
    """An int32 iteration divided alone gave float32: under float64 the decayed rate was
    0.023249999 for 0.02325 (found by an independent reimplementation of SPG's update)."""
    from mfax.solvers.optim import learning_rate

    with jax.enable_x64(True):
        lr = learning_rate(jnp.asarray(0.025, jnp.float64), jnp.int32(1), 11, 0.1)
        assert lr.dtype == jnp.float64 and float(lr) == 0.025 * (1.0 - 0.9 * 0.1)
    lr = learning_rate(jnp.asarray(0.025, jnp.float32), jnp.int32(1), 11, 0.1)
    assert lr.dtype == jnp.float32
