"""The metric columns of a run: one row per evaluation and trained run, in this order, in
``metrics.csv`` and ``metrics.jsonl`` (:mod:`mfax.run.rundir`); the trackers
(:mod:`mfax.run.trackers`) mirror the figures among them."""

from __future__ import annotations

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
# the columns that name a row (which evaluation of which run); the others are figures
KEY_COLUMNS = ("iteration", "run", "seed", "lr")
SCALARS = tuple(c for c in METRIC_COLUMNS if c not in KEY_COLUMNS)
