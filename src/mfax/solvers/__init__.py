"""Solvers: structural policy gradient (SPG, RSPG); every solver registers itself here."""

from mfax.solvers import structural  # noqa: F401  (registers spg, rspg)
from mfax.solvers import ppo  # noqa: F401  (registers ippo, rippo)
from mfax.solvers.base import Solver, SolverSpec, register_solver, solver_names, solver_spec

__all__ = ["Solver", "SolverSpec", "register_solver", "solver_names", "solver_spec"]
