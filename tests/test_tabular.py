"""Exact tabular solvers (damped fixed point, Boltzmann policy iteration, tabular
Munchausen OMD, prior descent): their iterates against the methods written from their
definitions in numpy on the independent reference game, the exact limits between them
(Munchausen alpha = 1 is OMD, alpha = 0 is entropy-regularised Boltzmann policy
iteration, prior descent without prior renewal is the softmax fixed-point iteration,
damping 1 is the plain fixed-point iteration), normalised tables, falling
exploitability, and the training entry points.

One compiled program per solver (module-scoped fixture): the scale hyper-parameters
live in the state, so runs with different values are stacked in one program and each
is checked against its own reference.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
import reference_games
from conftest import one_error_line, slow
from mfax.dynamics.noise import enumerate_noise
from mfax.evaluation.exploitability import evaluate
from mfax.evaluation.values import best_response_value, policy_value
from mfax.run.cli import app
from mfax.solvers import driver, solver_spec
from mfax.solvers.base import Setting
from mfax.solvers.classical import rollout_table, table_policy

TINY = dict(num_states=5, max_action=1, horizon=3, common_noise=False)
ITERATIONS = 30
TAU = 0.5


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _solver(game, algo, **hp):
    spec = solver_spec(algo)
    return spec.build(game, spec.hparams_of(spec.resolve_hparams(hp)), Setting(ITERATIONS, 1, enumerate_noise(game)))


def _run(solver, states, iterations=ITERATIONS):
    """Every run of ``states`` (stacked) for ``iterations`` updates, one compiled
    length-1 chunk: the tables after each update ``(R, K+1, P, T, n, m)`` and the metrics."""
    step = driver.compiled_chunk(solver, 1, states)
    tables, metrics = [np.array(jax.vmap(solver.table)(states))], []  # copies: the chunk donates its input
    for _ in range(iterations):
        states, m = step(states)
        tables.append(np.array(jax.vmap(solver.table)(states)))
        metrics.append(m)
    metrics = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *metrics)
    return np.stack(tables, axis=1), metrics


def _with(state, **values):
    return state._replace(**{k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()})


@pytest.fixture(scope="module")
def game():
    return mfax.make("linear_quadratic", **TINY)


@pytest.fixture(scope="module")
def runs(game):
    """``algo -> (settings, tables, metrics)``: every solver, its runs stacked."""
    key = jax.random.PRNGKey(0)
    plans = {
        "fixed_point": ({}, [dict(damping=0.5), dict(damping=1.0)]),
        "boltzmann": ({}, [dict(temperature=TAU, weight=0.0), dict(temperature=TAU, weight=TAU)]),
        "munchausen": (
            {},
            [dict(temperature=TAU, weight=0.9), dict(temperature=TAU, weight=1.0), dict(temperature=TAU, weight=0.0)],
        ),
        "prior_descent": ({}, [dict(eta=TAU), dict(eta=0.1)]),
        "omd": ({"lr": 1.0 / TAU}, [{}]),
    }
    out = {}
    for algo, (hp, settings) in plans.items():
        solver = _solver(game, algo, **hp)
        init = solver.init(key, 0.0)
        states = driver.stack([_with(init, **s) for s in settings])
        out[algo] = (settings, *_run(solver, states))
    return out


# -- the methods from their definitions, in numpy, on the reference game -------------
def _entr(p):
    return np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _split(q):
    top = q.max(-1, keepdims=True)
    near = q >= top - 64 * np.finfo(float).eps * (1.0 + np.abs(top))
    return near / near.sum(-1, keepdims=True)


def _reference_q(ref, table, entropy=None):
    """``(Q_0..Q_{T-1})`` of the policy ``table`` along its own mean field (soft, weight
    ``entropy``) or, with ``entropy=None``, the optimal ``Q*`` against that mean field."""
    (path,) = [p for p, _ in ref.noise_paths()]
    traj = reference_games._trajectory(ref, lambda t, obs: table[t], path)
    v, qs = np.zeros(ref.n_states), [None] * ref.horizon
    for t in reversed(range(ref.horizon)):
        q = traj.rewards[t] + ref.gamma * traj.kernels[t].expect(v)
        pi = table[t]
        v = q.max(1) if entropy is None else (pi * q).sum(1) + entropy * _entr(pi).sum(1)
        qs[t] = q
    return np.asarray(qs)


def _reference_update(ref, algo, setting, pi, prior):
    if algo == "fixed_point":
        d = setting["damping"]
        return (1 - d) * pi + d * _split(_reference_q(ref, pi)), prior
    if algo == "boltzmann":
        return _softmax(_reference_q(ref, pi, setting["weight"]) / setting["temperature"]), prior
    if algo == "munchausen":
        tau, alpha = setting["temperature"], setting["weight"]
        q = _reference_q(ref, pi, (1 - alpha) * tau) + alpha * tau * np.log(pi)
        return _softmax(q / tau), prior
    if algo == "prior_descent":
        unnormalised = prior * np.exp(_reference_q(ref, pi) / setting["eta"])
        new = unnormalised / unnormalised.sum(-1, keepdims=True)
        return new, new  # prior_every = 1: the prior is the current policy
    raise AssertionError(algo)


@pytest.mark.parametrize("algo", ["fixed_point", "boltzmann", "munchausen", "prior_descent"])
def test_first_iterates_match_the_definition_written_in_numpy(runs, algo):
    """Three updates of every stacked run against the update written from its definition
    on the independent numpy game (tests/reference_games.py): the scale parameters held
    in the state act per run."""
    ref = reference_games.ref_linear_quadratic(**TINY)
    settings, tables, _ = runs[algo]
    for r, setting in enumerate(settings):
        pi = prior = np.full((ref.horizon, ref.n_states, ref.n_actions), 1.0 / ref.n_actions)
        for k in range(1, 4):
            pi, prior = _reference_update(ref, algo, setting, pi, prior)
            np.testing.assert_allclose(tables[r, k, 0], pi, rtol=1e-9, atol=1e-12, err_msg=f"{algo} {setting} {k}")


# What the first run of each reaches in 30 updates from the uniform policy (exploitability
# 0.90): the damped fixed point (d = 0.5) and prior descent (eta = 0.5) converge to the
# equilibrium (1.7e-9 and 1.6e-3: thresholds 1e-2 of the start); Munchausen with alpha = 0.9
# to the equilibrium of the game regularised by the entropy weight (1 - alpha) tau = 0.05
# (1.2e-2: threshold 5e-2); Boltzmann policy iteration at temperature 0.5 to its own fixed
# point, a quantal-response equilibrium, exploitable by 0.30 (threshold: half the start,
# and the iterate must be that fixed point).
FALLS_TO = {"fixed_point": 1e-2, "boltzmann": 0.5, "munchausen": 5e-2, "prior_descent": 1e-2}


@pytest.mark.parametrize("algo", ["fixed_point", "boltzmann", "munchausen", "prior_descent"])
def test_tables_are_policies_and_exploitability_falls(runs, algo):
    _, tables, metrics = runs[algo]
    assert np.all(tables >= 0.0)
    np.testing.assert_allclose(tables.sum(-1), 1.0, atol=1e-12)
    assert np.all(metrics.finite)
    e = np.asarray(metrics.exploitability)
    assert np.all(e >= -1e-12)
    assert e[0, -1] < FALLS_TO[algo] * e[0, 0], (algo, e[0, 0], e[0, -1])
    if algo == "boltzmann":
        assert float(metrics.grad_norm[0, -1]) < 1e-12  # the update no longer moves the policy


def test_munchausen_limits_are_omd_and_entropy_regularised_boltzmann(runs):
    """alpha = 1: OMD with learning rate 1/tau; alpha = 0: Boltzmann policy iteration
    with temperature tau and entropy weight tau (float64, every iterate)."""
    _, munchausen, _ = runs["munchausen"]
    _, omd, _ = runs["omd"]
    _, boltzmann, _ = runs["boltzmann"]
    np.testing.assert_allclose(munchausen[1], omd[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(munchausen[2], boltzmann[1], rtol=0, atol=1e-12)
    assert np.abs(munchausen[0] - omd[0]).max() > 1e-3  # alpha = 0.9 is neither


def test_damping_one_is_the_plain_fixed_point_iteration(runs, game):
    """d = 1: each iterate is the (split-ties) best response to the previous one's mean
    field; here it reaches an exact equilibrium in one step, which then stays."""
    _, tables, metrics = runs["fixed_point"]
    e = np.asarray(metrics.exploitability[1])
    assert e[1] < 1e-12 and np.all(np.abs(np.diff(tables[1, 1:], axis=0)) == 0.0)


@pytest.mark.slow
def test_prior_descent_without_renewal_is_the_softmax_fixed_point(game):
    """prior_every = 0 keeps the uniform prior: pi' = softmax(Q* / eta), the fixed-point
    iteration with temperature eta and damping 1 (OpenSpiel's fixed point with a
    temperature, MFGLib's prior descent without n_inner)."""
    key = jax.random.PRNGKey(0)
    fixed = _solver(game, "fixed_point", damping=1.0, temperature=TAU)
    prior = _solver(game, "prior_descent", eta=TAU, prior_every=0)
    a, _ = _run(fixed, driver.stack([fixed.init(key, 0.0)]), 5)
    b, _ = _run(prior, driver.stack([prior.init(key, 0.0)]), 5)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_hyper_parameters_are_declared_and_checked(tmp_path):
    for algo, bad, message in [
        ("fixed_point", "damping=0", "damping must lie in (0, 1]"),
        ("boltzmann", "temperature=0", "temperature must be > 0"),
        ("munchausen", "alpha=1.5", "alpha must lie in [0, 1]"),
        ("prior_descent", "prior_every=-1", "prior_every must be >= 0"),
    ]:
        result = CliRunner().invoke(
            app, ["train", "--game", "sis", "--algo", algo, "--hp", bad, "--out", str(tmp_path / algo)]
        )
        one_error_line(result, message)
        assert not (tmp_path / algo).exists()
    assert [name for name, _, _ in mfax.params.describe(solver_spec("munchausen").hparams)] == ["tau", "alpha"]


# -- slow tier: the training entry points, larger games, the history tree -------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "algo,hp",
    [("fixed_point", {}), ("boltzmann", {"temperature": 0.1}), ("munchausen", {}), ("prior_descent", {"eta": 0.1})],
)
def test_mfax_solve_and_train_run_every_tabular_solver(tmp_path, algo, hp):
    result = mfax.solve("sis", algo, iterations=20, eval_every=10, hp=hp, common_noise=False)
    assert result.exploitability < 0.5 * result.history["exploitability"][0], result.history
    cli = CliRunner().invoke(
        app,
        ["train", "--game", "sis", "--algo", algo, "--iterations", "4", "--eval-every", "2"]
        + [f"--hp={k}={v}" for k, v in hp.items()]
        + ["--out", str(tmp_path / "run"), "--no-progress", "--no-plots", "--json"],
    )
    assert cli.exit_code == 0, cli.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "algo,hp,iterations,factor",
    [
        ("fixed_point", dict(damping=0.2), 100, 1e-2),
        ("boltzmann", dict(temperature=0.05), 60, 1e-1),
        ("munchausen", dict(tau=0.1, alpha=1.0), 200, 1e-2),
        ("prior_descent", dict(eta=0.1), 100, 1e-3),
    ],
)
def test_beach_bar_with_closing_bar_history_policies(algo, hp, iterations, factor):
    """Finite common noise (bar location x closing): the tables are indexed by the public
    history (equal on the paths sharing it) and the information-consistent
    exploitability falls."""
    from mfax.solvers.tabular import solve

    game = mfax.make("beach_bar", num_states=21, horizon=10)
    batch = enumerate_noise(game)
    table, history = solve(game, algo, iterations, **hp)
    e = np.asarray(history.exploitability)
    assert e[-1] < factor * e[0], (e[0], e[-1])
    bars = np.asarray(batch.noise.bar)
    for b in np.unique(bars):
        i, j = np.nonzero(bars == b)[0]
        np.testing.assert_array_equal(table[i, : game.close_time], table[j, : game.close_time])
    result = evaluate(game, table_policy(game, batch, table), batch)
    assert result.exploitability_info == pytest.approx(float(e[-1]), rel=1e-9, abs=1e-12)


