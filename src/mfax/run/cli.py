"""The ``mfax`` command line: ``mfax list``, ``mfax eval``.

Every command has ``--help``; bad input ends with a one-line ``mfax: error: ...`` on
stderr and exit status 2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """List the registered games with their parameters, defaults and meaning."""
    catalogue = {name: [{"name": k, "default": d, "help": h} for k, d, h in describe(name)] for name in game_names()}
    if as_json:
        typer.echo(json.dumps({"games": catalogue}))
        return
    for name, params in catalogue.items():
        typer.echo(f"{name}")
        for p in params:
            typer.echo(f"  {p['name']:<22} {p['default']!s:<28} {p['help']}")


@app.command("eval")
def eval_command(
    game: Annotated[str, typer.Option(help="registered game name (see `mfax list`)")] = "beach_bar",
    policy: Annotated[str, typer.Option(help="'uniform' or 'action:K' (always the K-th action)")] = "uniform",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a game parameter, key=value (repeatable)")
    ] = None,
    noise: Annotated[
        str, typer.Option(help="'exact' (enumerate finite noise), 'sample' (Monte Carlo) or 'auto'")
    ] = "auto",
    paths: Annotated[int, typer.Option(help="number of sampled noise paths (--noise sample)")] = 128,
    seed: Annotated[int, typer.Option(help="PRNG seed for sampled noise")] = 0,
    x64: Annotated[bool, typer.Option("--x64", help="compute in float64")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="end stdout with one JSON object")] = False,
) -> None:
    """Exact evaluation of a fixed policy: policy return, best response, exploitability."""
    import jax

    from mfax.dynamics import noise_batch
    from mfax.evaluation import evaluate
    from mfax.policies import parse_policy

    with user_errors():
        if paths < 1:
            raise GameError(f"--paths must be >= 1, got {paths}")
        overrides = parse_overrides(game, set_ or [])
        if x64:
            jax.config.update("jax_enable_x64", True)
        g = make(game, **overrides)
        pol = parse_policy(g, policy)
        batch = noise_batch(g, noise, jax.random.key(seed), paths)
        start = time.perf_counter()
        result = evaluate(g, pol, batch)
        seconds = time.perf_counter() - start

    info = result.exploitability_info
    typer.echo(f"game {game} {overrides or ''}  policy {policy}")
    typer.echo(f"noise: {'exact' if batch.exact else 'sampled'}, {batch.num_paths} paths")
    typer.echo(f"  exploitability (per path, upper bound)  {result.exploitability:.6g}")
    typer.echo(f"  exploitability (information-consistent) {'n/a' if info is None else format(info, '.6g')}")
    typer.echo(f"  policy return                           {result.policy_return:.6g}")
    typer.echo(f"  best-response return (per path)         {result.best_response_return:.6g}")
    typer.echo(f"  evaluated in {seconds:.2f} s")
    if as_json:
        record = {
            "game": game,
            "params": overrides,
            "policy": policy,
            "noise": "exact" if batch.exact else "sample",
            **result.as_dict(),
            "seconds": seconds,
        }
        typer.echo(json.dumps(record))


def main() -> None:
    app()
