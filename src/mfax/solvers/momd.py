"""M-OMD: deep Munchausen online mirror descent on sampled populations.

A model-free baseline (``docs/algorithms/momd.md``; Lauriere et al. 2022). Online mirror descent
accumulates Q-functions, ``q_{k+1} = q_k + Q^{pi_k, mu_k}``, ``pi_{k+1} = softmax(q_{k+1} / tau)``;
the Munchausen trick folds the accumulation into one Q-network by adding the scaled log
of the previous policy to the reward, so the population policy is ``softmax(Q / tau)``
of the network itself:

.. math::

    y = r + \\alpha\\, \\max(\\tau \\ln \\pi_k(a|s,o), \\ell_0)
        + \\gamma (1 - d) \\sum_{a'} \\bar\\pi(a'|s',o') \\big[\\bar Q(s',o',a') - \\tau \\ln \\bar\\pi(a'|s',o')\\big]

with ``pi_k = softmax(Q_k / tau)`` the policy that collected iteration ``k``'s data
(frozen during the iteration), ``bar Q`` a target network that starts each iteration as
``Q_k`` and is synchronised with the online one every ``target_every`` of the
iteration's steps, and ``bar pi = softmax(bar Q / tau)``.

One iteration: the population policy ``pi_k`` plays one episode in each of ``E`` sampled
populations of ``N`` agents (own noise path each); the ``E T N`` transitions
``(s, o, a, r, s', o', done)`` go into a replay buffer holding the last
``buffer_iterations`` iterations; then ``updates`` Adam steps on minibatches drawn from
it. The Q-network is a :class:`~mfax.policies.networks.NetworkPolicy` (memoryless: it
sees the state and the public observation) whose raw head gives ``Q / scale``, with
``scale`` a fixed return scale (the std of the sampled returns of iteration 0, whose
policy is uniform: ``scale`` is 0 until then), so targets are O(1) in every game;
``tau`` is in the game's reward units. The restated mean-field policy is the same
network with its last layer multiplied by ``scale / tau``: exactly ``softmax(Q / tau)``,
scored by the exact exploitability.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from mfax.games.base import Game, check
from mfax.params import param
from mfax.policies.networks import NetworkParams, NetworkPolicy, make_network
from mfax.solvers.base import Metrics, Setting, Solver, SolverSpec, register_solver
from mfax.solvers.optim import OptimParams, descend, learning_rate, optimizer, split_trainable
from mfax.solvers.sampled import (
    Rollout,
    SampledParams,
    agent_head,
    agent_log_probs,
    collect,
    discounted_returns,
    update_scale,
)


class MOMDParams(SampledParams, NetworkParams, OptimParams):
    """Hyper-parameters of M-OMD (``--hp key=value``): its own, the sampled populations',
    the Q-network's sizes (the policy architecture, memoryless, one output per action) and
    the optimiser's."""

    batch_size: int = param(512, "transitions per gradient step, drawn from the replay buffer")
    buffer_iterations: int = param(2, "replay buffer capacity, in iterations of transitions")
    tau: float = param(
        5.0, "entropy temperature, reward units (published sweep: 0.05, 5, 10)", search=(0.05, 10.0, "log")
    )
    alpha: float = param(0.99, "Munchausen coefficient (published sweep: 0.9, 0.95, 0.99)", search=(0.9, 0.99))
    target_every: int = param(
        10, "gradient steps between target-network synchronisations within an iteration (each starts from Q_k)"
    )
    bonus_floor: float = param(-1.0, "lower clip of tau * log pi in the bonus, in return-scale units")

    def __check_init__(self):
        for name in ("batch_size", "buffer_iterations", "target_every"):
            check(getattr(self, name) >= 1, f"M-OMD hyper-parameter {name} must be >= 1, got {getattr(self, name)}")
        check(self.tau > 0.0, f"tau must be > 0, got {self.tau}")
        check(0.0 <= self.alpha <= 1.0, f"alpha must lie in [0, 1], got {self.alpha}")
        check(
            self.bonus_floor < 0.0,
            f"bonus_floor must be < 0 (it clips tau * log pi <= 0 from below: a floor >= 0 switches the "
            f"Munchausen term off, which alpha=0 says), got {self.bonus_floor}",
        )


class Transitions(NamedTuple):
    """A flat batch (or buffer) of agent transitions, leading axis ``B``; rewards are in
    return-scale units."""

    state: Int[Array, " B"]
    obs: Float[Array, "B d"]
    action: Int[Array, " B"]
    reward: Float[Array, " B"]
    next_state: Int[Array, " B"]
    next_obs: Float[Array, "B d"]
    done: Float[Array, " B"]


