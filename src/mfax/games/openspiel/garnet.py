"""OpenSpiel's garnet game (``openspiel.garnet``), defined in ``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``open_spiel/games/mfg/garnet.cc`` (``mfg_garnet``): a random
mean-field MDP ("garnet", Archibald et al. 1995) with a crowd-aversion term.

For each state ``i`` and action ``j`` in generation order OpenSpiel draws, from
``std::mt19937(seed)`` through Abseil's uniform distributions: ``u``, then a reward
``U(0, 1)`` if ``u < sparsity_factor`` (else 0), then ``K - 1`` uniforms whose sorted
spacings (with 0 and 1) are the ``K`` transition probabilities, then for each of them a
next state uniform in ``0..size-1``. The game reads entry ``x + size a`` of these lists
for state ``x`` and action ``a`` (the lists are written state-major and read
action-major). At each ``t = 0..T-1`` an agent at ``x_t`` receives

.. math::

    r(x_t, a_{t-1}) - \\eta \\log(\\mu_t(x_t) + \\epsilon),

with ``a_{-1} = 0``: the reward of an action is that of the state it led to, paid one
step later. In mfax's time convention ``R_t(x, a)`` holds ``-\\eta \\log(\\mu_t(x) +
\\epsilon)``, at ``t = 0`` also ``r(x, 0)``, and for ``t < T - 1`` the expectation over the
next state of ``r(x_{t+1}, a)`` (an expectation: values and exploitability are exact, a
sampled agent is paid it instead of its draw); the last action's reward is never paid.

The generator is written here from the published algorithms (the Mersenne twister
MT19937 and Abseil's ``Uniform`` for doubles and ints), so that ``seed`` gives OpenSpiel's
very instance.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import Kernel, check, discount
from mfax.games.no_noise import NoCommonNoise
from mfax.games.openspiel.common import CPP_LOG_EPSILON, time_observation
from mfax.params import param

NEUTRAL = 0  # OpenSpiel's previous action before the first decision


class MT19937:
    """The 32-bit Mersenne twister (Matsumoto and Nishimura 1998), seeded as
    ``std::mt19937(seed)`` is."""

    def __init__(self, seed: int):
        state = [seed & 0xFFFFFFFF]
        for i in range(1, 624):
            prev = state[-1]
            state.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF)
        self.state, self.index = state, 624

    def _twist(self) -> None:
        s = self.state
        for k in range(624):
            y = (s[k] & 0x80000000) | (s[(k + 1) % 624] & 0x7FFFFFFF)
            s[k] = s[(k + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        self.index = 0

    def __call__(self) -> int:
        if self.index >= 624:
            self._twist()
        y = self.state[self.index]
        self.index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y & 0xFFFFFFFF


def uniform_double(bits32) -> float:
    """Abseil's ``Uniform<double>(rng, 0, 1)`` on a 32-bit generator: 64 bits from two
    draws (the first the high word), scaled by ``2^-64`` and truncated to 53 bits."""
    bits = (bits32() << 32) | bits32()
    if bits == 0:
        return 0.0
    shift = max(0, bits.bit_length() - 53)
    return float(bits >> shift) * 2.0 ** (shift - 64)


def uniform_int(bits32, n: int) -> int:
    """Abseil's ``Uniform<int>(rng, 0, n)``: one 32-bit draw mapped by Lemire's
    multiply-and-reject (a mask when ``n`` is a power of two)."""
    if n & (n - 1) == 0:
        return bits32() & (n - 1)
    product = bits32() * n
    if product & 0xFFFFFFFF < n:
        threshold = (2**32 - n) % n
        while product & 0xFFFFFFFF < threshold:
            product = bits32() * n
    return product >> 32


@functools.lru_cache(maxsize=16)
def garnet_tables(size: int, num_action: int, num_chance: int, sparsity: float, seed: int):
    """``(reward (size, A), prob (size, A, K), next (size, A, K))`` as the game reads them
    (entry ``x + size a`` of the lists drawn state-major; see the module docstring)."""
    rng = MT19937(seed)
    rewards, probs, nexts = [], [], []
    for _ in range(size * num_action):
        rewards.append(uniform_double(rng) if uniform_double(rng) < sparsity else 0.0)
        cuts = sorted([0.0, 1.0] + [uniform_double(rng) for _ in range(num_chance - 1)])
        spacing = [cuts[k + 1] - cuts[k] for k in range(num_chance)]
        total = 0.0
        for p in spacing:
            total += p
            nexts.append(uniform_int(rng, size))
        probs.append([p / total for p in spacing])
    # list entry x + size a belongs to (x, a)
    order = (np.arange(size)[:, None] + size * np.arange(num_action)[None, :]).reshape(-1)
    reward = np.asarray(rewards)[order].reshape(size, num_action)
    prob = np.asarray(probs)[order].reshape(size, num_action, num_chance)
    nxt = np.asarray(nexts).reshape(-1, num_chance)[order].reshape(size, num_action, num_chance)
    return reward, prob, nxt.astype(np.int32)


class Garnet(NoCommonNoise):
    name: ClassVar[str] = "openspiel.garnet"

    size: int = param(10, "number of states")
    horizon: int = param(10, "number of decision steps T")
    seed: int = param(0, "seed of OpenSpiel's generator (std::mt19937), >= 0")
    num_action: int = param(3, "number of actions")
    num_chance_action: int = param(3, "number of next states drawn for each (state, action)")
    sparsity_factor: float = param(1.0, "probability that a (state, action) has a non-zero reward (static)")
    eta: float = param(1.0, "weight of the crowd aversion -log(mu)", traced=True)
    gamma: float = discount(1.0)

    def __check_init__(self):
        check(self.size >= 1, f"size must be >= 1, got {self.size}")
        check(self.num_action >= 1, f"num_action must be >= 1, got {self.num_action}")
        check(self.num_chance_action >= 1, f"num_chance_action must be >= 1, got {self.num_chance_action}")
        sparsity = self.sparsity_factor
        check(0.0 <= sparsity <= 1.0, f"sparsity_factor must lie in [0, 1] (a probability), got {sparsity}")
        check(0 <= self.seed < 2**32, f"seed must lie in 0..2^32-1 (std::mt19937's seed), got {self.seed}")

    @property
    def n_states(self) -> int:
        return self.size

    @property
    def n_actions(self) -> int:
        return self.num_action

    def tables(self):
        return garnet_tables(self.size, self.num_action, self.num_chance_action, self.sparsity_factor, self.seed)

    def state_features(self):
        return (jnp.arange(self.size, dtype=float) / max(self.size - 1, 1))[:, None]

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(self.num_action, dtype=float)

    def initial_mean_field(self, noise):
        return jnp.full(self.size, 1.0 / self.size)

    def kernel(self, mu, noise, t):
        _, prob, nxt = self.tables()
        return Kernel(jnp.asarray(nxt), jnp.asarray(prob, mu.dtype))

    def _step(self, mu, t):
        reward, _, _ = self.tables()
        r_mu = -self.eta * jnp.log(mu + CPP_LOG_EPSILON)
        first = jnp.where(t == 0, jnp.asarray(reward[:, NEUTRAL], mu.dtype), 0.0)
        return (r_mu + first)[:, None]

    def reward(self, mu, mu_next, noise, t):
        reward, _, _ = self.tables()
        # r(x_{t+1}, a) paid at t + 1: its expectation over the next state
        paid_next = (
            self.kernel(mu, noise, t).prob
            * jnp.asarray(reward, mu.dtype).T[
                jnp.arange(self.num_action)[None, :, None], self.kernel(mu, noise, t).index
            ]
        )
        return self._step(mu, t) + jnp.sum(paid_next, axis=-1)

    def terminal_reward(self, mu, mu_next, noise, t):
        # the last action's reward would be paid at t = T, where the tree has ended
        return jnp.broadcast_to(self._step(mu, t), (self.size, self.num_action))

    def observation(self, mu, noise, t):
        return time_observation(mu, t, self.horizon)
