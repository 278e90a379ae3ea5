"""Two local processes joined by jax.distributed (127.0.0.1, gloo collectives on CPU)
train the same run as one process, and agree before training (slow); the agreement's
decisions on simulated processes (default tier)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from mfax.games import GameError
from mfax.run.rundir import RunDir

ARGS = [
    "train",
    "--game",
    "beach_bar",
    "--set",
    "num_states=21",
    "--set",
    "horizon=8",
    "--iterations",
    "4",
    "--eval-every",
    "2",
    "--noise",
    "exact",
    "--lr",
    "1e-2",
    "--no-progress",
    "--no-plots",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "mfax.run.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # three training processes, two of them joined through jax.distributed
def test_two_processes_train_the_same_run_as_one(tmp_path):
    single = _cli(*ARGS, "--out", str(tmp_path / "single"))
    assert single.wait(timeout=300) == 0, single.stderr.read()[-2000:]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        _cli(
            *ARGS,
            "--out",
            str(tmp_path / "multi"),
            "--coordinator",
            f"127.0.0.1:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
            env=env,
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-3000:]
    # process 1 writes nothing and says so (it printed nothing of its own)
    said = procs[1].stdout.read()
    assert f"process 1 of 2: computing its share; process 0 writes the run directory {tmp_path / 'multi'}" in said
    a, b = RunDir(tmp_path / "single").read_metrics(), RunDir(tmp_path / "multi").read_metrics()
    assert len(a) == len(b) == 3  # iterations 0, 2, 4 written once
    for x, y in zip(a, b, strict=True):
        for key in ("exploitability", "exploitability_info", "policy_return"):
            assert abs(x[key] - y[key]) <= 1e-4 * max(1.0, abs(x[key])), (key, x, y)


def _two(tmp_path, first: list[str], second: list[str], extra_env=None):
    """Run ``first`` as process 0 and ``second`` as process 1 of one multi-host run;
    returns their (status, stderr)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | (extra_env or {})
    join = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [_cli(*args, *join, "--process-id", str(i), env=env) for i, args in enumerate((first, second))]
    return [(p.wait(timeout=240), p.stderr.read()) for p in procs]


@pytest.mark.slow  # processes joined through jax.distributed
def test_processes_started_otherwise_refuse_and_one_stopped_alone_is_named(tmp_path):
    """Processes started with different settings (--seed 5 on one) trained a mixture of
    the two, silently, with config.json naming one; a process stopped before training (a
    bad --set on it, or a run directory process 0 refuses) left the others blocked in the
    first collective until a timeout (30-50 s), then a traceback. Every process now
    agrees before training: one line each, status 2, nothing trained."""
    out = ["--out", str(tmp_path / "run")]
    results = _two(tmp_path, [*ARGS, *out], [*ARGS, *out, "--seed", "5"])
    for code, err in results:
        assert code == 2, err[-2000:]
        assert "were not started with the same settings (differing from process 0's: process 1: seed)" in err
    assert not RunDir(tmp_path / "run").has_checkpoint()
    (code0, err0), (code1, err1) = _two(tmp_path, [*ARGS, *out], [*ARGS, *out, "--set", "nosuch=3"])
    assert code1 == 2 and "unknown parameter 'nosuch'" in err1
    assert code0 == 2 and "process 1 of the multi-host run stopped before training: unknown parameter 'nosuch'" in err0
    assert "Traceback" not in err0 + err1
    # what only process 0 uses need not agree; an error process 0 alone meets after opening
    # the run (an edited metrics file, read on resume) is heard by the other
    for code, err in _two(tmp_path, [*ARGS, *out, "--overwrite", "--keep", "2"], [*ARGS, *out, "--overwrite"]):
        assert code == 0, err[-2000:]
    csv = tmp_path / "run" / "metrics.csv"
    csv.write_text(csv.read_text().replace(",", ";", 3))
    (code0, err0), (code1, err1) = _two(tmp_path, ["train", "--resume", out[1]], ["train", "--resume", out[1]])
    assert code0 == 2 and code1 == 2, err0[-1500:] + err1[-1500:]
    assert "process 0 of the multi-host run stopped before training" in err1 and "Traceback" not in err0 + err1
    # --devices below every process's devices: a host without one, or every host all paths
    other = ["--out", str(tmp_path / "other")]
    for code, err in _two(tmp_path, [*ARGS, *other, "--devices", "1"], [*ARGS, *other, "--devices", "1"]):
        assert code == 2 and "a multi-host run computes on every device of its 2 processes (2)" in err, err[-2000:]


