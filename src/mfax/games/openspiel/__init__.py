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

# OpenSpiel's own names of these games (``pyspiel.load_game``'s short names, C++ and Python)
ORIGINAL_NAMES = {
    "mfg_crowd_modelling": CrowdModelling,
    "python_mfg_crowd_modelling": CrowdModelling,
    "mfg_crowd_modelling_2d": CrowdModelling2d,
    "mfg_dynamic_routing": DynamicRouting,
    "python_mfg_dynamic_routing": DynamicRouting,
    "mfg_garnet": Garnet,
    "mean_field_lin_quad": LinearQuadratic,
    "mean_field_nfg": NormalForm,
    "python_mfg_periodic_aversion": PeriodicAversion,
}

__all__ = [
    "GAMES",
    "ORIGINAL_NAMES",
    "CrowdModelling",
    "CrowdModelling2d",
    "DynamicRouting",
    "Garnet",
    "LinearQuadratic",
    "NormalForm",
    "PeriodicAversion",
]
