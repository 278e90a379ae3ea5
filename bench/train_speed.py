"""Training speed of the structural solvers (SPG, RSPG), and time to fixed exploitabilities.

What is measured, all in one process on this machine:

1. The machine's matmul peak: the best float32 GFLOP/s of square ``jnp.dot`` products
   (1024..3072) and of the policy head's own shape (``rows x 128 @ 128 x 128``), each
   compiled with XLA's defaults and with mfax's options, before and after the timings.
2. Seconds per training iteration of SPG and RSPG on each game at the published settings
   (beach bar: 128 paths; linear-quadratic and macro: 8 paths), with sampled noise and,
   where the noise support is finite, exact noise: a compiled chunk of iterations
   (compile excluded), median over repeats. FLOPs of one iteration are counted from the
   model (as for "model FLOPs utilisation", :func:`model_flops`): every weight matrix's
   multiply-adds (the per-state head, ``2 w (w + k)`` per state, computed path and
   step, is 94-99% of them on beach bar and macro; the head's hidden layer recomputed in
   the backward pass is not counted, as in "model FLOPs"; sampled paths over a finite support
   are computed once each, packed, and the steps before a shared noise prefix's ``t_b``
   once per group: :func:`rows_per_step`) once forward in the rollout and twice in the
   backward pass; XLA's own cost analysis counts a ``lax.scan`` body once, so it is not used.
   Achieved GFLOP/s = FLOPs / time, against the best peak of item 1 and against a peak
   probed just before each repeat (the machine's speed drifts).
3. Training wall-clock (evaluation excluded) for beach-bar RSPG to reach fixed per-path
   exploitability thresholds (the paper's implementation: ~126 after 200 iterations at
   ~2.1 s/iteration, i.e. ~420 s), for a few noise modes and learning rates, seed 0
   (one curve each: ``--t126-paired`` takes the median over seeds).
4. Through the CLI: the command a user types, ``mfax train --game beach_bar --algo rspg
   --noise sample`` (with ``--iterations`` to bound it), in a process of its own, timed
   by its own output: the seconds per iteration between evaluations are the differences
   of ``wall_clock_s`` in its ``metrics.jsonl`` over ``eval_every`` (median over its
   chunks). Paired in each round with the bare training step (this process, the same
   chunk length) and, with ``--published``, with the paper's own code
   (``bench/published_rspg.py`` in a child process of the Python given by
   ``--published-python``); the order rotates between rounds and each ratio is the
   median over rounds of the ratios within a round (this shared machine drifts).

5. With ``--breakdown``: where one RSPG iteration's time goes (:func:`breakdown`), with
   sampled noise on each selected game. XLA's CPU profiler records a matrix product's
   dispatch, not the work Eigen's threads do for it, so the per-state head is weighed by
   ablation: the iteration against the same iteration with the head's width cut to 8,
   their difference beside the head's matrix-product FLOPs at the measured peak (its
   floor); the rest, the iteration with the small head, is profiled (``jax.profiler``):
   every executed XLA operation's time, summed by phase of the step (rollout forward,
   backward pass through the rollout, value recursions, drawing the paths, optimiser and
   the rest) and by kind (matrix products, scatter, gather, transcendental element-wise
   functions, buffer traffic, other element-wise work).

Usage::

    python bench/train_speed.py            # full (tens of minutes)
    python bench/train_speed.py --quick    # a smoke run (a few minutes)
    python bench/train_speed.py --cli-only --rounds 3 \\
        --published /path/to/CWibault-mfax --published-python /path/to/venv/bin/python
                                           # item 4 alone -> train_speed_cli.{md,json}
    python bench/train_speed.py --t126-paired --t126-noise sample --t126-paths 32 --t126-iterations 150 \\
        --published /path/to/CWibault-mfax --published-python /path/to/venv/bin/python
                                           # time to 126 with 32 sampled paths -> train_speed_t126_paired_sample32.*
    python bench/train_speed.py --macro-paired --rounds 3 \\
        --published /path/to/CWibault-mfax --published-python /path/to/venv/bin/python
                                           # macro RSPG against the paper's macro step -> train_speed_macro_paired.*
    python bench/train_speed.py --only macro --breakdown   # the macro rows and where their time goes
    python bench/train_speed.py --breakdown-only           # only where the time goes -> train_speed_breakdown.{md,json}
    PYTHONPATH=src python3 bench/train_speed.py --device-table  # items 1-2 on the default backend: on the GPU
                                           # machine -> train_speed_gpu.{md,json} (a few minutes); with
                                           # MFAX_MATMUL_PRECISION=tensorfloat32 -> train_speed_gpu_tensorfloat32.*
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import glob
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp

from benchutil import crossings, median_crossing
from mfax import compiling
from mfax.run.config import TrainConfig, resolve
from mfax.run.train import Trainer, train

PAPER_SECONDS_PER_ITERATION = 2.1
PAPER_EXPLOITABILITY_200 = 126.0
CASES = [("beach_bar", "sample"), ("beach_bar", "exact"), ("linear_quadratic", "sample")]
CASES += [("linear_quadratic", "exact"), ("macro", "sample")]


def compilations() -> list[dict]:
    """XLA's default compilation and mfax's (:mod:`mfax.compiling`), where they differ."""
    options = compiling.compiler_options()
    return [{}, options] if options else [{}]


@functools.cache
def _matmul(options: tuple):
    # at the products' precision of mfax's programs (a GPU's default would be TensorFloat-32)
    return jax.jit(compiling.precise(jnp.matmul), compiler_options=dict(options) or None)


def _gflops(shape_a, shape_b, repeats: int, options: dict) -> float:
    """Best float32 GFLOP/s of ``a @ b`` over ``repeats`` (compile excluded)."""
    a, b = jnp.ones(shape_a, jnp.float32), jnp.ones(shape_b, jnp.float32)
    f = _matmul(tuple(sorted(options.items())))
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * shape_a[0] * shape_a[1] * shape_b[1] / min(times) / 1e9


def matmul_peak(quick: bool) -> dict:
    """The machine's matmul peak: square products and the head's own shape, each the best
    of XLA's default compilation and mfax's (:mod:`mfax.compiling`: Eigen's products
    instead of YNNPACK's, measured faster for large squares on this machine)."""
    sizes = [1024, 2048] if quick else [1024, 2048, 3072]
    sizes += [] if jax.default_backend() == "cpu" else [4096, 8192]  # an accelerator peaks on larger products
    shapes = {f"square {n}": ((n, n), (n, n), 3) for n in sizes}
    rows = 128 * 101
    shapes[f"head {rows}x128x128"] = ((rows, 128), (128, 128), 20)
    return {name: max(_gflops(a, b, r, o) for o in compilations()) for name, (a, b, r) in shapes.items()}


def peak_now() -> float:
    """A quick probe of the current matmul rate (:func:`probe_size`, best of both compilations):
    this shared machine's speed drifts by 10-20% within minutes, so each timing is also
    compared with the peak measured right beside it."""
    n = probe_size()
    return max(_gflops((n, n), (n, n), 3, o) for o in compilations())


def probe_size() -> int:
    """The side of :func:`peak_now`'s square: 2048, 8192 on an accelerator (which runs a
    2048 product in about its dispatch time)."""
    return 2048 if jax.default_backend() == "cpu" else 8192


def rows_per_step(trainer: Trainer) -> list[int]:
    """How many paths an iteration runs the per-state head on at each step ``t``: every
    path, or the packed drawn paths (the capacity) when sampling over a finite support
    (an overflowing draw, about 1 in 1000 iterations, computes the whole support); before
    ``t_b`` of a shared noise prefix (beach bar: ``T // 2``), one per group."""
    solver = trainer.solver
    paths = solver.exact.num_paths if solver.exact is not None else trainer.config.paths
    computed = paths if solver.capacity is None else solver.capacity
    horizon = trainer.game.horizon
    shared = solver.shared  # a StructuralSolver's shared noise prefix, or None
    if shared is None:
        return [computed] * horizon
    groups = min(int(shared.reps.shape[0]), computed)
    return [groups if t < shared.until else computed for t in range(horizon)]


def model_flops(policy, rows: list[int]) -> float:
    """Matrix-product FLOPs of one training iteration: every weight matrix's
    multiply-adds, once forward in the rollout and twice backward (``3 x`` forward), with
    ``rows[t]`` paths at step ``t`` (:func:`rows_per_step`).

    Per path and step: the observation encoder, the GRU (RSPG), the aggregate layer and
    its projection into the head; per step: the state table (``n`` rows); per path,
    step and state: the head's hidden and output layers."""
    n = policy.game.n_states
    encoder = policy.obs_encoder.weight.size + policy.aggregate.weight.size + policy.aggregate_proj.weight.size
    if policy.gru is not None:
        encoder += policy.gru.weight_ih.size + policy.gru.weight_hh.size
    table = n * policy.state_proj.weight.size
    if policy.state_input == "features":
        table += n * policy.state_encoder.weight.size
    head = n * (policy.hidden.weight.size + policy.out.weight.size)
    forward = 2 * sum(r * (encoder + head) + table for r in rows)
    return 3 * forward


def head_flops(policy, rows: list[int]) -> float:
    """The per-state head's matrix-product FLOPs as an iteration computes them: the hidden
    layer forward, recomputed in the backward pass and twice backward (4 products), the
    output layer forward and twice backward (3), on ``rows[t]`` paths x ``n`` states."""
    hidden, out = policy.hidden.weight.size, policy.out.weight.size
    return 2 * sum(rows) * policy.game.n_states * (4 * hidden + 3 * out)


def _computed(row: dict) -> str:
    """The paths computed per step, and before a shared prefix's ``t_b`` where fewer."""
    rows = row.get("rows_per_step") or [row["distinct_paths_computed"]]
    shared = sum(1 for r in rows if r < max(rows))
    return f"{max(rows)}" + (f"; {min(rows)} for t < {shared}" if shared else "")


def iteration_speed(game: str, algo: str, noise: str, repeats: int, chunk: int, defaults: bool = False) -> dict:
    config = resolve(TrainConfig(game=game, algo=algo, noise=noise, iterations=10_000))
    trainer = Trainer.build(config)
    states = trainer.initial_states()
    t0 = time.perf_counter()
    # XLA's defaults for the comparison rows (mfax.compiling reads the switch when the
    # chunk is built)
    with mock.patch.dict(os.environ, {compiling.DEFAULTS_ENV: "1"} if defaults else {}):
        compiled = trainer.chunk_fn(chunk).lower(states).compile()
    compile_s = time.perf_counter() - t0
    states, metrics = compiled(states)  # warm-up
    jax.block_until_ready(metrics)
    times, beside = [], []
    for _ in range(repeats):
        beside.append(peak_now())
        t = time.perf_counter()
        states, metrics = compiled(states)
        jax.block_until_ready(metrics)
        times.append((time.perf_counter() - t) / chunk)
    sec = statistics.median(times)
    paths = trainer.solver.exact.num_paths if trainer.solver.exact is not None else config.paths
    rows = rows_per_step(trainer)
    distinct = max(rows)  # paths computed per step after a shared prefix
    flops = model_flops(trainer.policy(states, 0), rows)
    return {
        "game": game,
        "algo": algo,
        "noise": "exact" if trainer.solver.exact is not None else "sample",
        "compiler_options": "XLA defaults" if defaults else "mfax",
        "paths": paths,
        "distinct_paths_computed": distinct,
        "rows_per_step": rows,
        "seconds_per_iteration": sec,
        "seconds_per_iteration_fastest": min(times),
        "compile_s": compile_s,
        "gflop_per_iteration": flops / 1e9,
        "gflops": flops / sec / 1e9,
        # median over repeats of (achieved rate / the peak probed just before that repeat)
        "fraction_of_peak_beside": statistics.median(flops / t / 1e9 / p for t, p in zip(times, beside, strict=True)),
    }


def time_to_threshold(
    noise: str,
    lr: float,
    iterations: int,
    thresholds: list[float],
    eval_every: int,
    seed: int = 0,
    paths: int | None = None,
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            game="beach_bar",
            algo="rspg",
            noise=noise,
            lr=[lr],
            iterations=iterations,
            eval_every=eval_every,
            seed=seed,
            paths=paths,
        )
        summary = train(config, Path(tmp) / "run", progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    reached = {}
    for th in thresholds:
        hit = next((r for r in rows if r["exploitability"] <= th), None)
        reached[str(th)] = None if hit is None else {"iteration": hit["iteration"], "wall_clock_s": hit["wall_clock_s"]}
    return {
        "noise": noise,
        "lr": lr,
        "seed": seed,
        "iterations": iterations,
        "seconds_per_iteration": summary["seconds_per_iteration"],
        "final_exploitability": summary["final_exploitability"],
        "reached": reached,
        "curve": [(r["iteration"], r["wall_clock_s"], r["exploitability"]) for r in rows],
    }


CLI_COMMAND = ["train", "--game", "beach_bar", "--algo", "rspg", "--noise", "sample"]


class BareStep:
    """The bare training step of ``config`` (by default the CLI's: beach-bar RSPG, sampled
    noise, its default paths and network), compiled once as a chunk of ``length``
    iterations (compile and a warm-up chunk excluded from :meth:`time`)."""

    def __init__(self, length: int, config: TrainConfig | None = None):
        config = TrainConfig(game="beach_bar", algo="rspg", noise="sample") if config is None else config
        self.trainer = Trainer.build(resolve(config))
        self.length = length
        self.states = self.trainer.initial_states()
        self.fn = self.trainer.chunk_fn(length).lower(self.states).compile()
        self.states, metrics = self.fn(self.states)  # warm-up
        jax.block_until_ready(metrics)

    def time(self, repeats: int) -> list[float]:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            self.states, metrics = self.fn(self.states)
            jax.block_until_ready(metrics)
            times.append((time.perf_counter() - t) / self.length)
        return times


def cli_run(iterations: int) -> dict:
    """``mfax train`` as a user runs it (``python -m mfax.run.cli``, the mfax this process
    imports), in a process of its own; seconds per iteration from its ``metrics.jsonl``."""
    import mfax

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(mfax.__file__).parents[1]), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "mfax.run.cli", *CLI_COMMAND, "--iterations", str(iterations), "--out", str(out)]
        t0 = time.perf_counter()
        subprocess.run([*cmd, "--no-progress"], check=True, env=env, stdout=subprocess.DEVNULL)
        total = time.perf_counter() - t0
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        summary = json.loads((out / "summary.json").read_text())
    walls = [(r["iteration"], r["wall_clock_s"]) for r in rows if r["run"] == 0]
    per_chunk = [(w1 - w0) / (i1 - i0) for (i0, w0), (i1, w1) in itertools.pairwise(walls)]
    return {
        "per_chunk": per_chunk,
        "seconds_per_iteration": statistics.median(per_chunk),
        "mean_seconds_per_iteration": summary["seconds_per_iteration"],
        "session_seconds_per_iteration": summary.get("session_seconds_per_iteration"),
        "process_s": total,
    }