def transitions(roll: Rollout, scale) -> Transitions:
    """The ``E T N`` transitions of a rollout, flattened."""
    num_envs, horizon, num_agents = roll.actions.shape
    d = roll.obs.shape[-1]

    def per_agent(x):
        return x.reshape(-1)

    def obs_per_agent(o):
        return jnp.broadcast_to(o[:, :, None, :], (num_envs, horizon, num_agents, d)).reshape(-1, d)

    done = jnp.broadcast_to((jnp.arange(horizon) == horizon - 1)[None, :, None], roll.actions.shape)
    return Transitions(
        state=per_agent(roll.agents[:, :-1]),
        obs=obs_per_agent(roll.obs[:, :-1]),
        action=per_agent(roll.actions),
        reward=per_agent(roll.rewards / scale),
        next_state=per_agent(roll.agents[:, 1:]),
        next_obs=obs_per_agent(roll.obs[:, 1:]),
        done=per_agent(done).astype(roll.rewards.dtype),
    )


def q_values(net: NetworkPolicy, obs: Float[Array, "B d"], states: Int[Array, " B"]) -> Float[Array, "B m"]:
    """Raw Q-head outputs (``Q / scale``) of each transition's state and observation."""
    g = net.aggregate_sequence(obs)  # memoryless: one embedding per row
    return agent_head(net, g, states[:, None])[:, 0]


def policy_log_probs(policy: NetworkPolicy, obs: Float[Array, "B d"], states: Int[Array, " B"]) -> Float[Array, "B m"]:
    """Log-probabilities of a (memoryless) agent policy at each transition's state and
    observation: :func:`~mfax.solvers.sampled.agent_log_probs`, the log of the rows the
    agents were sampled from."""
    return agent_log_probs(policy, policy.aggregate_sequence(obs), states[:, None])[:, 0]


def munchausen_target(
    batch: Transitions, logpi_prev, q_target, *, gamma: float, tau: float, alpha: float, floor: float
) -> Float[Array, " B"]:
    """Regression targets (see module docstring); ``logpi_prev (B, m)`` the log-probabilities
    of the collecting policy ``pi_k`` at ``(s, o)`` (those the agents were sampled with),
    ``q_target (B, m)`` at ``(s', o')`` from the target network, in the same units as ``tau``
    and ``floor``."""
    bonus = jnp.clip(tau * jnp.take_along_axis(logpi_prev, batch.action[:, None], -1)[:, 0], floor, 0.0)
    logpi_next = jax.nn.log_softmax(q_target / tau, axis=-1)
    soft_value = jnp.sum(jnp.exp(logpi_next) * (q_target - tau * logpi_next), axis=-1)
    return batch.reward + alpha * bonus + gamma * (1.0 - batch.done) * soft_value


def softmax_q_policy(qnet: NetworkPolicy, factor) -> NetworkPolicy:
    """The mean-field policy ``softmax(factor * y)`` of a Q-network with raw head ``y``:
    the same module with its last layer scaled (``factor = scale / tau``)."""
    return eqx.tree_at(lambda n: (n.out.weight, n.out.bias), qnet, (qnet.out.weight * factor, qnet.out.bias * factor))


class MOMDState(NamedTuple):
    """One run's training state (vmapped over runs; checkpointed leaf by leaf). The buffer
    fill position follows from ``iteration``."""

    q: eqx.Module  # trainable leaves of the Q-network
    opt_state: optax.OptState
    buffer: Transitions
    iteration: Array  # int32 scalar
    key: PRNGKeyArray
    lr: Array
    scale: Array


