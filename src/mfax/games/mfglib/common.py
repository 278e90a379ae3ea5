"""What MFGLib's games share once written for mfax: its time convention, its initial
distributions, the random draws of its seeded games, and the exact rewriting of a game
whose rewards or transitions read the state-action distribution.

Time. MFGLib's games run over ``t = 0..T`` with an action and a reward at every step,
``T`` included, and no discount; mfax decides at ``t = 0..horizon - 1``, so a game of
MFGLib's ``T`` has mfax ``horizon = T + 1`` and ``gamma = 1`` (the transition after the
last action goes nowhere that is paid).

Seeded draws. MFGLib draws the random tables of ``random_linear`` and the bar's walk of
``crowd_motion`` from PyTorch's CPU generator after ``torch.manual_seed(seed)``, in
PyTorch's default float32. That generator is the 32-bit Mersenne Twister seeded as
MT19937's reference ``init_genrand``; a float32 uniform takes the low 24 bits of one
draw (``(x & (2^24 - 1)) 2^-24``) and an integer uniform on ``{0, 1}`` its remainder
mod 2. :class:`TorchStream` reproduces both from NumPy's MT19937 with the same legacy
seeding, so mfax's games hold exactly MFGLib's tables without PyTorch (checked against
MFGLib in ``tests/test_mfglib_games.py``).

State-action mean fields. Several of MFGLib's games read the joint distribution
``L_t(s, a) = mu_t(s) pi_t(a|s)`` of states and actions, not the state distribution
``mu_t`` alone (the price of ``equilibrium_price`` depends on what firms produce), while
an mfax game sees ``mu_t`` and ``mu_{t+1}``. :class:`JointMeanFieldGame` rewrites such a
game exactly with two mfax steps per MFGLib step over ``n + n m`` states: at step
``2t`` an agent in state ``s`` chooses ``a`` and moves, deterministically, to the
state-action cell ``(s, a)``, so that ``mu_{2t+1}`` restricted to the cells *is*
``L_t``, and receives MFGLib's ``r_t(s, a; L_t)`` (read from ``mu_{2t+1}``, the
``mu_next`` of that step); at step ``2t + 1`` the agent in cell ``(s, a)`` moves to
``s'`` with MFGLib's ``p_t(s' | s, a; L_t)`` (read from ``mu_{2t+1}``, that step's
``mu``) whatever it chooses, and receives nothing. Values, best responses,
exploitability, fictitious play and mirror descent are unchanged: at the odd steps every
action has the same ``Q`` exactly, so best responses split evenly and mirror descent
stays uniform there, and the even steps carry MFGLib's policy ``pi_t`` row for row
(:func:`joint_table` maps a table of MFGLib's layout onto the rewritten game's).
"""

from __future__ import annotations

import abc

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from mfax.games.base import Kernel, check, check_probabilities
from mfax.games.no_noise import NoCommonNoise, NoNoise
from mfax.params import param

SOURCE = "MFGLib 0.3.0"


def mfglib_T(default: int, what: str = "", joint: bool = False) -> int:
    """The field declaring MFGLib's ``T``: steps ``0..T``, mfax ``horizon = T + 1``, or
    ``2 (T + 1)`` for a game rewritten over state-action cells (``joint``)."""
    horizon = "2 (T + 1): a choice step and a move step each" if joint else "T + 1"
    extra = f"; {what}" if what else ""
    return param(default, f"MFGLib's T: time steps 0..T, an action at each (mfax horizon {horizon}){extra}")


def no_discount() -> float:
    """The discount field of a game from MFGLib, which does not discount: fixed at 1,
    overridable (traced) for a discounted variant."""
    return param(1.0, "discount factor in (0, 1] (MFGLib: none, 1)", traced=True)


def initial_distribution(mu0: tuple[float, ...], n: int, what: str = "mu0") -> np.ndarray:
    """``mu0`` as an array of ``n`` probabilities; the empty tuple means uniform."""
    if len(mu0) == 0:
        return np.full(n, 1.0 / n)
    check(len(mu0) == n, f"{what} must have {n} entries (one per state) or be empty for uniform, got {len(mu0)}")
    check_probabilities(tuple(mu0), what)
    return np.asarray(mu0, dtype=float)


def check_mu0(mu0: tuple[float, ...], n: int) -> None:
    """Refuse an initial distribution of the wrong length or that is not one."""
    initial_distribution(mu0, n)


class TorchStream:
    """PyTorch's CPU random stream after ``torch.manual_seed(seed)`` (module docstring):
    ``rand`` as ``torch.rand`` in float32, ``coin`` as ``torch.randint(0, 2, (1,))``,
    consuming one 32-bit draw per number, in order."""

    def __init__(self, seed: int):
        check(0 <= seed < 2**32, f"seed must lie in 0..2^32-1 (PyTorch's CPU generator seed), got {seed}")
        self._bits = np.random.MT19937()
        self._bits._legacy_seeding(seed)

    def _raw(self, count: int) -> np.ndarray:
        return self._bits.random_raw(count).astype(np.uint64)

    def rand(self, *shape: int) -> np.ndarray:
        """Float32 uniforms on ``[0, 1)`` of ``shape`` (row-major order of draws)."""
        raw = self._raw(int(np.prod(shape)))
        return ((raw & np.uint64((1 << 24) - 1)).astype(np.float32) * np.float32(2.0**-24)).reshape(shape)

    def coin(self) -> int:
        """One draw of ``{0, 1}``."""
        return int(self._raw(1)[0] % np.uint64(2))


def uniform_table(stream: TorchStream, m: float, *shape: int) -> np.ndarray:
    """``2 m U - m`` in float32 as MFGLib computes it (``U`` from ``stream``), as float64."""
    u = stream.rand(*shape)
    two_m = np.float32(2 * m)
    return (two_m * u - np.float32(m)).astype(np.float64)


