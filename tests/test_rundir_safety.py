"""Run-directory safety: what mfax deletes, refuses, locks, verifies and survives.

Faults are injected (torn lines, flipped bytes, a second writer, failing writes) rather
than waited for; every error must be one ``mfax: error:`` line with exit status 2.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import jax.numpy as jnp
import pytest
from typer.testing import CliRunner

import mfax
from conftest import TINY_NETWORK, one_error_line
from mfax.games import GameError
from mfax.run import rundir as rundir_module
from mfax.run.cli import app
from mfax.run.config import TrainConfig, resolve
from mfax.run.rundir import RunDir
from mfax.run.train import load_policy, train

runner = CliRunner()
TINY = TrainConfig(
    game="sis", algo="spg", iterations=4, eval_every=2, noise="sample", paths=4, eval_paths=4, hparams=TINY_NETWORK
)
TINY_FLAGS = ["--game", "sis", "--algo", "spg", "--iterations", "2", "--eval-every", "2"]
TINY_FLAGS += ["--noise", "sample", "--paths", "4"]  # (--paths is refused with exact noise)
QUIET = ["--no-progress", "--no-plots"]


@pytest.fixture(scope="module")
def half_run(tmp_path_factory):
    """A run killed (as it were) after 2 of its 4 iterations."""
    out = tmp_path_factory.mktemp("half") / "run"
    train(TINY, out, progress=False, stop_after=2)
    return out


@pytest.fixture
def run_copy(half_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(half_run, out)
    return out


def tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- what --overwrite and --out may touch ---------------------------------------------


def test_overwrite_refuses_a_foreign_tree_that_holds_config_json(tmp_path):
    foreign = tmp_path / "project"
    (foreign / "src").mkdir(parents=True)
    (foreign / "config.json").write_text('{"name": "my project"}\n')
    (foreign / "src" / "main.py").write_text("print('hello')\n")
    before = tree(foreign)
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(foreign), "--overwrite", *QUIET])
    one_error_line(result, "refusing to overwrite")
    assert "not an mfax run" in result.stderr and "run directory:" not in result.output
    assert tree(foreign) == before


def test_out_refuses_a_non_empty_directory_that_is_not_a_run(tmp_path):
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "metrics.csv").write_text("a,b\n1,2\n")
    (foreign / "summary.json").write_text("{}")
    before = tree(foreign)
    one_error_line(runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(foreign), *QUIET]), "not an mfax run")
    with pytest.raises(GameError, match="not an mfax run"):
        train(TINY, foreign, progress=False)
    assert tree(foreign) == before


def test_overwrite_validates_everything_before_deleting(run_copy):
    before = tree(run_copy)
    flags = [
        *TINY_FLAGS[: TINY_FLAGS.index("--iterations")],
        "--iterations",
        "0",
        *TINY_FLAGS[TINY_FLAGS.index("--iterations") + 2 :],
    ]
    result = runner.invoke(app, ["train", *flags, "--out", str(run_copy), "--overwrite"])
    one_error_line(result, "iterations must be >= 1")
    assert tree(run_copy) == before


def test_overwrite_replaces_only_mfax_files_and_keeps_foreign_ones(run_copy):
    (run_copy / "notes.txt").write_text("mine\n")
    (run_copy / "plots").mkdir(exist_ok=True)
    (run_copy / "plots" / "my-figure.png").write_bytes(b"png")
    (run_copy / "checkpoint.tmp").write_bytes(b"left over by an old mfax")
    old_checkpoint = (run_copy / "checkpoint.eqx").read_bytes()
    summary = train(TrainConfig(**{**TINY.__dict__, "iterations": 2}), run_copy, overwrite=True, progress=False)
    assert summary["iterations"] == 2 and summary["iterations_planned"] == 2
    assert (run_copy / "notes.txt").read_text() == "mine\n"
    assert (run_copy / "plots" / "my-figure.png").read_bytes() == b"png"
    assert not (run_copy / "checkpoint.tmp").exists()
    assert (run_copy / "checkpoint.eqx").read_bytes() != old_checkpoint
    assert [r["iteration"] for r in RunDir(run_copy).read_metrics()] == [0, 2]


def test_remove_own_files_never_touches_anything_else(tmp_path):
    run = RunDir(tmp_path / "run")
    ours = {
        "config.json": "x",
        "metrics.jsonl": "x",
        "plots/policy.png": "\x89PNG...tEXtSoftware\x00mfax...",  # mfax's figures carry its tag
        "tensorboard/run0_seed0/events.out.tfevents.1.h.01796556599050337460": "x",  # named as the tracker names
        "irf.json": json.dumps({k: 0 for k in rundir_module.IRF_KEYS}),
        "export/mfax-export.json": json.dumps({"mfax_export": 1, "files": {"moments.csv": {}}}),
        "export/moments.csv": "x",
    }
    # a user's files under the names mfax gives its own: judged by content, kept
    theirs = {
        "config.json.bak": "foreign",
        "plots/keep.png": "foreign",
        "plots/mean_field.png": "\x89PNG their own figure",
        "tensorboard/notes.md": "foreign",
        "tensorboard/mine/events.out.tfevents.1.host": "foreign",
        "tensorboard/run0_seed0_notes/events.out.tfevents.1.host": "foreign",  # a run-like folder, not mfax's name
        "checkpoint.eqx.d/x": "foreign",
        "export/my_analysis.csv": "user,data",
    }
    for name, text in {**ours, **theirs}.items():
        (run.root / name).parent.mkdir(parents=True, exist_ok=True)
        (run.root / name).write_text(text)
    run.remove_own_files()
    assert sorted(tree(run.root)) == sorted(theirs)
    assert not (run.root / "tensorboard" / "run0_seed0").exists()
    # without the export's manifest its folder's CSV files are not known as mfax's; an
    # irf.json that is not mfax's record is kept
    (run.root / "export" / "moments.csv").write_text("x")
    (run.root / "irf.json").write_text('{"mine": 1}')
    run.remove_own_files()
    assert (run.root / "export" / "moments.csv").exists() and (run.root / "irf.json").exists()


def test_a_run_without_the_marker_still_resumes_and_a_bare_foreign_config_is_no_run(run_copy, tmp_path):
    (run_copy / rundir_module.MARKER).unlink()  # a run written before the marker existed
    assert RunDir(run_copy).is_run()
    assert train(TrainConfig(), run_copy, resume=True, progress=False)["iterations"] == 4
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(run_copy / "config.json", lone / "config.json")  # an mfax config alone: not a run
    assert not RunDir(lone).is_run()
    (lone / "metrics.jsonl").write_text("")
    (lone / "config.json").write_text('{"game": "x", "algo": "y", "colour": 1}')  # not mfax's format
    assert not RunDir(lone).is_run()


# -- one writer per run directory ---------------------------------------------------------


def test_a_link_to_nothing_as_the_run_directory_is_one_line(tmp_path):
    """--out naming a link whose target does not exist ended in "File exists"."""
    (tmp_path / "run").symlink_to(tmp_path / "gone")
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(tmp_path / "run"), *QUIET])
    one_error_line(result, f"it is a link to {str(tmp_path / 'gone')!r}, which does not exist")
    assert (tmp_path / "run").is_symlink() and not (tmp_path / "gone").exists()


def test_a_directory_that_cannot_be_created_is_not_announced(tmp_path):
    """/proc refuses new directories (the check before the solver is built cannot see
    that): the one error line is all that is printed, no "run directory:" line first."""
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", "/proc/mfax-test-run", *QUIET])
    one_error_line(result, "cannot create run directory '/proc/mfax-test-run'")
    assert "run directory:" not in result.output


def test_a_held_lock_stops_a_second_writer_with_one_line(run_copy):
    with RunDir(run_copy).lock():
        with pytest.raises(GameError, match=rf"is in use by process {os.getpid()}: one process writes it at a time"):
            train(TrainConfig(), run_copy, resume=True, progress=False)
    assert train(TrainConfig(), run_copy, resume=True, progress=False)["iterations"] == 4  # released


def test_a_second_process_holding_the_run_is_named(run_copy):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from mfax.run.rundir import RunDir\n"
            "with RunDir(sys.argv[1]).lock():\n    print('held', flush=True); time.sleep(60)",
            str(run_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        metrics = (run_copy / "metrics.jsonl").read_bytes()
        result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
        one_error_line(result, f"is in use by process {holder.pid}")
        assert "run directory:" not in result.output  # named only once it is this process's
        assert (run_copy / "metrics.jsonl").read_bytes() == metrics
    finally:
        holder.kill()
        holder.wait()


# -- interrupted writes --------------------------------------------------------------------


def test_a_torn_last_metrics_line_is_dropped_with_a_warning_and_rewritten_on_resume(run_copy):
    run = RunDir(run_copy)
    rows = run.read_metrics()
    with run.metrics_jsonl.open("a") as f:
        f.write('{"iteration": 4, "run": 0, "exploi')  # a kill during an append
    with pytest.warns(mfax.MfaxWarning, match="dropped the torn last line"):
        assert run.read_metrics() == rows
    with pytest.warns(mfax.MfaxWarning, match="dropped the torn last line"):  # (the resume reads it too)
        summary = train(TrainConfig(), run_copy, resume=True, progress=False)
    assert summary["iterations"] == 4
    text = run.metrics_jsonl.read_text()
    assert text.endswith("\n") and [json.loads(line)["iteration"] for line in text.splitlines()] == [0, 2, 4]
    assert len(run.metrics_csv.read_text().splitlines()) == 1 + 3
    result = runner.invoke(app, ["plot", str(run_copy)])  # readable again
    assert result.exit_code == 0, result.output
    written = {p for p in run_copy.rglob("*") if p.is_file()} - {run_copy / rundir_module.LOCK}
    assert written == set(run.own_files())  # OWN_FILES lists every file mfax wrote, plots included


def test_a_corrupt_middle_metrics_line_is_one_error(run_copy):
    run = RunDir(run_copy)
    lines = run.metrics_jsonl.read_text().splitlines()
    run.metrics_jsonl.write_text("\n".join(["{broken", *lines[1:]]) + "\n")
    with pytest.raises(GameError, match=r"line 1 of .* is corrupt"):
        run.read_metrics()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"drop": "run"}, "it lacks 'run'"),
        ({"drop": "exploitability"}, "it lacks 'exploitability'"),
        ({"run": -1}, "its 'run' is -1, not a whole number >= 0"),
        ({"run": True}, "its 'run' is true, not a whole number >= 0"),
        ({"policy_return": "12.5"}, "its 'policy_return' is \"12.5\", not a number or null"),
        ({"wall_clock_s": None}, "its 'wall_clock_s' is null, not a number"),
        ({"seed": None}, "its 'seed' is null, not a whole number >= 0"),
        ({"params": 5}, "its 'params' is 5, not an object of the swept parameters' values"),
        ({"params": {"kappa": [1]}}, "its 'params' is {\"kappa\": [1]}, not an object"),
    ],
)
def test_an_edited_metrics_row_is_one_error_naming_it(run_copy, edit, expected):
    """A row of metrics.jsonl that lacks a column or holds another kind of value (a hand
    edit) made resume, eval and plot fail with a KeyError or TypeError traceback. Every
    reader now refuses it in one line naming the line and what is wrong; nothing is
    written."""
    run = RunDir(run_copy)
    lines = run.metrics_jsonl.read_text().splitlines()
    row = json.loads(lines[1])
    row.pop(edit.get("drop"), None)
    row.update({k: v for k, v in edit.items() if k != "drop"})
    lines[1] = json.dumps(row)
    run.metrics_jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(GameError, match=r"line 2 of .* is not a metrics row") as raised:
        run.read_metrics()
    assert expected in str(raised.value)
    before = tree(run_copy)
    for args in (["train", "--resume", str(run_copy), "--iterations", "6", *QUIET], ["plot", str(run_copy)]):
        result = runner.invoke(app, args)
        line = one_error_line(result, "is not a metrics row")
        assert "line 2 of" in line and expected in line and "restore it" in line
    assert tree(run_copy) == before


@pytest.mark.parametrize("edit", ["a row deleted", "a figure changed"])
def test_resume_refuses_to_rewrite_metrics_that_an_edit_made_disagree(run_copy, edit):
    """Resuming rewrites both metric files from metrics.jsonl; after a hand edit of it
    (a row deleted, a figure changed) that would silently rewrite metrics.csv, losing what
    only it still records. Refused in one line, both files left byte for byte."""
    run = RunDir(run_copy)
    lines = run.metrics_jsonl.read_text().splitlines()
    if edit == "a row deleted":
        lines = lines[1:]
        expected = "iteration 0 of run 0"
    else:
        row = json.loads(lines[0])
        row["exploitability"] = 123.0
        lines[0] = json.dumps(row)
        expected = "exploitability at iteration 0 of run 0"
    run.metrics_jsonl.write_text("\n".join(lines) + "\n")
    before = tree(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy), "--iterations", "6", *QUIET])
    line = one_error_line(result, "disagree")
    assert expected in line and "leaves them as they are" in line
    assert tree(run_copy) == before


def test_resume_reads_a_nan_in_metrics_csv_as_the_null_in_metrics_jsonl(tmp_path):
    """A model-free solver's training figures are NaN: `nan` in metrics.csv, null in
    metrics.jsonl. They agree; the resume goes on (the comparison refused it at first)."""
    config = TrainConfig(
        game="sis",
        algo="ippo",
        params={"horizon": 4},
        iterations=2,
        eval_every=1,
        hparams={**TINY_NETWORK, "num_envs": 4},
    )
    out = tmp_path / "run"
    train(config, out, progress=False, stop_after=1)
    assert ",nan," in (out / "metrics.csv").read_text()
    assert train(TrainConfig(), out, resume=True, progress=False)["iterations"] == 2


def test_resume_rewrites_a_metrics_csv_that_lost_rows_from_metrics_jsonl(run_copy):
    """The other way round nothing is lost: a metrics.csv cut short is rebuilt."""
    run = RunDir(run_copy)
    run.metrics_csv.write_text(run.metrics_csv.read_text().splitlines()[0] + "\n")
    train(TrainConfig(), run_copy, resume=True, progress=False)
    assert [line.split(",")[0] for line in run.metrics_csv.read_text().splitlines()[1:]] == ["0", "2", "4"]


def test_a_run_written_before_the_standard_error_columns_reads_plots_and_resumes(run_copy):
    """Rows of metrics.jsonl and a metrics.csv header without ``exploitability_se`` and
    ``policy_return_se`` (a run trained before mfax recorded them) are read with null
    there, plotted without a band, and resumed: the rewritten files carry the columns,
    and the rows evaluated after the resume hold the standard errors of the drawn paths."""
    from mfax.run.columns import ADDED_COLUMNS

    run = RunDir(run_copy)
    rows = [json.loads(line) for line in run.metrics_jsonl.read_text().splitlines()]
    assert all(isinstance(row[c], float) and row[c] > 0 for row in rows for c in ADDED_COLUMNS)  # drawn paths
    old = [{k: v for k, v in row.items() if k not in ADDED_COLUMNS} for row in rows]
    run.metrics_jsonl.write_text("".join(json.dumps(row) + "\n" for row in old))
    header, *lines = run.metrics_csv.read_text().splitlines()
    names = header.split(",")
    keep = [i for i, name in enumerate(names) if name not in ADDED_COLUMNS]
    run.metrics_csv.write_text(
        "\n".join(",".join(line.split(",")[i] for i in keep) for line in [header, *lines]) + "\n"
    )
    assert all(row[c] is None for row in run.read_metrics() for c in ADDED_COLUMNS)
    result = runner.invoke(app, ["plot", str(run_copy)])
    assert result.exit_code == 0, result.output
    train(TrainConfig(), run_copy, resume=True, progress=False)
    after = run.read_metrics()
    assert [r["iteration"] for r in after] == [0, 2, 4]
    assert [r["exploitability_se"] is None for r in after] == [True, True, False]
    assert all(name in run.metrics_csv.read_text().splitlines()[0].split(",") for name in ADDED_COLUMNS)


def test_a_kill_before_the_first_checkpoint_keeps_the_iteration_0_evaluation(tmp_path):
    out = tmp_path / "run"
    run = RunDir(out)
    with run.lock():  # as far as a fresh run gets before its first evaluation is written
        run.start_new(resolve(TINY))
    (out / "metrics.jsonl").write_text('{"iteration": 0, "ru')  # and a torn first row
    with pytest.warns(mfax.MfaxWarning, match="dropped the torn last line"):
        summary = train(TrainConfig(), out, resume=True, progress=False)
    assert [r["iteration"] for r in run.read_metrics()] == [0, 2, 4]
    assert summary["initial_exploitability"] is not None


# -- checkpoint integrity ------------------------------------------------------------------


def test_flipped_bytes_in_a_checkpoint_are_detected_on_load(run_copy):
    data = bytearray((run_copy / "checkpoint.eqx").read_bytes())
    for i in range(len(data) - 40, len(data) - 8):  # inside the last weight array
        data[i] ^= 0x55
    (run_copy / "checkpoint.eqx").write_bytes(bytes(data))
    with pytest.raises(GameError, match=r"is corrupt: its sha256 does not match checkpoint\.json"):
        load_policy(RunDir(run_copy))
    one_error_line(runner.invoke(app, ["eval", str(run_copy)]), "is corrupt")
    one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), "is corrupt")


def test_a_kill_between_checkpoint_and_digest_leaves_a_pair_that_verifies(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.save_checkpoint({"w": jnp.arange(4.0)})
    real, calls = rundir_module._replace_with, []

    def killed_before_third_write(path, data):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the kill: digest not yet narrowed to the new checkpoint
        real(path, data)

    monkeypatch.setattr(rundir_module, "_replace_with", killed_before_third_write)
    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint({"w": jnp.arange(4.0) + 1})
    monkeypatch.undo()
    assert calls == ["checkpoint.json", "checkpoint.eqx", "checkpoint.json"]
    assert float(run.load_checkpoint({"w": jnp.zeros(4)})["w"][0]) == 1.0


def test_best_and_kept_checkpoints_are_verified_on_load(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(**{**TINY.__dict__, "keep": 2}), out, progress=False)
    run = RunDir(out)
    assert run.kept_iterations() == [2, 4]
    kept = run.kept_checkpoint_path(4)
    for path in (run.best_checkpoint_path, kept):  # each beside its own digest
        digest = json.loads(path.with_suffix(".json").read_text())["sha256"]
        assert digest == [hashlib.sha256(path.read_bytes()).hexdigest()]
    path = run.checkpoint_for("2")  # kept, or the best when iteration 2 is the best
    good = path.read_bytes()
    data = bytearray(good)
    data[-20] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(GameError, match=rf"is corrupt: its sha256 does not match {path.stem}\.json"):
        load_policy(run, which="2")
    one_error_line(runner.invoke(app, ["eval", str(out), "--iteration", "2"]), "is corrupt")
    path.write_bytes(good)
    run.best_checkpoint_path.with_suffix(".json").unlink()  # a best checkpoint without its digest
    one_error_line(runner.invoke(app, ["eval", str(out), "--iteration", "best"]), "checkpoint-best.json is missing")
    assert runner.invoke(app, ["eval", str(out), "--iteration", "4"]).exit_code == 0


def test_overwrite_removes_kept_checkpoints_but_not_foreign_files_beside_them(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(**{**TINY.__dict__, "keep": 3}), out, progress=False)
    written = {p for p in out.rglob("*") if p.is_file()} - {out / rundir_module.LOCK}
    assert written == set(RunDir(out).own_files())  # best and kept checkpoints, digests, provenance
    assert {"checkpoint-best.eqx", "checkpoint-best.json", "provenance.json"} <= {p.name for p in written}
    foreign = ["checkpoints/iteration-2.eqx", "checkpoints/mine.eqx", "checkpoints/iteration-00000002.eqx.bak"]
    for name in foreign:
        (out / name).write_text("mine")
    train(TrainConfig(**{**TINY.__dict__, "iterations": 2}), out, overwrite=True, progress=False)
    assert sorted(str(p.relative_to(out)) for p in (out / "checkpoints").iterdir()) == sorted(foreign)
    assert RunDir(out).kept_iterations() == [] and RunDir(out).read_summary()["iterations"] == 2


def test_an_extension_waits_for_the_lock_and_rewrites_config_json_under_it(run_copy):
    config = (run_copy / "config.json").read_bytes()
    with RunDir(run_copy).lock():
        with pytest.raises(GameError, match="is in use by process"):
            train(TrainConfig(), run_copy, resume=True, progress=False, extend_to=6)
    assert (run_copy / "config.json").read_bytes() == config
    one_error_line(
        runner.invoke(app, ["train", "--resume", str(run_copy), "--iterations", "1", *QUIET]),
        "below the 2 iterations this run has done",
    )
    assert (run_copy / "config.json").read_bytes() == config
    with pytest.warns(mfax.MfaxWarning, match="schedule was replanned at iteration 2"):
        assert train(TrainConfig(), run_copy, resume=True, progress=False, extend_to=6)["iterations"] == 6
    assert json.loads((run_copy / "config.json").read_text())["iterations"] == 6
    assert not [p.name for p in run_copy.iterdir() if p.name.endswith(".tmp")]


# -- --resume options and an edited config.json ---------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["--eval-every", "1"],
        ["--x64"],
        ["--out", "elsewhere"],
        ["--overwrite"],
        ["--eval-paths", "2"],
        ["--devices", "1"],
        ["--keep", "2"],
    ],
)
def test_resume_refuses_options_it_cannot_honour_naming_them(run_copy, extra):
    before = tree(run_copy)
    one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *extra, *QUIET]), f"drop {extra[0]}")
    assert tree(run_copy) == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"algo": "nope"}, "unknown algorithm 'nope'"),
        ({"colour": 1}, "unknown config key 'colour'"),
    ],
)
def test_resume_revalidates_an_edited_config(run_copy, edit, message):
    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, **edit}))
    before = tree(run_copy)
    one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), message)
    assert tree(run_copy) == before


def test_a_checkpoint_that_an_edited_config_does_not_fit_names_the_edit(run_copy):
    """A network size edited in config.json: the checkpoint no longer fits, and the error
    blamed 'another mfax version' instead of the edit the warning line above it named."""
    config = json.loads((run_copy / "config.json").read_text())
    edited = {**config, "hparams": {**config["hparams"], "mlp_width": 4}}
    (run_copy / "config.json").write_text(json.dumps(edited))
    result = runner.invoke(app, ["eval", str(run_copy)])
    assert result.exit_code == 2 and "another mfax version" not in result.stderr, result.stderr
    error = result.stderr.splitlines()[-1]
    assert error.startswith("mfax: error: cannot read checkpoint ")
    assert "(config.json was edited since the run was created (hparams.mlp_width 8 -> 4): restore it)" in error


@pytest.mark.parametrize(
    "key, value, says", [("eval_paths", 2, "eval_paths 4 -> 2"), ("x64", True, "x64 false -> true")]
)
def test_a_config_edited_in_its_evaluation_paths_or_precision_is_refused_by_resume(run_copy, key, value, says):
    """An edited eval_paths was taken by a resume: its metrics mixed two evaluation sets
    (a false "ROSE" and a best checkpoint chosen across them); an edited x64 was refused
    as a checkpoint "written by another mfax version" (found by an audit)."""
    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, key: value}))
    before = tree(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
    one_error_line(result, f"was edited since the run was created ({says})")
    assert tree(run_copy) == before


def test_an_edited_iterations_is_taken_as_an_extension_said_and_recorded(run_copy):
    """config.json's iterations edited by hand: a resume replanned the learning-rate
    schedule without a word or a record (config.json then claimed to be the recipe of a
    run it no longer reproduced), and accepted a total below the iterations done (found
    by an audit). It is now what --iterations N does."""
    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, "iterations": 6}))
    with pytest.warns(
        mfax.MfaxWarning, match="schedule was replanned at iteration 2 \\(over 6 iterations in total, was 4"
    ):
        assert train(TrainConfig(), run_copy, resume=True, progress=False)["iterations"] == 6
    assert "schedule" in json.loads((run_copy / "provenance.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, "iterations": 3}))
    before = tree(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
    one_error_line(result, "--iterations 3 (or config.json's iterations) is below the 6 iterations this run has done")
    assert "run directory" not in result.stdout  # refused before the run is named (it printed it first)
    assert tree(run_copy) == before
    (run_copy / "summary.json").unlink()  # (nothing tells of the edit: still below the iterations done)
    before = tree(run_copy)
    one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), "is below the 6 iterations")
    assert tree(run_copy) == before


def test_an_edited_iterations_then_resume_iterations_records_what_was_planned(run_copy):
    """Edited to 6, then --resume --iterations 8: the schedule recorded 6 as what the
    first stretch was planned over (it was 4); edited to 8, then --iterations 8: no word
    and no record (found by a review)."""
    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, "iterations": 8}))
    with pytest.warns(mfax.MfaxWarning, match="replanned at iteration 2 \\(over 8 iterations in total, was 4\\)"):
        train(TrainConfig(), run_copy, resume=True, progress=False, extend_to=8)
    schedule = json.loads((run_copy / "provenance.json").read_text())["schedule"]
    assert [(s["from"], s["planned"]) for s in schedule] == [(0, 4), (2, 8)]


def test_a_float32_run_is_not_resumed_where_the_process_computes_in_float64(run_copy):
    """With float64 switched on for the process (JAX_ENABLE_X64), a float32 run went on in
    float64 under its float32 label, and could not be read back (found by a review)."""
    import jax

    before = tree(run_copy)
    jax.config.update("jax_enable_x64", True)
    try:
        with pytest.raises(GameError, match="was trained in float32 and this process computes in float64"):
            train(TrainConfig(), run_copy, resume=True, progress=False)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert tree(run_copy) == before


def test_a_config_edited_into_another_problem_is_refused_by_resume_and_named_to_readers(run_copy):
    """config.json edited in a game parameter: a resume trained on from checkpoints of the
    original game, and eval reported figures of the edited one, silently."""
    config = json.loads((run_copy / "config.json").read_text())
    edited = {**config, "params": {**config["params"], "home_factor": 0.25}}
    (run_copy / "config.json").write_text(json.dumps(edited))
    before = tree(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
    one_error_line(result, "was edited since the run was created (params.home_factor (default) -> 0.25)")
    assert "restore it, or train a new run" in result.stderr
    assert tree(run_copy) == before
    # what evaluating it means is said in one line
    result = runner.invoke(app, ["eval", str(run_copy)])
    assert result.exit_code == 0, result.output
    assert "mfax: warning: " in result.stderr and "was edited since the run was created" in result.stderr
    # ... and its figures, of the edited game, are not compared with those recorded on the
    # original (that warning blamed a change of the code)
    assert "changed since" not in result.stderr, result.stderr
    # an extension rewrites config.json: what the run was created with stays the reference
    (run_copy / "config.json").write_text(json.dumps(config))
    assert runner.invoke(app, ["train", "--resume", str(run_copy), "--iterations", "6", *QUIET]).exit_code == 0
    extended = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**extended, "lr": [0.5]}))
    one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), "lr ")


# -- operating-system and JSON errors ----------------------------------------------------------


def test_an_out_path_under_a_file_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(tmp_path / "file" / "run" / "x"), *QUIET])
    one_error_line(result, "cannot create run directory")
    assert result.stdout == ""
    one_error_line(runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(tmp_path / "file"), *QUIET]), "is a file")


@pytest.mark.parametrize(("code", "text"), [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only")])
def test_a_failed_checkpoint_save_is_one_error_and_leaves_no_temporary_file(run_copy, monkeypatch, code, text):
    old = (run_copy / "checkpoint.eqx").read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        if os.path.basename(dst) == "checkpoint.eqx":
            raise OSError(code, os.strerror(code))
        real_replace(src, dst)

    monkeypatch.setattr(rundir_module.os, "replace", failing_replace)
    one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), text)
    monkeypatch.undo()
    assert not [p.name for p in run_copy.iterdir() if p.name.endswith(".tmp")]
    assert (run_copy / "checkpoint.eqx").read_bytes() == old
    with pytest.warns(mfax.errors.MfaxWarning, match="dropped the metrics rows of iteration 4"):  # (recorded first)
        assert train(TrainConfig(), run_copy, resume=True, progress=False)["iterations"] == 4  # still resumable
    assert [r["iteration"] for r in RunDir(run_copy).read_metrics()] == [0, 2, 4]


def test_a_corrupt_summary_is_one_error_and_resume_rewrites_it(run_copy):
    (run_copy / "summary.json").write_text('{"best_run": 0, "fin')
    with pytest.raises(GameError, match=r"summary.json' is corrupt .*`mfax train --resume .*` rewrites it"):
        RunDir(run_copy).read_summary()
    # eval needs no summary: the checkpoint's digest says the iteration it holds
    assert runner.invoke(app, ["eval", str(run_copy)]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
    assert result.exit_code == 0, result.output
    assert json.loads((run_copy / "summary.json").read_text())["iterations"] == 4


# -- nothing on disk before validation -------------------------------------------------------------


def test_plot_of_a_typo_creates_nothing(tmp_path):
    one_error_line(runner.invoke(app, ["plot", str(tmp_path / "TYPO")]), "is not a run directory")
    assert list(tmp_path.iterdir()) == []


def test_train_with_a_bad_game_prints_and_creates_nothing(tmp_path):
    result = runner.invoke(app, ["train", "--game", "beachbar", "--out", str(tmp_path / "run"), *QUIET])
    one_error_line(result, "unknown game 'beachbar'")
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_the_lock_is_released_when_training_fails(run_copy):
    (run_copy / "checkpoint.eqx").write_bytes(b"garbage")
    with pytest.raises(GameError, match="is corrupt"):
        train(TrainConfig(), run_copy, resume=True, progress=False)
    with RunDir(run_copy).lock():  # not held any more
        pass


def test_an_os_error_while_plotting_is_one_error(run_copy, monkeypatch):
    from mfax.run import plots

    def read_only(fig, path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(plots, "_save", read_only)
    line = one_error_line(runner.invoke(app, ["plot", str(run_copy)]), "Read-only file system")
    assert "exploitability.png" in line


# -- found in review: links, digests and stale summaries ------------------------------


def test_overwrite_never_deletes_through_a_linked_folder(run_copy, tmp_path):
    """A ``plots`` folder that links elsewhere holds someone else's files: --overwrite
    must leave them (and the link) alone and still replace the run."""
    shutil.rmtree(run_copy / "plots", ignore_errors=True)
    elsewhere = tmp_path / "my-pictures"
    elsewhere.mkdir()
    (elsewhere / "policy.png").write_bytes(b"mine")
    (run_copy / "plots").symlink_to(elsewhere, target_is_directory=True)
    assert all(run_copy / "plots" not in p.parents for p in RunDir(run_copy).own_files())
    train(TrainConfig(**{**TINY.__dict__, "iterations": 2}), run_copy, overwrite=True, progress=False)
    assert (elsewhere / "policy.png").read_bytes() == b"mine"
    assert (run_copy / "plots").is_symlink()
    assert [r["iteration"] for r in RunDir(run_copy).read_metrics()] == [0, 2]


def test_a_linked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("precious data\n")
    (out / "mfax.lock").symlink_to(precious)
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(out), *QUIET])
    one_error_line(result, "is a link, not mfax's lock file")
    assert precious.read_text() == "precious data\n"
    assert sorted(p.name for p in out.iterdir()) == ["mfax.lock"]


def test_a_marked_run_whose_checkpoint_digest_is_missing_is_not_loaded_unverified(run_copy):
    data = bytearray((run_copy / "checkpoint.eqx").read_bytes())
    data[-20] ^= 0x55
    (run_copy / "checkpoint.eqx").write_bytes(bytes(data))
    (run_copy / "checkpoint.json").unlink()
    one_error_line(runner.invoke(app, ["eval", str(run_copy)]), "checkpoint.json is missing")
    (run_copy / "mfax-run.json").unlink()  # a run older than the marker and the digests loads as before
    assert RunDir(run_copy)._read_checkpoint(run_copy / "checkpoint.eqx") == bytes(data)


@pytest.mark.parametrize("content", ['{"sha256": null}', '{"sha256": 3}', '{"sha256": "abc"}', "[1, 2]"])
def test_a_malformed_digest_file_is_one_error(run_copy, content):
    (run_copy / "checkpoint.json").write_text(content)
    one_error_line(runner.invoke(app, ["eval", str(run_copy)]), "checkpoint.json' is corrupt")


def test_an_iteration_is_never_answered_with_another_iterations_checkpoint(tmp_path):
    """summary.json is written after the checkpoints: a kill between them leaves it one
    evaluation behind, and the checkpoint it names as the last then holds a later
    iteration. --iteration must say so instead of scoring the wrong state."""
    out = tmp_path / "run"
    train(TINY, out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    summary["iterations"] = 2  # as if killed after the iteration-4 checkpoint, before the summary
    (out / "summary.json").write_text(json.dumps(summary))
    # the checkpoints' digests say which iteration each holds: 2 is not among them
    one_error_line(runner.invoke(app, ["eval", str(out), "--iteration", "2"]), "available: 4 (best, last)")
    for digest in ("checkpoint.json", "checkpoint-best.json"):  # digests of an older mfax: no iteration
        record = json.loads((out / digest).read_text())
        (out / digest).write_text(json.dumps({"sha256": record["sha256"]}))
    one_error_line(runner.invoke(app, ["eval", str(out), "--iteration", "2"]), "holds iteration 4, not 2")


def test_outputs_at_chosen_paths_replace_only_what_mfax_wrote(tmp_path):
    """irf --out/--plot and solve-macro --out: a missing path, or mfax's own JSON or PNG there."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from mfax.run.plots import save_figure
    from mfax.run.rundir import output_writable

    output_writable(tmp_path / "new.json", "run")  # missing: fine
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"run": "x", "moments": {}}))
    output_writable(ours, "run", "moments")
    figure = save_figure(Figure(), tmp_path / "ours.png")
    output_writable(figure)
    for name, text in (("theirs.json", '{"run": 1}'), ("notes.json", "not json"), ("photo.png", "PNG bytes")):
        (tmp_path / name).write_text(text)
        with pytest.raises(GameError, match=f"refusing to overwrite .*{name}': it is not an output of this kind"):
            output_writable(tmp_path / name, "run", "moments")
        assert (tmp_path / name).read_text() == text
    # under a file: said before anything is written (irf wrote RUN/plots/irf.png, then failed
    # on "File exists" naming neither the option nor the problem)
    (tmp_path / "u.json").write_text("{}")
    with pytest.raises(GameError, match=r"cannot write '.*u\.json/deeper/x\.json': '.*u\.json' is a file"):
        output_writable(tmp_path / "u.json" / "deeper" / "x.json", "run")


