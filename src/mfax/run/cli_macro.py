"""``mfax solve-macro``: the macro economy solved by economists' methods: the classical
transition-path iteration without common noise (``--method oracle``, the default,
:func:`mfax.solvers.macro_oracle.solve_macro`) or Krusell-Smith with common noise
(``--method krusell-smith``, :func:`mfax.solvers.krusell_smith.solve_krusell_smith`).

Wired into the main app with ``register(app)``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer

from mfax import memory, params
from mfax.errors import GameError
from mfax.evaluation.exploitability import negative_words
from mfax.games.registry import build, game_class
from mfax.games.validate import validate_game
from mfax.run.cli_common import (
    JSON_HELP,
    _pairs,
    emit_json,
    home,
    json_on_stdout,
    parse_overrides,
    refuse_empty,
    two_digits,
    user_errors,
)
from mfax.run.rundir import TUNE_MARKER, RunDir, _disk, _replace_with, file_above, output_writable

METHODS = ("oracle", "krusell-smith")
# the kinds the figures carry (rundir.png_tags): --out replaces only a figure of its own kind
ORACLE_FIGURE, KS_FIGURE = "oracle prices", "krusell-smith"
# what the JSON files of earlier runs of this command hold: such a file may be replaced
ORACLE_KEYS = ("game", "params", "iterations", "r", "W")
KS_KEYS = ("game", "params", "iterations", "coef")


def _summary(eq, seconds: float, game, damping: float, tol: float) -> dict:
    def path(x):
        return {"first": float(x[0]), "last": float(x[-1]), "min": float(x.min()), "max": float(x.max())}

    return {
        "game": "macro",
        "method": "oracle",
        "params": {name: getattr(game, name) for name in params.fields_of(type(game))},
        "damping": damping,
        "tol": tol,
        "iterations": eq.iterations,
        "residual": eq.residual,
        "move": eq.move,
        "final_damping": eq.damping,
        "converged": eq.converged,
        "stalled": eq.stalled,
        "exploitability": eq.exploitability,
        "r_summary": path(eq.r),
        "W_summary": path(eq.W),
        "r": [float(x) for x in eq.r],
        "W": [float(x) for x in eq.W],
        "seconds": seconds,
    }


def _plot(eq, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mfax.run.plots import save_figure

    fig, (ax_r, ax_w) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_r.plot(eq.r)
    ax_r.set(xlabel="t", ylabel="interest rate r_t", title="interest rate")
    ax_w.plot(eq.W, color="tab:orange")
    ax_w.set(xlabel="t", ylabel="wage W_t", title="wage")
    state = "" if eq.converged else ", STALLED, not converged" if eq.stalled else ", NOT converged"
    fig.suptitle(f"macro equilibrium (oracle): {eq.iterations} iterations, gap {eq.residual:.2e}{state}")
    fig.tight_layout()
    save_figure(fig, path, dpi=120, kind=ORACLE_FIGURE)
    plt.close(fig)


def _ks_summary(res, game, settings) -> dict:
    import numpy as np

    from mfax.evaluation.moments import weighted_quantile

    def nan_none(x):
        return None if x is None or not np.isfinite(x) else float(x)

    def band(x):  # (P, T+1) -> mean and 5/95% over the (equally likely) paths at every t
        equal = np.full(x.shape[0], 1.0 / x.shape[0])  # the moments' quantiles: an order statistic
        return {
            "mean": [float(v) for v in x.mean(0)],
            "p05": [float(v) for v in weighted_quantile(x, equal, 0.05)],
            "p95": [float(v) for v in weighted_quantile(x, equal, 0.95)],
        }

    return {
        "game": "macro",
        "method": "krusell-smith",
        "params": {name: getattr(game, name) for name in params.fields_of(type(game))},
        "settings": {name: getattr(settings, name) for name in params.fields_of(type(settings))},
        "iterations": res.iterations,
        "converged": res.converged,
        "stalled": res.stalled,
        "final_damping": res.damping,
        "gaps": [float(g) for g in res.gaps],
        "coef": [[float(v) for v in row] for row in res.coef],
        "r2": [nan_none(v) for v in res.r2],
        "r2_min": nan_none(res.r2_min),
        "den_haan_max": res.den_haan_max,
        "den_haan_mean": res.den_haan_mean,
        "outside_grid": res.outside_grid,
        "z_outside_grid": res.z_outside_grid,
        "exploitability": nan_none(res.exploitability),
        "exploitability_info": nan_none(res.exploitability_info),
        # the standard error of the per-path figure's mean over drawn paths (null: exact)
        "exploitability_se": None if _drawn_paths(game) is not None else nan_none(res.exploitability_se),
        "policy_return": nan_none(res.policy_return),
        "eval_paths": int(res.r.shape[0]),
        "r": band(res.r[:, :-1]),
        "W": band(res.W[:, :-1]),
        "capital": band(np.exp(res.log_capital)),
        "seconds": res.seconds,
    }


def _ks_plot(res, path: Path, drawn: str | None = None) -> None:
    """``drawn``: where the exploitability was estimated (``"64 drawn paths"``), ``None``
    when it is exact."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mfax.run.plots import save_figure
    from mfax.solvers.krusell_smith import rule_path

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    horizon = res.r.shape[1] - 1
    for ax, x, label in ((axes[0], res.r[:, :-1], "interest rate r_t"), (axes[1], res.W[:, :-1], "wage W_t")):
        ax.plot(x.T, color="tab:blue", alpha=0.15, lw=0.8)
        ax.plot([], [], color="tab:blue", alpha=0.4, lw=0.8, label=f"each of {x.shape[0]} evaluation paths")
        ax.plot(x.mean(0), color="k", lw=1.5, label="their mean")
        ax.set(xlabel="t", ylabel=label)
        ax.legend(fontsize=7)
    forecast = rule_path(res.coef, float(res.log_capital[0, 0]), res.z[:, :horizon])
    axes[2].plot(np.exp(res.log_capital[0, :horizon]), "k-", label="exact push-forward (path 0)")
    axes[2].plot(np.exp(forecast[0]), "r--", label="the rule's own forecast")
    axes[2].set(xlabel="t", ylabel="capital K_t")
    axes[2].legend()
    state = "" if res.converged else ", STALLED, not converged" if res.stalled else ", NOT converged"
    se = "" if res.exploitability_se is None or drawn is None else f" ± {two_digits(res.exploitability_se)}"
    where = "" if drawn is None else f" ({drawn})"
    fig.suptitle(
        f"Krusell-Smith: {res.iterations} iterations{state}, min R^2 {r2_text(res.r2_min, 4)}, den Haan max "
        f"{100 * res.den_haan_max:.2f}%, exploitability {res.exploitability:.3g}{se}{where}"
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=120, kind=KS_FIGURE)
    plt.close(fig)


