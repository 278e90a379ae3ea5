"""Exact tabular solvers beside FP and OMD: damped fixed-point iteration, Boltzmann policy
iteration, tabular Munchausen online mirror descent and prior descent.

Each is a pure iteration over a tabular, time-dependent policy indexed by the node of the
public-history tree, ``(P, T, n, m)`` (:mod:`mfax.solvers.classical`, whose building
blocks they reuse: the exact rollout of a table, the information partition of the
current population's rollout, the information-consistent backward induction, the
figures). Each step reports the exact figures of the policy it starts from. Pages:
``docs/algorithms/fixed_point.md``, ``docs/algorithms/boltzmann.md``,
``docs/algorithms/munchausen.md``, ``docs/algorithms/prior_descent.md``.

Notation: ``pi_k`` the policy of iteration ``k`` (``pi_0`` uniform), ``mu_k`` its mean-field
path on every noise path, ``Qbar`` a state-action value averaged with the path weights
over the paths of a public node (equal on them), ``Q*_k`` the information-consistent
optimal ``Q`` against ``mu_k`` and, for a policy ``pi`` and an entropy weight ``eps >= 0``,
``Q^{pi}_eps`` its soft value along ``mu_k``,

.. math::

    Q^{\\pi}_{\\epsilon,t}(s, a) = R_t(s, a) + \\gamma \\sum_{s'} P_t(s'|s, a)
        \\sum_{a'} \\pi_{t+1}(a'|s') \\big[Q^{\\pi}_{\\epsilon,t+1}(s', a')
        - \\epsilon \\ln \\pi_{t+1}(a'|s')\\big]

(``eps = 0``: the ordinary ``Q^pi``).

* **fixed point** (``fixed_point``): ``pi_{k+1} = (1 - d) pi_k + d BR_k`` with ``BR_k``
  the best response to ``mu_k`` (greedy on ``Qbar*_k``, or ``softmax(Qbar*_k / temperature)``),
  ``d`` the damping; or (``mixing="mean_field"``) the mixture of the mean fields
  ``(1 - d) mu_k + d nu_k`` restated as a policy, as fictitious play does with
  ``d = 1/(k+1)`` (``nu_k``: the best response's agents along the population's kernels,
  or with ``flow="own"`` the mean field of a population playing it, as MFGLib's and
  OpenSpiel's fictitious play with a constant weight). ``d = 1``: the plain fixed-point
  (best-response) iteration.
* **Boltzmann policy iteration** (``boltzmann``):
  ``pi_{k+1} = softmax(Qbar^{pi_k}_eps / temperature)``.
* **Munchausen OMD** (``munchausen``, tabular and exact): with temperature ``tau`` and
  Munchausen coefficient ``alpha``,
  ``Qtilde_{k+1} = R + alpha tau ln pi_k + gamma P <pi_k, Qtilde_{k+1} - tau ln pi_k>``,
  ``pi_{k+1} = softmax(Qtilde_{k+1} / tau)``; equivalently
  ``ln pi_{k+1} = alpha ln pi_k + Qbar^{pi_k}_{(1-alpha) tau} / tau`` (normalised).
  ``alpha = 1``: OMD with learning rate ``1/tau``; ``alpha = 0``: Boltzmann policy
  iteration with temperature and entropy ``tau``.
* **prior descent** (``prior_descent``): ``pi_{k+1} ∝ q_k exp(Qbar*_k / eta)`` with the
  prior ``q`` (uniform at first) replaced by the current policy after every
  ``prior_every`` iterations (``0``: never, then it is the softmax fixed-point iteration).

The hyper-parameters that scale an update (damping, temperatures, ``alpha``, ``eta``) are
held in the state as arrays, as OMD's learning rate is: runs differing only in them can
be stacked and stepped in one program.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import entr
from jaxtyping import Array, Float

from mfax import params
from mfax.dynamics.noise import NoiseBatch
from mfax.errors import GameError
from mfax.evaluation.values import (
    backward_induction,
    belief_average,
    info_average,
    info_share,
    policy_and_info_values,
)
from mfax.games.base import Game, Noise, check
from mfax.params import param
from mfax.policies.base import Policy
from mfax.solvers.base import Metrics, Setting, Solver, register_variants
from mfax.solvers.classical import (
    _TINY,
    TIE_RULES,
    Figures,
    _figures,
    _metrics,
    agent_distribution,
    exact_batch,
    rollout_table,
    run_table,
    table_policy,
    uniform_table,
)


# -- shared building blocks ------------------------------------------------------------
class _Evaluation(NamedTuple):
    """What every step needs of the policy it starts from."""

    traj: object  # Trajectory (P paths)
    share: Array  # (T, P, P) information shares
    figures: Figures
    q_star: Array  # (P, T, n, m) the information-consistent deviation's Q, belief-averaged over each node


def _evaluate(game: Game, noise: Noise, weight, policy: Array) -> _Evaluation:
    """Roll out ``policy`` ``(P, T, n, m)``, its information partition, its exact figures
    and the node-averaged information-consistent optimal ``Q`` against its mean fields."""
    traj = rollout_table(game, noise, policy)
    share = info_share(traj.obs, weight, game.horizon)
    v_pi, v_info, v_path, q = policy_and_info_values(game, traj, noise, share)
    figures = _figures(traj, weight, v_pi, v_info, v_path)
    return _Evaluation(traj, share, figures, belief_average(share, traj.mu, q[..., 1]))


def soft_q(game: Game, traj, noise: Noise, share, entropy) -> Array:
    """``Qbar^{pi}_eps`` ``(P, T, n, m)``: the node-averaged soft state-action value of the
    policy recorded in ``traj`` (``traj.probs``) along its own mean fields, entropy weight
    ``entropy`` (module docstring; ``0``: the ordinary ``Q^pi``)."""

    def combine(q, t, x):
        return jnp.sum(x["probs"] * q, axis=-1) + entropy * jnp.sum(entr(x["probs"]), axis=-1)

    _, q = backward_induction(game, traj, noise, combine, emit_q=True)
    return info_average(share, q)


def _very_negative(dtype) -> Array:
    """A finite stand-in for ``-inf`` in log-space: a sixteenth of the dtype's most
    negative number (a few of them add up without overflowing)."""
    return jnp.asarray(-jnp.finfo(dtype).max / 16, dtype)


def _over(q: Array, temperature) -> Array:
    """``q / temperature`` shifted by its largest entry over actions (``<= 0``, the largest
    ``0``): the same softmax, and still one when the temperature is so small that
    ``q / temperature`` overflows (``inf - inf`` made it NaN) or is below the dtype's
    smallest normal number (flushed to zero: ``0 / 0``): the greedy limit, ties split
    evenly. Entries that overflow to ``-inf`` are kept finite (:func:`_very_negative`)."""
    top = jnp.max(q, axis=-1, keepdims=True)
    scaled = (q - jnp.where(jnp.isfinite(top), top, 0.0)) / jnp.maximum(temperature, jnp.finfo(q.dtype).tiny)
    return jnp.maximum(scaled, _very_negative(q.dtype))


def _log_softmax(x: Array) -> Array:
    """``log_softmax`` over actions, kept above :func:`_very_negative`: a log-policy of
    ``-inf`` (a greedy limit) made the next step's ``alpha tau ln pi`` (``alpha = 0``) or
    its prior NaN. Only such limits are touched: a log-probability of -100 or -10^4 (an
    action a mirror-descent method remembers as bad) is kept as it is."""
    return jnp.maximum(jax.nn.log_softmax(x, axis=-1), _very_negative(x.dtype))


def _change(new: Array, old: Array) -> Array:
    return jnp.max(jnp.sum(jnp.abs(new - old), axis=-1))


def _log_uniform(game: Game, num_paths: int) -> Array:
    return jnp.log(uniform_table(game, num_paths))


def _scalar(value: float, like: Array) -> Array:
    return jnp.asarray(value, dtype=like.dtype)


# -- damped fixed-point iteration ------------------------------------------------------
class FixedPointHyperParams(eqx.Module):
    """Hyper-parameters of the damped fixed-point iteration (``--hp key=value``)."""

    damping: float = param(
        0.1,
        "damping d in (0, 1]: pi' = (1 - d) pi + d BR (d = 1: plain fixed-point iteration)",
        search=(0.01, 1.0, "log"),
    )
    temperature: float = param(
        0.0, "0: greedy best response; > 0: softmax(Q* / temperature) (OpenSpiel's fixed point with a temperature)"
    )
    mixing: str = param(
        "policy", "policy: mix the policies; mean_field: mix the mean fields and restate as a policy (as FP does)"
    )
    ties: str = param("split", "greedy best-response ties: split (uniform over the maximisers) or first")
    flow: str = param(
        "deviator",
        "with mixing=mean_field, the target's distribution nu: deviator (its agents along the population's kernels) "
        "or own (the mean field it generates when the whole population plays it: MFGLib's and OpenSpiel's damped FP)",
    )

    def __check_init__(self):
        check(0.0 < self.damping <= 1.0, f"fixed-point damping must lie in (0, 1], got {self.damping}")
        check(self.flow in ("deviator", "own"), f"fixed-point flow must be deviator or own, got {self.flow!r}")
        check(
            self.flow == "deviator" or self.mixing == "mean_field",
            "fixed-point flow=own applies to mixing=mean_field (mixing=policy mixes no distributions)",
        )
        check(self.temperature >= 0.0, f"fixed-point temperature must be >= 0, got {self.temperature}")
        check(self.mixing in ("policy", "mean_field"), f"mixing must be policy or mean_field, got {self.mixing!r}")
        check(self.ties in TIE_RULES, f"fixed-point ties must be split or first, got {self.ties!r}")


class FixedPointState(NamedTuple):
    policy: Float[Array, "P T n m"]
    iteration: Array  # int32 scalar
    damping: Array  # d of this run


def fixed_point_step(
    game: Game, noise: Noise, weight, state: FixedPointState, hp: FixedPointHyperParams
) -> tuple[FixedPointState, Figures, Array]:
    """One damped fixed-point iteration (module docstring); returns the new state, the
    figures of the old policy and the size of the update."""
    ev = _evaluate(game, noise, weight, state.policy)
    if hp.temperature > 0.0:
        target = jax.nn.softmax(_over(ev.q_star, hp.temperature), axis=-1)
    else:
        target = TIE_RULES[hp.ties](ev.q_star)
    d = state.damping
    if hp.mixing == "policy":
        policy = (1.0 - d) * state.policy + d * target
    else:
        # the mean field (1 - d) mu + d nu restated as a policy (FP's restatement, weight d)
        if hp.flow == "own":  # the mean field of a population playing the target (its own kernels)
            nu = rollout_table(game, noise, target, record=False).mu[:, :-1]
        else:
            nu = agent_distribution(game, ev.traj, noise, target)[:, :-1]
        mu = ev.traj.mu[:, :-1]
        num = info_average(ev.share, (1.0 - d) * mu[..., None] * state.policy + d * nu[..., None] * target)
        den = info_average(ev.share, (1.0 - d) * mu + d * nu)
        policy = (num + _TINY * ((1.0 - d) * state.policy + d * target)) / (den[..., None] + _TINY)
    new = FixedPointState(policy, state.iteration + 1, state.damping)
    return new, ev.figures, _change(policy, state.policy)


# -- Boltzmann policy iteration --------------------------------------------------------
class BoltzmannHyperParams(eqx.Module):
    """Hyper-parameters of Boltzmann policy iteration (``--hp key=value``)."""

    temperature: float = param(
        1.0, "temperature of pi' = softmax(Q^pi / temperature), reward units", search=(0.01, 10.0, "log")
    )
    entropy: float = param(0.0, "entropy weight of the evaluated Q^pi (0: the game's own Q^pi), reward units")

    def __check_init__(self):
        check(self.temperature > 0.0, f"Boltzmann temperature must be > 0, got {self.temperature}")
        check(self.entropy >= 0.0, f"Boltzmann entropy must be >= 0, got {self.entropy}")


class LogPolicyState(NamedTuple):
    """A softmax-family iteration: the log-policy ``ln pi_k`` ``(P, T, n, m)``
    (normalised) and the run's scale parameters."""

    log_policy: Float[Array, "P T n m"]
    iteration: Array  # int32 scalar
    temperature: Array  # Boltzmann: temperature; Munchausen: tau
    weight: Array  # Boltzmann: entropy; Munchausen: alpha


