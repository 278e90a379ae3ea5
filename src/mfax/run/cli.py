"""The ``mfax`` command line: ``list``, ``eval``, ``train``, ``plot``, ``solve-macro``, ``export``,
``irf``, ``check-game``.

Every command has ``--help``; bad input ends with a one-line ``mfax: error: ...`` on
stderr and exit status 2.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mfax import params
from mfax.errors import GameError, MfaxError, command_line_words
from mfax.games import describe, game_class, game_names
from mfax.games.plugins import short_name
from mfax.games.registry import build, plugin_games, shadowed_games
from mfax.games.validate import checking, defects_named, validate_game
from mfax.policies.networks import NetworkPolicy, PolicyParams, make_network
from mfax.run.cli_check import CHECK_OPTION_HELP
from mfax.run.cli_check import register as register_check
from mfax.run.cli_common import (
    INTERRUPTION_SAID,
    ITERATION_HELP,
    JSON_HELP,
    OneLineErrors,
    check_seed,
    emit_json,
    home,
    json_on_stdout,
    json_text,
    notes,
    output_closed,
    parse_hparams,
    parse_overrides,
    parse_times,
    refuse_empty,
    two_digits,
    user_errors,
)
from mfax.run.cli_macro import register as register_macro
from mfax.run.cli_outputs import register as register_outputs
from mfax.run.cli_tune import register as register_tune
from mfax.run.config import (
    DEFAULTS,
    GAME_DEFAULTS,
    GAME_HPARAMS,
    GAME_POLICY,
    LR_SEARCH,
    TrainConfig,
    check_lr_used,
    check_paths_used,
    check_seeds_used,
    game_defaults,
)
from mfax.run.signals import agreed_on_failure
from mfax.solvers import solver_names, solver_spec
from mfax.solvers.base import plugin_solvers, shadowed_solvers

_CFG = TrainConfig()  # the defaults ``mfax train --help`` shows


def _per_game(key: str) -> str:
    """A per-game default in words, e.g. ``macro 0.01, others 0.001``."""
    special = [f"{game} {values[key]}" for game, values in GAME_DEFAULTS.items() if values[key] != DEFAULTS[key]]
    return ", ".join([*special, f"others {DEFAULTS[key]}"])


# Plain help (no Rich markup): Rich would read "[default: 200]" and "mfax[wandb]" as tags.
app = typer.Typer(
    cls=OneLineErrors,
    help="mfax: mean-field games with common noise and public partial information, in JAX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)


def _print_version(value: bool) -> None:
    if value:
        import jax

        from mfax import __version__

        typer.echo(f"mfax {__version__} (JAX {jax.__version__})")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print mfax's and JAX's versions and exit"
        ),
    ] = False,
) -> None:
    """mfax: mean-field games with common noise and public partial information, in JAX."""


GAME_FORMS = (
    "a registered game (see `mfax list`), an installed plug-in's name, package.module:Class or path/to/file.py:Class"
)


def _game_params(ref: str) -> list[dict[str, Any]]:
    """Every parameter of the game ``ref`` names: name, default, help, traced."""
    traced = params.traced_names(game_class(ref))
    return [{"name": k, "default": d, "help": h, "traced": k in traced} for k, d, h in describe(ref)]


def _search(hparams: type, name: str) -> list | None:
    """A hyper-parameter's declared search range for `mfax tune` (``None``: none)."""
    found = params.search_range(hparams, name)
    return None if found is None else list(found)


def _range_text(found) -> str:
    low, high, scale = found
    return f"{low:g}:{high:g}" + (":log" if scale == "log" else "")


def _plugins(found: dict[str, str], load) -> tuple[dict[str, Any], dict[str, str]]:
    """Load each installed plug-in: ``(name -> loaded, name -> one-line error)``; a broken
    one does not stop the others."""
    loaded, broken = {}, {}
    for name in found:
        try:
            loaded[name] = load(name)
        except GameError as err:
            broken[name] = str(err)
    return loaded, broken


def _echo_games(catalogue: dict[str, list[dict[str, Any]]], origins: dict[str, str]) -> None:
    for name, game_params in catalogue.items():
        typer.echo(f"  {name}" + (f"  [{origins[name]}]" if name in origins else ""))
        for p in game_params:
            label = p["name"] + (" *" if p["traced"] else "")
            typer.echo(f"    {label:<24} {p['default']!s:<28} {p['help']}")


