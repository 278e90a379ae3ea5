"""MFGLib's equilibrium-price game (``mfglib.equilibrium_price``; MFGLib 0.3.0,
``mfglib.env.Environment.equilibrium_price``), after Guo et al. (2022).

Firms hold an inventory ``s = 0..s_inv`` of raw material; each step a firm chooses a
production ``q = 0..Q`` and a replenishment ``h = 0..H`` (actions ``(q, h)`` flattened
row-major: ``a = q (H + 1) + h``) and its inventory becomes
``min(s - min(q, s) + h, s_inv)``. The price clears the market against the population's
total production: with ``L_t`` the state-action distribution,

.. math::

    p_t = \\Big(\\frac{d}{\\sum_{s, q, h} q\\, L_t(s, q, h) + e_0}\\Big)^{1/\\sigma},

    r_t(s, q, h) = (p_t - c_0) q - c_1 q^2 - c_2 h - (c_2 + c_3) \\max(q - s, 0) - c_4 s,

at every step ``t = 0..T``, no discount (MFGLib's reward, which sells ``q`` whatever the
inventory and charges the shortfall ``max(q - s, 0)``). The price reads what firms
produce, i.e. ``L_t``: written as an mfax game through the exact state-action rewriting
of :mod:`mfax.games.mfglib.common` (``2 (T + 1)`` steps).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import check
from mfax.games.mfglib.common import JointMeanFieldGame, initial_distribution, mfglib_T, no_discount
from mfax.params import param


class MFGLibEquilibriumPrice(JointMeanFieldGame):
    name: ClassVar[str] = "mfglib.equilibrium_price"

    T: int = mfglib_T(4, joint=True)
    s_inv: int = param(3, "inventory capacity: inventories 0..s_inv")
    Q: int = param(2, "largest production: q = 0..Q")
    H: int = param(2, "largest replenishment: h = 0..H")
    d: float = param(1.0, "demand scale d of the price (d / (production + e0))^(1/sigma)", traced=True)
    e0: float = param(1.0, "demand offset e0 of the price", traced=True)
    sigma: float = param(1.0, "demand elasticity sigma of the price", traced=True)
    c: tuple = param(
        (1.0, 1.0, 1.0, 1.0, 1.0),
        "costs c0..c4: unit production, quadratic production, replenishment, shortfall (added to c2), holding",
    )
    mu0: tuple = param((), "initial distribution over inventories 0..s_inv (empty: uniform)")
    gamma: float = no_discount()

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        for name in ("s_inv", "Q", "H"):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        check(len(self.c) == 5, f"c must hold the 5 costs c0..c4, got {len(self.c)}")
        check(self.e0 > 0.0, f"e0 must be > 0 (the price divides by production + e0), got {self.e0}")
        check(self.sigma != 0.0, "sigma must not be 0 (the price takes the power 1/sigma)")
        initial_distribution(self.mu0, self.s_inv + 1)

    @property
    def base_states(self) -> int:
        return self.s_inv + 1

    @property
    def n_actions(self) -> int:
        return (self.Q + 1) * (self.H + 1)

    def _grid(self):
        s = np.arange(self.s_inv + 1)[:, None]
        q = np.repeat(np.arange(self.Q + 1), self.H + 1)[None, :]
        h = np.tile(np.arange(self.H + 1), self.Q + 1)[None, :]
        return s, q, h

    def base_mu0(self):
        return initial_distribution(self.mu0, self.s_inv + 1)

    def action_values(self):
        return jnp.asarray(np.repeat(np.arange(self.Q + 1), self.H + 1), dtype=float)

    def price(self, L):
        """The clearing price ``p_t`` of a state-action distribution ``(n, m)``."""
        _, q, _ = self._grid()
        produced = jnp.sum(L * jnp.asarray(q, L.dtype))
        return (self.d / (produced + self.e0)) ** (1.0 / self.sigma)

    def joint_reward(self, L, t):
        c0, c1, c2, c3, c4 = self.c
        s, q, h = (jnp.asarray(x, L.dtype) for x in self._grid())
        p = self.price(L)
        return (p - c0) * q - c1 * q**2 - c2 * h - (c2 + c3) * jnp.maximum(q - s, 0.0) - c4 * s

    def joint_transition(self, L, t):
        s, q, h = self._grid()
        nxt = np.minimum(s - np.minimum(q, s) + h, self.s_inv)  # (n, m)
        return np.eye(self.s_inv + 1)[nxt]

    def aggregates(self, mu, noise, t):
        """MFGLib's price ``p_k`` at the move step ``t = 2k + 1``, whose cells hold
        ``L_k``; NaN at the choice steps ``t = 2k``, before the population has chosen (the
        empty cells would give ``(d / e0)^(1/sigma)``, the price of no production)."""
        return {"price p_k (at the move steps t = 2k + 1)": jnp.where(t % 2 == 1, self.price(self.joint(mu)), jnp.nan)}


__all__ = ["MFGLibEquilibriumPrice"]
