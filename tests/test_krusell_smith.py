"""Krusell-Smith on the macro game: the rule's estimator, the households' knowledge of the
aggregate state, convergence, the reports (R^2, den Haan) and the exact exploitability
of the KS policy, without common noise an exact equilibrium, and the CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import mfax
from mfax import params
from mfax.games import income
from mfax.games.linear_quadratic import LinearQuadratic
from mfax.games.macro import Macro
from mfax.run.cli_macro import register
from mfax.solvers import krusell_smith as ks

TINY = dict(num_wealth=12, horizon=8)
TINY_SETTINGS = dict(paths=16, eval_paths=16, capital_points=5, z_points=5, quadrature=3, tol=1e-4, max_iter=30)


@pytest.fixture(scope="module")
def tiny():
    game = mfax.make("macro", **TINY)
    return game, ks.solve_krusell_smith(game, ks.make_settings(**TINY_SETTINGS))


def test_estimator_recovers_a_log_linear_law():
    # where the true law is log-linear the regression recovers it with R^2 = 1; where
    # log K_t does not vary across paths (t = 0) its slope is 0 and R^2 undefined
    rng = np.random.default_rng(0)
    paths, horizon = 50, 6
    a, b, c = rng.normal(size=horizon), rng.uniform(0.5, 1, horizon), rng.normal(size=horizon)
    z = rng.normal(size=(paths, horizon + 1)) * 0.05
    log_k = np.empty((paths, horizon + 1))
    log_k[:, 0] = 2.0
    for t in range(horizon):
        log_k[:, t + 1] = a[t] + b[t] * log_k[:, t] + c[t] * z[:, t]
    fit = ks.estimate_rule(log_k, z)
    np.testing.assert_allclose(fit.coef[1 : horizon - 1], np.stack([a, b, c], -1)[1 : horizon - 1], rtol=1e-8)
    assert fit.coef[0, 1] == 0.0 and fit.coef[0, 2] == pytest.approx(c[0])
    np.testing.assert_allclose(fit.r2[1:], 1.0, atol=1e-10)
    assert fit.r2[0] == pytest.approx(1.0)  # z_0 varies here, so t = 0 is a regression too
    # the rule iterated on its own forecasts reproduces the law's path exactly
    np.testing.assert_allclose(ks.rule_path(fit.coef, 2.0, z[:, :horizon]), log_k[:, :horizon], atol=1e-10)
    # noise in the law lowers R^2 below 1
    noisy = log_k + rng.normal(size=log_k.shape) * 0.01
    assert np.nanmax(ks.estimate_rule(noisy, z).r2[1:]) < 0.999


def test_prices_reveal_capital_and_productivity():
    """The claim of the docs: with labour L_t known, a household recovers (K_t, z_t)
    exactly from the published (r_t, W_t), whatever the income process."""
    game = params.build(Macro, "game 'macro'", **TINY, income_process="rouwenhorst", num_income=4)
    with jax.enable_x64(True):
        labour = ks.labour_path(game)
    chain, levels = game.income_chain_np(), game.income_grid_np()
    marginal = np.full(4, 0.25)
    for t in range(game.horizon):  # the income marginal moves by the chain: L_t changes
        assert labour[t] == pytest.approx(marginal @ levels, rel=1e-12)
        marginal = marginal @ chain
    assert np.ptp(labour) > 1e-3
    with jax.enable_x64(True):
        capital = jnp.array([1e-3, 0.7, 5.0, 20.0, 90.0])
        z = jnp.array([-0.3, 0.05, 0.0, -0.02, 0.2])
        k_back, z_back = jax.jit(lambda k, z: game.aggregate_state(*game.prices_at(k, labour[3], z), labour[3]))(
            capital, z
        )
    np.testing.assert_allclose(np.asarray(k_back), np.asarray(capital), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(z_back), np.asarray(z), atol=1e-12)


def test_ks_households_read_the_state_off_the_prices(tiny):
    game, res = tiny
    # along the exact push-forward, the observations invert to the true K_t and z_t
    labour = ks.labour_path(game)
    with jax.enable_x64(True):
        k, z = game.aggregate_state(jnp.asarray(res.r[:, :-1]), jnp.asarray(res.W[:, :-1]), jnp.asarray(labour))
    np.testing.assert_allclose(np.log(np.asarray(k)), res.log_capital[:, :-1], atol=1e-9)
    np.testing.assert_allclose(np.asarray(z), res.z[:, :-1], atol=1e-9)
    assert np.ptp(res.z[:, 3]) > 0.01  # the paths differ: there is something to learn


def test_ks_converges_on_a_tiny_economy(tiny):
    _, res = tiny
    # the coefficients stop moving: converged, or the damped move fell below tol while
    # cycling across a flip of the greedy best response
    assert res.converged or res.stalled
    if res.stalled:  # only when the gap stopped shrinking (it was said of shrinking gaps)
        assert res.gaps[-1] >= res.gaps[-2]
    assert res.iterations < TINY_SETTINGS["max_iter"]
    assert res.damping * res.gaps[-1] < TINY_SETTINGS["tol"] or res.gaps[-1] < TINY_SETTINGS["tol"]
    assert res.gaps[-1] < 1e-2 * res.gaps[0]


def test_ks_reports(tiny):
    game, res = tiny
    assert res.coef.shape == (game.horizon - 1, 3)
    assert np.isnan(res.r2[0])  # log K_1 is the same on every path (z_0 = 0)
    # out of sample (fresh paths, coefficients held) the rule fits below the least-squares
    # refit on those paths, by construction, and explains most of the variation: at t = 1
    # (one regressor, z_1, on 16 paths of a 12-point economy) the least
    refit = ks.estimate_rule(res.log_capital, res.z).r2
    assert np.all(res.r2[1:] <= refit[1:] + 1e-12)
    assert res.r2_min == np.nanmin(res.r2) and res.r2[1] > 0.8 and np.all(res.r2[2:] > 0.9)
    assert 0.0 <= res.den_haan_max < 0.05 and res.den_haan_mean <= res.den_haan_max
    # den Haan's statistic over t = 1..T-1, recomputed: at t = 0 the forecast is K_0 itself
    k0 = res.log_capital[0, 0]
    np.testing.assert_allclose(res.log_capital[:, 0], k0)
    forecast = ks.rule_path(np.concatenate([res.coef, np.zeros((1, 3))]), k0, res.z[:, : game.horizon])
    gaps = np.abs(res.log_capital[:, 1 : game.horizon] - forecast[:, 1:])
    assert res.den_haan_max == pytest.approx(gaps.max()) and res.den_haan_mean == pytest.approx(gaps.mean())
    assert res.outside_grid == 0.0
    # the exact exploitability of the KS policy: finite and >= 0 (per path: an upper
    # bound; no information-consistent figure with continuous productivity)
    assert np.isfinite(res.exploitability) and res.exploitability >= 0.0
    assert res.exploitability_info is None
    assert res.r.shape == res.log_capital.shape == (16, game.horizon + 1)


@pytest.mark.slow
def test_without_common_noise_ks_is_an_exact_equilibrium():
    """Without common noise the rule forecasts the one aggregate path: the KS best
    response on the true aggregate path is an exact best response, its exploitability
    (per path = information-consistent, one path) zero to rounding."""
    game = mfax.make("macro", **TINY, common_noise=False)
    res = ks.solve_krusell_smith(game, ks.make_settings(capital_points=3, max_iter=20))
    assert res.converged and res.den_haan_max < 1e-6
    assert abs(res.exploitability) < 1e-9 and abs(res.exploitability_info) < 1e-9


def test_one_period_economy_is_refused_in_one_line():
    # with T = 1 there is no law of motion to forecast (it crashed on an empty maximum)
    with pytest.raises(mfax.GameError, match=r"krusell-smith needs horizon >= 2.*got horizon=1"):
        ks.solve_krusell_smith(mfax.make("macro", num_wealth=12, horizon=1))


def test_bad_settings_are_one_line():
    with pytest.raises(mfax.GameError, match=r"damping must lie in \(0, 1\], got 0.0"):
        ks.make_settings(damping=0.0)
    with pytest.raises(mfax.GameError, match="paths must be >= 4"):
        ks.make_settings(paths=3)  # 3 terms per period: least squares was silently underdetermined
    with pytest.raises(mfax.GameError, match="unknown parameter 'grid'"):
        ks.make_settings(grid=3)
    with pytest.raises(mfax.GameError, match="krusell-smith needs the macro game"):
        ks.solve_krusell_smith(LinearQuadratic())
    # numpy's Gauss-Hermite weights are not finite from 372 nodes on: the message blamed
    # the grids' widths after a numpy overflow warning
    assert ks.make_settings(quadrature=371).quadrature == 371
    with pytest.raises(mfax.GameError, match=r"quadrature must lie in 1\.\.371 .*got 372"):
        ks.make_settings(quadrature=372)
    with pytest.raises(mfax.GameError, match=r"seed must lie in 0\.\.2147483647, got -5"):
        ks.make_settings(seed=-5)  # accepted before


def test_a_solve_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    """An oversized grid or evaluation ended in XLA's out-of-memory traceback after the
    solve had started; the CLI now refuses it in one line with the estimate."""
    from mfax.memory import krusell_smith_bytes

    game = mfax.make("macro", **TINY)
    b = [krusell_smith_bytes(game, ks.make_settings(capital_points=k)) for k in (9, 18, 27)]
    assert b[0] < b[1] and b[2] - b[1] == b[1] - b[0]  # the households' share grows with the grid
    for hp in ("capital_points=100000000", "eval_paths=100000000"):  # petabytes: refused on any machine
        args = ["solve-macro", "--method", "krusell-smith", "--max-iter", "1", "--hp", hp]
        for key, value in TINY.items():
            args += ["--set", f"{key}={value}"]
        out = CliRunner().invoke(_app(), args)
        assert out.exit_code == 2, out.output
        assert "krusell-smith with these settings needs about" in out.output and "capital_points" in out.output
    # a huge economy is refused before its checks (which took minutes before the refusal)
    from mfax.run import cli_macro

    def validate(game):
        raise AssertionError("the game's checks ran before the memory estimate")

    monkeypatch.setattr(cli_macro, "validate_game", validate)
    args = ["solve-macro", "--method", "krusell-smith", "--set", "num_wealth=20000", "--set", "horizon=2000"]
    out = CliRunner().invoke(_app(), args)
    assert out.exit_code == 2 and "needs about" in out.output and "num_wealth, horizon" in out.output, out.output


def _app():
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    return app


def test_solve_macro_krusell_smith_command(tmp_path, tiny):
    # the economy and settings of the fixture: its compiled programs are reused
    args = ["solve-macro", "--method", "krusell-smith", "--tol", "1e-4", "--max-iter", "30", "--out", str(tmp_path)]
    for key, value in TINY.items():
        args += ["--set", f"{key}={value}"]
    for key, value in TINY_SETTINGS.items():
        if key not in ("tol", "max_iter"):
            args += ["--hp", f"{key}={value}"]
    result = CliRunner().invoke(_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    _, res = tiny
    assert record["method"] == "krusell-smith" and record["iterations"] == res.iterations
    assert record["exploitability"] == pytest.approx(res.exploitability, rel=1e-9)
    assert record["exploitability_info"] is None
    assert record["r2"][0] is None and record["r2_min"] == pytest.approx(res.r2_min)
    assert len(record["r"]["mean"]) == TINY["horizon"] and len(record["coef"]) == TINY["horizon"] - 1
    # the bands' quantiles are the moments' (an order statistic of the paths: it interpolated)
    capital = np.sort(np.exp(res.log_capital), axis=0)
    k = capital.shape[0]
    np.testing.assert_allclose(record["capital"]["p05"], capital[int(np.ceil(0.05 * k)) - 1], rtol=1e-12)
    np.testing.assert_allclose(record["capital"]["p95"], capital[int(np.ceil(0.95 * k)) - 1], rtol=1e-12)
    assert (tmp_path / "krusell_smith.json").exists() and (tmp_path / "krusell_smith.png").exists()
    # the file holds the evaluation paths: the rule's R^2 computed again from them alone
    saved = json.loads((tmp_path / "krusell_smith.json").read_text())
    log_k = np.asarray(saved["eval_paths_data"]["log_capital"])
    z = np.asarray(saved["eval_paths_data"]["z"])
    assert log_k.shape == (saved["eval_paths"], TINY["horizon"] + 1) and z.shape == log_k.shape
    for t, (a, b, c) in enumerate(saved["coef"]):
        if saved["r2"][t] is not None:
            fit = a + b * log_k[:, t] + c * z[:, t]
            actual = log_k[:, t + 1]
            r2 = 1.0 - np.sum((actual - fit) ** 2) / np.sum((actual - actual.mean()) ** 2)
            assert r2 == pytest.approx(saved["r2"][t], abs=1e-9)
    assert "eval_paths_data" not in record  # the --json line keeps to the summary
    for bad, message in (
        (["--method", "ks"], "unknown method 'ks'; allowed: oracle, krusell-smith"),
        (["--method", "krusell-smith", "--hp", "paths=1"], "paths must be >= 4"),
        (["--hp", "paths=4"], "--hp sets Krusell-Smith hyper-parameters"),
        # a file as the output folder: it ended in a traceback after the solve
        (["--out", str(tmp_path / "krusell_smith.json")], "--out names a folder for the results"),
        (["--method", "krusell-smith", "--out", str(tmp_path / "krusell_smith.png" / "x")], "is not a directory"),
    ):
        out = CliRunner().invoke(_app(), ["solve-macro", *bad])
        assert out.exit_code == 2 and message in out.output, out.output


@pytest.mark.slow
def test_ks_on_the_reduced_economy():
    """The reduced economy (40 x 5, T = 32): KS stops, its rule fits (R^2 and den Haan's
    error), the KS policy's exact exploitability is small, and an AR(1) income process
    with its stationary start solves too."""
    game = mfax.make("macro", num_wealth=40, horizon=32)
    res = ks.solve_krusell_smith(game)
    assert res.converged or res.stalled
    assert res.r2[1] > 0.9 and np.all(res.r2[2:] > 0.98), res.r2
    assert res.den_haan_max < 0.05 and res.outside_grid < 0.05
    assert 0.0 <= res.exploitability < 0.05
    ar1 = mfax.make(
        "macro", num_wealth=40, horizon=32, income_process="rouwenhorst", initial_income="stationary", num_income=5
    )
    res = ks.solve_krusell_smith(ar1, ks.make_settings(tol=1e-5))
    assert res.converged or res.stalled
    assert np.all(res.r2[2:] > 0.95) and np.isfinite(res.exploitability) and res.exploitability >= 0.0, res.r2
    assert income.stationary_distribution(ar1.income_chain_np()) @ ar1.income_grid_np() == pytest.approx(1.0)


@pytest.mark.slow
def test_without_common_noise_ks_finds_the_oracles_equilibrium():
    """The reduced economy without common noise: KS's rule is a perfect-foresight path and
    its policy the transition-path oracle's equilibrium (same prices, exploitability 0)."""
    from mfax.solvers.macro_oracle import solve_macro

    game = mfax.make("macro", num_wealth=40, horizon=32, common_noise=False)
    res = ks.solve_krusell_smith(game)
    oracle = solve_macro(game)
    assert res.converged and abs(res.exploitability) < 1e-7
    np.testing.assert_allclose(res.r[0, :-1], oracle.r, rtol=1e-6)
    np.testing.assert_allclose(res.W[0, :-1], oracle.W, rtol=1e-6)


