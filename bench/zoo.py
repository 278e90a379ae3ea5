"""The zoo: every registered ``mfglib.*`` and ``openspiel.*`` game (plus mfax's published
``linear_quadratic`` and ``sis``; ``beach_bar`` on request) x every exact tabular solver:
the exact exploitability after ``N`` iterations, mfax's seconds per iteration and, where
the original library has the algorithm for the game, the original's seconds per
iteration measured in the same run, and their ratio.

    # a venv with mfax's dependencies, MFGLib 0.3.0 (+ PyTorch) and OpenSpiel 2.0.2:
    PYTHONPATH=src:bench python bench/zoo.py                      # writes bench/results/zoo.{md,json,png}
    PYTHONPATH=src:bench python bench/zoo.py --only left_right,garnet --algos fp,omd --budget 2

The whole zoo (19 games x 8 solvers) took 357 s of wall-clock on the 2-core machine,
otherwise idle (bench/results/zoo.md; 504 s for 6 solvers at load average 8-9): mostly
compiling and running mfax's cells (1-3 s each, 10-15 s for ``sis``, up to 25 s for
OMI on the 400- and 500-state games), the rest the originals' iterations, each capped
by ``--budget`` (default 5 s per cell). In the project's own venv (mfax only)
the original columns say "not installed" and it takes less.
``--published`` adds mfax's own games (default ``linear_quadratic,sis``; the published
beach bar costs about a second per exact iteration, so it is left out unless named).
With ``--only`` or ``--algos`` it writes ``zoo_only.*`` unless ``--name`` says otherwise.

What is measured, per game and solver (each solver at its declared defaults):

* **exploitability after N**: the exact (information-consistent) exploitability of the
  policy after ``--iterations`` updates from the uniform policy, float64;
* **mfax s/it**: one compiled program of ``N + 1`` iterations (the driver's
  ``chunk``, a ``lax.scan``; what ``mfax train`` runs), compiled once (compilation
  excluded), run once for the figures above, then timed continuing from its state:
  ``--repeats`` samples, each as many calls as fill 20 ms (at least one), the median of
  the samples' seconds per iteration.
  Every mfax iteration also computes the exact figures of its policy (return,
  exploitability: a best response), which the originals' iterations do not;
* **original s/it**: MFGLib's ``step_next_state`` (FictitiousPlay, OnlineMirrorDescent,
  PriorDescent, OccupationMeasureInclusion) or OpenSpiel's ``iteration()``
  (fictitious_play, mirror_descent, fixed_point, boltzmann_policy_iteration,
  munchausen_mirror_descent), each at its library's defaults, from the uniform policy,
  on the same game instance (MFGLib's environments in float64 as
  ``bench/mfglib_crosscheck.py`` builds them, OpenSpiel's as ``bench/openspiel_adapter.py``
  pairs them): the median over up to ``--repeats`` iterations, alternated with mfax's
  timed calls. MFGLib's MFOMO has no step of its own: its figure is the per-iteration
  time that its ``solve`` records, which includes its exploitability score. A cell's
  original gets ``--budget`` seconds in all (constructing the algorithm included); an
  iteration still running when they are spent is stopped and the cell says
  "over budget" with the lower bound it proves (ratio ``>``).

A solver is in the zoo when it is registered (``mfax list``), takes no ``--lr`` and, built
on a small game with its enumerated noise, has a ``table(state)`` (the exact tabular solvers: FP, OMD
and ``mfax.solvers.tabular``'s); one registered later appears without changing this
file. Its original counterpart is looked up in ``MFGLIB`` / ``OPENSPIEL`` below by the
solver's name; an unmapped one says "no counterpart mapped".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mfax
import mfglib_crosscheck as MC
import openspiel_adapter as OA
from benchutil import installed
from mfax.dynamics.noise import enumerate_noise
from mfax.games.registry import game_names
from mfax.solvers import driver, solver_names, solver_spec
from mfax.solvers.base import Setting

RESULTS = Path(__file__).resolve().parent / "results"
# mfax's own games (no original) in the zoo by default: the cheap ones. The published beach
# bar (102 noise paths, 101 states, 11 actions) takes about 1 s per exact iteration on this
# machine: a minute per program of 51 iterations; add it with --published.
PUBLISHED = "linear_quadratic,sis"
MFAX_ALONE_S = 3.0  # timing samples of a cell with no original stop once this much is spent
TARGET = 100.0  # the target: every mfax iteration at least 100x faster
SAMPLE_S = 0.02  # one timing sample of mfax: calls of its compiled program for at least this long


# -- which games, which solvers --------------------------------------------------------
def zoo_games(published: str = PUBLISHED) -> list[str]:
    """Every registered ``mfglib.*`` and ``openspiel.*`` game, then the published ones named."""
    names = game_names()
    extra = [n for n in published.split(",") if n]
    unknown = [n for n in extra if n not in names]
    if unknown:
        raise SystemExit(f"zoo: --published {','.join(unknown)}: no such game; registered: {', '.join(names)}")
    return [n for n in names if n.startswith("mfglib.")] + [n for n in names if n.startswith("openspiel.")] + extra


def build_solver(name: str, game, batch, iterations: int):
    """The registered solver ``name`` at its declared defaults on ``game``'s enumerated noise."""
    spec = solver_spec(name)
    hp = spec.hparams_of(spec.resolve_hparams({}))
    return spec.build(game, hp, Setting(iterations=iterations, paths=batch.num_paths, exact=batch))


