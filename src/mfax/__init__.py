"""mfax: mean-field games with common noise and public partial information, in JAX."""

from typing import TYPE_CHECKING

from mfax.errors import GameError, MfaxError
from mfax.games import CheckReport, Game, check_game, game_names, make, register

if TYPE_CHECKING:
    from mfax.run.api import Relative, Result, load, solve
    from mfax.run.tune import TuneResult, tune

__version__ = "0.1.0"

# solving from Python (mfax.run.api), imported on first use: ``import mfax`` stays light
_API = ("Relative", "Result", "load", "solve")
_TUNE = ("TuneResult", "tune")


def __getattr__(name: str):
    if name in _API:
        from mfax.run import api

        return getattr(api, name)
    if name in _TUNE:
        from mfax.run import tune

        return getattr(tune, name)
    raise AttributeError(f"module 'mfax' has no attribute {name!r}")


__all__ = [
    "CheckReport",
    "Game",
    "GameError",
    "MfaxError",
    "Relative",
    "Result",
    "TuneResult",
    "__version__",
    "check_game",
    "game_names",
    "load",
    "make",
    "register",
    "solve",
    "tune",
]
