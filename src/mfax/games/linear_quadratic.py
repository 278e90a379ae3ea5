"""Linear-quadratic game ("linear_quadratic"), defined in ``docs/games/linear_quadratic.md``.

Agents on the integer line ``0..n-1`` pick a move ``a in -3..3`` and are rewarded for
staying close to the population mean ``m``. A hidden common shock ``z = +-1`` pushes
everybody by ``-10 z`` for ``t < 8`` and by ``+10 z`` for ``t > 20``; it can only be
inferred from how the mean moves, so history matters.

.. math::

    d = \\mathrm{clip}(s + a + \\sigma\\rho\\varepsilon_t, 0, n-1), \\qquad
    s' = \\mathrm{clip}(\\mathrm{round}(d + \\sigma\\sqrt{1-\\rho^2}\\,k), 0, n-1),
    \\quad P(k) \\propto e^{-k^2/2},\\ k \\in -3..3

    r_t(s, a) = -c_a a^2 + q a (m_{t+1} - s) - \\tfrac{\\kappa}{2}(m_{t+1} - s)^2, \\qquad
    r_{T-1}(s, a) = -\\tfrac{c_T}{2}(m_{t+1} - s)^2

Observation: ``[m_t / n]``. Noise pytree: :class:`LQNoise`.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport, check, discount, moves
from mfax.games.kernels import snap_halves
from mfax.params import param


class LQNoise(NamedTuple):
    """z: () float, the common shock (+1 or -1; 0 with common noise off)."""

    z: jax.Array


class LinearQuadratic(Game):
    name: ClassVar[str] = "linear_quadratic"

    num_states: int = param(99, "number of grid points (states 0..num_states-1)")
    max_action: int = moves(3)
    horizon: int = param(30, "number of decision steps T")
    gamma: float = discount(0.99)
    kappa: float = param(0.5, "weight of the distance-to-mean penalty", traced=True)
    c_action: float = param(0.5, "quadratic cost of moving", traced=True)
    q: float = param(0.1, "cross term weight q a (m - s)", traced=True)
    c_term: float = param(1.0, "terminal distance-to-mean penalty", traced=True)
    sigma: float = param(1.0, "noise scale", traced=True)
    rho: float = param(0.5, "share of the noise that is common (0..1)", traced=True)
    shift: float = param(10.0, "size of the common shift eps_t (read only with common_noise=true)", traced=True)
    shift_until: int = param(8, "eps_t = -shift*z for t < shift_until (common_noise=true)", traced=True)
    shift_from: int = param(20, "eps_t = +shift*z for t > shift_from (common_noise=true)", traced=True)
    noise_half_width: int = param(
        3,
        "idiosyncratic offsets k in -w..w (static: fixes the kernel's shape; read only with idiosyncratic_noise=true)",
    )
    common_noise: bool = param(True, "draw z = +-1 (off: z = 0)")
    idiosyncratic_noise: bool = param(True, "add the idiosyncratic offsets k (off: next state is d)")

    def __check_init__(self):
        check(self.num_states >= 2, f"num_states must be >= 2, got {self.num_states}")
        check(self.max_action >= 0, f"max_action must be >= 0, got {self.max_action}")
        check((0.0 <= self.rho) & (self.rho <= 1.0), f"rho must lie in [0, 1], got {self.rho}")
        check(self.sigma >= 0.0, f"sigma must be >= 0, got {self.sigma}")
        check(self.noise_half_width >= 0, f"noise_half_width must be >= 0, got {self.noise_half_width}")

    @property
    def n_states(self) -> int:
        return self.num_states

    @property
    def n_actions(self) -> int:
        return 2 * self.max_action + 1

    @property
    def own_history_informative(self) -> bool:
        """``True`` while the common shift acts (``common_noise`` and a non-zero
        ``sigma rho shift``): it moves the whole population, and the public mean usually
        shows it, but not always: with the population pressed against a grid end,
        clipping hides the shift from the mean and not from an agent's own move, and the
        rounding of a half-integer shift can hide it too. Where the mean does show it,
        :func:`~mfax.evaluation.exploitability.public_history_shows_own` certifies the
        information-consistent figure exact on the paths evaluated. For games stacked on
        a run axis: whether it holds for any of them."""
        moves = np.any(np.not_equal(np.asarray(self.sigma) * np.asarray(self.rho) * np.asarray(self.shift), 0.0))
        return bool(self.common_noise) and bool(moves)

    def state_features(self):
        return jnp.arange(self.num_states, dtype=float)[:, None] / (self.num_states - 1)

    def action_values(self):
        return jnp.arange(-self.max_action, self.max_action + 1, dtype=float)

    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.idiosyncratic_noise:
            return np.zeros(1), np.ones(1)
        k = np.arange(-self.noise_half_width, self.noise_half_width + 1, dtype=np.float64)
        w = np.exp(-(k**2) / 2.0)
        return k, w / w.sum()

    def sample_noise(self, key):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        return LQNoise(z=sign if self.common_noise else jnp.zeros(()))

    def noise_support(self):
        if not self.common_noise:
            return NoiseSupport(LQNoise(z=jnp.zeros(1)), jnp.ones(1))
        return NoiseSupport(LQNoise(z=jnp.array([1.0, -1.0])), jnp.array([0.5, 0.5]))

    def initial_mean_field(self, noise):
        return jnp.full(self.num_states, 1.0 / self.num_states)

    def _shift(self, noise, t):
        eps = jnp.where(t < self.shift_until, -self.shift, jnp.where(t > self.shift_from, self.shift, 0.0))
        return eps * noise.z

    def kernel(self, mu, noise, t):
        top = self.num_states - 1
        s = jnp.arange(self.num_states, dtype=float)[:, None, None]
        a = self.action_values()[None, :, None]
        k, w = self._offsets()
        d = jnp.clip(s + a + self.sigma * self.rho * self._shift(noise, t), 0, top)
        # Python numbers (a single game) keep this in float64 on the host; a traced rho
        # (games stacked on a run axis) computes it in the program
        spread = self.sigma * (1.0 - self.rho**2) ** 0.5 * k
        nxt = jnp.clip(jnp.round(snap_halves(d + jnp.asarray(spread))), 0, top).astype(jnp.int32)
        prob = jnp.broadcast_to(jnp.asarray(w, dtype=float), nxt.shape)
        return Kernel(nxt, prob)

    def _gap(self, mu_next):
        m_next = mu_next @ jnp.arange(self.num_states, dtype=mu_next.dtype)
        return (m_next - jnp.arange(self.num_states, dtype=mu_next.dtype))[:, None]

    def reward(self, mu, mu_next, noise, t):
        a = self.action_values()[None, :]
        gap = self._gap(mu_next)
        return -self.c_action * a**2 + self.q * a * gap - 0.5 * self.kappa * gap**2

    def terminal_reward(self, mu, mu_next, noise, t):
        gap = self._gap(mu_next)
        return jnp.broadcast_to(-0.5 * self.c_term * gap**2, (self.num_states, self.n_actions))

    def describe_noise(self, noise):
        z = float(noise.z)
        return "no common shock" if z == 0.0 else f"common shock z = {z:+g}"

    def observation(self, mu, noise, t):
        m = mu @ jnp.arange(self.num_states, dtype=mu.dtype)
        return jnp.stack([m / self.num_states])
