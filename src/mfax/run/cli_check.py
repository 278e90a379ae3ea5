"""``mfax check-game``: a game against the contract, every named check with its result
(:func:`mfax.games.validate.check_game`).

Wired into the main app with ``register(app)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mfax.games import check_game, make, unchecked
from mfax.run.cli_common import check_seed, json_text, parse_overrides, user_errors

CHECK_OPTION_HELP = (
    "check the game first (as `mfax check-game` does, but vmap, retracing, purity and the noise support's "
    "agreement with sample_noise and shared_until, which only check-game runs); --no-check skips it"
)


def register(app: typer.Typer) -> None:
    """Add the ``check-game`` command to ``app``."""

    @app.command("check-game")
    def check_game_command(
        game: Annotated[str, typer.Argument(metavar="GAME", help="a game as `mfax train --game` takes it")],
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="override a game parameter, key=value (repeatable) [default: the game's]"),
        ] = None,
        seed: Annotated[int, typer.Option(help="PRNG seed of the noise paths the game is checked on")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the report")] = False,
        x64: Annotated[
            bool, typer.Option("--x64", help="check in float64, as `--x64` trains and evaluates [default: float32]")
        ] = False,
    ) -> None:
        """Check a game against the contract: shapes and dtypes, probabilities, indices,
        finite values, noise paths and support, jit, vmap and retracing. Prints one line
        per check (PASS/FAIL/SKIP name: offending values). Exit status: 0 when every
        check passes, 1 when one fails, 2 for bad input (unknown game or parameter)."""
        import jax

        with user_errors():
            check_seed(seed)
            if x64:  # (a game may build other dtypes there: a plain int array is int64)
                jax.config.update("jax_enable_x64", True)
            overrides = parse_overrides(game, set_ or [])
            with unchecked():  # built as it is, defects included: the report names them
                built = make(game, **overrides)
        with user_errors():  # a game's defects are in the report; a bad setting (MFAX_*) is not
            report = check_game(built, key=jax.random.PRNGKey(seed))
        typer.echo(json_text(report.as_dict()) if as_json else str(report))
        raise typer.Exit(0 if report.ok else 1)
