"""Registry of games: names -> game classes, with validated parameters."""

from __future__ import annotations

from typing import Any

from mfax import params
from mfax.errors import GameError
from mfax.games.base import Game
from mfax.games.validate import validate_game

_GAMES: dict[str, type[Game]] = {}


def register(game_cls: type[Game]) -> type[Game]:
    """Add a game class under ``game_cls.name`` (usable as a class decorator)."""
    if game_cls.name in _GAMES and _GAMES[game_cls.name] is not game_cls:
        raise GameError(f"a game named {game_cls.name!r} is already registered")
    _GAMES[game_cls.name] = game_cls
    return game_cls


def game_names() -> list[str]:
    return sorted(_GAMES)


def game_class(name: str) -> type[Game]:
    if name not in _GAMES:
        raise GameError(f"unknown game {name!r}; allowed: {', '.join(game_names())}")
    return _GAMES[name]


def make(name: str, **values: Any) -> Game:
    """Build a registered game with published defaults overridden by ``values``.

    >>> import mfax
    >>> game = mfax.make("beach_bar", common_noise=False, num_states=51)
    >>> game.n_states, game.n_actions
    (51, 11)

    Raises :class:`GameError` (a ``ValueError``) with a one-line message for an unknown
    game, an unknown parameter (listing the allowed ones), an impossible value or a
    defect of the game's functions (:func:`~mfax.games.validate.validate_game`).
    """
    game = params.build(game_class(name), f"game {name!r}", **values)
    validate_game(game)
    return game


def parse_value(game_name: str, key: str, text: str) -> Any:
    """Parse a ``key=value`` override from the command line by the parameter's type."""
    return params.parse_text(game_class(game_name), f"game {game_name!r}", key, text)


def describe(name: str) -> list[tuple[str, Any, str]]:
    """``(parameter, default, help)`` for every parameter of a game."""
    return params.describe(game_class(name))