def r2_text(value: float, digits: int) -> str:
    """The rule's smallest R^2, or why there is none: at no date does capital vary across
    the simulated paths (productivity never moves: ``z_std=0`` or no common noise), so
    there is nothing for the rule to explain (``nan`` was printed)."""
    if math.isfinite(value):
        return f"{value:.{digits}f}"
    return "n/a (capital is the same on every simulated path at every date: nothing to fit)"


def _solve_krusell_smith(overrides, hp, damping, tol, max_iter, out, as_json, overwrite=False) -> None:
    from mfax.solvers.krusell_smith import KrusellSmithSettings, make_settings, solve_krusell_smith

    with user_errors():
        if out is not None:  # before anything is computed
            _output_folder(out)
            output_writable(Path(out) / "krusell_smith.json", *KS_KEYS)
            _earlier_result(Path(out) / "krusell_smith.json", overwrite)
            output_writable(Path(out) / "krusell_smith.png", figure=KS_FIGURE)
        # built, then checked against memory, then validated: the checks of a huge economy
        # take minutes before the refusal they would only delay
        game = params.build(game_class("macro"), "game 'macro'", **overrides)
        values = {
            key: params.parse_text(KrusellSmithSettings, "krusell-smith", key, v) for key, v in _pairs("--hp", hp)
        }
        for key, value in (("damping", damping), ("tol", tol), ("max_iter", max_iter)):
            if value is not None:
                if key in values:
                    option = "--" + key.replace("_", "-")
                    raise GameError(f"{key} is given twice ({option} and --hp {key}=...); give it once")
                values[key] = value
        settings = make_settings(**values)
        memory.require(
            memory.krusell_smith_bytes(game, settings),
            "krusell-smith with these settings",
            "use fewer paths or eval_paths, smaller grids (capital_points, z_points, quadrature) "
            "or a smaller economy (num_wealth, horizon)",
        )
        validate_game(game)

        def progress(k: int, gap: float, step: float) -> None:
            typer.echo(f"  update {k}: the re-estimated rule moves the forecasts by {gap:.3g} (damping {step:g})")

        res = solve_krusell_smith(game, settings, on_update=progress)
    summary = _ks_summary(res, game, settings)
    typer.echo(
        f"krusell-smith: {res.iterations} iterations in {res.seconds:.1f} s, last gap {res.gaps[-1]:.3g}, "
        + _ks_state_words(res)
    )
    typer.echo(
        f"  rule: min R^2 {r2_text(res.r2_min, 6)}, den Haan max error {100 * res.den_haan_max:.3f}% "
        f"(mean {100 * res.den_haan_mean:.3f}%), outside the households' grids (clamped): capital "
        f"{100 * res.outside_grid:.1f}%, z {100 * res.z_outside_grid:.1f}% of (path, t)"
    )
    typer.echo("  " + _ks_exploitability_words(res, game, summary["eval_paths"]))
    if out is not None:
        # the file also holds the evaluation paths, from which the rule's R^2 and den Haan's
        # error can be computed again (the --json line keeps to the summary)
        paths = {
            name: [[float(v) for v in row] for row in getattr(res, name)] for name in ("log_capital", "z", "r", "W")
        }
        _write_outputs(
            Path(out),
            "krusell_smith.json",
            KS_KEYS,
            {**summary, "eval_paths_data": paths},
            "krusell_smith.png",
            lambda path: _ks_plot(res, path, None if _drawn_paths(game) else f"{summary['eval_paths']} drawn paths"),
            KS_FIGURE,
            overwrite,
        )
    if as_json:
        emit_json(summary)


