"""Solvers; each module registers its algorithms on import (see :mod:`mfax.solvers.base`).

The built-in modules are imported when one of their solvers is first asked for
(:func:`solver_spec`, :func:`solver_names`; :data:`mfax.solvers.base.BUILTIN`), not
with this package: a run of one solver imports only the code it needs.
"""

from mfax.solvers.base import Solver, SolverSpec, register_solver, solver_names, solver_spec

__all__ = ["Solver", "SolverSpec", "register_solver", "solver_names", "solver_spec"]
