"""Plots of a run directory (PNG, matplotlib's Agg backend; no display needed).

* ``exploitability.png``: exploitability (both definitions) vs wall-clock and vs iteration;
* ``mean_field.png``: the mean field over time as a heat map for a few noise paths;
* ``policy.png``: the learned policy (mean action per state over time on those paths);
* macro only: ``wealth.png`` (wealth distribution at several times), ``prices.png``
  (interest rate and wage paths), ``savings.png`` (savings fraction by income).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from mfax.dynamics.pushforward import rollout_batch
from mfax.run.rundir import RunDir


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(run: RunDir, num_paths: int = 3) -> list[Path]:
    """Write every plot of the run; returns the files written."""
    from mfax.run.train import load_policy

    trainer, policy, _ = load_policy(run)  # validates the run before anything is written
    run.plots_dir.mkdir(parents=True, exist_ok=True)
    written = [plot_exploitability(run)]
    game = trainer.game
    noise = trainer.eval_noise
    pick = _spread(noise.num_paths, num_paths)
    sub = jax.tree.map(lambda x: x[pick], noise.noise)
    traj = jax.device_get(rollout_batch(game, policy, sub))
    if game.name == "macro":
        written += plot_macro(run, game, traj)
    else:
        written += [plot_mean_field(run, game, traj), plot_policy(run, game, traj)]
    return written


def _spread(total: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, total - 1, min(k, total)).round().astype(int))


def plot_exploitability(run: RunDir) -> Path:
    plt = _pyplot()
    rows = run.read_metrics()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in sorted({row["run"] for row in rows}):
        mine = [row for row in rows if row["run"] == r]
        it = [row["iteration"] for row in mine]
        wall = [row["wall_clock_s"] for row in mine]
        ex = [row["exploitability"] for row in mine]
        label = f"run {r} (seed {mine[0]['seed']}, lr {mine[0]['lr']:g})"
        axes[0].plot(wall, ex, marker=".", label=label)
        axes[1].plot(it, ex, marker=".", label=label + " per path")
        info = [row["exploitability_info"] for row in mine]
        if info and info[0] is not None:
            axes[1].plot(it, info, linestyle="--", label=label + " info-consistent")
    axes[0].set(xlabel="training wall-clock (s)", ylabel="exploitability (per path)", yscale="log")
    axes[1].set(xlabel="iteration", ylabel="exploitability", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, run.plots_dir / "exploitability.png")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _heatmaps(path: Path, images, titles, cmap: str, suptitle: str, label: str | None = None) -> Path:
    """One time x state heat map per noise path, side by side."""
    plt = _pyplot()
    k = len(images)
    fig, axes = plt.subplots(1, k, figsize=(4 * k, 3.6), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles, strict=True):
        im = ax.imshow(np.asarray(image).T, aspect="auto", origin="lower", cmap=cmap)
        ax.set(title=title, xlabel="t", ylabel="state")
        fig.colorbar(im, ax=ax, fraction=0.046, label=label)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return _save(fig, path)


def plot_mean_field(run: RunDir, game, traj) -> Path:
    titles = [f"noise path {i}: obs0 {np.round(traj.obs[i, 0], 3)}" for i in range(traj.mu.shape[0])]
    return _heatmaps(run.plots_dir / "mean_field.png", traj.mu, titles, "viridis", f"{game.name}: mean field over time")


def plot_policy(run: RunDir, game, traj) -> Path:
    mean_action = traj.probs @ np.asarray(game.action_values())  # (P, T, n)
    titles = [f"noise path {i}" for i in range(mean_action.shape[0])]
    return _heatmaps(
        run.plots_dir / "policy.png",
        mean_action,
        titles,
        "coolwarm",
        f"{game.name}: learned policy (expected action)",
        label="mean action",
    )


def plot_macro(run: RunDir, game, traj) -> list[Path]:
    plt = _pyplot()
    nw, ny = game.num_wealth, game.num_income
    wealth = game.wealth_grid_np()
    income = game.income_grid_np()
    T = game.horizon
    out = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for t in sorted({0, T // 8, T // 4, T // 2, T}):
        marginal = traj.mu[0, t].reshape(nw, ny).sum(-1)
        ax.plot(wealth, marginal, label=f"t = {t}")
    ax.set(xscale="symlog", xlabel="wealth", ylabel="population share", title="wealth distribution (noise path 0)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.append(_save(fig, run.plots_dir / "wealth.png"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i in range(traj.obs.shape[0]):
        axes[0].plot(traj.obs[i, :, 0], label=f"path {i}")
        axes[1].plot(traj.obs[i, :, 1], label=f"path {i}")
    axes[0].set(xlabel="t", ylabel="interest rate r_t")
    axes[1].set(xlabel="t", ylabel="wage W_t")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(_save(fig, run.plots_dir / "prices.png"))

    actions = np.asarray(game.action_values())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, t in zip(axes, (0, T // 2), strict=True):
        saving = 1.0 - (traj.probs[0, t] @ actions).reshape(nw, ny)  # share of cash saved
        for j in range(ny):
            ax.plot(wealth, saving[:, j], label=f"income {income[j]:.2f}")
        ax.set(xscale="symlog", xlabel="wealth", ylabel="expected share of cash saved", title=f"t = {t}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(_save(fig, run.plots_dir / "savings.png"))
    return out
