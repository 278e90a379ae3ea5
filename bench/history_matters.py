"""Does history matter? RSPG vs SPG for the same budget (the paper's central claim).

On beach bar and linear-quadratic with common noise on, neither time nor the hidden
shock is observed, so a memoryless policy (SPG) cannot condition on how long the bar has
been open or on which way the population has been pushed; a recurrent one (RSPG) can.
Both are trained with the same iterations, learning rate, noise mode and seeds (all
seeds side by side in one compiled program), and scored by the exact per-path and
information-consistent exploitability. The training enumerates the noise (exact
noise), so only games with a finite noise support can be run. Prints a table and writes
``bench/results/history_matters.{md,json}`` after every game (a smoke or subset run:
``history_matters_quick``, ``history_matters_<games>``, ... so that it never replaces
the full run's files).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from benchutil import ArgumentParser, out_dir, positive, stem, wrote
from mfax import params
from mfax.games import game_names
from mfax.games.registry import game_class
from mfax.run.config import TrainConfig
from mfax.run.rundir import RunDir
from mfax.run.train import train

GAMES = ["beach_bar", "linear_quadratic"]


def noise_paths(game: str) -> int | None:
    """The number of paths of a game's noise support at its defaults, ``None`` when the
    support is not finite (the game is built without its validation: only its noise is read)."""
    try:
        support = params.build(game_class(game), f"game {game!r}").noise_support()
    except Exception:  # a game that does not build at its defaults cannot run here either
        return None
    return None if support is None else int(support.weight.shape[0])


def run(game: str, algo: str, iterations: int, seeds: int, lr: float, noise: str, eval_every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            game=game, algo=algo, iterations=iterations, seeds=seeds, lr=[lr], noise=noise, eval_every=eval_every
        )
        summary = train(config, Path(tmp) / "run", progress=False)
        every = RunDir(Path(tmp) / "run").read_metrics()
    rows = [r for r in every if r["iteration"] == iterations]
    per_path = [r["exploitability"] for r in rows]
    info = [r["exploitability_info"] for r in rows]
    curves = {}
    for r in every:
        curves.setdefault(str(r["run"]), []).append((r["iteration"], r["wall_clock_s"], r["exploitability"]))
    return {
        "game": game,
        "algo": algo,
        "iterations": iterations,
        "seeds": seeds,
        "lr": lr,
        "noise": noise,
        "noise_paths": noise_paths(game),
        "exploitability": per_path,
        "exploitability_info": info,
        "initial_exploitability": summary["initial_exploitability"],
        "wall_clock_s": summary["wall_clock_s"],
        "curves": curves,
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "# RSPG vs SPG for the same budget",
        "",
        "Exact noise: every path of the game's noise support (`noise paths`; 1: no common noise).",
        "",
        "| game | noise paths | algo | iterations | lr | noise | seeds | initial | final per-path (mean +- sample sd) "
        "| final info-consistent (mean) | per seed (per-path) | training wall-clock s (all seeds together) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        e = np.array(r["exploitability"])
        info = np.array([x for x in r["exploitability_info"] if x is not None])
        sd = e.std(ddof=1) if e.size > 1 else 0.0
        lines.append(
            f"| {r['game']} | {r['noise_paths']} | {r['algo']} | {r['iterations']} | {r['lr']:g} | {r['noise']} "
            f"| {r['seeds']} | {r['initial_exploitability']:.4g} | {e.mean():.4g} +- {sd:.3g} "
            f"| {info.mean() if info.size else float('nan'):.4g} | {', '.join(f'{x:.4g}' for x in e)} "
            f"| {r['wall_clock_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    finite = [g for g in game_names() if noise_paths(g) is not None]
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations and seeds (a few minutes)")
    parser.add_argument("--out", default="bench/results", help="directory for history_matters<variant><tag>.{md,json}")
    parser.add_argument(
        "--games", nargs="+", default=GAMES, metavar="GAME", help="games to run (those with a finite noise support)"
    )
    parser.add_argument("--iterations", type=positive, help="iterations for every game (default: per game)")
    parser.add_argument("--seeds", type=positive, help="seeds per algorithm (default 2 quick, 4 full)")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    args = parser.parse_args(argv)
    refused = [g for g in args.games if g not in finite]
    if refused:
        what = "is no registered game" if refused[0] not in game_names() else "has no finite noise support"
        parser.error(f"--games: {refused[0]} {what} (the trainings enumerate the noise); allowed: {', '.join(finite)}")
    seeds = args.seeds or (2 if args.quick else 4)
    default_iterations = {"beach_bar": 30 if args.quick else 300, "linear_quadratic": 100 if args.quick else 300}
    games = list(dict.fromkeys(args.games))
    variants = [
        "quick" if args.quick else "",
        "" if games == GAMES else "_".join(games),
        f"{args.iterations}it" if args.iterations else "",
        f"{args.seeds}seeds" if args.seeds else "",
    ]
    name = stem("history_matters", *variants) + args.tag
    out = out_dir(parser, args.out)
    cases = [(g, args.iterations or default_iterations.get(g, 100), 1e-2, "exact") for g in games]
    results = []
    for game, iterations, lr, noise in cases:
        for algo in ("spg", "rspg"):
            results.append(run(game, algo, iterations, seeds, lr, noise, max(iterations // 6, 1)))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "curves"}), flush=True)
        # after every game, so that a run stopped later keeps the games it finished
        (out / f"{name}.md").write_text(markdown(results))
        (out / f"{name}.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    wrote(out / name, "md", "json")


if __name__ == "__main__":
    main()