def exact_solvers() -> list[str]:
    """The registered solvers that are exact and tabular: those that take no ``--lr``
    (their step sizes are hyper-parameters) and, built on ``mfglib.left_right`` with its
    enumerated noise, have a ``table(state)`` method."""
    probe = mfax.make("mfglib.left_right")
    batch = enumerate_noise(probe)
    out = []
    for name in solver_names():
        if solver_spec(name).uses_lr:  # trained with --lr (SPG, PPO, M-OMD): not an exact table iteration
            continue
        try:
            solver = build_solver(name, probe, batch, 1)
        except Exception:  # a solver that cannot take this game is not an exact tabular one
            continue
        if callable(getattr(solver, "table", None)):
            out.append(name)
    return out


# -- budgets ---------------------------------------------------------------------------
class OverBudget(BaseException):
    """The budget's alarm (a BaseException, so that a library's ``except Exception`` cannot swallow it)."""


def _alarm(signum, frame):
    raise OverBudget


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`OverBudget` in this (main) thread after ``seconds`` of wall-clock."""
    if seconds <= 0:
        raise OverBudget
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160] if text else ''}".rstrip(": ")


class Original:
    """One original algorithm on one game, timed within a budget: ``setup()`` builds it,
    ``step()`` runs one iteration; both count against the budget. ``status`` ends as
    ``measured``, ``over budget``, ``crashed`` (with ``why``)."""

    def __init__(self, library: str, label: str, setup: Callable[[], Any], step: Callable[[Any], Any], budget: float):
        self.library, self.label = library, label
        self._setup, self._step, self.budget = setup, step, budget
        self.spent, self.times, self.status, self.why, self.state = 0.0, [], "pending", "", None

    def _run(self, fn) -> bool:
        if self.status not in ("pending", "running"):
            return False
        start = time.perf_counter()
        try:
            with deadline(self.budget - self.spent):
                out = fn()
        except OverBudget:
            self.spent += time.perf_counter() - start
            if self.times:  # the budget ran out between measured iterations: keep them
                self.status = "measured"
            else:
                self.status = "over budget"
                self.why = "construction" if self.state is None else "first iteration"
            return False
        except Exception as err:  # the original fails on this game: say how
            self.status, self.why = "crashed", one_line(err)
            return False
        self.spent += time.perf_counter() - start
        return True if out is None else out

    def step(self) -> None:
        """Build the algorithm if needed, then one timed iteration (while the budget lasts).
        A ``step`` that returns an array has timed several iterations itself (MFGLib's
        MFOMO): those are the cell's iterations."""
        if self.status == "pending":
            state = self._run(self._setup)
            if state is False:
                return
            self.state, self.status = state, "running"
        start = time.perf_counter()
        out = self._run(lambda: self._step(self.state))
        if out is False:
            return
        if isinstance(out, np.ndarray):
            self.times += [float(x) for x in out]
            self.status = "measured"
        else:
            self.times.append(time.perf_counter() - start)

    def finish(self) -> dict:
        if self.status == "running":
            self.status = "measured"
        seconds = float(np.median(self.times)) if self.status == "measured" and self.times else None
        return dict(
            library=self.library,
            algorithm=self.label,
            status=self.status,
            why=self.why,
            seconds=seconds,
            iterations=len(self.times),
            spent=self.spent,
            lower_bound=self.spent if self.status == "over budget" else None,
        )


