"""A run directory: resolved config, metrics (CSV + JSONL), checkpoint, summary, plots.

Layout::

    RUN/config.json          resolved configuration (every default filled in)
    RUN/metrics.csv          one row per evaluation and run (also metrics.jsonl)
    RUN/summary.json         final figures (rewritten after every chunk)
    RUN/provenance.json      what produced the run (versions, revision, backend, precision)
    RUN/checkpoint.eqx       latest training state (Equinox leaf serialisation, numpy .npy
                             records, no pickle), replaced atomically
    RUN/plots/*.png
"""

from __future__ import annotations

import csv
import json
import math
import os
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

    def load_checkpoint(self, template: Any) -> Any:
        try:
            return eqx.tree_deserialise_leaves(self.checkpoint_path, template)
        except Exception as err:  # corrupt or from another configuration
            raise GameError(f"cannot read checkpoint {str(self.checkpoint_path)!r}: {err}") from None

    # -- summary -----------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        tmp = self.summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: _clean(v) for k, v in summary.items()}, indent=2) + "\n")
        os.replace(tmp, self.summary_path)

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text()) if self.summary_path.exists() else {}
