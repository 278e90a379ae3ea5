"""Kernels from the two forms a game's transitions are most often written in: one next
state per (state, action), or a dense ``(n, m, n)`` matrix of probabilities.

Both give a single-stage :class:`~mfax.games.base.Kernel` with int32 indices, usable in
``Game.kernel`` under ``jax.jit`` and ``jax.vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float, Int

from mfax.errors import GameError
from mfax.games.base import Kernel, Spread
from mfax.games.validate import distribution_error

# values this close (relative) to a half-integer are that half: a tie of the definition
# (2.5 * 0.6 = 1.5) comes out of float64 as 1.4999999999999998 and of float32 as
# 1.49999996 or 1.5, which `round` would send to different states
HALF_TOLERANCE = 1e-5


def snap_halves(x):
    """``x`` with values within :data:`HALF_TOLERANCE` (relative) of a half-integer set to
    it, so that ``jnp.round`` (halves to even) meets a game's exact ties in every
    precision and whatever order a sum was taken in: a position rounded from a computed
    mean (``round(K (m_t - x) dt)``) went one way in float32 and the other in float64.

    >>> x = jnp.array([2.5000002, 3.4999998])  # 2.5 and 3.5, one float32 ulp off
    >>> jnp.round(x).tolist(), jnp.round(snap_halves(x)).tolist()
    ([3.0, 3.0], [2.0, 4.0])
    """
    twice = 2.0 * x
    nearest = jnp.round(twice)
    close = jnp.abs(twice - nearest) <= HALF_TOLERANCE * jnp.maximum(1.0, jnp.abs(twice))
    return jnp.where(close, 0.5 * nearest, x)


def deterministic_kernel(next_states: Int[ArrayLike, "n m"], then: Spread | None = None) -> Kernel:
    """The kernel moving state ``s`` under action ``a`` to ``next_states[s, a]`` with
    probability one (``K = 1``); with ``then``, ``next_states`` are intermediate states of
    a two-stage kernel. Concrete indices are checked to lie in ``0..n-1`` (``n`` the
    number of rows, or of intermediate states); traced ones by ``mfax check-game``.

    >>> deterministic_kernel(jnp.array([[0, 1], [0, 1]])).index[..., 0].tolist()
    [[0, 1], [0, 1]]
    """
    index = jnp.asarray(next_states, dtype=jnp.int32)
    if index.ndim != 2:
        raise GameError(f"next_states must have shape (n, m), got {index.shape}")
    size = index.shape[0] if then is None else np.shape(then.index)[0]
    if not isinstance(index, jax.core.Tracer):
        out = np.argwhere((np.asarray(index) < 0) | (np.asarray(index) >= size))
        if len(out):
            s, a = out[0]
            raise GameError(f"next_states[{s}, {a}] is {int(index[s, a])}; states are 0..{size - 1}")
    return Kernel(index[..., None], jnp.ones((*index.shape, 1)), then)


def dense_kernel(matrix: Float[ArrayLike, "n m n"]) -> Kernel:
    """The kernel ``P(s' | s, a) = matrix[s, a, s']``, refused with a one-line
    :class:`GameError` unless its rows are probability vectors (when its values are
    concrete; traced ones are checked by ``mfax check-game``).

    A NumPy matrix (or nested lists) is stored sparsely: ``K`` is the largest number of
    non-zero entries in a row, which come first in state order. A JAX array keeps all
    ``K = n`` entries, so that shapes never depend on JAX values (under ``jax.jit`` they
    are not known).

    >>> k = dense_kernel(np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.0, 1.0]]]))
    >>> k.index.shape, k.index[0, 1].tolist(), k.prob[0, 0].tolist()
    ((2, 2, 2), [0, 1], [1.0, 0.0])
    """
    if not isinstance(matrix, jax.Array):
        matrix = np.asarray(matrix, dtype=float)
    shape = np.shape(matrix)
    if len(shape) != 3 or shape[2] != shape[0]:
        raise GameError(f"a dense kernel must have shape (n, m, n), got {shape}")
    if not isinstance(matrix, jax.core.Tracer):
        error = distribution_error(matrix, "dense kernel row", lambda i: f" (s={i[0]}, a={i[1]})" if i else "")
        if error is not None:
            raise GameError(error)
    n = shape[0]
    if isinstance(matrix, jax.Array):
        return Kernel(jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), shape), matrix)
    width = max(1, int((matrix != 0).sum(-1).max()))
    order = np.argsort(matrix == 0, axis=-1, kind="stable")[..., :width]  # non-zero entries first
    return Kernel(jnp.asarray(order, dtype=jnp.int32), jnp.asarray(np.take_along_axis(matrix, order, -1)))


__all__ = ["dense_kernel", "deterministic_kernel"]