def test_a_checkpoint_of_another_state_layout_is_refused_in_one_line(tmp_path):
    """A checkpoint written for another solver state (e.g. by an mfax version whose state
    had other fields) is refused with one line that says so, not a deserialiser trace."""
    import jax.numpy as jnp

    from mfax.errors import GameError

    run = RunDir(tmp_path / "run")
    run.root.mkdir(parents=True)
    run.save_checkpoint((jnp.zeros(3), jnp.zeros(2)))
    with pytest.raises(GameError, match=r"^cannot read checkpoint .*another mfax version\?\): ") as info:
        run.load_checkpoint((jnp.zeros(3), jnp.zeros(4), jnp.zeros(1)))
    assert "\n" not in str(info.value)


def test_plot_keeps_a_users_file_under_a_figures_name(run_copy):
    """A file of the user's own at RUN/plots/policy.png: `mfax plot` (and training's plots)
    leave it and write the other figures, with a warning; --overwrite keeps it too."""
    mine = run_copy / "plots" / "policy.png"
    mine.parent.mkdir(exist_ok=True)
    mine.write_bytes(b"\x89PNG my own figure")
    result = runner.invoke(app, ["plot", str(run_copy)])
    assert result.exit_code == 0, result.output
    assert "kept" in result.stderr and "policy.png" in result.stderr
    assert mine.read_bytes() == b"\x89PNG my own figure" and (run_copy / "plots" / "mean_field.png").is_file()
    RunDir(run_copy).remove_own_files()
    assert mine.read_bytes() == b"\x89PNG my own figure" and not (run_copy / "plots" / "mean_field.png").exists()


