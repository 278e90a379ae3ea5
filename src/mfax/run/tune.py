"""Hyper-parameter search with Optuna: ``mfax.tune(game, algo, trials=...) -> TuneResult``.

A *trial* trains solver ``algo`` on ``game`` with one choice of the searched
hyper-parameters, through :func:`mfax.solve` (the one training path of ``mfax train``),
for a budget of ``iterations`` (and, with ``time_budget``, until that many seconds of
training and evaluation since its first evaluation, checked at each evaluation: the
compiled chunks, the evaluations and their checkpoints, not building the trial or
waiting for a compilation, so that every trial gets the same time whether its program
was compiled or read from a cache). Its value, minimised, is the lowest exact
exploitability (per path, as ``mfax train`` reports it) among the trial's evaluations:
every ``eval_every`` iterations and at iteration 0.

The search space. The names a solver can search are its declared numeric
hyper-parameters (``mfax list``) and, for a solver that trains with ``--lr``, ``lr``:
the learning rate :class:`~mfax.run.config.TrainConfig` carries (for OMD, whose rate is
a hyper-parameter, ``lr`` is that hyper-parameter). Without ``space``, every one with a
declared range (:func:`mfax.params.search_range`; ``lr``: :data:`~mfax.run.config.LR_SEARCH`)
is searched, except those fixed by ``hp`` / ``lr``; with ``space``, exactly the names it
gives, each with its given range or its declared one.

Batches. When the only searched name is ``lr`` of a solver that takes ``--lr``, the rate
is a traced number: ``batch`` trials are asked from Optuna at once and trained as one
solve with ``lr=[...]``, side by side in one compiled program, each told its own run's
figure. Any other searched hyper-parameter is part of the compiled program: trials then
run one by one, each compiling its own (a repeated program is read from the compilation
cache).

The first trial of a new study is the defaults (when they lie in the space), so the
study always measures the default hyper-parameters on the same budget.

Kept with ``out``: ``out/study.db`` (the Optuna study, SQLite; the same call again
continues it up to ``trials`` complete trials), ``out/trials.csv`` (every trial) and
``out/best`` (the best trial trained again alone, stopped at its best evaluation: a run
directory ``mfax eval``, ``mfax plot`` and :func:`mfax.load` read; trained in
``out/.best-next`` first and copied into ``best/`` once complete, so an interruption
leaves ``best/`` as it was). Nothing that mfax did not write there is overwritten.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mfax import params as params_mod
from mfax.dynamics.noise import exact_noise
from mfax.errors import ArgumentError, GameError, advice
from mfax.evaluation.exploitability import negative_words
from mfax.games import Game, game_class
from mfax.run import api
from mfax.run.config import LR_SEARCH, TrainConfig, check_paths_used, game_defaults
from mfax.run.rundir import TUNE_MARKER, RunDir, _replace_with  # per-process temporary file, one-line OS errors
from mfax.run.signals import Terminated, deferred_signals
from mfax.run.train import Trainer, TrainingDiverged
from mfax.solvers import solver_spec

# the note on a Ctrl-C that came while the best trial was trained again into best/
BEST_INTERRUPTED = "mfax tune: interrupted while training the best trial again"
# ... and one that came while the best run was copied into best/ (acted on once it was)
BEST_KEPT = "mfax tune: interrupted once the best run was in best/"
INSTALL = 'mfax tune needs Optuna, an optional dependency: pip install "mfax[tune]"'
LR = "lr"
MARKER = TUNE_MARKER
STUDY_DB = "study.db"
TRIALS_CSV = "trials.csv"
BEST = "best"
# where the best trial is trained again before its run replaces best/ (an interruption
# then leaves best/ as it was, not a run stopped at its first checkpoint)
BEST_NEXT = ".best-next"
STUDY_NAME = "mfax-tune"
DEFAULT_BATCH = 8


@dataclasses.dataclass(frozen=True)
class Range:
    """A searched interval: uniform, or log-uniform (``log``); integer bounds and values
    for an integer hyper-parameter."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @property
    def text(self) -> str:
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high

    def distribution(self):
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


def parse_range(key: str, text: str | tuple | list, integer: bool = False) -> Range:
    """A range from ``"low:high"``, ``"low:high:log"`` or ``(low, high[, "log"])``; one
    line naming what is wrong otherwise."""
    where = _space_entry(key, text)
    allowed = advice(
        "a range is low:high or low:high:log", "a range is (low, high), (low, high, 'log') or 'low:high[:log]'"
    )
    if not isinstance(text, str | tuple | list):  # (a number, a set: no order)
        raise GameError(f"{where}: {allowed}, got {text!r}")
    parts = [p.strip() for p in text.split(":")] if isinstance(text, str) else list(text)
    scale = "linear"
    if len(parts) == 3:
        scale = parts.pop()
    if len(parts) != 2 or scale not in params_mod.SEARCH_SCALES:
        raise GameError(f"{where}: {allowed}, got {text!r}")
    try:
        low, high = (_number(p, integer) for p in parts)
    except (TypeError, ValueError):
        kind = "integers (the hyper-parameter is an integer)" if integer else "finite numbers"
        raise GameError(f"{where}: low and high must be {kind}; {allowed}") from None
    if not low < high:
        raise GameError(f"{where}: low must be below high, got low {low:g} >= high {high:g}")
    if scale == "log" and low <= 0:
        raise GameError(f"{where}: a log range needs low > 0, got low {low:g}")
    return Range(low, high, scale == "log", integer)


