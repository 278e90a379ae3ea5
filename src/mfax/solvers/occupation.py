"""Exact solvers on the occupation measure: MF-OMO and occupation-measure inclusion.

Both work on the state-action occupation measure ``L_t(s, a)`` (``t = 0..T-1``, ``T`` the
horizon) of a game **without common noise** (one noise path; a game with common noise is
refused with one line: its equilibrium policy is indexed by the public-history node and
the information sets couple the paths, so a per-path occupation measure is not the
method's object; see ``docs/algorithms/mf_omo.md``). Pages: ``docs/algorithms/mf_omo.md``,
``docs/algorithms/omi.md``.

**The tables of a flow.** Every ``L`` (not necessarily consistent) fixes a mean-field
path: ``mu_t(s) = sum_a L_t(s, a)`` for ``t < T`` and ``mu_T = sum_{s,a} L_{T-1}(s, a)
P_{T-1}(. | s, a)``; along it the game gives the kernels ``P_t(s'|s, a) = P(s'|s, a; mu_t)``
and the rewards ``R_t(s, a) = r(mu_t, mu_{t+1})`` (the terminal reward at ``t = T-1``,
mfax's time convention). With ``gamma`` the discount, the linear-programming data of the
best response against that path are

* ``A_L L - b`` (``T`` rows of ``n``): for ``t < T-1`` the flow residual
  ``sum_{s,a} L_t(s, a) P_t(s'|s, a) - sum_a L_{t+1}(s', a)``, and the initial residual
  ``sum_a L_0(s, a) - mu_0(s)`` (MFGLib's order: the flow rows, then the initial row);
* ``A_L^T y`` for ``y`` of the same rows: ``(A_L^T y)_t(s, a) = sum_{s'} P_t(s'|s, a) y_t(s')
  [t < T-1] - y_{t-1}(s) [t >= 1] + y_{T-1}(s) [t = 0]``;
* the cost ``c_L = -gamma^t R_t(s, a)`` (MFGLib's ``c_L = -r``; with ``gamma = 1`` the two agree).

**MF-OMO** (Guo, Hu and Zhang, 2022): minimise over ``(L, y, z)`` the residual

    c1 ||A_L L - b||_2^2 + c2 ||A_L^T y + z - c_L||_2^2 + c3 z^T L   (loss "l1_l2")

(``"l2"``: the last term squared; ``"l1"``: the first two with the 1-norm), which is 0
exactly at the Nash equilibria (``y`` the discounted values, ``z`` the action gaps), by
gradient steps (autodiff through the tables: ``A_L`` and ``c_L`` depend on ``L``), either
projected (``parameterize=False``: each ``L_t`` onto the simplex, ``z`` onto
``{z >= 0, 1^T z <= c_z}``, ``y`` onto the ball ``||y|| <= c_y``) or on the
parametrisation ``L_t = softmax(u_t)``, ``z = c_z softmax(v)[:-1]``,
``y = c_w sin(w)`` (``parameterize=True``), with
``c_z = n m (T'^2 + T' + 2) r_max``, ``c_y = n (T' + 1)(T' + 2) r_max / 2``,
``c_w = c_y / sqrt(n T)``, ``T' = T - 1`` (MFGLib's horizon). The optimiser is Adam
(PyTorch's update, ``betas = (0.9, 0.999)``, ``eps = 1e-8``) or plain gradient descent.

**Occupation-measure inclusion** (MF-OMI-FBS, Hu and Zhang, 2024): the forward-backward step

    L' = Proj_{ {x >= 0 : A_L x = b} } ( L - alpha (c_L + eta L) )

with ``A_L`` taken at the current ``L``; the projection (a quadratic programme) is solved
exactly by a semismooth Newton method on its dual (:func:`project_flow`).

The policy of an iterate is ``pi_t(a|s) = L_t(s, a) / sum_a L_t(s, a)``, uniform where the
marginal is 0 (MFGLib's convention); mfax scores it exactly (each step reports the exact
figures of the policy it starts from).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from mfax import params
from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import push_forward
from mfax.errors import GameError, advice
from mfax.games.base import Game, Kernel, Noise, check, common_noise_advice, reward_matrix
from mfax.params import param
from mfax.policies.base import Policy
from mfax.solvers.base import Metrics, Setting, Solver, register_variants
from mfax.solvers.classical import exact_batch, run_table, table_policy
from mfax.solvers.tabular import _evaluate

# hat initialisation with parameterize=True: zeros of the slack are set to this before the log
_Z_EPS = 1e-8
# residual balancing never lets c1, c2 exceed this (MFGLib's safeguard)
_RB_CAP = 1e3


# -- the tables of a flow --------------------------------------------------------------
class FlowTables(NamedTuple):
    """What the game gives along the mean-field path of an ``L`` (module docstring)."""

    kernels: Kernel  # batched over t: (T, n, m, K)
    pushed: Float[Array, "T n"]  # sum_{s,a} L_t(s, a) P_t(. | s, a)
    rewards: Float[Array, "T n m"]  # R_t(s, a)
    cost: Float[Array, "T n m"]  # c_L = -gamma^t R_t


def flow_tables(game: Game, noise: Noise, L: Float[Array, "T n m"]) -> FlowTables:
    """The kernels, pushed mass, rewards and costs along the path ``L`` fixes."""
    horizon, n = L.shape[0], L.shape[1]
    ts = jnp.arange(horizon, dtype=jnp.int32)
    mu = jnp.sum(L, axis=-1)
    kernels = jax.vmap(lambda m, t: game.kernel(m, noise, t))(mu, ts)
    ones = jnp.ones(n, L.dtype)
    pushed = jax.vmap(lambda k, lt: push_forward(ones, lt, k))(kernels, L)
    mu_next = jnp.concatenate([mu[1:], pushed[-1:]])
    rewards = jax.vmap(lambda m, mn, t: reward_matrix(game, m, mn, noise, t))(mu, mu_next, ts)
    discount = jnp.asarray(game.gamma, L.dtype) ** ts.astype(L.dtype)
    return FlowTables(kernels, pushed, rewards, -discount[:, None, None] * rewards)


def primal_residual(tables: FlowTables, L: Array, mu0: Array) -> Float[Array, "T n"]:
    """``A_L L - b``: the flow rows ``t < T-1``, then the initial row."""
    mu = jnp.sum(L, axis=-1)
    return jnp.concatenate([tables.pushed[:-1] - mu[1:], (mu[0] - mu0)[None]])


def dual_map(tables: FlowTables, y: Float[Array, "T n"]) -> Float[Array, "T n m"]:
    """``A_L^T y`` (module docstring), ``y`` in the rows of :func:`primal_residual`."""
    horizon = y.shape[0]
    flow = jnp.concatenate([y[:-1], jnp.zeros_like(y[:1])])  # the last step has no flow row
    expect = jax.vmap(lambda k, v: k.expect(v))(tables.kernels, flow)
    previous = jnp.concatenate([y[-1:], -y[: horizon - 1]])  # t = 0: +y_init; t >= 1: -y_{t-1}
    return expect + previous[:, :, None]


def best_values(game: Game, tables: FlowTables) -> Float[Array, "T1 n"]:
    """``V*_t`` ``(T + 1, n)`` of the best response along the tables' path (``V*_T = 0``)."""

    def back(v_next, x):
        kernel, reward = x
        v = jnp.max(reward + game.gamma * kernel.expect(v_next), axis=-1)
        return v, v

    n = tables.rewards.shape[1]
    _, vs = jax.lax.scan(back, jnp.zeros(n, tables.rewards.dtype), (tables.kernels, tables.rewards), reverse=True)
    return jnp.concatenate([vs, jnp.zeros((1, n), vs.dtype)])


