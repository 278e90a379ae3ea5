"""Krusell-Smith on the macro game with common noise: bounded rationality, then its
exact exploitability.

Krusell and Smith (1998, "Income and wealth heterogeneity in the macroeconomy", JPE 106)
replace the wealth distribution in the households' state by a few moments and a
perceived law of motion for them. Here, on the finite-horizon macro game
(:mod:`mfax.games.macro`):

1. **Perceived law.** Households forecast aggregate capital by a log-linear rule in
   ``(log K_t, z_t)`` with time-dependent coefficients (the horizon is finite and the
   economy starts away from its stationary distribution),

   .. math::

       \\log K_{t+1} = a_t + b_t \\log K_t + c_t z_t, \\qquad t = 0..T-2,

   know the AR(1) of ``z`` and the labour path ``L_t`` (the income marginal moves by the
   income chain whatever anyone does, so ``L_t`` is the same on every path and known).
2. **Households' problem.** Backward induction on the grid (wealth, income) x (log K)
   x (z): at each grid point the prices are :meth:`~mfax.games.macro.Macro.prices_at`
   ``(K, L_t, z)``, rewards and kernel the game's own
   (:meth:`~mfax.games.macro.Macro.reward_at_prices`,
   :meth:`~mfax.games.macro.Macro.kernel_at_prices`), and the continuation value is
   ``E[V_{t+1}(s', K', z')]`` with ``K'`` from the rule, ``z' = rho z + sigma eps``
   integrated by Gauss-Hermite quadrature, ``V_{t+1}`` interpolated bilinearly in
   ``(log K, z)`` (clamped at the grid's ends). The log-K grid at ``t`` is centred on
   the rule's own path with ``z = 0`` (``log K_0`` known), ``+- capital_width``.
3. **Policy in the game.** A household sees the published prices ``(r_t, W_t)``, not
   ``z_t`` or the distribution. It learns the aggregate state by inverting the price
   map: with ``L_t`` known, ``log r - log W`` is strictly decreasing in ``K``, so the
   prices determine ``K_t`` and then ``z_t`` exactly
   (:meth:`~mfax.games.macro.Macro.aggregate_state`). Its decision is then the greedy
   action (ties split) of ``u`` at the actual prices plus the discounted continuation
   interpolated at the actual ``(K_t, z_t)`` (:class:`KrusellSmithPolicy`): a
   memoryless policy of the public observation, as an mfax :class:`~mfax.policies.base.Policy`.
4. **Fixed point.** Everyone plays that policy along ``paths`` fixed draws of ``z``
   (the exact push-forward, :func:`~mfax.dynamics.pushforward.rollout_batch`); the rule
   is re-estimated at each ``t`` by least squares of ``log K_{t+1}`` on
   ``(1, log K_t, z_t)`` across paths (a regressor constant across paths, ``log K_0``
   and ``log K_1``, gets coefficient 0: the rule is only used where it was estimated),
   and damped, ``coef <- (1 - damping) coef + damping coef_new`` (the first estimate
   replaces the first guess, ``b_t = 1``, ``a_t = c_t = 0``, undamped), until the
   coefficients stop moving: their change, measured by how far it moves the forecasts
   along the simulated paths (:func:`forecast_gap`), is below ``tol``. The greedy best
   response is a step function of the coefficients, so the map can cycle across a
   flip; as in the transition-path oracle (:mod:`mfax.solvers.macro_oracle`) the
   damping is halved whenever the gap does not shrink (a 2-cycle repeats its gap), and
   the iteration also stops (not converged) when the damped move falls below ``tol``.

What economists report: the ``R^2`` of the rule at each ``t`` (across fresh paths, the
coefficients held: out of sample) and den
Haan's (2010) accuracy test, the largest gap between ``log K_t`` of the exact
push-forward and the rule iterated on its own forecasts from ``log K_0`` along each
evaluation path (fresh draws). What they cannot: the exact exploitability of the KS
policy in the mean-field game (:func:`~mfax.evaluation.exploitability.evaluate`), per
path (the deviator knows the path of ``z``; an upper bound) and, where the noise is
enumerated (common noise off), information-consistent.

Without common noise the rule has nothing to regress on but time (an intercept per
``t``): KS is then a perfect-foresight transition path, as the oracle's. Runs in
float64 (``jax.enable_x64``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from mfax import params
from mfax.dynamics.noise import NoiseBatch, enumerate_noise, sample_noise
from mfax.dynamics.pushforward import rollout_batch
from mfax.errors import GameError
from mfax.evaluation.exploitability import evaluate
from mfax.evaluation.values import backup, backward_scan
from mfax.games.macro import Macro, MacroNoise
from mfax.params import param
from mfax.policies.base import Policy
from mfax.solvers.classical import greedy

QUADRATURE_MAX = 371  # numpy's hermegauss: non-finite weights from 372 nodes on


class KrusellSmithSettings(eqx.Module):
    """The algorithm's hyper-parameters (``mfax solve-macro --method krusell-smith --hp key=value``)."""

    damping: float = param(
        1.0, "weight of the re-estimated coefficients in each update, in (0, 1] (halved when the gap does not shrink)"
    )
    tol: float = param(1e-6, "stop when the re-estimated coefficients move the forecasts by less than this")
    max_iter: int = param(60, "largest number of rule updates")
    paths: int = param(64, "productivity paths simulated (exact push-forward) to estimate the rule")
    capital_points: int = param(9, "points of the log-capital grid at each t")
    capital_width: float = param(0.15, "the log-capital grid spans +- this around the rule's z = 0 path")
    z_points: int = param(7, "points of the log-productivity grid")
    z_width: float = param(
        3.0, "the z grid spans +- this many of z's largest standard deviation over the horizon (that of z_T)"
    )
    quadrature: int = param(5, f"Gauss-Hermite nodes for next period's z (1..{QUADRATURE_MAX})")
    eval_paths: int = param(64, "fresh productivity paths for R^2, den Haan's error and the exploitability")
    seed: int = param(0, f"seed of the simulated and the evaluation paths (0..{params.INT32_MAX})")

    def __check_init__(self):
        checks = [
            (0.0 < self.damping <= 1.0, f"damping must lie in (0, 1], got {self.damping}"),
            (0.0 < self.tol < math.inf, f"tol must be finite and > 0, got {self.tol}"),
            (self.max_iter >= 1, f"max_iter must be >= 1, got {self.max_iter}"),
            (
                self.paths >= 4,
                "paths must be >= 4 (the rule regresses log K_(t+1) on 3 terms across paths, and its R^2 needs "
                f"more paths than terms), got {self.paths}",
            ),
            (self.capital_points >= 2, f"capital_points must be >= 2, got {self.capital_points}"),
            (self.capital_width > 0.0, f"capital_width must be > 0, got {self.capital_width}"),
            (self.z_points >= 2, f"z_points must be >= 2, got {self.z_points}"),
            (self.z_width > 0.0, f"z_width must be > 0, got {self.z_width}"),
            (
                1 <= self.quadrature <= QUADRATURE_MAX,
                f"quadrature must lie in 1..{QUADRATURE_MAX} (numpy's Gauss-Hermite weights overflow beyond), "
                f"got {self.quadrature}",
            ),
            (self.eval_paths >= 1, f"eval_paths must be >= 1, got {self.eval_paths}"),
            (
                0 <= self.seed <= params.INT32_MAX,
                f"seed must lie in 0..{params.INT32_MAX}, got {self.seed}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise GameError(message)


def make_settings(**values) -> KrusellSmithSettings:
    """Settings from keyword values, names and types checked (one-line errors)."""
    return params.build(KrusellSmithSettings, "krusell-smith", **values)


# -- the households' side --------------------------------------------------------------
class Grids(NamedTuple):
    """The aggregate grids and what households know (float64 arrays)."""

    log_capital: Float[Array, "T nK"]
    z: Float[Array, " nz"]
    labour: Float[Array, " T"]
    nodes: Float[Array, " nq"]
    node_weights: Float[Array, " nq"]


def labour_path(game: Macro) -> np.ndarray:
    """``L_t``, ``t = 0..T-1``: mean income under the income marginal of ``mu_0`` moved
    by the income chain (policy- and noise-independent)."""
    mu0 = np.asarray(game.initial_mean_field(MacroNoise(z=jnp.zeros(game.horizon + 1))), dtype=np.float64)
    marginal = mu0.reshape(game.num_wealth, game.num_income).sum(0)
    chain = game.income_chain_np() if game.idiosyncratic_noise else np.eye(game.num_income)
    levels = game.income_grid_np()
    out = np.zeros(game.horizon)
    for t in range(game.horizon):
        out[t] = marginal @ levels
        marginal = marginal @ chain
    return out


def _z_process(game: Macro) -> tuple[bool, float, float]:
    rho, sigma = float(game.z_persistence), float(game.z_std)
    return bool(game.common_noise) and sigma > 0.0, rho, sigma


def rule_path(coef: np.ndarray, log_k0: float, z: np.ndarray) -> np.ndarray:
    """``log K_0..log K_{T-1}`` of the rule iterated on its own forecasts along ``z``
    (``(..., T)`` for ``z`` of shape ``(..., T)``): den Haan's dynamic forecast."""
    out = np.empty(z.shape)
    out[..., 0] = log_k0
    for t in range(z.shape[-1] - 1):
        out[..., t + 1] = coef[t, 0] + coef[t, 1] * out[..., t] + coef[t, 2] * z[..., t]
    return out


def make_grids(game: Macro, settings: KrusellSmithSettings, coef: np.ndarray, log_k0: float) -> Grids:
    """Per-``t`` log-capital grids around the rule's ``z = 0`` path, the z grid and the
    quadrature nodes."""
    horizon = game.horizon
    centre = rule_path(coef, log_k0, np.zeros(horizon))
    offsets = np.linspace(-settings.capital_width, settings.capital_width, settings.capital_points)
    noisy, rho, sigma = _z_process(game)
    if noisy:
        spread = sigma * math.sqrt(sum(rho ** (2 * k) for k in range(horizon)))
        z = np.linspace(-settings.z_width * spread, settings.z_width * spread, settings.z_points)
        nodes, weights = np.polynomial.hermite_e.hermegauss(settings.quadrature)
        weights = weights / weights.sum()
    else:
        z, nodes, weights = np.zeros(1), np.zeros(1), np.ones(1)
    return Grids(
        jnp.asarray(centre[:, None] + offsets[None, :]),
        jnp.asarray(z),
        jnp.asarray(labour_path(game)),
        jnp.asarray(nodes),
        jnp.asarray(weights),
    )


def _bracket(grid, x):
    """Linear-interpolation weights of ``x`` on a sorted ``grid`` (clamped at its ends):
    ``(lo, frac)`` with ``x ~ (1 - frac) grid[lo] + frac grid[lo + 1]``; ``lo + 1`` is
    clipped for a one-point grid."""
    size = grid.shape[0]
    if size == 1:
        return jnp.zeros(jnp.shape(x), jnp.int32), jnp.zeros(jnp.shape(x), grid.dtype)
    lo = jnp.clip(jnp.searchsorted(grid, x, side="right") - 1, 0, size - 2)
    frac = jnp.clip((x - grid[lo]) / (grid[lo + 1] - grid[lo]), 0.0, 1.0)
    return lo.astype(jnp.int32), frac


def interpolate(values: Float[Array, "n nK nz"], log_k_grid, z_grid, log_k, z) -> Float[Array, "n ..."]:
    """Bilinear interpolation of ``values`` over ``(log K, z)`` at points ``(log_k, z)``
    (any equal shapes), clamped at the grid's ends: ``(n, *shape)``."""
    ik, fk = _bracket(log_k_grid, log_k)
    iz, fz = _bracket(z_grid, z)
    nk, nz = log_k_grid.shape[0], z_grid.shape[0]
    ik1, iz1 = jnp.minimum(ik + 1, nk - 1), jnp.minimum(iz + 1, nz - 1)
    return (
        (1 - fk) * (1 - fz) * values[:, ik, iz]
        + fk * (1 - fz) * values[:, ik1, iz]
        + (1 - fk) * fz * values[:, ik, iz1]
        + fk * fz * values[:, ik1, iz1]
    )


def _rewards_at(game: Macro, r, wage, t):
    return jnp.where(t == game.horizon - 1, game.terminal_reward_at_prices(r, wage), game.reward_at_prices(r, wage))


def continuation(game: Macro, grids: Grids, coef, v_next, t) -> Float[Array, "n nK nz"]:
    """``E[V_{t+1}(s', K', z') | K_k, z_l]`` on the grid at ``t`` for every next state
    ``s'``: ``K'`` from the rule, ``z'`` by quadrature, ``V_{t+1}`` interpolated on the
    grid of ``t + 1``."""
    log_k = grids.log_capital[t][:, None]  # (nK, 1)
    z = grids.z[None, :]  # (1, nz)
    log_k_next = coef[0] + coef[1] * log_k + coef[2] * z  # (nK, nz)
    _, rho, sigma = _z_process(game)
    z_next = rho * z[..., None] + sigma * grids.nodes  # (1, nz, nq)
    next_grid = grids.log_capital[jnp.minimum(t + 1, game.horizon - 1)]
    shape = (log_k.shape[0], z.shape[1], grids.nodes.shape[0])
    at = interpolate(
        v_next, next_grid, grids.z, jnp.broadcast_to(log_k_next[..., None], shape), jnp.broadcast_to(z_next, shape)
    )
    return at @ grids.node_weights


def households(game: Macro, grids: Grids, coef: Float[Array, "T 3"]) -> Float[Array, "T n nK nz"]:
    """The households' backward induction on (wealth, income) x (log K) x (z) against the
    rule: returns the continuation ``E[V_{t+1}]`` at every ``t`` (zero at ``T - 1``)
    from which :class:`KrusellSmithPolicy` decides. One
    :func:`~mfax.evaluation.values.backward_scan`: its Bellman step gives the
    continuation from ``V_{t+1}``, its combine the max over actions of
    :func:`~mfax.evaluation.values.backup` at the grid's prices."""
    ts = jnp.arange(game.horizon, dtype=jnp.int32)

    def expect(v_next, x):
        t, c = x
        return continuation(game, grids, c, v_next, t)

    def decide(ev, x):
        t, _ = x
        capital = jnp.exp(grids.log_capital[t])

        def at_point(k, z, ev_point):
            r, wage = game.prices_at(k, grids.labour[t], z)
            q = backup(_rewards_at(game, r, wage, t), game.kernel_at_prices(r, wage), game.gamma, ev_point)
            return jnp.max(q, axis=-1)

        per_z = jax.vmap(at_point, in_axes=(None, 0, 1), out_axes=-1)  # over z
        return jax.vmap(per_z, in_axes=(0, None, 1), out_axes=1)(capital, grids.z, ev)  # over K

    n = game.n_states
    v_last = jnp.zeros((n, grids.log_capital.shape[1], grids.z.shape[0]))
    _, evs = backward_scan(expect, decide, v_last, (ts, coef), emit_q=True)
    return evs


class KrusellSmithPolicy(Policy):
    """A Krusell-Smith household's policy in the game (module docstring, step 3): from
    the published prices it recovers ``(K_t, z_t)``, interpolates the continuation on
    the grid and takes the greedy action at the actual prices."""

    game: Macro
    grids: Grids
    continuation: Float[Array, "T n nK nz"]

    def __call__(self, carry, obs, t):
        game, grids = self.game, self.grids
        r, wage = obs[0], obs[1]
        capital, z = game.aggregate_state(r, wage, grids.labour[t])
        ev = interpolate(self.continuation[t], grids.log_capital[t], grids.z, jnp.log(capital), z)
        q = backup(_rewards_at(game, r, wage, t), game.kernel_at_prices(r, wage), game.gamma, ev)
        return carry, greedy(q)


_households = jax.jit(households, static_argnums=0)


def _policy(game: Macro, settings: KrusellSmithSettings, coef: np.ndarray, log_k0: float) -> KrusellSmithPolicy:
    grids = make_grids(game, settings, coef, log_k0)
    continuation = _households(game, grids, jnp.asarray(coef))
    if not bool(jnp.all(jnp.isfinite(continuation))):
        # e.g. z_width=1e6: productivity e^z overflows at the grid's ends, and the greedy
        # choice read off those values scored a policy "better than its best response"
        raise GameError(
            "the households' values are not finite on these grids (log capital "
            f"{float(jnp.min(grids.log_capital)):.3g}..{float(jnp.max(grids.log_capital)):.3g}, z "
            f"{float(jnp.min(grids.z)):.3g}..{float(jnp.max(grids.z)):.3g}): use narrower grids "
            "(z_width, capital_width)"
        )
    return KrusellSmithPolicy(game, grids, continuation)


# -- the aggregate side ----------------------------------------------------------------
def simulate(game: Macro, policy: Policy, batch: NoiseBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact push-forward of everyone playing ``policy`` along ``batch``: ``log K``
    ``(P, T+1)``, ``z`` ``(P, T+1)`` and the observations ``(P, T+1, 2)``."""
    traj = rollout_batch(game, policy, batch.noise, record=False)
    wealth = jnp.asarray(np.repeat(game.wealth_grid_np(), game.num_income))
    log_k = np.log(np.asarray(traj.mu @ wealth, dtype=np.float64))
    return log_k, np.asarray(batch.noise.z, dtype=np.float64), np.asarray(traj.obs, dtype=np.float64)


class Fit(NamedTuple):
    coef: np.ndarray  # (T, 3): a_t, b_t, c_t for t = 0..T-2; the last row unused (zeros)
    r2: np.ndarray  # (T-1,), NaN where log K_{t+1} does not vary across paths


def forecast_gap(change: np.ndarray, log_k: np.ndarray, z: np.ndarray) -> float:
    """How far a change ``(da_t, db_t, dc_t)`` of the coefficients moves the rule's
    forecasts along the simulated paths: ``max_{p, t} |da_t + db_t log K^p_t + dc_t
    z^p_t|`` (log points). A norm on the coefficients (the regressors of the simulated
    paths span them wherever they were estimated) that, unlike ``max |d coef|``, does
    not blow up where ``log K_t`` barely varies across paths and intercept and slope
    trade off against each other."""
    horizon = log_k.shape[1] - 1
    moved = change[None, : horizon - 1, 0] + change[None, : horizon - 1, 1] * log_k[:, : horizon - 1]
    moved = moved + change[None, : horizon - 1, 2] * z[:, : horizon - 1]
    return float(np.max(np.abs(moved)))


def rule_r2(coef: np.ndarray, log_k: np.ndarray, z: np.ndarray, rel_tiny: float = 1e-12) -> np.ndarray:
    """``(T-1,)`` the rule's ``R^2`` at each ``t`` on given paths: ``1 - SSR / SST`` of its
    one-step forecasts of ``log K_{t+1}`` from the actual ``(log K_t, z_t)``, its
    coefficients held (out of sample on fresh paths; it can be negative). NaN where
    ``log K_{t+1}`` does not vary across paths."""
    horizon = log_k.shape[1] - 1
    out = np.full(horizon - 1, np.nan)
    for t in range(horizon - 1):
        y = log_k[:, t + 1]
        forecast = coef[t, 0] + coef[t, 1] * log_k[:, t] + coef[t, 2] * z[:, t]
        sst = np.sum((y - y.mean()) ** 2)
        if sst > (rel_tiny * max(abs(y.mean()), 1.0)) ** 2 * len(y):
            out[t] = 1.0 - np.sum((y - forecast) ** 2) / sst
    return out


def estimate_rule(log_k: np.ndarray, z: np.ndarray, rel_tiny: float = 1e-12) -> Fit:
    """Least squares of ``log K_{t+1}`` on ``(1, log K_t, z_t)`` across paths at each
    ``t`` (``log_k``, ``z``: ``(P, T+1)`` or longer); a regressor that does not vary
    across paths gets coefficient 0. ``R^2 = 1 - SSR / SST`` where ``SST > 0``."""
    horizon = log_k.shape[1] - 1
    coef = np.zeros((horizon, 3))
    r2 = np.full(horizon - 1, np.nan)
    for t in range(horizon - 1):
        y, x = log_k[:, t + 1], np.stack([log_k[:, t], z[:, t]], axis=-1)
        xm, ym = x.mean(0), y.mean()
        xc, yc = x - xm, y - ym
        scale = np.maximum(np.abs(xm), 1.0)
        active = xc.std(0) > rel_tiny * scale
        slope = np.zeros(2)
        if active.any():
            slope[active] = np.linalg.lstsq(xc[:, active], yc, rcond=None)[0]
        coef[t] = [ym - slope @ xm, slope[0], slope[1]]
        sst = yc @ yc
        if sst > (rel_tiny * max(abs(ym), 1.0)) ** 2 * len(y):
            resid = yc - xc @ slope
            r2[t] = 1.0 - (resid @ resid) / sst
    return Fit(coef, r2)


class KrusellSmithResult(NamedTuple):
    """The outcome of :func:`solve_krusell_smith` (numpy float64 arrays).

    Attributes:
        policy: the KS households' policy (:class:`KrusellSmithPolicy`).
        coef: ``(T-1, 3)`` the rule's ``(a_t, b_t, c_t)``.
        iterations: rule updates made; ``gaps``: the change of each re-estimate,
            :func:`forecast_gap`; ``coef_gaps``: its ``max |coef_new - coef|``.
        converged: the last gap ``< tol``; ``stalled``: stopped because the gap
            stopped shrinking (a cycle across a flip of the greedy best response)
            while the damped move fell below ``tol``; ``damping``: the damping at the
            end. The rule and policy reported are the ones the last gap was measured on.
        r2: ``(T-1,)`` the rule's ``R^2`` at each ``t`` on the evaluation paths, its
            coefficients held (:func:`rule_r2`; NaN where ``log K_{t+1}`` does not
            vary: ``t = 0`` always); ``r2_min``: their smallest.
        den_haan_max, den_haan_mean: den Haan's statistic, ``|log K_t - log K~_t|``
            (the exact push-forward against the rule iterated on its own forecasts from
            the true ``log K_0``), largest and mean over ``t = 1..T-1`` (``t = 0`` is
            not a forecast) and evaluation paths (log points; x100 for %).
        outside_grid: the share of (evaluation path, ``t``) where ``log K_t`` fell
            outside the households' capital grid (the interpolation was clamped);
            ``z_outside_grid``: the same for ``z`` and the households' z grid.
        exploitability, exploitability_info, policy_return: exact evaluation of the
            policy on the evaluation paths (``exploitability_info`` where the noise is
            enumerated, else ``None``): on drawn paths their means, estimates whose
            standard errors are ``exploitability_se`` (``None`` on enumerated noise).
        log_capital, z, r, W: ``(P, T+1)`` the evaluation paths.
        seconds: wall-clock of the fixed-point iteration (without the evaluation).
    """

    policy: KrusellSmithPolicy
    coef: np.ndarray
    iterations: int
    gaps: np.ndarray
    coef_gaps: np.ndarray
    converged: bool
    stalled: bool
    damping: float
    r2: np.ndarray
    r2_min: float
    den_haan_max: float
    den_haan_mean: float
    outside_grid: float
    z_outside_grid: float
    exploitability: float
    exploitability_info: float | None
    policy_return: float
    exploitability_se: float | None
    log_capital: np.ndarray
    z: np.ndarray
    r: np.ndarray
    W: np.ndarray
    seconds: float


def noise_batches(game: Macro, settings: KrusellSmithSettings) -> tuple[NoiseBatch, NoiseBatch]:
    """The simulated and the held-out productivity paths (``paths`` and ``eval_paths``
    draws from ``seed``); without common noise the one enumerated path for both."""
    if game.noise_support() is not None:  # common noise off: one path, enumerated
        batch = enumerate_noise(game)
        return batch, batch
    sim_key, eval_key = jax.random.split(jax.random.key(settings.seed))
    return sample_noise(game, sim_key, settings.paths), sample_noise(game, eval_key, settings.eval_paths)


def solve_krusell_smith(
    game: Macro,
    settings: KrusellSmithSettings | None = None,
    evaluate_policy: bool = True,
    on_update: Callable[[int, float, float], None] | None = None,
) -> KrusellSmithResult:
    """Krusell-Smith's fixed point on ``game`` (module docstring), then the reports.
    ``on_update(k, gap, damping)`` is called after each re-estimate (progress).
    Raises :class:`GameError` for another game."""
    if not isinstance(game, Macro):
        raise GameError(f"krusell-smith needs the macro game, got {game.name!r}")
    if game.horizon < 2:
        raise GameError(
            "krusell-smith needs horizon >= 2 (its rule forecasts log K_(t+1) from t = 0..T-2), "
            f"got horizon={game.horizon}"
        )
    settings = settings or KrusellSmithSettings()
    with jax.enable_x64(True):
        start = time.perf_counter()
        sim, held_out = noise_batches(game, settings)
        horizon = game.horizon
        coef = np.zeros((horizon, 3))
        coef[:, 1] = 1.0  # first guess: capital stays where it is
        log_k0 = float(
            np.log(np.asarray(game.initial_mean_field(None)) @ np.repeat(game.wealth_grid_np(), game.num_income))
        )
        step, gap_prev, gaps, coef_gaps, stalled = settings.damping, math.inf, [], [], False
        for k in range(settings.max_iter):
            policy = _policy(game, settings, coef, log_k0)
            log_k, z, _ = simulate(game, policy, sim)
            new = estimate_rule(log_k, z).coef
            gap = forecast_gap(new - coef, log_k, z)
            gaps.append(gap)
            coef_gaps.append(float(np.max(np.abs(new - coef)[: horizon - 1])))
            if on_update is not None:
                on_update(k + 1, gap, step)
            if gap < settings.tol or k + 1 == settings.max_iter:
                break  # the rule reported is the one this gap was measured on
            if k == 0:  # the first guess is no estimate: replace it, undamped
                coef = new
                continue
            contracting = gap < gap_prev
            if not contracting:  # (a 2-cycle repeats its gap): damp harder
                step *= 0.5
            gap_prev = gap
            if not contracting and step * gap < settings.tol and step < settings.damping:
                stalled = True  # the gap stopped shrinking and the damped move is below tol
                break
            coef = (1.0 - step) * coef + step * new
        policy = _policy(game, settings, coef, log_k0)
        seconds = time.perf_counter() - start
        log_k, z, obs = simulate(game, policy, held_out)
        forecast = rule_path(coef, log_k0, z[:, :horizon])
        # t >= 1: the forecast starts at the true log K_0, whose error is 0 by construction
        errors = np.abs(log_k[:, 1:horizon] - forecast[:, 1:])
        grid = np.asarray(policy.grids.log_capital)
        outside = (log_k[:, :horizon] < grid[None, :, 0] - 1e-12) | (log_k[:, :horizon] > grid[None, :, -1] + 1e-12)
        z_grid = np.asarray(policy.grids.z)
        z_outside = (z[:, :horizon] < z_grid[0] - 1e-12) | (z[:, :horizon] > z_grid[-1] + 1e-12)
        expl = info = ret = math.nan
        se = None
        if evaluate_policy:
            ev = evaluate(game, policy, held_out)
            expl, info, ret, se = ev.exploitability, ev.exploitability_info, ev.policy_return, ev.exploitability_se
        r2 = rule_r2(coef, log_k, z)
        return KrusellSmithResult(
            policy=policy,
            coef=coef[: horizon - 1],
            iterations=len(gaps),
            gaps=np.asarray(gaps),
            coef_gaps=np.asarray(coef_gaps),
            converged=bool(gaps and gaps[-1] < settings.tol),
            stalled=stalled,
            damping=step,
            r2=r2,
            r2_min=float(np.nanmin(r2)) if np.isfinite(r2).any() else math.nan,
            den_haan_max=float(errors.max()),
            den_haan_mean=float(errors.mean()),
            outside_grid=float(outside.mean()),
            z_outside_grid=float(z_outside.mean()),
            exploitability=expl,
            exploitability_info=info,
            policy_return=ret,
            exploitability_se=se,
            log_capital=log_k,
            z=z,
            r=obs[..., 0],
            W=obs[..., 1],
            seconds=seconds,
        )
