"""The macro economy by economists' methods and by RSPG, side by side.

With common noise (productivity shocks): Krusell-Smith
(:func:`mfax.solvers.krusell_smith.solve_krusell_smith`) and RSPG trained for the same
wall-clock (``mfax.solve(..., time_budget=KS's seconds)``; both clocks include building
and compilation, RSPG's its evaluations too). Without common noise: the transition-path
oracle (:func:`mfax.solvers.macro_oracle.solve_macro`), KS and RSPG with KS's wall-clock.
Every policy is scored exactly on the same held-out productivity paths (per-path
exploitability; information-consistent where the noise is enumerated, i.e. without
common noise), with KS's R^2 and den Haan's error, and the paths of r, W, K/Y and the
wealth Gini (mean and 5-95% band over paths) plotted for KS and RSPG.

Writes ``bench/results/macro_economics{suffix}.md``, ``.json`` and ``.png``. Default:
the reduced economy (40 x 5, T = 32); ``--full``: the published one (200 x 5, T = 128).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

import mfax
from mfax.dynamics import rollout_batch
from mfax.evaluation.exploitability import evaluate
from mfax.solvers import krusell_smith as ks
from mfax.solvers.macro_oracle import solve_macro


def wealth_gini(game, mu: np.ndarray) -> np.ndarray:
    """Gini of wealth, exact on the distribution: ``sum_ij f_i f_j |w_i - w_j| / (2 K)``
    over the wealth marginal ``f`` (``mu``: ``(..., n)``)."""
    wealth = game.wealth_grid_np()
    f = mu.reshape(*mu.shape[:-1], game.num_wealth, game.num_income).sum(-1)
    gaps = np.abs(wealth[:, None] - wealth[None, :])
    return np.einsum("...i,ij,...j->...", f, gaps, f) / (2.0 * f @ wealth)


def paths_of(game, policy, batch) -> dict:
    """r, W, K/Y and the wealth Gini at t = 0..T-1 on every path of ``batch``."""
    with jax.enable_x64(True):
        traj = rollout_batch(game, policy, batch.noise, record=False)
    mu = np.asarray(traj.mu, dtype=np.float64)[:, :-1]
    wealth = np.repeat(game.wealth_grid_np(), game.num_income)
    income = np.tile(game.income_grid_np(), game.num_wealth)
    capital, labour = mu @ wealth, mu @ income
    z = np.asarray(batch.noise.z, dtype=np.float64)[:, :-1]
    output = np.exp(z) * capital**game.alpha * labour ** (1.0 - game.alpha)
    obs = np.asarray(traj.obs, dtype=np.float64)[:, :-1]
    return {"r": obs[..., 0], "W": obs[..., 1], "K/Y": capital / output, "Gini": wealth_gini(game, mu)}


def scored(game, policy, batch) -> dict:
    with jax.enable_x64(True):
        ev = evaluate(game, policy, batch)
    return {
        "exploitability": ev.exploitability,
        "exploitability_info": ev.exploitability_info,
        "policy_return": ev.policy_return,
    }


def rspg(game, seconds: float, batch, seed: int) -> tuple[dict, dict]:
    start = time.perf_counter()
    result = mfax.solve(game, "rspg", iterations=100000, time_budget=seconds, seed=seed, eval_every=10, eval_paths=16)
    wall = time.perf_counter() - start
    row = {"wall_clock_s": wall, "iterations": result.iterations}
    row["stop_reason"] = result.stop_reason
    row |= scored(game, result.policy, batch)
    return row, paths_of(game, result.policy, batch)


def ks_row(res) -> dict:
    return {
        "wall_clock_s": res.seconds,
        "iterations": res.iterations,
        "converged": res.converged,
        "stalled": res.stalled,
        "last_gap": float(res.gaps[-1]),
        "r2_min": None if not np.isfinite(res.r2_min) else res.r2_min,
        "den_haan_max": res.den_haan_max,
        "den_haan_mean": res.den_haan_mean,
        "outside_grid": res.outside_grid,
        "exploitability": res.exploitability,
        "exploitability_info": res.exploitability_info,
        "policy_return": res.policy_return,
    }


def fmt(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the published economy, 200 x 5 and T = 128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-calm", action="store_true", help="skip the economy without common noise")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    size = {} if args.full else {"num_wealth": 40, "horizon": 32}
    suffix = "_full" if args.full else ""
    results: dict = {"params": size, "seed": args.seed}

    # -- with common noise: KS and RSPG for the same wall-clock -----------------------
    game = mfax.make("macro", **size)
    settings = ks.make_settings(seed=args.seed)
    res = ks.solve_krusell_smith(game, settings)
    _, held_out = ks.noise_batches(game, settings)
    results["noisy"] = {"ks": ks_row(res)}
    print("KS", json.dumps(results["noisy"]["ks"]))
    bands = {"ks": paths_of(game, res.policy, held_out)}
    row, bands["rspg"] = rspg(game, res.seconds, held_out, args.seed)
    results["noisy"]["rspg"] = row
    print("RSPG", json.dumps(row))

    # -- without common noise: the oracle, KS and RSPG --------------------------------
    if not args.no_calm:
        calm = mfax.make("macro", **size, common_noise=False)
        start = time.perf_counter()
        with jax.enable_x64(True):
            oracle = solve_macro(calm)
        oracle_s = time.perf_counter() - start
        res_calm = ks.solve_krusell_smith(calm, settings)
        _, calm_batch = ks.noise_batches(calm, settings)
        results["calm"] = {
            "oracle": {
                "wall_clock_s": oracle_s,
                "iterations": oracle.iterations,
                "converged": oracle.converged,
                "exploitability": oracle.exploitability,
                "exploitability_info": oracle.exploitability,  # one path: the same figure
            },
            "ks": ks_row(res_calm),
        }
        results["calm"]["ks"]["max_rel_gap_r_vs_oracle"] = float(np.max(np.abs(res_calm.r[0, :-1] / oracle.r - 1.0)))
        row, _ = rspg(calm, res_calm.seconds, calm_batch, args.seed)
        results["calm"]["rspg"] = row
        print("calm", json.dumps(results["calm"], default=str))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"macro_economics{suffix}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    plot(bands, out / f"macro_economics{suffix}.png", size)
    write_table(results, out / f"macro_economics{suffix}.md", size, held_out.num_paths)
    print(f"wrote {out / f'macro_economics{suffix}.md'}")


def plot(bands: dict, path: Path, size: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, key in zip(axes, ("r", "W", "K/Y", "Gini"), strict=True):
        for name, color in (("ks", "tab:red"), ("rspg", "tab:blue")):
            x = bands[name][key]
            t = np.arange(x.shape[1])
            ax.fill_between(t, np.percentile(x, 5, 0), np.percentile(x, 95, 0), color=color, alpha=0.2)
            ax.plot(t, x.mean(0), color=color, label="Krusell-Smith" if name == "ks" else "RSPG (same wall-clock)")
        ax.set(xlabel="t", title={"r": "interest rate r_t", "W": "wage W_t"}.get(key, key))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"macro economy with common noise {size or 'published'}: mean and 5-95% band over held-out paths")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_table(results: dict, path: Path, size: dict, eval_paths: int) -> None:
    header = (
        f"{platform.platform()}; {jax.device_count()} {jax.default_backend()} device(s); JAX {jax.__version__}; "
        f"macro {size or 'published size'}; seed {results['seed']}; {eval_paths} held-out productivity paths."
    )
    lines = [
        "# The macro economy: Krusell-Smith, RSPG and the transition-path oracle",
        "",
        header,
        "",
        "Exploitability: exact, on the push-forward game, per realised noise path (the deviator knows "
        "the path of z; an upper bound) and information-consistent (info) where the noise is enumerated. "
        "Wall-clock includes building and compilation (RSPG's also its evaluations every 10 "
        "iterations on 16 paths); RSPG ran with KS's wall-clock as its time budget, checked at its "
        "evaluations. KS: R^2 of the rule (smallest over t), den Haan's largest and mean error of "
        "log K (x100: percent), the share of (path, t) where K left the households' capital grid.",
        "",
        "## With common noise",
        "",
        "| method | wall-clock s | iterations | exploitability | info | policy return | R^2 min | "
        "den Haan max / mean % | K off grid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    k, r = results["noisy"]["ks"], results["noisy"]["rspg"]
    state = "converged" if k["converged"] else "stalled" if k["stalled"] else "not converged"
    lines.append(
        f"| Krusell-Smith ({state}) | {fmt(k['wall_clock_s'], 3)} | {k['iterations']} | "
        f"{fmt(k['exploitability'])} | {fmt(k['exploitability_info'])} | {fmt(k['policy_return'], 6)} | "
        f"{fmt(k['r2_min'], 5)} | {fmt(100 * k['den_haan_max'], 3)} / {fmt(100 * k['den_haan_mean'], 3)} | "
        f"{fmt(100 * k['outside_grid'], 2)}% |"
    )
    lines.append(
        f"| RSPG | {fmt(r['wall_clock_s'], 3)} | {r['iterations']} | {fmt(r['exploitability'])} | "
        f"{fmt(r['exploitability_info'])} | {fmt(r['policy_return'], 6)} | — | — | — |"
    )
    if "calm" in results:
        c = results["calm"]
        lines += [
            "",
            "## Without common noise",
            "",
            "| method | wall-clock s | iterations | exploitability | info |",
            "|---|---|---|---|---|",
            f"| transition-path oracle | {fmt(c['oracle']['wall_clock_s'], 3)} | {c['oracle']['iterations']} | "
            f"{fmt(c['oracle']['exploitability'])} | {fmt(c['oracle']['exploitability_info'])} |",
            f"| Krusell-Smith | {fmt(c['ks']['wall_clock_s'], 3)} | {c['ks']['iterations']} | "
            f"{fmt(c['ks']['exploitability'])} | {fmt(c['ks']['exploitability_info'])} |",
            f"| RSPG | {fmt(c['rspg']['wall_clock_s'], 3)} | {c['rspg']['iterations']} | "
            f"{fmt(c['rspg']['exploitability'])} | {fmt(c['rspg']['exploitability_info'])} |",
            "",
            f"KS's interest rate path against the oracle's: largest relative gap "
            f"{fmt(c['ks']['max_rel_gap_r_vs_oracle'], 3)}.",
        ]
    better = "Krusell-Smith" if k["exploitability"] < r["exploitability"] else "RSPG"
    lines += [
        "",
        f"With common noise, for the same wall-clock, {better} is the less exploitable "
        f"({fmt(min(k['exploitability'], r['exploitability']))} against "
        f"{fmt(max(k['exploitability'], r['exploitability']))}).",
        "",
        "![r, W, K/Y and Gini paths of KS and RSPG](" + path.with_suffix(".png").name + ")",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
