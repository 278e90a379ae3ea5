"""Exact push-forward and sampled populations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mfax
from conftest import path_at, published, random_policy_table, ref_path, slow
from mfax.dynamics import population_rollout, push_forward, push_forward_paths, rollout_batch, sample_noise
from mfax.games.base import Kernel
from mfax.policies import Tabular, Uniform
from reference_games import ref_beach_bar, ref_linear_quadratic


def check_mass(game, seed):
    k_pol, k_noise = jax.random.split(jax.random.key(seed))
    policy = Tabular(random_policy_table(k_pol, game))
    traj = rollout_batch(game, policy, sample_noise(game, k_noise, 3).noise, record=False)
    mu = np.asarray(traj.mu, dtype=np.float64)
    assert mu.min() >= 0.0
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=2e-5)


@pytest.mark.parametrize("name", [pytest.param("linear_quadratic", marks=pytest.mark.smoke), "beach_bar", "sis"])
@given(seed=st.integers(0, 2**31 - 1))
def test_mass_is_conserved_and_non_negative(name, seed):
    """Random time-dependent policies, random noise: every mu_t is a probability vector."""
    check_mass(published(name), seed)


@pytest.mark.slow
@settings(max_examples=3)
@given(seed=st.integers(0, 2**31 - 1))
def test_mass_is_conserved_and_non_negative_macro(seed):
    """As above on the macro game (T = 128, n = 1000: fewer examples)."""
    check_mass(published("macro"), seed)


@pytest.mark.parametrize("name", ["linear_quadratic", slow("beach_bar"), "sis", slow("macro")])
def test_dense_and_scatter_push_forward_agree(name):
    game = mfax.make("macro", num_wealth=20) if name == "macro" else published(name)
    noise = game.sample_noise(jax.random.key(0))
    mu = jax.random.dirichlet(jax.random.key(1), jnp.ones(game.n_states))
    probs = random_policy_table(jax.random.key(2), game)[0]
    kernel = game.kernel(mu, noise, jnp.int32(3))
    np.testing.assert_allclose(
        push_forward(mu, probs, kernel, "dense"), push_forward(mu, probs, kernel, "scatter"), atol=1e-6
    )
    with pytest.raises(ValueError, match="unknown push-forward method 'fast'; allowed: scatter, dense"):
        push_forward(mu, probs, kernel, "fast")


@pytest.mark.parametrize(
    ("name", "params"),
    [slow("beach_bar", {}), ("beach_bar", {"num_states": 7, "max_action": 3}), slow("macro", {})],
)
def test_two_stage_push_forward_equals_the_flattened_kernel(name, params):
    """Pushing a two-stage kernel through its intermediate states moves the same mass
    as its flattened single-stage form (beach bar: also from the bar's own state, whose
    offsets are unrestricted; small grids put the bar at the edge of its range)."""
    with mfax.games.unchecked():  # (the game checks are not what is tested)
        game = mfax.make(name, **params)

    @jax.jit
    def both(key):
        keys = jax.random.split(key, 3)
        noise = game.sample_noise(keys[0])
        mu = jax.random.dirichlet(keys[1], jnp.ones(game.n_states))
        probs = jax.nn.softmax(3.0 * jax.random.normal(keys[2], (game.n_states, game.n_actions)))
        kernel = game.kernel(mu, noise, jnp.int32(1))
        assert kernel.then is not None  # the structure is static: checked while tracing
        return push_forward(mu, probs, kernel), push_forward(mu, probs, kernel.flat())

    for seed in range(4):
        staged, flat = both(jax.random.key(seed))
        np.testing.assert_allclose(staged, flat, atol=1e-7)
        assert float(staged.min()) >= 0.0 and abs(float(staged.sum()) - 1.0) < 1e-6


@pytest.mark.parametrize(
    ("name", "params", "ref_factory"),
    [("linear_quadratic", {}, ref_linear_quadratic), ("beach_bar", {"num_states": 41}, ref_beach_bar)],
)
def test_rollout_matches_reference_rollout(name, params, ref_factory):
    """Whole mean-field paths, uniform policy, every noise path, float64."""
    from reference_games import rollout as ref_rollout
    from reference_games import uniform_policy

    with jax.enable_x64(True):
        with mfax.games.unchecked():  # (the game checks: test_validation's; here its rollout)
            game = mfax.make(name, **params)
        ref = ref_factory(**params)
        support = game.noise_support()
        traj = rollout_batch(game, Uniform(game.n_states, game.n_actions), support.noise)
        for i in range(0, support.weight.shape[0], 7):
            expected = np.array(ref_rollout(ref, uniform_policy(ref), ref_path(game, path_at(support.noise, i))))
            np.testing.assert_allclose(np.asarray(traj.mu[i]), expected, atol=1e-12)


# Total-variation agreement of a sampled population with the exact push-forward.
#
# For N i.i.d. draws from p on n points, E[TV(empirical, p)] <= 1/2 sum_s sqrt(p_s / N)
# <= 1/2 sqrt(n / N). A population adds one such error per step; a Markov kernel never
# enlarges total variation, so errors from earlier steps are carried, not amplified,
# except through the kernel's dependence on the mean field (the SIS infection feedback is
# the strongest of our games). We allow a factor 5 over the one-step bound for that
# feedback and for fluctuations: TV_t <= 2.5 sqrt(n / N) at every t, with N = 10^5.
N_AGENTS = 100_000


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # a short linear-quadratic game (its bound is the same function of n and N): the
        # published one's 30 steps of 10^5 agents took 12 s; slow: the published sizes
        ("linear_quadratic", {"num_states": 21, "horizon": 6}),
        slow("linear_quadratic", None),
        slow("beach_bar", None),
        ("sis", None),
        slow("macro", None),
    ],
)
def test_sampled_population_tracks_exact_push_forward(name, params):
    game = published(name) if params is None else mfax.make(name, **params)
    noise = game.sample_noise(jax.random.key(11))
    policy = Tabular(random_policy_table(jax.random.key(12), game))
    sampled = population_rollout(game, policy, noise, jax.random.key(13), N_AGENTS)
    exact = rollout_batch(game, policy, jax.tree.map(lambda x: x[None], noise), record=False)
    tv = 0.5 * np.abs(np.asarray(sampled.mu) - np.asarray(exact.mu[0])).sum(-1)
    bound = 2.5 * np.sqrt(game.n_states / N_AGENTS)
    assert tv.max() <= bound, f"max TV {tv.max():.4f} > {bound:.4f}"
    assert sampled.rewards.shape == (game.horizon, N_AGENTS)
    assert np.isfinite(np.asarray(sampled.rewards)).all()


def test_the_empirical_mean_field_counts_beyond_float32s_integers():
    """A float32 count stops at 2^24: 2e7 agents in one state read 0.8389 (the
    histogram no longer summed to one)."""
    from mfax.dynamics.population import empirical_mean_field

    agents = jnp.concatenate([jnp.zeros(20_000_000, jnp.int32), jnp.ones(3, jnp.int32)])
    mu = empirical_mean_field(agents, 3, jnp.float32)
    assert mu.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(mu), [20_000_000 / 20_000_003, 3 / 20_000_003, 0.0], rtol=1e-6)


@pytest.mark.slow
def test_population_error_shrinks_like_one_over_sqrt_n():
    """10x more agents -> TV about sqrt(10) ~ 3.2x smaller (averaged over t and seeds)."""
    game = published("beach_bar")
    noise = game.sample_noise(jax.random.key(0))
    policy = Uniform(game.n_states, game.n_actions)
    exact = np.asarray(rollout_batch(game, policy, jax.tree.map(lambda x: x[None], noise), record=False).mu[0])

    def mean_tv(num_agents):
        tvs = [
            0.5
            * np.abs(np.asarray(population_rollout(game, policy, noise, jax.random.key(s), num_agents).mu) - exact).sum(
                -1
            )
            for s in range(3)
        ]
        return float(np.mean(tvs))

    ratio = mean_tv(2_000) / mean_tv(20_000)
    assert 2.4 < ratio < 4.2, ratio


@pytest.mark.parametrize(("n", "m", "successors"), [(300, 16, 2), (300, 16, 6), (20, 4, 2)])
def test_push_forward_of_random_kernels_matches_a_numpy_sum(n, m, successors):
    """Both orders of adding a first stage (successors outermost for a large stage with
    few successors, n m >= 4096 and K <= 4; the plain order otherwise) put every edge's
    mass mu(s) pi(a|s) P(k|s,a) at its target: against numpy's unbuffered sums in
    float64, with one path and a batch bit-identical."""
    rng = np.random.default_rng(n + m + successors)
    paths = 3
    index = rng.integers(0, n, (paths, n, m, successors)).astype(np.int32)
    prob = rng.dirichlet(np.ones(successors), (paths, n, m)).astype(np.float32)
    mu = rng.dirichlet(np.ones(n), paths).astype(np.float32)
    probs = rng.dirichlet(np.ones(m), (paths, n)).astype(np.float32)
    kernel = Kernel(jnp.asarray(index), jnp.asarray(prob))
    batched = np.asarray(jax.jit(push_forward_paths)(jnp.asarray(mu), jnp.asarray(probs), kernel))
    alone = np.asarray(jax.jit(jax.vmap(push_forward))(jnp.asarray(mu), jnp.asarray(probs), kernel))
    np.testing.assert_array_equal(batched, alone)
    for p in range(paths):
        want = np.zeros(n)
        mass = mu[p].astype(np.float64)[:, None, None] * probs[p][..., None] * prob[p]
        np.add.at(want, index[p].reshape(-1), mass.reshape(-1))
        np.testing.assert_allclose(batched[p], want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("name", "params"),
    [("beach_bar", {"num_states": 7, "max_action": 3}), slow("macro", {"num_wealth": 6, "num_income": 3})],
)
def test_batched_push_forward_equals_each_path_pushed_alone(name, params):
    """push_forward_paths (one flat scatter over every path's offset indices) moves the
    same mass as push_forward on each path alone, for two-stage kernels, both methods."""
    with mfax.games.unchecked():  # (the game checks are not what is tested)
        game = mfax.make(name, **params)

    @jax.jit
    def both(key):
        keys = jax.random.split(key, 4)
        noise = jax.vmap(game.sample_noise)(jax.random.split(keys[0], 3))
        mu = jax.random.dirichlet(keys[1], jnp.ones(game.n_states), (3,))
        probs = jax.nn.softmax(3.0 * jax.random.normal(keys[2], (3, game.n_states, game.n_actions)))
        kernel = jax.vmap(lambda m, z: game.kernel(m, z, jnp.int32(1)))(mu, noise)
        alone = jax.vmap(push_forward)(mu, probs, kernel)  # each path alone
        return alone, push_forward_paths(mu, probs, kernel), push_forward_paths(mu, probs, kernel, "dense")

    alone, batched, dense = both(jax.random.key(0))
    assert not np.allclose(alone[0], alone[1])  # the paths differ, so a mixed-up offset would show
    np.testing.assert_array_equal(batched, alone)
    np.testing.assert_allclose(dense, alone, atol=1e-6)


@pytest.mark.parametrize("num_agents", [0, -5, 2.5])
def test_a_population_of_no_agents_is_one_line(num_agents):
    """``num_agents=0`` gave an all-NaN mean field, ``-5`` a raw JAX TypeError."""

    game = mfax.make("sis", horizon=3)
    path = game.sample_noise(jax.random.key(0))
    with pytest.raises(mfax.GameError, match=f"num_agents must be an integer >= 1, got {num_agents}"):
        population_rollout(game, Uniform(2, 2), path, jax.random.key(0), num_agents)
    with pytest.raises(mfax.GameError, match="Uniform policy is for 3 states"):
        population_rollout(game, Uniform(3, 2), path, jax.random.key(0), 4)


@pytest.mark.parametrize("num_paths", [2.5, 0, True])
def test_a_number_of_noise_paths_that_is_not_a_count_is_one_line(num_paths):
    from mfax.dynamics import noise_batch

    game = mfax.make("sis", horizon=3)
    with pytest.raises(mfax.GameError, match="the number of noise paths must be an integer >= 1"):
        noise_batch(game, "sample", num_paths=num_paths)