# -- the originals ---------------------------------------------------------------------
def _mfglib_iterative(env, make):
    def setup():
        import torch

        alg = make()
        pi = torch.full((env.T + 1, *env.S, *env.A), 1.0 / env.n_actions)
        return [alg, alg.init_state(env, pi)]

    def step(box):
        box[1] = box[0].step_next_state(box[1], None, None)

    return setup, step


def _mfglib_omo(env, repeats: int):
    """MFGLib's MFOMO has only ``solve``: one call of ``repeats`` iterations, its recorded
    per-iteration times (each includes its exploitability score) as the iterations."""

    def setup():
        from mfglib.alg import MFOMO

        return MFOMO()

    def step(alg):
        _, _, rts = alg.solve(env, max_iter=repeats, atol=None, rtol=None)
        return np.diff(rts)

    return setup, step


def _mfglib_cls(name: str):
    def make():
        import mfglib.alg as alg

        return getattr(alg, name)()

    return make


# mfax solver name -> (MFGLib's algorithm, how to build and step it given (env, repeats))
MFGLIB: dict[str, tuple[str, Callable]] = {
    "fp": ("FictitiousPlay", lambda env, r: _mfglib_iterative(env, _mfglib_cls("FictitiousPlay"))),
    "omd": ("OnlineMirrorDescent", lambda env, r: _mfglib_iterative(env, _mfglib_cls("OnlineMirrorDescent"))),
    "prior_descent": ("PriorDescent", lambda env, r: _mfglib_iterative(env, _mfglib_cls("PriorDescent"))),
    "occupation_measure_inclusion": (
        "OccupationMeasureInclusion",
        lambda env, r: _mfglib_iterative(env, _mfglib_cls("OccupationMeasureInclusion")),
    ),
    "mf_omo": ("MFOMO", _mfglib_omo),
}
# the names the MF-OMO / occupation-measure inclusion solvers might be registered under
for alias, key in (("mfomo", "mf_omo"), ("omo", "mf_omo"), ("omi", "occupation_measure_inclusion")):
    MFGLIB[alias] = MFGLIB[key]
MFGLIB["occupation"] = MFGLIB["occupation_measure_inclusion"]


def _openspiel(module: str, cls: str):
    def make(os_game):
        import importlib

        return getattr(importlib.import_module(f"open_spiel.python.mfg.algorithms.{module}"), cls)(os_game)

    return make


OPENSPIEL: dict[str, tuple[str, Callable]] = {
    "fp": ("fictitious_play", _openspiel("fictitious_play", "FictitiousPlay")),
    "omd": ("mirror_descent", _openspiel("mirror_descent", "MirrorDescent")),
    "fixed_point": ("fixed_point", _openspiel("fixed_point", "FixedPoint")),
    "boltzmann": ("boltzmann_policy_iteration", _openspiel("boltzmann_policy_iteration", "BoltzmannPolicyIteration")),
    "munchausen": ("munchausen_mirror_descent", _openspiel("munchausen_mirror_descent", "MunchausenMirrorDescent")),
}


