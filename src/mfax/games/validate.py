"""Numeric checks of a game on concrete values, run once per game before it is used.

A game's functions are only a protocol (:class:`~mfax.games.base.Game`): a kernel whose
rows do not sum to one, an index past the last state, a NaN reward, a reward of the
wrong shape (broadcast silently), an initial mean field that is not a distribution, a
noise path shorter than the horizon (JAX clamps out-of-range reads) or support weights
that do not sum to one would all produce numbers. :func:`validate_game` evaluates each
function once, eagerly, and raises a one-line :class:`~mfax.games.base.GameError`
naming the game, the check and the offending values. It is called by
:func:`mfax.make` and by the evaluation entry point (so training, which builds its game
with ``make``, and a user's own game instance are both covered).

What is checked, with ``mu_0`` the initial mean field of one sampled noise path and
the rewards evaluated at ``mu_t = mu_{t+1} = mu_0``:

* sizes: ``n_states``, ``n_actions``, ``horizon`` positive integers, ``gamma`` in (0, 1];
* ``initial_mean_field``: shape ``(n,)``, finite, non-negative, sums to one;
* ``kernel(mu_0, noise, t)`` at ``t = 0`` and ``t = T - 1``: shapes ``(n, m, K)``,
  finite non-negative probabilities whose rows sum to one, indices in ``0..n-1`` (or
  the intermediate states of a two-stage kernel, whose second stage is checked alike);
* ``reward`` at ``t = 0`` and ``terminal_reward`` at ``t = T - 1``: shape ``(n, m)``,
  finite; ``observation`` at ``t = 0``: one finite vector;
* the noise path covers ``t = 0..T``: ``observation`` at ``T`` and the rewards at
  ``T - 1`` read nothing out of bounds;
* ``state_features`` ``(n, .)`` and ``action_values`` ``(m,)``, finite;
* ``aggregates`` at ``t = 0`` and ``t = T``: each a finite scalar;
* ``noise_support`` (when finite): weights ``(P,)`` non-negative summing to one, and
  paths shaped like the sampled ones with a leading axis ``P``.

Sums are compared to one within :data:`TOLERANCE`.
"""

from __future__ import annotations

import math
import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from mfax.errors import GameError
from mfax.games.base import Game, Kernel, reward_matrix

TOLERANCE = 1e-4
_VALIDATED: set = set()


def validate_game(game: Game) -> None:
    """Refuse a defective game with a one-line :class:`GameError` (see the module
    docstring for the checks); each (hashable) game is checked once per process."""
    try:
        if game in _VALIDATED:
            return
    except TypeError:  # a game holding arrays is not hashable: check it every time
        _check(game)
        return
    _check(game)
    _VALIDATED.add(game)


def _check(game: Game) -> None:
    name = getattr(game, "name", type(game).__name__)

    def fail(message: str):
        raise GameError(f"game {name!r}: {message}")

    n, m, horizon = _sizes(game, fail)
    key = jax.random.PRNGKey(0)
    _, mu0 = jax.eval_shape(_start(game), key)  # the shape first: the rest is traced with it
    _shape(mu0, (n,), "initial mean field", fail)
    out = jax.device_get(jax.jit(_outputs(game, horizon))(key))
    mu0, noise = np.asarray(out["initial mean field"]), out["noise"]
    _finite(mu0, "initial mean field", fail)
    _distribution(mu0[None], "initial mean field", fail, lambda i: "")
    for t, kernel in sorted(out["kernel"].items()):
        _kernel(kernel, n, m, t, fail)
    for what, t in (("reward", 0), ("terminal reward", horizon - 1)):
        r = np.asarray(out[what])
        _shape(r, (n, m), f"{what} at t={t}", fail)
        _finite(r, f"{what} at t={t}", fail, ("s", "a"))
    obs = np.asarray(out["observation"])
    if obs.ndim != 1:
        fail(f"observation at t=0 must be a vector (d,), got shape {obs.shape}")
    _finite(obs, "observation at t=0", fail)
    for t, values in out["aggregates"].items():
        for what, value in values.items():
            value = np.asarray(value)
            if value.ndim != 0:
                fail(f"aggregate {what!r} at t={t} must be a scalar, got shape {value.shape}")
            _finite(value.reshape(1), f"aggregate {what!r} at t={t}", fail)
    for what, err in out["reads"].items():  # JAX clamps out-of-bounds reads silently
        message = err.get()
        if message is not None:
            detail = message.strip().splitlines()[0].rstrip(".")
            fail(f"{what} reads out of bounds ({detail}); noise paths must cover t = 0..T")
    for what, shape in (("state_features", (n, None)), ("action_values", (m,))):
        x = np.asarray(out[what])
        _shape(x, shape, what, fail)
        _finite(x, what, fail)
    _support(game, noise, fail)


def _start(game: Game):
    def start(key):
        noise = game.sample_noise(key)
        return noise, game.initial_mean_field(noise)

    return start


def _outputs(game: Game, horizon: int):
    """Every function of the game once, as one compiled program (called eagerly, each
    operation would be compiled on its own: seconds per game)."""
    last = jnp.int32(horizon - 1)

    def outputs(key):
        noise, mu = _start(game)(key)

        def reads(fn):
            return checkify.checkify(fn, errors=checkify.index_checks)(noise)[0]

        return {
            "noise": noise,
            "initial mean field": mu,
            "kernel": {t: game.kernel(mu, noise, jnp.int32(t)) for t in {0, horizon - 1}},
            "reward": game.reward(mu, mu, noise, jnp.int32(0)),
            "terminal reward": game.terminal_reward(mu, mu, noise, last),
            "observation": game.observation(mu, noise, jnp.int32(0)),
            "aggregates": {t: game.aggregates(mu, noise, jnp.int32(t)) for t in (0, horizon)},
            "reads": {
                f"observation at t=T={horizon}": reads(lambda z: game.observation(mu, z, last + 1)),
                f"reward at t=T-1={horizon - 1}": reads(lambda z: reward_matrix(game, mu, mu, z, last)),
            },
            "state_features": game.state_features(),
            "action_values": game.action_values(),
        }

    return outputs