@pytest.mark.slow
def test_tiny_linear_quadratic_brute_force_equilibrium():
    """3 states, 3 actions, 2 steps: every deterministic policy (3^6 = 729) is scored;
    the damped fixed point, Munchausen OMD (alpha = 1) and prior descent must reach an
    equilibrium: exploitability below 1e-6 of the uniform policy's, and the return of one
    of the enumerated equilibria."""
    from mfax.solvers.tabular import solve

    game = mfax.make("linear_quadratic", num_states=3, max_action=1, horizon=2, common_noise=False)
    batch = enumerate_noise(game)

    def figures(table):
        traj = rollout_table(game, batch.noise, table[None])
        v, vb = policy_value(game, traj, batch.noise), best_response_value(game, traj, batch.noise)
        return jnp.sum(traj.mu[0, 0] * (vb - v)[0]), jnp.sum(traj.mu[0, 0] * v[0])

    tables = jnp.asarray([np.eye(3)[np.array(c).reshape(2, 3)] for c in itertools.product(range(3), repeat=6)])
    scores, returns = (np.asarray(x) for x in jax.jit(jax.vmap(figures))(tables))
    assert scores.min() < 1e-12
    equilibria = returns[scores < 1e-9]
    _, uniform = solve(game, "fixed_point", 1)
    e0 = float(uniform.exploitability[0])
    solvers = [("fixed_point", dict(damping=0.3)), ("munchausen", dict(tau=0.2, alpha=1.0)), ("prior_descent", {})]
    for algo, hp in solvers:
        table, _ = solve(game, algo, 200, **hp)
        e, r = (float(x) for x in jax.jit(figures)(table[0]))
        assert e < 1e-6 * e0, (algo, e, e0)
        assert np.min(np.abs(equilibria - r)) < 1e-4, algo


