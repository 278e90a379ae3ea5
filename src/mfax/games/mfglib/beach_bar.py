"""MFGLib's beach bar (``mfglib.beach_bar``; MFGLib 0.3.0,
``mfglib.env.Environment.beach_bar``), after Perrin et al. (2020).

Positions ``s = 0..n-1``, moves ``a in {-1, 0, +1}`` (actions ``0, 1, 2``), then an
idiosyncratic step ``e in {-1, 0, +1}`` with probabilities ``((1-p)/2, p, (1-p)/2)``
(``p = p_still``), clipped to the beach: ``s' = clip(s + a + e, 0, n-1)``. The reward,
the same at every step ``t = 0..T`` (mfax ``horizon = T + 1``, no discount), is

.. math::

    r_t(s, a) = -d(s, b) - |a| / n - \\log(\\mu_t(s) + \\epsilon),

with ``d(s, b) = min((s - b) mod n, (b - s) mod n)`` MFGLib's distance to the bar ``b``:
the distance on a circle of ``n`` positions, while the moves are clipped at both ends
(MFGLib's kernel and reward, as written).

Common-noise variant (``bar_shock`` > 0, off by default): at every step the bar is
moved for the whole population to ``clip(b + z_t, 0, n-1)``, ``z_t`` uniform on
``{-bar_shock..bar_shock}`` and drawn afresh each step; the bar's position is public
(observed).
"""

from __future__ import annotations

import itertools
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport, check
from mfax.games.mfglib.common import initial_distribution, mfglib_T, no_discount
from mfax.params import param

_MAX_PATHS = 1 << 16


class BarNoise(NamedTuple):
    """shift: ``(T + 2,)`` int32, the bar's offset ``z_t`` from ``bar_loc`` at each mfax
    step ``t = 0..horizon`` (all zero without the shock)."""

    shift: jax.Array


class MFGLibBeachBar(Game):
    name: ClassVar[str] = "mfglib.beach_bar"

    T: int = mfglib_T(2)
    n: int = param(4, "positions 0..n-1")
    bar_loc: int = param(2, "the bar's position, in 0..n-1")
    log_eps: float = param(1e-20, "epsilon inside the crowd-aversion term -log(mu_t(s) + epsilon)", traced=True)
    p_still: float = param(0.5, "probability of no idiosyncratic step (else -1 or +1, equally likely)", traced=True)
    mu0: tuple = param((), "initial distribution over positions (empty: uniform)")
    bar_shock: int = param(
        0, "common noise: the bar moves by a uniform offset in -bar_shock..bar_shock at each step (0: off, MFGLib)"
    )
    gamma: float = no_discount()

    n_actions: ClassVar[int] = 3

    @property
    def common_noise_off(self) -> dict:
        """The bar stays put (MFGLib's game)."""
        return {"bar_shock": 0}

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        check(self.n >= 1, f"n must be >= 1, got {self.n}")
        check(0 <= self.bar_loc < self.n, f"bar_loc must lie in 0..n-1 = 0..{self.n - 1}, got {self.bar_loc}")
        check((0.0 <= self.p_still) & (self.p_still <= 1.0), f"p_still must lie in [0, 1], got {self.p_still}")
        check(
            self.log_eps > 0.0,
            f"log_eps must be > 0 (log(mu + epsilon) is -inf where a state empties), got {self.log_eps}",
        )
        check(self.bar_shock >= 0, f"bar_shock must be >= 0, got {self.bar_shock}")
        paths = (2 * self.bar_shock + 1) ** (self.T + 1)
        check(
            paths <= _MAX_PATHS,
            f"bar_shock={self.bar_shock} with T={self.T} gives {paths} noise paths; at most {_MAX_PATHS} allowed",
        )
        initial_distribution(self.mu0, self.n)

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def n_states(self) -> int:
        return self.n

    @property
    def own_history_informative(self) -> bool:
        """``False``: the bar's position, the only common noise, is public."""
        return False

    def state_features(self):
        return jnp.arange(self.n, dtype=float)[:, None] / max(self.n - 1, 1)

    def action_values(self):
        return jnp.array([-1.0, 0.0, 1.0])

    # -- common noise (off by default) ---------------------------------------------------
    def sample_noise(self, key):
        shift = jax.random.randint(key, (self.horizon + 1,), -self.bar_shock, self.bar_shock + 1)
        return BarNoise(shift.at[-1].set(0).astype(jnp.int32))

    def noise_support(self):
        offsets = range(-self.bar_shock, self.bar_shock + 1)
        paths = np.array([[*p, 0] for p in itertools.product(offsets, repeat=self.horizon)], dtype=np.int32)
        return NoiseSupport(BarNoise(jnp.asarray(paths)), jnp.full(len(paths), 1.0 / len(paths)))

    def describe_noise(self, noise):
        if self.bar_shock == 0:
            return "no common noise"
        bars = np.clip(self.bar_loc + np.asarray(noise.shift), 0, self.n - 1)
        return "bar at " + ", ".join(str(int(b)) for b in bars[:-1])

    def _bar(self, shift):
        return jnp.clip(self.bar_loc + shift, 0, self.n - 1)

    # -- the world -----------------------------------------------------------------------
    def initial_mean_field(self, noise):
        return jnp.asarray(initial_distribution(self.mu0, self.n))

    def kernel(self, mu, noise, t):
        s = np.arange(self.n)[:, None, None]
        a = np.arange(3)[None, :, None]
        e = np.array([-1, 0, 1])
        idx = np.clip(s + a - 1 + e, 0, self.n - 1)
        p = jnp.asarray(self.p_still, mu.dtype)
        prob = jnp.broadcast_to(jnp.stack([(1 - p) / 2, p, (1 - p) / 2]), idx.shape)
        return Kernel(jnp.asarray(idx, jnp.int32), prob)

    def reward(self, mu, mu_next, noise, t):
        s = jnp.arange(self.n)
        b = self._bar(noise.shift[t])
        distance = jnp.minimum((s - b) % self.n, (b - s) % self.n).astype(mu.dtype)
        move_cost = jnp.array([1.0, 0.0, 1.0], dtype=mu.dtype)[None, :] / self.n
        crowd = jnp.log(mu + self.log_eps)[:, None]
        return -distance[:, None] - move_cost - crowd

    def observation(self, mu, noise, t):
        scale = max(self.n - 1, 1)
        mean = mu @ jnp.arange(self.n, dtype=mu.dtype) / scale
        return jnp.stack([mean, self._bar(noise.shift[t]).astype(mu.dtype) / scale])


__all__ = ["BarNoise", "MFGLibBeachBar"]
