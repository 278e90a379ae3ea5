"""Registry of games: names -> game classes, with validated parameters.

A game is named by a *reference*: a registered name (``beach_bar``), an installed
plug-in's name (entry point group ``mfax.games``), ``package.module:Class`` or
``path/to/file.py:Class`` (:mod:`mfax.games.plugins`). Every function here takes one.
"""

from __future__ import annotations

import dataclasses
import reprlib
from typing import Any

from mfax import params
from mfax.errors import GameError
from mfax.games import plugins
from mfax.games.base import Game
from mfax.games.validate import validate_game

_GAMES: dict[str, type[Game]] = {}
GROUP = "mfax.games"
# a game's name in the library it was ported from -> what an unknown game of that name is told
_KNOWN_AS: dict[str, str] = {}


def register(game_cls: type[Game]) -> type[Game]:
    """Add a game class under ``game_cls.name`` (usable as a class decorator); anything but
    a concrete game class is a one-line :class:`GameError`, as for a game reference."""
    _checked(game_cls, getattr(game_cls, "__name__", None) or " ".join(reprlib.repr(game_cls).split()))
    plugins.check_name(game_cls.name, "game")
    if game_cls.name in _GAMES and _GAMES[game_cls.name] is not game_cls:
        raise GameError(f"a game named {game_cls.name!r} is already registered")
    _GAMES[game_cls.name] = game_cls
    return game_cls


def known_as(library: str, names: dict[str, type[Game]]) -> None:
    """Record the names ``library`` gives registered games (name -> class): a game asked
    for by one of them (``openspiel.mfg_crowd_modelling``, ``mean_field_lin_quad``) is
    told mfax's name in its one-line error. The names are not accepted in its place: a
    run records one name per game."""
    for original, game_cls in names.items():
        _KNOWN_AS[original] = f"{library}'s {original} is mfax's {game_cls.name}"


def game_names() -> list[str]:
    """The registered games' names (built in, or registered in this process)."""
    return sorted(_GAMES)


def plugin_games() -> dict[str, str]:
    """Installed plug-in games not shadowed by a registered name: name -> origin."""
    return plugins.installed(GROUP, _GAMES)


def shadowed_games() -> dict[str, str]:
    """Installed plug-in games under a registered name (never used): name -> origin."""
    return plugins.shadowed(GROUP, _GAMES)


def game_class(ref: str) -> type[Game]:
    """The game class a reference names (see the module docstring); one-line errors."""
    return plugins.lookup(ref, dict(sorted(_GAMES.items())), GROUP, "game", _checked, _KNOWN_AS)


def game_reference(game_cls: type[Game], main: bool = False) -> str:
    """The reference that names a game class again (:func:`game_class` inverts it): its
    registered name, else ``package.module:Class`` or ``path/to/file.py:Class``; with
    ``main``, ``__main__:Class`` for a class of a script or notebook (this process only)."""
    if _GAMES.get(game_cls.name) is game_cls:
        return game_cls.name
    return plugins.reference_of(game_cls, "game", main)


def _checked(obj: Any, ref: str) -> type[Game]:
    """``obj`` if it is a concrete game class, else a one-line error naming what it is."""
    if not (isinstance(obj, type) and issubclass(obj, Game)):
        if isinstance(obj, Game):
            raise GameError(f"game {ref!r} is an instance of {type(obj).__name__}, not a game class; give the class")
        kind = f"class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise GameError(f"game {ref!r} is {kind}, not a game (a subclass of mfax.games.Game)")
    missing = sorted({*obj.__abstractmethods__, *obj.__abstractvars__, *obj.__abstractclassvars__})
    if missing:
        raise GameError(f"game {ref!r} is abstract: it does not define {', '.join(missing)}")
    bare = [
        f.name
        for f in dataclasses.fields(obj)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if bare:
        raise GameError(f"game {ref!r}: field {bare[0]!r} has no default; {plugins.FIELD_DEFAULTS}")
    return obj


def make(name: str, **values: Any) -> Game:
    """Build a game with its defaults overridden by ``values``; ``name`` is any game
    reference (a registered name, a plug-in's, ``package.module:Class``,
    ``path/to/file.py:Class``).

    >>> import mfax
    >>> game = mfax.make("beach_bar", common_noise=False, num_states=51)
    >>> game.n_states, game.n_actions
    (51, 11)

    Raises :class:`GameError` (a ``ValueError``) with a one-line message for an unknown
    game, an unknown parameter (listing the allowed ones), an impossible value or a
    defect of the game's functions (:func:`~mfax.games.validate.validate_game`).
    """
    game = build(name, **values)
    validate_game(game)
    return game


def build(name: str, **values: Any) -> Game:
    """:func:`make` without the game's checks, for a caller that first estimates what the
    game will need (a huge economy's checks take minutes before a memory refusal they
    would only delay) and then calls :func:`~mfax.games.validate.validate_game`."""
    return params.build(game_class(name), f"game {name!r}", **values)


def parse_value(game_name: str, key: str, text: str) -> Any:
    """Parse a ``key=value`` override from the command line by the parameter's type."""
    return params.parse_text(game_class(game_name), f"game {game_name!r}", key, text)


def describe(name: str) -> list[tuple[str, Any, str]]:
    """``(parameter, default, help)`` for every parameter of a game."""
    return params.describe(game_class(name))