@app.command("list")
def list_command(
    game: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help=f"list this game's parameters only ({GAME_FORMS}), or this solver's hyper-parameters (a solver's name "
            "or package.module:NAME, path/to/file.py:NAME)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """List the games (parameters, defaults, meaning) and the solvers, built in and installed
    as plug-ins (entry points mfax.games, mfax.solvers); or the parameters of one game, or
    the hyper-parameters of one solver (NAME)."""
    if game is not None:
        with user_errors():
            try:
                catalogue = {game: _game_params(game)}
            except GameError as err:  # a solver's name or reference, else the game's error
                spec = _solver_named(game)
                if spec is None and str(err).startswith("unknown game"):
                    raise GameError(f"{err}; or a solver: {', '.join(solver_names())}") from None
                if spec is None:
                    raise err from None
                catalogue = None
        if catalogue is None:
            if as_json:
                typer.echo(json_text({"solvers": {game: _solver_record(spec)}}))
            else:
                _echo_solver(game, spec, "")
            return
        if as_json:
            typer.echo(json_text({"games": catalogue}))
        else:
            _echo_games(catalogue, {})
            if any(p["traced"] for p in catalogue[game]):  # (the full listing's header says it)
                typer.echo("  * traced: --set key=v1,v2,... trains one run per value in one compiled program")
        return
    solver_origins, game_origins = plugin_solvers(), plugin_games()  # one scan of the entry points each
    extra_solvers, broken_solvers = _plugins(solver_origins, solver_spec)
    extra_games, broken_games = _plugins(game_origins, _game_params)
    specs = {**{name: solver_spec(name) for name in solver_names()}, **extra_solvers}
    catalogue = {**{name: _game_params(name) for name in game_names()}, **extra_games}
    solvers = {
        name: {
            "description": spec.description,
            "defaults": {g: game_defaults(g) for g in catalogue},
            "game_hparams": {g: per_game.get(name, {}) for g, per_game in GAME_HPARAMS.items()},
            **_solver_record(spec),
        }
        for name, spec in specs.items()
    }
    if as_json:
        record = {
            "games": catalogue,
            "solvers": solvers,
            "plugins": {"games": game_origins, "solvers": solver_origins},
            "broken": {"games": broken_games, "solvers": broken_solvers},
            "shadowed": {"games": shadowed_games(), "solvers": shadowed_solvers()},
        }
        typer.echo(json_text(record))
        return
    typer.echo("solvers (mfax train --algo NAME):")
    for name, spec in specs.items():
        _echo_solver(name, spec, f"  [{solver_origins[name]}]" if name in solver_origins else "")
        for g, values in solvers[name]["game_hparams"].items():
            if values:
                typer.echo(f"           {g} defaults: " + " ".join(f"{k}={v}" for k, v in values.items()))
    for name, message in broken_solvers.items():
        typer.echo(f"  {name:<6} BROKEN: {message}")
    typer.echo("  per-game defaults: " + "; ".join(f"{g}: {v}" for g, v in GAME_DEFAULTS.items()))
    typer.echo("games (mfax eval/train --game NAME --set key=value; * traced: --set key=v1,v2,... in training runs")
    typer.echo("       one run per value, all in one compiled program; any game class also as --game")
    typer.echo("       package.module:Class or path/to/file.py:Class):")
    _echo_games(catalogue, game_origins)
    for name, message in broken_games.items():
        typer.echo(f"  {name}  BROKEN: {message}")
    for kind, found in (("game", shadowed_games()), ("solver", shadowed_solvers())):
        for name, where in found.items():
            typer.echo(
                f"  {name}  SHADOWED: the {kind} plug-in {name!r} ({where}) has the name of a registered {kind}, "
                "which is used; the plug-in is not (rename its entry point)"
            )


def _solver_named(name: str):
    """The solver spec ``name`` names, or ``None`` where it names none."""
    try:
        return solver_spec(name)
    except GameError:
        return None


def _solver_record(spec) -> dict[str, Any]:
    """A solver's description and hyper-parameters (defaults, help, tune ranges), as `mfax list --json`."""
    described = [] if spec.hparams is None else params.describe(spec.hparams)
    return {
        "description": spec.description,
        "hparams": [{"name": k, "default": d, "help": h, "search": _search(spec.hparams, k)} for k, d, h in described],
        "lr_search": list(LR_SEARCH) if spec.uses_lr else None,
    }


def _echo_solver(name: str, spec, origin: str) -> None:
    """A solver's lines of `mfax list`: its description, then each option it takes."""
    typer.echo(f"  {name:<6} {spec.description}{origin}")
    if spec.uses_lr:
        typer.echo(f"           {'--lr':<34} learning rate [tune: {_range_text(LR_SEARCH)}]")
    for k, d, h in [] if spec.hparams is None else params.describe(spec.hparams):
        searched = _search(spec.hparams, k)
        tuned = f" [tune: {_range_text(searched)}]" if searched else ""
        typer.echo(f"           {f'--hp {k}={d}':<34} {h}{tuned}")


def _warn_provenance(run, float64: bool, config) -> None:
    """One line on stderr when ``run`` was produced under another setup (see
    ``provenance.json``), a plug-in of another version than its game's or solver's included."""
    from mfax.run.provenance import check, plugin_versions

    line = check(run.provenance_path, float64, plugin_versions(config.game, config.algo))
    if line is not None:
        typer.echo(line, err=True)


def _recorded_figures(run, run_index: int, iteration: int, result, float64: bool) -> dict | None:
    """The figures ``metrics.jsonl`` recorded for run ``run_index`` at ``iteration`` (none
    recorded: ``None``), with a warning when ``result``, the same checkpoint scored again
    on the same paths in the same precision, differs from them beyond rounding
    (:func:`~mfax.run.train.rescored_difference`)."""
    from mfax.run.rundir import warn
    from mfax.run.train import rescored_difference

    rows = [row for row in run.read_metrics() if row["iteration"] == iteration and row["run"] == run_index]
    if not rows:
        return None
    figures = {key: rows[-1].get(key) for key in ("exploitability", "exploitability_info", "policy_return")}
    differs = rescored_difference(figures, result.as_dict(), float64)
    if differs is not None:
        # (a record that metrics.csv, written beside it, contradicts was edited: not a changed game)
        edited = run.csv_disagreement(run.read_metrics(), iteration)
        why = (
            f"metrics.csv and metrics.jsonl disagree ({edited}): a record was edited since"
            if edited is not None
            else "the game's code, code it imports, or mfax changed since, or the record was edited"
        )
        warn(
            f"the checkpoint of iteration {iteration} (run {run_index}) scores {differs} "
            f"({str(run.metrics_jsonl)!r}): {why}; the figures here are today's"
        )
    return figures


def _refuse_non_finite(result, float64: bool) -> None:
    """One line instead of an evaluation that is not finite (it printed ``nan`` and
    ``-inf`` with exit status 0, and ``--json`` wrote ``NaN``, which is not JSON); not
    under ``--no-check``, which asks to see what an unchecked game gives."""
    figures = {
        "policy return": result.policy_return,
        "best-response return": result.best_response_return,
        "exploitability": result.exploitability,
    }
    bad = [f"{name} {value}" for name, value in figures.items() if not math.isfinite(value)]
    if bad:
        from mfax.run.train import overflow_advice

        dtype = "float64" if float64 else "float32"
        raise GameError(f"the evaluation is not finite in {dtype} ({', '.join(bad)}): {overflow_advice(float64)}")


def _print_evaluation(title: str, result, batch, seconds: float, game, shown: bool | None, float64: bool) -> None:
    """``shown``: whether the information-consistent figure is the exact non-anticipative
    one on these paths (:func:`~mfax.evaluation.exploitability.info_consistent_exact`);
    ``float64``: the precision it was computed in."""
    info = result.exploitability_info
    typer.echo(title)
    plural = "" if batch.num_paths == 1 else "s"
    typer.echo(f"noise: {'exact' if batch.exact else 'sampled'}, {batch.num_paths} path{plural}")
    from mfax.evaluation.exploitability import above_words, exact_figures, negative_words

    scale = result.policy_return
    # drawn paths of a game with one noise path are that path: the figures are exact
    drawn = not exact_figures(game, batch)
    one_path = not batch.exact and not drawn

    def error(se):
        if not drawn:
            return ""
        return " ± n/a (no standard error from one drawn path)" if se is None else f" ± {two_digits(se)}"

    below = negative_words(result.exploitability, scale, float64)
    if drawn:
        per_path = f"  exploitability (per path, estimate)     {result.exploitability:.6g}"
    else:
        per_path = f"  exploitability (per path, upper bound)  {result.exploitability:.6g}"
    typer.echo(per_path + error(result.exploitability_se) + below)
    info_text = "n/a" if info is None else format(info, ".6g") + negative_words(info, scale, float64)
    info_text += above_words(info, result.exploitability, scale, float64)
    typer.echo(f"  exploitability (information-consistent) {info_text}")
    typer.echo("    per path: the deviator knows the whole noise path in advance")
    if drawn:
        typer.echo(
            f"    sampled: means over the {batch.num_paths} drawn noise paths ± one standard error; the exact "
            "per-path figure (an upper bound) may lie on either side of the estimate"
        )
    elif one_path:
        typer.echo(f"    {game.name} has one noise path: every draw is it, so these figures are exact")
    if info is not None:
        typer.echo("    information-consistent: it sees the public history and its own current state;")
        if drawn:
            typer.echo(
                f"      for {game.name} computed on the {batch.num_paths} sampled paths as if they were the whole "
                "noise support: an estimate biased upward (a deviator tells few paths apart sooner), neither "
                "exact nor a proven bound (--noise exact computes it)"
            )
        elif one_path:
            typer.echo(f"      exact for {game.name} (with one noise path there is nothing to learn about it)")
        elif not shown:
            typer.echo(
                f"      for {game.name} a lower bound: the exact gain of one such deviation "
                "(its own past states may tell it more about the noise)"
            )
        else:
            typer.echo(f"      exact for {game.name} (its own past states would tell it nothing more)")
    typer.echo(f"  policy return                           {result.policy_return:.6g}{error(result.policy_return_se)}")
    best = f"{result.best_response_return:.6g}{error(result.best_response_return_se)}"
    typer.echo(f"  best-response return (per path)         {best}")
    typer.echo(f"  evaluated in {seconds:.2f} s")


def checkpoint_words(which: str, held: int) -> str:
    """``last (iteration 40)``, ``best (iteration 12)``, or ``12`` when the user named it."""
    return str(held) if which.isdigit() else f"{which} (iteration {held})"


def _print_moments(moments, horizon: int) -> None:
    """The scalar moments' expectation over the paths at the start, the middle and the end."""
    expected = moments.expected()
    how = "exact over the noise support" if moments.exact else f"mean over {moments.num_paths} sampled paths"
    times = sorted({0, horizon // 2, horizon})
    typer.echo(f"moments ({how}; every t in --json, `mfax export`):")
    names = moments.scalar_names()
    width = max([36, *(len(moments.specs[name].label) + 1 for name in names)])  # (labels up to 46 characters)
    typer.echo("  " + " " * width + "".join(f"{'t = ' + str(t):>14}" for t in times))
    for name in names:
        values = expected[name]
        cells = [f"{values[t]:>14.6g}" if t < len(values) else f"{'':>14}" for t in times]
        typer.echo(f"  {moments.specs[name].label:<{width}}" + "".join(cells))


@app.command("eval")
@json_on_stdout
def eval_command(
    run_dir: Annotated[
        str | None,
        typer.Argument(metavar="[RUN]", callback=home, help="a run directory from `mfax train` (else a fixed policy)"),
    ] = None,
    game: Annotated[
        str | None,
        typer.Option(
            help=f"the game of a fixed policy: {GAME_FORMS} [default: beach_bar]; with RUN, naming its game again "
            "allows importing the game's code (a copy of its file may be elsewhere)"
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="fixed policy: 'uniform'; 'action:K', always the action with index K (0-based: on beach_bar, "
            "action:5 is 'stay'); or 'value:X', always the action whose value is X (beach_bar: value:0 is 'stay') "
            "[default: uniform]"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a game parameter, key=value (repeatable) [default: the game's]"),
    ] = None,
    noise: Annotated[
        str | None,
        typer.Option(
            help="'exact' (enumerate finite noise), 'sample' (Monte Carlo) or 'auto' [default: sample when --paths "
            "(or --seed without --learned-br) is given; else for RUN, the noise paths its training evaluated on, "
            "so the figures are those of its metrics; else auto]"
        ),
    ] = None,
    paths: Annotated[
        int | None,
        typer.Option(
            help="number of sampled noise paths; sampled noise only (refused when the noise is enumerated) "
            "[default: RUN's evaluation paths (--eval-paths), else 128]"
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="PRNG seed for sampled noise paths and the learned best response's deviator; without "
            "--learned-br, sampled noise only, as --paths [default: 0]"
        ),
    ] = None,
    iteration: Annotated[
        str,
        typer.Option(help=ITERATION_HELP),
    ] = "last",
    run_index: Annotated[
        int | None,
        typer.Option(
            help="which run of a multi-seed/multi-lr RUN [default: the best at the checkpoint --iteration names]"
        ),
    ] = None,
    learned_br: Annotated[
        bool,
        typer.Option("--learned-br", help="also train a history-aware best response: a lower bound [default: off]"),
    ] = False,
    br_iterations: Annotated[
        int | None, typer.Option(help="iterations of the learned best response (--learned-br) [default: 300]")
    ] = None,
    br_lr: Annotated[
        float | None, typer.Option(help="learning rate of the learned best response (--learned-br) [default: 0.001]")
    ] = None,
    x64: Annotated[bool, typer.Option("--x64", help="compute in float64 [default: off, float32]")] = False,
    trust_code: Annotated[
        bool,
        typer.Option(
            "--trust-code", help="import (run) the game or solver code RUN's config names, unchecked [default: off]"
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar for --learned-br (on stderr)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    check: Annotated[bool, typer.Option(help=CHECK_OPTION_HELP)] = True,
) -> None:
    """Evaluation of a trained run or a fixed policy, exact over the noise support where it is
    enumerated, else estimated on drawn paths (± standard errors): both exploitabilities, returns,
    and the moments of a game that declares them (the macro game: capital, output, inequality, saving)."""
    import jax

    from mfax.dynamics import noise_batch
    from mfax.evaluation import evaluate
    from mfax.evaluation.exploitability import info_consistent_exact
    from mfax.memory import check_evaluation
    from mfax.policies import parse_policy

    with user_errors(), checking(check):
        refuse_empty("RUN", run_dir, "run directory", "a fixed policy (--game, --policy)")
        refuse_empty("--policy", policy, "fixed policy", "uniform")
        check_seed(seed, offset=11 if learned_br else 0)  # the learned best response draws from seed + 11
        if paths is not None and paths < 1:
            raise GameError(f"--paths must be >= 1, got {paths}")
        if not learned_br and (br_iterations is not None or br_lr is not None):
            raise GameError("--br-iterations and --br-lr set the learned best response; add --learned-br")
        br_iterations = 300 if br_iterations is None else br_iterations
        br_lr = 1e-3 if br_lr is None else br_lr
        if not 1 <= br_iterations <= params.INT32_MAX:
            raise GameError(f"--br-iterations must lie in 1..{params.INT32_MAX}, got {br_iterations}")
        if not 0.0 < br_lr < math.inf:
            raise GameError(f"--br-lr must be finite and > 0, got {br_lr}")
        if x64:
            jax.config.update("jax_enable_x64", True)
        if run_dir is not None:
            from mfax.run.provenance import same_products
            from mfax.run.rundir import Consent, RunDir
            from mfax.run.train import load_policy_at, own_best_words

            if set_:
                raise GameError("--set applies to fixed policies; a RUN keeps the game it was trained on")
            if policy is not None:
                raise GameError("--policy evaluates a fixed policy; a RUN is evaluated with its trained policy")
            consent = Consent(game, trust_code)
            which = iteration.strip().lower()
            run = RunDir(run_dir)
            named = run_index is not None
            trainer, pol, run_index, held = load_policy_at(run, run_index, which, consent)
            _warn_provenance(run, x64 or trainer.config.x64, trainer.config)
            g, overrides = trainer.game_of(run_index), trainer.config.run_params(run_index)
            if trainer.config.num_runs > 1:  # which run (seed, rate, swept values), how it was chosen
                from mfax.run.plots import picked_run_words

                runs = picked_run_words(trainer.config, run_index, named)
            else:
                runs = "run 0"
            label = f"run {run_dir} ({runs}; checkpoint {checkpoint_words(which, held)})"
            own_best = own_best_words(run, run_index, which, held, trainer.config.num_runs) if named else None
            config = trainer.config
        else:
            if iteration != "last":
                raise GameError("--iteration picks a checkpoint of a RUN; a fixed policy has none")
            if run_index is not None:
                raise GameError("--run-index picks a run of a RUN; a fixed policy has none")
            if trust_code:
                raise GameError("--trust-code applies to a RUN; a fixed policy's game is the one --game names")
            game = game or "beach_bar"
            overrides = parse_overrides(game, set_ or [])
            g = build(game, **overrides)  # checked after the memory estimate, below
            policy = policy or "uniform"
            with defects_named(g):
                pol = parse_policy(g, policy)
            label, config, which, held, own_best = f"policy {policy}", None, None, None, None
        # what only sampled noise can use (--seed also seeds the learned deviator)
        given = [
            flag for flag, value in (("--paths", paths), ("--seed", None if learned_br else seed)) if value is not None
        ]
        sampling = bool(given)
        own_paths = run_dir is not None and noise is None and not sampling
        if own_paths:
            batch = trainer.eval_noise_of(run_index)  # the paths its metrics were computed on
        else:
            noise = noise or ("sample" if sampling else "auto")
            if paths is None:
                paths = 128 if config is None else config.eval_paths
            with defects_named(g):
                check_evaluation(g, noise, paths, 8 if x64 else 4)  # before the paths are drawn
            validate_game(g)  # (a RUN's game was checked when it was made)
            batch = noise_batch(g, noise, jax.random.PRNGKey(seed or 0), paths)
            if sampling and batch.exact:
                raise GameError(
                    f"{' and '.join(given)} set sampled noise paths, but --noise {noise} enumerates {g.name}'s "
                    "noise exactly; drop them, or give --noise sample"
                )
        start = time.perf_counter()
        result = evaluate(g, pol, batch)
        seconds = time.perf_counter() - start
        float64 = bool(jax.config.jax_enable_x64)  # (a run trained with --x64 is evaluated in float64)
        if check:  # --no-check shows what an unchecked game gives, NaN included
            _refuse_non_finite(result, float64)
        # whether the information-consistent figure is exact: with the whole support, declared
        # by the game or shown on its paths (on sampled paths it is an estimate)
        shown = (
            None if result.exploitability_info is None else bool(batch.exact) and info_consistent_exact(g, pol, batch)
        )
        recorded = None
        # (a config.json edited since: its game is not the one the figures were recorded on,
        # which the reader was told; comparing would blame the code)
        same_run = own_paths and not run.config_edits
        if same_run and float64 == config.x64 and held is not None and same_products(run.provenance_path):
            recorded = _recorded_figures(run, run_index, held, result, float64)
        bracket = None
        if learned_br:
            bracket = _learned_bracket(g, pol, batch, config, br_iterations, br_lr, seed or 0, progress)
        moments = None
        if g.moment_specs():
            from mfax.evaluation.moments import path_moments

            moments = path_moments(g, pol, batch)

    _print_evaluation(f"game {g.name} {overrides or ''}  {label}", result, batch, seconds, g, shown, float64)
    if moments is not None:
        _print_moments(moments, g.horizon)
    if own_best is not None:
        typer.echo(f"  note: {own_best}")
    if bracket is not None:
        gain = bracket.exploitability_lower_bound
        if gain >= 0.0 and not batch.exact:  # (on sampled paths neither figure is exact, nor the order proven)
            why = (
                f"a history-aware deviator trained {bracket.iterations} iterations gains this much on the "
                f"{batch.num_paths} sampled noise paths: an estimate, not a proven bound (--noise exact bounds the "
                "non-anticipative exploitability from below where the noise support is finite)"
            )
        elif gain >= 0.0:
            why = (
                f"a history-aware deviator trained {bracket.iterations} iterations gains this much; the"
                " non-anticipative exploitability lies between this lower bound and the per-path upper bound"
                " (the information-consistent figure may lie below it)"
            )
        else:  # the exploitability is >= 0 anyway: a deviator that does worse bounds nothing
            why = (
                f"negative: the deviator trained {bracket.iterations} iterations does worse than the policy, so it "
                "bounds nothing beyond exploitability >= 0; train it longer (--br-iterations) or with another --br-lr"
            )
        typer.echo(f"  exploitability (lower bound, learned)   {gain:.6g}  ({why})")
    if as_json:
        record = {
            "game": g.name,
            "params": overrides,
            "policy": policy if run_dir is None else run_dir,
            "checkpoint": which,
            "checkpoint_iteration": held,
            # which run of a RUN, its seed and learning rate (runs of one RUN differ only there)
            "run_index": run_index if config is not None else None,
            "seed": config.run_seed(run_index) if config is not None else None,
            "lr": config.run_lr(run_index) if config is not None and solver_spec(config.algo).uses_lr else None,
            "noise": "exact" if batch.exact else "sample",
            # the paths: the run's own evaluation paths, the whole support, or drawn with noise_seed
            "noise_source": "run" if own_paths else "enumerated" if batch.exact else "drawn",
            "noise_seed": None if own_paths or batch.exact else (seed or 0),
            **result.as_dict(),
            "exploitability_info_exact": shown,
            "exploitability_lower_bound": None if bracket is None else bracket.exploitability_lower_bound,
            "learned_br_seed": None if bracket is None else (seed or 0),  # the deviator's (--seed)
            # the figures metrics.jsonl recorded for this checkpoint when it was trained (a RUN on its own paths)
            "recorded": recorded,
            "seconds": seconds,
        }
        if moments is not None:
            record["moments"] = moments.as_dict()
        emit_json(record)


def _deviator(game, run_hparams: dict[str, Any], key):
    """The learned best response's deviator: a recurrent policy network with the game's
    published head and state input (``GAME_POLICY``), in the network sizes (and head, state
    input) of the run being evaluated, read from its hyper-parameters ``run_hparams``
    (empty for a fixed policy: the defaults)."""
    fields = params.fields_of(PolicyParams)
    chosen = {**GAME_POLICY.get(game.name, {}), **{k: v for k, v in run_hparams.items() if k in fields}}
    net = params.build(PolicyParams, "the learned best response's network", **chosen)
    return make_network(game, key, net, recurrent=True, head=net.head)


def _learned_bracket(game, population, batch, config, iterations: int, lr: float, seed: int, progress: bool):
    """Train a history-aware deviator against ``population`` (its gain is a lower bound on
    the non-anticipative exploitability, exact on the whole noise support, an estimate on
    sampled paths); ``config``: the evaluated run's, else ``None``.
    A recurrent network population is also a second start (the deviator starting as the
    population, gain 0): both are trained and the larger gain is the bound (each is one).
    The warm start alone stayed where a nearly deterministic population's gradient
    vanishes (4.7e-05 where a fresh deviator found 0.95 of an exact 2.32)."""
    import jax

    from mfax.solvers.learned_br import learned_best_response

    starts = [_deviator(game, {} if config is None else config.hparams, jax.random.PRNGKey(seed + 7))]
    if isinstance(population, NetworkPolicy) and population.recurrent:
        starts.append(population)
    num_paths = game_defaults(game.name)["paths"] if config is None else config.paths
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations * len(starts), unit="it", desc="learned best response", dynamic_ncols=True)
    try:
        brackets = [
            learned_best_response(
                game,
                population,
                deviator,
                batch,
                jax.random.PRNGKey(seed + 11),
                iterations=iterations,
                lr=lr,
                num_paths=num_paths,
                progress=None if bar is None else bar.update,
            )
            for deviator in starts
        ]
    finally:
        if bar is not None:
            bar.close()
    finite = [b for b in brackets if math.isfinite(b.exploitability_lower_bound)]
    if not finite:  # (a NaN gain was said to be "negative", and max() let a NaN first one win)
        raise GameError(
            f"the learned best response diverged (the deviator's return is not finite after {iterations} "
            f"iterations at --br-lr {lr:g}); give a smaller --br-lr"
        )
    return max(finite, key=lambda b: b.exploitability_lower_bound)


@app.command("train")
@json_on_stdout
def train_command(
    game: Annotated[
        str | None,
        typer.Option(
            help=f"the game: {GAME_FORMS} [default: {_CFG.game}]; with --resume, naming the run's game again "
            "allows importing its code"
        ),
    ] = None,
    algo: Annotated[
        str | None,
        typer.Option(
            help=f"solver: {', '.join(solver_names())}, an installed plug-in's name (see `mfax list`), "
            f"package.module:NAME or path/to/file.py:NAME naming a SolverSpec [default: {_CFG.algo}]"
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            help="training iterations; with --resume, a new total (at least the iterations done; a larger one "
            "extends the run) replans the learning rate's linear decay from the resumed iteration over the new "
            "total: provenance.json's schedule records each stretch, and config.json (the latest total) alone no "
            f"longer reproduces the run [default: {_CFG.iterations}]"
        ),
    ] = None,
    paths: Annotated[
        int | None,
        typer.Option(help=f"noise paths per iteration when sampled [default: {_per_game('paths')}]"),
    ] = None,
    noise: Annotated[
        str | None,
        typer.Option(help=f"exact | sample | auto (exact when the noise support is small) [default: {_CFG.noise}]"),
    ] = None,
    lr: Annotated[
        str | None,
        typer.Option(
            help="learning rate(s), comma-separated; several train side by side; decays linearly to "
            "--hp final_lr_fraction times it (default 0.1) over the iterations; used by "
            f"{', '.join(n for n in solver_names() if solver_spec(n).uses_lr)} "
            f"[default: {_per_game('lr')}]"
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help=f"number of seeds trained side by side (vmap) [default: {_CFG.seeds}]")
    ] = None,
    seed: Annotated[int | None, typer.Option(help=f"first seed [default: {_CFG.seed}]")] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(help=f"iterations per compiled chunk between evaluations [default: {_CFG.eval_every}]"),
    ] = None,
    eval_paths: Annotated[
        int | None,
        typer.Option(
            help="evaluation paths drawn where the noise is sampled (a continuous support, or --noise sample); "
            f"enumerated noise evaluates every path [default: {_CFG.eval_paths}]"
        ),
    ] = None,
    devices: Annotated[
        int | None,
        typer.Option(
            help="devices to split noise paths (and runs) over: structural training and exact evaluation; "
            "model-free and classical solvers train on one device; a multi-host run uses every device of every "
            "process [default: all local devices]"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help=(
                "override a game parameter, key=value (repeatable); key=v1,v2,... trains one run per value in "
                "one program (traced parameters, see `mfax list`) [default: the game's]"
            ),
        ),
    ] = None,
    hp: Annotated[
        list[str] | None,
        typer.Option(
            "--hp", help="set a solver hyper-parameter, key=value (repeatable) [default: the solver's, see `mfax list`]"
        ),
    ] = None,
    config_file: Annotated[
        str | None,
        typer.Option("--config", callback=home, help="TOML or JSON config file (flags override it) [default: none]"),
    ] = None,
    out: Annotated[
        str | None, typer.Option(callback=home, help="run directory [default: runs/GAME-ALGO-TIMESTAMP]")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            callback=home,
            help="continue the run in this directory from its last checkpoint, bit for bit (--iterations N "
            "replans it, see --iterations) [default: a new run]",
        ),
    ] = None,
    trust_code: Annotated[
        bool,
        typer.Option(
            "--trust-code",
            help="with --resume: import (run) the game or solver code the run's config names, unchecked [default: off]",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing run in --out (only a run directory) [default: off]")
    ] = False,
    coordinator: Annotated[
        str | None,
        typer.Option(
            help="multi-host: coordinator HOST:PORT for jax.distributed (or env MFAX_COORDINATOR) "
            "[default: one process]"
        ),
    ] = None,
    num_processes: Annotated[
        int | None,
        typer.Option(help="multi-host: number of processes (or env MFAX_NUM_PROCESSES) [default: one process]"),
    ] = None,
    process_id: Annotated[
        int | None, typer.Option(help="multi-host: this process (or env MFAX_PROCESS_ID) [default: one process]")
    ] = None,
    x64: Annotated[bool, typer.Option("--x64", help="train in float64 [default: off, float32]")] = False,
    log_to: Annotated[
        list[str] | None,
        typer.Option(
            "--log-to",
            help="also log metrics to tensorboard (RUN/tensorboard) or wandb (repeatable; optional extras "
            "mfax[tensorboard], mfax[wandb]) [default: off]",
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(
            help="also keep the checkpoints of the N most recent evaluations in RUN/checkpoints/ (the best and "
            f"the last are always kept; `mfax eval RUN --iteration K`) [default: {_CFG.keep}]"
        ),
    ] = None,
    plots: Annotated[bool, typer.Option(help="write the plots at the end")] = True,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    check: Annotated[bool, typer.Option(help=CHECK_OPTION_HELP)] = True,
) -> None:
    """Train any solver of `mfax list` into a run directory.

    SPG, RSPG, IPPO, RIPPO, M-OMD, FP, OMD and the other exact tabular solvers; the run
    directory holds the config, metrics, checkpoints and plots, and the policy is scored
    exactly as it goes."""
    import dataclasses

    from mfax.run.config import TrainConfig, from_dict, load_file, resolve
    from mfax.run.rundir import Consent, RunDir
    from mfax.run.signals import Terminated, ctrl_c_noted
    from mfax.run.train import RESTORED_NOTE, TrainingDiverged, train
    from mfax.sharding import initialize_distributed, is_main_process

    # (an empty variable is unset, as in mfax.sharding; an empty --coordinator is refused there)
    names = ("COORDINATOR", "NUM_PROCESSES", "PROCESS_ID")
    environment = any(os.environ.get(f"MFAX_{name}", "").strip() for name in names)
    if coordinator is not None or num_processes is not None or process_id is not None or environment:
        with user_errors():
            initialize_distributed(coordinator, num_processes, process_id)
    main = is_main_process()
    target = None  # the run directory, once named (an interrupt before it is not train's)
    claimed = None  # the default run directory this command made (removed again if it writes nothing there)
    try:
        with user_errors(), checking(check), agreed_on_failure():
            if resume is not None:
                given = {
                    "--algo": algo,
                    "--paths": paths,
                    "--noise": noise,
                    "--lr": lr,
                    "--seeds": seeds,
                    "--seed": seed,
                    "--eval-every": eval_every,
                    "--eval-paths": eval_paths,
                    "--devices": devices,
                    "--set": set_ or None,
                    "--hp": hp or None,
                    "--config": config_file,
                    "--out": out,
                    "--overwrite": overwrite or None,
                    "--x64": x64 or None,
                    "--log-to": log_to or None,
                    "--keep": keep,
                }
                extra = [flag for flag, value in given.items() if value is not None]  # all of them, at once
                if extra:
                    raise GameError(
                        f"--resume continues a run as configured (its config.json; --iterations N may extend it); "
                        f"drop {' and '.join(extra) if len(extra) < 3 else ', '.join(extra[:-1]) + ' and ' + extra[-1]}"
                    )
                if not resume.strip():  # (Path("") is the current folder: "'.' is not a run directory")
                    raise GameError("--resume is empty; name the run directory to continue")
                target = RunDir(resume)
                target.settle()  # what a killed --overwrite left aside, before the config is read
                target.check_run()
                consent = Consent(game, trust_code)
                config = target.load_config(consent, continuing=True)
            else:
                if trust_code:
                    raise GameError("--trust-code applies to --resume; a new run imports the code that --game names")
                consent = Consent(trust=True)  # (the code the run names is what this command was given)
                loaded = load_file(Path(config_file)) if config_file else TrainConfig()
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
                    "keep": keep,
                }
                config = dataclasses.replace(loaded, **{k: v for k, v in flags.items() if v is not None})
                if lr is not None:
                    entries = [x.strip() for x in lr.split(",")]
                    if not all(entries):  # "" or "0.01,,0.02" fell back to the default or skipped an entry
                        raise GameError(f"--lr expects comma-separated numbers (no empty entry), got {lr!r}")
                    try:
                        config.lr = [float(x) for x in entries]
                    except ValueError:
                        raise GameError(f"--lr expects comma-separated numbers, got {lr!r}") from None
                if set_:
                    config.params = {**config.params, **parse_overrides(config.game, set_, sweep=True)}
                if hp:
                    config.hparams = {**config.hparams, **parse_hparams(config.algo, hp)}
                if x64:
                    config.x64 = True
                if log_to:
                    config.log_to = [x.strip() for item in log_to for x in item.split(",") if x.strip()]
                    if not config.log_to:  # --log-to "" or ",": it logged to nothing, silently
                        raise GameError(
                            f"--log-to names no tracker (got {', '.join(map(repr, log_to))}); "
                            "name one (tensorboard, wandb) or leave --log-to out"
                        )
                # what the file gives: a value other than the defaults (a run's own config.json
                # holds the resolved ones, lr [1e-3] and paths 128 for beach bar, whatever its
                # solver and noise)
                fallback, default = game_defaults(config.game), TrainConfig()
                lr_from_file = loaded.lr is not None and list(loaded.lr) != [fallback["lr"]]
                from_file = (
                    loaded.paths not in (default.paths, fallback["paths"]),
                    loaded.eval_paths != default.eval_paths,
                )
                lr_given = "--lr" if lr is not None else "the config file's lr" if lr_from_file else None
                if lr_given and config.algo in solver_names():
                    # before the rates' own checks: a rate given to a solver without one is the error
                    check_lr_used(config.algo, lr_given)
                config = resolve(from_dict(config.to_dict()))  # validate everything before touching the disk
                if lr_given:  # (a plug-in solver, known once resolved)
                    check_lr_used(config.algo, lr_given)
                check_paths_used(config, paths is not None, eval_paths is not None)
                if seeds is not None:
                    check_seeds_used(config)
                else:
                    check_seeds_used(config, "the config file's seeds = {}", "leave seeds out of it")
                check_paths_used(config, *from_file, ("the config file's paths", "the config file's eval_paths"))
                name = f"{short_name(config.game)}-{short_name(config.algo)}-{time.strftime('%Y%m%d-%H%M%S')}"
                refuse_empty("--out", out, "run directory", "runs/GAME-ALGO-TIME")
                if out is None and main:  # (two commands started in one second: each its own folder)
                    claimed = _claim_folder(f"runs/{name}")
                target = RunDir(claimed or out or f"runs/{name}")
                if main:
                    target.check_new(overwrite)

            def announce():  # once the solver is built: an error before it leaves no directory to name
                if main:
                    typer.echo(f"run directory: {target.root}")
                    if resume is not None:  # (an --overwrite run's old provenance is not this run's)
                        _warn_provenance(target, config.x64, config)
                else:  # (several hosts: this process computes its share and writes nothing)
                    import jax

                    typer.echo(
                        f"process {jax.process_index()} of {jax.process_count()}: computing its share; process 0 "
                        f"writes the run directory {target.root} and prints its results"
                    )

            try:
                summary = train(
                    config,
                    target.root,
                    resume=resume is not None,
                    overwrite=overwrite,
                    progress=progress,
                    extend_to=iterations if resume else None,
                    consent=consent,
                    announce=announce,
                )
            except BaseException:
                if claimed is not None:  # a default folder this command made and wrote nothing into
                    _release_folder(claimed)
                raise
    except TrainingDiverged as err:
        typer.echo(f"mfax: error: {err}{notes(err)}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt as err:
        if target is None:  # before a run directory was named: main() says "interrupted"
            raise
        said = interrupted_line(target, restored=RESTORED_NOTE in getattr(err, "__notes__", ()))
        typer.echo(("\n" if progress else "") + said, err=True)  # (a new line ends the progress bar's)
        INTERRUPTION_SAID.append(True)
        raise typer.Exit(130) from None
    except Terminated as ended:  # SIGTERM (main() raises it; held over a record step)
        if target is None:
            raise
        restored = RESTORED_NOTE in getattr(ended, "__notes__", ())
        typer.echo(("\n" if progress else "") + interrupted_line(target, "terminated (SIGTERM)", restored), err=True)
        INTERRUPTION_SAID.append(True)
        raise typer.Exit(ended.code) from None
    if not main:
        return
    if resume is not None and summary.get("session_iterations") == 0:
        typer.echo(
            f"nothing to train: the run has done its {summary['iterations']} iterations already "
            f"(`mfax train --resume {target.root} --iterations N` trains on to N)"
        )
    typer.echo(done_line(summary, _best_words(target, summary, consent)))
    if plots:  # the run is saved: figures that cannot be drawn are a warning, not the command's failure
        from mfax.run.plots import plot_run
        from mfax.run.rundir import warn

        try:
            with checking(check), ctrl_c_noted() as arrived:
                files = plot_run(target, consent=consent)
            if arrived:  # raised where it was swallowed (a callback JAX runs during garbage collection)
                raise KeyboardInterrupt
            typer.echo(f"plots: {', '.join(str(f) for f in files)}")
        except KeyboardInterrupt:
            draw = f"`mfax plot {target.root}` draws them"
            typer.echo(f"mfax: interrupted while drawing the plots; the run is saved and {draw}", err=True)
            INTERRUPTION_SAID.append(True)
            raise typer.Exit(130) from None
        except (MfaxError, OSError) as err:
            why = str(err) if isinstance(err, MfaxError) else f"{err.strerror or err}: {err.filename}"
            warn(f"the run is saved; its plots were not drawn ({why}); `mfax plot {target.root}` draws them")
    if as_json:
        emit_json({"run": str(target.root), **summary})


def _claim_folder(base: str) -> Path:
    """Make the default run directory ``base``, or ``base-2``, ``base-3``, ... where it
    exists: two trainings started in the same second took one name, and the second was
    refused as "in use by process N" (a review: a sweep started in parallel)."""
    for k in range(1, 10_000):
        path = Path(base if k == 1 else f"{base}-{k}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise GameError(f"cannot create run directory {str(path)!r}: {err.strerror or err}") from None
        return path
    raise GameError(f"cannot create a run directory named {base!r}: 10,000 exist; give --out")


def _release_folder(path: Path) -> None:
    """Remove the default run directory :func:`_claim_folder` made, where the command
    wrote nothing there but its lock file (it failed before its run started)."""
    from mfax.run.rundir import LOCK

    try:
        if path.is_dir() and all(p.name == LOCK and p.is_file() for p in path.iterdir()):
            (path / LOCK).unlink(missing_ok=True)
            path.rmdir()
    except OSError:
        pass  # (left as it is: empty)


def interrupted_line(run, what: str = "interrupted", restored: bool = False) -> str:
    """What ``mfax train`` says when Ctrl-C (or a SIGTERM) ends it: the checkpoint kept, or
    that there is none yet; ``restored``: stopped before the first checkpoint of a run
    replacing another (``--overwrite``), which is back."""
    what = f"mfax: {what}"
    if restored:
        return f"{what} before the new run's first checkpoint; the run it was replacing is back in {run.root} as it was"
    resume = f"`mfax train --resume {run.root}`"
    if run.has_checkpoint():
        held = run.held_iteration(run.checkpoint_path)
        at = "" if held is None else f" (iteration {held})"
        return f"{what}; the last checkpoint{at} is kept: continue with {resume}"
    if run.is_run():
        return f"{what}; no checkpoint yet: {resume} starts the run again from iteration 0"
    return f"{what}; no checkpoint yet: nothing was trained"


def _change(
    start: float | None, end: float | None, scale: float | None = None, float64: bool = False, error: str = ""
) -> str:
    """``444.7 -> 135.3``, with a warning when it rose, and what a value below zero is
    (:func:`~mfax.evaluation.exploitability.negative_words`; ``scale`` the policy's return;
    ``error``: the end's standard error in words, told right after it)."""
    from mfax.evaluation.exploitability import negative_words

    if end is None:
        return "n/a"
    below = negative_words(end, scale, float64)
    if start is None:
        return f"{end:.6g}{error}{below}"
    text = f"{start:.6g} -> {end:.6g}{error}{below}"
    # a rise within rounding (0 -> 2.4e-07 in float32) is not news
    return text + " (ROSE: worse than at the start)" if end - start > 1e-6 * max(1.0, abs(start)) else text


def _run_error(summary: dict, r: int) -> float | None:
    """Run ``r``'s final standard error in ``summary`` (``None``: exact, or not recorded)."""
    errors = summary.get("final_exploitability_se_per_run") or []
    return errors[r] if r < len(errors) and isinstance(errors[r], int | float) else None


def _error_words(summary: dict) -> str:
    """`` (± 3.1, one standard error)``: the final figure's standard error, where a run
    alone was estimated on drawn noise paths; else nothing (the mean of several runs on
    the same paths has none of its own: summary.json gives each run's)."""
    error = _run_error(summary, 0)
    if summary.get("runs", 1) != 1 or error is None or summary.get("final_exploitability") is None:
        return ""
    return f" (± {two_digits(error)}, one standard error)"


def _best_words(run, summary: dict, consent=None) -> str | None:
    """``run 1 (seed 0, lr 0.03) of 2``: the run of several seeds or learning rates with
    the lowest final exploitability (``None`` for one run, and for a sweep of game
    parameters, whose runs play different games). ``consent``: the code outside mfax
    the run's config may import, as the command that trained it was given."""
    from mfax.run.plots import run_words
    from mfax.run.rundir import NO_CODE

    best = summary.get("best_run")
    if summary.get("runs", 1) < 2 or summary.get("swept") or not isinstance(best, int):
        return None
    try:
        return run_words(run.load_config(consent or NO_CODE), best, None)
    except GameError:  # (the line is told without it)
        return None


def done_line(summary: dict, best: str | None = None) -> str:
    """The ``done:`` line of ``mfax train``: exploitability at the start and the end
    (lower is better; says so when it rose), the lowest run's (``best``: which run it
    is, of several seeds or learning rates) and the seconds per iteration, with and
    without evaluation."""
    runs, swept = summary.get("runs", 1), summary.get("swept") or []
    scale, float64 = summary.get("final_policy_return"), summary.get("dtype") == "float64"
    mean = f", mean of {runs} runs" if runs > 1 else ""
    if swept:  # the runs play different games: their mean is no game's figure
        mean += f" of different games ({', '.join(swept)} swept; each run's in summary.json)"
    drawn = ", estimated on drawn noise paths" if summary.get("noise") == "sample" else ""
    parts = [
        f"done: {summary['iterations']} iterations",
        f"exploitability (per path{drawn}, lower is better{mean}) "
        + _change(
            summary.get("initial_exploitability"),
            summary.get("final_exploitability"),
            scale,
            float64,
            _error_words(summary),
        ),
    ]
    if summary.get("final_exploitability_info") is not None:
        from mfax.evaluation.exploitability import above_words

        info, per_path = summary["final_exploitability_info"], summary.get("final_exploitability")
        parts.append(
            "information-consistent "
            + _change(summary.get("initial_exploitability_info"), info, scale, float64)
            + above_words(info, per_path, scale, float64)
        )
    finals = summary.get("final_exploitability_per_run") or []
    r = summary.get("best_run")
    if best is not None and isinstance(r, int) and 0 <= r < len(finals) and finals[r] is not None:
        error = _run_error(summary, r)
        parts.append(
            f"the lowest, {best}: {finals[r]:.6g} per path" + ("" if error is None else f" ± {two_digits(error)}")
        )
    rate = summary.get("seconds_per_iteration")
    if rate is not None:
        parts.append(f"{rate:.3g} s/iteration training alone")
    overall = summary.get("session_seconds_per_iteration")
    if overall is not None:
        parts.append(f"{overall:.3g} s/iteration with evaluation, checkpoints and compilation (as the progress bar)")
    return "; ".join(parts)


@app.command("plot")
def plot_command(
    run_dir: Annotated[str, typer.Argument(metavar="RUN", callback=home, help="a run directory from `mfax train`")],
    game: Annotated[
        str | None,
        typer.Option(
            help="RUN's game named again (a reference; a copy of its file may be elsewhere): allows importing its "
            "code [default: only a built-in or plug-in game]"
        ),
    ] = None,
    trust_code: Annotated[
        bool,
        typer.Option("--trust-code", help="import (run) the game or solver code RUN's config names [default: off]"),
    ] = False,
    curves_at: Annotated[
        str | None,
        typer.Option(
            help="times t of moment_curves.png (the Lorenz curve and other curve-valued moments), comma-separated, "
            "in 0..T [default: 0, T/4, T/2, T; a moment of the decisions 0, T/4, T/2, 3T/4]"
        ),
    ] = None,
    run_index: Annotated[
        int | None,
        typer.Option(
            help="draw this run of a multi-seed/multi-lr/sweep RUN (the exploitability plot shows every run) "
            "[default: the best at the last checkpoint]"
        ),
    ] = None,
    check: Annotated[bool, typer.Option(help=CHECK_OPTION_HELP)] = True,
) -> None:
    """(Re)draw the plots of a run directory into RUN/plots/."""
    from mfax.run.plots import plot_run
    from mfax.run.rundir import Consent, RunDir

    with user_errors(), checking(check):
        times = None if curves_at is None else parse_times(curves_at, "--curves-at")
        consent = Consent(game, trust_code)
        files = plot_run(RunDir(run_dir), consent=consent, curve_times=times, run_index=run_index)
    for f in files:
        typer.echo(str(f))


register_macro(app)
register_outputs(app)
register_check(app)
register_tune(app)


def _terminated(signum, frame) -> None:
    """SIGTERM (a plain ``kill``) as :class:`~mfax.run.train.Terminated`, raised where the
    command is, as Ctrl-C raises KeyboardInterrupt: the command says what it leaves
    (``mfax train``: the checkpoint kept; ``mfax tune``: the trials kept) and ends with
    status 143, instead of vanishing without a word. A record step still ends whole first
    (:func:`~mfax.run.train.deferred_signals` holds the signal over it)."""
    from mfax.run.signals import Terminated

    raise Terminated(128 + signum)


STOPPED = {130: "mfax: interrupted", 143: "mfax: terminated (SIGTERM)"}


def _closed_by_click() -> bool:
    """Whether Click ended the command on a closed output: it wraps both streams in its
    ``PacifyFlushWrapper`` so that their flush at exit stays quiet, then exits with
    status 1 (known by the class's name: Typer may bring its own copy of Click, and
    Click itself names it ``_PacifyFlushWrapper``)."""
    return any(type(stream).__name__.lstrip("_") == "PacifyFlushWrapper" for stream in (sys.stdout, sys.stderr))


def main() -> None:
    from mfax.run.cache import enable_compilation_cache

    with command_line_words():  # (a warning about it is the command's line)
        enable_compilation_cache()  # on by default; MFAX_COMPILATION_CACHE=0 turns it off
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # (an ignored SIGTERM stays ignored)
        signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except SystemExit as done:
        if done.code == 1 and _closed_by_click():  # (Click's own ending of a closed output: status 1, silent)
            raise SystemExit(output_closed()) from None
        if done.code in STOPPED:  # Ctrl-C or SIGTERM: XLA may still be running the dispatched
            # chunk, and the interpreter's teardown under it crashed (SIGSEGV after the
            # message, 1 exit in 8)
            if not INTERRUPTION_SAID:  # (Typer ends any other command silently)
                typer.echo(STOPPED[done.code], err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code)
        raise


if __name__ == "__main__":
    main()
