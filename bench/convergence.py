"""Convergence benchmark: exact exploitability vs training wall-clock for SPG, RSPG (hybrid
structural) and IPPO, RIPPO, M-OMD (model-free, sampled populations).

What is measured, per game (common noise on, the games' defaults unless ``--quick``):

* every algorithm trains through the ordinary driver, ``mfax.run.train.train`` with
  ``progress=False``, in this one process, one after the other, on the same machine;
  ``--seeds`` seeds run side by side in one compiled program (vmap), so the wall-clock
  is that of all seeds together;
* after every chunk of ``eval_every`` iterations the driver scores every seed's
  population policy *exactly* (per-path and information-consistent exploitability, on
  the push-forward game, the enumerated noise support); the model-free policies are
  the agents' own networks restated as mean-field policies;
* wall-clock = the driver's training time: compiled chunks only, no compilation and no
  evaluation (both are reported separately);
* time to threshold = the first evaluation at which the mean over seeds of the per-path
  exploitability is at or below ``fraction x`` the initial one (the median start of the
  algorithms that begin at the uniform policy: all but M-OMD), for each fraction of
  ``--thresholds`` (default 0.6, 0.3, 0.15; the paper's beach-bar example goes from
  ~461 to ~279, i.e. ~0.6);
* ratio = (time of the fastest model-free method to the threshold) / (time of RSPG);
  when no model-free method gets there within its budget, ``> (longest model-free
  training time) / (RSPG time)`` is reported as a lower bound.

Hyper-parameters are the library defaults (published ones; see ``mfax list``); the
learning rate is each game's default for every algorithm (full) or 1e-2 for every
algorithm (``--quick``, small networks).

Usage::

    python bench/convergence.py --quick          # a few minutes: reduced games, small networks
    python bench/convergence.py                  # full games, published networks (long)
    python bench/convergence.py --games beach_bar --seeds 3

Writes ``bench/results/convergence{,_quick}.{md,json,png}`` (``--out`` to change the folder); a
subset of games or algorithms, other ``--seeds`` than 2, ``--iterations``, ``--set`` or
``--plan`` add their own suffix (``convergence_games_beach_bar.md``, ``convergence_seeds3.md``,
...) unless ``--tag`` names the files.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchutil import ArgumentParser, fraction, out_dir, positive, subset, wrote
from benchutil import stem as stem_of
from mfax.run.config import TrainConfig
from mfax.run.rundir import RunDir
from mfax.run.train import TrainingDiverged, train

ALGOS = ("spg", "rspg", "ippo", "rippo", "momd")
DEFAULT_GAMES = ["linear_quadratic", "beach_bar"]
SEEDS = 2  # the documented runs' (bench/results/convergence.md, convergence_quick.md)
MODEL_FREE = ("ippo", "rippo", "momd")

# Iterations and evaluation spacing per algorithm (iterations are of different cost:
# a structural iteration is one exact gradient, a model-free one is one collection +
# ``updates`` gradient steps).
FULL = {
    "iterations": {"spg": 200, "rspg": 200, "ippo": 100, "rippo": 100, "momd": 100},
    "eval_every": {"spg": 20, "rspg": 20, "ippo": 10, "rippo": 10, "momd": 10},
    "params": {"linear_quadratic": {}, "beach_bar": {}, "macro": {}},
    "network": {},  # the published sizes (each solver's defaults)
    # structural: each game's published default; model-free: 1e-3 everywhere (the
    # beach-bar and LQ default; PPO at macro's 1e-2 is unstable)
    "lr": {"spg": None, "rspg": None, "ippo": [1e-3], "rippo": [1e-3], "momd": [1e-3]},
}
QUICK = {
    "iterations": {"spg": 200, "rspg": 200, "ippo": 40, "rippo": 40, "momd": 40},
    "eval_every": {"spg": 20, "rspg": 20, "ippo": 5, "rippo": 5, "momd": 5},
    "lr": {algo: [1e-2] for algo in ALGOS},  # small networks: 1e-2 for every algorithm (as in tests/test_train.py)
    "params": {
        "linear_quadratic": {},
        "beach_bar": {"num_states": 41, "horizon": 16},
        "macro": {"num_wealth": 40, "horizon": 32},
    },
    "network": dict(obs_embed=32, gru_hidden=32, state_embed=16, aggregate_embed=16, mlp_width=32),
}


def run_one(game: str, algo: str, plan: dict, seeds: int, workdir: Path) -> dict[str, Any]:
    config = TrainConfig(
        game=game,
        algo=algo,
        params=plan["params"][game],
        iterations=plan["iterations"][algo],
        eval_every=plan["eval_every"][algo],
        seeds=seeds,
        hparams=plan["network"],
        lr=plan["lr"][algo],
    )
    out = workdir / f"{game}-{algo}"
    t0 = time.perf_counter()
    diverged = None
    try:
        train(config, out, progress=False)
    except TrainingDiverged as err:  # keep the curve up to the last good evaluation
        diverged = str(err)
    summary = RunDir(out).read_summary()
    total = time.perf_counter() - t0
    rows = RunDir(out).read_metrics()
    iters = sorted({r["iteration"] for r in rows})
    curve = []
    for it in iters:
        at = [r for r in rows if r["iteration"] == it]
        curve.append(
            {
                "iteration": it,
                "wall_clock_s": at[0]["wall_clock_s"],
                "exploitability": [r["exploitability"] for r in at],
                "exploitability_info": [r["exploitability_info"] for r in at],
            }
        )
    return {
        "game": game,
        "algo": algo,
        "iterations": summary.get("iterations", 0),
        "seconds_per_iteration": summary.get("seconds_per_iteration"),
        "train_wall_s": summary.get("wall_clock_s", 0.0),
        "compile_s": summary.get("compile_s"),
        "total_s": total,
        "hparams": RunDir(out).load_config().hparams,
        "lr": RunDir(out).load_config().lr,
        "diverged": diverged,
        "curve": curve,
    }


def time_to(result: dict, threshold: float, key: str = "exploitability") -> float | None:
    for point in result["curve"]:
        values = [v for v in point[key] if v is not None]
        if values and np.mean(values) <= threshold:
            return point["wall_clock_s"]
    return None


def summarise(results: list[dict], games: list[str], fracs: list[float]) -> dict[str, Any]:
    """Per game: each algorithm's figures, its time to every threshold, and per threshold
    the ratio (fastest model-free time) / (RSPG time). When no model-free method gets
    there, the ratio is a lower bound: the longest model-free training time / RSPG's;
    when RSPG does not get there but a model-free method does, an upper bound: the
    fastest model-free time / RSPG's whole training time."""
    table = {}
    for game in games:
        rs = {r["algo"]: r for r in results if r["game"] == game}
        # the common start: every algorithm but M-OMD starts from the uniform policy (M-OMD
        # from the softmax of its initial Q), so the median over the others (M-OMD's alone
        # when it is the only one run)
        starts = [np.mean(r["curve"][0]["exploitability"]) for a, r in rs.items() if a != "momd"]
        initial = float(np.median(starts or [np.mean(rs["momd"]["curve"][0]["exploitability"])]))
        thresholds = [f * initial for f in fracs]
        rows = {}
        for algo, r in rs.items():
            first, last = r["curve"][0], r["curve"][-1]
            rows[algo] = {
                "initial": float(np.mean(first["exploitability"])),
                "final": float(np.mean(last["exploitability"])),
                "final_std": float(np.std(last["exploitability"])),
                "final_info": (  # None where the noise has no finite support (macro)
                    None
                    if any(v is None for v in last["exploitability_info"])
                    else float(np.mean(last["exploitability_info"]))
                ),
                "best": float(min(np.mean(p["exploitability"]) for p in r["curve"])),
                "iterations": r["iterations"],
                "seconds_per_iteration": r["seconds_per_iteration"],
                "train_wall_s": r["train_wall_s"],
                "compile_s": r["compile_s"],
                "time_to_threshold_s": [time_to(r, th) for th in thresholds],
            }
        ratios = []
        for k, th in enumerate(thresholds):
            t_rspg = rows.get("rspg", {}).get("time_to_threshold_s", [None] * len(thresholds))[k]
            mf = {a: rows[a]["time_to_threshold_s"][k] for a in MODEL_FREE if a in rows}
            reached = {a: t for a, t in mf.items() if t is not None}
            entry = {"threshold": th, "fraction": fracs[k], "rspg_s": t_rspg, "fastest_model_free": None}
            if t_rspg is not None and reached:
                fastest = min(reached, key=reached.get)
                entry.update(
                    fastest_model_free=fastest,
                    model_free_s=reached[fastest],
                    ratio=reached[fastest] / max(t_rspg, 1e-9),
                )
            elif t_rspg is not None and mf:
                longest = max(rows[a]["train_wall_s"] for a in mf)
                entry.update(ratio_at_least=longest / max(t_rspg, 1e-9), model_free_s=None)
            elif "rspg" in rows and reached:  # RSPG would need more than its whole training
                fastest = min(reached, key=reached.get)
                rspg_train = rows["rspg"]["train_wall_s"]
                entry.update(
                    fastest_model_free=fastest,
                    model_free_s=reached[fastest],
                    rspg_train_s=rspg_train,
                    ratio_at_most=reached[fastest] / max(rspg_train, 1e-9),
                )
            ratios.append(entry)
        table[game] = {"thresholds": thresholds, "rows": rows, "ratios": ratios}
    return table


