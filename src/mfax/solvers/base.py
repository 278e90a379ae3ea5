"""The solver protocol, its metrics, and the solver registry.

A solver is an Equinox module built once per training from its game, its declared
hyper-parameters and a :class:`Setting` (what the driver decides: iterations, noise,
devices). It has three pure methods, in the style of optax's ``init``/``update``:

* ``init(key, lr) -> State``: one run's training state from its seed's key and its base
  learning rate (solvers that take no ``--lr`` ignore it);
* ``step(state) -> (state, Metrics)``: one iteration;
* ``policy(state) -> Policy``: the run's current population policy, a mean-field
  :class:`~mfax.policies.base.Policy` that the driver scores exactly.

A state is a pytree of arrays (checkpointed leaf by leaf) with a field ``iteration``.
Everything else (chunking iterations into one ``lax.scan``, batching the runs,
compiling, donating buffers, placing runs on the device mesh, the finite check) is the
driver's, :mod:`mfax.solvers.driver`, in one place.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
from jax.sharding import Mesh
from jaxtyping import Array, PRNGKeyArray

from mfax.dynamics.noise import NoiseBatch
from mfax.errors import GameError, advice
from mfax.games import plugins
from mfax.games.base import Game
from mfax.policies.base import Policy


class Metrics(NamedTuple):
    """One iteration's training metrics, the same type for every solver; NaN where a
    solver has no such figure.

    * ``policy_return``: the return of the policy the iteration starts from (exact, or
      estimated on the iteration's own noise paths or sampled agents);
    * ``exploitability``: what the solver drives to zero, measured on the same data
      (per path for SPG/RSPG, information-consistent for FP/OMD; NaN for PPO/M-OMD);
    * ``exploitability_per_path``: the per-path exploitability where the solver has it;
    * ``grad_norm``: the gradient's global norm before clipping (FP/OMD: the size of the
      policy update ``max_{t,s} sum_a |pi' - pi|``);
    * ``lr``: the learning rate applied at this iteration;
    * ``loss``: the solver's training loss (NaN where it has none);
    * ``finite``: whether the iteration's figures and new parameters are all finite.
    """

    policy_return: Array
    exploitability: Array
    exploitability_per_path: Array
    grad_norm: Array
    lr: Array
    loss: Array
    finite: Array


@dataclass(frozen=True)
class Setting:
    """What the driver decides for a solver: ``iterations`` planned (the learning-rate
    schedule spans them), ``paths`` of common noise per iteration, the enumerated noise
    ``exact`` (``None``: sampled), the training ``mesh`` (``None``: one device) and how
    many runs share one program (``num_runs``)."""

    iterations: int
    paths: int
    exact: NoiseBatch | None
    mesh: Mesh | None = None
    num_runs: int = 1


class Solver(eqx.Module):
    """A solver (see module docstring). Concrete solvers are final Equinox modules.

    Class attributes the driver reads:

    * ``exact_program``: compile with :func:`mfax.compiling.compiler_options` (the XLA
      options chosen for the exact programs) rather than XLA's defaults;
    * ``factorises``: its step factorises matrices (a Cholesky, say), which XLA's CPU
      backend hands to LAPACK: its programs run with LAPACK on one thread
      (:func:`mfax.compiling.one_blas_thread`);
    * ``trace_name``: the retrace counter's key (:mod:`mfax.tracing`);
    * ``nonfinite_cause``: what a non-finite iteration of this solver means and what to
      do, added to the driver's message (``""``: nothing to add);
    * ``update_name``: what its metrics' ``grad_norm`` measures, as that message names it
      (``""``: the gradient norm, or the policy update where ``lr`` is NaN).
    """

    exact_program: ClassVar[bool] = True
    factorises: ClassVar[bool] = False
    trace_name: ClassVar[str] = "chunk"
    nonfinite_cause: ClassVar[str] = ""
    update_name: ClassVar[str] = ""

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray, lr: float) -> Any: ...

    @abc.abstractmethod
    def step(self, state: Any) -> tuple[Any, Metrics]: ...

    @abc.abstractmethod
    def policy(self, state: Any) -> Policy: ...

    def runs_mesh(self) -> Mesh | None:
        """The mesh the runs are split over (``None``: the driver keeps them together)."""
        return None


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver: ``build(game, hparams, setting) -> Solver``.

    ``hparams`` is the Equinox module of the solver's hyper-parameters declared with
    :func:`mfax.params.param` (defaults + help); ``None``: it has none. ``uses_lr``: the
    solver trains with the config's learning rates (``--lr``); runs of one that does not
    are not labelled with one. ``seeded``: the solver draws from its seed (sampled noise,
    sampled populations, a random initial network), so runs of several seeds differ;
    ``False``: deterministic, where ``--seeds N`` would train ``N`` identical copies.
    """

    name: str
    description: str
    build: Callable[[Game, Any, Setting], Solver]
    hparams: type | None = None
    uses_lr: bool = True
    seeded: bool = True

    def resolve_hparams(self, values: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and validate ``values`` (one-line errors)."""
        from mfax import params

        if self.hparams is None:
            if values:
                hp = advice("--hp", "hp=")
                raise GameError(f"solver {self.name!r} takes no hyper-parameters ({hp}); got {sorted(values)}")
            return {}
        built = params.build(self.hparams, f"solver {self.name!r}", **values)
        return {name: getattr(built, name) for name in params.fields_of(self.hparams)}

    def hparams_of(self, values: dict[str, Any]) -> Any:
        """The hyper-parameter module of resolved ``values`` (``None`` when it has none)."""
        from mfax import params

        return None if self.hparams is None else params.build(self.hparams, f"solver {self.name!r}", **values)

    def parse_hparam(self, key: str, text: str) -> Any:
        from mfax import params

        if self.hparams is None:
            raise GameError(f"solver {self.name!r} takes no hyper-parameters (--hp)")
        return params.parse_text(self.hparams, f"solver {self.name!r}", key, text)


_SOLVERS: dict[str, SolverSpec] = {}

BUILTIN: dict[str, str] = {
    "spg": "structural",
    "rspg": "structural",
    "ippo": "ppo",
    "rippo": "ppo",
    "momd": "momd",
    "fp": "classical",
    "omd": "classical",
    "fixed_point": "tabular",
    "boltzmann": "tabular",
    "munchausen": "tabular",
    "prior_descent": "tabular",
    "mf_omo": "occupation",
    "omi": "occupation",
    "mf_psro": "psro",
}
"""The built-in solvers, in the order ``mfax list`` shows them, and the module of
``mfax.solvers`` that registers each. A module is imported when one of its solvers is
first asked for: a fresh process solving with fictitious play imports neither the
network solvers nor optax."""


def _import_builtin(name: str) -> None:
    module = BUILTIN.get(name)
    if module is not None:
        importlib.import_module(f"mfax.solvers.{module}")


def _import_builtins() -> None:
    for name in BUILTIN:
        _import_builtin(name)


def register_solver(spec: SolverSpec) -> SolverSpec:
    """Register ``spec`` under its name (replacing a solver registered under it before, a
    built-in one included)."""
    plugins.check_name(spec.name, "solver")
    # a built-in name: its module first (a no-op while that module registers it), so that
    # the module, imported later, cannot replace this registration with its own
    _import_builtin(spec.name)
    _SOLVERS[spec.name] = spec
    return spec


def register_variants(
    build: Callable[..., Solver],
    variants: dict[str, tuple[str, type | None, dict[str, Any]]],
    uses_lr: bool = True,
    seeded: bool = True,
) -> None:
    """Register solvers that share one ``build(game, hparams, setting, **options)``:
    ``variants`` maps each name to its description, hyper-parameter class and options
    (``uses_lr``, ``seeded``: as :class:`SolverSpec` says)."""
    for name, (text, hparams, options) in variants.items():
        register_solver(SolverSpec(name, text, functools.partial(build, **options), hparams, uses_lr, seeded))


def solver_names() -> list[str]:
    """The built-in solvers (:data:`BUILTIN`'s order), then those registered in this
    process, in registration order."""
    _import_builtins()
    return [*BUILTIN, *(name for name in _SOLVERS if name not in BUILTIN)]


SOLVER_GROUP = "mfax.solvers"


def plugin_solvers() -> dict[str, str]:
    """Installed plug-in solvers not shadowed by a registered name: name -> origin."""
    _import_builtins()
    return plugins.installed(SOLVER_GROUP, _SOLVERS)


def shadowed_solvers() -> dict[str, str]:
    """Installed plug-in solvers under a registered name (never used): name -> origin."""
    _import_builtins()
    return plugins.shadowed(SOLVER_GROUP, _SOLVERS)


def solver_spec(name: str) -> SolverSpec:
    """The solver ``name`` names: a registered one, an installed plug-in (entry point
    group ``mfax.solvers``), or a reference ``package.module:NAME`` /
    ``path/to/file.py:NAME``. A plug-in or reference names a :class:`SolverSpec` or a
    function of no arguments returning one; the spec takes ``name`` as its name."""
    _import_builtin(name)
    registered: dict[str, SolverSpec] = _SOLVERS
    if name not in _SOLVERS:  # a plug-in, a reference or unknown: every built-in counts (the error lists them)
        registered = {n: _SOLVERS[n] for n in solver_names()}
    return plugins.lookup(name, registered, SOLVER_GROUP, "algorithm", _spec_of)


def _spec_of(obj: Any, name: str) -> SolverSpec:
    if callable(obj) and not isinstance(obj, SolverSpec | type):
        try:
            obj = obj()
        except Exception as err:
            raise GameError(f"solver {name!r}: building its spec failed: {plugins.one_line(err)}") from None
    if not isinstance(obj, SolverSpec):
        raise GameError(
            f"solver {name!r} is an object of type {type(obj).__name__}, not a solver (a mfax.solvers.SolverSpec or "
            "a function returning one)"
        )
    return dataclasses.replace(obj, name=name)
