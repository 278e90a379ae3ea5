"""The training driver: compiled chunks, evaluation between them, checkpoints, faults.

``train(config, out)`` runs ``config.num_runs`` runs (seeds x learning rates) side by
side in one compiled program, ``eval_every`` iterations per chunk. After each chunk it
evaluates every run exactly (both exploitabilities), appends metrics, replaces the
checkpoint and the summary. Ctrl-C or a kill leaves the last checkpoint usable;
``resume(out)`` continues bit for bit. A non-finite gradient, return or parameter stops
the run with a message naming the iteration and the quantity; the last good checkpoint
stays.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from mfax.dynamics.noise import NoiseBatch, exact_noise, noise_batch
from mfax.evaluation.exploitability import evaluate
from mfax.games import Game, GameError, make
from mfax.policies.base import Policy
from mfax.run.config import TrainConfig, resolve
from mfax.run.rundir import RunDir
from mfax.run.trackers import open_trackers
from mfax.sharding import is_main_process, make_mesh, place_runs, to_host, train_mesh
from mfax.solvers import Solver, solver_spec

EVAL_SEED = 1_000_003


class TrainingDiverged(RuntimeError):
    """Raised when a non-finite value appears; the message names iteration and quantity."""


@dataclasses.dataclass
class Trainer:
    """Everything derived from a resolved config: game, solver, noise for training/eval."""

    config: TrainConfig
    game: Game
    solver: Solver
    eval_noise: NoiseBatch
    eval_mesh: Mesh | None
    mesh: Mesh | None  # training mesh (runs x paths)

    @classmethod
    def build(cls, config: TrainConfig) -> Trainer:
        if config.x64:
            jax.config.update("jax_enable_x64", True)
        game = make(config.game, **config.params)
        exact = exact_noise(game, config.noise)  # sampled training paths are drawn per iteration
        # one fixed set of evaluation paths for every seed: runs are compared on common noise
        eval_noise = (
            exact
            if exact is not None
            else noise_batch(game, "sample", jax.random.PRNGKey(EVAL_SEED), config.eval_paths)
        )
        solver = solver_spec(config.algo).build(config, game, exact)
        return cls(
            config, game, solver, eval_noise, make_mesh(config.devices), train_mesh(config.devices, config.num_runs)
        )

    def initial_states(self):
        return self.solver.initial_states()

    def chunk_fn(self, length: int):
        return self.solver.chunk(length)

    def policy(self, states, r: int) -> Policy:
        return self.solver.policy(states, r)

    def evaluate_run(self, states, r: int) -> dict[str, Any]:
        result = evaluate(self.game, self.policy(states, r), self.eval_noise, mesh=self.eval_mesh)
        return {
            "exploitability": result.exploitability,
            "exploitability_info": result.exploitability_info,
            "policy_return": result.policy_return,
        }


def load_policy(run: RunDir, r: int | None = None) -> tuple[Trainer, Policy, int]:
    """The trained policy of run ``r`` of a run directory (default: the best by the last
    evaluation), with its trainer and run index."""
    config = run.load_config()
    if not run.has_checkpoint():
        raise GameError(f"run {str(run.root)!r} has no checkpoint yet")
    trainer = Trainer.build(config)
    states = run.load_checkpoint(to_host(trainer.initial_states()))
    if r is None:
        r = int(run.read_summary().get("best_run", 0))
    if not 0 <= r < config.num_runs:
        raise GameError(f"run index {r} out of range; allowed: 0..{config.num_runs - 1}")
    return trainer, trainer.policy(states, r), r


def _first_bad(metrics, start_iteration: int) -> str:
    finite = np.asarray(metrics.finite)  # (R, L)
    runs, steps = np.nonzero(~finite)
    r, k = int(runs[0]), int(steps[0])
    quantity = "gradient norm" if not np.isfinite(np.asarray(metrics.grad_norm)[r, k]) else "return or parameters"
    if not np.isfinite(np.asarray(metrics.policy_return)[r, k]):
        quantity = "policy return (loss)"
    return f"non-finite {quantity} at iteration {start_iteration + k + 1} (run {r})"


def train(
    config: TrainConfig,
    out: Path | str,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) the run in ``out``; returns the summary.

    ``stop_after`` ends the session after that many iterations in total, as a kill
    would (for tests and time-boxed jobs); the run can be resumed.
    """
    run = RunDir(out)
    main = is_main_process()  # several hosts: all compute, process 0 alone writes
    if resume:
        config = run.load_config()
    else:
        config = resolve(config)
        if main and run.config_path.exists():
            raise GameError(f"run directory {str(run.root)!r} already holds a run; use --resume or another --out")
        if main:
            run.root.mkdir(parents=True, exist_ok=True)
            config.save(run.config_path)
    trainer = Trainer.build(config)
    states = trainer.initial_states()
    previous = run.read_summary()
    wall = float(previous.get("wall_clock_s", 0.0)) if resume else 0.0
    compile_s = 0.0
    if resume and run.has_checkpoint():
        states = place_runs(run.load_checkpoint(to_host(states)), trainer.mesh)
    start = int(to_host(states.iteration)[0])
    trackers = open_trackers(list(config.log_to), run.root, config.to_dict(), config.num_runs, start) if main else []

    def record(rows: list[dict[str, Any]]) -> None:
        run.append_metrics(rows)
        for tracker in trackers:
            tracker.log(rows)

    if resume:
        wall = _wall_at(run, start, wall)
        if main:
            run.truncate_metrics(start)
    elif start == 0:
        rows = _eval_rows(trainer, states, 0, wall, None)
        if main:
            record(rows)
            run.save_checkpoint(to_host(states))

    bar = _progress(config.iterations, start, progress and main)
    chunks: dict[int, Any] = {}
    last_eval: list[dict[str, Any]] = []
    try:
        iteration = start
        while iteration < config.iterations:
            if stop_after is not None and iteration >= stop_after:
                break
            length = min(config.eval_every, config.iterations - iteration)
            if length not in chunks:
                t0 = time.perf_counter()
                chunks[length] = trainer.chunk_fn(length).lower(states).compile()
                compile_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            new_states, metrics = chunks[length](states)
            jax.block_until_ready(metrics)
            wall += time.perf_counter() - t0
            metrics = to_host(metrics)
            if not bool(np.all(metrics.finite)):
                message = _first_bad(metrics, iteration)
                raise TrainingDiverged(
                    f"{message}; stopped, last good checkpoint (iteration {iteration}) kept in {str(run.root)!r}"
                )
            states = new_states
            iteration += length
            last_eval = _eval_rows(trainer, states, iteration, wall, metrics)
            if main:
                record(last_eval)
                run.save_checkpoint(to_host(states))
                run.write_summary(_summary(config, run, wall, compile_s, iteration))
            if bar is not None:
                bar.update(length)
                bar.set_postfix(exploitability=f"{np.mean([r['exploitability'] for r in last_eval]):.4g}")
    finally:
        if bar is not None:
            bar.close()
        for tracker in trackers:
            tracker.close()
    if not main:
        return {}
    summary = _summary(config, run, wall, compile_s, int(to_host(states.iteration)[0]))
    run.write_summary(summary)
    return summary