def _out_option() -> str:
    """The study's folder option, as the user gives it."""
    return advice("--out", "out")


def _space_entry(key: str, text: Any = None) -> str:
    """An entry of the search space, for a message, as the user gave it: ``--space lr=0:1``
    under the ``mfax`` command, ``space={'lr': '0:1'}`` from Python (``text`` ``None``:
    the key alone)."""
    if text is None:
        return advice(f"--space {key}", f"space[{key!r}]")
    typed = text if isinstance(text, str) else ":".join(map(str, text)) if isinstance(text, tuple | list) else text
    return advice(f"--space {key}={typed}", f"space={{{key!r}: {text!r}}}")


def _number(part: Any, integer: bool) -> float:
    if isinstance(part, bool):
        raise TypeError(part)
    value = float(part) if isinstance(part, str) else part
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(part)
    if integer:
        if value != int(value):
            raise ValueError(part)
        return int(value)
    return float(value)


def searchable(algo: str) -> dict[str, tuple[bool, tuple | None]]:
    """The names solver ``algo`` can search: name -> (integer, declared range or
    ``None``), in ``mfax list``'s order (``lr`` first when the solver takes ``--lr``)."""
    spec = solver_spec(algo)
    out: dict[str, tuple[bool, tuple | None]] = {}
    if spec.uses_lr:
        out[LR] = (False, LR_SEARCH)
    fields = {} if spec.hparams is None else params_mod.fields_of(spec.hparams)
    for name, field in fields.items():
        default = field.default
        if isinstance(default, int | float) and not isinstance(default, bool) and name not in out:
            out[name] = (isinstance(default, int), params_mod.search_range(spec.hparams, name))
    return out


def _is_lr_option(algo: str, key: str) -> bool:
    """Whether ``key`` names ``--lr`` (TrainConfig.lr) rather than a hyper-parameter."""
    return key == LR and solver_spec(algo).uses_lr


def search_space(algo: str, space: dict[str, Any] | None, fixed_hp: dict[str, Any], fixed_lr: bool) -> dict[str, Range]:
    """The searched names and ranges (module docstring); one-line errors."""
    names = searchable(algo)
    nothing = f"solver {algo!r} has nothing to search"
    if not names:
        hps = solver_spec(algo).hparams
        what = "" if hps is None else f" (its hyper-parameters {', '.join(params_mod.fields_of(hps))} are not numbers)"
        raise GameError(f"{nothing}: it takes no {advice('--lr', 'lr')} and no numeric hyper-parameter{what}")
    fixed = set(fixed_hp) | ({LR} if fixed_lr else set())
    if space is None:
        chosen = {k: v for k, (_, v) in names.items() if v is not None and k not in fixed}
        if not chosen:
            raise GameError(
                f"{nothing} by default (no declared range left, {advice('--hp/--lr', 'hp/lr')} fixing the rest); "
                f"name what to search with {advice('--space key=low:high[:log]', 'space={key: (low, high[, log])}')}; "
                f"searchable: {', '.join(names)}"
            )
        return {k: parse_range(k, declared, names[k][0]) for k, declared in chosen.items()}
    if not isinstance(space, dict):
        raise GameError(
            f"space must be a dict (hyper-parameter: range or None), got {type(space).__name__}; "
            f"searchable: {', '.join(names)}"
        )
    if not space:
        raise GameError(f"space must name at least one hyper-parameter; searchable: {', '.join(names)}")
    out = {}
    for key, text in space.items():
        if key not in names:
            where = advice("--space", "space")
            raise GameError(f"{where}: {algo!r} cannot search {key!r}; searchable: {', '.join(names)}")
        if key in fixed:
            fixing = advice("--hp/--lr", "hp/lr")
            raise GameError(f"{_space_entry(key)}: {key} is also fixed ({fixing}); search it or fix it, not both")
        integer, declared = names[key]
        if text is None or (isinstance(text, str) and not text.strip()):
            if declared is None:
                give = advice(f"{key}=low:high[:log]", "(low, high[, 'log'])")
                raise GameError(f"{_space_entry(key)}: {key} declares no search range; give one, {give}")
            text = declared
        out[key] = parse_range(key, text, integer)
    return out