def test_a_run_trained_on_more_devices_is_read_back_on_those_here(run_copy):
    """config.json holding `--devices 4` from a larger host: `mfax eval`, export and
    --resume refused it here ("--devices must lie in 1..1"); they now use the devices
    here (the provenance line says the setup differs)."""
    import jax

    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, "devices": len(jax.devices()) + 3}))
    result = runner.invoke(app, ["eval", str(run_copy), "--json"])
    assert result.exit_code == 0, result.output
    assert RunDir(run_copy).load_config().devices == len(jax.devices())


# -- found by a fresh-eyes review of what mfax writes (2026-12-03) ---------------------------


def test_another_tools_config_with_a_game_and_an_algo_is_no_run(tmp_path):
    """A folder of another tool's files (config.json with `game`/`algo`, metrics.jsonl,
    summary.json) was taken for an mfax run written before the marker, and --overwrite
    deleted its files."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"game": "pong", "algo": "ppo", "lr": 0.0003, "seed": 1}')
    (other / "metrics.jsonl").write_text('{"step": 1}\n')
    (other / "summary.json").write_text('{"best": 9}')
    before = tree(other)
    assert not RunDir(other).is_run()
    refused = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(other), *QUIET])  # (and what is allowed: a review)
    one_error_line(refused, "not an mfax run; give a new or empty directory (--out)")
    one_error_line(
        runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(other), "--overwrite", *QUIET]), "not an mfax run"
    )
    assert tree(other) == before


def test_a_runs_config_kept_beside_a_users_own_log_is_no_run(run_copy, tmp_path):
    """A run's config.json copied beside a metrics.jsonl of the user's own (not mfax's
    rows) was taken for a run written before the marker: --overwrite deleted both (a
    review). A pre-marker run (marker removed) with mfax's rows still is one."""
    mine = tmp_path / "project"
    mine.mkdir()
    shutil.copy(run_copy / "config.json", mine / "config.json")
    (mine / "metrics.jsonl").write_text('{"my": "own experiment log"}\n')
    before = tree(mine)
    assert not RunDir(mine).is_run()
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(mine), "--overwrite", *QUIET])
    one_error_line(result, "not an mfax run")
    assert tree(mine) == before
    (run_copy / rundir_module.MARKER).unlink()
    assert RunDir(run_copy).is_run()  # (its metrics.jsonl holds mfax's rows)
    with (run_copy / "metrics.jsonl").open("a") as torn:
        torn.write('{"iteration": 3, "ru')  # a writer killed mid-line: still mfax's
    assert RunDir(run_copy).is_run()


