"""Exact classical solvers (fictitious play, online mirror descent): convergence to
equilibrium, brute-force agreement on tiny games, history-indexed policies, the
training driver (the cross-check against MFGLib is tests/test_mfglib_games.py).

Thresholds. Everything runs in float64, where the exact exploitability of an exact
equilibrium is 0 up to ~1e-12 of the returns. FP's average exploitability falls like
``O(1/k)`` and OMD's geometrically on these games; the thresholds below are set at
1e-6 of the uniform policy's exploitability (FP after 30 iterations, OMD after 100 at
the stated learning rate), i.e. six orders of magnitude of progress, which a solver
that does not converge cannot meet, with a margin of about 10x over what both reach.
"""

from __future__ import annotations

import csv
import itertools
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
import reference_games
from conftest import slow
from mfax.dynamics.noise import enumerate_noise
from mfax.evaluation.exploitability import evaluate
from mfax.evaluation.values import best_response_value, policy_value, same_history
from mfax.games.base import Game, Kernel, NoiseSupport, discount
from mfax.params import param
from mfax.policies.history import HistoryTabular
from mfax.run.cli import app
from mfax.run.config import TrainConfig
from mfax.run.plots import run_label
from mfax.run.rundir import RunDir
from mfax.run.train import train
from mfax.solvers.classical import rollout_table, solve, table_policy, uniform_table

RELATIVE = 1e-6
SMALL_BEACH = dict(num_states=21, horizon=10)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _uniform_exploitability(game) -> float:
    batch = enumerate_noise(game)
    return evaluate(game, table_policy(game, batch, uniform_table(game, batch.num_paths)), batch).exploitability_info


@pytest.mark.parametrize(
    "name,params,algo,iterations,lr",
    [
        ("linear_quadratic", dict(common_noise=False), "fp", 30, 0.0),
        slow("linear_quadratic", dict(common_noise=False), "omd", 100, 1.0),
        slow("beach_bar", dict(common_noise=False, **SMALL_BEACH), "fp", 30, 0.0),
        slow("beach_bar", dict(common_noise=False, **SMALL_BEACH), "omd", 100, 10.0),
    ],
)
def test_exploitability_falls_below_threshold_without_common_noise(name, params, algo, iterations, lr):
    game = mfax.make(name, **params)
    table, metrics = solve(game, algo, iterations, lr=lr)
    e0 = float(metrics.exploitability[0])
    assert e0 == pytest.approx(_uniform_exploitability(game), rel=1e-9)
    batch = enumerate_noise(game)
    final = evaluate(game, table_policy(game, batch, table), batch)
    assert abs(final.exploitability) < RELATIVE * e0, (final, e0)
    assert np.all(np.asarray(metrics.finite))


@pytest.mark.parametrize("algo,lr,iterations,threshold", [("fp", 0.0, 60, RELATIVE), slow("omd", 10.0, 200, 1e-4)])
def test_beach_bar_with_closing_bar_reaches_information_consistent_equilibrium(algo, lr, iterations, threshold):
    """Finite noise (bar location x closes or not): the policy is indexed by the public
    history; its information-consistent exploitability goes to 0, the per-path one
    (deviator knowing whether the bar will close) stays positive. OMD is slower here
    (near-indifferent moves before the closing time): 1e-4 of the start after 200."""
    game = mfax.make("beach_bar", **SMALL_BEACH)
    batch = enumerate_noise(game)
    table, metrics = solve(game, algo, iterations, lr=lr, chunk=iterations)  # one program to compile
    e0 = float(metrics.exploitability[0])
    policy = table_policy(game, batch, table)
    assert isinstance(policy, HistoryTabular)
    result = evaluate(game, policy, batch)
    assert abs(result.exploitability_info) < threshold * e0, (result, e0)
    assert result.exploitability > 0.01  # knowing the future closure is worth something
    # the observation-driven policy plays the table on its own rollout
    traj = jax.jit(lambda p: mfax.dynamics.rollout_batch(game, p, batch.noise))(policy)
    np.testing.assert_allclose(np.asarray(traj.probs), np.asarray(table), atol=1e-12)


