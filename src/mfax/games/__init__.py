"""Games: what the world is. One file per game, the protocol in :mod:`.base`."""

from mfax.errors import GameError
from mfax.games import mfglib, openspiel
from mfax.games.base import Game, Kernel, NoiseSupport, Profile, Spread, aggregate_paths, reward_matrix
from mfax.games.beach_bar import BeachBar, BeachBarNoise
from mfax.games.kernels import dense_kernel, deterministic_kernel
from mfax.games.linear_quadratic import LinearQuadratic, LQNoise
from mfax.games.macro import Macro, MacroNoise
from mfax.games.no_noise import NoCommonNoise, NoNoise
from mfax.games.registry import (
    describe,
    game_class,
    game_names,
    game_reference,
    known_as,
    make,
    parse_value,
    register,
)
from mfax.games.sis import SIS, SISNoise
from mfax.games.sweep import stack_games, swept_fields
from mfax.games.validate import CheckReport, CheckResult, check_game, unchecked, validate_game
from mfax.params import param

for _cls in (LinearQuadratic, BeachBar, Macro, SIS, *mfglib.GAMES, *openspiel.GAMES):
    register(_cls)
known_as("MFGLib", mfglib.ORIGINAL_NAMES)
known_as("OpenSpiel", openspiel.ORIGINAL_NAMES)

__all__ = [
    "SIS",
    "BeachBar",
    "BeachBarNoise",
    "CheckReport",
    "CheckResult",
    "Game",
    "GameError",
    "Kernel",
    "LQNoise",
    "LinearQuadratic",
    "Macro",
    "MacroNoise",
    "NoCommonNoise",
    "NoNoise",
    "NoiseSupport",
    "Profile",
    "SISNoise",
    "Spread",
    "aggregate_paths",
    "check_game",
    "dense_kernel",
    "describe",
    "deterministic_kernel",
    "game_class",
    "game_names",
    "game_reference",
    "make",
    "param",
    "parse_value",
    "register",
    "reward_matrix",
    "stack_games",
    "swept_fields",
    "unchecked",
    "validate_game",
]