def _drawn_paths(game) -> str | None:
    """Why the KS policy's evaluation paths are all one path, exactly scored (no common
    noise, or productivity that never moves), or ``None`` when they are distinct draws."""
    support = game.noise_support()
    if support is not None and support.weight.shape[0] == 1:
        return "its one noise path (no common noise)"
    if float(game.z_std) == 0.0:  # productivity never moves: every draw is the same path
        return "one path (z_std=0)"
    return None


def _ks_state_words(res) -> str:
    """How the KS fixed point ended: converged, stalled (not converged: a stall's last gap
    is above tol, which the line did not say) or cut short by ``--max-iter``."""
    if res.converged:
        return "converged"
    if res.stalled:
        return "stalled (the gap stopped shrinking; the damped move is below tol), NOT converged to tol"
    return "NOT converged"


def _ks_exploitability_words(res, game, count: int) -> str:
    """``exact exploitability ... on its one noise path: per path X`` or, on distinct
    draws, ``exploitability ... estimated on N fresh paths: per path X ± se``."""
    scale, info = res.policy_return, res.exploitability_info
    info = "" if info is None else f", information-consistent {info:.4g}{negative_words(info, scale)}"
    figure = f"{res.exploitability:.4g}{negative_words(res.exploitability, scale)}"
    exact = _drawn_paths(game)
    if exact is not None:
        return f"exact exploitability of the KS policy on {exact}: per path {figure}{info}"
    se = "" if res.exploitability_se is None else f" ± {two_digits(res.exploitability_se)} (one standard error)"
    return f"exploitability of the KS policy estimated on {count} fresh paths: per path {figure}{se}{info}"


