"""Occupation-measure solvers (MF-OMO; occupation-measure inclusion): the residual is 0
exactly at a known equilibrium and positive elsewhere, the gradient autodiff takes
matches finite differences, the projection is the Euclidean one (its optimality
conditions, and entries far beyond the radius), the projected iterate stays an occupation
measure of the simplex, exploitability falls, games with common noise are refused with
one line, and (slow tier, MFGLib installed) the first iterates are MFGLib's.

One compiled run per solver on MFGLib's left-right game (module-scoped).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import one_error_line
from mfax.dynamics.noise import enumerate_noise
from mfax.errors import GameError
from mfax.run.cli import app
from mfax.solvers import driver, solver_spec
from mfax.solvers import occupation as occ
from mfax.solvers.base import Setting

ITERATIONS = 40


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def left_right():
    game = mfax.games.make("mfglib.left_right")
    noise = jax.tree.map(lambda x: x[0], enumerate_noise(game).noise)
    return game, noise


def _solver(game, algo, **hp):
    spec = solver_spec(algo)
    return spec.build(game, spec.hparams_of(spec.resolve_hparams(hp)), Setting(ITERATIONS, 1, enumerate_noise(game)))


@pytest.fixture(scope="module")
def omo_run(left_right):
    """MF-OMO, projected (MFGLib's defaults), ``ITERATIONS`` steps: the measures
    ``L_0..L_K`` and the metrics of the steps (one compiled chunk of length 1)."""
    game, _ = left_right
    solver = _solver(game, "mf_omo")
    states = driver.initial_states(solver, [0], [0.0])
    step = driver.compiled_chunk(solver, 1, states)
    measures, metrics = [np.array(jax.vmap(solver.measure)(states)[0])], []
    for _ in range(ITERATIONS):
        states, m = step(states)
        measures.append(np.array(jax.vmap(solver.measure)(states)[0]))
        metrics.append(m)
    metrics = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x)[0] for x in xs]), *metrics)
    return np.stack(measures), metrics


def _equilibrium(split: float) -> jnp.ndarray:
    """Left-right's occupation measure when a share ``split`` goes left: ``L_0`` all at
    the start state, ``L_1`` on left / right, each action at half (they pay alike)."""
    L0 = jnp.array([[split, 1.0 - split], [0.0, 0.0], [0.0, 0.0]])
    L1 = jnp.array([[0.0, 0.0], [split / 2, split / 2], [(1.0 - split) / 2, (1.0 - split) / 2]])
    return jnp.stack([L0, L1])


def test_residual_is_zero_exactly_at_the_equilibrium(left_right):
    game, noise = left_right
    hp = occ.MFOMOHyperParams(r_max=1.0)
    terms = jax.jit(lambda L, z, y: occ.omo_terms(game, noise, hp, (L, z, y), 1.0))
    hat = jax.jit(lambda L: occ.hat_dual(game, occ.flow_tables(game, noise, L)))
    # left pays -mu(left), right -2 mu(right): the equilibrium sends 2/3 left
    for split, gap in ((2.0 / 3.0, 0.0), (0.5, 0.25)):
        L = _equilibrium(split)
        z, y = hat(L)
        o1, o2, o3 = terms(L, z, y)
        assert float(o1) < 1e-30 and float(o2) < 1e-28  # a consistent flow, and the hat duals fit it
        # z.L: the right-goers' share 1 - split times their loss against going left
        assert abs(float(o3) - gap) < 1e-15


def test_gradient_matches_finite_differences(left_right):
    game, noise = left_right
    hp = occ.MFOMOHyperParams(parameterize=True, r_max=1.0)
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    point = (
        jax.random.normal(keys[0], (2, 3, 2)),
        jax.random.normal(keys[1], (2 * 3 * 2 + 1,)),
        jax.random.normal(keys[2], (2, 3)),
    )
    direction = (
        jax.random.normal(keys[3], (2, 3, 2)),
        jax.random.normal(keys[4], (13,)),
        jax.random.normal(keys[5], (2, 3)),
    )

    def f(v):
        return occ.omo_objective(game, noise, hp, v, 1.0, 1.0, 1.0)

    @jax.jit
    def both(p, d, h):  # the directional derivative by autodiff and by central differences
        along = sum(jnp.sum(g * e) for g, e in zip(jax.grad(f)(p), d, strict=True))
        ahead = f(jax.tree.map(lambda x, e: x + h * e, p, d))
        behind = f(jax.tree.map(lambda x, e: x - h * e, p, d))
        return along, (ahead - behind) / (2.0 * h)

    along, central = (float(x) for x in both(point, direction, 1e-6))
    assert abs(central - along) < 1e-6 * max(1.0, abs(along))


def test_simplex_projection_is_the_euclidean_projection():
    x = jax.random.normal(jax.random.PRNGKey(0), (17,)) * 3.0
    project = jax.jit(occ.project_simplex)
    for radius in (1.0, 2.5):
        p = project(x, radius)
        assert float(jnp.min(p)) >= 0.0 and abs(float(jnp.sum(p)) - radius) < 1e-12
        # optimality: x - p is one constant theta on the support and >= ... x <= theta off it
        theta = np.asarray(x - p)[np.asarray(p) > 0]
        assert np.ptp(theta) < 1e-12
        assert np.all(np.asarray(x)[np.asarray(p) == 0] <= theta[0] + 1e-12)
    # entries far beyond the radius: the vertex of the largest (MFGLib's unshifted threshold
    # rounds to nothing there and falls back to uniform)
    big = jnp.array([2.6e20, 2.5e20, 1.0, -3.0])
    np.testing.assert_array_equal(project(big, 1.0), [1.0, 0.0, 0.0, 0.0])


def test_projected_iterates_are_measures_and_exploitability_falls(omo_run):
    measures, metrics = omo_run
    assert np.all(measures >= 0.0)
    np.testing.assert_allclose(measures.sum(axis=(2, 3)), 1.0, rtol=0, atol=1e-12)
    assert np.all(metrics.finite)
    e = metrics.exploitability
    # not monotone (Adam on a non-convex residual): it reaches 2% and stays under 20%
    assert e.min() < 0.02 * e[0] and e[-1] < 0.2 * e[0], e
    assert metrics.loss[-1] < 0.01 * metrics.loss[0], metrics.loss


@pytest.fixture(scope="module")
def omi_run(left_right):
    """Occupation-measure inclusion, alpha = 1: the measures ``L_0..L_K`` and the metrics."""
    game, _ = left_right
    solver = _solver(game, "omi", alpha=1.0)
    states = driver.initial_states(solver, [0], [0.0])
    measures = [np.array(states.measure[0])]
    states, metrics = driver.compiled_chunk(solver, 1, states)(states)
    measures.append(np.array(states.measure[0]))
    return np.stack(measures), jax.tree.map(lambda x: np.asarray(x)[0], metrics)


def test_flow_projection_is_the_nearest_occupation_measure(left_right):
    """The projection onto the occupation measures of fixed kernels, by brute force: the
    polytope is the convex hull of the 64 deterministic policies' measures on left-right,
    and ``x`` is the projection of ``t`` iff it is in the polytope and
    ``(t - x).(v - x) <= 0`` at every vertex ``v``."""
    game, noise = left_right
    L = _equilibrium(0.5)
    target = L + jax.random.normal(jax.random.PRNGKey(1), L.shape) * 0.3
    mu0 = game.initial_mean_field(noise)
    x = np.asarray(jax.jit(lambda t: occ.project_flow(occ.flow_tables(game, noise, L), t, mu0)[0])(target))
    vertices = []
    for choice in itertools.product(range(2), repeat=6):  # an action per (t, s)
        v, mu = np.zeros((2, 3, 2)), np.asarray(mu0)
        for t in range(2):
            for s in range(3):
                v[t, s, choice[3 * t + s]] = mu[s]
            mu = np.array([0.0, v[t, :, 0].sum(), v[t, :, 1].sum()])  # action a leads to state 1 + a
        vertices.append(v)
    weights = np.linalg.lstsq(np.stack([v.reshape(-1) for v in vertices]).T, x.reshape(-1), rcond=None)[0]
    assert x.min() >= 0.0 and np.abs(np.stack(vertices).reshape(64, -1).T @ weights - x.reshape(-1)).max() < 1e-12
    gap = max(float(np.sum((np.asarray(target) - x) * (v - x))) for v in vertices)
    assert gap <= 1e-12


def test_omi_iterates_are_occupation_measures_and_reach_the_equilibrium(omi_run):
    measures, metrics = omi_run
    assert np.all(measures >= 0.0)
    np.testing.assert_allclose(measures.sum(axis=(2, 3)), 1.0, rtol=0, atol=1e-12)
    # left-right's kernel does not read the mean field: each iterate is its own kernels' flow
    assert metrics.loss.max() < 1e-14
    # from the uniform flow one step of alpha = 1 lands on the equilibrium's 2/3 left
    np.testing.assert_allclose(measures[-1], _equilibrium(2.0 / 3.0), rtol=0, atol=1e-12)
    assert metrics.exploitability[0] == pytest.approx(0.25, abs=1e-12)


def test_policy_of_a_measure_is_uniform_where_the_marginal_is_zero():
    L = jnp.array([[[0.2, 0.6], [0.0, 0.0]]])
    np.testing.assert_allclose(occ.policy_of(L), [[[0.25, 0.75], [0.5, 0.5]]])


def test_common_noise_and_bad_hyper_parameters_are_refused(tmp_path):
    game = mfax.games.make("mfglib.susceptible_infected", beta_shock=0.2)
    with pytest.raises(
        GameError,
        match=r"applies to games without common noise; 'mfglib\.susceptible_infected' has 2 noise paths here "
        r"\(without common noise: beta_shock=0\.0\)",
    ):
        _solver(game, "mf_omo")
    # a support listing a path of weight 0 (a user's game whose closure probability is 0,
    # say): the paths are still refused, and the message says which have no weight
    batch = enumerate_noise(game)
    weightless = batch._replace(weight=jnp.asarray([1.0, 0.0], batch.weight.dtype))
    with pytest.raises(GameError, match=r"; 1 of them have weight 0, a support without them has one\)$"):
        occ._no_common_noise(game, weightless, "mf_omo")
    result = CliRunner().invoke(
        app, ["train", "--game", "sis", "--algo", "mf_omo", "--hp", "optimizer=rmsprop", "--out", str(tmp_path / "r")]
    )
    one_error_line(result, "optimizer must be adam or sgd")
    assert not (tmp_path / "r").exists()
    result = CliRunner().invoke(
        app, ["train", "--game", "sis", "--algo", "mf_omo", "--hp", "m2=0", "--out", str(tmp_path / "r")]
    )
    one_error_line(result, "MF-OMO residual balancing m2 must be > 0, got 0.0")  # which of m1, m2, m3
    # refused when the solver is built: no "run directory:" line names a directory that is
    # not there
    result = CliRunner().invoke(
        app, ["train", "--game", "beach_bar", "--set", "num_states=7", "--algo", "mf_omo", "--out", str(tmp_path / "r")]
    )
    one_error_line(result, "applies to games without common noise")
    assert "run directory" not in result.output and not (tmp_path / "r").exists()


# -- slow tier: the entry points; the cross-check against MFGLib ------------------------
@pytest.mark.slow
def test_mfax_solve_and_train_run_mf_omo(tmp_path):
    result = mfax.solve("mfglib.left_right", "mf_omo", iterations=30, eval_every=10)
    assert result.exploitability < 0.2 * result.history["exploitability"][0], result.history
    cli = CliRunner().invoke(
        app,
        [
            *("train", "--game", "mfglib.rock_paper_scissors", "--algo", "mf_omo", "--iterations", "4"),
            *("--eval-every", "2", "--hp", "parameterize=true", "--out", str(tmp_path / "run")),
            *("--no-progress", "--no-plots", "--json"),
        ],
    )
    assert cli.exit_code == 0, cli.output


@pytest.mark.slow
@pytest.mark.parametrize("hp", [{}, dict(parameterize=True, hat_init=False), dict(optimizer="sgd", lr=0.01)])
def test_mf_omo_first_iterates_match_mfglib(hp):
    """MFGLib 0.3's ``MFOMO`` on its rock-paper-scissors and left-right games: the same
    exploitability of iterates 0..5 to rounding (bench/algorithms_crosscheck.py has
    more games and settings, and explains where they part)."""
    pytest.importorskip("mfglib", reason="MFGLib (and PyTorch) not installed: pip install torch mfglib (separate venv)")
    import torch
    from mfglib.alg import MFOMO
    from mfglib.env import Environment

    torch.set_default_dtype(torch.float64)
    try:
        for name in ("rock_paper_scissors", "left_right"):
            env = getattr(Environment, name)()
            optimizer = {"name": "SGD" if hp.get("optimizer") == "sgd" else "Adam", "config": {"lr": hp.get("lr", 0.1)}}
            rest = {k: v for k, v in hp.items() if k not in ("optimizer", "lr")}
            _, expls, _ = MFOMO(optimizer=optimizer, **rest).solve(env, max_iter=5, atol=None, rtol=None)
            _, history = occ.solve(mfax.games.make(f"mfglib.{name}"), "mf_omo", 5, r_max=float(env.r_max), **hp)
            np.testing.assert_allclose(np.asarray(history.exploitability), expls, rtol=0, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.slow
def test_omi_matches_mfglib_to_its_projection_tolerance():
    """MFGLib 0.3's ``OccupationMeasureInclusion`` on rock-paper-scissors and left-right:
    the same exploitability of iterates 0..5 to 1e-6 (MFGLib's OSQP projection stops at
    1e-8 and is cast to float32; the bench shows the difference shrinking without that)."""
    pytest.importorskip("mfglib", reason="MFGLib (and PyTorch) not installed: pip install torch mfglib (separate venv)")
    import torch
    from mfglib.alg import OccupationMeasureInclusion
    from mfglib.env import Environment

    torch.set_default_dtype(torch.float64)
    try:
        for name in ("rock_paper_scissors", "left_right"):
            env = getattr(Environment, name)()
            for alpha in (1e-3, 0.1):
                _, expls, _ = OccupationMeasureInclusion(alpha=alpha).solve(env, max_iter=5, atol=None, rtol=None)
                _, history = occ.solve(mfax.games.make(f"mfglib.{name}"), "omi", 5, alpha=alpha)
                np.testing.assert_allclose(np.asarray(history.exploitability), expls, rtol=0, atol=1e-6)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.slow
def test_mfax_solve_runs_omi():
    result = mfax.solve("mfglib.left_right", "omi", iterations=4, eval_every=2, hp={"alpha": 1.0})
    assert result.exploitability < 1e-10, result.history


@pytest.mark.parametrize(
    "name, overrides",
    [
        pytest.param("mfglib.equilibrium_price", {}, marks=pytest.mark.slow),
        ("beach_bar", {"num_states": 9, "horizon": 4, "common_noise": False}),
    ],
)
def test_structured_newton_system_is_the_dense_one_and_the_projection_is_exact(name, overrides):
    """The block-tridiagonal ``A D A^T`` (sparse assembly; beach bar: a two-stage kernel)
    equals the dense product of the Jacobian of ``x -> A x``, its block solve equals a dense
    solve, and the projection satisfies its optimality conditions: ``x >= 0``, ``A x = b``
    and ``x = max(target - A^T lam, 0)`` for the returned ``lam`` (together they make ``x``
    the nearest point of the polytope)."""
    game = mfax.games.make(name, **overrides)
    noise = jax.tree.map(lambda x: x[0], enumerate_noise(game).noise)
    horizon, n, m = game.horizon, game.n_states, game.n_actions
    key1, key2 = jax.random.split(jax.random.PRNGKey(3))
    L = jax.random.dirichlet(key1, jnp.ones(n * m), (horizon,)).reshape(horizon, n, m)
    active = (jax.random.uniform(key2, L.shape) > 0.3).astype(L.dtype)
    rhs = jax.random.normal(key2, (horizon, n))
    mu0 = game.initial_mean_field(noise)

    @jax.jit  # one program: eagerly, each small operation would be compiled on its own
    def pieces(L):
        tables = occ.flow_tables(game, noise, L)
        A = jax.jacfwd(lambda x: occ.flow_operator(tables.kernels, x))(L).reshape(horizon * n, -1)
        diagonal, upper = occ.newton_blocks(tables.kernels, active)
        solved = occ.solve_block_tridiagonal(diagonal + 1e-3 * jnp.eye(n), upper, rhs)
        target = L - 0.5 * tables.cost / jnp.max(jnp.abs(tables.cost))
        x, lam = occ.project_flow(tables, target, mu0)
        pushed = occ.flow_operator(tables.kernels, x)
        return A, diagonal, upper, solved, x, pushed, jnp.maximum(target - occ.dual_map(tables, lam), 0.0)

    A, diagonal, upper, solved, x, pushed, primal = jax.tree.map(np.asarray, pieces(L))
    order = np.concatenate([np.arange((horizon - 1) * n, horizon * n), np.arange((horizon - 1) * n)])
    dense = ((A * np.asarray(active).reshape(-1)) @ A.T)[np.ix_(order, order)]
    blocks = np.zeros_like(dense)
    for k in range(horizon):
        blocks[k * n : (k + 1) * n, k * n : (k + 1) * n] = diagonal[k]
    for k in range(horizon - 1):
        blocks[k * n : (k + 1) * n, (k + 1) * n : (k + 2) * n] = upper[k]
        blocks[(k + 1) * n : (k + 2) * n, k * n : (k + 1) * n] = upper[k].T
    np.testing.assert_allclose(blocks, dense, rtol=1e-13, atol=1e-14)
    ridge = 1e-3 * np.eye(horizon * n)
    np.testing.assert_allclose(
        solved.reshape(-1), np.linalg.solve(dense + ridge, np.asarray(rhs).reshape(-1)), rtol=1e-9
    )
    assert x.min() >= 0.0
    np.testing.assert_allclose(
        pushed, np.zeros((horizon, n)) + np.eye(horizon)[-1][:, None] * np.asarray(mu0), atol=1e-13
    )
    np.testing.assert_allclose(x, primal, rtol=0, atol=1e-13)


def test_omi_projection_is_exact_where_it_needs_many_newton_steps_and_never_silently_infeasible(monkeypatch):
    """MFGLib's beach bar of 8 positions at alpha = 2 (inside tune's range): the third
    projection needed about 120 Newton steps, and at the former cap of 60 it returned a
    measure whose masses were 1.005-2.8 (the flow residual 4e-2..1.3), silently. Exact now;
    a projection still short of its steps is NaN, which stops a training."""
    with jax.enable_x64(True):
        with mfax.games.unchecked():  # the game's checks are test_validation's
            game = mfax.make("mfglib.beach_bar", n=8, bar_loc=3, T=4)
        noise = jax.tree.map(lambda x: x[0], enumerate_noise(game).noise)
        step = jax.jit(lambda s: occ.omi_step(game, noise, s))
        state = occ.omi_init(game, noise, occ.OMIHyperParams(alpha=2.0))
        for _ in range(5):
            state, _ = step(state)
            measure = np.asarray(state.measure)
            np.testing.assert_allclose(measure.sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-12)
        tables = occ.flow_tables(game, noise, measure)  # the last measure's (the one projected below)
        # short of steps: NaN, not an infeasible measure
        monkeypatch.setattr(occ, "_NEWTON_STEPS", 2)
        target = jnp.asarray(measure) - 2.0 * tables.cost
        x, _ = occ.project_flow(tables, target, game.initial_mean_field(noise))
        assert np.isnan(np.asarray(x)).all()


def test_mf_omo_refuses_a_zero_reward_bound_estimate():
    """A reward that vanishes at the uniform mean field (here ``1/2 - mu(s)`` plus an
    action term ``a (mu(0) - 1/2)``) makes the default r_max estimate 0: y and z were
    projected onto {0} at every step and MF-OMO stood still at exploitability 0.25,
    silently. It is refused by name; a given bound runs and learns."""
    from typing import ClassVar

    from mfax.games.kernels import deterministic_kernel
    from mfax.games.no_noise import NoCommonNoise
    from mfax.params import param

    class Vanishing(NoCommonNoise):
        name: ClassVar[str] = "vanishing"
        horizon: int = param(3, "steps")
        gamma: float = param(1.0, "discount")
        n_actions: ClassVar[int] = 2

        @property
        def n_states(self):
            return 2

        def state_features(self):
            return jnp.arange(2.0)[:, None]

        def action_values(self):
            return jnp.arange(2.0)

        def initial_mean_field(self, noise):
            return jnp.array([1.0, 0.0])

        def kernel(self, mu, noise, t):
            return deterministic_kernel(np.broadcast_to(np.arange(2), (2, 2)))

        def reward(self, mu, mu_next, noise, t):
            return (0.5 - mu)[:, None] + jnp.arange(2.0)[None, :] * (mu[0] - 0.5)

        def observation(self, mu, noise, t):
            return mu

    game = Vanishing()
    bound = r"give a bound with hp=\{\"r_max\": VALUE\} \(> 0\)$"  # Python's words (--hp r_max=VALUE in mfax's)
    with pytest.raises(GameError, match=r"r_max, estimated .* is 0 on this game: " + bound):
        occ.solve(game, "mf_omo", 2)
    with pytest.raises(GameError, match=r"is 0 on this game"):
        _solver(game, "mf_omo")
    _, history = occ.solve(game, "mf_omo", 100, r_max=1.0)
    assert history.exploitability[0] == pytest.approx(0.25) and history.exploitability[-1] < 0.2


def test_omi_says_when_its_projection_did_not_converge(tmp_path):
    """A projection out of Newton steps is NaN, which stopped training with "non-finite
    gradient norm" (OMI has none: its metrics carry alpha where a learning rate goes);
    the message now names the projection and what to change."""
    args = ["train", "--game", "mfglib.beach_bar", "--set", "n=8", "--set", "bar_loc=3", "--set", "T=4"]
    args += ["--algo", "omi", "--hp", "alpha=300", "--iterations", "10", "--x64", "--out", str(tmp_path / "r")]
    try:  # --x64 turns float64 on for the process: off again for the tests after this one
        result = CliRunner().invoke(app, args)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert result.exit_code == 1, result.output  # training stopped (not a usage error)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("mfax: error:")]
    assert line.startswith("mfax: error: non-finite policy update at iteration"), line
    assert "the projection onto occupation measures did not converge" in line
    assert "a smaller step alpha (a hyper-parameter), in float32 also float64" in line and "gradient" not in line
