"""The command line, as a user runs it (in-process through Typer's runner)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import one_error_line, slow
from mfax.run.cli import app, done_line

runner = CliRunner()


@pytest.mark.smoke
def test_list_shows_every_game_with_defaults():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0
    games = json.loads(result.stdout)["games"]
    assert {"beach_bar", "linear_quadratic", "macro", "sis"} <= set(games)
    params = {p["name"]: p["default"] for p in games["beach_bar"]}
    assert params["num_states"] == 101 and params["close_probability"] == 0.5
    text = runner.invoke(app, ["list"]).output
    assert "idiosyncratic_probs" in text


def test_list_shows_one_solver_by_name_or_reference():
    """`mfax list NAME` showed a game only: a solver's file reference was refused as "a
    SolverSpec, not a game" (a review, writing a solver)."""
    text = runner.invoke(app, ["list", "fixed_point"]).stdout
    assert text.startswith("  fixed_point damped fixed-point iteration") and "--hp flow=deviator" in text
    reference = str(Path(__file__).resolve().parents[1] / "examples" / "soft_best_response.py") + ":SPEC"
    record = json.loads(runner.invoke(app, ["list", reference, "--json"]).stdout)["solvers"][reference]
    assert [h["name"] for h in record["hparams"]] == ["damping", "temperature"] and record["lr_search"] is None
    assert record["hparams"][0]["search"] == [0.05, 1.0, "log"]
    line = one_error_line(runner.invoke(app, ["list", "nope"]), "unknown game 'nope'; allowed: beach_bar")
    assert line.endswith("; or a solver: spg, rspg, ippo, rippo, momd, fp, omd, fixed_point, boltzmann, munchausen, "
                         "prior_descent, mf_omo, omi, mf_psro")  # fmt: skip


@pytest.mark.smoke
def test_eval_of_one_noise_path_says_path():
    result = runner.invoke(app, ["eval", "--game", "mfglib.left_right", "--policy", "uniform"])
    assert result.exit_code == 0 and "noise: exact, 1 path\n" in result.output, result.output


