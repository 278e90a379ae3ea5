"""Optional trackers (TensorBoard, W&B): off by default, one-line errors, and what they
log equals the run directory's metrics, across a resume too."""

from __future__ import annotations

import importlib.util
import json
import struct

import pytest

from conftest import TINY_NETWORK
from mfax.errors import MfaxWarning
from mfax.games import GameError
from mfax.run import trackers
from mfax.run.config import TrainConfig, resolve
from mfax.run.rundir import RunDir
from mfax.run.train import train

SMALL = dict(obs_embed=16, gru_hidden=16, state_embed=8, aggregate_embed=8, mlp_width=16)
BASE = dict(
    game="beach_bar",
    params={"num_states": 21, "horizon": 10},
    iterations=8,
    eval_every=4,
    noise="exact",
    hparams=SMALL,
)
# a short run (two evaluations after 0) of a small beach bar, for the resume tests
SHORT = {**BASE, "params": {"num_states": 11, "horizon": 6}, "iterations": 4, "eval_every": 2}


def test_off_by_default_and_bad_names(tmp_path):
    assert resolve(TrainConfig()).log_to == []
    with pytest.raises(GameError, match=r"unknown tracker 'mlflow' for --log-to; allowed: tensorboard, wandb"):
        resolve(TrainConfig(log_to=["mlflow"]))


def test_a_tracker_named_twice_is_refused_before_its_package_and_unknown_names_first():
    """`--log-to tensorboard,tensorboard` opened two writers: every row twice in each folder;
    `--log-to wandb,mlflow` said wandb was missing, not that mlflow is no tracker."""
    with pytest.raises(GameError, match=r"--log-to names 'tensorboard' twice; name each tracker once"):
        trackers.check_trackers(["tensorboard", "tensorboard"])
    with pytest.raises(GameError, match=r"unknown tracker 'mlflow'"):
        trackers.check_trackers(["wandb", "mlflow"])