def hat_dual(game: Game, tables: FlowTables) -> tuple[Array, Array]:
    """``(z_hat, y_hat)``: the dual variables that make the second residual vanish, built
    from the best response to ``L``'s path (the paper's Proposition 6): ``y`` the
    discounted optimal values (``y_t = gamma^{t+1} V*_{t+1}`` on the flow rows,
    ``-V*_0`` on the initial row) and ``z = c_L - A_L^T y`` clipped at 0 (the action gaps
    ``gamma^t (V*_t - Q*_t)``)."""
    v = best_values(game, tables)
    horizon = tables.rewards.shape[0]
    discount = jnp.asarray(game.gamma, v.dtype) ** jnp.arange(1, horizon + 1, dtype=v.dtype)
    y = jnp.concatenate([discount[:-1, None] * v[1:horizon], -v[:1]])
    z = jnp.maximum(tables.cost - dual_map(tables, y), 0.0)
    return z, y


def policy_of(L: Float[Array, "... n m"]) -> Float[Array, "... n m"]:
    """``pi(a|s) = L(s, a) / sum_a L(s, a)``, uniform where the marginal is 0."""
    mass = jnp.sum(L, axis=-1, keepdims=True)
    uniform = jnp.full_like(L, 1.0 / L.shape[-1])
    return jnp.where(mass > 0.0, L / jnp.where(mass > 0.0, mass, 1.0), uniform)


def project_simplex(x: Float[Array, " N"], radius) -> Float[Array, " N"]:
    """Euclidean projection of ``x`` onto ``{p >= 0, sum p = radius}`` (sort-based, Duchi
    et al. 2008), renormalised to sum exactly ``radius`` as MFGLib does. The projection
    does not change when a constant is added to every entry, so ``x`` is first shifted to
    a maximum of 0: the threshold then stays exact for entries far larger than
    ``radius`` (unshifted, ``u_1 - (u_1 - radius)`` rounds to 0 once ``u_1`` exceeds
    ``radius / eps``, and MFGLib falls back to the uniform vector there)."""
    x = x - jnp.max(x)
    u = -jnp.sort(-x)
    k = jnp.arange(1, x.shape[0] + 1, dtype=x.dtype)
    theta = (jnp.cumsum(u) - radius) / k
    rho = jnp.max(jnp.where(u - theta > 0.0, jnp.arange(x.shape[0]), 0))
    p = jnp.maximum(x - theta[rho], 0.0)
    return p / jnp.sum(p) * radius


