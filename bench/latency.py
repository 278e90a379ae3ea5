"""Time to a first result from Python, in a fresh process: cold and warm compilation cache.

    python bench/latency.py                      # every solver, writes bench/results/latency.{md,json}
    python bench/latency.py --algos fp,omd       # some solvers: latency_fp_omd.{md,json}
    python bench/latency.py --iterations 10      # iterations of the one ``mfax.solve`` call
    python bench/latency.py --algos fp,omd --against ../old --rounds 3   # against another tree
    python bench/latency.py --out DIR --tag _quiet   # DIR/latency_quiet.{md,json}

For each solver, two fresh Python processes each run ``import mfax`` and one
``mfax.solve`` on beach_bar with 10 states (the solver's default hyper-parameters,
``eval_every`` = the iterations: one compiled chunk, evaluations at the start and the
end). The first starts with an empty persistent compilation cache (a directory private
to this benchmark, ``MFAX_COMPILATION_CACHE``), the second reuses what the first wrote.
Each process reports where its time went: interpreter start and ``import mfax``,
``solve`` in total (wall-clock, and CPU time: on a shared machine the latter moves less
with the other jobs' load), and within it JAX's own accounting (``jax.monitoring`` durations,
summed over every program): tracing to jaxprs, lowering to MLIR, backend compilation
(XLA's, or on a cache hit reading the executable from the cache, of which ``cache_read``
is that read) and how many programs were compiled or read (``programs``); the rest of
``solve`` is running the programs, evaluation, building the games and the files.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import (
    ArgumentParser,
    check_tree,
    mfax_src,
    out_dir,
    positive,
    refuse_foreign,
    stem,
    subset,
    tree_env,
    wrote,
)

RESULTS = Path(__file__).resolve().parent / "results"
SRC = Path(__file__).resolve().parents[1] / "src"  # this tree's mfax
ALGOS = ("fp", "omd", "spg", "rspg", "ippo", "rippo", "momd")
GAME = {"num_states": 10}

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import jax
from jax import monitoring
durations, counts = {}, {}
def listen(event, seconds, **kwargs):
    durations[event] = durations.get(event, 0.0) + seconds
    counts[event] = counts.get(event, 0) + 1
monitoring.register_event_duration_secs_listener(listen)
import mfax
t1, c1 = time.perf_counter(), time.process_time()
algo, iterations, game = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
result = mfax.solve("beach_bar", algo, iterations=iterations, eval_every=iterations, **game)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"mfax_file": mfax.__file__,
                  "import_s": t1 - t0, "solve_s": t2 - t1, "import_cpu_s": c1 - c0, "solve_cpu_s": c2 - c1,
                  "programs": counts.get("/jax/core/compile/backend_compile_duration", 0),
                  "exploitability": result.exploitability,
                  "durations": durations, "backend": jax.default_backend()}))
"""

EVENTS = {
    "trace_s": "/jax/core/compile/jaxpr_trace_duration",
    "lower_s": "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "compile_s": "/jax/core/compile/backend_compile_duration",
    "cache_read_s": "/jax/compilation_cache/cache_retrieval_time_sec",
}


