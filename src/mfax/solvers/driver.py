"""The driver: the one place that turns a solver's pure ``step`` into compiled training.

It builds the runs' states (one per seed and learning rate, stacked on a leading run
axis, placed on the solver's mesh), and compiles ``chunk(states) -> (states, metrics)``:
``length`` iterations of every run in one program (one ``lax.scan`` per run, runs
batched by :func:`mfax.sharding.map_runs`), with the solver's compiler options and the
input states' buffers donated. :func:`first_nonfinite` reads the finite check of a
chunk's metrics; :func:`iterate` runs a solver for a number of iterations from Python
(what :func:`mfax.solvers.classical.solve` and the benchmarks use).
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mfax import compiling
from mfax.games import Game, swept_fields
from mfax.sharding import map_runs, place_runs
from mfax.solvers.base import Metrics, Solver
from mfax.tracing import count_trace


def stack(trees: Sequence[Any]) -> Any:
    """Stack pytrees of the same structure on a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _stack_on_host(trees: Sequence[Any]) -> Any:
    """:func:`stack` with the copying done by numpy: an eager ``jnp.stack`` is a program
    of its own per shape (traced, lowered, compiled or read from the compilation cache),
    which a fresh process pays for its first result. Leaves numpy cannot read (typed
    PRNG keys), weakly typed ones and Python scalars are stacked by JAX, so that the
    result is :func:`stack`'s in every case (values, dtypes and weak types)."""

    def one(*xs):
        arrays = all(isinstance(x, jax.Array | np.ndarray | np.generic) for x in xs)
        if not arrays or any(getattr(x, "weak_type", False) for x in xs):
            return jnp.stack(xs)
        try:
            host = [np.asarray(x) for x in xs]
        except (TypeError, ValueError):
            return jnp.stack(xs)
        return jax.device_put(np.stack(host))

    return jax.tree.map(one, *trees)


def initial_states(
    solver: Solver, seeds: Sequence[int], lrs: Sequence[float], games: Sequence[Game] | None = None
) -> Any:
    """The stacked initial states of runs ``r`` with seed ``seeds[r]`` and base learning
    rate ``lrs[r]``, placed on the solver's mesh. ``games``: one game per run (a sweep, as
    in :func:`chunk`): run ``r`` starts from what the solver's set-up gives on
    ``games[r]`` (OMI's first flow, MF-OMO's reward bound read the game)."""
    # the keys outside the products' precision: their two small programs are then the same
    # as every other key's of the process (under it, JAX keys them apart and compiles again)
    keys = [jax.random.PRNGKey(seed) for seed in seeds]
    solvers = [solver] * len(keys) if games is None else [eqx.tree_at(lambda s: s.game, solver, g) for g in games]
    with compiling.precision():  # a solver's set-up may run the game (OMI's occupation measure)
        states = [s.init(key, lr) for s, key, lr in zip(solvers, keys, lrs, strict=True)]
    # each run's numbers under the first run's structure: a state may hold the game as static
    # metadata (a network policy), which would keep the runs' states from stacking
    structure = jax.tree.structure(states[0])
    states = [jax.tree.unflatten(structure, jax.tree.leaves(state)) for state in states]
    return place_runs(_stack_on_host(states), solver.runs_mesh())


def chunk(solver: Solver, length: int, games: Sequence[Game] | None = None):
    """A compiled ``chunk(states) -> (states, metrics)`` running ``length`` iterations of
    every run of ``states`` (leading run axis ``R``) in one program; ``metrics`` is a
    :class:`~mfax.solvers.base.Metrics` of ``(R, length)`` arrays. The input states are
    donated (do not use them after the call).

    ``games``: one game per run, differing from the solver's only in the values of traced
    parameters (a sweep): run ``r`` then steps with ``games[r]``'s values, batched like
    the states, in the same program."""
    swept = [] if games is None else swept_fields(games)
    values = {name: jnp.stack([jnp.asarray(getattr(g, name)) for g in games]) for name in swept}

    def with_values(vals: dict[str, Any]) -> Solver:
        return eqx.tree_at(lambda s: [getattr(s.game, n) for n in swept], solver, [vals[n] for n in swept])

    def run(states):
        count_trace(solver.trace_name)

        def one_run(pair):
            state, vals = pair
            stepper = with_values(vals) if swept else solver
            return jax.lax.scan(lambda s, _: stepper.step(s), state, None, length=length)

        return map_runs(one_run, (states, values), solver.runs_mesh())

    options = compiling.compiler_options() if solver.exact_program else {}
    return compiling.jit(run, options, donate_argnums=0)


# Compiled chunks of this process by what fixes their program (see compiled_chunk); a few
# only: each holds an executable, and a sweep of configurations would otherwise pile them up.
_COMPILED: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
_COMPILED_KEEP = 8
_COMPILED_LOCK = threading.Lock()