def bounds(num_states: int, num_actions: int, horizon: int, r_max) -> tuple[Array, Array, Array]:
    """``(c_z, c_y, c_w)`` (module docstring) for a reward bound ``r_max``."""
    t = horizon - 1  # MFGLib's T
    c_z = num_states * num_actions * (t * t + t + 2) * r_max
    c_y = num_states * (t + 1) * (t + 2) * r_max / 2.0
    return c_z, c_y, c_y / math.sqrt(num_states * horizon)


def _no_common_noise(game: Game, batch: NoiseBatch, algo: str) -> Noise:
    paths = batch.weight.shape[0]
    if paths != 1:
        # (a support listing paths of weight 0 beside one path: say so, the setting may not exist)
        weightless = paths - int(np.sum(np.asarray(batch.weight) > 0))
        dropped = f"; {weightless} of them have weight 0, a support without them has one" if weightless else ""
        raise GameError(
            f"{algo} applies to games without common noise; {game.name!r} has {paths} noise paths "
            f"here ({common_noise_advice(game)}{dropped})"
        )
    return jax.tree.map(lambda x: x[0], batch.noise)


# -- MF-OMO ----------------------------------------------------------------------------
LOSSES = ("l1_l2", "l2", "l1")
OPTIMISERS = ("adam", "sgd")


class MFOMOHyperParams(eqx.Module):
    """Hyper-parameters of MF-OMO (``--hp key=value``; module docstring)."""

    lr: float = param(0.1, "learning rate of the optimiser (MFGLib's default: Adam, 0.1)", search=(1e-3, 100.0, "log"))
    optimizer: str = param("adam", "adam (PyTorch's Adam: betas 0.9, 0.999, eps 1e-8) or sgd (plain gradient steps)")
    parameterize: bool = param(
        False, "false: projected steps on (L, z, y); true: steps on L = softmax(u), z = c_z softmax(v), y = c_w sin(w)"
    )
    hat_init: bool = param(True, "start y, z at the best response's values and action gaps of the initial L (else 0)")
    loss: str = param(
        "l1_l2", "l1_l2 (squared residuals + z.L), l2 (squared residuals + (z.L)^2) or l1 (1-norms + z.L)"
    )
    c1: float = param(1.0, "weight of the consistency residual ||A_L L - b||", search=(0.01, 100.0, "log"))
    c2: float = param(1.0, "weight of the dual residual ||A_L^T y + z - c_L||", search=(0.01, 100.0, "log"))
    c3: float = param(1.0, "weight of the complementarity term z.L")
    r_max: float = param(
        0.0, "reward bound scaling the constraints on y, z (0: the largest |R_t(s, a)| along the initial L's path)"
    )
    rb_freq: int = param(0, "residual balancing of c1, c2 every this many iterations (0: never)")
    m1: float = param(10.0, "residual balancing: raise a weight when its term exceeds m1 times the larger other")
    m2: float = param(2.0, "residual balancing: the factor a weight is multiplied or divided by")
    m3: float = param(0.1, "residual balancing: lower a weight when its term is below m3 times the smaller other")

    def __check_init__(self):
        check(self.lr > 0.0, f"MF-OMO learning rate lr must be > 0, got {self.lr}")
        check(self.optimizer in OPTIMISERS, f"MF-OMO optimizer must be adam or sgd, got {self.optimizer!r}")
        check(self.loss in LOSSES, f"MF-OMO loss must be l1_l2, l2 or l1, got {self.loss!r}")
        for name in ("c1", "c2", "c3"):
            check(getattr(self, name) > 0.0, f"MF-OMO weight {name} must be > 0, got {getattr(self, name)}")
        check(self.r_max >= 0.0, f"MF-OMO r_max must be >= 0 (0: estimated), got {self.r_max}")
        check(self.rb_freq >= 0, f"MF-OMO rb_freq must be >= 0 (0: no residual balancing), got {self.rb_freq}")
        for name in ("m1", "m2", "m3"):
            check(getattr(self, name) > 0.0, f"MF-OMO residual balancing {name} must be > 0, got {getattr(self, name)}")


class MFOMOState(NamedTuple):
    """The variables (``(L, z, y)``, or ``(u, v, w)`` when parameterised), Adam's moments,
    the objective's weights ``c1, c2`` (residual balancing changes them) and the run's
    constants."""

    variables: tuple[Array, Array, Array]
    moment1: tuple[Array, Array, Array]
    moment2: tuple[Array, Array, Array]
    iteration: Array  # int32 scalar
    lr: Array
    c1: Array
    c2: Array
    r_max: Array


def omo_terms(game: Game, noise: Noise, hp: MFOMOHyperParams, variables, r_max) -> tuple[Array, Array, Array]:
    """The three terms ``(o1, o2, o3)`` of the objective (unweighted) at ``variables``."""
    L, z, y = omo_point(game, hp, variables, r_max)
    tables = flow_tables(game, noise, L)
    mu0 = game.initial_mean_field(noise)
    r1 = primal_residual(tables, L, mu0)
    r2 = dual_map(tables, y) + z - tables.cost
    gap = jnp.sum(z * L)
    if hp.loss == "l1":
        return _abs_sum(r1), _abs_sum(r2), gap
    return jnp.sum(r1**2), jnp.sum(r2**2), gap**2 if hp.loss == "l2" else gap