def test_resume_without_the_last_checkpoint_of_a_trained_run_is_refused(run_copy):
    """checkpoint.eqx gone from a run that trained 2 iterations: --resume trained again
    from 0 and replaced the metrics and the best checkpoint; it is refused, and the
    checkpoints left are still readable by name."""
    (run_copy / "checkpoint.eqx").unlink()
    (run_copy / "checkpoint.json").unlink()
    before = tree(run_copy)
    one_error_line(
        runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]),
        "has no checkpoint.eqx but has trained 2 iterations",
    )
    assert tree(run_copy) == before
    best = runner.invoke(app, ["eval", str(run_copy), "--iteration", "best", "--paths", "2"])
    assert best.exit_code == 0, best.output
    # the last one asked for by default: said missing, with those there (it said 'last' was no valid
    # --iteration), and none at all: not "stopped before its first evaluation" (a review)
    last = runner.invoke(app, ["eval", str(run_copy), "--paths", "2"])
    one_error_line(last, f"the last checkpoint, checkpoint.eqx, is missing from {str(run_copy)!r}; the checkpoints")
    for path in run_copy.glob("checkpoint-best.*"):
        path.unlink()
    one_error_line(
        runner.invoke(app, ["plot", str(run_copy)]),
        "has no checkpoint file left, though metrics.jsonl records evaluations up to iteration 2",
    )


def test_a_checkpoint_read_while_a_training_swaps_it_is_not_called_corrupt(run_copy, monkeypatch):
    """A reader that got the old checkpoint's bytes and then the new digest (a writer's
    swap in between) reads again instead of calling a sound run corrupt."""
    run = RunDir(run_copy)
    real, calls = RunDir._read_json, []

    def digest_of_a_newer_checkpoint(self, path):
        calls.append(path.name)
        if path.name == "checkpoint.json" and len(calls) == 1:
            return {"sha256": ["0" * 64]}
        return real(self, path)

    monkeypatch.setattr(RunDir, "_read_json", digest_of_a_newer_checkpoint)
    assert run._read_checkpoint(run.checkpoint_path) == (run_copy / "checkpoint.eqx").read_bytes()
    assert calls.count("checkpoint.json") == 2


def test_an_iteration_behind_the_summary_names_an_answer_that_works(tmp_path):
    out = tmp_path / "run"
    train(TINY, out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    summary["iterations"] = summary["best_iteration"] = 2  # killed before the summary caught up
    (out / "summary.json").write_text(json.dumps(summary))
    message = one_error_line(runner.invoke(app, ["eval", str(out), "--iteration", "2"]), "available: 4 (best, last)")
    assert "'last'" in message
    assert runner.invoke(app, ["eval", str(out), "--iteration", "last", "--paths", "2"]).exit_code == 0


def test_a_users_file_named_like_the_lock_is_not_truncated(tmp_path):
    folder = tmp_path / "lk"
    folder.mkdir()
    (folder / "mfax.lock").write_text("my lock notes\n")
    one_error_line(runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(folder), *QUIET]), "not mfax's lock file")
    assert (folder / "mfax.lock").read_text() == "my lock notes\n"


def test_a_long_legal_name_is_written_and_no_temporary_file_is_left(tmp_path):
    path = tmp_path / ("a" * 248 + ".npz")  # 252 bytes: legal; NAME.<pid>.tmp was not
    rundir_module._replace_with(path, b"data")
    assert path.read_bytes() == b"data" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_figures_replace_a_link_instead_of_writing_through_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from mfax.run.plots import save_figure

    mine = tmp_path / "mine.txt"
    mine.write_text("my notes")
    link = tmp_path / "irf.png"
    link.symlink_to(mine)
    save_figure(Figure(), link)
    assert mine.read_text() == "my notes" and not link.is_symlink() and link.read_bytes()[:4] == b"\x89PNG"


def test_irf_json_never_replaces_a_figure(tmp_path):
    """`mfax irf --out` wrote its JSON over a figure mfax drew (moments.png, or its own --plot)."""
    import matplotlib.pyplot as plt

    from mfax.run.plots import save_figure
    from mfax.run.rundir import IRF_KEYS, output_writable

    figure = tmp_path / "moments.png"
    save_figure(plt.figure(), figure)
    output_writable(figure)  # mfax's figure: another figure may replace it
    with pytest.raises(GameError, match="refusing to overwrite"):
        output_writable(figure, *IRF_KEYS)  # but not a JSON record
    record = tmp_path / "irf.json"
    record.write_text(json.dumps(dict.fromkeys(IRF_KEYS)))
    output_writable(record, *IRF_KEYS)
    with pytest.raises(GameError, match="refusing to overwrite"):
        output_writable(record)
    result = runner.invoke(app, ["irf", str(tmp_path / "run"), "--out", str(figure)])
    one_error_line(result, f"--out names a .json file (the response is written as JSON), got {str(figure)!r}")


# -- a run --overwrite replaces is kept until the new one has a checkpoint -----------------
DEFECTIVE_GAME = """
from typing import ClassVar
import jax.numpy as jnp
from mfax.games import NoCommonNoise, dense_kernel
from mfax.games.base import discount
from mfax.params import param


class G(NoCommonNoise):
    name: ClassVar[str] = "g"
    horizon: int = param(3, "T")
    gamma: float = discount(1.0)
    n_actions: ClassVar[int] = 2
    n_states: ClassVar[int] = 3

    def state_features(self): return jnp.arange(3.0)[:, None]
    def action_values(self): return jnp.array([0.0, 1.0])
    def initial_mean_field(self, noise): return jnp.ones(3) / 3
    def observation(self, mu, noise, t): return mu
    def kernel(self, mu, noise, t): return dense_kernel(jnp.broadcast_to(jnp.eye(3)[:, None, :], (3, 2, 3)))
    def reward(self, mu, mu_next, noise, t): return REWARD
"""


def _defective(tmp_path, reward: str) -> str:
    path = tmp_path / f"defective_{abs(hash(reward))}.py"
    path.write_text(DEFECTIVE_GAME.replace("REWARD", reward))
    return f"{path}:G"


def _without_lock(root) -> dict[str, bytes]:
    return {name: data for name, data in tree(root).items() if name != "mfax.lock"}