def boltzmann_step(game: Game, noise: Noise, weight, state: LogPolicyState) -> tuple[LogPolicyState, Figures, Array]:
    """One Boltzmann policy iteration (module docstring)."""
    policy = jnp.exp(state.log_policy)
    ev = _evaluate(game, noise, weight, policy)
    q = soft_q(game, ev.traj, noise, ev.share, state.weight)
    log_policy = _log_softmax(_over(q, state.temperature))
    new = state._replace(log_policy=log_policy, iteration=state.iteration + 1)
    return new, ev.figures, _change(jnp.exp(log_policy), policy)


# -- tabular Munchausen online mirror descent ------------------------------------------
class MunchausenHyperParams(eqx.Module):
    """Hyper-parameters of tabular Munchausen OMD (``--hp key=value``)."""

    tau: float = param(
        1.0, "temperature tau, reward units (alpha = 1: OMD with learning rate 1/tau)", search=(0.01, 10.0, "log")
    )
    alpha: float = param(
        0.99, "Munchausen coefficient in [0, 1] (1: OMD; 0: Boltzmann policy iteration)", search=(0.9, 1.0)
    )

    def __check_init__(self):
        check(self.tau > 0.0, f"Munchausen tau must be > 0, got {self.tau}")
        check(0.0 <= self.alpha <= 1.0, f"Munchausen alpha must lie in [0, 1], got {self.alpha}")


