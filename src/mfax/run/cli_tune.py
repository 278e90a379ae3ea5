"""``mfax tune``: search a solver's hyper-parameters for the lowest exploitability within
a budget (:func:`mfax.run.tune.tune`; Optuna, the optional extra ``mfax[tune]``).

Wired into the main app with ``register(app)``.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from mfax.run.cli_common import (
    INTERRUPTION_SAID,
    emit_json,
    home,
    json_on_stdout,
    parse_hparams,
    parse_overrides,
    refuse_empty,
    user_errors,
)


@contextlib.contextmanager
def _interruption(out: str | None):
    """Ctrl-C (or SIGTERM: ``mfax.run.cli.main`` raises it as ``Terminated``) during a
    search: say what is kept (the complete trials, in ``out``'s study; the trial cut
    short is marked failed) and how to go on, then exit 130 (143)."""
    from mfax.run.signals import Terminated

    try:
        yield
    except (KeyboardInterrupt, Terminated) as err:
        from pathlib import Path

        from mfax.run.tune import BEST_INTERRUPTED, BEST_KEPT

        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        if BEST_KEPT in getattr(err, "__notes__", ()):
            line = f"{what} once the study and its best run were complete (in {str(Path(out) / 'best')!r})"
        elif BEST_INTERRUPTED in getattr(err, "__notes__", ()):
            line = (
                f"{what} while training the best trial again (in {str(Path(out) / '.best-next')!r}); "
                f"{str(Path(out) / 'best')!r} is as it was; the search is complete: the same command trains the best "
                "trial again"
            )
        elif out and (Path(out) / "study.db").is_file():
            line = (
                f"{what}; the complete trials are kept in {str(out)!r} (a trial cut short is marked failed): "
                "the same command continues the study"
            )
        elif out:
            line = f"{what} before the study started in {str(out)!r}: nothing was trained"
        else:
            line = f"{what}; nothing is kept (a study in memory only: --out DIR keeps one)"
        typer.echo("\n" + line, err=True)
        INTERRUPTION_SAID.append(True)
        raise typer.Exit(err.code if isinstance(err, Terminated) else 130) from None


def _table(result) -> list[str]:
    names = list(result.space)
    head = f"{'trial':>5}  {'state':<8}  {'exploitability':>14}  " + "".join(f"{k:>12}  " for k in names)
    lines = [head + f"{'at':>5}  {'seconds':>8}"]
    from mfax.evaluation.exploitability import negative_words

    notes = []
    for row in result.trials:
        value = "" if row["value"] is None else f"{row['value']:.6g}"
        if row["value"] is not None and row["value"] < 0:  # what a figure below 0 is, under the table
            value += "*"
            notes.append(
                f"  * trial {row['trial']}: {row['value']:.6g}{negative_words(row['value'], row.get('policy_return'))}"
            )
        cells = "".join(f"{'' if row[k] is None else format(row[k], '.4g'):>12}  " for k in names)
        at = "" if row["best_iteration"] is None else str(row["best_iteration"])
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        mark = "  default" if row["default"] else ""
        mark += "  best" if row["trial"] == result.best_trial else ""
        lines.append(f"{row['trial']:>5}  {row['state']:<8}  {value:>14}  {cells}{at:>5}  {seconds:>8}{mark}")
    return lines + notes


def register(app: typer.Typer) -> None:
    """Add the ``tune`` command to ``app``."""

    @app.command("tune")
    @json_on_stdout
    def tune_command(
        game: Annotated[str, typer.Option(help="the game, as `mfax train --game` takes it")] = "beach_bar",
        algo: Annotated[str, typer.Option(help="the solver (`mfax list`)")] = "rspg",
        trials: Annotated[int, typer.Option(help="complete trials the study should hold")] = 20,
        iterations: Annotated[int | None, typer.Option(help="iterations per trial [default: mfax train's]")] = None,
        time_budget: Annotated[
            float | None,
            typer.Option(
                help="seconds per trial of training and evaluation (from its first evaluation; building the "
                "trial and waiting for a compilation excluded; checked at each evaluation), at most --iterations"
            ),
        ] = None,
        space: Annotated[
            list[str] | None,
            typer.Option(
                "--space",
                help="search NAME=low:high (uniform) or NAME=low:high:log; NAME alone: its declared range "
                "(repeatable; exactly these are searched) [default: every declared range, `mfax list`]",
            ),
        ] = None,
        batch: Annotated[int, typer.Option(help="trials per compiled program when only lr is searched")] = 8,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="override a game parameter, key=value (repeatable) [default: the game's]"),
        ] = None,
        hp: Annotated[
            list[str] | None,
            typer.Option("--hp", help="fix a solver hyper-parameter, key=value (repeatable; not searched)"),
        ] = None,
        lr: Annotated[float | None, typer.Option(help="fix the learning rate (not searched)")] = None,
        seed: Annotated[int, typer.Option(help="every trial's training seed, and the sampler's")] = 0,
        noise: Annotated[str | None, typer.Option(help="as mfax train --noise [default: auto]")] = None,
        paths: Annotated[int | None, typer.Option(help="as mfax train --paths")] = None,
        eval_every: Annotated[
            int | None,
            typer.Option(help="iterations between evaluations (a trial's value is their lowest) [default: 10]"),
        ] = None,
        out: Annotated[
            str | None,
            typer.Option(
                callback=home,
                help="keep the study: DIR/study.db (the same command again continues it), DIR/trials.csv, "
                "DIR/best (the best trial's run directory) [default: in memory only]",
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
    ) -> None:
        """Search a solver's hyper-parameters (Optuna) for the lowest exact exploitability
        (per path) reached within each trial's budget. Trials that search only lr run side
        by side in one compiled program (--batch at a time); others one by one."""
        from mfax.run.tune import parse_space, tune

        with user_errors(), _interruption(out):
            refuse_empty("--out", out, "directory to keep the study in", "a study in memory only")
            overrides = parse_overrides(game, set_ or [], sweep=True)  # a sweep: refused by tune in its words
            fixed = parse_hparams(algo, hp or [])
            result = tune(
                game,
                algo,
                trials=trials,
                iterations=iterations,
                time_budget=time_budget,
                space=None if not space else parse_space(space),
                batch=batch,
                seed=seed,
                out=out,
                params=overrides,
                hp=fixed,
                lr=lr,
                noise=noise,
                paths=paths,
                eval_every=eval_every,
                log=typer.echo,  # (on stderr with --json: json_on_stdout)
            )
        if as_json:
            emit_json(result.as_dict())
            return
        for line in _table(result):
            typer.echo(line)
        best = " ".join(f"{k}={v:.6g}" for k, v in result.best_params.items())
        from mfax.evaluation.exploitability import negative_words

        row = next(r for r in result.trials if r["trial"] == result.best_trial)
        below = negative_words(result.best_value, row.get("policy_return"))
        typer.echo(f"best: trial {result.best_trial}, exploitability {result.best_value:.6g}{below} with {best}")
        if result.default_value is not None:
            held = [f"{k}={v}" for k, v in fixed.items()] + ([] if lr is None else [f"lr={lr:g}"])
            which = f" (with {', '.join(held)} fixed)" if held else ""
            typer.echo(f"  the default hyper-parameters{which} reached {result.default_value:.6g} on the same budget")
        if result.out is not None:
            typer.echo(f"kept: {result.out / 'study.db'}, {result.out / 'trials.csv'}; best run: {result.best_dir}")
            typer.echo(f"  (mfax eval {result.best_dir}; mfax plot {result.best_dir})")
