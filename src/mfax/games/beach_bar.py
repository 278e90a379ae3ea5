"""Beach bar game ("beach_bar"), defined in ``docs/games/beach_bar.md``.

Agents on a beach ``0..n-1`` want to be near a bar at a random location ``b`` (drawn
at reset from ``floor(n/4) .. ceil(3n/4) - 1`` and observed). Nobody can land on or
cross the bar. With common noise on, the bar closes with probability 1/2 at ``t = T//2``;
being next to it at any ``t`` with ``z_{t+1} = 0`` (from ``t = T//2 - 1`` on) costs
``n``. Agents do not observe ``t``, so they must remember how long they have been there.

.. math::

    r_t(s, a) = -|b - s| z_t - n\\,[|b - s| = 1]\\,[z_{t+1} = 0] - |a| / n

(the same at the last step). Observation: ``[1 - m_t/n, z_t, 1 - b/n]``.
Noise pytree: :class:`BeachBarNoise`.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.errors import advice
from mfax.games.base import Game, NoiseSupport, Spread, check, check_probabilities, discount, moves
from mfax.games.kernels import deterministic_kernel
from mfax.params import param


class BeachBarNoise(NamedTuple):
    """bar: () int32 bar location; z: (T+1,) float, 1 while the bar is open, else 0."""

    bar: jax.Array
    z: jax.Array


class BeachBar(Game):
    name: ClassVar[str] = "beach_bar"

    num_states: int = param(101, "number of beach positions (states 0..num_states-1)")
    max_action: int = moves(5)
    horizon: int = param(30, "number of decision steps T (the bar may close at T//2)")
    gamma: float = discount(0.99)
    idiosyncratic_probs: tuple[float, ...] = param(
        (0.05, 0.1, 0.7, 0.1, 0.05),
        "probabilities of the offsets -w..w (odd length, sums to 1; static: the length fixes the kernel's shape; "
        "read only with idiosyncratic_noise=true)",
    )
    close_probability: float = param(
        0.5,
        "probability that the bar closes at t = T//2 (static: the noise support keeps only possible outcomes; "
        "read only with common_noise=true)",
    )
    common_noise: bool = param(True, "the bar may close (off: it never closes)")
    idiosyncratic_noise: bool = param(True, "add the idiosyncratic offsets (off: next state is d)")

    def __check_init__(self):
        check(self.num_states >= 3, f"num_states must be >= 3, got {self.num_states}")
        check(self.max_action >= 0, f"max_action must be >= 0, got {self.max_action}")
        check_probabilities(self.idiosyncratic_probs, "idiosyncratic_probs")
        check(
            len(self.idiosyncratic_probs) % 2 == 1,
            f"idiosyncratic_probs needs an odd length (offsets -w..w), got {len(self.idiosyncratic_probs)}",
        )
        check(
            0.0 <= self.close_probability <= 1.0, f"close_probability must lie in [0, 1], got {self.close_probability}"
        )
        # z_0 = 1: the bar can close only at a step that reaches T//2 >= 1 (with T = 1 it
        # was closed from the start on the closing paths)
        check(
            self.horizon >= 2 or not self.common_noise,
            f"horizon must be >= 2 with common noise (the bar may close at t = T//2 >= 1), got {self.horizon}; "
            f"or {advice('--set common_noise=false', 'common_noise=False')}",
        )

    @property
    def n_states(self) -> int:
        return self.num_states

    @property
    def n_actions(self) -> int:
        return 2 * self.max_action + 1

    @property
    def own_history_informative(self) -> bool:
        """``False``: the kernel depends on the noise only through the bar location,
        and rewards through the bar and ``z_t``; all are observed."""
        return False

    @property
    def common_noise_off(self) -> None:
        """``None``: the bar's location is drawn at every reset, whether it may close or not
        (``common_noise=false`` leaves one noise path per bar location)."""
        return None

    @property
    def shared_until(self) -> int:
        """``T//2`` with common noise: before the bar may close, ``z_t = 1`` on every path,
        so the two outcomes of a bar location share ``mu_0..mu_{T//2}`` and the
        decisions of ``t < T//2``."""
        return self.close_time if self.common_noise else 0

    def prefix_key(self, noise):
        """The bar location (all that the start of a path depends on)."""
        return noise.bar.astype(jnp.result_type(float))[None]

    @property
    def bar_range(self) -> tuple[int, int]:
        """Inclusive range of bar locations: floor(0.25 n) .. ceil(0.75 n) - 1."""
        return math.floor(0.25 * self.num_states), math.ceil(0.75 * self.num_states) - 1

    @property
    def close_time(self) -> int:
        return self.horizon // 2

    def state_features(self):
        return jnp.arange(self.num_states, dtype=float)[:, None] / (self.num_states - 1)

    def action_values(self):
        return jnp.arange(-self.max_action, self.max_action + 1, dtype=float)

    def _z_path(self, closes):
        t = jnp.arange(self.horizon + 1)
        return jnp.where((t >= self.close_time) & closes, 0.0, 1.0)

    def sample_noise(self, key):
        k_bar, k_close = jax.random.split(key)
        lo, hi = self.bar_range
        bar = jax.random.randint(k_bar, (), lo, hi + 1, dtype=jnp.int32)
        closes = jax.random.bernoulli(k_close, self.close_probability) & self.common_noise
        return BeachBarNoise(bar=bar, z=self._z_path(closes))

    def noise_support(self):
        lo, hi = self.bar_range
        bars = np.arange(lo, hi + 1)
        p_close = self.close_probability if self.common_noise else 0.0
        outcomes = [(c, p) for c, p in ((False, 1.0 - p_close), (True, p_close)) if p > 0.0]
        bar = np.array([b for b in bars for _ in outcomes], dtype=np.int32)
        closes = np.array([c for _ in bars for c, _ in outcomes])
        weight = np.array([p / len(bars) for _ in bars for _, p in outcomes])
        # _z_path of every path, with numpy: a host computation put on the device (eagerly,
        # each jax.numpy operation would be a program of its own, compiled or read from the
        # compilation cache in every fresh process)
        z = np.where((np.arange(self.horizon + 1) >= self.close_time) & closes[:, None], 0.0, 1.0)
        dtype = jnp.result_type(float)
        noise = BeachBarNoise(bar=jax.device_put(bar), z=jax.device_put(z.astype(dtype)))
        return NoiseSupport(noise, jax.device_put(weight.astype(dtype)))

    def initial_mean_field(self, noise):
        s = jnp.arange(self.num_states)
        return jnp.where(s == noise.bar, 0.0, 1.0 / (self.num_states - 1))

    @staticmethod
    def _legal(s, proposed, bar):
        """Neither land on nor cross the bar, measured from the original state ``s``."""
        return jnp.where(
            (s < bar) & (proposed >= bar), bar - 1, jnp.where((s > bar) & (proposed <= bar), bar + 1, proposed)
        )

    def kernel(self, mu, noise, t):
        """Two stages: the move ``d = legal(s, clip(s + a))``, then the idiosyncratic
        offset ``legal(s, clip(d + k))``. The second stage depends on ``s`` only through
        its side of the bar, which ``d`` shares, except from ``s = b`` itself (no
        restriction): intermediate states ``0..n-1`` are ``d`` reached from ``s != b``,
        ``n..2n-1`` are ``d`` reached from ``s = b``."""
        n, top, bar = self.num_states, self.num_states - 1, noise.bar
        s = jnp.arange(n, dtype=jnp.int32)[:, None]
        a = jnp.arange(-self.max_action, self.max_action + 1, dtype=jnp.int32)[None, :]
        d = self._legal(s, jnp.clip(s + a, 0, top), bar)  # (n, m)
        if not self.idiosyncratic_noise:
            return deterministic_kernel(d)
        w = len(self.idiosyncratic_probs) // 2
        k = jnp.arange(-w, w + 1, dtype=jnp.int32)[None, :]
        mid = jnp.where(s == bar, d + n, d)
        j = jnp.arange(2 * n, dtype=jnp.int32)[:, None]
        origin = jnp.where(j < n, j, bar)  # a state on the intermediate state's side (or b)
        nxt = self._legal(origin, jnp.clip(j % n + k, 0, top), bar)  # (2n, K2)
        probs = jnp.broadcast_to(jnp.asarray(self.idiosyncratic_probs, dtype=float), nxt.shape)
        return deterministic_kernel(mid, then=Spread(nxt, probs))

    def reward(self, mu, mu_next, noise, t):
        n = self.num_states
        dist = jnp.abs(noise.bar - jnp.arange(n)).astype(mu.dtype)[:, None]
        z_now, z_next = noise.z[t], noise.z[t + 1]
        closing_penalty = n * (dist == 1) * (z_next == 0)
        return -dist * z_now - closing_penalty - jnp.abs(self.action_values())[None, :] / n

    def describe_noise(self, noise):
        closes = float(noise.z[-1]) == 0.0
        return f"bar at state {int(noise.bar)}, " + (f"closes at t = {self.close_time}" if closes else "stays open")

    def observation(self, mu, noise, t):
        n = self.num_states
        m = mu @ jnp.arange(n, dtype=mu.dtype)
        return jnp.stack([1.0 - m / n, noise.z[t], 1.0 - noise.bar.astype(mu.dtype) / n])