def test_the_rule_reported_is_the_one_the_last_gap_measured(tiny):
    """With the budget spent, the loop applied one more update after measuring the last
    gap: the rule reported was not the one the gap described. Re-estimated on the same
    simulated paths, the reported rule moves by exactly the reported last gap."""
    game, _ = tiny
    settings = ks.make_settings(**{**TINY_SETTINGS, "max_iter": 2})
    res = ks.solve_krusell_smith(game, settings, evaluate_policy=False)
    assert res.iterations == 2 and not res.converged and not res.stalled
    with jax.enable_x64(True):
        sim, _ = ks.noise_batches(game, settings)
        log_k0 = float(res.log_capital[0, 0])
        coef = np.zeros((game.horizon, 3))
        coef[: game.horizon - 1] = res.coef
        policy = ks._policy(game, settings, coef, log_k0)
        log_k, z, _ = ks.simulate(game, policy, sim)
        new = ks.estimate_rule(log_k, z).coef
        assert ks.forecast_gap(new - coef, log_k, z) == pytest.approx(res.gaps[-1], rel=1e-9)


def test_z_off_the_households_grid_is_reported(tiny):
    game, res = tiny
    assert 0.0 <= res.z_outside_grid < 0.05
    narrow = ks.solve_krusell_smith(game, ks.make_settings(**{**TINY_SETTINGS, "z_width": 0.3}), evaluate_policy=False)
    assert narrow.z_outside_grid > 0.3  # z beyond 0.3 sd of its spread: clamped, and said


