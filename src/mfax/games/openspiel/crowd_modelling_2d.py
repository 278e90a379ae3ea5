"""OpenSpiel's 2-D crowd modelling game (``openspiel.crowd_modelling_2d``), defined in
``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``open_spiel/games/mfg/crowd_modelling_2d.cc``
(``mfg_crowd_modelling_2d``).

Agents on a ``size x size`` torus (state ``x size + y``) move by one of five actions
(``(0,-1), (-1,0), (0,0), (1,0), (0,1)``; a move into a forbidden cell is not allowed),
then the idiosyncratic noise moves them by one of the allowed moves from there, each with
probability ``noise_intensity / #allowed`` (the neutral one ``1 - noise_intensity`` more).
At each ``t = 0..T-1`` an agent at ``(x, y)`` receives

.. math::

    r_t = 1 - \\sum_i \\tfrac{2 v_i}{size} |x - p^x_i| + 1 - \\sum_i \\tfrac{2 v_i}{size} |y - p^y_i|
          - \\frac{|\\delta x_{t-1}| + |\\delta y_{t-1}|}{size} \\,[\\mu_t(x, y)]_{congestion}
          - c \\log(\\mu_t(x, y) + 10^{-25})

(targets ``p_i`` with values ``v_i``, by default the centre with 1; with
``only_distribution_reward`` only the last term), the move cost being that of the
*previous* action, times the density at the cell it led to with ``with_congestion``. In
mfax's time convention that cost is part of ``R_t`` (with congestion, in expectation over
the move's outcome) for ``t < T - 1``; the last action is free.

mfax has every action at every state: a move into a forbidden cell stays put at no cost,
exactly like the neutral action (so best responses and values are OpenSpiel's; a policy
putting mass on it plays the neutral action there). Cell lists use OpenSpiel's text
format, ``"[x|y;x|y]"`` and ``"[v;v]"`` (values read as 32-bit floats, as OpenSpiel does).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import Spread, check, discount
from mfax.games.kernels import deterministic_kernel
from mfax.games.no_noise import NoCommonNoise
from mfax.games.openspiel.common import CPP_LOG_EPSILON, time_observation
from mfax.params import param

MOVE_X = (0, -1, 0, 1, 0)
MOVE_Y = (-1, 0, 0, 0, 1)
NEUTRAL = 2


def _items(text: str, what: str) -> list[str]:
    body = text.strip()
    check(body.startswith("[") and body.endswith("]"), f"{what} must look like [..;..], got {text!r}")
    body = body[1:-1]
    return [item.strip() for item in body.split(";")] if body.strip() else []


def parse_cells(text: str, what: str, size: int) -> list[tuple[int, int]]:
    """``"[x|y;x|y]"`` -> ``[(x, y), ..]``, each in ``0..size-1``."""
    cells = []
    for item in _items(text, what):
        parts = item.split("|")
        ok = len(parts) == 2 and all(p.strip().lstrip("-").isdigit() for p in parts)
        check(ok, f"{what} must list cells x|y separated by ';', got {item!r}")
        x, y = (int(p) for p in parts)
        check(0 <= x < size and 0 <= y < size, f"{what}: cell {x}|{y} is off the {size}x{size} grid")
        cells.append((x, y))
    return cells


def parse_values(text: str, what: str) -> list[float]:
    """``"[v;v]"`` -> values rounded to 32-bit floats (OpenSpiel reads them as ``float``)."""
    values = []
    for item in _items(text, what):
        try:
            values.append(float(np.float32(float(item))))
        except ValueError:
            check(False, f"{what} must list numbers separated by ';', got {item!r}")
    return values


class CrowdModelling2d(NoCommonNoise):
    name: ClassVar[str] = "openspiel.crowd_modelling_2d"

    size: int = param(10, "side of the torus (states x * size + y), >= 1")
    horizon: int = param(10, "number of decision steps T")
    only_distribution_reward: bool = param(False, "reward only -c log(mu): no position reward, no move cost")
    forbidden_states: str = param("[]", "cells nobody may enter, '[x|y;x|y]'")
    initial_distribution: str = param("[]", "cells of the initial mass, '[x|y;..]' ([]: uniform)")
    initial_distribution_value: str = param("[]", "their masses, '[v;..]' (summing to 1)")
    positional_reward: str = param("[]", "target cells, '[x|y;..]' ([]: the centre size//2|size//2)")
    positional_reward_value: str = param("[]", "their weights, '[v;..]' ([]: 1)")
    with_congestion: bool = param(False, "the move cost is multiplied by the density where the move led")
    noise_intensity: float = param(1.0, "probability spread over the allowed moves by the noise (static)")
    crowd_aversion_coef: float = param(1.0, "weight c of -log(mu)", traced=True)
    gamma: float = discount(1.0)

    n_actions: ClassVar[int] = 5

    def __check_init__(self):
        check(self.size >= 1, f"size must be >= 1, got {self.size}")
        check(0.0 <= self.noise_intensity <= 1.0, f"noise_intensity must lie in [0, 1], got {self.noise_intensity}")
        forbidden = set(parse_cells(self.forbidden_states, "forbidden_states", self.size))
        start = parse_cells(self.initial_distribution, "initial_distribution", self.size)
        mass = parse_values(self.initial_distribution_value, "initial_distribution_value")
        check(
            len(start) == len(mass),
            "initial_distribution and initial_distribution_value need as many entries, "
            f"got {len(start)} and {len(mass)}",
        )
        check(all(v >= 0 for v in mass), f"initial_distribution_value must be >= 0, got {mass}")
        check(not start or abs(sum(mass) - 1.0) < 1e-6, f"initial_distribution_value must sum to 1, got {sum(mass)}")
        check(not forbidden & set(start), "initial_distribution must not put mass on a forbidden state")
        check(not forbidden or len(forbidden) < self.size**2, "forbidden_states must leave some cell free")
        check(
            bool(start) or not forbidden,
            "with forbidden_states, give initial_distribution (uniform would start in them)",
        )
        targets = parse_cells(self.positional_reward, "positional_reward", self.size)
        weights = parse_values(self.positional_reward_value, "positional_reward_value")
        check(
            len(targets) == len(weights),
            "positional_reward and positional_reward_value need as many entries, "
            f"got {len(targets)} and {len(weights)}",
        )

    @property
    def n_states(self) -> int:
        return self.size * self.size

    # -- the grid (numpy, static) --------------------------------------------------------
    def _forbidden(self) -> np.ndarray:
        mask = np.zeros((self.size, self.size), bool)
        for x, y in parse_cells(self.forbidden_states, "forbidden_states", self.size):
            mask[x, y] = True
        return mask.reshape(-1)

    def _targets(self) -> np.ndarray:
        """``(n, 5)`` the cell each action leads to from each cell (itself when forbidden)."""
        x, y = np.divmod(np.arange(self.n_states), self.size)
        tx = (x[:, None] + np.asarray(MOVE_X)[None, :]) % self.size
        ty = (y[:, None] + np.asarray(MOVE_Y)[None, :]) % self.size
        target = tx * self.size + ty
        allowed = ~self._forbidden()[target]
        return np.where(allowed, target, np.arange(self.n_states)[:, None]), allowed

    def noise(self) -> Spread:
        """The idiosyncratic move from each cell: the allowed moves, ``noise_intensity``
        spread evenly over them and the rest on the neutral one."""
        target, allowed = self._targets()
        count = allowed.sum(axis=1, keepdims=True)
        prob = np.where(allowed, self.noise_intensity / np.maximum(count, 1), 0.0)
        prob[:, NEUTRAL] += 1.0 - self.noise_intensity
        return Spread(jnp.asarray(target, jnp.int32), jnp.asarray(prob))

    def _move_cost(self) -> np.ndarray:
        _, allowed = self._targets()
        cost = (np.abs(MOVE_X) + np.abs(MOVE_Y)) / self.size
        return np.where(allowed, -cost[None, :], 0.0)

    def _position_reward(self) -> np.ndarray:
        targets = parse_cells(self.positional_reward, "positional_reward", self.size)
        weights = parse_values(self.positional_reward_value, "positional_reward_value")
        if not targets:
            targets, weights = [(self.size // 2, self.size // 2)], [1.0]
        x, y = np.divmod(np.arange(self.n_states), self.size)
        r_x, r_y = np.ones(self.n_states), np.ones(self.n_states)
        for (px, py), v in zip(targets, weights, strict=True):
            r_x -= 2.0 * v / self.size * np.abs(x - px)
            r_y -= 2.0 * v / self.size * np.abs(y - py)
        return r_x + r_y

    # -- the protocol ----------------------------------------------------------------------
    def state_features(self):
        x, y = np.divmod(np.arange(self.n_states), self.size)
        return jnp.asarray(np.stack([x, y], axis=1) / max(self.size - 1, 1), dtype=float)

    @property
    def state_grid(self):
        return (("x", self.size), ("y", self.size))

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(5, dtype=float)

    def initial_mean_field(self, noise):
        start = parse_cells(self.initial_distribution, "initial_distribution", self.size)
        if not start:
            return jnp.full(self.n_states, 1.0 / self.n_states)
        mass = parse_values(self.initial_distribution_value, "initial_distribution_value")
        mu = np.zeros(self.n_states)
        for (x, y), v in zip(start, mass, strict=True):
            mu[x * self.size + y] += v
        return jnp.asarray(mu)

    def kernel(self, mu, noise, t):
        target, _ = self._targets()
        spread = self.noise()
        return deterministic_kernel(target, Spread(spread.index, spread.prob.astype(mu.dtype)))

    def _state_reward(self, mu):
        r_mu = -self.crowd_aversion_coef * jnp.log(mu + CPP_LOG_EPSILON)
        if self.only_distribution_reward:
            return r_mu
        return jnp.asarray(self._position_reward(), mu.dtype) + r_mu

    def reward(self, mu, mu_next, noise, t):
        base = self._state_reward(mu)[:, None]
        if self.only_distribution_reward:
            return jnp.broadcast_to(base, (self.n_states, 5))
        cost = jnp.asarray(self._move_cost(), mu.dtype)
        if self.with_congestion:  # the density at t + 1 where the move (and the noise) led
            cost = cost * self.kernel(mu, noise, t).expect(mu_next)
        return base + cost

    def terminal_reward(self, mu, mu_next, noise, t):
        # the last action's cost would be paid at t = T, where the tree has ended
        return jnp.broadcast_to(self._state_reward(mu)[:, None], (self.n_states, 5))

    def observation(self, mu, noise, t):
        return time_observation(mu, t, self.horizon)
