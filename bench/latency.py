"""Time to a first result from Python, in a fresh process: cold and warm compilation cache.

    python bench/latency.py                      # every solver, writes bench/results/latency.{md,json}
    python bench/latency.py --algos fp,omd       # some solvers
    python bench/latency.py --iterations 10      # iterations of the one ``mfax.solve`` call

For each solver, two fresh Python processes each run ``import mfax`` and one
``mfax.solve`` on beach_bar with 10 states (the solver's default hyper-parameters,
``eval_every`` = the iterations: one compiled chunk, evaluations at the start and the
end). The first starts with an empty persistent compilation cache (a directory private
to this benchmark, ``MFAX_COMPILATION_CACHE``), the second reuses what the first wrote.
Each process reports where its time went: interpreter start and ``import mfax``,
``solve`` in total, and within it JAX's own accounting (``jax.monitoring`` durations,
summed over every program): tracing to jaxprs, lowering to MLIR, backend compilation
(XLA's, or on a cache hit reading the executable from the cache, of which ``cache_read``
is that read); the rest of ``solve`` is running the programs, evaluation, building the
games and the files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ALGOS = ("fp", "omd", "spg", "rspg", "ippo", "rippo", "momd")
GAME = {"num_states": 10}

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
from jax import monitoring
durations = {}
def listen(event, seconds, **kwargs):
    durations[event] = durations.get(event, 0.0) + seconds
monitoring.register_event_duration_secs_listener(listen)
import mfax
t1 = time.perf_counter()
algo, iterations, game = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
result = mfax.solve("beach_bar", algo, iterations=iterations, eval_every=iterations, **game)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "solve_s": t2 - t1, "exploitability": result.exploitability,
                  "durations": durations, "backend": jax.default_backend()}))
"""

EVENTS = {
    "trace_s": "/jax/core/compile/jaxpr_trace_duration",
    "lower_s": "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "compile_s": "/jax/core/compile/backend_compile_duration",
    "cache_read_s": "/jax/compilation_cache/cache_retrieval_time_sec",
}


def one(algo: str, iterations: int, cache: Path) -> dict:
    env = {**os.environ, "MFAX_COMPILATION_CACHE": str(cache)}
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
    row = {"total_s": total, "import_s": child["import_s"], "solve_s": child["solve_s"]}
    row["start_s"] = total - child["import_s"] - child["solve_s"]  # interpreter start and exit
    row.update({k: child["durations"].get(event, 0.0) for k, event in EVENTS.items()})
    row["exploitability"] = child["exploitability"]
    row["backend"] = child["backend"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default=",".join(ALGOS))
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", default="latency")
    args = parser.parse_args()
    rows = []
    for algo in [a.strip() for a in args.algos.split(",") if a.strip()]:
        with tempfile.TemporaryDirectory(prefix="mfax-latency-cache-") as tmp:
            cache = Path(tmp)
            for phase in ("cold", "warm"):
                row = {"algo": algo, "phase": phase, **one(algo, args.iterations, cache)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    meta = {
        "game": {"name": "beach_bar", **GAME},
        "iterations": args.iterations,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    columns = ["total_s", "start_s", "import_s", "solve_s", "trace_s", "lower_s", "compile_s", "cache_read_s"]
    lines = [
        "# Time to a first result in a fresh process (bench/latency.py)",
        "",
        f"beach_bar with 10 states, one `mfax.solve` of {args.iterations} iterations (one chunk, evaluations "
        f"at 0 and {args.iterations}), default hyper-parameters, backend {rows[0]['backend'] if rows else '?'}; "
        f"{meta['cpus']} CPUs, load average at the end {meta['loadavg_at_end'][0]:.1f}. Cold: empty compilation "
        "cache; warm: a second fresh process reusing the cache the first wrote. Seconds; `total` is the process "
        "from start to exit, `start` the interpreter's start and exit, `solve` includes trace, lower and compile "
        "(XLA, or on a cache hit the read from the cache, `cache_read`; JAX's own accounting, summed over every "
        "program).",
        "",
        "| solver | cache | " + " | ".join(c.removesuffix("_s") for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for row in rows:
        lines.append(f"| {row['algo']} | {row['phase']} | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / args.out}.md and .json")


if __name__ == "__main__":
    main()
