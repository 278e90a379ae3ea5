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
forward and once backward per iteration; :func:`mfax.evaluation.objective.objective` is the plain autodiff
formulation of the same gradient (used to test it and for learned best responses).

:class:`StructuralSolver` is the solver (``init``/``step``/``policy``, see
:mod:`mfax.solvers.base`); the driver runs its steps in compiled chunks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Float, PRNGKeyArray

from mfax.dynamics.noise import NoiseBatch, compact_draws, draw_noise, drawn_capacity, drawn_slots, small_support
from mfax.dynamics.pushforward import Prefix, batch_prefix, prefix_of, rollout_batch
from mfax.evaluation.values import policy_and_best_response_values
from mfax.games.base import Game, Noise, NoiseSupport
from mfax.policies.networks import NetworkPolicy, PolicyParams, make_network
from mfax.sharding import PATHS, runs_vmapped, shard_paths
from mfax.solvers.base import Metrics, Setting, Solver, register_variants
from mfax.solvers.optim import OptimParams, descend, learning_rate, optimizer, split_trainable


class StructuralParams(PolicyParams, OptimParams):
    """Hyper-parameters of SPG / RSPG (``--hp key=value``): the network and the optimiser."""


class TrainState(NamedTuple):
    """Everything a run needs to continue bit for bit (one run; vmapped for several)."""

    params: eqx.Module  # the trainable leaves of the policy (eqx.partition)
    opt_state: optax.OptState
    iteration: Array  # int32 scalar
    key: PRNGKeyArray
    lr: Array  # base learning rate of this run


def structural_gradient(
    game: Game, params, static, noise: Noise, weight: Float[Array, " P"], prefix: Prefix | None = None
):
    """Gradient of ``-J`` (see module docstring) and the iteration's metrics; with a
    ``prefix`` the paths' shared starts are computed once (:func:`rollout_batch`).

    Returns ``(grads, policy_return, exploitability)``.
    """

    def probs_of(p):
        traj = rollout_batch(game, eqx.combine(p, static), noise, prefix=prefix)
        return traj.probs, traj

    probs, vjp, traj = jax.vjp(probs_of, params, has_aux=True)
    # the recursion computes each step's rewards itself: the rollout then neither records
    # them nor lays them out path-major and back (measured:
    # bench/results/paired_speed_rewards_recomputed.md)
    v0, q, v_br = policy_and_best_response_values(game, traj._replace(rewards=None), noise)
    mu0 = traj.mu[:, 0]
    discount = game.gamma ** jnp.arange(game.horizon, dtype=q.dtype)
    cotangent = -(weight[:, None, None, None] * discount[None, :, None, None] * traj.mu[:, :-1, :, None] * q)
    (grads,) = vjp(cotangent.astype(probs.dtype))
    ret = jnp.sum(weight * jnp.sum(mu0 * v0, -1))
    exploitability = jnp.sum(weight * jnp.sum(mu0 * (v_br - v0), -1))
    return grads, ret, exploitability