def published_run(tree: str, python: str, chunk: int, repeats: int, task: str = "beach_bar_1d") -> dict:
    """The paper's RSPG step on ``task`` (its beach bar, or ``endogenous``: the macro
    economy), timed by ``bench/published_rspg.py`` in ``python``."""
    script = Path(__file__).with_name("published_rspg.py")
    cmd = [python, str(script), "--tree", tree, "--chunk", str(chunk), "--repeats", str(repeats), "--task", task]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # its own mfax, not this one
    done = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["median"] = statistics.median(result["seconds_per_iteration"])
    return result


def cli_speed(rounds: int, iterations: int, repeats: int, published: str | None, published_python: str | None) -> dict:
    """Item 4: the CLI, the bare step and (optionally) the paper's code, paired by round."""
    length = TrainConfig().eval_every
    bare = BareStep(length)
    kinds = ["bare", "cli"] + (["published"] if published else [])
    out: dict = {"rounds": [], "iterations": iterations, "chunk": length, "command": "mfax " + " ".join(CLI_COMMAND)}
    for r in range(rounds):
        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
        row = {"order": order, "load": os.getloadavg()[0]}
        for kind in order:
            if kind == "bare":
                times = bare.time(repeats)
                row["bare"] = {"per_chunk": times, "seconds_per_iteration": statistics.median(times)}
            elif kind == "cli":
                row["cli"] = cli_run(iterations)
            else:
                row["published"] = published_run(published, published_python, 5, max(2, repeats // 2))
        print(json.dumps(row), flush=True)
        out["rounds"].append(row)
    rs = out["rounds"]
    out["cli_over_bare"] = statistics.median(
        x["cli"]["seconds_per_iteration"] / x["bare"]["seconds_per_iteration"] for x in rs
    )
    out["cli"] = statistics.median(x["cli"]["seconds_per_iteration"] for x in rs)
    out["bare"] = statistics.median(x["bare"]["seconds_per_iteration"] for x in rs)
    if published:
        out["published"] = statistics.median(x["published"]["median"] for x in rs)
        out["published_over_cli"] = statistics.median(
            x["published"]["median"] / x["cli"]["seconds_per_iteration"] for x in rs
        )
        out["published_over_bare"] = statistics.median(
            x["published"]["median"] / x["bare"]["seconds_per_iteration"] for x in rs
        )
    return out


def cli_lines(c: dict) -> list[str]:
    lines = [
        f"## Through the CLI: `{c['command']}` (`--iterations {c['iterations']}`), paired by round",
        "",
        f"Seconds per iteration between evaluations (the CLI's own `wall_clock_s`, chunks of {c['chunk']}: the "
        "median over its chunks), the bare step of the same configuration (this process, the same chunk length), "
        "and the paper's code (`bench/published_rspg.py`, when given). Each round runs them one after the other, "
        "the order rotating; ratios are medians over rounds of each round's ratio. Load: the 1-minute load "
        "average at the start of each round.",
        "",
        "| round | load | bare step s/it | CLI s/it | CLI / bare | published s/it | published / CLI |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(c["rounds"]):
        b, cl = r["bare"]["seconds_per_iteration"], r["cli"]["seconds_per_iteration"]
        p = r.get("published", {}).get("median")
        lines.append(
            f"| {i + 1} | {r['load']:.1f} | {b:.4g} | {cl:.4g} | {cl / b:.2f} | "
            + (f"{p:.4g} | {p / cl:.2f}x |" if p else "n/a | n/a |")
        )
    summary = f"Medians: bare {c['bare']:.4g} s/it, CLI {c['cli']:.4g} s/it, CLI / bare {c['cli_over_bare']:.2f}"
    if "published" in c:
        summary += (
            f"; published {c['published']:.4g} s/it, published / CLI {c['published_over_cli']:.2f}x, "
            f"published / bare {c['published_over_bare']:.2f}x"
        )
    return [*lines, "", summary + "."]


PHASES = (  # (regular expression on JAX's op_name, phase), the first match wins
    (r"transpose\(jvp\(", "backward pass through the rollout (head, GRU)"),
    (r"jvp\(", "rollout forward (head, kernel, push-forward, rewards)"),
    (r"/(closed_call|branch_\d+_fun)/while/", "value recursions (Q^pi, V*)"),
    (r"searchsorted|_uniform|threefry", "drawing the paths"),
)
KINDS = (
    ("scatter", "scatter"),
    ("gather", "gather"),
    ("dynamic_update_slice", "buffers (stack, slice, copy, fill)"),
    ("dynamic_slice", "buffers (stack, slice, copy, fill)"),
    ("broadcast_in_dim", "buffers (stack, slice, copy, fill)"),
    ("concatenate", "buffers (stack, slice, copy, fill)"),
    ("/exp", "transcendental (exp, log, logistic, pow)"),
    ("/log", "transcendental (exp, log, logistic, pow)"),
    ("logistic", "transcendental (exp, log, logistic, pow)"),
    ("/pow", "transcendental (exp, log, logistic, pow)"),
)


def _classify(op: str, op_name: str) -> tuple[str, str]:
    """(phase, kind) of one executed XLA operation, from its name and JAX's op_name."""
    phase = next((label for key, label in PHASES if re.search(key, op_name)), "optimiser and the rest")
    if op.startswith(("dot", "custom-call")):
        return phase, "matrix products"
    if op.startswith(("copy", "wrapped_copy", "wrapped_broadcast")):
        return phase, "buffers (stack, slice, copy, fill)"
    return phase, next(
        (label for key, label in KINDS if key in op_name.rsplit("/", 1)[-1] or key in op_name[-40:]),
        "other element-wise and reductions",
    )


SMALL_WIDTH = 8


def breakdown(game: str, peak_gflops: float, algo: str = "rspg", noise: str = "sample") -> dict:
    """Where one training iteration's time goes.

    XLA's CPU profiler records the dispatch of a matrix product, not the work Eigen's
    threads then do for it (30 products of 10302 x 128 x 128 taking 40 ms of wall-clock
    show about 2 ms of events), so a profile of the training program cannot weigh its
    per-state head. The head is weighed by ablation instead: the iteration with the
    game's network against the same iteration with the head's width cut to
    ``SMALL_WIDTH`` (``--hp mlp_width=8``: its products become negligible), their
    difference set beside the head's matrix-product FLOPs (:func:`head_flops`) at the
    measured peak. The rest, the iteration with the small head, is profiled
    (``jax.profiler``): each executed XLA operation's time summed by (phase, kind)
    (:func:`_classify`, from the ``op_name`` JAX records in the compiled program); its
    operations cover its wall-clock up to the runtime's own work between them."""
    from jax.profiler import ProfileData

    base = TrainConfig(game=game, algo=algo, noise=noise, iterations=10_000)
    chunk, repeats = 2, 3
    full = BareStep(chunk, base)
    full_s = statistics.median(full.time(repeats))
    small = BareStep(chunk, dataclasses.replace(base, hparams={"mlp_width": SMALL_WIDTH}))
    small_s = statistics.median(small.time(repeats))
    flops = head_flops(full.trainer.policy(full.states, 0), rows_per_step(full.trainer))
    compiled, small_states = small.fn, small.states
    op_names = {}
    for line in compiled.as_text().splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = .*?metadata=\{[^}]*op_name=\"([^\"]*)\"", line)
        if m:
            op_names[m.group(1)] = m.group(2)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with jax.profiler.trace(tmp):
            small_states, metrics = compiled(small_states)
            jax.block_until_ready(metrics)
        wall = (time.perf_counter() - t0) / chunk
        profile = ProfileData.from_file(glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)[0])
    seconds: collections.Counter = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines if plane.name == "/host:CPU" else []:
            if "XLAEigen" not in line.name:  # the threads that execute the program's operations
                continue
            for event in line.events:
                if event.name in op_names and not event.name.startswith(("while", "conditional", "call")):
                    seconds[_classify(event.name, op_names[event.name])] += event.duration_ns / 1e9 / chunk
    return {
        "game": game,
        "algo": algo,
        "noise": noise,
        "seconds_per_iteration": full_s,
        "seconds_small_head": small_s,
        "small_width": SMALL_WIDTH,
        "head_gflop": flops / 1e9,
        "peak_gflops": peak_gflops,
        "wall_s_profiled": wall,
        "seconds": seconds,
    }


def breakdown_lines(result: dict) -> list[str]:
    seconds = result["seconds"]
    total = sum(seconds.values())
    full, small = result["seconds_per_iteration"], result["seconds_small_head"]
    floor = result["head_gflop"] / result["peak_gflops"]
    phases = sorted({p for p, _ in seconds}, key=lambda p: -sum(v for (q, _), v in seconds.items() if q == p))
    kinds = sorted({k for _, k in seconds}, key=lambda k: -sum(v for (_, j), v in seconds.items() if j == k))
    lines = [
        f"### {result['game']} {result['algo']} ({result['noise']} noise): seconds per iteration",
        "",
        "| part | s / iteration |",
        "|---|---:|",
        f"| the iteration (the game's network) | {full:.3f} |",
        f"| the same with the per-state head's width {result['small_width']} (`--hp mlp_width="
        f"{result['small_width']}`): everything but the head | {small:.3f} |",
        f"| difference: the per-state head | {full - small:.3f} |",
        f"| the head's matrix products ({result['head_gflop']:.1f} GFLOP) at the measured peak "
        f"({result['peak_gflops']:.0f} GFLOP/s): its floor | {floor:.3f} |",
        "",
        f"Everything but the head, by phase and kind: an XLA profile of the iteration with the small head "
        f"({result['wall_s_profiled']:.3f} s / iteration under the profiler; its operations add up to {total:.3f} s, "
        "the rest is the runtime between them).",
        "",
        "| phase | " + " | ".join(kinds) + " | total | share |",
        "|---|" + "---:|" * (len(kinds) + 2),
    ]
    for p in phases:
        row = [seconds.get((p, k), 0.0) for k in kinds]
        lines.append(
            f"| {p} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {sum(row):.3f} | {100 * sum(row) / total:.0f}% |"
        )
    col = [sum(seconds.get((p, k), 0.0) for p in phases) for k in kinds]
    lines.append("| all | " + " | ".join(f"{v:.3f}" for v in col) + f" | {total:.3f} | 100% |")
    lines.append("| share | " + " | ".join(f"{100 * v / total:.0f}%" for v in col) + " | | |")
    return lines


def against_peak(speed: list[dict], before: dict, after: dict) -> dict:
    """The best of the peaks measured before and after the timings; each row's rate
    against it (median, and fastest repeat against the fastest product: best against best)."""
    peak = {k: max(v, after[k]) for k, v in before.items()}
    peak_gflops = max(peak.values())
    for row in speed:
        row["fraction_of_peak"] = row["gflops"] / peak_gflops
        fastest_gflops = row["gflop_per_iteration"] / row["seconds_per_iteration_fastest"]
        row["fraction_of_peak_fastest"] = fastest_gflops / peak_gflops
    return peak


def setup_line() -> str:
    """The machine, its devices, JAX and the products' precision (for a table's head)."""
    kinds = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return (
        f"{platform.platform()}; {jax.device_count()} {jax.default_backend()} device(s) ({kinds}); "
        f"JAX {jax.__version__}; float32, matrix products at `MFAX_MATMUL_PRECISION={compiling.matmul_precision()}`"
    )


def speed_table(speed: list[dict], peak: dict, setup: str | None = None) -> list[str]:
    """The seconds-per-iteration table of ``speed`` rows (:func:`iteration_speed`) against
    ``peak``, headed by ``setup`` (default: this machine's :func:`setup_line`)."""
    lines = [
        f"{setup or setup_line()}. Matmul peak (best of, measured before and after the timings): "
        + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in peak.items())
        + ". s / iteration and GFLOP/s: median over repeats. '% of peak': the median rate against "
        "the best of these peaks; 'fastest': the fastest repeat against the same peak (best "
        f"against best); 'beside': median over repeats of the rate against a square-{probe_size()} probe "
        "run just before each repeat (the machine's speed drifts).",
        "",
        "| game | algo | noise | compiled with | paths (distinct computed) | s / iteration "
        "| vs the paper's reported 2.1 s (its hardware; the paired figure is the CLI section's) "
        "| GFLOP / it | GFLOP/s | % of peak | % of peak, fastest | % of peak beside |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in speed:
        sec = r["seconds_per_iteration"]
        ratio = f"{PAPER_SECONDS_PER_ITERATION / sec:.2f}x" if r["game"] == "beach_bar" else "n/a"
        lines.append(
            f"| {r['game']} | {r['algo']} | {r['noise']} | {r['compiler_options']} | {r['paths']} "
            f"({_computed(r)}) | {sec:.4g} | {ratio} | {r['gflop_per_iteration']:.1f} "
            f"| {r['gflops']:.1f} | {100 * r['fraction_of_peak']:.0f}% | {100 * r['fraction_of_peak_fastest']:.0f}% "
            f"| {100 * r['fraction_of_peak_beside']:.0f}% |"
        )
    return lines


def device_table(out: Path, quick: bool, only: list[str]) -> None:
    """Items 1-2 alone on the default backend (the GPU machine's table): the matmul peak
    and SPG / RSPG seconds per iteration on every game at the published settings, into
    ``train_speed_<backend>.{md,json}`` (``_<precision>`` added when
    ``MFAX_MATMUL_PRECISION`` is not the default float32, ``_<games>`` with ``--only``)."""
    repeats, chunk = (1, 2) if quick else (5, 5)
    backend, precision = jax.default_backend(), compiling.matmul_precision()
    stem = f"train_speed_{backend}" + ("" if precision == "float32" else f"_{precision}")
    stem += ("" if not only else "_" + "_".join(only)) + ("_quick" if quick else "")  # never the committed table
    before = matmul_peak(quick)
    speed = []
    for game, noise in [c for c in CASES if not only or c[0] in only]:
        for algo in ("spg", "rspg"):
            row = iteration_speed(game, algo, noise, min(repeats, 3) if game == "macro" else repeats, chunk)
            speed.append(row)
            print(json.dumps(row), flush=True)
            # kept as it goes: a run stopped by a time limit leaves the rows done
            (out / f"{stem}.json").write_text(json.dumps({"setup": setup_line(), "peak": before, "speed": speed}))
    peak = against_peak(speed, before, matmul_peak(quick))
    text = "\n".join([f"# Structural solvers: training speed on the {backend}", "", *speed_table(speed, peak)]) + "\n"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps({"setup": setup_line(), "peak": peak, "speed": speed}, indent=1))
    print(text)