# -- cross-check against MFGLib (optional: a separate venv with torch and mfglib) -------
@pytest.mark.slow
def test_prior_descent_matches_mfglib():
    """MFGLib 0.3's PriorDescent on its beach bar (``mfglib.beach_bar``): the same
    iterates to rounding without prior renewal and with renewal every iteration
    (bench/algorithms_crosscheck.py also shows MFGLib's schedule for n_inner > 1)."""
    pytest.importorskip("mfglib", reason="MFGLib (and PyTorch) not installed: pip install torch mfglib (separate venv)")
    import torch
    from mfglib.alg import PriorDescent
    from mfglib.env import Environment

    from mfax.games.mfglib import MFGLibBeachBar
    from mfax.solvers.tabular import solve

    params = dict(T=4, n=8, bar_loc=3)
    torch.set_default_dtype(torch.float64)
    try:
        env = Environment.beach_bar(**params)
        game = MFGLibBeachBar(**params)
        for n_inner, every in ((None, 0), (1, 1)):
            pis, _, _ = PriorDescent(eta=1.0, n_inner=n_inner).solve(env, max_iter=3)
            for k in (1, 3):
                table, _ = solve(game, "prior_descent", k, eta=1.0, prior_every=every)
                theirs = pis[k].numpy().reshape(table.shape[1:])
                np.testing.assert_allclose(np.asarray(table[0]), theirs, rtol=0, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.slow
def test_damped_fictitious_play_matches_mfglib():
    """MFGLib 0.3's ``FictitiousPlay(alpha)`` (a constant weight, the best response's own
    mean field) is ``fixed_point`` with ``mixing=mean_field``, ``flow=own``, ``damping =
    alpha``, on a game whose kernel reads the mean field (susceptible-infected), where
    the deviator's flow differs."""
    pytest.importorskip("mfglib", reason="MFGLib (and PyTorch) not installed: pip install torch mfglib (separate venv)")
    import torch
    from mfglib.alg import FictitiousPlay
    from mfglib.env import Environment

    from mfax.games.mfglib import MFGLibSusceptibleInfected
    from mfax.solvers.tabular import solve

    torch.set_default_dtype(torch.float64)
    try:
        with jax.enable_x64(True):
            env, game = Environment.susceptible_infected(T=4), MFGLibSusceptibleInfected(T=4)
            pis, _, _ = FictitiousPlay(alpha=0.3).solve(env, max_iter=3)
            for k in (1, 3):
                hp = dict(damping=0.3, mixing="mean_field")
                own, _ = solve(game, "fixed_point", k, flow="own", **hp)
                theirs = pis[k].numpy().reshape(own.shape[1:])
                np.testing.assert_allclose(np.asarray(own[0]), theirs, rtol=0, atol=1e-12)
                deviator, _ = solve(game, "fixed_point", k, **hp)
                assert np.abs(np.asarray(deviator[0]) - theirs).max() > 1e-4
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.slow
def test_mean_field_mixing_matches_its_definition_in_numpy(game):
    """``mixing=mean_field``: the mixture ``(1 - d) mu_k + d nu`` restated as a policy
    (``nu`` the best responders' distribution along the population's kernels), three
    updates against numpy on the reference game."""
    ref = reference_games.ref_linear_quadratic(**TINY)
    (path,) = [p for p, _ in ref.noise_paths()]
    d = 0.3
    solver = _solver(game, "fixed_point", damping=d, mixing="mean_field")
    tables, _ = _run(solver, driver.stack([solver.init(jax.random.PRNGKey(0), 0.0)]), 3)
    pi = np.full((ref.horizon, ref.n_states, ref.n_actions), 1.0 / ref.n_actions)
    for k in range(1, 4):
        traj = reference_games._trajectory(ref, lambda t, obs, table=pi: table[t], path)
        br = _split(_reference_q(ref, pi))
        nu = [traj.mus[0]]
        for t in range(ref.horizon - 1):
            nu.append(traj.kernels[t].push(nu[t], br[t]))
        mu, nu = np.asarray(traj.mus[: ref.horizon])[..., None], np.asarray(nu)[..., None]
        num, den = (1 - d) * mu * pi + d * nu * br, (1 - d) * mu + d * nu
        pi = np.where(den > 0, num / np.where(den > 0, den, 1.0), (1 - d) * pi + d * br)
        np.testing.assert_allclose(tables[0, k, 0], pi, rtol=1e-9, atol=1e-12, err_msg=str(k))


@pytest.mark.parametrize("x64", [False, slow(True)])  # float32: 1e-40 flushed to zero
def test_a_tiny_temperature_is_the_greedy_limit(x64):
    """A temperature the hyper-parameters accept but whose ``q / temperature`` overflows,
    or is flushed to zero in float32 (1e-40), stopped training at its first update as
    "non-finite" (``inf - inf``, ``0 / 0``); it is the greedy limit. The log-policy
    solvers' zeros (``ln 0``) no longer turn the next update NaN (Munchausen with
    ``alpha = 0``, a prior renewed to a greedy policy)."""
    from mfax.solvers.tabular import solve

    with jax.enable_x64(x64):
        game = mfax.make("mfglib.beach_bar")
        greedy, _ = solve(game, "fixed_point", 4)
        cold, history = solve(game, "fixed_point", 4, temperature=1e-40)
        np.testing.assert_array_equal(np.asarray(cold), np.asarray(greedy))
        for algo, hp in [
            ("boltzmann", {"temperature": 1e-40}),
            ("munchausen", {"tau": 1e-40}),
            ("munchausen", {"tau": 1e-40, "alpha": 0.0}),
            ("prior_descent", {"eta": 1e-40, "prior_every": 1}),
        ]:
            table, history = solve(game, algo, 4, **hp)
            assert np.all(np.isfinite(np.asarray(table))), (algo, hp)
            assert np.all(np.isfinite(np.asarray(history.exploitability))), (algo, hp)


def test_small_temperatures_keep_the_log_policies_memory_in_float32():
    """Munchausen's ``alpha tau ln pi`` and prior descent's prior carry log-probabilities of
    -100 and below at small temperatures (float32 holds them); flooring them at the log of
    float32's smallest normal number (-87.3) brought dominated actions back too early
    (Munchausen at tau 0.01: 0.297 instead of 0.133 at iteration 2). float32 follows
    float64."""
    from mfax.solvers.tabular import solve

    for algo, hp in [
        ("munchausen", {"alpha": 0.9, "tau": 0.01}),
        ("prior_descent", {"eta": 0.01}),
        ("prior_descent", {"eta": 0.01, "prior_every": 3}),
    ]:
        curves = []
        for x64 in (False, True):
            with jax.enable_x64(x64):
                _, history = solve(mfax.make("mfglib.beach_bar"), algo, 6, **hp)
                curves.append(np.asarray(history.exploitability, dtype=np.float64))
        np.testing.assert_allclose(curves[0], curves[1], rtol=1e-3, err_msg=f"{algo} {hp}")
