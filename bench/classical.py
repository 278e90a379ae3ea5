"""Exact fictitious play and online mirror descent: iterations and wall-clock to reach
exploitability thresholds on each game; optionally against MFGLib.

    python bench/classical.py            # full run, writes bench/results/classical.{md,json}
    python bench/classical.py --quick    # smaller games and fewer iterations
    python bench/classical.py --vs-mfglib  # also MFGLib's OMD and FP on its LQ game
                                            # (needs `pip install mfglib`, which pulls PyTorch)
    python bench/classical.py --only "z = +-1"  # rows whose label contains the text,
                                                # written to classical_only.{md,json,png}
                                                # (with --quick: classical_quick_only)

Exploitability is the exact information-consistent one (per-path beside it), of the
policy each iteration starts from; thresholds are fractions of the uniform policy's.
Wall-clock excludes compilation (each chunk is compiled before it is timed).
"""

from __future__ import annotations

import json
import platform
import time
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import mfax
from benchutil import ArgumentParser, out_dir, positive, require, stem, wrote
from mfax.dynamics.noise import enumerate_noise
from mfax.solvers import driver
from mfax.solvers.classical import SOLVERS, FPHyperParams, OMDHyperParams

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-6)

# (label, game, params, iterations, OMD learning rate)
FULL = [
    ("linear_quadratic, no common noise", "linear_quadratic", dict(common_noise=False), 200, 1.0),
    # herding (reward -(m - x)^2) is not monotone: FP and OMD converge slowly, so more iterations
    ("linear_quadratic, z = +-1 (2 paths)", "linear_quadratic", {}, 10000, 1.0),
    ("beach_bar, bar never closes (51 paths)", "beach_bar", dict(common_noise=False), 200, 10.0),
    ("beach_bar, may close (102 paths)", "beach_bar", {}, 200, 10.0),
    ("sis (512 paths)", "sis", {}, 200, 1.0),
    ("macro, no common noise", "macro", dict(common_noise=False), 100, 1.0),
]
QUICK = [
    ("linear_quadratic, no common noise", "linear_quadratic", dict(common_noise=False), 50, 1.0),
    ("linear_quadratic, z = +-1 (2 paths)", "linear_quadratic", {}, 50, 1.0),
    ("beach_bar 41 x 16, may close", "beach_bar", dict(num_states=41, horizon=16), 50, 10.0),
    ("sis (512 paths)", "sis", {}, 50, 1.0),
    ("macro 40 x 32, no common noise", "macro", dict(num_wealth=40, horizon=32, common_noise=False), 30, 1.0),
]


def run(game, algo: str, iterations: int, lr: float, chunk: int) -> dict:
    batch = enumerate_noise(game)
    hp = FPHyperParams() if algo == "fp" else OMDHyperParams(lr=lr)
    solver = SOLVERS[algo](game, batch, hp)
    states = driver.initial_states(solver, [0], [0.0])
    compiled, expl, per_path, wall = {}, [], [], []
    elapsed, done = 0.0, 0
    while done < iterations:
        length = min(chunk, iterations - done)
        if length not in compiled:
            compiled[length] = driver.chunk(solver, length).lower(states).compile()
        t0 = time.perf_counter()
        states, metrics = compiled[length](states)
        jax.block_until_ready(metrics)
        step = (time.perf_counter() - t0) / length
        expl += list(np.asarray(metrics.exploitability)[0])
        per_path += list(np.asarray(metrics.exploitability_per_path)[0])
        wall += [elapsed + step * (k + 1) for k in range(length)]
        elapsed += step * length
        done += length
    e0 = expl[0]
    reached = {}
    for f in FRACTIONS:
        hits = [k for k, e in enumerate(expl) if e <= f * e0]
        # wall[k] is the time at the end of iteration k; iteration k reports the policy it started from
        reached[f"{f:g}"] = (
            None if not hits else {"iteration": hits[0], "seconds": wall[hits[0] - 1] if hits[0] else 0.0}
        )
    return {
        "algo": algo,
        "lr": lr if algo == "omd" else None,
        "paths": batch.num_paths,
        "iterations": iterations,
        "seconds_per_iteration": elapsed / iterations,
        "initial_exploitability": float(e0),
        "final_exploitability": float(expl[-1]),
        "final_exploitability_per_path": float(per_path[-1]),
        "best_exploitability": float(min(expl)),
        "reached": reached,
        "curve": [float(x) for x in expl],
    }


def vs_mfglib(iterations: int) -> dict:
    """MFGLib's OMD and FP on its LQ game (99 states, 7 actions, T = 30) against ours on
    the same game definition (mfax.games.mfglib, registered as mfglib.linear_quadratic), float32 both."""
    import torch
    from mfglib.alg import FictitiousPlay, OnlineMirrorDescent
    from mfglib.env import Environment
    from mfglib.scoring import exploitability_score

    from mfax.games.mfglib import MFGLibLinearQuadratic

    params = dict(T=30, el=49, m=3)
    env = Environment.linear_quadratic(**params)
    game = MFGLibLinearQuadratic(**params)
    batch = enumerate_noise(game)
    out = {"game": f"MFGLib linear_quadratic {params} (99 states, 7 actions, 31 time steps)", "mfglib": {}}
    for algo, theirs in (("omd", OnlineMirrorDescent(alpha=1.0)), ("fp", FictitiousPlay())):
        pi0 = torch.ones((env.T + 1, *env.S, *env.A)) / env.n_actions
        state = theirs.init_state(env, pi0)
        t0 = time.perf_counter()
        for _ in range(iterations):
            state = theirs.step_next_state(state, None, None)
        their_s = (time.perf_counter() - t0) / iterations
        their_expl = exploitability_score(env, state.pi)
        ours = run(game, algo, max(iterations, 20), 1.0, chunk=max(iterations, 20))
        mine = ours["curve"][iterations] if len(ours["curve"]) > iterations else None
        their_expl = float(their_expl)
        out["mfglib"][algo] = {
            "mfglib_seconds_per_iteration": their_s,
            "mfax_seconds_per_iteration": ours["seconds_per_iteration"],
            "ratio": their_s / ours["seconds_per_iteration"],
            "iterations_timed_mfglib": iterations,
            "mfglib_exploitability_after": their_expl,
            "mfax_exploitability_after": mine,
            "note": "mfax FP gives the initial uniform policy weight 0 (Perrin et al.); MFGLib's weight 1/2",
        }
    del batch
    return out