def test_a_package_that_fails_to_import_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    """An installed tracker package that raised on import (a version conflict) ended the
    run in a traceback, after its directory was opened."""
    package = tmp_path / "site" / "broken_tracker_for_mfax"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('needs protobuf>=9')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(trackers.TRACKERS, "tensorboard", "broken_tracker_for_mfax")
    message = (
        r"--log-to tensorboard: the broken_tracker_for_mfax package is installed but failed to import "
        r"\(ImportError: needs protobuf>=9\)"
    )
    with pytest.raises(GameError, match=message):
        train(TrainConfig(**BASE, log_to=["tensorboard"]), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    # the commands that only read a run never import it (they never log)
    monkeypatch.undo()
    out = tmp_path / "trained"
    short = {**SHORT, "iterations": 1, "eval_every": 1, "hparams": TINY_NETWORK}  # (only its config.json is read)
    train(TrainConfig(**short, log_to=["tensorboard"]), out)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(trackers.TRACKERS, "tensorboard", "broken_tracker_for_mfax")
    assert RunDir(out).load_config().log_to == ["tensorboard"]


def test_missing_package_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(trackers.TRACKERS, "tensorboard", "no_such_package_for_mfax")
    message = r"needs the no_such_package_for_mfax package: pip install 'mfax\[tensorboard\]'"
    with pytest.raises(GameError, match=message):
        train(TrainConfig(**BASE, log_to=["tensorboard"]), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing written before the error


def _records(path):
    """The ``Event`` protos of one event file: TFRecord framing (u64 length, u32 crc, data,
    u32 crc) around each; and whether each is a restart (``SessionLog START``, a writer's
    purge_step: TensorBoard drops the steps >= its step read before it)."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    data, pos = path.read_bytes(), 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = Event.FromString(data[pos + 12 : pos + 12 + length])
        pos += 12 + length + 4
        yield event, event.HasField("session_log") and event.session_log.status == SessionLog.START


def _events(folder) -> dict[int, dict[str, float]]:
    """Scalars of all event files in ``folder``, as TensorBoard shows them (by step)."""
    out: dict[int, dict[str, float]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event, restart in _records(path):
            if restart:
                out = {step: values for step, values in out.items() if step < event.step}
            for value in event.summary.value:
                out.setdefault(event.step, {})[value.tag] = value.simple_value
    return out


@pytest.mark.slow  # the default tier logs to TensorBoard across a resume in test_installed.py
@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_tensorboard_mirrors_metrics_across_resume(tmp_path):
    config = TrainConfig(**BASE, seeds=2, log_to=["tensorboard"])
    out = tmp_path / "run"
    train(config, out, progress=False, stop_after=4)
    train(TrainConfig(), out, resume=True, progress=False)
    rows = RunDir(out).read_metrics()
    for r in (0, 1):
        logged = _events(out / "tensorboard" / f"run{r}_seed{r}_lr0.001")
        mine = {row["iteration"]: row for row in rows if row["run"] == r}
        assert sorted(logged) == sorted(mine) == [0, 4, 8]
        for iteration, row in mine.items():
            assert logged[iteration]["exploitability"] == pytest.approx(row["exploitability"], rel=1e-6)
            assert logged[iteration]["policy_return"] == pytest.approx(row["policy_return"], rel=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_tensorboard_keeps_the_evaluation_at_the_resumed_iteration(tmp_path, monkeypatch):
    """A resume purges the earlier session's events from its checkpoint on (a killed
    session may have logged beyond it) and logs the row at the checkpoint again. Within
    the second of the session before (tensorboardX names files by the second), it wrote
    over that session's file: the rows before the checkpoint were lost (seen as a flaky
    test; the clock is held here)."""
    import types

    import tensorboardX.event_file_writer as event_file_writer

    held = types.SimpleNamespace(time=lambda: 1_765_000_000.0)  # tensorboardX's clock only
    monkeypatch.setattr(event_file_writer, "time", held)
    config = TrainConfig(**SHORT, log_to=["tensorboard"])
    out = tmp_path / "run"
    train(config, out, progress=False, stop_after=2)
    train(TrainConfig(), out, resume=True, progress=False)
    logged = _events(out / "tensorboard" / "run0_seed0_lr0.001")
    rows = {row["iteration"]: row for row in RunDir(out).read_metrics()}
    assert sorted(logged) == sorted(rows) == [0, 2, 4]
    assert all(logged[k]["exploitability"] == pytest.approx(row["exploitability"], rel=1e-6) for k, row in rows.items())


def _legacy_view(paths, tag: str = "exploitability", seen=None) -> list[tuple[int, float]]:
    """What TensorBoard's legacy loader holds for ``tag`` after reading ``paths`` in order
    (on top of ``seen``, what it had read before: a TensorBoard left running): every event
    appended, a restart at step s dropping those at steps >= s; duplicates show (unlike
    :func:`_events`)."""
    out = list(seen or [])
    for path in paths:
        for event, restart in _records(path):
            if restart:
                out = [(step, v) for step, v in out if step < event.step]
            out += [(event.step, v.simple_value) for v in event.summary.value if v.tag == tag]
    return out


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_a_tensorboard_left_running_across_a_resume_shows_each_row_once(tmp_path, monkeypatch):
    """A TensorBoard left running (legacy loader) keeps the rows of files it read even once
    they are removed: the rows written again must carry a restart record (purge from 0),
    or it showed rows 0..checkpoint twice. A removal that fails is said (the folder then
    holds an earlier session's rows too)."""
    config = TrainConfig(**SHORT, log_to=["tensorboard"])
    out = tmp_path / "run"
    folder = out / "tensorboard" / "run0_seed0_lr0.001"
    _tensorboard_clock(monkeypatch, 1_700_000_000.0)
    train(config, out, progress=False, stop_after=2)
    running = _legacy_view(sorted(folder.iterdir()))
    assert [step for step, _ in running] == [0, 2]
    _tensorboard_clock(monkeypatch, 1_700_000_100.0)
    train(TrainConfig(), out, resume=True, progress=False)
    rows = RunDir(out).read_metrics()
    view = _legacy_view(sorted(folder.iterdir()), seen=running)
    assert view == [(row["iteration"], pytest.approx(row["exploitability"], rel=1e-6)) for row in rows]
    # an earlier file that cannot be removed: said, with its name
    from pathlib import Path

    real = Path.unlink

    def refused(self, missing_ok=False):
        if self.name.startswith("events.out.tfevents."):
            raise PermissionError(13, "Permission denied")
        real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refused)
    _tensorboard_clock(monkeypatch, 1_700_000_200.0)
    with pytest.warns(MfaxWarning, match=r"could not remove an earlier session's TensorBoard event file: .*Permission"):
        train(TrainConfig(), out, resume=True, progress=False)


