"""MFGLib's crowd motion (``mfglib.crowd_motion``; MFGLib 0.3.0,
``mfglib.env.Environment.crowd_motion``), after Perolat et al. (2022): the beach bar on
a two-dimensional grid, with a bar that moves.

Cells ``(x, y)``, ``x = 0..torus_l-1``, ``y = 0..torus_w-1`` (flattened row-major,
``s = x torus_w + y``); actions ``right (+1, 0), left (-1, 0), (0, +1), (0, -1), stay``;
to the move an idiosyncratic step is added, one of the same five, with probabilities
``(1-p)/4`` each and ``p = p_still`` for staying, and each coordinate of the sum is
clipped to the grid (once: a move into the wall and a step back land one cell in).
The reward at ``t = 0..T`` (no discount) is

.. math::

    r_t(s, a) = c \\Big(1 - \\frac{|x - b^x_t| + |y - b^y_t|}{\\text{torus\\_l} +
        \\text{torus\\_w}}\\Big) - \\log(\\mu_t(s) + \\epsilon).

The bar starts at ``(torus_l // 2, torus_w // 2)``; before step ``i + 1``, for every
``i`` with ``(i + 1) mod loc_change_freq = 0``, it tries a diagonal move ``(+-1, +-1)``
(each sign drawn with probability 1/2) and keeps it if it stays on the grid. MFGLib draws
the signs once, when the game is built, from ``seed`` (PyTorch's CPU generator,
reproduced by :class:`~mfax.games.mfglib.common.TorchStream`): the bar's path is then part
of the game and known to everybody.

Common-noise variant (``common_noise``, off by default): the signs are drawn afresh for
each episode, with the same probabilities, and the bar's position is public; the support
holds every sequence of moves that can matter (``4^k`` paths for ``k`` move times in
``1..T``).
"""

from __future__ import annotations

import itertools
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport, check
from mfax.games.mfglib.common import TorchStream, initial_distribution, mfglib_T, no_discount
from mfax.params import param

_MOVES = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (0, 0)])
_MAX_PATHS = 1 << 16


class CrowdNoise(NamedTuple):
    """bar: ``(T + 2, 2)`` int32, the bar's cell at each mfax step ``t = 0..horizon``."""

    bar: jax.Array