def _mfax_figure(path) -> None:
    """Write at ``path`` a figure as mfax tags its own (the old run's, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + rundir_module._PNG_CHUNK)


@pytest.mark.parametrize("reward", ["jnp.zeros((2, 3))", "jnp.full((3, 2), jnp.nan)"])
def test_overwrite_with_a_game_that_fails_unchecked_puts_the_old_run_back(run_copy, tmp_path, reward):
    # --no-check: the defect shows only once the new run has started (a wrong shape when
    # tracing; NaN rewards in the evaluation at iteration 0), after the old files were removed
    before = _without_lock(run_copy)
    game = _defective(tmp_path, reward)
    args = ["train", "--game", game, "--algo", "fp", "--iterations", "2", "--out", str(run_copy)]
    result = runner.invoke(app, [*args, "--overwrite", "--no-check", *QUIET])
    line = one_error_line(result, "game 'g': reward")  # (its shape, as it is traced; the NaN, at t = 0)
    assert "the run being replaced is back as it was" in line
    assert _without_lock(run_copy) == before


def test_a_file_overwrite_cannot_move_keeps_the_old_run_and_names_the_file(run_copy, monkeypatch):
    """--overwrite removed the old run's files one by one before training: a read-only
    plots/ stopped it part-way with the marker, config and checkpoints gone, an error
    naming the run's folder, and a folder every later command refused. Now the old
    run is moved aside first, and a file that cannot be moved moves the others back."""
    before = _without_lock(run_copy)
    real = os.rename

    def refuse_the_checkpoint(src, dst, *args, **kwargs):
        if str(src).endswith("checkpoint.eqx") and ".mfax-replaced" in str(dst):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(rundir_module.os, "rename", refuse_the_checkpoint)
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET])
    one_error_line(result, f"cannot set aside {str(run_copy / 'checkpoint.eqx')!r}: Permission denied")
    assert _without_lock(run_copy) == before  # every file back, none left aside
    monkeypatch.undo()
    assert runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET]).exit_code == 0
    assert not (run_copy / ".mfax-replaced").exists()


def _killed_overwrite(run: RunDir, stage: str) -> None:
    """The files a SIGKILL leaves at ``stage`` of an --overwrite (nothing runs after it)."""
    assert run.set_aside()
    if stage == "setting aside":  # part-way: some files still in place, no completion mark
        (run.aside_path / rundir_module.ASIDE_DONE).unlink()
        os.rename(run.aside_path / "config.json", run.root / "config.json")
    if stage in ("training", "first checkpoint"):
        run.start_new(resolve(TrainConfig(**{**TINY.to_dict(), "iterations": 9})), overwrite=True)
        run.append_metrics([])
    if stage == "first checkpoint":  # written, killed before the old run was removed
        (run.root / "checkpoint.eqx").write_bytes(b"the new run's")


@pytest.mark.parametrize("stage", ["setting aside", "training", "first checkpoint"])
def test_what_a_killed_overwrite_leaves_is_settled_by_the_next_command(run_copy, stage):
    """SIGKILL (an out-of-memory kill, a job's time limit, a closed terminal) during an
    --overwrite before the new run's first checkpoint lost the old run: its only copy was
    in memory. It is now set aside on disk, and the next command on the folder settles
    what a kill left: the old run back (killed setting it aside, or training before the
    first checkpoint), or removed (the new run had its checkpoint)."""
    before = _without_lock(run_copy)
    _killed_overwrite(RunDir(run_copy), stage)
    result = runner.invoke(app, ["eval", str(run_copy), "--json"])
    if stage == "first checkpoint":  # the new run's (a stand-in file here): the old run is gone
        assert not (run_copy / ".mfax-replaced").exists() and not (run_copy / ".mfax-replaced.discard").exists()
        assert (run_copy / "checkpoint.eqx").read_bytes() == b"the new run's"
        return
    assert result.exit_code == 0, result.output
    assert _without_lock(run_copy) == before  # the old run, byte for byte
    assert json.loads(result.stdout)["checkpoint_iteration"] == 2
    # said, not silently (a review): what the next command found, and what it did
    said = "had moved aside; nothing of the new run" if stage == "setting aside" else "was replacing: the new run"
    assert (
        f"mfax: warning: put back the run that a killed `mfax train --overwrite` in {str(run_copy)!r}" in result.stderr
    )
    assert said in result.stderr


@pytest.mark.slow
def test_a_real_sigkill_during_an_overwrite_leaves_the_old_run(run_copy):
    """SIGKILL while the new run compiles (after the old run is set aside): the next
    command finds the old run, byte for byte."""
    import signal
    import time

    before = _without_lock(run_copy)
    cmd = [sys.executable, "-m", "mfax.run.cli", "train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MFAX_COMPILATION_CACHE": "0"}  # (a long compilation)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = run_copy / ".mfax-replaced" / rundir_module.ASIDE_DONE
    deadline = time.time() + 120
    while not done.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done.exists() and not RunDir(run_copy).has_checkpoint()  # killed set aside, before the first checkpoint
    result = runner.invoke(app, ["eval", str(run_copy), "--json"])
    assert result.exit_code == 0, result.output
    assert _without_lock(run_copy) == before


def test_plots_that_cannot_be_drawn_are_named_and_do_not_fail_a_saved_training(run_copy, monkeypatch):
    """A file named plots ended a successful --resume with "File exists" and status 2; a
    read-only plots/ warned "mfax did not write it" for mfax's own figures, status 0
    (found by a data-safety audit; the tests run as root, so the mode is simulated)."""

    shutil.rmtree(run_copy / "plots", ignore_errors=True)
    (run_copy / "plots").write_text("mine")
    result = runner.invoke(app, ["train", "--resume", str(run_copy), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["iterations"] == 4  # the run's line, as after any training
    warning = [line for line in result.stderr.splitlines() if line.startswith("mfax: warning: the run is saved")]
    assert len(warning) == 1 and f"{str(run_copy / 'plots')!r} is a file, not a folder" in warning[0]
    assert f"`mfax plot {run_copy}` draws them" in warning[0] and (run_copy / "plots").read_text() == "mine"
    one_error_line(runner.invoke(app, ["plot", str(run_copy)]), "cannot draw the plots: ")
    (run_copy / "plots").unlink()
    (run_copy / "plots").mkdir()
    monkeypatch.setattr(rundir_module.os, "access", lambda path, mode: path != run_copy / "plots")
    one_error_line(
        runner.invoke(app, ["plot", str(run_copy)]), f"cannot draw the plots: the folder {str(run_copy / 'plots')!r}"
    )
    assert not any((run_copy / "plots").iterdir())


def test_overwrite_keeps_the_exports_of_another_run_saved_in_the_folder(run_copy, half_run):
    """`mfax export OTHER --out RUN/export.npz` (and a CSV export, an impulse response's
    record) is OTHER's result, which the user put there: --overwrite of RUN deleted it
    (found by a data-safety audit). RUN's own export still goes."""
    other = runner.invoke(app, ["export", str(half_run), "--out", str(run_copy / "export.npz")])
    assert other.exit_code == 0, other.output
    csv = runner.invoke(app, ["export", str(half_run), "--format", "csv", "--out", str(run_copy / "export")])
    assert csv.exit_code == 0, csv.output
    kept = {name: data for name, data in tree(run_copy).items() if name.startswith("export")}
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET])
    assert result.exit_code == 0, result.output
    assert {name: data for name, data in tree(run_copy).items() if name.startswith("export")} == kept
    shutil.rmtree(run_copy / "export")
    (run_copy / "export.npz").unlink()
    assert runner.invoke(app, ["export", str(run_copy)]).exit_code == 0  # its own: replaced with the run
    assert runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET]).exit_code == 0
    assert not (run_copy / "export.npz").exists()


def test_a_runs_own_export_named_from_another_folder_goes_with_it(run_copy, monkeypatch):
    """The export recorded the run as typed (`mfax export run` from its parent): an
    --overwrite given from elsewhere kept that export beside the new run, two runs'
    files mixed (found by a review). It records the run's absolute path."""
    monkeypatch.chdir(run_copy.parent)
    assert runner.invoke(app, ["export", run_copy.name]).exit_code == 0
    monkeypatch.chdir(run_copy.parent.parent)
    assert runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET]).exit_code == 0
    assert not (run_copy / "export.npz").exists()


def test_an_export_says_what_is_wrong_with_its_arguments_before_that_the_target_exists(run_copy):
    """With an export already at the target, a wrong --iteration, --run-index or --paths
    was hidden behind "already holds an mfax export; use --overwrite", and appeared only
    once --overwrite was given (found by a new user's audit)."""
    assert runner.invoke(app, ["export", str(run_copy)]).exit_code == 0
    for args, says in (
        (["--iteration", "bogus"], "--iteration must be 'best', 'last' or an iteration (a whole number >= 0), got"),
        (["--iteration", "-1"], "--iteration must be 'best', 'last' or an iteration (a whole number >= 0), got '-1'"),
        (["--iteration", "3"], "no checkpoint of iteration 3 in"),
        (["--run-index", "5"], "run index 5 out of range"),
        (["--paths", "999"], "--paths must be in 1.."),
    ):
        line = one_error_line(runner.invoke(app, ["export", str(run_copy), *args]), says)
        assert "already holds" not in line
    one_error_line(runner.invoke(app, ["export", str(run_copy)]), "already holds an mfax export")


def _dead_pid() -> int:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def test_what_a_kill_as_a_run_starts_leaves_takes_a_new_run(tmp_path):
    """A kill between the marker and config.json (or while writing the marker) left a
    folder --out called "already holds a run; resume it" and --resume called "not a run
    directory", or "not an mfax run": every command refused it, and none said to remove
    it. Nothing was trained there: a new run is written in it."""
    stub, tmp = tmp_path / "stub", tmp_path / "tmp"
    stub.mkdir()
    (stub / "mfax-run.json").write_text('{"mfax_run": 1}\n')
    tmp.mkdir()
    (tmp / f"mfax-run.json.{_dead_pid()}.tmp").write_text("{")
    one_error_line(
        runner.invoke(app, ["train", "--resume", str(stub), *QUIET]),
        "holds only the marker of a run killed before its config was written: nothing was trained; train anew there",
    )
    for out in (stub, tmp):
        result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(out), *QUIET])
        assert result.exit_code == 0, result.output
        assert RunDir(out).has_checkpoint() and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    mine = tmp_path / "mine"  # a file of another name is the user's: refused as before
    mine.mkdir()
    (mine / "mfax-run.json").write_text('{"mfax_run": 1}\n')
    (mine / "notes.txt").write_text("mine")
    one_error_line(runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(mine), *QUIET]), "already holds a run")


def test_temporary_files_of_killed_writers_go_at_the_next_write(run_copy):
    """A SIGKILL mid-write left summary.json.PID.tmp (checkpoint.eqx.PID.tmp: a
    checkpoint's size) that every later --resume kept; only --overwrite removed them."""
    dead = _dead_pid()
    left = [run_copy / f"summary.json.{dead}.tmp", run_copy / f"checkpoint.eqx.{dead}.tmp"]
    alive = run_copy / f"summary.json.{os.getppid()}.tmp"  # a live process's: not touched
    for path in (*left, alive):
        path.write_bytes(b"partial")
    (run_copy / f"notes.{dead}.tmp").write_text("mine")  # not a name mfax writes: the user's
    result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in left) and alive.exists() and (run_copy / f"notes.{dead}.tmp").exists()


@pytest.mark.parametrize("moved", [1, 4, 8])
def test_a_restore_cut_short_is_finished_by_the_next_command(run_copy, monkeypatch, moved):
    """A restore stopped after some files were moved back (a kill, an OSError) was then
    read as "the new run": its checkpoint made the next command discard the rest of the
    old run, or the files already back were removed as the new run's (found by a
    review). The completion mark goes before the move back: what remains is a move."""
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    _killed_overwrite(run, "training")
    real, calls = os.link, []

    def cut_short(src, dst, *args, **kwargs):
        if ".mfax-replaced" in str(src):
            calls.append(src)
            if len(calls) > moved:
                raise OSError(errno.EIO, "Input/output error")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(rundir_module.os, "link", cut_short)
    with pytest.raises(GameError, match="cannot put back"):
        run.restore_aside()
    monkeypatch.undo()
    with pytest.warns(mfax.MfaxWarning, match="^put back the run that a killed `mfax train --overwrite`"):
        run.settle()
    assert _without_lock(run_copy) == before and not (run_copy / ".mfax-replaced").exists()