def t126_paired(
    rounds: int,
    published: str,
    published_python: str,
    lr: float = 1e-2,
    seeds: int = 5,
    noise: str = "exact",
    paths: int | None = None,
    cap: int = 100,
) -> dict:
    """Beach-bar RSPG (``noise``: exact, or ``paths`` sampled paths per iteration; ``lr``;
    ``cap`` iterations planned, which also sets the learning rate's decay) to the paper's
    200-iteration exploitability, against the paper's code timed in the same run.

    For each of ``seeds`` network initialisations (seeds ``0..seeds-1``) the first iteration
    whose policy is at or below 126 and the one from which it stays there, read with an
    evaluation after every iteration (each training is deterministic: the curve is the one
    of any ``--eval-every``); ``k``, the median over seeds, is the figure (one seed alone
    says little: the crossing moves by tens of iterations between seeds). Then rounds
    alternating the bare training step of that setting (chunks of 5; its time does not depend on the seed)
    with the paper's step; each round's ratio is ``200 x paper s/it / (k x mfax s/it)``,
    the median over rounds."""
    runs = []
    for seed in range(seeds):
        reach = time_to_threshold(noise, lr, cap, [PAPER_EXPLOITABILITY_200], 1, seed=seed, paths=paths)
        first, stays = crossings([(i, e) for i, _, e in reach["curve"]], PAPER_EXPLOITABILITY_200)
        runs.append({"seed": seed, "first": first, "stays": stays, "curve": reach["curve"]})
        print(json.dumps({"seed": seed, "first": first, "stays": stays}), flush=True)
    k = median_crossing([r["first"] for r in runs], cap)
    if k is None:
        raise SystemExit(
            f"t126: {noise} lr {lr:g} reached {PAPER_EXPLOITABILITY_200:g} in {cap} iterations on fewer "
            f"than half of {seeds} seeds"
        )
    stays = median_crossing([r["stays"] for r in runs], cap)
    bare = BareStep(5, TrainConfig(game="beach_bar", algo="rspg", noise=noise, paths=paths, lr=[lr], iterations=cap))
    out: dict = {"lr": lr, "noise": noise, "paths": bare.trainer.config.paths if noise == "sample" else None}
    out |= {"iterations": cap, "iteration": k, "stays": stays, "seeds": runs, "rounds": []}
    for r in range(rounds):
        row = {"load": os.getloadavg()[0]}
        for kind in ("bare", "published") if r % 2 == 0 else ("published", "bare"):
            if kind == "bare":
                row["bare"] = statistics.median(bare.time(4))
            else:
                row["published"] = published_run(published, published_python, 5, 2)["median"]
        row["ratio"] = 200 * row["published"] / (k * row["bare"])
        print(json.dumps(row), flush=True)
        out["rounds"].append(row)
    out["ratio"] = statistics.median(x["ratio"] for x in out["rounds"])
    return out