def munchausen_step(game: Game, noise: Noise, weight, state: LogPolicyState) -> tuple[LogPolicyState, Figures, Array]:
    """One tabular Munchausen OMD iteration (module docstring): the Munchausen ``Qtilde``
    by one backward pass along ``mu_k``, then ``pi_{k+1} = softmax(Qtilde / tau)``."""
    tau, alpha = state.temperature, state.weight
    log_pi = state.log_policy
    policy = jnp.exp(log_pi)
    ev = _evaluate(game, noise, weight, policy)
    # Qtilde = R + alpha tau ln pi + gamma P V with V = <pi, Qtilde - tau ln pi>
    #        = <pi, R + gamma P V> + (1 - alpha) tau H(pi)
    q = soft_q(game, ev.traj, noise, ev.share, (1.0 - alpha) * tau)
    q_tilde = q + alpha * tau * log_pi
    log_policy = _log_softmax(_over(q_tilde, tau))
    new = state._replace(log_policy=log_policy, iteration=state.iteration + 1)
    return new, ev.figures, _change(jnp.exp(log_policy), policy)


# -- prior descent ---------------------------------------------------------------------
class PriorDescentHyperParams(eqx.Module):
    """Hyper-parameters of prior descent (``--hp key=value``)."""

    eta: float = param(1.0, "temperature eta of pi' ∝ prior exp(Q* / eta), reward units", search=(0.01, 10.0, "log"))
    prior_every: int = param(1, "the prior becomes the current policy after every this many iterations (0: never)")

    def __check_init__(self):
        check(self.eta > 0.0, f"prior-descent eta must be > 0, got {self.eta}")
        check(self.prior_every >= 0, f"prior_every must be >= 0 (0: never), got {self.prior_every}")


