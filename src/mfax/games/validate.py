"""The game contract as code: named checks of a game on concrete values.

A game's functions are only a protocol (:class:`~mfax.games.base.Game`): a kernel whose
rows do not sum to one, an index past the last state, a NaN reward, a reward of the
wrong shape (broadcast silently), an initial mean field that is not a distribution, a
noise path shorter than the horizon (JAX clamps out-of-range reads) or support weights
that do not sum to one would all produce numbers. Each check below has a stable name
and reports pass, fail (with the offending state, action, row or value) or skip (when
what it inspects could not be computed, e.g. a kernel that does not trace).

:func:`check_game` runs every check and returns a :class:`CheckReport`
(``mfax check-game`` prints it). :func:`validate_game` runs the cheap ones (all but the
``vmap.*``, ``jit.no_retrace``, ``jit.pure``, ``noise.shared_prefix`` and
``noise.sampled_as_supported`` checks, which compile more programs or draw thousands of
noise paths: only ``mfax check-game`` runs them) and raises the
first failure as a one-line :class:`~mfax.errors.GameError`; :func:`mfax.make` and the
evaluation entry point call it, so training, evaluation and a user's own game instance
are all covered, once per game and process. Inside :func:`unchecked` it does nothing
(``mfax train/eval --no-check``).

The checks, with ``mu_0`` the initial mean field of one noise path and the functions
evaluated at ``mu_t = mu_{t+1} = mu_0``, the kernel at ``t = 0`` and ``t = T - 1``, the
reward at ``t = 0`` and the terminal reward at ``t = T - 1``, and at the first other
``t`` whose kernel or reward shows something they refuse (every ``t`` is summarised in
the same program). Every ``t`` is summarised at a second mean field too,
:func:`second_mean_field` (``mu_0`` mixed half and half with a fixed distribution that
puts mass on every state): a kernel or reward that is only defective away from
``mu_0`` (a row normalised by a share that ``mu_0`` happens to fix, a division by a
mass ``mu_0`` keeps away from zero) is then checked in full there, and the failure
says "at the second mean field". Other mean fields are not seen. The noise path is the one
drawn from the key, unless another shows a defect it does not: the initial mean field,
and the kernel and reward at every ``t`` at both mean fields, are summarised on every path
of a finite support of at most :data:`SUPPORT_PATHS` paths whose paths x T x n x m is at
most :data:`SUPPORT_WORK` (else on :data:`SAMPLED_PATHS` sampled paths), one after another
in the same program, and the first path that shows one is checked in full and named in
the failure (``on noise support path 16``). The report says which paths were covered
(:attr:`CheckReport.coverage`):

* ``sizes.integers``: ``n_states``, ``n_actions``, ``horizon`` integers ``>= 1``,
  ``actions_categorical`` ``True`` or ``False``, ``state_grid`` ``None`` or two or
  three ``(name, size)`` pairs whose sizes multiply to ``n_states``;
  ``sizes.gamma``: ``gamma`` in (0, 1];
* ``jit.traceable``: every method traces under ``jax.jit`` (``t`` is a traced int32
  scalar: no Python ``if`` on it, on the mean field, on the noise or on a traced
  parameter, which a sweep maps over);
* ``initial_mean_field.shape`` ``(n,)`` floating; ``initial_mean_field.distribution``:
  finite, non-negative, sums to one;
* ``kernel.shape``: a :class:`~mfax.games.base.Kernel` with ``index`` and ``prob``
  ``(n, m, K)`` (and a second stage ``(n_mid, K2)``); ``kernel.dtypes``: int32 indices,
  floating probabilities; ``kernel.probabilities_finite``,
  ``kernel.probabilities_nonnegative``, ``kernel.probabilities_sum_to_one`` (every row of
  both stages), ``kernel.indices_in_range`` (``0..n-1``, or ``0..n_mid-1`` for the first
  stage of a two-stage kernel);
* ``reward.shape`` ``(n, m)`` floating and ``reward.finite``, for the step and the
  terminal reward;
* ``observation.shape``: a floating vector ``(d,)``; ``observation.constant_shape``: the
  same ``d`` at every ``t = 0..T``; ``observation.finite``: at every ``t = 0..T``;
* ``noise.path_length``: the observation at ``t = T`` and the rewards and kernel at
  ``t = T - 1`` read nothing out of bounds (noise paths cover ``t = 0..T``);
  ``noise.describe``: ``describe_noise`` gives a ``str`` on the checked path (concrete
  arrays, on the host, as the plots and the exports call it);
* ``state_features.shape`` ``(n, f)``, ``state_features.finite``,
  ``action_values.shape`` ``(m,)``, ``action_values.finite``;
* ``aggregates.scalars``: each aggregate a scalar at ``t = 0`` and ``t = T``, finite or NaN
  (not defined there), never infinite;
* ``noise_support.weights_sum_to_one``: weights ``(P,)`` finite, non-negative, summing
  to one; ``noise_support.paths_shape``: paths with the structure of sampled ones and
  their shapes behind a leading axis ``P`` (both pass when the support is not finite);
* ``vmap.noise_paths``: everything under ``jax.vmap`` over a batch of two keys (noise
  paths) gives what it gives one path at a time; ``vmap.mean_fields``: likewise over a
  batch of two mean fields with the noise fixed. Kernels are compared as distributions
  (their successor lists may differ: a next state within a rounding of a grid point is
  bracketed from either side). A float32 difference is looked at again in float64: where
  it vanishes there, it is rounding amplified by the game's conditioning (a mean summed
  in another order moves the macro economy's prices by ~2e-6, and its interpolation
  weights on a 5000-point wealth grid by up to ~1e-3), and the check passes saying so;
* ``jit.no_retrace``: a jitted function of the game, the noise and the mean field (the
  way the tools call a game) is traced once across calls with new noise, a new mean
  field and the game built again from its parameters (a static field that is not equal
  in a second instance built the same way recompiles every program that uses it);
* ``jit.pure``: the functions give the same values in a new program, and in one that
  called each of them once before (a function reading Python state that its own traces
  change, such as a module-level counter, depends on how often it was traced);
* ``noise.sampled_as_supported``: where the support is finite, 2048 draws of
  ``sample_noise`` are paths it lists, each drawn as often as its weight says (within five
  standard errors);
* ``noise.shared_prefix``: where the game declares ``shared_until = t_b > 0``, the noise
  paths with equal ``prefix_key`` (the finite support, or 64 sampled paths) have the same
  initial mean field and, for ``t < t_b``, the same kernel and observation at two mean
  fields (``mu_0`` and the uniform one), as the declaration promises (each path compared
  with its group's first; past the checks' budget, an evenly spaced subset, said so).

Sums are compared to one within :data:`TOLERANCE`; batched and single values within
:data:`VMAP_RTOL`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import operator
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from mfax import compiling, params
from mfax.errors import GameError, MfaxError, advice, exception_line, raised_at
from mfax.freememory import available_bytes, gigabytes
from mfax.games.base import Game, Kernel, noise_words, prefix_groups, reward_matrix

TOLERANCE = 1e-4
VMAP_RTOL = 1e-4
_VALIDATED: set = set()
_VALIDATED_IDS: dict[int, weakref.ref] = {}  # games holding arrays (not hashable), by identity
_ENABLED = contextvars.ContextVar("mfax_game_checks", default=True)
# the games whose checks were skipped in the innermost unchecked() block (None outside one)
_SKIPPED: contextvars.ContextVar[list[Game] | None] = contextvars.ContextVar("mfax_skipped_games", default=None)
_EXPENSIVE = (
    "vmap.noise_paths",
    "vmap.mean_fields",
    "jit.no_retrace",
    "jit.pure",
    "noise.shared_prefix",
    "noise.sampled_as_supported",
)
SAMPLE_DRAWS = 2048  # noise.sampled_as_supported: draws of sample_noise against the support's weights
SUPPORT_PATHS = 4096  # a finite support of at most this many paths is checked on every path ...
SUPPORT_WORK = 2**25  # ... when paths x T x n x m is at most this too (published games: at most 3.4 million)
PREFIX_PAIRS = 64  # noise.shared_prefix compares at least this many paths with their group's first
SAMPLED_PATHS = 16  # else the initial mean field, kernel and reward are checked on this many sampled paths


class CheckResult(NamedTuple):
    """One named check: ``status`` is ``"pass"``, ``"fail"`` or ``"skip"``; ``detail``
    names the offending values of a failure, or why a check was skipped."""

    name: str
    status: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """The named checks of one game (:func:`check_game`), in the order they ran."""

    game: str
    results: tuple[CheckResult, ...]
    coverage: str = ""  # the noise paths the kernel, reward and initial mean field were checked on
    set_here: tuple[str, ...] = ()  # ``name=value`` of the parameters not at their defaults

    @property
    def ok(self) -> bool:
        """No check failed (skipped checks follow from a failed one)."""
        return not self.failures

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; the report's checks: {', '.join(r.name for r in self.results)}")

    def __str__(self) -> str:
        lines = [f"{r.status.upper()} {r.name}" + (f": {r.detail}" if r.detail else "") for r in self.results]
        counts = {s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "skip")}
        if self.coverage:
            lines.append(f"checked on {self.coverage}")
        lines.append(f"game {self.game!r}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
        return "\n".join(lines)

    def error(self) -> GameError | None:
        """The first failure as a one-line :class:`GameError` (``None`` when all pass)."""
        if not self.failures:
            return None
        first, *more = self.failures
        also = f"; {len(more)} more failed: {', '.join(r.name for r in more)}" if more else ""
        game = f"game {self.game!r}" + (f" with {', '.join(self.set_here)}" if self.set_here else "")
        return GameError(f"{game}: {first.detail} (check {first.name}{also})")

    def raise_if_failed(self) -> None:
        error = self.error()
        if error is not None:
            raise error

    def as_dict(self) -> dict[str, Any]:
        return {
            "game": self.game,
            "ok": self.ok,
            "coverage": self.coverage,
            "checks": [r._asdict() for r in self.results],
        }


def check_game(game: Game, *, key: jax.Array | None = None) -> CheckReport:
    """Run every named check on ``game`` (see the module docstring) with the noise path
    drawn from ``key`` (default ``PRNGKey(0)``); never raises for a defect of the game's
    functions (a parameter of another type than its default's is the one-line
    :class:`GameError` :func:`mfax.make` gives).

    >>> import mfax
    >>> report = mfax.check_game(mfax.make("sis"))
    >>> report.ok, report["kernel.probabilities_sum_to_one"].status
    (True, 'pass')
    """
    if not isinstance(game, Game):
        raise GameError(
            f"check_game expects a game instance (mfax.make(name), or your class with its parameters), "
            f"got {type(game).__name__}"
        )
    typed = isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if key is not None and not (typed or (isinstance(key, jax.Array) and key.shape == (2,))):
        raise GameError(f"key must be a JAX random key (jax.random.key(seed) or PRNGKey(seed)), got {key!r:.60}")
    return _report(game, key, expensive=True)


def validate_game(game: Game) -> None:
    """Refuse a defective game with a one-line :class:`GameError` naming the first failed
    cheap check; each game is checked once per process, and not at all inside
    :func:`unchecked`."""
    if not _ENABLED.get():
        skipped = _SKIPPED.get()
        if skipped is not None and not any(game is seen for seen in skipped):
            skipped.append(game)
        return
    try:
        if game in _VALIDATED:
            return
    except TypeError:  # a game holding arrays is not hashable: remember it by identity
        ref = _VALIDATED_IDS.get(id(game))
        if ref is not None and ref() is game:
            return
        _check(game)
        ident = id(game)
        _VALIDATED_IDS[ident] = weakref.ref(game, lambda _: _VALIDATED_IDS.pop(ident, None))
        return
    _check(game)
    _VALIDATED.add(game)


def checks_on() -> bool:
    """Whether the game checks run here (``False`` inside :func:`unchecked`)."""
    return _ENABLED.get()


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Within this block :func:`validate_game` checks nothing (``--no-check``).

    When the block then fails with an error that is not mfax's own (a JAX shape error
    while tracing the game's functions, say), the skipped checks run on the games met in
    the block: if one fails, that failure is raised instead, as a one-line
    :class:`GameError` naming the defect (the original error is its ``__cause__``); if
    none does, the original error propagates unchanged."""
    token, skipped = _ENABLED.set(False), _SKIPPED.set([])
    try:
        yield
    except MfaxError:
        raise
    except Exception as err:
        named = defect_behind(err, _SKIPPED.get() or [], expensive=False)
        if named is not None:
            raise named from err
        raise
    finally:
        _ENABLED.reset(token)
        _SKIPPED.reset(skipped)


