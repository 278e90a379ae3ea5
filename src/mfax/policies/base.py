"""Mean-field policies: one object gives the action distribution of every state at once.

A policy is an Equinox module with two pure methods:

* ``initial_carry()``: the recurrent state at ``t = 0`` (``None`` for memoryless ones);
* ``__call__(carry, obs, t) -> (carry, probs)``: ``probs`` has shape ``(n, m)``, the
  action distribution ``pi_t`` of every state given the public observation ``o_t`` (and,
  through the carry, ``o_0..o_{t-1}``); it is called at ``t = 0..T-1``
  (:mod:`mfax.games.base` states the time convention).

The carry is fed only public observations, so a history-aware policy is one hidden
state per noise path shared by all individual states. Fixed policies (uniform, one
action, a time-indexed table) are the simplest cases; learned ones live beside them.
As for games (Equinox's abstract-or-final style), :class:`Policy` is abstract
(``__call__`` is an abstract method) and a concrete policy is final.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from mfax import params
from mfax.errors import GameError
from mfax.games.base import Game, refuse_concrete_bases
from mfax.games.validate import distribution_error


class Policy(eqx.Module):
    """Abstract mean-field policy (see module docstring)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        refuse_concrete_bases(cls, Policy, "policy")

    def initial_carry(self) -> Any:
        """The carry at ``t = 0``. Default: ``None`` (a memoryless policy)."""
        return None

    @abc.abstractmethod
    def __call__(self, carry: Any, obs: Float[Array, " d"], t) -> tuple[Any, Float[Array, "n m"]]:
        """``(carry, probs)`` at ``t``: the next carry and ``pi_t`` as ``(n, m)``."""

    # -- many noise paths at once (what batched rollouts call) ---------------------------
    def initial_carry_batch(self, num_paths: int) -> Any:
        """``initial_carry()`` for each of ``num_paths`` paths (leading axis ``P``)."""
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_paths, *jnp.shape(x))), self.initial_carry())

    def call_batch(self, carry: Any, obs: Float[Array, "P d"], t) -> tuple[Any, Float[Array, "P n m"]]:
        """:meth:`__call__` on ``P`` paths at once (carry and obs with a leading ``P``
        axis). The default maps ``__call__`` over paths; network policies override it to
        run their per-state head as one flat matrix product over paths and states."""
        return jax.vmap(self.__call__, in_axes=(0, 0, None))(carry, obs, t)


def _count(owner: str, name: str, value: Any) -> None:
    if not params.is_integer_from(value, 1):
        raise GameError(f"{owner}: {name} must be an integer >= 1, got {value!r}")


class Uniform(Policy):
    """Every action with probability ``1/m`` in every state."""

    n_states: int = eqx.field(static=True)
    n_actions: int = eqx.field(static=True)

    def __check_init__(self):
        _count("Uniform", "n_states", self.n_states)
        _count("Uniform", "n_actions", self.n_actions)

    def __call__(self, carry, obs, t):
        return carry, jnp.full((self.n_states, self.n_actions), 1.0 / self.n_actions)


class FixedAction(Policy):
    """Always the ``action``-th action."""

    n_states: int = eqx.field(static=True)
    n_actions: int = eqx.field(static=True)
    action: int = eqx.field(static=True)

    def __check_init__(self):
        _count("FixedAction", "n_states", self.n_states)
        _count("FixedAction", "n_actions", self.n_actions)
        a = self.action
        if not (params.is_integer_from(a, 0) and a < self.n_actions):
            raise GameError(f"FixedAction: action must be an index in 0..{self.n_actions - 1}, got {a!r}")

    def __call__(self, carry, obs, t):
        row = jnp.zeros(self.n_actions).at[self.action].set(1.0)
        return carry, jnp.broadcast_to(row, (self.n_states, self.n_actions))


class Tabular(Policy):
    """Time-indexed table ``probs[t, s, a]`` (ignores observations)."""

    probs: Float[Array, "T n m"]

    def __call__(self, carry, obs, t):
        return carry, self.probs[t]