def test_an_overwrite_of_a_run_from_before_the_marker_replaces_it(run_copy):
    """A run written before mfax marked its runs (config.json and metrics, no marker):
    --overwrite set it aside, then refused the folder as "not an mfax run" (its config
    was aside; found by a review)."""
    (run_copy / "mfax-run.json").unlink()
    assert RunDir(run_copy).is_run()
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET])
    assert result.exit_code == 0, result.output
    assert RunDir(run_copy).has_checkpoint() and not (run_copy / ".mfax-replaced").exists()


def test_an_overwrite_discards_the_old_run_at_its_first_checkpoint(run_copy):
    run = RunDir(run_copy)
    assert run.set_aside() and (run_copy / ".mfax-replaced" / "checkpoint.eqx").is_file()
    run.start_new(resolve(TINY), overwrite=True)
    run.save_checkpoint({"x": jnp.zeros(2)}, iteration=0)
    assert not (run_copy / ".mfax-replaced").exists() and run.has_checkpoint()


def test_a_discard_that_fails_is_a_warning_and_the_next_command_removes_the_old_run(run_copy, monkeypatch):
    """The old run's removal at the new run's first checkpoint raised when it failed: the
    training stopped with an error although its checkpoint was written."""
    run = RunDir(run_copy)
    assert run.set_aside()
    run.start_new(resolve(TINY), overwrite=True)
    real = rundir_module.Path.unlink

    def refuse(self, *args, **kwargs):
        if ".mfax-replaced" in self.parts:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(rundir_module.Path, "unlink", refuse)
    with pytest.warns(mfax.MfaxWarning, match="^cannot remove ") as said:
        run.save_checkpoint({"x": jnp.zeros(2)}, iteration=0)
        run.save_checkpoint({"x": jnp.ones(2)}, iteration=1)  # said once, not at every checkpoint
    assert len(said) == 1 and "until the next mfax command on the run removes it" in str(said[0].message)
    assert run.has_checkpoint() and (run_copy / ".mfax-replaced").is_dir()
    # still failing: a new --overwrite is refused, never mixed into the old run's folder
    # (its files overwrote the older ones there, and a kill then lost the run; found by a review)
    now = _without_lock(run_copy)
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET])
    one_error_line(result, "the run an earlier --overwrite replaced is still in")  # (the why: said once above)
    assert _without_lock(run_copy) == now
    monkeypatch.undo()
    with pytest.warns(mfax.MfaxWarning, match="^removed the run that a killed `mfax train --overwrite`"):
        with run.lock():
            pass
    assert not (run_copy / ".mfax-replaced").exists() and not (run_copy / ".mfax-replaced.discard").exists()


def test_a_restore_cut_short_with_the_new_checkpoint_written_still_gives_the_old_run(run_copy, monkeypatch):
    """The new run's files were removed in their listed order, its checkpoint among the
    last: a kill part-way left the checkpoint beside the completion mark, and the next
    command took it for the new run's and discarded the old one (found by a review)."""
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    assert run.set_aside()
    run.start_new(resolve(TINY), overwrite=True)
    rundir_module._replace_with(run.checkpoint_path, b"the new run's, written")
    real = rundir_module.Path.unlink

    def killed(self, *args, **kwargs):
        if self.name == "config.json":
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(rundir_module.Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        run.restore_aside()
    monkeypatch.undo()
    with pytest.warns(mfax.MfaxWarning, match="^put back the run that a killed `mfax train --overwrite`"):
        run.settle()
    assert _without_lock(run_copy) == before


def test_a_put_back_cut_short_between_its_link_and_unlink_is_finished_quietly(run_copy):
    """A put-back killed after linking a file into place and before removing it from the
    aside: the next one found "a file that appeared" (the same file), warned and left a
    NAME.before-overwrite copy that nothing removes (found by a review)."""
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    assert run.set_aside()
    os.link(run.aside_path / "config.json", run_copy / "config.json")  # linked, not yet unlinked
    (run.aside_path / rundir_module.ASIDE_DONE).unlink()  # a move back, part-way
    with warnings.catch_warnings(record=True) as said:  # (no "a file that appeared", nor a copy of it)
        warnings.simplefilter("always")
        run.settle()
    assert [str(w.message).split(" in ")[0] for w in said] == [
        "put back the run that a killed `mfax train --overwrite`"
    ]
    assert _without_lock(run_copy) == before


def test_a_file_or_link_where_a_folder_of_the_old_run_was_is_kept(run_copy, tmp_path):
    """A file named plots (or a link: the figures would go through it) that appeared
    while the old run was aside made every put-back fail with "File exists", and every
    later command on the run with it (found by a review)."""
    figure = b"\x89PNG\r\n\x1a\n" + rundir_module._PNG_CHUNK
    (run_copy / "plots").mkdir(exist_ok=True)
    (run_copy / "plots" / "policy.png").write_bytes(figure)
    before = _without_lock(run_copy)
    for blocker in ("file", "link"):
        run = RunDir(run_copy)
        assert run.set_aside()
        elsewhere = tmp_path / f"elsewhere-{blocker}"
        elsewhere.mkdir()
        if blocker == "file":
            (run_copy / "plots").write_text("mine")
        else:
            (run_copy / "plots").symlink_to(elsewhere)
        with pytest.warns(mfax.MfaxWarning, match=f"^kept {re.escape(repr(str(run_copy / 'plots')))}, which appeared"):
            run.restore_aside()
        assert (run_copy / "plots.before-overwrite" / "policy.png").read_bytes() == figure
        assert not any(elsewhere.iterdir())  # nothing written through the link
        (run_copy / "plots").unlink()
        os.rename(run_copy / "plots.before-overwrite", run_copy / "plots")
        assert _without_lock(run_copy) == before


def test_a_save_that_fails_after_its_checkpoint_keeps_the_new_copy(tmp_path, monkeypatch):
    """The copy's checkpoint is written last: an interruption after it leaves the new
    copy whole, and the old run is removed rather than put back over it."""
    old = mfax.solve("sis", "fp", iterations=1, common_noise=False).save(tmp_path / "run")
    result = mfax.solve("sis", "omd", iterations=2, common_noise=False)
    real = rundir_module._replace_with

    def interrupted_after(path, data):
        real(path, data)
        if path.name == "checkpoint.eqx":
            raise KeyboardInterrupt

    monkeypatch.setattr(rundir_module, "_replace_with", interrupted_after)
    with pytest.raises(KeyboardInterrupt):
        result.save(old, overwrite=True)
    monkeypatch.undo()
    assert mfax.load(old).config.algo == "omd" and not (old / ".mfax-replaced").exists()


def test_a_file_that_appeared_where_the_old_run_goes_back_is_never_replaced(run_copy):
    """Putting the old run back (a failed or killed --overwrite) replaced whatever was at
    its files' places: a user's file that appeared there since (a figure mfax did not
    draw, which its removal of the new run's files keeps) was lost."""
    figure = "plots/exploitability.png"
    (run_copy / "plots").mkdir(exist_ok=True)
    (run_copy / figure).write_bytes(b"\x89PNG\r\n\x1a\n" + rundir_module._PNG_CHUNK)  # the old run's, as mfax tags it
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    assert run.set_aside()
    (run_copy / figure).parent.mkdir(exist_ok=True)
    (run_copy / figure).write_bytes(b"mine")
    kept = re.escape(repr(str(run_copy / figure)))
    with pytest.warns(mfax.MfaxWarning, match=f"^kept {kept}, which appeared") as said:
        run.restore_aside()
    assert len(said) == 1 and f"{figure}.before-overwrite" in str(said[0].message)
    after = _without_lock(run_copy)
    assert after.pop(f"{figure}.before-overwrite") == before[figure]
    assert after == {**before, figure: b"mine"}  # every other file back as it was
    assert not (run_copy / ".mfax-replaced").exists()


def test_an_evaluation_at_iteration_0_that_is_not_finite_keeps_nothing(tmp_path):
    # rewards finite at every step whose sum over the horizon overflows float32: the
    # checks pass, the starting policy's figures do not; nothing is written (no "good
    # checkpoint" at iteration 0 that eval would then refuse)
    out = tmp_path / "run"
    args = ["train", "--game", "sis", "--set", "infection_cost=3e38", "--set", "horizon=3", "--algo", "fp"]
    result = runner.invoke(app, [*args, "--iterations", "2", "--eval-every", "2", "--out", str(out), *QUIET])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "at iteration 0" in lines[0] and "nothing was trained" in lines[0], lines
    assert "overflow float32" in lines[0] and "--x64" in lines[0] and "good checkpoint" not in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["mfax.lock"]


def test_a_game_that_diverges_unchecked_is_named_in_one_line(tmp_path):
    # the divergence passes through --no-check's after-the-fact checks (they name the
    # defect) instead of being printed first and then wrapped as a game error ("Exit: 1")
    out = tmp_path / "run"
    game = _defective(tmp_path, "jnp.full((3, 2), jnp.nan)")
    result = runner.invoke(
        app, ["train", "--game", game, "--algo", "fp", "--iterations", "2", "--out", str(out), "--no-check", *QUIET]
    )
    line = one_error_line(result, "reward at t=0 is nan")
    assert "Exit" not in line and "good checkpoint" not in line
    assert sorted(p.name for p in out.iterdir()) == ["mfax.lock"]


def test_an_interrupt_before_the_new_runs_first_checkpoint_puts_the_replaced_run_back(run_copy, monkeypatch):
    from mfax.run import train as train_module

    before = _without_lock(run_copy)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_train_locked", interrupted)
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET])
    assert result.exit_code == 130
    assert "the run it was replacing is back" in result.stderr and "--resume" not in result.stderr
    assert _without_lock(run_copy) == before


def test_a_chosen_figure_path_replaces_only_a_figure_of_the_same_kind(tmp_path):
    """`mfax irf --plot runs/oracle/prices.png` replaced the oracle's price figure (any PNG
    mfax wrote could be replaced): a figure now says which it is, and only the same one,
    or a path mfax never wrote to, is written."""
    import matplotlib.pyplot as plt

    from mfax.run.plots import save_figure
    from mfax.run.rundir import output_writable

    prices = save_figure(plt.figure(), tmp_path / "prices.png", kind="oracle prices")
    output_writable(prices, figure="oracle prices")  # the same figure again
    with pytest.raises(GameError, match=r"it is mfax's oracle prices figure, and this writes the irf figure"):
        output_writable(prices, figure="irf")
    old = save_figure(plt.figure(), tmp_path / "old.png")  # an earlier mfax: no kind
    output_writable(old)  # a run's own plots folder: any mfax figure there is mfax's to redraw
    with pytest.raises(GameError, match=r"it is an earlier mfax's figure \(which one cannot be told\)"):
        output_writable(old, figure="irf")
    assert output_writable(tmp_path / "new.png", figure="irf") is None


