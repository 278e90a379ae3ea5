"""mfax: mean-field games with common noise and public partial information, in JAX."""

from mfax.errors import GameError, MfaxError
from mfax.games import CheckReport, Game, check_game, game_names, make, register

__version__ = "0.1.0"

__all__ = [
    "CheckReport",
    "Game",
    "GameError",
    "MfaxError",
    "__version__",
    "check_game",
    "game_names",
    "make",
    "register",
]
