"""The game protocol: what a mean-field game is, defined once.

A game is an immutable Equinox module whose fields are its parameters (static ones fix
the compiled program; traced ones are numbers that may be arrays, see :mod:`mfax.params`;
a game built with Python values is hashable and can be closed over by ``jax.jit``) plus
pure functions of explicit arguments. It never knows whether it is pushed forward
exactly or run as a sampled population: the dynamics modules build both from the same
kernel.

Notation (``docs/index.md``): ``n`` individual states, ``m`` actions, horizon ``T``, kernel
support ``K``. The common noise of one episode is drawn up front as a *noise path*, a
game-specific pytree (for instance the bar location and the bar's open/closed flag for
every ``t = 0..T``). Common noise is exogenous: it does not depend on the mean field, so a
path can be drawn before the episode, enumerated when its support is finite, and shared
between the exact push-forward and a sampled population.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

Noise = Any
"""A game-specific pytree holding one episode's common noise (leading axes: none)."""


class Spread(NamedTuple):
    """Action-independent second stage of a :class:`Kernel` (for instance idiosyncratic
    noise added after the action's move): intermediate state ``j`` goes to
    ``index[j, k]`` with probability ``prob[j, k]``.

    Attributes:
        index: ``(n_mid, K2)`` int32 next-state indices in ``0..n-1``.
        prob: ``(n_mid, K2)`` probabilities; ``prob.sum(-1) == 1``.
    """

    index: Int[Array, "n_mid K2"]
    prob: Float[Array, "n_mid K2"]


class Kernel(NamedTuple):
    """Sparse transition kernel at one time step.

    Single-stage (``then`` is ``None``): ``P(s' | s, a) = sum_k prob[s, a, k]
    [index[s, a, k] = s']``. Two-stage (``then`` given): ``index`` points into ``n_mid``
    intermediate states, from which ``then`` moves on independently of the action, so
    ``P(s' | s, a) = sum_k prob[s, a, k] sum_l then.prob[j, l] [then.index[j, l] = s']``
    with ``j = index[s, a, k]``. Both stages together have ``n m K + n_mid K2`` entries
    instead of the ``n m K K2`` of the same kernel flattened (beach bar: 1111 + 1010
    instead of 5555 per path and step), which is what the exact push-forward touches
    (:func:`mfax.dynamics.push_forward`); :meth:`flat` gives the single-stage form.

    Attributes:
        index: ``(n, m, K)`` int32 next-state (or intermediate-state) indices for each
            (state, action).
        prob: ``(n, m, K)`` probabilities; ``prob.sum(-1) == 1``. Repeated indices are
            allowed (their probabilities add up).
        then: the action-independent second stage, or ``None``.
    """

    index: Int[Array, "n m K"]
    prob: Float[Array, "n m K"]
    then: Spread | None = None

    def flat(self) -> Kernel:
        """The same kernel in single-stage form, ``(n, m, K K2)`` (unbatched kernels)."""
        if self.then is None:
            return self
        n, m = self.index.shape[:2]
        index = self.then.index[self.index]  # (n, m, K, K2)
        prob = self.prob[..., None] * self.then.prob[self.index]
        return Kernel(index.reshape(n, m, -1), prob.reshape(n, m, -1))

    def expect(self, v_next: Float[Array, " n"]) -> Float[Array, "n m"]:
        """``E[v_next(s') | s, a]`` for every state and action."""
        flat = self.flat()
        return jnp.sum(flat.prob * v_next[flat.index], axis=-1)


class NoiseSupport(NamedTuple):
    """All common-noise paths of a finite-support game with their probabilities.

    Attributes:
        noise: the noise pytree with a leading path axis ``P``.
        weight: ``(P,)`` path probabilities summing to one.
    """

    noise: Noise
    weight: Float[Array, " P"]


class GameError(ValueError):
    """Raised for invalid game names, parameters or parameter values."""