def test_an_output_in_a_read_only_folder_is_refused_before_the_work(tmp_path, monkeypatch):
    """`mfax solve-macro --out ro/sm` solved the economy, printed it, then said it cannot
    create the folder; `mfax irf --out ro/i.json --plot ok.png` wrote ok.png and then
    failed: a read-only folder is now named first."""
    import os

    from mfax.run.rundir import output_writable

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(GameError, match=r"cannot write '.*/sm/x\.json': the folder '.*' is read-only$"):
        output_writable(tmp_path / "sm" / "x.json", "run")
    result = runner.invoke(app, ["solve-macro", "--set", "num_wealth=10", "--set", "horizon=4", "--out", str(tmp_path)])
    one_error_line(result, f"cannot write {str(tmp_path / 'macro_equilibrium.json')!r}: the folder")
    assert "converged" not in result.output and "iterations" not in result.stdout


def test_ctrl_c_during_an_export_says_the_target_is_as_it_was(run_copy, tmp_path, monkeypatch):
    """`mfax export` cut short said only "mfax: interrupted" (and once for an export that
    was complete): it now says which, and --paths 0 is named before an export in the way."""
    import mfax.run.export as export_module

    target = tmp_path / "csv"
    assert runner.invoke(app, ["export", str(run_copy), "--format", "csv", "--out", str(target)]).exit_code == 0
    assert not (target / "aggregates.csv").exists()  # SIS declares no aggregates: no file of bare (path, t) rows
    assert (target / "mean_field.csv").is_file()
    line = one_error_line(runner.invoke(app, ["export", str(run_copy), "--paths", "0", "--out", str(target)]), "")
    assert line == "mfax: error: --paths must be >= 1 (at most the run's evaluation paths), got 0"
    monkeypatch.setattr(export_module, "_table", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    args = ["export", str(run_copy), "--format", "csv", "--overwrite", "--out", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip() == f"interrupted before the export was written: {str(target)!r} is as it was"
    monkeypatch.undo()
    real = export_module.write_npz

    def written_then_interrupted(*args, **kwargs):  # Ctrl-C right after the file is in place
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "write_npz", written_then_interrupted)
    result = runner.invoke(app, ["export", str(run_copy), "--out", str(tmp_path / "e.npz")])
    assert result.exit_code == 130 and "after the export was written: " in result.stderr
    assert (tmp_path / "e.npz").is_file()


@pytest.mark.parametrize("swallowed", [False, True])
def test_ctrl_c_while_the_plots_are_drawn_says_the_run_is_saved(run_copy, monkeypatch, swallowed):
    """Ctrl-C while a saved training drew its plots ended with click's "Aborted!" and
    status 1, or, raised inside JAX's garbage-collection callback ("Exception ignored
    in ..."), was lost: the plots went on and the status was 0 (found by an audit)."""
    import signal

    from mfax.run import plots as plots_module

    def drawing(run, consent=None):
        handler = signal.getsignal(signal.SIGINT)
        if not swallowed:
            handler(signal.SIGINT, None)
        try:  # what a callback that swallows exceptions does with it
            handler(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass
        return []

    monkeypatch.setattr(plots_module, "plot_run", drawing)
    before = signal.getsignal(signal.SIGINT)
    result = runner.invoke(app, ["train", "--resume", str(run_copy), "--no-progress"])
    assert result.exit_code == 130, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    said = f"mfax: interrupted while drawing the plots; the run is saved and `mfax plot {run_copy}` draws them"
    assert lines == [said]
    assert not result.stderr.startswith("\n")  # (one line: --no-progress drew no bar to end)
    assert RunDir(run_copy).read_summary()["iterations"] == 4 and signal.getsignal(signal.SIGINT) is before


def test_a_folder_of_the_users_named_as_the_set_aside_one_is_never_touched(run_copy):
    """A folder ``.mfax-replaced`` that mfax did not write (no mark of its set-aside) was
    taken for a killed --overwrite's: the next command moved the files in it named like a
    run's into the run, and removed the folder with the rest of them."""
    theirs = run_copy / ".mfax-replaced"
    (theirs / "plots").mkdir(parents=True)
    (theirs / "config.json").write_text("my notes")
    (theirs / "plots" / "policy.png").write_bytes(b"my figure")
    (run_copy / ".mfax-replaced.discard").mkdir()
    (run_copy / ".mfax-replaced.discard" / "keep.txt").write_text("mine")
    before = _without_lock(run_copy)
    RunDir(run_copy).settle()
    with RunDir(run_copy).lock():
        pass
    result = runner.invoke(app, ["eval", str(run_copy), "--paths", "2"])
    assert result.exit_code == 0, result.output
    assert _without_lock(run_copy) == before
    result = runner.invoke(app, ["train", *TINY_FLAGS, "--out", str(run_copy), "--overwrite", *QUIET])
    one_error_line(result, "which mfax did not write (or left holding files it did not write), is where it sets")
    assert _without_lock(run_copy) == before


@pytest.mark.parametrize("end", ["discarded", "put back"])
def test_a_file_the_user_put_in_the_set_aside_folder_is_kept(run_copy, end):
    """A file the user saved into ``.mfax-replaced/`` while the old run was there went
    with it: removed with the folder at the new run's first checkpoint, or moved into the
    run when the old run came back."""
    _mfax_figure(run_copy / "plots" / "mean_field.png")  # (the old run's figure)
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    assert run.set_aside()
    run.start_new(resolve(TINY), overwrite=True)
    (run.aside_path / "notes").mkdir()
    (run.aside_path / "notes" / "mine.txt").write_text("mine")
    # named as mfax's own files (found by a review: taken by their names), and an empty folder
    (run.aside_path / "irf.json").write_text('{"my": "notes"}')
    (run.aside_path / "export").mkdir()
    (run.aside_path / "export" / "mine.csv").write_text("a,b\n1,2\n")
    (run.aside_path / "plots" / "policy.png").write_bytes(b"my figure")  # (beside the old run's, set aside)
    (run.aside_path / "empty").mkdir()
    theirs = {p.relative_to(run.aside_path).as_posix() for p in run.aside_path.rglob("*")} - set(
        json.loads((run.aside_path / rundir_module.ASIDE_STARTED).read_text())["files"]
    )
    theirs -= {rundir_module.ASIDE_STARTED, rundir_module.ASIDE_DONE, "checkpoints"}
    with pytest.warns(mfax.MfaxWarning, match="it holds what mfax did not write \\("):
        if end == "discarded":
            run.save_checkpoint({"x": jnp.zeros(2)}, iteration=0)
        else:
            run.restore_aside()
    assert (run.aside_path / "notes" / "mine.txt").read_text() == "mine"
    assert {p.relative_to(run.aside_path).as_posix() for p in run.aside_path.rglob("*")} == theirs
    assert theirs >= {"empty", "irf.json", "export/mine.csv", "plots/policy.png", "notes/mine.txt"}
    if end == "put back":
        assert {k: v for k, v in _without_lock(run_copy).items() if not k.startswith(".mfax-replaced/")} == before
    else:
        assert run.has_checkpoint() and not (run_copy / ".mfax-replaced.discard").exists()
    # the folder is the user's now: never moved nor removed, and a new --overwrite is refused in one line
    now = _without_lock(run_copy)
    run.settle()
    with run.lock():
        pass
    assert _without_lock(run_copy) == now
    with pytest.raises(GameError, match="is where it sets the replaced run aside; move it"):
        run.set_aside()


def test_an_empty_set_aside_folder_a_kill_left_does_not_block_the_next_overwrite(run_copy):
    """Killed between creating the set-aside folder and writing its start mark (or after
    removing its last mark)."""
    (run_copy / ".mfax-replaced").mkdir()
    run = RunDir(run_copy)
    assert run.set_aside() and rundir_module.is_aside(run.aside_path)


@pytest.mark.parametrize("end", ["discard", "restore"])
def test_a_kill_while_the_set_aside_folder_is_cleared_leaves_it_marked(run_copy, monkeypatch, end):
    """The marks were removed before the emptied sub-folders: a kill between left
    ``.mfax-replaced/plots/`` unmarked, which no command removed and every later
    --overwrite refused as a folder mfax did not write (found by a review)."""
    _mfax_figure(run_copy / "plots" / "mean_field.png")  # (the old run's figure)
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    assert run.set_aside() and (run.aside_path / "plots").is_dir()
    run.start_new(resolve(TINY), overwrite=True)
    real = rundir_module.Path.rmdir

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir_module.Path, "rmdir", killed)
    with pytest.raises(KeyboardInterrupt):
        if end == "discard":
            run.save_checkpoint({"x": jnp.zeros(2)}, iteration=0)
        else:
            run.restore_aside()
    monkeypatch.setattr(rundir_module.Path, "rmdir", real)
    assert rundir_module.is_aside(run.aside_path)
    with pytest.warns(
        mfax.MfaxWarning, match=f"^{'removed' if end == 'discard' else 'put back'} the run that a killed"
    ):
        run.settle()
    assert not run.aside_path.exists()
    if end == "restore":
        assert _without_lock(run_copy) == before
    assert run.set_aside()


def test_a_link_put_into_the_set_aside_folder_is_never_followed(run_copy, tmp_path):
    """The start mark's list is read back from the folder: a folder of it replaced by a
    link to elsewhere must not take the files there for the run's."""
    before = _without_lock(run_copy)
    run = RunDir(run_copy)
    (run_copy / "checkpoints").mkdir()
    run._write_checkpoint(run.kept_checkpoint_path(2), b"kept", 2)  # (the run's own: its digest beside it)
    assert run.set_aside()
    run.start_new(resolve(TINY), overwrite=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "iteration-00000002.eqx").write_bytes(b"theirs")
    os.rename(run.aside_path / "checkpoints", tmp_path / "moved")
    (run.aside_path / "checkpoints").symlink_to(elsewhere)
    with pytest.warns(mfax.MfaxWarning, match="it holds what mfax did not write \\('checkpoints'\\)"):
        run.restore_aside()
    assert (elsewhere / "iteration-00000002.eqx").read_bytes() == b"theirs"
    assert not (run_copy / "checkpoints").exists()
    assert {k: v for k, v in _without_lock(run_copy).items() if not k.startswith((".mfax", "checkpoints"))} == {
        k: v for k, v in before.items() if not k.startswith("checkpoints")
    }


def test_a_set_aside_an_earlier_mfax_left_unmarked_is_put_back(run_copy):
    """An earlier mfax marked the folder only once every file was there, and unmarked it
    first when putting them back: a kill in either left the run's files in an unmarked
    folder, which the next command put back. Taking every unmarked folder for the user's
    left the run half there (found by a review)."""
    _mfax_figure(run_copy / "plots" / "policy.png")  # (the old run's figure)
    before = _without_lock(run_copy)
    aside = run_copy / ".mfax-replaced"
    (aside / "plots").mkdir(parents=True)
    for name in ("config.json", "code.json", "metrics.csv", "plots/policy.png"):
        os.rename(run_copy / name, aside / name)
    with pytest.warns(mfax.MfaxWarning, match="^put back the run that a killed `mfax train --overwrite`"):
        RunDir(run_copy).settle()
    assert _without_lock(run_copy) == before


def test_what_an_earlier_mfax_left_in_the_discard_folder_is_removed(run_copy):
    """mfax versions before the set-aside's start mark renamed the old run to
    ``.mfax-replaced.discard`` (its completion mark with it), then removed it: what a
    kill left there is still removed by the next command."""
    old = run_copy / ".mfax-replaced.discard"
    (old / "plots").mkdir(parents=True)
    (old / rundir_module.ASIDE_DONE).write_bytes(b"")
    (old / "config.json").write_text("{}")
    _mfax_figure(old / "plots" / "policy.png")  # (mfax's tag)
    (old / "plots" / "mine.png").write_bytes(b"x")  # (not named as mfax's)
    (old / "checkpoints").mkdir()
    (old / "checkpoints" / "iteration-00000001.eqx").write_bytes(b"x")
    before = _without_lock(run_copy)
    with pytest.warns(mfax.MfaxWarning, match="it holds what mfax did not write \\('plots', 'plots/mine.png'\\)"):
        with RunDir(run_copy).lock():
            pass
    assert {p.relative_to(old).as_posix() for p in old.rglob("*")} == {"plots", "plots/mine.png"}
    after = _without_lock(run_copy)
    assert {k: v for k, v in before.items() if not k.startswith(".mfax-replaced")} == {
        k: v for k, v in after.items() if not k.startswith(".mfax-replaced")
    }


def test_keep_removes_only_the_runs_own_kept_checkpoints_and_never_through_a_link(run_copy, tmp_path):
    """``--keep N`` removed every ``checkpoints/iteration-*.eqx`` beyond the N newest by
    name: a user's file, another run's checkpoint copied there, and through a linked
    ``checkpoints`` folder shared by several runs, theirs (a review)."""
    run = RunDir(run_copy)
    held = run.held_iteration(run.checkpoint_path)
    run.kept_dir.mkdir(exist_ok=True)
    for i in (held - 2, held - 1):  # the run's own, older
        run._write_checkpoint(run.kept_checkpoint_path(i), f"own {i}".encode(), i)
    user = run.kept_dir / f"iteration-{held + 1:08d}.eqx"
    user.write_text("userdata")  # named like one, no digest: the user's
    foreign = run.kept_checkpoint_path(held + 3)  # another run's, copied with its digest
    foreign.write_bytes(b"theirs")
    digest = {"sha256": [hashlib.sha256(b"theirs").hexdigest()], "iteration": held + 3, "run_id": "0123456789abcdef"}
    foreign.with_suffix(".json").write_text(json.dumps(digest))
    run.keep_checkpoint(held, 2)
    # the run's own three: the oldest removed; the others' never, nor counted among the two
    assert run.kept_iterations() == [held - 1, held, held + 1, held + 3]
    assert user.read_text() == "userdata" and foreign.read_bytes() == b"theirs"
    recorded = json.loads(run.kept_checkpoint_path(held).with_suffix(".json").read_text())
    assert recorded["run_id"] == rundir_module.run_id_of(run_copy)
    # a linked checkpoints folder: written into, never removed from
    shared = tmp_path / "shared"
    run.kept_dir.rename(shared)
    run.kept_dir.symlink_to(shared)
    run.keep_checkpoint(held, 1)
    assert sorted(p.name for p in shared.iterdir() if p.suffix == ".eqx") == [
        f"iteration-{i:08d}.eqx" for i in (held - 1, held, held + 1, held + 3)
    ]


def test_a_run_without_its_code_json_says_edits_cannot_be_told(run_copy):
    """code.json gone and config.json's seed edited: --resume trained on with the edited
    seed without a word and wrote a new code.json from it, after which the edit could
    not be told at all (a review). A run of an mfax from before code.json is read and
    resumed as it was; the reader is told once."""
    (run_copy / "code.json").unlink()
    with pytest.warns(mfax.MfaxWarning, match="code.json' is missing: whether config.json was edited") as said:
        RunDir(run_copy).load_config()
        RunDir(run_copy).load_config()
    assert len(said) == 1


def test_a_tilde_in_a_path_is_the_home_folder_on_the_command_line_and_in_the_api(run_copy, tmp_path, monkeypatch):
    """``--out=~/x`` (bash leaves a ``~`` after ``=`` as it is) and ``out="~/x"`` made a
    folder named ``~`` in the current one (a review)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    shutil.move(run_copy, home / "run")
    assert runner.invoke(app, ["export", "~/run", "--out=~/x.npz"]).exit_code == 0
    assert (home / "x.npz").is_file()
    assert mfax.load("~/run").game.name == "sis"
    assert not (tmp_path / "~").exists()


def test_a_csv_export_named_as_one_csv_file_is_refused_before_a_folder_is_made(run_copy, tmp_path):
    """``export --format csv --out table.csv`` made a folder named table.csv (a review)."""
    target = tmp_path / "table.csv"
    line = one_error_line(
        runner.invoke(app, ["export", str(run_copy), "--format", "csv", "--out", str(target)]),
        "a csv export is a folder of CSV files",
    )
    assert "name the folder, for example" in line and str(tmp_path / "table") in line
    assert not target.exists()


@pytest.mark.parametrize("name", ["metrics.jsonl", "config.json", "provenance.json"])
def test_a_named_pipe_in_place_of_a_runs_file_is_named_not_waited_on(run_copy, name):
    """A named pipe (or a link to a device) where a run's file was made ``mfax eval``
    wait forever on its read (a review)."""
    (run_copy / name).unlink()
    os.mkfifo(run_copy / name)
    result = subprocess.run(
        [sys.executable, "-c", "from mfax.run.cli import main; main()", "eval", str(run_copy)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    if name == "provenance.json":  # (a record of the setup only: the run is read without it)
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and "is a named pipe, not a file mfax wrote" in result.stderr, result.stderr


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_lock_that_cannot_be_made_names_the_folder_and_why(run_copy, monkeypatch, code):
    """A resume in a folder the user cannot write said only "cannot lock ...: Permission
    denied" (a review): the line names the folder, read-only or not writable, and a way on."""
    opened = os.open

    def refusing(path, *args, **kwargs):
        if str(path).endswith(rundir_module.LOCK):
            raise OSError(code, os.strerror(code), str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(rundir_module.os, "open", refusing)
    why = "read-only file system" if code == errno.EROFS else "not writable here"
    line = one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), why)
    assert f"cannot write in run directory {str(run_copy)!r}" in line and "copy the folder" in line