def _abs_sum(r: Array) -> Array:
    """``sum |r|`` whose gradient is ``sign(r)``, 0 at an exact zero (the subgradient of
    least norm, PyTorch's; ``jnp.abs`` differentiates to 1 there)."""
    return jnp.sum(r * jax.lax.stop_gradient(jnp.sign(r)))


def omo_point(game: Game, hp: MFOMOHyperParams, variables, r_max) -> tuple[Array, Array, Array]:
    """``(L, z, y)`` of the variables (the parametrisation applied when ``parameterize``)."""
    a, b, c = variables
    if not hp.parameterize:
        return a, b, c
    horizon, n, m = a.shape
    c_z, _, c_w = bounds(n, m, horizon, r_max)
    L = jax.nn.softmax(a.reshape(horizon, -1), axis=-1).reshape(a.shape)
    z = (c_z * jax.nn.softmax(b)[:-1]).reshape(a.shape)
    return L, z, c_w * jnp.sin(c)


def omo_objective(game: Game, noise: Noise, hp: MFOMOHyperParams, variables, r_max, c1, c2) -> Array:
    o1, o2, o3 = omo_terms(game, noise, hp, variables, r_max)
    return c1 * o1 + c2 * o2 + hp.c3 * o3


def omo_start(game: Game, dtype) -> Float[Array, "T n m"]:
    """MFGLib's starting ``L``: ``1/(n m)`` at every ``t``."""
    horizon, n, m = game.horizon, game.n_states, game.n_actions
    return jnp.full((horizon, n, m), 1.0 / (n * m), dtype)


def check_r_max(game: Game, noise: Noise, hp: MFOMOHyperParams) -> None:
    """Refuse (one line) the default reward bound where its estimate is 0: every
    ``|R_t(s, a)|`` along the starting ``L`` is 0 (a reward that vanishes at the uniform
    mean field), so the bounds on ``y, z`` are 0 and every step projects them onto
    ``{0}``: MF-OMO then stood still (or divided 0 by 0 when parameterised), silently."""
    if hp.r_max > 0.0:
        return
    tables = flow_tables(game, noise, omo_start(game, jnp.zeros(()).dtype))
    if not float(jnp.max(jnp.abs(tables.rewards))) > 0.0:
        bound = advice("--hp r_max=VALUE", 'hp={"r_max": VALUE}')
        raise GameError(
            "MF-OMO's reward bound r_max, estimated as the largest |R_t(s, a)| along its starting L (uniform), "
            f"is 0 on this game: give a bound with {bound} (> 0)"
        )


def omo_init(game: Game, noise: Noise, hp: MFOMOHyperParams, lr=None) -> MFOMOState:
    """MFGLib's start: ``L_t = 1/(n m)`` at every ``t`` (the uniform policy over uniformly
    spread states, not its flow), ``y, z`` at the hat values of that ``L`` or 0."""
    horizon, n, m = game.horizon, game.n_states, game.n_actions
    dtype = jnp.zeros(()).dtype
    L = omo_start(game, dtype)
    tables = flow_tables(game, noise, L)
    r_max = jnp.asarray(hp.r_max, dtype) if hp.r_max > 0.0 else jnp.max(jnp.abs(tables.rewards))
    if hp.hat_init:
        z, y = hat_dual(game, tables)
    else:
        z, y = jnp.zeros_like(L), jnp.zeros((horizon, n), dtype)
    if hp.parameterize:
        c_z, _, c_w = bounds(n, m, horizon, r_max)
        u = jnp.log(L)
        if hp.hat_init:
            share = z.reshape(-1) / c_z
            rest = 1.0 - jnp.sum(share)
            full = jnp.concatenate([share, rest[None]])
            full = jnp.where(full == 0.0, _Z_EPS, full)
            # representable only when the hat slack fits under the bound (then softmax(v) = full exactly)
            v = jnp.where(rest > 0.0, jnp.log(jnp.where(full > 0.0, full, 1.0)), 0.0)
            w = jnp.arcsin(jnp.clip(y / c_w, -1.0, 1.0))
        else:
            v, w = jnp.zeros(horizon * n * m + 1, dtype), jnp.zeros((horizon, n), dtype)
        variables = (u, v, w)
    else:
        variables = (L, z, y)
    zeros = jax.tree.map(jnp.zeros_like, variables)
    one = jnp.ones((), dtype)
    step = jnp.asarray(hp.lr if lr is None else lr, dtype)
    return MFOMOState(variables, zeros, zeros, jnp.int32(0), step, hp.c1 * one, hp.c2 * one, r_max)


def _balance(hp: MFOMOHyperParams, o1, o2, o3, c1, c2) -> tuple[Array, Array]:
    """MFGLib's residual balancing of ``c1, c2`` from the three terms."""

    def rule(own, others_max, others_min, c):
        up = jnp.where((others_max != 0.0) & (own > hp.m1 * others_max), c * hp.m2, c)
        new = jnp.where((others_min != 0.0) & (own < hp.m3 * others_min), c / hp.m2, up)
        return jnp.minimum(new, _RB_CAP)

    return (
        rule(o1, jnp.maximum(o2, o3), jnp.minimum(o2, o3), c1),
        rule(o2, jnp.maximum(o1, o3), jnp.minimum(o1, o3), c2),
    )


