"""OpenSpiel's periodic aversion game (``openspiel.periodic_aversion``), defined in
``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``python/mfg/games/periodic_aversion.py``
(``python_mfg_periodic_aversion``): a discretised mean-field game on the circle
``[xmin, xmax)`` whose explicit solution is known in continuous time (Almulla, Ferreira
and Gomes, 2017, "Two numerical approaches to stationary mean-field games").

States ``x = 0..size-1`` (position ``xmin + x dx``, ``dx = (xmax - xmin) / (size - 1)``) on
a ring; actions ``a = -k..k`` (``k = n_actions_per_side``) move by ``a`` sites, then an
idiosyncratic move ``c = -k..k`` drawn with probability proportional to the normal density
of ``c dx`` with standard deviation ``volatility sqrt(dt)``. At each ``t = 0..T-1`` an agent
at ``x`` receives

.. math::

    dt \\Big(-\\tfrac12 \\big(\\tfrac{a_{t-1} dx}{dt}\\big)^2
        - c_{av} \\log\\big(\\tfrac{\\mu_t(x)}{dx} + 10^{-15}\\big)
        + \\sigma 2 \\pi^2 \\sin(2 \\pi p) - 2 \\pi^2 \\cos^2(2 \\pi p)
        + \\tfrac{2}{\\sigma^2} \\sin(2 \\pi p)\\Big),\\quad p = xmin + x\\,dx,

the kinetic cost being that of the *previous* action (none at ``t = 0``): in mfax's time
convention it is part of ``R_t`` for ``t < T - 1`` and the last action is free.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import Spread, check, discount
from mfax.games.kernels import deterministic_kernel
from mfax.games.no_noise import NoCommonNoise
from mfax.games.openspiel.common import time_observation, torus_spread
from mfax.params import param

# OpenSpiel's periodic aversion adds 1e-15 (not crowd modelling's 1e-25) to the density
DENSITY_EPSILON = 1e-15


class PeriodicAversion(NoCommonNoise):
    name: ClassVar[str] = "openspiel.periodic_aversion"

    size: int = param(21, "number of grid points on the circle (states 0..size-1), >= 2")
    horizon: int = param(20, "number of decision steps T")
    dt: float = param(0.01, "time step (static: it sets the noise's probabilities)")
    xmin: float = param(0.0, "smallest position")
    xmax: float = param(1.0, "largest position (dx = (xmax - xmin) / (size - 1))")
    n_actions_per_side: int = param(10, "actions (and idiosyncratic moves) -k..k sites, k = n_actions_per_side")
    volatility: float = param(1.0, "volatility sigma (static: it sets the noise's probabilities)")
    coef_aversion: float = param(1.0, "weight of the crowd aversion -log(density)", traced=True)
    gamma: float = discount(1.0)

    def __check_init__(self):
        check(self.size >= 2, f"size must be >= 2, got {self.size}")
        check(self.n_actions_per_side >= 0, f"n_actions_per_side must be >= 0, got {self.n_actions_per_side}")
        check(self.dt > 0.0, f"dt must be > 0, got {self.dt}")
        check(self.xmax > self.xmin, f"xmax must be > xmin, got xmin={self.xmin}, xmax={self.xmax}")
        check(self.volatility > 0.0, f"volatility must be > 0, got {self.volatility}")

    @property
    def n_states(self) -> int:
        return self.size

    @property
    def n_actions(self) -> int:
        return 2 * self.n_actions_per_side + 1

    @property
    def dx(self) -> float:
        return (self.xmax - self.xmin) / (self.size - 1)

    def _moves(self):
        return np.arange(-self.n_actions_per_side, self.n_actions_per_side + 1)

    def noise_probabilities(self) -> np.ndarray:
        """Probabilities of the idiosyncratic moves ``-k..k``: the normal density of
        ``c dx`` (standard deviation ``volatility sqrt(dt)``), normalised."""
        std = self.volatility * np.sqrt(self.dt)
        density = np.exp(-0.5 * (self._moves() * self.dx / std) ** 2)
        return density / density.sum()

    def state_features(self):
        return (jnp.arange(self.size, dtype=float) / (self.size - 1))[:, None]

    def action_values(self):
        return jnp.asarray(self._moves(), dtype=float)

    def initial_mean_field(self, noise):
        return jnp.full(self.size, 1.0 / self.size)

    def kernel(self, mu, noise, t):
        moved = (np.arange(self.size)[:, None] + self._moves()[None, :]) % self.size
        index, prob = torus_spread(self.size, self._moves(), self.noise_probabilities())
        return deterministic_kernel(moved, Spread(index, prob.astype(mu.dtype)))

    def _state_reward(self, mu):
        pos = self.xmin + jnp.arange(self.size, dtype=mu.dtype) * self.dx
        angle = 2 * jnp.pi * pos
        sigma = self.volatility
        geometry = sigma * 2 * jnp.pi**2 * jnp.sin(angle) - 2 * jnp.pi**2 * jnp.cos(angle) ** 2
        geometry = geometry + (2 / sigma**2) * jnp.sin(angle)
        aversion = -jnp.log(mu / self.dx + DENSITY_EPSILON)
        return (self.coef_aversion * aversion + geometry) * self.dt

    def reward(self, mu, mu_next, noise, t):
        velocity = jnp.asarray(self._moves(), dtype=mu.dtype) * self.dx / self.dt
        kinetic = -0.5 * velocity**2 * self.dt
        return self._state_reward(mu)[:, None] + kinetic[None, :]

    def terminal_reward(self, mu, mu_next, noise, t):
        # the last action's kinetic cost would be paid at t = T, where the tree has ended
        return jnp.broadcast_to(self._state_reward(mu)[:, None], (self.size, self.n_actions))

    def observation(self, mu, noise, t):
        return time_observation(mu, t, self.horizon)
