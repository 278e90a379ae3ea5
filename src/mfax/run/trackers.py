"""Optional experiment trackers: TensorBoard and Weights & Biases, off by default.

``mfax train --log-to tensorboard`` (needs ``pip install 'mfax[tensorboard]'``, i.e.
tensorboardX) writes event files under ``RUN/tensorboard/<run>/``, one folder per
trained run (seed x learning rate) so TensorBoard overlays them; ``--log-to wandb``
(``pip install 'mfax[wandb]'``) logs to one W&B run whose id is kept in
``RUN/wandb_id`` so that ``--resume`` continues it. W&B honours its own environment
(``WANDB_MODE=offline``, ``WANDB_PROJECT``, ...); the project defaults to ``mfax``.

Trackers only mirror what the run directory already records (the metric rows of
:mod:`mfax.run.rundir`, with the columns of :mod:`mfax.run.columns`): the CSV/JSONL files
stay the reference, and a tracker that fails to import stops the run before training
starts with a one-line error.
"""

from __future__ import annotations

import importlib.util
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any, Protocol

from mfax.errors import GameError
from mfax.run.columns import PARAMS, SCALARS

TRACKERS = {"tensorboard": "tensorboardX", "wandb": "wandb"}


class Tracker(Protocol):
    def log(self, rows: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def check_trackers(names: list[str]) -> None:
    """One-line errors for unknown trackers or missing optional packages."""
    for name in names:
        if name not in TRACKERS:
            raise GameError(f"unknown tracker {name!r} for --log-to; allowed: {', '.join(TRACKERS)}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise GameError(
                f"--log-to {name} needs the {TRACKERS[name]} package: pip install 'mfax[{name}]' (or leave it off)"
            )


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's figures a tracker logs: the finite numbers. A figure a solver does not
    have (``train_exploitability`` of IPPO, RIPPO, M-OMD: NaN by design, ``null`` in
    metrics.jsonl) is left out, as metrics.jsonl leaves it (tensorboardX warned "NaN or
    Inf found in input tensor" for it); training stops before recording a non-finite
    evaluation, so nothing else is dropped."""
    return {k: float(row[k]) for k in SCALARS if isinstance(row.get(k), int | float) and math.isfinite(float(row[k]))}


def _run_name(row: dict[str, Any]) -> str:
    lr = row.get("lr")
    swept = "".join(f"_{k}{v:g}" if isinstance(v, float) else f"_{k}{v}" for k, v in (row.get(PARAMS) or {}).items())
    return f"run{row['run']}_seed{row['seed']}" + ("" if lr is None else f"_lr{lr:g}") + swept


class TensorBoardTracker:
    """One tensorboardX writer per trained run, step = iteration. A resumed run (``start``:
    the iteration it continues from) purges the earlier sessions' events from ``start`` on
    (a killed session may have logged beyond its checkpoint) and logs ``recorded``, the
    metric rows at ``start``, again: TensorBoard then holds every row metrics.csv has."""

    def __init__(self, root: Path, start: int | None, recorded: list[dict[str, Any]] = ()):
        self.root, self.start, self.writers = root / "tensorboard", start, {}
        self.log(list(recorded))

    def log(self, rows: list[dict[str, Any]]) -> None:
        from tensorboardX import SummaryWriter

        for row in rows:
            name = _run_name(row)
            earlier = _run_name({k: v for k, v in row.items() if k != PARAMS})
            if name not in self.writers and not (self.root / name).exists() and (self.root / earlier).is_dir():
                name = earlier  # a sweep begun by an mfax that did not name the values: one curve per run
            if name not in self.writers:
                # flush_secs: tensorboardX's writer thread takes events off its queue and
                # writes them to disk every flush_secs (120 by default): a process killed in
                # the meantime lost the rows metrics.csv has
                # filename_suffix: tensorboardX names a file by the second it was opened, so a
                # session within the second of the one before wrote over its file; the
                # nanoseconds keep the names apart and in order (TensorBoard reads them so)
                self.writers[name] = SummaryWriter(
                    logdir=str(self.root / name),
                    purge_step=self.start,
                    flush_secs=1,
                    filename_suffix=f".{time.time_ns():020d}",
                )
            writer = self.writers[name]
            for key, value in _scalars(row).items():
                writer.add_scalar(key, value, global_step=int(row["iteration"]))
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class WandbTracker:
    """One W&B run for the whole training; keys prefixed ``run<r>/`` when several runs
    (seeds x learning rates) train together. A resume continues the W&B run, which kept
    the rows at the resumed iteration (logged before their checkpoint was written); W&B
    cannot drop what a killed session logged after its last checkpoint (SIGKILL only:
    Ctrl-C and SIGTERM wait for the checkpoint), which the resumed session then logs
    again at the same steps."""

    def __init__(self, root: Path, config: dict[str, Any], num_runs: int):
        import wandb

        id_path = root / "wandb_id"
        run_id = id_path.read_text().strip() if id_path.exists() else secrets.token_hex(4)
        id_path.write_text(run_id + "\n")
        self.num_runs = num_runs
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "mfax"),
            dir=str(root),
            id=run_id,
            resume="allow",
            config=config,
            name=root.name,
        )

    def log(self, rows: list[dict[str, Any]]) -> None:
        by_iteration: dict[int, dict[str, float]] = {}
        for row in rows:
            prefix = "" if self.num_runs == 1 else f"run{row['run']}/"
            record = by_iteration.setdefault(int(row["iteration"]), {})
            record.update({prefix + k: v for k, v in _scalars(row).items()})
        for iteration, record in sorted(by_iteration.items()):
            self.run.log({"iteration": iteration, **record}, step=iteration)

    def close(self) -> None:
        self.run.finish()


def open_trackers(
    names: list[str],
    root: Path,
    config: dict[str, Any],
    num_runs: int,
    start: int | None,
    recorded: list[dict[str, Any]] = (),
) -> list[Tracker]:
    """The trackers ``names``; ``start``: the iteration a resume continues from (``None``:
    a new run), ``recorded``: the run's metric rows at ``start``."""
    check_trackers(names)
    out: list[Tracker] = []
    for name in names:
        if name == "tensorboard":
            out.append(TensorBoardTracker(root, start, recorded))
        else:
            out.append(WandbTracker(root, config, num_runs))
    return out