def parse_space(items: list[str]) -> dict[str, str | None]:
    """``--space`` items (``key=low:high[:log]`` or ``key``) -> ``{key: text or None}``."""
    out: dict[str, str | None] = {}
    for item in items:
        key, _, text = item.partition("=")
        key = key.strip()
        if not key:
            raise GameError(f"--space expects key=low:high[:log] or key, got {item!r}")
        if key in out:
            raise GameError(f"--space names {key!r} twice")
        out[key] = text if "=" in item else None
    return out


# -- the trials ------------------------------------------------------------------------
@dataclasses.dataclass
class _Outcome:
    """What one trial measured: ``value`` (``None``: nothing finite), the iteration it was
    reached at, the iterations done, the seconds of its solve (shared by a batch)."""

    value: float | None
    best_iteration: int | None
    iterations: int
    seconds: float
    note: str = ""
    policy_return: float | None = None  # at best_iteration: the scale of its rounding


def _outcomes(rows: list[dict[str, Any]], runs: int, seconds: float, note: str = "") -> list[_Outcome]:
    out = []
    for r in range(runs):
        evals = [
            (row["exploitability"], row["iteration"], row.get("policy_return"))
            for row in rows
            if row["run"] == r and row["exploitability"] is not None and math.isfinite(row["exploitability"])
        ]
        done = max((row["iteration"] for row in rows if row["run"] == r), default=0)
        if not evals:
            out.append(_Outcome(None, None, done, seconds, note or "no finite evaluation"))
            continue
        value, at, scale = min(evals, key=lambda e: e[:2])
        scale = None if scale is None or not math.isfinite(scale) else float(scale)
        out.append(_Outcome(float(value), int(at), int(done), seconds, note, scale))
    return out


def _history_rows(result) -> list[dict[str, Any]]:
    h = result.history
    return [
        {
            "run": int(r),
            "iteration": int(i),
            "exploitability": None if np.isnan(e) else float(e),
            "policy_return": None if np.isnan(v) else float(v),
        }
        for r, i, e, v in zip(h["run"], h["iteration"], h["exploitability"], h["policy_return"], strict=True)
    ]


