"""Benchmark: training over a sweep of a traced game parameter, one program per value
versus one program for all (``mfax train --set crra=1.5,2,3``).

* **before**: one training per value (what a sweep cost before game parameters were
  traced): each builds its trainer and compiles its own chunk of iterations.
* **after**: one training whose runs are the three values: one trainer, one compiled
  chunk (:func:`mfax.solvers.driver.chunk` with the runs' games).

Counted: traces of the chunk (:mod:`mfax.tracing`), compile wall time (``lower`` +
``compile``, tracing included), and the time of one compiled chunk of ``--length``
iterations for all values (median of ``--repeats``; before: the three chunks together).
Defaults: RSPG on the macro economy at the published sizes (n = 1000, m = 20, T = 128,
8 sampled paths), ``crra`` = 1.5, 2, 3.

Usage::

    python bench/sweep_training.py                       # macro crra 1.5,2,3, RSPG
    python bench/sweep_training.py --quick               # reduced macro (40 x 5, T = 32)
    python bench/sweep_training.py --game linear_quadratic --param kappa --values 0.5,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax

from mfax.run.config import TrainConfig, resolve
from mfax.run.train import Trainer
from mfax.tracing import TRACES

QUICK = {"num_wealth": 40, "horizon": 32}


def compiled_chunk(config: TrainConfig, length: int):
    """``(compiled chunk, initial states, compile seconds, chunk traces)`` of a config."""
    trainer = Trainer.build(resolve(config))
    states = trainer.initial_states()
    name = trainer.solver.trace_name
    before, t0 = TRACES[name], time.perf_counter()
    fn = trainer.chunk_fn(length).lower(states).compile()
    return fn, states, time.perf_counter() - t0, TRACES[name] - before


def timed(fn, states, repeats: int) -> tuple[list[float], object]:
    states, metrics = fn(states)  # warm-up
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        states, metrics = fn(states)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    return times, states


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="macro")
    parser.add_argument("--algo", default="rspg")
    parser.add_argument("--param", default="crra")
    parser.add_argument("--values", default="1.5,2,3")
    parser.add_argument("--length", type=int, default=2, help="iterations per compiled chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="reduced macro economy (40 x 5, T = 32)")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    values = [float(v) for v in args.values.split(",")]
    base = QUICK if args.quick and args.game == "macro" else {}
    load_start = os.getloadavg()[0]
    before = [
        compiled_chunk(
            TrainConfig(game=args.game, algo=args.algo, params={**base, args.param: v}, iterations=10_000), args.length
        )
        for v in values
    ]
    traces_before = sum(t for *_, t in before)
    runs_before = [timed(fn, states, args.repeats)[0] for fn, states, _, _ in before]
    run_before = statistics.median([sum(ts) for ts in zip(*runs_before, strict=True)])

    fn, states, compile_after, traces_after = compiled_chunk(
        TrainConfig(game=args.game, algo=args.algo, params={**base, args.param: values}, iterations=10_000), args.length
    )
    run_after = statistics.median(timed(fn, states, args.repeats)[0])
    compile_before = [c for _, _, c, _ in before]
    result = {
        "game": args.game,
        "algo": args.algo,
        "overrides": base,
        "param": args.param,
        "values": values,
        "length": args.length,
        "traces_before": traces_before,
        "traces_after": traces_after,
        "compile_s_before": compile_before,
        "compile_s_after": compile_after,
        "chunk_s_before": run_before,
        "chunk_s_after": run_after,
        "load": [load_start, os.getloadavg()[0]],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, JAX {jax.__version__} on {jax.default_backend()}",
    }
    lines = [
        "# Training over a sweep of a traced game parameter: one program per value vs one in all",
        "",
        f"`{args.algo}` on `{args.game}` (overrides: {base or 'none, published sizes'}), `{args.param}` = "
        f"{', '.join(f'{v:g}' for v in values)}; a compiled chunk of {args.length} iterations per value, default "
        f"training settings. Produced by `python bench/sweep_training.py{' --quick' if args.quick else ''}`.",
        "",
        "| | chunk traces | compile time (s) | one chunk, all values (s, median) |",
        "|---|---:|---:|---:|",
        f"| before: one training per value | {traces_before} | {sum(compile_before):.2f} "
        f"({' + '.join(f'{c:.2f}' for c in compile_before)}) | {run_before:.3f} |",
        f"| after: one training, `--set {args.param}={args.values}` | {traces_after} | {compile_after:.2f} | "
        f"{run_after:.3f} |",
        "",
        f"Compile time after / before: {compile_after / sum(compile_before):.2f}; chunk time after / before: "
        f"{run_after / run_before:.2f}. On the CPU the runs of one program are looped inside it (as several "
        "seeds are), so the iterations themselves cost what they did; the sweep saves the compilations.",
        "",
        f"Machine: {result['machine']}; 1-minute load average {load_start:.2f} at the start, "
        f"{result['load'][1]:.2f} at the end.",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "sweep_training" + ("_quick" if args.quick else "")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
