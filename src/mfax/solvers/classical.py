"""Exact classical solvers: fictitious play (FP) and online mirror descent (OMD).

Tabular, time-dependent policies with the exact push-forward, exact Q-values and exact
best responses (``docs/algorithms/fp.md``, ``docs/algorithms/omd.md``). They need the common noise
to be off or to have a finite support of ``P`` paths (weights ``w``): the policy is then
indexed by the node of the public-history tree, stored as a table ``(P, T, n, m)`` that
is equal on paths sharing ``o_0..o_t`` (:class:`~mfax.policies.history.HistoryTabular`).
The information partition is that of the current population's rollout
(:func:`~mfax.evaluation.values.same_history`); anything a deviator cannot tell apart
is averaged with the path weights before a decision, exactly as in
:func:`~mfax.evaluation.values.info_best_response_value`. With common noise off,
``P = 1`` and everything reduces to the textbook algorithms.

**Fictitious play** (Perrin et al., 2020, discrete-time FP with the mean-field
average restated as a policy, as in OpenSpiel's ``fictitious_play``). The state
starts at the uniform policy with ``k = 0`` best responses averaged, so the first
iteration replaces it by the first best response (``mubar^1 = mu^{BR_1}`` as in
Perrin et al.'s algorithm; MFGLib instead keeps the uniform policy at weight 1/2).
One iteration:

1. roll out the average policy ``pibar``: mean fields ``mubar_t`` (the average of the
   mean fields of the policies averaged so far when the kernel does not depend on
   ``mu``);
2. best response ``b`` against that path: backward induction with the max over actions
   taken after the information average (ties split evenly);
3. ``nu_t``: state distribution of agents playing ``b`` along the population's kernels;
4. ``mubar' = (k mubar + nu) / (k + 1)`` restated as a policy,

.. math::

    \\bar\\pi'_t(a|h, s) = \\frac{\\sum_{i \\in h} w_i\\,(k\\,\\bar\\mu^i_t(s)\\,\\bar\\pi_t(a|h,s)
        + \\nu^i_t(s)\\, b_t(a|h, s))}{\\sum_{i \\in h} w_i\\,(k\\,\\bar\\mu^i_t(s) + \\nu^i_t(s))}.

Exploitability falls like ``O(1/k)`` on monotone games. Not every registered game is
monotone: linear-quadratic's ``-(m - x)^2`` rewards following the crowd, and with its
common noise on, FP and OMD creep (``bench/classical.py --only "z = +-1"``: OMD from 2281
to 6.9 in 10,000 iterations, FP to 20).

**Online mirror descent** (Perolat et al., 2022, "Scaling up mean field games with
online mirror descent"), entropy regulariser, ``y^0 = 0``:

.. math::

    \\pi^k = \\mathrm{softmax}(y^k), \\qquad
    y^{k+1}_t(h, s, a) = y^k_t(h, s, a) + \\eta\\, \\bar Q^{\\pi^k, \\mu^{\\pi^k}}_t(h, s, a)

where ``Q`` is the exact state-action value of ``pi^k`` along its own mean-field path
(backward recursion) and ``Qbar`` its path-weighted average over the paths in ``h``.
``y`` is kept shifted so that its max over actions is 0 (softmax is unchanged).

Both are pure functions over NamedTuple states (``fp_init``/``fp_step``,
``omd_init``/``omd_step``); :class:`ClassicalSolver` runs a chunk of iterations of
several runs in one compiled ``lax.scan`` for the training driver (``mfax train --algo
fp|omd``). Each step reports the exact figures of the policy it starts from.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mfax import compiling
from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import Trajectory, push_forward, rollout
from mfax.evaluation.values import backward_induction, best_response_value, policy_value, same_history
from mfax.games.base import Game, GameError, Noise, check
from mfax.params import param
from mfax.policies.base import Policy, Tabular
from mfax.policies.history import HistoryTabular
from mfax.solvers.base import SolverSpec, register_solver
from mfax.tracing import count_trace

# Guards 0/0 in FP's policy restatement (states no agent reaches): there the average is
# the plain (k pibar + b) / (k + 1); it never matters for values weighted by mu.
_TINY = 1e-30


# -- exact building blocks over a table ------------------------------------------------
def rollout_table(game: Game, noise: Noise, table: Float[Array, "P T n m"], record: bool = True) -> Trajectory:
    """Exact rollout of path ``i`` under ``table[i]`` for every support path (leading ``P``)."""
    return jax.vmap(lambda z, tab: rollout(game, Tabular(tab), z, record=record))(noise, table)


def info_share(obs: Float[Array, "P T1 d"], weight: Float[Array, " P"], horizon: int) -> Float[Array, "T P P"]:
    """Row-stochastic ``share[t, i, j]``: the weight of path ``j`` in the node of path ``i``
    at ``t`` (``w_j`` normalised over the paths sharing ``o_0..o_t`` with ``i``)."""
    same = same_history(obs)[:horizon].astype(weight.dtype) * weight[None, None, :]
    return same / jnp.sum(same, axis=-1, keepdims=True)


def info_average(share: Float[Array, "T P P"], x: Float[Array, "P T ..."]) -> Float[Array, "P T ..."]:
    """Average ``x`` over the paths of each history node: ``sum_j share[t, i, j] x[j, t]``."""
    return jnp.einsum("tij,jt...->it...", share.astype(x.dtype), x)


def info_best_response(game: Game, traj: Trajectory, noise: Noise, share) -> tuple[Array, Array]:
    """Information-consistent best response against ``traj``: ``(V*_0 (P, n), b (P, T, n, m))``.

    ``b`` is uniform over the maximisers of the node-averaged ``Q`` (:func:`greedy`; equal
    on paths sharing a history); ``V*_0`` matches :func:`~mfax.evaluation.values.info_best_response_value`.
    """

    def combine(q, t, x):
        return jnp.max(jnp.einsum("ij,jnm->inm", share[t].astype(q.dtype), q), axis=-1)

    v0, q = backward_induction(game, traj, noise, combine, emit_q=True)
    return v0, greedy(info_average(share, q))


def greedy(q: Float[Array, "... m"]) -> Float[Array, "... m"]:
    """Uniform over the maximisers of ``q`` (ties up to a few ulps of the dtype).

    Splitting ties evenly rather than taking the first maximiser matters: at the last
    step of the linear-quadratic game every action has the same reward, and a
    first-action rule would move the whole population and its mean for nothing.
    """
    tol = 64 * jnp.finfo(q.dtype).eps
    top = jnp.max(q, axis=-1, keepdims=True)
    near = (q >= top - tol * (1.0 + jnp.abs(top))).astype(q.dtype)
    return near / jnp.sum(near, axis=-1, keepdims=True)


def agent_distribution(game: Game, traj: Trajectory, noise: Noise, probs: Float[Array, "P T n m"]) -> Array:
    """``(P, T+1, n)`` state distribution of agents playing ``probs`` (from ``mu_0``) while
    the population follows ``traj``: pushed along the population's kernels."""

    def one_path(mus, z, table):
        def body(nu, x):
            mu, t, p = x
            nu_next = push_forward(nu, p, game.kernel(mu, z, t))
            return nu_next, nu_next

        ts = jnp.arange(game.horizon, dtype=jnp.int32)
        _, nus = jax.lax.scan(body, mus[0], (mus[:-1], ts, table))
        return jnp.concatenate([mus[:1], nus])

    return jax.vmap(one_path)(traj.mu, noise, probs)