@dataclasses.dataclass
class _Search:
    """Everything a trial needs: the fixed arguments of :func:`mfax.solve` and the space."""

    game: Game | str
    algo: str
    solve_args: dict[str, Any]
    space: dict[str, Range]
    fixed_hp: dict[str, Any]
    fixed_lr: float | None
    time_budget: float | None

    @property
    def batched(self) -> bool:
        return list(self.space) == [LR] and _is_lr_option(self.algo, LR)

    def arguments(self, values: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """``(hp, lr)`` of a trial's searched ``values``."""
        hp = dict(self.fixed_hp)
        lr = self.fixed_lr
        for key, value in values.items():
            if _is_lr_option(self.algo, key):
                lr = value
            else:
                hp[key] = value
        return hp, lr

    def solve(self, hp, lr, **more):
        return api.solve(self.game, self.algo, hp=hp or None, lr=lr, progress=False, **{**self.solve_args, **more})

    def clock(self) -> Callable[[dict[str, Any]], bool]:
        """A new trial's stop test for :func:`mfax.solve`'s ``callback``: whether its
        ``time_budget`` is spent at this evaluation. A trial's time runs from its first
        evaluation (iteration 0) and counts what the trial costs at each step: the compiled
        chunks, the evaluations (on a small game most of the time) and the checkpoints;
        the waits for a compilation (``record["compile_seconds"]``) are left out, so that a
        trial whose program is compiled (the first, the defaults) gets the same time as one
        that reads it from a cache."""
        start: list[float] = []

        def spent(record: dict[str, Any]) -> bool:
            now = record["seconds"] - record["compile_seconds"]
            start[:] = start or [now]
            return self.time_budget is not None and now - start[0] >= self.time_budget

        return spent

    def run(self, values: list[dict[str, Any]]) -> list[_Outcome]:
        """Train trials ``values`` (several: a batch over ``lr``, one program)."""
        if len(values) > 1:
            hp, _ = self.arguments(values[0])
            lrs = [v[LR] for v in values]
            distinct = list(dict.fromkeys(lrs))
            if len(distinct) < len(lrs):  # a value asked twice is trained once (copies are refused)
                outcomes = self.run([{**values[0], LR: lr} for lr in distinct])
                return [outcomes[distinct.index(lr)] for lr in lrs]
            started = time.perf_counter()
            try:
                result = self.solve(hp, lrs, callback=self.clock())
            except TrainingDiverged:  # one run went non-finite: each trained alone, and said so
                why = f"trained alone: its batch of {len(values)} stopped at a non-finite value"
                alone = [self.run([v])[0] for v in values]
                return [dataclasses.replace(o, note=f"{o.note}; {why}" if o.note else why) for o in alone]
            return _outcomes(_history_rows(result), len(values), time.perf_counter() - started)
        hp, lr = self.arguments(values[0])
        rows: list[dict[str, Any]] = []
        spent = self.clock()

        def collect(record):
            rows.extend(record["rows"])
            return spent(record)

        started = time.perf_counter()
        try:
            result = self.solve(hp, lr, callback=collect)
        except TrainingDiverged:
            last = max((row["iteration"] for row in rows), default=0)
            note = f"a non-finite value after iteration {last} stopped it"
            return _outcomes(rows, 1, time.perf_counter() - started, note)
        return _outcomes(_history_rows(result), 1, time.perf_counter() - started)

    def rerun(self, values: dict[str, Any], best_iteration: int, out: Path | None = None):
        """The trial ``values`` trained again alone, stopped at ``best_iteration``."""
        hp, lr = self.arguments(values)
        return self.solve(hp, lr, callback=_StopAt(best_iteration), out=out, overwrite=out is not None)


class _StopAt:
    """The stop test of a best trial's rerun: at its best evaluation (its run's
    ``stop_reason`` is ``"best_iteration"``, not the user's ``"callback"``: there is none)."""

    stop_reason = "best_iteration"

    def __init__(self, iteration: int):
        self.iteration = iteration

    def __call__(self, record: dict[str, Any]) -> bool:
        return record["iteration"] >= self.iteration


# -- the result ------------------------------------------------------------------------
TRIAL_COLUMNS = ("trial", "state", "value", "best_iteration", "iterations", "seconds", "batch", "default", "note")


@dataclasses.dataclass(eq=False)
class TuneResult:
    """A finished search.

    ``trials``: one dict per trial (``trials.csv``'s rows: ``trial``, ``state``,
    ``value``, the searched names, ``best_iteration``, ``iterations``, ``seconds``,
    ``batch``: the trials asked together share its number (and, trained in one program,
    its seconds; a batch stopped by a non-finite value trains each alone, as ``note`` says),
    ``default``: the trial of the default hyper-parameters, ``note``). ``best_params``,
    ``best_value``, ``best_trial``: the best complete trial. ``default_value``: the
    default hyper-parameters' value (``None`` when they were not a trial). ``study``:
    the Optuna study. ``out``: the directory kept (``None``: in memory only)."""

    algo: str
    space: dict[str, Range]
    batched: bool
    trials: list[dict[str, Any]]
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    default_value: float | None
    study: Any
    out: Path | None
    resumed: int
    _search: _Search = dataclasses.field(repr=False)

    @property
    def best_dir(self) -> Path | None:
        """``out/best``: the best trial's run directory (``None`` without ``out``)."""
        return None if self.out is None else self.out / BEST

    def best_result(self):
        """The best trial's :class:`~mfax.run.api.Result`: read from ``out/best``, or
        (without ``out``) trained again alone, stopped at its best evaluation."""
        if self.best_dir is not None and (self.best_dir / "summary.json").is_file():
            return api.load(self.best_dir)
        row = next(t for t in self.trials if t["trial"] == self.best_trial)
        return self._search.rerun(self.best_params, row["best_iteration"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "algo": self.algo,
            "space": {k: dataclasses.asdict(r) for k, r in self.space.items()},
            "batched": self.batched,
            "best": {"trial": self.best_trial, "value": self.best_value, "params": self.best_params},
            "default_value": self.default_value,
            "trials": self.trials,
            "out": None if self.out is None else str(self.out),
            "resumed_from": self.resumed,
        }

    def __repr__(self) -> str:
        return (
            f"TuneResult(algo={self.algo!r}, trials={len(self.trials)}, best_value={self.best_value!r}, "
            f"best_params={self.best_params!r})"
        )


# the note of a trial whose call was stopped before it ended (Ctrl-C, a signal, a kill)
CUT_SHORT = "cut short: the call that trained it was stopped"


def _trial_rows(study, space: dict[str, Range]) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": t.value,
                **{k: t.params.get(k) for k in space},
                **{k: attrs.get(k) for k in ("best_iteration", "iterations", "seconds", "batch", "policy_return")},
                "default": bool(attrs.get("default", False)),
                # (a trial of a call killed outright: failed when the study was opened again)
                "note": attrs.get("note", CUT_SHORT if t.state.name == "FAIL" else ""),
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]], space: dict[str, Range]) -> bytes:
    columns = [*TRIAL_COLUMNS[:3], *space, *TRIAL_COLUMNS[3:]]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return out.getvalue().encode()


