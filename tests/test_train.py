"""Training runs end to end: exploitability falls, determinism, resume, faults, CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import SMALL_NETWORK as SMALL
from conftest import TINY_NETWORK as TINY
from conftest import slow
from mfax.games import GameError
from mfax.run.cli import app
from mfax.run.config import TrainConfig
from mfax.run.rundir import RunDir
from mfax.run.train import TrainingDiverged, best_run, load_states, own_best_words, train

runner = CliRunner()

# Short runs on every game (smaller grids for the test budget; same code paths).
SHORT = {
    "linear_quadratic": dict(params={}, iterations=30, lr=[1e-2]),
    "beach_bar": dict(params={"num_states": 41, "horizon": 16}, iterations=30, lr=[1e-2]),
    "macro": dict(params={"num_wealth": 40, "horizon": 32}, iterations=20, lr=[1e-2]),
    "sis": dict(params={}, iterations=30, lr=[1e-2]),
}
FAST = {("sis", "rspg")}  # the default tier's runs; the others are slow


def _metrics(run_dir, drop=("wall_clock_s",)):
    return [{k: v for k, v in row.items() if k not in drop} for row in RunDir(run_dir).read_metrics()]


@pytest.mark.parametrize(
    ("name", "algo"),
    [("sis", "rspg")]
    + [slow(name, algo) for name in sorted(SHORT) for algo in ("spg", "rspg") if (name, algo) not in FAST],
)
def test_short_run_reduces_exploitability(tmp_path, name, algo):
    spec = SHORT[name]
    config = TrainConfig(
        game=name,
        algo=algo,
        params=spec["params"],
        iterations=spec["iterations"],
        lr=spec["lr"],
        eval_every=spec["iterations"],
        eval_paths=8,
        hparams=SMALL,
    )
    summary = train(config, tmp_path / "run", progress=False)
    assert summary["final_exploitability"] < 0.9 * summary["initial_exploitability"], summary
    assert summary["iterations"] == spec["iterations"]


def test_same_seed_gives_identical_metrics_and_resume_equals_uninterrupted(tmp_path):
    config = TrainConfig(
        game="beach_bar",
        params={"num_states": 11, "horizon": 6},
        iterations=8,
        eval_every=4,
        noise="sample",
        paths=8,
        eval_paths=16,
        hparams=SMALL,
    )
    train(config, tmp_path / "a", progress=False)
    train(config, tmp_path / "b", progress=False)
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    train(config, tmp_path / "c", progress=False, stop_after=4)  # as if killed after 4 iterations
    assert RunDir(tmp_path / "c").read_summary()["iterations"] == 4
    summary = train(TrainConfig(), tmp_path / "c", resume=True, progress=False)
    assert summary["iterations"] == 8
    assert _metrics(tmp_path / "c") == _metrics(tmp_path / "a")


@pytest.mark.slow
def test_vmapped_runs_match_single_runs(tmp_path):
    """Two seeds x two learning rates in one program == the four runs on their own."""
    base = dict(game="sis", iterations=6, eval_every=3, hparams=SMALL, noise="sample", paths=8)
    train(TrainConfig(**base, seeds=2, seed=5, lr=[1e-3, 1e-2]), tmp_path / "grid", progress=False)
    grid = RunDir(tmp_path / "grid").read_metrics()
    for r, (seed, lr) in enumerate([(5, 1e-3), (5, 1e-2), (6, 1e-3), (6, 1e-2)]):
        train(TrainConfig(**base, seed=seed, lr=[lr]), tmp_path / f"single{r}", progress=False)
        single = RunDir(tmp_path / f"single{r}").read_metrics()
        mine = [row for row in grid if row["run"] == r]
        assert [row["seed"] for row in mine] == [seed] * 3
        for a, b in zip(mine, single, strict=True):
            assert a["exploitability"] == pytest.approx(b["exploitability"], rel=1e-4)


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    config = TrainConfig(game="linear_quadratic", iterations=20, eval_every=5, lr=[1e36], hparams=SMALL, noise="exact")
    with pytest.raises(TrainingDiverged, match=r"non-finite .* at iteration \d+ \(run 0\); stopped, last good"):
        train(config, tmp_path / "nan", progress=False)
    run = RunDir(tmp_path / "nan")
    assert run.has_checkpoint()
    rows = run.read_metrics()
    assert all(np.isfinite(r["exploitability"]) for r in rows)


def test_finite_parameters_whose_policy_is_not_stop_before_their_checkpoint(tmp_path):
    """lr 1e12 on beach bar: the first update leaves finite parameters (the training
    step's own figures are finite) whose policy evaluates to NaN. The run stops at that
    evaluation and the checkpoint it keeps is the last one whose policy is finite (it
    used to keep the NaN policy as the "last good" one)."""
    config = TrainConfig(
        game="beach_bar",
        iterations=3,
        eval_every=1,
        lr=[1e12],
        hparams=SMALL,
        noise="exact",
        params={"num_states": 11, "horizon": 6},
    )
    message = (
        r"non-finite policy return in the evaluation at iteration 1 \(run 0\); stopped, last good checkpoint "
        r"\(iteration 0\) kept"
    )
    with pytest.raises(TrainingDiverged, match=message):
        train(config, tmp_path / "nan", progress=False)
    run = RunDir(tmp_path / "nan")
    assert [r["iteration"] for r in run.read_metrics()] == [0]
    trainer, states, held = load_states(run)
    assert held == 0
    figures = trainer.evaluate_run(states, 0)
    assert np.isfinite(figures["exploitability"]) and np.isfinite(figures["policy_return"])


@pytest.mark.slow
def test_killed_training_leaves_usable_checkpoint_and_resumes(tmp_path):
    """A real SIGKILL in the middle of training, then --resume to the end."""
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "mfax.run.cli",
        "train",
        "--game",
        "sis",
        "--iterations",
        "400",
        "--eval-every",
        "5",
        "--out",
        str(out),
        "--no-progress",
        "--no-plots",
        "--noise",
        "sample",
        "--paths",
        "8",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        rows = RunDir(out).read_metrics() if (out / "metrics.jsonl").exists() else []
        if rows and rows[-1]["iteration"] >= 10:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = RunDir(out)
    assert run.has_checkpoint()
    done = json.loads(
        runner.invoke(
            app, ["train", "--resume", str(out), "--no-progress", "--no-plots", "--json"]
        ).output.splitlines()[-1]
    )
    assert done["iterations"] == 400
    iterations = [r["iteration"] for r in run.read_metrics()]
    assert iterations == sorted(set(iterations)) and iterations[-1] == 400


@pytest.mark.slow
def test_learned_best_response_brackets_information_consistent_exploitability(tmp_path):
    out = tmp_path / "lq"
    config = TrainConfig(game="linear_quadratic", iterations=10, eval_every=10, hparams=SMALL, lr=[1e-2])
    train(config, out, progress=False)
    result = runner.invoke(
        app, ["eval", str(out), "--learned-br", "--br-iterations", "60", "--br-lr", "1e-2", "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    lower, info, upper = record["exploitability_lower_bound"], record["exploitability_info"], record["exploitability"]
    assert "lies between this lower bound and the per-path upper bound" in result.output
    assert 0.0 < lower <= info + 1e-3 * abs(info) and info <= upper + 1e-3 * abs(upper), (lower, info, upper)


@pytest.mark.smoke
def test_train_cli_writes_run_directory_and_plots(tmp_path):
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            "train",
            "--game",
            "sis",
            "--algo",
            "spg",
            "--iterations",
            "4",
            "--eval-every",
            "2",
            "--out",
            str(out),
            "--no-progress",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("final_exploitability", "seconds_per_iteration", "iterations", "game", "algo"):
        assert key in summary
    done = next(line for line in result.output.splitlines() if line.startswith("done:"))
    start, end = summary["initial_exploitability"], summary["final_exploitability"]
    assert f"lower is better) {start:.6g} -> {end:.6g}" in done and "s/iteration training alone" in done
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("iteration", "wall_clock_s", "exploitability", "exploitability_info", "policy_return", "grad_norm"):
        assert column in header
    config = json.loads((out / "config.json").read_text())
    assert config["lr"] == [1e-3] and config["paths"] == 8 and config["hparams"]["head"] == "discrete"
    assert {p.name for p in (out / "plots").iterdir()} >= {"exploitability.png", "mean_field.png", "policy.png"}
    again = runner.invoke(app, ["train", "--game", "sis", "--out", str(out)])
    assert (
        again.exit_code == 2
        and "already holds a run; resume it (--resume), replace it (--overwrite) or write" in again.stderr
    )


@pytest.mark.slow
def test_macro_plots(tmp_path):
    out = tmp_path / "macro"
    config = TrainConfig(
        game="macro", params={"num_wealth": 30, "horizon": 16}, iterations=2, eval_every=2, hparams=SMALL, eval_paths=4
    )
    train(config, out, progress=False)
    result = runner.invoke(app, ["plot", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (out / "plots").iterdir()} >= {
        "exploitability.png",
        "mean_field.png",
        "policy.png",
        "aggregates.png",
        "profiles.png",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--algo", "ppo"], "unknown algorithm 'ppo' (did you mean ippo?); allowed: spg, rspg"),
        (["train", "--algo", "FP"], "unknown algorithm 'FP' (did you mean fp?); allowed: spg, rspg"),  # (no hint)
        (["train", "--lr", "fast"], "--lr expects comma-separated numbers"),
        (["train", "--lr", "-1"], "learning rates must be finite and > 0"),
        (["train", "--iterations", "0"], "iterations must be >= 1"),
        (["train", "--game", "nope"], "unknown game 'nope'; allowed:"),
        (["train", "--set", "gamma=3"], "gamma must lie in (0, 1]"),
        (["train", "--noise", "many"], "unknown noise mode 'many'"),
        (["train", "--config", "/nonexistent.toml"], "does not exist"),
        (["train", "--resume", "/nonexistent-run"], "is not a run directory: it does not exist"),
        # every option --resume cannot honour, at once (one was named per attempt; a review)
        (["train", "--resume", "/no-run", "--algo", "omd", "--eval-every", "3"], "drop --algo and --eval-every"),
        (["eval", "/nonexistent-run"], "'/nonexistent-run' is not a run directory: it does not exist"),
    ],
)
def test_train_bad_input_one_line(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_run_saved_with_a_network_table_loads_and_resumes(tmp_path):
    """Run directories written before the network sizes became hyper-parameters keep a
    ``network`` table in config.json: it is read as hparams, and the run resumes."""
    from mfax.run.rundir import RunDir
    from mfax.run.train import load_policy

    config = TrainConfig(game="sis", algo="spg", iterations=4, eval_every=2, hparams=SMALL, noise="sample", paths=8)
    train(config, tmp_path / "run", progress=False, stop_after=2)
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    network = {k: saved["hparams"].pop(k) for k in ("obs_embed", "gru_hidden", "state_embed", "aggregate_embed")}
    network |= {"mlp_width": saved["hparams"].pop("mlp_width"), "head": None, "state_input": None}
    for key in ("max_grad_norm", "final_lr_fraction", "adam_b1", "adam_b2", "adam_eps", "head", "state_input"):
        saved["hparams"].pop(key)
    path.write_text(json.dumps({**saved, "network": network}))  # as the previous version wrote it
    _, policy, _ = load_policy(RunDir(tmp_path / "run"))
    assert policy.hidden.in_features == SMALL["mlp_width"]  # the sizes of the saved run, not the defaults
    summary = train(TrainConfig(), tmp_path / "run", resume=True, progress=False)
    assert summary["iterations"] == 4


def test_config_file_and_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('game = "sis"\nalgo = "spg"\niterations = 2\neval_every = 2\nlr = 0.01\n[hparams]\nmlp_width = 16\n')
    out = tmp_path / "from-file"
    result = runner.invoke(
        app, ["train", "--config", str(cfg), "--iterations", "4", "--out", str(out), "--no-progress", "--no-plots"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert (saved["game"], saved["algo"], saved["iterations"], saved["lr"]) == ("sis", "spg", 4, [0.01])
    assert saved["hparams"]["mlp_width"] == 16 and saved["hparams"]["head"] == "discrete"
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 1\n")
    with pytest.raises(GameError, match="unknown config key 'colour'"):
        from mfax.run.config import load_file

        load_file(Path(bad))
    # a folder, and a format mfax does not read (a YAML file gave a JSON parse error)
    with pytest.raises(GameError, match=r"is a directory; --config names a \.toml or \.json file"):
        load_file(tmp_path)
    (tmp_path / "c.yaml").write_text("game: sis\n")
    with pytest.raises(GameError, match=r"mfax reads \.toml and \.json config files, got '\.yaml'"):
        load_file(tmp_path / "c.yaml")


def test_learned_best_response_reports_progress_and_chunking_does_not_change_it():
    import jax

    from mfax.dynamics.noise import noise_batch
    from mfax.games import make
    from mfax.policies import Uniform
    from mfax.policies.networks import NetworkParams, make_network
    from mfax.solvers.learned_br import learned_best_response

    game = make("linear_quadratic", num_states=21, horizon=8, shift_until=3, shift_from=5)
    batch = noise_batch(game, "exact", jax.random.PRNGKey(0), 4)
    deviator = make_network(game, jax.random.PRNGKey(1), NetworkParams(**SMALL), recurrent=True, head="discrete")
    population = Uniform(game.n_states, game.n_actions)
    calls = []
    chunked = learned_best_response(
        game, population, deviator, batch, jax.random.PRNGKey(2), iterations=4, chunk=3, progress=calls.append
    )  # chunks of 3 and 1; then one by one, the second program again (kept by the driver)
    whole = learned_best_response(game, population, deviator, batch, jax.random.PRNGKey(2), iterations=4, chunk=1)
    assert calls == [3, 1] and chunked.curve.shape == (4,)
    np.testing.assert_allclose(chunked.curve, whole.curve, rtol=1e-5)
    assert chunked.exploitability_lower_bound == pytest.approx(whole.exploitability_lower_bound, rel=1e-5)


def test_provenance_products_precision_of_older_runs_and_on_cpus():
    """A run an older mfax recorded computed with JAX's default products: a difference on
    a GPU (TensorFloat-32 there), none between two CPU setups (float32 either way)."""
    from mfax.run.provenance import differences

    old = {"jax": "0.10.2", "backend": "gpu"}
    assert differences(old, {"jax": "0.10.2", "backend": "gpu", "matmul_precision": "float32"}) == [
        "matmul_precision default -> float32"
    ]
    cpu = {"jax": "0.10.2", "backend": "cpu"}
    assert differences(cpu, {**cpu, "matmul_precision": "float32"}) == []
    assert differences({**cpu, "xla_options": {}}, {**cpu, "xla_options": {"a": "b"}}) == [
        "xla_options {} -> {'a': 'b'}"
    ]


def test_run_records_provenance_and_resume_and_eval_warn_when_it_differs(tmp_path):
    import re

    import jax

    out = tmp_path / "prov"
    config = TrainConfig(game="sis", algo="spg", iterations=2, eval_every=2, hparams=SMALL, noise="sample", paths=8)
    train(config, out, progress=False)
    path = out / "provenance.json"
    prov = json.loads(path.read_text())
    setup = (prov["jax"], prov["backend"], prov["precision"], prov["processes"])
    assert setup == (jax.__version__, "cpu", "float32", 1)
    assert {"mfax", "python", "jaxlib", "devices", "xla_options", "XLA_FLAGS"} <= set(prov)
    assert prov["matmul_precision"] == "float32"  # full float32 products (mfax.compiling)
    assert prov["source_revision"] is None or re.fullmatch(r"[0-9a-f]{40}(\+modified)?", prov["source_revision"])
    same = runner.invoke(app, ["eval", str(out), "--json"])
    assert same.exit_code == 0 and "warning" not in same.stderr, same.stderr
    path.write_text(json.dumps({**prov, "jax": "0.0.1"}))
    for args in (["eval", str(out), "--json"], ["train", "--resume", str(out), "--no-progress", "--no-plots"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if line.startswith("mfax: ")]  # (eval's report too)
        assert len(lines) == 1 and lines[0].startswith("mfax: warning: ")
        assert f"jax 0.0.1 -> {jax.__version__}" in lines[0]
    # a resume of a finished run trains nothing and says so (it printed "done:" alone, as if it had trained)
    assert "\nnothing to train: the run has done its 2 iterations already" in result.stdout
    assert json.loads((out / "summary.json").read_text())["session_iterations"] == 0
    assert json.loads(path.read_text())["resumed"][0]["iteration"] == 2
    # an entry an older mfax did not record is unknown, not a difference
    older = {k: v for k, v in prov.items() if k != "matmul_precision"}
    path.write_text(json.dumps(older))
    quiet = runner.invoke(app, ["eval", str(out), "--json"])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_best_last_and_kept_checkpoints_eval_at_an_iteration_and_extend(tmp_path):
    out = tmp_path / "keep"
    params = dict(num_states=21, horizon=8, shift_until=3, shift_from=5)
    config = TrainConfig(game="linear_quadratic", params=params, iterations=6, eval_every=2, keep=2, hparams=SMALL)
    train(config, out, progress=False)
    run = RunDir(out)
    assert run.kept_iterations() == [4, 6] and run.best_checkpoint_path.is_file()
    rows = {row["iteration"]: row["exploitability"] for row in run.read_metrics()}
    best = min(rows, key=rows.get)
    assert run.read_summary()["best_iteration"] == best

    def evaluate(which: str):
        result = runner.invoke(app, ["eval", str(out), "--iteration", which, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["exploitability"]

    for which, iteration in (("4", 4), ("last", 6), ("best", best), (str(best), best)):
        assert evaluate(which) == pytest.approx(rows[iteration], rel=1e-5), which
        # mfax.load at a checkpoint: the figures of that policy (they were the last ones)
        assert mfax.load(out, which).exploitability == pytest.approx(rows[iteration], rel=1e-6), which
    missing = runner.invoke(app, ["eval", str(out), "--iteration", "2"])
    assert missing.exit_code == 2 and len(missing.stderr.strip().splitlines()) == 1
    tags = {k: ", ".join(t for t, at in (("best", best), ("last", 6)) if at == k) for k in {4, 6, best}}
    available = ", ".join(f"{k} ({tags[k]})" if tags[k] else str(k) for k in sorted(tags))
    assert f"no checkpoint of iteration 2 in {str(out)!r}; available: {available} (" in missing.stderr

    # --resume --iterations N extends the finished run from its last checkpoint
    shorter = runner.invoke(app, ["train", "--resume", str(out), "--iterations", "3"])
    assert shorter.exit_code == 2 and "below the 6 iterations this run has done" in shorter.stderr
    assert shorter.stdout == ""  # refused before the run is named (it printed "run directory:" first)
    extended = runner.invoke(app, ["train", "--resume", str(out), "--iterations", "8", "--no-progress", "--no-plots"])
    assert extended.exit_code == 0, extended.output
    after = {row["iteration"]: row["exploitability"] for row in run.read_metrics()}
    assert sorted(after) == [0, 2, 4, 6, 8] and all(after[k] == rows[k] for k in rows)
    assert run.read_summary()["iterations"] == 8 and json.loads((out / "config.json").read_text())["iterations"] == 8
    assert run.kept_iterations() == [6, 8]


def test_learned_bound_trains_a_fresh_deviator_beside_the_warm_start(monkeypatch):
    """A recurrent population is both a warm start and a policy the deviator may never
    leave (a nearly deterministic one: gradient ~1e-3, bound 4.7e-05 where a fresh
    deviator found 0.95): both starts are trained, the larger gain is reported."""
    import jax

    import mfax.solvers.learned_br as learned
    from mfax.policies.networks import NetworkPolicy
    from mfax.run import cli
    from mfax.solvers.learned_br import LearnedBestResponse

    game = mfax.make("linear_quadratic", horizon=4)
    population = NetworkPolicy(game, jax.random.key(0), recurrent=True, **SMALL)
    started = []

    def fake(game, population_, deviator, *args, **kwargs):
        started.append(deviator)
        gain = 0.0 if deviator is population else 0.5
        return LearnedBestResponse(gain, gain, 0.0, 3, jax.numpy.zeros(3), deviator)

    monkeypatch.setattr(learned, "learned_best_response", fake)
    bracket = cli._learned_bracket(game, population, None, None, 3, 1e-2, 0, progress=False)
    assert len(started) == 2 and started[1] is population and started[0] is not population
    assert bracket.exploitability_lower_bound == 0.5 and bracket.deviator is started[0]


TINY_RUN = dict(game="beach_bar", params={"num_states": 11, "horizon": 6}, noise="exact", eval_every=2, hparams=TINY)


def test_ctrl_c_during_the_record_step_waits_for_its_last_file(tmp_path, monkeypatch):
    """Ctrl-C between a step's metrics and its checkpoint (4 interrupts in 6 left the
    files disagreeing) ends the session only once the step's summary is written too."""
    out = tmp_path / "run"
    real, saves = RunDir.save_checkpoint, []

    def interrupted(self, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:  # the step after the first chunk: its metrics are written, not its checkpoint
            os.kill(os.getpid(), signal.SIGINT)
        real(self, *args, **kwargs)

    monkeypatch.setattr(RunDir, "save_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY_RUN, iterations=8), out, progress=False)
    run = RunDir(out)
    assert run.read_metrics()[-1]["iteration"] == run.read_summary()["iterations"] == 2
    assert load_states(run)[2] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after the step


def test_ctrl_c_before_the_first_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    import mfax.run.train as driver

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_eval_rows", interrupt)
    out = tmp_path / "run"
    args = ["train", "--game", "beach_bar", "--set", "num_states=11", "--set", "horizon=6", "--out", str(out)]
    args += [x for k, v in TINY.items() for x in ("--hp", f"{k}={v}")]
    result = runner.invoke(app, [*args, "--iterations", "2", "--no-progress", "--no-plots"])
    assert result.exit_code == 130
    assert "interrupted; no checkpoint yet" in result.stderr and "checkpoint is kept" not in result.stderr


SIGTERM_BETWEEN_RECORDS = """
import os, signal, sys
import mfax.run.train as driver
from mfax.run.cli import main

real, calls = driver._eval_rows, []

def evaluated(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # the evaluation after the first chunk: outside any record step
        os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)

driver._eval_rows = evaluated
sys.argv = ["mfax", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # a second process (in-process: the Ctrl-C tests above; Terminated in test_tune)
def test_sigterm_between_records_says_what_is_kept(tmp_path):
    """A plain kill (SIGTERM) outside a record step ended ``mfax train`` at once, with no
    word (a shell shows nothing for status 143); it now ends the command as Ctrl-C does:
    the line says the last checkpoint is kept and how to continue, status 143."""
    import subprocess
    import sys

    out = tmp_path / "run"
    args = ["train", "--game", "beach_bar", "--set", "num_states=11", "--set", "horizon=6", "--out", str(out)]
    args += [x for k, v in TINY.items() for x in ("--hp", f"{k}={v}")]
    args += ["--iterations", "8", "--eval-every", "2", "--no-progress", "--no-plots"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_BETWEEN_RECORDS, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    kept = "the last checkpoint (iteration 0) is kept"
    assert lines[-1] == f"mfax: terminated (SIGTERM); {kept}: continue with `mfax train --resume {out}`"
    assert RunDir(out).read_summary()["iterations"] == 0


def test_an_iteration_is_found_from_the_checkpoint_files_not_from_a_summary_behind_them(tmp_path):
    import shutil

    out = tmp_path / "run"
    train(TrainConfig(**TINY_RUN, iterations=4, keep=3), out, progress=False)
    # a Result of an earlier checkpoint says which: its figures are that iteration's (the repr
    # showed the run's 4 iterations beside them; found by an audit)
    import mfax

    assert "iterations=4, checkpoint_iteration=2, exploitability=" in repr(mfax.load(out, 2))
    assert "checkpoint_iteration" not in repr(mfax.load(out))
    run = RunDir(out)
    run.write_summary({**run.read_summary(), "iterations": 2})  # a kill between the checkpoint and the summary
    assert run.checkpoint_for("2") == run.kept_checkpoint_path(2)  # the kept file of 2, not checkpoint.eqx (4)
    assert load_states(run, "2")[2] == 2 and load_states(run, "4")[2] == 4
    shutil.rmtree(run.kept_dir)
    run.summary_path.unlink()  # a kill before any summary: the files still say what they hold
    assert run.checkpoint_for("4") == run.checkpoint_path and load_states(run, "4")[2] == 4
    with pytest.raises(GameError, match=r"available: .*4 \(.*last\)"):
        run.checkpoint_for("3")


def test_a_resume_that_replans_the_schedule_records_each_stretch_and_says_so(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(**TINY_RUN, iterations=8), out, progress=False, stop_after=2)
    provenance = RunDir(out).provenance_path
    # below the planned 8 but above the 2 done: accepted, replanned, and said
    line = "the run's schedule was replanned at iteration 2 (over 4 iterations in total, was 8): config.json alone"
    with pytest.warns(mfax.MfaxWarning, match=re.escape(line)):
        train(TrainConfig(), out, resume=True, progress=False, extend_to=4)
    assert json.loads(provenance.read_text())["schedule"] == [{"from": 0, "planned": 8}, {"from": 2, "planned": 4}]
    with pytest.warns(mfax.MfaxWarning, match="replanned at iteration 4 .over 6 iterations in total, was 4."):
        train(TrainConfig(), out, resume=True, progress=False, extend_to=6)
    stretches = [{"from": 0, "planned": 8}, {"from": 2, "planned": 4}, {"from": 4, "planned": 6}]
    assert json.loads(provenance.read_text())["schedule"] == stretches
    assert json.loads((out / "config.json").read_text())["iterations"] == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error", mfax.MfaxWarning)
        train(TrainConfig(), out, resume=True, progress=False, extend_to=6)  # the same total: nothing replanned
    assert json.loads(provenance.read_text())["schedule"] == stretches


def test_summary_records_the_resolved_noise_and_compilation_over_every_session(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(**{**TINY_RUN, "noise": "auto"}, iterations=4)
    first = train(config, out, progress=False, stop_after=2)
    assert first["noise"] == "exact" and first["compile_s"] > 0  # what auto resolved to on this game
    resumed = train(TrainConfig(), out, resume=True, progress=False)
    assert resumed["noise"] == "exact" and resumed["compile_s"] >= first["compile_s"]


def test_extending_a_solver_without_a_learning_rate_replans_nothing(tmp_path):
    """FP/OMD do not read the planned total: the warning that config.json no longer
    reproduces the run was false for them (the resumed OMD run equals a fresh one of the
    new length bit for bit)."""
    omd = dict(TINY_RUN, algo="omd", hparams={})
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    train(TrainConfig(**omd, iterations=4), out, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mfax.MfaxWarning)
        train(TrainConfig(), out, resume=True, progress=False, extend_to=6)
    assert "schedule" not in json.loads(RunDir(out).provenance_path.read_text())
    train(TrainConfig(**omd, iterations=6), fresh, progress=False)
    assert RunDir(out).read_metrics()[-1]["exploitability"] == RunDir(fresh).read_metrics()[-1]["exploitability"]


def test_the_compile_thread_says_the_callers_words(monkeypatch):
    """The training's compile thread did not inherit the command line's context: a
    message made there advised Python's keywords under `mfax`."""
    from mfax.errors import advice, command_line_words
    from mfax.run import train as train_module

    monkeypatch.setattr(train_module, "_compile", lambda trainer, length, states: advice("--noise exact", "noise="))
    with command_line_words():
        assert train_module._compile_aside(None, 1, None).result() == "--noise exact"
    assert train_module._compile_aside(None, 1, None).result() == "noise="


def test_figures_are_compared_only_where_every_session_computed_products_alike(tmp_path):
    """Re-scoring a checkpoint (eval, resume) compares with recorded figures only where
    every recorded session computed float32 products as this process does: TensorFloat-32
    rows differ by 1e-3 (a false warning), and a record that does not say is not compared."""
    from mfax.run.provenance import collect, same_products

    path = tmp_path / "provenance.json"
    assert not same_products(path)  # no record
    here = collect(False)
    path.write_text(json.dumps(here))
    assert same_products(path)
    gpu = {**here, "backend": "gpu", "matmul_precision": "tensorfloat32"}
    path.write_text(json.dumps({**here, "resumed": [{"iteration": 4, **gpu}]}))
    assert not same_products(path)  # a session on a GPU under TensorFloat-32
    path.write_text(json.dumps({**here, "resumed": [{"iteration": 4, **here, "matmul_precision": "default"}]}))
    assert same_products(path) == (here["backend"] == "cpu")  # (on CPUs the request changes nothing)
    path.write_text(json.dumps({"resumed": [{"iteration": 4, **here}]}))  # its creator unknown
    assert not same_products(path)


def test_the_best_checkpoint_holds_the_lowest_of_every_run(tmp_path):
    """Of several runs, checkpoint-best is the evaluation where one of them reached the
    lowest exploitability of all. It was the lowest mean over the runs: a sweep of two
    learning rates, one diverging, put it at the untrained iteration 0 while the other had
    cut its exploitability by 70% (a review: rock-paper-scissors, spg)."""
    from mfax.run.rundir import METRIC_COLUMNS

    run = RunDir(tmp_path / "rows")
    run.root.mkdir()
    figures = {0: (10.0, 10.0), 2: (3.0, 30.0), 4: (3.5, 40.0), 6: (3.0, 50.0)}  # run 0 improves, run 1 diverges
    rows = [
        {**dict.fromkeys(METRIC_COLUMNS), "iteration": i, "run": r, "seed": 0, "wall_clock_s": float(i),
         "exploitability": figures[i][r]}
        for i in figures
        for r in (0, 1)
    ]  # fmt: skip
    run.metrics_jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert run.best_iteration() == 2  # the earliest of equals (3.0 again at 6); the mean's lowest: 0
    assert best_run(run.read_metrics(), 2) == 0
    # each run's own best, and what `eval --iteration best --run-index 1` says of run 1's
    assert run.best_iterations() == {0: 2, 1: 0}
    assert own_best_words(run, 0, "best", 2, 2) is None and own_best_words(run, 1, "last", 6, 2) is None
    assert own_best_words(run, 1, "best", 2, 2) == (
        "run 1's own lowest exploitability was at iteration 0: its checkpoint was not kept "
        "(`mfax train --keep N` keeps the N most recent evaluations')"
    )
    run.kept_dir.mkdir()
    (run.kept_dir / "iteration-00000000.eqx").write_bytes(b"")
    assert own_best_words(run, 1, "best", 2, 2).endswith("at iteration 0: --iteration 0 evaluates it")
    # a run whose evaluation is not finite (null) is never the best
    rows[2]["exploitability"] = None
    run.metrics_jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert run.best_iteration() == 6