def check_policy(game: Game, policy: Any) -> None:
    """Refuse, in one line, what cannot be ``game``'s policy: not a :class:`Policy`, a
    fixed policy for other sizes, a table not ``(T, n, m)`` of floats, or (its values
    concrete: never under ``jit``) with a row that is not a probability vector within
    :data:`~mfax.games.validate.TOLERANCE`. The figures of such a policy were numbers
    all the same (a table summing to 1.8 gave a negative exploitability)."""
    if not isinstance(policy, Policy):
        hint = " (parse_policy(game, text) reads 'uniform', 'action:K', 'value:X')" if isinstance(policy, str) else ""
        raise GameError(
            f"policy must be a Policy (Uniform, FixedAction, Tabular or a solved one), got {type(policy).__name__}"
            f"{hint}"
        )
    n, m, horizon = game.n_states, game.n_actions, game.horizon
    sizes = f"game {game.name!r} has {n} states and {m} actions"
    if isinstance(policy, Uniform | FixedAction) and (policy.n_states, policy.n_actions) != (n, m):
        raise GameError(
            f"{type(policy).__name__} policy is for {policy.n_states} states and {policy.n_actions} actions; {sizes}"
        )
    own = getattr(policy, "game", None)  # a network policy holds the game it was built for
    if isinstance(own, Game) and (own.n_states, own.n_actions) != (n, m):
        raise GameError(
            f"{type(policy).__name__} was built for {own.n_states} states and {own.n_actions} actions "
            f"(game {own.name!r}); {sizes}"
        )
    table = getattr(policy, "table", None)  # a history table (P, T, n, m)
    if table is not None and tuple(np.shape(table))[1:] != (horizon, n, m):
        raise GameError(
            f"{type(policy).__name__} table has shape {tuple(np.shape(table))}; {sizes} and horizon {horizon}: "
            f"(P, {horizon}, {n}, {m}) expected"
        )
    if not isinstance(policy, Tabular):
        return
    probs = policy.probs
    if tuple(np.shape(probs)) != (horizon, n, m):
        raise GameError(
            f"Tabular policy has shape {tuple(np.shape(probs))}; {sizes} and horizon {horizon}: "
            f"({horizon}, {n}, {m}) expected (probs[t, s, a])"
        )
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        raise GameError(f"Tabular policy must hold floating-point probabilities, got {probs.dtype}")
    if isinstance(probs, jax.core.Tracer) or not getattr(probs, "is_fully_addressable", True):
        return  # values checked where they are concrete and on this host
    error = distribution_error(probs, "Tabular policy row", lambda i: f" (t={int(i[0])}, s={int(i[1])})")
    if error is not None:
        raise GameError(f"{error}; each row probs[t, s] must be a probability vector over the {m} actions")


def parse_policy(game: Game, spec: str) -> Policy:
    """``"uniform"``, ``"action:K"`` (always the action with index ``K``, 0-based) or
    ``"value:X"`` (always the action whose value in ``game.action_values()`` is ``X``)."""
    values = [float(v) for v in game.action_values()]
    allowed = ", ".join(f"{v:g}" for v in values)
    if spec == "uniform":
        return Uniform(game.n_states, game.n_actions)
    if spec.startswith("action:"):
        text = spec.split(":", 1)[1]
        if not text.lstrip("-").isdigit() or not 0 <= int(text) < game.n_actions:
            raise GameError(
                f"policy {spec!r}: K must be an integer in 0..{game.n_actions - 1} for game {game.name!r} "
                f"(an action index; value:X picks an action by its value, one of {allowed})"
            )
        return FixedAction(game.n_states, game.n_actions, int(text))
    if spec.startswith("value:"):
        text = spec.split(":", 1)[1]
        try:
            wanted = float(text)
        except ValueError:
            wanted = None
        hits = [k for k, v in enumerate(values) if wanted is not None and abs(v - wanted) <= 1e-6 * max(1.0, abs(v))]
        if not hits:
            raise GameError(f"policy {spec!r}: no action of game {game.name!r} has value {text!r}; allowed: {allowed}")
        return FixedAction(game.n_states, game.n_actions, hits[0])
    raise GameError(
        f"unknown policy {spec!r}; allowed: uniform, action:K (K in 0..{game.n_actions - 1}), value:X (X in {allowed})"
    )
