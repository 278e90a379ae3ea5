"""OpenSpiel's mean-field games as mfax games (``openspiel.*``, docs/games/openspiel.md).

Default tier: the protocol checks, mass conservation, golden exploitabilities of the
uniform policy on OpenSpiel's default instances (recorded from runs that agreed with
OpenSpiel: bench/results/openspiel_crosscheck.md), hand computations, the garnet's
generator and one-line errors. With OpenSpiel installed (a separate venv:
``pip install open_spiel``), the cross-checks of bench/openspiel_adapter.py on small
instances: fixed policies, FP and OMD iterates, OpenSpiel's evaluator artefact.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import slow
from mfax.games.openspiel.garnet import MT19937, garnet_tables, uniform_double, uniform_int
from mfax.solvers.classical import rollout_table

GAMES = [
    "openspiel.crowd_modelling",
    "openspiel.linear_quadratic",
    "openspiel.periodic_aversion",
    "openspiel.crowd_modelling_2d",
    "openspiel.normal_form",
    "openspiel.garnet",
    "openspiel.dynamic_routing",
]

# exploitability of the uniform policy on OpenSpiel's default instance (float64); each
# agreed with OpenSpiel's own tree walked as its rules require, to 1e-14
GOLDEN_UNIFORM = {
    "openspiel.crowd_modelling": 2.786682416298344,
    "openspiel.linear_quadratic": 29.52257930595996,
    "openspiel.periodic_aversion": 88.09116717479334,
    "openspiel.crowd_modelling_2d": 5.354777245183989,
    # uniform play: nu = (1/3, 1/3, 1/3), payoffs -10/3, -2380/3, 0, value -2390/9, best 0
    "openspiel.normal_form": 2390 / 9,
    "openspiel.garnet": 2.9797675834228095,
    # everybody on the Braess path O-A-B-C-D-E (see _braess_path): by hand below
    "openspiel.dynamic_routing": 2.0,
}


def _braess_path(game):
    """Everybody on O->A, A->B, B->C, C->D, D->E. A->B and C->D are then full when the
    crowd enters them (travel time 1 + 1 = 2: wait 1), B->C takes no wait: the crowd moves
    at t = 0, 2, 3, 5 and arrives at t = 5 (return -5). A vehicle taking A->C instead
    (travel time 2, wait 1) moves at t = 0, 2 and enters C->D at t = 3, empty until the
    crowd arrives at t = 4 (wait 0): it arrives at t = 3 (return -3). Exploitability 2."""
    names = game.sections()
    table = np.zeros((game.horizon, game.n_states, game.n_actions))
    table[..., 0] = 1.0
    for here, there in {"O->A": "A->B", "A->B": "B->C", "B->C": "C->D", "C->D": "D->E"}.items():
        for w in (-1, 0):
            table[:, game.state_index(names.index(here), w)] = np.eye(game.n_actions)[1 + names.index(there)]
    return table


@jax.jit
def _figures(game, table):
    """What the default tier reads of a game, one compiled program per game: the mean
    fields and the exploitability of ``table`` (the uniform policy but for the routing
    game), the rewards at ``t = 0`` and at
    ``T - 1`` (against the uniform policy's mean fields) and the kernel at ``t = 0``."""
    from mfax.evaluation.values import best_response_value, path_return, policy_value
    from mfax.games import reward_matrix

    support = game.noise_support()
    traj = rollout_table(game, support.noise, table[None])
    gain = path_return(traj, best_response_value(game, traj, support.noise)) - path_return(
        traj, policy_value(game, traj, support.noise)
    )
    noise = jax.tree.map(lambda x: x[0], support.noise)
    mu = traj.mu[0]
    last = game.horizon - 1
    return dict(
        mu=mu,
        exploitability=jnp.sum(support.weight * gain),
        first=reward_matrix(game, mu[0], mu[1], noise, jnp.int32(0)),
        last=reward_matrix(game, mu[last], mu[last + 1], noise, jnp.int32(last)),
        kernel=game.kernel(mu[0], noise, jnp.int32(0)).flat(),
    )


@pytest.fixture(scope="module")
def figures():
    """``name -> _figures(game)`` (float64), each game's program compiled once, on demand."""
    cache = {}

    def get(name, **values):
        key = (name, tuple(sorted(values.items())))
        if key not in cache:
            with jax.enable_x64(True):
                game = mfax.make(name, **values)
                if name == "openspiel.dynamic_routing":
                    table = _braess_path(game)
                else:
                    table = np.full((game.horizon, game.n_states, game.n_actions), 1.0 / game.n_actions)
                cache[key] = jax.tree.map(np.asarray, _figures(game, jnp.asarray(table)))
        return cache[key]

    return get


@pytest.mark.parametrize("name", GAMES)
def test_mass_is_conserved_and_the_exploitability_is_golden(name, figures):
    got = figures(name)
    np.testing.assert_allclose(got["mu"].sum(-1), 1.0, atol=1e-12)
    assert (got["mu"] >= 0).all()
    np.testing.assert_allclose(float(got["exploitability"]), GOLDEN_UNIFORM[name], rtol=1e-9)


@pytest.mark.parametrize("name", [n if n == "openspiel.garnet" else slow(n) for n in GAMES])
def test_every_protocol_check_passes(name):
    report = mfax.check_game(mfax.make(name))
    assert report.ok and {r.status for r in report.results} == {"pass"}, str(report)


def test_crowd_modelling_pays_the_move_cost_at_its_own_step_and_never_the_last(figures):
    got = figures("openspiel.crowd_modelling")
    # r_x(x) = 1 - |x - 5| / 5 - log(1/10) at t = 0 (uniform mu_0); moves -1, 0, +1 cost 1/10, 0, 1/10
    base = 1 - np.abs(np.arange(10) - 5) / 5 + np.log(10.0)
    np.testing.assert_allclose(got["first"], base[:, None] - np.array([0.1, 0.0, 0.1])[None, :], rtol=1e-12)
    # at T - 1 every action pays the same: the last move is free
    np.testing.assert_array_equal(got["last"], np.repeat(got["last"][:, :1], 3, axis=1))


def test_linear_quadratic_rounds_moves_half_to_even():
    # dt = 1/2: moves -3..3 give full moves -1.5..1.5, rounded as Python's round does
    with mfax.games.unchecked():  # (the game's checks are not what is tested)
        game = mfax.make("openspiel.linear_quadratic", dt=0.5)
    kernel = jax.jit(lambda mu: game.kernel(mu, None, jnp.int32(0)).flat())(jnp.full(10, 0.1))
    landed = [sorted(set(kernel.index[5, a][kernel.prob[5, a] > 0].tolist())) for a in range(7)]
    moved = [round(a / 2) for a in range(-3, 4)]
    assert moved == [-2, -1, 0, 0, 0, 1, 2]
    for a, m in enumerate(moved):  # then the noise: round(x + c sqrt(1/2)), c = -3..3
        assert landed[a] == sorted({round(5 + m + c * 0.5**0.5) % 10 for c in range(-3, 4)})


def test_linear_quadratic_mean_reversion_meets_its_ties_in_either_precision():
    """Uniform policy, uniform start, odd ring: the flow is symmetric about the centre,
    so ``m_t`` is 2 and ``K (m_t - x) dt`` a half-integer at x = 1, 3. Summed in float64,
    ``m_2`` was 1.9999999999999998: x = 3 rounded -0.5 to -1 instead of 0, the flow lost
    its symmetry and the exploitability was 1.74247 in float64 against 1.61021 in float32
    (a review; 1.610206 from a numpy reference that takes exact ties)."""
    from mfax.dynamics import noise_batch, rollout_batch
    from mfax.evaluation import evaluate
    from mfax.policies import Uniform

    figures = []
    for x64 in (False, True):
        with jax.enable_x64(x64), mfax.games.unchecked():
            game = mfax.make("openspiel.linear_quadratic", size=5, horizon=5, n_actions_per_side=1, mean_revert=0.5)
            policy, noise = Uniform(game.n_states, game.n_actions), noise_batch(game, "exact")
            mu = np.asarray(rollout_batch(game, policy, noise.noise).mu[0])
            np.testing.assert_allclose(mu, mu[:, ::-1], atol=1e-6)  # symmetric at every t
            figures.append(evaluate(game, policy, noise).exploitability)
    np.testing.assert_allclose(figures, 1.610206, atol=2e-6)


def test_garnet_generator_follows_the_published_algorithms():
    rng = MT19937(5489)  # std::mt19937's default seed: its first outputs are published
    assert [rng(), rng()] == [3499211612, 581869302]
    words = iter([0x80000000, 1, 0, 0])  # 0x8000000000000001 truncates to 0.5; 0 gives 0
    assert uniform_double(lambda: next(words)) == 0.5
    assert uniform_double(lambda: next(words)) == 0.0
    assert uniform_int(lambda: 0xFFFFFFFF, 8) == 7  # power of two: a mask
    assert uniform_int(lambda: 0x80000001, 10) == 5  # Lemire: the high word of bits * 10 (low word 10: kept)
    reward, prob, nxt = garnet_tables(7, 4, 2, 0.5, 3)
    np.testing.assert_allclose(prob.sum(-1), 1.0, atol=1e-15)
    assert ((0 <= nxt) & (nxt < 7)).all() and (reward == 0).any() and (reward > 0).any()


@pytest.mark.parametrize(
    "name,values,message",
    [
        ("openspiel.crowd_modelling", dict(size=1), "size must be >= 2"),
        ("openspiel.normal_form", dict(reward_function="rps"), "reward_function must be one of"),
        ("openspiel.normal_form", dict(num_actions=4), "num_actions must be 3"),
        ("openspiel.crowd_modelling_2d", dict(size=3, forbidden_states="[3|0]"), "off the 3x3 grid"),
        ("openspiel.crowd_modelling_2d", dict(forbidden_states="[1,2]"), "must list cells x|y"),
        ("openspiel.crowd_modelling_2d", dict(forbidden_states="[0|0]"), "give initial_distribution"),
        (
            "openspiel.crowd_modelling_2d",
            dict(positional_reward_value="[1.0;2.0]"),
            "positional_reward and positional_reward_value need as many entries, got 0 and 2",
        ),
        ("openspiel.garnet", dict(seed=-1), "seed must lie in"),
        ("openspiel.garnet", dict(sparsity_factor=2.0), "sparsity_factor must lie in .0, 1. .a probability., got 2.0"),
        ("openspiel.periodic_aversion", dict(xmax=0.0), "xmax must be > xmin"),
        ("openspiel.dynamic_routing", dict(network="paris"), "network must be one of"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(name, values, message):
    with pytest.raises(mfax.GameError, match=message) as err:
        mfax.make(name, **values)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("network", "dt"), [slow("braess", 0.1), slow("line", 0.08), ("line", 0.05)])
def test_routing_waits_longer_than_the_horizon_stay_on_their_section(network, dt):
    """A short dt makes a travel time exceed the horizon: such a vehicle never arrives
    (OpenSpiel's wait counts down one per step; the game ends at T). The waits were kept
    to T - 1 and the index of a longer one ran into the next section's states (Braess at
    dt = 0.1: vehicles jumped from A->B to A->C), or past the last state (line, dt = 0.05)."""
    # made without the game checks (what is tested is the waits' indexing; the routing
    # game's checks run on its default instance in test_mass_is_conserved_...)
    with jax.enable_x64(True), mfax.games.unchecked():
        game = mfax.make("openspiel.dynamic_routing", network=network, time_step_length=dt)
        table = np.asarray(game.legal_actions())
        table = np.broadcast_to(table / table.sum(1, keepdims=True), (game.horizon, *table.shape))
        got = jax.tree.map(np.asarray, _figures(game, jnp.asarray(table)))
        # by hand: every section takes int(tt / dt) - 1 >= T steps (braess: A->B, A->C
        # at least 9 and 19 with T = 10; line: 11 and 19), so nobody arrives: every
        # vehicle's return is -dt (T + 1) whatever it does, exploitability 0
        assert abs(float(got["exploitability"])) < 1e-12
        assert got["mu"][-1][game.done] == 0.0
        waits = game._waits
        kernel = got["kernel"]
        for s in range(game.n_states - 1):  # a waiting vehicle stays on its section, a step less
            wait = s % waits - 1
            if wait > 0:  # (or is done: a section where the road ends)
                assert np.isin(kernel.index[s], [s - 1, game.done]).all(), (network, dt, s)
        assert (kernel.index[:-1] <= game.done).all()
        # the defaults keep their states (no wait can reach T at dt = 1)
        assert mfax.make("openspiel.dynamic_routing").n_states == 78


def test_routing_volume_counts_the_waits_openspiel_supports():
    """OpenSpiel's volume of a section sums its distribution support, waits -1..T-1: a
    vehicle waiting T or more on a section is not in it (yet)."""
    with jax.enable_x64(True), mfax.games.unchecked():  # (the game's checks: not what is tested)
        game = mfax.make("openspiel.dynamic_routing", time_step_length=0.1)
        a_to_b = game.sections().index("A->B")
        T = game.horizon
        assert game._top_wait == 2 * T - 1
        empty = np.asarray(game._wait(jnp.zeros(game.n_states).at[game.done].set(1.0)))
        late = np.asarray(game._wait(jnp.zeros(game.n_states).at[game.state_index(a_to_b, T)].set(1.0)))
        counted = np.asarray(game._wait(jnp.zeros(game.n_states).at[game.state_index(a_to_b, T - 1)].set(1.0)))
        np.testing.assert_array_equal(late, empty)
        # A->B: tt = 1 (1 + 5 / 5) = 2 when the whole population is on it, wait 2 / 0.1 - 1
        assert empty[a_to_b] == 9 and counted[a_to_b] == 19


# -- against OpenSpiel (optional: pip install open_spiel in a separate venv) -----------
def _adapter():
    path = Path(__file__).resolve().parents[1] / "bench" / "openspiel_adapter.py"
    spec = importlib.util.spec_from_file_location("openspiel_adapter", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("openspiel_adapter", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


needs_openspiel = pytest.mark.skipif(
    importlib.util.find_spec("open_spiel") is None,
    reason="OpenSpiel not installed: pip install open_spiel (a separate venv; see bench/openspiel_crosscheck.py)",
)

SMALL = [
    ("openspiel.crowd_modelling", dict(size=6, horizon=4)),
    ("openspiel.linear_quadratic", dict(size=6, horizon=4, n_actions_per_side=2, dt=0.5, mean_revert=0.5)),
    ("openspiel.periodic_aversion", dict(size=7, horizon=3, n_actions_per_side=2, dt=0.05)),
    ("openspiel.crowd_modelling_2d", dict(size=4, horizon=3, with_congestion=True, noise_intensity=0.6)),
    (
        "openspiel.crowd_modelling_2d",
        dict(
            size=4,
            horizon=3,
            forbidden_states="[1|1;2|1]",
            initial_distribution="[0|0;3|3]",
            initial_distribution_value="[0.25;0.75]",
            positional_reward="[0|3]",
            positional_reward_value="[1.5]",
        ),
    ),
    ("openspiel.normal_form", dict(reward_function="biased_indirect_rps")),
    ("openspiel.garnet", dict(size=6, horizon=4, num_action=3, num_chance_action=2, sparsity_factor=0.5, seed=7)),
    ("openspiel.dynamic_routing", dict(time_step_length=0.5, max_num_time_step=8)),
]


@needs_openspiel
@pytest.mark.parametrize("name,values", SMALL)
def test_fixed_policies_agree_with_openspiel_on_its_rekeyed_tree(name, values):
    adapter = _adapter()
    with jax.enable_x64(True):
        game = mfax.make(name, **values)
        pair = adapter.pairing(game)
        os_game = pair.load()
        rekeyed = adapter.rekeyed(pair, os_game)
        for table in adapter.fixed_tables(game).values():
            if name == "openspiel.crowd_modelling_2d":  # no mass on forbidden moves (illegal there)
                legal = np.broadcast_to(_legal(game)[None], table.shape)
                table = np.where((table * legal).sum(-1, keepdims=True) > 0, table * legal, legal)
                table = table / table.sum(-1, keepdims=True)
            mine = adapter.mfax_exploitability(game, table)[0]
            np.testing.assert_allclose(mine, adapter.openspiel_exploitability(pair, rekeyed, table), rtol=1e-6)
            np.testing.assert_allclose(mine, adapter.walk_exploitability(pair, os_game, table, "rules"), rtol=1e-6)
            # OpenSpiel's own NashConv is its tree walked with values keyed by the observation string
            ours = adapter.openspiel_exploitability(pair, os_game, table)
            assert ours == pytest.approx(adapter.walk_exploitability(pair, os_game, table, "openspiel"), rel=1e-12)


def _legal(game):
    _, allowed = game._targets()
    return allowed.astype(float)


@needs_openspiel
def test_the_walk_without_memo_agrees_and_openspiel_does_not():
    adapter = _adapter()
    with jax.enable_x64(True):
        game = mfax.make("openspiel.crowd_modelling", size=4, horizon=3)
        pair = adapter.pairing(game)
        os_game = pair.load()
        table = adapter.fixed_tables(game)["random"]
        mine = adapter.mfax_exploitability(game, table)[0]
        np.testing.assert_allclose(mine, adapter.walk_exploitability(pair, os_game, table, "none"), rtol=1e-12)
        assert abs(adapter.openspiel_exploitability(pair, os_game, table) - mine) > 1e-3


@needs_openspiel
@pytest.mark.parametrize(
    "name,values",
    [("openspiel.normal_form", dict(reward_function=r)) for r in ("coop", "dom", "biased_indirect_rps")]
    + [("openspiel.garnet", dict(size=6, horizon=4, seed=7))],
)
def test_fp_and_omd_iterates_agree_with_openspiel(name, values):
    adapter = _adapter()
    with jax.enable_x64(True):
        game = mfax.make(name, **values)
        pair = adapter.pairing(game)
        os_game = adapter.rekeyed(pair, pair.load())
        mine, _ = adapter.mfax_fp(game, 4)
        theirs, _, _ = adapter.openspiel_fp(pair, os_game, 4)
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-12)
        mine, _ = adapter.mfax_omd(game, 4, 0.5)
        theirs, _ = adapter.openspiel_md(pair, os_game, 4, 0.5, frozen=True)
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-12)


@needs_openspiel
def test_crowd_modelling_iterates_agree_until_a_rounding_tie():
    adapter = _adapter()
    with jax.enable_x64(True):
        game = mfax.make("openspiel.crowd_modelling", size=6, horizon=4)
        pair = adapter.pairing(game)
        os_game = adapter.rekeyed(pair, pair.load())
        mine, _ = adapter.mfax_omd(game, 4, 1.0)
        theirs, _ = adapter.openspiel_md(pair, os_game, 4, 1.0, frozen=True)
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)
        unfrozen, _ = adapter.openspiel_md(pair, os_game, 4, 1.0)
        assert np.max(np.abs(np.array(unfrozen) - mine)) > 1e-6  # OpenSpiel's policy changes during its walk
        mine, tables = adapter.mfax_fp(game, 4)
        theirs, _, responses = adapter.openspiel_fp(pair, os_game, 4, game=game)
        for k in range(5):
            if abs(mine[k] - theirs[k]) > 1e-6 * abs(theirs[k]):
                # the best responses differ only where two actions tie up to rounding
                q, mu = adapter.best_response_q(game, tables[k - 1])
                choice = np.argmax(responses[k - 1], -1)
                gap = q.max(-1) - np.take_along_axis(q, choice[..., None], -1)[..., 0]
                assert gap[mu[:-1] > 0].max() < 1e-10
                break


@needs_openspiel
def test_openspiel_defects_the_docs_name():
    import pyspiel

    # the 2-D game's initial cell x|y starts the mass at (y, x): stored as y + x size, read as (i mod size, i div size)
    game = pyspiel.load_game(
        "mfg_crowd_modelling_2d", {"size": 4, "initial_distribution": "[0|1]", "initial_distribution_value": "[1.0]"}
    )
    root = game.new_initial_state()
    ((action, prob),) = root.chance_outcomes()
    assert prob == 1.0 and str(root.child(action)).startswith("(1, 0, 0)")
    # the garnet restored from its serialisation has other transitions
    garnet = pyspiel.load_game("mfg_garnet")
    state = garnet.new_initial_state().child(3).child(1)
    restored = garnet.deserialize_state(state.serialize())
    assert state.chance_outcomes() != restored.chance_outcomes()


def test_crowd_modelling_wind_is_a_common_shift_with_enumerated_gusts():
    game = mfax.make("openspiel.crowd_modelling", size=5, horizon=3, wind=0.25)
    support = game.noise_support()
    weight = np.asarray(support.weight)
    assert weight.shape == (8,) and np.isclose(weight.sum(), 1.0) and np.isclose(weight.max(), 0.75**3)
    flat = jax.jit(lambda z: game.kernel(jnp.full(5, 0.2), z, jnp.int32(0)).flat())
    calm = flat(jax.tree.map(lambda x: x[0], support.noise))  # no gust at all
    gust = flat(jax.tree.map(lambda x: x[-1], support.noise))  # gusts at every step
    np.testing.assert_array_equal(np.asarray(gust.index), (np.asarray(calm.index) + 1) % 5)
    assert not mfax.make("openspiel.crowd_modelling").own_history_informative and game.own_history_informative


def test_cpp_games_log_epsilon_is_the_float_openspiel_adds():
    """OpenSpiel's C++ games declare ``constexpr float kEpsilon = 1e-25`` and add it to a
    double: the double nearest the float nearest 1e-25, 1.0000000195414814e-25. mfax held
    1.0000000180025095e-25 (no float32 at all): rewards at empty states were off by
    1.5e-9 per unit of their weight."""
    from mfax.games.openspiel.common import CPP_LOG_EPSILON

    assert CPP_LOG_EPSILON == 1.0000000195414814e-25
    with jax.enable_x64(True):
        game = mfax.make("openspiel.crowd_modelling")
        mu = jnp.zeros(game.n_states).at[0].set(1.0)
        noise = game.sample_noise(jax.random.key(0))
        reward = np.asarray(game.reward(mu, mu, noise, jnp.int32(0)))
        full = np.asarray(game.reward(jnp.full(game.n_states, 1.0 / game.n_states), mu, noise, jnp.int32(0)))
    # at an empty state the log term is -log(kEpsilon); where the mean field is uniform, -log(1/n)
    np.testing.assert_allclose(reward[1] - full[1], -np.log(1.0000000195414814e-25) + np.log(1.0 / game.n_states))
