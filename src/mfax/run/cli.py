"""The ``mfax`` command line: ``list``, ``eval``, ``train``, ``plot``.

Every command has ``--help``; bad input ends with a one-line ``mfax: error: ...`` on
stderr and exit status 2.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mfax.games import GameError, describe, game_names, make, parse_value

app = typer.Typer(
    help="mfax: mean-field games with common noise and public partial information, in JAX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library input errors into one-line messages and exit status 2."""
    try:
        yield
    except GameError as err:
        typer.echo(f"mfax: error: {err}", err=True)
        raise typer.Exit(2) from None


def parse_overrides(game: str, items: list[str]) -> dict:
    """``["key=value", ...]`` -> typed parameters of ``game``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise GameError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(game, key.strip(), value)
    return out


def parse_hparams(algo: str, items: list[str]) -> dict:
    """``["key=value", ...]`` -> typed hyper-parameters of solver ``algo``."""
    from mfax.solvers import solver_spec

    spec = solver_spec(algo)
    out = {}
    for item in items:
        if "=" not in item:
            raise GameError(f"--hp expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = spec.parse_hparam(key.strip(), value)
    return out


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """List the registered games (parameters, defaults, meaning) and the solvers."""
    from mfax import params
    from mfax.run.config import DEFAULTS, GAME_DEFAULTS
    from mfax.solvers import solver_names, solver_spec

    algorithms = {name: solver_spec(name).description for name in solver_names()}
    hparams = {
        name: [] if solver_spec(name).hparams is None else params.describe(solver_spec(name).hparams)
        for name in solver_names()
    }
    catalogue = {name: [{"name": k, "default": d, "help": h} for k, d, h in describe(name)] for name in game_names()}
    solvers = {
        name: {
            "description": text,
            "defaults": {g: {**DEFAULTS, **GAME_DEFAULTS.get(g, {})} for g in catalogue},
            "hparams": [{"name": k, "default": d, "help": h} for k, d, h in hparams[name]],
        }
        for name, text in algorithms.items()
    }
    if as_json:
        typer.echo(json.dumps({"games": catalogue, "solvers": solvers}))
        return
    typer.echo("solvers (mfax train --algo NAME):")
    for name, text in algorithms.items():
        typer.echo(f"  {name:<6} {text}")
        for k, d, h in hparams[name]:
            typer.echo(f"           --hp {k}={d!s:<12} {h}")
    typer.echo("  per-game defaults: " + "; ".join(f"{g}: {v}" for g, v in GAME_DEFAULTS.items()))
    typer.echo("games (mfax eval/train --game NAME --set key=value):")
    for name, game_params in catalogue.items():
        typer.echo(f"  {name}")
        for p in game_params:
            typer.echo(f"    {p['name']:<22} {p['default']!s:<28} {p['help']}")


def _print_evaluation(title: str, result, batch, seconds: float) -> None:
    info = result.exploitability_info
    typer.echo(title)
    typer.echo(f"noise: {'exact' if batch.exact else 'sampled'}, {batch.num_paths} paths")
    typer.echo(f"  exploitability (per path, upper bound)  {result.exploitability:.6g}")
    typer.echo(f"  exploitability (information-consistent) {'n/a' if info is None else format(info, '.6g')}")
    typer.echo(f"  policy return                           {result.policy_return:.6g}")
    typer.echo(f"  best-response return (per path)         {result.best_response_return:.6g}")
    typer.echo(f"  evaluated in {seconds:.2f} s")


@app.command("eval")
def eval_command(
    run_dir: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="a run directory from `mfax train` (else a fixed policy)")
    ] = None,
    game: Annotated[
        str, typer.Option(help="registered game name (see `mfax list`); fixed policies only")
    ] = "beach_bar",
    policy: Annotated[
        str, typer.Option(help="fixed policy: 'uniform' or 'action:K' (always the K-th action)")
    ] = "uniform",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a game parameter, key=value (repeatable)")
    ] = None,
    noise: Annotated[
        str, typer.Option(help="'exact' (enumerate finite noise), 'sample' (Monte Carlo) or 'auto'")
    ] = "auto",
    paths: Annotated[int, typer.Option(help="number of sampled noise paths (--noise sample)")] = 128,
    seed: Annotated[int, typer.Option(help="PRNG seed for sampled noise")] = 0,
    run_index: Annotated[
        int | None, typer.Option(help="which run of a multi-seed/multi-lr RUN (default: the best)")
    ] = None,
    learned_br: Annotated[
        bool, typer.Option("--learned-br", help="also train a history-aware best response: a lower bound")
    ] = False,
    br_iterations: Annotated[int, typer.Option(help="iterations of the learned best response")] = 300,
    br_lr: Annotated[float, typer.Option(help="learning rate of the learned best response")] = 1e-3,
    x64: Annotated[bool, typer.Option("--x64", help="compute in float64")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="end stdout with one JSON object")] = False,
) -> None:
    """Exact evaluation of a trained run or a fixed policy: both exploitabilities, returns."""
    import jax

    from mfax.dynamics import noise_batch
    from mfax.evaluation import evaluate
    from mfax.memory import check_evaluation
    from mfax.policies import parse_policy

    with user_errors():
        if paths < 1:
            raise GameError(f"--paths must be >= 1, got {paths}")
        if br_iterations < 1:
            raise GameError(f"--br-iterations must be >= 1, got {br_iterations}")
        if not 0.0 < br_lr < math.inf:
            raise GameError(f"--br-lr must be finite and > 0, got {br_lr}")
        if x64:
            jax.config.update("jax_enable_x64", True)
        if run_dir is not None:
            from mfax.run.rundir import RunDir
            from mfax.run.train import load_policy

            if set_:
                raise GameError("--set applies to fixed policies; a RUN keeps the game it was trained on")
            trainer, pol, run_index = load_policy(RunDir(run_dir), run_index)
            g, overrides, label = trainer.game, trainer.config.params, f"run {run_dir} (run {run_index})"
            config = trainer.config
        else:
            overrides = parse_overrides(game, set_ or [])
            g = make(game, **overrides)
            pol = parse_policy(g, policy)
            label, config = f"policy {policy}", None
        check_evaluation(g, noise, paths, 8 if x64 else 4)  # before the paths are drawn
        batch = noise_batch(g, noise, jax.random.PRNGKey(seed), paths)
        start = time.perf_counter()
        result = evaluate(g, pol, batch)
        seconds = time.perf_counter() - start
        bracket = None
        if learned_br:
            bracket = _learned_bracket(g, pol, batch, config, br_iterations, br_lr, seed)

    _print_evaluation(f"game {g.name} {overrides or ''}  {label}", result, batch, seconds)
    if bracket is not None:
        typer.echo(
            f"  learned history-aware best response: exploitability >= {bracket.exploitability_lower_bound:.6g}"
            f"  ({bracket.iterations} iterations)"
        )
    if as_json:
        record = {
            "game": g.name,
            "params": overrides,
            "policy": policy if run_dir is None else run_dir,
            "noise": "exact" if batch.exact else "sample",
            **result.as_dict(),
            "exploitability_lower_bound": None if bracket is None else bracket.exploitability_lower_bound,
            "seconds": seconds,
        }
        typer.echo(json.dumps(record))


def _learned_bracket(game, population, batch, config, iterations: int, lr: float, seed: int):
    import jax

    from mfax.evaluation.learned_br import learned_best_response
    from mfax.policies.networks import NetworkPolicy
    from mfax.run.config import TrainConfig, resolve
    from mfax.solvers.structural import make_policy

    cfg = config or resolve(TrainConfig(game=game.name))
    rspg = TrainConfig(**{**cfg.__dict__, "algo": "rspg"})
    deviator = make_policy(game, rspg, jax.random.PRNGKey(seed + 7), recurrent=True)
    if isinstance(population, NetworkPolicy) and population.recurrent:
        deviator = population  # warm start: the deviator starts as the population (gain 0)
    return learned_best_response(
        game,
        population,
        deviator,
        batch,
        jax.random.PRNGKey(seed + 11),
        iterations=iterations,
        lr=lr,
        num_paths=cfg.paths,
    )


@app.command("train")
def train_command(
    game: Annotated[str | None, typer.Option(help="registered game (see `mfax list`) [default: beach_bar]")] = None,
    algo: Annotated[
        str | None, typer.Option(help="solver: spg, rspg, ippo, rippo, momd, fp, omd (see `mfax list`) [rspg]")
    ] = None,
    iterations: Annotated[int | None, typer.Option(help="training iterations [default: 200]")] = None,
    paths: Annotated[
        int | None, typer.Option(help="noise paths per iteration when sampled [default: per game, 128 or 8]")
    ] = None,
    noise: Annotated[
        str | None, typer.Option(help="exact | sample | auto (exact when the noise support is small) [auto]")
    ] = None,
    lr: Annotated[
        str | None, typer.Option(help="learning rate(s), comma-separated; several train side by side [per game]")
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="number of seeds trained side by side (vmap) [1]")] = None,
    seed: Annotated[int | None, typer.Option(help="first seed [0]")] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="iterations per compiled chunk between evaluations [10]")
    ] = None,
    eval_paths: Annotated[int | None, typer.Option(help="sampled evaluation paths for non-finite noise [64]")] = None,
    devices: Annotated[
        int | None,
        typer.Option(
            help="devices to split noise paths (and runs) over: structural training and exact evaluation; "
            "model-free and classical solvers train on one device [all local devices]"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a game parameter, key=value (repeatable)")
    ] = None,
    hp: Annotated[
        list[str] | None,
        typer.Option("--hp", help="set a solver hyper-parameter, key=value (repeatable; see `mfax list`)"),
    ] = None,
    config_file: Annotated[
        str | None, typer.Option("--config", help="TOML or JSON config file (flags override it)")
    ] = None,
    out: Annotated[str | None, typer.Option(help="run directory [runs/GAME-ALGO-TIMESTAMP]")] = None,
    resume: Annotated[
        str | None, typer.Option(help="continue the run in this directory from its last checkpoint")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing run in --out (only a run directory)")
    ] = False,
    coordinator: Annotated[
        str | None,
        typer.Option(help="multi-host: coordinator HOST:PORT for jax.distributed (or env MFAX_COORDINATOR)"),
    ] = None,
    num_processes: Annotated[
        int | None, typer.Option(help="multi-host: number of processes (or env MFAX_NUM_PROCESSES)")
    ] = None,
    process_id: Annotated[int | None, typer.Option(help="multi-host: this process (or env MFAX_PROCESS_ID)")] = None,
    x64: Annotated[bool, typer.Option("--x64", help="train in float64")] = False,
    log_to: Annotated[
        list[str] | None,
        typer.Option(
            "--log-to",
            help="also log metrics to tensorboard (RUN/tensorboard) or wandb (repeatable; optional extras "
            "mfax[tensorboard], mfax[wandb]) [off]",
        ),
    ] = None,
    plots: Annotated[bool, typer.Option(help="write the plots at the end")] = True,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="end stdout with the summary as one JSON object")] = False,
) -> None:
    """Train a solver (SPG, RSPG, IPPO, RIPPO, M-OMD, FP, OMD); writes a run directory
    (config, metrics, checkpoint, plots) and scores the policy exactly as it goes."""
    import dataclasses

    from mfax.run.config import TrainConfig, from_dict, load_file
    from mfax.run.rundir import RunDir
    from mfax.run.train import TrainingDiverged, train
    from mfax.sharding import initialize_distributed, is_main_process

    if coordinator or num_processes is not None or process_id is not None or os.environ.get("MFAX_COORDINATOR"):
        initialize_distributed(coordinator, num_processes, process_id)
    main = is_main_process()
    with user_errors():
        if resume is not None:
            target = RunDir(resume)
            config = target.load_config()
            given = (game, algo, iterations, paths, noise, lr, seeds, seed, config_file)
            if any(v is not None for v in given) or set_ or hp or log_to:
                raise GameError("--resume continues a run as configured; drop the other training options")
        else:
            config = load_file(Path(config_file)) if config_file else TrainConfig()
            flags = {
                "game": game,
                "algo": algo,
                "iterations": iterations,
                "paths": paths,
                "noise": noise,
                "seeds": seeds,
                "seed": seed,
                "eval_every": eval_every,
                "eval_paths": eval_paths,
                "devices": devices,
            }
            config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
            if lr is not None:
                try:
                    config.lr = [float(x) for x in lr.split(",") if x.strip()]
                except ValueError:
                    raise GameError(f"--lr expects comma-separated numbers, got {lr!r}") from None
            if set_:
                config.params = {**config.params, **parse_overrides(config.game, set_)}
            if hp:
                config.hparams = {**config.hparams, **parse_hparams(config.algo, hp)}
            if x64:
                config.x64 = True
            if log_to:
                config.log_to = [x.strip() for item in log_to for x in item.split(",") if x.strip()]
            config = from_dict(config.to_dict())
            target = RunDir(out or f"runs/{config.game}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}")
            if overwrite and target.root.exists():
                if not target.config_path.exists():
                    raise GameError(f"--overwrite refuses {str(target.root)!r}: it is not a run directory")
                import shutil

                shutil.rmtree(target.root)
        if main:
            typer.echo(f"run directory: {target.root}")
        try:
            summary = train(config, target.root, resume=resume is not None, progress=progress)
        except TrainingDiverged as err:
            typer.echo(f"mfax: error: {err}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo(
                f"\ninterrupted; the last checkpoint is kept: continue with `mfax train --resume {target.root}`",
                err=True,
            )
            raise typer.Exit(130) from None
    if not main:
        return
    info = summary["final_exploitability_info"]
    typer.echo(
        f"done: {summary['iterations']} iterations, {summary['seconds_per_iteration']:.3g} s/iteration, "
        f"exploitability {summary['final_exploitability']:.6g} (per path)"
        + ("" if info is None else f", {info:.6g} (information-consistent)")
    )
    if plots:
        from mfax.run.plots import plot_run

        files = plot_run(target)
        typer.echo(f"plots: {', '.join(str(f) for f in files)}")
    if as_json:
        typer.echo(json.dumps({"run": str(target.root), **summary}))


@app.command("plot")
def plot_command(
    run_dir: Annotated[str, typer.Argument(metavar="RUN", help="a run directory from `mfax train`")],
) -> None:
    """(Re)draw the plots of a run directory into RUN/plots/."""
    from mfax.run.plots import plot_run
    from mfax.run.rundir import RunDir

    with user_errors():
        files = plot_run(RunDir(run_dir))
    for f in files:
        typer.echo(str(f))


def _register_commands() -> None:
    from mfax.run.cli_macro import register

    register(app)


_register_commands()


def main() -> None:
    try:
        app()
    except SystemExit as done:
        if done.code == 130:  # Ctrl-C: XLA may still be running the dispatched chunk, and the
            # interpreter's teardown under it crashed (SIGSEGV after the message, 1 exit in 8)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


if __name__ == "__main__":
    main()