def original_for(game_name: str, game, algo: str, budget: float, repeats: int) -> Original | dict:
    """The original of ``algo`` on ``game`` as an :class:`Original` to time, or a dict
    saying why there is none."""

    def none(library, status, why=""):
        return dict(library=library, algorithm=None, status=status, why=why, seconds=None, iterations=0)

    if game_name.startswith("mfglib."):
        if algo not in MFGLIB:
            return none("MFGLib", "no such algorithm", f"MFGLib 0.3.0 has no counterpart of {algo}")
        label, build = MFGLIB[algo]
        if not (installed("torch") and installed("mfglib")):
            return none("MFGLib", "not installed")

        def setup():  # the environment is built inside the budget: part of the original's setup
            make, step = build(MC.mfglib_env(game_name.split(".", 1)[1]), repeats)
            return (make(), step)

        return Original("MFGLib", label, setup, lambda box: box[1](box[0]), budget)
    if game_name.startswith("openspiel."):
        if algo == "mf_psro":  # OpenSpiel's mf_psro plays correlated equilibria, not Nash (docs/algorithms/mf_psro.md)
            why = "OpenSpiel 2.0.2's mf_psro targets (coarse) correlated equilibria, not mfax's Nash form"
            return none("OpenSpiel", "no such algorithm", why)
        if algo not in OPENSPIEL:
            return none("OpenSpiel", "no such algorithm", f"OpenSpiel 2.0.2 has no tabular counterpart of {algo}")
        label, make = OPENSPIEL[algo]
        if not installed("pyspiel"):
            return none("OpenSpiel", "not installed")

        def os_setup():
            pair = OA.pairing(game)
            return make(pair.load())

        return Original("OpenSpiel", label, os_setup, lambda alg: alg.iteration(), budget)
    return none("-", "no original", "mfax's own game")


# -- one cell --------------------------------------------------------------------------
def run_cell(game_name: str, game, batch, algo: str, args) -> dict:
    """mfax's figures and time for ``algo`` on ``game``, its original's alternated with them."""
    length = args.iterations + 1
    row: dict[str, Any] = dict(game=game_name, algorithm=algo)
    try:
        solver = build_solver(algo, game, batch, length)
        states = driver.initial_states(solver, [0], [0.0])
        start = time.perf_counter()
        run = driver.compiled_chunk(solver, length, states)  # as mfax train calls it (omi: LAPACK on one thread)
        row["compile_s"] = time.perf_counter() - start
        states, metrics = run(states)
        expl = np.asarray(metrics.exploitability)[0]
        row["exploitability_0"], row["exploitability"] = float(expl[0]), float(expl[args.iterations])
    except Exception as err:  # mfax refuses or fails on this pair: say so
        row["mfax_error"] = one_line(err)
        row["original"] = dict(status="not timed", why="mfax did not run", seconds=None)
        return row
    original = original_for(game_name, game, algo, args.budget, args.repeats) if args.originals else None
    timed = isinstance(original, Original)
    times = []
    for _ in range(args.repeats):
        # one sample: calls of the compiled program until SAMPLE_S has passed (at least one)
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < SAMPLE_S:
            states, metrics = run(states)
            jax.block_until_ready((states, metrics))
            calls += 1
        times.append((time.perf_counter() - start) / (calls * length))
        if timed:
            original.step()
        elif sum(times) * length > MFAX_ALONE_S:  # a slow game with nothing to alternate with
            break
    if timed:  # the original's remaining iterations (it may have started late: construction)
        while original.status in ("pending", "running") and len(original.times) < args.repeats:
            original.step()
        row["original"] = original.finish()
    elif original is None:
        row["original"] = dict(status="not timed", why="--no-originals", seconds=None)
    else:
        row["original"] = original
    row["mfax_s"] = float(np.median(times))
    row["mfax_repeats"] = len(times)
    o = row["original"]
    if o.get("seconds"):
        row["ratio"] = o["seconds"] / row["mfax_s"]
    elif o.get("lower_bound"):
        row["ratio_at_least"] = o["lower_bound"] / row["mfax_s"]
    return row


