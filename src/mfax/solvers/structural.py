"""Structural policy gradient: SPG (memoryless) and RSPG (history-aware), one implementation.

Hybrid structural method (``docs/algorithms/spg.md``): the expectation over individuals is exact
(the push-forward and the backward recursion use the known kernel); only the common
noise is sampled, or enumerated when its support is finite. The mean-field path and
the observations are stop-gradient, so the gradient is that of one agent deviating
against a fixed population:

.. math::

    J(\\theta) = \\sum_{i} w_i \\sum_s \\mu^i_0(s) V^{i,\\theta}_0(s), \\qquad
    \\frac{\\partial J}{\\partial \\pi^i_t(a|s)} = w_i\\, \\gamma^t \\mu^i_t(s)\\, Q^i_t(s, a)

The second identity holds because a deviator who follows the population's own policy
has exactly the population's state distribution ``mu_t``. So one iteration is: a
forward rollout that records ``pi_t`` and keeps the policy's linearisation
(``jax.vjp``), a backward recursion for ``Q`` (no autodiff), and one vector-Jacobian
product with the cotangent ``-w gamma^t mu_t Q_t``. The per-state network runs once
forward and once backward per iteration; :func:`objective` is the plain autodiff
formulation of the same gradient (used to test it and for learned best responses).

Training state and update are pure functions (``init_state``, ``train_step``); a whole
chunk of iterations is one ``lax.scan``, and several seeds and learning rates are one
``vmap`` inside the same compiled program (:func:`make_chunk`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Float, PRNGKeyArray

from mfax import compiling
from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import rollout_batch
from mfax.evaluation.values import best_response_value, policy_value
from mfax.games.base import Game, Noise, NoiseSupport
from mfax.policies.networks import NetworkPolicy
from mfax.sharding import PATHS, map_runs, place_runs, runs_vmapped, shard_paths, to_host, train_mesh
from mfax.solvers.base import SolverSpec, register_solver
from mfax.tracing import count_trace

CLIP_NORM = 1.0
FINAL_LR_FRACTION = 0.1


class StepMetrics(NamedTuple):
    """Per-iteration training metrics (on the iteration's own noise paths).

    ``policy_return`` and ``exploitability`` are the weighted mean over paths of
    ``sum_s mu_0 V^pi_0`` and of ``sum_s mu_0 (V*_0 - V^pi_0)`` (per-path best response);
    ``grad_norm`` is the global norm before clipping; ``finite`` says whether the
    gradient and the new parameters are all finite.
    """

    policy_return: Array
    exploitability: Array
    grad_norm: Array
    lr: Array
    finite: Array


class TrainState(NamedTuple):
    """Everything a run needs to continue bit for bit (one run; vmapped for several)."""

    params: eqx.Module  # the trainable leaves of the policy (eqx.partition)
    opt_state: optax.OptState
    iteration: Array  # int32 scalar
    key: PRNGKeyArray
    lr: Array  # base learning rate of this run


def optimizer() -> optax.GradientTransformation:
    """Global-norm clipping at 1.0 then Adam's scaling; the learning rate is applied by
    :func:`train_step` (linear decay to 0.1x over the run, per-run base rate)."""
    return optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.scale_by_adam())


def learning_rate(base, iteration, iterations: int):
    """Linear decay from ``base`` at iteration 0 to ``0.1 * base`` at the last one."""
    frac = iteration / max(iterations - 1, 1)
    return base * (1.0 - (1.0 - FINAL_LR_FRACTION) * frac)


def split_policy(policy: NetworkPolicy) -> tuple[eqx.Module, eqx.Module]:
    """(trainable arrays, static rest) of a policy."""
    return eqx.partition(policy, eqx.is_inexact_array)


def init_state(policy: NetworkPolicy, key: PRNGKeyArray, lr) -> TrainState:
    params, _ = split_policy(policy)
    return TrainState(params, optimizer().init(params), jnp.int32(0), key, jnp.asarray(lr, dtype=float))


def structural_gradient(game: Game, params, static, noise: Noise, weight: Float[Array, " P"]):
    """Gradient of ``-J`` (see module docstring) and the iteration's metrics.

    Returns ``(grads, policy_return, exploitability)``.
    """

    def probs_of(p):
        traj = rollout_batch(game, eqx.combine(p, static), noise)
        return traj.probs, traj

    probs, vjp, traj = jax.vjp(probs_of, params, has_aux=True)
    v0, q = policy_value(game, traj, noise, emit_q=True)
    v_br = best_response_value(game, traj, noise)
    mu0 = traj.mu[:, 0]
    discount = game.gamma ** jnp.arange(game.horizon, dtype=q.dtype)
    cotangent = -(weight[:, None, None, None] * discount[None, :, None, None] * traj.mu[:, :-1, :, None] * q)
    (grads,) = vjp(cotangent.astype(probs.dtype))
    ret = jnp.sum(weight * jnp.sum(mu0 * v0, -1))
    exploitability = jnp.sum(weight * jnp.sum(mu0 * (v_br - v0), -1))
    return grads, ret, exploitability


def objective(game: Game, policy: NetworkPolicy, traj, noise: Noise, weight) -> Array:
    """``J = sum_i w_i sum_s mu_0 V_0`` of ``policy`` played against the fixed population
    path ``traj`` (its observations feed the policy's memory): differentiable in
    ``policy`` by plain autodiff through the backward recursion."""
    probs = policy.sequence_probs(jax.lax.stop_gradient(traj.obs[:, :-1]))
    fixed = traj._replace(mu=jax.lax.stop_gradient(traj.mu), probs=probs)
    v0 = policy_value(game, fixed, noise)
    return jnp.sum(weight * jnp.sum(fixed.mu[:, 0] * v0, -1))


def small_support(game: Game, num_paths: int) -> NoiseSupport | None:
    """The game's noise support when it has fewer paths than ``num_paths`` draws."""
    support = game.noise_support()
    return support if support is not None and support.weight.shape[0] < num_paths else None


def draw_noise(
    game: Game,
    key: PRNGKeyArray,
    num_paths: int,
    exact: NoiseBatch | None,
    support: NoiseSupport | None = None,
):
    """The iteration's noise paths and weights.

    * ``exact``: the fixed enumerated support with its probabilities;
    * otherwise ``num_paths`` Monte Carlo draws. When the game's support is finite and
      smaller than ``num_paths`` (``support`` given), the draws are returned as
      multinomial counts over the support: the very same estimator, but each distinct
      path is computed once (beach bar: 102 paths instead of 128; linear-quadratic: 2
      instead of 8).
    """
    if exact is not None:
        return exact.noise, exact.weight
    if support is not None:
        size = support.weight.shape[0]
        picks = jax.random.choice(key, size, (num_paths,), p=support.weight)
        # integer counts: float32 ones stop growing at 2^24 (two paths and 10^8 draws gave
        # weights summing to 1/3); each weight is then rounded once
        counts = jnp.zeros(size, jnp.int32).at[picks].add(1)
        return support.noise, counts.astype(support.weight.dtype) / num_paths
    noise = jax.vmap(game.sample_noise)(jax.random.split(key, num_paths))
    return noise, jnp.full(num_paths, 1.0 / num_paths)


DRAWN_CAPACITY_SDS = 3.0


def drawn_capacity(support: NoiseSupport, num_paths: int, sds: float = DRAWN_CAPACITY_SDS, multiple: int = 1) -> int:
    """How many distinct support paths an iteration computes when ``num_paths`` draws
    are counted over a finite ``support``: the mean number of distinct paths drawn plus
    ``sds`` standard deviations (exact multinomial occupancy moments), rounded up to a
    ``multiple`` (the devices sharing the paths: XLA's partitioner pads an uneven path
    axis and gathers it inside the time loop, 0.67 vs 0.35 s per beach-bar iteration on
    2 CPU devices) and capped at the support's size. Beach bar, 128 draws over 102
    equally likely paths: 73.1 +- 3.2 distinct, capacity 83; an iteration that draws
    more (about 1 in 1000) computes the whole support instead (:func:`compact_draws`),
    so the estimator never changes.
    """
    p = np.asarray(support.weight, dtype=float)
    missed = (1.0 - p) ** num_paths  # P(path i never drawn)
    both = np.clip(1.0 - p[:, None] - p[None, :], 0.0, None) ** num_paths  # P(i and j never drawn)
    np.fill_diagonal(both, missed)
    var = max(float(both.sum() - missed.sum() ** 2), 0.0)
    mean = p.size - float(missed.sum())
    needed = math.ceil(mean + sds * math.sqrt(var))
    return int(min(p.size, -(-needed // multiple) * multiple))


def compact_draws(noise: Noise, weight: Float[Array, " S"], capacity: int):
    """The drawn paths of a counted draw (``weight > 0``) packed into ``capacity`` slots
    (padding slots repeat path 0 with weight 0), and whether they overflowed."""
    drawn = weight > 0
    index = jnp.nonzero(drawn, size=capacity, fill_value=0)[0]
    valid = jnp.arange(capacity) < jnp.sum(drawn)
    packed = jax.tree.map(lambda x: x[index], noise), jnp.where(valid, weight[index], 0.0)
    return packed, jnp.sum(drawn) > capacity


def train_step(
    game: Game,
    static,
    state: TrainState,
    *,
    iterations: int,
    num_paths: int,
    exact: NoiseBatch | None,
    support: NoiseSupport | None = None,
    capacity: int | None = None,
    mesh: Mesh | None = None,
) -> tuple[TrainState, StepMetrics]:
    """One structural policy-gradient iteration (pure; jit/vmap/scan friendly).

    With a ``capacity`` (sampled noise counted over a finite ``support``), only the drawn
    paths are computed, packed into ``capacity`` slots; an iteration drawing more
    distinct paths computes the whole support (``lax.cond``: the same estimator either
    way). With a ``mesh`` the iteration's noise paths are split over its ``paths`` axis."""
    key = jax.random.fold_in(state.key, state.iteration)
    noise, weight = shard_paths(draw_noise(game, key, num_paths, exact, support), mesh)
    if capacity is not None and support is not None and exact is None:
        (packed, packed_weight), overflow = compact_draws(noise, weight, capacity)
        packed, packed_weight = shard_paths((packed, packed_weight), mesh)
        grads, ret, exploitability = jax.lax.cond(
            overflow,
            lambda: structural_gradient(game, state.params, static, noise, weight),
            lambda: structural_gradient(game, state.params, static, packed, packed_weight),
        )
    else:
        grads, ret, exploitability = structural_gradient(game, state.params, static, noise, weight)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer().update(grads, state.opt_state, state.params)
    lr = learning_rate(state.lr, state.iteration, iterations)
    params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
    finite = (
        jnp.isfinite(grad_norm)
        & jnp.isfinite(ret)
        & jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
    )
    new = TrainState(params, opt_state, state.iteration + 1, state.key, state.lr)
    return new, StepMetrics(ret, exploitability, grad_norm, lr, finite)


def make_chunk(
    game: Game,
    static,
    *,
    iterations: int,
    num_paths: int,
    exact: NoiseBatch | None,
    length: int,
    support: NoiseSupport | None = None,
    capacity: int | None = None,
    mesh: Mesh | None = None,
):
    """A compiled function ``chunk(states) -> (states, metrics)`` running ``length``
    iterations of every run in ``states`` (leading run axis ``R``) in one program.

    Metrics come back as :class:`StepMetrics` of arrays ``(R, length)``. With a ``mesh``,
    runs are split over its ``runs`` axis and each iteration's paths over ``paths``.
    Drawn-path packing (``capacity``) is used only where runs are not vmapped (a batched
    ``lax.cond`` would compute both branches).
    """

    def chunk(states):
        count_trace("structural_chunk")
        num_runs = jax.tree.leaves(states)[0].shape[0]
        cap = None if runs_vmapped(num_runs, mesh) else capacity

        def one_run(state):
            def body(s, _):
                return train_step(
                    game,
                    static,
                    s,
                    iterations=iterations,
                    num_paths=num_paths,
                    exact=exact,
                    support=support,
                    capacity=cap,
                    mesh=mesh,
                )

            return jax.lax.scan(body, state, None, length=length)

        return map_runs(one_run, states, mesh)

    return compiling.jit(chunk, donate_argnums=0)


def make_policy(
    game: Game, config, key: PRNGKeyArray, recurrent: bool | None = None, head: str | None = None
) -> NetworkPolicy:
    """The policy network of a config (``config.network`` sizes; RSPG is recurrent;
    ``recurrent`` and ``head`` override the config's choice)."""
    net = config.network
    return NetworkPolicy(
        game,
        key,
        recurrent=config.algo == "rspg" if recurrent is None else recurrent,
        head=net.head if head is None else head,
        state_input=net.state_input,
        obs_embed=net.obs_embed,
        gru_hidden=net.gru_hidden,
        state_embed=net.state_embed,
        aggregate_embed=net.aggregate_embed,
        mlp_width=net.mlp_width,
    )


class StructuralSolver:
    """SPG / RSPG behind the driver's solver interface (see :mod:`mfax.solvers.base`)."""

    def __init__(self, config, game: Game, exact: NoiseBatch | None):
        self.config, self.game, self.exact = config, game, exact
        self.support = None if exact is not None else small_support(game, config.paths)
        self.mesh = train_mesh(config.devices, config.num_runs)
        share = 1 if self.mesh is None else self.mesh.shape[PATHS]
        self.capacity = None if self.support is None else drawn_capacity(self.support, config.paths, multiple=share)
        _, self.static = split_policy(make_policy(game, config, jax.random.PRNGKey(0)))

    def initial_states(self) -> TrainState:
        states = []
        for r in range(self.config.num_runs):
            key = jax.random.PRNGKey(self.config.run_seed(r))
            policy = make_policy(self.game, self.config, jax.random.fold_in(key, 0))
            states.append(init_state(policy, jax.random.fold_in(key, 1), self.config.run_lr(r)))
        return place_runs(jax.tree.map(lambda *xs: jnp.stack(xs), *states), self.mesh)

    def chunk(self, length: int):
        return make_chunk(
            self.game,
            self.static,
            iterations=self.config.iterations,
            num_paths=self.config.paths,
            exact=self.exact,
            length=length,
            support=self.support,
            capacity=self.capacity,
            mesh=self.mesh,
        )

    def policy(self, states: TrainState, r: int) -> NetworkPolicy:
        # fetched to the host: the policy is then free of the training mesh's layout
        params = jax.tree.map(lambda x: jnp.asarray(x[r]), to_host(states.params))
        return eqx.combine(params, self.static)


for _name, _text in (
    ("spg", "structural policy gradient, memoryless policy pi(a | s, o_t)"),
    ("rspg", "recurrent structural policy gradient, pi(a | s, h_t), h_t = GRU over public observations"),
):
    register_solver(SolverSpec(_name, _text, StructuralSolver))
