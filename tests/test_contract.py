"""Contract over the whole registry: compiled rollouts and evaluation, finite values,
no retracing on a second call with new values of the same shapes."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import mfax
from conftest import random_policy_table, slow
from mfax.dynamics import noise_batch, rollout_batch
from mfax.evaluation import path_values
from mfax.games.base import aggregate_paths, moment_paths
from mfax.policies import Tabular
from mfax.tracing import TRACES


def _small(name):
    # Full size except the macro horizon, to keep the contract run quick. Made without the
    # game checks (not part of this contract: a second or more per game; the registered
    # games' checks are test_validation's, test_mfglib_games's and test_openspiel_games's).
    with mfax.games.unchecked():
        return mfax.make(name, horizon=16) if name == "macro" else mfax.make(name)


# MFGLib's and OpenSpiel's games: their default-tier checks (rollout, mass, exact
# exploitability) are tests/test_mfglib_games.py's and tests/test_openspiel_games.py's, one
# compiled program each; the full contract is slow here
@pytest.mark.parametrize(
    "name",
    [slow(n) if n == "macro" or n.startswith(("mfglib.", "openspiel.")) else n for n in mfax.game_names()],
)
def test_registered_game_contract(name):
    game = _small(name)
    batch = noise_batch(game, "sample", jax.random.key(0), 3)
    policies = [Tabular(random_policy_table(jax.random.key(s), game)) for s in (1, 2)]

    traj = rollout_batch(game, policies[0], batch.noise)
    T, n, m = game.horizon, game.n_states, game.n_actions
    assert traj.mu.shape == (3, T + 1, n) and traj.probs.shape == (3, T, n, m) and traj.rewards.shape == (3, T, n, m)
    assert traj.obs.shape[:2] == (3, T + 1)
    for leaf in jax.tree.leaves(traj):
        assert np.isfinite(np.asarray(leaf)).all()
    for name_, series in aggregate_paths(game, traj.mu, batch.noise).items():  # the game's declared outputs
        # finite, or NaN where not defined at t (equilibrium price: the choice steps); never infinite
        series = np.asarray(series)
        assert np.shape(series) == (3, T + 1) and not np.isinf(series).any() and np.isfinite(series).any(), name_
    declared = moment_paths(game, traj.mu, traj.probs, batch.noise) if game.moment_specs() else {}
    for name_, values in declared.items():  # the game's declared moments
        spec = game.moment_specs()[name_]
        shape = (3, T if spec.decision else T + 1, *(len(coords) for _, coords in spec.axes))
        assert np.shape(values) == shape and np.isfinite(values).all(), name_
    one = jax.tree.map(lambda x: np.asarray(x[0]), batch.noise)
    for profile in game.profiles(np.asarray(traj.mu[0]), np.asarray(traj.probs[0]), one):
        for label, curve in profile.curves.items():
            assert np.shape(curve) == np.shape(profile.x) and np.isfinite(curve).all(), (profile.title, label)
    values = path_values(game, policies[0], batch.noise, batch.weight, True)
    for leaf in jax.tree.leaves(values):
        assert np.isfinite(np.asarray(leaf)).all()

    before = dict(TRACES)
    other = noise_batch(game, "sample", jax.random.key(9), 3)
    jax.block_until_ready(rollout_batch(game, policies[1], other.noise))
    jax.block_until_ready(path_values(game, policies[1], other.noise, other.weight, True))
    assert TRACES["rollout"] == before["rollout"], "rollout_batch retraced"
    assert TRACES["path_values"] == before["path_values"], "path_values retraced"

    # an equal game built anew is the same static configuration: no retrace either
    jax.block_until_ready(rollout_batch(_small(name), policies[1], other.noise))
    assert TRACES["rollout"] == before["rollout"]
