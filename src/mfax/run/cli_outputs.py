"""``mfax export`` and ``mfax irf``: a trained run's world as files, and its impulse
responses (:mod:`mfax.run.export`, :func:`mfax.evaluation.moments.impulse_response`).

Wired into the main app with ``register(app)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mfax.games.validate import checking
from mfax.run.cli_check import CHECK_OPTION_HELP
from mfax.run.cli_common import user_errors

ITERATION_HELP = (
    "which checkpoint of RUN: 'last', 'best' (lowest exploitability per path) or an iteration K that has one"
)
RUN_INDEX_HELP = "which run of a multi-seed/multi-lr RUN [default: the best at that checkpoint]"
GAME_HELP = (
    "RUN's game named again (a reference; a copy of its file may be elsewhere): allows importing its code "
    "[default: only a built-in or plug-in game]"
)
TRUST_HELP = "import (run) the game or solver code RUN's config names [default: off]"


def _load(run_dir: str, run_index: int | None, iteration: str, game: str | None, trust_code: bool):
    """The run's trainer, the policy of run ``run_index`` at checkpoint ``iteration``, its
    index and game."""
    from mfax.run.rundir import Consent, RunDir
    from mfax.run.train import load_policy

    run = RunDir(run_dir)
    trainer, policy, r = load_policy(run, run_index, iteration.strip().lower(), Consent(game, trust_code))
    return run, trainer, policy, r, trainer.game_of(r)


def register(app: typer.Typer) -> None:
    """Add the ``export`` and ``irf`` commands to ``app``."""

    @app.command("export")
    def export_command(
        run_dir: Annotated[str, typer.Argument(metavar="RUN", help="a run directory from `mfax train`")],
        fmt: Annotated[
            str,
            typer.Option(
                "--format",
                help="npz: one numpy file (numpy.load); csv: a folder of CSV files with mfax-export.json listing "
                "each file's columns and rows",
            ),
        ] = "npz",
        out: Annotated[
            str | None,
            typer.Option(help="where to write: a .npz file or a folder [default: RUN/export.npz or RUN/export/]"),
        ] = None,
        paths: Annotated[
            int | None,
            typer.Option(help="export the first N of the run's evaluation noise paths [default: all of them]"),
        ] = None,
        iteration: Annotated[str, typer.Option(help=ITERATION_HELP)] = "last",
        run_index: Annotated[int | None, typer.Option(help=RUN_INDEX_HELP)] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="replace an export mfax wrote there (nothing else) [default: off]")
        ] = False,
        game: Annotated[str | None, typer.Option(help=GAME_HELP)] = None,
        trust_code: Annotated[bool, typer.Option("--trust-code", help=TRUST_HELP)] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="end stdout with the manifest as one JSON object")
        ] = False,
        check: Annotated[bool, typer.Option(help=CHECK_OPTION_HELP)] = True,
    ) -> None:
        """Write a trained run's mean fields, policy, aggregates (prices), moments and
        noise along its evaluation noise paths (exact push-forward under its policy), as
        npz or CSV. Never overwrites a file mfax did not write."""
        from mfax.run.export import FORMATS, check_target, default_target, export

        with user_errors(), checking(check):
            fmt = fmt.strip().lower()
            if fmt not in FORMATS:
                from mfax.errors import GameError

                raise GameError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
            target = Path(out) if out is not None else default_target(Path(run_dir), fmt)
            check_target(target, fmt, overwrite)  # before the run is loaded and pushed forward
            run, trainer, policy, r, g = _load(run_dir, run_index, iteration, game, trust_code)
            source = {"run": str(run.root), "run_index": r, "checkpoint": iteration, "config": trainer.config.to_dict()}
            info = export(
                g, policy, trainer.eval_noise_of(r), target, fmt, num_paths=paths, overwrite=overwrite, source=source
            )
        what = f"{info['paths']} noise paths, {len(info['moments'])} moments, {len(info['aggregates'])} aggregates"
        typer.echo(f"wrote {target} ({fmt}: {what})")
        if as_json:
            typer.echo(json.dumps({"path": str(target), **info}))