def defect_behind(err: BaseException, games, expensive: bool = True) -> GameError | None:
    """After a run failed with ``err`` (not mfax's own: a traceback of JAX or of the
    game's code), the checks of ``games`` (``expensive``: :func:`check_game`'s, the vmap,
    retracing and purity ones included, which the training does not run; else the cheap
    ones :func:`unchecked` skipped): the first failure as a one-line :class:`GameError`
    naming the defect and the error it explains (with the notes the failing code added:
    a run put back), or ``None`` when every check passes (the error is then not the
    game's). Running out of memory is not a defect of the game: its checks (minutes on
    a huge game) are not run then."""
    text = str(err)
    if isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        return None
    for game in games:
        try:
            found = _report(game, None, expensive=expensive).error()
        except Exception:  # (checks that cannot run say nothing here: the original error stands)
            found = None
        if found is not None:
            cause = (text.strip().splitlines() or [""])[0].rstrip(".")
            said = "" if cause in str(found) else f": {type(err).__name__}: {cause}"
            off = "" if checks_on() else f" with the game checks off ({advice('--no-check', 'mfax.games.unchecked()')})"
            named = GameError(f"{found}; found when the run failed{off}{said}")
            for note in getattr(err, "__notes__", ()):
                named.add_note(note)
            return named
    return None


@contextlib.contextmanager
def defects_named(*games: Game) -> Iterator[None]:
    """A block that uses games not checked yet (a memory estimate before the checks):
    when it fails with an error that is not mfax's own, the games' checks run first, so
    that a defect of their functions is named in one line instead of a traceback."""
    try:
        yield
    except MfaxError:
        raise
    except Exception:
        for game in games:
            validate_game(game)
        raise


def checking(enabled: bool) -> contextlib.AbstractContextManager:
    """:func:`unchecked` when ``enabled`` is false, else a block that changes nothing."""
    return contextlib.nullcontext() if enabled else unchecked()


@compiling.precise
def _check(game: Game) -> None:
    """The cheap checks, uncached; raises the first failure."""
    _report(game, None, expensive=False).raise_if_failed()


# -- running named checks -------------------------------------------------------------------


class _Failed(Exception):
    pass


class _Skipped(Exception):
    pass


def _fail(message: str):
    raise _Failed(message)


class _Runner:
    """Runs checks in order; a check needing one that did not pass is skipped."""

    def __init__(self):
        self.results: dict[str, CheckResult] = {}

    def __call__(self, name: str, fn: Callable[[], str | None], needs: tuple[str, ...] = ()) -> None:
        blocked = [n for n in needs if self.results[n].status != "pass"]
        if blocked:
            self.results[name] = CheckResult(name, "skip", f"needs {', '.join(blocked)}")
            return
        try:
            self.results[name] = CheckResult(name, "pass", fn() or "")
        except _Failed as failed:
            self.results[name] = CheckResult(name, "fail", str(failed))
        except _Skipped as skipped:
            self.results[name] = CheckResult(name, "skip", str(skipped))
        except Exception as err:  # the game's own code raised: that is its failure
            self.results[name] = CheckResult(name, "fail", f"raised {_first_line(err)}")

    def skip_all(self, names: tuple[str, ...], why: str) -> None:
        for name in names:
            self.results.setdefault(name, CheckResult(name, "skip", why))


# JAX's errors for a traced value used where Python needs a concrete one
_CONCRETE_NEEDED = (
    "ConcretizationTypeError",
    "TracerBoolConversionError",
    "TracerIntegerConversionError",
    "TracerArrayConversionError",
    "NonConcreteBooleanIndexError",
)
TRACED_ADVICE = (
    "a Python if, bool(), int() or numpy call on a traced value (t, the mean field, the noise, or a parameter "
    "declared traced=True); write it with jnp.where or jax.lax.cond, or make that parameter static (no traced=True)"
)


# ... and its words for a traced value used as a shape or a size (found by an audit of the
# plug-in path: they named neither the parameter nor what to do)
_SHAPE_NEEDED = ("must have __hash__", "Shapes must be 1D sequences of concrete values", "must be concrete")
SHAPE_ADVICE = (
    "a traced value used as a shape or a size (jnp.zeros, jnp.arange, jnp.tile, reshape, a slice's bounds): a "
    "parameter that sets a size must be static (no traced=True)"
)


def _first_line(err: BaseException) -> str:
    text = exception_line(err).rstrip(".")
    if type(err).__name__ in _CONCRETE_NEEDED:
        return f"{text}: {TRACED_ADVICE}"
    if any(marker in str(err) for marker in _SHAPE_NEEDED):
        return f"{text}: {SHAPE_ADVICE}"
    return text


_NUMERIC = (
    "initial_mean_field.shape",
    "initial_mean_field.distribution",
    "kernel.shape",
    "kernel.dtypes",
    "kernel.probabilities_finite",
    "kernel.probabilities_nonnegative",
    "kernel.probabilities_sum_to_one",
    "kernel.indices_in_range",
    "reward.shape",
    "reward.finite",
    "observation.shape",
    "observation.constant_shape",
    "observation.finite",
    "noise.path_length",
    "noise.describe",
    "state_features.shape",
    "state_features.finite",
    "action_values.shape",
    "action_values.finite",
    "aggregates.scalars",
    "noise_support.weights_sum_to_one",
    "noise_support.paths_shape",
)
CHECK_NAMES: tuple[str, ...] = ("sizes.integers", "sizes.gamma", "jit.traceable", *_NUMERIC, *_EXPENSIVE)
"""Every check, in the order a report lists them."""