class JointMeanFieldGame(NoCommonNoise):
    """Abstract game from MFGLib whose rewards or transitions read the state-action
    distribution ``L_t`` (module docstring): it defines ``base_states`` (``n``),
    ``n_actions`` (``m``), ``T``, ``base_mu0`` and MFGLib's ``joint_reward`` and
    ``joint_transition`` at its own time ``t = 0..T``; this class builds the exact
    two-step mfax game over ``n + n m`` states and ``2 (T + 1)`` steps."""

    @property
    @abc.abstractmethod
    def base_states(self) -> int:
        """MFGLib's number of states ``n``."""

    @abc.abstractmethod
    def base_mu0(self) -> Float[Array, " n"]:
        """MFGLib's initial state distribution."""

    @abc.abstractmethod
    def joint_reward(self, L: Float[Array, "n m"], t) -> Float[Array, "n m"]:
        """MFGLib's ``r_t(s, a; L_t)``, ``t`` MFGLib's (traced) time."""

    @abc.abstractmethod
    def joint_transition(self, L: Float[Array, "n m"], t) -> Float[Array, "n m n"]:
        """MFGLib's ``p_t(s' | s, a; L_t)`` as ``[s, a, s']``, ``t`` MFGLib's time."""

    @property
    def horizon(self) -> int:
        return 2 * (self.T + 1)

    @property
    def n_states(self) -> int:
        return self.base_states * (1 + self.n_actions)

    def joint(self, mu: Float[Array, " N"]) -> Float[Array, "n m"]:
        """The state-action cells of a mean field of the rewritten game, ``(n, m)``."""
        return mu[self.base_states :].reshape(self.base_states, self.n_actions)

    def state_features(self):
        n, m = self.base_states, self.n_actions
        s = np.concatenate([np.arange(n), np.repeat(np.arange(n), m)]) / max(n - 1, 1)
        a = np.concatenate([np.zeros(n), np.tile(np.arange(m) + 1, n)]) / m
        return jnp.asarray(np.stack([s, a], axis=1))

    def initial_mean_field(self, noise: NoNoise):
        mu0 = jnp.asarray(self.base_mu0())
        return jnp.concatenate([mu0, jnp.zeros(self.base_states * self.n_actions, mu0.dtype)])

    def kernel(self, mu, noise, t):
        n, m, big = self.base_states, self.n_actions, self.n_states
        decide = t % 2 == 0
        rows = np.arange(big)
        # step 2t: state s chooses a and goes to cell n + s m + a; cells stay (nobody is there)
        to_cell = np.where(rows[:, None] < n, n + rows[:, None] * m + np.arange(m)[None, :], rows[:, None])
        # step 2t + 1: cell (s, a) moves by MFGLib's kernel whatever is chosen; states stay
        p = self.joint_transition(self.joint(mu), t // 2).astype(mu.dtype)  # (n, m, n)
        cell_p = jnp.broadcast_to(p.reshape(n * m, 1, n), (n * m, m, n))
        stay = jnp.zeros((n, m, n), mu.dtype).at[..., 0].set(1.0)
        move_prob = jnp.concatenate([stay, cell_p], axis=0)
        move_index = np.concatenate(
            [np.broadcast_to(np.arange(n)[:, None, None], (n, m, n)), np.broadcast_to(np.arange(n), (n * m, m, n))]
        )
        decide_index = np.zeros((big, m, n), np.int32)
        decide_index[..., 0] = to_cell
        decide_prob = jnp.zeros((big, m, n), mu.dtype).at[..., 0].set(1.0)
        index = jnp.where(decide, jnp.asarray(decide_index), jnp.asarray(move_index, jnp.int32))
        prob = jnp.where(decide, decide_prob, move_prob)
        return Kernel(index.astype(jnp.int32), prob)

    def reward(self, mu, mu_next, noise, t):
        n, m = self.base_states, self.n_actions
        r = self.joint_reward(self.joint(mu_next), t // 2).astype(mu.dtype)
        full = jnp.concatenate([r, jnp.zeros((n * m, m), mu.dtype)])
        return jnp.where(t % 2 == 0, full, jnp.zeros_like(full))

    def observation(self, mu, noise, t):
        return jnp.concatenate([mu[: self.base_states] + self.joint(mu).sum(-1), jnp.stack([(t % 2).astype(mu.dtype)])])


def joint_table(game: JointMeanFieldGame, pi: Float[Array, "T1 n m"]) -> Float[Array, "H N m"]:
    """A policy of MFGLib's layout ``(T + 1, n, m)`` as a table of the rewritten game
    ``(2 (T + 1), n + n m, m)``: ``pi_t`` at step ``2t`` on the ``n`` states, uniform
    everywhere else (cells, odd steps: where every action is the same)."""
    pi = jnp.asarray(pi)
    T1, n, m = pi.shape
    table = jnp.full((2 * T1, game.n_states, m), 1.0 / m, pi.dtype)
    return table.at[0::2, :n].set(pi)


def base_table(game: JointMeanFieldGame, table: Float[Array, "H N m"]) -> Float[Array, "T1 n m"]:
    """The policy in MFGLib's layout read off a table of the rewritten game (inverse of
    :func:`joint_table` on the rows that matter)."""
    return jnp.asarray(table)[0::2, : game.base_states]


__all__ = [
    "SOURCE",
    "JointMeanFieldGame",
    "TorchStream",
    "base_table",
    "check_mu0",
    "initial_distribution",
    "joint_table",
    "mfglib_T",
    "no_discount",
    "uniform_table",
]