def test_eval_of_an_edited_record_says_it_was_edited_not_that_the_code_changed(run_copy):
    """A figure edited in metrics.jsonl made ``mfax eval`` guess that the game's code or
    mfax had changed (a review); metrics.csv, written beside it, says which was edited."""
    rows = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    rows[-1]["exploitability"] = 0.1
    (run_copy / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = runner.invoke(app, ["eval", str(run_copy)])
    assert result.exit_code == 0, result.output
    assert "0.1 when it was trained" in result.stderr
    assert "metrics.csv and metrics.jsonl disagree (exploitability at iteration 2 of run 0:" in result.stderr
    assert "changed since" not in result.stderr


def test_a_corrupt_provenance_record_is_kept_aside_when_a_resume_starts_a_new_one(run_copy):
    """A resume replaced an unreadable provenance.json silently (a review): the earlier
    sessions' setups it may hold are kept beside it, and a warning says where."""
    (run_copy / "provenance.json").write_text('{"jax": "0.4", "resumed": [')
    result = runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET])
    assert result.exit_code == 0, result.output
    assert "'provenance.json.unreadable'" in result.stderr and "a new record started" in result.stderr
    assert (run_copy / "provenance.json.unreadable").read_text() == '{"jax": "0.4", "resumed": ['
    assert "jax" in json.loads((run_copy / "provenance.json").read_text())["resumed"][0]
    (run_copy / "provenance.json").write_text("[]")  # a second time: a new name, the first kept
    assert runner.invoke(app, ["train", "--resume", str(run_copy), "--iterations", "6", *QUIET]).exit_code == 0
    assert (run_copy / "provenance.json.unreadable-2").read_text() == "[]"
    assert (run_copy / "provenance.json.unreadable").is_file()


def test_a_write_that_fails_mid_training_says_what_is_kept_and_how_to_go_on(run_copy, monkeypatch):
    """A full disk at a checkpoint said only "cannot write ...: No space left on device"
    (a review): the line names the checkpoint kept and the resume that goes on from it."""
    real_replace = os.replace

    def full(src, dst):
        if os.path.basename(dst) == "checkpoint.eqx":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(rundir_module.os, "replace", full)
    line = one_error_line(runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]), "No space left on device")
    assert f"(writing iteration 4; stopped, last good checkpoint (iteration 2) kept in {str(run_copy)!r}" in line
    assert f"`mfax train --resume {run_copy}` goes on from it" in line
    monkeypatch.undo()
    assert RunDir(run_copy).held_iteration(run_copy / "checkpoint.eqx") == 2
    assert runner.invoke(app, ["train", "--resume", str(run_copy), *QUIET]).exit_code == 0


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_an_export_that_fails_to_write_names_where_and_what_is_left(run_copy, tmp_path, monkeypatch, fmt):
    """A CSV export on a full disk said "No space left on device" and no path (a review)."""
    from pathlib import Path

    target = tmp_path / ("out" if fmt == "csv" else "out.npz")
    assert runner.invoke(app, ["export", str(run_copy), "--format", fmt, "--out", str(target)]).exit_code == 0
    before = tree(target) if fmt == "csv" else {"": target.read_bytes()}

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    args = ["export", str(run_copy), "--format", fmt, "--out", str(target), "--overwrite"]
    line = one_error_line(runner.invoke(app, args), "No space left on device")
    assert str(target) in line and "the earlier export there is as it was" in line
    monkeypatch.undo()
    assert (tree(target) if fmt == "csv" else {"": target.read_bytes()}) == before


def test_a_resume_says_which_rows_recorded_after_the_last_checkpoint_it_drops(run_copy):
    """Rows written after the last checkpoint (a kill between the metrics and the
    checkpoint) were dropped silently by a resume (a review)."""
    rows = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    with (run_copy / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({**rows[-1], "iteration": 4}) + "\n")
    with pytest.warns(mfax.errors.MfaxWarning) as said:
        train(TrainConfig(), run_copy, resume=True, progress=False, stop_after=2)
    assert any(
        f"dropped the metrics rows of iteration 4 from {str(run_copy)!r}: they were recorded after its last "
        "checkpoint (iteration 2)" in str(w.message)
        for w in said
    )
    assert [r["iteration"] for r in RunDir(run_copy).read_metrics()] == [0, 2]


def test_resume_of_an_empty_name_or_a_file_says_so(tmp_path):
    """``--resume ''`` said "'.' is not a run directory", and a file "not a run directory
    (no mfax run there)" where eval says it is a file (a review)."""
    one_error_line(runner.invoke(app, ["train", "--resume", "", *QUIET]), "--resume is empty; name the run directory")
    (tmp_path / "afile").write_text("x")
    one_error_line(
        runner.invoke(app, ["train", "--resume", str(tmp_path / "afile"), *QUIET]),
        f"{str(tmp_path / 'afile')!r} is a file, not a run directory; name the folder of a run",
    )


def test_solve_macro_does_not_write_its_results_into_a_run_or_a_study(run_copy, tmp_path):
    """``solve-macro --out RUN`` added macro_equilibrium.json and prices.png to a training
    run (or a tune study), where train, export and tune refuse such folders (a review)."""
    study = tmp_path / "study"
    study.mkdir()
    (study / rundir_module.TUNE_MARKER).write_text("{}")
    for folder, held in ((run_copy, "a training run"), (study, "a tune study")):
        before = tree(folder)
        args = ["solve-macro", "--set", "num_wealth=8", "--set", "horizon=4", "--out", str(folder)]
        one_error_line(runner.invoke(app, args), f"--out {str(folder)!r} holds {held}; give solve-macro a folder")
        assert tree(folder) == before