def _project(hp: MFOMOHyperParams, variables, r_max):
    """The projected variant's constraints: ``L_t`` onto the simplex, ``z`` onto
    ``{z >= 0, 1^T z <= c_z}``, ``y`` onto the ball of radius ``c_y``."""
    L, z, y = variables
    horizon, n, m = L.shape
    c_z, c_y, _ = bounds(n, m, horizon, r_max)
    L = jax.vmap(lambda x: project_simplex(x, 1.0))(L.reshape(horizon, -1)).reshape(L.shape)
    zp = jnp.maximum(z, 0.0).reshape(-1)
    # the sort of all T n m entries only when the bound binds (rarely: c_z is large); a
    # run-batched step computes both branches, as a select would
    z = jax.lax.cond(jnp.sum(zp) > c_z, lambda x: project_simplex(x, c_z), lambda x: x, zp).reshape(L.shape)
    norm = jnp.sqrt(jnp.sum(y**2))
    y = jnp.where(norm > c_y, y / jnp.where(norm > 0.0, norm, 1.0) * c_y, y)
    return L, z, y


def omo_step(game: Game, noise: Noise, hp: MFOMOHyperParams, state: MFOMOState):
    """One MF-OMO iteration: (residual balancing,) the objective's gradient, one optimiser
    step, (the projections). Returns ``(state, objective, gradient norm)``."""
    c1, c2 = state.c1, state.c2
    if hp.rb_freq > 0:
        # MFGLib balances before iteration i (1-based) when (i + 1) % rb_freq == 0
        terms = omo_terms(game, noise, hp, state.variables, state.r_max)
        new_c1, new_c2 = _balance(hp, *terms, c1, c2)
        now = (state.iteration + 2) % hp.rb_freq == 0
        c1, c2 = jnp.where(now, new_c1, c1), jnp.where(now, new_c2, c2)
    loss, grads = jax.value_and_grad(lambda v: omo_objective(game, noise, hp, v, state.r_max, c1, c2))(state.variables)
    count = state.iteration + 1
    if hp.optimizer == "adam":
        b1, b2, eps = 0.9, 0.999, 1e-8
        m1 = jax.tree.map(lambda mo, g: mo + (1.0 - b1) * (g - mo), state.moment1, grads)
        m2 = jax.tree.map(lambda mo, g: b2 * mo + (1.0 - b2) * g * g, state.moment2, grads)
        k = count.astype(state.lr.dtype)
        step = state.lr / (1.0 - b1**k)
        root = jnp.sqrt(1.0 - b2**k)
        variables = jax.tree.map(lambda p, a, b: p - step * a / (jnp.sqrt(b) / root + eps), state.variables, m1, m2)
    else:
        m1, m2 = state.moment1, state.moment2
        variables = jax.tree.map(lambda p, g: p - state.lr * g, state.variables, grads)
    if not hp.parameterize:
        variables = _project(hp, variables, state.r_max)
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    new = MFOMOState(variables, m1, m2, count, state.lr, c1, c2, state.r_max)
    return new, loss, norm


# -- occupation-measure inclusion ------------------------------------------------------
def flow_operator(kernels: Kernel, x: Float[Array, "T n m"]) -> Float[Array, "T n"]:
    """``A x`` for the kernels held fixed (the rows of :func:`primal_residual`, without ``b``)."""
    ones = jnp.ones(x.shape[1], x.dtype)
    pushed = jax.vmap(lambda k, xt: push_forward(ones, xt, k))(kernels, x)
    mass = jnp.sum(x, axis=-1)
    return jnp.concatenate([pushed[:-1] - mass[1:], mass[:1]])


# the dual Newton iteration of the projection: at most this many steps, Armijo halvings per
# step (MFGLib's beach bar of 8 positions at alpha = 2 needed about 120 at some steps; a
# projection that has not converged is NaN, never a silent infeasible measure)
_NEWTON_STEPS = 200
_HALVINGS = 30


def _to_blocks(v: Float[Array, "T n"]) -> Float[Array, "T n"]:
    """Rows in the order of the Newton system's blocks: the initial row first, then the
    flow rows (row ``k`` couples ``x_{k-1}`` and ``x_k``); :func:`_from_blocks` undoes it."""
    return jnp.concatenate([v[-1:], v[:-1]])


def _from_blocks(q: Float[Array, "T n"]) -> Float[Array, "T n"]:
    return jnp.concatenate([q[1:], q[:1]])