def test_grids_too_wide_for_the_households_values_are_one_line(tiny):
    """z_width=1e6: e^z overflows at the grid's ends; the greedy choice read off those
    values was scored as an exploitability of -1384 (below zero: no policy beats its
    best response)."""
    game, _ = tiny
    with pytest.raises(mfax.GameError, match="the households' values are not finite on these grids"):
        ks.solve_krusell_smith(game, ks.make_settings(**{**TINY_SETTINGS, "z_width": 1e6}))


def test_solve_macro_writes_check_again_and_fail_in_one_line(tmp_path, capsys):
    """A solve takes minutes to half an hour: a file of the user's put at an output's name
    meanwhile is kept (it was replaced), and a failed write is one line (it ended in a
    traceback after the solve)."""
    from mfax.run import cli_macro

    def plot(path):
        path.write_bytes(b"not reached")

    summary = {"game": "macro", "params": {}, "iterations": 1, "coef": []}
    for name in ("krusell_smith.json", "ks.png"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_text("my notes")
        with pytest.raises(typer.Exit) as exit_:
            cli_macro._write_outputs(
                folder, "krusell_smith.json", cli_macro.KS_KEYS, summary, "ks.png", plot, "krusell-smith"
            )
        assert exit_.value.exit_code == 2
        assert (folder / name).read_text() == "my notes"
        assert sorted(p.name for p in folder.iterdir()) == [name]  # nothing else written either
        err = capsys.readouterr().err
        assert err.startswith("mfax: error: refusing to overwrite") and len(err.strip().splitlines()) == 1

    def full(path):
        raise OSError(27, "File too large", str(path))

    with pytest.raises(typer.Exit) as exit_:
        cli_macro._write_outputs(
            tmp_path / "out", "krusell_smith.json", cli_macro.KS_KEYS, summary, "k.png", full, "krusell-smith"
        )
    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err.strip() == f"mfax: error: File too large: {tmp_path / 'out' / 'k.png'}"
    # mfax's own record there: replaced with --overwrite only (a second solve into the same
    # folder replaced the first without a word)
    args = (tmp_path / "out", "krusell_smith.json", cli_macro.KS_KEYS, summary, "k.png", plot, "krusell-smith")
    with pytest.raises(typer.Exit):
        cli_macro._write_outputs(*args)
    assert "holds an earlier solve-macro result; --overwrite replaces it" in capsys.readouterr().err
    cli_macro._write_outputs(*args, overwrite=True)
    assert json.loads((tmp_path / "out" / "krusell_smith.json").read_text()) == summary


def test_the_scored_paths_are_named_for_what_they_are():
    """The KS policy's exploitability line says where it was scored: fresh draws (an
    estimate with its standard error: it was called exact), draws that are all the same
    path (z_std=0: productivity never moves), or the one path of an economy without
    common noise (exact)."""
    from types import SimpleNamespace

    from mfax.games.validate import unchecked
    from mfax.run.cli_macro import _ks_exploitability_words

    with unchecked():
        moving, still, off = (
            Macro(num_wealth=20, horizon=4, **kw) for kw in ({}, {"z_std": 0.0}, {"common_noise": False})
        )
    res = SimpleNamespace(policy_return=-3.0, exploitability_info=None, exploitability=0.00479, exploitability_se=4e-4)
    assert _ks_exploitability_words(res, moving, 64) == (
        "exploitability of the KS policy estimated on 64 fresh paths: per path 0.00479 ± 0.0004 (one standard error)"
    )
    still_words = "exact exploitability of the KS policy on one path (z_std=0): per path 0.00479"
    assert _ks_exploitability_words(res, still, 64) == still_words
    from mfax.run.cli_macro import _ks_summary

    assert _drawn_json_se(_ks_summary, moving) is not None and _drawn_json_se(_ks_summary, still) is None
    assert _ks_exploitability_words(res, off, 64).startswith(
        "exact exploitability of the KS policy on its one noise path (no common noise): per path 0.00479"
    )


def test_a_stalled_rule_is_said_not_converged():
    """A stall ends with a last gap above tol: the console line said "stalled" without
    "not converged", which the oracle's and the figure's words say (a review)."""
    from types import SimpleNamespace

    from mfax.run.cli_macro import _ks_state_words

    assert _ks_state_words(SimpleNamespace(converged=False, stalled=True)).endswith(", NOT converged to tol")
    assert _ks_state_words(SimpleNamespace(converged=False, stalled=False)) == "NOT converged"
    assert _ks_state_words(SimpleNamespace(converged=True, stalled=False)) == "converged"


def test_an_undefined_r2_says_why_instead_of_nan():
    """With z_std=0 capital is the same on every simulated path: R^2 is 0/0 at every date
    and the CLI printed "min R^2 nan" (a bad-input audit)."""
    args = ["solve-macro", "--method", "krusell-smith", "--set", "z_std=0"]
    for key, value in TINY.items():
        args += ["--set", f"{key}={value}"]
    for key, value in TINY_SETTINGS.items():
        args += ["--hp", f"{key}={value}"]
    out = CliRunner().invoke(_app(), args)
    assert out.exit_code == 0, out.output
    assert "min R^2 n/a (capital is the same on every simulated path at every date: nothing to fit)" in out.output
    assert "nan" not in out.output.split("rule:")[1].splitlines()[0]


def _drawn_json_se(summary_of, game):
    """krusell_smith.json's exploitability_se of a result on ``game``'s evaluation paths
    (it was written null on distinct draws and a number on one path, the wrong way round)."""
    from types import SimpleNamespace

    import numpy as np

    horizon = game.horizon
    res = SimpleNamespace(
        converged=True, stalled=False, iterations=1, gaps=np.zeros(1), coef_gaps=np.zeros(1), damping=1.0,
        coef=np.zeros((horizon - 1, 3)), r2=np.ones(horizon - 1), r2_min=1.0, den_haan_max=0.0, den_haan_mean=0.0,
        outside_grid=0.0, z_outside_grid=0.0, exploitability=0.1, exploitability_info=None, policy_return=-1.0,
        exploitability_se=0.01, r=np.ones((2, horizon + 1)), W=np.ones((2, horizon + 1)),
        log_capital=np.zeros((2, horizon + 1)), z=np.zeros((2, horizon + 1)), seconds=1.0,
    )  # fmt: skip
    from mfax.solvers.krusell_smith import make_settings

    return summary_of(res, game, make_settings())["exploitability_se"]