def test_history_table_is_shared_by_paths_with_the_same_public_history():
    game = mfax.make("beach_bar", **SMALL_BEACH)
    table, _ = solve(game, "fp", 5)
    bars = np.asarray(enumerate_noise(game).noise.bar)
    t_close = game.close_time
    for b in np.unique(bars):
        i, j = np.nonzero(bars == b)[0]  # open / closes
        np.testing.assert_array_equal(table[i, :t_close], table[j, :t_close])


def _exploitability_fn(game):
    batch = enumerate_noise(game)

    @jax.jit
    def expl(table):
        traj = rollout_table(game, batch.noise, table[None])
        v, vb = policy_value(game, traj, batch.noise), best_response_value(game, traj, batch.noise)
        return jnp.sum(traj.mu[0, 0] * (vb - v)[0])

    return expl


def test_tiny_linear_quadratic_matches_brute_force_equilibrium():
    """3 states, 3 actions, 2 steps: every deterministic policy (3^6 = 729) is scored;
    FP and OMD must land on the equilibrium the enumeration finds (same mean-field
    path, exploitability 0)."""
    game = mfax.make("linear_quadratic", num_states=3, max_action=1, horizon=2, common_noise=False)
    expl = _exploitability_fn(game)
    tables = jnp.asarray(
        [np.eye(3)[np.array(c).reshape(2, 3)] for c in itertools.product(range(3), repeat=6)], dtype=float
    )
    scores = np.asarray(jax.vmap(expl)(tables))
    best = int(np.argmin(scores))
    assert scores[best] < 1e-12
    # the game has several equilibria (the last action is payoff-irrelevant): FP and OMD
    # must reach one, with the return of one of the enumerated equilibria
    batch = enumerate_noise(game)

    @jax.jit
    def ret(table):
        traj = rollout_table(game, batch.noise, table[None])
        return jnp.sum(traj.mu[0, 0] * policy_value(game, traj, batch.noise)[0])

    returns = np.asarray(jax.vmap(ret)(tables[scores < 1e-9]))
    for algo in ("fp", "omd"):
        table, _ = solve(game, algo, 200, lr=1.0)
        assert float(expl(table[0])) < 1e-6, algo
        assert np.min(np.abs(returns - float(ret(table[0])))) < 1e-4, algo


@pytest.mark.slow
def test_tiny_sis_matches_brute_force_equilibrium():
    """2 states, 2 actions, 3 days: the susceptible's probability of staying home at
    t = 0 and t = 1 on a 0.01 grid (infected agents and the last day: going out is
    dominant); the grid point of least exploitability is the equilibrium."""
    game = mfax.make("sis", common_noise=False, horizon=3, home_cost=0.2, initial_infected=0.4, beta_mild=0.9)
    expl = _exploitability_fn(game)
    grid = jnp.linspace(0.0, 1.0, 101)

    def table(p0, p1):
        home = jnp.array([[p0, 0.0], [p1, 0.0], [0.0, 0.0]])
        return jnp.stack([1.0 - home, home], axis=-1)

    scores = np.asarray(jax.vmap(jax.vmap(lambda a, b: expl(table(a, b))))(*jnp.meshgrid(grid, grid, indexing="ij")))
    i, j = np.unravel_index(np.argmin(scores), scores.shape)
    assert scores[i, j] < 1e-12
    for algo in ("fp", "omd"):
        solved, _ = solve(game, algo, 200, lr=1.0)
        home = np.asarray(solved[0, :2, 0, 1])
        np.testing.assert_allclose(home, [grid[i], grid[j]], atol=0.01)
        assert float(expl(solved[0])) < 1e-5