class PriorDescentState(NamedTuple):
    log_policy: Float[Array, "P T n m"]  # ln pi_k (normalised)
    log_prior: Float[Array, "P T n m"]  # ln q_k (normalised)
    iteration: Array  # int32 scalar
    eta: Array


def prior_descent_step(
    game: Game, noise: Noise, weight, state: PriorDescentState, prior_every: int
) -> tuple[PriorDescentState, Figures, Array]:
    """One prior-descent iteration (module docstring)."""
    policy = jnp.exp(state.log_policy)
    ev = _evaluate(game, noise, weight, policy)
    log_policy = _log_softmax(state.log_prior + _over(ev.q_star, state.eta))
    iteration = state.iteration + 1
    if prior_every > 0:
        log_prior = jnp.where(iteration % prior_every == 0, log_policy, state.log_prior)
    else:
        log_prior = state.log_prior
    new = PriorDescentState(log_policy, log_prior, iteration, state.eta)
    return new, ev.figures, _change(jnp.exp(log_policy), policy)


# -- the solvers -----------------------------------------------------------------------
class _TableSolver(Solver):
    """Shared parts: the game, its enumerated noise and the hyper-parameters; the run's
    policy is the table :meth:`table` returns, scored exactly."""

    game: Game
    batch: NoiseBatch
    hp: eqx.Module = eqx.field(static=True)

    def table(self, state) -> Array:
        return jnp.exp(state.log_policy)

    def policy(self, state) -> Policy:
        return table_policy(self.game, self.batch, self.table(state))

    def _step(self, step, state):
        new, figures, change = step(self.game, self.batch.noise, self.batch.weight, state)
        return new, _metrics(figures, change, self.table(new))


class FixedPointSolver(_TableSolver):
    """Damped fixed-point iteration (module docstring). Deterministic; ``--lr`` unused."""

    trace_name = "fixed_point_chunk"

    def init(self, key, lr) -> FixedPointState:
        table = uniform_table(self.game, self.batch.num_paths)
        return FixedPointState(table, jnp.int32(0), _scalar(self.hp.damping, table))

    def table(self, state: FixedPointState) -> Array:
        return state.policy

    def step(self, state: FixedPointState) -> tuple[FixedPointState, Metrics]:
        return self._step(lambda g, z, w, s: fixed_point_step(g, z, w, s, self.hp), state)


