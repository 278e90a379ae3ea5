"""Batches of common-noise paths: sampled (Monte Carlo) or enumerated (exact), and the
per-iteration draws of a training step (counted over a small finite support, packed)."""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from mfax import params
from mfax.errors import GameError, advice
from mfax.games.base import Game, Noise, NoiseSupport, common_noise_advice

NoiseMode = Literal["exact", "sample", "auto"]
NOISE_MODES = ("exact", "sample", "auto")


class NoiseBatch(NamedTuple):
    """``P`` noise paths with the probability weight of each.

    Attributes:
        noise: the game's noise pytree with a leading axis ``P``.
        weight: ``(P,)`` weights summing to one (``1/P`` when sampled).
        exact: ``True`` when the batch is the whole finite support (expectations over
            it are exact), ``False`` for Monte Carlo draws.
    """

    noise: Noise
    weight: Float[Array, " P"]
    exact: bool

    @property
    def num_paths(self) -> int:
        return int(self.weight.shape[0])


def check_noise(game: Game, batch: NoiseBatch) -> None:
    """Refuse noise paths that are not ``game``'s in one line: their structure and each
    array's shape behind the leading path axis must be those of ``game.sample_noise``
    (paths of another horizon or size were evaluated without a word, read past their
    end where shorter: plausible, wrong figures)."""
    one = _noise_shapes(game)
    got = batch.noise
    name = getattr(game, "name", type(game).__name__)
    remedy = "make them with mfax.dynamics.noise_batch(game, ...)"
    if jax.tree.structure(got) != jax.tree.structure(one):
        raise GameError(
            f"the noise paths do not fit game {name!r}: {type(got).__name__} where its sample_noise gives "
            f"{type(one).__name__}; {remedy}"
        )
    for (where, want), leaf in zip(jax.tree_util.tree_leaves_with_path(one), jax.tree.leaves(got), strict=True):
        shape = tuple(np.shape(leaf))
        if shape[1:] != tuple(want.shape) or shape[:1] != (batch.num_paths,):
            field = jax.tree_util.keystr(where) or "the noise"
            raise GameError(
                f"the noise paths do not fit game {name!r}: {field} has shape {shape} where its "
                f"{batch.num_paths} paths would have {(batch.num_paths, *want.shape)} (another horizon or size?); "
                f"{remedy}"
            )


def _noise_shapes(game: Game):
    """``game.sample_noise``'s output shapes (traced once per equal game)."""
    try:
        return _noise_shapes_cached(game)
    except TypeError:  # (a game holding arrays is not hashable)
        return jax.eval_shape(game.sample_noise, jax.random.PRNGKey(0))


@functools.lru_cache(maxsize=64)
def _noise_shapes_cached(game: Game):
    return jax.eval_shape(game.sample_noise, jax.random.PRNGKey(0))


def sample_noise(game: Game, key: PRNGKeyArray, num_paths: int) -> NoiseBatch:
    """``num_paths`` independent draws of the common noise (and random reset)."""
    if not params.is_integer_from(num_paths, 1):
        raise GameError(f"the number of noise paths must be an integer >= 1, got {num_paths!r}")
    noise = jax.vmap(game.sample_noise)(jax.random.split(key, num_paths))
    return NoiseBatch(noise, jnp.full(num_paths, 1.0 / num_paths), exact=False)


def enumerate_noise(game: Game) -> NoiseBatch:
    """Every common-noise path with its probability (finite-support games only)."""
    support = game.noise_support()
    if support is None:
        sampled = advice("--noise sample", 'noise="sample"')
        raise GameError(
            f"game {game.name!r} has no finite noise support with these parameters; use {sampled} "
            f"({common_noise_advice(game)})"
        )
    return NoiseBatch(support.noise, support.weight, exact=True)


def exact_noise(game: Game, mode: NoiseMode, max_exact_paths: int = 4096) -> NoiseBatch | None:
    """The enumerated support when ``mode`` asks for it (``"exact"``, or ``"auto"`` with a
    finite support of at most ``max_exact_paths`` paths), else ``None``; draws nothing."""
    if mode not in NOISE_MODES:
        raise GameError(f"unknown noise mode {mode!r}; allowed: {', '.join(NOISE_MODES)}")
    if mode == "exact":
        return enumerate_noise(game)
    support = game.noise_support() if mode == "auto" else None
    if support is not None and support.weight.shape[0] <= max_exact_paths:
        return NoiseBatch(support.noise, support.weight, exact=True)
    return None