def momd_iteration(
    game: Game, static, hp: MOMDParams, state: MOMDState, *, iterations: int
) -> tuple[MOMDState, Metrics]:
    """Collect one episode per population with ``softmax(Q_k / tau)``, store it, then
    ``hp.updates`` Munchausen Q-learning steps (pure)."""
    key = jax.random.fold_in(state.key, state.iteration)
    k_collect, k_sample = jax.random.split(key)
    # pi_k: the policy the agents act with, and whose log-probabilities the Munchausen term
    # uses (uniform at iteration 0, when the return scale is not set yet)
    collecting = softmax_q_policy(eqx.combine(state.q, static), state.scale / hp.tau)
    roll = collect(game, collecting, k_collect, hp.num_envs, hp.num_agents)
    scale = update_scale(state.scale, state.iteration, roll.rewards, game.gamma)
    tau_n = hp.tau / scale  # tau in return-scale units
    floor_n = hp.bonus_floor
    new = transitions(roll, scale)
    per_iter = new.action.shape[0]
    capacity = state.buffer.action.shape[0]
    slot = state.iteration % (capacity // per_iter)
    buffer = jax.tree.map(
        lambda b, x: jax.lax.dynamic_update_slice_in_dim(b, x, slot * per_iter, axis=0), state.buffer, new
    )
    size = jnp.minimum(state.iteration + 1, capacity // per_iter) * per_iter
    lr = learning_rate(state.lr, state.iteration, iterations, hp.final_lr_fraction)
    opt = optimizer(hp)

    def grad_step(carry, k):
        params, target, opt_state, step = carry
        idx = jax.random.randint(jax.random.fold_in(k_sample, step), (hp.batch_size,), 0, size)
        batch = jax.tree.map(lambda x: x[idx], buffer)
        y = munchausen_target(
            batch,
            jax.lax.stop_gradient(policy_log_probs(collecting, batch.obs, batch.state)),
            jax.lax.stop_gradient(q_values(eqx.combine(target, static), batch.next_obs, batch.next_state)),
            gamma=game.gamma,
            tau=tau_n,
            alpha=hp.alpha,
            floor=floor_n,
        )

        def loss_fn(p):
            q = q_values(eqx.combine(p, static), batch.obs, batch.state)
            q_a = jnp.take_along_axis(q, batch.action[:, None], -1)[:, 0]
            return jnp.mean(optax.huber_loss(q_a, y))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = descend(params, updates, lr)
        step = step + 1
        target = jax.tree.map(lambda t, p: jnp.where(step % hp.target_every == 0, p, t), target, params)
        return (params, target, opt_state, step), (optax.tree.norm(grads), loss)

    (params, _, opt_state, _), (gnorm, loss) = jax.lax.scan(
        grad_step, (state.q, state.q, state.opt_state, jnp.int32(0)), None, length=hp.updates
    )
    ret = jnp.mean(discounted_returns(roll.rewards, game.gamma))
    finite = (
        jnp.all(jnp.isfinite(gnorm))
        & jnp.isfinite(ret)
        & jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
    )
    out = state._replace(q=params, opt_state=opt_state, buffer=buffer, iteration=state.iteration + 1, scale=scale)
    nan = jnp.full((), jnp.nan, ret.dtype)
    return out, Metrics(ret, nan, nan, gnorm.mean(), lr, loss.mean(), finite)


def make_qnet(game: Game, hp: MOMDParams, key: PRNGKeyArray) -> NetworkPolicy:
    """The Q-network: the policy architecture, memoryless, one output per action."""
    return make_network(game, key, hp, recurrent=False, head="discrete")


class MOMDSolver(Solver):
    """M-OMD: one iteration is :func:`momd_iteration`. Model-free: every population draws
    its own noise path, so the enumerated noise of the setting is not used."""

    game: Game
    hp: MOMDParams = eqx.field(static=True)
    iterations: int = eqx.field(static=True)
    static: Any  # the Q-network without its trainable arrays

    exact_program = False
    trace_name = "momd_chunk"

    def init(self, key: PRNGKeyArray, lr: float) -> MOMDState:
        hp = self.hp
        capacity = hp.buffer_iterations * hp.num_envs * self.game.horizon * hp.num_agents
        qnet = make_qnet(self.game, hp, jax.random.fold_in(key, 0))
        params = split_trainable(qnet)[0]
        obs_dim = qnet.obs_encoder.in_features
        dtype = jnp.zeros(()).dtype
        buffer = Transitions(
            jnp.zeros(capacity, jnp.int32),
            jnp.zeros((capacity, obs_dim), dtype),
            jnp.zeros(capacity, jnp.int32),
            jnp.zeros(capacity, dtype),
            jnp.zeros(capacity, jnp.int32),
            jnp.zeros((capacity, obs_dim), dtype),
            jnp.zeros(capacity, dtype),
        )
        return MOMDState(
            params,
            optimizer(hp).init(params),
            buffer,
            jnp.int32(0),
            jax.random.fold_in(key, 1),
            jnp.asarray(lr, dtype=float),
            jnp.zeros(()),  # 0 until iteration 0 sets it: the initial policy is uniform
        )

    def step(self, state: MOMDState) -> tuple[MOMDState, Metrics]:
        return momd_iteration(self.game, self.static, self.hp, state, iterations=self.iterations)

    def policy(self, state: MOMDState) -> NetworkPolicy:
        """The population policy ``softmax(Q / tau)`` as a mean-field policy."""
        return softmax_q_policy(eqx.combine(state.q, self.static), state.scale / self.hp.tau)


def build(game: Game, hp: MOMDParams, setting: Setting) -> MOMDSolver:
    static = split_trainable(make_qnet(game, hp, jax.random.PRNGKey(0)))[1]
    return MOMDSolver(game, hp, setting.iterations, static)


register_solver(
    SolverSpec(
        "momd",
        "deep Munchausen online mirror descent on sampled populations, pi = softmax(Q(s, o_t) / tau)",
        build,
        MOMDParams,
    )
)