def fmt(x, spec=".4g"):
    return "—" if x is None else format(x, spec)


def write_markdown(path: Path, table: dict, meta: dict) -> str:
    lines = ["# Convergence: exact exploitability vs training wall-clock", ""]
    lines.append(
        f"{meta['platform']}; {meta['cores']} CPU cores; JAX {meta['jax']} on {meta['backend']}; "
        f"{'quick (reduced games, small networks)' if meta['quick'] else 'published networks'}; "
        f"game parameters {meta['params']} (empty: published game); "
        f"{meta['seeds']} seeds side by side per algorithm; thresholds = "
        f"{', '.join(f'{x:g}' for x in meta['threshold_fractions'])} x initial per-path exploitability; "
        f"total {meta['total_min']:.1f} min."
    )
    lines.append("")
    lines.append(
        "Wall-clock = compiled training chunks only (the driver's `wall_clock_s`; no compile, no evaluation). "
        "Exploitability = exact, per realised noise path (published definition) and information-consistent "
        "(info), mean over seeds, on the push-forward game."
    )
    for game, g in table.items():
        ths = ", ".join(f"{th:.4g}" for th in g["thresholds"])
        lines += ["", f"## {game} (thresholds {ths})", ""]
        lines.append(
            "| algo | iterations | s/iteration | train s | compile s | initial | final (± std) | final info | best "
            "| time to thresholds s |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for algo, r in g["rows"].items():
            times = " / ".join(fmt(t, ".1f") for t in r["time_to_threshold_s"])
            lines.append(
                f"| {algo} | {r['iterations']} | {fmt(r['seconds_per_iteration'], '.3g')} | "
                f"{fmt(r['train_wall_s'], '.1f')} | {fmt(r['compile_s'], '.1f')} | {fmt(r['initial'])} | "
                f"{fmt(r['final'])} ± {fmt(r['final_std'], '.2g')} | {fmt(r['final_info'])} | {fmt(r['best'])} | "
                f"{times} |"
            )
        lines += ["", "| threshold | RSPG s | fastest model-free s | ratio model-free / RSPG |", "|---|---|---|---|"]
        for e in g["ratios"]:
            label = f"{e['fraction']:g} x initial = {e['threshold']:.4g}"
            if "ratio_at_most" in e:
                lines.append(
                    f"| {label} | not reached in {e['rspg_train_s']:.1f} | {e['fastest_model_free']} "
                    f"{e['model_free_s']:.1f} | < {e['ratio_at_most']:.3g} (model-free faster; "
                    "fastest model-free time / RSPG's whole training time) |"
                )
            elif e["rspg_s"] is None:
                lines.append(f"| {label} | {'not reached' if 'rspg' in g['rows'] else 'not run'} | — | — |")
            elif "ratio" in e:
                lines.append(
                    f"| {label} | {e['rspg_s']:.1f} | {e['fastest_model_free']} {e['model_free_s']:.1f} | "
                    f"{e['ratio']:.3g} ({'RSPG faster' if e['ratio'] > 1 else 'model-free faster'}) |"
                )
            else:
                lines.append(
                    f"| {label} | {e['rspg_s']:.1f} | none reached it | > {e['ratio_at_least']:.3g} "
                    "(longest model-free training time / RSPG's) |"
                )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def plot(path: Path, results: list[dict], games: list[str], table: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(games), figsize=(6 * len(games), 4.2), squeeze=False)
    for ax, game in zip(axes[0], games, strict=True):
        for r in (r for r in results if r["game"] == game):
            t = np.array([p["wall_clock_s"] for p in r["curve"]])
            e = np.array([p["exploitability"] for p in r["curve"]])  # (points, seeds)
            mean, lo, hi = e.mean(1), e.min(1), e.max(1)
            style = "-" if r["algo"] in ("spg", "rspg") else "--"
            (line,) = ax.plot(np.maximum(t, 1e-2), mean, style, marker=".", label=r["algo"])
            ax.fill_between(np.maximum(t, 1e-2), lo, hi, color=line.get_color(), alpha=0.15)
        for th in table[game]["thresholds"]:
            ax.axhline(th, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("training wall-clock (s)")
        ax.set_ylabel("exploitability (exact, per path)")
        ax.set_title(game)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced games and small networks (a few minutes)")
    parser.add_argument("--games", nargs="+", default=DEFAULT_GAMES, choices=list(FULL["params"]))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--seeds", type=positive, default=None, help=f"seeds per algorithm (default {SEEDS})")
    parser.add_argument("--iterations", type=positive, default=None, help="override every algorithm's iterations")
    parser.add_argument(
        "--thresholds",
        type=fraction,
        nargs="+",
        default=[0.6, 0.3, 0.15],
        help="fractions in (0, 1] of the initial exploitability",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="GAME.KEY=VALUE",
        help="override a game parameter, e.g. macro.num_wealth=40 (repeatable)",
    )
    parser.add_argument(
        "--plan",
        dest="plan_overrides",
        action="append",
        default=[],
        metavar="iterations|eval_every.ALGO=N",
        help="per-algorithm iterations or evaluation spacing, e.g. --plan iterations.ippo=20 (repeatable)",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="suffix of the result files (convergence<tag>.md ...); without it a subset of games or algorithms, "
        "other --seeds, --iterations, --set or --plan add their own suffix (the full run's files are never "
        "replaced by them)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse finished runs saved in the same run's <files>.partial.json"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    params = {game: dict(p) for game, p in plan["params"].items()}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        game, dot, name = key.partition(".")
        if not sep or not dot or game not in params:
            parser.error(f"--set expects GAME.KEY=VALUE with GAME in {', '.join(params)}, got {item!r}")
        try:
            params[game][name] = json.loads(value)
        except json.JSONDecodeError:
            params[game][name] = value
    plan = {**plan, "params": params}
    if args.iterations is not None:
        plan = {**plan, "iterations": dict.fromkeys(ALGOS, args.iterations)}
    for item in args.plan_overrides:
        key, sep, value = item.partition("=")
        field, dot, algo = key.partition(".")
        valid = sep and dot and field in ("iterations", "eval_every") and algo in ALGOS
        if not (valid and value.isdigit() and int(value) >= 1):
            allowed = ", ".join(ALGOS)
            parser.error(f"--plan expects iterations|eval_every.ALGO=N with ALGO in {allowed} and N >= 1, got {item!r}")
        plan = {**plan, field: {**plan[field], algo: int(value)}}
    seeds = args.seeds or SEEDS
    results = []
    if args.tag:  # the user named the files
        stem = ("convergence_quick" if args.quick else "convergence") + args.tag
    else:  # a subset or a changed plan never replaces the committed full run's files
        stem = stem_of(
            "convergence",
            "quick" if args.quick else "",
            # prefixed: a bare game's name is taken by committed files of other setups (convergence_macro)
            "games_" + subset(args.games, DEFAULT_GAMES) if subset(args.games, DEFAULT_GAMES) else "",
            "algos_" + subset(args.algos, list(ALGOS)) if subset(args.algos, list(ALGOS)) else "",
            "" if seeds == SEEDS else f"seeds{seeds}",
            "" if args.iterations is None else f"iterations{args.iterations}",
            "set" if args.overrides else "",
            "plan" if args.plan_overrides else "",
        )
    out_dir(parser, args.out)
    partial = args.out / f"{stem}.partial.json"  # every finished run, so a crash loses none
    done = json.loads(partial.read_text()) if args.reuse and partial.exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        for game in args.games:
            for algo in args.algos:
                key = {
                    "game": game,
                    "algo": algo,
                    "params": plan["params"][game],
                    "seeds": seeds,
                    "iterations": plan["iterations"][algo],
                    "eval_every": plan["eval_every"][algo],
                }
                old = [r for r in done if {k: r.get("key", {}).get(k) for k in key} == key]
                if old:
                    results.append(old[0])
                    print(f"{game:>16} {algo:>5}: reused from {partial}", flush=True)
                    continue
                r = {**run_one(game, algo, plan, seeds, Path(tmp)), "key": key}
                print(
                    f"{game:>16} {algo:>5}: {r['iterations']} it, {r['seconds_per_iteration']:.3g} s/it, "
                    f"exploitability {np.mean(r['curve'][0]['exploitability']):.4g} -> "
                    f"{np.mean(r['curve'][-1]['exploitability']):.4g} (compile {r['compile_s']:.1f} s)",
                    flush=True,
                )
                if r["diverged"]:
                    print(f"{game:>16} {algo:>5}: {r['diverged']}", flush=True)
                results.append(r)
                done.append(r)
                partial.write_text(json.dumps(done))
    table = summarise(results, args.games, args.thresholds)
    meta = {
        "platform": platform.platform(),
        "cores": len(__import__("os").sched_getaffinity(0)),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "quick": args.quick,
        "seeds": seeds,
        "threshold_fractions": args.thresholds,
        # the runs' own times: a run reused from the partial file keeps the time it took
        "total_min": sum(r.get("total_s", 0.0) for r in results) / 60,
        "params": {game: params[game] for game in args.games},
    }
    text = write_markdown(args.out / f"{stem}.md", table, meta)
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "table": table, "runs": results}, indent=1))
    plot(args.out / f"{stem}.png", results, args.games, table)
    print(text)
    wrote(args.out / stem, "md", "json", "png")


if __name__ == "__main__":
    main()
