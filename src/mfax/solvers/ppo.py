"""IPPO and RIPPO: PPO on sampled populations, one implementation, two policy modules.

Model-free baselines (``docs/algorithms/ippo.md``): ``E`` parallel populations of ``N`` agents each
(:mod:`mfax.solvers.sampled`) learn from sampled rewards only. The agents share one
policy network, a :class:`~mfax.policies.networks.NetworkPolicy`: agent ``i`` in state
``s_i`` acts with row ``s_i`` of the network's output for its population's public
observation (IPPO, memoryless) or public-observation history (RIPPO, a GRU fed only
public observations). The learned policy *is* therefore a mean-field policy and is
scored by the same exact exploitability as SPG and RSPG, on the push-forward game.

One iteration: one episode in each population, generalised advantage estimates from a
separate critic ``V(s, h_t, t)`` (kept out of the scored policy; it may see the time,
the policy does not), then ``updates`` Adam steps on the clipped PPO objective with an
entropy bonus, ``minibatches`` groups of whole population sequences per pass
(``updates / minibatches`` epochs):

.. math::

    \\delta_t = r_t + \\gamma V_{t+1} - V_t, \\qquad
    A_t = \\sum_{k \\ge 0} (\\gamma \\lambda)^k \\delta_{t+k}, \\qquad V_T = 0

    L = -\\mathbb{E}\\big[\\min(\\rho A, \\operatorname{clip}(\\rho, 1-\\epsilon, 1+\\epsilon) A)\\big]
        + c_v \\tfrac12 \\mathbb{E}[(V - \\hat R)^2] - c_e \\mathbb{E}[\\mathcal{H}(\\pi(\\cdot|s))]

with ``rho = pi(a|s,h) / pi_old(a|s,h)``. Values are learned in units of a fixed return
scale (the std of the initial policy's sampled returns), so the same hyper-parameters
fit every game. The whole chunk of iterations (collection, GAE and every update) is one
compiled ``lax.scan``, vmapped over runs (seeds x learning rates).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from mfax.games.base import Game, check
from mfax.params import override, param
from mfax.policies.heads import per_state_mlp
from mfax.policies.networks import NetworkPolicy, PolicyParams, make_network
from mfax.solvers.base import Metrics, Setting, Solver, register_variants
from mfax.solvers.optim import OptimParams, descend, learning_rate, optimizer, split_trainable
from mfax.solvers.sampled import (
    Rollout,
    SampledParams,
    agent_log_probs,
    collect,
    discounted_returns,
    env_minibatches,
    update_scale,
)


class PPOParams(SampledParams, PolicyParams, OptimParams):
    """Hyper-parameters of IPPO / RIPPO (``--hp key=value``): PPO's own, the sampled
    populations', the networks' (actor and critic share the sizes) and the optimiser's."""

    minibatches: int = param(2, "groups of whole population sequences per pass; epochs = updates / minibatches")
    # the optimiser's defaults of the published PPO baselines
    max_grad_norm: float = override(OptimParams, "max_grad_norm", 0.5)
    adam_eps: float = override(OptimParams, "adam_eps", 1e-5)
    # the loss
    clip_eps: float = param(0.2, "PPO ratio clipping epsilon")
    gae_lambda: float = param(0.95, "GAE lambda")
    entropy_coef: float = param(
        0.01, "entropy bonus weight (published sweep: 0.001, 0.01, 0.1)", search=(1e-3, 1e-1, "log")
    )
    value_coef: float = param(0.5, "value-loss weight")

    def __check_init__(self):
        check(self.minibatches >= 1, f"PPO hyper-parameter minibatches must be >= 1, got {self.minibatches}")
        # (counts below 1 are the sampled populations' check, which runs after this one)
        check(
            min(self.num_envs, self.updates) < 1
            or not (self.num_envs % self.minibatches or self.updates % self.minibatches),
            f"num_envs ({self.num_envs}) and updates ({self.updates}) must be multiples of "
            f"minibatches ({self.minibatches})",
        )
        check(0.0 < self.clip_eps < 1.0, f"clip_eps must lie in (0, 1), got {self.clip_eps}")
        check(0.0 <= self.gae_lambda <= 1.0, f"gae_lambda must lie in [0, 1], got {self.gae_lambda}")
        for name in ("entropy_coef", "value_coef"):
            check(getattr(self, name) >= 0.0, f"{name} must be >= 0, got {getattr(self, name)}")


