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
from mfax.errors import GameError, MfaxError, advice
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
    """Register ``spec`` under its name, in this process (replacing a solver registered
    under it before: a notebook's cell run again). A built-in's name is refused: runs
    record their solver by name, and any other process would read a run of this one as
    the built-in's (and resume it with the built-in's code). A run of a solver registered
    here is read back where it is registered again; for runs any process reads, give the
    solver as a file reference or a plug-in (``docs/concepts.md``)."""
    plugins.check_name(spec.name, "solver")
    # a built-in name: its module first (a no-op while that module registers it)
    _import_builtin(spec.name)
    if spec.name in BUILTIN and spec.name in _SOLVERS and _SOLVERS[spec.name] is not spec:
        raise GameError(
            f"solver {spec.name!r} is built into mfax; register yours under another name (runs record their solver "
            "by name: another process would read a run of yours as the built-in's)"
        )
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


def is_registered(name: str) -> bool:
    """Whether ``name`` is a built-in solver's or one registered in this process (no
    solver module is imported to tell)."""
    return name in BUILTIN or name in _SOLVERS


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


def build_solver(spec: SolverSpec, game: Game, hparams: Any, setting: Setting, key: PRNGKeyArray, lr: float) -> Solver:
    """``spec.build(game, hparams, setting)``; a solver not built into mfax (a plug-in, a
    reference, one registered in this process) is then held to the protocol before
    anything is trained or written: its ``init(key, lr)`` gives a state with an
    ``iteration``, its ``step`` traces under ``jax.jit`` (``jax.eval_shape``) and returns
    ``(state, Metrics)`` with the state's structure, shapes and dtypes (``lax.scan``
    carries it), and its ``policy`` gives a :class:`~mfax.policies.base.Policy`. Each
    breach is one line naming the method (they were tracebacks of 60 to 100 lines, some
    after the run's first files were written)."""
    if spec.name in BUILTIN:  # (their protocol is tested; the trace would cost each run a second)
        return spec.build(game, hparams, setting)
    name = spec.name
    solver = _call(name, "build(game, hparams, setting)", spec.build, game, hparams, setting)
    if not isinstance(solver, Solver):
        raise GameError(
            f"solver {name!r}: build(game, hparams, setting) returned {type(solver).__name__}, not a "
            "mfax.solvers.Solver (an Equinox module with init, step and policy)"
        )
    state = _call(name, "init(key, lr)", solver.init, key, lr)
    if not hasattr(state, "iteration"):
        raise GameError(
            f"solver {name!r}: init(key, lr) returned a {type(state).__name__} without an 'iteration' field; a state "
            "is a pytree of arrays with an int32 'iteration' (a NamedTuple or an Equinox module)"
        )
    import jax
    import numpy as np

    if not spec.seeded:  # (declared deterministic: --seeds N would be refused as N identical copies)
        other = _call(name, "init(key, lr)", solver.init, jax.random.fold_in(key, 1), lr)

        def data(x):  # (a typed PRNG key has no numpy form: its key data)
            keyed = hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
            return np.asarray(jax.random.key_data(x) if keyed else x)

        pairs = zip(jax.tree.leaves(state), jax.tree.leaves(other), strict=False)
        if not all(np.array_equal(data(a), data(b)) for a, b in pairs):
            raise GameError(
                f"solver {name!r}: init(key, lr) depends on the key, but its SolverSpec says seeded=False (that the "
                "seed changes nothing); declare seeded=True"
            )
    out = _call(name, "step(state) traced by jax.jit", jax.eval_shape, solver.step, state)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Metrics)):
        got = type(out[1]).__name__ if isinstance(out, tuple) and len(out) == 2 else type(out).__name__
        raise GameError(f"solver {name!r}: step(state) must return (state, mfax.solvers.base.Metrics), got {got}")
    for field, value in out[1]._asdict().items():
        if getattr(value, "shape", None) != ():
            raise GameError(
                f"solver {name!r}: step(state)'s Metrics.{field} has shape {getattr(value, 'shape', type(value))}; "
                "each figure is one scalar per iteration (NaN where the solver has none)"
            )
    before, after = (jax.tree_util.tree_flatten_with_path(jax.eval_shape(lambda x: x, x)) for x in (state, out[0]))
    if before[1] != after[1]:
        raise GameError(
            f"solver {name!r}: step(state) returns a state of another structure ({after[1]}) than init's "
            f"({before[1]}); lax.scan carries it from step to step"
        )
    for (path, a), (_, b) in zip(before[0], after[0], strict=True):
        if (a.shape, a.dtype) != (b.shape, b.dtype):
            raise GameError(
                f"solver {name!r}: step(state) changes the state's {jax.tree_util.keystr(path) or 'leaf'} from "
                f"{a.dtype}{list(a.shape)} to {b.dtype}{list(b.shape)}; a step keeps every shape and dtype "
                "(lax.scan carries the state)"
            )
    policy = _call(name, "policy(state)", solver.policy, state)
    if not isinstance(policy, Policy):
        raise GameError(
            f"solver {name!r}: policy(state) returned {type(policy).__name__}, not a mfax.policies.Policy "
            "(a table: mfax.policies.Tabular)"
        )
    return solver


def _call(name: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` of a solver's code, its failure one line naming ``what`` (an mfax
    error the code raised itself passes as it is)."""
    try:
        return fn(*args)
    except MfaxError:
        raise
    except Exception as err:
        hint = ""
        if "Tracer" in type(err).__name__ or "Concretization" in type(err).__name__:
            hint = " (under jax.jit a step's arrays are traced: no Python if on them, no float(), no numpy)"
        raise GameError(f"solver {name!r}: {what} failed: {plugins.one_line(err)}{hint}") from None


def _spec_of(obj: Any, name: str) -> SolverSpec:
    if isinstance(obj, type) and issubclass(obj, Solver):
        raise GameError(
            f"solver {name!r} is the Solver class {obj.__name__}; name the SolverSpec that builds it "
            "(SolverSpec(name, description, build, hparams))"
        )
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