@compiling.precise
def _report(game: Game, key, expensive: bool) -> CheckReport:
    name = getattr(game, "name", type(game).__name__)
    _parameter_types(game, name)
    run = _Runner()

    def report(coverage: str = "") -> CheckReport:
        return CheckReport(name, tuple(_ordered(run, expensive)), coverage, params.changed(game))

    run("sizes.integers", lambda: _sizes(game))
    run("sizes.gamma", lambda: _gamma(game))
    later = _NUMERIC + (_EXPENSIVE if expensive else ())
    if run.results["sizes.integers"].status != "pass":
        run.skip_all(("jit.traceable", *later), "needs sizes.integers")
        return report()
    n, m, horizon = (operator.index(getattr(game, a)) for a in ("n_states", "n_actions", "horizon"))
    out, broken = _evaluate(game, key, n, horizon)  # key None: PRNGKey(0), made in the program
    if "start" in broken:
        run("jit.traceable", lambda: _traceable(broken))
        run("noise_support.weights_sum_to_one", lambda: _support_weights(game))
        run.skip_all(later, "sample_noise and initial_mean_field must trace first")
        return report()
    mu0 = out["initial_mean_field_shape"]
    coverage, path = out.pop("coverage", ""), out.pop("path", None)
    run("initial_mean_field.shape", lambda: _shape(mu0, (n,), "initial mean field", floating=True))
    run("jit.traceable", lambda: _traceable(broken), ("initial_mean_field.shape",))
    if run.results["initial_mean_field.shape"].status != "pass":  # the rest is traced with it
        run("noise_support.weights_sum_to_one", lambda: _support_weights(game))
        run.skip_all(later, "needs initial_mean_field.shape")
        return report()

    def get(what: str):
        if what not in out:
            reason = broken.get(what, "")
            raise _Skipped(f"{what} did not run" + (f" ({reason})" if reason else ""))
        return out[what]

    run("initial_mean_field.distribution", lambda: _mean_field(get("initial_mean_field")))
    run("kernel.shape", lambda: _kernel_shapes(get("kernel"), n, m))
    run("kernel.dtypes", lambda: _kernel_dtypes(get("kernel")), ("kernel.shape",))
    for check, fn in (
        ("kernel.probabilities_finite", _probabilities_finite),
        ("kernel.probabilities_nonnegative", _probabilities_nonnegative),
        ("kernel.probabilities_sum_to_one", _probabilities_sum),
        ("kernel.indices_in_range", lambda ks: _indices_in_range(ks, n)),
    ):
        run(check, lambda fn=fn: fn(get("kernel")), ("kernel.shape",))
    run("reward.shape", lambda: _reward_shapes(get, n, m, horizon))
    run("reward.finite", lambda: _rewards_finite(get, horizon), ("reward.shape",))
    run("observation.shape", lambda: _observation_shape(get("observation")))
    run("observation.constant_shape", lambda: _constant_shape(game, out, broken, horizon))
    run("observation.finite", lambda: _observation_finite(get("observation")), ("observation.shape",))
    run("noise.path_length", lambda: _reads(get("reads")))
    run("noise.describe", lambda: _described(game, get("noise")))
    run("state_features.shape", lambda: _shape(get("state_features"), (n, None), "state_features", floating=True))
    run("state_features.finite", lambda: _finite(get("state_features"), "state_features"), ("state_features.shape",))
    run("action_values.shape", lambda: _shape(get("action_values"), (m,), "action_values", floating=True))
    run("action_values.finite", lambda: _finite(get("action_values"), "action_values"), ("action_values.shape",))
    run("aggregates.scalars", lambda: _aggregates(get("aggregates")))
    run("noise_support.weights_sum_to_one", lambda: _support_weights(game))
    run("noise_support.paths_shape", lambda: _support_paths(game, get("noise")), ("noise_support.weights_sum_to_one",))
    if expensive:
        cheap_ok = all(r.status == "pass" for r in run.results.values())
        if cheap_ok:
            _expensive_checks(run, game, jax.random.PRNGKey(0) if key is None else key, out, horizon)
        else:
            run.skip_all(_EXPENSIVE, "needs every other check to pass")
    if path is not None:  # the defect was found on another path than the first: name it
        for check, result in run.results.items():
            if result.status == "fail":
                run.results[check] = result._replace(detail=f"{result.detail} (on {path})")
    return report(coverage)


def _parameter_types(game: Game, name: str) -> None:
    """A declared parameter of another type than its default's (a constructor call skips
    :func:`mfax.make`'s checks: ``crowd="2"``) is the one-line error ``make`` gives;
    arrays (games stacked on a run axis, traced values) are the checks' to read."""
    for field in params.fields_of(type(game)).values():
        value = getattr(game, field.name)
        if not (eqx.is_array(value) or isinstance(value, jax.core.Tracer)):
            params.coerce(f"game {name!r}", field, value)


def _ordered(run: _Runner, expensive: bool) -> list[CheckResult]:
    names = CHECK_NAMES if expensive else CHECK_NAMES[: -len(_EXPENSIVE)]
    return [run.results[n] for n in names if n in run.results]


# -- evaluating the game's functions --------------------------------------------------------


def _start(game: Game, key, noise=None):
    """The noise path (drawn from ``key`` unless given) and its initial mean field."""
    noise = game.sample_noise(key) if noise is None else noise
    return noise, game.initial_mean_field(noise)


class When(NamedTuple):
    """Where a kernel or a reward was checked in full: the date ``t``, at ``mu_0`` or at
    :func:`second_mean_field` (``second``)."""

    t: int
    second: bool = False

    @property
    def label(self) -> str:
        return f" at t={self.t}" + (SECOND_LABEL if self.second else "")


SECOND_LABEL = " at the second mean field (mu_0 mixed half and half with a fixed full-support distribution)"


def second_mean_field(mu: jax.Array) -> jax.Array:
    """``(mu + d) / 2`` with ``d_s`` proportional to ``1 + frac((s + 1) phi)``
    (``phi = (sqrt 5 - 1) / 2``): a mean field away from ``mu_0`` with mass on every
    state, the same for every game of ``n`` states (no key: a failure reproduces)."""
    n = mu.shape[0]
    spread = 1.0 + jnp.mod((jnp.arange(n) + 1.0) * ((math.sqrt(5.0) - 1.0) / 2.0), 1.0)
    return 0.5 * mu + 0.5 * (spread / jnp.sum(spread)).astype(mu.dtype)


def _steps_off(game: Game, noise, mu, horizon: int) -> jax.Array:
    """``(T, 2)``: whether the kernel or the reward at each ``t`` shows a defect at
    ``mu`` (column 0) and at :func:`second_mean_field` of it (column 1). One loop over
    the ``2 T`` pairs: the game's kernel and reward are traced and compiled once (a
    first result's compile time), not once per mean field."""
    fields = jnp.stack([mu, second_mean_field(mu)])

    def off(i):
        return _step_off(game, noise, fields[i % 2], i // 2)

    return jax.lax.map(off, jnp.arange(2 * horizon, dtype=jnp.int32)).reshape(horizon, 2)


def _step_probes(game: Game, noise, mu, horizon: int) -> dict[str, Callable[[], Any]]:
    """The functions of the mean field and the noise, each at the times it is checked."""
    last = jnp.int32(horizon - 1)
    return {
        "kernel": lambda: _at_times(lambda t: game.kernel(mu, noise, t), sorted({0, horizon - 1})),
        "reward": lambda: game.reward(mu, mu, noise, jnp.int32(0)),
        "terminal_reward": lambda: game.terminal_reward(mu, mu, noise, last),
        # (T + 1, d): every t, stacked (a NaN at a middle t passed a check at t = 0 and T only)
        "observation": lambda: jax.lax.map(
            lambda t: game.observation(mu, noise, t), jnp.arange(horizon + 1, dtype=jnp.int32)
        ),
        "aggregates": lambda: _at_times(lambda t: game.aggregates(mu, noise, t), (0, horizon)),
        # every t at both mean fields, summarised: the first that shows something is then checked in full
        # (in _outputs, with the other paths' scan: one traced copy of the game's functions)
        "every_step": lambda: _steps_off(game, noise, mu, horizon),
    }


def _at_times(fn: Callable[[jax.Array], Any], times) -> dict[int, Any]:
    """``{t: fn(t)}`` for the given dates, ``fn`` traced once (a loop over the dates):
    the checks' program compiles each of the game's functions as few times as it can."""
    times = list(times)
    stacked = jax.lax.map(fn, jnp.asarray(times, dtype=jnp.int32))
    return {t: jax.tree.map(lambda x, i=i: x[i], stacked) for i, t in enumerate(times)}


def _step_off(game: Game, noise, mu, t) -> jax.Array:
    """Whether the kernel or the reward at ``t`` (at ``mu``) shows what the kernel and
    reward checks refuse: a non-finite, negative or unnormalised row, an index out of
    range, a non-finite reward (a defect at a middle step passed the checks at
    ``t = 0`` and ``T - 1`` and lost or created mass)."""
    kernel = game.kernel(mu, noise, t)
    n = mu.shape[0]
    stages = [(kernel.index, kernel.prob, n if kernel.then is None else kernel.then.index.shape[0])]
    if kernel.then is not None:
        stages.append((kernel.then.index, kernel.then.prob, n))
    off = jnp.zeros((), bool)
    for index, prob, size in stages:
        off |= ~jnp.all(jnp.isfinite(prob)) | jnp.any(prob < 0.0)
        off |= jnp.any(jnp.abs(jnp.sum(prob, axis=-1) - 1.0) > TOLERANCE)
        off |= jnp.any((index < 0) | (index >= size))
    return off | ~jnp.all(jnp.isfinite(reward_matrix(game, mu, mu, noise, t)))


def _at_step(game: Game, key, t, path=None, second: bool = False):
    """The kernel and the reward at ``t`` (at ``mu_0``, or at its :func:`second_mean_field`),
    to check in full."""
    noise, mu = _start(game, key, path)
    mu = second_mean_field(mu) if second else mu
    return game.kernel(mu, noise, t), reward_matrix(game, mu, mu, noise, t)


def _probes(game: Game, noise, mu, horizon: int) -> dict[str, Callable[[], Any]]:
    last = jnp.int32(horizon - 1)

    def reads(fn):
        return checkify.checkify(fn, errors=checkify.index_checks)(noise)[0]

    def all_reads():  # JAX clamps out-of-bounds reads silently: checkify finds them
        return {
            f"observation at t=T={horizon}": reads(lambda z: game.observation(mu, z, last + 1)),
            f"reward at t=T-1={horizon - 1}": reads(lambda z: reward_matrix(game, mu, mu, z, last)),
            f"kernel at t=T-1={horizon - 1}": reads(lambda z: game.kernel(mu, z, last)),
        }

    return {
        **_step_probes(game, noise, mu, horizon),
        "state_features": game.state_features,
        "action_values": game.action_values,
        "reads": all_reads,
    }


def _outputs(game: Game, key, horizon: int, skip: frozenset, path=None, support=None):
    """Every function of the game once, as one compiled program (called eagerly, each
    operation would be compiled on its own: seconds per game), on the noise path drawn
    from ``key`` or on ``path``; and (unless skipped) ``"paths_off"``, which of the paths
    :func:`_scan_source` chose (``support``, or sampled from ``key``) shows a defect."""
    noise, mu = _start(game, key, path)
    probes = _probes(game, noise, mu, horizon)
    joint = "every_step" not in skip and "paths_off" not in skip
    out = {
        "noise": noise,
        "initial_mean_field": mu,
        **{k: f() for k, f in probes.items() if k not in skip and not (joint and k == "every_step")},
    }
    if "paths_off" not in skip:
        if support is None:
            support = _sampled_paths(game, key)
        if joint and _stackable(noise, support):  # the first path scanned with the others
            paths = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), noise, support)
            start, steps = jax.lax.map(lambda z: _path_checks(game, z, horizon), paths)
            out["every_step"] = steps[0]
            out["paths_off"] = start[1:] | jnp.any(steps[1:], axis=(1, 2))
        else:
            if joint:
                out["every_step"] = probes["every_step"]()
            out["paths_off"] = jax.lax.map(lambda z: _path_off(game, z, horizon), support)
    return out