def newton_blocks(kernels: Kernel, active: Float[Array, "T n m"]) -> tuple[Array, Array]:
    """``A D A^T`` as a block-tridiagonal matrix, ``D = diag(active)``, rows in block
    order (:func:`_to_blocks`): ``(diagonal (T, n, n), upper (T-1, n, n))``.

    Block ``k`` holds the initial row (``k = 0``: ``S x_0``) or the flow row ``k - 1``
    (``P_{k-1} x_{k-1} - S x_k``), ``S`` summing over actions and ``P_t`` the kernel at
    ``t``. Only consecutive blocks share a variable, so

    * ``diagonal_k = S D_k S^T + [k >= 1] P_{k-1} D_{k-1} P_{k-1}^T`` (the first term the
      diagonal matrix of ``sum_a active_k(s, a)``),
    * ``upper_k = sign_k S D_k P_k^T`` (``sign_0 = +1``, ``-1`` after), entry
      ``(s, s') = sum_a active_k(s, a) P_k(s'|s, a)``,

    each built from the kernel's sparse entries (``n m K^2`` and ``n m K`` additions per
    step, ``K`` the single-stage width) instead of products of dense ``n x n m`` blocks."""
    horizon, n = active.shape[:2]
    flat = jax.vmap(Kernel.flat)(kernels)

    def outer(args):  # P_t D_t P_t^T, one step at a time (n m K^2 terms in memory)
        index, prob, d = args
        w = d[..., None, None] * prob[..., :, None] * prob[..., None, :]
        return jnp.zeros((n, n), w.dtype).at[index[..., :, None], index[..., None, :]].add(w)

    def cross(index, prob, d):  # S D_t P_t^T
        rows = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None, None], index.shape)
        return jnp.zeros((n, n), prob.dtype).at[rows, index].add(d[..., None] * prob)

    steps = (flat.index[:-1], flat.prob[:-1], active[:-1])
    diagonal = jax.vmap(jnp.diag)(jnp.sum(active, axis=-1))
    diagonal = diagonal.at[1:].add(jax.lax.map(outer, steps))
    sign = jnp.where(jnp.arange(horizon - 1) == 0, 1.0, -1.0).astype(active.dtype)
    upper = sign[:, None, None] * jax.vmap(cross)(*steps)
    return diagonal, upper


def solve_block_tridiagonal(diagonal: Array, upper: Array, rhs: Float[Array, "T n"]) -> Float[Array, "T n"]:
    """Solve ``H q = rhs`` for a symmetric positive definite block-tridiagonal ``H``
    (``diagonal`` ``(T, n, n)``, ``upper`` ``(T-1, n, n)`` the blocks above it) by block
    elimination with Cholesky factors of the Schur complements (symmetric positive
    definite as well): ``O(T n^3)`` instead of the dense ``O(T^3 n^3)``."""
    n = rhs.shape[1]
    chol0 = jnp.linalg.cholesky(diagonal[0])

    def forward(carry, x):
        chol_prev, y_prev = carry
        d, u_prev, r = x  # u_prev = H_{k-1,k}; H_{k,k-1} = u_prev^T
        # with C = L L^T and Z = L^{-1} [U, y]: U^T C^{-1} U = Z_U^T Z_U, U^T C^{-1} y = Z_U^T Z_y
        # (one triangular solve instead of the two of C^{-1} [U, y])
        z = jax.scipy.linalg.solve_triangular(chol_prev, jnp.concatenate([u_prev, y_prev[:, None]], axis=1), lower=True)
        chol = jnp.linalg.cholesky(d - z[:, :n].T @ z[:, :n])
        y = r - z[:, :n].T @ z[:, n]
        return (chol, y), (chol, y)

    _, (chols, ys) = jax.lax.scan(forward, (chol0, rhs[0]), (diagonal[1:], upper, rhs[1:]))
    chols = jnp.concatenate([chol0[None], chols])
    ys = jnp.concatenate([rhs[:1], ys])
    last = jax.scipy.linalg.cho_solve((chols[-1], True), ys[-1])

    def backward(q_next, x):
        chol, y, u = x
        q = jax.scipy.linalg.cho_solve((chol, True), y - u @ q_next)
        return q, q

    _, qs = jax.lax.scan(backward, last, (chols[:-1], ys[:-1], upper), reverse=True)
    return jnp.concatenate([qs, last[None]])


