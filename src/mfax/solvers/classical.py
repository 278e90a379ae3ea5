"""Exact classical solvers: fictitious play (FP) and online mirror descent (OMD).

Tabular, time-dependent policies with the exact push-forward, exact Q-values and exact
best responses (``docs/algorithms/fp.md``, ``docs/algorithms/omd.md``). They need the common noise
to be off or to have a finite support of ``P`` paths (weights ``w``): the policy is then
indexed by the node of the public-history tree, stored as a table ``(P, T, n, m)`` that
is equal on paths sharing ``o_0..o_t`` (:class:`~mfax.policies.history.HistoryTabular`).
The information partition is that of the current population's rollout
(:func:`~mfax.evaluation.values.same_history`); anything a deviator cannot tell apart
is averaged before a decision: the best responses are the information-consistent
deviation's (:func:`~mfax.evaluation.values.info_deviation`, the one whose gain is the
reported information-consistent exploitability: the paths of a node weighted by the
belief of an agent in each state, :func:`~mfax.evaluation.values.belief_average`, each
path scored with its own values), while the policy's own values (OMD's ``Qbar^pi``) and
FP's average of policies are averaged with the path weights. With common noise off,
``P = 1`` and everything reduces to the textbook algorithms.

**Fictitious play** (Perrin et al., 2020: discrete-time FP with the mean-field average
restated as a policy). Three conventions differ between sources, all offered as hyper-parameters:

* ``initial`` (where the average starts): ``"replace"`` (default) starts with no best
  response averaged, so the first iteration replaces the initial uniform policy by the
  first best response (``mubar^1 = mu^{BR_1}``, Perrin et al.'s algorithm: the uniform
  policy is an arbitrary starting point, not a play of the game); ``"average"`` counts
  the initial policy as iterate 0, so after ``k`` updates it keeps weight ``1/(k+1)``
  (the convention of OpenSpiel's and MFGLib's fictitious play);
* ``ties`` (best-response ties): ``"split"`` (default) is uniform over the maximisers,
  ``"first"`` takes the first maximiser in action order (the first action within the
  maximisers' rounding band, :func:`~mfax.evaluation.values.maximisers`; OpenSpiel's
  ``np.argmax`` takes the first exact maximum of its rounded values). Splitting
  is the default because a first-action rule depends on how actions are numbered: at
  the last step of the linear-quadratic game every action has the same value, and
  "first" moves the whole population and its mean for nothing;
* ``flow`` (the best response's distribution ``nu``, which matters only when the kernel
  reads the mean field): ``"deviator"`` (default) pushes agents playing the best
  response along the population's kernels (step 3 below); ``"own"`` takes the mean
  field of a whole population playing it, along its own kernels (MFGLib's fictitious
  play; ``docs/games/mfglib.md``).

One iteration (``k`` policies averaged so far: best responses, plus the initial policy
under ``"average"``):

1. roll out the average policy ``pibar``: mean fields ``mubar_t`` (the average of the
   mean fields of the policies averaged so far when the kernel does not depend on
   ``mu``);
2. best response ``b`` against that path: backward induction with the max over actions
   taken after the information average (ties as ``ties`` says);
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
``omd_init``/``omd_step``); :class:`FPSolver` and :class:`OMDSolver` are the solvers
(:mod:`mfax.solvers.base`) that the driver runs (``mfax train --algo fp|omd``,
:func:`solve`). Each step reports the exact figures of the policy it starts from.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from mfax import compiling
from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import Trajectory, push_path, rollout
from mfax.errors import GameError, advice
from mfax.evaluation.values import (
    backward_induction,
    belief_average,
    info_average,
    info_deviation,
    info_share,
    maximisers,
    path_return,
    policy_and_info_values,
    split_maximisers,
)
from mfax.games.base import Game, Noise, check, common_noise_advice
from mfax.params import param
from mfax.policies.base import Policy, Tabular
from mfax.policies.history import HistoryTabular, history_nodes
from mfax.solvers import driver
from mfax.solvers.base import Metrics, Setting, Solver, register_variants

# Guards 0/0 in FP's policy restatement (states no agent reaches): there the average is
# the plain (k pibar + b) / (k + 1); it never matters for values weighted by mu.
_TINY = 1e-30


# -- exact building blocks over a table ------------------------------------------------
def rollout_table(game: Game, noise: Noise, table: Float[Array, "P T n m"], record: bool = True) -> Trajectory:
    """Exact rollout of path ``i`` under ``table[i]`` for every support path (leading ``P``)."""
    return jax.vmap(lambda z, tab: rollout(game, Tabular(tab), z, record=record))(noise, table)


def info_best_response(game: Game, traj: Trajectory, noise: Noise, share, ties: str = "split") -> tuple[Array, Array]:
    """Information-consistent best response against ``traj``: ``(V_0 (P, n), b (P, T, n, m))``.

    ``b`` puts its mass on the maximisers of the deviation's ``Q`` averaged over the
    paths of each node with the belief of an agent in each state
    (:func:`~mfax.evaluation.values.belief_average`; equal on paths sharing a history):
    uniform over them (``ties="split"``, :func:`greedy`: the deviation of
    :func:`~mfax.evaluation.values.info_deviation`) or on the first (``"first"``,
    :func:`first_maximiser`); ``V_0`` is the split deviation's value on each path.
    """

    v0, q = backward_induction(game, traj, noise, info_deviation(share), emit_q=True)
    return v0, TIE_RULES[ties](belief_average(share, traj.mu, q))


def greedy(q: Float[Array, "... m"]) -> Float[Array, "... m"]:
    """Uniform over the maximisers of ``q`` (ties up to a few ulps of the dtype).

    Splitting ties evenly rather than taking the first maximiser matters: at the last
    step of the linear-quadratic game every action has the same reward, and a
    first-action rule would move the whole population and its mean for nothing.
    """
    return split_maximisers(q)


def first_maximiser(q: Float[Array, "... m"]) -> Float[Array, "... m"]:
    """All mass on the first maximiser of ``q`` in action order, ties up to a few ulps
    as :func:`greedy` takes them (a bare ``argmax`` let rounding pick among equal values,
    differently in float32 and float64)."""
    return jax.nn.one_hot(jnp.argmax(maximisers(q), axis=-1), q.shape[-1], dtype=q.dtype)


TIE_RULES = {"split": greedy, "first": first_maximiser}


def agent_distribution(game: Game, traj: Trajectory, noise: Noise, probs: Float[Array, "P T n m"]) -> Array:
    """``(P, T+1, n)`` state distribution of agents playing ``probs`` (from ``mu_0``) while
    the population follows ``traj``: pushed along the population's kernels."""

    def one_path(mus, z, table):
        ts = jnp.arange(game.horizon, dtype=jnp.int32)
        return push_path(mus[0], table, lambda x: game.kernel(x[0], z, x[1]), (mus[:-1], ts))

    return jax.vmap(one_path)(traj.mu, noise, probs)