class Figures(NamedTuple):
    """Exact figures of a table policy (weighted over paths)."""

    policy_return: Array
    exploitability: Array  # information-consistent (= per path when P = 1)
    exploitability_per_path: Array


def _figures(game: Game, traj: Trajectory, noise: Noise, weight, v_pi, v_info) -> Figures:
    # one path: the per-path best response is the information-consistent one
    v_path = v_info if weight.shape[0] == 1 else best_response_value(game, traj, noise)
    mu0 = traj.mu[:, 0]

    def mean(v):
        return jnp.sum(weight * jnp.sum(mu0 * v, axis=-1))

    return Figures(mean(v_pi), mean(v_info - v_pi), mean(v_path - v_pi))


# -- fictitious play -------------------------------------------------------------------
class FPState(NamedTuple):
    """Fictitious play: the average policy ``pibar`` ``(P, T, n, m)`` and the count."""

    policy: Float[Array, "P T n m"]
    iteration: Array  # int32 scalar: best responses averaged in so far


def uniform_table(game: Game, num_paths: int, dtype=None) -> Array:
    shape = (num_paths, game.horizon, game.n_states, game.n_actions)
    return jnp.full(shape, 1.0 / game.n_actions, dtype=dtype or jnp.zeros(()).dtype)


def fp_init(game: Game, num_paths: int) -> FPState:
    return FPState(uniform_table(game, num_paths), jnp.int32(0))


