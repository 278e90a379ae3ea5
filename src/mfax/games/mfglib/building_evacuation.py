"""MFGLib's building evacuation (``mfglib.building_evacuation``; MFGLib 0.3.0,
``mfglib.env.Environment.building_evacuation``), after Perolat et al. (2022).

Cells ``(f, l, w)``: floor ``f = 0..n_floor-1`` (0 the ground floor), ``l = 0..floor_l-1``,
``w = 0..floor_w-1``, flattened row-major. Six deterministic actions: ``l + 1``,
``l - 1``, ``w - 1``, ``w + 1`` (clipped to the floor), down a floor (only from the
staircase at ``(l, w) = (0, 0)``, not below 0) and up a floor (only from the staircase at
``(floor_l - 1, floor_w - 1)``, not above the top); elsewhere those two stay put. The
reward at ``t = 0..T`` (no discount), the same for every action, is

.. math::

    r_t(f, l, w) = -\\eta \\log(\\max(\\mu_t(f, l, w), \\epsilon)) + \\text{evac\\_r}\\, [f = 0].
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import check
from mfax.games.kernels import deterministic_kernel
from mfax.games.mfglib.common import initial_distribution, mfglib_T, no_discount
from mfax.games.no_noise import NoCommonNoise
from mfax.params import param


class MFGLibBuildingEvacuation(NoCommonNoise):
    name: ClassVar[str] = "mfglib.building_evacuation"

    T: int = mfglib_T(3)
    n_floor: int = param(5, "floors 0..n_floor-1 (0: the ground, where agents are evacuated)")
    floor_l: int = param(10, "floor length: l = 0..floor_l-1")
    floor_w: int = param(10, "floor width: w = 0..floor_w-1")
    log_eps: float = param(1e-20, "floor epsilon of the crowd-aversion term -eta log(max(mu_t, epsilon))", traced=True)
    eta: float = param(1.0, "weight eta of the crowd aversion", traced=True)
    evac_r: float = param(10.0, "reward of a step on the ground floor", traced=True)
    mu0: tuple = param((), "initial distribution over the cells, row-major (empty: uniform)")
    gamma: float = no_discount()

    n_actions: ClassVar[int] = 6

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        for name in ("n_floor", "floor_l", "floor_w"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        check(self.log_eps > 0.0, f"log_eps must be > 0 (log of max(mu, epsilon)), got {self.log_eps}")
        initial_distribution(self.mu0, self.n_states)

    @property
    def horizon(self) -> int:
        return self.T + 1

    @property
    def n_states(self) -> int:
        return self.n_floor * self.floor_l * self.floor_w

    def _cells(self):
        f, rest = np.divmod(np.arange(self.n_states), self.floor_l * self.floor_w)
        l, w = np.divmod(rest, self.floor_w)
        return f, l, w

    def state_features(self):
        f, l, w = self._cells()
        scale = [max(v - 1, 1) for v in (self.n_floor, self.floor_l, self.floor_w)]
        return jnp.asarray(np.stack([f / scale[0], l / scale[1], w / scale[2]], axis=1))

    @property
    def state_grid(self):
        return (("floor", self.n_floor), ("l", self.floor_l), ("w", self.floor_w))

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(6, dtype=float)

    def initial_mean_field(self, noise):
        return jnp.asarray(initial_distribution(self.mu0, self.n_states))

    def next_cells(self) -> np.ndarray:
        """``(n, 6)`` the cell each action leads to."""
        f, l, w = self._cells()
        top_l, top_w = self.floor_l - 1, self.floor_w - 1
        down = np.where((l == 0) & (w == 0), np.maximum(f - 1, 0), f)
        up = np.where((l == top_l) & (w == top_w), np.minimum(f + 1, self.n_floor - 1), f)
        moves = [
            (f, np.minimum(l + 1, top_l), w),
            (f, np.maximum(l - 1, 0), w),
            (f, l, np.maximum(w - 1, 0)),
            (f, l, np.minimum(w + 1, top_w)),
            (down, l, w),
            (up, l, w),
        ]
        return np.stack([(ff * self.floor_l + ll) * self.floor_w + ww for ff, ll, ww in moves], axis=1)

    def kernel(self, mu, noise, t):
        return deterministic_kernel(self.next_cells())

    def reward(self, mu, mu_next, noise, t):
        f, _, _ = self._cells()
        ground = jnp.asarray(f == 0, mu.dtype) * self.evac_r
        r = -self.eta * jnp.log(jnp.maximum(mu, self.log_eps)) + ground
        return jnp.broadcast_to(r[:, None], (self.n_states, 6))

    def observation(self, mu, noise, t):
        f, _, _ = self._cells()
        return jnp.zeros(self.n_floor, mu.dtype).at[f].add(mu)


__all__ = ["MFGLibBuildingEvacuation"]
