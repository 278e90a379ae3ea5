"""Moments and impulse responses of a policy's population, exactly (``docs/economists.md``).

A game declares its moments (:meth:`~mfax.games.base.Game.moment_specs`: capital,
inequality, savings rates for the macro game); here they are computed along noise paths
by the exact push-forward under a policy, never from samples of agents:

* :func:`path_moments`: every moment at every ``t`` on every path of a
  :class:`~mfax.dynamics.noise.NoiseBatch`, with the paths' weights, so the expectation
  over the noise is exact on an enumerated support (probability weights) and a Monte
  Carlo mean on sampled paths (weights ``1/P``): :meth:`Moments.expected`, and
  :meth:`Moments.quantile` for bands over paths;
* :func:`impulse_response`: the moments along a shocked noise path against the path
  without shocks (the game's :meth:`~mfax.games.base.Game.noise_from_innovations`),
  both pushed forward under the same policy, and their deviation.

Nothing here depends on which game it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import Trajectory, rollout_batch
from mfax.errors import GameError, advice, warn
from mfax.games.base import Game, MomentSpec, aggregate_paths, moment_paths
from mfax.games.registry import game_class, game_names
from mfax.policies.base import Policy

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The quantile levels over noise paths that reports and plots show."""
CHUNK_BYTES = 256 * 2**20
"""The most memory the recorded policy of one chunk of paths may take (rollouts record
``pi_t`` for every path, state and action: ``P T n m`` numbers)."""


