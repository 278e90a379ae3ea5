"""MFGLib's ten environments (MFGLib 0.3.0, ``mfglib.env.Environment``) as mfax games,
registered as ``mfglib.<name>`` with MFGLib's defaults (``docs/games/mfglib.md``).

Each game is written from its rules, term for term as MFGLib defines it, so that both
libraries score a policy alike (``bench/mfglib_crosscheck.py``,
``tests/test_mfglib_games.py``); the conventions they share are in
:mod:`mfax.games.mfglib.common` (MFGLib's ``T`` steps ``0..T`` are mfax's
``horizon = T + 1``; games that read the state-action distribution are rewritten exactly
with two mfax steps per MFGLib step).
"""

from mfax.games.mfglib.beach_bar import BarNoise, MFGLibBeachBar
from mfax.games.mfglib.building_evacuation import MFGLibBuildingEvacuation
from mfax.games.mfglib.common import JointMeanFieldGame, TorchStream, base_table, joint_table
from mfax.games.mfglib.crowd_motion import CrowdNoise, MFGLibCrowdMotion
from mfax.games.mfglib.equilibrium_price import MFGLibEquilibriumPrice
from mfax.games.mfglib.linear_quadratic import MFGLibLinearQuadratic
from mfax.games.mfglib.one_shot import MFGLibLeftRight, MFGLibRockPaperScissors
from mfax.games.mfglib.random_linear import MFGLibRandomLinear
from mfax.games.mfglib.susceptible_infected import MFGLibSusceptibleInfected, RateNoise
from mfax.games.mfglib.treasure_hunting import MFGLibConservativeTreasureHunting

GAMES = (
    MFGLibBeachBar,
    MFGLibBuildingEvacuation,
    MFGLibConservativeTreasureHunting,
    MFGLibCrowdMotion,
    MFGLibEquilibriumPrice,
    MFGLibLeftRight,
    MFGLibLinearQuadratic,
    MFGLibRandomLinear,
    MFGLibRockPaperScissors,
    MFGLibSusceptibleInfected,
)
"""Every game of MFGLib 0.3.0, in MFGLib's alphabetical order of environments."""

# MFGLib's own names of these games (its ``Environment`` constructors: ``Environment.beach_bar``)
ORIGINAL_NAMES = {cls.name.removeprefix("mfglib."): cls for cls in GAMES}

__all__ = [
    "GAMES",
    "ORIGINAL_NAMES",
    "BarNoise",
    "CrowdNoise",
    "JointMeanFieldGame",
    "MFGLibBeachBar",
    "MFGLibBuildingEvacuation",
    "MFGLibConservativeTreasureHunting",
    "MFGLibCrowdMotion",
    "MFGLibEquilibriumPrice",
    "MFGLibLeftRight",
    "MFGLibLinearQuadratic",
    "MFGLibRandomLinear",
    "MFGLibRockPaperScissors",
    "MFGLibSusceptibleInfected",
    "RateNoise",
    "TorchStream",
    "base_table",
    "joint_table",
]