def macro_paired(rounds: int, published: str, published_python: str, repeats: int = 2) -> dict:
    """Macro RSPG at the published settings (200 x 5 states, T = 128, 8 sampled paths, the
    game's network), the bare training step against the paper's own step on its macro
    economy (``published_rspg.py --task endogenous``: 8 environments, its continuous-action
    policy), in rounds whose order alternates; chunks of 2 iterations (the paper's step
    takes seconds), ``repeats`` timed chunks each, compile excluded on both sides."""
    bare = BareStep(2, TrainConfig(game="macro", algo="rspg", noise="sample"))
    out: dict = {"rounds": [], "chunk": 2, "repeats": repeats}
    for r in range(rounds):
        order = ["bare", "published"] if r % 2 == 0 else ["published", "bare"]
        row: dict = {"order": order, "load": os.getloadavg()[0]}
        for kind in order:
            if kind == "bare":
                times = bare.time(repeats)
                row["bare"] = {"per_chunk": times, "seconds_per_iteration": statistics.median(times)}
            else:
                row["published"] = published_run(published, published_python, 2, repeats, task="endogenous")
        print(json.dumps(row), flush=True)
        out["rounds"].append(row)
    rs = out["rounds"]
    out["bare"] = statistics.median(x["bare"]["seconds_per_iteration"] for x in rs)
    out["published"] = statistics.median(x["published"]["median"] for x in rs)
    out["published_over_bare"] = statistics.median(
        x["published"]["median"] / x["bare"]["seconds_per_iteration"] for x in rs
    )
    return out


