"""Self-consistency checks of the naive reference games (tests/reference_games.py).

These test the oracle itself against hand-computed facts from the game definitions (docs/games/); they do not
touch mfax.
"""

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import reference_games as rg

SMALL = {
    "linear_quadratic": lambda **kw: rg.ref_linear_quadratic(num_states=15, horizon=25, **kw),
    "beach_bar": lambda **kw: rg.ref_beach_bar(num_states=21, max_action=2, horizon=10, **kw),
    "macro": lambda **kw: rg.ref_macro(num_wealth=12, num_income=3, num_actions=4, horizon=6, **kw),
}


def _paths(game):
    try:
        return game.noise_paths()
    except NotImplementedError:
        return [(game.sample_noise_path(np.random.default_rng(0)), 1.0)]


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("common", [True, False])
@pytest.mark.parametrize("idio", [True, False])
def test_kernel_is_a_distribution_and_rewards_are_floats(name, common, idio):
    game = SMALL[name](common_noise=common, idiosyncratic_noise=idio)
    rng = np.random.default_rng(1)
    for path, _ in _paths(game)[:4]:
        mu = rng.dirichlet(np.ones(game.n_states))
        mu2 = rng.dirichlet(np.ones(game.n_states))
        for t in (0, game.horizon // 2, game.horizon - 1):
            for s in range(game.n_states):
                for a in range(game.n_actions):
                    d = game.transitions(s, a, mu, path, t)
                    assert all(isinstance(k, int) and 0 <= k < game.n_states for k in d)
                    assert all(p >= 0 for p in d.values())
                    assert math.isclose(sum(d.values()), 1.0, abs_tol=1e-12)
                    r = game.reward(s, a, mu, mu2, path, t)
                    assert type(r) is float and math.isfinite(r)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_rollout_conserves_mass_and_matches_kernel_push(name):
    game = SMALL[name]()
    path, _ = _paths(game)[-1]
    pol = rg.uniform_policy(game)
    mus = rg.rollout(game, pol, path)
    assert len(mus) == game.horizon + 1
    for mu in mus:
        assert mu.dtype == np.float64 and abs(mu.sum() - 1) < 1e-12 and mu.min() >= 0
    traj = rg._trajectory(game, pol, path)
    for a, b in zip(mus, traj.mus, strict=False):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_best_response_dominates_policy_value(name):
    game = SMALL[name]()
    path, _ = _paths(game)[0]
    pol = rg.uniform_policy(game)
    v = rg.policy_value(game, pol, path)
    vs = rg.best_response_value(game, pol, path)
    assert v.shape == (game.n_states,) and np.all(vs >= v - 1e-10)


def test_policy_value_equals_monte_carlo_free_direct_sum():
    # A deterministic game (no idiosyncratic noise, no common noise): the value of a
    # constant action is the discounted sum of the rewards along the single trajectory.
    game = rg.ref_linear_quadratic(
        num_states=11, max_action=1, horizon=5, common_noise=False, idiosyncratic_noise=False
    )
    pol = rg.constant_action_policy(game, 2)  # action +1
    path = 0
    mus = rg.rollout(game, pol, path)
    v = rg.policy_value(game, pol, path)
    for s0 in range(game.n_states):
        s, tot = s0, 0.0
        for t in range(game.horizon):
            tot += game.gamma**t * game.reward(s, 2, mus[t], mus[t + 1], path, t)
            (s,) = game.transitions(s, 2, mus[t], path, t)
        assert math.isclose(v[s0], tot, rel_tol=1e-13, abs_tol=1e-12)


# ----- linear-quadratic facts ---------------------------------------------------------


def test_lq_kernel_shift_and_noise():
    g = rg.ref_linear_quadratic()
    mu = g.initial_mean_field(1)
    w = np.exp(-(np.arange(-3, 4) ** 2) / 2.0)
    w /= w.sum()
    d = g.transitions(50, 3, mu, 1, 10)  # a = 0, eps_10 = 0
    assert sorted(d) == list(range(47, 54))
    np.testing.assert_allclose([d[k] for k in range(47, 54)], w, atol=1e-15)
    assert g.eps(1, 7) == -10 and g.eps(1, 8) == 0 and g.eps(1, 20) == 0 and g.eps(-1, 21) == -10
    d = g.transitions(50, 6, mu, 1, 0)  # a = +3, eps_0 = -10 -> d = 50 + 3 - 5
    assert max(d, key=d.get) == 48
    d = g.transitions(1, 0, mu, 1, 0)  # clipped at 0, then noise clipped at 0
    assert math.isclose(d[0], w[:4].sum()) and d[3] == w[6]
    g0 = rg.ref_linear_quadratic(common_noise=False)
    assert g0.noise_paths() == [(0, 1.0)] and g0.eps(0, 0) == 0


def test_lq_reward_uses_next_mean():
    g = rg.ref_linear_quadratic()
    mu = np.zeros(99)
    mu[10] = 1.0
    mu_next = np.zeros(99)
    mu_next[20] = 1.0
    # -0.5*4 + 0.1*2*(20-15) - 0.25*25
    assert math.isclose(g.reward(15, 5, mu, mu_next, 1, 3), -2.0 + 1.0 - 6.25)
    assert math.isclose(g.reward(15, 5, mu, mu_next, 1, 29), -0.5 * 25)
    assert math.isclose(g.observation(mu, 1, 0)[0], 10 / 99)


# ----- beach bar facts ----------------------------------------------------------------


def test_beach_bar_paths_and_initial_field():
    g = rg.ref_beach_bar()
    paths = g.noise_paths()
    assert len(paths) == 102 and math.isclose(sum(p for _, p in paths), 1.0)
    assert {b for (b, _), _ in paths} == set(range(25, 76))
    assert len(rg.ref_beach_bar(common_noise=False).noise_paths()) == 51
    mu = g.initial_mean_field((40, True))
    assert mu[40] == 0 and math.isclose(mu.sum(), 1.0) and math.isclose(mu[0], 0.01)


def test_beach_bar_legality_from_original_state():
    g = rg.ref_beach_bar()
    mu = g.initial_mean_field((50, False))
    d = g.transitions(48, 10, mu, (50, False), 0)  # a = +5 from 48 -> 49; noise cannot cross
    assert d == pytest.approx({47: 0.05, 48: 0.1, 49: 0.85})
    d = g.transitions(52, 0, mu, (50, False), 0)  # a = -5 from 52 -> 51
    assert d == pytest.approx({51: 0.85, 52: 0.1, 53: 0.05})
    d = g.transitions(100, 10, mu, (50, False), 0)  # clipped at the top
    assert d == pytest.approx({98: 0.05, 99: 0.1, 100: 0.85})


def test_beach_bar_closure_timing_and_reward():
    g = rg.ref_beach_bar()
    mu = g.initial_mean_field((50, True))
    closed, open_ = (50, True), (50, False)
    assert [g.z(closed, t) for t in (0, 14, 15, 30)] == [1, 1, 0, 0]
    assert all(g.z(open_, t) == 1 for t in range(31))
    assert g.reward(49, 5, mu, mu, closed, 13) == -1.0
    assert g.reward(49, 5, mu, mu, closed, 14) == -1.0 - 101
    assert g.reward(49, 5, mu, mu, closed, 15) == -101.0
    assert g.reward(49, 5, mu, mu, closed, 29) == -101.0  # last step: same formula, z_T
    assert g.reward(49, 5, mu, mu, open_, 29) == -1.0
    assert math.isclose(g.reward(40, 0, mu, mu, open_, 3), -10 - 5 / 101)
    np.testing.assert_allclose(g.observation(mu, closed, 15), [1 - 50 / 101, 0.0, 1 - 50 / 101])


# ----- macro facts --------------------------------------------------------------------


def test_macro_grids_and_lottery():
    g = rg.ref_macro(common_noise=False)
    assert g.n_states == 1000 and g.n_actions == 20
    assert g.wealth_grid[0] == 0.0 and math.isclose(g.wealth_grid[-1], 99.0)
    np.testing.assert_allclose(g.income_grid[[0, -1]], [0.1, 2.0])
    for w in (0.0, 0.3, 7.77, 98.9, 99.0, 150.0):
        lot = g.wealth_lottery(w)
        assert math.isclose(sum(lot.values()), 1.0)
        mean = sum(p * g.wealth_grid[i] for i, p in lot.items())
        assert math.isclose(mean, min(w, 99.0), rel_tol=1e-12, abs_tol=1e-12)
    mu = g.initial_mean_field(None)
    path = g.noise_paths()[0][0]
    d = g.transitions(0 * 5 + 0, 0, mu, path, 0)
    assert math.isclose(sum(p for k, p in d.items() if k % 5 == 0), 0.9)
    d = g.transitions(3 * 5 + 4, 0, mu, path, 0)
    assert math.isclose(sum(p for k, p in d.items() if k % 5 == 4), 0.9)


def test_macro_prices_and_reward():
    g = rg.ref_macro(common_noise=False)
    path = g.noise_paths()[0][0]
    mu = g.initial_mean_field(path)
    K = float(np.mean(np.repeat(g.wealth_grid, 5)))
    L = float(np.mean(np.tile(g.income_grid, 200)))
    r = 0.36 * (L / (K + 1e-6)) ** 0.64
    W = 0.64 * (K / (L + 1e-6)) ** 0.36
    np.testing.assert_allclose(g.observation(mu, path, 0), [r, W], rtol=1e-13)
    s = 7 * 5 + 2
    c = (1 + r) * g.wealth_grid[7] + W * g.income_grid[2]
    assert math.isclose(g.reward(s, 10, mu, mu, path, 0), -1 / (c * 0.525), rel_tol=1e-12)
    assert math.isclose(g.reward(s, 10, mu, mu, path, 127), -1 / c, rel_tol=1e-12)
    with pytest.raises(NotImplementedError):
        rg.ref_macro().noise_paths()


# ----- exploitability -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear_quadratic", "beach_bar"])
def test_information_consistent_exploitability_is_bracketed(name):
    game = SMALL[name]()
    res = rg.exploitability(game, rg.uniform_policy(game))
    assert -1e-9 <= res["exploitability_info"] <= res["exploitability"] + 1e-9
    # for these games the deviator's prior-weighted backward induction is realisable
    assert math.isclose(
        res["best_response_info_return"], res["best_response_info_realised_return"], rel_tol=1e-12, abs_tol=1e-9
    )
    off = SMALL[name](common_noise=False)
    res = rg.exploitability(off, rg.uniform_policy(off))
    assert math.isclose(res["exploitability"], res["exploitability_info"], rel_tol=1e-12, abs_tol=1e-12)


def test_history_aware_policy_is_evaluated_per_history():
    # A policy that reads the observation history: in the linear-quadratic game the
    # mean at t = 1 reveals z, so a policy leaning against the shift must do better
    # than the uniform one on the common-noise game.
    game = SMALL["linear_quadratic"]()
    n, m = game.n_states, game.n_actions

    def lean(t, obs):
        table = np.full((n, m), 1.0 / m)
        if t >= 1:
            a = 0 if obs[1][0] > obs[0][0] else m - 1
            table = np.zeros((n, m))
            table[:, a] = 1.0
        return table

    mus_up = rg.rollout(game, lean, 1)
    mus_dn = rg.rollout(game, lean, -1)
    assert not np.allclose(mus_up[2], mus_dn[2])
    res = rg.exploitability(game, lean)
    assert res["exploitability_info"] >= -1e-9