# -- the directory ---------------------------------------------------------------------
def _check_dir(root: Path, settings: dict[str, Any], noise_is: str | None = None) -> bool:
    """Whether ``root`` holds a study to continue (reads only): missing or empty (no), an
    mfax tune directory of the same search (yes); anything else is refused. ``noise_is``:
    what ``--noise auto`` means for this game (``"exact"`` or ``"sample"``), which a
    recorded or asked ``auto`` is compared as."""
    name = str(root)
    if not root.exists():
        return False
    if not root.is_dir():
        raise GameError(f"{_out_option()} {name!r} is a file, not a directory")
    entries = [p.name for p in root.iterdir() if p.name != "mfax.lock"]
    if not entries:
        return False
    marker = root / MARKER
    if not marker.is_file():
        raise GameError(f"refusing to write into {name!r}: it is a non-empty directory that is not an mfax tune study")
    try:
        recorded = json.loads(marker.read_text()).get("search", {})
    except (OSError, ValueError, AttributeError):
        raise GameError(f"{str(marker)!r} is not mfax's study marker as written; write elsewhere") from None
    if isinstance(recorded.get("time_budget"), float) and math.isinf(recorded["time_budget"]):
        recorded = {**recorded, "time_budget": None}  # an infinite budget (recorded so before): none
    if recorded.get("time_budget") is not None and "time_budget_counts" not in recorded:
        raise GameError(
            f"{name!r} holds a study whose time budget counted the training chunks alone (an earlier mfax); "
            f"a trial's budget now counts {BUDGET_COUNTS}, so its values are not comparable: write elsewhere "
            f"({_out_option()})"
        )
    differ = _differences(_noise_as(recorded, noise_is), _noise_as(settings, noise_is))
    if differ:
        raise GameError(
            f"{name!r} holds a study of another search (it differs in: {', '.join(differ)}); "
            f"continue it with the same arguments, or write elsewhere ({_out_option()})"
        )
    return (root / STUDY_DB).is_file()


def _check_writable(root: Path) -> None:
    """What a study in ``root`` writes to: the folder (``trials.csv`` and the marker are
    replaced through a temporary file in it, SQLite's journal is made beside the
    database), the database and ``best/`` (cleared and trained into at the end). A
    read-only one is one line naming it, before the search, not SQLite's failure to
    commit or a refusal after the last trial."""
    for path in (root, root / STUDY_DB, root / BEST, root / BEST_NEXT):
        if path.exists() and not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            what = "folder" if path.is_dir() else "file"
            raise GameError(
                f"{str(path)!r} is read-only: the study writes to this {what}; make it writable, or give another "
                f"{_out_option()}"
            )


def _noise_as(settings: dict[str, Any], noise_is: str | None) -> dict[str, Any]:
    """``settings`` with a training config's ``noise`` of ``auto`` read as ``noise_is``."""
    config = settings.get("config")
    if noise_is is None or not isinstance(config, dict) or config.get("noise") != "auto":
        return settings
    return {**settings, "config": {**config, "noise": noise_is}}


