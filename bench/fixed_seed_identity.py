"""Fixed-seed identity of two source trees: the same short float64 trainings of every
solver, compared row by row (every metrics.csv column but the wall clock).

Used to show that a refactor changes no number: ``python bench/fixed_seed_identity.py
--old /path/to/old/tree --new .`` trains, for each solver, beach bar 21 x 8 for 6
iterations (evaluations at 0, 3, 6) with 2 seeds x 2 learning rates (FP/OMD: one run;
PPO/M-OMD: 4 populations, 4 updates) in each tree, with ``mfax train --x64``.

A tree is a repository root (``ROOT/src/mfax``) or its ``src`` folder; each child process
reports the mfax it imported, and a run whose child imported another tree's is refused.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchutil import ArgumentParser, check_tree, mfax_src, out_dir, refuse_foreign, tree_env

SOLVERS = ["rspg", "spg", "ippo", "rippo", "momd", "fp", "omd"]
COMMON = ["--game", "beach_bar", "--set", "num_states=21", "--set", "horizon=8", "--iterations", "6"]
COMMON += ["--eval-every", "3", "--x64", "--no-progress", "--no-plots"]


def extra(algo: str) -> list[str]:
    if algo in ("fp", "omd"):
        return []
    runs = ["--lr", "1e-2,3e-3", "--seeds", "2"]
    return runs + (["--hp", "updates=4", "--hp", "num_envs=4"] if algo in ("ippo", "rippo", "momd") else [])


# the child reports the mfax it imported (its first line), then runs the command line
CHILD = "import json, mfax; print(json.dumps({'mfax_file': mfax.__file__}), flush=True); "
CHILD += "from mfax.run.cli import main; main()"


def train(src: Path, algo: str, out: Path) -> list[dict[str, str]]:
    """The metrics of one short training by the mfax of ``src`` (a tree's src folder)."""
    env = tree_env(src, JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-c", CHILD, "train", "--algo", algo, *COMMON, *extra(algo), "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"fixed_seed_identity.py: {algo} in {src} failed:\n{done.stderr[-3000:]}")
    refuse_foreign("fixed_seed_identity.py", src, json.loads(done.stdout.splitlines()[0])["mfax_file"])
    with open(out / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "wall_clock_s"} for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    tree = "a mfax source tree: its repository root or its src folder"
    parser.add_argument("--old", required=True, type=mfax_src, help=tree)
    parser.add_argument("--new", required=True, type=mfax_src, help=tree)
    parser.add_argument("--out", type=Path, default=Path("bench/results/redesign_identity.md"))
    args = parser.parse_args(argv)
    for which in ("old", "new"):  # before any training: a tree whose mfax does not import falls back silently
        check_tree(parser.prog, getattr(args, which))
    out_dir(parser, args.out.parent)
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
            old = train(args.old, algo, Path(tmp) / f"old-{algo}")
            new = train(args.new, algo, Path(tmp) / f"new-{algo}")
            diffs = sum(a[k] != b.get(k) for a, b in zip(old, new, strict=False) for k in a) + abs(len(old) - len(new))
            lines.append(f"| {algo} | {len(new)} | {diffs} |")
            print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