def _reference_fp(game, path, updates: int, *, initial: str, ties: str) -> np.ndarray:
    """Fictitious play without common noise written from its definition in numpy
    (tests/reference_games.py's independent kernels and rewards): ``k`` policies
    averaged (best responses, plus the uniform policy under ``initial="average"``), the
    best response against the average's mean-field path by backward induction with
    ``ties`` (uniform over the maximisers / the first), ``nu`` pushed along the
    population's kernels, and ``pibar' = (k mubar pibar + nu b) / (k mubar + nu)``, on
    one noise path (a path the population tells apart from the others at t = 0)."""
    n, m, T = game.n_states, game.n_actions, game.horizon
    pibar = np.full((T, n, m), 1.0 / m)
    for step in range(updates):
        traj = reference_games._trajectory(game, lambda t, obs, table=pibar: table[t], path)
        v, br = np.zeros(n), np.zeros((T, n, m))
        for t in reversed(range(T)):
            q = traj.rewards[t] + game.gamma * traj.kernels[t].expect(v)
            top = q.max(1, keepdims=True)
            if ties == "first":
                br[t] = np.eye(m)[q.argmax(1)]
            else:
                near = q >= top - 64 * np.finfo(float).eps * (1.0 + np.abs(top))
                br[t] = near / near.sum(1, keepdims=True)
            v = top[:, 0]
        nu = [traj.mus[0]]
        for t in range(T - 1):
            nu.append(traj.kernels[t].push(nu[t], br[t]))
        k = step + (1 if initial == "average" else 0)
        mus = np.asarray(traj.mus[:T])[..., None]
        nus = np.asarray(nu)[..., None]
        num, den = k * mus * pibar + nus * br, k * mus + nus
        pibar = np.where(den > 0, num / np.where(den > 0, den, 1.0), (k * pibar + br) / (k + 1))
    return pibar


@pytest.mark.parametrize(
    "name,initial,ties",
    [
        ("linear_quadratic", "replace", "split"),
        ("linear_quadratic", "average", "first"),
        slow("linear_quadratic", "average", "split"),
        slow("beach_bar", "replace", "split"),
        slow("beach_bar", "average", "first"),
        slow("beach_bar", "average", "split"),
    ],
)
def test_fictitious_play_conventions_match_a_reference_implementation(name, initial, ties):
    """FP's two conventions (``--hp initial=replace|average ties=split|first``) against
    FP written from its definition on the independent numpy games; and the history of
    ``solve`` is indexed by updates: entry k scores the policy after k updates."""
    params = dict(num_states=7, horizon=4, common_noise=False)
    if name == "linear_quadratic":
        params["max_action"] = 1
    game = mfax.make(name, **params)
    ref_game = getattr(reference_games, f"ref_{name}")(**params)
    paths = [path for path, _ in ref_game.noise_paths()]  # beach bar: the bar's location, public at t = 0
    for updates in (1, 3):
        table, history = solve(game, "fp", updates, initial=initial, ties=ties)
        assert table.shape[0] == len(paths)
        for i, path in enumerate(paths):
            expected = _reference_fp(ref_game, path, updates, initial=initial, ties=ties)
            np.testing.assert_allclose(np.asarray(table[i]), expected, rtol=1e-10, atol=1e-12)
        assert history.exploitability.shape == (updates + 1,)
        final = evaluate(game, table_policy(game, enumerate_noise(game), table), enumerate_noise(game))
        assert float(history.exploitability[-1]) == pytest.approx(final.exploitability_info, rel=1e-10, abs=1e-12)
    # the conventions give different policies (the reference pins down which is which)
    one_replace, _ = solve(game, "fp", 1, initial="replace", ties=ties)
    one_average, _ = solve(game, "fp", 1, initial="average", ties=ties)
    assert float(np.abs(np.asarray(one_average) - np.asarray(one_replace)).max()) > 0.1


