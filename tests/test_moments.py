"""Moments and impulse responses: inequality measures in closed form, the macro game's
moments against a hand computation, expectations over paths, impulse responses."""

from __future__ import annotations

import csv
import itertools
import json
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import one_error_line
from mfax.dynamics import noise_batch
from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import rollout_batch
from mfax.evaluation.moments import Moments, impulse_response, path_moments, shock_innovations
from mfax.games import BeachBar, Macro, MacroNoise
from mfax.games.base import MomentSpec, moment_paths
from mfax.games.inequality import gini, lorenz_curve, top_share
from mfax.policies import parse_policy
from mfax.run.export import export


# -- inequality of a discrete distribution ------------------------------------------------
@jax.jit
def _measures(mass, values):
    """Gini, top 10% and top 1% shares, the Lorenz curve at 0, 0.1, ..., 1 (one program per
    size: eager operations would each compile)."""
    shares = jnp.linspace(0.0, 1.0, 11)
    return (
        gini(mass, values),
        top_share(mass, values, 0.1),
        top_share(mass, values, 0.01),
        lorenz_curve(mass, values, shares),
    )


def _gini_by_pairs(mass, values):
    """Mean absolute difference over twice the mean, by brute force over pairs."""
    mass = np.asarray(mass, dtype=np.float64) / np.sum(mass)
    values = np.asarray(values, dtype=np.float64)
    total = sum(
        mass[i] * mass[j] * abs(values[i] - values[j]) for i, j in itertools.product(range(len(mass)), repeat=2)
    )
    return total / (2 * mass @ values)


def test_gini_of_a_degenerate_distribution_is_zero():
    values = jnp.array([0.0, 1.0, 2.5, 7.0])
    for atom in (1, 2, 3):
        g, top10, top1, lorenz = _measures(jnp.zeros(4).at[atom].set(1.0), values)
        assert float(g) == pytest.approx(0.0, abs=1e-6)
        # everyone holds the same: the Lorenz curve is the diagonal, the top q hold q
        np.testing.assert_allclose(lorenz, np.linspace(0, 1, 11), atol=1e-6)
        assert (float(top10), float(top1)) == pytest.approx((0.1, 0.01), rel=1e-5)


def test_gini_and_top_shares_of_uniform_distributions_are_closed_form():
    # equal mass on 0, 1, ..., n - 1: G = (n + 1) / (3 n) (mean absolute difference
    # (n^2 - 1) / (3 n) over twice the mean n - 1; 1/3 in the continuous limit); the Lorenz
    # curve L(p) = p (n p - 1) / (n - 1) at the atoms' edges p = k / n
    g, top10, top1, lorenz = _measures(jnp.full(100, 0.01), jnp.arange(100, dtype=float))
    assert float(g) == pytest.approx(101 / 300, rel=1e-5)
    # the top 10% hold 90 + ... + 99 = 945 of 4950; the top 1%: 99
    assert float(top10) == pytest.approx(945 / 4950, rel=1e-5)
    assert float(top1) == pytest.approx(99 / 4950, rel=1e-4)
    p = np.linspace(0, 1, 11)
    np.testing.assert_allclose(lorenz, p * (100 * p - 1).clip(0) / 99, atol=1e-6)
    # 5 equal atoms 0..4 (20% each): G = 6/15; the top 10% is half of the top atom (mass
    # split at the cut): 0.5 * 4 / 10, and the top 1% a twentieth of it
    g, top10, top1, _ = _measures(jnp.full(5, 0.2), jnp.arange(5, dtype=float))
    assert float(g) == pytest.approx(6 / 15, rel=1e-5)
    assert (float(top10), float(top1)) == pytest.approx((0.2, 0.02), rel=1e-5)


def test_gini_equals_the_mean_absolute_difference_on_an_uneven_distribution():
    # an empty atom, an atom at zero wealth, unnormalised mass
    mass = np.array([0.6, 0.0, 0.5, 0.1, 0.8])
    values = np.array([0.0, 0.5, 1.0, 4.0, 9.0])
    g, top10, _, _ = _measures(jnp.asarray(mass), jnp.asarray(values))
    assert float(g) == pytest.approx(_gini_by_pairs(mass, values), rel=1e-5)
    # the top 10% of the population sit in the top atom (40% of the mass)
    assert float(top10) == pytest.approx(0.1 * 9 / (mass @ values / 2), rel=1e-5)