# -- report ----------------------------------------------------------------------------
def _g(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def original_text(o: dict) -> tuple[str, str]:
    """(original column, its s/it column)."""
    name = f"{o.get('library', '')} {o.get('algorithm') or ''}".strip()
    status = o["status"]
    if status == "measured":
        return name, f"{o['seconds']:.3g} ({o['iterations']} it)"
    if status == "over budget":
        return name, f"over budget: > {o['lower_bound']:.3g} s in its {o['why']}"
    if status == "crashed":
        return name, f"crashed: {o['why']}"
    why = f": {o['why']}" if o.get("why") else ""
    return name or "-", f"{status}{why}"


def times(ratio: float) -> str:
    """A speed-up as text: whole numbers from 10x, two significant digits below (a
    ratio under 1 is mfax slower); one decimal just under the target, so that a ratio
    below it never reads as the target (99.8x, not 100x)."""
    if TARGET - 0.5 <= ratio < TARGET:
        return f"{ratio:.1f}x"
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def ratio_text(row: dict) -> str:
    if "ratio" in row:
        flag = "" if row["ratio"] >= TARGET else " (below 100x)"
        return f"{times(row['ratio'])}{flag}"
    if "ratio_at_least" in row:
        return f"> {times(row['ratio_at_least'])}"
    return "-"


def markdown(rows: list[dict], meta: dict) -> str:
    n = meta["iterations"]
    lines = [
        "# The zoo: every game x every exact solver, mfax and the originals",
        "",
        f"Generated by `{meta['command']}` on {meta['date']}: {meta['machine']}; mfax {meta['mfax']}, JAX "
        f"{meta['jax']} (float64, CPU), {meta['versions']}. Load average (1, 5, 15 min) at the start "
        f"{meta['load_start']}, at the end {meta['load_end']}; the machine is shared, so the times are what it gave "
        f"and the ratios (mfax and original alternated in the same process) are the figures to read. Wall-clock "
        f"{meta['wall_s']:.0f} s.",
        "",
        f"Exploitability: exact, of the policy after {n} iterations from uniform (iteration 0: uniform), each "
        f"solver at its declared defaults. mfax s/it: one compiled program of {n + 1} iterations (what a "
        f"`mfax train` chunk runs; compilation excluded), the median over {meta['repeats']} samples of calls filling "
        f"{SAMPLE_S * 1e3:.0f} ms each; every iteration also computes its policy's exact figures. "
        f"Original s/it: one iteration of the original library's algorithm at its defaults (median of up to "
        f"{meta['repeats']}), within a budget of {meta['budget']:g} s per cell. See the docstring of bench/zoo.py.",
        "",
        "| game | horizon, states, actions, paths | algorithm | exploitability 0 -> N | mfax s/it | original "
        "| original s/it | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = meta["sizes"][row["game"]]
        size_text = f"{size['horizon']}, {size['states']}, {size['actions']}, {size['paths']}"
        if "mfax_error" in row:
            lines.append(f"| {row['game']} | {size_text} | {row['algorithm']} | mfax: {row['mfax_error']} | | | | |")
            continue
        name, seconds = original_text(row["original"])
        lines.append(
            f"| {row['game']} | {size_text} | {row['algorithm']} | {_g(row['exploitability_0'], 4)} -> "
            f"{_g(row['exploitability'], 4)} | {row['mfax_s']:.3g} | {name} | {seconds} | {ratio_text(row)} |"
        )
    lines += ["", "## Summary", "", *summary(rows)]
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> list[str]:
    measured = [r for r in rows if "ratio" in r or "ratio_at_least" in r]
    below = [r for r in measured if r.get("ratio", float("inf")) < TARGET]
    out = [
        f"- cells: {len(rows)} (games x exact solvers); with an original timed: {len(measured)} "
        f"({sum('ratio_at_least' in r for r in measured)} of them over budget, ratio a lower bound)",
        f"- at least {TARGET:.0f}x faster per iteration than the original: {len(measured) - len(below)} of "
        f"{len(measured)}",
    ]
    if measured:
        ratios = [r.get("ratio", r.get("ratio_at_least")) for r in measured]
        out.append(f"- ratio: min {times(min(ratios))}, median {times(np.median(ratios))}, max {times(max(ratios))}")
    if below:
        out.append(
            "- below the target: "
            + ", ".join(
                f"{r['game']} {r['algorithm']} ({times(r['ratio'])}, mfax {r['mfax_s']:.2g} s/it)" for r in below
            )
        )
    reasons: dict[str, int] = {}
    for r in rows:
        o = r.get("original", {})
        if o.get("status") not in ("measured", "over budget"):
            key = f"{o.get('status')}" + (f" ({o['why']})" if o.get("status") == "crashed" else "")
            reasons[key] = reasons.get(key, 0) + 1
    if reasons:
        out.append("- no original time: " + "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())))
    errors = [r for r in rows if "mfax_error" in r]
    if errors:
        out.append("- mfax did not run: " + "; ".join(f"{r['game']} {r['algorithm']}" for r in errors))
    return out


def figure(rows: list[dict], meta: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    games = list(dict.fromkeys(r["game"] for r in rows))
    timed = [g for g in games if any("ratio" in r or "ratio_at_least" in r for r in rows if r["game"] == g)]
    algos = list(dict.fromkeys(r["algorithm"] for r in rows))
    height = 0.42 * max(len(games), len(timed)) + 2.6
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, height), gridspec_kw=dict(width_ratios=(3, 2)))
    markers = "osD^vP*Xh<>"
    y_of = {g: len(timed) - 1 - i for i, g in enumerate(timed)}
    handles = []
    for k, algo in enumerate(algos):
        offset = (k - (len(algos) - 1) / 2) * 0.1
        style = dict(marker=markers[k % len(markers)], s=36, color=f"C{k}")
        for kind, filled in (("ratio", True), ("ratio_at_least", False)):
            pts = [(r[kind], y_of[r["game"]] + offset) for r in rows if r["algorithm"] == algo and kind in r]
            if pts:
                x, y = zip(*pts, strict=True)
                left.scatter(x, y, facecolors=None if filled else "none", **style)
        handles.append(Line2D([], [], ls="", marker=style["marker"], color=style["color"], label=algo))
    handles.append(Line2D([], [], ls="", marker="o", color="k", mfc="none", label="open: lower bound (over budget)"))
    left.axvline(TARGET, color="k", ls="--", lw=1)
    left.text(TARGET, len(timed) - 0.45, " 100x target", fontsize=8, va="bottom")
    left.set_xscale("log")
    left.set_yticks(range(len(timed)), timed[::-1], fontsize=8)
    left.set_ylim(-0.7, len(timed) - 0.2)
    left.set_xlabel("original s/it / mfax s/it (log)")
    left.set_title("Per-iteration speed-up over the original library")
    left.grid(axis="x", which="both", alpha=0.3)
    left.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4)
    grid = np.full((len(games), len(algos)), np.nan)
    for r in rows:
        if r.get("exploitability") is not None:
            grid[games.index(r["game"]), algos.index(r["algorithm"])] = r["exploitability"]
    image = right.imshow(np.log10(np.maximum(grid, 1e-16)), aspect="auto", cmap="viridis")
    for i in range(len(games)):
        for j in range(len(algos)):
            if np.isfinite(grid[i, j]):
                text = "~0" if abs(grid[i, j]) < 1e-12 else f"{grid[i, j]:.2g}"
                right.text(j, i, text, ha="center", va="center", fontsize=6, color="w")
    right.set_xticks(range(len(algos)), algos, rotation=30, ha="right", fontsize=8)
    right.set_yticks(range(len(games)), games, fontsize=8)
    right.set_title(f"Exploitability after {meta['iterations']} iterations (log10; ~0: below 1e-12)")
    fig.colorbar(image, ax=right, fraction=0.05)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------
def versions() -> str:
    parts = []
    for dist, label in (("torch", "PyTorch"), ("mfglib", "MFGLib"), ("open_spiel", "OpenSpiel")):
        try:
            parts.append(f"{label} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{label} not installed")
    return ", ".join(parts)


def select(names: list[str], wanted: str, what: str) -> list[str]:
    if not wanted:
        return names
    picked = [n for n in names if any(w and (w == n or w in n) for w in wanted.split(","))]
    if not picked:
        raise SystemExit(f"zoo: --{what} {wanted!r} matches none of: {', '.join(names)}")
    return picked


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated game names or parts of them (default: every game)")
    parser.add_argument("--algos", default="", help="comma-separated solver names (default: every exact solver)")
    parser.add_argument("--iterations", type=int, default=50, help="N: exploitability after N iterations")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of mfax, iterations of the original")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds for each cell's original (setup included)")
    parser.add_argument(
        "--published", default=PUBLISHED, help=f"mfax's own games to add (default {PUBLISHED}; '' for none)"
    )
    parser.add_argument("--no-originals", dest="originals", action="store_false", help="time mfax only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="output name (default: zoo, or zoo_only for a subset)")
    parser.add_argument("--no-figure", dest="figure", action="store_false")
    parser.add_argument("--report", action="store_true", help="rewrite .md and .png from the .json, run nothing")
    args = parser.parse_args(argv)
    if args.report:
        name = args.name or "zoo"
        if not (args.out / f"{name}.json").is_file():
            raise SystemExit(
                f"zoo: --report rewrites a run's tables from its {args.out / name}.json, which does not exist; "
                "give the --out and --name of a run"
            )
        saved = json.loads((args.out / f"{name}.json").read_text())
        (args.out / f"{name}.md").write_text(markdown(saved["rows"], saved["meta"]))
        if args.figure:
            figure(saved["rows"], saved["meta"], args.out / f"{name}.png")
        return saved["rows"]
    if args.iterations < 1 or args.repeats < 1 or args.budget <= 0:
        raise SystemExit("zoo: --iterations and --repeats must be >= 1 and --budget > 0")
    with jax.enable_x64(True):  # float64, as the originals compute
        return _main(args, argv)


def _main(args, argv) -> list[dict]:
    games = select(zoo_games(args.published), args.only, "only")
    algos = select(exact_solvers(), args.algos, "algos")
    name = args.name or ("zoo_only" if args.only or args.algos else "zoo")
    t_start, load_start = time.perf_counter(), os.getloadavg()
    torch_context = contextlib.nullcontext()
    if installed("torch"):
        import torch

        torch_context = MC.torch_dtype(torch.float64)
        if installed("mfglib"):
            import mfglib.alg  # noqa: F401  (MFGLib 0.3.0: import its algorithms before its scoring)
    rows, sizes = [], {}
    with torch_context:
        for game_name in games:
            game = mfax.make(game_name)
            if game.noise_support() is None:
                print(f"{game_name}: no finite noise support, skipped", flush=True)
                continue
            batch = enumerate_noise(game)
            sizes[game_name] = dict(
                horizon=game.horizon, states=game.n_states, actions=game.n_actions, paths=batch.num_paths
            )
            for algo in algos:
                start = time.perf_counter()
                rows.append(run_cell(game_name, game, batch, algo, args))
                r = rows[-1]
                print(
                    f"{game_name} {algo}: expl {_g(r.get('exploitability'))} mfax {_g(r.get('mfax_s'))} s/it, "
                    f"original {original_text(r['original'])[1]}, {ratio_text(r)} "
                    f"({time.perf_counter() - start:.1f} s)",
                    flush=True,
                )
    meta = dict(
        command="python bench/zoo.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"{platform.machine()} CPU, {os.cpu_count()} cores",
        mfax=mfax.__version__,
        jax=jax.__version__,
        versions=versions(),
        iterations=args.iterations,
        repeats=args.repeats,
        budget=args.budget,
        load_start=", ".join(f"{x:.2f}" for x in load_start),
        load_end=", ".join(f"{x:.2f}" for x in os.getloadavg()),
        wall_s=time.perf_counter() - t_start,
        sizes=sizes,
        solvers=algos,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(rows, meta))
    if args.figure:
        figure(rows, meta, args.out / f"{name}.png")
    print("\n".join(summary(rows)))
    return rows


if __name__ == "__main__":
    main()
