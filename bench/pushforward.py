"""Benchmark of the exact push-forward: time and memory versus grid size.

What is measured, for each game and grid size (``n`` states, ``m`` actions, kernel
support ``K`` of the flattened kernel, horizon ``T`` = the game's default; two-stage
kernels, beach bar and macro, touch fewer entries than ``n m K``, see
:class:`mfax.games.Kernel`):

* **step**: one exact step (kernel construction + push-forward) for ``B`` noise paths,
  ``jax.jit(jax.vmap(mfax.dynamics.step))`` with per-path ``mu (B, n)`` and
  ``probs (B, n, m)`` and ``method="scatter"``; the median wall time of several calls
  after a warm-up call.
* **rollout**: ``mfax.dynamics.rollout_batch(game, Uniform(n, m), noise, record=False)``
  over ``B`` sampled noise paths (all ``T`` steps in one compiled ``lax.scan``); the
  median of several calls after a warm-up call. The compiled program is obtained with
  ``jax.jit(...).lower(...).compile()`` so that XLA's own memory analysis is available.
* **memory**: every configuration runs in a fresh subprocess, so ``ru_maxrss`` (peak
  resident set size) belongs to that configuration alone; the RSS right after JAX has
  started (the baseline, ~0.2 GB) is reported too. XLA's buffer sizes come from
  ``compiled.memory_analysis()`` (``temp`` = scratch buffers, plus argument and output).
* **per element**: time divided by ``n*m*K*B`` (step) or ``n*m*K*B*T`` (rollout). The
  work is ``O(n m K)`` per step and path, so this column should stay flat.
* **growth exponents**: log-log least squares of rollout time per path and of
  (peak RSS - baseline) per path against ``n*m*K``, over the sizes with ``n >= 1000``
  (dividing by ``B`` keeps rows whose ``B`` had to be reduced comparable).
* **dense vs scatter**: for ``n <= 1000``, one step with ``method="dense"`` (one-hot
  operator and a matrix product, ``O(n^2 m K)``) against ``method="scatter"``, in the
  same subprocess and at the same ``B``.

Budget: ``B = 128`` unless the rollout, extrapolated from the previous (smaller) size of
the same game, would exceed ``--rollout-target`` seconds per call (so that warm-up and
repeats stay within about three minutes per configuration), or XLA's memory analysis of
the compiled program exceeds ``--mem-cap-gb``; then ``B`` is halved until it fits and the
``B`` column is starred. Dense steps whose one-hot operator would exceed
``--dense-cap-gb`` run at a smaller ``B`` (both methods at that ``B``).

Timings are only as good as the machine is quiet: the 1-minute load average is recorded
at the start and end of every configuration, and the minimum time of each configuration
is kept in the JSON beside the median. Results are rewritten after every configuration
(flagged as partial until the run ends), so a stopped run keeps what it measured.

Usage::

    python bench/pushforward.py            # full run, ~20 minutes on 2 idle CPU cores
    python bench/pushforward.py --quick    # smoke test: small sizes, B = 8, about half a minute
    python bench/pushforward.py --out DIR  # write DIR/pushforward.{md,json}

Only the full run writes ``pushforward.{md,json}``; ``--quick`` or a subset of
``--games`` adds them to the name (``pushforward_quick``, ``pushforward_beach_bar``, ...).

JAX runs on whatever default backend is present (CPU here), in float32.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from argparse import SUPPRESS
from pathlib import Path
from typing import Any

from benchutil import ArgumentParser, out_dir, positive, positive_float, stem, subset, wrote

# Grid sizes: the parameter that sets the number of states, per game.
FULL_SIZES: dict[str, tuple[str, list[int], dict[str, Any]]] = {
    "linear_quadratic": ("num_states", [100, 1_000, 10_000, 100_000], {}),
    "beach_bar": ("num_states", [100, 1_000, 10_000, 100_000], {}),
    "macro": ("num_wealth", [20, 200, 2_000, 20_000], {"num_income": 5}),
}
# Extra sizes (n <= 1000) for the dense-vs-scatter comparison.
FULL_COMPARE: dict[str, list[int]] = {
    "linear_quadratic": [30, 100, 300, 1_000],
    "beach_bar": [30, 100, 300, 1_000],
    "macro": [6, 20, 60, 200],
}
QUICK_SIZES: dict[str, tuple[str, list[int], dict[str, Any]]] = {
    "linear_quadratic": ("num_states", [100, 300], {}),
    "beach_bar": ("num_states", [100, 300], {}),
    "macro": ("num_wealth", [20, 60], {"num_income": 5}),
}
QUICK_COMPARE: dict[str, list[int]] = {"linear_quadratic": [100], "beach_bar": [100], "macro": [20]}

MB = 2**20
GB = 2**30


# ----------------------------------------------------------------------------------------
# worker: one configuration, in its own process
# ----------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _memory(compiled) -> dict[str, int] | None:
    """XLA's buffer sizes of a compiled program, or ``None`` if the backend has none."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not implemented on every backend / version
        return None
    if stats is None:
        return None
    out = {k: int(getattr(stats, f"{k}_size_in_bytes", 0)) for k in ("temp", "argument", "output")}
    out["total"] = sum(out.values())
    return out


