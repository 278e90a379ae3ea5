"""The installed package as a user meets it: the ``mfax`` console script, the progress
bar, a resumed checkpoint, a TensorBoard log. Part of the smoke subset
(``pytest -m smoke``) that CI runs against the lowest dependency versions declared in
pyproject.toml."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_NETWORK
from mfax.run.config import TrainConfig
from mfax.run.rundir import RunDir
from mfax.run.train import train

MFAX = Path(sys.executable).parent / "mfax"  # the console script installed next to this interpreter


def _mfax(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MFAX), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.smoke
def test_console_script_help_and_eval():
    help_text = _mfax("train", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "--resume" in help_text.stdout and "--algo" in help_text.stdout
    result = _mfax("eval", "--game", "linear_quadratic", "--policy", "uniform", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)  # stdout is the JSON object alone (`mfax eval --json | jq` works)
    assert "exploitability (per path" in result.stderr  # the report for a reader, on stderr
    assert record["noise"] == "exact" and math.isfinite(record["exploitability"]) and record["exploitability"] > 0


@pytest.mark.smoke
def test_resume_from_checkpoint_with_progress_bar_and_tensorboard(tmp_path, capsys):
    config = TrainConfig(
        game="linear_quadratic", algo="spg", iterations=2, eval_every=1, hparams=TINY_NETWORK, log_to=["tensorboard"]
    )
    out = tmp_path / "run"
    train(config, out, progress=True, stop_after=1)
    assert "1/2" in capsys.readouterr().err
    summary = train(TrainConfig(), out, resume=True, progress=True)
    assert "2/2" in capsys.readouterr().err and summary["iterations"] == 2
    assert [row["iteration"] for row in RunDir(out).read_metrics()] == [0, 1, 2]
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
