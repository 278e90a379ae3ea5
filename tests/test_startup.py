"""What a fresh process pays before its first result: the solver modules it imports and
the programs it compiles (or reads from the compilation cache) besides the training
chunk and the evaluation. Building the initial states and fetching a run's state to
build its policy compile nothing; a solver's module (and optax with the network ones) is
imported when that solver is first asked for, and a user's solver registered under a
built-in name stays registered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import monitoring

import mfax
from mfax.dynamics.noise import exact_noise
from mfax.sharding import run_to_host
from mfax.solvers import driver, solver_names, solver_spec
from mfax.solvers.base import BUILTIN, Setting

SRC = Path(__file__).resolve().parents[1] / "src"
_COMPILES: list[str] = []


def _listen(event: str, seconds: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES.append(kwargs.get("fun_name", "?"))


monitoring.register_event_duration_secs_listener(_listen)


@pytest.fixture(scope="module")
def solvers():
    game = mfax.make("beach_bar", num_states=5, horizon=4)
    setting = Setting(iterations=2, paths=4, exact=exact_noise(game, "exact"), num_runs=2)
    built = {}
    for name in ("fp", "omd"):
        spec = solver_spec(name)
        built[name] = spec.build(game, spec.hparams_of(spec.resolve_hparams({})), setting)
    return game, built


@pytest.mark.parametrize("name", ["fp", "omd"])
def test_initial_states_and_a_runs_state_compile_no_program(solvers, name):
    game, built = solvers
    solver = built[name]
    jax.random.PRNGKey(0)  # the runs' keys: made eagerly (two small programs), compiled here first
    _COMPILES.clear()
    states = driver.initial_states(solver, [0, 1], [0.1, 0.2])
    host = run_to_host(states, 1)
    assert _COMPILES == []
    table = host[0]  # FP: the average policy, uniform; OMD: the scores y, zero
    assert table.shape == (game.noise_support().weight.shape[0], game.horizon, game.n_states, game.n_actions)
    assert table.dtype == jnp.result_type(float) and host.iteration.dtype == np.int32
    # bit for bit what building them with jax.numpy gives
    np.testing.assert_array_equal(table, jnp.full(table.shape, 1.0 / game.n_actions if name == "fp" else 0.0))
    for leaf, one in zip(jax.tree.leaves(states), jax.tree.leaves(host), strict=True):
        np.testing.assert_array_equal(one, np.array(leaf)[1])
    # the host copy holds no reference to the states: they can still be donated to a chunk
    leaf = jax.tree.leaves(states)[0]
    jax.jit(lambda x: x + 1, donate_argnums=0)(leaf)
    assert leaf.is_deleted()


def test_stacking_on_the_host_is_stacking_with_jax():
    states = [
        {"key": jax.random.key(s), "x": jnp.full((2,), float(s)), "weak": jnp.asarray(0.5 * s), "n": np.int32(s)}
        for s in (0, 1)
    ]
    stacked, expected = driver._stack_on_host(states), driver.stack(states)
    assert stacked["key"].shape == (2,) and jax.dtypes.issubdtype(stacked["key"].dtype, jax.dtypes.prng_key)
    for name in ("x", "weak", "n"):
        a, b = stacked[name], expected[name]
        assert (a.dtype, a.weak_type, a.shape) == (b.dtype, b.weak_type, b.shape), name
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_solver_names_are_the_builtins_in_order_then_the_registered():
    assert solver_names()[: len(BUILTIN)] == list(BUILTIN)


def test_a_solver_module_is_imported_when_its_solver_is_asked_for():
    code = """
import sys
from mfax.solvers import register_solver, solver_spec
from mfax.solvers.base import SolverSpec
assert "mfax.solvers.classical" not in sys.modules and "optax" not in sys.modules
fp = solver_spec("fp")
assert "mfax.solvers.classical" in sys.modules
assert "optax" not in sys.modules and "mfax.solvers.structural" not in sys.modules
from mfax.errors import GameError
try:  # a built-in's name is refused (a run of it would read as the built-in's), its module imported first
    register_solver(SolverSpec("boltzmann", "a user's solver under a built-in name", fp.build))
    raise AssertionError("registered over a built-in")
