"""Exact evaluation: policy value, best responses, exploitability (both definitions)."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import dense_kernel, path_at, random_policy_table, slow
from mfax.dynamics import agent_returns, enumerate_noise, noise_batch, rollout_batch, sample_noise
from mfax.evaluation import (
    backward_induction,
    best_response_value,
    evaluate,
    info_best_response_value,
    info_max,
    info_share,
    path_return,
    path_values,
    policy_and_best_response_values,
    policy_and_info_values,
    policy_value,
)
from mfax.evaluation.exploitability import info_consistent_exact
from mfax.games import reward_matrix
from mfax.policies import Tabular, Uniform
from mfax.policies.history import HistoryTabular
from reference_games import exploitability as ref_exploitability
from reference_games import ref_beach_bar, ref_linear_quadratic, uniform_policy


# slow: the sis entry checks the same against its Monte Carlo agents
@pytest.mark.parametrize("name", [slow("linear_quadratic"), slow("beach_bar"), slow("macro"), "sis"])
def test_policy_value_matches_monte_carlo_agents(name):
    """sum_s mu0 V0 by recursion vs the mean return of 40k simulated agents along the
    same mean-field path: within 4 standard errors of the Monte Carlo mean."""
    game = mfax.make(name)
    noise = game.sample_noise(jax.random.key(5))
    batch = jax.tree.map(lambda x: x[None], noise)
    traj = rollout_batch(game, Tabular(random_policy_table(jax.random.key(6), game)), batch)
    v0 = policy_value(game, traj, batch)[0]
    exact = float(traj.mu[0, 0] @ v0)
    one = jax.tree.map(lambda x: x[0], traj)
    returns = np.asarray(agent_returns(game, one, noise, jax.random.key(8), 40_000), dtype=np.float64)
    stderr = returns.std() / np.sqrt(returns.size)
    assert abs(returns.mean() - exact) <= 4 * stderr + 1e-4 * abs(exact), (returns.mean(), exact, stderr)


@pytest.mark.parametrize("name", ["linear_quadratic", slow("beach_bar"), slow("macro"), "sis"])
def test_best_response_dominates_policy_in_every_state(name):
    game = mfax.make(name)
    batch = sample_noise(game, jax.random.key(0), 4)
    traj = rollout_batch(game, Tabular(random_policy_table(jax.random.key(1), game)), batch.noise)
    v_pi = policy_value(game, traj, batch.noise)
    v_br = best_response_value(game, traj, batch.noise)
    scale = float(jnp.abs(v_pi).max())
    assert bool(jnp.all(v_br >= v_pi - 1e-5 * scale))


@pytest.mark.parametrize(
    ("name", "record"), [slow("linear_quadratic", True), slow("sis", False), slow("beach_bar", True)]
)
def test_one_pass_policy_and_best_response_equal_the_two_passes(name, record):
    """The structural step's single backward pass gives the numbers of policy_value
    (with every Q) and best_response_value, rewards recorded or recomputed, to float32
    rounding (both value functions are stacked on a trailing axis and compiled in one
    program, so the last place may differ: 2.7e-7 relative seen on beach bar)."""
    game = _tiny_lq() if name == "linear_quadratic" else mfax.make(name)
    batch = sample_noise(game, jax.random.key(2), 3)
    traj = rollout_batch(game, Tabular(random_policy_table(jax.random.key(3), game)), batch.noise)
    if not record:
        traj = traj._replace(rewards=None)
    v_pi, q, v_br = jax.jit(policy_and_best_response_values, static_argnums=0)(game, traj, batch.noise)

    @functools.partial(jax.jit, static_argnums=0)
    def two_passes(game, traj, noise):
        return *policy_value(game, traj, noise, emit_q=True), best_response_value(game, traj, noise)

    v_pi2, q2, v_br2 = two_passes(game, traj, batch.noise)
    for got, want in ((v_pi, v_pi2), (q, q2), (v_br, v_br2)):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6 * float(jnp.abs(want).max()))
    with pytest.raises(ValueError, match="record=True"):
        policy_and_best_response_values(game, traj._replace(probs=None), batch.noise)


@pytest.mark.parametrize("paths", [slow(1), 2])  # slow: paths=2 makes the same comparisons
def test_one_pass_tabular_values_equal_the_separate_passes(paths):
    """policy_and_info_values (the tabular steps' one recursion) gives policy_value's
    values and Q, the information-consistent deviation's values
    (info_best_response_value), the prior-weighted recursion's Q (the solvers' best
    responses), and the per-path best response's values (with one path: the
    information-consistent one). On this game (own history uninformative) the deviation's
    return is the recursion's."""
    game = _tiny_lq() if paths == 2 else _tiny_lq(common_noise=False)
    batch = enumerate_noise(game)
    assert batch.num_paths == paths
    policy = Tabular(random_policy_table(jax.random.key(3), game))
    traj = rollout_batch(game, policy, batch.noise)
    share = info_share(traj.obs, batch.weight, game.horizon)
    v_pi, v_info, v_path, q = jax.jit(policy_and_info_values, static_argnums=0)(game, traj, batch.noise, share)
    v_pi2, q_pi = policy_value(game, traj, batch.noise, emit_q=True)
    v_rec, q_info = backward_induction(game, traj, batch.noise, info_max(share), emit_q=True)
    v_info2 = info_best_response_value(game, traj, batch.noise, batch.weight)
    for got, want in ((v_pi, v_pi2), (q[..., 0], q_pi), (v_info, v_info2), (q[..., 1], q_info)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert info_consistent_exact(game, policy, batch)  # the public mean shows the shift on these paths
    w = np.asarray(batch.weight)
    np.testing.assert_allclose(w @ path_return(traj, v_info), w @ path_return(traj, v_rec), rtol=1e-6)
    np.testing.assert_allclose(v_path, best_response_value(game, traj, batch.noise), rtol=1e-6, atol=1e-6)


def _tiny_lq(**kw):
    return mfax.make(
        "linear_quadratic", num_states=3, max_action=1, horizon=2, shift=2.0, q=3.0, shift_until=1, shift_from=0, **kw
    )


def _path_matrices(game, traj, noise, i):
    """Dense kernels and rewards along path i: lists over t of (n, m, n) and (n, m)."""
    path = path_at(noise, i)
    kernels, rewards = [], []
    for t in range(game.horizon):
        mu, mu_next = traj.mu[i, t], traj.mu[i, t + 1]
        kernels.append(dense_kernel(game.kernel(mu, path, jnp.int32(t))))
        rewards.append(np.asarray(reward_matrix(game, mu, mu_next, path, jnp.int32(t)), dtype=np.float64))
    return kernels, rewards


def _value_of_plan(game, kernels, rewards, plan):
    """V_0 of a deterministic plan: plan[t] is an (n,) action per state."""
    v = np.zeros(game.n_states)
    states = np.arange(game.n_states)
    for t in reversed(range(game.horizon)):
        a = plan[t]
        v = rewards[t][states, a] + game.gamma * kernels[t][states, a] @ v
    return v


def _values_of_plans(game, kernels, rewards, plans):
    """_value_of_plan of many plans at once: plans[t] is a (K, n) action per plan and state;
    (K, n) values."""
    states = np.arange(game.n_states)
    v = np.zeros((len(plans[0]), game.n_states))
    for t in reversed(range(game.horizon)):
        a = plans[t]
        v = rewards[t][states, a] + game.gamma * np.einsum("kst,kt->ks", kernels[t][states, a], v)
    return v


def test_best_response_equals_brute_force_over_deterministic_policies():
    """Per path: V*_0(s) = max over all m^(n T) deterministic Markov plans, state by state."""
    with jax.enable_x64(True):
        game = _tiny_lq()
        batch = enumerate_noise(game)
        traj = rollout_batch(game, Uniform(game.n_states, game.n_actions), batch.noise)
        v_br = np.asarray(best_response_value(game, traj, batch.noise))
        n, m, T = game.n_states, game.n_actions, game.horizon
        for i in range(batch.num_paths):
            kernels, rewards = _path_matrices(game, traj, batch.noise, i)
            best = np.full(n, -np.inf)
            for flat in itertools.product(range(m), repeat=n * T):
                plan = np.array(flat).reshape(T, n)
                best = np.maximum(best, _value_of_plan(game, kernels, rewards, plan))
            np.testing.assert_allclose(v_br[i], best, rtol=1e-12)


def test_information_consistent_best_response_equals_brute_force_on_history_tree():
    """Deviator plans that depend only on the public history node: the best expected
    return over all of them equals sum_i p_i mu0 V*info_0 (exact, float64)."""
    with jax.enable_x64(True):
        game = _tiny_lq()
        batch = enumerate_noise(game)
        traj = rollout_batch(game, Uniform(game.n_states, game.n_actions), batch.noise)
        obs = np.asarray(traj.obs)
        assert np.allclose(obs[0, 0], obs[1, 0]) and not np.allclose(obs[0, 1], obs[1, 1])  # one shared root
        v_info = np.asarray(info_best_response_value(game, traj, batch.noise, batch.weight))
        weight = np.asarray(batch.weight)
        expected = float(sum(weight[i] * traj.mu[i, 0] @ v_info[i] for i in range(2)))
        mats = [_path_matrices(game, traj, batch.noise, i) for i in range(2)]
        n, m = game.n_states, game.n_actions
        # nodes: t=0 shared root; t=1 one node per path; every plan scored (vectorised)
        plans = np.array(list(itertools.product(range(m), repeat=3 * n))).reshape(-1, 3, n)
        root = plans[:, 0]
        total = np.zeros(len(plans))
        for i in range(2):
            v0 = _values_of_plans(game, *mats[i], [root, plans[:, 1 + i]])
            total += weight[i] * (v0 @ np.asarray(traj.mu[i, 0], dtype=np.float64))
        best = float(total.max())
        assert best == pytest.approx(expected, rel=1e-12)
        per_path = float(
            sum(weight[i] * traj.mu[i, 0] @ best_response_value(game, traj, batch.noise)[i] for i in range(2))
        )
        assert expected < per_path  # knowing the future helps here


# slow: the linear_quadratic and sis entries check the same bounds
@pytest.mark.parametrize("name", ["linear_quadratic", slow("beach_bar"), "sis"])
def test_information_consistent_is_between_policy_return_and_per_path(name):
    game = mfax.make(name)
    policy = Tabular(random_policy_table(jax.random.key(3), game))
    result = evaluate(game, policy, enumerate_noise(game))
    tol = 1e-5 * abs(result.policy_return)
    assert result.exploitability_info <= result.exploitability + tol
    assert result.exploitability_info >= -tol
    assert result.exact_noise


# slow: the linear_quadratic, beach_bar and sis entries check the same equality
@pytest.mark.parametrize("name", ["linear_quadratic", "beach_bar", "sis", slow("macro")])
def test_information_consistent_equals_per_path_without_common_noise(name):
    params = {"horizon": 16, "num_wealth": 40} if name == "macro" else {}
    game = mfax.make(name, common_noise=False, **params)
    result = evaluate(game, Tabular(random_policy_table(jax.random.key(4), game)), enumerate_noise(game))
    assert result.exploitability_info == pytest.approx(result.exploitability, rel=1e-6, abs=1e-6)


def test_sampled_macro_has_no_information_consistent_figure():
    with mfax.games.unchecked():  # the game's checks are test_validation's
        game = mfax.make("macro", horizon=8, num_wealth=20)
    result = evaluate(game, Uniform(game.n_states, game.n_actions), noise_batch(game, "auto", jax.random.key(0), 4))
    assert result.exploitability_info is None and not result.exact_noise and result.noise_paths == 4
    assert result.exploitability >= 0


@pytest.mark.parametrize(
    ("name", "params", "ref_factory"),
    [
        ("linear_quadratic", {}, ref_linear_quadratic),
        slow("beach_bar", {}, ref_beach_bar),
        ("beach_bar", {"num_states": 31, "horizon": 12}, ref_beach_bar),
    ],
)
@pytest.mark.smoke
def test_exploitability_matches_reference_with_common_noise(name, params, ref_factory):
    """All four figures against the independent numpy implementation, float64."""
    with jax.enable_x64(True):
        game, ref = mfax.make(name, **params), ref_factory(**params)
        ours = evaluate(game, Uniform(game.n_states, game.n_actions), enumerate_noise(game))
        theirs = ref_exploitability(ref, uniform_policy(ref))
        for key in ("exploitability", "exploitability_info", "policy_return", "best_response_return"):
            assert getattr(ours, key) == pytest.approx(theirs[key], rel=1e-10), key


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("beach_bar", {"num_states": 7, "max_action": 3, "horizon": 5}),
        slow("macro", {"num_wealth": 6, "num_income": 3, "horizon": 5}),
    ],
)
def test_joint_recursion_equals_policy_value_and_best_response_separately(name, params):
    """policy_and_best_response_values (both value functions stacked in one recursion,
    two-stage kernels taken one stage at a time) equals policy_value(emit_q) and
    best_response_value; Kernel.expect equals the dense kernel's product, stacked or not."""
    with mfax.games.unchecked():  # the game's checks are test_validation's
        game = mfax.make(name, **params)

    @jax.jit
    def values(key):
        policy = Tabular(random_policy_table(key, game))
        noise = jax.vmap(game.sample_noise)(jax.random.split(key, 2))
        traj = rollout_batch(game, policy, noise)
        v, q = policy_value(game, traj, noise, emit_q=True)
        return (
            traj,
            noise,
            (v, q, best_response_value(game, traj, noise)),
            policy_and_best_response_values(game, traj, noise),
        )

    traj, noise, separate, joint = values(jax.random.key(3))
    for a, b in zip(separate, joint, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    assert np.all(np.asarray(joint[2]) >= np.asarray(joint[0]) - 1e-5)
    kernel = game.kernel(traj.mu[0, 2], path_at(noise, 0), jnp.int32(2))
    v = jax.random.normal(jax.random.key(4), (game.n_states, 2))
    dense = dense_kernel(kernel)  # (n, m, n)
    np.testing.assert_allclose(kernel.expect(v), np.einsum("sat,td->sad", dense, v), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernel.expect(v[:, 0]), dense @ np.asarray(v[:, 0]), rtol=1e-5, atol=1e-6)


def _network_for(game, key=None):
    """A small recurrent network policy of ``game``."""
    from mfax.policies.networks import NetworkPolicy

    return NetworkPolicy(
        game,
        jax.random.key(0) if key is None else key,
        recurrent=True,
        obs_embed=4,
        gru_hidden=4,
        state_embed=4,
        aggregate_embed=4,
        mlp_width=4,
    )


def test_evaluation_with_a_shared_noise_prefix_equals_the_whole_rollout():
    """evaluate() rolls beach bar's shared starts out once (its two closure outcomes per
    bar agree until T//2): the same per-path figures as the rollout of every path in full,
    for a recurrent network policy (its memory carried across the split)."""
    from mfax.dynamics.pushforward import batch_prefix

    game = mfax.make("beach_bar", num_states=9, horizon=4)
    policy = _network_for(game, jax.random.PRNGKey(1))
    batch = enumerate_noise(game)
    prefix = batch_prefix(game, batch.noise)
    assert prefix is not None and prefix.reps.shape[0] * 2 == batch.num_paths
    whole = path_values(game, policy, batch.noise, batch.weight, True)
    split = path_values(game, policy, batch.noise, batch.weight, True, None, prefix)
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ev = evaluate(game, policy, batch)
    assert ev.exploitability == pytest.approx(float(jnp.sum(batch.weight * (whole[1] - whole[0]))), rel=1e-5, abs=1e-6)


def test_the_evaluation_shares_starts_only_where_that_pays():
    """The exact evaluation's shared-start stage costs compile time: a small game's
    evaluation rolls every path out in full (no groups computed either), the published
    beach bar's shares its starts; the threshold counts the state-steps spared."""
    from mfax.dynamics.pushforward import EVALUATION_MIN_SAVED, batch_prefix

    with mfax.games.unchecked():  # the games' checks are test_validation's
        small = mfax.make("beach_bar", num_states=10)
        published = mfax.make("beach_bar")
    for game, shared in ((small, False), (published, True)):
        noise = enumerate_noise(game).noise
        prefix = batch_prefix(game, noise, EVALUATION_MIN_SAVED)
        assert (prefix is not None) == shared
        assert batch_prefix(game, noise) is not None  # training's rule: any sharing
    # spared: (paths - groups) * until * states
    noise = enumerate_noise(small).noise
    spared = (12 - 6) * 15 * 10
    assert batch_prefix(small, noise, spared) is not None and batch_prefix(small, noise, spared + 1) is None
    # a game without a shared start is not asked about its noise (which may have no leaves)
    no_start = type("NoStart", (), {"shared_until": 0, "name": "no_start", "n_states": 3})()
    assert batch_prefix(no_start, (), EVALUATION_MIN_SAVED) is None


def test_evaluate_hands_the_shared_start_to_the_program_only_where_it_pays(monkeypatch):
    """evaluate() applies the threshold: the program gets no shared start on a small
    beach bar, and the published one's groups."""
    from mfax.evaluation import exploitability as E

    seen = []
    real = E.path_values

    def spy(game, policy, noise, weight, info, mesh=None, prefix=None):
        seen.append(prefix)
        return real(game, policy, noise, weight, info, mesh, prefix)

    monkeypatch.setattr(E, "path_values", spy)
    for kw in ({"num_states": 10}, {}):
        with mfax.games.unchecked():  # the games' checks are test_validation's
            game = mfax.make("beach_bar", **kw)
        E.evaluate(game, Uniform(game.n_states, game.n_actions), enumerate_noise(game))
    assert seen[0] is None and seen[1] is not None and seen[1].reps.shape == (51,)


def test_information_consistent_figure_is_exact_with_one_noise_path():
    """A game that keeps the safe default (own history informative) but has one noise
    path: nothing to learn about the noise, so the figure is exact (it was called a lower
    bound)."""
    from typing import ClassVar

    from mfax.games import SIS
    from test_validation import SISDelegate

    class OneRegime(SISDelegate):
        name: ClassVar[str] = "one_regime"
        sis: ClassVar[SIS] = SIS(common_noise=False)

    class Regimes(SISDelegate):
        name: ClassVar[str] = "regimes"

    assert OneRegime().own_history_informative and info_consistent_exact(OneRegime())
    assert Regimes().noise_support().weight.shape[0] > 1 and not info_consistent_exact(Regimes())
    assert info_consistent_exact(mfax.make("beach_bar"))  # declared: own history tells nothing more


def _sis_and_noise():
    game = mfax.make("sis", horizon=3)
    return game, noise_batch(game, "sample", jax.random.key(0), num_paths=2)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (lambda: Tabular(jnp.full((3, 2, 2), 0.9)), r"Tabular policy row \(t=0, s=0\) sums to 1.8; it must sum to 1"),
        (lambda: Tabular(jnp.ones((3, 2, 2), jnp.int32)), "Tabular policy must hold floating-point probabilities"),
        (
            lambda: Tabular(jnp.full((3, 2, 2), 0.5).at[1, 1].set(jnp.array([1.5, -0.5]))),
            r"Tabular policy row \(t=1, s=1\) has a negative entry -0.5",
        ),
        (lambda: Tabular(jnp.full((3, 2, 2), jnp.nan)), r"Tabular policy row is nan at \(0, 0, 0\)"),
        (lambda: Tabular(jnp.full((1, 2, 2), 0.5)), r"Tabular policy has shape \(1, 2, 2\); .* \(3, 2, 2\) expected"),
        (lambda: Tabular(jnp.full((2, 2), 0.5)), r"Tabular policy has shape \(2, 2\)"),
        (lambda: Uniform(5, 2), "Uniform policy is for 5 states and 2 actions; game 'sis' has 2 states and 2 actions"),
        (lambda: Uniform(2, 4), "Uniform policy is for 2 states and 4 actions"),
        (lambda: "uniform", r"policy must be a Policy .*got str \(parse_policy\(game, text\) reads 'uniform'"),
        # a network built for another game's sizes: a raw JAX broadcasting TypeError before
        (
            lambda: _network_for(mfax.make("beach_bar", num_states=5, horizon=3)),
            "NetworkPolicy was built for 5 states and 11 actions \\(game 'beach_bar'\\); game 'sis' has 2 states",
        ),
        (
            lambda: HistoryTabular(jnp.full((2, 3, 5, 2), 0.5), jnp.zeros((2, 4, 1)), jnp.full(2, 0.5)),
            r"HistoryTabular table has shape \(2, 3, 5, 2\); .* \(P, 3, 2, 2\) expected",
        ),
    ],
)
def test_evaluate_refuses_what_is_not_a_policy_of_the_game_in_one_line(policy, message):
    """Such policies were scored all the same: rows summing to 1.8 gave a negative
    exploitability, a short table was clamped, other sizes broadcast or raised raw errors."""
    game, noise = _sis_and_noise()
    with pytest.raises(mfax.GameError, match=message) as err:
        evaluate(game, policy(), noise)
    assert "\n" not in str(err.value)


