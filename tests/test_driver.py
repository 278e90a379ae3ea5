"""The solver protocol and the driver: every registered solver is a pure init/step/policy
module with the one Metrics type; the driver's chunks give the same states as steps
called one by one; a non-finite value is reported with its iteration and run."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import slow
from mfax.dynamics.noise import exact_noise
from mfax.policies.base import Policy
from mfax.solvers import driver, solver_names, solver_spec
from mfax.solvers.base import Metrics, Setting, Solver
from mfax.tracing import TRACES

SMALL_NET = dict(obs_embed=8, gru_hidden=8, state_embed=4, aggregate_embed=4, mlp_width=8)
MODEL_FREE = dict(num_envs=2, num_agents=4, updates=2)


# solvers defined only without common noise (they refuse a game with several noise paths)
WITHOUT_COMMON_NOISE = ("mf_omo", "omi", "mf_psro")


def _solver(name: str) -> tuple[mfax.Game, Solver]:
    noise = {"common_noise": False} if name in WITHOUT_COMMON_NOISE else {}
    game = mfax.make("linear_quadratic", num_states=9, horizon=4, **noise)
    spec = solver_spec(name)
    declared = spec.resolve_hparams({})
    values = {k: v for k, v in {**SMALL_NET, **MODEL_FREE, "minibatches": 2}.items() if k in declared}
    setting = Setting(iterations=5, paths=4, exact=exact_noise(game, "exact"), num_runs=2)
    return game, spec.build(game, spec.hparams_of(spec.resolve_hparams(values)), setting)


# one member of most families by default (spg/rspg, ippo/rippo and fp/omd share their code)
DEFAULT_TIER = ("spg", "ippo", "momd", "fp")


@pytest.mark.parametrize("name", [n if n in DEFAULT_TIER else slow(n) for n in solver_names()])
def test_every_solver_is_a_pure_init_step_policy_module(name):
    game, solver = _solver(name)
    assert isinstance(solver, Solver)
    state = solver.init(jax.random.PRNGKey(0), 1e-2)
    step = jax.jit(lambda s: solver.step(s))
    new, metrics = step(state)
    assert isinstance(metrics, Metrics) and all(jnp.shape(x) == () for x in metrics)
    assert int(new.iteration) == int(state.iteration) + 1 and bool(metrics.finite)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    # pure: the same state steps to the same new state
    again, _ = step(state)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    policy = solver.policy(new)
    assert isinstance(policy, Policy)
    noise = game.sample_noise(jax.random.PRNGKey(1))
    obs = game.observation(game.initial_mean_field(noise), noise, jnp.int32(0))
    _, probs = policy(policy.initial_carry(), obs, jnp.int32(0))
    assert probs.shape == (game.n_states, game.n_actions)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["spg", "fp"])
def test_a_chunk_is_the_steps_one_by_one(name):
    """Two runs (seeds 0 and 1) of a three-iteration chunk equal three plain steps each."""
    _, solver = _solver(name)
    states = driver.initial_states(solver, [0, 1], [1e-2, 3e-3])
    expected, step = [], jax.jit(lambda s: solver.step(s))
    for r in range(2):
        state = jax.tree.map(lambda x, r=r: x[r], states)
        for _ in range(3):
            state, _ = step(state)
        expected.append(state)
    out, metrics = driver.chunk(solver, 3)(jax.tree.map(jnp.copy, states))
    assert metrics.policy_return.shape == (2, 3)
    # two programs (one batched over the runs and scanned): float32 sums in another order,
    # through three Adam steps of size 1e-2 (1.2e-7 apart where XLA's CPU fusions differ)
    for r in range(2):
        for a, b in zip(jax.tree.leaves(expected[r]), jax.tree.leaves(out), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[r], rtol=1e-5, atol=1e-6)


def test_compiled_chunks_are_kept_for_an_equal_solver_and_never_for_a_different_value():
    _, solver = _solver("fp")
    states = driver.initial_states(solver, [0], [1e-2])
    before = TRACES[solver.trace_name]
    first = driver.compiled_chunk(solver, 2, states)
    _, equal = _solver("fp")  # built anew, equal values: the same executable, no tracing
    assert driver.compiled_chunk(equal, 2, states) is first and TRACES[solver.trace_name] == before + 1
    other = eqx.tree_at(lambda s: s.game.kappa, equal, 2.0 * equal.game.kappa)  # a different value
    assert driver.compiled_chunk(other, 2, states) is not first and TRACES[solver.trace_name] == before + 2


def test_first_nonfinite_names_the_iteration_run_and_quantity():
    ones = np.ones((2, 3))
    finite = np.ones((2, 3), bool)
    ok = Metrics(ones, ones, ones, ones, ones, ones, finite)
    assert driver.first_nonfinite(ok, 10) is None
    finite[1, 2] = False
    grad = ones.copy()
    grad[1, 2] = np.nan
    bad = Metrics(ones, ones, ones, grad, ones, ones, finite)
    assert driver.first_nonfinite(bad, 10) == "non-finite gradient norm at iteration 13 (run 1)"
    # FP, OMD and the other tabular solvers have no learning rate: their grad_norm is the
    # size of the policy update, which the message named a gradient norm
    tabular = Metrics(ones, ones, ones, grad, np.full((2, 3), np.nan), ones, finite)
    assert driver.first_nonfinite(tabular, 10) == "non-finite policy update at iteration 13 (run 1)"
    # ... and no loss: a return that is not finite was called one, with no word of the game
    # whose reward had gone non-finite at a mean field its checks did not visit (a review)
    returns = ones.copy()
    returns[1, 2] = np.nan
    nan_return = Metrics(returns, ones, ones, ones, np.full((2, 3), np.nan), ones, finite)
    said = driver.first_nonfinite(nan_return, 10)
    assert said.startswith("non-finite policy return at iteration 13 (run 1): the game's reward or kernel may"), said
    assert "(loss)" in driver.first_nonfinite(Metrics(returns, ones, ones, ones, ones, ones, finite), 10)