class Figures(NamedTuple):
    """Exact figures of a table policy (weighted over paths)."""

    policy_return: Array
    exploitability: Array  # information-consistent (= per path when P = 1)
    exploitability_per_path: Array


def _figures(traj: Trajectory, weight, v_pi, v_info, v_path) -> Figures:
    def mean(v):
        return jnp.sum(weight * path_return(traj, v))

    return Figures(mean(v_pi), mean(v_info - v_pi), mean(v_path - v_pi))


# -- fictitious play -------------------------------------------------------------------
class FPState(NamedTuple):
    """Fictitious play: the average policy ``pibar`` ``(P, T, n, m)`` and the count."""

    policy: Float[Array, "P T n m"]
    iteration: Array  # int32 scalar: best responses averaged in so far


def uniform_table(game: Game, num_paths: int, dtype=None) -> Array:
    shape = (num_paths, game.horizon, game.n_states, game.n_actions)
    return jnp.full(shape, 1.0 / game.n_actions, dtype=dtype or jnp.result_type(float))


def fp_init(game: Game, num_paths: int) -> FPState:
    # built on the host and put on the device: eagerly, jnp.full and jnp.int32 would each
    # be a program of their own (compiled, or read from the cache, in every fresh process)
    shape = (num_paths, game.horizon, game.n_states, game.n_actions)
    table = np.full(shape, 1.0 / game.n_actions, dtype=jnp.result_type(float))
    return FPState(jax.device_put(table), jax.device_put(np.int32(0)))


class FPHyperParams(eqx.Module):
    """Hyper-parameters of fictitious play (``--hp key=value``; module docstring)."""

    initial: str = param(
        "replace", "replace: the first best response replaces the initial policy; average: it stays with weight 1/(k+1)"
    )
    ties: str = param("split", "best-response ties: split (uniform over the maximisers) or first (first maximiser)")
    flow: str = param(
        "deviator",
        "the best response's distribution averaged in: deviator (its agents along the population's kernels) or "
        "own (the mean field it generates when the whole population plays it)",
    )

    def __check_init__(self):
        check(self.initial in ("replace", "average"), f"FP initial must be replace or average, got {self.initial!r}")
        check(self.ties in TIE_RULES, f"FP ties must be split or first, got {self.ties!r}")
        check(self.flow in ("deviator", "own"), f"FP flow must be deviator or own, got {self.flow!r}")