def _tensorboard_clock(monkeypatch, seconds: float) -> None:
    """Hold tensorboardX's clock (what names its files) at ``seconds``."""
    import types

    import tensorboardX.event_file_writer as event_file_writer

    monkeypatch.setattr(event_file_writer, "time", types.SimpleNamespace(time=lambda: seconds))


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_a_resume_with_the_clock_set_back_shows_the_runs_rows_and_not_a_killed_sessions(tmp_path, monkeypatch):
    """A resumed session whose clock was behind the killed one's named its event file
    before that session's: TensorBoard read the killed session's file last and showed
    its rows beyond the checkpoint (RustBoard: only those). A session now writes the rows
    up to its checkpoint again into a file of its own and removes the earlier sessions'
    files (a user's own file in the folder stays)."""
    from tensorboardX import SummaryWriter

    config = TrainConfig(**SHORT, log_to=["tensorboard"])
    out = tmp_path / "run"
    folder = out / "tensorboard" / "run0_seed0_lr0.001"
    _tensorboard_clock(monkeypatch, 1_800_000_000.0)
    train(config, out, progress=False, stop_after=2)
    # what a session killed after logging iteration 4, before its checkpoint, left
    killed = SummaryWriter(logdir=str(folder), filename_suffix=f".{1_800_000_100 * 10**9:020d}")
    killed.add_scalar("exploitability", 999.0, global_step=4)
    killed.close()
    (folder / "events.out.tfevents.mine").write_bytes(b"")  # not mfax's: kept
    _tensorboard_clock(monkeypatch, 1_700_000_000.0)  # the clock set back
    train(TrainConfig(), out, resume=True, progress=False)
    rows = {row["iteration"]: row for row in RunDir(out).read_metrics()}
    names = sorted(p.name for p in folder.iterdir())
    assert names[-1] == "events.out.tfevents.mine"
    assert all(name.startswith("events.out.tfevents.1700000000.") for name in names[:-1]), names
    (folder / "events.out.tfevents.mine").unlink()
    logged = _events(folder)
    assert sorted(logged) == sorted(rows) == [0, 2, 4]
    assert all(logged[k]["exploitability"] == pytest.approx(row["exploitability"], rel=1e-6) for k, row in rows.items())
    # an overwrite sets the files aside, folders of an exact solver's sweep (no learning rate) included
    sweep = tmp_path / "sweep"
    fp = dict(game="linear_quadratic", params={"num_states": 11, "horizon": 5, "sigma": [0.5, 1.0]}, algo="fp")
    train(TrainConfig(**fp, iterations=2, eval_every=1, log_to=["tensorboard"]), sweep, progress=False)
    first = sorted((sweep / "tensorboard").rglob("events.out.tfevents.*"))
    assert [p.parent.name for p in first] == ["run0_seed0_sigma0.5", "run1_seed0_sigma1"]
    assert set(first) <= set(RunDir(sweep).own_files())
    mine = sweep / "tensorboard" / "run0_seed0_mynotes" / "events.out.tfevents.1700000000.myhost"
    mine.parent.mkdir()
    mine.write_bytes(b"")  # a user's event file (not named as mfax names its own): kept
    _tensorboard_clock(monkeypatch, 1_700_000_500.0)
    train(TrainConfig(**fp, iterations=1, eval_every=1, log_to=["tensorboard"]), sweep, progress=False, overwrite=True)
    assert mine.is_file()
    mine.unlink()
    second = sorted((sweep / "tensorboard").rglob("events.out.tfevents.*"))
    assert not set(first) & set(second) and len(second) == 2
    assert sorted(_events(second[0].parent)) == [0, 1]


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_a_tracker_added_to_a_run_on_resume_gets_every_row(tmp_path):
    """A run given --log-to tensorboard only when resumed (its config.json edited) showed
    the rows from the checkpoint on, not the run's."""
    config = TrainConfig(**SHORT)
    out = tmp_path / "run"
    train(config, out, progress=False, stop_after=2)
    saved = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**saved, "log_to": ["tensorboard"]}))
    train(TrainConfig(), out, resume=True, progress=False)
    logged = _events(out / "tensorboard" / "run0_seed0_lr0.001")
    rows = {row["iteration"]: row for row in RunDir(out).read_metrics()}
    assert sorted(logged) == sorted(rows) == [0, 2, 4]
    assert all(logged[k]["policy_return"] == pytest.approx(row["policy_return"], rel=1e-6) for k, row in rows.items())


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_tensorboard_names_a_sweeps_runs_by_their_values_and_keeps_an_earlier_name(tmp_path):
    """A sweep's runs are named by their swept values; one begun by an mfax that named
    them by run and seed only goes on in its folder (its curves were split in two)."""
    row = {"iteration": 2, "run": 0, "seed": 0, "lr": None, "params": {"kappa": 0.5}, "exploitability": 1.5}
    (tmp_path / "old" / "tensorboard" / "run0_seed0").mkdir(parents=True)
    for root, name in ((tmp_path / "new", "run0_seed0_kappa0.5"), (tmp_path / "old", "run0_seed0")):
        tracker = trackers.TensorBoardTracker(root)
        tracker.log([row])
        tracker.close()
        assert sorted(p.name for p in (root / "tensorboard").iterdir()) == [name]
        assert _events(root / "tensorboard" / name)[2]["exploitability"] == pytest.approx(1.5)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb not installed")
