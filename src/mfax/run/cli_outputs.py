"""``mfax export`` and ``mfax irf``: a trained run's world as files, and its impulse
responses (:mod:`mfax.run.export`, :func:`mfax.evaluation.moments.impulse_response`).

Wired into the main app with ``register(app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfax.errors import GameError
from mfax.games.validate import checking
from mfax.run.cli_check import CHECK_OPTION_HELP
from mfax.run.cli_common import (
    INTERRUPTION_SAID,
    ITERATION_HELP,
    JSON_HELP,
    emit_json,
    home,
    json_on_stdout,
    json_text,
    refuse_empty,
    user_errors,
)
from mfax.run.rundir import IRF_KEYS, _replace_with, output_writable

IRF_FIGURE = "irf"  # the kind its figure carries (rundir.png_tags): --plot replaces only another irf figure

RUN_INDEX_HELP = "which run of a multi-seed/multi-lr RUN [default: the best at that checkpoint]"
GAME_HELP = (
    "RUN's game named again (a reference; a copy of its file may be elsewhere): allows importing its code "
    "[default: only a built-in or plug-in game]"
)
TRUST_HELP = "import (run) the game or solver code RUN's config names [default: off]"


def _load(run_dir: str, run_index: int | None, iteration: str, game: str | None, trust_code: bool):
    """The run, its trainer, the policy of run ``run_index`` at checkpoint ``iteration``,
    its index and game, and the iteration the checkpoint holds."""
    from mfax.run.rundir import Consent, RunDir
    from mfax.run.train import load_policy_at, own_best_words

    run = RunDir(run_dir)
    which = iteration.strip().lower()
    trainer, policy, r, held = load_policy_at(run, run_index, which, Consent(game, trust_code))
    own = own_best_words(run, r, which, held, trainer.config.num_runs) if run_index is not None else None
    if own is not None:
        typer.echo(f"note: {own}", err=True)
    return run, trainer, policy, r, trainer.game_of(r), held


def register(app: typer.Typer) -> None:
    """Add the ``export`` and ``irf`` commands to ``app``."""

    @app.command("export")
    @json_on_stdout
    def export_command(
        run_dir: Annotated[str, typer.Argument(metavar="RUN", callback=home, help="a run directory from `mfax train`")],
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
            typer.Option(
                callback=home, help="where to write: a .npz file or a folder [default: RUN/export.npz or RUN/export/]"
            ),
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
        as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
        check: Annotated[bool, typer.Option(help=CHECK_OPTION_HELP)] = True,
    ) -> None:
        """Write a trained run's mean fields, policy, aggregates (prices), moments and
        noise along its evaluation noise paths (exact push-forward under its policy), as
        npz or CSV. Never overwrites a file mfax did not write."""
        import os

        from mfax.run.export import FORMATS, default_target, export
        from mfax.run.signals import Terminated

        with user_errors(), checking(check):
            fmt = fmt.strip().lower()
            if fmt not in FORMATS:
                raise GameError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
            refuse_empty("--out", out, "export file or folder", "RUN/export.npz or RUN/export")
            if out is not None and fmt == "npz" and out.endswith(("/", os.sep)):
                raise GameError(
                    f"--out {out!r} names a folder; an npz export is one file (for example "
                    f"{out.rstrip('/' + os.sep) + '.npz'!r}), a folder of CSV files is --format csv"
                )
            if paths is not None and paths < 1:  # (the top of the range needs the run)
                raise GameError(f"--paths must be >= 1 (at most the run's evaluation paths), got {paths}")
            target = Path(out) if out is not None else default_target(Path(run_dir), fmt)
            # the run read first (its --iteration, --run-index, --paths said before the target:
            # an existing export hid them), the target checked before the push-forward (export)
            run, trainer, policy, r, g, held = _load(run_dir, run_index, iteration, game, trust_code)
            # the exported run's own game parameters, seed and rate (the config lists every run's)
            config = trainer.config.run_dict(r)
            source = {
                "run": str(run.root.resolve()),  # whichever the current folder: what --overwrite reads
                "run_index": r,
                "checkpoint": iteration.strip().lower(),  # as eval and irf record it ("best", "200")
                "checkpoint_iteration": held,
                "config": config,
            }
            done: list[bool] = []
            try:
                info = export(
                    g,
                    policy,
                    trainer.eval_noise_of(r),
                    target,
                    fmt,
                    num_paths=paths,
                    overwrite=overwrite,
                    source=source,
                    done=done,
                )
            except (KeyboardInterrupt, Terminated) as err:  # the export is whole, or not there at all
                what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
                kept = (
                    f"after the export was written: {str(target)!r} is complete"
                    if done
                    else f"before the export was written: {str(target)!r} is as it was"
                )
                typer.echo(f"\n{what} {kept}", err=True)
                INTERRUPTION_SAID.append(True)
                raise typer.Exit(err.code if isinstance(err, Terminated) else 130) from None
        counts = (
            (info["paths"], "noise path"),
            (len(info["moments"]), "moment"),
            (len(info["aggregates"]), "aggregate"),
        )
        what = ", ".join(f"{k} {noun}{'' if k == 1 else 's'}" for k, noun in counts)
        if trainer.config.num_runs > 1:  # say which run, and how it was chosen (as irf)
            from mfax.run.plots import picked_run_words

            typer.echo(picked_run_words(trainer.config, r, run_index is not None))
        files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)  # (the published macro's 64 paths: 725 MB)
        typer.echo(f"wrote {target} ({fmt}: {what}; {size / 2**20:.1f} MiB)")
        if as_json:
            emit_json({"path": str(target), **info})

    @app.command("irf")
    @json_on_stdout
    def irf_command(
        run_dir: Annotated[str, typer.Argument(metavar="RUN", callback=home, help="a run directory from `mfax train`")],
        shock: Annotated[
            float | None,
            typer.Option(
                help="size of the shock in standard deviations of the noise's innovation (-1: a one-sd fall) "
                "[default: -1]"
            ),
        ] = None,
        at: Annotated[
            int | None,
            typer.Option(help="the time t0 the shock hits (the macro game's z_0 is 0 on its own paths) [default: 1]"),
        ] = None,
        innovations: Annotated[
            str | None,
            typer.Option(
                help="instead of --shock/--at: the whole path of standardised innovations e_0..e_T, comma-separated "
                "(T + 1 numbers) [default: --shock at --at, zero elsewhere]"
            ),
        ] = None,
        iteration: Annotated[str, typer.Option(help=ITERATION_HELP)] = "last",
        run_index: Annotated[int | None, typer.Option(help=RUN_INDEX_HELP)] = None,
        plot: Annotated[
            str | None,
            typer.Option(callback=home, help="write the figure here, a .png file [default: RUN/plots/irf.png]"),
        ] = None,
        out: Annotated[
            str | None,
            typer.Option(
                callback=home,
                help="write the response (every moment, baseline, shocked, deviation) as JSON here, a .json file "
                "(missing, or an irf.json mfax wrote) [default: RUN/irf.json]",
            ),
        ] = None,
        game: Annotated[str | None, typer.Option(help=GAME_HELP)] = None,
        trust_code: Annotated[bool, typer.Option("--trust-code", help=TRUST_HELP)] = False,
        as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
        check: Annotated[bool, typer.Option(help=CHECK_OPTION_HELP)] = True,
    ) -> None:
        """Impulse response of a trained run's moments: the shocked noise path (a shock of
        --shock standard deviations at --at, then the noise's own law of motion: for the
        macro game the AR(1) decay of z) against the path without shocks, both pushed
        forward exactly under the run's policy; deviations in percent (levels) or points
        (rates, shares, logarithms)."""

        from mfax.evaluation.moments import impulse_response, shock_innovations
        from mfax.run.plots import irf_figure, picked_run_words, save_figure, shock_words

        with user_errors(), checking(check):
            iteration = iteration.strip().lower()  # as recorded in irf.json: " Best " is "best"
            refuse_empty("--out", out, "JSON file", "RUN/irf.json")
            refuse_empty("--plot", plot, "figure", "RUN/plots/irf.png")
            if innovations is not None and (shock is not None or at is not None):
                raise GameError("--innovations gives the whole shock path; drop --shock and --at")
            shock = -1.0 if shock is None else shock
            at = 1 if at is None else at
            if plot is not None and Path(plot).suffix.lower() != ".png":
                raise GameError(f"--plot names a .png file (mfax's figures are PNG), got {plot!r}")
            if out is not None and Path(out).suffix.lower() != ".json":
                raise GameError(f"--out names a .json file (the response is written as JSON), got {out!r}")
            run, trainer, policy, r, g, held = _load(run_dir, run_index, iteration, game, trust_code)
            plot_path = Path(plot) if plot is not None else run.plots_dir / "irf.png"
            json_path = Path(out) if out is not None else run.root / "irf.json"
            # the defaults too: a user's own irf.json or plots/irf.png in the run is theirs
            # a chosen --plot replaces only an irf figure (not the oracle's prices.png, say)
            output_writable(plot_path, figure=None if plot is None else IRF_FIGURE)
            output_writable(json_path, *IRF_KEYS)
            if innovations is not None:
                path = parse_innovations(innovations, g.horizon)
            else:
                path = shock_innovations(g.horizon, shock, at)
            response = impulse_response(g, policy, path)  # (one that overflows is refused there)
            record = irf_record(response, str(run.root.resolve()), r, iteration)  # (whichever the folder)
            record["params"] = trainer.config.run_params(r)  # the run's own game (a sweep lists every value)
            record["checkpoint_iteration"] = held  # ("last" moves on when the run is resumed)
            words = shock_words(shock, at, innovations)
            which = None
            if trainer.config.num_runs > 1:  # say which run, and how it was chosen
                which = picked_run_words(trainer.config, r, run_index is not None)
                words += f"; {which.split(':')[0]}"
            save_figure(irf_figure(g, response, words), plot_path, kind=IRF_FIGURE)
            json_path.parent.mkdir(parents=True, exist_ok=True)
            _replace_with(json_path, (json_text(record) + "\n").encode())
        if which is not None:
            typer.echo(which)
        _print_irf(response, at if innovations is None else None)
        typer.echo(f"wrote {plot_path}, {json_path}")
        if as_json:
            emit_json(record)


def parse_innovations(text: str, horizon: int):
    """``--innovations``: exactly ``T + 1`` comma-separated finite numbers ``e_0..e_T`` (an
    empty entry is an error, not skipped: it would move every later shock one step)."""
    import math

    import numpy as np

    from mfax.errors import GameError

    values = []
    for i, field in enumerate(text.split(",")):
        try:
            value = float(field)
        except ValueError:
            what = "is empty" if not field.strip() else f"{field.strip()!r} is not a number"
            raise GameError(f"--innovations: entry {i} {what}; give T + 1 = {horizon + 1} numbers e_0..e_T") from None
        if not math.isfinite(value):
            raise GameError(f"--innovations: entry {i} is {field.strip()}; innovations must be finite numbers")
        values.append(value)
    if len(values) != horizon + 1:
        raise GameError(f"--innovations needs T + 1 = {horizon + 1} numbers (e_0..e_T), got {len(values)}")
    return np.array(values)


def irf_record(response, run: str, run_index: int, iteration: str) -> dict:
    """The JSON record of an impulse response: the innovations, and per moment its label,
    deviation kind, axes, baseline, shocked path and deviation at every ``t``."""
    from mfax.evaluation.moments import jsonable

    deviation = response.deviation()
    return {
        "run": run,
        "run_index": run_index,
        "checkpoint": iteration,
        "innovations": jsonable(response.innovations),
        "moments": {
            name: {
                "label": spec.label,
                "deviation_kind": spec.deviation,
                "times": "0..T-1" if spec.decision else "0..T",
                "axes": {axis: jsonable(coords) for axis, coords in spec.axes},
                # every digit: the deviation of a small shock is below the levels' 7th
                "baseline": jsonable(response.baseline[name], 17),
                "shocked": jsonable(response.shocked[name], 17),
                "deviation": jsonable(deviation[name]),
            }
            for name, spec in response.specs.items()
        },
    }


def _print_irf(response, at: int | None = None) -> None:
    """Impact (at ``at``, the date of the shock the user gave; default: the first non-zero
    innovation, else 0), peak and last deviation of every scalar moment."""
    import numpy as np

    deviation = response.deviation()
    hit = np.flatnonzero(response.innovations)
    t0 = at if at is not None else int(hit[0]) if hit.size else 0
    typer.echo("impulse response: deviation from the path without shocks (% for levels, points x100 otherwise)")
    # every column after a space, so that a value wider than its column stays apart
    scalars = {name: spec for name, spec in response.specs.items() if not spec.axes}
    width = max([36, *(len(spec.label) for spec in scalars.values())])  # the label column fits every label
    typer.echo(f"  {'':<{width}} {'impact t = ' + str(t0):>15} {'peak':>11} {'at t':>5} {'last':>11}")
    for name, spec in scalars.items():
        d = deviation[name]
        after = np.nan_to_num(d[t0:], nan=0.0)
        unit = "%" if spec.deviation == "percent" else "pt"
        if after.size:
            peak = t0 + int(np.argmax(np.abs(after)))
            shown = f"{d[t0]:>13.4g}{unit:<2} {d[peak]:>9.4g}{unit:<2} {peak:>5}"
        else:  # a moment of the decisions (t < T) and a shock at T: nothing it moves
            shown = f"{'-':>15} {'-':>11} {'-':>5}"
        typer.echo(f"  {spec.label:<{width}} {shown} {d[-1]:>9.4g}{unit:<2}")
