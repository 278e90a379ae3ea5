"""Benchmark: a sweep over a traced game parameter, one program per value versus one in all.

The task: exact evaluation of a fixed policy (uniform) on ``B`` sampled noise paths, that
is the exact rollout (:func:`mfax.dynamics.rollout_batch`) then the policy's values and
the best-response values by backward induction
(:func:`mfax.evaluation.values.policy_value`, ``best_response_value``), for three values
of one traced parameter (default: the macro economy's risk aversion ``crra`` = 1.5, 2, 3
at the published sizes, ``n = 1000``, ``m = 20``, ``T = 128``).

* **before**: one program per value, each closing over its game (a game built with Python
  numbers, every parameter a constant): three traces, three compilations, three calls.
* **after**: the three games stacked on a run axis (:func:`mfax.games.stack_games`) and
  mapped over with ``jax.vmap``: one trace, one compilation, one call.

Compile time is the wall time of ``lower`` + ``compile`` (tracing included); traces are
counted inside the traced function. Run time is the median of ``--repeats`` calls of the
compiled program(s) after a warm-up call (before: the three calls together). Both use the
XLA options of mfax's exact programs (:func:`mfax.compiling.jit`'s). The largest
difference between the two ways' values is reported (float32: the stacked program rounds
in its own order, so expect a few float32 ulps, not zero).

Timings are only as good as the machine is quiet: the 1-minute load average is recorded
before and after.

Usage::

    python bench/param_sweep.py                  # macro crra 1.5,2,3 at the published sizes
    python bench/param_sweep.py --quick          # small macro (num_wealth 20, T 16): seconds
    python bench/param_sweep.py --game beach_bar --param gamma --values 0.9,0.95,0.99
    python bench/param_sweep.py --out DIR        # write DIR/param_sweep.{md,json}

Only the default sweep writes ``param_sweep.{md,json}``: ``--quick`` and another game,
parameter, values, ``--set`` or ``--paths`` add to the name (``param_sweep_quick``,
``param_sweep_beach_bar_gamma_0.9-0.95-0.99``, ...).
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
import jax.numpy as jnp

import mfax
from benchutil import ArgumentParser, check_sweep, numbers, out_dir, positive, stem, wrote
from mfax import compiling
from mfax.dynamics import rollout_batch, sample_noise
from mfax.errors import MfaxError
from mfax.evaluation.values import best_response_value, policy_value
from mfax.games import game_names, stack_games
from mfax.policies import Uniform

QUICK = {"num_wealth": 20, "horizon": 16}  # the macro economy's reduced sizes (--quick)
DEFAULTS = {"game": "macro", "param": "crra", "values": "1.5,2,3", "paths": 8}


def figures(game, policy, noise):
    traj = rollout_batch(game, policy, noise)
    return policy_value(game, traj, noise), best_response_value(game, traj, noise)


def compile_timed(fn, *args):
    start = time.perf_counter()
    compiled = compiling.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def run_timed(calls, repeats: int) -> tuple[float, list]:
    out = jax.block_until_ready([call() for call in calls])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready([call() for call in calls])
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def measure(game_name: str, key: str, values: list[float], extra: dict, paths: int, repeats: int) -> dict:
    games = [mfax.make(game_name, **extra, **{key: v}) for v in values]
    n, m = games[0].n_states, games[0].n_actions
    policy = Uniform(n, m)
    noise = sample_noise(games[0], jax.random.PRNGKey(0), paths).noise
    traces = {"before": 0, "after": 0}

    # before: one program per game, each closing over its game's numbers
    compiled, before_compile = [], []
    for game in games:

        def one(noise, game=game):
            traces["before"] += 1
            return figures(game, policy, noise)

        program, seconds = compile_timed(one, noise)
        compiled.append(program)
        before_compile.append(seconds)
    before_run, before_out = run_timed([lambda p=p: p(noise) for p in compiled], repeats)

    # after: the games stacked on a run axis, one vmapped program
    def swept(stacked, noise):
        traces["after"] += 1
        return jax.vmap(lambda g: figures(g, policy, noise))(stacked)

    stacked = stack_games(games)
    program, after_compile = compile_timed(swept, stacked, noise)
    after_run, after_out = run_timed([lambda: program(stacked, noise)], repeats)

    diff = max(
        float(jnp.max(jnp.abs(after_out[0][i][r] - before_out[r][i]))) for r in range(len(games)) for i in range(2)
    )
    scale = max(float(jnp.max(jnp.abs(before_out[r][i]))) for r in range(len(games)) for i in range(2))
    return {
        "game": game_name,
        "param": key,
        "values": values,
        "overrides": extra,
        "n_states": n,
        "n_actions": m,
        "horizon": games[0].horizon,
        "paths": paths,
        "before": {
            "traces": traces["before"],
            "compiles": len(compiled),
            "compile_s": sum(before_compile),
            "compile_s_each": before_compile,
            "run_s": before_run,
        },
        "after": {"traces": traces["after"], "compiles": 1, "compile_s": after_compile, "run_s": after_run},
        "max_abs_diff": diff,
        "max_abs_value": scale,
    }


def markdown(result: dict, meta: dict) -> str:
    b, a = result["before"], result["after"]
    values = ", ".join(f"{v:g}" for v in result["values"])
    overrides = ", ".join(f"{k}={v}" for k, v in result["overrides"].items()) or "none (published sizes)"
    command = " ".join(["python bench/param_sweep.py", *meta["args"]])
    return "\n".join(
        [
            "# Sweep over a traced game parameter: one program per value vs one in all",
            "",
            f"Exact evaluation (rollout + policy and best-response values) of the uniform policy on "
            f"{result['paths']} sampled noise paths, game `{result['game']}` (overrides: {overrides}; "
            f"n = {result['n_states']}, m = {result['n_actions']}, T = {result['horizon']}), "
            f"`{result['param']}` = {values}. Produced by `{command}`.",
            "",
            "| | traces | compilations | compile time (s) | run time (s, all values) |",
            "|---|---:|---:|---:|---:|",
            f"| before: one jit per value | {b['traces']} | {b['compiles']} | {b['compile_s']:.2f} "
            f"({' + '.join(f'{s:.2f}' for s in b['compile_s_each'])}) | {b['run_s']:.3f} |",
            f"| after: stack_games + vmap | {a['traces']} | {a['compiles']} | {a['compile_s']:.2f} "
            f"| {a['run_s']:.3f} |",
            "",
            f"Compile time after / before: {a['compile_s'] / b['compile_s']:.2f}; "
            f"run time after / before: {a['run_s'] / b['run_s']:.2f}. "
            f"Largest difference between the two ways' values: {result['max_abs_diff']:.3g} "
            f"(largest value {result['max_abs_value']:.3g}; float32).",
            "",
            f"Machine: {meta['machine']}, {meta['cpus']} CPUs, JAX {meta['jax']} on {meta['backend']}; "
            f"1-minute load average {meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the end "
            "(the machine was shared: absolute times are inflated, and the before/after ratio is what carries).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default=DEFAULTS["game"], choices=game_names(), metavar="GAME")
    parser.add_argument("--param", default=DEFAULTS["param"], help="a traced parameter of the game")
    parser.add_argument("--values", type=numbers, default=DEFAULTS["values"], help="comma-separated values of --param")
    parser.add_argument("--set", action="append", default=[], help="other game parameter key=value")
    parser.add_argument("--paths", type=positive, default=DEFAULTS["paths"])
    parser.add_argument("--repeats", type=positive, default=3)
    parser.add_argument("--quick", action="store_true", help=f"the macro economy with {QUICK}")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    values = args.values
    if args.quick and args.game != "macro":
        parser.error(f"--quick reduces the macro economy; for --game {args.game} give its sizes with --set")
    check_sweep(parser, args.game, args.param, [], {})
    extra = dict(QUICK) if args.quick else {}
    try:
        for item in args.set:
            k, sep, v = item.partition("=")
            if not sep:
                parser.error(f"--set expects KEY=VALUE, got {item!r}")
            if k == args.param:
                parser.error(f"--set {k} sets the swept parameter; give its values with --values")
            extra[k] = mfax.games.parse_value(args.game, k, v)
    except MfaxError as err:
        parser.error(str(err))
    check_sweep(parser, args.game, args.param, values, extra)
    variants = [
        "quick" if args.quick else "",
        "" if (args.game, args.param) == (DEFAULTS["game"], DEFAULTS["param"]) else f"{args.game}_{args.param}",
        "" if values == numbers(DEFAULTS["values"]) else "-".join(f"{v:g}" for v in values),
        "set_" + "_".join(args.set) if args.set else "",
        "" if args.paths == DEFAULTS["paths"] else f"{args.paths}paths",
    ]
    name = stem("param_sweep", *variants)
    out = out_dir(parser, args.out)
    load_start = os.getloadavg()[0]
    try:
        result = measure(args.game, args.param, values, extra, args.paths, args.repeats)
    except MfaxError as err:  # a game the library refuses (its first step)
        parser.error(str(err))
    meta = {
        "args": sys.argv[1:] if argv is None else argv,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }
    (out / f"{name}.json").write_text(json.dumps({"result": result, "meta": meta}, indent=2) + "\n")
    text = markdown(result, meta)
    (out / f"{name}.md").write_text(text)
    print(text)
    if result["after"]["traces"] != 1:
        raise SystemExit(f"the stacked sweep was traced {result['after']['traces']} times, expected once")
    wrote(out / name, "md", "json")


if __name__ == "__main__":
    main()