def test_eval_json_last_line():
    result = runner.invoke(
        app, ["eval", "--game", "beach_bar", "--policy", "uniform", "--set", "common_noise=false", "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    for key in ("exploitability", "exploitability_info", "policy_return", "best_response_return", "noise_paths"):
        assert key in record
    assert record["noise_paths"] == 51 and record["noise"] == "exact"
    assert record["exploitability"] == pytest.approx(577.1739102, rel=2e-6)
    assert record["exploitability_info"] == pytest.approx(record["exploitability"], rel=1e-6)


def test_eval_of_a_run_uses_the_paths_its_training_evaluated_on(tmp_path):
    """A run scored on 16 sampled paths: ``mfax eval RUN`` gives its metrics' figure (it
    evaluated on 128 other paths, or exactly), and --noise picks others."""
    from conftest import TINY_NETWORK
    from mfax.run.rundir import RunDir

    out = tmp_path / "run"
    solved = mfax.solve(
        "beach_bar",
        "spg",
        hp=TINY_NETWORK,
        noise="sample",
        eval_paths=16,
        iterations=2,
        eval_every=2,
        out=out,
        num_states=10,
        horizon=6,
    )
    row = next(r for r in RunDir(out).read_metrics() if r["iteration"] == 2)
    recorded = row["exploitability"]
    mine = json.loads(runner.invoke(app, ["eval", str(out), "--json"]).stdout)
    assert mine["noise"] == "sample" and mine["exploitability"] == pytest.approx(recorded, rel=1e-6)
    # the metrics record the standard errors eval gives, and the summary the last one
    for key in ("exploitability_se", "policy_return_se"):
        assert row[key] > 0 and mine[key] == pytest.approx(row[key], rel=1e-5)
    assert RunDir(out).read_summary()["final_exploitability_se_per_run"] == [row["exploitability_se"]]
    assert solved.exploitability_se == row["exploitability_se"]
    exact = json.loads(
        runner.invoke(app, ["eval", str(out), "--noise", "exact", "--json"]).output.strip().splitlines()[-1]
    )
    assert exact["noise"] == "exact" and exact["exploitability"] != pytest.approx(recorded, rel=1e-6)
    assert exact["exploitability_se"] is None
    exact_run = mfax.solve(
        "beach_bar",
        "spg",
        hp=TINY_NETWORK,
        iterations=1,
        eval_every=1,
        out=tmp_path / "exact",
        num_states=10,
        horizon=6,
    )
    assert exact_run.summary["final_exploitability_se_per_run"] == [None] and exact_run.exploitability_se is None
    # the checkpoint is named with the iteration it holds
    assert mine["checkpoint"] == "last" and mine["checkpoint_iteration"] == 2
    # which run, seed and learning rate, and where the paths came from (the records of two
    # runs of one RUN were alike: found by an audit)
    assert (mine["run_index"], mine["seed"], mine["lr"]) == (0, 0, mfax.load(out).config.lr[0])
    assert (mine["noise_source"], mine["noise_seed"], exact["noise_source"]) == ("run", None, "enumerated")
    drawn = runner.invoke(app, ["eval", str(out), "--noise", "sample", "--paths", "4", "--seed", "3", "--json"])
    drawn = json.loads(drawn.stdout)
    assert (drawn["noise_source"], drawn["noise_seed"], drawn["noise_paths"]) == ("drawn", 3, 4)
    fixed = runner.invoke(app, ["eval", "--game", "sis", "--set", "horizon=4", "--json"])
    fixed = json.loads(fixed.stdout)
    assert (fixed["run_index"], fixed["seed"], fixed["lr"], fixed["noise_source"]) == (None, None, None, "enumerated")
    best = RunDir(out).read_summary()["best_iteration"]
    assert f"checkpoint best (iteration {best})" in runner.invoke(app, ["eval", str(out), "--iteration", "best"]).output

    # --paths and --seed sample as asked (the run's 16 evaluation paths by default), never enumerate
    def noise_of(*args):
        result = runner.invoke(app, ["eval", str(out), *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    four = noise_of("--paths", "4")
    assert (four["noise"], four["noise_paths"]) == ("sample", 4)
    seeded = noise_of("--seed", "3")
    assert (seeded["noise"], seeded["noise_paths"]) == ("sample", 16)
    assert seeded["exploitability"] != pytest.approx(recorded, rel=1e-6)  # other paths than the run's
    refused = runner.invoke(app, ["eval", str(out), "--noise", "exact", "--paths", "4"])
    one_error_line(refused, "--paths set sampled noise paths, but --noise exact enumerates beach_bar's noise exactly")


def test_information_consistent_figure_on_sampled_noise_is_not_called_exact():
    args = ["eval", "--game", "linear_quadratic", "--set", "horizon=4", "--set", "num_states=11"]
    sampled = runner.invoke(app, [*args, "--noise", "sample", "--paths", "8", "--json"])
    assert sampled.exit_code == 0, sampled.output
    record = json.loads(sampled.stdout)
    assert record["noise"] == "sample" and record["exploitability_info_exact"] is False
    assert "exact for" not in sampled.output and "as if they were the whole noise support" in sampled.output
    exact = json.loads(runner.invoke(app, [*args, "--noise", "exact", "--json"]).stdout)
    assert exact["exploitability_info_exact"] is True
    one_error_line(runner.invoke(app, [*args, "--noise", "exact", "--paths", "8"]), "--paths set sampled noise paths")


def test_eval_sampled_noise_on_macro_reports_null_info():
    result = runner.invoke(
        app,
        [
            "eval",
            "--game",
            "macro",
            "--set",
            "horizon=4",
            "--set",
            "num_wealth=10",
            "--noise",
            "sample",
            "--paths",
            "3",
            "--policy",
            "action:3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["exploitability_info"] is None and record["noise_paths"] == 3 and record["noise"] == "sample"
    # the game's moments: every t, per path and in expectation (the mean over sampled paths)
    moments = record["moments"]
    assert moments["paths"] == 3 and moments["exact"] is False and moments["weight"] == [pytest.approx(1 / 3)] * 3
    capital = moments["moments"]["K"]
    assert capital["label"] == "capital K_t" and capital["times"] == "0..T"
    assert len(capital["expected"]) == 5 and len(capital["per_path"]) == 3
    # everyone starts uniform over the states: K_0 is the mean wealth grid point
    grid = mfax.make("macro", horizon=4, num_wealth=10).wealth_grid_np()
    assert capital["expected"][0] == pytest.approx(grid.mean(), rel=1e-6)
    assert capital["expected"][3] == pytest.approx(np.mean([p[3] for p in capital["per_path"]]), rel=1e-6)
    assert len(moments["moments"]["C"]["expected"]) == 4  # decisions at t = 0..T-1
    assert set(capital["quantiles"]) == {"0.05", "0.25", "0.5", "0.75", "0.95"}
    lorenz = moments["moments"]["lorenz_wealth"]
    assert len(lorenz["axes"]["population share"]) == 101 and "per_path" not in lorenz
    assert "moments: mean over 3 sampled paths" not in result.output and "Gini coefficient of wealth" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--game", "nope"], "unknown game 'nope'; allowed:"),
        (["eval", "--set", "colour=red"], "unknown parameter 'colour' for game 'beach_bar'; allowed:"),
        (["eval", "--set", "gamma=0"], "gamma must lie in (0, 1]"),
        (["eval", "--set", "gamma"], "--set expects key=value"),
        (["eval", "--set", "horizon=4", "--set", "horizon=6"], "--set horizon given twice ('4' and '6')"),
        (["train", "--out", ""], "--out is empty; name the run directory"),
        (["check-game", "tests/:Corridor"], "is a directory; name the Python file: path/to/file.py:ClassName"),
        (["train", "--hp", "mlp_width=8", "--hp", "mlp_width=16"], "--hp mlp_width given twice"),
        (["eval", "--policy", "action:99"], "K must be an integer in 0..10"),
        (["eval", "--policy", "greedy"], "unknown policy 'greedy'; allowed: uniform, action:K"),
        (["eval", "--policy", "value:7"], "no action of game 'beach_bar' has value '7'; allowed: -5, -4,"),
        (["eval", "--policy", "value:x"], "has value 'x'; allowed: -5, -4,"),
        (["eval", "--noise", "lots"], "unknown noise mode 'lots'; allowed: exact, sample, auto"),
        (["eval", "--paths", "0"], "--paths must be >= 1"),
        # options of the other kind of evaluation were ignored
        (["eval", "/nonexistent-run", "--policy", "action:5"], "--policy evaluates a fixed policy; a RUN is"),
        (["eval", "--run-index", "2"], "--run-index picks a run of a RUN; a fixed policy has none"),
        (["eval", "--game", "macro", "--noise", "exact"], "has no finite noise support"),
        # ... naming the options that work (it said "use sampled noise"; found by a matrix review)
        (["eval", "--game", "macro", "--noise", "exact"], "use --noise sample (without common noise: --set common"),
        # --hp takes one value (a list read as a malformed number)
        (["train", "--algo", "omd", "--hp", "lr=0.5,1"], "takes one value, got '0.5,1'; to compare values, train one"),
        (["eval", "--set", "horizon=3,4"], "takes one value, got '3,4'; several values of a traced parameter"),
        (["export", "/nonexistent-run"], "is not a run directory"),
        (["export", "/nonexistent-run", "--format", "xlsx"], "unknown export format 'xlsx'; allowed: npz, csv"),
        (["train", "--log-to", "mlflow"], "unknown tracker 'mlflow' for --log-to; allowed: tensorboard, wandb"),
        # a solver without a learning rate: --lr was ignored (a list trained identical copies)
        (["train", "--algo", "omd", "--lr", "0.1,0.5"], "--lr is not used by omd: its step size is --hp lr (solvers"),
        (["train", "--algo", "fp", "--lr", "0.1"], "--lr is not used by fp: it has no learning rate (solvers that"),
        # ... and several seeds of a deterministic solver trained identical copies
        (["train", "--algo", "omd", "--seeds", "3"], "--seeds 3: omd is deterministic (it draws nothing from its seed"),
        # found by a bad-input fuzz of every command (each was a traceback, or accepted)
        (["train", "--seed", "100000000000000000000000"], "--seed must lie in 0..4294967295"),
        (["train", "--seed", "-1"], "--seed must lie in 0..4294967295"),
        (["train", "--iterations", "3000000000"], "--iterations must be at most 2147483647 (counted in int32)"),
        (["eval", "--set", "horizon=10000000000"], "must lie within +-2147483647 (int32)"),
        (["train", "--algo", "prior_descent", "--hp", "prior_every=1000000000000"], "(int32)"),
        (["eval", "--game", "linear_quadratic", "--set", "shift=1e39"], "must lie within +-3.4e38 (float32)"),
        (["train", "--lr", ""], "--lr expects comma-separated numbers (no empty entry)"),
        (["train", "--lr", "0.01,,0.02"], "--lr expects comma-separated numbers (no empty entry)"),
        (["train", "--coordinator", "bogus"], "the coordinator is HOST:PORT"),
        (["train", "--coordinator", ""], "the coordinator is empty; name it as HOST:PORT"),
        (["train", "--coordinator", "127.0.0.1:29999", "--num-processes", "0"], "processes must be >= 1"),
        (["export", "/nonexistent-run", "--out", ""], "--out is empty"),
        # found by a review of every option's help (each a traceback, or accepted silently)
        (["eval", "--seed", "4294967296"], "--seed must lie in 0..4294967295 (PRNG seeds are 32-bit)"),
        (["eval", "--seed=-1"], "--seed must lie in 0..4294967295"),
        (["eval", "--learned-br", "--seed", "4294967290"], "--seed must lie in 0..4294967284"),
        (["check-game", "beach_bar", "--seed=-1"], "--seed must lie in 0..4294967295"),
        (["tune", "--out", ""], "--out is empty; name the directory to keep the study in"),
        (["solve-macro", "--out", ""], "--out is empty; name the directory"),
        (["plot", "/nonexistent-run", "--curves-at", "0,,3"], "(no empty entry)"),
        (["eval", "--br-iterations", "5"], "--br-iterations and --br-lr set the learned best response"),
        (["solve-macro", "--tol", "inf"], "--tol must be finite and > 0"),
        # a check shared with the Python API names the option as typed, not the argument
        (["train", "--eval-every", "0"], "error: --eval-every must be >= 1, got 0"),
        (["train", "--keep", "-1"], "error: --keep must be in 0..2147483647, got -1"),
        (["tune", "--time-budget", "-1"], "error: --time-budget must be a number of seconds > 0"),
        (["tune", "--trials", "0"], "error: --trials must be an integer in 1..2147483647"),
        (["solve-macro", "--max-iter", "0"], "error: --max-iter must lie in 1.."),
        (["train", "--devices", "99", "--iterations", "1"], "error: --devices must lie in 1.."),
        # ... and a game parameter of the same name as an option stays the parameter
        (["eval", "--game", "mfglib.random_linear", "--set", "seed=-1"], "error: seed must lie in 0..2^32-1"),
        (["solve-macro", "--method", "krusell-smith", "--damping", "0.5", "--hp", "damping=0.2"], "given twice"),
        # the command-line parser's own errors: one line too, with where to read what is allowed
        (["train", "--iterations", "abc"], "Invalid value for '--iterations'"),
        (["train", "--bogus"], "no such option: --bogus (see '"),  # (no --out offered, as before: a review)
        (["train", "--itrations", "3"], "no such option: --itrations; did you mean --iterations?"),
        # an option of one value given twice: click kept the last one silently (a review)
        (["train", "--iterations", "2", "--iterations", "1"], "--iterations given twice (--iterations '2', then '1')"),
        (
            ["eval", "--iteration", "last", "--iteration=best"],
            "--iteration given twice (--iteration 'last', then 'best')",
        ),
        (["train", "--out", "a", "--out=b"], "--out given twice (--out 'a', then 'b'); give it once"),
        (["eval", "--noise"], "Option '--noise' requires an argument"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
@pytest.mark.smoke
def test_bad_input_gives_one_line_error(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mfax: error: ") and message in lines[0], result.stderr


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_help_shows_every_default_and_bracketed_text():
    text = _help("train")
    options = [line.strip() for line in text.splitlines() if line.strip().startswith("--")]
    assert len(options) > 20
    for line in options:
        if not line.startswith("--help"):
            assert "[default: " in line, line
    assert "[default: 200]" in text and "[default: rspg]" in text and "[default: runs/GAME-ALGO-TIMESTAMP]" in text
    assert "mfax[tensorboard], mfax[wandb]" in text
    assert "macro 0.01, others 0.001" in text  # per-game learning rates from the config's defaults


def test_policy_by_action_value_equals_policy_by_index():
    """On beach bar the actions are moves -5..5: index 5 and value 0 are both 'stay'."""
    base = ["eval", "--set", "common_noise=false", "--set", "num_states=21", "--set", "horizon=6", "--json", "--policy"]
    by_index, by_value = (runner.invoke(app, [*base, spec]) for spec in ("action:5", "value:0"))
    assert by_index.exit_code == 0 and by_value.exit_code == 0, (by_index.output, by_value.output)
    a, b = (json.loads(r.stdout) for r in (by_index, by_value))
    assert a["exploitability"] == b["exploitability"] and a["policy_return"] == b["policy_return"]
    other = json.loads(runner.invoke(app, [*base, "value:1"]).stdout)
    assert other["policy_return"] != a["policy_return"]
    assert "action:5 is 'stay'" in _help("eval")


def test_version_names_mfax_and_jax():
    import jax

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"mfax {mfax.__version__} (JAX {jax.__version__})"


def test_done_line_gives_start_end_and_says_when_it_rose():
    summary = dict(iterations=40, runs=1, initial_exploitability=29.25, final_exploitability=37.3)
    summary.update(final_exploitability_info=None, seconds_per_iteration=0.25, session_seconds_per_iteration=0.4)
    rose = done_line(summary)
    assert "29.25 -> 37.3 (ROSE" in rose and "lower is better" in rose
    assert "0.25 s/iteration training alone" in rose and "0.4 s/iteration with evaluation" in rose
    summary.update(final_exploitability=3.5, initial_exploitability_info=20.0, final_exploitability_info=2.0)
    fell = done_line(summary)
    assert "29.25 -> 3.5;" in fell and "information-consistent 20 -> 2" in fell and "ROSE" not in fell
    # a rise within float32 rounding is not flagged (dynamic routing: 0 -> 2.4e-07)
    for start, end in ((0.0, 2.38419e-07), (1.4674797, 1.4674799), (444.676, 444.6762)):
        summary.update(initial_exploitability=start, final_exploitability=end, final_exploitability_info=None)
        assert "ROSE" not in done_line(summary), (start, end)
    summary.update(initial_exploitability=0.0, final_exploitability=1e-4)
    assert "ROSE" in done_line(summary)


def test_an_exploitability_below_zero_is_named_rounding_or_a_defect():
    summary = dict(iterations=60, runs=1, initial_exploitability=2.13812, final_exploitability=-9.53674e-07)
    summary.update(final_exploitability_info=-9.53674e-07, initial_exploitability_info=2.13812)
    summary.update(final_policy_return=-3.2, dtype="float32", seconds_per_iteration=None)
    line = done_line(summary)
    assert line.count("-9.53674e-07 (0 up to float32 rounding)") == 2, line
    # the tolerance is in units of the precision times the return's scale
    summary.update(final_exploitability=-2e-3, final_exploitability_info=None, final_policy_return=-1e4)
    assert "-0.002 (0 up to float32 rounding)" in done_line(summary)
    summary.update(final_policy_return=-3.2)
    assert "-0.002 (below 0 by more than float32 rounding explains" in done_line(summary)
    summary.update(final_exploitability=-9.53674e-07, dtype="float64")
    assert "below 0 by more than float64 rounding" in done_line(summary)
    summary.update(final_exploitability=0.0)
    assert "rounding" not in done_line(summary)
    # the progress bar's figure (the mean over runs) too
    from mfax.run.train import _bar_text

    rows = [dict(exploitability=-9.53674e-07, policy_return=-3.2), dict(exploitability=-9.53674e-07, policy_return=-3)]
    assert _bar_text(rows, float64=False) == "-9.537e-07 (0 up to float32 rounding)"
    assert _bar_text([dict(exploitability=0.25, policy_return=-3.2)], float64=False) == "0.25"


def test_an_information_consistent_figure_above_the_per_path_one_is_named_a_defect():
    """An impure game's run ended with information-consistent 2.01 > per path 0.36
    without a remark (the deviator who knows the path does at least as well)."""
    summary = dict(iterations=4, runs=1, initial_exploitability=3.0, final_exploitability=0.358378)
    summary.update(initial_exploitability_info=2.5, final_exploitability_info=2.01482, final_policy_return=-6.6)
    line = done_line({**summary, "dtype": "float32"})
    assert "information-consistent 2.5 -> 2.01482 (above the per-path figure by more than float32 rounding" in line
    assert "above" not in done_line({**summary, "final_exploitability_info": 0.358379, "dtype": "float32"})


def test_eval_names_a_float32_exploitability_below_zero_as_rounding(tmp_path):
    """FP on MFGLib's linear-quadratic game reaches its equilibrium: float32 computes
    the exploitability as -9.5e-07."""
    out = tmp_path / "runs"
    args = ["train", "--game", "mfglib.linear_quadratic", "--algo", "fp", "--iterations", "60", "--out", str(out)]
    trained = runner.invoke(app, [*args, "--no-plots"])
    assert trained.exit_code == 0, trained.output
    done = trained.output[trained.output.index("done:") :].splitlines()[0]
    final = float(re.search(r"lower is better\) \S+ -> (\S+?);? ", done).group(1))
    assert ("(0 up to float32 rounding)" in done) == (final < 0), done  # (the sign is the CPU's rounding)
    evaluated = runner.invoke(app, ["eval", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    per_path = next(line for line in evaluated.output.splitlines() if "exploitability (per path" in line)
    value = float(re.search(r"upper bound\)\s+(\S+)", per_path).group(1))
    assert abs(value) < 1e-5
    assert ("(0 up to float32 rounding)" in per_path) == (value < 0), per_path


def test_eval_on_drawn_paths_gives_estimates_with_their_standard_errors():
    """sis on 64 drawn paths printed "exploitability (per path, upper bound) 0.382537"
    while the exact figure is 0.392851: half the seeds gave less than the exact figure,
    and no uncertainty was given. Now an estimate ± its standard error (that of the
    per-path values' mean), the exact figure within a few of them; a game with one noise
    path is exact on any draw."""
    from mfax.dynamics import noise_batch
    from mfax.evaluation import path_values

    drawn = runner.invoke(app, ["eval", "--game", "sis", "--set", "horizon=4", "--paths", "64", "--json"])
    assert drawn.exit_code == 0, drawn.output
    line = next(x for x in drawn.output.splitlines() if "exploitability (per path" in x)
    assert "estimate" in line and "upper bound" not in line and " ± " in line, line
    figures = json.loads(drawn.stdout)
    game = mfax.make("sis", horizon=4)
    batch = noise_batch(game, "sample", jax.random.PRNGKey(0), 64)
    pv = path_values(game, mfax.policies.Uniform(game.n_states, game.n_actions), batch.noise, batch.weight, False)
    gap = np.asarray(pv.best_response_return, np.float64) - np.asarray(pv.policy_return, np.float64)
    np.testing.assert_allclose(figures["exploitability_se"], np.std(gap, ddof=1) / 8, rtol=1e-5)
    se = np.std(np.asarray(pv.policy_return, np.float64), ddof=1) / 8
    np.testing.assert_allclose(figures["policy_return_se"], se, rtol=1e-5)
    # the best response's return too (it had no standard error; a figure of its own paths' spread)
    se = np.std(np.asarray(pv.best_response_return, np.float64), ddof=1) / 8
    np.testing.assert_allclose(figures["best_response_return_se"], se, rtol=1e-5)
    from mfax.run.cli_common import two_digits

    line = next(x for x in drawn.output.splitlines() if "best-response return (per path)" in x)
    assert line.endswith(f" ± {two_digits(figures['best_response_return_se'])}"), line
    exact = runner.invoke(app, ["eval", "--game", "sis", "--set", "horizon=4", "--noise", "exact", "--json"])
    exact_figures = json.loads(exact.stdout)
    assert exact_figures["exploitability_se"] is None and "upper bound" in exact.output
    assert exact_figures["best_response_return_se"] is None
    assert abs(exact_figures["exploitability"] - figures["exploitability"]) < 4 * figures["exploitability_se"]
    one = runner.invoke(app, ["eval", "--game", "mfglib.left_right", "--noise", "sample", "--paths", "3", "--json"])
    assert one.exit_code == 0 and "every draw is it, so these figures are exact" in one.output, one.output
    assert "an estimate" not in one.output and " ± " not in one.output
    assert json.loads(one.stdout)["exploitability_se"] is None  # (it was 5e-9: rounding)
    single = runner.invoke(app, ["eval", "--game", "sis", "--set", "horizon=4", "--paths", "1"])
    assert "± n/a (no standard error from one drawn path)" in single.output  # (it printed "± 0")
    from mfax.evaluation.exploitability import standard_error

    assert standard_error([1.0, 3.0], [0.5, 0.5]) == pytest.approx(1.0)
    assert standard_error([1.0, 3.0], [0.2, 0.8]) is None  # counted draws: how many is not known


def test_the_exploitability_plot_shades_the_standard_errors_of_drawn_paths():
    """Figures estimated on drawn noise paths are drawn with a band of ± one standard
    error (metrics.jsonl's ``exploitability_se``), in the run's colour, in both panels,
    and the axis reaches the band; exact figures (null) and rows written before mfax
    recorded them have no band, and the title then says where the errors are."""
    from matplotlib.collections import PolyCollection

    from mfax.run.config import TrainConfig, resolve
    from mfax.run.plots import exploitability_figure

    config = resolve(TrainConfig(game="linear_quadratic", seeds=2))
    rows = [
        dict(run=r, seed=r, lr=1e-3, iteration=i, wall_clock_s=float(i), exploitability=10.0 + r - i,
             exploitability_info=None, exploitability_se=0.5 + i)
        for r in range(2)
        for i in (0, 1, 2)
    ]  # fmt: skip
    figure = exploitability_figure(rows, config, drawn=True)
    assert "shaded: ± one standard error" in figure.texts[0].get_text().replace("\n", " ")
    for ax in figure.axes[:2]:
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        colours = [tuple(line.get_color()[:3]) for line in ax.get_lines()]
        assert [tuple(b.get_facecolor()[0][:3]) for b in bands] == colours
        low, high = bands[0].get_paths()[0].vertices[:, 1].min(), bands[0].get_paths()[0].vertices[:, 1].max()
        assert (low, high) == pytest.approx((10.0 - 2 - 2.5, 10.0 + 0.5))  # run 0: 10 - i ± (0.5 + i)
        assert ax.get_ylim()[0] <= 5.5 and ax.get_ylim()[1] >= 11.5  # run 1's band, drawn whole
    # one drawn path of 64 with a gap: its standard error is the figure, and the band's
    # foot, 0 up to rounding (-1.7e-18), made the axis symlog over 18 decades (a review)
    figures = zip(rows[:3], (0.67, 0.2, 0.011), strict=True)
    lone = [dict(row, run=0, exploitability=v, exploitability_se=v) for row, v in figures]
    for ax in exploitability_figure(lone, config, drawn=True).axes[:2]:
        assert ax.get_yscale() == "log" and ax.get_ylim()[0] >= 0.011 / 10 / 2
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert band.get_paths()[0].vertices[:, 1].min() == pytest.approx(0.0011)
    # a narrow log range: its minor ticks labelled as plain numbers (they read 1.15x10^1)
    values = (13.6, 12.1, 11.5)
    narrow = [dict(row, run=0, exploitability=v, exploitability_se=None) for row, v in zip(rows, values, strict=False)]
    ax = exploitability_figure(narrow, config).axes[1]
    ax.figure.draw_without_rendering()
    labels = [t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text()]
    assert "12" in labels and all(re.fullmatch(r"\d+(\.\d+)?", label) for label in labels), labels
    # a run resumed from one recorded before the standard errors: its band where they are
    partial = [dict(row, exploitability_se=None if row["iteration"] == 0 else row["exploitability_se"]) for row in rows]
    figure = exploitability_figure(partial, config, drawn=True)
    assert len([c for c in figure.axes[0].collections if isinstance(c, PolyCollection)]) == 2
    for se in (None, "absent"):
        plain = [{k: v for k, v in row.items() if k != "exploitability_se"} for row in rows]
        plain = [{**row, "exploitability_se": None} for row in plain] if se is None else plain
        figure = exploitability_figure(plain, config, drawn=True)
        assert not [c for ax in figure.axes for c in ax.collections if isinstance(c, PolyCollection)]
        assert "no standard errors recorded" in figure.texts[0].get_text().replace("\n", " ")


def test_the_done_line_of_several_runs_names_the_lowest():
    """Two learning rates: the line gave only the mean of the runs (2281 -> 1051 on
    linear-quadratic, where lr 0.03 had reached 392 and lr 0.001 1710). It now names the
    run with the lowest final exploitability and its figure; not for a sweep of game
    parameters, whose runs play different games."""
    import types

    from mfax.run.cli import _best_words
    from mfax.run.config import TrainConfig, resolve

    run = types.SimpleNamespace(
        load_config=lambda consent: resolve(TrainConfig(game="linear_quadratic", lr=[1e-3, 3e-2]))
    )
    summary = {"iterations": 30, "runs": 2, "initial_exploitability": 2281.0, "final_exploitability": 1050.9}
    summary.update(final_exploitability_per_run=[1710.3, 391.6], best_run=1, final_policy_return=-2021.0, swept=[])
    best = _best_words(run, summary)
    assert best == "run 1 (seed 0, lr 0.03) of 2"
    assert done_line(summary, best).endswith("; the lowest, run 1 (seed 0, lr 0.03) of 2: 391.6 per path")
    drawn = {**summary, "final_exploitability_se_per_run": [2.0, 0.25]}
    assert "of 2: 391.6 per path ± 0.25" in done_line(drawn, best)
    assert _best_words(run, {**summary, "swept": ["kappa"]}) is None
    assert _best_words(run, {**summary, "runs": 1}) is None


def test_the_done_line_gives_one_runs_standard_error():
    summary = {"iterations": 4, "initial_exploitability": 12.0, "final_exploitability": 10.0}
    summary.update(final_policy_return=-3.0, noise="sample", final_exploitability_se_per_run=[0.314159])
    assert "12 -> 10 (± 0.31, one standard error)" in done_line(summary)
    two = {**summary, "runs": 2, "final_exploitability_se_per_run": [0.3, 0.4]}  # a mean of runs: none of its own
    assert "standard error" not in done_line(two)
    assert "standard error" not in done_line({k: v for k, v in summary.items() if "_se_" not in k})


def test_the_exploitability_plot_gives_each_run_its_own_colour_in_both_panels():
    """8 runs: matplotlib's 10-colour cycle gave runs 0 and 5 the same colour, line style
    and marker in the right panel (two lines per run), and a run another colour in each
    panel (an audit)."""
    from mfax.run.config import TrainConfig, resolve
    from mfax.run.plots import exploitability_figure

    for runs in (8, 20, 25):
        config = resolve(TrainConfig(game="linear_quadratic", seeds=runs))
        rows = [
            dict(run=r, seed=r, lr=1e-3, iteration=i, wall_clock_s=float(i), exploitability=1.0 + r + i,
                 exploitability_info=0.5 + r + i)
            for r in range(runs)
            for i in (0, 1)
        ]  # fmt: skip
        left, right = exploitability_figure(rows, config).axes[:2]
        styles = [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in right.get_lines()]
        assert len(set(styles)) == len(styles) == 2 * runs
        assert len({line.get_color() for line in left.get_lines()}) == runs
        for r in range(runs):  # per path and info-consistent of a run: its colour, in both panels
            assert left.get_lines()[r].get_color() == right.get_lines()[2 * r].get_color()
            assert right.get_lines()[2 * r].get_color() == right.get_lines()[2 * r + 1].get_color()
        # iterations are whole numbers: a two-iteration run was ticked 0, 0.25, 0.5, ... (a review)
        right.figure.canvas.draw()
        assert all(float(t).is_integer() for t in right.get_xticks()), right.get_xticks()
        # the runs named once, on the left; the right panel's legend says only what its two
        # line styles are (with 4 runs it listed 8 entries over the curves)
        styles_named = [t.get_text() for t in right.get_legend().get_texts()]
        assert styles_named == ["per path (each run's colour)", "info-consistent"]
        if runs <= 20:  # 6 to 20 runs named under the panels, where no curve is (inside, they covered them)
            figure = left.figure
            (legend,) = figure.legends
            assert left.get_legend() is None and len(legend.get_texts()) == runs
            figure.canvas.draw()
            box = legend.get_window_extent()
            for ax in figure.axes[:2]:
                assert not box.overlaps(ax.get_tightbbox()), (box, ax.get_tightbbox())
            assert box.y0 >= 0 and box.x0 >= 0 and box.x1 <= figure.bbox.x1
        else:  # more: a colour bar of the run numbers (it was ticked -0.5, 2.5, ...: no run's number)
            ticks = left.figure.axes[-1].get_yticks()
            assert len(ticks) > 1 and all(float(t).is_integer() and 0 <= t < runs for t in ticks), ticks
    # one run: its lines named in each panel; runs without info-consistent curves: no style legend
    for runs, info in ((1, 0.5), (3, None)):
        config = resolve(TrainConfig(game="linear_quadratic", seeds=runs))
        rows = [
            dict(run=r, seed=r, lr=1e-3, iteration=i, wall_clock_s=float(i), exploitability=1.0 + r + i,
                 exploitability_info=info)
            for r in range(runs)
            for i in (0, 1)
        ]  # fmt: skip
        left, right = exploitability_figure(rows, config).axes[:2]
        assert len(left.get_legend().get_texts()) == runs
        if runs == 1:
            assert [t.get_text() for t in right.get_legend().get_texts()][1].endswith("info-consistent")
        else:
            assert right.get_legend() is None


def test_heat_maps_show_what_their_colour_keys_say():
    """An audit of the figures: a policy of categorical actions drawn as its mean action
    index (crowd_modelling_2d: action 2 for sure, the uniform policy and an even split of
    actions 0 and 4 all drew 2.0); 401 states in a 3.6-inch panel smoothed one-state peaks
    of 0.194 to 0.085 under a colour bar reaching 0.194; each path's mean field on its own
    colour scale."""
    import types

    from mfax.run.plots import _heatmap_height, mean_field_figure, policy_figure

    game = mfax.make("openspiel.crowd_modelling_2d", size=3, horizon=2)
    assert game.actions_categorical and not mfax.make("beach_bar").actions_categorical
    probs = np.zeros((1, 2, game.n_states, 5))
    probs[0, 0, 0, 2] = 1.0  # sure of action 2
    probs[0, 0, 1] = 0.2  # uniform
    probs[0, 0, 2, [0, 4]] = 0.5  # an even split of 0 and 4: mean index 2
    probs[0, 0, 3:, 1] = probs[0, 1, :, 3] = 1.0
    image = policy_figure(game, types.SimpleNamespace(probs=probs), ["p"]).axes[0].get_images()[0].get_array()
    assert image.shape[:2] == (game.n_states, 2)  # states up, time across
    white = np.ones(3)
    assert np.allclose(image[1, 0, :3], white) and not np.allclose(image[0, 0, :3], white)
    assert not np.allclose(image[0, 0, :3], image[2, 0, :3]) and not np.allclose(image[2, 0, :3], white)
    mu = np.full((2, 3, 401), 1e-3)
    mu[0, 2, 200], mu[1, 1, 7] = 0.194, 0.05
    figure = mean_field_figure(types.SimpleNamespace(name="g"), types.SimpleNamespace(mu=mu), ["a", "b"])
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert [im.get_clim() for im in images] == [(0.0, 0.194)] * 2  # one scale for every path, from nobody there
    assert all(im.get_interpolation() == "nearest" for im in images)
    figure.set_dpi(110)  # the run's figures' resolution: at least one pixel row per state
    assert all(ax.get_window_extent().height >= 401 for ax in figure.axes if ax.get_images())
    assert _heatmap_height(401) < _heatmap_height(900) <= 12.0
    # a signed action's mean (a move) is white at 0 whatever the data's range: moves down
    # were drawn red, as up, where the range was lopsided (a review of every figure); an
    # unsigned one (a share, a probability) has no middle to split at
    bar = mfax.make("beach_bar", num_states=5, horizon=2)
    moves = np.zeros((1, 2, 5, bar.n_actions))
    moves[..., int(np.argmin(bar.action_values()))] = 0.1  # mostly down, a little
    moves[..., int(np.argmax(bar.action_values()))] = 0.05
    moves[..., int(np.argmin(np.abs(bar.action_values())))] = 0.85
    drawn = policy_figure(bar, types.SimpleNamespace(probs=moves), ["p"]).axes[0].get_images()[0]
    low, high = drawn.get_clim()
    assert low == -high and high > 0 and drawn.get_cmap().name == "coolwarm"
    shares = types.SimpleNamespace(name="s", actions_categorical=False, action_values=lambda: np.array([0.2, 0.8]))
    even = types.SimpleNamespace(probs=np.full((1, 2, 3, 2), 0.5))
    assert policy_figure(shares, even, ["p"]).axes[0].get_images()[0].get_cmap().name == "viridis"


def test_a_grid_games_mean_field_is_drawn_on_its_grid():
    """A 2-D game's mean field was only drawn as time-by-state stripes (the state index
    x * size + y up the axis): each map is now the mean field reshaped onto the game's
    declared grid, one colour scale; a three-axis grid draws a map per floor and time.
    The review: a sweep's figures (retitled with their run) raised in the layout engine
    and no plot was written; a NaN made every map's scale nan; --overwrite kept the
    figure of the run it replaced."""
    import io
    import types

    from mfax.games.mfglib.building_evacuation import MFGLibBuildingEvacuation
    from mfax.games.openspiel.crowd_modelling_2d import CrowdModelling2d
    from mfax.run.plots import grid_figure, mean_field_figure, retitle
    from mfax.run.rundir import OWN_FILES

    game = CrowdModelling2d(size=3, horizon=4)
    mu = np.random.default_rng(0).dirichlet(np.ones(9), size=(2, 5))  # (P, T + 1, n)
    figure = grid_figure(game, types.SimpleNamespace(mu=mu), ["a", "b"])
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert len(images) == 2 * 4  # a row per path at t = 0, 1, 2, 4
    assert np.array_equal(images[4 + 3].get_array(), mu[1, 4].reshape(3, 3))  # path 1 at T: x up, y across
    assert mu[1, 4, 1 * 3 + 2] == images[7].get_array()[1, 2]  # state x * size + y at row x, column y
    assert {im.get_clim() for im in images} == {(0.0, mu[:, [0, 1, 2, 4]].max())}
    retitle(figure, "run 1 of 2")  # (a sweep's figure names its run)
    figure.savefig(io.BytesIO(), format="png")
    one = mean_field_figure(types.SimpleNamespace(name="g"), types.SimpleNamespace(mu=np.full((1, 5, 2), 0.5)), ["a"])

    def inches(fig):
        return fig.axes[0].get_position().height * fig.get_figheight()

    tall = inches(one)
    retitle(one, "run 0 (seed 0, recovery 0.2) of 2: the lowest exploitability at iteration 2; the runs play ...")
    assert inches(one) > 0.9 * tall  # the figure grows for the run's lines (they squeezed a one-panel map)
    one.savefig(io.BytesIO(), format="png")  # (drawn: the title's place is known)
    assert one._suptitle.get_window_extent().y0 >= one.axes[0].title.get_window_extent().y1  # above, not over it
    mu[0, 0, 3] = np.nan
    figure = grid_figure(game, types.SimpleNamespace(mu=mu), ["a"], times=[4, 0, 4])
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert [ax.get_title().splitlines()[-1] for ax in figure.axes[:2]] == ["t = 0", "t = 4"]  # in order, once
    assert {im.get_clim() for im in images} == {(0.0, np.nanmax(mu[0, [0, 4]]))}
    assert "plots/mean_field_grid.png" in OWN_FILES  # (replaced by --overwrite, as every figure)
    x, y = np.divmod(np.arange(9), 3)  # the export's state coordinates: each cell's place on the map
    assert {k: v.tolist() for k, v in game.state_coordinates().items()} == {"x": x.tolist(), "y": y.tolist()}
    floors = MFGLibBuildingEvacuation(n_floor=2, floor_l=2, floor_w=3, T=1)
    mu = np.random.default_rng(1).dirichlet(np.ones(12), size=(1, 3))
    images = [ax.get_images()[0] for ax in grid_figure(floors, types.SimpleNamespace(mu=mu), ["a"]).axes[:-1]]
    assert len(images) == 3 * 2  # a row per time (0, 1, 2 = T with its exit step), a map per floor
    assert np.array_equal(images[5].get_array(), mu[0, 2].reshape(2, 2, 3)[1])
    assert grid_figure(mfax.games.BeachBar(num_states=5), types.SimpleNamespace(mu=mu), ["a"]) is None
    assert list(floors.state_coordinates()) == ["floor", "l", "w"] and floors.state_coordinates()["w"][5] == 2


def test_exploitability_axis_is_symlog_when_a_value_is_not_positive():
    from mfax.run.plots import exploitability_scale

    assert exploitability_scale([444.7, 135.3, None]) == ("log", None)
    assert exploitability_scale([38.9, 2.3, -5.7e-6, 0.0]) == ("symlog", 1e-6)


def test_a_symlog_exploitability_axis_keeps_its_label_inside_the_figure():
    """A solver converged to 0 in floating point (sis without common noise): the symlog
    axis' label, which said the linear range and why, was taller than the panel and ran
    out of the figure (seen on a figure). The note is now inside the panel, and both
    labels lie within the figure."""
    from mfax.run.config import TrainConfig, resolve
    from mfax.run.plots import exploitability_figure

    values = [0.5, 0.01, 1e-4, 0.0, -2e-7, 0.0]
    rows = [
        dict(run=0, seed=0, lr=1e-3, iteration=i, wall_clock_s=float(i), exploitability=v, exploitability_info=v)
        for i, v in enumerate(values)
    ]
    figure = exploitability_figure(rows, resolve(TrainConfig(game="sis")))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    box = figure.bbox
    for ax in figure.axes[:2]:
        assert ax.get_yscale() == "symlog"
        label = ax.yaxis.label.get_window_extent(renderer)
        assert box.y0 <= label.y0 and label.y1 <= box.y1 and box.x0 <= label.x0, ax.yaxis.label.get_text()
        assert "linear within ±1e-07" in ax.get_title(loc="left")


def test_panel_titles_wrap_between_words_never_inside_a_value():
    """Beach bar's ``closes at t = 3`` was wrapped as ``... closes at t`` / ``= 3`` (or a
    lone ``3``) over a panel (seen on a figure)."""
    import textwrap

    from mfax.run.plots import PANEL_TITLE_CHARS, fill

    for t in (3, 13):
        title = f"noise path 12: bar at state 15, closes at t = {t}"
        lines = fill(title, PANEL_TITLE_CHARS).split("\n")
        assert lines[-1] == f"t = {t}" and " ".join(lines) == title
    assert fill("kappa = 0.5, sigma = 1", 14).split("\n") == ["kappa = 0.5,", "sigma = 1"]
    long = "noise path 0: the_very_long_parameter_name_of_the_game = 123456789.5"
    assert fill(long, PANEL_TITLE_CHARS) == textwrap.fill(long, PANEL_TITLE_CHARS)  # longer than a line: as words


def test_plot_titles_describe_the_noise_path_in_words():
    import jax

    from mfax.dynamics import noise_batch
    from mfax.games import make
    from mfax.run.plots import path_title

    game = make("beach_bar", num_states=21, horizon=10)
    batch = noise_batch(game, "exact", jax.random.PRNGKey(0), 1)
    titles = {path_title(game, batch.noise, i, i) for i in range(batch.num_paths)}
    assert "noise path 0: bar at state 5, stays open" in titles
    assert f"noise path {batch.num_paths - 1}: bar at state 15, closes at t = 5" in titles
    sis = make("sis")
    sis_batch = noise_batch(sis, "sample", jax.random.PRNGKey(0), 4)
    assert {path_title(sis, sis_batch.noise, i, i).split(": ")[1] for i in range(4)} <= {"mild regime", "severe regime"}


@pytest.mark.parametrize(
    ("flags", "env", "says"),
    [
        (["--num-processes", "2"], {}, "given: number of processes (coordinator_address should be defined.)"),
        slow(["--process-id", "0"], {}, "a multi-host run needs the coordinator, the number of processes and the"),
        slow([], {"MFAX_NUM_PROCESSES": "2", "MFAX_PROCESS_ID": "1"}, "given: number of processes, process id"),
        slow([], {"MFAX_NUM_PROCESSES": "abc"}, "environment variable MFAX_NUM_PROCESSES must be an integer"),
    ],
)
def test_incomplete_multi_host_settings_are_one_line(flags, env, says):
    """--num-processes or --process-id without --coordinator ended in JAX's traceback;
    MFAX_NUM_PROCESSES / MFAX_PROCESS_ID without MFAX_COORDINATOR trained as one process
    silently (a bad value too). In fresh processes: JAX joins a multi-host run before it
    computes anything, and this test process has computed."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "mfax.run.cli", "train", *flags, "--out", "/nonexistent-dir/never"]
    environment = {**os.environ, "JAX_PLATFORMS": "cpu", **env}
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0], done.stderr


def test_a_config_files_paths_with_exact_noise_are_refused(tmp_path):
    """--paths / --eval-paths with enumerated noise were refused, the same keys in a config
    file accepted and recorded in config.json as if used."""
    for key in ("paths", "eval_paths"):
        config = tmp_path / f"{key}.toml"
        config.write_text(f"iterations = 2\n{key} = 5\n[params]\nnum_states = 11\nhorizon = 6\n")
        result = runner.invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / key)])
        assert result.exit_code == 2, result.output
        assert f"the config file's {key} is not used with exact noise" in result.stderr
        assert not (tmp_path / key).exists()


def test_curve_times_where_a_game_has_no_curve_moments_are_refused(tmp_path):
    """plot --curves-at on a game without curve moments did nothing, silently."""
    from conftest import TINY_NETWORK

    out = tmp_path / "run"
    mfax.solve("beach_bar", "spg", hp=TINY_NETWORK, iterations=1, eval_every=1, out=out, num_states=10, horizon=4)
    result = runner.invoke(app, ["plot", str(out), "--curves-at", "1"])
    assert result.exit_code == 2 and "beach_bar declares none" in result.stderr, result.output
    # ... also for times out of range: the range (0..4) was said first, of an option that never applies
    result = runner.invoke(app, ["plot", str(out), "--curves-at", "99"])
    assert result.exit_code == 2 and "beach_bar declares none" in result.stderr, result.output


def test_provenance_reads_xla_defaults_0_as_unset():
    """MFAX_XLA_DEFAULTS=0 and unset are one setting: evaluating a run made with it unset
    under 0 warned of another setup."""
    from mfax.run.provenance import differences

    assert differences({"MFAX_XLA_DEFAULTS": ""}, {"MFAX_XLA_DEFAULTS": ""}) == []
    assert differences({"MFAX_XLA_DEFAULTS": "0"}, {"MFAX_XLA_DEFAULTS": ""}) == []
    assert differences({"MFAX_XLA_DEFAULTS": ""}, {"MFAX_XLA_DEFAULTS": "1"}) == ["MFAX_XLA_DEFAULTS  -> 1"]


def test_plot_titles_stay_inside_the_figure():
    """A one-path macro policy figure clipped its panel title (the productivity range) and
    its title at both edges: every title line is now wrapped to the figure's width."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mfax.run import plots

    panel = "noise path 0: log productivity -0.123..+0.456, ends +0.078"
    title = "macro: learned policy on 1 evaluation noise path"
    for count in (1, 3):
        fig = plots._heatmaps(np.zeros((count, 5, 4)), [panel] * count, "viridis", title, label="x")
        plots._suptitle(fig, f"run 3 of 4: lr 0.01, seed 1, the lowest exploitability at iteration 40\n{title}")
        FigureCanvasAgg(fig).draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        texts = [fig._suptitle, *(ax.title for ax in fig.axes if ax.get_title())]
        assert len(texts) > count
        for text in texts:
            extent = text.get_window_extent(renderer)
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1, (count, text.get_text())
    assert plots._paths(["a"]) == "1 evaluation noise path" and plots._paths(["a", "b"]) == "2 evaluation noise paths"


def test_eval_x64_reads_a_float32_run(tmp_path):
    """``mfax eval RUN --x64`` (the docs' advice for a figure just below zero) on a run
    trained in float32: its parameters widened exactly, the figures those of float32 to
    its rounding (it refused the checkpoint as 'another mfax version's')."""
    import jax

    from conftest import TINY_NETWORK

    out = tmp_path / "run"
    mfax.solve("beach_bar", "spg", hp=TINY_NETWORK, iterations=2, eval_every=2, out=out, num_states=10, horizon=6)
    single = json.loads(runner.invoke(app, ["eval", str(out), "--json"]).stdout)
    try:
        result = runner.invoke(app, ["eval", str(out), "--x64", "--json"])
    finally:
        jax.config.update("jax_enable_x64", False)
    assert result.exit_code == 0, result.output
    double = json.loads(result.stdout)
    assert double["exploitability"] == pytest.approx(single["exploitability"], rel=1e-5)
    assert double["exploitability"] != single["exploitability"]  # computed again, in float64


def test_config_files_that_are_no_table_or_no_text_or_give_an_unused_lr(tmp_path):
    """A JSON config that is a list, bytes that are no text, and a config's lr for a
    solver without one (ignored: a list trained identical copies) were a traceback or
    accepted."""
    cases = {
        "list.json": (b"[1, 2, 3]", "a configuration is a table of key = value"),
        "bytes.toml": (b"\xff\xfe garbage", "cannot parse config file"),
        "fp.json": (b'{"algo": "fp", "lr": 0.01}', "the config file's lr is not used by fp"),
        # a bad value from the file names the file's key, not an option the user did not type
        "keep.toml": (b"keep = -1", "error: the config file's keep must be in 0..2147483647, got -1"),
        "keep_huge.json": (b'{"keep": 100000000000000000000000}', "keep must be in 0..2147483647, got 1000000000"),
        "every.json": (b'{"eval_every": 0}', "error: the config file's eval_every must be >= 1, got 0"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        result = runner.invoke(app, ["train", "--config", str(tmp_path / name), "--out", str(tmp_path / "run")])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert not (tmp_path / "run").exists()


def test_memory_counts_the_runs_side_by_side_and_the_network(tmp_path):
    """A million seeds grew a Python loop to gigabytes, a width of a million aborted in
    XLA: both are sized before anything is built and refused in one line."""
    for extra in (["--seeds", "1000000"], ["--hp", "mlp_width=1000000"]):
        result = runner.invoke(app, ["train", *extra, "--iterations", "2", "--out", str(tmp_path / "run")])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "of memory" in lines[0] and "smaller --hp network sizes" in lines[0], lines
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("wrapper", ["PacifyFlushWrapper", "_PacifyFlushWrapper"])  # Typer's copy, Click's own
def test_a_closed_output_ends_a_command_with_141_and_one_line(monkeypatch, capfd, wrapper):
    """`mfax list | head -1`: Click ended a command whose output closed with status 1 and
    no word (a failure, to a script), and one that closed inside mfax's error handling
    said `mfax: error: Broken pipe` with status 2 (bad input). Both now end with status
    141, as a process SIGPIPE ended, and a line on stderr (found by a review)."""
    import sys

    import typer

    from mfax.run import cli
    from mfax.run.cli_common import CLOSED_OUTPUT, user_errors

    class Wrapper:  # what Click (or Typer's copy of it) wraps the streams in
        def __init__(self, wrapped):
            self.wrapped = wrapped

        def __getattr__(self, name):
            return getattr(self.wrapped, name)

    Wrapper.__name__ = wrapper

    def click_on_a_closed_pipe():
        monkeypatch.setattr(sys, "stdout", Wrapper(sys.stdout))
        raise SystemExit(1)

    import signal

    monkeypatch.setattr(cli, "app", click_on_a_closed_pipe)
    monkeypatch.setattr(cli, "output_closed", lambda: (sys.stderr.write(f"mfax: {CLOSED_OUTPUT}\n"), 141)[1])
    stdout, sigterm = sys.stdout, signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as ended:
            cli.main()
        assert ended.value.code == 141
        assert capfd.readouterr().err == f"mfax: {CLOSED_OUTPUT}\n"
        monkeypatch.setattr(sys, "stdout", stdout)
        monkeypatch.setattr(cli, "app", lambda: (_ for _ in ()).throw(SystemExit(1)))  # a plain status 1 stays 1
        with pytest.raises(SystemExit) as ended:
            cli.main()
        assert ended.value.code == 1
    finally:
        signal.signal(signal.SIGTERM, sigterm)  # (main() sets its own handler)
    with pytest.raises(typer.Exit) as stopped, user_errors():
        raise BrokenPipeError(32, "Broken pipe")
    assert stopped.value.exit_code == 141


def test_default_run_directories_of_one_second_are_two_and_a_failed_one_is_removed(tmp_path, monkeypatch):
    """Two trainings started in the same second took one default name, and the second was
    refused as "in use by process N" (a review: a sweep started in parallel); each now
    makes its own folder, and one that fails before its run starts leaves none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *args: "20261207-120000")
    args = ["train", "--game", "mfglib.rock_paper_scissors", "--algo", "fp", "--iterations", "1", "--no-progress"]
    for _ in range(2):
        assert runner.invoke(app, [*args, "--no-plots"]).exit_code == 0
    base = "mfglib.rock_paper_scissors-fp-20261207-120000"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [base, f"{base}-2"]
    assert all((tmp_path / "runs" / name / "checkpoint.eqx").is_file() for name in (base, f"{base}-2"))
    # a solver that refuses the game as it is built: after the folder was made
    solver = str(Path(__file__).resolve().parents[1] / "examples" / "soft_best_response.py") + ":SPEC"
    failed = runner.invoke(app, ["train", "--game", "sis", "--algo", solver, "--no-progress"])
    one_error_line(failed, "soft best response solves games without common noise")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [base, f"{base}-2"]
