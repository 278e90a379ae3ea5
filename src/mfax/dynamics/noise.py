"""Batches of common-noise paths: sampled (Monte Carlo) or enumerated (exact)."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from mfax.errors import GameError
from mfax.games.base import Game, Noise

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


def sample_noise(game: Game, key: PRNGKeyArray, num_paths: int) -> NoiseBatch:
    """``num_paths`` independent draws of the common noise (and random reset)."""
    if num_paths < 1:
        raise GameError(f"the number of noise paths must be >= 1, got {num_paths}")
    noise = jax.vmap(game.sample_noise)(jax.random.split(key, num_paths))
    return NoiseBatch(noise, jnp.full(num_paths, 1.0 / num_paths), exact=False)


def enumerate_noise(game: Game) -> NoiseBatch:
    """Every common-noise path with its probability (finite-support games only)."""
    support = game.noise_support()
    if support is None:
        raise GameError(f"game {game.name!r} has no finite noise support with these parameters; use sampled noise")
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