except GameError as err:
    assert "'boltzmann' is built into mfax; register yours under another name" in str(err), err
assert "mfax.solvers.tabular" in sys.modules and solver_spec("boltzmann").name == "boltzmann"
mine = register_solver(SolverSpec("my_boltzmann", "a user's solver", fp.build))
assert solver_spec("my_boltzmann") is mine and register_solver(mine) is mine  # (a cell run again)
# every solver a module of mfax.solvers registers is in BUILTIN (else `mfax list` would miss it)
import importlib, pkgutil, mfax.solvers
from mfax.solvers.base import BUILTIN, _SOLVERS
for module in pkgutil.iter_modules(mfax.solvers.__path__):
    importlib.import_module("mfax.solvers." + module.name)
ours = {name for name, spec in _SOLVERS.items() if spec is not mine}
assert ours == set(BUILTIN), sorted(ours ^ set(BUILTIN))
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(SRC), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_batch_prefix_compiles_one_program_and_then_none():
    """The exact evaluation's shared-prefix groups (beach bar: every path is open until
    T//2) read the game's keys in one compiled program, kept for the game, and put the
    group indices on the device without a conversion program: a fresh process's
    evaluation used to compile four small programs for them."""
    from mfax import compiling
    from mfax.dynamics.pushforward import batch_prefix

    game = mfax.make("beach_bar", num_states=6, horizon=4)
    noise = exact_noise(game, "exact").noise
    # the process's one probe of XLA's CPU options (a program of one addition) is made by
    # whichever exact program comes first: here, unless a test before this one in the
    # same process made it
    compiling.compiler_options()
    _COMPILES.clear()
    prefix = batch_prefix(game, noise)
    assert prefix is not None and len(_COMPILES) <= 1, _COMPILES
    _COMPILES.clear()
    again = batch_prefix(game, noise)
    assert _COMPILES == []
    assert prefix.members.dtype == prefix.reps.dtype == jnp.int32
    np.testing.assert_array_equal(prefix.members, again.members)
    np.testing.assert_array_equal(prefix.reps, again.reps)
    # paths sharing a bar location share their start, represented by their first path
    bars = np.asarray(noise.bar)
    members = np.asarray(prefix.members)
    assert all(bars[i] == bars[int(prefix.reps[members[i]])] for i in range(bars.shape[0]))


def test_the_entry_point_loads_nothing_heavy_and_a_ctrl_c_while_loading_is_one_line():
    """`import mfax` and the command's entry point load no JAX until it is used; a SIGINT
    while the command line loads (the import of mfax.run.cli: seconds) ends the command
    at once with one line and status 130: it raised KeyboardInterrupt inside whatever
    was loading (a traceback, an ImportError from jaxlib's extension, or, swallowed by
    a garbage-collection callback, nothing: the command ran on). The SIGINT is sent from
    inside that import, so that it surely arrives while loading."""
    code = """
import os, signal, sys, time
import mfax, mfax.run.entry
assert "jax" not in sys.modules, "import mfax loaded jax"
# the lazily loaded names are offered (a notebook's mfax.<TAB> offered only the errors)
assert {"solve", "load", "tune", "make", "Result"} <= set(dir(mfax)) and "jax" not in sys.modules
assert mfax.make("sis").name == "sis" and "jax" in sys.modules  # loaded on first use

class SigintWhileLoading:
    def find_spec(self, name, path=None, target=None):
        if name == "mfax.run.cli":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)  # the handler ends the process before this ends
        return None

sys.meta_path.insert(0, SigintWhileLoading())
mfax.run.entry.main()
print("not reached")
"""
    env = {**os.environ, "PYTHONPATH": str(SRC), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code, "train"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert done.stderr == "mfax: interrupted while loading; nothing was run\n" and done.stdout == ""