def fp_step(game: Game, noise: Noise, weight, state: FPState) -> tuple[FPState, Figures, Array]:
    """One exact FP iteration (module docstring). Returns ``(state, figures of the old
    average policy, max_{t,s} sum_a |pibar' - pibar|)``."""
    traj = rollout_table(game, noise, state.policy)
    share = info_share(traj.obs, weight, game.horizon)
    v_pi = policy_value(game, traj, noise)
    v_info, br = info_best_response(game, traj, noise, share)
    figures = _figures(game, traj, noise, weight, v_pi, v_info)
    nu = agent_distribution(game, traj, noise, br)[:, :-1]
    k = state.iteration.astype(state.policy.dtype)  # BRs averaged so far: pi^0 gets weight 0 (Perrin et al.)
    mu = traj.mu[:, :-1]
    num = info_average(share, k * mu[..., None] * state.policy + nu[..., None] * br)
    den = info_average(share, k * mu + nu)
    policy = (num + _TINY * (k * state.policy + br)) / (den[..., None] + _TINY * (k + 1.0))
    change = jnp.max(jnp.sum(jnp.abs(policy - state.policy), axis=-1))
    return FPState(policy, state.iteration + 1), figures, change


# -- online mirror descent -------------------------------------------------------------
class OMDState(NamedTuple):
    """Online mirror descent: cumulative scaled Q-values ``y`` ``(P, T, n, m)``."""

    y: Float[Array, "P T n m"]
    iteration: Array  # int32 scalar
    lr: Array  # learning rate eta of this run


def omd_init(game: Game, num_paths: int, lr: float) -> OMDState:
    y = jnp.zeros((num_paths, game.horizon, game.n_states, game.n_actions))
    return OMDState(y, jnp.int32(0), jnp.asarray(lr, dtype=y.dtype))


def omd_policy(state: OMDState) -> Array:
    return jax.nn.softmax(state.y, axis=-1)


def omd_step(game: Game, noise: Noise, weight, state: OMDState) -> tuple[OMDState, Figures, Array]:
    """One exact OMD iteration (module docstring). Returns ``(state, figures of the old
    policy, max_{t,s} sum_a |pi' - pi|)``."""
    policy = omd_policy(state)
    traj = rollout_table(game, noise, policy)
    share = info_share(traj.obs, weight, game.horizon)
    v_pi, q = policy_value(game, traj, noise, emit_q=True)
    v_info, _ = info_best_response(game, traj, noise, share)
    figures = _figures(game, traj, noise, weight, v_pi, v_info)
    y = state.y + state.lr * info_average(share, q)
    y = y - jnp.max(y, axis=-1, keepdims=True)
    new = OMDState(y, state.iteration + 1, state.lr)
    change = jnp.max(jnp.sum(jnp.abs(omd_policy(new) - policy), axis=-1))
    return new, figures, change


# -- policies out of tables ------------------------------------------------------------
def table_policy(game: Game, batch: NoiseBatch, table: Float[Array, "P T n m"]) -> Policy:
    """The population policy of a table: :class:`Tabular` without common noise (one
    path), else :class:`HistoryTabular` identifying its node from public observations."""
    if table.shape[0] == 1:
        return Tabular(table[0])
    obs = _observations(game, batch.noise, table)
    return HistoryTabular(table, obs, batch.weight)


@eqx.filter_jit
def _observations(game: Game, noise: Noise, table) -> Array:
    return rollout_table(game, noise, table, record=False).obs


# -- the training driver's interface ---------------------------------------------------
class ClassicalMetrics(NamedTuple):
    """Per-iteration exact figures of the policy each iteration starts from.

    ``exploitability`` is the information-consistent one (what FP and OMD drive to 0;
    equal to the per-path one without common noise); ``grad_norm`` has no gradient to
    report and holds the size of the policy update ``max_{t,s} sum_a |pi' - pi|``.
    """

    policy_return: Array
    exploitability: Array
    exploitability_per_path: Array
    grad_norm: Array
    finite: Array