class StructuralSolver(Solver):
    """SPG (``recurrent=False``) / RSPG (``True``): one iteration is one structural
    policy-gradient step on the iteration's noise paths.

    * ``exact``: the enumerated support with its probabilities, the same every iteration;
    * otherwise ``num_paths`` Monte Carlo draws per iteration
      (:func:`~mfax.dynamics.noise.draw_noise`); over a small finite ``support`` they are
      counted, and with a ``capacity`` only the drawn paths are computed, packed into
      ``capacity`` slots; an iteration drawing more distinct paths computes the whole
      support (``lax.cond``: the same estimator either way). Packing is used only where
      runs are not vmapped (a batched ``lax.cond`` computes both branches);
    * with a ``mesh`` the runs are split over its ``runs`` axis and each iteration's
      noise paths over ``paths``;
    * on one device, over a finite support whose game declares a shared noise prefix
      (:attr:`~mfax.games.base.Game.shared_until`), the paths' shared starts are computed
      once per group (``shared``, built on the host): the same gradient.
    """

    game: Game
    static: Any  # the policy network without its trainable arrays
    hp: StructuralParams = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)
    iterations: int = eqx.field(static=True)
    num_paths: int = eqx.field(static=True)
    exact: NoiseBatch | None
    support: NoiseSupport | None
    capacity: int | None = eqx.field(static=True)
    mesh: Mesh | None = eqx.field(static=True)
    shared: Prefix | None = None  # the shared starts of the exact batch / the whole support

    trace_name = "structural_chunk"

    def packed_prefix(self, slots: Array) -> Prefix | None:
        """The shared starts of the drawn paths packed in ``slots`` (their groups are the
        whole support's, ``shared.members``)."""
        if self.shared is None:
            return None
        groups = self.shared.members[slots]
        return prefix_of(self.shared.until, groups, min(self.shared.reps.shape[0], slots.shape[0]))

    def network(self, key: PRNGKeyArray) -> NetworkPolicy:
        return make_network(self.game, key, self.hp, recurrent=self.recurrent, head=self.hp.head)

    def init(self, key: PRNGKeyArray, lr: float) -> TrainState:
        params, _ = split_trainable(self.network(jax.random.fold_in(key, 0)))
        state_key = jax.random.fold_in(key, 1)
        return TrainState(params, optimizer(self.hp).init(params), jnp.int32(0), state_key, jnp.asarray(lr, float))

    def step(self, state: TrainState) -> tuple[TrainState, Metrics]:
        game, static, exact, support, mesh = self.game, self.static, self.exact, self.support, self.mesh
        key = jax.random.fold_in(state.key, state.iteration)
        noise, weight = shard_paths(draw_noise(game, key, self.num_paths, exact, support), mesh)
        if self.capacity is not None:
            (packed, packed_weight), overflow = compact_draws(noise, weight, self.capacity)
            packed, packed_weight = shard_paths((packed, packed_weight), mesh)
            packed_prefix = self.packed_prefix(drawn_slots(weight, self.capacity))
            grads, ret, exploitability = jax.lax.cond(
                overflow,
                lambda: structural_gradient(game, state.params, static, noise, weight, self.shared),
                lambda: structural_gradient(game, state.params, static, packed, packed_weight, packed_prefix),
            )
        else:  # without exact noise or a support, shared is None (draws of a continuous noise)
            grads, ret, exploitability = structural_gradient(game, state.params, static, noise, weight, self.shared)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = optimizer(self.hp).update(grads, state.opt_state, state.params)
        lr = learning_rate(state.lr, state.iteration, self.iterations, self.hp.final_lr_fraction)
        params = descend(state.params, updates, lr)
        finite = (
            jnp.isfinite(grad_norm)
            & jnp.isfinite(ret)
            & jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
        )
        new = TrainState(params, opt_state, state.iteration + 1, state.key, state.lr)
        nan = jnp.full((), jnp.nan, ret.dtype)
        return new, Metrics(ret, exploitability, exploitability, grad_norm, lr, nan, finite)

    def policy(self, state: TrainState) -> NetworkPolicy:
        return eqx.combine(state.params, self.static)

    def runs_mesh(self) -> Mesh | None:
        return self.mesh


def build(game: Game, hp: StructuralParams, setting: Setting, *, recurrent: bool) -> StructuralSolver:
    """The solver of ``setting``; ``capacity`` packing where the noise is sampled over a
    small finite support and the runs are not vmapped."""
    exact, mesh = setting.exact, setting.mesh
    support = None if exact is not None else small_support(game, setting.paths)
    share = 1 if mesh is None else mesh.shape[PATHS]
    capacity = None
    if support is not None and not runs_vmapped(setting.num_runs, mesh):
        capacity = drawn_capacity(support, setting.paths, multiple=share)
    network = make_network(game, jax.random.PRNGKey(0), hp, recurrent=recurrent, head=hp.head)
    static = split_trainable(network)[1]
    paths, iterations = setting.paths, setting.iterations
    # on one device only: paths split over devices would gather the groups' states across them
    batch = exact if exact is not None else support
    shared = batch_prefix(game, batch.noise) if batch is not None and mesh is None else None
    return StructuralSolver(game, static, hp, recurrent, iterations, paths, exact, support, capacity, mesh, shared)


register_variants(
    build,
    {
        "spg": ("structural policy gradient, memoryless policy pi(a | s, o_t)", StructuralParams, {"recurrent": False}),
        "rspg": (
            "recurrent structural policy gradient, pi(a | s, h_t), h_t = GRU over public observations",
            StructuralParams,
            {"recurrent": True},
        ),
    },
)
