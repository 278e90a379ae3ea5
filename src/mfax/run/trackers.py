"""Optional experiment trackers: TensorBoard and Weights & Biases, off by default.

``mfax train --log-to tensorboard`` (needs ``pip install 'mfax[tensorboard]'``, i.e.
tensorboardX) writes event files under ``RUN/tensorboard/<run>/``, one folder per
trained run (seed, learning rate, swept values) so TensorBoard overlays them; ``--log-to wandb``
(``pip install 'mfax[wandb]'``) logs to one W&B run whose id is kept in
``RUN/wandb_id`` so that ``--resume`` continues it. W&B honours its own environment
(``WANDB_MODE=offline``, ``WANDB_PROJECT``, ...); the project defaults to ``mfax``.

Trackers only mirror what the run directory already records (the metric rows of
:mod:`mfax.run.rundir`, with the columns of :mod:`mfax.run.columns`): the CSV/JSONL files
stay the reference, and a tracker that fails to import stops the run before training
starts with a one-line error.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Protocol

from mfax.errors import GameError, warn
from mfax.run.columns import PARAMS, SCALARS
from mfax.run.signals import deferred_signals

TRACKERS = {"tensorboard": "tensorboardX", "wandb": "wandb"}


class Tracker(Protocol):
    def log(self, rows: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def check_trackers(names: list[str], imports: bool = False) -> None:
    """One-line errors for unknown trackers, a tracker named twice, and missing optional
    packages; with ``imports`` (a training, before its run directory is opened) each
    package is imported too, so that one installed but failing to import is one line,
    not a traceback once the run is open. The commands that only read a run do not
    import them (they never log)."""
    for name in names:
        if name not in TRACKERS:
            raise GameError(f"unknown tracker {name!r} for --log-to; allowed: {', '.join(TRACKERS)}")
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:  # (two writers: every row twice in the same folder)
        raise GameError(f"--log-to names {twice!r} twice; name each tracker once")
    for name in names:
        package = TRACKERS[name]
        if importlib.util.find_spec(package) is None:
            raise GameError(
                f"--log-to {name} needs the {package} package: pip install 'mfax[{name}]' (or leave it off)"
            )
        if not imports:
            continue
        try:
            importlib.import_module(package)
        except Exception as err:  # installed but broken (a version conflict, a missing dependency of its own)
            first = (str(err).strip().splitlines() or [""])[0]
            raise GameError(
                f"--log-to {name}: the {package} package is installed but failed to import "
                f"({type(err).__name__}: {first}); repair it (pip install -U 'mfax[{name}]') "
                f"or leave --log-to {name} off"
            ) from None


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


# the event files mfax's tracker writes: tensorboardX's name, then mfax's nanosecond suffix
OWN_EVENTS = re.compile(r"events\.out\.tfevents\.[0-9]+\..*\.[0-9]{20}")


class TensorBoardTracker:
    """One tensorboardX writer per trained run, step = iteration, in
    ``RUN/tensorboard/<run>/`` (:func:`_run_name`: the run's index, seed, learning rate and
    swept game parameters).

    A folder holds the event files of one session only: a session first writes
    ``recorded`` (the run's metric rows up to the iteration a resume continues from) into
    a file of its own, closes it (written whole), and only then removes the earlier
    sessions' files (mfax's own, by name); its rows then go to a second file. So the order
    in which TensorBoard reads the files cannot matter: a killed session's rows beyond its
    checkpoint are gone, a session whose clock (or host) named its files before an earlier
    one's (tensorboardX names files by the second they were opened) shows the same curve,
    and a run that was given ``--log-to tensorboard`` only later (config.json edited) gets
    every row. Rows written again carry wall times spaced as their ``wall_clock_s`` (the
    training's own clock), ending when the session began."""

    def __init__(self, root: Path, recorded: list[dict[str, Any]] = ()):
        self.root, self.writers = root / "tensorboard", {}
        by_folder: dict[str, list[dict[str, Any]]] = {}
        for row in recorded:
            by_folder.setdefault(self._folder(row), []).append(row)
        self.settled: set[str] = set()  # the folders whose earlier sessions' files are gone
        if by_folder:
            now = time.time()
            last = max(float(row["wall_clock_s"]) for row in recorded)
            for name, rows in by_folder.items():
                # a Ctrl-C meanwhile acts once the folder is whole (the file closed, the earlier ones gone)
                with deferred_signals():
                    earlier = self._own_files(name)
                    writer = self._writer(name, purge=bool(earlier))
                    for row in rows:
                        self._add(writer, row, walltime=now - (last - float(row["wall_clock_s"])))
                    writer.close()  # (tensorboardX writes from a queue in a thread: close waits for it)
                    self._remove(earlier)
                    self.settled.add(name)

    def _folder(self, row: dict[str, Any]) -> str:
        name = _run_name(row)
        earlier = _run_name({k: v for k, v in row.items() if k != PARAMS})
        if name not in self.writers and not (self.root / name).exists() and (self.root / earlier).is_dir():
            name = earlier  # a sweep begun by an mfax that did not name the values: one curve per run
        return name

    def _own_files(self, name: str) -> list[Path]:
        """The earlier sessions' event files in the folder ``name``: mfax's by their names,
        and none reached through a linked folder (another run's, perhaps)."""
        folder = self.root / name
        if any(p.is_symlink() for p in (self.root.parent, self.root, folder)):
            return []
        return sorted(p for p in folder.glob("events.out.tfevents.*") if OWN_EVENTS.fullmatch(p.name))

    @staticmethod
    def _remove(paths: list[Path]) -> None:
        left = []
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                left.append(f"{str(path)!r} ({err.strerror or type(err).__name__})")
        if left:
            warn(
                f"could not remove an earlier session's TensorBoard event file: {', '.join(left)}; TensorBoard may "
                "show its rows beside this session's (metrics.jsonl holds the run's): remove it by hand"
            )

    def _writer(self, name: str, purge: bool = False):
        from tensorboardX import SummaryWriter

        # flush_secs: tensorboardX's writer thread takes events off its queue and writes
        # them to disk every flush_secs (120 by default): a process killed in the meantime
        # lost the rows metrics.csv has
        # filename_suffix: tensorboardX names a file by the second it was opened, so a
        # session within the second of the one before wrote over its file; the nanoseconds
        # keep the names apart (and :data:`OWN_EVENTS` tells mfax's files by them)
        # purge_step=0 where earlier files are (about to be) removed: a TensorBoard that
        # read them already keeps their rows in memory, and this session's would be
        # added to them (every row twice) without the restart record it marks
        return SummaryWriter(
            logdir=str(self.root / name),
            flush_secs=1,
            filename_suffix=f".{time.time_ns():020d}",
            purge_step=0 if purge else None,
        )

    @staticmethod
    def _add(writer, row: dict[str, Any], walltime: float | None = None) -> None:
        for key, value in _scalars(row).items():
            writer.add_scalar(key, value, global_step=int(row["iteration"]), walltime=walltime)

    def log(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            name = self._folder(row)
            if name not in self.writers:
                purge = False
                if name not in self.settled:  # nothing recorded to write again (a new run, or a resume at 0)
                    earlier = self._own_files(name)
                    self._remove(earlier)
                    self.settled.add(name)
                    purge = bool(earlier)
                self.writers[name] = self._writer(name, purge=purge)
            self._add(self.writers[name], row)
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class WandbTracker:
    """One W&B run for the whole training; keys prefixed ``run<r>/`` when several runs
    (seeds, learning rates, swept values) train together. A resume continues the W&B run
    (its id kept in ``RUN/wandb_id``). W&B keeps what it was sent and cannot be rewritten
    from here: after a session ended by SIGKILL (Ctrl-C and SIGTERM wait for the
    checkpoint and the trackers), the W&B run may lack the rows that session had not yet
    sent, and may keep rows it logged beyond its last checkpoint (W&B ignores a step below
    one it has seen, so the resumed session's rows at those steps may not replace them).
    ``metrics.jsonl`` (and TensorBoard, which is rewritten at each resume) hold the run's
    rows."""

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
    names: list[str], root: Path, config: dict[str, Any], num_runs: int, recorded: list[dict[str, Any]] = ()
) -> list[Tracker]:
    """The trackers ``names``; ``recorded``: the run's metric rows so far (a resume's, up
    to the iteration it continues from; none for a new run)."""
    check_trackers(names)
    out: list[Tracker] = []
    for name in names:
        if name == "tensorboard":
            out.append(TensorBoardTracker(root, recorded))
        else:
            out.append(WandbTracker(root, config, num_runs))
    return out
