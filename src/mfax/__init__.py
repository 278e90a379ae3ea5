"""mfax: mean-field games with common noise and public partial information, in JAX.

The names below load their modules (JAX among them: seconds) when first used, so that
``import mfax`` and the ``mfax`` command's entry point (:mod:`mfax.run.entry`) load
nothing heavy before they need it.
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING

from mfax.errors import DefectWarning, GameError, MfaxError, MfaxWarning

if TYPE_CHECKING:
    from mfax.games import CheckReport, Game, check_game, game_names, make, register
    from mfax.run.api import Relative, Result, load, resume, solve
    from mfax.run.tune import TuneResult, tune

__version__ = "0.1.0"

_GAMES = ("CheckReport", "Game", "check_game", "game_names", "make", "register")
# solving from Python (mfax.run.api)
_API = ("Relative", "Result", "load", "resume", "solve")
_TUNE = ("TuneResult", "tune")


def __getattr__(name: str):
    if name in _GAMES:
        from mfax import games

        return getattr(games, name)
    if name in _API:
        from mfax.run import api

        return getattr(api, name)
    if name in _TUNE:
        from mfax.run import tune

        return getattr(tune, name)
    if not name.startswith("_") and importlib.util.find_spec(f"mfax.{name}") is not None:
        return importlib.import_module(f"mfax.{name}")  # ``import mfax; mfax.games.make(...)``
    raise AttributeError(f"module 'mfax' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily loaded names too (``mfax.<TAB>`` in a notebook offered only the errors)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


__all__ = [
    "CheckReport",
    "DefectWarning",
    "Game",
    "GameError",
    "MfaxError",
    "MfaxWarning",
    "Relative",
    "Result",
    "TuneResult",
    "__version__",
    "check_game",
    "game_names",
    "load",
    "make",
    "register",
    "resume",
    "solve",
    "tune",
]