def fp_step(
    game: Game, noise: Noise, weight, state: FPState, hp: FPHyperParams | None = None
) -> tuple[FPState, Figures, Array]:
    """One exact FP iteration (module docstring). Returns ``(state, figures of the old
    average policy, max_{t,s} sum_a |pibar' - pibar|)``; ``hp``: the conventions
    (:class:`FPHyperParams`, its defaults when ``None``)."""
    hp = FPHyperParams() if hp is None else hp
    traj = rollout_table(game, noise, state.policy)
    share = info_share(traj.obs, weight, game.horizon)
    v_pi, v_info, v_path, q = policy_and_info_values(game, traj, noise, share)
    br = TIE_RULES[hp.ties](belief_average(share, traj.mu, q[..., 1]))
    figures = _figures(traj, weight, v_pi, v_info, v_path)
    if hp.flow == "own":  # the mean field of a population playing b (its own kernels)
        nu = rollout_table(game, noise, br, record=False).mu[:, :-1]
    else:
        nu = agent_distribution(game, traj, noise, br)[:, :-1]
    # policies averaged so far: the best responses, plus the initial policy under "average"
    k = state.iteration.astype(state.policy.dtype) + (1.0 if hp.initial == "average" else 0.0)
    mu = traj.mu[:, :-1]
    num = info_average(share, k * mu[..., None] * state.policy + nu[..., None] * br)
    den = info_average(share, k * mu + nu)
    policy = (num + _TINY * (k * state.policy + br)) / (den[..., None] + _TINY * (k + 1.0))
    # each row sums to 1 in exact arithmetic; renormalised, as the average feeds itself
    # back: over 40000 float32 iterations the rounding had grown to 1.4e-4 and the
    # policy was refused as a table (MFGLib's left-right game)
    policy = policy / jnp.sum(policy, axis=-1, keepdims=True)
    change = jnp.max(jnp.sum(jnp.abs(policy - state.policy), axis=-1))
    return FPState(policy, state.iteration + 1), figures, change


# -- online mirror descent -------------------------------------------------------------
class OMDState(NamedTuple):
    """Online mirror descent: cumulative scaled Q-values ``y`` ``(P, T, n, m)``."""

    y: Float[Array, "P T n m"]
    iteration: Array  # int32 scalar
    lr: Array  # learning rate eta of this run


def omd_init(game: Game, num_paths: int, lr: float) -> OMDState:
    # on the host, then on the device (see fp_init)
    y = np.zeros((num_paths, game.horizon, game.n_states, game.n_actions), dtype=jnp.result_type(float))
    return OMDState(jax.device_put(y), jax.device_put(np.int32(0)), jax.device_put(np.asarray(lr, dtype=y.dtype)))


def omd_policy(state: OMDState) -> Array:
    return jax.nn.softmax(state.y, axis=-1)


def omd_step(game: Game, noise: Noise, weight, state: OMDState) -> tuple[OMDState, Figures, Array]:
    """One exact OMD iteration (module docstring). Returns ``(state, figures of the old
    policy, max_{t,s} sum_a |pi' - pi|)``."""
    policy = omd_policy(state)
    traj = rollout_table(game, noise, policy)
    share = info_share(traj.obs, weight, game.horizon)
    v_pi, v_info, v_path, q = policy_and_info_values(game, traj, noise, share)
    figures = _figures(traj, weight, v_pi, v_info, v_path)
    y = state.y + state.lr * info_average(share, q[..., 0])
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
    obs, nodes = _observations(game, batch.noise, table)
    return HistoryTabular(table, obs, batch.weight, nodes=nodes)


@compiling.precise
@eqx.filter_jit
def _observations(game: Game, noise: Noise, table) -> tuple[Array, Array]:
    obs = rollout_table(game, noise, table, record=False).obs
    return obs, history_nodes(obs)


# -- the solvers -----------------------------------------------------------------------
class OMDHyperParams(eqx.Module):
    """Hyper-parameters of online mirror descent (``--hp key=value``)."""

    lr: float = param(
        0.1,
        "learning rate eta of y += eta * Q (Q in reward units; scale it with the rewards)",
        search=(1e-3, 10.0, "log"),
    )

    def __check_init__(self):
        check(self.lr > 0.0, f"OMD learning rate lr must be > 0, got {self.lr}")


def exact_batch(game: Game, exact: NoiseBatch | None, algo: str) -> NoiseBatch:
    if exact is None:
        if game.noise_support() is not None:  # enumerable: sampled paths were asked for
            exact_noise = advice("--noise exact", 'noise="exact"')
            raise GameError(f"{algo} needs exact noise: use {exact_noise} (game {game.name!r} enumerates its paths)")
        raise GameError(
            f"{algo} needs exact noise: game {game.name!r} here has no finite noise support "
            f"({common_noise_advice(game)})"
        )
    return exact


def _metrics(figures: Figures, change: Array, table: Array) -> Metrics:
    finite = jnp.isfinite(figures.policy_return) & jnp.isfinite(figures.exploitability) & jnp.all(jnp.isfinite(table))
    nan = jnp.full((), jnp.nan, change.dtype)
    return Metrics(
        figures.policy_return, figures.exploitability, figures.exploitability_per_path, change, nan, nan, finite
    )


