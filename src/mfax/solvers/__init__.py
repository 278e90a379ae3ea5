"""Solvers; each module registers its algorithms on import (see :mod:`mfax.solvers.base`)."""

# registration order = the order `mfax list` shows
from mfax.solvers import (  # noqa: F401, I001
    structural,  # spg, rspg
    ppo,  # ippo, rippo
    momd,  # momd
    classical,  # fp, omd
    tabular,  # fixed_point, boltzmann, munchausen, prior_descent
    occupation,  # mf_omo, omi
)
from mfax.solvers.base import Solver, SolverSpec, register_solver, solver_names, solver_spec

__all__ = ["Solver", "SolverSpec", "register_solver", "solver_names", "solver_spec"]
