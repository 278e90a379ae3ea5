"""OpenSpiel's single-population mean-field games as mfax games (``openspiel.<name>``),
defined in ``docs/games/openspiel.md``: one module per game or family."""

from mfax.games.openspiel.crowd_modelling import CrowdModelling
from mfax.games.openspiel.linear_quadratic import LinearQuadratic
from mfax.games.openspiel.periodic_aversion import PeriodicAversion

GAMES = (CrowdModelling, LinearQuadratic, PeriodicAversion)

__all__ = ["GAMES", "CrowdModelling", "LinearQuadratic", "PeriodicAversion"]
