"""MFGLib's ten games (``mfax.games.mfglib``): the contract, mass conservation, golden
numbers and hand computations without MFGLib; with MFGLib installed (a separate venv,
``docs/games/mfglib.md``), the exploitability of fixed policies and of the first FP and
OMD iterates against MFGLib's own, in float64, to a relative 1e-6.

The golden numbers are the exploitabilities of the uniform policy at MFGLib's defaults,
recorded from ``bench/mfglib_crosscheck.py``, where MFGLib's ``exploitability_score``
gave the same figures to within 1e-13 (``bench/results/mfglib_crosscheck.md``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from mfax.dynamics.noise import enumerate_noise
from mfax.dynamics.pushforward import rollout, rollout_batch
from mfax.evaluation.exploitability import evaluate
from mfax.evaluation.values import best_response_value, path_return, policy_value
from mfax.games.mfglib import (
    GAMES,
    MFGLibCrowdMotion,
    MFGLibEquilibriumPrice,
    MFGLibSusceptibleInfected,
    TorchStream,
    base_table,
    joint_table,
)
from mfax.policies.base import Tabular
from mfax.solvers.classical import FPHyperParams, fp_init, fp_step, info_best_response

NAMES = [cls.name for cls in GAMES]

# exploitability of the uniform policy at MFGLib's defaults (MFGLib agrees to < 1e-13)
GOLDEN_UNIFORM = {
    "mfglib.beach_bar": 1.2212622552965304,
    "mfglib.building_evacuation": 0.32126509367461153,
    "mfglib.conservative_treasure_hunting": 1.8518518518518525,
    "mfglib.crowd_motion": 1.467482951574702,
    "mfglib.equilibrium_price": 22.215185693237814,
    # uniform: mu_1 = (0, 1/2, 1/2); left pays -1/2, right -1: V = -3/4, the best -1/2
    "mfglib.left_right": 0.25,
    "mfglib.linear_quadratic": 2.1381226265902216,
    "mfglib.random_linear": 34.560263338817336,
    # uniform: mu_1 = 1/3 each; rock pays 1/3, paper 2/3, scissors 1: V = 2/3, the best 1
    "mfglib.rock_paper_scissors": 1.0 / 3.0,
    "mfglib.susceptible_infected": 5.466873913228522,
}


def uniform_table(game: mfax.Game) -> jax.Array:
    return jnp.full((game.horizon, game.n_states, game.n_actions), 1.0 / game.n_actions)


@pytest.fixture(scope="module")
def x64():
    with jax.enable_x64(True):
        yield


@eqx.filter_jit
def _uniform_figures(game: mfax.Game, noise):
    """One compiled program per game: the uniform policy's mean fields (their total mass
    and smallest entry) and its exploitability, on the one noise path."""
    traj = rollout_batch(game, Tabular(uniform_table(game)), noise)
    gap = path_return(traj, best_response_value(game, traj, noise)) - path_return(traj, policy_value(game, traj, noise))
    return traj.mu.sum(-1), traj.mu.min(), gap[0]


@pytest.mark.parametrize("name", NAMES)
def test_game_conserves_mass_and_scores_its_golden_number(name, x64):
    game = mfax.make(name)  # refused here if a cheap check of the contract failed
    mass, smallest, expl = _uniform_figures(game, enumerate_noise(game).noise)
    np.testing.assert_allclose(np.asarray(mass), 1.0, rtol=0, atol=1e-12)
    assert float(smallest) >= 0.0
    assert float(expl) == pytest.approx(GOLDEN_UNIFORM[name], rel=1e-9, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_game_passes_every_check(name):
    report = mfax.check_game(mfax.make(name))
    assert report.ok, str(report)


def test_torch_stream_reproduces_pytorch_published_draws():
    # torch.manual_seed(0); torch.rand(3) and torch.randint(0, 2, (1,)) x 4, from PyTorch's CPU generator
    assert TorchStream(0).rand(3).tolist() == [0.49625658988952637, 0.7682217955589294, 0.08847743272781372]
    stream = TorchStream(0)
    assert [stream.coin() for _ in range(4)] == [0, 1, 1, 0]


def test_crowd_motion_bar_path_at_the_defaults_and_its_common_noise_support(x64):
    game = MFGLibCrowdMotion()
    # the bar starts at the centre and moves once, before t = 2, by the first two coins (0, 1) -> (-1, +1)
    assert game.bar_path()[:4].tolist() == [[10, 10], [10, 10], [9, 11], [9, 11]]
    noisy = MFGLibCrowdMotion(common_noise=True)
    support = noisy.noise_support()
    paths = np.asarray(support.noise.bar)[:, : game.T + 1]
    assert len(paths) == 4 and float(support.weight.sum()) == pytest.approx(1.0)
    assert any((p == game.bar_path()[: game.T + 1]).all() for p in paths)  # MFGLib's path is one of them


def test_joint_rewrite_reads_the_state_action_distribution(x64):
    game = MFGLibEquilibriumPrice(T=1)
    n, m = game.base_states, game.n_actions
    pi = np.random.default_rng(1).dirichlet(np.ones(m), size=(game.T + 1, n))
    table = joint_table(game, jnp.asarray(pi))
    np.testing.assert_array_equal(np.asarray(base_table(game, table)), pi)
    traj = rollout(game, Tabular(table), jax.tree.map(lambda x: x[0], enumerate_noise(game).noise))
    L0 = np.asarray(game.base_mu0())[:, None] * pi[0]
    np.testing.assert_allclose(np.asarray(game.joint(traj.mu[1])), L0, atol=1e-15)
    # the price reads the average production of L_0: (d / (E[q] + e0))^(1/sigma)
    produced = (L0 * np.repeat(np.arange(game.Q + 1), game.H + 1)[None, :]).sum()
    assert float(game.price(game.joint(traj.mu[1]))) == pytest.approx(1.0 / (produced + 1.0), rel=1e-14)
    # the reward at the choice step is MFGLib's; the move step pays nothing
    np.testing.assert_allclose(np.asarray(traj.rewards[1]), 0.0)
    # the price aggregate: p_k at the move steps t = 2k + 1, NaN at the choice steps (it
    # showed (d / e0)^(1/sigma) = 1 there, the price of the empty cells)
    series = mfax.games.aggregate_paths(game, traj.mu[None], jax.tree.map(lambda x: x[:1], enumerate_noise(game).noise))
    (price,) = (np.asarray(v[0]) for v in series.values())
    assert np.all(np.isnan(price[0::2])) and price.shape == (game.horizon + 1,)
    for k in range(game.T + 1):
        assert price[2 * k + 1] == pytest.approx(float(game.price(game.joint(traj.mu[2 * k + 1]))), rel=1e-14)
    assert price[1] == pytest.approx(1.0 / (produced + 1.0), rel=1e-14)


def test_fp_flow_own_averages_the_best_response_own_mean_field(x64):
    # SIS reads the mean field in its kernel: the best response's own mean field (MFGLib's
    # fictitious play) is not that of agents deviating alone; one FP step of each, by hand
    game = MFGLibSusceptibleInfected(T=2)
    batch = enumerate_noise(game)

    @eqx.filter_jit
    def steps(game, noise, weight):
        state = fp_init(game, 1)
        return [
            fp_step(game, noise, weight, state, FPHyperParams(initial="average", flow=f))[0]
            for f in ("own", "deviator")
        ]

    own, deviator = (np.asarray(s.policy[0]) for s in steps(game, batch.noise, batch.weight))
    noise = jax.tree.map(lambda x: x[0], batch.noise)
    uniform = rollout(game, Tabular(uniform_table(game)), noise)
    _, br = info_best_response(
        game, jax.tree.map(lambda x: x[None], uniform), batch.noise, jnp.ones((game.horizon, 1, 1))
    )
    br = jnp.asarray(br[0])
    mu = np.asarray(uniform.mu[:-1])
    for flow, nu in (("own", np.asarray(rollout(game, Tabular(br), noise).mu[:-1])), ("deviator", None)):
        if nu is None:  # agents playing br along the population's (uniform policy's) kernels
            nu = [mu[0]]
            for t in range(game.horizon - 1):
                k = game.kernel(jnp.asarray(mu[t]), noise, jnp.int32(t)).flat()
                step = np.zeros(game.n_states)
                mass = nu[t][:, None, None] * np.asarray(br[t])[:, :, None] * np.asarray(k.prob)
                np.add.at(step, np.asarray(k.index), mass)
                nu.append(step)
            nu = np.stack(nu)
        expected = (mu[..., None] * 0.5 + nu[..., None] * np.asarray(br)) / (mu + nu)[..., None]
        np.testing.assert_allclose(own if flow == "own" else deviator, expected, atol=1e-14, err_msg=flow)
    assert np.abs(own - deviator).max() > 1e-3
    # the damped fixed point mixing the mean fields with weight 1/2 is FP's first average
    # (k = 1), with either flow: MFGLib's FictitiousPlay(alpha) and OpenSpiel's
    # FictitiousPlay(lr=d) take the own flow (a review: mfax had only the deviator's)
    from mfax.solvers.tabular import solve

    for flow, fp_policy in (("own", own), ("deviator", deviator)):
        table, _ = solve(game, "fixed_point", 1, damping=0.5, mixing="mean_field", flow=flow)
        np.testing.assert_allclose(np.asarray(table[0]), fp_policy, atol=1e-14, err_msg=flow)
    with pytest.raises(mfax.GameError, match="flow=own applies to mixing=mean_field"):
        solve(game, "fixed_point", 1, flow="own")


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("mfglib.beach_bar", dict(bar_loc=4), "bar_loc must lie in 0..n-1 = 0..3, got 4"),
        ("mfglib.conservative_treasure_hunting", dict(T=4), "c must hold T = 4 values, got 5"),
        ("mfglib.equilibrium_price", dict(c=(1.0, 1.0)), "c must hold the 5 costs c0..c4, got 2"),
        ("mfglib.left_right", dict(mu0=(0.5, 0.5)), "mu0 must have 3 entries (one per state)"),
        ("mfglib.random_linear", dict(seed=-1), "seed must lie in 0..2^32-1"),
        ("mfglib.susceptible_infected", dict(beta_shock=0.5), "beta (1 + beta_shock) must lie in [0, 1]"),
        # log(mu + 0) is -inf where a state empties: values NaN (building evacuation refused it already)
        ("mfglib.crowd_motion", dict(log_eps=0.0), "log_eps must be > 0"),
        ("mfglib.beach_bar", dict(log_eps=0.0), "log_eps must be > 0"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(name, params, message):
    with pytest.raises(mfax.GameError, match=None) as info:
        mfax.make(name, **params)
    assert message in str(info.value) and "\n" not in str(info.value)


VARIANTS = [
    ("mfglib.beach_bar", dict(bar_shock=1), 27),
    ("mfglib.susceptible_infected", dict(beta_shock=0.2, T=4), 2),
    ("mfglib.crowd_motion", dict(common_noise=True, torus_l=6, torus_w=6), 4),
]


def test_common_noise_variants_are_off_by_default_and_enumerated_when_on():
    for name, params, paths in VARIANTS:
        cls = mfax.games.game_class(name)
        assert enumerate_noise(cls()).num_paths == 1
        support = cls(**params).noise_support()
        assert len(support.weight) == paths and float(support.weight.sum()) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name,params,paths", VARIANTS)
def test_common_noise_variants_pass_every_check_and_evaluate(name, params, paths, x64):
    game = mfax.make(name, **params)
    assert mfax.check_game(game).ok
    figures = evaluate(game, Tabular(uniform_table(game)), enumerate_noise(game))
    assert np.isfinite(figures.exploitability) and figures.exploitability > 0
    assert figures.exploitability_info <= figures.exploitability + 1e-12


# -- against MFGLib (a separate venv: pip install torch==2.13.0 mfglib==0.3.0 + mfax) ----------
def _crosscheck():
    pytest.importorskip("mfglib", reason="MFGLib (and PyTorch) not installed: see docs/games/mfglib.md")
    path = Path(__file__).resolve().parents[1] / "bench" / "mfglib_crosscheck.py"
    spec = importlib.util.spec_from_file_location("mfglib_crosscheck", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mfglib_crosscheck", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", [n.removeprefix("mfglib.") for n in NAMES])
def test_same_exploitability_as_mfglib(name, x64):
    xc = _crosscheck()
    result = xc.compare_game(name, iterations=3, timing=0)
    for row in result["rows"]:
        if row["what"].startswith("fp") and "rel_near_ties_split" in row:
            # MFGLib picked among best-response values one rounding apart (docs/games/mfglib.md)
            assert row["rel_near_ties_split"] < 1e-6, (name, row)
        else:
            assert row["rel"] < 1e-6, (name, row)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,params",
    [
        ("linear_quadratic", dict(T=30, el=49, m=3)),  # the benchmark's size, where rounding ties bite
        ("beach_bar", dict(T=4, n=8, bar_loc=3)),
        ("crowd_motion", dict(T=6, torus_l=7, torus_w=5, loc_change_freq=1, seed=3)),
        ("random_linear", dict(T=2, n=4, m=3.0, seed=7)),
    ],
)
def test_same_exploitability_as_mfglib_off_the_defaults(name, params, x64):
    xc = _crosscheck()
    result = xc.compare_game(name, iterations=2, timing=0, params=params)
    assert result["max_rel_near_ties_split"] < 1e-6, result["rows"]