def _differences(recorded: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The settings two searches differ in, one level down where both are mappings (the
    training config's keys: ``config.iterations``, not just ``config``), with the
    recorded and the new value."""
    out = []
    for key in sorted(set(recorded) | set(settings)):
        old, new = recorded.get(key), settings.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out += [
                f"{key}.{k} {old.get(k)!r} -> {new.get(k)!r}"
                for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)
            ]
        else:
            out.append(f"{key} {old!r} -> {new!r}")
    return out


# what a trial's --time-budget counts, recorded with a budget: a study whose budget counted
# the training chunks alone (before 2026-12-05) has values not comparable with these
BUDGET_COUNTS = "training and evaluation"


def _settings(config: TrainConfig, space: dict[str, Range], time_budget: float | None) -> dict[str, Any]:
    """What fixes a study's objective: two calls that agree here continue one study."""
    recorded = config.to_dict()
    settings = {
        "config": json.loads(json.dumps(recorded)),
        "space": {k: [r.low, r.high, "log" if r.log else "linear"] for k, r in space.items()},
        "time_budget": time_budget,
    }
    if time_budget is not None:
        settings["time_budget_counts"] = BUDGET_COUNTS
    return settings


def _optuna():
    try:
        import optuna
    except ImportError:
        raise GameError(INSTALL) from None
    return optuna


def tune(
    game: Game | str,
    algo: str,
    *,
    trials: int,
    iterations: int | None = None,
    time_budget: float | None = None,
    space: dict[str, Any] | None = None,
    batch: int = DEFAULT_BATCH,
    seed: int = 0,
    out: str | Path | None = None,
    params: dict[str, Any] | None = None,
    hp: dict[str, Any] | None = None,
    lr: float | None = None,
    noise: str | None = None,
    paths: int | None = None,
    eval_every: int | None = None,
    eval_paths: int | None = None,
    log: Callable[[str], None] | None = None,
    **overrides: Any,
) -> TuneResult:
    """Search solver ``algo``'s hyper-parameters on ``game`` for the lowest exploitability
    within a budget (:mod:`mfax.run.tune`); returns the :class:`TuneResult`.

    ``trials``: complete trials the study should hold (a study continued from ``out``
    counts those it has). ``iterations`` / ``time_budget``: each trial's budget (default
    iterations: ``mfax train``'s). ``space``: ``{name: "low:high[:log]" | (low, high[,
    "log"]) | None}`` (``None``: the declared range); default: every declared range.
    ``batch``: trials per compiled program when only ``lr`` is searched. ``seed``: every
    trial's training seed (and the sampler's). ``hp``, ``lr``: fixed values, not searched.
    ``game``, ``params``/``overrides``, ``noise``, ``paths``, ``eval_every``,
    ``eval_paths``: as :func:`mfax.solve`. ``log``: called with a line per step (the
    command line prints them). Bad arguments raise :class:`~mfax.errors.GameError` (one
    line) before anything is trained; without Optuna, one line saying how to install it.
    """
    if log is not None and not callable(log):
        raise GameError(f"log must be callable (it is called with each line), got {log!r}")
    say = log or (lambda line: None)
    for name, value, low in (("trials", trials, 1), ("batch", batch, 1)):
        if not (params_mod.is_integer_from(value, low) and value <= params_mod.INT32_MAX):  # (numpy's too)
            raise ArgumentError(name, f"{name} must be an integer in {low}..{params_mod.INT32_MAX}, got {value!r}")
    trials, batch = int(trials), int(batch)
    api.check_time_budget(time_budget)
    if time_budget is not None and math.isinf(time_budget):  # no limit (and no Infinity in the JSON marker)
        time_budget = None
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float)):
        search = advice("--space lr=low:high:log", "space={'lr': (low, high, 'log')}")
        raise GameError(f"a fixed lr must be one number (a list is a search: {search}), got {lr!r}")
    api.check_game_argument(game)  # (a class, None: a TypeError from dataclasses below)
    api.check_algo_argument(algo)  # (None tuned the default solver, silently)
    if hp is not None and not isinstance(hp, dict):
        raise GameError(f"hp must be a dict (name: value), got {hp!r}")
    fixed_hp = dict(hp or {})
    solve_args = {
        "iterations": iterations,
        "seed": seed,
        "noise": noise,
        "paths": paths,
        "eval_every": eval_every,
        "eval_paths": eval_paths,
        "params": api.game_values(game, params, overrides, caller=tune),
    }
    _refuse_sweep(game, solve_args["params"])
    config = api.config_of(
        game,
        solve_args["params"],
        caller=tune,
        algo=algo,
        **{k: v for k, v in solve_args.items() if k != "params"},
        hparams=fixed_hp,
        lr=None if lr is None else [lr],
    )
    check_paths_used(config, paths is not None, eval_paths is not None)
    algo = config.algo
    chosen = search_space(algo, space, fixed_hp, lr is not None)
    search = _Search(game, algo, solve_args, chosen, fixed_hp, lr, time_budget)
    defaults = _default_values(config, chosen, search)
    _check_ends(search, config, chosen)
    # the game and the solver built as every trial builds them: a solver that does not
    # apply to the game (mf_omo with common noise) is refused now, not in the first trial
    # after the study's directory was written
    trainer = Trainer.build(config)
    # what --noise means for this game (auto: exact or sampled), so that a study asked with
    # --noise exact continues one made with auto where auto enumerated the noise, and back
    noise_is = "exact" if exact_noise(trainer.game_of(0), "auto") is not None else "sample"
    root = None if out is None else api.user_path("out", out)
    if jax.config.jax_enable_x64 and not config.x64:  # (the process computes in float64: so do the trials)
        config = dataclasses.replace(config, x64=True)  # (recorded so: a float32 call does not continue it)
    settings = _settings(config, chosen, time_budget)
    if root is not None:
        _check_dir(root, settings, noise_is)
        # where the best trial goes at the end: refused now, not after the search
        RunDir(root / BEST).check_new(overwrite=True)
        RunDir(root / BEST_NEXT).check_new(overwrite=True)
        _check_writable(root)
    optuna = _optuna()
    if root is None:
        return _study(optuna, search, trials, batch, seed, defaults, None, False, say)
    with RunDir(root).lock("study directory"):
        continuing = _check_dir(root, settings, noise_is)
        if not continuing:
            # a new study (its database removed, if there was one): a best trial recorded
            # by the old one names another study's trial, whose best/ must not be kept
            _replace_with(root / MARKER, (json.dumps({"mfax_tune": 1, "search": settings}, indent=2) + "\n").encode())
        return _study(optuna, search, trials, batch, seed, defaults, root, continuing, say)


def _refuse_sweep(game: Game | str, values: dict[str, Any]) -> None:
    """Several values of a game parameter (a list where the parameter is a number) are a
    sweep, which ``mfax train`` runs side by side and a tuner cannot: refused in one line,
    before the training config's own sweep rules (which suggest ``--seeds`` or other
    parameters) are applied."""
    fields = params_mod.fields_of(game_class(game) if isinstance(game, str) else type(game))
    swept = [  # (a name the game does not declare is refused with the config's own words)
        k
        for k, v in values.items()
        if isinstance(v, list) and len(v) > 1 and k in fields and not isinstance(fields[k].default, tuple)
    ]  # (a list of one value is that value, as in mfax train)
    if swept:
        raise GameError(
            f"tune trains one game; game parameter(s) {', '.join(sorted(swept))} have several values (a sweep): "
            "give one value"
        )


