"""Mean-field PSRO (``mf_psro``): the mixed population against an independent numpy
push-forward and backward induction, the restricted game's Nash equilibrium against a
brute-force search, the set when it is full, and a training through the command line."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import one_error_line
from mfax.dynamics.noise import exact_noise
from mfax.games.base import reward_matrix
from mfax.solvers import psro
from mfax.solvers.base import Setting
from mfax.solvers.classical import TIE_RULES, uniform_table
from mfax.solvers.tabular import _evaluate


def _dense(kernel, n: int) -> np.ndarray:
    """``P[s, a, s']`` of a kernel (numpy)."""
    flat = kernel.flat()
    index, prob = np.asarray(flat.index), np.asarray(flat.prob)
    dense = np.zeros((n, index.shape[1], n))
    for s, a, k in np.ndindex(index.shape):
        dense[s, a, index[s, a, k]] += prob[s, a, k]
    return dense


def _random_tables(game, count: int, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).random((count, game.horizon, game.n_states, game.n_actions)) + 0.05
    return raw / raw.sum(-1, keepdims=True)


def test_the_mixture_is_the_mixed_population_and_its_return_the_groups_mean():
    """SIS (the infection reads the mean field, so the groups interact): the groups pushed
    by numpy along the population's own kernels, the restated policy's flow, its exact
    return against the nu-weighted payoffs, and the payoffs against a numpy backward
    induction of each policy along that flow."""
    with jax.enable_x64(True):
        game = mfax.make("mfglib.susceptible_infected", T=5)
        batch = exact_noise(game, "exact")
        noise = jax.tree.map(lambda x: x[0], batch.noise)
        policies = jnp.asarray(_random_tables(game, 3, 0))
        nu = jnp.asarray([0.2, 0.5, 0.3])
        n, T = game.n_states, game.horizon

        masses = np.zeros((T + 1, 3, n))
        masses[0] = np.asarray(nu)[:, None] * np.asarray(game.initial_mean_field(noise))[None]
        kernels = []
        for t in range(T):
            dense = _dense(game.kernel(jnp.asarray(masses[t].sum(0)), noise, jnp.int32(t)), n)
            kernels.append(dense)
            for i in range(3):
                masses[t + 1, i] = np.einsum("s,sa,sap->p", masses[t, i], np.asarray(policies[i, t]), dense)
        np.testing.assert_allclose(np.asarray(psro.groups(game, noise, policies, nu)), masses, rtol=1e-12, atol=1e-15)

        pibar = psro.mixture(game, noise, policies, nu)[None]
        ev = _evaluate(game, batch.noise, batch.weight, pibar)
        np.testing.assert_allclose(np.asarray(ev.traj.mu[0]), masses.sum(1), rtol=1e-12, atol=1e-15)

        mu = masses.sum(1)
        u = np.zeros(3)
        for i in range(3):
            v = np.zeros(n)
            for t in reversed(range(T)):
                r = np.asarray(reward_matrix(game, jnp.asarray(mu[t]), jnp.asarray(mu[t + 1]), noise, jnp.int32(t)))
                q = r + game.gamma * np.einsum("sap,p->sa", kernels[t], v)
                v = np.sum(np.asarray(policies[i, t]) * q, axis=-1)
            u[i] = mu[0] @ v
        np.testing.assert_allclose(np.asarray(psro.payoffs(game, batch.noise, pibar, policies)), u, rtol=1e-12)
        # every agent's expected return: the groups' returns weighted by their shares
        np.testing.assert_allclose(float(ev.figures.policy_return), float(np.asarray(nu) @ u), rtol=1e-12)


def test_the_meta_solver_finds_the_restricted_nash_equilibrium_a_brute_force_search_finds():
    """Left-right with the set {always left, always right}: the restricted game has one
    free weight; its Nash equilibrium by a grid search of the restricted gap, against the
    meta-solver's fictitious play."""
    with jax.enable_x64(True):
        game = mfax.make("mfglib.left_right")
        batch = exact_noise(game, "exact")
        noise = jax.tree.map(lambda x: x[0], batch.noise)
        shape = (game.horizon, game.n_states, game.n_actions)
        policies = jnp.stack([jnp.zeros(shape).at[..., a].set(1.0) for a in range(game.n_actions)])

        def gap(nu):
            u = psro.payoffs(game, batch.noise, psro.mixture(game, noise, policies, nu)[None], policies)
            return jnp.max(u) - nu @ u

        grid = jnp.linspace(0.0, 1.0, 2001)
        gaps = jax.vmap(lambda p: gap(jnp.stack([p, 1.0 - p])))(grid)
        best = float(grid[jnp.argmin(gaps)])
        nu = psro.meta_solve(game, batch.noise, policies, jnp.ones(2, bool), 2000)
        assert abs(float(nu[0]) - best) < 2e-3, (np.asarray(nu), best)
        assert float(gap(nu)) < 1e-3 * max(1.0, float(jnp.max(gaps)))
        # uniform over the set is where it starts: far from the equilibrium here
        assert float(gap(jnp.asarray([0.5, 0.5]))) > 10 * float(gap(nu))


def test_a_full_set_drops_the_policy_its_restricted_equilibrium_weighs_least():
    """With the set full, the restricted game is solved over the set and the new best
    response, and the policy of least weight in that answer leaves (the best response
    itself when it is the least), and the equilibrium is solved again over the policies
    that stay. A first version replaced the least-weight policy of the old answer by every
    new best response: the newest best response was always the one replaced, and
    rock-paper-scissors with two slots cycled up to 18 times the uniform policy's
    exploitability (a review)."""
    with jax.enable_x64(True):
        game = mfax.make("mfglib.rock_paper_scissors")
        batch = exact_noise(game, "exact")
        hp = psro.PSROHyperParams(meta_iterations=20, max_policies=2)
        solver = psro.build(game, hp, Setting(iterations=4, paths=1, exact=batch))
        state = solver.init(None, None)
        step = jax.jit(lambda s: solver.step(s))
        # the reference's pieces, each compiled once (eagerly, their loops were traced anew at every k)
        evaluate = jax.jit(_evaluate, static_argnums=0)
        meta_solve = jax.jit(psro.meta_solve, static_argnums=(0, 4))
        for k in range(4):
            before = state
            state, metrics = step(state)
            assert bool(metrics.finite) and int(state.count) == min(k + 2, 2)
            np.testing.assert_allclose(float(jnp.sum(state.weights)), 1.0, rtol=1e-12)
            if k == 0:
                continue
            br = TIE_RULES["split"](evaluate(game, batch.noise, batch.weight, before.policy).q_star)[0]
            grown = jnp.concatenate([before.policies, br[None]])
            answer = np.asarray(meta_solve(game, batch.noise, grown, jnp.ones(3, bool), 20))
            least = int(np.argmin(answer))
            stay = [i for i in range(3) if i != least]
            # the slots keep their order: the best response takes the leaving policy's slot
            order = sorted(stay, key=lambda i: least if i == 2 else i)
            np.testing.assert_allclose(np.asarray(state.policies), np.asarray(grown)[order], atol=1e-12)
            # and the restricted game solved again over the set that stays
            again = meta_solve(game, batch.noise, jnp.asarray(np.asarray(grown)[order]), jnp.ones(2, bool), 20)
            np.testing.assert_allclose(np.asarray(state.weights), np.asarray(again), rtol=1e-9)


def test_mf_psro_trains_from_the_command_line_and_refuses_common_noise(tmp_path):
    from typer.testing import CliRunner

    from mfax.run.cli import app

    out = tmp_path / "run"
    args = ["train", "--game", "mfglib.left_right", "--algo", "mf_psro", "--iterations", "4", "--eval-every", "2"]
    result = CliRunner().invoke(app, [*args, "--hp", "meta_iterations=50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    expl = [row["exploitability"] for row in rows]
    assert expl[0] == pytest.approx(0.25, rel=1e-6) and expl[-1] < 0.05 * expl[0], expl
    evaluated = CliRunner().invoke(app, ["eval", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads(evaluated.stdout)
    assert record["exploitability"] == pytest.approx(expl[-1], rel=1e-5, abs=1e-7)

    common = ["train", "--game", "linear_quadratic", "--algo", "mf_psro", "--out", str(tmp_path / "x")]
    refused = CliRunner().invoke(app, common)
    one_error_line(refused, "mf_psro applies to games without common noise")
    bad = CliRunner().invoke(app, [*args, "--hp", "max_policies=1", "--out", str(tmp_path / "y")])
    one_error_line(bad, "max_policies must be >= 2")


def test_iteration_zero_is_the_uniform_policy():
    game = mfax.make("mfglib.left_right")
    solver = psro.build(game, psro.PSROHyperParams(), Setting(iterations=1, paths=1, exact=exact_noise(game, "exact")))
    np.testing.assert_array_equal(np.asarray(solver.table(solver.init(None, None))), np.asarray(uniform_table(game, 1)))