def _sizes(game: Game, fail) -> tuple[int, int, int]:
    sizes = []
    for attr in ("n_states", "n_actions", "horizon"):
        value = getattr(game, attr)
        try:
            value = operator.index(value)
        except TypeError:
            fail(f"{attr} must be an integer, got {value!r}")
        if value < 1:
            fail(f"{attr} must be >= 1, got {value}")
        sizes.append(value)
    gamma = game.gamma
    if not (isinstance(gamma, int | float) and math.isfinite(gamma) and 0.0 < gamma <= 1.0):
        fail(f"gamma must lie in (0, 1], got {gamma!r}")
    return tuple(sizes)


def _array(x) -> np.ndarray:
    return np.asarray(jax.device_get(x))


def _shape(x, shape: tuple, what: str, fail) -> None:
    ok = x.ndim == len(shape) and all(want is None or got == want for got, want in zip(x.shape, shape, strict=True))
    if not ok:
        expected = "(" + ", ".join("." if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        fail(f"{what} must have shape {expected}, got {x.shape}")


def _where(index: tuple, names: tuple[str, ...]) -> str:
    if not names:
        return str(index[0]) if len(index) == 1 else str(index)
    return "(" + ", ".join(f"{k}={int(i)}" for k, i in zip(names, index, strict=False)) + ")"


def _finite(x: np.ndarray, what: str, fail, names: tuple[str, ...] = ()) -> None:
    if np.issubdtype(x.dtype, np.inexact) and not np.all(np.isfinite(x)):
        bad = tuple(np.argwhere(~np.isfinite(x))[0])
        fail(f"{what} is {x[bad]} at {_where(bad, names)}; every entry must be finite")


def _distribution(p: np.ndarray, what: str, fail, row_name) -> None:
    """Rows (last axis) of ``p``: non-negative, summing to one."""
    if np.any(p < -TOLERANCE):
        bad = tuple(np.argwhere(p < -TOLERANCE)[0])
        fail(f"{what}{row_name(bad[:-1])} has a negative entry {p[bad]} (position {bad[-1]}); entries must be >= 0")
    sums = p.astype(np.float64).sum(-1)
    off = np.abs(sums - 1.0) > TOLERANCE
    if np.any(off):
        bad = tuple(np.argwhere(off)[0])
        fail(f"{what}{row_name(bad)} sums to {sums[bad]:.6g}; it must sum to 1")


def _kernel(kernel: Kernel, n: int, m: int, t: int, fail) -> None:
    if not isinstance(kernel, Kernel):
        fail(f"kernel must return a Kernel, got {type(kernel).__name__}")
    index, prob = _array(kernel.index), _array(kernel.prob)
    at = f" at t={t}"
    if index.ndim != 3 or index.shape[:2] != (n, m) or prob.shape != index.shape:
        fail(f"kernel index and prob must both have shape ({n}, {m}, K), got {index.shape} and {prob.shape}")
    size = n
    if kernel.then is not None:
        mid_index, mid_prob = _array(kernel.then.index), _array(kernel.then.prob)
        if mid_index.ndim != 2 or mid_prob.shape != mid_index.shape:
            fail(f"second kernel stage index and prob must both have shape (n_mid, K2), got {mid_index.shape}")
        size = mid_index.shape[0]
    _kernel_stage(index, prob, size, "kernel", ("s", "a"), at, fail, "intermediate states" if size != n else "states")
    if kernel.then is not None:
        _kernel_stage(mid_index, mid_prob, n, "second kernel stage", ("j",), at, fail, "states")


def _kernel_stage(index, prob, size: int, what: str, names, at: str, fail, targets: str) -> None:
    if not np.issubdtype(index.dtype, np.integer):
        fail(f"{what} indices must be integers, got {index.dtype}")
    _finite(prob, f"{what} probability{at}", fail, (*names, "k"))
    _distribution(prob, f"{what} row", fail, lambda i: f" {_where(i, names)}{at}" if i else at)
    out = (index < 0) | (index >= size)
    if np.any(out):
        bad = tuple(np.argwhere(out)[0])
        fail(f"{what} index at {_where(bad, (*names, 'k'))}{at} is {index[bad]}; {targets} are 0..{size - 1}")


def _support(game: Game, noise, fail) -> None:
    support = game.noise_support()
    if support is None:
        return
    weight = _array(support.weight)
    if weight.ndim != 1:
        fail(f"noise support weights must have shape (P,), got {weight.shape}")
    _finite(weight, "noise support weight", fail)
    _distribution(weight[None], "noise support weight vector", fail, lambda i: "")
    paths = weight.shape[0]
    one, many = jax.tree.structure(noise), jax.tree.structure(support.noise)
    if one != many:
        fail(f"noise support paths must have the structure of sample_noise's, got {many} and {one}")
    for a, b in zip(jax.tree.leaves(noise), jax.tree.leaves(support.noise), strict=True):
        expected = (paths, *np.shape(a))
        if tuple(np.shape(b)) != expected:
            fail(f"noise support leaf has shape {np.shape(b)}; sampled paths have {np.shape(a)}, so {expected}")