def _output_folder(out: str) -> None:
    """Raise (one line) unless ``--out`` can be a folder: it, or the nearest existing path
    above it, is a directory (a file there ended in a traceback after the solve)."""
    folder = Path(out)
    above = folder if folder.exists() and not folder.is_dir() else file_above(folder)
    if above is not None:
        raise GameError(f"--out names a folder for the results; {str(above)!r} is not a directory")
    # (the results landed inside a training run or a tune study, which hold their own files)
    held = "a training run" if RunDir(folder).is_run() else "a tune study" if (folder / TUNE_MARKER).is_file() else None
    if held is not None:
        raise GameError(
            f"--out {str(folder)!r} holds {held}; give solve-macro a folder of its own (for example "
            f"{str(folder / 'macro')!r})"
        )


def _earlier_result(path: Path, overwrite: bool) -> None:
    """Refuse (one line) to replace an earlier solve's result without ``--overwrite``: a
    second `mfax solve-macro --out` into the same folder replaced the first, a published
    solve of minutes, without a word (`mfax train` and `mfax export` refuse)."""
    if path.exists() and not overwrite:
        raise GameError(
            f"{str(path)!r} holds an earlier solve-macro result; --overwrite replaces it (and its figure), "
            "or choose another --out"
        )


def _write_outputs(
    folder: Path,
    json_name: str,
    keys: tuple[str, ...],
    summary: dict,
    png_name: str,
    plot,
    figure: str,
    overwrite: bool = False,
) -> None:
    """``summary`` as ``folder/json_name`` (a record holding ``keys``) and
    ``plot(folder/png_name)``: the files ``output_writable`` cleared before anything was
    computed, cleared again now (a solve can take half an hour, and a file put there
    meanwhile is not mfax's to replace). A failure is one line."""
    with user_errors():
        output_writable(folder / json_name, *keys)
        _earlier_result(folder / json_name, overwrite)  # (one written while this one solved)
        output_writable(folder / png_name, figure=figure)
        with _disk("create the folder", folder):
            folder.mkdir(parents=True, exist_ok=True)
        _replace_with(folder / json_name, (json.dumps(summary, indent=2) + "\n").encode())
        plot(folder / png_name)
    typer.echo(f"wrote {folder / json_name}, {folder / png_name}")