def test_values_in_any_order_give_the_measures_of_the_sorted_distribution():
    """The functions took the values as ascending without checking: unsorted values gave
    a meaningless curve (Gini -0.222 for equal mass on 2, 0, 1, whose Gini is 4/9;
    found by an independent audit). They are sorted first, masses with them; ascending
    values give the same bits as before."""
    g = gini(jnp.full(3, 1 / 3), jnp.asarray([2.0, 0.0, 1.0]))
    assert float(g) == pytest.approx(4 / 9, rel=1e-6)
    mass = np.array([0.6, 0.0, 0.5, 0.1, 0.8])
    values = np.array([0.0, 0.5, 1.0, 4.0, 9.0])
    shuffled = np.array([3, 0, 4, 2, 1])
    for got, want in zip(
        _measures(jnp.asarray(mass[shuffled]), jnp.asarray(values[shuffled])),
        _measures(jnp.asarray(mass), jnp.asarray(values)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert float(gini(jnp.asarray(mass[shuffled]), jnp.asarray(values[shuffled]))) == pytest.approx(
        _gini_by_pairs(mass, values), rel=1e-5
    )


# -- the macro game's moments against a hand computation ----------------------------------
SMALL = dict(num_wealth=3, num_income=2, num_actions=4, horizon=3)


def _hand_moments(game, mu, probs, z, last):
    """The moments computed by hand (float64 numpy) from the game's grids and formulas."""
    wg, yg = game.wealth_grid_np(), game.income_grid_np()
    w, y = np.repeat(wg, len(yg)), np.tile(yg, len(wg))
    alpha = game.alpha
    k, lab = mu @ w, mu @ y
    r = np.exp(z) * alpha * (lab / (k + 1e-6)) ** (1 - alpha)
    wage = np.exp(z) * (1 - alpha) * (k / (lab + 1e-6)) ** alpha
    out = np.exp(z) * k**alpha * lab ** (1 - alpha)
    wealth_mass = mu.reshape(len(wg), len(yg)).sum(1)

    # top shares: walk down from the richest atom, taking a fraction of the atom at the cut
    def top(q):
        held, left = 0.0, q
        for i in reversed(range(len(wg))):
            take = min(wealth_mass[i], left)
            held, left = held + take * wg[i], left - take
        return held / k

    cash = (1 + r) * w + wage * y
    consumed = 1.0 if last else probs @ ((np.arange(game.num_actions) + 0.5) / game.num_actions)
    saving = cash * (1 - consumed) - w
    income = r * w + wage * y
    by = (len(wg), len(yg))
    return {
        "K": k,
        "Y": out,
        "K_over_Y": k / out,
        "L": lab,
        "r": r,
        "W": wage,
        "z": z,
        "gini_wealth": _gini_by_pairs(wealth_mass, wg),
        "top10_wealth_share": top(0.1),
        "top1_wealth_share": top(0.01),
        "C": mu @ (cash * consumed),
        "saving_rate": mu @ saving / (mu @ income),
        "saving_rate_by_income": (mu.reshape(by) * saving.reshape(by)).sum(0)
        / (mu.reshape(by) * income.reshape(by)).sum(0),
        "saving_rate_by_state": (saving / income).reshape(by),
    }


@pytest.mark.parametrize("last", [False, True])
def test_macro_moments_match_a_hand_computation(last):
    game = Macro(**SMALL)
    mu = np.array([0.05, 0.15, 0.3, 0.1, 0.25, 0.15])
    probs = np.random.default_rng(3).dirichlet(np.ones(4), 6)
    z = 0.04
    noise = MacroNoise(z=jnp.full(game.horizon + 1, z))
    t = jnp.int32(game.horizon - 1 if last else 1)
    found = {
        **jax.jit(game.moments)(jnp.asarray(mu), noise, t),
        **jax.jit(game.decision_moments)(jnp.asarray(mu), jnp.asarray(probs), noise, t),
    }
    assert set(found) == set(game.moment_specs())
    expected = _hand_moments(game, mu, probs, z, last)
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(found[name]), value, rtol=2e-5, err_msg=name)
    # the national accounts: consumption plus net saving is income r K + W L, which is Y
    assert float(found["C"]) + float(found["saving_rate"]) * (
        expected["r"] * expected["K"] + expected["W"] * (mu @ np.tile(game.income_grid_np(), 3))
    ) == pytest.approx(expected["Y"], rel=1e-4)
    lorenz = np.asarray(found["lorenz_wealth"])
    assert lorenz[0] == pytest.approx(0.0, abs=1e-7) and lorenz[-1] == pytest.approx(1.0, rel=1e-6)
    assert np.all(np.diff(lorenz) >= -1e-7)


# -- along paths: expectations, quantiles, a declared protocol ---------------------------
@pytest.fixture(scope="module")
def small_macro():
    """A small economy, a fixed policy, its moments on 3 sampled paths 2 at a time."""
    game = Macro(num_wealth=10, horizon=6)
    policy = parse_policy(game, "action:3")
    batch = noise_batch(game, "sample", jax.random.PRNGKey(1), 3)
    return game, policy, batch, path_moments(game, policy, batch, chunk=2)


def _push(game, policy, noise):
    """The mean fields ``(T+1, n)`` along one path (a batch of one: the program the
    impulse responses run)."""
    return np.asarray(rollout_batch(game, policy, jax.tree.map(lambda x: x[None], noise)).mu[0])


def test_path_moments_are_the_push_forwards_and_expectation_the_weighted_mean(small_macro):
    game, policy, batch, moments = small_macro
    assert moments.values["K"].shape == (3, game.horizon + 1) and moments.values["C"].shape == (3, game.horizon)
    assert moments.values["saving_rate_by_state"].shape == (3, game.horizon, 10, 5)
    assert moments.values["lorenz_wealth"].shape == (3, game.horizon + 1, 101)
    np.testing.assert_allclose(moments.expected()["Y"], moments.values["Y"].mean(0), rtol=1e-6)
    # the weights sum to one in float64 (3 float32 thirds summed to 1 + 3e-8: every
    # expectation of `mfax eval --json` was that much above the export's)
    assert moments.weight.sum() == 1.0
    np.testing.assert_allclose(moments.expected()["K"], moments.values["K"].astype(np.float64).mean(0), rtol=1e-14)
    # K along every path (the last one padded into the second chunk) is its push-forward's
    w = np.repeat(game.wealth_grid_np(), game.num_income)
    for p in range(3):
        mu = _push(game, policy, jax.tree.map(lambda x, p=p: x[p], batch.noise))
        np.testing.assert_allclose(moments.values["K"][p], mu @ w, rtol=1e-5)


def test_weighted_quantile_over_paths():
    spec = {"x": MomentSpec("x")}
    values = {"x": np.array([[3.0], [1.0], [2.0]])}
    moments = Moments(spec, values, np.array([0.2, 0.5, 0.3]), exact=True)
    assert moments.quantile(0.5)["x"][0] == 1.0  # 1.0 alone holds 0.5
    assert moments.quantile(0.6)["x"][0] == 2.0
    assert moments.quantile(1.0)["x"][0] == 3.0
    assert moments.expected()["x"][0] == pytest.approx(0.2 * 3 + 0.5 + 0.3 * 2)
    with pytest.raises(mfax.GameError, match=r"quantile level must be a number in \[0, 1\], got 1.5"):
        moments.quantile(1.5)


def test_the_json_record_keeps_every_digit_of_its_precision():
    """eval --json's moments were cut to 7 significant digits: a float64 run's (and the
    paths' weights, 1/3 as 0.3333333) could not be read back beyond 1e-7."""
    spec = {"x": MomentSpec("x")}
    for dtype in (np.float64, np.float32):
        weight = np.full(3, 1.0 / 3.0, dtype)
        values = {"x": (np.array([[1.0, 2.0], [3.0, 5.0], [7.0, 11.0]]) / 3.0).astype(dtype)}
        record = Moments(spec, values, weight, exact=True).as_dict()
        # float32 weights: 9 digits, no float32 rounding digits dressed as float64's
        assert record["weight"] == ([1.0 / 3.0] * 3 if dtype == np.float64 else [0.333333343] * 3)
        back = np.asarray(record["moments"]["x"]["per_path"], dtype=dtype)
        np.testing.assert_array_equal(back, values["x"])  # float32: 9 digits read back exactly
        expected = np.asarray(record["moments"]["x"]["expected"])
        assert np.abs(expected / Moments(spec, values, weight, exact=True).expected()["x"] - 1).max() < (
            1e-15 if dtype == np.float64 else 1e-8
        )


def test_a_game_without_moments_is_refused():
    beach = BeachBar(num_states=11, horizon=4)
    policy = parse_policy(beach, "uniform")
    nothing = NoiseBatch(None, np.ones(1), exact=True)  # refused before any path is looked at
    with pytest.raises(mfax.GameError, match=r"\(Game.moment_specs\); packaged games that do: macro$"):
        path_moments(beach, policy, nothing)
    with pytest.raises(mfax.GameError, match="declares no moments"):
        impulse_response(beach, policy, np.zeros(5))


@pytest.mark.slow
def test_a_mismatched_moment_declaration_is_refused():
    game = Macro(num_wealth=10, horizon=6)

    class Liar:  # declares a moment its moments() does not return
        name = "liar"

        def moment_specs(self):
            return {**game.moment_specs(), "extra": MomentSpec("extra")}

        def __getattr__(self, attr):
            return getattr(game, attr)

    mu = jnp.full((1, game.horizon + 1, game.n_states), 1.0 / game.n_states)
    probs = jnp.full((1, game.horizon, game.n_states, game.n_actions), 1.0 / game.n_actions)
    noise = MacroNoise(z=jnp.zeros((1, game.horizon + 1)))
    with pytest.raises(mfax.GameError, match=r"liar\.moments returned"):
        moment_paths(Liar(), mu, probs, noise)


# -- impulse responses ------------------------------------------------------------------
def test_odd_shock_dates_sizes_quantiles_and_curve_times_are_one_line(small_macro):
    """Found by an audit of the Python API: a date True set the shock at every date
    (numpy reads a bool index as a mask); a curve time -1 drew T labelled "t = -1"; the
    others were tracebacks."""
    from mfax.run.plots import check_curve_times

    game, policy, _, moments = small_macro
    for call, says in (
        (lambda: shock_innovations(6, -1.0, True), "the shock's date must be an integer in 0..6 (the horizon T)"),
        (lambda: shock_innovations(6, "big", 1), "the shock's size must be a finite number"),
        (lambda: shock_innovations(6, None, 1), "the shock's size must be a finite number"),
        (lambda: impulse_response(game, policy, "abc"), "innovations must be T + 1 = 7 numbers"),
        (lambda: moments.quantile("0.5"), "a quantile level must be a number in [0, 1]"),
        (lambda: moments.quantile(True), "a quantile level must be a number in [0, 1]"),
        (lambda: check_curve_times([-1], 6), "the times of the curves must be integers in 0..6"),
        (lambda: check_curve_times([7], 6), "the times of the curves must be integers in 0..6"),
        (lambda: check_curve_times([1.5], 6), "the times of the curves must be integers in 0..6"),
        (lambda: check_curve_times("0", 6), "the times of the curves must be integers in 0..6"),
        # exp(z) overflows: NaN capital and output were returned as the response, silently
        (lambda: impulse_response(game, policy, shock_innovations(6, 1e6, 1)), "the response is not finite (the"),
    ):
        with pytest.raises(mfax.GameError) as err:
            call()
        assert says in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert shock_innovations(6, -1.0, np.int64(2))[2] == -1.0
    check_curve_times([0, 6], 6)


def test_impulse_response_of_a_zero_shock_is_zero(small_macro):
    game, policy, _, _ = small_macro
    irf = impulse_response(game, policy, np.zeros(game.horizon + 1))
    for name, deviation in irf.deviation().items():
        np.testing.assert_array_equal(np.nan_to_num(deviation), 0.0, err_msg=name)
    # a NaN innovation gave NaN deviations (the command line refused it, the API did not)
    with pytest.raises(mfax.GameError, match="innovations must be finite numbers; entry 2 is nan"):
        impulse_response(game, policy, np.array([0.0, 0.0, np.nan] + [0.0] * (game.horizon - 2)))
    # a shock the game's numbers cannot hold (the response is computed in float64)
    with pytest.raises(mfax.GameError, match=r"the response is not finite \(the shocked path's noise reaches z = "):
        impulse_response(game, policy, shock_innovations(game.horizon, 1e300, 1))


def test_impulse_response_baseline_is_the_no_shock_push_forward_and_timing(small_macro):
    game, policy, _, _ = small_macro
    at = 2
    irf = impulse_response(game, policy, shock_innovations(game.horizon, -1.0, at))
    # the baseline: z = 0 throughout (the mean and median path of z), pushed forward
    mu = _push(game, policy, MacroNoise(z=jnp.zeros(game.horizon + 1)))
    w = np.repeat(game.wealth_grid_np(), game.num_income)
    np.testing.assert_allclose(irf.baseline["K"], mu @ w, rtol=1e-6)
    np.testing.assert_array_equal(irf.noise[0].z, 0.0)
    # the shock: one standard deviation down at t0, then the AR(1) decay
    t = np.arange(game.horizon + 1)
    z = np.where(t >= at, -game.z_std * game.z_persistence ** (t - at), 0.0)
    np.testing.assert_allclose(irf.shocked["z"], z, rtol=1e-5, atol=1e-9)
    deviation = irf.deviation()
    np.testing.assert_allclose(deviation["z"], 100 * z, rtol=1e-5, atol=1e-7)
    # capital at t is saved at t - 1: untouched up to t0, lower after (a fixed consumption share)
    np.testing.assert_array_equal(deviation["K"][: at + 1], 0.0)
    assert np.all(deviation["K"][at + 1 :] < 0) and deviation["Y"][at] < 0
    # no shock moves the labour supply (the income process ignores z): its float32 rounding
    # between the two paths (6e-8 here) is 0, not a response (it showed -2.4e-5%)
    np.testing.assert_array_equal(deviation["L"], 0.0)
    with pytest.raises(mfax.GameError, match=r"date must be an integer in 0\.\.6"):
        shock_innovations(game.horizon, -1.0, 7)


def test_a_small_shock_has_its_response_and_rounding_none(small_macro):
    """Computed in float32, a shock of 1e-4 sd showed exactly 0 for every response but z's
    (each difference within 64 units of float32's precision was set to the baseline: real
    responses of 30 units among them; found by an audit), and keeping such differences
    showed rounding as responses of either sign (found by a review). The two paths are now
    pushed forward in float64, a float32 policy's parameters widened."""
    game, policy, _, _ = small_macro
    assert not jax.config.jax_enable_x64  # (this process computes in float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny = impulse_response(game, policy, shock_innovations(game.horizon, -1e-4, 2))
        unit = impulse_response(game, policy, shock_innovations(game.horizon, -1e-2, 2))
    assert not jax.config.jax_enable_x64 and tiny.baseline["K"].dtype == np.float64
    small, big = tiny.deviation(), unit.deviation()
    # first order: the tiny shock's response is 1e-2 of a 1e-2 sd shock's (to the second-order
    # term, 1e-4 relative: 1.5e-2 between -1 and -1e-2 sd)
    for name in ("K", "Y", "r", "W", "C", "gini_wealth", "top10_wealth_share"):
        np.testing.assert_allclose(100 * small[name], big[name], rtol=1e-3, atol=1e-12, err_msg=name)
    assert np.all(small["K"][3:] < 0) and small["Y"][2] < 0
    # no shock moves the labour supply: its rounding between the paths is 0, at either size
    np.testing.assert_array_equal(small["L"], 0.0)
    np.testing.assert_array_equal(big["L"], 0.0)


def test_a_game_that_does_not_run_in_float64_gets_its_response_in_its_own_precision(small_macro, monkeypatch):
    """Computing the response in float64 broke a plug-in game that keeps float32 numbers of
    its own (a scan started from float32 zeros): a JAX traceback where the float32
    computation had worked (found by a review)."""
    game, policy, _, _ = small_macro
    real = Macro.noise_from_innovations

    def keeps_float32(self, innovations):
        jax.lax.scan(lambda c, e: (0.9 * c + e, c), jnp.zeros((), jnp.float32), innovations)
        return real(self, innovations)

    monkeypatch.setattr(Macro, "noise_from_innovations", keeps_float32)
    with pytest.warns(mfax.MfaxWarning, match=r"game 'macro' does not run in float64 \(.*\); its impulse response is"):
        irf = impulse_response(game, policy, shock_innovations(game.horizon, -1.0, 2))
    assert irf.baseline["K"].dtype == np.float32 and irf.deviation()["Y"][2] < 0
    assert not jax.config.jax_enable_x64


def test_irf_summary_of_a_shock_at_the_horizon_and_innovations_parsing(small_macro, capsys):
    from mfax.run.cli_outputs import _print_irf, parse_innovations

    game, policy, _, _ = small_macro
    T = game.horizon
    # a shock at T moves the mean field only at T: the decisions' moments (t < T) have no
    # impact or peak to show (it indexed past their end)
    _print_irf(impulse_response(game, policy, shock_innovations(T, -1.0, T)))
    shown = {line.split("  ")[1].strip(): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert any(line.split()[-4:-1] == ["-", "-", "-"] for line in shown.values())
    # every row reads as impact, peak, its date and the last deviation, apart even where a
    # value is wider than its column ("20-0.0005007pt" ran the date into the last value)
    _print_irf(impulse_response(game, policy, shock_innovations(T, -1.0, 2)))
    for line in capsys.readouterr().out.splitlines()[2:]:
        impact, peak, at, last = line.split()[-4:]
        assert at.isdigit() and all(x.endswith(("%", "pt")) for x in (impact, peak, last)), line
        assert all(float(x.rstrip("%pt")) == float(x.rstrip("%pt")) for x in (impact, peak, last))
    # the label column fits the longest label: "net saving rate S_t / (r_t K_t + W_t L_t)"
    # and "labour L_t ..." pushed their rows' values 4-8 characters right of the others' (a review)
    response = impulse_response(game, policy, shock_innovations(T, -1.0, 2))
    labels = [spec.label for spec in response.specs.values() if not spec.axes]
    width = max(len(label) for label in labels)
    assert width > 36  # (the case reviewed: a label longer than the old fixed column)
    _print_irf(response)
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row[: 2 + width].strip() for row in rows] == labels
    impacts = [row[3 + width : 18 + width].strip() for row in rows]  # the impact column, under its header
    assert all(row[2 + width] == " " for row in rows) and all(x.endswith(("%", "pt", "-")) for x in impacts), rows
    from mfax.run.cli import _print_moments

    _print_moments(small_macro[3], T)
    table = capsys.readouterr().out.splitlines()[1:]
    assert len({len(line) for line in table}) == 1, table  # the header and every row: one set of columns
    # a zero shock at --at 5: the impact column is the date given, not t = 0
    _print_irf(impulse_response(game, policy, shock_innovations(T, 0.0, 5)), 5)
    assert "impact t = 5" in capsys.readouterr().out
    np.testing.assert_array_equal(parse_innovations("0, 1.5,0,0,0,0,-2", T), [0, 1.5, 0, 0, 0, 0, -2])
    for text, says in (
        ("0,1", "needs T + 1 = 7 numbers (e_0..e_T), got 2"),
        ("0,,1,0,0,0,0,0", "entry 1 is empty"),  # not skipped: it would move the shock to t = 1
        ("0,nan,0,0,0,0,0", "entry 1 is nan; innovations must be finite"),
        ("0,x,0,0,0,0,0", "entry 1 'x' is not a number"),
    ):
        with pytest.raises(mfax.GameError, match=re.escape(says)):
            parse_innovations(text, T)


# -- export -----------------------------------------------------------------------------
def _two_paths(batch):
    """The first two paths of a batch (the fixture's compiled chunk of two)."""
    return NoiseBatch(jax.tree.map(lambda x: x[:2], batch.noise), batch.weight[:2] / batch.weight[:2].sum(), False)


def test_export_npz_loads_back_what_the_push_forward_gives(small_macro, tmp_path):
    game, policy, batch, moments = small_macro
    path = tmp_path / "out.npz"
    info = export(game, policy, _two_paths(batch), path, "npz", source={"run": "here"})
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    manifest = json.loads(str(arrays.pop("manifest")))
    assert manifest == info and manifest["run"] == "here" and manifest["paths"] == 2
    # the size the 2 GiB limit is checked with: every array counted (the moments were not:
    # 5% under at the published size), within the manifest and the file's own overhead
    from mfax.run.export import estimate_bytes

    numbers = sum(v.size for k, v in arrays.items() if not k.startswith(("noise_", "state_", "weight")))
    assert estimate_bytes(game, 2, "npz") == 4 * numbers
    assert arrays["mean_field"].shape == (2, game.horizon + 1, game.n_states)
    assert arrays["policy"].shape == (2, game.horizon, game.n_states, game.n_actions)
    np.testing.assert_allclose(arrays["policy"].sum(-1), 1.0, rtol=1e-5)
    mu = _push(game, policy, jax.tree.map(lambda x: x[1], batch.noise))
    np.testing.assert_allclose(arrays["mean_field"][1], mu, rtol=1e-5, atol=1e-8)
    for name in game.moment_specs():
        np.testing.assert_allclose(arrays[f"moment_{name}"], moments.values[name][:2], rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(arrays["noise_z"], np.asarray(batch.noise.z[:2]))
    np.testing.assert_allclose(arrays["aggregate_interest_rate_r_t"], moments.values["r"][:2], rtol=1e-6)
    assert manifest["aggregates"]["interest_rate_r_t"] == "interest rate r_t"
    assert manifest["arrays"]["moment_lorenz_wealth"] == [2, game.horizon + 1, 101]
    # written again only over mfax's own export, and only when asked
    with pytest.raises(mfax.GameError, match=r"already holds an mfax export; use overwrite=True or another path$"):
        export(game, policy, _two_paths(batch), path, "npz")
    other = tmp_path / "mine.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(mfax.GameError, match="it is not an export mfax wrote"):
        export(game, policy, _two_paths(batch), other, "npz", overwrite=True)
    assert set(np.load(other).files) == {"x"}
    with pytest.raises(
        mfax.GameError, match=r"^num_paths must be in 1\.\.3 \(the run's evaluation paths\), got 10000000"
    ):
        export(game, policy, batch, tmp_path / "many.npz", "npz", num_paths=10_000_000)  # not "export at most N"
    single = tmp_path / "single.npz"  # one array in .npy format, not an archive (np.load gives no context manager)
    with open(single, "wb") as f:
        np.save(f, np.arange(3))
    with pytest.raises(mfax.GameError, match="it is not an export mfax wrote"):
        export(game, policy, _two_paths(batch), single, "npz", overwrite=True)
    np.testing.assert_array_equal(np.load(single), np.arange(3))
    # an npz export is a *.npz file, a csv export a folder
    for name, fmt, says in (
        ("mine.npy", "npz", "an npz export is one file named *.npz, got"),
        (
            "notes.txt",
            "npz",
            "(for example '" + str(tmp_path / "notes.npz") + '\'; a folder of CSV files: format="csv")',
        ),
        ("table.npz", "csv", "a csv export is a folder, got"),
    ):
        with pytest.raises(mfax.GameError, match=re.escape(says)):
            export(game, policy, _two_paths(batch), tmp_path / name, fmt)
        assert not (tmp_path / name).exists()
    # a symbolic link is named as one (a link to a folder was "not a directory")
    (tmp_path / "folder").mkdir()
    for name, to, fmt in (("linked", "folder", "csv"), ("linked.npz", "mine.npz", "npz")):
        (tmp_path / name).symlink_to(tmp_path / to)
        says = f"refusing to write the export at {str(tmp_path / name)!r}: it is a symbolic link (to "
        with pytest.raises(mfax.GameError, match=re.escape(says) + ".*give the path it points to$"):
            export(game, policy, _two_paths(batch), tmp_path / name, fmt, overwrite=True)
    assert not any((tmp_path / "folder").iterdir()) and set(np.load(other).files) == {"x"}


def test_export_refuses_names_that_would_share_one_key():
    from mfax.run.export import check_slugs

    check_slugs(["interest rate r_t", "K", "wage"], "aggregates")  # distinct: nothing to say
    with pytest.raises(mfax.GameError, match="aggregates 'K_t' and 'k_t' would be exported under one name 'k_t'"):
        check_slugs(["K_t", "Y", "k_t"], "aggregates")


def test_a_csv_export_refuses_a_game_name_that_is_another_column_s(small_macro, tmp_path):
    """A game's state coordinate named ``state`` (or a moment ``t``, an aggregate
    ``path``) gave a CSV file two columns of one name: csv.DictReader read the game's
    values as the index (found by an audit)."""
    from mfax.run.export import collect, write_csv

    game, policy, batch, _ = small_macro
    data = collect(game, policy, _two_paths(batch))
    data["states"]["state"] = np.arange(game.n_states, dtype=float)  # (what such a game's export collects)
    says = "states.csv would have two columns named 'state' (a name of the game's aggregates, moments"
    with pytest.raises(
        mfax.GameError, match=re.escape(says) + r".*index column: path, t, state\); rename it in the game$"
    ):
        write_csv(tmp_path / "csv", game, data, {})
    assert not (tmp_path / "csv").exists()


def test_export_csv_has_the_header_and_rows_its_manifest_says(small_macro, tmp_path):
    game, policy, batch, moments = small_macro
    folder = tmp_path / "csv"
    info = export(game, policy, _two_paths(batch), folder, "csv")
    assert json.loads((folder / "mfax-export.json").read_text()) == info
    T, n = game.horizon, game.n_states
    rows = {
        "paths.csv": 2,
        "states.csv": n,  # what each state is: an economist read state indices blind
        "mean_field.csv": 2 * (T + 1) * n,
        "policy.csv": 2 * T * n,
        "aggregates.csv": 2 * (T + 1),
        "moments.csv": 2 * (T + 1),
        "moments_expected.csv": T + 1,
        "moment_lorenz_wealth.csv": 2 * (T + 1) * 101,
        "moment_saving_rate_by_income.csv": 2 * T * 5,
        "moment_saving_rate_by_state.csv": 2 * T * n,
        "noise_z.csv": 2 * (T + 1),  # the noise, as the npz's noise_z (it was only in the npz)
    }
    assert {name: entry["rows"] for name, entry in info["files"].items()} == rows
    for name, entry in info["files"].items():
        lines = list(csv.reader((folder / name).read_text().splitlines()))
        assert lines[0] == entry["columns"] and len(lines) - 1 == entry["rows"], name
    states = list(csv.DictReader((folder / "states.csv").read_text().splitlines()))
    wealth, income = game.wealth_grid_np(), game.income_grid_np()
    s = 2 * len(income) + 1  # state s = i num_income + j
    assert float(states[s]["wealth"]) == pytest.approx(wealth[2]) and float(states[s]["income"]) == pytest.approx(
        income[1]
    )
    with np.load(export(game, policy, _two_paths(batch), tmp_path / "e.npz", "npz") and tmp_path / "e.npz") as data:
        np.testing.assert_allclose(data["state_wealth"], np.repeat(wealth, len(income)))
    table = list(csv.DictReader((folder / "moments.csv").read_text().splitlines()))
    assert float(table[T + 1 + 3]["K"]) == pytest.approx(float(moments.values["K"][1, 3]), rel=1e-7)
    assert table[T]["C"] == ""  # no decision at t = T
    # a folder of someone else's files is never written into; mfax's own is replaced on request
    with pytest.raises(mfax.GameError, match="already holds an mfax export"):
        export(game, policy, _two_paths(batch), folder, "csv")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.csv").write_text("a,b\n")
    with pytest.raises(mfax.GameError, match="a non-empty directory that is not an mfax export"):
        export(game, policy, _two_paths(batch), theirs, "csv", overwrite=True)
    assert (theirs / "notes.csv").read_text() == "a,b\n"
    with pytest.raises(mfax.GameError, match="unknown export format 'xlsx'; allowed: npz, csv"):
        export(game, policy, _two_paths(batch), tmp_path / "x", "xlsx")
    # --overwrite of an export whose game had fewer tables (beach bar: no moments): a user's
    # moments.csv there is not the old export's, and stays
    marker = folder / "mfax-export.json"
    record = json.loads(marker.read_text())
    del record["files"]["moments.csv"]
    marker.write_text(json.dumps(record))
    (folder / "moments.csv").write_text("my own moments analysis\n")
    with pytest.raises(mfax.GameError, match=r"refusing to overwrite .*moments\.csv'.*did not write it"):
        export(game, policy, _two_paths(batch), folder, "csv", overwrite=True)
    assert (folder / "moments.csv").read_text() == "my own moments analysis\n"
    assert (folder / "policy.csv").is_file()  # nothing removed before the refusal


def test_export_csv_reads_back_to_the_npz_numbers_in_their_own_precision(small_macro, tmp_path):
    """CSV cells were written with 9 significant digits whatever the precision: an --x64
    export lost about 8 digits (K 12.2275823 for 12.227582346777575; found by an
    independent audit). Each cell is now the shortest decimal that reads back to the
    stored number: float32 cells equal the npz's float32 numbers, float64 cells keep 17
    digits."""
    from mfax.run.export import _cell

    game, policy, batch, _ = small_macro
    export(game, policy, _two_paths(batch), tmp_path / "csv", "csv")
    export(game, policy, _two_paths(batch), tmp_path / "e.npz", "npz")
    with np.load(tmp_path / "e.npz") as data:
        mean_field = data["mean_field"]
        noise_z = data["noise_z"]
    rows = list(csv.reader((tmp_path / "csv" / "mean_field.csv").read_text().splitlines()))[1:]
    read = np.asarray([float(row[-1]) for row in rows]).astype(mean_field.dtype)
    np.testing.assert_array_equal(read, mean_field.reshape(-1))
    noise = list(csv.DictReader((tmp_path / "csv" / "noise_z.csv").read_text().splitlines()))
    assert list(noise[0]) == ["path", "index_1", "value"]
    got = np.zeros_like(noise_z)
    for row in noise:
        got[int(row["path"]), int(row["index_1"])] = float(row["value"])
    np.testing.assert_array_equal(got, noise_z)
    assert _cell(np.float64(12.227582346777575)) == "12.227582346777575"
    assert _cell(np.float64(1 / 150)) == "0.006666666666666667"
    assert _cell(np.float32(0.1)) == "0.1" and _cell(np.float32(np.nan)) == "" and _cell(np.int64(3)) == "3"
    assert _cell(2.5) == "2.5" and _cell(np.float64(1e-300)) == "1e-300"


def test_an_export_cut_short_leaves_the_target_as_it_was(small_macro, tmp_path, monkeypatch):
    """Ctrl-C during a CSV export left a folder with three of its files, every row count
    null, and (--overwrite) the previous export already gone: the files are now written
    aside and moved in together, so the target is the old export or the new one."""
    import mfax.run.export as export_module

    game, policy, batch, _ = small_macro
    folder = tmp_path / "csv"
    export(game, policy, _two_paths(batch), folder, "csv")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real, tables = export_module._table, []

    def interrupted(header, rows):
        tables.append(1)
        if len(tables) == 3:  # the third file of the new export
            raise KeyboardInterrupt
        return real(header, rows)

    monkeypatch.setattr(export_module, "_table", interrupted)
    done: list[bool] = []
    with pytest.raises(KeyboardInterrupt):
        export(game, policy, batch, folder, "csv", overwrite=True, done=done)
    assert not done and {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing left aside either
    tables.clear()
    with pytest.raises(KeyboardInterrupt):  # a new folder: not left behind, empty
        export(game, policy, batch, tmp_path / "new", "csv")
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    info = export(game, policy, batch, folder, "csv", overwrite=True, done=done)
    assert done == [True] and info["paths"] == 3 and sorted(p.name for p in folder.iterdir()) == sorted(before)


def test_an_export_killed_outright_leaves_nothing_that_stops_the_next(small_macro, tmp_path):
    """SIGKILL (or a power cut) during a CSV export leaves its hidden staging folder in the
    target: the next export there was refused as "a non-empty directory that is not an mfax
    export" (``ls`` shows it empty). A killed export's copies are now removed by the next
    export; one being written by a running process is named; a user's folder under such a
    name (holding anything but the CSV files) is left alone."""
    import os
    import subprocess
    import sys

    game, policy, batch, _ = small_macro
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a process id that no longer runs
    folder = tmp_path / "first"
    for name in (f".mfax-export-{ended.pid}-k2j4h5g_", ".mfax-export-a1b2c3d4"):  # (the second: an earlier mfax)
        (folder / name).mkdir(parents=True)
        (folder / name / "mean_field.csv").write_text("path,t,state,mass\n0,0,0,0.5\n")
    export(game, policy, _two_paths(batch), folder, "csv")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert export(game, policy, _two_paths(batch), folder, "csv", overwrite=True)["paths"] == 2  # and again
    empty = folder / f".mfax-export-{ended.pid}-zzzzzzzz"
    empty.mkdir()  # beside an export, empty: just made (its lock comes next), so live for a minute
    with pytest.raises(mfax.GameError, match="another export is being written there"):
        export(game, policy, _two_paths(batch), folder, "csv", overwrite=True)
    os.utime(empty, (empty.stat().st_atime, empty.stat().st_mtime - 120))  # older: a killed export's
    export(game, policy, _two_paths(batch), folder, "csv", overwrite=True)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    # another process writing into the folder: named, and its folder untouched
    live = tmp_path / "live" / f".mfax-export-{os.getppid()}-abcdefgh"
    live.mkdir(parents=True)
    with pytest.raises(mfax.GameError, match=rf"another export is being written there \(process {os.getppid()}, "):
        export(game, policy, _two_paths(batch), live.parent, "csv")
    assert live.is_dir()
    # a user's folder under the name (a file that is not a CSV file): theirs
    mine = tmp_path / "mine" / f".mfax-export-{ended.pid}-abcdefgh"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(mfax.GameError, match="a non-empty directory that is not an mfax export"):
        export(game, policy, _two_paths(batch), mine.parent, "csv")
    assert (mine / "notes.txt").read_text() == "mine"
    # what a failed cleanup of this process left (its own process id): removed by its next
    # export, not refused as another export being written (found in a review)
    own = tmp_path / "own" / f".mfax-export-{os.getpid()}-abcdefgh"
    own.mkdir(parents=True)
    (own / "mean_field.csv").write_text("path,t,state,mass\n")
    assert export(game, policy, _two_paths(batch), own.parent, "csv")["paths"] == 2
    assert not own.exists()


def test_an_export_being_written_from_another_container_is_not_taken_for_a_killed_one(small_macro, tmp_path):
    """A staging folder's writer was judged by the process id in its name: an export
    written into a shared folder from another container (process ids of its own, 1 among
    them) was taken for a killed one, whose copies the next export removed mid-write; one
    of the same id as this process's was refused as being written. The writer now holds a
    lock on a file in it (found reviewing the staging)."""
    import fcntl
    import os
    import subprocess
    import sys

    import mfax.run.export as export_module

    game, policy, batch, _ = small_macro
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a process id that does not run here
    writing = tmp_path / "shared" / f".mfax-export-{ended.pid}-abcdefgh"
    writing.mkdir(parents=True)
    (writing / "mean_field.csv").write_text("path,t,state,mass\n")
    fd = os.open(writing / export_module.STAGING_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # (its writer, elsewhere)
    try:
        with pytest.raises(mfax.GameError, match="another export is being written there"):
            export(game, policy, _two_paths(batch), writing.parent, "csv")
        assert (writing / "mean_field.csv").is_file()
    finally:
        os.close(fd)
    # its writer gone (the lock is released with its process): what it left is removed
    assert export(game, policy, _two_paths(batch), writing.parent, "csv")["paths"] == 2 and not writing.exists()
    # a folder named with this process's id whose lock nobody holds: left by another container's
    # process of that id, killed; removed (it was refused as this process's own export)
    left = tmp_path / "same_id" / f".mfax-export-{os.getpid()}-abcdefgh"
    left.mkdir(parents=True)
    (left / export_module.STAGING_LOCK).write_bytes(b"")
    assert export(game, policy, _two_paths(batch), left.parent, "csv")["paths"] == 2 and not left.exists()
    # an export's own lock file is gone with its folder
    assert not [p for p in writing.parent.iterdir() if p.name.startswith(".")]


def test_two_exports_into_one_folder_at_once_never_replace_each_other(small_macro, tmp_path, monkeypatch):
    """Two CSV exports into one folder at once both said "wrote", the second replacing
    the first without --overwrite (the folder was checked only before the data were
    computed); and a lock file made, then locked, could be seen unlocked and its export
    taken for a killed one (found by a review)."""
    import fcntl
    import os

    import mfax.run.export as export_module
    from mfax.run.export import collect, write_csv

    game, policy, batch, _ = small_macro
    data = collect(game, policy, _two_paths(batch))
    # the lock file is made under another name, locked, then renamed: never unlocked under its own
    folder = tmp_path / "lock"
    folder.mkdir()
    held = export_module._hold(folder / export_module.STAGING_LOCK)
    assert export_module._locked(folder / export_module.STAGING_LOCK) is True
    assert not (folder / (export_module.STAGING_LOCK + ".new")).exists()
    os.close(held)
    assert export_module._locked(folder / export_module.STAGING_LOCK) is False
    # another export writing there that started first: this one gives way; one that started later: goes on
    for started, refused in ((1, True), (2**62, False)):
        shared = tmp_path / f"shared{started}"
        other = shared / ".mfax-export-999999-abcdefgh"
        other.mkdir(parents=True)
        (other / export_module.STAGING_LOCK).write_text(f"{started} 999999\n")
        fd = os.open(other / export_module.STAGING_LOCK, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if refused:
                with pytest.raises(mfax.GameError, match="another export is being written there"):
                    write_csv(shared, game, data, {})
                assert sorted(p.name for p in shared.iterdir()) == [other.name]
            else:
                write_csv(shared, game, data, {})
                assert (shared / "mfax-export.json").is_file()
            assert (other / export_module.STAGING_LOCK).is_file()
        finally:
            os.close(fd)
    # an export written there while this one was computed: refused (never replaced without overwrite)
    target = tmp_path / "target"
    real = export_module.collect

    others = []

    def another_export_meanwhile(*args, **kwargs):
        computed = real(*args, **kwargs)
        if not others:
            others.append(True)
            export(game, policy, _two_paths(batch), target, "csv")  # (the other export, whole)
        return computed

    monkeypatch.setattr(export_module, "collect", another_export_meanwhile)
    with pytest.raises(mfax.GameError, match="already holds an mfax export; use overwrite=True or another path"):
        export(game, policy, _two_paths(batch), target, "csv")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    # ... and one that lands between this export's files and their move
    monkeypatch.undo()
    later = tmp_path / "later"
    real_table = export_module._table

    def lands_meanwhile(header, rows):
        if not (later / "mfax-export.json").exists():
            (later / "mfax-export.json").write_text(json.dumps({"mfax_export": 1, "files": {}}))
        return real_table(header, rows)

    monkeypatch.setattr(export_module, "_table", lands_meanwhile)
    with pytest.raises(mfax.GameError, match=r"another export was written into .* while this one was computed"):
        export(game, policy, _two_paths(batch), later, "csv")
    assert sorted(p.name for p in later.iterdir()) == ["mfax-export.json"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_an_export_landing_after_the_last_check_is_not_replaced(small_macro, tmp_path, monkeypatch, fmt):
    """An export finishing between another's last check and its write was read as the one
    to replace, or (npz) replaced outright, without overwrite (found by a review)."""
    import mfax.run.export as export_module

    game, policy, batch, _ = small_macro
    target = tmp_path / ("out" if fmt == "csv" else "out.npz")
    hook = "csv_tables" if fmt == "csv" else "manifest"
    real, landed = getattr(export_module, hook), []

    def lands(*args, **kwargs):
        if not landed:
            landed.append(True)
            export(game, policy, _two_paths(batch), target, fmt)  # (the other export, whole)
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, hook, lands)
    with pytest.raises(mfax.GameError, match="already holds an mfax export; use overwrite=True or another path"):
        export(game, policy, _two_paths(batch), target, fmt, num_paths=1)
    monkeypatch.undo()
    held = export_module.read_manifest(target) if fmt == "npz" else export_module.folder_manifest(target)
    assert held["paths"] == 2  # the other's, whole


def test_an_export_killed_while_moving_its_files_in_is_an_incomplete_export(small_macro, tmp_path, monkeypatch):
    """A kill between the first file moved into place and the manifest left files and no
    manifest (refused as "not an mfax export" by every later export, --overwrite too), or
    an earlier export's manifest over the new files (found by a review)."""
    import fcntl
    import os

    import mfax.run.export as export_module

    game, policy, batch, _ = small_macro
    folder = tmp_path / "out"
    real, moved = os.replace, []

    def killed(src, dst, *args, **kwargs):
        if str(src).endswith(".csv"):
            moved.append(dst)
            if len(moved) == 3:
                raise KeyboardInterrupt  # (a SIGKILL: nothing after it runs; the handlers only remove the copies)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(export_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        export(game, policy, _two_paths(batch), folder, "csv")
    monkeypatch.undo()
    held = export_module.folder_manifest(folder)
    assert held["complete"] is False and {p.name for p in folder.glob("*.csv")} <= set(held["files"])
    with pytest.raises(
        mfax.GameError, match="holds an mfax export killed while its files were moved in; use overwrite"
    ):
        export(game, policy, _two_paths(batch), folder, "csv")
    info = export(game, policy, _two_paths(batch), folder, "csv", overwrite=True)
    assert info["complete"] is True and export_module.folder_manifest(folder) == info
    assert {p.name for p in folder.iterdir()} == {*info["files"], "mfax-export.json"}
    # a writer whose lock file is not yet renamed into place (held under its first name) is live
    other = tmp_path / "shared" / ".mfax-export-999999-abcdefgh"
    other.mkdir(parents=True)
    fd = os.open(other / ".mfax-writing.new", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(mfax.GameError, match="another export is being written there"):
            export(game, policy, _two_paths(batch), other.parent, "csv")
        assert other.is_dir()
    finally:
        os.close(fd)


def test_an_export_into_a_read_only_folder_is_refused_before_it_is_computed(small_macro, tmp_path, monkeypatch):
    """A CSV export into a read-only folder failed after computing, with "Permission
    denied" on a hidden staging folder the user never saw (found by a data-safety audit;
    the tests run as root, so the folder's mode is simulated)."""
    from pathlib import Path

    import mfax.run.export as export_module

    game, policy, batch, _ = small_macro
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(export_module.os, "access", lambda path, mode: Path(path) != locked)
    monkeypatch.setattr(export_module, "collect", lambda *args, **kwargs: pytest.fail("computed first"))
    said = re.escape(f": the folder {str(locked)!r} is read-only")
    for target, fmt in ((locked, "csv"), (locked / "new", "csv"), (locked / "e.npz", "npz")):
        with pytest.raises(mfax.GameError, match=f"^cannot write the export at {re.escape(repr(str(target)))}{said}$"):
            export(game, policy, _two_paths(batch), target, fmt)


# -- a trained run through the command line (slow: trains) ----------------------------------
@pytest.mark.slow
def test_export_plot_and_irf_of_a_trained_run(tmp_path):
    from typer.testing import CliRunner

    from conftest import TINY_NETWORK
    from mfax.run.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    result = mfax.solve(
        "macro",
        "rspg",
        iterations=1,
        eval_every=1,
        eval_paths=3,
        paths=2,
        hp=TINY_NETWORK,
        out=out,
        num_wealth=10,
        horizon=6,
    )
    done = runner.invoke(app, ["export", str(out), "--json"])
    assert done.exit_code == 0, done.output
    with np.load(out / "export.npz") as data:
        np.testing.assert_allclose(data["moment_K"], result.moments().values["K"], rtol=1e-5)
    assert runner.invoke(app, ["export", str(out), "--format", "csv"]).exit_code == 0
    assert json.loads((out / "export" / "mfax-export.json").read_text())["files"]["moments.csv"]["rows"] == 3 * 7
    again = runner.invoke(app, ["export", str(out)])
    assert again.exit_code == 2 and "already holds an mfax export; use --overwrite or another --out" in again.stderr
    many = runner.invoke(app, ["export", str(out), "--paths", "99", "--out", str(tmp_path / "many.npz")])
    assert many.exit_code == 2 and "error: --paths must be in 1..3 (the run's evaluation paths)" in many.stderr
    plotted = runner.invoke(app, ["plot", str(out), "--curves-at", "0,6"])
    assert plotted.exit_code == 0, plotted.output
    assert {"moments.png", "moment_curves.png"} <= {p.name for p in (out / "plots").iterdir()}
    assert runner.invoke(app, ["plot", str(out), "--curves-at", "0,7"]).exit_code == 2
    zero = runner.invoke(app, ["irf", str(out), "--innovations", ",".join(["0"] * 7), "--json"])
    assert zero.exit_code == 0, zero.output
    record = json.loads(zero.stdout)
    assert all(v in (0.0, None) for v in record["moments"]["K"]["deviation"])
    shocked = runner.invoke(app, ["irf", str(out), "--shock", "-1", "--at", "2", "--json"])
    record = json.loads(shocked.stdout)
    api = result.impulse_response(-1.0, 2).deviation()["Y"]
    np.testing.assert_allclose(record["moments"]["Y"]["deviation"], api, rtol=1e-5)
    assert (out / "plots" / "irf.png").is_file() and (out / "irf.json").is_file()
    # a shock of 1e-4 sd: its response (0 when computed in float32), and levels with every digit
    small = runner.invoke(app, ["irf", str(out), "--shock", "-1e-4", "--at", "2", "--json"])
    assert small.exit_code == 0 and "warning" not in small.stderr, small.output
    record = json.loads(small.stdout)
    assert min(record["moments"]["Y"]["deviation"]) < -1e-5 and record["checkpoint_iteration"] == 1
    y = record["moments"]["Y"]
    assert y["deviation"][2] == pytest.approx(100 * (y["shocked"][2] / y["baseline"][2] - 1), rel=1e-6)
    # RUN/irf.json and RUN/plots/irf.png of the user's own (or links to files elsewhere) are
    # not written over: irf refuses, as for a path it is given
    (out / "irf.json").rename(tmp_path / "kept_irf.json")
    (out / "irf.json").write_text("my notes\n")
    one_error_line(runner.invoke(app, ["irf", str(out)]), "refusing to overwrite")
    assert (out / "irf.json").read_text() == "my notes\n"
    (out / "irf.json").unlink()
    (tmp_path / "elsewhere.png").write_text("a figure of mine")
    (out / "plots" / "irf.png").unlink()
    (out / "plots" / "irf.png").symlink_to(tmp_path / "elsewhere.png")
    one_error_line(runner.invoke(app, ["irf", str(out)]), "refusing to overwrite")
    assert (tmp_path / "elsewhere.png").read_text() == "a figure of mine" and not (out / "irf.json").exists()
    (out / "plots" / "irf.png").unlink()
    (tmp_path / "kept_irf.json").rename(out / "irf.json")
    # a figure named NAME.PNG is mfax's the second time too (it was refused as "mfax did not write it")
    for _ in range(2):
        upper = runner.invoke(
            app, ["irf", str(out), "--plot", str(tmp_path / "figs" / "irf.PNG"), "--out", str(tmp_path / "i.json")]
        )
        assert upper.exit_code == 0, upper.output
    for text, says in (
        ("0,1", "--innovations needs T + 1 = 7 numbers (e_0..e_T), got 2"),
        ("0,,1,0,0,0,0,0", "entry 1 is empty"),  # not skipped: it would move the shock to t = 1
        ("0,nan,0,0,0,0,0", "entry 1 is nan; innovations must be finite"),
        ("0,x,0,0,0,0,0", "entry 1 'x' is not a number"),
    ):
        one_error_line(runner.invoke(app, ["irf", str(out), "--innovations", text]), says)
    # --shock/--at beside --innovations were ignored; a shock too large for float32 printed
    # inf% and nan% and exit 0
    one_error_line(
        runner.invoke(app, ["irf", str(out), "--innovations", ",".join(["0"] * 7), "--shock", "5"]),
        "drop --shock and --at",
    )
    one_error_line(runner.invoke(app, ["irf", str(out), "--shock", "1e300"]), "the response is not finite")
    one_error_line(
        runner.invoke(app, ["irf", str(out), "--shock", "1e30"]),
        "the response is not finite (the shocked path's noise reaches z = ",
    )
    # a shock at T moves the mean field only at T: the decisions' moments (t < T) have no
    # impact or peak to show
    last = runner.invoke(app, ["irf", str(out), "--at", "6", "--json"])
    assert last.exit_code == 0, last.output
    assert json.loads(last.stdout)["innovations"][6] != 0.0
    # the Python API's arguments (an audit): a bool date set every date (numpy read it as a
    # mask), shock= and at= beside innovations= were ignored, times outside 0..T were
    # drawn at another date, a non-bool overwrite replaced an export; the rest tracebacks
    assert result.impulse_response(at=2).innovations[2] == -1.0
    for call, says in (
        (lambda: result.impulse_response(at=True), "the shock's date must be an integer in 0..6"),
        (lambda: result.impulse_response(shock="big"), "the shock's size must be a finite number"),
        (lambda: result.impulse_response(innovations=np.zeros(7), shock=-5.0), "give innovations, or shock and at"),
        (lambda: result.impulse_response(innovations="abc"), "innovations must be T + 1 = 7 numbers"),
        (lambda: result.plot_moment_curves([-1]), "the times of the curves must be integers in 0..6"),
        (lambda: result.plot_moment_curves([99]), "the times of the curves must be integers in 0..6"),
        (lambda: result.moments(True), "num_paths must be an integer in 1..3"),
        (lambda: result.moments("2"), "num_paths must be an integer in 1..3"),
        (lambda: result.moments().quantile("0.5"), "a quantile level must be a number in [0, 1]"),
        (lambda: result.policy_of("0"), "run index must be an integer in 0..0, got '0'"),
        (lambda: result.export(tmp_path / "e.npz", num_paths=2.5), "num_paths must be an integer >= 1"),
        (lambda: result.export(5), "path must be a path (a str or a pathlib.Path), got 5"),
    ):
        with pytest.raises(mfax.GameError) as err:
            call()
        assert says in str(err.value) and "\n" not in str(err.value), str(err.value)
    result.export(tmp_path / "e.npz")
    before = (tmp_path / "e.npz").read_bytes()
    with pytest.raises(mfax.GameError, match="overwrite must be True or False, got 'no'"):
        result.export(tmp_path / "e.npz", overwrite="no")
    assert (tmp_path / "e.npz").read_bytes() == before
    # a user's own .npy where the export would go: refused in one line, left as it was
    mine = tmp_path / "mine.npz"
    with open(mine, "wb") as f:
        np.save(f, np.arange(3))
    one_error_line(runner.invoke(app, ["export", str(out), "--out", str(mine)]), "refusing to overwrite")
    np.testing.assert_array_equal(np.load(mine), np.arange(3))
    # a folder name for an npz export (it wrote a file named exportdir)
    folder = one_error_line(
        runner.invoke(app, ["export", str(out), "--out", f"{tmp_path / 'exportdir'}/"]), "names a folder"
    )
    assert "exportdir.npz" in folder and not (tmp_path / "exportdir").exists()
    # --plot names a .png: without the suffix matplotlib wrote NAME.png over a user's figure
    # (the check had looked at NAME); another format ended in matplotlib's traceback
    (tmp_path / "fig.png").write_text("my precious figure")
    for name in ("fig", "fig.txt", f"{tmp_path / 'plotsdir'}/"):
        one_error_line(runner.invoke(app, ["irf", str(out), "--plot", str(tmp_path / name)]), "--plot names a .png")
    assert (tmp_path / "fig.png").read_text() == "my precious figure"
    # the run's own outputs go with it when it is overwritten, a user's file beside them stays
    (out / "export" / "my_analysis.csv").write_text("user,data\n")
    mfax.solve(
        "macro", "rspg", iterations=1, eval_paths=3, hp=TINY_NETWORK, out=out, overwrite=True, num_wealth=10, horizon=6
    )
    assert not (out / "export.npz").exists() and not (out / "irf.json").exists()
    assert [p.name for p in (out / "export").iterdir()] == ["my_analysis.csv"]


def test_irf_and_export_of_a_sweep_name_the_run_and_its_own_parameters(tmp_path):
    """irf picked the lowest exploitability among economies with different crra (utility
    units that do not compare) and said nothing of which; the API's export recorded every
    swept value instead of the exported run's own."""
    from typer.testing import CliRunner

    from conftest import TINY_NETWORK
    from mfax.run.api import load
    from mfax.run.cli import app

    out = tmp_path / "sweep"
    with mfax.games.unchecked():  # (not a test of the game checks: they took half its time)
        mfax.solve(
            "macro",
            "spg",
            iterations=1,
            eval_every=1,
            eval_paths=2,
            paths=2,
            hp=TINY_NETWORK,
            out=out,
            num_wealth=8,
            horizon=4,
            crra=[1.0, 3.0],
        )
    result = CliRunner().invoke(app, ["irf", str(out), "--no-check"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "irf.json").read_text())
    r = record["run_index"]
    assert record["params"]["crra"] == [1.0, 3.0][r] and record["params"]["num_wealth"] == 8
    assert f"run {r} (seed 0, lr 0.01, crra {[1, 3][r]}) of 2: the lowest exploitability" in result.output
    assert "the runs play different games" in result.output
    picked = CliRunner().invoke(app, ["irf", str(out), "--run-index", "1", "--no-check"])
    assert "run 1 (seed 0, lr 0.01, crra 3) of 2" in picked.output and "lowest" not in picked.output
    manifest = load(out).export(tmp_path / "e.npz")
    assert manifest["config"]["params"]["crra"] in (1.0, 3.0)
    assert manifest["checkpoint_iteration"] == 1  # (the API's manifest named no iteration)


def test_moment_figures_draw_rounding_flat_and_decisions_before_their_last(small_macro):
    """An audit of the figures: labour L_t, constant, wandered over float32 rounding on a
    "1e-7 + 8.4155e-1" axis with percentile bands; the saving rate's default curve at
    t = T (the last decision, T - 1, where households consume everything) flattened the
    others."""
    from mfax.run.plots import moment_curves_figure, moments_figure

    game, _, _, moments = small_macro
    figure = moments_figure(game, moments)
    labour = next(ax for ax in figure.axes if ax.get_title().startswith("labour"))
    assert "constant up to rounding" in labour.get_title() and not labour.collections  # no bands
    low, high = labour.get_ylim()
    assert high - low > 0.05 * abs(moments.values["L"][0, 0])
    capital = next(ax for ax in figure.axes if ax.get_title().startswith("capital K_t"))
    assert len(capital.collections) == 2  # it moves: its bands are drawn
    curves = moment_curves_figure(game, moments)
    labels = {ax.get_title(): [line.get_label() for line in ax.get_lines()] for ax in curves.axes}
    decision = next(v for k, v in labels.items() if "saving rate" in k)
    assert decision == ["t = 0", "t = 1", "t = 3", "t = 4"]  # 0, T/4, T/2, 3T/4 with T = 6
    lorenz = next(v for k, v in labels.items() if "Lorenz" in k)
    assert lorenz == ["t = 0", "t = 1", "t = 3", "t = 6"]
    chosen = moment_curves_figure(game, moments, [6])
    last = next(ax for ax in chosen.axes if "saving rate" in ax.get_title())
    assert [line.get_label() for line in last.get_lines()] == ["t = 5 (the last decision)"]