# -- loss pieces (pure) ----------------------------------------------------------------


def gae(
    rewards: Float[Array, "*b T N"], values: Float[Array, "*b T N"], gamma: float, lam: float
) -> tuple[Float[Array, "*b T N"], Float[Array, "*b T N"]]:
    """Generalised advantage estimates and value targets of finite episodes (``V_T = 0``).

    Returns ``(advantages, advantages + values)``; the time axis is ``-2``.
    """
    r = jnp.moveaxis(rewards, -2, 0)
    v = jnp.moveaxis(values, -2, 0)
    v_next = jnp.concatenate([v[1:], jnp.zeros_like(v[:1])])
    delta = r + gamma * v_next - v

    def body(running, d):
        running = d + gamma * lam * running
        return running, running

    _, adv = jax.lax.scan(body, jnp.zeros_like(delta[0]), delta, reverse=True)
    adv = jnp.moveaxis(adv, 0, -2)
    return adv, adv + values


def clipped_surrogate(logp: Array, old_logp: Array, adv: Array, clip_eps: float) -> tuple[Array, Array]:
    """PPO policy loss ``-E[min(rho A, clip(rho, 1-eps, 1+eps) A)]`` and the clipped fraction.

    ``log rho`` is capped at +-20 before the exponential: a near-deterministic policy can
    move an action's log-probability by hundreds in one update, and ``exp`` would give
    ``inf * A`` (NaN gradients); past the cap the gradient is zero, as it already is for
    a clipped ratio.
    """
    ratio = jnp.exp(jnp.clip(logp - old_logp, -20.0, 20.0))
    loss = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv))
    return loss, jnp.mean(jnp.abs(ratio - 1.0) > clip_eps)


def normalise(adv: Array) -> Array:
    return (adv - adv.mean()) / (adv.std() + 1e-8)


def entropy(log_probs: Float[Array, "... m"]) -> Array:
    """Mean entropy of the rows of ``log_probs``."""
    return -jnp.mean(jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1))


# -- critic ----------------------------------------------------------------------------


class Critic(eqx.Module):
    """State-value network ``V(s, h_t, t)`` in return-scale units, never scored.

    ``h_t`` encodes the public observation (memoryless) or its history (GRU, RIPPO);
    the time ``t / T`` is an extra input (the critic may see it; the policy may not).
    """

    obs_encoder: eqx.nn.Linear
    gru: eqx.nn.GRUCell | None
    state_encoder: eqx.nn.Embedding | eqx.nn.Linear
    first: eqx.nn.Linear
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear
    game: Game = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)
    state_input: str = eqx.field(static=True)

    def __init__(self, game: Game, key: PRNGKeyArray, *, recurrent: bool, obs_dim: int, net, state_input: str):
        keys = jax.random.split(key, 6)
        self.game, self.recurrent, self.state_input = game, recurrent, state_input
        self.obs_encoder = eqx.nn.Linear(obs_dim + 1, net.obs_embed, key=keys[0])
        self.gru = eqx.nn.GRUCell(net.obs_embed, net.gru_hidden, key=keys[1]) if recurrent else None
        agg = net.gru_hidden if recurrent else net.obs_embed
        if state_input == "embedding":
            self.state_encoder = eqx.nn.Embedding(game.n_states, net.state_embed, key=keys[2])
        else:
            self.state_encoder = eqx.nn.Linear(game.state_features().shape[1], net.state_embed, key=keys[2])
        self.first = eqx.nn.Linear(net.state_embed + agg, net.mlp_width, key=keys[3])
        self.hidden = eqx.nn.Linear(net.mlp_width, net.mlp_width, key=keys[4])
        self.out = eqx.nn.Linear(net.mlp_width, 1, key=keys[5])

    def sequence(self, obs: Float[Array, "T d"]) -> Float[Array, "T h"]:
        """Observation (history) embeddings for ``t = 0..T-1`` of one population."""
        horizon = obs.shape[0]
        time = jnp.arange(horizon, dtype=obs.dtype)[:, None] / horizon
        e = jax.nn.relu(jax.vmap(self.obs_encoder)(jnp.concatenate([obs, time], -1)))
        if not self.recurrent:
            return e

        def body(h, x):
            h = self.gru(x, h)
            return h, h

        _, hs = jax.lax.scan(body, jnp.zeros(self.gru.hidden_size, e.dtype), e)
        return hs

    def values(self, h: Float[Array, "*b h"], states: Int[Array, "*b N"]) -> Float[Array, "*b N"]:
        if self.state_input == "embedding":
            x = self.state_encoder.weight[states]
        else:
            feats = jax.vmap(self.state_encoder)(jax.lax.stop_gradient(self.game.state_features()))
            x = feats[states]
        w = self.first.weight
        s_dim = x.shape[-1]
        pre = x @ w[:, :s_dim].T + (h @ w[:, s_dim:].T + self.first.bias)[..., None, :]
        return per_state_mlp(pre, self.hidden, self.out)[..., 0]