def _stackable(noise, paths) -> bool:
    """Whether a path shaped as ``noise`` can be stacked in front of ``paths`` (the same
    structure; each leaf of ``paths`` one axis longer, with the same dtype)."""
    a, b = jax.tree.structure(noise), jax.tree.structure(paths)
    if a != b:
        return False
    return all(
        jnp.shape(x) == jnp.shape(y)[1:] and jnp.result_type(x) == jnp.result_type(y)
        for x, y in zip(jax.tree.leaves(noise), jax.tree.leaves(paths), strict=True)
    )


def _sampled_paths(game: Game, key):
    """The :data:`SAMPLED_PATHS` paths a game without a small finite support is scanned on."""
    return jax.vmap(game.sample_noise)(jax.random.split(jax.random.fold_in(key, 1), SAMPLED_PATHS))


def _path_off(game: Game, noise, horizon: int) -> jax.Array:
    """Whether the initial mean field of a noise path, or the kernel or the reward at any
    ``t`` (at that ``mu_0`` or its second mean field, :func:`_steps_off`) shows what the
    checks refuse."""
    start, steps = _path_checks(game, noise, horizon)
    return start | jnp.any(steps)


def _path_checks(game: Game, noise, horizon: int) -> tuple[jax.Array, jax.Array]:
    """Whether a noise path's initial mean field shows a defect, and :func:`_steps_off`
    on that path (``(T, 2)``)."""
    noise, mu = _start(game, None, noise)
    off = ~jnp.all(jnp.isfinite(mu)) | jnp.any(mu < -TOLERANCE) | (jnp.abs(jnp.sum(mu) - 1.0) > TOLERANCE)
    return off, _steps_off(game, noise, mu, horizon)


def _scan_source(game: Game) -> tuple[Any, str, str, int]:
    """The paths every defect is looked for on: ``(support paths or None, words for what
    is covered, a path's name, how many)``. A finite support of at most
    :data:`SUPPORT_PATHS` paths whose paths x T x n x m is at most :data:`SUPPORT_WORK`:
    all of them; else ``None``, :data:`SAMPLED_PATHS` paths drawn in the program."""
    support = game.noise_support()
    size = None if support is None else int(np.shape(support.weight)[0])
    work = None if size is None else size * game.horizon * game.n_states * game.n_actions
    if size is not None and size <= SUPPORT_PATHS and work <= SUPPORT_WORK:
        words, what = f"each of the {size} noise support paths", "noise support path"
        paths = support.noise
    else:
        whole = "no finite support" if size is None else f"a support of {size} paths"
        if size is not None and size <= SUPPORT_PATHS:  # (a 2003-state beach bar's 2006 paths took 52 s)
            whole += (
                f", too many to check each at {game.n_states} states x {game.n_actions} actions x "
                f"T = {game.horizon} within the checks' budget of {SUPPORT_WORK} path-state-action-steps"
            )
        words, what, paths = f"{SAMPLED_PATHS} sampled noise paths (the noise has {whole})", "sampled noise path", None
    covered = "the initial mean field, and the kernel and the reward at every t at it and at the second mean field"
    return paths, f"{words}: {covered}", what, SAMPLED_PATHS if paths is None else size


def _evaluate(game: Game, key, n: int, horizon: int) -> tuple[dict, dict[str, str]]:
    """The outputs of every function that traces, and ``{what: error}`` for those that do
    not (``"start"`` when no noise path and mean field could be made). ``key`` ``None``:
    ``PRNGKey(0)``, made inside the program (eagerly it would be two programs more)."""
    try:
        noise = jax.eval_shape(game.sample_noise, jax.eval_shape(_key, key))
    except Exception as err:
        return {}, {"start": "", "sample_noise": _first_line(err)}
    try:
        mu = jax.eval_shape(game.initial_mean_field, noise)
    except Exception as err:
        return {}, {"start": "", "initial_mean_field": _first_line(err)}
    out: dict[str, Any] = {"initial_mean_field_shape": mu}
    if tuple(mu.shape) != (n,):  # the rest is traced with it: stop here
        return out, {}
    _fits(game, noise, mu, n)
    broken = {}
    skip: frozenset = frozenset()
    # the traced parameters as arguments: tracers inside, as in a sweep (jax.vmap over them)
    traced = _with_traced_arrays(game)
    try:
        source, coverage, what_path, count = _scan_source(game)
    except Exception:  # noise_support raised: its own check says so
        source, coverage, what_path, count = None, "", "", SAMPLED_PATHS
    # compiled and run once: on a small game at XLA's optimisation level 0 (compiling.once_options)
    options = compiling.once_options((1 + count) * horizon * n * game.n_actions)
    program = eqx.filter_jit(
        lambda g, k, skip, z, zs: _outputs(g, _key(k), horizon, skip, z, zs), compiler_options=options
    )
    try:
        values = program(traced, key, skip, None, source)
    except Exception:
        try:  # the paths scanned do not fit the functions (the support's own checks say why)
            skip = frozenset({"paths_off"})
            values = program(traced, key, skip, None, None)
            coverage = "the first noise path only (the other paths could not be scanned)"
        except Exception as err:
            failure, values = err, None
    if values is None:
        for what in _probes(game, noise, mu, horizon):
            try:
                eqx.filter_eval_shape(lambda g, z, u, what=what: _probes(g, z, u, horizon)[what](), traced, noise, mu)
            except Exception as failed:
                broken[what] = _first_line(failed) + raised_at(failed, type(game))  # (the game's line)
        if not broken:
            broken["program"] = _first_line(failure)
            return out, broken
        skip = frozenset({*broken, "paths_off"})
        coverage = "the first noise path only (not every function traces)"
        try:
            values = program(traced, key, skip, None, None)
        except Exception as again:
            broken["program"] = _first_line(again)
            return out, broken
    out["coverage"], path = coverage, None
    off = np.asarray(jax.device_get(values.pop("paths_off", False)))
    if off.any():  # a path shows a defect: check it in full, unless the first path shows one too
        steps = jax.device_get(values.get("every_step"))
        here = np.any(steps) or distribution_error(values["initial_mean_field"], "") is not None
        if not here:
            index = int(np.argmax(off))
            if source is None:
                source = _sampled_paths(game, _key(key))
            path, out["path"] = jax.tree.map(lambda x: jnp.asarray(x[index]), source), f"{what_path} {index}"
            values = program(traced, key, frozenset({*skip, "paths_off"}), path, None)
    out.update(jax.device_get({k: v for k, v in values.items() if k != "reads"}))
    if "reads" in values:
        out["reads"] = values["reads"]
    if "kernel" in out:
        out["kernel"] = {When(t): kernel for t, kernel in out["kernel"].items()}
    steps = out.pop("every_step", None)
    # the first (t, mean field) that shows something and was not checked in full already
    shown = [] if steps is None else [When(int(t), bool(u)) for t, u in np.argwhere(np.asarray(steps))]
    other = [w for w in shown if w.second or 0 < w.t < horizon - 1]
    if other and "kernel" in out:
        when = other[0]
        at_step = eqx.filter_jit(
            lambda g, k, t, z, second: _at_step(g, _key(k), t, z, second), compiler_options=options
        )
        kernel, reward = at_step(traced, key, jnp.int32(when.t), path, when.second)
        out["kernel"] = {**out["kernel"], when: jax.device_get(kernel)}
        out["reward_at"] = (when, jax.device_get(reward))
    return out, broken


def _fits(game: Game, noise, mu, n: int, checking: bool = True) -> None:
    """Refuse in one line a game whose checks cannot fit in memory: they build its kernel
    and rewards at two dates (with temporaries, about four times one kernel and reward),
    sized here from their shapes alone (``num_states=100000000`` had the system kill the
    process). A kernel that does not trace is left to the checks to report. Not
    ``checking`` (:func:`size_guard`): the same measure, said of a step of the game (its
    enumerated noise support, built before any estimate, may be as large)."""
    try:
        kernel = jax.eval_shape(lambda z, u: game.kernel(u, z, jnp.int32(0)), noise, mu)
    except Exception:
        return
    one = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(kernel))
    need = 4 * (one + 2 * n * game.n_actions * mu.dtype.itemsize)
    free = available_bytes()
    if free is not None and need > free:
        name = getattr(game, "name", type(game).__name__)
        builds = "checking it builds" if checking else "a step of it builds"
        raise GameError(
            f"game {name!r} ({n} states, {game.n_actions} actions): {builds} kernels and rewards of about "
            f"{gigabytes(need)} (with their temporaries), only "
            f"{gigabytes(free)} is free; choose smaller sizes"
        )