def resume(out: Path | str, **kwargs) -> dict[str, Any]:
    return train(TrainConfig(), out, resume=True, **kwargs)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)


def _wall_at(run: RunDir, iteration: int, default: float) -> float:
    rows = [r for r in run.read_metrics() if r["iteration"] == iteration]
    return float(rows[0]["wall_clock_s"]) if rows else default


def _eval_rows(trainer: Trainer, states, iteration: int, wall: float, metrics) -> list[dict[str, Any]]:
    config = trainer.config
    rows = []
    for r in range(config.num_runs):
        row = {
            "iteration": iteration,
            "run": r,
            "seed": config.run_seed(r),
            "lr": config.run_lr(r),
            "wall_clock_s": wall,
            **trainer.evaluate_run(states, r),
            "grad_norm": None,
            "train_exploitability": None,
            "train_policy_return": None,
        }
        if metrics is not None:
            row["grad_norm"] = float(np.asarray(metrics.grad_norm)[r, -1])
            row["train_exploitability"] = float(np.asarray(metrics.exploitability)[r].mean())
            row["train_policy_return"] = float(np.asarray(metrics.policy_return)[r].mean())
        rows.append(row)
    return rows


def _summary(config: TrainConfig, run: RunDir, wall: float, compile_s: float, iteration: int) -> dict[str, Any]:
    rows = run.read_metrics()
    last = [r for r in rows if r["iteration"] == iteration]
    first = [r for r in rows if r["iteration"] == 0]
    finals = [r["exploitability"] for r in last]
    infos = [r["exploitability_info"] for r in last]
    best = int(np.argmin(finals)) if finals else 0
    trained = max(iteration, 1)
    return {
        "game": config.game,
        "algo": config.algo,
        "iterations": iteration,
        "iterations_planned": config.iterations,
        "runs": config.num_runs,
        "final_exploitability": float(np.mean(finals)) if finals else None,
        "final_exploitability_info": None if not infos or infos[0] is None else float(np.mean(infos)),
        "final_exploitability_per_run": finals,
        "final_exploitability_info_per_run": infos,
        "final_policy_return": float(np.mean([r["policy_return"] for r in last])) if last else None,
        "initial_exploitability": float(np.mean([r["exploitability"] for r in first])) if first else None,
        "best_run": best,
        "wall_clock_s": wall,
        "compile_s": compile_s,
        "seconds_per_iteration": wall / trained if iteration else None,
        "noise": config.noise,
    }
