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

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax

from benchutil import ArgumentParser, check_sweep, numbers, out_dir, positive, stem, wrote
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


DEFAULTS = {"game": "macro", "algo": "rspg", "param": "crra", "values": "1.5,2,3"}


def main(argv: list[str] | None = None) -> None:
    from mfax.games import game_names
    from mfax.solvers.base import solver_names

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--game", default=DEFAULTS["game"], choices=game_names(), metavar="GAME", help="a game (default macro)"
    )
    parser.add_argument(
        "--algo", default=DEFAULTS["algo"], choices=solver_names(), metavar="ALGO", help="a solver (default rspg)"
    )
    parser.add_argument("--param", default=DEFAULTS["param"], help="a traced parameter of the game")
    parser.add_argument("--values", type=numbers, default=DEFAULTS["values"], help="comma-separated values of --param")
    parser.add_argument("--length", type=positive, default=2, help="iterations per compiled chunk")
    parser.add_argument("--repeats", type=positive, default=3, help="timed chunks per program (median)")
    parser.add_argument("--quick", action="store_true", help="reduced macro economy (40 x 5, T = 32)")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results"), help="folder for sweep_training<variant>.{md,json}"
    )
    args = parser.parse_args(argv)
    values = args.values
    if args.quick and args.game != "macro":
        parser.error(f"--quick reduces the macro economy; --game {args.game} runs at its defaults without it")
    base = QUICK if args.quick else {}
    check_sweep(parser, args.game, args.param, values, base)
    name = stem(
        "sweep_training",
        "quick" if args.quick else "",
        "" if (args.game, args.algo) == (DEFAULTS["game"], DEFAULTS["algo"]) else f"{args.game}_{args.algo}",
        "" if args.param == DEFAULTS["param"] else args.param,
        "" if values == numbers(DEFAULTS["values"]) else "-".join(f"{v:g}" for v in values),
        "" if args.length == 2 else f"length{args.length}",
        "" if args.repeats == 3 else f"repeats{args.repeats}",
    )
    out = out_dir(parser, args.out)
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
    command = "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    swept = ",".join(f"{v:g}" for v in values)
    lines = [
        "# Training over a sweep of a traced game parameter: one program per value vs one in all",
        "",
        f"`{args.algo}` on `{args.game}` (overrides: {base or 'none, published sizes'}), `{args.param}` = "
        f"{', '.join(f'{v:g}' for v in values)}; a compiled chunk of {args.length} iterations per value, default "
        f"training settings. Produced by `python bench/sweep_training.py{command}`.",
        "",
        "| | chunk traces | compile time (s) | one chunk, all values (s, median) |",
        "|---|---:|---:|---:|",
        f"| before: one training per value | {traces_before} | {sum(compile_before):.2f} "
        f"({' + '.join(f'{c:.2f}' for c in compile_before)}) | {run_before:.3f} |",
        f"| after: one training, `--set {args.param}={swept}` | {traces_after} | {compile_after:.2f} | "
        f"{run_after:.3f} |",
        "",
        f"Compile time after / before: {compile_after / sum(compile_before):.2f}; chunk time after / before: "
        f"{run_after / run_before:.2f}. On the CPU the runs of one program are looped inside it (as several "
        "seeds are), so the iterations themselves cost what they did; the sweep saves the compilations.",
        "",
        f"Machine: {result['machine']}; 1-minute load average {load_start:.2f} at the start, "
        f"{result['load'][1]:.2f} at the end.",
    ]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))
    wrote(out / name, "md", "json")


if __name__ == "__main__":
    main()