def size_guard(game: Game) -> None:
    """:func:`_fits` alone, from the shapes of the game's functions (nothing computed):
    unchecked, a game too large for memory ran until the system killed the process, or
    a numpy allocation of the game's own raised a 60-line traceback (``--no-check`` with
    ``num_states=100000000``: its noise support, enumerated before any estimate). The
    memory estimates of an evaluation and a training call it first. A game whose
    functions do not trace is left to the run."""
    try:
        noise = jax.eval_shape(lambda: game.sample_noise(jax.random.PRNGKey(0)))
        mu = jax.eval_shape(game.initial_mean_field, noise)
        n = int(game.n_states)
    except Exception:
        return
    if tuple(mu.shape) == (n,):
        _fits(game, noise, mu, n, checking=False)


def _with_traced_arrays(game: Game) -> Game:
    """``game`` with its traced parameters (``param(..., traced=True)``, those a sweep maps
    over) as arrays: under ``eqx.filter_jit`` they are tracers, the rest stays static."""
    names = [n for n in params.traced_names(type(game)) if not isinstance(getattr(game, n), bool)]
    if not names:
        return game
    return eqx.tree_at(lambda g: [getattr(g, n) for n in names], game, [jnp.asarray(getattr(game, n)) for n in names])


def _key(key):
    return jax.random.PRNGKey(0) if key is None else key


def _traceable(broken: dict[str, str]) -> str:
    """Fails naming each method that does not trace (``reads``, the bounds check of the
    noise reads, is ``noise.path_length``'s to skip)."""
    failing = {k: v for k, v in broken.items() if k not in ("start", "reads", "every_step")}
    if failing:
        # methods failing alike once (terminal_reward, by default the reward, repeated its words)
        alike: dict[str, list[str]] = {}
        for method, message in failing.items():
            alike.setdefault(message, []).append(method)
        _fail("; ".join(f"{' and '.join(methods)}: {message}" for message, methods in alike.items()))
    return ""


# -- the numeric checks ------------------------------------------------------------------------


def _sizes(game: Game) -> str:
    sizes = []
    for attr in ("n_states", "n_actions", "horizon"):
        value = getattr(game, attr)
        try:
            value = operator.index(value)
        except TypeError:
            _fail(f"{attr} must be an integer, got {value!r}")
        if value < 1:
            _fail(f"{attr} must be >= 1, got {value}")
        sizes.append(value)
    categorical = game.actions_categorical
    if not isinstance(categorical, bool | np.bool_):  # (a truthy "no" would draw categories)
        _fail(f"actions_categorical must be True or False, got {categorical!r}")
    grid = game.state_grid
    _state_grid(grid, sizes[0])
    cells = (
        "" if grid is None else " on a map (" + ", ".join(f"{name}={operator.index(size)}" for name, size in grid) + ")"
    )
    return "n={}{}, m={}, T={}".format(sizes[0], cells, *sizes[1:])


def _state_grid(grid, n: int) -> None:
    """``None``, or a tuple (or list) of two or three ``(name, size)`` pairs: names
    non-empty strings, sizes whole numbers ``>= 1`` multiplying to ``n`` (a set or a
    generator is refused: its order, or a second reading, is not the grid's)."""
    if grid is None:
        return
    form = (
        "None or a tuple of 2-3 (name, size) pairs, names non-empty strings and sizes whole numbers >= 1 "
        f"multiplying to n_states={n}"
    )
    if not isinstance(grid, tuple | list) or not 2 <= len(grid) <= 3:
        _fail(f"state_grid must be {form}, got {_short(grid)}")
    for pair in grid:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            _fail(f"state_grid must be {form}; {_short(pair)} is not a (name, size) pair")
        name, size = pair
        if not isinstance(name, str) or not name:
            _fail(f"state_grid must be {form}; the axis name {_short(name)} is not a non-empty string")
        try:  # (Python, numpy or JAX integers; True is not a size)
            whole = not isinstance(size, bool | np.bool_) and operator.index(size) >= 1
        except TypeError:
            whole = False
        if not whole:
            _fail(f"state_grid must be {form}; the size {_short(size)} of axis {name!r} is not a whole number >= 1")
    product = math.prod(operator.index(size) for _, size in grid)
    if product != n:
        _fail(f"state_grid's sizes multiply to {product}, not n_states={n}: {_short(grid)}")


