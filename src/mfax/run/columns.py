"""The metric columns of a run: one row per evaluation and trained run, in this order, in
``metrics.csv`` and ``metrics.jsonl`` (:mod:`mfax.run.rundir`); the trackers
(:mod:`mfax.run.trackers`) mirror the figures among them.

A run that sweeps game parameters (``--set sigma=0.5,1.0``) names each row's values of
them: ``"params": {"sigma": 0.5}`` in metrics.jsonl, a column ``params.sigma`` after the
metric columns in metrics.csv (:func:`csv_columns`); a run without a sweep has neither.

A run estimated on drawn noise paths records the standard error of its per-path
exploitability and policy return (``exploitability_se``, ``policy_return_se``: the
standard deviation over the draws over the square root of their number); exact figures
have none (null)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
    "exploitability_se",
    "policy_return_se",
]
# the standard errors of ``exploitability`` and ``policy_return`` where they are estimated
# on drawn noise paths (null where the figures are exact, or where the draws do not say
# how many there were): rows written before mfax recorded them lack them, and are read
# with null there
ADDED_COLUMNS = ("exploitability_se", "policy_return_se")
# the columns that name a row (which evaluation of which run); the others are figures
KEY_COLUMNS = ("iteration", "run", "seed", "lr")
SCALARS = tuple(c for c in METRIC_COLUMNS if c not in KEY_COLUMNS)

# a sweep's rows: the run's values of the swept game parameters (a dict), under this key
PARAMS = "params"


def csv_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """metrics.csv's header for ``rows``: the metric columns, then ``params.NAME`` for
    each swept game parameter the rows name (sorted)."""
    names = sorted({name for row in rows for name in (row.get(PARAMS) or {})})
    return [*METRIC_COLUMNS, *(f"{PARAMS}.{name}" for name in names)]


def csv_cells(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as metrics.csv's cells: a missing or ``None`` figure is an empty cell, the
    swept parameters are flattened to their ``params.NAME`` columns."""
    cells = {k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS}
    cells.update({f"{PARAMS}.{name}": value for name, value in (row.get(PARAMS) or {}).items()})
    return cells