def _default_values(config: TrainConfig, space: dict[str, Range], search: _Search) -> dict[str, Any] | None:
    """The default of every searched name (``None`` when one lies outside its range)."""
    values = {}
    for key, rng in space.items():
        value = game_defaults(config.game)[LR] if _is_lr_option(search.algo, key) else config.hparams[key]
        if not rng.contains(value):
            return None
        values[key] = value
    return values


def _check_ends(search: _Search, config: TrainConfig, space: dict[str, Range]) -> None:
    """Each range's ends are values the solver accepts (one line naming the range)."""
    for key, rng in space.items():
        for end in (rng.low, rng.high):
            hp, lr = search.arguments({key: end})
            try:
                api.config_of(
                    config.game,
                    config.params,
                    algo=config.algo,
                    hparams=hp,
                    lr=None if lr is None else [lr],
                    noise=config.noise,
                    paths=config.paths,
                )
            except GameError as err:
                raise GameError(f"{_space_entry(key, rng.text)}: {end:g} is not allowed ({err})") from None


def _defaults_measured(study, state) -> bool:
    """Whether the study holds its defaults trial: complete, waiting to run, or ended by
    its own training (no finite value); not one a kill interrupted (no outcome recorded)."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("default") and (t.state in (state.COMPLETE, state.WAITING) or "iterations" in t.user_attrs):
            return True
    return False


def _open_study(optuna, storage, root, seed: int, continuing: bool):
    """The study at ``storage`` (created, or continued), with a sampler seeded by the
    trials so far: a continued study does not draw its first points again. A file that
    is not a study is one line (SQLAlchemy's ``DatabaseError``, Optuna's ``KeyError``)."""
    if root is not None and (root / STUDY_DB).is_file():
        with open(root / STUDY_DB, "rb") as f:  # before SQLite writes its tables into it
            sqlite = f.read(16) == b"SQLite format 3\x00"
        if not sqlite:
            raise GameError(
                f"{root / STUDY_DB} is not a study (not an SQLite database); it is left as it is: "
                f"move it away, or give another {_out_option()}"
            )
    try:
        held = len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials) if continuing else 0
        sampler = optuna.samplers.TPESampler(seed=(seed + held) % 2**32)  # numpy seeds are 32-bit
        study = optuna.create_study(
            storage=storage, sampler=sampler, study_name=STUDY_NAME, direction="minimize", load_if_exists=True
        )
        study.get_trials(deepcopy=False)
    except Exception as err:
        if root is None:
            raise
        why = (str(err).splitlines() or [""])[0][:160]
        raise GameError(
            f"{root / STUDY_DB} cannot be read as a study ({type(err).__name__}: {why}); "
            f"move it away, or give another {_out_option()}"
        ) from None
    return study


def _study(optuna, search: _Search, trials: int, batch: int, seed: int, defaults, root, continuing: bool, say):
    storage = None if root is None else f"sqlite:///{(root / STUDY_DB).resolve()}"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = _open_study(optuna, storage, root, seed, continuing)
        state = optuna.trial.TrialState
        for t in study.get_trials(deepcopy=False, states=(state.RUNNING, state.WAITING)):
            if t.state == state.RUNNING:  # a killed call's trial
                study.tell(t.number, state=state.FAIL, skip_if_finished=True)
        complete = started = len(study.get_trials(deepcopy=False, states=(state.COMPLETE,)))
        if continuing and complete < trials:
            say(f"continuing the study in {str(root)!r}: {complete} of {trials} trials complete")
        elif continuing:
            held = f"{complete} complete trial{'s' if complete != 1 else ''}"
            say(f"the study in {str(root)!r} holds {held}, {trials} asked: nothing to train")
        if defaults is not None and not _defaults_measured(study, state):
            # a new study, or one whose defaults trial a kill cut short: the defaults first
            study.enqueue_trial(defaults, user_attrs={"default": True})
        how = (
            f"up to {batch} trials per compiled program (lr is traced)"
            if search.batched
            else "one trial at a time (a searched hyper-parameter is part of the compiled program)"
        )
        if complete < trials:
            say(f"searching {', '.join(f'{k} in {r.text}' for k, r in search.space.items())}: {how}")
        distributions = {k: r.distribution() for k, r in search.space.items()}
        batch_number = max((t.user_attrs.get("batch", -1) for t in study.get_trials(deepcopy=False)), default=-1)
        failed = 0
        while complete < trials:
            if failed >= trials:  # as many trials without a finite value as were asked for: stop asking
                break
            size = min(batch, trials - complete) if search.batched else 1
            asked = [study.ask(distributions) for _ in range(size)]
            batch_number += 1
            try:
                outcomes = search.run([dict(t.params) for t in asked])
            except BaseException as err:
                cut = CUT_SHORT if isinstance(err, KeyboardInterrupt | SystemExit) else f"cut short by an error: {err}"
                for t in asked:
                    t.set_user_attr("note", cut[:500])
                    study.tell(t, state=state.FAIL, skip_if_finished=True)
                if root is not None:  # every trial in the table, the one cut short (FAIL) too
                    _replace_with(root / TRIALS_CSV, _csv(_trial_rows(study, search.space), search.space))
                raise
            lines = []
            for t, o in zip(asked, outcomes, strict=True):
                t.set_user_attr("best_iteration", o.best_iteration)
                t.set_user_attr("iterations", o.iterations)
                t.set_user_attr("seconds", round(o.seconds, 3))
                t.set_user_attr("policy_return", o.policy_return)
                t.set_user_attr("batch", batch_number)
                if o.note:
                    t.set_user_attr("note", o.note)
                if o.value is None:
                    study.tell(t, state=state.FAIL)
                    failed += 1
                else:
                    study.tell(t, o.value)
                    complete += 1
                lines.append(_trial_line(t.number, o, t.params))
            if root is not None:  # (before the lines: an output closed meanwhile, `| head`, leaves the table whole)
                _replace_with(root / TRIALS_CSV, _csv(_trial_rows(study, search.space), search.space))
            for line in lines:
                say(line)
        rows = _trial_rows(study, search.space)
        if root is not None:
            _replace_with(root / TRIALS_CSV, _csv(rows, search.space))
        if not complete:
            raise GameError("no trial reached a finite exploitability; narrow the space (--space) or the budget")
        best = study.best_trial
    finally:
        optuna.logging.set_verbosity(verbosity)
    defaults_rows = [r for r in rows if r["default"] and r["state"] == "COMPLETE"]
    result = TuneResult(
        search.algo,
        search.space,
        search.batched,
        rows,
        best.number,
        float(best.value),
        dict(best.params),
        defaults_rows[0]["value"] if defaults_rows else None,
        study,
        root,
        started,
        search,
    )
    if root is not None:
        _keep_best(result, root, say)
    return result


def _trial_line(number: int, outcome: _Outcome, values: dict[str, Any]) -> str:
    below = negative_words(outcome.value, outcome.policy_return)
    value = "failed" if outcome.value is None else f"{outcome.value:.6g}{below}"
    shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
    note = f" {outcome.note}" if outcome.note else ""
    return f"trial {number}: {shown} -> exploitability {value} ({outcome.seconds:.1f} s){note}"


def _keep_best(result: TuneResult, root: Path, say) -> None:
    """``root/best``: the best trial trained again alone (unless it holds it already),
    in ``root/.best-next`` first, then copied into ``best/`` as a saved run is
    (:meth:`~mfax.run.rundir.RunDir.write_files`: mfax's files of the run there replaced,
    the user's kept), so that an interruption of the training leaves ``best/`` as it was
    (it left a run stopped at its first checkpoint, which read as the best policy)."""
    marker = root / MARKER
    record = json.loads(marker.read_text())
    best_dir, staging = root / BEST, root / BEST_NEXT
    if record.get("best_trial") == result.best_trial and (best_dir / "summary.json").is_file():
        if RunDir(staging).is_run():  # (a copy a kill cut short after best/ was whole)
            with deferred_signals():
                _remove_run(staging)
        elif staging.is_dir() and not staging.is_symlink():  # (a kill just before its folder went: empty)
            with contextlib.suppress(OSError):
                staging.rmdir()  # (only when empty)
        return
    row = next(t for t in result.trials if t["trial"] == result.best_trial)
    say(f"training the best trial ({result.best_trial}) again (in {str(staging)!r}, then into {str(best_dir)!r})")
    copied = False
    try:
        result._search.rerun(result.best_params, row["best_iteration"], staging)
        # best/, the marker's best_trial and the staging run's removal, whole (a Ctrl-C
        # meanwhile acts after them)
        with deferred_signals():
            RunDir(best_dir).write_files(RunDir(staging).read_files(), overwrite=True)
            record["best_trial"] = result.best_trial
            _replace_with(marker, (json.dumps(record, indent=2) + "\n").encode())
            _remove_run(staging)
            copied = True
    except (KeyboardInterrupt, Terminated) as err:
        # the search is complete either way; best/ is whole (copied) or as it was (one
        # that came before the copy's signals were held: the next call trains it again)
        err.add_note(BEST_KEPT if copied else BEST_INTERRUPTED)
        raise


def _remove_run(folder: Path) -> None:
    """Remove the run mfax trained in ``folder``: its files, the marker last (a kill
    meanwhile leaves a folder that is still an mfax run, which the next study replaces),
    then its lock and the folder once empty (anything else there stays)."""
    run = RunDir(folder)
    run.remove_own_files(keep_marker=True)
    run.remove_own_files()
    with contextlib.suppress(OSError):
        run.lock_path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # (only when empty)
