"""An independent equilibrium oracle for the macro economy without common noise.

The classical way economists solve a perfect-foresight transition path: guess the
price path, solve the households' problem against it, aggregate, update the prices.
With common noise off (``z = 0``), starting from the flat path at the initial
distribution's prices (``(r_t, W_t) = prices(mu_0)`` for every ``t``; where the
iteration stalls, what it returns depends on that start), one iteration on a price
path ``(r_t, W_t)``:

1. households' exact best response by backward induction on the grid, the prices being
   taken from the path (not from ``mu``): ``Q_t = u_t + gamma P_t V_{t+1}``,
   ``V_t = max_a Q_t`` (ties split evenly), with the game's own kernel and rewards at
   those prices (:meth:`~mfax.games.macro.Macro.kernel_at_prices`,
   :meth:`~mfax.games.macro.Macro.reward_at_prices`);
2. push the wealth distribution forward from ``mu_0`` under that policy;
3. recompute prices ``(r_t, W_t) = prices(mu_t)`` (:meth:`~mfax.games.macro.Macro.prices`);
4. damp: ``p <- (1 - damping) p + damping p_new``, until ``max_t |p_new - p| < tol``;
   the damping is halved whenever that gap grows, and the iteration also stops when
   the damped update moves the path by less than ``tol`` (see :class:`MacroEquilibrium`).

At the fixed point the best-response policy, played by everyone, reproduces the price
path it was computed against: a mean-field equilibrium, whose exploitability (exact,
:func:`~mfax.evaluation.exploitability.evaluate`) is zero up to the tolerance. Runs in
float64 (``jax.enable_x64``) so that the tolerance 1e-8 is meaningful.

Its independence from the library's solvers is in what it iterates on (prices, not
policies) and in where its kernels and rewards come from (prices on the guessed path,
not ``mu``); one step of either pass is the library's arithmetic
(:func:`~mfax.evaluation.values.backward_scan` with
:func:`~mfax.evaluation.values.backup`, :func:`~mfax.dynamics.pushforward.push_path`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.dynamics.noise import enumerate_noise
from mfax.dynamics.pushforward import push_path
from mfax.errors import ArgumentError, GameError
from mfax.evaluation.exploitability import evaluate
from mfax.evaluation.values import backup, backward_scan
from mfax.games.macro import Macro, MacroNoise
from mfax.params import INT32_MAX
from mfax.policies.base import Tabular
from mfax.solvers.classical import greedy


class MacroEquilibrium(NamedTuple):
    """The oracle's result (numpy float64 arrays).

    Attributes:
        r, W: ``(T,)`` interest-rate and wage paths ``r_t, W_t``, ``t = 0..T-1``.
        mu: ``(T+1, n)`` mean fields of everyone playing ``policy`` with the kernels at
            the prices ``(r, W)`` returned (step 2), not at the prices recomputed from
            ``mu`` along the way: the two differ by the order of ``residual``.
            ``exploitability`` is scored on the game's own push-forward (prices from
            ``mu``).
        policy: ``(T, n, m)`` the households' best response to ``(r, W)``.
        value: ``(n,)`` ``V_0`` of the best response.
        iterations: price updates made.
        residual: the fixed-point gap ``max_t |p_new - p|`` (over r and W) at the last
            iteration: 0 at an exact equilibrium.
        move: how far the last iteration moved the price path, ``damping * residual``;
            0 when it did not move (it converged, stalled, or was the last allowed by
            ``max_iter``: the prices returned are those whose ``residual`` is reported).
        damping: the damping in force at the end (halved whenever the gap grew).
        residuals: ``(iterations,)`` the gap of every iteration.
        converged: ``residual < tol`` (an equilibrium in pure policies to ``tol``). The
            iteration also stops when, the damping having been cut, the update moves
            the path by less than ``tol`` while the gap stays above it: it was cycling
            across a flip of the discrete best response (the exact equilibrium mixes
            two savings rates somewhere) and ``residual`` says how far the pure best
            response is from a fixed point.
        stalled: it stopped that way: neither converged nor out of ``max_iter``.
        exploitability: exact exploitability of ``policy`` under the mean field it
            induces (game kernel and prices from ``mu``), ``None`` unless asked for.
    """

    r: np.ndarray
    W: np.ndarray
    mu: np.ndarray
    policy: np.ndarray
    value: np.ndarray
    iterations: int
    residual: float
    move: float
    damping: float
    residuals: np.ndarray
    converged: bool
    stalled: bool
    exploitability: float | None


def best_response_to_prices(game: Macro, r, wage):
    """Backward induction against a price path: ``(V_0 (n,), policy (T, n, m))``."""
    T = game.horizon
    kernels = jax.vmap(game.kernel_at_prices)(r, wage)
    step = jax.vmap(game.reward_at_prices)(r, wage)
    last = game.terminal_reward_at_prices(r[-1], wage[-1])
    rewards = step.at[T - 1].set(last)

    def bellman(v_next, x):
        return backup(*x, game.gamma, v_next)

    v_last = jnp.zeros(game.n_states)
    v0, q = backward_scan(bellman, lambda q, x: jnp.max(q, axis=-1), v_last, (rewards, kernels), emit_q=True)
    return v0, greedy(q)


def induced_prices(game: Macro, r, wage, policy):
    """Mean fields ``(T+1, n)`` of everyone playing ``policy`` when prices are ``(r, W)``,
    and the prices ``(r_t, W_t)`` they imply."""
    mu0 = game.initial_mean_field(MacroNoise(z=jnp.zeros(game.horizon + 1)))
    mus = push_path(mu0, policy, lambda x: game.kernel_at_prices(*x), (r, wage))
    r_new, w_new = jax.vmap(lambda m: game.prices(m, jnp.zeros(())))(mus[:-1])
    return mus, r_new, w_new


HISTORY_CHUNK = 1024  # iterations per compiled loop: the gap history is kept per chunk


def _iterate(game: Macro, damping: float, tol: float, max_iter, carry):
    """Damped fixed-point iteration from ``carry`` until it converges, stalls or reaches
    ``max_iter`` iterations in all, at most :data:`HISTORY_CHUNK` of them in this call
    (the gap history, ``(HISTORY_CHUNK,)``, is this call's). The last iteration allowed
    measures its gap and does not move: the prices returned are those whose gap is
    reported."""
    start = carry[0]
    limit = jnp.minimum(start + HISTORY_CHUNK, max_iter)

    def update(r, wage):
        _, policy = best_response_to_prices(game, r, wage)
        _, r_new, w_new = induced_prices(game, r, wage, policy)
        return r_new, w_new

    def cond(c):
        k, _, _, gap, move, step = c[:6]
        stalled = (move < tol) & (step < damping)
        return (k < limit) & (gap >= tol) & ~stalled

    def body(c):
        k, r, wage, gap_prev, _, step, history = c
        r_new, w_new = update(r, wage)
        gap = jnp.maximum(jnp.max(jnp.abs(r_new - r)), jnp.max(jnp.abs(w_new - wage)))
        # a best response over discrete actions is a step function of prices: when the
        # gap stops shrinking the iteration is cycling across a flip, so damp harder
        step = jnp.where(gap > gap_prev, 0.5 * step, step)
        move = step * gap
        hold = (gap < tol) | ((move < tol) & (step < damping)) | (k + 1 >= max_iter)
        r = jnp.where(hold, r, (1.0 - step) * r + step * r_new)
        wage = jnp.where(hold, wage, (1.0 - step) * wage + step * w_new)
        return k + 1, r, wage, gap, jnp.where(hold, 0.0, move), step, history.at[k - start].set(gap)

    return jax.lax.while_loop(cond, body, (*carry, jnp.full(HISTORY_CHUNK, jnp.nan)))


def _iterations(game: Macro, damping: float, tol: float, max_iter: int):
    """:func:`_iterate` chunk after chunk: ``(k, r, W, gap, move, step, gaps)``, memory
    independent of ``max_iter``."""
    r0, w0 = game.prices(game.initial_mean_field(MacroNoise(z=jnp.zeros(game.horizon + 1))), jnp.zeros(()))
    T = game.horizon
    inf = jnp.asarray(jnp.inf)
    carry = (jnp.int32(0), jnp.full(T, r0), jnp.full(T, w0), inf, inf, jnp.asarray(damping))
    run = jax.jit(_iterate, static_argnums=(0, 1, 2))
    gaps = []
    while True:
        start = int(carry[0])
        *carry, history = run(game, damping, tol, jnp.int32(max_iter), tuple(carry))
        k, gap, move, step = int(carry[0]), float(carry[3]), float(carry[4]), float(carry[5])
        gaps.append(np.asarray(history)[: k - start])
        stalled = step < damping and move < tol and gap >= tol
        if k >= max_iter or gap < tol or stalled or k == start:
            return (*carry, np.concatenate(gaps))


def check_settings(damping: float, tol: float, max_iter: int) -> None:
    """Refuse, in one line (an :class:`ArgumentError`), settings :func:`solve_macro`
    cannot use; the command line calls it before the game is built and checked."""
    if not 0.0 < damping <= 1.0:
        raise ArgumentError("damping", f"damping must lie in (0, 1], got {damping}")
    if not 0.0 < tol < math.inf:
        raise ArgumentError("tol", f"tol must be finite and > 0, got {tol}")
    if not 1 <= max_iter <= INT32_MAX:
        raise ArgumentError("max_iter", f"max_iter must lie in 1..{INT32_MAX}, got {max_iter}")


def solve_macro(
    game: Macro,
    damping: float = 0.5,
    tol: float = 1e-8,
    max_iter: int = 2000,
    exploitability: bool = True,
) -> MacroEquilibrium:
    """The equilibrium price path of the macro game with common noise off (module
    docstring), in float64. Raises :class:`GameError` for a game with common noise or
    bad settings. ``exploitability`` also evaluates the result exactly."""
    if not isinstance(game, Macro):
        raise GameError(f"solve_macro needs the macro game, got {game.name!r}")
    if game.common_noise:
        raise GameError("solve_macro needs the macro game with common noise off (common_noise=false)")
    check_settings(damping, tol, max_iter)
    with jax.enable_x64(True):
        k, r, wage, gap, move, step, history = _iterations(game, damping, tol, max_iter)
        value, policy = jax.jit(best_response_to_prices, static_argnums=0)(game, r, wage)
        mus, _, _ = jax.jit(induced_prices, static_argnums=0)(game, r, wage, policy)
        expl = None
        if exploitability:
            expl = evaluate(game, Tabular(policy), enumerate_noise(game), info=False).exploitability
        k = int(k)
        return MacroEquilibrium(
            r=np.asarray(r),
            W=np.asarray(wage),
            mu=np.asarray(mus),
            policy=np.asarray(policy),
            value=np.asarray(value),
            iterations=k,
            residual=float(gap),
            move=float(move),
            damping=float(step),
            residuals=history,
            converged=bool(gap < tol),
            stalled=bool(gap >= tol) and k < max_iter,
            exploitability=expl,
        )


def oracle_prices(game: Macro, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's equilibrium ``(r_t, W_t)`` paths, ``t = 0..T-1`` (see :func:`solve_macro`)."""
    eq = solve_macro(game, exploitability=False, **kwargs)
    return eq.r, eq.W