def one(algo: str, iterations: int, cache: Path, src: Path = SRC) -> dict:
    env = tree_env(src, MFAX_COMPILATION_CACHE=str(cache))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, algo, str(iterations), json.dumps(GAME)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{algo}: the child process failed:\n{done.stderr[-3000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    refuse_foreign("latency.py", src, child["mfax_file"])
    row = {"total_s": total, "import_s": child["import_s"], "solve_s": child["solve_s"]}
    row.update(import_cpu_s=child["import_cpu_s"], solve_cpu_s=child["solve_cpu_s"], programs=child["programs"])
    row["start_s"] = total - child["import_s"] - child["solve_s"]  # interpreter start and exit
    row.update({k: child["durations"].get(event, 0.0) for k, event in EVENTS.items()})
    row["exploitability"] = child["exploitability"]
    row["backend"] = child["backend"]
    return row


COLUMNS = ["total_s", "start_s", "import_s", "solve_s", "solve_cpu_s", "trace_s", "lower_s", "compile_s"]
COLUMNS += ["cache_read_s"]


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", default=",".join(ALGOS), help=f"comma-separated, of {', '.join(ALGOS)}")
    parser.add_argument("--iterations", type=positive, default=10)
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="folder for latency<variant><tag>.{md,json} (variant: the solvers of a subset, against)",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. _quiet")
    parser.add_argument(
        "--against",
        type=mfax_src,
        help="another mfax source tree (its repository root or its src folder): each round measures both "
        "trees, alternating which goes first, so that they meet the same load",
    )
    parser.add_argument("--rounds", type=positive, default=1)
    args = parser.parse_args(argv)
    algos = list(dict.fromkeys(a.strip() for a in args.algos.split(",") if a.strip()))
    unknown = [a for a in algos if a not in ALGOS]
    if unknown or not algos:
        parser.error(f"--algos {args.algos!r}: unknown or none; allowed: {', '.join(ALGOS)}")
    trees = {"this": SRC, **({"against": args.against} if args.against else {})}
    for src in trees.values():  # a tree whose mfax does not import would fall back to the installed one
        check_tree(parser.prog, src)
    name = stem("latency", subset(algos, ALGOS), "against" if args.against else "") + args.tag
    out = out_dir(parser, args.out)
    rows = []
    for k in range(args.rounds):
        for tree in list(trees) if k % 2 == 0 else list(trees)[::-1]:
            for algo in algos:
                with tempfile.TemporaryDirectory(prefix="mfax-latency-cache-") as tmp:
                    for phase in ("cold", "warm"):
                        load = os.getloadavg()[0]
                        row = {"round": k, "tree": tree, "algo": algo, "phase": phase, "load": load}
                        row.update(one(algo, args.iterations, Path(tmp), trees[tree]))
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    meta = {
        "game": {"name": "beach_bar", **GAME},
        "iterations": args.iterations,
        "trees": {k: str(v) for k, v in trees.items()},
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
    }
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    trees_text = ", ".join(f"`{k}` {v}" for k, v in meta["trees"].items())
    lines = [
        "# Time to a first result in a fresh process (bench/latency.py)",
        "",
        f"beach_bar with 10 states, one `mfax.solve` of {args.iterations} iterations (one chunk, evaluations "
        f"at 0 and {args.iterations}), default hyper-parameters, backend {rows[0]['backend'] if rows else '?'}; "
        f"{meta['cpus']} CPUs, load average at the end {meta['loadavg_at_end'][0]:.1f} (`load`: before each "
        f"process). Trees: {trees_text}. Cold: empty compilation cache; warm: a second fresh process reusing the "
        "cache the first wrote. Seconds; `total` is the process from start to exit, `start` the interpreter's "
        "start and exit, `solve` includes trace, lower and compile (XLA, or on a cache hit the read from the "
        "cache, `cache_read`; JAX's own accounting, summed over every program); `solve_cpu` is the CPU time of "
        "the `solve` call (every thread of the process, XLA's included), which other jobs on a shared machine "
        "inflate less than its wall-clock; `programs` counts the programs compiled or read from the cache.",
        "",
        "| round | tree | solver | cache | load | programs | "
        + " | ".join(c.removesuffix("_s") for c in COLUMNS)
        + " |",
        "|---:|---|---|---|---:|---:|" + "---:|" * len(COLUMNS),
    ]
    for row in rows:
        head = f"| {row['round']} | {row['tree']} | {row['algo']} | {row['phase']} | {row['load']:.1f} | "
        head += f"{row['programs']} | "
        lines.append(head + " | ".join(f"{row[c]:.2f}" for c in COLUMNS) + " |")
    lines += ["", "Medians over the rounds:", "", "| tree | solver | cache | programs | solve | solve_cpu | total |"]
    lines.append("|---|---|---|---:|---:|---:|---:|")
    for tree in trees:
        for algo in algos:
            for phase in ("cold", "warm"):
                got = [r for r in rows if (r["tree"], r["algo"], r["phase"]) == (tree, algo, phase)]
                med = {
                    c: statistics.median(r[c] for r in got) for c in ("programs", "solve_s", "solve_cpu_s", "total_s")
                }
                lines.append(
                    f"| {tree} | {algo} | {phase} | {med['programs']:.0f} | {med['solve_s']:.2f} | "
                    f"{med['solve_cpu_s']:.2f} | {med['total_s']:.2f} |"
                )
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    wrote(out / name, "md", "json")


if __name__ == "__main__":
    main()
