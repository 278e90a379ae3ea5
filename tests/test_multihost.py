"""Two local processes joined by jax.distributed (127.0.0.1, gloo collectives on CPU)
train the same run as one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from mfax.run.rundir import RunDir

# Three training processes, two of them joined through jax.distributed.
pytestmark = pytest.mark.slow

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
    a, b = RunDir(tmp_path / "single").read_metrics(), RunDir(tmp_path / "multi").read_metrics()
    assert len(a) == len(b) == 3  # iterations 0, 2, 4 written once
    for x, y in zip(a, b, strict=True):
        for key in ("exploitability", "exploitability_info", "policy_return"):
            assert abs(x[key] - y[key]) <= 1e-4 * max(1.0, abs(x[key])), (key, x, y)