class Game(eqx.Module):
    """Abstract mean-field game. Concrete games are final classes implementing:

    * ``n_states``, ``n_actions``, ``horizon`` (T), ``gamma`` (properties or fields);
    * ``state_values() -> (n, d)``: the value vector ``x(s)`` of each state;
    * ``state_features() -> (n, f)``: state inputs for policies, in ``[0, 1]``;
    * ``sample_noise(key) -> Noise``: one episode's common noise (and random reset);
    * ``noise_support() -> NoiseSupport | None``: every path with its probability, or
      ``None`` when the support is not finite;
    * ``initial_mean_field(noise) -> (n,)``;
    * ``kernel(mu, noise, t) -> Kernel``: transitions given the aggregate state at ``t``
      (two-stage when the action's move is followed by action-independent noise);
    * ``reward(mu, mu_next, noise, t) -> (n, m)``: the step reward, which may depend on
      the aggregate state at ``t`` and ``t + 1``;
    * ``terminal_reward(mu, mu_next, noise, t) -> (n, m)``: replaces the step reward at
      ``t = T - 1`` (defaults to the step reward);
    * ``observation(mu, noise, t) -> (d_o,)``: the public observation, normalised as the
      policy sees it; a function of the aggregate state only;
    * optionally ``describe_noise(noise) -> str``: one noise path in words (plot titles).

    ``t`` is always a traced int32 scalar; everything must be jit- and vmap-friendly.
    """

    name: ClassVar[str] = "game"

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        raise NotImplementedError

    @property
    def n_actions(self) -> int:
        raise NotImplementedError

    # Concrete games declare ``horizon: int`` and ``gamma: float`` as parameters.

    @property
    def own_history_informative(self) -> bool:
        """Whether an agent's own past states can tell it more about the common noise
        than the public history does (its own transitions or rewards depend on noise the
        observations hide). ``False``: the information-consistent exploitability is the
        exact non-anticipative one; ``True``: it is a lower bound of it (see
        ``docs/algorithms/exploitability.md``). Defaults to ``True``, the safe claim for
        a game that does not declare otherwise."""
        return True

    # -- the world ---------------------------------------------------------------------
    def state_values(self) -> Float[Array, "n d"]:
        raise NotImplementedError

    def state_features(self) -> Float[Array, "n f"]:
        raise NotImplementedError

    def action_values(self) -> Float[Array, " m"]:
        raise NotImplementedError

    def sample_noise(self, key: PRNGKeyArray) -> Noise:
        raise NotImplementedError

    def noise_support(self) -> NoiseSupport | None:
        return None

    def initial_mean_field(self, noise: Noise) -> Float[Array, " n"]:
        raise NotImplementedError

    def kernel(self, mu: Float[Array, " n"], noise: Noise, t: Int[Array, ""]) -> Kernel:
        raise NotImplementedError

    def reward(
        self,
        mu: Float[Array, " n"],
        mu_next: Float[Array, " n"],
        noise: Noise,
        t: Int[Array, ""],
    ) -> Float[Array, "n m"]:
        raise NotImplementedError

    def terminal_reward(
        self,
        mu: Float[Array, " n"],
        mu_next: Float[Array, " n"],
        noise: Noise,
        t: Int[Array, ""],
    ) -> Float[Array, "n m"]:
        return self.reward(mu, mu_next, noise, t)

    def observation(self, mu: Float[Array, " n"], noise: Noise, t: Int[Array, ""]) -> Float[Array, " d"]:
        raise NotImplementedError

    # -- optional ----------------------------------------------------------------------
    def describe_noise(self, noise: Noise) -> str:
        """One noise path (concrete arrays, no leading axis) in a few words, for plot
        titles, e.g. where the bar is and whether it closes. Default: ``""``."""
        return ""

    # -- shared validation -------------------------------------------------------------
    def _check_common(self) -> None:
        check(self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}")
        check((0.0 < self.gamma) & (self.gamma <= 1.0), f"gamma must lie in (0, 1], got {self.gamma}")


def check(condition, message: str) -> None:
    """Raise a one-line :class:`GameError` unless ``condition`` holds: a bool, or an
    array of them (games stacked on a run axis), which must hold everywhere. A traced
    condition (a game built inside ``jit`` or ``vmap``) cannot be decided here and is
    let through; its values are checked where they are concrete."""
    if isinstance(condition, jax.core.Tracer):
        return
    if not np.all(condition):
        raise GameError(message)


def check_probabilities(probs: tuple[float, ...], what: str) -> None:
    """Refuse probability vectors with negative entries or a sum other than one."""
    check(len(probs) > 0, f"{what} must not be empty")
    check(all(p >= 0.0 for p in probs), f"{what} must be non-negative, got {probs}")
    check(abs(sum(probs) - 1.0) < 1e-9, f"{what} must sum to 1, got sum {sum(probs)!r}")


def reward_matrix(game: Game, mu, mu_next, noise: Noise, t) -> Float[Array, "n m"]:
    """``R_t``: the step reward, replaced by the terminal reward at ``t = T - 1``."""
    return jnp.where(
        t == game.horizon - 1,
        game.terminal_reward(mu, mu_next, noise, t),
        game.reward(mu, mu_next, noise, t),
    )
