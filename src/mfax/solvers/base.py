"""What the training driver needs from a solver, and the solver registry.

A solver is built from a resolved :class:`~mfax.run.config.TrainConfig`, its game and
the exact noise batch (``None`` when noise is sampled). It exposes three pure pieces:

* ``initial_states()``: the training state of every run, stacked on a leading run axis
  (runs = seeds x learning rates, see ``TrainConfig.run_seed`` / ``run_lr``);
* ``chunk(length)``: a jitted ``states -> (states, metrics)`` running ``length``
  iterations of every run in one compiled program; ``metrics`` is a NamedTuple of
  ``(R, length)`` arrays with at least ``finite`` (bool), ``grad_norm``,
  ``policy_return`` and ``exploitability`` (training-time estimates, NaN where the
  solver has none);
* ``policy(states, r)``: run ``r``'s current population policy as a mean-field
  :class:`~mfax.policies.base.Policy`, which the driver scores exactly.

The training state must be a pytree of arrays (it is checkpointed leaf by leaf) and
must carry its iteration count in a field ``iteration``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mfax.games.base import GameError


class Solver(Protocol):
    def initial_states(self) -> Any: ...

    def chunk(self, length: int) -> Callable[[Any], tuple[Any, Any]]: ...

    def policy(self, states: Any, r: int) -> Any: ...


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver: ``build(config, game, exact_noise) -> Solver``.

    ``hparams`` is a dataclass of the solver's own hyper-parameters declared with
    :func:`mfax.params.param` (defaults + help); the resolved instance is
    ``config.hparams`` as a dict. ``None``: the solver has none beyond the common config.
    ``uses_lr``: the solver trains with the config's learning rates (``--lr``); runs of one
    that does not are not labelled with one.
    """

    name: str
    description: str
    build: Callable[..., Solver]
    hparams: type | None = None
    uses_lr: bool = True

    def resolve_hparams(self, values: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and validate ``values`` (one-line errors)."""
        from mfax import params

        if self.hparams is None:
            if values:
                raise GameError(f"solver {self.name!r} takes no hyper-parameters (--hp); got {sorted(values)}")
            return {}
        built = params.build(self.hparams, f"solver {self.name!r}", **values)
        return {name: getattr(built, name) for name in params.fields_of(self.hparams)}

    def parse_hparam(self, key: str, text: str) -> Any:
        from mfax import params

        if self.hparams is None:
            raise GameError(f"solver {self.name!r} takes no hyper-parameters (--hp)")
        return params.parse_text(self.hparams, f"solver {self.name!r}", key, text)


_SOLVERS: dict[str, SolverSpec] = {}


def register_solver(spec: SolverSpec) -> SolverSpec:
    _SOLVERS[spec.name] = spec
    return spec


def solver_names() -> list[str]:
    return list(_SOLVERS)


def solver_spec(name: str) -> SolverSpec:
    if name not in _SOLVERS:
        raise GameError(f"unknown algorithm {name!r}; allowed: {', '.join(_SOLVERS)}")
    return _SOLVERS[name]
