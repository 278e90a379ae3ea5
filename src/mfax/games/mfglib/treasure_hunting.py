"""MFGLib's conservative treasure hunting (``mfglib.conservative_treasure_hunting``;
MFGLib 0.3.0, ``mfglib.env.Environment.conservative_treasure_hunting``), after Guo et
al. (2022).

``n`` sites (states) and ``n`` actions (the site to go to), steps ``t = 0..T``, no
discount. At ``t = 0`` an agent goes to the site it chooses and nothing is paid. At
``t >= 1``, with ``L_t`` the state-action distribution and
``D_t(s) = \\sum_{k, b} (L_t(k, b) - [k = b = s])^2`` how far the population is from
everybody staying at ``s`` (the squared distance of ``L_t`` to the one-hot at
``(s, s)``),

.. math::

    p_t(s' | s, a) = \\frac{c_{t-1} D_t(s) + [s' = a]}{1 + n\\, c_{t-1} D_t(s)},
    \\qquad r_t(s, a) = r_s (1 - D_t(s) / 2)\\, [a = s],

so an agent is paid for staying on its site, the more the less the population is spread,
and the more spread it is the less its move goes where it wants. Both read ``L_t``:
written as an mfax game through the exact state-action rewriting of
:mod:`mfax.games.mfglib.common` (``2 (T + 1)`` steps). MFGLib requires ``len(c) = T``
and reads ``c_0..c_{T-1}`` (``c_{T-1}`` only by the transition after the last step,
which is never paid).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import check
from mfax.games.mfglib.common import JointMeanFieldGame, initial_distribution, mfglib_T, no_discount
from mfax.params import param


class MFGLibConservativeTreasureHunting(JointMeanFieldGame):
    name: ClassVar[str] = "mfglib.conservative_treasure_hunting"

    T: int = mfglib_T(5, "len(c) must equal T", joint=True)
    n: int = param(3, "sites: states 0..n-1, actions 0..n-1")
    r: tuple = param((1.0, 1.0, 1.0), "treasure r_s of each site (n values)")
    c: tuple = param((1.0, 1.0, 1.0, 1.0, 1.0), "congestion c_t of the moves at t = 1..T (T values)")
    mu0: tuple = param((), "initial distribution over the sites (empty: uniform)")
    gamma: float = no_discount()

    def __check_init__(self):
        check(self.T >= 1, f"T must be >= 1 (c holds T values), got {self.T}")
        check(self.n >= 1, f"n must be >= 1, got {self.n}")
        check(len(self.r) == self.n, f"r must hold n = {self.n} values, got {len(self.r)}")
        check(len(self.c) == self.T, f"c must hold T = {self.T} values, got {len(self.c)}")
        check(all(x >= 0.0 for x in self.c), f"c must be non-negative (probabilities), got {self.c}")
        initial_distribution(self.mu0, self.n)

    @property
    def base_states(self) -> int:
        return self.n

    @property
    def n_actions(self) -> int:
        return self.n

    def base_mu0(self):
        return initial_distribution(self.mu0, self.n)

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(self.n, dtype=float)

    def spread(self, L):
        """``D(s)`` for every site: ``||L - e_(s,s)||^2``."""
        one_hot = jnp.asarray(np.eye(self.n)[:, :, None] * np.eye(self.n)[:, None, :], L.dtype)  # [s, k, b]
        return jnp.sum((L[None] - one_hot) ** 2, axis=(1, 2))

    def joint_reward(self, L, t):
        paid = jnp.asarray(self.r, L.dtype) * (1.0 - self.spread(L) / 2.0)
        return jnp.where(t == 0, 0.0, jnp.diag(paid))

    def joint_transition(self, L, t):
        n = self.n
        c = jnp.asarray(self.c, L.dtype)[jnp.maximum(t - 1, 0)]
        spread = c * self.spread(L)[:, None, None]  # (s, 1, 1)
        chosen = jnp.asarray(np.eye(n), L.dtype)[None, :, :]  # [s, a, s'] = [s' = a]
        moved = spread / (1.0 + n * spread) + chosen / (1.0 + n * spread)
        return jnp.where(t == 0, jnp.broadcast_to(chosen, (n, n, n)), moved)


__all__ = ["MFGLibConservativeTreasureHunting"]