def register(app: typer.Typer) -> None:
    """Add the ``solve-macro`` command to ``app``."""

    @app.command("solve-macro")
    @json_on_stdout
    def solve_macro_command(
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help=(
                    "override a macro parameter, key=value (repeatable); the oracle sets common_noise=false "
                    "(true is refused)"
                ),
            ),
        ] = None,
        method: Annotated[
            str, typer.Option(help="oracle (transition path, no common noise) or krusell-smith (with common noise)")
        ] = "oracle",
        damping: Annotated[
            float | None, typer.Option(help="weight of the new iterate in each update, in (0, 1] [oracle: 0.5, KS: 1]")
        ] = None,
        tol: Annotated[
            float | None,
            typer.Option(
                help="oracle: stop when the fixed-point gap max|p_new - p| is below this (or, the damping cut, "
                "the damped move is); KS: when the re-estimated rule moves the forecasts by less "
                "[oracle: 1e-8, KS: 1e-6]",
            ),
        ] = None,
        max_iter: Annotated[int | None, typer.Option(help="largest number of updates [oracle: 2000, KS: 60]")] = None,
        hp: Annotated[
            list[str] | None,
            typer.Option(
                "--hp", help="a Krusell-Smith hyper-parameter, key=value (repeatable; see docs/economists.md)"
            ),
        ] = None,
        out: Annotated[
            str | None,
            typer.Option(callback=home, help="directory to write the result's JSON and a plot of its prices"),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="replace an earlier result in --out [default: refused]")
        ] = False,
    ) -> None:
        """Equilibrium of the macro game by economists' methods. oracle (default): the
        price path without common noise (best response to prices, push forward,
        recompute prices, damp, repeat). krusell-smith: households forecast capital by a
        log-linear rule in (log K, z), best respond on (wealth, income, K, z) grids, the
        rule is re-estimated from the exact push-forward until it stops moving; reports
        R^2, den Haan's error and the exact exploitability of the KS policy."""
        with user_errors():
            if method not in METHODS:
                raise GameError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
            refuse_empty("--out", out, "directory", "no files (the result printed only)")
            overrides = parse_overrides("macro", set_ or [])
            if method == "oracle" and hp:
                raise GameError(
                    "--hp sets Krusell-Smith hyper-parameters; the oracle takes --damping, --tol, --max-iter"
                )
        if method == "krusell-smith":
            _solve_krusell_smith(overrides, hp or [], damping, tol, max_iter, out, as_json, overwrite)
            return
        damping = 0.5 if damping is None else damping
        tol = 1e-8 if tol is None else tol
        max_iter = 2000 if max_iter is None else max_iter
        from mfax.solvers.macro_oracle import check_settings, solve_macro  # loaded by this command alone

        with user_errors():
            check_settings(damping, tol, max_iter)  # before the economy is built and checked
            if overrides.get("common_noise", False):
                raise GameError(
                    "the oracle solves the economy without common noise; drop common_noise=true "
                    "(or use --method krusell-smith)"
                )
            # built, then checked against memory, then validated (as krusell-smith)
            game = build("macro", **{**overrides, "common_noise": False})
            memory.require(
                memory.oracle_bytes(game),
                "the oracle on this economy",
                "choose a smaller economy (num_wealth, num_income, num_actions, horizon)",
            )
            validate_game(game)
            if out is not None:  # before anything is computed
                _output_folder(out)
                output_writable(Path(out) / "macro_equilibrium.json", *ORACLE_KEYS)
                _earlier_result(Path(out) / "macro_equilibrium.json", overwrite)
                output_writable(Path(out) / "prices.png", figure=ORACLE_FIGURE)
            start = time.perf_counter()
            eq = solve_macro(game, damping=damping, tol=tol, max_iter=max_iter)
            seconds = time.perf_counter() - start
        summary = _summary(eq, seconds, game, damping, tol)
        status = (
            "converged"
            if eq.converged
            else f"stalled (the gap stopped shrinking: the damping was cut to {eq.damping:.3g} and the damped move "
            "fell below tol), NOT converged to tol"
            if eq.stalled
            else "NOT converged to tol within --max-iter"
        )
        typer.echo(  # (the economy without aggregate risk, whatever the game's default: said, not implied)
            f"macro equilibrium without aggregate risk (common_noise=false): {eq.iterations} iterations in "
            f"{seconds:.1f} s, gap {eq.residual:.3g}, last move {eq.move:.3g}, {status}"
        )
        typer.echo(f"  r_t: {eq.r[0]:.6g} -> {eq.r[-1]:.6g}   W_t: {eq.W[0]:.6g} -> {eq.W[-1]:.6g}")
        below = negative_words(eq.exploitability, float(eq.mu[0] @ eq.value))
        typer.echo(f"  exploitability of the best response under its own mean field: {eq.exploitability:.3g}{below}")
        if out is not None:
            _write_outputs(
                Path(out),
                "macro_equilibrium.json",
                ORACLE_KEYS,
                summary,
                "prices.png",
                lambda path: _plot(eq, path),
                ORACLE_FIGURE,
                overwrite,
            )
        if as_json:
            emit_json(summary)