def test_fp_conventions_are_declared_hyper_parameters(tmp_path):
    with pytest.raises(mfax.GameError, match="FP ties must be split or first"):
        solve(mfax.make("beach_bar", common_noise=False), "fp", 1, ties="last")
    result = CliRunner().invoke(
        app,
        ["train", "--game", "beach_bar", "--algo", "fp", "--hp", "initial=sometimes", "--out", str(tmp_path / "x")],
    )
    assert result.exit_code == 2 and "FP initial must be replace or average" in result.output, result.output
    assert not (tmp_path / "x").exists()


def test_mfax_train_runs_fp_and_omd_through_the_driver(tmp_path):
    config = TrainConfig(
        game="beach_bar",
        algo="fp",
        params=dict(common_noise=False, **SMALL_BEACH),
        iterations=20,
        eval_every=10,
    )
    with mfax.games.unchecked():  # the games' checks are test_validation's
        summary = train(config, tmp_path / "fp", progress=False)
    assert abs(summary["final_exploitability"]) < 1e-3 * summary["initial_exploitability"]
    # fictitious play has no learning rate: none is recorded, none is in the plot legend
    rows = RunDir(tmp_path / "fp").read_metrics()
    assert rows and all(row["lr"] is None for row in rows)
    csv_rows = list(csv.DictReader((tmp_path / "fp" / "metrics.csv").open()))
    assert all(row["lr"] == "" for row in csv_rows)
    assert "lr" not in run_label(rows[-1])
    with mfax.games.unchecked():
        result = CliRunner().invoke(
            app,
            [
                "train",
                "--game",
                "sis",
                "--algo",
                "omd",
                "--iterations",
                "20",
                "--eval-every",
                "10",
                "--hp",
                "lr=1.0",
                "--out",
                str(tmp_path / "omd"),
                "--no-progress",
                "--no-plots",
                "--json",
            ],
        )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "omd" / "config.json").exists()


def test_sampled_noise_is_refused_with_a_clear_message(tmp_path):
    """The advice is in the words of the interface: keyword arguments from Python, the
    options as typed under the ``mfax`` command."""
    config = TrainConfig(game="macro", algo="omd", params=dict(num_wealth=10, horizon=4), iterations=2)
    with pytest.raises(
        mfax.GameError,
        match=r"needs exact noise: .*no finite noise support \(without common noise: common_noise=False\)",
    ):
        train(config, tmp_path / "x", progress=False)
    # an enumerable game with sampled paths asked for: the advice is exact noise, not a switch
    sampled = TrainConfig(game="mfglib.beach_bar", algo="fp", noise="sample", iterations=2)
    with pytest.raises(mfax.GameError, match=r"fp needs exact noise: use noise=\"exact\" \(game 'mfglib\.beach_bar'"):
        train(sampled, tmp_path / "y", progress=False)
    with pytest.raises(mfax.GameError, match=r"use noise=\"exact\""):
        mfax.solve("mfglib.beach_bar", algo="fp", noise="sample", iterations=2, progress=False)
    common = ["--set", "num_wealth=10", "--set", "horizon=4"]
    for args, said in [
        (["--game", "macro", "--algo", "omd", *common], "(without common noise: --set common_noise=false)"),
        (["--game", "mfglib.beach_bar", "--algo", "fp", "--noise", "sample"], "use --noise exact (game"),
    ]:
        result = CliRunner().invoke(app, ["train", *args, "--iterations", "2", "--out", str(tmp_path / "cli")])
        assert result.exit_code == 2 and said in result.stderr, result.output