def noise_batch(
    game: Game,
    mode: NoiseMode,
    key: PRNGKeyArray | None = None,
    num_paths: int = 128,
    max_exact_paths: int = 4096,
) -> NoiseBatch:
    """Noise for an expectation: ``"exact"`` enumerates, ``"sample"`` draws ``num_paths``,
    ``"auto"`` enumerates when the support is finite with at most ``max_exact_paths`` paths."""
    exact = exact_noise(game, mode, max_exact_paths)
    if exact is not None:
        return exact
    if key is None:
        key = jax.random.key(0)
    return sample_noise(game, key, num_paths)


def small_support(game: Game, num_paths: int) -> NoiseSupport | None:
    """The game's noise support when it has fewer paths than ``num_paths`` draws."""
    support = game.noise_support()
    return support if support is not None and support.weight.shape[0] < num_paths else None


def draw_noise(
    game: Game,
    key: PRNGKeyArray,
    num_paths: int,
    exact: NoiseBatch | None,
    support: NoiseSupport | None = None,
):
    """The iteration's noise paths and weights.

    * ``exact``: the fixed enumerated support with its probabilities;
    * otherwise ``num_paths`` Monte Carlo draws. When the game's support is finite and
      smaller than ``num_paths`` (``support`` given), the draws are returned as
      multinomial counts over the support: the very same estimator, but each distinct
      path is computed once (beach bar: its 102 paths instead of 128 draws;
      linear-quadratic: 2 instead of 8).
    """
    if exact is not None:
        return exact.noise, exact.weight
    if support is not None:
        size = support.weight.shape[0]
        picks = jax.random.choice(key, size, (num_paths,), p=support.weight)
        # integer counts: float32 ones stop growing at 2^24 (two paths and 10^8 draws gave
        # weights summing to 1/3); each weight is then rounded once
        counts = jnp.zeros(size, jnp.int32).at[picks].add(1)
        return support.noise, counts.astype(support.weight.dtype) / num_paths
    noise = jax.vmap(game.sample_noise)(jax.random.split(key, num_paths))
    return noise, jnp.full(num_paths, 1.0 / num_paths)


DRAWN_CAPACITY_SDS = 3.0


def drawn_capacity(support: NoiseSupport, num_paths: int, sds: float = DRAWN_CAPACITY_SDS, multiple: int = 1) -> int:
    """How many distinct support paths an iteration computes when ``num_paths`` draws
    are counted over a finite ``support``: the mean number of distinct paths drawn plus
    ``sds`` standard deviations (exact multinomial occupancy moments), rounded up to a
    ``multiple`` (the devices sharing the paths: XLA's partitioner would pad an uneven
    path axis and gather it inside the time loop) and capped at the support's size. Beach bar, 128 draws over 102
    equally likely paths: 73.1 +- 3.2 distinct, capacity 83; an iteration that draws
    more (about 1 in 1000) computes the whole support instead (:func:`compact_draws`),
    so the estimator never changes.
    """
    p = np.asarray(support.weight, dtype=float)
    missed = (1.0 - p) ** num_paths  # P(path i never drawn)
    both = np.clip(1.0 - p[:, None] - p[None, :], 0.0, None) ** num_paths  # P(i and j never drawn)
    np.fill_diagonal(both, missed)
    var = max(float(both.sum() - missed.sum() ** 2), 0.0)
    mean = p.size - float(missed.sum())
    needed = math.ceil(mean + sds * math.sqrt(var))
    return int(min(p.size, -(-needed // multiple) * multiple))


def drawn_slots(weight: Float[Array, " S"], capacity: int) -> Array:
    """The support index in each of :func:`compact_draws`' ``capacity`` slots."""
    return jnp.nonzero(weight > 0, size=capacity, fill_value=0)[0]


def compact_draws(noise: Noise, weight: Float[Array, " S"], capacity: int):
    """The drawn paths of a counted draw (``weight > 0``) packed into ``capacity`` slots
    (padding slots repeat path 0 with weight 0), and whether they overflowed."""
    drawn = weight > 0
    index = drawn_slots(weight, capacity)
    valid = jnp.arange(capacity) < jnp.sum(drawn)
    packed = jax.tree.map(lambda x: x[index], noise), jnp.where(valid, weight[index], 0.0)
    return packed, jnp.sum(drawn) > capacity
