"""MFGLib's random linear game (``mfglib.random_linear``; MFGLib 0.3.0,
``mfglib.env.Environment.random_linear``): rewards and transition logits are random
affine functions of the state-action distribution ``L_t``.

``n`` states and ``n`` actions, steps ``t = 0..T``, no discount; four tables drawn
uniformly on ``[-m, m]`` from ``seed`` (``R_1, R_2`` of shape ``(n, n)``, then
``P_1, P_2`` of shape ``(n, n, n)``, in that order, as MFGLib draws them: PyTorch's CPU
generator in float32, reproduced by :class:`~mfax.games.mfglib.common.TorchStream`):

.. math::

    r_t(s, a) = \\sum_k R_1[s, k]\\, L_t(k, a) + R_2[s, a], \\qquad
    p_t(s' | s, a) = \\mathrm{softmax}_{s'}\\Big(\\sum_k P_1[s', s, k]\\, L_t(k, a)
        + P_2[s', s, a]\\Big).

The products contract the state index of ``L_t`` (``L_t`` is an ``n x n`` matrix in
MFGLib, states by actions). Written as an mfax game through the exact state-action
rewriting of :mod:`mfax.games.mfglib.common` (``2 (T + 1)`` steps, ``n + n^2`` states).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import check
from mfax.games.mfglib.common import JointMeanFieldGame, TorchStream, initial_distribution, mfglib_T, no_discount
from mfax.games.mfglib.common import uniform_table as _uniform
from mfax.params import param


class MFGLibRandomLinear(JointMeanFieldGame):
    name: ClassVar[str] = "mfglib.random_linear"

    T: int = mfglib_T(3, joint=True)
    n: int = param(5, "states 0..n-1 and actions 0..n-1")
    m: float = param(10.0, "the tables are uniform on [-m, m]")
    seed: int = param(0, "seed of the tables (PyTorch's CPU generator, as MFGLib draws them)")
    mu0: tuple = param((), "initial distribution over the states (empty: uniform)")
    gamma: float = no_discount()

    def __check_init__(self):
        check(self.T >= 0, f"T must be >= 0, got {self.T}")
        check(self.n >= 1, f"n must be >= 1, got {self.n}")
        check(self.m >= 0.0, f"m must be >= 0, got {self.m}")
        TorchStream(self.seed)  # checks the seed's range
        initial_distribution(self.mu0, self.n)

    @property
    def base_states(self) -> int:
        return self.n

    @property
    def n_actions(self) -> int:
        return self.n

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(R_1, R_2, P_1, P_2)`` as MFGLib draws them from ``seed``."""
        stream = TorchStream(self.seed)
        n = self.n
        r1, r2 = _uniform(stream, self.m, n, n), _uniform(stream, self.m, n, n)
        p1, p2 = _uniform(stream, self.m, n, n, n), _uniform(stream, self.m, n, n, n)
        return r1, r2, p1, p2

    def base_mu0(self):
        return initial_distribution(self.mu0, self.n)

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(self.n, dtype=float)

    def joint_reward(self, L, t):
        r1, r2, _, _ = self.tables()
        return jnp.asarray(r1, L.dtype) @ L + jnp.asarray(r2, L.dtype)

    def joint_transition(self, L, t):
        _, _, p1, p2 = self.tables()
        logits = jnp.asarray(p1, L.dtype) @ L + jnp.asarray(p2, L.dtype)  # [s', s, a]
        return jnp.transpose(jax.nn.softmax(logits, axis=0), (1, 2, 0))


__all__ = ["MFGLibRandomLinear"]