# -- training state and one iteration --------------------------------------------------


class PPOState(NamedTuple):
    """One run's training state (vmapped over runs; checkpointed leaf by leaf)."""

    actor: eqx.Module  # trainable leaves of the NetworkPolicy
    critic: eqx.Module  # trainable leaves of the Critic
    opt_state: optax.OptState
    iteration: Array  # int32 scalar
    key: PRNGKeyArray
    lr: Array  # base learning rate
    scale: Array  # fixed return scale of the value targets (set at iteration 0)


def ppo_loss(actor: NetworkPolicy, critic: Critic, batch: Rollout, old_logp, adv, targets, hp: PPOParams):
    """Total PPO loss of a minibatch of whole population sequences (leading axis ``E_mb``)."""
    g = jax.vmap(actor.aggregate_sequence)(batch.obs[:, :-1])  # (E_mb, T, gd)
    states = batch.agents[:, :-1]
    logp_all = agent_log_probs(actor, g, states)  # (E_mb, T, N, m)
    logp = jnp.take_along_axis(logp_all, batch.actions[..., None], axis=-1)[..., 0]
    pg_loss, clip_frac = clipped_surrogate(logp, old_logp, normalise(adv), hp.clip_eps)
    v = critic.values(jax.vmap(critic.sequence)(batch.obs[:, :-1]), states)
    v_loss = 0.5 * jnp.mean((v - targets) ** 2)
    ent = entropy(logp_all)
    total = pg_loss + hp.value_coef * v_loss - hp.entropy_coef * ent
    return total, (ent, clip_frac, v_loss)