class OMDHyperParams(eqx.Module):
    """Hyper-parameters of online mirror descent (``--hp key=value``)."""

    lr: float = param(0.1, "learning rate eta of y += eta * Q (Q in reward units; scale it with the rewards)")

    def __check_init__(self):
        check(self.lr > 0.0, f"OMD learning rate lr must be > 0, got {self.lr}")


def exact_batch(game: Game, exact: NoiseBatch | None, algo: str) -> NoiseBatch:
    if exact is None:
        raise GameError(
            f"{algo} needs exact noise: game {game.name!r} here has no finite noise support or --noise sample "
            "was asked (turn common noise off, e.g. --set common_noise=false, or use --noise exact)"
        )
    return exact


class ClassicalSolver:
    """FP / OMD behind the driver's solver interface (see :mod:`mfax.solvers.base`).

    Both are deterministic: several seeds or ``--lr`` values give identical runs (OMD's
    learning rate is the ``lr`` hyper-parameter, ``--hp lr=...``).
    """

    def __init__(self, config, game: Game, exact: NoiseBatch | None):
        self.algo = config.algo
        self.config, self.game = config, game
        self.batch = exact_batch(game, exact, self.algo)
        self.lr = float(config.hparams.get("lr", OMDHyperParams().lr)) if self.algo == "omd" else 0.0

    def _init_one(self):
        num_paths = self.batch.num_paths
        if self.algo == "fp":
            return fp_init(self.game, num_paths)
        return omd_init(self.game, num_paths, self.lr)

    def initial_states(self):
        states = [self._init_one() for _ in range(self.config.num_runs)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *states)

    def chunk(self, length: int):
        return make_chunk(self.game, self.batch, self.algo, length)

    def policy(self, states, r: int) -> Policy:
        one = jax.tree.map(lambda x: x[r], states)
        table = one.policy if self.algo == "fp" else omd_policy(one)
        return table_policy(self.game, self.batch, table)


def make_chunk(game: Game, batch: NoiseBatch, algo: str, length: int):
    """A compiled ``chunk(states) -> (states, ClassicalMetrics of (R, length))``."""
    step = fp_step if algo == "fp" else omd_step
    noise, weight = batch.noise, batch.weight

    def body(state, _):
        new, fig, change = step(game, noise, weight, state)
        table = new.policy if algo == "fp" else new.y
        finite = jnp.isfinite(fig.policy_return) & jnp.isfinite(fig.exploitability) & jnp.all(jnp.isfinite(table))
        return new, ClassicalMetrics(fig.policy_return, fig.exploitability, fig.exploitability_per_path, change, finite)

    def chunk(states):
        count_trace(f"{algo}_chunk")
        return jax.vmap(lambda s: jax.lax.scan(body, s, None, length=length))(states)

    return compiling.jit(chunk, donate_argnums=0)


def solve(game: Game, algo: str, iterations: int, batch: NoiseBatch | None = None, lr: float = 0.1, chunk: int = 50):
    """Run ``iterations`` of FP or OMD from scratch (one run); returns ``(table, metrics)``
    with ``metrics`` a :class:`ClassicalMetrics` of ``(iterations,)`` arrays (the figures
    of the policy each iteration started from) and ``table`` the final policy."""
    if algo not in ("fp", "omd"):
        raise GameError(f"unknown classical algorithm {algo!r}; allowed: fp, omd")
    if batch is None:
        support = game.noise_support()
        batch = exact_batch(game, None if support is None else NoiseBatch(support.noise, support.weight, True), algo)
    state = fp_init(game, batch.num_paths) if algo == "fp" else omd_init(game, batch.num_paths, lr)
    states = jax.tree.map(lambda x: x[None], state)
    out, done, chunks = [], 0, {}
    while done < iterations:
        length = min(chunk, iterations - done)
        if length not in chunks:
            chunks[length] = make_chunk(game, batch, algo, length)
        states, metrics = chunks[length](states)
        out.append(metrics)
        done += length
    metrics = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1)[0], *out)
    final = jax.tree.map(lambda x: x[0], states)
    return (final.policy if algo == "fp" else omd_policy(final)), metrics


for _name, _text, _hp in (
    ("fp", "fictitious play, exact: tabular time-dependent policy, average of exact best responses", None),
    ("omd", "online mirror descent, exact: tabular time-dependent policy, softmax of summed exact Q", OMDHyperParams),
):
    register_solver(SolverSpec(_name, _text, ClassicalSolver, _hp))