def test_evaluate_refuses_noise_that_is_not_a_noise_batch():
    game, _ = _sis_and_noise()
    with pytest.raises(mfax.GameError, match=r"noise must be a NoiseBatch .*got str"):
        evaluate(game, Uniform(2, 2), "exact")


def test_evaluate_refuses_another_games_noise_and_what_is_not_a_game_in_one_line():
    """Noise paths of another horizon were scored without a word (the shorter read past
    their end: plausible, wrong figures), another game's noise raised an AttributeError,
    and a game's name or a Result read as a defective game (a review, in a notebook)."""
    from mfax.games import BeachBar, LinearQuadratic, unchecked

    with unchecked():
        short, long = BeachBar(num_states=5, horizon=4), BeachBar(num_states=5, horizon=6)
        lq = LinearQuadratic(num_states=5, horizon=4)
    policy = Uniform(short.n_states, short.n_actions)
    assert np.isfinite(evaluate(short, policy, noise_batch(short, "exact")).exploitability)
    for game, noise, said in [
        (long, noise_batch(short, "exact"), r"\.z has shape \((\d+), 5\) where its \1 paths would have \(\1, 7\)"),
        (short, noise_batch(long, "exact"), r"\.z has shape \((\d+), 7\) where its \1 paths would have \(\1, 5\)"),
        (short, noise_batch(lq, "exact"), "LQNoise where its sample_noise gives BeachBarNoise"),
    ]:
        with pytest.raises(mfax.GameError, match=rf"^the noise paths do not fit game 'beach_bar': {said}") as err:
            evaluate(game, policy, noise)
        assert "\n" not in str(err.value)
    with pytest.raises(mfax.GameError, match=r"^game must be a Game \(mfax.make\('beach_bar'\), say\), got str$"):
        evaluate("beach_bar", policy, noise_batch(short, "exact"))


@pytest.mark.parametrize(
    ("action", "message"), [(5, "in 0..1, got 5"), (-1, "in 0..1, got -1"), (1.0, "in 0..1, got 1.0")]
)
def test_a_fixed_action_out_of_range_is_refused_where_it_is_made(action, message):
    """``FixedAction(n, 2, 5)`` scored a vanishing population (return 0); ``-1`` was
    silently the last action."""
    from mfax.policies import FixedAction

    with pytest.raises(mfax.GameError, match=f"FixedAction: action must be an index {message}"):
        FixedAction(2, 2, action)


def test_the_policy_check_adds_nothing_under_jit():
    """Solvers build tables from traced arrays: the values are checked where concrete."""
    game, noise = _sis_and_noise()
    table = jnp.full((3, 2, 2), 0.5)
    traced = jax.jit(lambda p: rollout_batch(game, Tabular(p), noise.noise).mu)(table)
    np.testing.assert_allclose(traced, rollout_batch(game, Tabular(table), noise.noise).mu)
    assert evaluate(game, Tabular(table), noise).exploitability >= -1e-6
