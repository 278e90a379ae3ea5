"""Sweeps over traced game parameters: games stacked on a leading run axis.

A game's parameters are static (they fix the compiled program) or traced (numbers that
only enter arithmetic; :func:`mfax.params.param` with ``traced=True``). Games that share
every static parameter differ only in numbers, so they can run side by side in one
compiled program: :func:`stack_games` stacks their traced fields into arrays with a
leading axis of length ``R`` (one entry per game, in order), and ``jax.vmap`` maps over
that axis::

    games = [mfax.make("macro", crra=c) for c in (1.5, 2.0, 3.0)]
    values = jax.vmap(lambda g: policy_value(g, rollout_batch(g, policy, noise), noise))(stack_games(games))

Inside the mapped function ``g`` is one game whose traced fields are tracers; every
function of the protocol takes them. Outside a ``vmap`` the stacked game is a batch,
not a game to play: host-side code that needs one game's numbers (``validate_game``,
``noise_support``, hashing) uses the games it was stacked from. Each game's static
fields, and so its sizes, its noise support and the policies built for it, are those
of every other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, GameError


def _roles(cls: type) -> tuple[list[str], list[str]]:
    """``(static, traced)`` field names of a game class (traced: every pytree field)."""
    fields = dataclasses.fields(cls)
    static = [f.name for f in fields if f.metadata.get("static", False)]
    return static, [f.name for f in fields if f.name not in static]


def _listed(games: Iterable[Game]) -> list[Game]:
    """The games of a sweep as a list (a generator too)."""
    if isinstance(games, Game):
        raise GameError(f"a sweep takes a list of games, got one game ({games.name!r}); give [game, ...]")
    if not isinstance(games, Iterable):
        raise GameError(f"a sweep takes a list of games, got {type(games).__name__}")
    return list(games)


def _kind(games: Sequence[Game]) -> type:
    if not games:
        raise GameError("a sweep needs at least one game, got none")
    for g in games:
        if not isinstance(g, Game):
            raise GameError(f"a sweep takes games, got {type(g).__name__}")
    kinds = {type(g) for g in games}
    if len(kinds) > 1:
        names = ", ".join(sorted(repr(getattr(k, "name", k.__name__)) for k in kinds))
        raise GameError(f"a sweep takes games of one kind, got {names}")
    return type(games[0])


def _differs(values: list) -> bool:
    first = np.asarray(values[0])
    return any(np.shape(v) != first.shape or not np.array_equal(np.asarray(v), first) for v in values[1:])


def swept_fields(games: Sequence[Game]) -> list[str]:
    """Names of the traced parameters whose values differ between ``games`` (in
    declaration order); empty when all are equal or there is one game."""
    games = _listed(games)
    cls = _kind(games)
    return [name for name in _roles(cls)[1] if _differs([getattr(g, name) for g in games])]


def stack_games(games: Sequence[Game]) -> Game:
    """One game whose traced fields are arrays stacked on a leading run axis (entry
    ``r`` is ``games[r]``'s value, in the default float or int dtype) and whose static
    fields are the games' common ones.

    Raises a one-line :class:`GameError` when ``games`` is empty, mixes kinds of game,
    or differs in a static parameter (naming it, both values and the parameters that can
    be swept). The games are not validated again: build them with :func:`mfax.make`.
    """
    games = _listed(games)
    cls = _kind(games)
    static, traced = _roles(cls)
    for name in static:
        values = [getattr(g, name) for g in games]
        differing = [v for v in values[1:] if v != values[0]]
        if differing:
            allowed = ", ".join(traced) or "none"
            raise GameError(
                f"games differ in static parameter {name!r} ({values[0]!r} and {differing[0]!r}) of game "
                f"{cls.name!r}; only traced parameters can differ in a sweep: {allowed}"
            )
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *games)
