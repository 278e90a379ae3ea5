"""A sweep over a traced game parameter trains every value side by side in one compiled
program, and each run equals the run of its value alone."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import one_error_line, slow
from mfax.errors import GameError
from mfax.run.cli import app
from mfax.run.columns import METRIC_COLUMNS
from mfax.run.config import TrainConfig, resolve
from mfax.run.rundir import RunDir
from mfax.run.train import train
from mfax.tracing import TRACES

SMALL = dict(obs_embed=8, gru_hidden=8, state_embed=4, aggregate_embed=4, mlp_width=8)
GAME = {"num_states": 9, "horizon": 4}
runner = CliRunner()


def _rows(out):
    return [{k: v for k, v in r.items() if k != "wall_clock_s"} for r in RunDir(out).read_metrics()]


@pytest.mark.parametrize("algo", ["spg", slow("fp")])
def test_a_sweep_is_one_program_and_each_run_is_its_value_alone(tmp_path, algo):
    """Structural and classical (whose table policy reads each run's own observations)."""
    hparams = SMALL if algo == "spg" else {}
    base = dict(game="linear_quadratic", algo=algo, iterations=2, eval_every=2, hparams=hparams, lr=[1e-2, 3e-3])
    config = TrainConfig(**base, params={**GAME, "kappa": [0.5, 2.0]})
    assert config.num_runs == 4 and [config.run_params(r)["kappa"] for r in range(4)] == [0.5, 0.5, 2.0, 2.0]
    name = f"{algo}_chunk" if algo == "fp" else "structural_chunk"
    before = TRACES[name]
    train(config, tmp_path / "sweep", progress=False)
    assert TRACES[name] == before + 1  # one trace for both values (and both rates)
    swept = _rows(tmp_path / "sweep")
    for k, kappa in [(1, 2.0)]:  # the second value: its runs step with values other than the solver's game
        train(TrainConfig(**base, params={**GAME, "kappa": kappa}), tmp_path / f"alone{k}", progress=False)
        alone = _rows(tmp_path / f"alone{k}")
        mine = [r for r in swept if r["run"] // 2 == k]
        assert len(mine) == len(alone) == 2 * 2
        for a, b in zip(mine, alone, strict=True):
            assert (a["iteration"], a["seed"], a["lr"]) == (b["iteration"], b["seed"], b["lr"])
            for key in ("exploitability", "policy_return", "train_policy_return"):
                if b[key] is not None:
                    assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (kappa, key)
    # the two values are different games: the runs differ
    assert swept[0]["exploitability"] != swept[2]["exploitability"]


@pytest.mark.parametrize(
    ("algo", "hparams", "key", "values"),
    [("omi", {"alpha": 0.1}, "sigma", [3.0, 1.0]), slow("mf_omo", {}, "kappa", [0.5, 3.0])],
)
def test_a_sweep_of_a_solver_whose_set_up_reads_the_game_starts_each_run_on_its_own(
    tmp_path, algo, hparams, key, values
):
    """OMI's first flow and MF-OMO's reward bound come from the game: every run of a
    sweep started from the first value's (its second run matched no solo run)."""
    base = dict(game="mfglib.linear_quadratic", algo=algo, iterations=10, eval_every=5, hparams=hparams)
    train(TrainConfig(**base, params={key: values}), tmp_path / "sweep", progress=False)
    train(TrainConfig(**base, params={key: values[1]}), tmp_path / "alone", progress=False)
    swept = [r for r in _rows(tmp_path / "sweep") if r["run"] == 1]
    alone = _rows(tmp_path / "alone")
    assert [r["iteration"] for r in swept] == [r["iteration"] for r in alone] == [0, 5, 10]
    for a, b in zip(swept, alone, strict=True):
        assert a["exploitability"] == pytest.approx(b["exploitability"], rel=1e-5), a["iteration"]


def test_runs_of_a_sweep_over_two_parameters_keep_their_games_through_config_json():
    """config.json sorts its keys: the runs were paired with other games when read back or
    resumed while the sweep followed the order the parameters were given in."""
    from mfax.run.config import from_dict

    config = TrainConfig(
        game="linear_quadratic", lr=[1e-3], params={"q": [0.1, 0.5], "kappa": [0.2, 2.0], "num_states": 9}
    )
    back = from_dict(json.loads(config.to_json()))
    runs = [config.run_params(r) for r in range(config.num_runs)]
    assert runs == [back.run_params(r) for r in range(back.num_runs)]
    assert [(p["kappa"], p["q"]) for p in runs] == [(0.2, 0.1), (0.2, 0.5), (2.0, 0.1), (2.0, 0.5)]
    assert all(p["num_states"] == 9 for p in runs)


def test_sweeping_a_static_parameter_is_one_clear_error():
    with pytest.raises(GameError, match="'num_states' of 'linear_quadratic' cannot take several values"):
        resolve(TrainConfig(game="linear_quadratic", params={"num_states": [9, 11]}))


def test_cli_set_with_several_values_sweeps(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--game", "linear_quadratic", "--algo", "fp", "--set", "num_states=9", "--set", "horizon=4"]
    result = runner.invoke(
        app,
        [
            *args,
            "--set",
            "kappa=0.5,2",
            "--iterations",
            "2",
            "--eval-every",
            "2",
            "--out",
            str(out),
            "--no-progress",
            "--no-plots",
        ],
    )
    assert result.exit_code == 0, result.output
    # the mean of the runs' exploitabilities is no game's figure: the done line says so
    assert "mean of 2 runs of different games (kappa swept; each run's in summary.json)" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["swept"] == ["kappa"] and summary["swept_per_run"] == [{"kappa": 0.5}, {"kappa": 2.0}]
    saved = json.loads((out / "config.json").read_text())
    assert saved["params"]["kappa"] == [0.5, 2.0]
    assert sorted({r["run"] for r in RunDir(out).read_metrics()}) == [0, 1]
    # the best checkpoint: the evaluation of the lowest figure of all, and the run reaching it
    lowest = min((r["exploitability"], r["iteration"], r["run"]) for r in RunDir(out).read_metrics())
    assert (summary["best_iteration"], summary["best_iteration_run"]) == lowest[1:]
    # each metric row names its run's swept values (metrics.csv had only run, seed, lr)
    assert {(r["run"], r["params"]["kappa"]) for r in RunDir(out).read_metrics()} == {(0, 0.5), (1, 2.0)}
    with (out / "metrics.csv").open(newline="") as f:
        cells = list(csv.DictReader(f))
    assert {(c["run"], c["params.kappa"]) for c in cells} == {("0", "0.5"), ("1", "2.0")}
    result = mfax.load(out)
    history = result.history
    assert {(int(r), k) for r, k in zip(history["run"], history["params.kappa"], strict=True)} == {(0, 0.5), (1, 2.0)}
    # each run's policy with its own game and paths gives its row (result.game is the best
    # run's: run 1's policy scored on it matched no row of the metrics)
    from mfax.evaluation import evaluate

    for r in (0, 1):
        assert result.game_of(r).kappa == (0.5, 2.0)[r]
        figures = evaluate(result.game_of(r), result.policy_of(r), result.eval_noise_of(r))
        row = next(x for x in RunDir(out).read_metrics() if x["run"] == r and x["iteration"] == 2)
        np.testing.assert_allclose(figures.policy_return, row["policy_return"], rtol=1e-5)
    with pytest.raises(GameError, match=r"run index must be an integer in 0\.\.1, got 2"):
        result.game_of(2)
    # any run's figures, not only the best's (a review: plot_mean_field(run=) was a TypeError
    # and `mfax plot` had no --run-index), named as that run
    title = " ".join(result.plot_mean_field(run=1).get_suptitle().split())
    assert title.startswith("run 1 (seed 0, kappa 2) of 2") and "lowest" not in title
    assert result.plot_policy(run=0).get_suptitle().startswith("run 0 (seed 0, kappa 0.5) of 2")
    drawn = CliRunner().invoke(app, ["plot", str(out), "--run-index", "1"])
    assert drawn.exit_code == 0 and (out / "plots" / "mean_field.png").is_file(), drawn.output
    one_error_line(CliRunner().invoke(app, ["plot", str(out), "--run-index", "2"]), "run index 2 out of range")
    manifest = result.export(tmp_path / "api.npz", run=1)
    assert (manifest["run_index"], manifest["config"]["params"]["kappa"]) == (1, 2.0)
    # the runs are told apart by their swept values: in the plots' legends and the export
    from mfax.run.plots import exploitability_figure

    figure = exploitability_figure(RunDir(out).read_metrics(), RunDir(out).load_config())
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["run 0 (seed 0, kappa 0.5)", "run 1 (seed 0, kappa 2)"]
    exported = runner.invoke(app, ["export", str(out), "--run-index", "1", "--out", str(tmp_path / "x.npz"), "--json"])
    assert exported.exit_code == 0, exported.output
    manifest = json.loads(exported.stdout)
    assert manifest["config"]["params"]["kappa"] == 2.0 and manifest["run_index"] == 1
    # the exported run's own seed and rate, and a line saying which run it is (it said nothing)
    assert (manifest["config"]["seed"], manifest["config"]["seeds"]) == (0, 1)
    assert "run 1 (seed 0, kappa 2) of 2" in exported.output
    size = (tmp_path / "x.npz").stat().st_size / 2**20  # the size said (a 725 MB export was not)
    assert f"; {size:.1f} MiB)" in exported.output
    picked = runner.invoke(app, ["export", str(out), "--out", str(tmp_path / "y.npz")])
    assert "of 2: the lowest exploitability at the checkpoint (--run-index picks another)" in picked.output
    evaluated = runner.invoke(app, ["eval", str(out), "--run-index", "1"])
    assert "(run 1 (seed 0, kappa 2) of 2; checkpoint last (iteration 2))" in evaluated.output, evaluated.output
    assert (manifest["checkpoint"], manifest["checkpoint_iteration"]) == ("last", 2)
    bad = runner.invoke(app, [*args[:-2], "--set", "horizon=4,5", "--out", str(tmp_path / "bad"), "--no-progress"])
    assert bad.exit_code == 2 and "cannot take several values" in bad.stderr
    assert not (tmp_path / "bad").exists()
    np.testing.assert_equal(len([line for line in bad.stderr.splitlines() if line.strip()]), 1)


def test_the_figures_of_one_run_of_several_say_which(tmp_path, monkeypatch):
    """Mean field, policy and the other per-run figures showed the best run of a sweep with
    nothing saying which, chosen by comparing the exploitabilities of different games."""
    from mfax.run import plots

    out = tmp_path / "sweep"
    config = TrainConfig(
        game="linear_quadratic", algo="fp", iterations=2, eval_every=2, params={**GAME, "kappa": [0.5, 2.0]}
    )
    train(config, out, progress=False)
    titles = {}
    real = plots._save

    def keep(fig, path, *args, **kwargs):
        titles[path.stem] = fig.get_suptitle()
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots, "_save", keep)
    plots.plot_run(RunDir(out))
    rows = RunDir(out).read_metrics()
    best = min((r for r in rows if r["iteration"] == 2), key=lambda r: (r["exploitability"], r["run"]))
    label = plots.run_label(best, resolve(config))
    for name in ("mean_field", "policy"):
        assert titles[name].startswith(f"{label} of 2: the lowest exploitability at iteration 2"), titles[name]
        assert "different games" in titles[name]
    assert not titles["exploitability"].startswith("run ")  # every run is in it, each labelled
    plots.plot_run(RunDir(out), run_index=1)  # (named: which checkpoint, said apart)
    assert titles["policy"].startswith("run 1 (seed 0, kappa 2) of 2, at iteration 2, the last checkpoint\n")
    alone = tmp_path / "alone"  # one run: which checkpoint too (the figures never said)
    train(dataclasses.replace(config, params={**GAME, "kappa": 0.5}), alone, progress=False)
    plots.plot_run(RunDir(alone))
    assert titles["mean_field"].startswith("the policy at iteration 2, the last checkpoint\n"), titles["mean_field"]


def test_rows_appended_to_a_metrics_csv_keep_its_columns(tmp_path):
    """A sweep trained by an earlier mfax wrote metrics.csv without the swept values'
    columns: rows a resume appends (which name them) keep the file's columns, so every
    line has as many cells as the header."""
    run = RunDir(tmp_path)
    old = {
        **dict.fromkeys(METRIC_COLUMNS),
        "iteration": 0,
        "run": 0,
        "seed": 0,
        "wall_clock_s": 0.0,
        "exploitability": 1.0,
    }
    run.append_metrics([old])
    run.append_metrics([{**old, "iteration": 2, "params": {"kappa": 0.5}}])
    with (tmp_path / "metrics.csv").open(newline="") as f:
        lines = list(csv.reader(f))
    assert len({len(line) for line in lines}) == 1 and "params.kappa" not in lines[0]
    assert [r.get("params") for r in run.read_metrics()] == [None, {"kappa": 0.5}]


QUIET = ("--no-progress", "--no-plots")


def test_a_resumed_sweep_names_its_values_in_every_row(tmp_path):
    """A resume rewrites the metric files up to its checkpoint: before the first one (a
    run stopped in its first chunk) metrics.csv was rewritten with no row, its header
    without the swept values' columns, which every appended row then lost; a sweep begun
    by an earlier mfax (rows without them) kept them missing for its first rows."""
    run = RunDir(tmp_path / "early")
    run.root.mkdir()
    row = {**dict.fromkeys(METRIC_COLUMNS), "iteration": 0, "seed": 0, "wall_clock_s": 0.0}
    run.append_metrics([{**row, "run": 0, "params": {"kappa": 0.5}}])
    run.truncate_metrics(-1, lambda r: {"kappa": [0.5, 2.0][r]})  # the resume of a run with no checkpoint
    run.append_metrics([{**row, "run": r, "params": {"kappa": [0.5, 2.0][r]}} for r in (0, 1)])
    with (tmp_path / "early" / "metrics.csv").open(newline="") as f:
        assert [c["params.kappa"] for c in csv.DictReader(f)] == ["0.5", "2.0"]
    out = tmp_path / "older"
    args = ["--game", "linear_quadratic", "--algo", "fp", "--set", "num_states=9", "--set", "horizon=4"]
    trained = runner.invoke(
        app,
        ["train", *args, "--set", "kappa=0.5,2", "--iterations", "2", "--eval-every", "2", "--out", str(out), *QUIET],
    )
    assert trained.exit_code == 0, trained.output
    # as an mfax that did not record the values wrote them
    rows = [{k: v for k, v in r.items() if k != "params"} for r in RunDir(out).read_metrics()]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (out / "metrics.csv").open(newline="") as f:
        lines = list(csv.reader(f))
    keep = [i for i, name in enumerate(lines[0]) if not name.startswith("params.")]
    (out / "metrics.csv").write_text("".join(",".join(line[i] for i in keep) + "\n" for line in lines))
    resumed = runner.invoke(app, ["train", "--resume", str(out), "--iterations", "4", *QUIET])
    assert resumed.exit_code == 0, resumed.output
    assert [(r["iteration"], r["params"]) for r in RunDir(out).read_metrics() if r["run"] == 1] == [
        (k, {"kappa": 2.0}) for k in (0, 2, 4)
    ]
    with (out / "metrics.csv").open(newline="") as f:
        assert [(c["run"], c["params.kappa"]) for c in csv.DictReader(f)] == [("0", "0.5"), ("1", "2.0")] * 3


def test_a_list_of_one_value_is_that_value_not_a_sweep(tmp_path):
    """kappa = [0.5] in a config file with 2 seeds: the done line, summary.json and the
    plots said the runs played different games (an audit); a static parameter given as
    [4] was refused as swept."""
    config = resolve(TrainConfig(game="linear_quadratic", algo="spg", seeds=2, params={"kappa": [2.0], "horizon": [4]}))
    assert config.swept() == {} and config.num_runs == 2
    assert [config.run_params(r) for r in (0, 1)] == [{"kappa": 2.0, "horizon": 4}] * 2
    out = tmp_path / "run"
    train(resolve(TrainConfig(game="linear_quadratic", algo="fp", iterations=2, eval_every=2,
                              params={**GAME, "kappa": [2.0]})), out, progress=False)  # fmt: skip
    alone = tmp_path / "alone"
    train(resolve(TrainConfig(game="linear_quadratic", algo="fp", iterations=2, eval_every=2,
                              params={**GAME, "kappa": 2.0})), alone, progress=False)  # fmt: skip
    assert _rows(out) == _rows(alone)
    assert json.loads((out / "summary.json").read_text())["swept"] == []


def test_the_configuration_of_one_run_of_several_is_its_own():
    """An export of run 3 of 2 seeds x 2 rates recorded lr [0.001, 0.01], seed 0, seeds 2
    (the folder's) beside that run's own game parameters (an audit)."""
    config = resolve(TrainConfig(game="linear_quadratic", algo="spg", seeds=2, lr=[1e-3, 1e-2]))
    own = config.run_dict(3)
    assert (own["seed"], own["seeds"], own["lr"]) == (config.seed + 1, 1, [1e-2])
    assert resolve(TrainConfig(**{k: v for k, v in own.items() if k in TrainConfig.__dataclass_fields__})).num_runs == 1