def macro_paired_lines(m: dict) -> list[str]:
    lines = [
        "## Macro RSPG against the paper's code, paired by round",
        "",
        "Seconds per training iteration at the published settings (200 x 5 states, T = 128, 8 sampled paths): "
        "mfax's bare step (the compiled training chunk a `mfax train --game macro --algo rspg` runs, "
        f"chunks of {m['chunk']}) and the paper's own step on its macro economy (`bench/published_rspg.py "
        "--task endogenous`, `configs/endogenous_rspg.yaml`), alternating; the median of "
        f"{m['repeats']} timed chunks each, compile excluded. Load: the 1-minute load average at the start of "
        "each round.",
        "",
        "| round | load | mfax s/it | published s/it | published / mfax |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(m["rounds"]):
        b, p = r["bare"]["seconds_per_iteration"], r["published"]["median"]
        lines.append(f"| {i + 1} | {r['load']:.1f} | {b:.4g} | {p:.4g} | {p / b:.2f}x |")
    summary = (
        f"Medians: mfax {m['bare']:.4g} s/it, the paper's code {m['published']:.4g} s/it, "
        f"published / mfax {m['published_over_bare']:.2f}x (the median of the rounds' ratios)."
    )
    return [*lines, "", summary]


def t126_setting(t: dict) -> str:
    """The noise of a ``t126_paired`` result in words (results before it had only exact noise)."""
    if t.get("noise", "exact") == "exact":
        return "Exact noise (every path of the support, 102, each iteration)"
    return f"Sampled noise, {t['paths']} paths drawn each iteration"


def t126_name(noise: str, paths: int | None) -> str:
    """The result files' stem of ``--t126-paired``: exact noise keeps its old name."""
    return "train_speed_t126_paired" + ("" if noise == "exact" else f"_sample{paths}")


def t126_lines(t: dict) -> list[str]:
    k, stays, th = t["iteration"], t["stays"], PAPER_EXPLOITABILITY_200
    seeds = t["seeds"]
    lines = [
        "## Beach-bar RSPG to the paper's 200-iteration exploitability (126), paired with the paper's code",
        "",
        f"{t126_setting(t)}, lr {t['lr']:g}, {t['iterations']} iterations planned, seeds 0-{len(seeds) - 1} (the "
        "network's initialisation); each training evaluated exactly after every iteration (per-path "
        f"exploitability, every noise path). The figure is the median over seeds of the first iteration at or "
        f"below {th:g}: **{k:g}**. Each round times the bare training step of that setting (chunks of 5, median "
        "of 4) and the paper's step (`bench/published_rspg.py`, 128 sampled paths, its best learning rate "
        "reaches ~126 after 200 iterations), order alternating; ratio = 200 x paper s/it / "
        f"({k:g} x mfax s/it).",
        "",
        f"| seed | first at or below {th:g} | stays at or below from | exploitability at {t['iterations']} |",
        "|---:|---:|---:|---:|",
    ]

    def it(v):
        return f"not in {t['iterations']}" if v is None else str(v)

    for r in seeds:
        lines.append(f"| {r['seed']} | {it(r['first'])} | {it(r['stays'])} | {r['curve'][-1][2]:.1f} |")
    lines += [
        f"| median | {k:g} | {'-' if stays is None else f'{stays:g}'} | |",
        "",
        "| round | load | mfax s/it | paper s/it | paper 200 its, s | mfax to 126, s | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, x in enumerate(t["rounds"], 1):
        lines.append(
            f"| {i} | {x['load']:.1f} | {x['bare']:.3f} | {x['published']:.3f} | {200 * x['published']:.0f} "
            f"| {k * x['bare']:.1f} | {x['ratio']:.1f}x |"
        )

    def at(iteration):
        return statistics.median(200 * x["published"] / (iteration * x["bare"]) for x in t["rounds"])

    firsts = [r["first"] for r in seeds if r["first"] is not None]
    spread = f"{at(max(firsts)):.1f}x-{at(min(firsts)):.1f}x over the seeds that cross" if firsts else ""
    tail = "" if stays is None else f"; to staying at or below (median {stays:g}): {at(stays):.1f}x"
    return [
        *lines,
        "",
        f"Median ratio to the first crossing: **{t['ratio']:.1f}x** (target 30x; {spread}){tail}.",
        "",
        *(
            f"Curve of seed {r['seed']} (iteration, exploitability): "
            + ", ".join(f"({i}, {e:.1f})" for i, _, e in r["curve"])
            for r in seeds
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--out", default="bench/results", help="directory for train_speed.{md,json}")
    parser.add_argument("--cli-only", action="store_true", help="only item 4, into train_speed_cli.{md,json}")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of item 4")
    parser.add_argument("--cli-iterations", type=int, default=50, help="--iterations of each CLI run (item 4)")
    parser.add_argument("--published", help="a checkout of the paper's repository (CWibault/mfax), for item 4")
    parser.add_argument("--published-python", help="a Python with the paper's dependencies (not mfax)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated games (e.g. macro): only their rows, no threshold runs unless beach_bar is among "
        "them; written to train_speed_<games>.{md,json}",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="add where an RSPG iteration's time goes (the head by ablation, the rest profiled)",
    )
    parser.add_argument(
        "--breakdown-only",
        action="store_true",
        help="only the matmul peak and where an RSPG iteration's time goes, for the --only games (default: all), "
        "into train_speed_breakdown.{md,json}",
    )
    parser.add_argument(
        "--device-table",
        action="store_true",
        help="only items 1-2 on the default backend (e.g. the GPU), for the --only games (default: all), into "
        "train_speed_<backend>.{md,json}",
    )
    parser.add_argument(
        "--t126-paired",
        action="store_true",
        help="only the time to 126 (--t126-noise, --t126-lr, --t126-seeds seeds, --t126-iterations) paired with "
        "the paper's code (--published), into train_speed_t126_paired.{md,json}",
    )
    parser.add_argument("--t126-lr", type=float, default=1e-2, help="learning rate of --t126-paired")
    parser.add_argument(
        "--t126-noise",
        choices=("exact", "sample"),
        default="exact",
        help="noise of --t126-paired's training (sample: --t126-paths paths drawn each iteration; written to "
        "train_speed_t126_paired_sample<paths>.{md,json})",
    )
    parser.add_argument(
        "--t126-paths", type=int, default=None, help="paths per iteration with --t126-noise sample (default 128)"
    )
    parser.add_argument(
        "--t126-iterations",
        type=int,
        default=100,
        help="iterations of each --t126-paired training (also the learning rate's decay length; default 100)",
    )
    parser.add_argument(
        "--macro-paired",
        action="store_true",
        help="only macro RSPG's bare step against the paper's step on its macro economy (--published), "
        "--rounds rounds, into train_speed_macro_paired.{md,json}",
    )
    parser.add_argument(
        "--t126-seeds", type=int, default=5, help="seeds 0..N-1 whose median crossing --t126-paired reports"
    )
    args = parser.parse_args()
    only = [g for g in args.only.split(",") if g]
    unknown = [g for g in only if g not in dict(CASES)]
    if unknown:
        parser.error(f"--only: unknown game {', '.join(unknown)}; allowed: {', '.join(dict.fromkeys(dict(CASES)))}")
    modes = [
        m for m in ("cli_only", "breakdown_only", "device_table", "t126_paired", "macro_paired") if getattr(args, m)
    ]
    if len(modes) > 1:
        parser.error("choose one of " + ", ".join("--" + m.replace("_", "-") for m in modes))
    if args.published and not args.published_python:
        parser.error("--published needs --published-python")
    if args.t126_paired and not args.published:
        parser.error("--t126-paired needs --published and --published-python")
    if args.macro_paired and not args.published:
        parser.error("--macro-paired needs --published and --published-python")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    least = 2 * TrainConfig().eval_every  # two evaluations: one chunk's seconds per iteration
    if args.cli_iterations < least:
        parser.error(f"--cli-iterations must be at least {least} (two evaluations apart), got {args.cli_iterations}")
    if args.published and not (Path(args.published) / "mfax" / "algos").is_dir():
        parser.error(f"--published: {args.published} is not a checkout of the paper's repository (no mfax/algos in it)")
    if args.published_python and not os.access(args.published_python, os.X_OK):
        parser.error(f"--published-python: {args.published_python} is not an executable Python")
    if args.t126_seeds < 1:
        parser.error(f"--t126-seeds must be at least 1, got {args.t126_seeds}")
    if not args.t126_lr > 0.0:
        parser.error(f"--t126-lr must be > 0, got {args.t126_lr:g}")
    if args.t126_iterations < 1:
        parser.error(f"--t126-iterations must be at least 1, got {args.t126_iterations}")
    if args.t126_paths is not None and (args.t126_paths < 1 or args.t126_noise != "sample"):
        parser.error(f"--t126-paths takes a number >= 1 with --t126-noise sample, got {args.t126_paths}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.cli_only or args.t126_paired or args.macro_paired or not (args.device_table or args.breakdown_only):
        # these modes start processes of their own beside this one, on one accelerator: none
        # may take three quarters of its memory up front, as JAX does on a GPU (the child
        # `mfax train` ran out of memory there); a CPU ignores the setting
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.device_table:
        device_table(out, args.quick, only)
        return
    if args.macro_paired:
        m = macro_paired(args.rounds, args.published, args.published_python)
        text = "# Macro RSPG: mfax and the paper's code\n\n" + f"{setup_line()}.\n\n" + "\n".join(macro_paired_lines(m))
        (out / "train_speed_macro_paired.md").write_text(text + "\n")
        (out / "train_speed_macro_paired.json").write_text(json.dumps(m, indent=1))
        print(text)
        return
    if args.t126_paired:
        t = t126_paired(
            args.rounds,
            args.published,
            args.published_python,
            args.t126_lr,
            args.t126_seeds,
            args.t126_noise,
            args.t126_paths,
            args.t126_iterations,
        )
        text = "# Time to 126\n\n" + f"{setup_line()}.\n\n" + "\n".join(t126_lines(t)) + "\n"
        stem = t126_name(args.t126_noise, t["paths"])
        (out / f"{stem}.md").write_text(text)
        (out / f"{stem}.json").write_text(json.dumps(t, indent=1))
        print(text)
        return
    if args.breakdown_only:
        peak = matmul_peak(args.quick)
        profiles = [breakdown(g, max(peak.values())) for g in dict.fromkeys(only or [g for g, _ in CASES])]
        lines = [
            "# Where a structural training iteration's time goes",
            "",
            f"{setup_line()}. Matmul peak: " + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in peak.items()) + ".",
            "",
        ]
        for p in profiles:
            lines += [*breakdown_lines(p), ""]
        text = "\n".join(lines)
        stem = "train_speed_breakdown" + ("_quick" if args.quick else "")
        (out / f"{stem}.md").write_text(text)
        rows = [{**p, "seconds": [[*k, v] for k, v in p["seconds"].items()]} for p in profiles]
        (out / f"{stem}.json").write_text(json.dumps({"peak": peak, "breakdown": rows}, indent=1))
        print(text)
        return
    if args.cli_only:
        c = cli_speed(args.rounds, args.cli_iterations, 4, args.published, args.published_python)
        head = f"# Training speed through the CLI\n\n{setup_line()}.\n\n"
        text = head + "\n".join(cli_lines(c)) + "\n"
        (out / "train_speed_cli.md").write_text(text)
        (out / "train_speed_cli.json").write_text(json.dumps(c, indent=1))
        print(text)
        return
    repeats, chunk = (1, 2) if args.quick else (7, 5)

    peak = matmul_peak(args.quick)
    speed = []
    cases = [(g, n, a, False) for g, n in CASES for a in ("spg", "rspg")]
    # the same programs compiled with XLA's defaults, for the effect of mfax.compiling
    cases += [("beach_bar", "sample", "rspg", True), ("beach_bar", "exact", "rspg", True)]
    cases += [("macro", "sample", "rspg", True)]
    cases = [c for c in cases if not only or c[0] in only]
    for game, noise, algo, defaults in cases:
        row = iteration_speed(game, algo, noise, min(repeats, 3) if game == "macro" else repeats, chunk, defaults)
        speed.append(row)
        print(json.dumps(row))
    # the peak again after the timings (this machine's speed drifts): the best of both
    peak = against_peak(speed, peak, matmul_peak(args.quick))

    thresholds = [300.0, 200.0, PAPER_EXPLOITABILITY_200]
    runs = (
        [("exact", 1e-2, 20)]
        if args.quick
        else [("exact", 1e-2, 100), ("exact", 3e-3, 150), ("sample", 1e-2, 100), ("exact", 1e-3, 200)]
    )
    runs = runs if not only or "beach_bar" in only else []
    games = list(dict.fromkeys(only or [g for g, _ in CASES]))
    profiles = [breakdown(g, max(peak.values())) for g in games] if args.breakdown else []
    reach = [time_to_threshold(noise, lr, its, thresholds, 5) for noise, lr, its in runs]
    for r in reach:
        print(json.dumps({k: v for k, v in r.items() if k != "curve"}))
    cli = (
        cli_speed(
            1 if args.quick else args.rounds,
            20 if args.quick else args.cli_iterations,
            2 if args.quick else 4,
            args.published,
            args.published_python,
        )
        if not only or "beach_bar" in only
        else None
    )

    paper_total = 200 * PAPER_SECONDS_PER_ITERATION
    lines = ["# Structural solvers: training speed", "", *speed_table(speed, peak)]
    threshold_lines = [
        "",
        f"## Beach-bar RSPG: training wall-clock to per-path exploitability thresholds (paper: "
        f"{PAPER_EXPLOITABILITY_200:g} after 200 iterations, ~{paper_total:.0f} s), seed 0",
        "",
        "| noise | lr | s / it | " + " | ".join(f"<= {t:g}: it, s" for t in thresholds) + " | speed-up to "
        f"{PAPER_EXPLOITABILITY_200:g} vs the paper's reported ~{paper_total:.0f} s (its hardware) | final |",
        "|---|---:|---:|" + "---|" * len(thresholds) + "---:|---:|",
    ]
    for r in reach:
        cells = []
        for t in thresholds:
            hit = r["reached"][str(t)]
            cells.append("not reached" if hit is None else f"{hit['iteration']}, {hit['wall_clock_s']:.1f}")
        hit = r["reached"][str(PAPER_EXPLOITABILITY_200)]
        speedup = "n/a" if hit is None else f"{paper_total / hit['wall_clock_s']:.1f}x"
        threshold_lines.append(
            f"| {r['noise']} | {r['lr']:g} | {r['seconds_per_iteration']:.3f} | "
            + " | ".join(cells)
            + f" | {speedup} | {r['final_exploitability']:.1f} |"
        )
    lines += threshold_lines if runs else []
    if cli:
        lines += ["", *cli_lines(cli)]
    if profiles:
        lines += ["", "## Where the time goes (`--breakdown`)", ""]
        for p in profiles:
            lines += [*breakdown_lines(p), ""]
    text = "\n".join(lines) + "\n"
    stem = ("train_speed" if not only else "train_speed_" + "_".join(only)) + ("_quick" if args.quick else "")
    (out / f"{stem}.md").write_text(text)
    breakdowns = [{**p, "seconds": [[*k, v] for k, v in p["seconds"].items()]} for p in profiles]
    (out / f"{stem}.json").write_text(
        json.dumps({"peak": peak, "speed": speed, "reach": reach, "cli": cli, "breakdown": breakdowns}, indent=1)
    )
    print(text)


if __name__ == "__main__":
    main()
