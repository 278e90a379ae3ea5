"""OpenSpiel's single-population mean-field games as mfax games (``openspiel.<name>``),
defined in ``docs/games/openspiel.md``: one module per game or family."""

from mfax.games.openspiel.crowd_modelling import CrowdModelling
from mfax.games.openspiel.crowd_modelling_2d import CrowdModelling2d
from mfax.games.openspiel.dynamic_routing import DynamicRouting
from mfax.games.openspiel.garnet import Garnet
from mfax.games.openspiel.linear_quadratic import LinearQuadratic
from mfax.games.openspiel.normal_form import NormalForm
from mfax.games.openspiel.periodic_aversion import PeriodicAversion

GAMES = (CrowdModelling, LinearQuadratic, PeriodicAversion, CrowdModelling2d, NormalForm, Garnet, DynamicRouting)

__all__ = [
    "GAMES",
    "CrowdModelling",
    "CrowdModelling2d",
    "DynamicRouting",
    "Garnet",
    "LinearQuadratic",
    "NormalForm",
    "PeriodicAversion",
]