# slow: the float64 entry checks the same on the case where rounding broke the tie
@pytest.mark.parametrize("x64", [slow(False), True])
def test_ties_first_takes_the_first_of_values_equal_to_rounding(x64):
    """OpenSpiel's crowd modelling on a ring of 6 is symmetric: from the uniform policy,
    moving left or right from state 2 at t = 0 is worth exactly the same. ``ties=first``
    takes the first (action 1) in float32 and float64 alike; a bare argmax took action 2
    in float64, where rounding made it larger by an ulp."""
    from mfax.solvers import classical

    with jax.enable_x64(x64):
        game = mfax.make("openspiel.crowd_modelling", size=6, horizon=4)
        table, _ = classical.solve(game, "fp", 1, ties="first")
        np.testing.assert_allclose(np.asarray(table)[0, :2, 2], [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-6)
        split, _ = classical.solve(game, "fp", 1)
        np.testing.assert_allclose(np.asarray(split)[0, 0, 2], [0.0, 0.5, 0.5])


def test_best_responses_are_the_deviation_the_information_consistent_figure_scores():
    """fp.md, fixed_point.md and prior_descent.md define Qbar* by exploitability.md's
    best-response backward induction: each path carries back the chosen action's own
    value. The solvers carried back the node's maximum of the prior-averaged values
    instead, which differs where the paths of a node have different kernels: sis with
    report_error=0.022, whose "mild, error +1" report equals "severe, error -1" at t = 1.
    Golden numbers: a reviewer's numpy implementation of the pages, Qbar*_0(s=0) of the
    uniform policy (the old code gave -0.3357116, -0.4538832)."""
    from mfax.evaluation.values import (
        backward_induction,
        belief_average,
        info_best_response_value,
        info_share,
        policy_and_info_values,
    )
    from mfax.solvers.classical import info_best_response

    with jax.enable_x64(True):
        game = mfax.make("sis", horizon=3, report_error=0.022)
        batch = enumerate_noise(game)
        traj = rollout_table(game, batch.noise, uniform_table(game, batch.num_paths))
        share = info_share(traj.obs, batch.weight, game.horizon)
        q = policy_and_info_values(game, traj, batch.noise, share)[3]
        q_star = belief_average(share, traj.mu, q[..., 1])
        np.testing.assert_allclose(q_star[0, 0, 0], [-0.3341216, -0.4537242], atol=1e-7)
        # the best response is that deviation: playing it against the population is worth
        # what the information-consistent figure says, on every path
        _, b = info_best_response(game, traj, batch.noise, share)
        played = backward_induction(game, traj, batch.noise, lambda q, t, x: jnp.sum(b[:, t] * q, axis=-1))
        np.testing.assert_allclose(played, info_best_response_value(game, traj, batch.noise, batch.weight), atol=1e-12)


def test_belief_average_is_the_belief_weighted_sum_without_its_weights():
    """belief_average (and the deviation's step) contract a node indicator with node-scaled
    masses instead of forming belief()'s (T, P, P, n) weights: the same numbers, states
    that no path of a node reaches (prior weights) included; in float32 with masses near
    1e-37 (where mass * Q underflows: FP's second iteration on a 401-state beach bar chose
    other actions at 2814 states) the float64 figures; memory O(T P n m): FP on a
    401-state beach bar (402 paths, T = 30) held 7.8 GB of such weights and peaked at 10.7 GB."""
    from mfax.evaluation.values import belief, belief_average

    def explicit(share, mu, q):
        weights = jnp.stack([belief(share[t], mu[:, t]) for t in range(share.shape[0])])
        return jnp.einsum("tijs,jtsm->itsm", weights, q)

    k = jax.random.split(jax.random.PRNGKey(3), 5)
    T, P, n, m = 4, 6, 7, 3
    label = jax.random.randint(k[0], (T, P), 0, 3)  # each date's history nodes
    same = label[:, :, None] == label[:, None, :]
    with jax.enable_x64(True):
        weight = jax.random.uniform(k[1], (P,), jnp.float64, 0.1, 1.0)
        share = same * weight / jnp.sum(same * weight, axis=-1, keepdims=True)
        mu = jax.random.uniform(k[2], (P, T + 1, n), jnp.float64) * (jax.random.uniform(k[3], (P, T + 1, n)) > 0.3)
        mu = mu.at[:, :, 0].set(0.0)  # a state no path reaches: the prior's weights
        q = jax.random.normal(k[4], (P, T, n, m), jnp.float64)
        expected = explicit(share, mu, q)
        np.testing.assert_allclose(belief_average(share, mu, q), expected, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(expected[:, :, 0], jnp.einsum("tij,jtm->itm", share, q[:, :, 0]))
        # float32 masses 1e-37..2e-37 (normal numbers), Q about 1e-2: mass * Q is below
        # float32's smallest normal number
        small = [x.astype(jnp.float32) for x in (share, 1e-37 * (mu > 0) * (1.0 + mu), 1e-2 * q)]
        tiny = explicit(*[x.astype(jnp.float64) for x in small])
        # a node whose paths all have zero weight (a support weight that underflowed: sis
        # with severe_probability=1e-46 in float32): its 0/0 rows of share touched path 0's
        # node, whose figure moved by 0.15; the other rows as before, these finite
        pairs = jnp.array([0, 0, 1, 1, 2, 2])
        same = jnp.broadcast_to(pairs[:, None] == pairs[None, :], (T, P, P))
        zero = jnp.array([0.3, 0.7, 0.0, 0.0, 0.5, 0.5])
        share0 = same * zero / jnp.sum(same * zero, axis=-1, keepdims=True)  # NaN rows 2, 3
        got = belief_average(share0, mu, q)
        kept = np.array([0, 1, 4, 5])
        np.testing.assert_allclose(got[kept], explicit(share0, mu, q)[kept], rtol=1e-13, atol=1e-13)
        assert np.all(np.isfinite(got[2:4]))
    np.testing.assert_allclose(belief_average(*small), tiny, rtol=1e-5, atol=1e-9)

    T, P, n, m = 30, 402, 401, 3
    shapes = [jax.ShapeDtypeStruct(s, jnp.float32) for s in ((T, P, P), (P, T + 1, n), (P, T, n, m))]
    compiled = jax.jit(belief_average).lower(*shapes).compile()
    assert compiled.memory_analysis().temp_size_in_bytes < 4 * T * P * n * (2 * m + 1) * 4 < T * P * P * n * 4 / 10


def test_fp_keeps_its_average_a_policy_over_many_float32_iterations():
    """FP's average feeds itself back: on MFGLib's left-right game the float32 row sums
    drifted to 1 - 1.4e-4 by iteration 40000 (9.8e-5 here), and `mfax train` stopped with
    'Tabular policy row sums to 0.999858' (a bad-input audit). Rows are renormalised."""
    from mfax.solvers.classical import solve

    with jax.enable_x64(False):
        table, _ = solve(mfax.make("mfglib.left_right"), "fp", 40000, chunk=5000)
    assert np.asarray(table).dtype == np.float32
    assert np.max(np.abs(np.asarray(table).sum(-1) - 1.0)) <= 1e-6


class _HiddenNoise(NamedTuple):
    theta: jax.Array  # hidden: moves the initial mean field, the kernel and the rewards
    zeta: jax.Array  # public from t = 1, as 0.5 + obs_scale * zeta


class _CloseHistories(Game):
    """Four paths: a hidden ``theta`` (the paths of one public node carry different mean
    fields) and a public ``zeta`` whose two values are observed ``obs_scale`` apart."""

    name: ClassVar[str] = "close_histories_probe"
    horizon: int = param(3, "T")
    gamma: float = discount(0.9)
    obs_scale: float = param(1.0, "how far apart the two public observations are")
    n_actions: ClassVar[int] = 3
    n_states: ClassVar[int] = 3

    def state_features(self):
        return (jnp.arange(3.0) / 2)[:, None]

    def action_values(self):
        return jnp.arange(3.0)

    def sample_noise(self, key):
        k1, k2 = jax.random.split(key)
        return _HiddenNoise(*(jax.random.bernoulli(k, p).astype(float) for k, p in ((k1, 0.7), (k2, 0.4))))

    def noise_support(self):
        theta, zeta = jnp.array([0.0, 0.0, 1.0, 1.0]), jnp.array([0.0, 1.0, 0.0, 1.0])
        return NoiseSupport(_HiddenNoise(theta, zeta), jnp.where(theta > 0, 0.7, 0.3) * jnp.where(zeta > 0, 0.4, 0.6))

    def initial_mean_field(self, noise):
        return jnp.where(noise.theta > 0, jnp.array([0.1, 0.3, 0.6]), jnp.array([0.5, 0.4, 0.1]))

    def kernel(self, mu, noise, t):
        a = jnp.arange(3)
        stay = 1.0 - 0.5 * mu[a]  # congestion: the action's target, else one or two along
        other = (a + 1 + noise.theta.astype(jnp.int32)) % 3
        index = jnp.broadcast_to(jnp.stack([a, other], -1), (3, 3, 2)).astype(jnp.int32)
        return Kernel(index, jnp.broadcast_to(jnp.stack([stay, 1.0 - stay], -1), (3, 3, 2)))

    def reward(self, mu, mu_next, noise, t):
        s = jnp.arange(3.0)
        base = jnp.where(noise.theta > 0, s, 2.0 - s) - 2.0 * mu
        return base[:, None] - 0.3 * jnp.abs(s[:, None] - s[None, :]) + 0.5 * noise.zeta * mu_next[None, :]

    def terminal_reward(self, mu, mu_next, noise, t):
        return self.reward(mu, mu_next, noise, t) + jnp.where(noise.theta > 0, 1.0, -1.0) * mu_next[None, :]

    def observation(self, mu, noise, t):
        return jnp.stack([jnp.where(t >= 1, 0.5 + self.obs_scale * noise.zeta, 0.5)])


def test_the_table_policy_finds_the_history_nodes_the_solver_trained_on():
    """Two public observations 3e-6 apart are two history nodes to the solvers and the
    evaluation (tolerance 1e-6); the table policy that the evaluation scores once found
    its node with 1e-5 and played the two nodes' average: every reported figure scored a
    policy the solver never produced (found by an independent reimplementation: 0.1408
    for the 0.1449 the iterate has, FP's third iteration). Each iterate's evaluation is
    now the training's own figure of it, and the figures do not depend on how far apart
    the observations are."""
    with jax.enable_x64(True):
        game = _CloseHistories(obs_scale=3e-6)
        batch = enumerate_noise(game)
        table = jnp.asarray(np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 3, 3)))
        policy = table_policy(game, batch, table)
        # the look-up's nodes are the evaluation's: at every t, the paths it averages over
        # on path i's own observations are those same_history groups with i
        obs = rollout_table(game, batch.noise, table, record=False).obs
        same = np.asarray(same_history(obs))
        mask = np.ones((4, 4), bool)
        for t in range(game.horizon):
            close = np.abs(np.asarray(policy.path_obs)[None, :, t] - np.asarray(obs)[:, None, t]) <= (
                policy.atol + policy.rtol * np.maximum(np.abs(obs[:, None, t]), np.abs(obs[None, :, t]))
            )
            mask &= close.all(-1)
            np.testing.assert_array_equal(mask, same[t])
    figures = {}
    for scale in (1.0, 3e-6):
        with jax.enable_x64(True):
            with mfax.games.unchecked():  # the probe game's checks are not what this tests
                history = mfax.solve(_CloseHistories(obs_scale=scale), "fp", iterations=3, eval_every=1).history
        # the training's own figure of the policy iteration k + 1 starts from is iterate k's
        np.testing.assert_allclose(
            history["exploitability_info"][1:3], history["train_exploitability"][2:4], rtol=1e-12
        )
        figures[scale] = history["exploitability_info"]
    np.testing.assert_allclose(figures[3e-6], figures[1.0], rtol=1e-12)
