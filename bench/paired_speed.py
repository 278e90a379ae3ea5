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

A tree is a repository root (``ROOT/src/mfax``) or its ``src`` folder; each child process
reports the mfax it imported, and a run whose child imported another tree's is refused.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchutil import ArgumentParser, check_tree, mfax_src, out_dir, positive, refuse_foreign, tree_env, wrote

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
import mfax
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
print(json.dumps({"mfax_file": mfax.__file__, "rows": out}))
"""


def run_tree(src: Path, rows, repeats: int) -> dict[str, dict[str, float]]:
    """One child process importing the mfax of ``src`` (a tree's src folder) times every row."""
    env = tree_env(src, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(rows), str(repeats)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"paired_speed.py: the child of {src} failed:\n{done.stderr[-3000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    refuse_foreign("paired_speed.py", src, child["mfax_file"])
    return child["rows"]


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    tree = "a mfax source tree: its repository root or its src folder"
    parser.add_argument("--old", required=True, type=mfax_src, help=tree)
    parser.add_argument("--new", required=True, type=mfax_src, help=tree)
    parser.add_argument("--rounds", type=positive, default=3)
    parser.add_argument("--repeats", type=positive, default=5)
    parser.add_argument("--only", default="", help="comma-separated row labels (default: all)")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/paired_speed"), help="path of the results, without extension"
    )
    args = parser.parse_args(argv)
    labels = [r[0] for r in ROWS]
    wanted = [w for w in args.only.split(",") if w]
    unknown = [w for w in wanted if w not in labels]
    if unknown:
        parser.error(f"--only: unknown row {unknown[0]!r}; allowed: {', '.join(labels)}")
    rows = [r for r in ROWS if not wanted or r[0] in wanted]
    for which in ("old", "new"):  # before any timing: a tree whose mfax does not import falls back silently
        check_tree(parser.prog, getattr(args, which))
    out_dir(parser, args.out.parent)
    results: dict[str, list[dict[str, dict[str, float]]]] = {"old": [], "new": []}
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    for k in range(args.rounds):
        order = ("old", "new") if k % 2 == 0 else ("new", "old")
        for which in order:
            results[which].append(run_tree(getattr(args, which), rows, args.repeats))
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
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(lines))
    wrote(args.out.with_suffix(""), "md", "json")


if __name__ == "__main__":
    main()