def _time_calls(fn, min_repeats: int, max_repeats: int, budget_s: float) -> tuple[dict[str, Any], Any]:
    """Warm-up call, then as many timed calls as fit ``budget_s`` (within the bounds).

    ``fn`` must block until its result is ready. Returns the timing record and the last result.
    """
    t0 = time.perf_counter()
    out = fn()
    warm = time.perf_counter() - t0
    fit = int(max(0.0, budget_s - warm) / max(warm, 1e-9))
    times = []
    for _ in range(max(min_repeats, min(max_repeats, fit))):
        del out  # free the previous result before the next call
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return {"warmup_s": warm, "times_s": times, "median_s": _median(times), "min_s": min(times)}, out


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration (``cfg["kind"]`` in step / rollout / compare) and return its record."""
    import jax
    import jax.numpy as jnp

    import mfax
    from mfax.dynamics import rollout_batch, sample_noise, step
    from mfax.policies import Uniform

    jnp.zeros(()).block_until_ready()  # start the backend before taking the baseline
    baseline = _rss_bytes()

    game = mfax.make(cfg["game"], **cfg["params"])
    n, m, B = game.n_states, game.n_actions, cfg["B"]
    noise = sample_noise(game, jax.random.key(cfg.get("seed", 0)), B).noise
    one_path = jax.tree.map(lambda x: x[0], noise)
    rec: dict[str, Any] = {**cfg, **sizes_of(cfg["game"], cfg["params"])}
    mem_cap = cfg["mem_cap_gb"] * GB

    def compile_(fn, *args):
        t0 = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        return compiled, time.perf_counter() - t0, _memory(compiled)

    def step_fn(method):
        one = lambda mu, probs, z, t: step(game, mu, probs, z, t, method)  # noqa: E731
        return jax.vmap(one, in_axes=(0, 0, 0, None))

    def too_big(mem) -> bool:
        return mem is not None and mem["total"] > mem_cap

    if cfg["kind"] in ("step", "compare"):
        mu = jnp.broadcast_to(game.initial_mean_field(one_path), (B, n))
        probs = jnp.full((B, n, m), 1.0 / m)
        args = (mu, probs, noise, jnp.int32(0))
        methods = ["scatter", "dense"] if cfg["kind"] == "compare" else ["scatter"]
        rec["methods"], outs = {}, {}
        for method in methods:
            compiled, compile_s, mem = compile_(step_fn(method), *args)
            if too_big(mem):
                return {**rec, "status": "too_big", "xla": mem}
            timing, outs[method] = _time_calls(
                lambda c=compiled: c(*args).block_until_ready(), cfg["min_repeats"], cfg["max_repeats"], cfg["budget_s"]
            )
            rec["methods"][method] = {
                "compile_s": compile_s,
                **timing,
                "xla": mem,
                "mass_error": float(jnp.max(jnp.abs(outs[method].sum(-1) - 1.0))),
            }
        if cfg["kind"] == "compare":
            rec["max_abs_diff"] = float(jnp.max(jnp.abs(outs["dense"] - outs["scatter"])))
        else:
            rec.update(rec.pop("methods")["scatter"])
    elif cfg["kind"] == "rollout":
        policy = Uniform(n, m)
        fn = lambda z: rollout_batch(game, policy, z, record=False, method="scatter")  # noqa: E731
        compiled, compile_s, mem = compile_(fn, noise)
        if too_big(mem):
            return {**rec, "status": "too_big", "xla": mem}
        timing, traj = _time_calls(
            lambda: jax.block_until_ready(compiled(noise)), cfg["min_repeats"], cfg["max_repeats"], cfg["budget_s"]
        )
        rec.update(
            compile_s=compile_s,
            **timing,
            xla=mem,
            mass_error=float(jnp.max(jnp.abs(traj.mu[:, -1].sum(-1) - 1.0))),
        )
    else:
        raise ValueError(f"unknown kind {cfg['kind']!r}")
    rec.update(status="ok", rss_baseline_bytes=baseline, rss_peak_bytes=_rss_bytes(), load_end=os.getloadavg()[0])
    return rec


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------
def run_config(cfg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run ``worker(cfg)`` in a fresh Python process; return its record (or an error record)."""
    cfg = {**cfg, "load_start": os.getloadavg()[0]}  # 1-min load average: other processes skew timings
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": "timeout", "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {**cfg, "status": "error", "returncode": proc.returncode, "error": "\n".join(tail), "wall_s": wall}
    return {**json.loads(lines[-1]), "wall_s": wall}


