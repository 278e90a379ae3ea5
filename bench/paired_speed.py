"""Seconds per training iteration of two source trees, paired in one run.

Each round runs one fresh process per tree (order alternating between rounds), and each
process times every row: the compiled training chunk of a solver at the published
settings (``Trainer.chunk_fn``, compile excluded, the median of ``--repeats`` chunks).
The ratio of a row is the median over rounds of ``new / old`` (of each process's fastest
chunk: interference from other work only ever adds time): both trees see the same machine
phases, so drift cancels. The pooled ratio compares each tree's fastest chunk over all
rounds. Used to show that a refactor does not slow training.

Usage::

    python bench/paired_speed.py --old /path/to/old/tree --new . --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (label, game, params, algo, noise, chunk length): the rows of bench/train_speed.py
# (structural solvers at the published settings) plus one row per other solver family
ROWS = [
    ("beach_bar rspg sample", "beach_bar", {}, "rspg", "sample", 4),
    ("beach_bar spg sample", "beach_bar", {}, "spg", "sample", 4),
    ("beach_bar rspg exact", "beach_bar", {}, "rspg", "exact", 4),
    ("beach_bar spg exact", "beach_bar", {}, "spg", "exact", 4),
    ("linear_quadratic rspg sample", "linear_quadratic", {}, "rspg", "sample", 8),
    ("linear_quadratic rspg exact", "linear_quadratic", {}, "rspg", "exact", 8),
    ("macro rspg sample", "macro", {}, "rspg", "sample", 2),
    ("beach_bar ippo", "beach_bar", {}, "ippo", "sample", 4),
    ("beach_bar momd", "beach_bar", {}, "momd", "sample", 4),
    ("beach_bar fp", "beach_bar", {}, "fp", "exact", 8),
]

CHILD = r"""
import json, statistics, sys, time
import jax
from mfax.run.config import TrainConfig, resolve
from mfax.run.train import Trainer
rows, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
out = {}
for label, game, params, algo, noise, length in rows:
    trainer = Trainer.build(resolve(TrainConfig(game=game, params=params, algo=algo, noise=noise, iterations=10_000)))
    states = trainer.initial_states()
    fn = trainer.chunk_fn(length).lower(states).compile()
    states, m = fn(states)
    jax.block_until_ready(m)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        states, m = fn(states)
        jax.block_until_ready(m)
        times.append((time.perf_counter() - t0) / length)
    out[label] = {"median": statistics.median(times), "min": min(times)}
print(json.dumps(out))
"""


def run_tree(tree: Path, rows, repeats: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(rows), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, type=Path)
    parser.add_argument("--new", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated row labels (default: all)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/paired_speed"))
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.only or r[0] in args.only.split(",")]
    results: dict[str, list[dict[str, dict[str, float]]]] = {"old": [], "new": []}
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    for k in range(args.rounds):
        order = ("old", "new") if k % 2 == 0 else ("new", "old")
        for which in order:
            results[which].append(run_tree(getattr(args, which).resolve(), rows, args.repeats))
            print(f"round {k} {which} done ({time.perf_counter() - start:.0f} s)", flush=True)
    lines = [
        f"# Paired speed: {args.new} vs {args.old}",
        "",
        f"{args.rounds} rounds (tree order alternating), {args.repeats} timed chunks per row and process;"
        f" machine load (1 min) at the start {load_start:.2f}, at the end {os.getloadavg()[0]:.2f};"
        f" {time.perf_counter() - start:.0f} s in all",
        "",
        "| row | old s/it (fastest) | new s/it (fastest) | new / old (median of rounds) | pooled | per round |",
        "|---|---|---|---|---|---|",
    ]
    summary = {}
    for label, *_ in rows:
        old = [r[label]["min"] for r in results["old"]]
        new = [r[label]["min"] for r in results["new"]]
        ratios = [n / o for n, o in zip(new, old, strict=True)]
        pooled = min(new) / min(old)
        summary[label] = {
            "old": [r[label] for r in results["old"]],
            "new": [r[label] for r in results["new"]],
            "ratio": statistics.median(ratios),
            "pooled": pooled,
        }
        per_round = ", ".join(f"{x:.3f}" for x in ratios)
        ratio = statistics.median(ratios)
        lines.append(f"| {label} | {min(old):.4f} | {min(new):.4f} | {ratio:.3f} | {pooled:.3f} | {per_round} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