class FPSolver(Solver):
    """Fictitious play as a solver (module docstring). Deterministic: every seed gives
    the same run; ``--lr`` is not used. The metrics of a step are the exact figures of
    the policy it starts from (``exploitability``: the information-consistent one);
    ``grad_norm`` holds the size of the update."""

    game: Game
    batch: NoiseBatch
    hp: FPHyperParams = eqx.field(static=True)

    trace_name = "fp_chunk"

    def init(self, key, lr) -> FPState:
        return fp_init(self.game, self.batch.num_paths)

    def step(self, state: FPState) -> tuple[FPState, Metrics]:
        new, figures, change = fp_step(self.game, self.batch.noise, self.batch.weight, state, self.hp)
        return new, _metrics(figures, change, new.policy)

    def table(self, state: FPState) -> Array:
        return state.policy

    def policy(self, state: FPState) -> Policy:
        return table_policy(self.game, self.batch, self.table(state))


class OMDSolver(Solver):
    """Online mirror descent as a solver (module docstring). Deterministic; its learning
    rate is the ``lr`` hyper-parameter (``--hp lr=...``), not ``--lr``."""

    game: Game
    batch: NoiseBatch
    hp: OMDHyperParams = eqx.field(static=True)

    trace_name = "omd_chunk"

    def init(self, key, lr) -> OMDState:
        return omd_init(self.game, self.batch.num_paths, self.hp.lr)

    def step(self, state: OMDState) -> tuple[OMDState, Metrics]:
        new, figures, change = omd_step(self.game, self.batch.noise, self.batch.weight, state)
        return new, _metrics(figures, change, new.y)

    def table(self, state: OMDState) -> Array:
        return omd_policy(state)

    def policy(self, state: OMDState) -> Policy:
        return table_policy(self.game, self.batch, self.table(state))


def solve(
    game: Game,
    algo: str,
    iterations: int,
    batch: NoiseBatch | None = None,
    lr: float = 0.1,
    chunk: int = 50,
    **fp_hp,
):
    """Run ``iterations`` updates of FP or OMD from scratch (one run); returns
    ``(table, history)``: ``table`` the policy after ``iterations`` updates, ``history`` a
    :class:`~mfax.solvers.base.Metrics` of ``(iterations + 1,)`` arrays whose entry ``k``
    holds the exact figures of the policy after ``k`` updates (entry 0: the initial
    uniform policy; the last entry: ``table``'s) and, as ``grad_norm``, the size of the
    update from it. ``fp_hp``: FP's ``initial`` / ``ties`` conventions
    (:class:`FPHyperParams`)."""
    hparams = {"fp": lambda: FPHyperParams(**fp_hp), "omd": lambda: OMDHyperParams(lr=lr)}
    if algo not in hparams:
        raise GameError(f"unknown classical algorithm {algo!r}; allowed: {', '.join(hparams)}")
    if fp_hp and algo != "fp":
        raise GameError(f"{algo} takes no FP conventions; got {sorted(fp_hp)}")
    if batch is None:
        support = game.noise_support()
        batch = exact_batch(game, None if support is None else NoiseBatch(support.noise, support.weight, True), algo)
    return run_table(SOLVERS[algo](game, batch, hparams[algo]()), iterations, chunk)


def run_table(solver: Solver, iterations: int, chunk: int = 50):
    """One run of an exact table solver from scratch: ``(table, history)`` as
    :func:`solve` describes (``history``: the figures of the policy after ``k = 0..iterations``
    updates)."""
    states = driver.initial_states(solver, [0], [0.0])
    states, history = driver.iterate(solver, states, iterations, chunk)
    table = solver.table(jax.tree.map(lambda x: x[0], states))
    # the figures of the last policy: one more step (the driver donates its input)
    _, last = driver.iterate(solver, states, 1)
    history = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1)[0], history, last)
    return table, history


SOLVERS = {"fp": FPSolver, "omd": OMDSolver}


def build(game: Game, hp, setting: Setting, *, algo: str) -> Solver:
    """FP or OMD (``algo``) on the setting's enumerated noise (one-line error without)."""
    return SOLVERS[algo](game, exact_batch(game, setting.exact, algo), hp)


register_variants(
    build,
    {
        "fp": (
            "fictitious play, exact: tabular time-dependent policy, average of exact best responses",
            FPHyperParams,
            {"algo": "fp"},
        ),
        "omd": (
            "online mirror descent, exact: tabular time-dependent policy, softmax of summed exact Q",
            OMDHyperParams,
            {"algo": "omd"},
        ),
    },
    uses_lr=False,
    seeded=False,  # exact noise and a uniform start: nothing drawn
)
