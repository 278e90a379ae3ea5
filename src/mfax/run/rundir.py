"""A run directory: resolved config, metrics (CSV + JSONL), checkpoint, summary, plots.

Layout::

    RUN/config.json          resolved configuration (every default filled in)
    RUN/metrics.csv          one row per evaluation and run (also metrics.jsonl)
    RUN/summary.json         final figures (rewritten after every chunk)
    RUN/provenance.json      what produced the run (versions, revision, backend, precision)
    RUN/checkpoint.eqx       latest training state (Equinox leaf serialisation, numpy .npy
                             records, no pickle), replaced atomically
    RUN/checkpoint-best.eqx  the state at the evaluation with the lowest exploitability (per
                             path, mean over runs; the earliest of equals)
    RUN/checkpoints/iteration-NNNNNNNN.eqx
                             with ``keep`` N > 0: the N most recent evaluations' states
    RUN/plots/*.png
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import equinox as eqx

from mfax.games import GameError
from mfax.run.config import TrainConfig, from_dict

METRIC_COLUMNS = [
    "iteration",
    "run",
    "seed",
    "lr",
    "wall_clock_s",
    "exploitability",
    "exploitability_info",
    "policy_return",
    "grad_norm",
    "train_exploitability",
    "train_policy_return",
]


def _clean(value: Any) -> Any:
    """JSON-friendly scalars (NaN/inf become null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_KEPT = re.compile(r"iteration-(\d{8})\.eqx")


def _copy(source: Path, target: Path) -> None:
    """Replace ``target`` by a copy of ``source`` atomically (a temporary file, then rename)."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


class RunDir:
    """Paths and file formats of one run (no state beyond the root path)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    config_path = property(lambda self: self.root / "config.json")
    metrics_csv = property(lambda self: self.root / "metrics.csv")
    metrics_jsonl = property(lambda self: self.root / "metrics.jsonl")
    summary_path = property(lambda self: self.root / "summary.json")
    checkpoint_path = property(lambda self: self.root / "checkpoint.eqx")
    plots_dir = property(lambda self: self.root / "plots")
    provenance_path = property(lambda self: self.root / "provenance.json")
    best_checkpoint_path = property(lambda self: self.root / "checkpoint-best.eqx")
    kept_dir = property(lambda self: self.root / "checkpoints")

    # -- config ------------------------------------------------------------------------
    def load_config(self) -> TrainConfig:
        if not self.config_path.is_file():
            raise GameError(f"{str(self.root)!r} is not a run directory (no config.json)")
        return from_dict(json.loads(self.config_path.read_text()))

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    # -- metrics -----------------------------------------------------------------------
    def append_metrics(self, rows: list[dict[str, Any]]) -> None:
        new = not self.metrics_csv.exists()
        with self.metrics_csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
        with self.metrics_jsonl.open("a") as f:
            for row in rows:
                f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_jsonl.exists():
            return []
        return [json.loads(line) for line in self.metrics_jsonl.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, last_iteration: int) -> None:
        """Drop rows written after the checkpoint (a run killed between the two writes)."""
        rows = [r for r in self.read_metrics() if r["iteration"] <= last_iteration]
        for path in (self.metrics_csv, self.metrics_jsonl):
            path.unlink(missing_ok=True)
        if rows:
            self.append_metrics(rows)

    # -- checkpoint --------------------------------------------------------------------
    def save_checkpoint(self, state: Any) -> None:
        tmp = self.checkpoint_path.with_suffix(".tmp")
        eqx.tree_serialise_leaves(tmp, state)
        os.replace(tmp, self.checkpoint_path)

    def load_checkpoint(self, template: Any, path: Path | None = None) -> Any:
        path = self.checkpoint_path if path is None else path
        try:
            return eqx.tree_deserialise_leaves(path, template)
        except Exception as err:  # corrupt or from another configuration
            raise GameError(f"cannot read checkpoint {str(path)!r}: {err}") from None

    # -- best and kept checkpoints (copies of checkpoint.eqx) ---------------------------
    def kept_checkpoint_path(self, iteration: int) -> Path:
        return self.kept_dir / f"iteration-{iteration:08d}.eqx"

    def kept_iterations(self) -> list[int]:
        """Iterations with a kept checkpoint, ascending."""
        if not self.kept_dir.is_dir():
            return []
        names = (p.name for p in self.kept_dir.iterdir())
        return sorted(int(m.group(1)) for m in map(_KEPT.fullmatch, names) if m)

    def best_iteration(self) -> int | None:
        """The evaluated iteration with the lowest exploitability (per path, mean over
        runs; the earliest of equals), from the metrics."""
        by_iteration: dict[int, list[float]] = {}
        for row in self.read_metrics():
            by_iteration.setdefault(row["iteration"], []).append(row["exploitability"])
        scores = {k: sum(v) / len(v) for k, v in by_iteration.items() if None not in v}
        return min(scores, key=lambda k: (scores[k], k)) if scores else None

    def keep_checkpoint(self, iteration: int, keep: int) -> None:
        """After :meth:`save_checkpoint` at an evaluated ``iteration``: copy it as the best
        when it is, and (``keep`` > 0) as this iteration's, removing kept ones beyond the
        ``keep`` most recent (only files named as this layout names them)."""
        if not self.has_checkpoint():
            return
        if self.best_iteration() == iteration:
            _copy(self.checkpoint_path, self.best_checkpoint_path)
        if keep > 0:
            self.kept_dir.mkdir(exist_ok=True)
            _copy(self.checkpoint_path, self.kept_checkpoint_path(iteration))
            for old in self.kept_iterations()[:-keep]:
                self.kept_checkpoint_path(old).unlink(missing_ok=True)

    def checkpoint_for(self, which: str) -> Path:
        """The checkpoint file of ``which``: ``"last"``, ``"best"`` or an iteration that
        is the last, the best or a kept one; a one-line error lists what is available."""
        last, best = self.read_summary().get("iterations"), self.read_summary().get("best_iteration")
        named = {"last": self.checkpoint_path, "best": self.best_checkpoint_path}
        if which in named and named[which].is_file():
            return named[which]
        choices = {k: self.kept_checkpoint_path(k) for k in self.kept_iterations()}
        if best is not None and self.best_checkpoint_path.is_file():
            choices[best] = self.best_checkpoint_path
        if last is not None and self.checkpoint_path.is_file():
            choices[last] = self.checkpoint_path
        if which.isdigit() and int(which) in choices:
            return choices[int(which)]
        tags = {k: ", ".join(t for t, at in (("best", best), ("last", last)) if at == k) for k in choices}
        available = ", ".join(f"{k} ({tags[k]})" if tags[k] else str(k) for k in sorted(choices)) or "none"
        raise GameError(
            f"no checkpoint of iteration {which!r} in {str(self.root)!r}; available: {available} "
            "(also 'best', 'last'; train with --keep N to keep the N most recent evaluations' checkpoints)"
        )

    # -- summary -----------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        tmp = self.summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: _clean(v) for k, v in summary.items()}, indent=2) + "\n")
        os.replace(tmp, self.summary_path)

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text()) if self.summary_path.exists() else {}