def project_flow(
    tables: FlowTables, target: Float[Array, "T n m"], mu0: Float[Array, " n"], dual: Array | None = None
) -> tuple[Array, Array]:
    """The Euclidean projection of ``target`` onto ``{x >= 0 : A x = b}`` (``A`` from
    ``tables``' kernels, ``b`` the initial distribution on the initial row): the
    occupation measures of those kernels nearest to ``target``. Returns ``(x, lam)``,
    ``lam`` ``(T, n)`` the dual solution (rows of :func:`primal_residual`), which a
    next projection with nearby data may start from (``dual``; zeros when ``None``).

    Exact by its dual: ``x(lam) = max(target - A^T lam, 0)`` and ``lam`` minimises the
    convex piecewise-quadratic ``f(lam) = |x(lam)|^2 / 2 + b.lam``, whose gradient is
    ``b - A x(lam)``; semismooth Newton steps ``(A D A^T + delta I) dlam = -grad f``
    (``D`` the active set, ``delta = eps^(3/4)`` times the target's scale) with
    backtracking (Armijo on ``f``, or the residual halved), until ``A x = b`` to
    rounding (at most ``_NEWTON_STEPS`` steps; a projection not converged by then is
    NaN). ``A D A^T`` is block tridiagonal in time (:func:`newton_blocks`), so each
    Newton step costs ``O(T n^3)`` (:func:`solve_block_tridiagonal`). Once the active
    set is the solution's, one Newton step solves the system exactly, so the result is
    the projection to rounding (MFGLib's OSQP stops at its tolerance, 1e-8)."""
    horizon, n = target.shape[:2]
    b = jnp.zeros((horizon, n), target.dtype).at[-1].set(mu0)
    scale = 1.0 + jnp.max(jnp.abs(target))
    # keeps the Newton system regular where a row has no active entry; a number the dtype
    # resolves (1.8e-12 in float64, 6.6e-6 in float32) times the target's scale
    delta = jnp.finfo(target.dtype).eps ** 0.75 * scale
    ridge = delta * jnp.eye(n, dtype=target.dtype)

    def point(lam):  # x(lam), the residual A x - b (= -grad f) and f
        x = jnp.maximum(target - dual_map(tables, lam), 0.0)
        return x, flow_operator(tables.kernels, x) - b, 0.5 * jnp.sum(x * x) + jnp.sum(b * lam)

    flat = jax.vmap(Kernel.flat)(tables.kernels)  # once per projection (newton_blocks reads it flat)

    def body(carry):
        lam, x, res, f0, k = carry
        grad = -res
        diagonal, upper = newton_blocks(flat, (x > 0.0).astype(x.dtype))
        step = _from_blocks(-solve_block_tridiagonal(diagonal + ridge, upper, _to_blocks(grad)))
        slope, worst = jnp.sum(grad * step), jnp.max(jnp.abs(grad))

        def accepted(trial):
            # Armijo on f; near the solution f's decrease falls below its rounding, and a
            # step that halves the residual is taken instead
            size, _, _, res_t, f_t, _ = trial
            return (f_t <= f0 + 1e-4 * size * slope) | (jnp.max(jnp.abs(res_t)) <= 0.5 * worst)

        def halve(trial):
            size, j = 0.5 * trial[0], trial[-1] + 1
            return (size, lam + size * step, *point(lam + size * step), j)

        # backtracking from the full step, at most _HALVINGS halvings (the last is taken)
        first = (jnp.ones((), x.dtype), lam + step, *point(lam + step), jnp.int32(0))
        _, lam, x, res, f1, _ = jax.lax.while_loop(
            lambda trial: (trial[-1] < _HALVINGS - 1) & ~accepted(trial), halve, first
        )
        return lam, x, res, f1, k + 1

    def going(carry):
        res, k = carry[2], carry[-1]
        return (k < _NEWTON_STEPS) & (jnp.max(jnp.abs(res)) > 64 * jnp.finfo(target.dtype).eps)

    start = jnp.zeros((horizon, n), target.dtype) if dual is None else dual
    lam, x, res, _, _ = jax.lax.while_loop(going, body, (start, *point(start), jnp.int32(0)))
    # out of Newton steps with the flow residual far above rounding (sqrt(eps): 1.5e-8 in
    # float64, 3.5e-4 in float32, whose sums round more): not a projection. NaN, so that
    # training stops at this iteration instead of reporting an infeasible measure (masses
    # 1.05-2.8 where they are 1, silently)
    converged = jnp.max(jnp.abs(res)) <= jnp.sqrt(jnp.finfo(target.dtype).eps)
    return jnp.where(converged, x, jnp.nan), lam


class OMIHyperParams(eqx.Module):
    """Hyper-parameters of occupation-measure inclusion (``--hp key=value``)."""

    alpha: float = param(1e-3, "step size alpha > 0 of L - alpha (c_L + eta L)", search=(1e-4, 10.0, "log"))
    eta: float = param(0.0, "perturbation eta >= 0 (faster, at the cost of an eta-biased limit)")

    def __check_init__(self):
        check(self.alpha > 0.0, f"occupation-measure inclusion alpha must be > 0, got {self.alpha}")
        check(self.eta >= 0.0, f"occupation-measure inclusion eta must be >= 0, got {self.eta}")


class OMIState(NamedTuple):
    measure: Float[Array, "T n m"]
    dual: Float[Array, "T n"]  # the last projection's dual solution: the next one starts there
    iteration: Array  # int32 scalar
    alpha: Array
    eta: Array


def omi_init(game: Game, noise: Noise, hp: OMIHyperParams) -> OMIState:
    """MFGLib's start: the occupation measure of the uniform policy (its own flow)."""
    from mfax.solvers.classical import rollout_table, uniform_table

    table = uniform_table(game, 1)
    traj = rollout_table(game, jax.tree.map(lambda x: x[None], noise), table, record=False)
    L = traj.mu[0, :-1, :, None] * table[0]
    dual = jnp.zeros(L.shape[:2], L.dtype)
    return OMIState(L, dual, jnp.int32(0), jnp.asarray(hp.alpha, L.dtype), jnp.asarray(hp.eta, L.dtype))


def omi_step(game: Game, noise: Noise, state: OMIState) -> tuple[OMIState, Array]:
    """One forward-backward step (module docstring); returns the state and the size of
    the update ``max_t sum_{s,a} |L' - L|``."""
    L = state.measure
    tables = flow_tables(game, noise, L)
    target = L - state.alpha * (tables.cost + state.eta * L)
    new, dual = project_flow(tables, target, game.initial_mean_field(noise), state.dual)
    change = jnp.max(jnp.sum(jnp.abs(new - L), axis=(1, 2)))
    return state._replace(measure=new, dual=dual, iteration=state.iteration + 1), change