def markdown(rows: list[dict], cmp: dict | None, meta: dict) -> str:
    lines = [
        "# Exact fictitious play and online mirror descent",
        "",
        f"{meta['machine']}; JAX {meta['jax']}, {meta['dtype']}. Exploitability: exact, information-consistent, "
        "of the policy each iteration starts from; thresholds are fractions of the uniform policy's. "
        "Cells: iterations / seconds to reach it (compile excluded); '-' not reached.",
        "",
        "| game | algo | paths | s/it | uniform | "
        + " | ".join(f"<= {f:g}" for f in FRACTIONS)
        + " | final (info) | final (per path) |",
        "|---|---|---|---|---|" + "---|" * len(FRACTIONS) + "---|---|",
    ]
    for r in rows:
        cells = []
        for f in FRACTIONS:
            hit = r["reached"][f"{f:g}"]
            cells.append("-" if hit is None else f"{hit['iteration']} / {hit['seconds']:.3g}")
        algo = r["algo"] + (f" (lr {r['lr']:g})" if r["lr"] else "")
        lines.append(
            f"| {r['label']} | {algo} | {r['paths']} | {r['seconds_per_iteration']:.3g} | "
            f"{r['initial_exploitability']:.4g} | " + " | ".join(cells) + f" | {r['final_exploitability']:.3g} | "
            f"{r['final_exploitability_per_path']:.3g} |"
        )
    if cmp is not None:
        lines += ["", f"## Against MFGLib: {cmp['game']}", "", "| algo | MFGLib s/it | mfax s/it | ratio |"]
        lines += ["|---|---|---|---|"]
        for algo, c in cmp["mfglib"].items():
            lines.append(
                f"| {algo} | {c['mfglib_seconds_per_iteration']:.3g} | {c['mfax_seconds_per_iteration']:.3g} | "
                f"{c['ratio']:.0f}x |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller games, fewer iterations")
    parser.add_argument("--vs-mfglib", action="store_true", help="also time MFGLib's OMD and FP (needs mfglib)")
    parser.add_argument("--mfglib-iterations", type=positive, default=3, help="MFGLib iterations timed per algorithm")
    parser.add_argument("--chunk", type=positive, default=25, help="iterations per compiled chunk")
    parser.add_argument("--only", default=None, help="run only the rows whose label contains this text")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for classical.{md,json,png}")
    args = parser.parse_args(argv)

    table = QUICK if args.quick else FULL
    if args.only is not None:
        labels = [r[0] for r in table]
        table = [row for row in table if args.only in row[0]]
        if not table:
            mode = "--quick" if args.quick else "the full run"
            parser.error(f"--only {args.only!r} matches no row of {mode}; its labels: {'; '.join(labels)}")
    if args.vs_mfglib:  # before any row is computed
        require(parser.prog, "mfglib", "torch", why="--vs-mfglib")
    files = stem("classical", "quick" if args.quick else "", "only" if args.only is not None else "")
    out_dir(parser, args.out)
    rows = []
    for label, name, params, iterations, lr in table:
        game = mfax.make(name, **params)
        for algo in ("fp", "omd"):
            row = {"label": label, "game": name, "params": params, **run(game, algo, iterations, lr, args.chunk)}
            rows.append(row)
            print(
                f"{label:42s} {algo:3s} {row['seconds_per_iteration']:.3g} s/it  "
                f"uniform {row['initial_exploitability']:.4g} -> {row['final_exploitability']:.3g}",
                flush=True,
            )
    cmp = vs_mfglib(args.mfglib_iterations) if args.vs_mfglib else None
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {jax.devices()[0].platform}",
        "jax": jax.__version__,
        "dtype": str(jnp.zeros(()).dtype),
        "quick": args.quick,
    }
    text = markdown(rows, cmp, meta)
    print(text)
    (args.out / f"{files}.md").write_text(text)
    (args.out / f"{files}.json").write_text(json.dumps({"meta": meta, "rows": rows, "vs_mfglib": cmp}, indent=1) + "\n")
    plot(rows, args.out / f"{files}.png")
    wrote(args.out / files, "md", "json", "png")


def plot(rows: list[dict], path: Path) -> None:
    """Exploitability (fraction of the uniform policy's) against iteration, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        curve = np.maximum(np.asarray(r["curve"]) / r["initial_exploitability"], 1e-9)
        algo = r["algo"] + (f" lr {r['lr']:g}" if r["lr"] else "")
        ax.loglog(np.arange(1, len(curve) + 1), curve, label=f"{r['label']}: {algo}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("exploitability / uniform policy's (info-consistent)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
