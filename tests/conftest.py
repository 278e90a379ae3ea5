"""Shared test helpers: small game instances, conversions to the numpy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import settings

import mfax
from mfax.games import BeachBarNoise, LQNoise, MacroNoise

settings.register_profile("mfax", max_examples=8, deadline=None, derandomize=True)
settings.load_profile("mfax")


def ref_path(game: mfax.Game, noise):
    """The numpy reference's description of one of our noise paths."""
    if isinstance(noise, LQNoise):
        return round(float(noise.z))
    if isinstance(noise, BeachBarNoise):
        return int(noise.bar), bool(float(noise.z[-1]) == 0.0)
    if isinstance(noise, MacroNoise):
        return tuple(float(z) for z in np.asarray(noise.z))
    raise TypeError(type(noise))


def path_at(noise, i: int):
    """Path ``i`` of a batched noise pytree."""
    return jax.tree.map(lambda x: x[i], noise)


def dense_kernel(kernel) -> np.ndarray:
    """``(n, m, n)`` transition matrix from a sparse kernel."""
    index, prob = np.asarray(kernel.index), np.asarray(kernel.prob, dtype=np.float64)
    n, m, _ = index.shape
    out = np.zeros((n, m, n))
    for s in range(n):
        for a in range(m):
            np.add.at(out[s, a], index[s, a], prob[s, a])
    return out


def random_policy_table(key, game: mfax.Game) -> jnp.ndarray:
    """A random time-indexed policy ``(T, n, m)`` with full support."""
    return jax.random.dirichlet(key, jnp.ones(game.n_actions), (game.horizon, game.n_states))


ALL_GAMES = ["linear_quadratic", "beach_bar", "macro", "sis"]