def chunk_size(game: Game, num_paths: int, budget: int = CHUNK_BYTES) -> int:
    """How many paths one rollout records at a time: the recorded policy
    (``T n m`` float32 numbers a path) within ``budget`` bytes, at least one path."""
    per_path = 4 * game.horizon * game.n_states * game.n_actions
    return max(1, min(num_paths, budget // per_path))


def rollout_chunks(
    game: Game, policy: Policy, noise, num_paths: int, chunk: int
) -> Iterator[tuple[int, object, Trajectory]]:
    """:func:`~mfax.dynamics.pushforward.rollout_batch` over ``num_paths`` paths of the
    batched ``noise``, ``chunk`` paths at a time (the last chunk padded with repeats of its
    first path, so every chunk runs one compiled program): ``(first path, the chunk's
    trajectory on the host, padding dropped)``."""
    for start in range(0, num_paths, chunk):
        stop = min(start + chunk, num_paths)
        pick = np.concatenate([np.arange(start, stop), np.full(chunk - (stop - start), start)])
        sub = jax.tree.map(lambda x, pick=pick: x[pick], noise)
        traj = rollout_batch(game, policy, sub)
        yield start, sub, jax.tree.map(lambda x, k=stop - start: np.asarray(x[:k]), jax.device_get(traj))


@dataclasses.dataclass(frozen=True)
class Moments:
    """A game's moments along ``P`` noise paths.

    Attributes:
        specs: the game's :meth:`~mfax.games.base.Game.moment_specs`.
        values: by name, per path: ``(P, T+1, ...)`` (moments of the mean field,
            ``t = 0..T``) or ``(P, T, ...)`` (moments of the decisions, ``t = 0..T-1``).
        weight: ``(P,)`` the paths' weights, summing to one.
        exact: whether the paths are the whole noise support (expectations exact).
    """

    specs: dict[str, MomentSpec]
    values: dict[str, np.ndarray]
    weight: np.ndarray
    exact: bool

    @property
    def num_paths(self) -> int:
        return int(self.weight.shape[0])

    def times(self, name: str) -> np.ndarray:
        """The times ``t`` of moment ``name``'s second axis."""
        return np.arange(self.values[name].shape[1])

    def expected(self) -> dict[str, np.ndarray]:
        """The expectation over the noise paths (weighted mean) of every moment, by name:
        ``(T+1, ...)`` or ``(T, ...)``."""
        return {name: np.tensordot(self.weight, v, axes=1) for name, v in self.values.items()}

    def quantile(self, q: float) -> dict[str, np.ndarray]:
        """The ``q``-quantile over the paths of every moment at every ``t`` (and entry):
        the smallest per-path value whose paths, with their weights, hold at least ``q``
        of the probability (on sampled paths: the order statistic ``ceil(q P)``)."""
        if isinstance(q, bool) or not isinstance(q, int | float | np.integer | np.floating) or not 0.0 <= q <= 1.0:
            raise GameError(f"a quantile level must be a number in [0, 1], got {q!r}")
        return {name: weighted_quantile(v, self.weight, q) for name, v in self.values.items()}

    def scalar_names(self) -> list[str]:
        """The moments that are one number at each ``t`` (no axes)."""
        return [name for name, spec in self.specs.items() if not spec.axes]

    def as_dict(self, quantiles: tuple[float, ...] = QUANTILES) -> dict:
        """A JSON-ready record (NaN as ``None``; every digit of the precision the moments
        were computed in: 9 significant digits for float32, 17 for float64): ``paths``,
        ``exact``, ``weight``; per moment its ``label``, ``times``, ``axes`` (coordinates
        of an array-valued one) and ``expected`` value at every ``t``; for scalar moments
        also ``quantiles`` over the paths (``{"0.05": [...], ...}``) and ``per_path``
        (``P`` lists over ``t``). Array-valued moments per path are in ``mfax export``."""
        expected = self.expected()
        levels = {q: self.quantile(q) for q in quantiles}
        # (7 digits cut a float64 run's moments, and the paths' weights, to 1e-7)
        digits = max(_digits(v) for v in self.values.values())
        moments = {}
        for name, spec in self.specs.items():
            entry = {
                "label": spec.label,
                "times": "0..T-1" if spec.decision else "0..T",
                "deviation": spec.deviation,
                "axes": {axis: jsonable(coords, digits) for axis, coords in spec.axes},
                "expected": jsonable(expected[name], digits),
            }
            if not spec.axes:
                entry["quantiles"] = {f"{q:g}": jsonable(levels[q][name], digits) for q in quantiles}
                entry["per_path"] = jsonable(self.values[name], digits)
            moments[name] = entry
        return {
            "paths": self.num_paths,
            "exact": self.exact,
            "weight": jsonable(self.weight, _digits(self.weight)),
            "moments": moments,
        }


def _digits(array) -> int:
    """The significant digits that write every value of ``array``'s precision exactly: 9
    for float32 (or narrower), 17 for float64."""
    return 9 if np.asarray(array).dtype.itemsize <= 4 else 17


def jsonable(values, digits: int = 7) -> list | float | None:
    """An array as nested lists of floats for JSON: ``digits`` significant digits (17:
    every float64 exactly), NaN and infinities as ``None``."""
    array = np.asarray(values, dtype=np.float64)
    flat = [float(f"{x:.{digits}g}") if math.isfinite(x) else None for x in array.ravel().tolist()]
    return np.array(flat, dtype=object).reshape(array.shape).tolist()


def weighted_quantile(values: np.ndarray, weight: np.ndarray, q: float) -> np.ndarray:
    """The ``q``-quantile over the first axis (paths) of ``values``: the smallest value
    whose paths, with their ``weight``, hold at least ``q`` of the probability (equal
    weights: the order statistic ``ceil(q P)``, no interpolation)."""
    order = np.argsort(values, axis=0, kind="stable")
    ranked = np.take_along_axis(values, order, axis=0)
    held = np.cumsum(weight[order], axis=0)
    # first rank where the cumulative weight reaches q (a little slack for rounding)
    first = np.argmax(held >= q * held[-1] - 1e-12, axis=0)
    return np.take_along_axis(ranked, first[None], axis=0)[0]


def _no_moments(game: Game) -> GameError:
    """The one line for a game that declares no moments, naming the packaged ones that do."""
    having = [n for n in game_names() if game_class(n).moment_specs is not Game.moment_specs]
    return GameError(
        f"game {game.name!r} declares no moments (Game.moment_specs); packaged games that do: "
        + (", ".join(having) or "none")
    )


def path_moments(game: Game, policy: Policy, batch: NoiseBatch, chunk: int | None = None) -> Moments:
    """Every moment ``game`` declares, at every ``t``, on every path of ``batch``, under
    ``policy`` (exact push-forward), computed ``chunk`` paths at a time (default: as many
    as :func:`chunk_size` allows). A game that declares none is a :class:`GameError`."""
    specs = game.moment_specs()
    if not specs:
        raise _no_moments(game)
    chunk = chunk_size(game, batch.num_paths) if chunk is None else chunk
    parts: dict[str, list[np.ndarray]] = {name: [] for name in specs}
    for _, sub, traj in rollout_chunks(game, policy, batch.noise, batch.num_paths, chunk):
        k = traj.mu.shape[0]
        sub = jax.tree.map(lambda x, k=k: x[:k], sub)
        found = jax.device_get(moment_paths(game, jnp.asarray(traj.mu), jnp.asarray(traj.probs), sub))
        for name in specs:
            parts[name].append(np.asarray(found[name]))
    values = {name: np.concatenate(v) for name, v in parts.items()}
    weight = np.asarray(batch.weight, dtype=np.float64)  # (float32 thirds summed to 1 + 3e-8)
    return Moments(specs, values, weight / weight.sum(), batch.exact)


def aggregate_series(game: Game, mu: np.ndarray, noise) -> dict[str, np.ndarray]:
    """:func:`~mfax.games.base.aggregate_paths` on the host: ``(P, T+1)`` per aggregate."""
    return {k: np.asarray(v) for k, v in jax.device_get(aggregate_paths(game, jnp.asarray(mu), noise)).items()}


# -- impulse responses ---------------------------------------------------------------------
def shock_innovations(horizon: int, size: float, at: int) -> np.ndarray:
    """Standardised innovations ``(T+1,)``: ``size`` at ``t = at``, zero elsewhere."""
    if isinstance(at, bool) or not (isinstance(at, int | np.integer) and 0 <= at <= horizon):
        # (True passed as 1 and set every date: numpy reads a bool index as a mask)
        raise GameError(f"the shock's date must be an integer in 0..{horizon} (the horizon T), got {at!r}")
    number = isinstance(size, int | float | np.integer | np.floating) and not isinstance(size, bool)
    if not (number and math.isfinite(size)):
        raise GameError(f"the shock's size must be a finite number of standard deviations, got {size!r}")
    innovations = np.zeros(horizon + 1)
    innovations[at] = size
    return innovations


# a shocked moment within this many units of the precision of its baseline is the baseline
IRF_ROUNDING_UNITS = 64


@dataclasses.dataclass(frozen=True)
class ImpulseResponse:
    """The moments along a shocked noise path and along the path without shocks, both
    pushed forward exactly under one policy.

    Attributes:
        specs: the game's moment specs.
        innovations: ``(T+1,)`` the standardised innovations of the shocked path.
        baseline: by name, the moment along the path without shocks (all innovations
            zero): ``(T+1, ...)`` or ``(T, ...)``.
        shocked: the same along the shocked path.
        noise: ``(baseline path, shocked path)``, the game's noise pytrees.
    """

    specs: dict[str, MomentSpec]
    innovations: np.ndarray
    baseline: dict[str, np.ndarray]
    shocked: dict[str, np.ndarray]
    noise: tuple

    def deviation(self) -> dict[str, np.ndarray]:
        """The response of every moment, as its spec says: ``"percent"``,
        ``100 (shocked / baseline - 1)``; ``"points"``, ``100 (shocked - baseline)``. A
        difference within :data:`IRF_ROUNDING_UNITS` units of the precision (float64:
        :func:`impulse_response`) of the larger of the two is rounding (the two paths'
        sums over the states taken in another order) and is 0: the macro economy's labour
        supply, which no shock moves, showed -2.4e-5% when computed in float32."""
        out = {}
        for name, spec in self.specs.items():
            base, shock = self.baseline[name], self.shocked[name]
            if np.issubdtype(np.asarray(base).dtype, np.floating):
                eps = float(np.finfo(np.asarray(base).dtype).eps)
                with np.errstate(invalid="ignore"):
                    rounding = np.abs(shock - base) <= IRF_ROUNDING_UNITS * eps * np.maximum(
                        np.abs(base), np.abs(shock)
                    )
                shock = np.where(rounding, base, shock)
            if spec.deviation == "percent":
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[name] = np.where(base != 0, 100.0 * (shock / np.where(base != 0, base, 1.0) - 1.0), np.nan)
            else:
                out[name] = 100.0 * (shock - base)
        return out


def _shock_words(noise) -> str:
    """Where the shocked noise path is largest, for the message of a response that
    overflowed (an explosive shock process, say ``z_persistence > 1``, shows as a huge
    entry)."""
    leaves = [
        (jax.tree_util.keystr(k).lstrip("."), np.asarray(v).reshape(-1))
        for k, v in jax.tree_util.tree_flatten_with_path(noise)[0]
    ]
    leaves = [(name, v) for name, v in leaves if v.size]
    if not leaves:
        return "the shock is too large for the game's numbers"
    name, v = max(leaves, key=lambda leaf: float(np.max(np.abs(leaf[1]))))
    at = int(np.argmax(np.abs(v)))
    return f"the shocked path's noise reaches {name} = {v[at]:.4g} at index {at}: too large for the game's numbers"


def impulse_response(game: Game, policy: Policy, innovations) -> ImpulseResponse:
    """The response of ``game``'s moments under ``policy`` to the noise path the
    standardised ``innovations`` ``(T+1,)`` drive, against the path they drive when all
    are zero (:meth:`~mfax.games.base.Game.noise_from_innovations`): both paths pushed
    forward exactly by the same compiled program, in float64 whatever the precision of
    the policy (a float32 one's parameters widened, exactly). A response is the
    difference of two nearly equal paths: in float32 a moment's rounding, some 1e-7 of its
    level, would show as a response of either sign, and a real response that small (a
    shock of 1e-4 standard deviations in the macro economy) as none."""
    try:
        with jax.enable_x64(True):
            return _impulse_response(game, _widened(policy), innovations)
    except GameError:
        raise
    except (TypeError, ValueError) as err:  # a game that keeps float32 (a plug-in's own float32 zeros, say)
        precision = jnp.result_type(float).name
        if precision == "float64":
            raise
        why = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        warn(
            f"game {game.name!r} does not run in float64 ({why}); its impulse response is computed in {precision}, "
            f"where a difference within {IRF_ROUNDING_UNITS} units of the precision of a level (some 1e-5 of it) is "
            "shown as 0: a small shock's response may not show"
        )
        return _impulse_response(game, policy, innovations)


def _widened(policy: Policy) -> Policy:
    """``policy`` with its floating-point arrays in float64 (exact)."""
    return jax.tree.map(
        lambda x: (
            x.astype(jnp.float64)
            if isinstance(x, jax.Array | np.ndarray) and jnp.issubdtype(x.dtype, jnp.floating)
            else x
        ),
        policy,
    )


def _impulse_response(game: Game, policy: Policy, innovations) -> ImpulseResponse:
    specs = game.moment_specs()
    if not specs:
        raise _no_moments(game)
    try:
        innovations = np.asarray(innovations, dtype=np.float64)
    except (TypeError, ValueError):
        raise GameError(f"innovations must be T + 1 = {game.horizon + 1} numbers, got {innovations!r:.80}") from None
    if innovations.shape != (game.horizon + 1,):
        raise GameError(f"innovations must have T + 1 = {game.horizon + 1} entries, got shape {innovations.shape}")
    if not np.all(np.isfinite(innovations)):
        first = int(np.flatnonzero(~np.isfinite(innovations))[0])
        raise GameError(f"innovations must be finite numbers; entry {first} is {innovations[first]}")
    paths = jnp.asarray(np.stack([np.zeros_like(innovations), innovations]), dtype=float)
    if game.noise_from_innovations(paths[0]) is None:
        raise GameError(f"game {game.name!r} declares no shock process (Game.noise_from_innovations)")
    noise = jax.vmap(game.noise_from_innovations)(paths)
    weight = jnp.full(2, 0.5)
    # one path at a time: the two paths run the same program, so a zero shock gives the
    # baseline bit for bit (a batch of two may sum in another order per path)
    moments = path_moments(game, policy, NoiseBatch(noise, weight, exact=False), chunk=1)
    baseline = {k: v[0] for k, v in moments.values.items()}
    shocked = {k: v[1] for k, v in moments.values.items()}
    both = jax.device_get(noise)
    pair = (jax.tree.map(lambda x: np.asarray(x[0]), both), jax.tree.map(lambda x: np.asarray(x[1]), both))
    for name, spec in specs.items():  # a figure the baseline has and the shocked path loses: an overflow
        broken = np.isfinite(baseline[name]) & ~np.isfinite(shocked[name])
        if broken.any():
            t = int(np.argwhere(broken)[0][0])
            smaller = advice("give a smaller --shock or --innovations", "give a smaller shock")
            raise GameError(
                f"the response is not finite ({_shock_words(pair[1])}; the shocked path's {spec.label} from "
                f"t = {t}); {smaller}"
            )
    return ImpulseResponse(specs, innovations, baseline, shocked, pair)
