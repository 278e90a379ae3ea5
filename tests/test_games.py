"""Games: registry, parameter validation, and the kernels/rewards/observations of each
game checked entry by entry against the independent numpy reference."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import ALL_GAMES, dense_kernel, path_at, published, ref_path, slow
from mfax.games import GameError, describe, parse_value
from mfax.games.validate import unchecked
from reference_games import ref_beach_bar, ref_linear_quadratic, ref_macro


def test_registry_lists_every_game():
    assert set(ALL_GAMES) <= set(mfax.game_names())


@pytest.mark.smoke
def test_make_overrides_and_defaults():
    g = mfax.make("beach_bar", common_noise=False, num_states=51)
    assert (g.n_states, g.n_actions, g.horizon, g.gamma) == (51, 11, 30, 0.99)
    assert not g.common_noise
    lq = mfax.make("linear_quadratic")
    assert (lq.n_states, lq.n_actions, lq.horizon, lq.gamma) == (99, 7, 30, 0.99)
    macro = published("macro")  # (its checks: the slow tier)
    assert (macro.n_states, macro.n_actions, macro.horizon, macro.gamma) == (1000, 20, 128, 0.95)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("nope", {}, "unknown game 'nope'; allowed: beach_bar"),
        # another library's name of a game, bare or after its prefix, is told mfax's (a review:
        # a migrant from OpenSpiel had only the list); a last part or a misspelling, the closest
        (
            "openspiel.mfg_crowd_modelling",
            {},
            r"unknown game 'openspiel.mfg_crowd_modelling' \(OpenSpiel's mfg_crowd_modelling is mfax's "
            r"openspiel.crowd_modelling\); allowed: beach_bar",
        ),
        ("mean_field_lin_quad", {}, r"\(OpenSpiel's mean_field_lin_quad is mfax's openspiel.linear_quadratic\);"),
        ("building_evacuation", {}, r"\(MFGLib's building_evacuation is mfax's mfglib.building_evacuation\);"),
        ("garnet", {}, r"unknown game 'garnet' \(did you mean openspiel.garnet\?\); allowed"),
        ("mfglib.beachbar", {}, r"unknown game 'mfglib.beachbar' \(did you mean mfglib.beach_bar\?\); allowed"),
        ("beach_bar", {"colour": 1}, "unknown parameter 'colour' for game 'beach_bar'; allowed: num_states"),
        ("beach_bar", {"gamma": 0.0}, r"gamma must lie in \(0, 1\]"),
        ("beach_bar", {"gamma": 1.5}, r"gamma must lie in \(0, 1\]"),
        ("linear_quadratic", {"horizon": 0}, "horizon must be >= 1"),
        ("beach_bar", {"num_states": 0}, "num_states must be >= 3"),
        # T // 2 = 0: the closing paths had z_0 = 0 (the spec: z_0 = 1)
        ("beach_bar", {"horizon": 1}, r"horizon must be >= 2 with common noise \(the bar may close at t = T//2 >= 1\)"),
        ("beach_bar", {"idiosyncratic_probs": (0.5, 0.6, -0.1)}, "must be non-negative"),
        ("beach_bar", {"idiosyncratic_probs": (0.2, 0.2, 0.2)}, "must sum to 1"),
        ("macro", {"income_probs": (0.3, 0.3, 0.3)}, "must sum to 1"),
        ("macro", {"num_wealth": 1}, "num_wealth must be >= 2"),
        ("linear_quadratic", {"num_states": 2.5}, "must be int"),
        ("linear_quadratic", {"common_noise": 1}, "must be bool"),
        ("sis", {"report_error": -1.0}, r"report_error must be >= 0 \(the size of the error\), got -1.0"),
    ],
)
def test_bad_input_is_refused_with_one_line(name, params, match):
    with pytest.raises(GameError, match=match) as info:
        mfax.make(name, **params)
    assert "\n" not in str(info.value)


def test_parse_value_types():
    assert parse_value("beach_bar", "common_noise", "false") is False
    assert parse_value("beach_bar", "num_states", "51") == 51
    assert parse_value("beach_bar", "idiosyncratic_probs", "0.1,0.8,0.1") == (0.1, 0.8, 0.1)
    with pytest.raises(GameError, match="must be int"):
        parse_value("beach_bar", "num_states", "many")
    assert all(help_ for _, _, help_ in describe("macro"))


REFERENCE_CASES = [
    ("linear_quadratic", {}, ref_linear_quadratic),
    ("linear_quadratic", {"num_states": 15, "shift": 3.0, "rho": 0.3}, ref_linear_quadratic),
    ("linear_quadratic", {"num_states": 12, "idiosyncratic_noise": False}, ref_linear_quadratic),
    slow("beach_bar", {}, ref_beach_bar),
    ("beach_bar", {"num_states": 21, "idiosyncratic_noise": False}, ref_beach_bar),
    slow("macro", {"num_wealth": 30, "horizon": 6}, ref_macro),
    ("macro", {"num_wealth": 12, "num_income": 3, "idiosyncratic_noise": False, "crra": 1.0}, ref_macro),
]


@pytest.mark.parametrize(("name", "params", "ref_factory"), REFERENCE_CASES)
def test_kernel_reward_observation_match_reference(name, params, ref_factory):
    """Every transition probability, reward and observation equals the reference's."""
    # made without the game checks (a second or two each, seconds for the macro economy at
    # T = 128; they are test_validation's and test_check_game's): what is compared is the
    # game's functions
    with jax.enable_x64(True), unchecked():
        game = mfax.make(name, **params)
    with jax.enable_x64(True):
        ref = ref_factory(**params)
        n, m = game.n_states, game.n_actions
        key = jax.random.key(7)
        noise = jax.vmap(game.sample_noise)(jax.random.split(key, 2))
        ts = sorted({0, 1, game.horizon // 2, game.horizon - 1, min(game.horizon - 1, 21)})
        rng = np.random.default_rng(0)
        # the game's three functions compiled once (t traced): op by op they took seconds
        functions = jax.jit(
            lambda mu, mu_next, path, t: (
                game.kernel(mu, path, t),
                mfax.games.reward_matrix(game, mu, mu_next, path, t),
                game.observation(mu, path, t),
            )
        )
        for i in range(2):
            path = path_at(noise, i)
            rp = ref_path(game, path)
            mu0 = np.asarray(game.initial_mean_field(path))
            np.testing.assert_allclose(mu0, ref.initial_mean_field(rp), atol=1e-12)
            for t in ts:
                mu = rng.dirichlet(np.ones(n)) if t else mu0
                mu_next = rng.dirichlet(np.ones(n))
                kernel, r, obs = functions(jnp.asarray(mu), jnp.asarray(mu_next), path, jnp.int32(t))
                ours = dense_kernel(kernel)
                for s in range(0, n, max(1, n // 40)):
                    for a in range(m):
                        expected = np.zeros(n)
                        for nxt, p in ref.transitions(s, a, mu, rp, t).items():
                            expected[nxt] += p
                        np.testing.assert_allclose(ours[s, a], expected, atol=1e-12, err_msg=f"s={s} a={a} t={t}")
                r = np.asarray(r)
                ref_r = np.array([[ref.reward(s, a, mu, mu_next, rp, t) for a in range(m)] for s in range(n)])
                np.testing.assert_allclose(r, ref_r, rtol=1e-10, atol=1e-10, err_msg=f"rewards t={t}")
                np.testing.assert_allclose(np.asarray(obs), ref.observation(mu, rp, t), rtol=1e-12)


@pytest.mark.parametrize("name", ALL_GAMES)
def test_kernel_is_a_probability_kernel(name):
    game = published(name)
    noise = game.sample_noise(jax.random.key(1))
    mu = game.initial_mean_field(noise)
    # compiled once (t traced): op by op the published economy's kernel took seconds
    both = jax.jit(lambda t: (lambda kernel: (kernel, kernel.flat()))(game.kernel(mu, noise, t)))
    for t in (0, game.horizon - 1):
        staged, k = both(jnp.int32(t))
        size = game.n_states if staged.then is None else staged.then.index.shape[0]
        stages = [(staged.index, staged.prob, size)]
        if staged.then is not None:
            stages.append((staged.then.index, staged.then.prob, game.n_states))
        for index, prob, bound in stages:
            assert index.shape == prob.shape and index.dtype == jnp.int32
            assert int(index.min()) >= 0 and int(index.max()) < bound
            assert float(prob.min()) >= 0.0
            np.testing.assert_allclose(np.asarray(prob.sum(-1)), 1.0, atol=1e-6)
        assert k.index.shape[:2] == (game.n_states, game.n_actions) and k.index.shape == k.prob.shape
        assert int(k.index.min()) >= 0 and int(k.index.max()) < game.n_states
        np.testing.assert_allclose(np.asarray(k.prob.sum(-1)), 1.0, atol=1e-6)
        # the flattened kernel is the two stages composed: E[v(s') | s, a] both ways
        v = np.random.default_rng(t).normal(size=game.n_states)
        flat_expect = np.sum(np.asarray(k.prob, np.float64) * v[np.asarray(k.index)], -1)
        if staged.then is not None:
            v = np.sum(np.asarray(staged.then.prob, np.float64) * v[np.asarray(staged.then.index)], -1)
        stage_expect = np.sum(np.asarray(staged.prob, np.float64) * v[np.asarray(staged.index)], -1)
        np.testing.assert_allclose(flat_expect, stage_expect, rtol=1e-6, atol=1e-6)  # float32 products


@pytest.mark.parametrize("name", ALL_GAMES)
def test_noise_support_weights_and_samples(name):
    game = published(name)
    support = game.noise_support()
    if support is None:
        assert name == "macro"
        with unchecked():  # (the published economy's checks: the slow tier's, see conftest.published)
            assert mfax.make(name, common_noise=False).noise_support() is not None
        return
    np.testing.assert_allclose(float(support.weight.sum()), 1.0, atol=1e-6)
    expected = {"linear_quadratic": 2, "beach_bar": 102, "sis": 2 * 2**8}[name]
    assert support.weight.shape == (expected,)


@pytest.mark.parametrize("name", sorted(mfax.game_names()))
def test_the_suggested_setting_without_common_noise_has_one_noise_path(name):
    """What the refusals of the solvers without common noise suggest (``--set
    bar_shock=0`` on the command line, ``bar_shock=0.0`` from Python...) is true: the
    game has one noise path there."""
    from mfax.errors import command_line_words
    from mfax.games.base import common_noise_advice

    # made without the game checks (not what is tested: seconds for the routing game; each
    # registered game's are run by test_validation, test_mfglib_games, test_openspiel_games)
    with unchecked():
        game = published(name)
    off = game.common_noise_off
    if off is None:
        assert common_noise_advice(game) == "it has no setting without common noise"
        if name == "beach_bar":  # the bar's location is drawn whether it may close or not
            with unchecked():
                assert mfax.make(name, common_noise=False).noise_support().weight.shape == (51,)
        return
    with unchecked():
        quiet = mfax.make(name, **off)
    assert quiet.noise_support() is not None and quiet.noise_support().weight.shape == (1,), name
    assert common_noise_advice(game) == "without common noise: " + ", ".join(f"{k}={v!r}" for k, v in off.items())
    with command_line_words():
        assert common_noise_advice(game).startswith("without common noise: --set ")


def test_beach_bar_noise_is_exactly_the_published_process():
    game = mfax.make("beach_bar")
    noise = jax.vmap(game.sample_noise)(jax.random.split(jax.random.key(0), 4000))
    bars = np.asarray(noise.bar)
    assert bars.min() == 25 and bars.max() == 75
    z = np.asarray(noise.z)
    assert (z[:, :15] == 1).all()
    assert (z[:, 15:] == z[:, 15:16]).all()  # stays as drawn
    assert abs(z[:, 15].mean() - 0.5) < 0.03
    off = mfax.make("beach_bar", common_noise=False).sample_noise(jax.random.key(3))
    assert (np.asarray(off.z) == 1).all()


def test_macro_empty_economy_has_finite_rewards():
    """A sampled population of a few agents can all sit at zero wealth: K = 0, so W = 0
    and consumption 0; the utility floor keeps the rewards finite (and very negative)."""
    with unchecked():  # (the game's checks are not what is tested: seconds of compiling)
        game = mfax.make("macro", num_wealth=10, horizon=4)
    mu = jnp.zeros(game.n_states).at[jnp.arange(game.num_income)].set(1.0 / game.num_income)  # w = 0 only
    noise = game.sample_noise(jax.random.key(0))
    r = game.reward(mu, mu, noise, 0)
    assert bool(jnp.all(jnp.isfinite(r))) and float(jnp.min(r)) <= -1e5
    assert bool(jnp.all(jnp.isfinite(game.terminal_reward(mu, mu, noise, 3))))
    with pytest.raises(mfax.GameError, match="consumption_floor must be > 0"):
        mfax.make("macro", consumption_floor=0.0)


def test_macro_refuses_a_productivity_process_that_overflows():
    """An explosive AR(1) (or a huge z_std) took exp(z) beyond float32 within the horizon:
    the checks before a run failed on NaN kernels without naming the cause. Refused by
    name where 8 standard deviations of z_T pass log(float32 max); a mildly explosive or
    unit-root process over the horizon, and any process without common noise (z = 0), stay."""
    for params, spread in (({"z_persistence": 1.5}, "9.3e+20"), ({"z_persistence": -3.0}, "1.25e+59")):
        with pytest.raises(
            mfax.GameError, match=f"z_persistence=.* its standard deviation reaches {re.escape(spread)} by t=128"
        ):
            mfax.make("macro", num_wealth=10, **params)
    with pytest.raises(mfax.GameError, match=r"z_std=20\.0 its standard deviation reaches"):
        mfax.make("macro", num_wealth=10, z_std=20.0)
    with unchecked():  # accepted by the constructor (the checks of a T = 128 economy: seconds each)
        for params in ({"z_persistence": 1.01}, {"z_persistence": 1.0}, {"z_persistence": -1.0}):
            game = mfax.make("macro", num_wealth=10, **params)
            assert game.z_spread() < 11.1
        z = mfax.make("macro", num_wealth=10, z_persistence=1.0).z_spread()
        assert z == pytest.approx(0.03 * np.sqrt(128), rel=1e-12)  # a random walk: sqrt(T) innovations
        assert mfax.make("macro", num_wealth=10, z_persistence=1.5, common_noise=False).z_spread() > 1e20
    # a game built inside jit with one of the two traced (the other concrete) is checked later,
    # where its values are concrete (the check computed with numpy on the tracer)
    from mfax.games.macro import Macro

    built = jax.jit(lambda s: Macro(num_wealth=10, z_std=s).z_std)(jnp.float32(0.05))
    assert float(built) == pytest.approx(0.05)


@pytest.mark.parametrize(
    "params",
    [
        slow({}),
        {"num_wealth": 7, "wealth_max": 3.0, "grid_pivot": 2.0},
        slow({"num_wealth": 2}),
        slow({"num_wealth": 1000, "grid_pivot": 0.01}),
    ],
)
def test_macro_wealth_locate_is_a_search_of_the_grid(params):
    """``wealth_below`` reads the index off the geometric grid's logarithm: it must give
    exactly ``searchsorted(grid, x, side="right") - 1`` on the grid points, one ulp on
    either side of them, below and above the grid, and anywhere in between."""
    with unchecked():  # (the game's checks are tested elsewhere: seconds of compiling at T = 128)
        game = mfax.make("macro", **params)
    grid = jnp.asarray(game.wealth_grid_np(), dtype=float)
    key = jax.random.key(1)
    x = jnp.concatenate(
        [
            grid,
            jnp.nextafter(grid, jnp.inf),
            jnp.nextafter(grid, -jnp.inf),
            jax.random.uniform(key, (50_000,), minval=-1.0, maxval=1.5 * game.wealth_max),
            jnp.exp(jax.random.uniform(jax.random.fold_in(key, 1), (50_000,), minval=-20.0, maxval=6.0)),
            jnp.array([-5.0, 0.0, 1e30, jnp.inf]),
        ]
    )
    expected = jnp.searchsorted(grid, x, side="right") - 1
    below = jax.jit(game.wealth_below)  # (as the kernel calls it: compiled; op by op it took seconds)
    np.testing.assert_array_equal(below(x), expected)
    np.testing.assert_array_equal(below(x[None, :]), expected[None, :])  # any shape


def test_concrete_games_and_policies_are_final():
    """Abstract-or-final: a concrete game or policy cannot be extended (reuse one by
    delegating to it), and a game missing a required function cannot be built."""
    from mfax.games import SIS
    from mfax.policies import Uniform

    with pytest.raises(TypeError, match="SIS, a concrete game, but concrete classes are final"):

        class MySIS(SIS):
            pass

    with pytest.raises(TypeError, match="Uniform, a concrete policy, but concrete classes are final"):

        class MyUniform(Uniform):
            pass

    class NoObservation(mfax.Game):  # abstract: observation is missing
        name = "no_observation"
        n_states = n_actions = horizon = 2
        gamma = 1.0

        def state_features(self):
            return jnp.zeros((2, 1))

        def action_values(self):
            return jnp.zeros(2)

        def sample_noise(self, key):
            return jnp.zeros(())

        def initial_mean_field(self, noise):
            return jnp.full(2, 0.5)

        def kernel(self, mu, noise, t):
            return mfax.games.Kernel(jnp.zeros((2, 2, 1), jnp.int32), jnp.ones((2, 2, 1)))

        def reward(self, mu, mu_next, noise, t):
            return jnp.zeros((2, 2))

    with pytest.raises(TypeError, match="abstract"):
        NoObservation()


def test_macro_aggregates_and_profiles_by_hand():
    """The macro game's declared outputs on a hand-made distribution: capital, prices
    (the observation), wealth quantiles; the wealth marginal and the saved share."""
    with unchecked():  # (the game's checks are tested elsewhere: seconds of compiling)
        game = mfax.make("macro", num_wealth=4, num_income=2, horizon=2)
    wealth, income = game.wealth_grid_np(), game.income_grid_np()
    mu = np.array([0.1, 0.1, 0.2, 0.1, 0.0, 0.3, 0.1, 0.1])  # state i * 2 + j: wealth i, income j
    noise = game.sample_noise(jax.random.key(0))
    out = game.aggregates(jnp.asarray(mu), noise, jnp.int32(1))
    np.testing.assert_allclose(out["capital K_t"], mu @ np.repeat(wealth, 2), rtol=1e-6)
    np.testing.assert_allclose(
        [out["interest rate r_t"], out["wage W_t"]], game.observation(jnp.asarray(mu), noise, 1), rtol=1e-6
    )
    assert float(out["log productivity z_t"]) == float(noise.z[1])
    # wealth marginal (0.2, 0.3, 0.3, 0.2): cumulative 0.2, 0.5, 0.8, 1.0
    assert float(out["median wealth"]) == pytest.approx(wealth[1])
    assert float(out["wealth, 90th percentile"]) == pytest.approx(wealth[3])

    # exact ties at the level (the uniform start) count as reached in every precision:
    # float32's cumulative sum fell just short and 13 of 65 grids reported the next point
    for nw, ny in [(50, 1), (100, 1), (200, 3), (10, 5)]:
        with unchecked():  # (the game's checks are tested elsewhere: seconds of compiling each)
            g = mfax.make("macro", num_wealth=nw, num_income=ny, horizon=2)
        start = jax.jit(g.aggregates)(g.initial_mean_field(None), noise, jnp.int32(0))
        marginal = np.asarray(g.initial_mean_field(None), np.float64).reshape(nw, ny).sum(-1)
        assert np.allclose(marginal, 1.0 / nw)  # uniform over wealth: cumulative shares k / nw exactly
        for name, level in [("median wealth", 0.5), ("wealth, 90th percentile", 0.9)]:
            expected = g.wealth_grid_np()[math.ceil(round(level * nw, 9)) - 1]
            assert float(start[name]) == pytest.approx(expected), (nw, ny, name)

    mus = np.stack([mu, np.eye(8)[6], mu])  # everybody at wealth 3, income 0 at t = 1
    probs = np.zeros((2, 8, game.n_actions))
    probs[:, np.arange(8), np.arange(8)] = 1.0  # state s consumes the share a_s, saves 1 - a_s
    shares, *savings = game.profiles(mus, probs, jax.tree.map(np.asarray, noise))
    np.testing.assert_allclose(shares.x, wealth)
    np.testing.assert_allclose(shares.curves["t = 0"], [0.2, 0.3, 0.3, 0.2])
    np.testing.assert_allclose(shares.curves["t = 1"], [0.0, 0.0, 0.0, 1.0])
    assert [p.title for p in savings] == ["savings policy at t = 0", "savings policy at t = 1"]
    a = np.asarray(game.action_values())
    for j, y in enumerate(income):
        np.testing.assert_allclose(savings[0].curves[f"income {y:.2f}"], 1.0 - a[np.arange(4) * 2 + j], rtol=1e-6)


def test_linear_quadratic_ties_of_the_definition_round_alike_in_every_precision():
    """sigma sqrt(1 - rho^2) = 2.5 x 0.6 = 1.5 exactly: from s = 2 (move 0) the offsets
    -1, 0, 1 land on 0.5, 2, 3.5, which round (halves to even) to 0, 2, 4. float64
    computed 1.4999999999999998 (states 1, 2, 3), a swept (traced) rho in float32
    1.49999996: the same parameters trained one game and evaluated another."""
    import equinox as eqx

    kw = dict(num_states=6, horizon=2, sigma=2.5, rho=0.8, common_noise=False, noise_half_width=1)

    def index(game):
        noise = game.sample_noise(jax.random.key(0))
        return game.kernel(game.initial_mean_field(noise), noise, jnp.int32(0)).index

    with unchecked():  # (the game's checks are not what is tested)
        single = np.asarray(index(mfax.make("linear_quadratic", **kw)))
        with jax.enable_x64(True):
            wide = np.asarray(index(mfax.make("linear_quadratic", **kw)))
        game = mfax.make("linear_quadratic", **kw)
    traced = np.asarray(jax.jit(lambda rho: index(eqx.tree_at(lambda g: g.rho, game, rho)))(jnp.float32(0.8)))
    stay = list(np.asarray(game.action_values())).index(0.0)
    np.testing.assert_array_equal(single[2, stay], [0, 2, 4])
    np.testing.assert_array_equal(wide, single)
    np.testing.assert_array_equal(traced, single)


def test_boundary_values_the_definitions_allow_and_bool_spellings():
    """beta (1 +- beta_shock) with beta_shock = 1 and beta = 1/2 gives the probabilities 0
    and 1: the definition allows it (it was refused as outside [0, 1)). A bool parameter
    given as text that is none of its spellings names them."""
    game = mfax.make("mfglib.susceptible_infected", beta=0.5, beta_shock=1.0)
    assert game.beta_shock == 1.0
    with pytest.raises(GameError, match=r"must be a bool \(true, false, 1, 0, yes, no, on, off\), got ''"):
        parse_value("sis", "common_noise", "")


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"horizon": "3"}, "horizon must be an integer, got '3'"),
        ({"horizon": 2.0}, "horizon must be an integer, got 2.0"),
        ({"gamma": "0.9"}, "gamma must be a number, got '0.9'"),
    ],
)
def test_a_game_built_by_its_constructor_with_a_wrong_type_is_one_line(values, match):
    """The constructor skips make's type checks: ``horizon="3"`` was a raw TypeError from
    comparing a string with 1."""
    from mfax.games import LinearQuadratic

    with pytest.raises(GameError, match=match) as info:
        LinearQuadratic(**values)
    assert "\n" not in str(info.value)
