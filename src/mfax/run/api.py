"""Solving from Python: ``mfax.solve(game, algo, ...) -> Result``, ``mfax.load(dir)`` and
``mfax.resume(dir)``.

``solve`` builds a training config (:class:`~mfax.run.config.TrainConfig`) and runs the
one training driver the command line runs (:func:`~mfax.run.train.train_session`): the
same compiled chunks, evaluations, checkpoints and files. With ``out`` the run directory
is exactly what ``mfax train --out`` writes (``mfax eval``, ``mfax plot`` and
``mfax train --resume`` or :func:`resume` read it); without it the run is written to a temporary
directory, read back into the :class:`Result` and removed, so nothing is left on disk.

Stopping. A run does ``iterations`` iterations (default: ``TrainConfig``'s) unless a
stop condition holds first; every condition is checked at each evaluation, i.e. every
``eval_every`` iterations and once before training (iteration 0):

* ``target_exploitability``: the exploitability (per path, the mean over the runs)
  is at or below the target. A float is absolute; :class:`Relative` (or a string such
  as ``"10%"``) is a fraction of the exploitability at iteration 0;
* ``time_budget``: the seconds since ``solve`` was called (building, compilation and
  evaluation included) have reached the budget;
* ``callback(record)``: returns ``True`` (``False`` or ``None``: go on; any other
  answer is refused, ``"no"`` being true in Python). ``record`` is a dict: ``iteration``,
  ``exploitability``, ``exploitability_info`` and ``policy_return`` (means over the
  runs), ``seconds`` (since ``solve`` was called), ``compile_seconds`` (of those, the
  time spent waiting for the training chunks' compilation) and ``rows`` (the metric
  rows of every run).

``Result.stop_reason`` says which ended the run: ``"iterations"``, ``"target"``,
``"time_budget"`` or ``"callback"`` (``"best_iteration"``: a tune's best trial trained
again, stopped at its best evaluation).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from mfax import params as params_mod
from mfax.errors import ArgumentError, DefectWarning, GameError
from mfax.games import Game, game_class
from mfax.games import game_reference as registry_reference
from mfax.games.validate import rebuilt
from mfax.run import plots
from mfax.run.cache import enable_compilation_cache
from mfax.run.columns import METRIC_COLUMNS, PARAMS
from mfax.run.config import TrainConfig, check_lr_used, check_paths_used, check_seeds_used, from_dict, resolve
from mfax.run.rundir import Consent, RunDir
from mfax.run.signals import agreed_on_failure
from mfax.run.train import Session, Trainer, best_run, load_states, train_session
from mfax.sharding import is_main_process

STOP_REASONS = ("iterations", "target", "time_budget", "callback", "best_iteration")


@dataclasses.dataclass(frozen=True)
class Relative:
    """A target exploitability as a fraction of the exploitability at iteration 0:
    ``Relative(0.1)`` stops once it has fallen to a tenth."""

    fraction: float

    def __post_init__(self):
        if not (isinstance(self.fraction, int | float) and 0 < self.fraction < 1):
            raise GameError(f"a relative target must be a fraction in (0, 1), got {self.fraction!r}")


def _target(value: float | str | Relative | None) -> float | Relative | None:
    """An absolute target (a finite float), or :class:`Relative` from ``"10%"``."""
    if value is None or isinstance(value, Relative):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text.removesuffix("%"))
        except ValueError:
            raise GameError(
                f"target_exploitability must be a number, a percentage such as '10%' or Relative, got {value!r}"
            ) from None
        return Relative(number / 100) if text.endswith("%") else _target(number)
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
        raise GameError(f"target_exploitability must be a finite number >= 0, '10%' or Relative, got {value!r}")
    return float(value)


def _stops(answer: Any) -> bool:
    """A callback's answer: ``True`` stops the run, ``False`` or ``None`` does not (a
    NumPy or JAX boolean scalar too); anything else is refused (``"no"`` is true in
    Python, and an array's truth is ambiguous)."""
    if answer is None:
        return False
    try:
        boolean = np.dtype(getattr(answer, "dtype", object)) == np.bool_  # (a NumPy or JAX array of bools)
    except TypeError:  # (another library's dtype)
        boolean = False
    if isinstance(answer, bool | np.bool_) or (boolean and np.shape(answer) == ()):
        return bool(answer)
    raise GameError(f"callback must return True or False (stop or go on) or None, got {answer!r:.80}")


def _check_callback(callback: Any) -> None:
    """``callback`` is called with one argument, the evaluation's record: refused before
    anything is built (it failed with Python's TypeError after the first evaluation)."""
    if callback is None:
        return
    if not callable(callback):
        raise GameError(f"callback must be callable, got {callback!r}")
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # a builtin without a signature: called as it is
        return
    try:
        signature.bind({})
    except TypeError as err:
        raise GameError(
            f"callback must take one argument (the evaluation's record, a dict), got {callback!r:.60} "
            f"with the signature {signature} ({err})"
        ) from None


class _Stop:
    """The stop conditions of one ``solve`` call, called with each evaluation's rows."""

    def __init__(self, target, time_budget: float | None, callback: Callable | None, started: float):
        self.target, self.time_budget, self.callback, self.started = target, time_budget, callback, started
        self.initial: float | None = None
        self.reason = "iterations"

    def __call__(self, rows: list[dict[str, Any]], compile_s: float) -> bool:
        mean = _mean([r["exploitability"] for r in rows])
        if self.initial is None:
            self.initial = mean
        record = {
            "iteration": rows[0]["iteration"],
            "exploitability": mean,
            "exploitability_info": _mean([r["exploitability_info"] for r in rows]),
            "policy_return": _mean([r["policy_return"] for r in rows]),
            "seconds": time.perf_counter() - self.started,
            "compile_seconds": compile_s,
            "rows": rows,
        }
        target = self.target
        if isinstance(target, Relative):
            target = target.fraction * self.initial if self.initial is not None else None
        if target is not None and mean is not None and mean <= target:
            self.reason = "target"
        elif self.time_budget is not None and record["seconds"] >= self.time_budget:
            self.reason = "time_budget"
        elif self.callback is not None and _stops(self.callback(record)):
            # (mfax's own stop tests name themselves: a tune's rerun of its best trial)
            self.reason = getattr(self.callback, "stop_reason", "callback")
        else:
            return False
        return True


def _mean(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def _flag(name: str, value: Any) -> bool:
    """A switch must be a bool: ``overwrite="no"`` is truthy (it replaced a saved run)."""
    if not isinstance(value, bool):
        raise ArgumentError(name, f"{name} must be True or False, got {value!r}")
    return value


def user_path(name: str, value: Any) -> Path:
    """A path the user gave: a str or an ``os.PathLike`` (pathlib's TypeError otherwise);
    an empty one is refused (``Path("")`` is the current folder, which it meant silently);
    a leading ``~`` is the home folder, as the shell reads it."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise ArgumentError(name, f"{name} must be a path (a str or a pathlib.Path), got {value!r}")
    if not os.fspath(value).strip():
        raise ArgumentError(name, f"{name} is empty; name a path (the current folder is '.')")
    return Path(value).expanduser()


def check_game_argument(game: Any) -> None:
    """Refuse in one line a ``game`` argument that is neither a reference string nor a
    :class:`~mfax.games.Game` instance (a class, ``None``, a number)."""
    if isinstance(game, str | Game):
        return
    got = type(game).__name__
    if isinstance(game, type):  # (its metaclass's name said nothing)
        got = f"the class {game.__name__} (give an instance: {game.__name__}(...))"
    raise GameError(f"game must be a Game instance or a game reference string, got {got}")


def check_algo_argument(algo: Any) -> None:
    """Refuse in one line an ``algo`` that is not a solver's name (``None`` would leave
    the default solver, silently)."""
    if not isinstance(algo, str):
        from mfax.solvers import solver_names

        raise GameError(f"algo must be a solver's name, got {algo!r}; allowed: {', '.join(solver_names())}")


def _recorded_game(
    game: Game | str, values: dict[str, Any], caller: Callable | None = None
) -> tuple[str, dict[str, Any]]:
    """The game reference and parameters a config records for ``game``: a reference
    string with ``values``, or a game instance (then without ``values``) by its class's
    registered name and the parameters that differ from the defaults. An instance that
    its class and declared parameters do not build again (a field not declared with
    ``param``, an array where one value goes) is refused: the run would be another game."""
    if isinstance(game, str):
        return game, values
    check_game_argument(game)
    cls = type(game)
    declared = params_mod.fields_of(cls)
    if values:
        _refuse_keywords(cls, declared, values, instance=True, caller=caller)
    reference = registry_reference(cls, main=True)  # a notebook's class: __main__:Class, in this process
    chosen = {}
    for name, field in declared.items():
        value = getattr(game, name)
        if np.ndim(value) != 0 and not isinstance(value, tuple):
            raise GameError(
                f"parameter {name!r} of game {game.name!r} holds an array of shape {np.shape(value)}, not one value; "
                f"give a number (several values side by side: a list with the game's reference, {name}=[...])"
            )
        value = list(value) if isinstance(value, tuple) else np.asarray(value).item() if np.ndim(value) == 0 else value
        if value != (list(field.default) if isinstance(field.default, tuple) else field.default):
            chosen[name] = value
    _refuse_undeclared(game, declared)
    return reference, chosen


def _refuse_undeclared(game: Game, declared: dict[str, dataclasses.Field]) -> None:
    """Refuse ``game`` when a field that is not a declared parameter differs from the game
    its class builds from the declared parameters alone (what a run records and trains)."""
    plain = [f.name for f in dataclasses.fields(game) if f.init and f.name not in declared]
    if not plain:
        return
    again = rebuilt(game)
    differ = [name for name in plain if not bool(eqx.tree_equal(getattr(game, name), getattr(again, name)))]
    if differ:
        shown = ", ".join(f"{name}={getattr(game, name)!r}" for name in differ)
        raise GameError(
            f"game {game.name!r}: field {shown} is not declared with param(), so a run would record and train "
            f'the default instead; declare it: {differ[0]}: type = param(default, "help")'
        )


def game_values(
    game: Game | str, params: Mapping[str, Any] | None, overrides: dict[str, Any], caller: Callable | None = None
) -> dict[str, Any]:
    """The game parameters a call (``caller``, default :func:`solve`) gives: ``params``
    and the keyword arguments, each parameter once (which one won was silent)."""
    if params is not None and not isinstance(params, Mapping):
        raise GameError(f"params must be a dict of game parameters (name: value), got {type(params).__name__}")
    if isinstance(game, str) and overrides:
        cls = game_class(game)
        _refuse_keywords(cls, params_mod.fields_of(cls), overrides, instance=False, caller=caller)
    twice = sorted(set(params or {}) & set(overrides))
    if twice:
        raise GameError(f"game parameter {', '.join(twice)} given both in params and as a keyword; give it once")
    return {**(params or {}), **overrides}


def _keywords(caller: Callable) -> list[str]:
    """The keyword arguments of ``caller`` (:func:`solve`, ``mfax.tune``) itself: what is
    not a game parameter."""
    skip = ("game", "algo", "overrides")
    return [name for name in inspect.signature(caller).parameters if name not in skip]


def _refuse_keywords(
    cls: type[Game], declared: dict, values: dict[str, Any], instance: bool, caller: Callable | None = None
) -> None:
    """One line for keywords given to ``caller`` (default :func:`solve`) that are neither
    its own arguments nor (with a reference string) parameters of the game."""
    caller = caller or solve
    unknown = [name for name in values if name not in declared]
    where = f"game {cls.name!r}"
    if unknown:
        allowed = ", ".join(declared) or "none"
        how = " (given with a game reference string, not a Game instance)" if instance else ""
        raise GameError(
            f"{unknown[0]!r} is neither an argument of {caller.__name__} nor a parameter of {where}; "
            f"{caller.__name__}'s arguments: {', '.join(_keywords(caller))}; the game's parameters{how}: {allowed}"
        )
    if instance:
        raise GameError(
            f"parameters ({', '.join(values)}) go with a game reference string, not a Game instance; "
            f"build the instance with them: {cls.__name__}({', '.join(f'{k}=...' for k in values)})"
        )


def check_time_budget(time_budget: Any) -> None:
    """A time budget is ``None`` or a number of seconds > 0 (one-line error otherwise)."""
    if time_budget is not None and (
        isinstance(time_budget, bool) or not isinstance(time_budget, int | float) or not time_budget > 0
    ):
        raise ArgumentError("time_budget", f"time_budget must be a number of seconds > 0, got {time_budget!r}")


def _plain(value: Any) -> Any:
    """Numpy scalars (``np.int64(5)`` from ``np.arange``) as the Python numbers they hold,
    inside lists and dicts too: counts and settings are checked as Python types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_of(game: Game | str, values: dict[str, Any], caller: Callable | None = None, **given: Any) -> TrainConfig:
    """The resolved training config :func:`solve` runs for ``game`` (a reference with
    its parameter ``values``, or an instance) and the other :class:`TrainConfig` fields
    in ``given`` (``None``: the default); one-line errors for anything wrong, naming
    ``caller``'s arguments (default :func:`solve`)."""
    reference, values = _recorded_game(game, _plain(values), caller)
    for name in ("seed", "seeds"):  # (None is another argument's default, never these: seed=None trained seed 0)
        if name in given and given[name] is None:
            raise ArgumentError(name, f"{name} must be an integer, got None")
    given = {"game": reference, "params": values, **_plain(given)}
    config = resolve(from_dict({k: v for k, v in given.items() if v is not None}, python=True))
    if given.get("lr") is not None:
        check_lr_used(config.algo)
    check_seeds_used(config)
    return config


def _agreeing(fn):
    """Several hosts: :func:`solve` stopped before training on one process tells the others
    why (:func:`mfax.run.signals.agreed_on_failure`)."""

    @functools.wraps(fn)
    def agreeing(*args, **kwargs):
        with agreed_on_failure():
            return fn(*args, **kwargs)

    return agreeing


@_agreeing
def solve(
    game: Game | str,
    algo: str,
    *,
    iterations: int | None = None,
    target_exploitability: float | str | Relative | None = None,
    time_budget: float | None = None,
    seeds: int = 1,
    seed: int = 0,
    hp: dict[str, Any] | None = None,
    lr: float | list[float] | None = None,
    noise: str | None = None,
    paths: int | None = None,
    eval_every: int | None = None,
    eval_paths: int | None = None,
    callback: Callable[[dict[str, Any]], bool | None] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    x64: bool = False,
    params: dict[str, Any] | None = None,
    **overrides: Any,
) -> Result:
    """Train solver ``algo`` on ``game`` and return the :class:`Result`.

    ``game`` is a :class:`~mfax.games.Game` or a game reference (``"beach_bar"``, see
    ``mfax list``) with its parameters in ``params`` or as keyword arguments
    (``solve("beach_bar", "fp", num_states=10)``). ``seeds`` runs (seeds ``seed``,
    ``seed + 1``, ...; times the learning rates in ``lr``) train side by side. ``hp``
    sets the solver's hyper-parameters, ``noise``, ``paths``, ``eval_every`` and
    ``eval_paths`` are ``mfax train``'s options of those names (defaults: the same).
    The stop conditions (``iterations``, ``target_exploitability``, ``time_budget``,
    ``callback``) are described in :mod:`mfax.run.api`. ``out``: also keep the run
    directory there (``overwrite``: replace an mfax run there). ``progress``: show a
    progress bar. ``x64``: train and evaluate in float64 (``mfax train --x64``), for this
    call only (the process's ``jax_enable_x64`` is left as it was; a process already in
    float64 trains in float64 either way). Bad arguments raise :class:`~mfax.errors.GameError` with one line
    saying what is allowed; before anything is trained. A training that produces a NaN
    or inf raises :class:`~mfax.run.train.TrainingDiverged` (a ``RuntimeError``, not a
    refusal of the input: it names the iteration and the quantity; with ``out`` the last
    good checkpoint stays). In a multi-host run (``jax.distributed``) every process calls
    it alike; process 0 writes the run and returns the :class:`Result`, the others
    return ``None``.
    """
    started = time.perf_counter()
    enable_compilation_cache()
    stop = _stop_of("solve", target_exploitability, time_budget, callback, started)
    check_algo_argument(algo)
    _flag("overwrite", overwrite)
    _flag("progress", progress)
    _flag("x64", x64)
    out = None if out is None else user_path("out", out)
    config = config_of(
        game,
        game_values(game, params, overrides),
        algo=algo,
        iterations=iterations,
        seeds=seeds,
        seed=seed,
        hparams=hp,
        lr=lr,
        noise=noise,
        paths=paths,
        eval_every=eval_every,
        eval_paths=eval_paths,
        x64=x64 or None,
    )
    check_paths_used(config, paths is not None, eval_paths is not None)
    with _precision(config.x64):
        return _solved(config, out, overwrite, progress, stop)


def _stop_of(what: str, target_exploitability, time_budget: float | None, callback, started: float) -> _Stop:
    """The stop conditions of a ``solve`` or ``resume`` call, checked. Several hosts stop
    together: each process's own clock and callback would stop one while the others
    train on."""
    check_time_budget(time_budget)
    _check_callback(callback)
    if jax.process_count() > 1 and (time_budget is not None or callback is not None):
        raise GameError(
            f"a multi-host {what} stops on what every process decides alike: iterations or target_exploitability "
            "(time_budget and callback are decided by each process alone); leave them out"
        )
    return _Stop(_target(target_exploitability), time_budget, callback, started)


def _game_reference(game: str | type[Game] | None) -> str | None:
    """``game=`` of :func:`load` and :func:`resume`: a reference, or the class itself."""
    if isinstance(game, type) and issubclass(game, Game):
        return registry_reference(game, main=True)
    if game is not None and not isinstance(game, str):
        raise GameError(f"game must be a game reference (a str) or a Game subclass, got {game!r}")
    return game


@_agreeing
def resume(
    path: str | Path,
    *,
    iterations: int | None = None,
    target_exploitability: float | str | Relative | None = None,
    time_budget: float | None = None,
    callback: Callable[[dict[str, Any]], bool | None] | None = None,
    progress: bool = False,
    game: str | type[Game] | None = None,
    trust_code: bool = False,
) -> Result:
    """Continue the run directory ``path`` (from ``mfax train`` or ``solve(out=...)``)
    from its last checkpoint, as ``mfax train --resume`` does: bit for bit what the run
    would have done without stopping. ``iterations``: a new total, beyond the planned one
    (the learning-rate schedule is planned over it, and provenance.json records it);
    default the run's own. The stop conditions are :func:`solve`'s, counted from this
    call; ``game`` and ``trust_code`` allow the run's code outside mfax, as in
    :func:`load`. The run trains in its own precision."""
    started = time.perf_counter()
    enable_compilation_cache()
    stop = _stop_of("resume", target_exploitability, time_budget, callback, started)
    _flag("progress", progress)
    _flag("trust_code", trust_code)
    if iterations is not None and not params_mod.is_integer_from(iterations, 1):
        raise ArgumentError("iterations", f"iterations must be a whole number >= 1, got {iterations!r}")
    path = user_path("path", path)
    game = _game_reference(game)
    run = RunDir(path)
    run.settle()  # what a killed --overwrite left, before the folder is judged
    run.check_run()
    with _precision(run.trained_in_float64()):
        consent = Consent(game, trust_code)
        extend_to = None if iterations is None else int(iterations)
        config = run.load_config(consent, continuing=True)
        session = train_session(
            config, run.root, resume=True, extend_to=extend_to, consent=consent, progress=progress, stop=stop
        )
        return _finish(run, session, stop.reason)


def _solved(config: TrainConfig, out: Path | None, overwrite: bool, progress: bool, stop: _Stop) -> Result:
    """:func:`solve`'s training, into ``out`` or a temporary folder."""
    if out is not None:
        run = RunDir(out)
        session = train_session(config, run.root, overwrite=overwrite, progress=progress, stop=stop)
        return _finish(run, session, stop.reason)
    with tempfile.TemporaryDirectory(prefix="mfax-solve-") as tmp:
        run = RunDir(Path(tmp) / "run")
        session = train_session(config, run.root, progress=progress, stop=stop, temporary=True)
        return _finish(run, session, stop.reason)


def _precision(x64: bool):
    """Float64 for a run trained in float64 (``--x64``), for this call only: the process's
    setting stays as it was, for the float32 runs it trains or reads next (it was switched
    on for good, and a float32 run trained after then ran in float64, labelled float32,
    and could not be read back). A float32 run computes in the process's setting."""
    import jax

    return jax.enable_x64(True) if x64 else contextlib.nullcontext()


def _in_its_precision(method: Callable) -> Callable:
    """A :class:`Result` method, computed in its run's precision (:func:`_precision`)."""

    @functools.wraps(method)
    def computed(self, *args, **kwargs):
        with _precision(self.config.x64):
            return method(self, *args, **kwargs)

    return computed


def _first_paths(batch, num_paths: int | None):
    """The first ``num_paths`` paths of a noise batch, weights renormalised (all: as is)."""
    import jax

    from mfax.dynamics.noise import NoiseBatch

    if num_paths is None:
        return batch
    if not (params_mod.is_integer_from(num_paths, 1) and num_paths <= batch.num_paths):
        allowed = f"1..{batch.num_paths} (the evaluation paths)"
        raise GameError(f"num_paths must be an integer in {allowed}, got {num_paths!r}")
    if num_paths == batch.num_paths:
        return batch
    weight = batch.weight[:num_paths]
    return NoiseBatch(jax.tree.map(lambda x: x[:num_paths], batch.noise), weight / weight.sum(), exact=False)


def _finish(run: RunDir, session: Session, reason: str) -> Result | None:
    if not is_main_process():  # several hosts: process 0 alone writes and reads the run
        return None
    summary = {**session.summary, "stop_reason": reason}
    run.write_summary(summary)
    result = Result._of(run, session.trainer, session.states)
    if result.defects:  # figures no correct game gives: said, as mfax train and eval say them
        warnings.warn("; ".join(result.defects), DefectWarning, stacklevel=3)
    return result


def load(
    path: str | Path, which: str = "last", *, game: str | type[Game] | None = None, trust_code: bool = False
) -> Result:
    """The :class:`Result` of a run directory written by ``mfax train`` or
    :meth:`Result.save`, at checkpoint ``which`` (``"last"``, ``"best"`` or a kept
    iteration, as ``mfax eval --iteration``). A run whose game (or solver) is code outside
    mfax and its installed plug-ins is imported only when ``game`` names that game again
    (a reference, or the game class itself) or ``trust_code`` is true, as
    ``mfax eval RUN --game/--trust-code``. A run of a game class defined in a script or
    notebook is read back by passing that class (or a reference to a file defining it)."""
    path = user_path("path", path)
    _flag("trust_code", trust_code)  # trust_code="no" imported the run's code
    game = _game_reference(game)
    if params_mod.is_integer_from(which, 0):  # a kept iteration as a number (numpy's too)
        which = str(int(which))
    if not isinstance(which, str):
        raise GameError(f"which must be 'last', 'best' or a kept iteration, got {which!r}")
    run = RunDir(path)
    run.settle()  # what a killed --overwrite left, before the folder is judged
    run.check_run()
    with _precision(run.trained_in_float64()):
        trainer, states, _ = load_states(run, which, Consent(game, trust_code))
        return Result._of(run, trainer, states)


@dataclasses.dataclass(eq=False)
class Result:
    """A solved game: the policy, the metrics history, the final figures, the mean field.

    ``history`` maps each metric column (``iteration``, ``run``, ``seed``, ``lr``,
    ``wall_clock_s``, ``exploitability``, ``exploitability_info``, ``policy_return``,
    ``grad_norm``, ``train_exploitability``, ``train_policy_return``,
    ``exploitability_se``, ``policy_return_se``) to a numpy array, one entry per
    evaluation and run (missing values are NaN: the standard errors, for instance, where
    the figures are exact); a sweep of game parameters
    adds ``params.NAME``, each row's run's value of the swept parameter ``NAME`` (as
    metrics.csv's columns). ``summary`` is the run's
    ``summary.json``. ``run`` is the index of the best run at the held iteration (the
    lowest exploitability), whose policy :attr:`policy` is.
    """

    config: TrainConfig
    summary: dict[str, Any]
    history: dict[str, np.ndarray]
    trainer: Trainer
    states: Any
    run: int
    files: dict[str, bytes] = dataclasses.field(repr=False)

    @classmethod
    def _of(cls, run_dir: RunDir, trainer: Trainer, states: Any) -> Result:
        rows = run_dir.read_metrics()
        held = int(np.asarray(states.iteration)[0])
        history = {c: np.asarray([np.nan if r.get(c) is None else r[c] for r in rows]) for c in METRIC_COLUMNS}
        # a sweep's values by row, from the config (rows written before mfax recorded them lack them)
        history.update(
            {
                f"{PARAMS}.{name}": np.asarray([trainer.config.run_params(r["run"])[name] for r in rows])
                for name in sorted(trainer.config.swept())
            }
        )
        return cls(
            trainer.config, run_dir.read_summary(), history, trainer, states, best_run(rows, held), run_dir.read_files()
        )

    # -- the solution ----------------------------------------------------------------------
    @property
    def game(self) -> Game:
        """The game the policy was trained on (the best run's, when parameters were swept)."""
        return self.trainer.game_of(self.run)

    def precision(self):
        """A context in which the run's arrays compute in its precision: float64 for a run
        trained with ``--x64`` (whose :attr:`policy` and :attr:`eval_noise` are float64:
        outside it JAX would truncate them to float32), the process's setting otherwise.
        ``with result.precision(): evaluate(result.game, result.policy, result.eval_noise)``.
        The :class:`Result`'s own methods use it."""
        return _precision(self.config.x64)

    @functools.cached_property
    @_in_its_precision
    def policy(self):
        """The best run's policy (:class:`~mfax.policies.base.Policy`), usable with
        :func:`mfax.evaluation.exploitability.evaluate` and the rollouts (within
        :meth:`precision` for a run trained in float64)."""
        return self.policy_of(self.run)

    def _run_index(self, r: int) -> int:
        if not (params_mod.is_integer_from(r, 0) and r < self.config.num_runs):
            raise GameError(f"run index must be an integer in 0..{self.config.num_runs - 1}, got {r!r}")
        return int(r)

    def _run_or_best(self, run: int | None) -> int:
        """``run`` (checked), or the best run where it is ``None``."""
        return self.run if run is None else self._run_index(run)

    @_in_its_precision
    def policy_of(self, r: int):
        """Run ``r``'s policy; it plays :meth:`game_of` ``(r)`` (the runs of a sweep of game
        parameters play different games: ``evaluate(result.game_of(r), result.policy_of(r),
        result.eval_noise_of(r))`` gives run ``r``'s figures)."""
        return self.trainer.policy(self.states, self._run_index(r))

    def game_of(self, r: int) -> Game:
        """The game run ``r`` was trained on (with its swept parameters' values)."""
        return self.trainer.game_of(self._run_index(r))

    @_in_its_precision
    def eval_noise_of(self, r: int):
        """The evaluation noise paths run ``r``'s figures were computed on."""
        return self.trainer.eval_noise_of(self._run_index(r))

    @property
    @_in_its_precision
    def eval_noise(self):
        """The evaluation noise paths (:class:`~mfax.dynamics.noise.NoiseBatch`) the
        figures were computed on (the best run's: :meth:`eval_noise_of`)."""
        return self.trainer.eval_noise_of(self.run)

    @functools.cached_property
    @_in_its_precision
    def mean_field(self) -> np.ndarray:
        """The mean field under :attr:`policy` on every evaluation noise path: an array
        ``(paths, T + 1, states)``, ``mean_field[p, t]`` the distribution at time ``t``."""
        traj, _, _ = plots.sample_trajectories(self.game, self.policy, self.eval_noise, self.eval_noise.num_paths)
        return np.asarray(traj.mu)

    # -- economics: moments, impulse responses, export -------------------------------------
    @_in_its_precision
    def moments(self, num_paths: int | None = None, run: int | None = None):
        """The game's moments (:class:`~mfax.evaluation.moments.Moments`) at every ``t`` on
        the first ``num_paths`` evaluation noise paths (default: all), by the exact
        push-forward under :attr:`policy` (``run``: run ``run``'s policy on its own game;
        default the best run): per path, :meth:`~mfax.evaluation.moments.Moments.expected`,
        :meth:`~mfax.evaluation.moments.Moments.quantile`. A game that declares no moments
        is a :class:`~mfax.errors.GameError`."""
        from mfax.evaluation.moments import path_moments

        r = self._run_or_best(run)
        return path_moments(self.game_of(r), self.policy_of(r), _first_paths(self.eval_noise_of(r), num_paths))

    @_in_its_precision
    def impulse_response(
        self, shock: float | None = None, at: int | None = None, innovations=None, run: int | None = None
    ):
        """The response of the game's moments under :attr:`policy` (``run``: run ``run``'s
        on its own game; default the best run) to a shock of ``shock`` standard
        deviations (default -1) hitting the noise at ``t = at`` (default 1), or to the
        whole sequence of standardised ``innovations``, ``(T + 1,)`` (then without
        ``shock`` and ``at``), against the path without shocks
        (:class:`~mfax.evaluation.moments.ImpulseResponse`; its ``deviation()`` in
        percent or points)."""
        from mfax.evaluation.moments import impulse_response, shock_innovations

        r = self._run_or_best(run)
        game = self.game_of(r)
        if innovations is None:
            shock, at = -1.0 if shock is None else shock, 1 if at is None else at
            innovations = shock_innovations(game.horizon, shock, at)
        elif shock is not None or at is not None:  # (they were ignored)
            raise GameError("give innovations, or shock and at, not both")
        return impulse_response(game, self.policy_of(r), innovations)

    @_in_its_precision
    def export(
        self,
        path: str | Path,
        format: str = "npz",
        num_paths: int | None = None,
        overwrite: bool = False,
        run: int | None = None,
    ):
        """Write what ``mfax export`` writes (mean fields, policy, aggregates, moments and
        noise on the evaluation paths; ``format`` ``"npz"`` or ``"csv"``) to ``path``,
        which must not hold anything but (``overwrite``) an mfax export; returns the
        manifest. ``run``: which run (default the best, :attr:`run`)."""
        r = self._run_or_best(run)
        from mfax.run.export import export

        path = user_path("path", path)
        _flag("overwrite", overwrite)  # overwrite="no" replaced an export
        if num_paths is not None and not params_mod.is_integer_from(num_paths, 1):
            raise GameError(f"num_paths must be an integer >= 1 (evaluation paths to export), got {num_paths!r}")
        # the exported run's own game parameters (a sweep's config lists every value), as mfax export's
        source = {
            "run_index": r,
            "checkpoint_iteration": int(np.asarray(self.states.iteration)[0]),  # (the iteration of the policy held)
            "config": self.config.run_dict(r),
        }
        return export(
            self.game_of(r),
            self.policy_of(r),
            self.eval_noise_of(r),
            Path(path),
            format,
            num_paths=num_paths,
            overwrite=overwrite,
            source=source,
        )

    # -- final figures ---------------------------------------------------------------------
    @property
    def exploitability(self) -> float | None:
        """The exploitability (per path) of the policy held (the end, or the checkpoint
        :func:`load` was asked for), the mean over the runs (``None`` before a run's first
        chunk has finished, as in its summary)."""
        return self._held("exploitability")

    @property
    def exploitability_info(self) -> float | None:
        """The information-consistent exploitability of the policy held, the mean over
        the runs (``None`` when the game's noise has no finite support: its information
        sets are not enumerated)."""
        return self._held("exploitability_info")

    @property
    def policy_return(self) -> float | None:
        """The policy's expected return, of the policy held, the mean over the runs."""
        return self._held("policy_return")

    @property
    def exploitability_se(self) -> float | None:
        """The standard error of :attr:`exploitability` where it is estimated on drawn
        noise paths (``None`` where it is exact; for the mean of several runs, which share
        their paths, so that it is not told by the runs' own; and for a run recorded before
        mfax kept it)."""
        return self._at_held("exploitability_se") if self.config.num_runs == 1 else None

    @property
    def defects(self) -> list[str]:
        """What the final figures show that no correct game gives, one line each (empty
        when they are consistent): an exploitability below zero by more than rounding
        explains (a best response can copy the policy), or an information-consistent one
        above the per-path one (a deviator who knows the noise path does at least as
        well). A game whose functions are not pure (they read Python state that changes
        between traces), say. :func:`solve` warns with them (:class:`~mfax.errors.DefectWarning`)."""
        from mfax.evaluation.exploitability import figure_defects

        float64 = self.summary.get("dtype") == "float64"
        return figure_defects(self.exploitability, self.exploitability_info, self.policy_return, float64)

    def _held(self, column: str) -> float | None:
        """``column`` at the iteration of the states held: the summary's final figure, or
        (an earlier checkpoint) the mean of that evaluation's rows."""
        if int(np.asarray(self.states.iteration)[0]) == self.summary.get("iterations"):
            return self.summary.get(f"final_{column}")
        return self._at_held(column)

    def _at_held(self, column: str) -> float | None:
        """The mean of ``column`` over the rows of the held iteration (``None`` when one
        is missing or NaN)."""
        values = self.history[column][self.history["iteration"] == int(np.asarray(self.states.iteration)[0])]
        return None if values.size == 0 or np.isnan(values).any() else float(np.mean(values))

    @property
    def iterations(self) -> int:
        """The iterations the run has done (all of them: :attr:`iteration` is that of the
        checkpoint held)."""
        return int(self.summary.get("iterations", np.max(self.history["iteration"], initial=0)))

    @property
    def iteration(self) -> int:
        """The iteration of the checkpoint held, whose policy and figures these are: the
        last, or the one :func:`load` was asked for (``mfax.load(dir, "best")``, a kept
        one), as ``mfax eval --json``'s ``checkpoint_iteration``."""
        return int(np.asarray(self.states.iteration)[0])

    @property
    def seconds(self) -> float:
        """Training wall-clock seconds of the whole run (compilation and evaluation
        excluded), as :attr:`iterations`."""
        return float(self.summary.get("wall_clock_s", 0.0))

    @property
    def stop_reason(self) -> str:
        """Why the run ended: ``"iterations"``, ``"target"``, ``"time_budget"``,
        ``"callback"`` or ``"best_iteration"`` (a tune's best trial); a run directory from
        ``mfax train`` that stopped before its planned iterations, killed or with
        ``stop_after``: ``"interrupted"``."""
        if "stop_reason" in self.summary:
            return self.summary["stop_reason"]
        return "iterations" if self.iterations >= self.config.iterations else "interrupted"

    def to_pandas(self):
        """The history as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise GameError("Result.to_pandas needs pandas; install it (pip install pandas)") from None
        return pd.DataFrame(self.history)

    dataframe = property(to_pandas)

    def __repr__(self) -> str:
        held = int(np.asarray(self.states.iteration)[0])
        # (an earlier checkpoint, "best" or a kept one: its figures are of that iteration, not the last)
        at = "" if held == self.iterations else f", checkpoint_iteration={held}"
        return (
            f"Result(game={self.config.game!r}, algo={self.config.algo!r}, iterations={self.iterations}{at}, "
            f"exploitability={self.exploitability}, stop_reason={self.stop_reason!r})"
        )

    # -- plots (matplotlib Figures) --------------------------------------------------------
    def plot_exploitability(self):
        """Exploitability vs training wall-clock and vs iteration, every run."""
        rows = [dict(zip(self.history, values, strict=True)) for values in zip(*self.history.values(), strict=True)]
        rows = [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()} for row in rows]
        from mfax.evaluation.exploitability import exact_figures

        return plots.exploitability_figure(rows, self.config, not exact_figures(self.game, self.eval_noise))

    def _paths(self, num_paths: int | None, most: int | None = None, each: str = "one heat map each", run=None):
        """Run ``run``'s (default the best) trajectories on the first ``num_paths``
        evaluation paths (``None``: 3, or all when there are fewer); more than there are
        (or than ``most``, one heat-map panel each) is refused (it drew them all, silently)."""
        r = self._run_or_best(run)
        noise = self.eval_noise_of(r)
        available = noise.num_paths
        top = available if most is None else min(most, available)
        if num_paths is None:
            num_paths = min(3, available)
        if not (params_mod.is_integer_from(num_paths, 1) and num_paths <= top):
            what = "the evaluation paths" if top == available else f"{each}, at most {most}"
            raise GameError(f"num_paths must be an integer in 1..{top} ({what}, to plot), got {num_paths!r}")
        return plots.sample_trajectories(self.game_of(r), self.policy_of(r), noise, num_paths)

    def _which(self, fig, run=None):
        """``fig`` with the run it shows named, in a directory of several (as ``mfax plot``):
        ``run`` as asked, or the best (and how it was picked)."""
        if fig is not None and self.config.num_runs > 1:
            chosen = None if run is not None else f"at iteration {self.iteration}"
            plots.retitle(fig, plots.run_words(self.config, self._run_or_best(run), chosen))
        return fig

    @_in_its_precision
    def plot_mean_field(self, num_paths: int | None = None, run: int | None = None):
        """The mean field over time on ``num_paths`` evaluation noise paths (default 3, or
        all when there are fewer; at most :data:`~mfax.run.plots.HEATMAP_PANELS`); ``run``:
        that run's (default the best, :attr:`run`), as for every ``plot_`` method below."""
        traj, _, titles = self._paths(num_paths, plots.HEATMAP_PANELS, run=run)
        return self._which(plots.mean_field_figure(self.game_of(self._run_or_best(run)), traj, titles), run)

    @_in_its_precision
    def plot_mean_field_grid(self, num_paths: int | None = None, times: list[int] | None = None, run=None):
        """The mean field on the game's state grid (:attr:`~mfax.games.base.Game.state_grid`)
        at ``times`` (default ``0, T/4, T/2, T``) on ``num_paths`` paths (default 3, at most
        :data:`~mfax.run.plots.GRID_PATHS`; a three-axis grid, floors of maps: the first of
        them); ``None`` when the states are not a grid's cells."""
        game = self.game_of(self._run_or_best(run))
        plots.check_curve_times(times, game.horizon, "the times of the maps")
        traj, _, titles = self._paths(num_paths, plots.GRID_PATHS, "a row of maps each", run)
        return self._which(plots.grid_figure(game, traj, titles, times), run)

    @_in_its_precision
    def plot_policy(self, num_paths: int | None = None, run: int | None = None):
        """The policy per state over time on ``num_paths`` paths (its mean action value, or
        its most likely action where the actions are categories)."""
        traj, _, titles = self._paths(num_paths, plots.HEATMAP_PANELS, run=run)
        return self._which(plots.policy_figure(self.game_of(self._run_or_best(run)), traj, titles), run)

    @_in_its_precision
    def plot_aggregates(self, num_paths: int | None = None, run: int | None = None):
        """The game's aggregates over time (``None`` when the game declares none)."""
        traj, noise, titles = self._paths(num_paths, run=run)
        return self._which(plots.aggregates_figure(self.game_of(self._run_or_best(run)), traj, noise, titles), run)

    @_in_its_precision
    def plot_profiles(self, num_paths: int | None = None, run: int | None = None):
        """The game's cross-sections on the first path (``None`` when it declares none)."""
        traj, noise, titles = self._paths(num_paths, run=run)
        return self._which(plots.profiles_figure(self.game_of(self._run_or_best(run)), traj, noise, titles), run)

    @_in_its_precision
    def plot_moments(self, run: int | None = None):
        """The game's scalar moments over time on every evaluation path: expectation and
        percentile bands (``None`` when the game declares no moments)."""
        game = self.game_of(self._run_or_best(run))
        if not game.moment_specs():
            return None
        return self._which(plots.moments_figure(game, self.moments(run=run)), run)

    @_in_its_precision
    def plot_moment_curves(self, times: list[int] | None = None, run: int | None = None):
        """The game's curve-valued moments (the Lorenz curve) in expectation at ``times``
        (default ``0, T/4, T/2, T``, a moment of the decisions ``0, T/4, T/2, 3T/4``;
        ``None`` when the game declares none)."""
        game = self.game_of(self._run_or_best(run))
        if not game.moment_specs():
            return None
        return self._which(plots.moment_curves_figure(game, self.moments(run=run), times), run)

    @_in_its_precision
    def plot_impulse_response(
        self, shock: float | None = None, at: int | None = None, innovations=None, run: int | None = None
    ):
        """The impulse response (:meth:`impulse_response`) of every scalar moment, the
        shock in the title as ``mfax irf`` has it."""
        response = self.impulse_response(shock, at, innovations, run=run)
        words = plots.shock_words(-1.0 if shock is None else shock, 1 if at is None else at, innovations)
        r = self._run_or_best(run)
        if self.config.num_runs > 1:
            words += f"; {plots.run_words(self.config, r, None)}"
        return plots.irf_figure(self.game_of(r), response, words)

    # -- saving ----------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the run directory (config, metrics, summary, provenance, checkpoints) to
        ``path``: missing, empty or (``overwrite``) an mfax run. ``mfax eval``,
        ``mfax plot``, ``mfax train --resume`` and :func:`load` read it."""
        run = RunDir(user_path("path", path))
        run.write_files(self.files, _flag("overwrite", overwrite))  # overwrite="no" replaced a run
        return run.root