def ppo_iteration(
    game: Game, actor_static, critic_static, hp: PPOParams, state: PPOState, *, iterations: int
) -> tuple[PPOState, Metrics]:
    """Collect one episode per population, then ``hp.updates`` PPO steps (pure)."""
    key = jax.random.fold_in(state.key, state.iteration)
    k_collect, k_perm = jax.random.split(key)
    actor = eqx.combine(state.actor, actor_static)
    critic = eqx.combine(state.critic, critic_static)
    roll = collect(game, actor, k_collect, hp.num_envs, hp.num_agents)
    scale = update_scale(state.scale, state.iteration, roll.rewards, game.gamma)
    roll = roll._replace(rewards=roll.rewards / scale)  # value units
    states = roll.agents[:, :-1]
    g = jax.vmap(actor.aggregate_sequence)(roll.obs[:, :-1])
    old_logp = jnp.take_along_axis(agent_log_probs(actor, g, states), roll.actions[..., None], axis=-1)[..., 0]
    values = critic.values(jax.vmap(critic.sequence)(roll.obs[:, :-1]), states)
    adv, targets = gae(roll.rewards, values, game.gamma, hp.gae_lambda)
    lr = learning_rate(state.lr, state.iteration, iterations, hp.final_lr_fraction)
    opt = optimizer(hp)
    epochs = hp.updates // hp.minibatches

    def grad_step(carry, idx):
        params, opt_state = carry
        take = lambda x: x[idx]  # noqa: E731
        batch = jax.tree.map(take, roll)

        def loss_fn(p):
            return ppo_loss(
                eqx.combine(p[0], actor_static),
                eqx.combine(p[1], critic_static),
                batch,
                take(old_logp),
                take(adv),
                take(targets),
                hp,
            )

        (total, _aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = descend(params, updates, lr)
        return (params, opt_state), (optax.tree.norm(grads), total)

    def epoch(carry, k):
        return jax.lax.scan(grad_step, carry, env_minibatches(k, hp.num_envs, hp.minibatches))

    (params, opt_state), (gnorm, loss) = jax.lax.scan(
        epoch, ((state.actor, state.critic), state.opt_state), jax.random.split(k_perm, epochs)
    )
    ret = jnp.mean(discounted_returns(roll.rewards, game.gamma)) * scale
    finite = (
        jnp.all(jnp.isfinite(gnorm))
        & jnp.isfinite(ret)
        & jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
    )
    new = state._replace(
        actor=params[0], critic=params[1], opt_state=opt_state, iteration=state.iteration + 1, scale=scale
    )
    nan = jnp.full((), jnp.nan, ret.dtype)
    return new, Metrics(ret, nan, nan, gnorm.mean(), lr, loss.mean(), finite)


# -- the solver behind the training driver ----------------------------------------------


class PPOSolver(Solver):
    """IPPO (``recurrent=False``) / RIPPO (``True``): one iteration is
    :func:`ppo_iteration`. Model-free: every population draws its own noise path, so the
    enumerated noise of the setting is not used."""

    game: Game
    hp: PPOParams = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)
    iterations: int = eqx.field(static=True)
    actor_static: Any
    critic_static: Any

    exact_program = False  # PPO runs faster with XLA's defaults (mfax.compiling)
    trace_name = "ppo_chunk"

    def init(self, key: PRNGKeyArray, lr: float) -> PPOState:
        actor, critic = networks(self.game, self.hp, jax.random.fold_in(key, 0), self.recurrent)
        params = (split_trainable(actor)[0], split_trainable(critic)[0])
        return PPOState(
            params[0],
            params[1],
            optimizer(self.hp).init(params),
            jnp.int32(0),
            jax.random.fold_in(key, 1),
            jnp.asarray(lr, dtype=float),
            jnp.ones(()),  # set at iteration 0 (update_scale)
        )

    def step(self, state: PPOState) -> tuple[PPOState, Metrics]:
        return ppo_iteration(
            self.game, self.actor_static, self.critic_static, self.hp, state, iterations=self.iterations
        )

    def policy(self, state: PPOState) -> NetworkPolicy:
        """The agents' policy, which is the mean-field policy (the same module)."""
        return eqx.combine(state.actor, self.actor_static)


def networks(game: Game, hp: PPOParams, key: PRNGKeyArray, recurrent: bool) -> tuple[NetworkPolicy, Critic]:
    """The actor (the scored policy) and the critic, of the sizes ``hp``."""
    actor = make_network(game, jax.random.fold_in(key, 0), hp, recurrent=recurrent, head=hp.head)
    critic = Critic(
        game,
        jax.random.fold_in(key, 1),
        recurrent=recurrent,
        obs_dim=actor.obs_encoder.in_features,
        net=hp,
        state_input=hp.state_input,
    )
    return actor, critic


def build(game: Game, hp: PPOParams, setting: Setting, *, recurrent: bool) -> PPOSolver:
    actor, critic = networks(game, hp, jax.random.PRNGKey(0), recurrent)
    return PPOSolver(game, hp, recurrent, setting.iterations, split_trainable(actor)[1], split_trainable(critic)[1])


register_variants(
    build,
    {
        "ippo": (
            "independent PPO on sampled populations, memoryless policy pi(a | s, o_t)",
            PPOParams,
            {"recurrent": False},
        ),
        "rippo": (
            "recurrent IPPO on sampled populations, pi(a | s, h_t), h_t = GRU over public observations",
            PPOParams,
            {"recurrent": True},
        ),
    },
)