def test_wandb_offline_run_resumes_the_same_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    train(TrainConfig(**BASE, log_to=["wandb"]), out, progress=False, stop_after=4)
    run_id = (out / "wandb_id").read_text().strip()
    train(TrainConfig(), out, resume=True, progress=False)
    assert (out / "wandb_id").read_text().strip() == run_id
    runs = sorted((out / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 2  # the first session and the resumed one, same id
    # offline runs keep history records (protobufs with JSON values) in run-<id>.wandb
    data = b"".join((run / f"run-{run_id}.wandb").read_bytes() for run in runs)
    for row in RunDir(out).read_metrics():
        assert json.dumps(row["exploitability"]).encode() in data, row


SIGTERM_DURING_RECORD = """
import os, signal, sys
from mfax.run.config import TrainConfig
from mfax.run.rundir import RunDir
from mfax.run.train import train

real, saves = RunDir.save_checkpoint, []

def terminated(self, *args, **kwargs):
    saves.append(1)
    if len(saves) == 2:  # the step after the first chunk: its metrics are written, not its checkpoint
        os.kill(os.getpid(), signal.SIGTERM)
    real(self, *args, **kwargs)

RunDir.save_checkpoint = terminated
small = dict(obs_embed=16, gru_hidden=16, state_embed=8, aggregate_embed=8, mlp_width=16)
config = TrainConfig(game="beach_bar", params={"num_states": 11, "horizon": 6}, iterations=8, eval_every=2,
                     noise="exact", hparams=small, log_to=["tensorboard"])
train(config, sys.argv[1], progress=False)
"""


@pytest.mark.slow  # a second process, killed (in-process: test_train's Ctrl-C in the record step)
@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX not installed")
def test_sigterm_during_the_record_step_leaves_tensorboard_whole(tmp_path):
    """A SIGTERM held over the record step then ended the process by its default action,
    with the step's TensorBoard events still in the writer's queue: metrics.csv ended at
    iteration 2 and TensorBoard had nothing at 2. It now ends the session with exit
    status 143 after the trackers are closed."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING_RECORD, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
    run = RunDir(out)
    rows = {row["iteration"]: row for row in run.read_metrics()}
    assert sorted(rows) == [0, 2] and run.read_summary()["iterations"] == 2
    logged = _events(out / "tensorboard" / "run0_seed0_lr0.001")
    assert sorted(logged) == [0, 2]
    assert all(logged[k]["exploitability"] == pytest.approx(row["exploitability"], rel=1e-6) for k, row in rows.items())


def test_trackers_leave_out_figures_a_solver_does_not_have():
    """IPPO's train_exploitability is NaN by design (null in metrics.jsonl): tensorboardX
    printed "NaN or Inf found in input tensor" for it."""
    row = {"iteration": 2, "exploitability": 1.5, "train_exploitability": float("nan"), "policy_return": None}
    scalars = trackers._scalars(row)
    assert scalars["exploitability"] == 1.5 and "train_exploitability" not in scalars and "policy_return" not in scalars