def _value_key(tree: Any) -> tuple | None:
    """A hashable key equal for two pytrees exactly when they trace to the same program
    as closed-over values: the structure (static fields included), each array leaf's
    shape, dtype, sharding and bytes, each other leaf itself; ``None`` when a leaf cannot
    be keyed (unhashable, or an array not all on this process)."""
    leaves, treedef = jax.tree.flatten(tree)
    parts: list[Any] = [treedef]
    for leaf in leaves:
        if isinstance(leaf, jax.Array | np.ndarray | np.generic):
            if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
                return None
            try:
                host = np.asarray(leaf)
            except (TypeError, ValueError):  # typed PRNG keys, say: not kept
                return None
            sharding = getattr(leaf, "sharding", None)
            parts.append((host.shape, host.dtype.str, sharding, hashlib.sha1(host.tobytes()).hexdigest()))
        else:
            parts.append((type(leaf), leaf))
    key = tuple(parts)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def compiled_chunk(solver: Solver, length: int, states: Any, games: Sequence[Game] | None = None):
    """:func:`chunk` compiled for ``states`` (their shapes, types and placement), kept for
    this process: a second call with an equal solver (the same values, hyper-parameters
    and game), length, games and states' layout returns the executable already compiled,
    without tracing again (``mfax.solve`` called again in a notebook, say)."""
    avals = jax.tree.map(lambda x: (x.shape, x.dtype, getattr(x, "sharding", None)), states)
    parts = [_value_key(solver), _value_key(games), _value_key(jax.tree.structure(states))]
    key = None
    if all(part is not None for part in parts):
        options = compiling.compiler_options() if solver.exact_program else {}
        precision = compiling.matmul_precision()
        key = (*parts, length, str(avals), tuple(sorted(options.items())), precision, bool(jax.config.jax_enable_x64))
        with _COMPILED_LOCK:
            if key in _COMPILED:
                _COMPILED.move_to_end(key)
                return _as_run(solver, _COMPILED[key])
    compiled = chunk(solver, length, games).lower(states).compile()
    if key is not None:
        with _COMPILED_LOCK:
            _COMPILED[key] = compiled
            while len(_COMPILED) > _COMPILED_KEEP:
                _COMPILED.popitem(last=False)
    return _as_run(solver, compiled)


def _as_run(solver: Solver, compiled):
    """The compiled chunk as it is called: with LAPACK on one thread where the solver
    factorises (:func:`mfax.compiling.one_blas_thread`, which reads the environment now)."""
    return compiling.one_blas_thread(compiled) if solver.factorises else compiled


def first_nonfinite(metrics: Metrics, start_iteration: int, solver: Solver | None = None) -> str | None:
    """``None`` when every iteration of a chunk's metrics (host arrays ``(R, L)``) is
    finite, else which iteration of which run went wrong first, and in what (named and
    explained as the ``solver`` says: its ``update_name`` and ``nonfinite_cause``)."""
    cause = "" if solver is None else solver.nonfinite_cause
    finite = np.asarray(metrics.finite)
    if finite.all():
        return None
    runs, steps = np.nonzero(~finite)
    r, k = int(runs[0]), int(steps[0])
    # the tabular solvers have no learning rate (NaN): their grad_norm is the policy update's size
    tabular = bool(np.isnan(np.asarray(metrics.lr)[r, k]))
    update = "policy update" if tabular else "gradient norm"
    if solver is not None and solver.update_name:
        update = solver.update_name
    quantity = update if not np.isfinite(np.asarray(metrics.grad_norm)[r, k]) else "return or parameters"
    if not np.isfinite(np.asarray(metrics.policy_return)[r, k]):
        quantity = "policy return" if tabular else "policy return (loss)"  # (a tabular solver has no loss)
        if tabular and not cause:  # (exact: nothing of its own to overflow but a step size)
            cause = (
                "the game's reward or kernel may not be finite where this iterate took the population (the "
                "checks look at mu_0 and a second mean field), or a step size overflowed"
            )
    where = f"non-finite {quantity} at iteration {start_iteration + k + 1} (run {r})"
    return where + (f": {cause}" if cause else "")


def iterate(
    solver: Solver,
    states: Any,
    iterations: int,
    chunk_length: int = 50,
    progress: Callable[[int], None] | None = None,
) -> tuple[Any, Metrics]:
    """Run ``iterations`` iterations of every run of ``states`` in chunks of at most
    ``chunk_length``, calling ``progress(k)`` after each chunk of ``k``; returns the new
    states and the metrics of every iteration, ``(R, iterations)`` arrays. ``states``
    are donated."""
    parts, done = [], 0
    while done < iterations:
        length = min(chunk_length, iterations - done)
        states, metrics = compiled_chunk(solver, length, states)(states)
        parts.append(metrics)
        done += length
        if progress is not None:
            progress(length)
    if not parts:
        raise ValueError("iterate needs at least one iteration")
    return states, jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *parts)