class BoltzmannSolver(_TableSolver):
    """Boltzmann policy iteration (module docstring). Deterministic; ``--lr`` unused."""

    trace_name = "boltzmann_chunk"

    def init(self, key, lr) -> LogPolicyState:
        log_pi = _log_uniform(self.game, self.batch.num_paths)
        return LogPolicyState(
            log_pi, jnp.int32(0), _scalar(self.hp.temperature, log_pi), _scalar(self.hp.entropy, log_pi)
        )

    def step(self, state: LogPolicyState) -> tuple[LogPolicyState, Metrics]:
        return self._step(boltzmann_step, state)


class MunchausenSolver(_TableSolver):
    """Tabular Munchausen OMD (module docstring). Deterministic; ``--lr`` unused."""

    trace_name = "munchausen_chunk"

    def init(self, key, lr) -> LogPolicyState:
        log_pi = _log_uniform(self.game, self.batch.num_paths)
        return LogPolicyState(log_pi, jnp.int32(0), _scalar(self.hp.tau, log_pi), _scalar(self.hp.alpha, log_pi))

    def step(self, state: LogPolicyState) -> tuple[LogPolicyState, Metrics]:
        return self._step(munchausen_step, state)


class PriorDescentSolver(_TableSolver):
    """Prior descent (module docstring). Deterministic; ``--lr`` unused."""

    trace_name = "prior_descent_chunk"

    def init(self, key, lr) -> PriorDescentState:
        log_pi = _log_uniform(self.game, self.batch.num_paths)
        return PriorDescentState(log_pi, log_pi, jnp.int32(0), _scalar(self.hp.eta, log_pi))

    def step(self, state: PriorDescentState) -> tuple[PriorDescentState, Metrics]:
        every = self.hp.prior_every
        return self._step(lambda g, z, w, s: prior_descent_step(g, z, w, s, every), state)


SOLVERS = {
    "fixed_point": (FixedPointSolver, FixedPointHyperParams),
    "boltzmann": (BoltzmannSolver, BoltzmannHyperParams),
    "munchausen": (MunchausenSolver, MunchausenHyperParams),
    "prior_descent": (PriorDescentSolver, PriorDescentHyperParams),
}


def build(game: Game, hp, setting: Setting, *, algo: str) -> Solver:
    """The solver ``algo`` on the setting's enumerated noise (one-line error without)."""
    return SOLVERS[algo][0](game, exact_batch(game, setting.exact, algo), hp)


def solve(game: Game, algo: str, iterations: int, batch: NoiseBatch | None = None, chunk: int = 50, **hp):
    """Run ``iterations`` updates of one of these solvers (``hp``: its hyper-parameters)
    from scratch, one run; returns ``(table, history)`` as
    :func:`mfax.solvers.classical.solve` does (``history`` entry ``k``: the exact figures
    of the policy after ``k`` updates, ``k = 0..iterations``)."""
    if algo not in SOLVERS:
        raise GameError(f"unknown tabular algorithm {algo!r}; allowed: {', '.join(SOLVERS)}")
    solver_cls, hp_cls = SOLVERS[algo]
    hparams = params.build(hp_cls, f"solver {algo!r}", **hp)
    if batch is None:
        support = game.noise_support()
        batch = exact_batch(game, None if support is None else NoiseBatch(support.noise, support.weight, True), algo)
    return run_table(solver_cls(game, batch, hparams), iterations, chunk)


register_variants(
    build,
    {
        "fixed_point": (
            "damped fixed-point iteration, exact: pi' = (1 - d) pi + d BR (tabular)",
            FixedPointHyperParams,
            {"algo": "fixed_point"},
        ),
        "boltzmann": (
            "Boltzmann policy iteration, exact: pi' = softmax(Q^pi / temperature) (tabular)",
            BoltzmannHyperParams,
            {"algo": "boltzmann"},
        ),
        "munchausen": (
            "Munchausen online mirror descent, exact and tabular (alpha = 1: OMD with lr 1/tau)",
            MunchausenHyperParams,
            {"algo": "munchausen"},
        ),
        "prior_descent": (
            "prior descent, exact: pi' ∝ prior exp(Q* / eta), prior renewed every prior_every (tabular)",
            PriorDescentHyperParams,
            {"algo": "prior_descent"},
        ),
    },
    uses_lr=False,
    seeded=False,  # exact noise and a uniform start: nothing drawn
)
