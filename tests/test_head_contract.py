"""The contract between a policy head's sampling and its log-probabilities, for every head
(discrete, Beta) and every solver that samples agents (IPPO, RIPPO, M-OMD).

For each combination, agents act through the solver's own collection path
(:func:`mfax.solvers.sampled.collect`), and the log-probabilities the solver's loss uses
(PPO's ratio and entropy: ``agent_log_probs``; M-OMD's Munchausen term:
``policy_log_probs`` of the collecting policy) are checked against

* the empirical action frequencies over many draws: for every action, the count equals
  the sum over draws of ``exp(log_prob)`` within 4 standard errors (the draws are
  independent Bernoulli trials with per-draw probabilities, so the variance is
  ``sum p (1 - p)``);
* the restated mean-field policy the solver is scored with: its rows at the agents'
  states, stepped through ``__call__``, equal ``exp(log_prob)``.

The networks are pushed far from their near-uniform initialisation (last layer x 300),
so that a mismatch between two parametrisations cannot hide behind a flat density.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import slow
from mfax.run.config import TrainConfig, resolve
from mfax.run.train import Trainer
from mfax.solvers.momd import policy_log_probs, softmax_q_policy, transitions
from mfax.solvers.sampled import agent_log_probs, collect

SMALL = dict(obs_embed=16, gru_hidden=16, state_embed=8, aggregate_embed=8, mlp_width=32)
GAMES = {
    # discrete head: beach bar's 3 moves; Beta head: the macro economy's 20 savings fractions
    "discrete": ("beach_bar", {"num_states": 21, "horizon": 8}),
    "beta": ("macro", {"num_wealth": 12, "num_income": 3, "horizon": 6}),
}
CASES = [
    slow("ippo", "discrete"),
    ("ippo", "beta"),  # the beta head's sampling; without the recurrent encoder, cheaper to compile
    slow("rippo", "discrete"),
    slow("rippo", "beta"),
    slow("momd", "discrete"),  # M-OMD's Q-network always has a discrete head (one output per action)
]


def _one_run(net):
    """A network's trainable leaves as the solver state's (runs, ...) arrays, one run."""
    return jax.tree.map(lambda x: x[None], eqx.partition(net, eqx.is_inexact_array)[0])


def _setup(algo: str, head: str):
    name, params = GAMES[head]
    config = resolve(TrainConfig(game=name, params=params, algo=algo, hparams=SMALL, seeds=1))
    trainer = Trainer.build(config)
    states = trainer.initial_states()
    if algo == "momd":
        # a set return scale, so softmax(Q / tau) is not the iteration-0 uniform policy
        states = states._replace(scale=jnp.full_like(states.scale, 20.0 * trainer.solver.hp.tau))
        q = eqx.combine(jax.tree.map(lambda x: x[0], states.q), trainer.solver.static)
        q = eqx.tree_at(lambda p: p.out.weight, q, q.out.weight * 300.0)
        agents_policy = softmax_q_policy(
            q, states.scale[0] / trainer.solver.hp.tau
        )  # what momd_iteration collects with
        states = states._replace(q=jax.tree.map(lambda x: x[None], eqx.partition(q, eqx.is_inexact_array)[0]))
    else:
        actor = trainer.policy(states, 0)
        agents_policy = eqx.tree_at(lambda p: p.out.weight, actor, actor.out.weight * 300.0)
        states = states._replace(
            actor=jax.tree.map(lambda x: x[None], eqx.partition(agents_policy, eqx.is_inexact_array)[0])
        )
    assert agents_policy.head == ("discrete" if algo == "momd" else head)
    return trainer, states, agents_policy


def _solver_log_probs(algo: str, policy, roll):
    """(E, T, N, m) log-probabilities of the solver's loss at every draw of ``roll``."""
    if algo == "momd":
        batch = transitions(roll, 1.0)  # rows ordered (E, T, N)
        logp = policy_log_probs(policy, batch.obs, batch.state)
        return logp.reshape(*roll.actions.shape, -1)
    g = jax.vmap(policy.aggregate_sequence)(roll.obs[:, :-1])
    return agent_log_probs(policy, g, roll.agents[:, :-1])


def _distance_from_uniform(probs) -> float:
    """Mean total-variation distance of the rows from the uniform distribution."""
    return float(0.5 * np.abs(probs - 1.0 / probs.shape[-1]).sum(-1).mean())


@pytest.mark.parametrize(("algo", "head"), CASES)
def test_agents_sample_from_the_distribution_the_loss_and_the_evaluation_use(algo, head):
    trainer, states, policy = _setup(algo, head)
    game = trainer.game
    restated = trainer.policy(states, 0)  # what the driver scores exactly

    @jax.jit
    def run(policy, restated):
        roll = collect(game, policy, jax.random.PRNGKey(11), 8, 512)
        logp = _solver_log_probs(algo, policy, roll)

        def rows(obs, agents):  # the restated policy stepped through __call__, one population
            def body(carry, t):
                carry, probs = restated(carry, obs[t], t)
                return carry, probs[agents[t]]

            return jax.lax.scan(body, restated.initial_carry(), jnp.arange(game.horizon, dtype=jnp.int32))[1]

        return roll.actions, logp, jax.vmap(rows)(roll.obs, roll.agents)

    actions, logp, rows = run(policy, restated)
    probs = np.exp(np.asarray(logp, dtype=np.float64)).reshape(-1, logp.shape[-1])
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert _distance_from_uniform(probs) > 0.1  # far from a uniform policy

    # 1. the empirical action frequencies match exp(log_prob) within 4 standard errors
    counts = np.bincount(np.asarray(actions).reshape(-1), minlength=probs.shape[1])
    expected = probs.sum(0)
    stderr = np.sqrt((probs * (1.0 - probs)).sum(0))
    z = (counts - expected) / np.maximum(stderr, 1e-12)
    assert np.all(np.abs(z) <= 4.0), {"counts": counts, "expected": expected.round(1), "z": z.round(1)}

    # 2. the restated mean-field policy's rows are the agents' probabilities
    np.testing.assert_allclose(np.exp(logp), rows, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("algo", ["spg", "ippo"])
def test_beta_head_on_actions_outside_the_unit_interval_is_one_line(tmp_path, algo):
    """The Beta head is a density on the action values: beach bar's moves -5..5 made
    every probability NaN (a run stopped at iteration 1 with a 'non-finite gradient'
    and kept a NaN checkpoint). Refused before anything is written."""
    from typer.testing import CliRunner

    from mfax.run.cli import app

    out = tmp_path / "run"
    args = ["train", "--game", "beach_bar", "--set", "num_states=10", "--set", "horizon=4", "--algo", algo]
    result = CliRunner().invoke(app, [*args, "--hp", "head=beta", "--out", str(out), "--no-progress", "--no-plots"])
    assert result.exit_code == 2, result.output
    assert "beta head is a density on action values strictly inside (0, 1)" in result.output
    assert "from -5 to 5" in result.output and not out.exists()
