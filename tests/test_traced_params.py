"""Traced game parameters: a sweep over one is one compiled program.

Games that differ only in traced parameters are stacked on a run axis
(:func:`mfax.games.stack_games`) and mapped over with ``jax.vmap``; the mean fields,
observations and exact values must be those of each game compiled on its own (float64,
to 1e-12), and the program is traced once for all values, and not again for new ones.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfax
from conftest import slow
from mfax import params
from mfax.dynamics import rollout_batch
from mfax.evaluation.values import best_response_value, policy_value
from mfax.games import Macro, stack_games, swept_fields
from mfax.policies.base import Policy

SMALL = {
    "beach_bar": {"num_states": 11, "horizon": 6},
    "linear_quadratic": {"num_states": 15, "horizon": 8, "shift_until": 2, "shift_from": 5},
    "sis": {"horizon": 4},
    "macro": {"num_wealth": 20, "num_income": 3, "num_actions": 5, "horizon": 5},
}
# one traced parameter per game, three values (macro's include log utility, crra = 1)
SWEEPS = {
    "beach_bar": ("gamma", (0.9, 0.95, 1.0)),
    "linear_quadratic": ("rho", (0.2, 0.5, 0.8)),
    "sis": ("beta_severe", (0.5, 0.7, 0.9)),
    "macro": ("crra", (1.0, 2.0, 3.0)),
}
MACRO_PATHS = 3


class ObservationPolicy(Policy):
    """Action probabilities that depend on the public observation (so on the swept
    parameter through the mean field) and on ``t``."""

    logits: jax.Array

    def __call__(self, carry, obs, t):
        return carry, jax.nn.softmax(self.logits[t] * (1.0 + jnp.sum(obs)), axis=-1)


def _policy(game):
    shape = (game.horizon, game.n_states, game.n_actions)
    return ObservationPolicy(jax.random.normal(jax.random.PRNGKey(1), shape))


def _figures(game, policy, support):
    """Rollout and exact values of one game (traced fields may be tracers): on the
    enumerated noise when it is finite, else on sampled paths (drawn by ``game``)."""
    if support is None:
        noise = jax.vmap(game.sample_noise)(jax.random.split(jax.random.PRNGKey(2), MACRO_PATHS))
    else:
        noise = support.noise
    traj = rollout_batch(game, policy, noise)
    return {
        "mu": traj.mu,
        "obs": traj.obs,
        "policy_value": policy_value(game, traj, noise),
        "best_response_value": best_response_value(game, traj, noise),
    }


def _swept_program(policy, support):
    traces = []

    @jax.jit
    def run(stacked):
        traces.append(1)
        return jax.vmap(lambda g: _figures(g, policy, support))(stacked)

    return run, traces


def _check_sweep(games):
    """The stacked program gives each game's figures, stacked in either order (new
    values, same program: traced once)."""
    policy, support = _policy(games[0]), games[0].noise_support()
    run, traces = _swept_program(policy, support)
    alone = [jax.jit(lambda game=game: _figures(game, policy, support))() for game in games]
    forward = list(range(len(games)))
    for order in (forward, forward[::-1]):
        swept = run(stack_games([games[i] for i in order]))
        for r, i in enumerate(order):
            for what, value in alone[i].items():
                assert value.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(value))), f"{what}, game {i}"
                np.testing.assert_allclose(swept[what][r], value, rtol=1e-12, atol=1e-12, err_msg=f"{what}, game {i}")
    assert len(traces) == 1


def _build(name: str, **values):
    """A game from Python numbers (as :func:`mfax.make` builds it, without compiling
    its validation program: other tests cover that)."""
    return mfax.games.game_class(name)(**{**SMALL[name], **values})


# the sweep of every traced parameter at once (below) covers each game by default; the
# one-parameter sweeps run in the slow tier
@pytest.mark.parametrize("name", [slow(n) for n in sorted(SWEEPS)])
def test_a_sweep_of_one_traced_parameter_is_one_program_with_each_games_values(name):
    key, values = SWEEPS[name]
    with jax.enable_x64(True):
        games = [_build(name, **{key: v}) for v in values]
        assert swept_fields(games) == [key]
        _check_sweep(games)


def _perturbed(name: str, factor: float):
    """The game with every traced parameter moved by ``factor`` (ints rounded down)."""
    base = _build(name)
    moved = {k: type(getattr(base, k))(getattr(base, k) * factor) for k in params.traced_names(type(base))}
    return _build(name, **moved)


@pytest.mark.parametrize("name", [slow(n) if n in ("beach_bar", "macro") else n for n in sorted(SWEEPS)])
def test_every_traced_parameter_takes_a_tracer(name):
    """Sweeping all traced parameters at once: each one's code runs on tracers and gives
    the values of the game built with Python numbers."""
    with jax.enable_x64(True):
        games = [_perturbed(name, f) for f in (1.0, 0.9, 0.8)]
        traced = params.traced_names(type(games[0]))
        assert swept_fields(games) == traced
        _check_sweep(games)


def test_stacking_games_that_differ_in_a_static_parameter_is_one_clear_error():
    games = [_build("beach_bar", num_states=n) for n in (11, 13)]
    with pytest.raises(mfax.GameError) as info:
        stack_games(games)
    message = str(info.value)
    assert "\n" not in message
    assert "static parameter 'num_states' (11 and 13)" in message
    assert message.endswith("only traced parameters can differ in a sweep: gamma")
    with pytest.raises(mfax.GameError, match="static parameter 'close_probability'"):
        stack_games([_build("beach_bar", close_probability=p) for p in (0.5, 0.25)])
    with pytest.raises(mfax.GameError, match="one kind, got 'beach_bar', 'sis'"):
        stack_games([games[0], _build("sis")])
    with pytest.raises(mfax.GameError, match="at least one game"):
        stack_games([])


def test_stacked_fields_hold_each_games_value_in_order():
    games = [mfax.make("linear_quadratic", kappa=k, shift_until=u) for k, u in ((0.5, 8), (0.25, 6), (1.0, 7))]
    stacked = stack_games(games)
    assert swept_fields(games) == ["kappa", "shift_until"]
    # in the default float dtype (float32 unless x64 is on), ints as ints
    np.testing.assert_array_equal(stacked.kappa, jnp.asarray([0.5, 0.25, 1.0]))
    np.testing.assert_array_equal(stacked.shift_until, jnp.asarray([8, 6, 7]))
    np.testing.assert_array_equal(stacked.gamma, jnp.asarray([0.99] * 3))
    assert jnp.issubdtype(stacked.shift_until.dtype, jnp.integer)
    assert (stacked.num_states, stacked.noise_half_width) == (99, 3)
    assert swept_fields(games[:1]) == []


def test_validation_refuses_bad_values_in_arrays_and_lets_tracers_through():
    with pytest.raises(mfax.GameError, match=r"crra must be > 0, got \[ 2. -1.\]"):
        Macro(crra=jnp.array([2.0, -1.0]))
    with pytest.raises(mfax.GameError, match="gamma must lie in"):
        mfax.games.SIS(gamma=np.array([0.5, 1.5]))
    # built inside a transformation, the values are tracers: checked where concrete
    crras = jnp.array([1.0, 2.0, 4.0])
    utility = jax.vmap(lambda c: Macro(crra=c, num_wealth=4).utility(jnp.float32(2.0)))(crras)
    np.testing.assert_allclose(utility, [np.log(2.0), -0.5, -(2.0**-3) / 3], rtol=1e-6)


def test_games_built_with_python_numbers_stay_hashable_and_equal_by_value():
    a, b = mfax.make("macro", **SMALL["macro"], crra=2.0), _build("macro", crra=2.0)
    assert a == b and hash(a) == hash(b)
    assert _build("macro", crra=3.0) != a


def test_shape_fixing_parameters_are_static():
    for name in mfax.game_names():
        cls = mfax.games.game_class(name)
        traced = params.traced_names(cls)
        for key in ("num_states", "max_action", "horizon", "num_wealth", "num_income", "num_actions"):
            assert key not in traced
        for key, default, _ in params.describe(cls):
            if isinstance(default, bool | tuple | str):
                assert key not in traced, (name, key)