def _as_process(monkeypatch, index: int, others: list | None):
    """Simulate process ``index`` of two: the all-gathers return this process's array
    with ``others``' (recorded from the other process's call; ``None``: record only)."""
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    from mfax import sharding

    sent: list = []

    def gather(x):
        x = np.asarray(x)
        sent.append(x)
        if others is None:
            return np.stack([x, x])
        theirs = others[len(sent) - 1]
        longest = max(x.shape[0], theirs.shape[0])
        pad = [np.pad(a, (0, longest - a.shape[0])) for a in (x, theirs)]
        return np.stack(pad[::-1] if index == 1 else pad)

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: index)
    monkeypatch.setattr(multihost_utils, "process_allgather", gather)
    sharding.new_agreement()
    return sent


def test_the_agreement_names_the_settings_that_differ_and_the_process_that_stopped(monkeypatch):
    """What every process of a multi-host run decides before training, on simulated
    processes: the same settings pass; another seed is named; a process that stopped
    first is named with its error; each process agrees once per training."""
    from mfax import sharding

    ours = {"game": "beach_bar", "seed": 0, "lr": [0.01], "params": {"a": 1, "b": 2}}
    theirs = _as_process(monkeypatch, 1, None)
    sharding.agree({**ours, "params": {"b": 2, "a": 1}})  # (another order: the same settings)
    _as_process(monkeypatch, 0, theirs)
    sharding.agree(ours)
    assert not sharding.agreement_pending()
    sharding.agree({**ours, "seed": 5})  # (once per training: agreed already)

    theirs = _as_process(monkeypatch, 1, None)
    sharding.agree({**ours, "seed": 5, "lr": [0.02]})
    _as_process(monkeypatch, 0, theirs)
    differ = r"not started with the same settings \(differing from process 0's: process 1: lr, seed\)"
    with pytest.raises(GameError, match=differ):
        sharding.agree(ours)

    theirs = _as_process(monkeypatch, 1, None)
    long = "unknown parameter 'nosuch' for game 'beach_bar' \u00e9" + "x" * 500
    sharding.agree(None, GameError(long + "\nsecond line"))
    _as_process(monkeypatch, 0, theirs)
    stopped = (
        r"process 1 of the multi-host run stopped before training: unknown parameter 'nosuch' for game "
        r"'beach_bar' \u00e9x+\u2026; nothing was trained \(this is process 0\)$"
    )
    with pytest.raises(GameError, match=stopped):
        sharding.agree(ours)
    sharding.new_agreement()


def test_empty_multi_host_settings_are_unset_or_refused(monkeypatch):
    """An empty environment variable is unset, as ``VAR= command`` means in a shell: an
    empty MFAX_COORDINATOR was ignored but an empty MFAX_NUM_PROCESSES refused as not an
    integer; an empty ``--coordinator`` joined nothing, silently. (JAX's joining is
    simulated: what it would be asked is recorded.)"""
    import jax

    from mfax import sharding

    asked = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: asked.append(kwargs))
    before = jax.config.jax_cpu_collectives_implementation
    for name in ("MFAX_COORDINATOR", "MFAX_NUM_PROCESSES", "MFAX_PROCESS_ID"):
        monkeypatch.setenv(name, " ")
    try:
        sharding.initialize_distributed()
        monkeypatch.setenv("MFAX_NUM_PROCESSES", "2")
        sharding.initialize_distributed("10.0.0.1:1234", process_id=1)
    finally:
        jax.config.update("jax_cpu_collectives_implementation", before)
    none = dict(coordinator_address=None, num_processes=None, process_id=None)
    assert asked == [none, dict(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1)]
    with pytest.raises(GameError, match=r"^the coordinator is empty; name it as HOST:PORT"):
        sharding.initialize_distributed("")
