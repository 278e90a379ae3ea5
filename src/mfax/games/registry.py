"""Registry of games: versionless names -> game classes, with validated parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

from mfax.games.base import Game, GameError, parameters

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


def _coerce(game_name: str, field: dataclasses.Field, value: Any) -> Any:
    """Check a parameter value against the type of its default; ints widen to floats."""
    default = field.default
    bad = GameError(f"parameter {field.name!r} of game {game_name!r} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise bad
        items = tuple(value)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
            raise bad
        return tuple(float(v) for v in items)
    return value


def make(name: str, **params: Any) -> Game:
    """Build a registered game with published defaults overridden by ``params``.

    >>> import mfax
    >>> game = mfax.make("beach_bar", common_noise=False, num_states=51)
    >>> game.n_states, game.n_actions
    (51, 11)

    Raises :class:`GameError` (a ``ValueError``) with a one-line message for an unknown
    game, an unknown parameter (listing the allowed ones) or an impossible value.
    """
    cls = game_class(name)
    fields = {f.name: f for f in parameters(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise GameError(f"unknown parameter {unknown[0]!r} for game {name!r}; allowed: {', '.join(fields)}")
    return cls(**{k: _coerce(name, fields[k], v) for k, v in params.items()})


def parse_value(game_name: str, key: str, text: str) -> Any:
    """Parse a ``key=value`` override from the command line by the parameter's type."""
    cls = game_class(game_name)
    fields = {f.name: f for f in parameters(cls)}
    if key not in fields:
        raise GameError(f"unknown parameter {key!r} for game {game_name!r}; allowed: {', '.join(fields)}")
    default = fields[key].default
    text = text.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(float(v) for v in text.strip("()[]").split(",") if v.strip())
        return text
    except ValueError:
        pass
    kind = "a comma-separated list of numbers" if isinstance(default, tuple) else type(default).__name__
    raise GameError(f"parameter {key!r} of game {game_name!r} must be {kind}, got {text!r}")


def describe(name: str) -> list[tuple[str, Any, str]]:
    """``(parameter, default, help)`` for every parameter of a game."""
    return [(f.name, f.default, f.metadata["help"]) for f in parameters(game_class(name))]