def _short(value, chars: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _gamma(game: Game) -> str:
    gamma = game.gamma
    if not (isinstance(gamma, int | float) and math.isfinite(gamma) and 0.0 < gamma <= 1.0):
        _fail(f"gamma must lie in (0, 1], got {gamma!r}")
    return ""


def _array(x) -> np.ndarray:
    return np.asarray(jax.device_get(x))


def _shape(x, shape: tuple, what: str, floating: bool = False) -> str:
    got = tuple(x.shape)
    ok = len(got) == len(shape) and all(want is None or g == want for g, want in zip(got, shape, strict=True))
    if not ok:
        expected = "(" + ", ".join("." if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        _fail(f"{what} must have shape {expected}, got {tuple(x.shape)}")
    if floating and not jnp.issubdtype(x.dtype, jnp.floating):
        _fail(f"{what} must be floating point, got {x.dtype}")
    return f"{tuple(x.shape)} {x.dtype}"


def _where(index: tuple, names: tuple[str, ...]) -> str:
    if not names:
        return str(int(index[0])) if len(index) == 1 else "(" + ", ".join(str(int(i)) for i in index) + ")"
    return "(" + ", ".join(f"{k}={int(i)}" for k, i in zip(names, index, strict=False)) + ")"


def _finite(x, what: str, names: tuple[str, ...] = ()) -> str:
    x = _array(x)
    if np.issubdtype(x.dtype, np.inexact) and not np.all(np.isfinite(x)):
        bad = tuple(np.argwhere(~np.isfinite(x))[0])
        _fail(f"{what} is {x[bad]} at {_where(bad, names)}; every entry must be finite")
    return ""


def _negative(p: np.ndarray, what: str, row_name) -> None:
    if np.any(p < -TOLERANCE):
        bad = tuple(np.argwhere(p < -TOLERANCE)[0])
        _fail(f"{what}{row_name(bad[:-1])} has a negative entry {p[bad]} (position {bad[-1]}); entries must be >= 0")


def _sum_to_one(p: np.ndarray, what: str, row_name) -> None:
    sums = p.astype(np.float64).sum(-1)
    off = np.abs(sums - 1.0) > TOLERANCE
    if np.any(off):
        bad = tuple(np.argwhere(off)[0])
        _fail(f"{what}{row_name(bad)} sums to {sums[bad]:.6g}; it must sum to 1")


def distribution_error(p, what: str, row_name: Callable[[tuple], str] = lambda i: "") -> str | None:
    """Why the rows (last axis) of ``p`` are not probability vectors (non-finite, a
    negative entry, a sum other than one within :data:`TOLERANCE`), or ``None``."""
    try:
        p = _array(p)
        _finite(p, what)
        _negative(p, what, row_name)
        _sum_to_one(p, what, row_name)
    except _Failed as failed:
        return str(failed)
    return None


def _mean_field(mu) -> str:
    mu = _array(mu)
    _finite(mu, "initial mean field")
    _negative(mu[None], "initial mean field", lambda i: "")
    _sum_to_one(mu[None], "initial mean field", lambda i: "")
    return ""


def _stages(kernels: dict[When, Kernel]):
    """``(what, index, prob, names, at)`` for each stage of each checked kernel."""
    for when, kernel in sorted(kernels.items()):
        at = when.label
        yield "kernel", _array(kernel.index), _array(kernel.prob), ("s", "a"), at, kernel.then is not None
        if kernel.then is not None:
            yield "second kernel stage", _array(kernel.then.index), _array(kernel.then.prob), ("j",), at, False


def _kernel_shapes(kernels: dict[When, Kernel], n: int, m: int) -> str:
    for when, kernel in sorted(kernels.items()):
        if not isinstance(kernel, Kernel):
            _fail(f"kernel must return a Kernel, got {type(kernel).__name__}")
        index, prob = np.shape(kernel.index), np.shape(kernel.prob)
        if len(index) != 3 or index[:2] != (n, m) or prob != index:
            _fail(f"kernel index and prob must both have shape ({n}, {m}, K), got {index} and {prob}{when.label}")
        if kernel.then is not None:
            mid, mid_prob = np.shape(kernel.then.index), np.shape(kernel.then.prob)
            if len(mid) != 2 or mid_prob != mid:
                _fail(f"second kernel stage index and prob must both have shape (n_mid, K2), got {mid} and {mid_prob}")
    kernel = kernels[min(kernels)]
    return f"{np.shape(kernel.index)}" + ("" if kernel.then is None else f" then {np.shape(kernel.then.index)}")


def _kernel_dtypes(kernels: dict[When, Kernel]) -> str:
    for what, index, prob, _, at, _ in _stages(kernels):
        if index.dtype != np.int32:
            why = " (a plain int array is int64 in float64 mode, --x64: build indices as jnp.int32)"
            _fail(f"{what} indices{at} must be int32, got {index.dtype}" + (why if index.dtype == np.int64 else ""))
        if not np.issubdtype(prob.dtype, np.floating):
            _fail(f"{what} probabilities{at} must be floating point, got {prob.dtype}")
    return ""


def _probabilities_finite(kernels: dict[When, Kernel]) -> str:
    for what, _, prob, names, at, _ in _stages(kernels):
        _finite(prob, f"{what} probability{at}", (*names, "k"))
    return ""


def _row(names: tuple[str, ...], at: str):
    return lambda i: f" {_where(i, names)}{at}" if i else at


def _probabilities_nonnegative(kernels: dict[When, Kernel]) -> str:
    for what, _, prob, names, at, _ in _stages(kernels):
        _negative(prob, f"{what} row", _row(names, at))
    return ""


def _probabilities_sum(kernels: dict[When, Kernel]) -> str:
    for what, _, prob, names, at, _ in _stages(kernels):
        _sum_to_one(prob, f"{what} row", _row(names, at))
    return ""


class _Unplaced(When):
    """A kernel checked where the caller says (:func:`kernel_error`): no date in the words."""

    @property
    def label(self) -> str:
        return ""


def kernel_error(kernel: Kernel, n_states: int) -> str | None:
    """Why one path's ``kernel`` is no probability kernel over ``n_states`` states, in the
    game checks' words (a probability not finite or negative, a row not summing to one,
    an index out of range), or ``None``."""
    kernels = {_Unplaced(0): kernel}
    try:
        _probabilities_finite(kernels)
        _probabilities_nonnegative(kernels)
        _probabilities_sum(kernels)
        _indices_in_range(kernels, n_states)
    except _Failed as failed:
        return str(failed)
    return None


def _indices_in_range(kernels: dict[When, Kernel], n: int) -> str:
    for when, kernel in sorted(kernels.items()):
        at = when.label
        stages = [("kernel", _array(kernel.index), n, ("s", "a"), "states")]
        if kernel.then is not None:
            n_mid = np.shape(kernel.then.index)[0]
            stages = [
                ("kernel", _array(kernel.index), n_mid, ("s", "a"), "intermediate states"),
                ("second kernel stage", _array(kernel.then.index), n, ("j",), "states"),
            ]
        for what, index, size, names, targets in stages:
            out = (index < 0) | (index >= size)
            if np.any(out):
                bad = tuple(np.argwhere(out)[0])
                _fail(f"{what} index at {_where(bad, (*names, 'k'))}{at} is {index[bad]}; {targets} are 0..{size - 1}")
    return ""


def _rewards(get, horizon: int) -> tuple[tuple[str, Any], ...]:
    out = [("reward at t=0", get("reward")), (f"terminal reward at t={horizon - 1}", get("terminal_reward"))]
    try:
        when, reward = get("reward_at")  # another t or mean field where something showed (_steps_off)
        out.append((f"reward{when.label}", reward))
    except _Skipped:
        pass
    return tuple(out)


def _reward_shapes(get, n: int, m: int, horizon: int) -> str:
    for what, r in _rewards(get, horizon):
        _shape(r, (n, m), what, floating=True)
    return ""


def _rewards_finite(get, horizon: int) -> str:
    for what, r in _rewards(get, horizon):
        _finite(r, what, ("s", "a"))
    return ""


def _observation_shape(obs: jax.Array) -> str:
    first = obs[0]  # (t = 0)
    if len(first.shape) != 1:
        _fail(f"observation at t=0 must be a vector (d,), got shape {tuple(first.shape)}")
    if not jnp.issubdtype(first.dtype, jnp.floating):
        _fail(f"observation at t=0 must be floating point, got {first.dtype}")
    return f"{tuple(first.shape)} {first.dtype}"


def _constant_shape(game: Game, out: dict, broken: dict, horizon: int) -> str:
    if "observation" in out:  # traced with a traced t (stacked over t = 0..T): its shape cannot depend on t
        return f"{tuple(out['observation'].shape[1:])} at t=0..T"
    if "noise" not in out:
        raise _Skipped("no noise path")
    shapes = {}  # it does not trace: find out eagerly whether its shape moves with t
    for t in range(horizon + 1):
        try:
            shapes[t] = tuple(np.shape(game.observation(out["initial_mean_field"], out["noise"], jnp.int32(t))))
        except Exception as err:
            raise _Skipped(f"observation did not run at t={t}: {_first_line(err)}") from None
        if shapes[t] != shapes[0]:
            _fail(f"observation has shape {shapes[0]} at t=0 and {shapes[t]} at t={t}; it must not depend on t")
    return f"{shapes[0]} at t=0..T (evaluated eagerly)"


def _observation_finite(obs: jax.Array) -> str:
    obs = _array(obs)
    bad = np.argwhere(~np.isfinite(obs))  # (row-major: the first t that is not finite comes first)
    if bad.size:
        t = int(bad[0, 0])
        _finite(obs[t], f"observation at t={t}")
    return ""


def _described(game: Game, noise) -> str:
    """``describe_noise`` on the checked path, as the plots and the exports call it (on
    the host): a typo in it passed every check and ended a training's plots."""
    try:
        words = noise_words(game, jax.tree.map(np.asarray, noise))  # (out's arrays: on the host already)
    except GameError as err:
        _fail(str(err).partition(": ")[2])
    return repr(words) if len(words) <= 60 else repr(words[:57] + "...")


def _reads(reads: dict[str, Any]) -> str:
    for what, err in reads.items():
        message = err.get()
        if message is not None:
            detail = message.strip().splitlines()[0].rstrip(".")
            _fail(f"{what} reads out of bounds ({detail}); noise paths must cover t = 0..T")
    return ""


def _aggregates(aggregates: dict[int, dict]) -> str:
    for t, values in aggregates.items():
        for what, value in values.items():
            value = _array(value)
            if value.ndim != 0:
                _fail(f"aggregate {what!r} at t={t} must be a scalar, got shape {value.shape}")
            if np.issubdtype(value.dtype, np.inexact) and np.isinf(value):  # NaN: not defined at t (allowed)
                _fail(f"aggregate {what!r} at t={t} is {value}; an aggregate is finite, or NaN where not defined")
    return ", ".join(repr(k) for k in aggregates[0]) or "none"


def _support_weights(game: Game) -> str:
    support = game.noise_support()
    if support is None:
        return "no finite support"
    weight = _array(support.weight)
    if weight.ndim != 1:
        _fail(f"noise support weights must have shape (P,), got {weight.shape}")
    _finite(weight, "noise support weight")
    # as many weights as paths before their sum, which noise_support.paths_shape checks (11
    # weights of 12 paths were said to sum to 0.90, and that check was skipped)
    leading = {np.shape(leaf)[0] for leaf in jax.tree.leaves(support.noise) if np.ndim(leaf) >= 1}
    if len(leading) == 1 and weight.shape[0] not in leading:
        return f"{weight.shape[0]} weights for {leading.pop()} paths: see noise_support.paths_shape"
    _negative(weight[None], "noise support weight vector", lambda i: "")
    _sum_to_one(weight[None], "noise support weight vector", lambda i: "")
    return f"{weight.shape[0]} paths"


def _support_paths(game: Game, noise) -> str:
    support = game.noise_support()
    if support is None:
        return "no finite support"
    paths = np.shape(support.weight)[0] if np.ndim(support.weight) == 1 else None
    one, many = jax.tree.structure(noise), jax.tree.structure(support.noise)
    if one != many:
        hint = "; lists where arrays belong? give each leaf as an array with a leading path axis"
        _fail(
            f"noise support paths must have the structure of sample_noise's, got {_tree_words(support.noise)} "
            f"and {_tree_words(noise)}" + (hint if many.num_leaves > one.num_leaves else "")
        )
    for a, b in zip(jax.tree.leaves(noise), jax.tree.leaves(support.noise), strict=True):
        expected = (paths, *np.shape(a))
        same_path = np.ndim(b) == np.ndim(a) + 1 and tuple(np.shape(b)[1:]) == tuple(np.shape(a))
        if same_path and paths is not None and np.shape(b)[0] != paths:
            _fail(  # (the paths and the weights disagree in number: "so (7, 4)" did not say which)
                f"noise support has {np.shape(b)[0]} paths but {paths} weights; give one weight per path"
            )
        if tuple(np.shape(b)) != expected:
            _fail(
                f"noise support leaf has shape {np.shape(b)} and sample_noise's {np.shape(a)}: a support leaf is a "
                f"sampled one with a leading axis of paths, so one of the two is wrong ({expected} if sample_noise's "
                "is right)"
            )
    return ""


def _tree_words(tree) -> str:
    """A pytree's structure, or (when that is long: a support given as lists of numbers)
    its type and number of leaves."""
    structure = jax.tree.structure(tree)
    words = str(structure)
    return words if len(words) <= 160 else f"a {type(tree).__name__} of {structure.num_leaves} leaves"


# -- vmap and retracing (check_game only) ---------------------------------------------------


def _expensive_checks(run: _Runner, game: Game, key, out: dict, horizon: int) -> None:
    traces = [0]

    @eqx.filter_jit
    def probe(g, noise, mu):
        traces[0] += 1  # a Python side effect: runs once per trace
        return {k: f() for k, f in _step_probes(g, noise, mu, horizon).items()}

    noise0, mu0 = jax.tree.map(jnp.asarray, (out["noise"], out["initial_mean_field"]))
    mix = 0.5 * (mu0 + jnp.roll(mu0, 1))  # another mean field, of the same type
    keys = jnp.stack([key, jax.random.fold_in(key, 1)])
    try:
        batched = jax.device_get(jax.jit(lambda ks, extra: _batched(game, ks, extra, horizon))(keys, mix))
    except Exception as err:
        batched = err
    calls: list[tuple[str, Any]] = []

    def call(label: str, g, noise, mu):
        before = traces[0]
        result = jax.device_get(probe(g, noise, mu))
        calls.append((label, traces[0] - before))
        return result

    single: dict[str, Any] = {}

    # each comparison: (batched outputs, noise path 0, mu_0, a second mean field, how the
    # game is called alone, the single calls' cache shared by the two comparisons)
    def compare_paths(batched, noise0, mu0, mix, call, single) -> None:
        noise, mu, over_paths, _ = batched
        _same(jax.tree.map(lambda x: x[0], (noise, mu)), (noise0, mu0), "noise path 0 and mu_0")
        single[0] = call("first call", game, noise0, mu0)
        path1, mu1 = jax.tree.map(lambda x: jnp.asarray(x[1]), (noise, mu))
        single[1] = call("the game built again, new noise and mean field", rebuilt(game), path1, mu1)
        for i in (0, 1):
            _same(jax.tree.map(lambda x, i=i: x[i], over_paths), single[i], f"path {i}")

    def compare_mean_fields(batched, noise0, mu0, mix, call, single) -> None:
        over_mus = batched[3]
        mixed = call("a new mean field", game, noise0, mix)
        first = single[0] if 0 in single else call("first call", game, noise0, mu0)
        _same(jax.tree.map(lambda x: x[0], over_mus), first, "mu 0")
        _same(jax.tree.map(lambda x: x[1], over_mus), mixed, "mu 1")

    def vmapped(compare) -> str:
        if isinstance(batched, Exception):
            _fail(f"does not trace under jax.vmap: {_first_line(batched)}")
        try:
            compare(batched, noise0, mu0, mix, call, single)
        except _Failed as err:
            if not agrees_in_float64(compare):
                raise
            return (
                f"the same in float64; in {np.asarray(mu0).dtype} they differ by rounding "
                f"(amplified by the game's conditioning): {err}"
            )
        return ""

    def agrees_in_float64(compare) -> bool:
        """Whether ``compare`` passes with everything computed again in float64: a
        float32 difference that vanishes there is rounding (a mean taken in another
        order moves a price by a few units of the precision; on a fine grid that moves
        the interpolation weights by ~1e-3), not a game that behaves differently under
        ``jax.vmap``."""
        if jax.config.jax_enable_x64:
            return False  # already float64: the difference stands
        try:
            with jax.enable_x64(True):
                noise64, mu64 = jax.jit(lambda k: _start(game, k))(key)
                if mu64.dtype != jnp.float64:
                    return False  # the game does not follow the precision: nothing to learn
                mix64 = 0.5 * (mu64 + jnp.roll(mu64, 1))
                batched64 = jax.device_get(jax.jit(lambda ks, extra: _batched(game, ks, extra, horizon))(keys, mix64))
                compare(batched64, noise64, mu64, mix64, quiet, {})
        except Exception:  # a failed comparison, or a game that does not run in float64
            return False
        return True

    def quiet(label: str, g, noise, mu):  # call() without counting traces (the float64 recheck)
        return jax.device_get(probe(g, noise, mu))

    def noise_paths() -> str:
        return vmapped(compare_paths)

    def mean_fields() -> str:
        return vmapped(compare_mean_fields)

    def no_retrace() -> str:
        if not calls:
            raise _Skipped("the game was not called")
        again = [label for label, count in calls[1:] if count]
        if again:
            why = _static_difference(game, rebuilt(game)) if any("built again" in a for a in again) else ""
            _fail(f"a jitted function of the game traced again for: {', '.join(again)}{why}")
        return f"{len(calls)} calls, traced once"

    run("vmap.noise_paths", noise_paths)
    run("vmap.mean_fields", mean_fields)
    run("jit.no_retrace", no_retrace)
    run("jit.pure", lambda: _pure(game, noise0, mu0, horizon))
    run("noise.shared_prefix", lambda: _shared_prefix(game, key, horizon))
    run("noise.sampled_as_supported", lambda: _sampled_as_supported(game, key))


def _pure(game: Game, noise, mu, horizon: int) -> str:
    """``jit.pure``: the game's functions give the same values in a new program, and in
    a program that called each of them once before (values dropped). A function that
    reads Python state its own calls change (a module-level list that grows with every
    trace, a counter) gives values that depend on how often and in which order the tools
    happened to trace it: the exploitability such a game gives is no game's (below zero,
    or an information-consistent figure above the per-path one)."""

    def values(extra: bool):
        @eqx.filter_jit
        def fn(g, noise, mu):
            if extra:  # one call of each function, its value dropped: only side effects stay
                t = jnp.int32(0)
                g.initial_mean_field(noise)
                g.kernel(mu, noise, t)
                g.reward(mu, mu, noise, t)
                g.observation(mu, noise, t)
            return {k: f() for k, f in _step_probes(g, noise, mu, horizon).items()}

        return jax.device_get(fn(game, noise, mu))

    first = values(False)
    try:
        _same(values(False), first, "", ("in a second program", "in the first"))
        _same(values(True), first, "", ("after one call of each function", "in the first program"))
    except _Failed as err:
        _fail(
            f"the game's functions give other values for the same inputs ({err}): they read "
            "Python state that changes between traces (a module-level list or counter, say); keep every input in "
            "the game's fields and the arguments"
        )
    return ""


def _noise_rows(tree, count: int) -> np.ndarray:
    """Each noise path as one row of its leaves' values (rounded: the support and the draws
    may compute the same number apart; ``+ 0.0`` makes -0 and 0 one value)."""
    leaves = [np.asarray(leaf, dtype=np.float64).reshape(count, -1) for leaf in jax.tree.leaves(tree)]
    return np.round(np.concatenate(leaves, axis=1), 6) + 0.0


def _sampled_as_supported(game: Game, key) -> str:
    """``noise.sampled_as_supported``: where the support is finite, :data:`SAMPLE_DRAWS`
    draws of ``sample_noise`` are paths of the support, each drawn about as often as its
    weight says (within five standard errors): training draws paths by the weights,
    sampled evaluation and the agents by ``sample_noise``. A path listed more than once
    counts with the sum of its weights; paths too light to be expected
    :data:`_POOLED_BELOW` times in the draws are compared as one pool (path by path, one
    of tens of thousands drawn three times would fail by chance)."""
    support = game.noise_support()
    if support is None:
        return "no finite support"
    weight = np.asarray(support.weight, dtype=np.float64)
    paths = weight.shape[0]
    drawn = jax.device_get(jax.jit(jax.vmap(game.sample_noise))(jax.random.split(_key(key), SAMPLE_DRAWS)))
    listed = [row.tobytes() for row in _noise_rows(jax.device_get(support.noise), paths)]
    first = {}
    for i, row in enumerate(listed):
        first.setdefault(row, i)  # identical paths: one group, named by its first listing
    group = np.array([first[row] for row in listed])
    hits = np.array([first.get(row.tobytes(), -1) for row in _noise_rows(drawn, SAMPLE_DRAWS)])
    if (hits < 0).any():
        _fail(
            f"sample_noise drew a path that noise_support does not list (draw {int(np.argmax(hits < 0))} of "
            f"{SAMPLE_DRAWS}); the support must list every path sample_noise can draw"
        )
    group_weight = np.bincount(group, weights=weight, minlength=paths)
    freq = np.bincount(hits, minlength=paths) / SAMPLE_DRAWS
    impossible = np.flatnonzero((group_weight == 0) & (freq > 0))
    if impossible.size:
        _fail(
            f"sample_noise drew noise path {impossible[0]}, whose support weight is 0; the weights must be "
            "sample_noise's probabilities"
        )
    heavy = group_weight * SAMPLE_DRAWS >= _POOLED_BELOW
    names = [f"noise path {i}" for i in np.flatnonzero(heavy)]
    w, f = list(group_weight[heavy]), list(freq[heavy])
    light = np.flatnonzero(~heavy & (group_weight > 0))
    if light.size:  # consecutive pools expected about _POOL_SIZE times each (the last one merged)
        pools = (np.cumsum(group_weight[light]) * SAMPLE_DRAWS // _POOL_SIZE).astype(int)
        pools = np.minimum(pools, max(int(pools.max()) - 1, 0))  # the last, partial pool joins the one before
        for pool in np.unique(pools):
            members = light[pools == pool]
            names.append(
                f"noise paths {members[0]}..{members[-1]} (each below {_POOLED_BELOW} expected draws) together"
            )
            w.append(group_weight[members].sum())
            f.append(freq[members].sum())
    w, f = np.asarray(w), np.asarray(f)
    excess = np.abs(f - w) - (5.0 * np.sqrt(w * (1.0 - w) / SAMPLE_DRAWS) + 2.0 / SAMPLE_DRAWS)
    worst = int(np.argmax(excess))
    if excess[worst] > 0.0:
        _fail(
            f"{names[worst]} has support weight {w[worst]:.4g} but sample_noise drew it in "
            f"{f[worst]:.4g} of {SAMPLE_DRAWS} draws; the weights must be sample_noise's probabilities"
        )
    return f"{SAMPLE_DRAWS} draws of sample_noise match the {paths} support weights"


# support paths expected fewer times than this in SAMPLE_DRAWS draws are compared in pools
# of consecutive paths expected about _POOL_SIZE times each
_POOLED_BELOW = 5
_POOL_SIZE = 100


def _shared_prefix(game: Game, key, horizon: int) -> str:
    """``noise.shared_prefix`` (module docstring). Each path whose group has an earlier
    path is compared with the group's first path, one pair at a time in the program (all
    paths at once held every path's kernels on the host: 6.7 GB for an 801-state beach
    bar, and a 2003-state one was killed); at most :data:`SUPPORT_WORK` pairs x
    ``t_b`` x n x m of them (at least :data:`PREFIX_PAIRS`), evenly spaced, the detail
    says how many."""
    declared = game.shared_until
    if isinstance(declared, bool) or not isinstance(declared, int | np.integer) or declared < 0:
        _fail(f"shared_until must be an integer >= 0, got {declared!r}")
    until = min(int(declared), horizon)
    if until == 0:
        return "none declared"
    support = game.noise_support()
    noise = jax.vmap(game.sample_noise)(jax.random.split(key, 64)) if support is None else support.noise
    groups, count = prefix_groups(game, noise)
    paths = groups.shape[0]
    if count == paths:
        return f"no two of {paths} paths share a prefix key"
    rep = np.unique(groups, return_index=True)[1][groups]  # each path's group's first path
    later = np.flatnonzero(rep != np.arange(paths))  # the paths compared with their group's first
    most = max(PREFIX_PAIRS, SUPPORT_WORK // (until * game.n_states * game.n_actions))
    chosen = later if later.size <= most else later[np.linspace(0, later.size - 1, most).round().astype(int)]

    def start(noise):
        mu0 = game.initial_mean_field(noise)
        uniform = jnp.full_like(mu0, 1.0 / mu0.shape[0])
        ts = jnp.arange(until, dtype=jnp.int32)
        at = {
            f"{what} at mu {name}": jax.vmap(lambda t, f=f, mu=mu: f(mu, noise, t))(ts)
            for name, mu in (("mu_0", mu0), ("uniform", uniform))
            for what, f in (("kernel", game.kernel), ("observation", game.observation))
        }
        return {"initial mean field": mu0[None], **at}

    def differs(noise, pair):  # per output and leaf, (t,): where the path's value is not its group's first path's
        # (behind a barrier: a part that is the same on every path, such as a kernel's second stage,
        # is a constant, and XLA's folding of its comparison took seconds at 20003 states)
        path, first = jax.lax.optimization_barrier(tuple(start(jax.tree.map(lambda x, j=j: x[j], noise)) for j in pair))

        def off(a, b):  # floats within VMAP_RTOL, integers (a kernel's indices) exactly
            if jnp.issubdtype(a.dtype, jnp.inexact):
                close = jnp.isclose(a, b, rtol=VMAP_RTOL, atol=1e-6) | (a == b)
            else:  # (within a relative tolerance, state 10004 passed for 10005)
                close = a == b
            return ~close.reshape(close.shape[0], -1).all(axis=-1)

        return {
            what: [off(a, b) for a, b in zip(jax.tree.leaves(path[what]), jax.tree.leaves(first[what]), strict=True)]
            for what in path
        }

    pairs = jnp.stack([jnp.asarray(chosen, jnp.int32), jnp.asarray(rep[chosen], jnp.int32)], axis=1)
    out = jax.device_get(jax.jit(lambda z, p: jax.lax.map(lambda pair: differs(z, pair), p))(noise, pairs))
    for what, leaves in out.items():
        for bad in leaves:
            found = np.argwhere(np.asarray(bad))
            if found.size:
                k, t = (int(x) for x in found[0])
                when = "" if what == "initial mean field" else f" at t = {t}"
                _fail(
                    f"paths {rep[chosen[k]]} and {chosen[k]} have the same prefix_key but different {what}{when}; "
                    f"shared_until = {until} promises they agree before it"
                )
    said = f"{count} groups of {paths} paths agree before t = {until}"
    if chosen.size < later.size:
        said += (
            f" ({chosen.size} of the {later.size} paths after their group's first compared with it, evenly spaced: "
            "the checks' budget)"
        )
    return said


def _batched(game: Game, keys, mu_extra, horizon: int):
    noise, mu = jax.vmap(lambda k: _start(game, k))(keys)
    over_paths = jax.vmap(lambda z, u: {k: f() for k, f in _step_probes(game, z, u, horizon).items()})(noise, mu)
    noise0 = jax.tree.map(lambda x: x[0], noise)
    mus = jnp.stack([mu[0], mu_extra.astype(mu.dtype)])
    over_mus = jax.vmap(lambda u: {k: f() for k, f in _step_probes(game, noise0, u, horizon).items()})(mus)
    return noise, mu, over_paths, over_mus


def _same(batched, single, what: str, sides: tuple[str, str] = ("under vmap", "alone")) -> None:
    """Batched values equal to single ones (floats within :data:`VMAP_RTOL`; kernels as
    distributions, :func:`_same_kernel`)."""
    tree_b, tree_s = jax.tree.structure(batched), jax.tree.structure(single)
    if tree_b != tree_s:
        _fail(f"{what}: the outputs {sides[0]} and {sides[1]} differ in structure: {tree_b} and {tree_s}")
    is_kernel = lambda x: isinstance(x, Kernel)  # noqa: E731
    flat_b = jax.tree_util.tree_flatten_with_path(batched, is_leaf=is_kernel)[0]
    flat_s = jax.tree_util.tree_leaves(single, is_leaf=is_kernel)
    for (path, b), s in zip(flat_b, flat_s, strict=True):
        where = jax.tree_util.keystr(path)
        if is_kernel(b) and _same_kernel(b, s, f"{what}{where}", sides):
            continue
        for (sub, b_leaf), s_leaf in zip(jax.tree_util.tree_leaves_with_path(b), jax.tree.leaves(s), strict=True):
            _same_leaf(np.asarray(b_leaf), np.asarray(s_leaf), f"{what}{where}{jax.tree_util.keystr(sub)}", sides)


# test functions a kernel's distributions are compared with (_same_kernel)
_KERNEL_PROBES = 4


def _same_kernel(b: Kernel, s: Kernel, where: str, sides: tuple[str, str] = ("under vmap", "alone")) -> bool:
    """Whether two kernels of the same structure are the same distributions (``False``:
    compare them entry by entry instead, as when an index is out of range or a
    probability not finite: those checks say what is wrong). The successor lists may
    differ where a computed next state lies within a rounding of a grid point: one
    program brackets it by points ``i, i + 1`` with weight ~1 on ``i + 1``, the other by
    ``i + 1, i + 2`` with weight ~1 on ``i + 1`` (the macro economy on a fine grid). So
    the kernels are compared through what they do, ``E[v(s') | s, a]``
    (:meth:`Kernel.expect`) for a few random test functions ``v`` in ``[0, 1)`` within
    :data:`VMAP_RTOL`: kernels apart by a mass
    ``d`` moved between two successors differ by ``d |v_i - v_j|`` in each."""
    # (index, prob) of both kernels by stage, each stage's rank and the range of its
    # indices (the first stage points into the intermediate states when there are two)
    n_mid = None if b.then is None else np.shape(b.then.index)[0]
    stages = [(b.index, b.prob, s.index, s.prob, 3, n_mid)]
    if b.then is not None:
        stages.append((b.then.index, b.then.prob, s.then.index, s.then.prob, 2, None))
    for index_b, prob_b, index_s, prob_s, rank, size in stages:
        index_b, index_s = np.asarray(index_b), np.asarray(index_s)
        if not index_b.shape == index_s.shape == np.shape(prob_b) == np.shape(prob_s) or index_b.ndim != rank:
            return False
        if not (np.all(np.isfinite(prob_b)) and np.all(np.isfinite(prob_s))):
            return False
        if any(x.size and (x.min() < 0 or (size is not None and x.max() >= size)) for x in (index_b, index_s)):
            return False
    last = np.asarray(stages[-1][0]), np.asarray(stages[-1][2])
    states = 1 + int(max(x.max(initial=0) for x in last))
    v = jnp.asarray(np.random.default_rng(0).random((states, _KERNEL_PROBES)), dtype=float)
    eb, es = np.asarray(b.expect(v)), np.asarray(s.expect(v))
    off = np.abs(eb - es) > VMAP_RTOL
    if off.any():
        at = tuple(int(x) for x in np.argwhere(off)[0])  # (state, action, test function)
        _fail(
            f"{where}: the next-state distribution of state {at[0]}, action {at[1]} differs: "
            f"E[v(s')] for a random v is {eb[at]:.6g} {sides[0]}, {es[at]:.6g} {sides[1]}"
        )
    return True


def _same_leaf(b: np.ndarray, s: np.ndarray, where: str, sides: tuple[str, str] = ("under vmap", "alone")) -> None:
    """One batched array equal to its single counterpart (floats within :data:`VMAP_RTOL`)."""
    if b.shape != s.shape:
        _fail(f"{where}: shape {b.shape} {sides[0]}, {s.shape} {sides[1]}")
    if np.issubdtype(b.dtype, np.inexact):
        scale = float(np.max(np.abs(s[np.isfinite(s)]), initial=0.0))  # (an aggregate may be NaN throughout)
        close = np.isclose(b, s, rtol=VMAP_RTOL, atol=VMAP_RTOL * max(1.0, scale))
        close |= np.isnan(b) & np.isnan(s)
    else:
        close = b == s
    if not np.all(close):
        bad = tuple(int(i) for i in np.argwhere(~close)[0])  # (plain ints: "[np.int64(0), ...]" was printed)
        at = f"[{', '.join(map(str, bad))}]" if bad else ""
        _fail(f"{where}{at}: {b[bad]} {sides[0]}, {s[bad]} {sides[1]}")


def rebuilt(game: Game) -> Game:
    """The game built again from its declared parameters (defaults and derived fields
    made anew), or itself when it cannot be."""
    values = {name: getattr(game, name) for name in params.fields_of(type(game))}
    try:
        return type(game)(**values)
    except Exception:
        return game


def _static_difference(a: Game, b: Game) -> str:
    """Which static fields of two games built alike are not equal (they key the
    compilation cache)."""
    differ = []
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name, None), getattr(b, field.name, None)
        if eqx.is_array(x) or eqx.is_array(y):
            continue
        try:
            same = bool(x == y) and hash(x) == hash(y)
        except Exception:
            same = False
        if not same:
            differ.append(field.name)
    if not differ:
        return ""
    return f" (static fields not equal in two instances built alike: {', '.join(differ)}; make them hashable values)"
