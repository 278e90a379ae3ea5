"""mfax: mean-field games with common noise and public partial information, in JAX."""

from mfax.errors import GameError, MfaxError
from mfax.games import Game, game_names, make, register

__version__ = "0.1.0"

__all__ = ["Game", "GameError", "MfaxError", "__version__", "game_names", "make", "register"]
