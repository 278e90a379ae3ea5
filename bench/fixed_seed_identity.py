"""Fixed-seed identity of two source trees: the same short float64 trainings of every
solver, compared row by row (every metrics.csv column but the wall clock).

Used to show that a refactor changes no number: ``python bench/fixed_seed_identity.py
--old /path/to/old/tree --new .`` trains, for each solver, beach bar 21 x 8 for 6
iterations (evaluations at 0, 3, 6) with 2 seeds x 2 learning rates (FP/OMD: one run;
PPO/M-OMD: 4 populations, 4 updates) in each tree, with ``mfax train --x64``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOLVERS = ["rspg", "spg", "ippo", "rippo", "momd", "fp", "omd"]
COMMON = ["--game", "beach_bar", "--set", "num_states=21", "--set", "horizon=8", "--iterations", "6"]
COMMON += ["--eval-every", "3", "--x64", "--no-progress", "--no-plots"]


def extra(algo: str) -> list[str]:
    if algo in ("fp", "omd"):
        return []
    runs = ["--lr", "1e-2,3e-3", "--seeds", "2"]
    return runs + (["--hp", "updates=4", "--hp", "num_envs=4"] if algo in ("ippo", "rippo", "momd") else [])


def train(tree: Path, algo: str, out: Path) -> list[dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-c", "from mfax.run.cli import main; main()", "train", "--algo", algo, *COMMON]
    subprocess.run([*cmd, *extra(algo), "--out", str(out)], env=env, check=True, capture_output=True)
    with open(out / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "wall_clock_s"} for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, type=Path)
    parser.add_argument("--new", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/redesign_identity.md"))
    args = parser.parse_args()
    lines = [
        f"# Fixed-seed identity: {args.new} vs {args.old}",
        "",
        "`mfax train --x64` " + " ".join(COMMON[:-3]) + ", per solver (see bench/fixed_seed_identity.py);",
        "every metrics.csv column except wall_clock_s compared as text.",
        "",
        "| solver | rows | differing values |",
        "|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for algo in SOLVERS:
            old = train(args.old.resolve(), algo, Path(tmp) / f"old-{algo}")
            new = train(args.new.resolve(), algo, Path(tmp) / f"new-{algo}")
            diffs = sum(a[k] != b.get(k) for a, b in zip(old, new, strict=False) for k in a) + abs(len(old) - len(new))
            lines.append(f"| {algo} | {len(new)} | {diffs} |")
            print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