def sizes_of(game_name: str, params: dict[str, Any]) -> dict[str, int]:
    """``n, m, K, T`` and ``n*m*K`` of a game, from shapes only (nothing is computed)."""
    import jax
    import jax.numpy as jnp

    import mfax

    game = mfax.make(game_name, **params)
    noise = jax.eval_shape(game.sample_noise, jax.random.key(0))
    kernel = jax.eval_shape(lambda z: game.kernel(game.initial_mean_field(z), z, jnp.int32(0)).flat(), noise)
    n, m, K = kernel.index.shape
    return {"n": n, "m": m, "K": K, "T": game.horizon, "nmK": n * m * K}


def pick_batch(prev: dict[str, Any] | None, nmk: int, horizon: int, args) -> int:
    """Largest power-of-two ``B <= args.batch`` whose rollout, extrapolated per element from
    the previous size (with a 1.25x margin for cache effects), stays under the target time."""
    B = args.batch
    if prev is None or prev.get("status") != "ok":
        return B
    per_elem = prev["median_s"] / (prev["nmK"] * prev["B"] * prev["T"])
    while B > 1 and 1.25 * per_elem * nmk * B * horizon > args.rollout_target:
        B //= 2
    return B


def run_with_shrinking_batch(cfg: dict[str, Any], args, log) -> dict[str, Any]:
    """Run a configuration; halve ``B`` while XLA says it needs more than the memory cap."""
    while True:
        rec = run_config(cfg, args.timeout)
        if rec.get("status") != "too_big" or cfg["B"] == 1:
            return rec
        log(f"    {cfg['kind']} B={cfg['B']} needs {rec['xla']['total'] / GB:.1f} GB > cap: halving B")
        cfg = {**cfg, "B": cfg["B"] // 2}


def base_cfg(args, game: str, params: dict[str, Any], kind: str, B: int, budget_s: float) -> dict[str, Any]:
    return {
        "game": game,
        "params": params,
        "kind": kind,
        "B": B,
        "min_repeats": args.min_repeats,
        "max_repeats": args.max_repeats,
        "budget_s": budget_s,
        "mem_cap_gb": args.mem_cap_gb,
    }


def fit_exponent(xs: list[float], ys: list[float]) -> float | None:
    """Slope of ``log y`` against ``log x`` (least squares), ``None`` with < 2 usable points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else None


def fits(rows: list[dict[str, Any]], min_states: int) -> dict[str, dict[str, Any]]:
    """Per game: growth exponents over the rows with ``n >= min_states``."""
    out = {}
    for game in dict.fromkeys(r["game"] for r in rows):
        sel = [r for r in rows if r["game"] == game and r["n"] >= min_states and r["rollout"].get("status") == "ok"]
        x = [r["nmK"] for r in sel]
        ro = [r["rollout"] for r in sel]
        st = [r["step"] for r in sel if r["step"].get("status") == "ok"]
        out[game] = {
            "points": len(sel),
            "nmK": x,
            "rollout_time_per_path": fit_exponent(x, [r["median_s"] / r["B"] for r in ro]),
            "step_time_per_path": fit_exponent([s["nmK"] for s in st], [s["median_s"] / s["B"] for s in st]),
            "rollout_peak_rss_minus_baseline_per_path": fit_exponent(
                x, [(r["rss_peak_bytes"] - r["rss_baseline_bytes"]) / r["B"] for r in ro]
            ),
            # raw RSS is only comparable across rows with the same B
            "rollout_peak_rss_raw": fit_exponent(x, [r["rss_peak_bytes"] for r in ro])
            if len({r["B"] for r in ro}) == 1
            else None,
            "rollout_xla_total_per_path": fit_exponent(
                x, [r["xla"]["total"] / r["B"] if r.get("xla") else 0.0 for r in ro]
            ),
        }
    return out


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _mb(rec: dict[str, Any], key: str) -> str:
    if rec.get("status") != "ok":
        return rec.get("status", "n/a")
    if key == "rss":
        return f"{rec['rss_peak_bytes'] / MB:,.0f}"
    return f"{rec['xla']['temp'] / MB:,.1f}" if rec.get("xla") else "n/a"


def markdown(result: dict[str, Any]) -> str:
    rows, compare, meta = result["rows"], result["compare"], result["meta"]
    lines = [
        "# Exact push-forward benchmark",
        "",
        f"{meta['platform']}; {meta['cpu_count']} CPU cores; JAX {meta['jax']} on {meta['backend']}, float32; "
        f"default B = {meta['batch']}; {meta['mode']} run in {meta['wall_s'] / 60:.1f} min"
        + ("." if meta["complete"] else " (PARTIAL: the run was still going or was stopped)."),
        "",
        "Step = one jitted, vmapped `step` (kernel + scatter push-forward) over B paths; rollout = "
        "`rollout_batch(..., record=False)` over B paths for T steps. Times are medians after a warm-up; "
        "ns/elem = time / (n·m·K·B) for a step and / (n·m·K·B·T) for a rollout. Peak RSS per fresh "
        f"process (baseline after JAX start-up ≈ {meta['rss_baseline_mb']:.0f} MB). XLA temp = "
        "`memory_analysis().temp_size_in_bytes`. B marked * was reduced from the default to keep a "
        "configuration under ~3 min / the memory cap.",
        "",
        f"Highest 1-min load average seen at a configuration's start or end: {meta['max_load']:.2f} on "
        f"{meta['cpu_count']} cores (above ~1, other processes were competing and timings are inflated; "
        "minimum times are in the JSON).",
        "",
        "| game | n | m | K | n·m·K | B | T | step ms | step ns/elem | rollout s | rollout ns/elem | "
        "rollout compile s | peak RSS MB step / rollout | XLA temp MB step / rollout |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        st, ro = r["step"], r["rollout"]
        b = f"{r['B']}" + ("*" if r["B"] < meta["batch"] else "")
        step_ms = st["median_s"] * 1e3 if st.get("status") == "ok" else None
        step_ns = st["median_s"] / (r["nmK"] * st["B"]) * 1e9 if step_ms is not None else None
        ro_s = ro["median_s"] if ro.get("status") == "ok" else None
        ro_ns = ro_s / (r["nmK"] * ro["B"] * r["T"]) * 1e9 if ro_s is not None else None
        ro_c = ro.get("compile_s")
        lines.append(
            f"| {r['game']} | {r['n']:,} | {r['m']} | {r['K']} | {r['nmK']:,} | {b} | {r['T']} | "
            f"{_f(step_ms, '.2f')} | {_f(step_ns, '.2f')} | {_f(ro_s, '.3f')} | {_f(ro_ns, '.2f')} | "
            f"{_f(ro_c, '.2f')} | {_mb(st, 'rss')} / {_mb(ro, 'rss')} | {_mb(st, 'xla')} / {_mb(ro, 'xla')} |"
        )
    lines += [
        "",
        f"## Growth exponents (log-log least squares over n >= {meta['fit_min_states']:,}; y per path = y / B)",
        "",
        "| game | points | rollout time / path | step time / path | (peak RSS - baseline) / path | "
        "raw peak RSS (same B only) | XLA arg+temp+out / path |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for game, f in result["fits"].items():
        lines.append(
            f"| {game} | {f['points']} | {_f(f['rollout_time_per_path'])} | {_f(f['step_time_per_path'])} | "
            f"{_f(f['rollout_peak_rss_minus_baseline_per_path'])} | {_f(f['rollout_peak_rss_raw'])} | "
            f"{_f(f['rollout_xla_total_per_path'])} |"
        )
    lines += [
        "",
        "## Dense vs scatter, one step (same process, same B)",
        "",
        "| game | n | n·m·K | B | scatter ms | dense ms | dense / scatter | XLA temp MB scatter / dense | "
        "max abs diff | faster |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in compare:
        if c.get("status") != "ok":
            lines.append(f"| {c['game']} | {c.get('n', '?')} | | {c['B']} | {c.get('status')} | | | | | |")
            continue
        s, d = c["methods"]["scatter"], c["methods"]["dense"]
        ratio = d["median_s"] / s["median_s"]
        xs = f"{s['xla']['temp'] / MB:,.1f}" if s.get("xla") else "n/a"
        xd = f"{d['xla']['temp'] / MB:,.1f}" if d.get("xla") else "n/a"
        lines.append(
            f"| {c['game']} | {c['n']:,} | {c['nmK']:,} | {c['B']} | {s['median_s'] * 1e3:.3f} | "
            f"{d['median_s'] * 1e3:.3f} | {ratio:.2f} | {xs} / {xd} | {c['max_abs_diff']:.1e} | "
            f"{'dense' if ratio < 1 else 'scatter'} |"
        )
    return "\n".join(lines) + "\n"


def save(args, rows: list[dict[str, Any]], compare: list[dict[str, Any]], t_start: float, complete: bool) -> str:
    """Write ``args.stem.{md,json}`` (also after every configuration, so a killed run keeps its rows)."""
    import jax

    records = [r[k] for r in rows for k in ("step", "rollout")] + compare
    loads = [x for rec in records for x in (rec.get("load_start"), rec.get("load_end")) if x is not None]
    baselines = [rec["rss_baseline_bytes"] for rec in records if rec.get("status") == "ok"]
    result = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "complete": complete,
            "batch": args.batch,
            "args": {k: str(v) for k, v in vars(args).items() if k != "worker"},
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "rss_baseline_mb": (sum(baselines) / len(baselines) / MB) if baselines else 0.0,
            "wall_s": time.perf_counter() - t_start,
            "fit_min_states": args.fit_min_states,
            "max_load": max(loads, default=0.0),
        },
        "rows": rows,
        "compare": compare,
    }
    result["fits"] = fits(rows, args.fit_min_states)
    text = markdown(result)
    (args.out / f"{args.stem}.md").write_text(text)
    (args.out / f"{args.stem}.json").write_text(json.dumps(result, indent=1))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: small sizes, B=8, few repeats")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="output directory")
    parser.add_argument(
        "--games", nargs="+", default=None, choices=list(FULL_SIZES), help="subset of games (default: all three)"
    )
    parser.add_argument("--batch", type=positive, default=None, help="default number of paths B (128; quick: 8)")
    parser.add_argument("--rollout-target", type=positive_float, default=45.0, help="max seconds per rollout call")
    parser.add_argument("--fit-min-states", type=positive, default=None, help="fit over n >= this (1000; quick: 100)")
    parser.add_argument("--mem-cap-gb", type=positive_float, default=16.0, help="max XLA memory per configuration")
    parser.add_argument("--dense-cap-gb", type=positive_float, default=4.0, help="max one-hot operator size for dense")
    parser.add_argument("--min-repeats", type=positive, default=None, help="timed calls after warm-up, at least")
    parser.add_argument("--max-repeats", type=positive, default=None, help="timed calls after warm-up, at most")
    parser.add_argument("--budget", type=positive_float, default=None, help="seconds of timed calls per config (120)")
    parser.add_argument(
        "--timeout", type=positive_float, default=900.0, help="seconds before a configuration is killed"
    )
    parser.add_argument("--worker", help=SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    sizes, compare_sizes = (QUICK_SIZES, QUICK_COMPARE) if args.quick else (FULL_SIZES, FULL_COMPARE)

    def given(value, quick, full):  # an option left out takes the mode's default (0 is refused above)
        return (quick if args.quick else full) if value is None else value

    args.batch = given(args.batch, 8, 128)
    args.min_repeats = given(args.min_repeats, 2, 3)
    args.max_repeats = given(args.max_repeats, 3, 15)
    args.fit_min_states = given(args.fit_min_states, 100, 1_000)
    budget = given(args.budget, 1.0, 120.0)
    games = list(dict.fromkeys(args.games or sizes))
    args.stem = stem("pushforward", "quick" if args.quick else "", subset(games, list(sizes)))
    out_dir(parser, args.out)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    compare: list[dict[str, Any]] = []
    for game in games:
        key, values, extra = sizes[game]
        prev = None
        for value in values:
            params = {key: value, **extra}
            probe = sizes_of(game, params)
            B = pick_batch(prev, probe["nmK"], probe["T"], args)
            log(f"{game} {params}: n={probe['n']} m={probe['m']} K={probe['K']} T={probe['T']} B={B}")
            step_rec = run_with_shrinking_batch(base_cfg(args, game, params, "step", B, budget), args, log)
            B = min(B, step_rec.get("B", B))
            roll_rec = run_with_shrinking_batch(base_cfg(args, game, params, "rollout", B, budget), args, log)
            if roll_rec.get("B", B) < step_rec.get("B", B):  # keep one B per row
                step_rec = run_config(base_cfg(args, game, params, "step", roll_rec["B"], budget), args.timeout)
            for rec, what in ((step_rec, "step"), (roll_rec, "rollout")):
                if rec.get("status") == "ok":
                    rss = rec["rss_peak_bytes"] / MB
                    log(f"    {what}: {rec['median_s']:.4g} s (B={rec['B']}), peak RSS {rss:,.0f} MB")
                else:
                    log(f"    {what}: {rec.get('status')} {rec.get('error', '')}")
            rows.append(
                {
                    "game": game,
                    "params": params,
                    **{k: probe[k] for k in ("n", "m", "K", "T", "nmK")},
                    "B": roll_rec.get("B", B),
                    "step": step_rec,
                    "rollout": roll_rec,
                }
            )
            save(args, rows, compare, t_start, complete=False)
            if roll_rec.get("status") == "ok":
                prev = roll_rec
        for value in compare_sizes.get(game, []):
            params = {key: value, **extra}
            probe = sizes_of(game, params)
            onehot_bytes = probe["nmK"] * probe["n"] * 4
            B = args.batch
            while B > 1 and B * onehot_bytes > args.dense_cap_gb * GB:
                B //= 2
            rec = run_with_shrinking_batch(base_cfg(args, game, params, "compare", B, budget / 4), args, log)
            if rec.get("status") == "ok":
                s, d = rec["methods"]["scatter"]["median_s"], rec["methods"]["dense"]["median_s"]
                log(f"{game} {params} compare B={rec['B']}: scatter {s * 1e3:.3f} ms, dense {d * 1e3:.3f} ms")
            else:
                log(f"{game} {params} compare: {rec.get('status')} {rec.get('error', '')}")
            compare.append(rec)
            save(args, rows, compare, t_start, complete=False)

    text = save(args, rows, compare, t_start, complete=True)
    print(text)
    wrote(args.out / args.stem, "md", "json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