# -- the solvers -----------------------------------------------------------------------
def _metrics(figures, table, loss, norm, lr) -> Metrics:
    finite = (
        jnp.isfinite(figures.policy_return)
        & jnp.isfinite(figures.exploitability)
        & jnp.all(jnp.isfinite(table))
        & jnp.isfinite(loss)
    )
    e = figures
    return Metrics(e.policy_return, e.exploitability, e.exploitability_per_path, norm, lr, loss, finite)


class _OccupationSolver(Solver):
    game: Game
    batch: NoiseBatch
    noise: Noise
    hp: eqx.Module = eqx.field(static=True)

    def measure(self, state) -> Array:
        """The occupation measure ``L`` ``(T, n, m)`` of a state."""
        raise NotImplementedError

    def table(self, state) -> Array:
        """The policy read off ``L``, as a ``(1, T, n, m)`` table."""
        return policy_of(self.measure(state))[None]

    def policy(self, state) -> Policy:
        return table_policy(self.game, self.batch, self.table(state))

    def figures(self, state):
        return _evaluate(self.game, self.batch.noise, self.batch.weight, self.table(state)).figures


class MFOMOSolver(_OccupationSolver):
    """MF-OMO (module docstring). Deterministic; its learning rate is the ``lr``
    hyper-parameter. Metrics: ``loss`` the objective at the state the step starts from,
    ``grad_norm`` its gradient's norm."""

    trace_name = "mf_omo_chunk"

    def init(self, key, lr) -> MFOMOState:
        return omo_init(self.game, self.noise, self.hp)

    def measure(self, state: MFOMOState) -> Array:
        return omo_point(self.game, self.hp, state.variables, state.r_max)[0]

    def step(self, state: MFOMOState) -> tuple[MFOMOState, Metrics]:
        figures = self.figures(state)
        new, loss, norm = omo_step(self.game, self.noise, self.hp, state)
        return new, _metrics(figures, self.table(new), loss, norm, state.lr)


class OMISolver(_OccupationSolver):
    """Occupation-measure inclusion (module docstring). Deterministic; ``--lr`` unused.
    Metrics: ``grad_norm`` the size of the update, ``loss`` the consistency residual
    ``max |A_L L - b|`` of the state the step starts from."""

    trace_name = "omi_chunk"
    factorises = True  # the projection's Newton steps: Cholesky factors (solve_block_tridiagonal)
    update_name = "policy update"
    nonfinite_cause = (
        "the projection onto occupation measures did not converge (its result is NaN then); a smaller "
        "step alpha (a hyper-parameter), in float32 also float64, keeps it within reach"
    )

    def init(self, key, lr) -> OMIState:
        return omi_init(self.game, self.noise, self.hp)

    def measure(self, state: OMIState) -> Array:
        return state.measure

    def step(self, state: OMIState) -> tuple[OMIState, Metrics]:
        figures = self.figures(state)
        L = state.measure
        tables = flow_tables(self.game, self.noise, L)
        gap = jnp.max(jnp.abs(primal_residual(tables, L, self.game.initial_mean_field(self.noise))))
        new, change = omi_step(self.game, self.noise, state)
        return new, _metrics(figures, self.table(new), gap, change, state.alpha)


SOLVERS: dict[str, tuple[type, type]] = {
    "mf_omo": (MFOMOSolver, MFOMOHyperParams),
    "omi": (OMISolver, OMIHyperParams),
}


def build(game: Game, hp, setting: Setting, *, algo: str) -> Solver:
    """The solver ``algo`` on the setting's enumerated noise (one line without, or with
    common noise)."""
    return _solver(game, exact_batch(game, setting.exact, algo), algo, hp)


def _solver(game: Game, batch: NoiseBatch, algo: str, hp) -> Solver:
    """The solver ``algo`` on ``batch`` (refused in one line with common noise, or MF-OMO
    with a zero reward-bound estimate)."""
    noise = _no_common_noise(game, batch, algo)
    if algo == "mf_omo":
        check_r_max(game, noise, hp)
    return SOLVERS[algo][0](game, batch, noise, hp)


def solve(game: Game, algo: str, iterations: int, chunk: int = 50, **hp):
    """Run ``iterations`` updates of ``algo`` (``mf_omo`` or ``omi``) from scratch, one run; returns
    ``(table, history)`` as :func:`mfax.solvers.classical.solve` does."""
    if algo not in SOLVERS:
        raise GameError(f"unknown occupation-measure algorithm {algo!r}; allowed: {', '.join(SOLVERS)}")
    hparams = params.build(SOLVERS[algo][1], f"solver {algo!r}", **hp)
    support = game.noise_support()
    batch = exact_batch(game, None if support is None else NoiseBatch(support.noise, support.weight, True), algo)
    return run_table(_solver(game, batch, algo, hparams), iterations, chunk)


register_variants(
    build,
    {
        "mf_omo": (
            "MF-OMO, exact: gradient steps on the occupation-measure residual (no common noise)",
            MFOMOHyperParams,
            {"algo": "mf_omo"},
        ),
        "omi": (
            "occupation-measure inclusion, exact: forward-backward steps on L, exact projection (no common noise)",
            OMIHyperParams,
            {"algo": "omi"},
        ),
    },
    uses_lr=False,
    seeded=False,  # exact noise and a uniform start: nothing drawn
)
