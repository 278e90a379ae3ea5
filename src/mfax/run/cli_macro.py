"""``mfax solve-macro``: the macro economy's equilibrium price path by the classical
transition-path iteration (:func:`mfax.solvers.macro_oracle.solve_macro`).

Wired into the main app with ``register(app)``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from mfax import params
from mfax.errors import GameError
from mfax.games import make
from mfax.run.cli_common import parse_overrides, user_errors


def _summary(eq, seconds: float, game, damping: float, tol: float) -> dict:
    def path(x):
        return {"first": float(x[0]), "last": float(x[-1]), "min": float(x.min()), "max": float(x.max())}

    return {
        "game": "macro",
        "params": {name: getattr(game, name) for name in params.fields_of(type(game))},
        "damping": damping,
        "tol": tol,
        "iterations": eq.iterations,
        "residual": eq.residual,
        "move": eq.move,
        "final_damping": eq.damping,
        "converged": eq.converged,
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

    fig, (ax_r, ax_w) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_r.plot(eq.r)
    ax_r.set(xlabel="t", ylabel="interest rate r_t", title="interest rate")
    ax_w.plot(eq.W, color="tab:orange")
    ax_w.set(xlabel="t", ylabel="wage W_t", title="wage")
    fig.suptitle(f"macro equilibrium (oracle): {eq.iterations} iterations, gap {eq.residual:.2e}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def register(app: typer.Typer) -> None:
    """Add the ``solve-macro`` command to ``app``."""

    @app.command("solve-macro")
    def solve_macro_command(
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="override a macro parameter, key=value (repeatable); common_noise is off"),
        ] = None,
        damping: Annotated[float, typer.Option(help="weight of the new price path in each update, in (0, 1]")] = 0.5,
        tol: Annotated[float, typer.Option(help="stop when the price path moves by less than this")] = 1e-8,
        max_iter: Annotated[int, typer.Option(help="largest number of price updates")] = 2000,
        out: Annotated[
            str | None, typer.Option(help="directory to write macro_equilibrium.json and prices.png")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="end stdout with one JSON object")] = False,
    ) -> None:
        """Equilibrium price path of the macro game without common noise (the oracle):
        best response to prices, push forward, recompute prices, damp, repeat."""
        from mfax.solvers.macro_oracle import solve_macro  # loaded by this command alone

        with user_errors():
            overrides = parse_overrides("macro", set_ or [])
            if overrides.get("common_noise", False):
                raise GameError("solve-macro solves the economy without common noise; drop common_noise=true")
            game = make("macro", **{**overrides, "common_noise": False})
            start = time.perf_counter()
            eq = solve_macro(game, damping=damping, tol=tol, max_iter=max_iter)
            seconds = time.perf_counter() - start
        summary = _summary(eq, seconds, game, damping, tol)
        typer.echo(
            f"macro equilibrium: {eq.iterations} iterations in {seconds:.1f} s, gap {eq.residual:.3g}, "
            f"last move {eq.move:.3g}, {'converged' if eq.converged else 'NOT converged to tol'}"
        )
        typer.echo(f"  r_t: {eq.r[0]:.6g} -> {eq.r[-1]:.6g}   W_t: {eq.W[0]:.6g} -> {eq.W[-1]:.6g}")
        typer.echo(f"  exploitability of the best response under its own mean field: {eq.exploitability:.3g}")
        if out is not None:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "macro_equilibrium.json").write_text(json.dumps(summary, indent=2) + "\n")
            _plot(eq, folder / "prices.png")
            typer.echo(f"wrote {folder / 'macro_equilibrium.json'}, {folder / 'prices.png'}")
        if as_json:
            typer.echo(json.dumps(summary))