class MFGLibCrowdMotion(Game):
    name: ClassVar[str] = "mfglib.crowd_motion"

    T: int = mfglib_T(3)
    torus_l: int = param(20, "grid length: x = 0..torus_l-1")
    torus_w: int = param(20, "grid width: y = 0..torus_w-1")
    loc_change_freq: int = param(
        2,
        "the bar tries a move before each step t = i + 1 with (i + 1) mod loc_change_freq = 0, i = 0..T "
        "(never before t = 0)",
    )
    c: float = param(10.0, "weight of the closeness to the bar", traced=True)
    log_eps: float = param(1e-10, "epsilon inside the crowd-aversion term -log(mu_t(s) + epsilon)", traced=True)
    p_still: float = param(0.5, "probability of no idiosyncratic step (else one of four, equally likely)", traced=True)
    seed: int = param(0, "seed of the bar's moves (PyTorch's CPU generator, as MFGLib draws them)")
    mu0: tuple = param((), "initial distribution over the cells, row-major (empty: uniform)")
    common_noise: bool = param(False, "the bar's moves are drawn for each episode and observed (off: MFGLib's path)")
    gamma: float = no_discount()

    n_actions: ClassVar[int] = 5

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        check(
            self.torus_l >= 1 and self.torus_w >= 1,
            f"the grid must be at least 1 x 1, got {self.torus_l} x {self.torus_w}",
        )
        check(self.loc_change_freq >= 1, f"loc_change_freq must be >= 1, got {self.loc_change_freq}")
        check((0.0 <= self.p_still) & (self.p_still <= 1.0), f"p_still must lie in [0, 1], got {self.p_still}")
        check(
            self.log_eps > 0.0,
            f"log_eps must be > 0 (log(mu + epsilon) is -inf where a state empties), got {self.log_eps}",
        )
        TorchStream(self.seed)
        if self.common_noise:
            paths = 4 ** len(self._move_times())
            check(
                paths <= _MAX_PATHS,
                f"the bar moves {len(self._move_times())} times: {paths} noise paths; "
                f"at most {_MAX_PATHS} allowed (raise loc_change_freq or lower T)",
            )
        initial_distribution(self.mu0, self.n_states)

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def n_states(self) -> int:
        return self.torus_l * self.torus_w

    @property
    def own_history_informative(self) -> bool:
        """``False``: the bar's position is public."""
        return False

    def _cells(self):
        x, y = np.divmod(np.arange(self.n_states), self.torus_w)
        return x, y

    def state_features(self):
        x, y = self._cells()
        return jnp.asarray(np.stack([x / max(self.torus_l - 1, 1), y / max(self.torus_w - 1, 1)], axis=1))

    @property
    def state_grid(self):
        return (("x", self.torus_l), ("y", self.torus_w))

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(5, dtype=float)

    # -- the bar -------------------------------------------------------------------------
    def _move_times(self) -> list[int]:
        """The steps ``t = i + 1 <= T`` before which the bar tries a move."""
        return [i + 1 for i in range(self.T) if (i + 1) % self.loc_change_freq == 0]

    def _walk(self, signs) -> np.ndarray:
        """The bar's cells at ``t = 0..T + 1`` given the sign pairs of each move time."""
        bar = (self.torus_l // 2, self.torus_w // 2)
        path = [bar]
        moves = iter(signs)
        for i in range(self.T + 1):
            if (i + 1) % self.loc_change_freq == 0:
                dx, dy = next(moves)
                new = (bar[0] + dx, bar[1] + dy)
                if 0 <= new[0] < self.torus_l and 0 <= new[1] < self.torus_w:
                    bar = new
            path.append(bar)
        return np.asarray(path, dtype=np.int32)

    def bar_path(self) -> np.ndarray:
        """MFGLib's bar path for ``seed``: ``(T + 2, 2)`` cells at ``t = 0..T + 1``."""
        stream = TorchStream(self.seed)
        count = sum((i + 1) % self.loc_change_freq == 0 for i in range(self.T + 1))
        signs = [(2 * stream.coin() - 1, 2 * stream.coin() - 1) for _ in range(count)]
        return self._walk(signs)

    def sample_noise(self, key):
        if not self.common_noise:
            return CrowdNoise(jnp.asarray(self.bar_path()))
        support = self.noise_support()
        i = jax.random.randint(key, (), 0, support.weight.shape[0])
        return CrowdNoise(support.noise.bar[i])

    def noise_support(self):
        if not self.common_noise:
            return NoiseSupport(CrowdNoise(jnp.asarray(self.bar_path())[None]), jnp.ones(1))
        count = sum((i + 1) % self.loc_change_freq == 0 for i in range(self.T + 1))
        free = len(self._move_times())  # the moves that reach a paid step; the rest are fixed at (+1, +1)
        pairs = list(itertools.product((-1, 1), repeat=2))
        paths = [self._walk(list(p) + [(1, 1)] * (count - free)) for p in itertools.product(pairs, repeat=free)]
        return NoiseSupport(CrowdNoise(jnp.asarray(np.stack(paths))), jnp.full(len(paths), 1.0 / len(paths)))

    def describe_noise(self, noise):
        bars = np.asarray(noise.bar)[: self.T + 1]
        return "bar at " + ", ".join(f"({x}, {y})" for x, y in bars)

    # -- the world -----------------------------------------------------------------------
    def initial_mean_field(self, noise):
        return jnp.asarray(initial_distribution(self.mu0, self.n_states))

    def kernel(self, mu, noise, t):
        x, y = self._cells()
        # the action's move plus the idiosyncratic step, clipped once (MFGLib's kernel)
        total = _MOVES[None, :, None, :] + _MOVES[None, None, :, :]  # (1, action, step, 2)
        nx = np.clip(x[:, None, None] + total[..., 0], 0, self.torus_l - 1)
        ny = np.clip(y[:, None, None] + total[..., 1], 0, self.torus_w - 1)
        p = jnp.asarray(self.p_still, mu.dtype)
        q = (1.0 - p) / 4.0
        probs = jnp.broadcast_to(jnp.stack([q, q, q, q, p]), (self.n_states, 5, 5))
        return Kernel(jnp.asarray(nx * self.torus_w + ny, jnp.int32), probs)

    def reward(self, mu, mu_next, noise, t):
        x, y = (jnp.asarray(v) for v in self._cells())
        bar = noise.bar[t]
        distance = (jnp.abs(x - bar[0]) + jnp.abs(y - bar[1])).astype(mu.dtype) / (self.torus_l + self.torus_w)
        closeness = self.c * (1.0 - distance)
        return jnp.broadcast_to((closeness - jnp.log(mu + self.log_eps))[:, None], (self.n_states, 5))

    def observation(self, mu, noise, t):
        x, y = self._cells()
        scale = jnp.asarray([max(self.torus_l - 1, 1), max(self.torus_w - 1, 1)], mu.dtype)
        mean = jnp.stack([mu @ jnp.asarray(x, mu.dtype), mu @ jnp.asarray(y, mu.dtype)])
        return jnp.concatenate([mean / scale, noise.bar[t].astype(mu.dtype) / scale])


__all__ = ["CrowdNoise", "MFGLibCrowdMotion"]
