"""What each exploitability figure ranges over, checked against the exact
non-anticipative best response (a deviator that also remembers its own past states).

For every population policy: information-consistent <= non-anticipative <= per path
(best-response returns). Where a game declares its own history uninformative
(``own_history_informative`` False), the first two are equal; on ``sis`` under a
lockdown the public reports hide the regime while a deviator's own infection reveals
it, and all three differ.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import random_policy_table, slow
from mfax.dynamics import enumerate_noise, rollout_batch
from mfax.evaluation import evaluate
from mfax.evaluation.nonanticipative import (
    dense_kernels,
    nonanticipative_best_response_return,
    nonanticipative_return,
)
from mfax.policies import FixedAction, Tabular
from mfax.run.cli import app

# A lockdown: everybody stays home (action 1) and home is safe (home_factor 0), so the
# infected share, and with it the public report, is the same in both regimes. A
# deviator who goes out learns the regime from whether it got infected.
LOCKDOWN = {"horizon": 4, "home_factor": 0.0}


def _figures(game, policy):
    batch = enumerate_noise(game)
    result = evaluate(game, policy, batch)
    return result, nonanticipative_best_response_return(game, policy, batch)


def test_sis_lockdown_information_consistent_is_strictly_below_nonanticipative():
    with jax.enable_x64(True):
        game = mfax.make("sis", **LOCKDOWN)
        result, na = _figures(game, FixedAction(2, 2, 1))
    assert game.own_history_informative
    info, per_path = result.best_response_return_info, result.best_response_return
    # measured: info -0.899751, non-anticipative -0.896215, per path -0.877603
    assert info < na - 1e-3, (info, na)
    assert na < per_path - 1e-2, (na, per_path)
    assert na - result.policy_return == pytest.approx(0.810385, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        slow("beach_bar", {"num_states": 5, "max_action": 1, "horizon": 3}),
        (
            "linear_quadratic",
            {"num_states": 5, "max_action": 1, "horizon": 3, "shift": 2.0, "shift_until": 1, "shift_from": 1},
        ),
    ],
)
def test_own_history_uninformative_games_nonanticipative_equals_information_consistent(name, params):
    """Random time-indexed population policies; float64 throughout."""
    with jax.enable_x64(True):
        game = mfax.make(name, **params)
        result, na = _figures(game, Tabular(random_policy_table(jax.random.key(3), game)))
    info, per_path = result.best_response_return_info, result.best_response_return
    assert info <= na + 1e-9 and na <= per_path + 1e-9
    assert per_path - info > 1e-3  # the noise matters: the two published figures differ
    assert not game.own_history_informative
    assert na == pytest.approx(info, abs=1e-9)


def test_oracle_with_every_path_public_is_the_per_path_best_response():
    """Told the whole path (every path its own public node), remembering its own states
    is worth nothing: the oracle's recursion over own histories must reproduce the
    per-path backward induction."""
    with jax.enable_x64(True):
        game = mfax.make("sis", **LOCKDOWN)
        batch = enumerate_noise(game)
        policy = FixedAction(2, 2, 1)
        traj = rollout_batch(game, policy, batch.noise)
        per_path = evaluate(game, policy, batch).best_response_return
        kernels = dense_kernels(game, traj, batch.noise)
    nodes = np.broadcast_to(np.arange(batch.num_paths)[:, None], (batch.num_paths, game.horizon + 1))
    told = nonanticipative_return(
        kernels, np.asarray(traj.rewards), np.asarray(traj.mu[:, 0]), nodes, np.asarray(batch.weight), game.gamma
    )
    assert told == pytest.approx(per_path, abs=1e-9)


def test_oracle_refuses_sampled_noise():
    game = mfax.make("sis", horizon=2)
    batch = mfax.dynamics.sample_noise(game, jax.random.key(0), 3)
    with pytest.raises(ValueError, match="enumerated"):
        nonanticipative_best_response_return(game, FixedAction(2, 2, 1), batch)


@pytest.mark.parametrize(("name", "exact"), [("sis", False), ("beach_bar", True)])
def test_eval_says_whether_information_consistent_is_exact(name, exact):
    args = ["eval", "--game", name, "--set", "horizon=2", "--json"]
    if name == "beach_bar":
        args += ["--set", "num_states=5"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "per path: the deviator knows the whole noise path in advance" in out.output
    assert (f"exact for {name}" in out.output) == exact
    assert (f"for {name} a lower bound" in out.output) == (not exact)
    assert json.loads(out.output.strip().splitlines()[-1])["exploitability_info_exact"] is exact
