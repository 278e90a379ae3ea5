"""Heterogeneous-agent macroeconomy ("macro"), Krusell-Smith style (``docs/games/macro.md``).

Households hold wealth ``w`` (200-point geometric grid) and income ``y`` (5 points),
choose the fraction ``a`` of cash on hand they consume (``1 - a`` is saved; the
published model calls the action the savings decision), and face prices set by the whole
wealth distribution and a hidden AR(1) productivity shock ``z``.

.. math::

    K = \\sum_s \\mu(s) w(s),\\quad L = \\sum_s \\mu(s) y(s),\\quad
    r = e^{z}\\alpha (L/(K+10^{-6}))^{1-\\alpha},\\quad
    W = e^{z}(1-\\alpha)(K/(L+10^{-6}))^{\\alpha}

    c = (1 + r) w + W y,\\qquad w' = c (1 - a),\\qquad
    r_t = u(c a),\\quad r_{T-1} = u(c),\\quad u(x) = x^{1-\\sigma}/(1-\\sigma)

``w'`` is put on the grid by a linear-interpolation lottery between its neighbours
(clipped at the ends); income moves by -1/0/+1 w.p. 0.1/0.8/0.1, clipped (the published
process), or follows an AR(1) in logs discretised by Rouwenhorst or Tauchen
(:mod:`mfax.games.income`). State index ``i * num_income + j``. Observation:
``[r_t, W_t]``. Noise pytree: :class:`MacroNoise`.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax import params
from mfax.games import income
from mfax.games.base import (
    Game,
    Kernel,
    MomentSpec,
    NoiseSupport,
    Profile,
    Spread,
    check,
    check_probabilities,
    discount,
)
from mfax.games.inequality import gini, lorenz_curve, top_share
from mfax.params import param

LORENZ_SHARES = np.linspace(0.0, 1.0, 101)
"""The population shares at which the Lorenz curve of wealth is reported (every percentile)."""


class MacroNoise(NamedTuple):
    """z: (T+1,) log productivity path, z_0 = 0."""

    z: jax.Array


INCOME_PROCESSES = ("published", "rouwenhorst", "tauchen")
# the income parameters each process does not read (Macro.income_grid_np, income_chain_np)
_NOT_READ_BY = {
    "published": ("income_rho", "income_sigma", "income_width"),
    "rouwenhorst": ("income_probs", "income_min", "income_max", "income_width"),
    "tauchen": ("income_probs", "income_min", "income_max"),
}
INITIAL_INCOME = ("published", "stationary")


# exp(z) is finite in float32 up to this log productivity; a game's z must keep Z_SIGMAS of
# its standard deviations within it (a draw beyond 8 sigma has probability 1.2e-15)
LOG_FLOAT32_MAX = math.log(params.FLOAT32_MAX)
Z_SIGMAS = 8.0
Z_SPREAD_MAX = LOG_FLOAT32_MAX / Z_SIGMAS


class Macro(Game):
    name: ClassVar[str] = "macro"

    num_wealth: int = param(200, "number of wealth grid points")
    num_income: int = param(5, "number of income grid points")
    num_actions: int = param(
        20, "actions a = (k + 0.5) / num_actions: the fraction of cash on hand consumed (1 - a is saved)"
    )
    horizon: int = param(128, "number of decision steps T")
    gamma: float = discount(0.95)
    wealth_max: float = param(99.0, "largest wealth grid point (static, as every grid parameter: numpy builds grids)")
    income_min: float = param(0.1, "smallest income grid point")
    income_max: float = param(2.0, "largest income grid point")
    grid_pivot: float = param(0.25, "pivot p of the geometric grids geomspace(lo + p, hi + p) - p")
    alpha: float = param(0.36, "capital share in production", traced=True)
    crra: float = param(
        2.0, "relative risk aversion sigma of u(x) = x^(1-sigma)/(1-sigma) (log u at sigma = 1)", traced=True
    )
    z_persistence: float = param(
        0.9,
        "AR(1) coefficient of log productivity (the common noise; with common_noise=false, of an irf shock's decay)",
        traced=True,
    )
    z_std: float = param(
        0.03,
        "standard deviation of the productivity innovations (the common noise; with common_noise=false, the unit "
        "of an irf shock)",
        traced=True,
    )
    income_probs: tuple[float, ...] = param((0.1, 0.8, 0.1), "income index moves -1/0/+1 with these probabilities")
    consumption_floor: float = param(
        1e-6,
        "u is evaluated at max(consumption, floor); only an empty sampled economy (K = 0, so W = 0) gets there",
        traced=True,
    )
    common_noise: bool = param(True, "draw productivity shocks (off: z stays 0)")
    idiosyncratic_noise: bool = param(True, "income moves (off: income index stays)")
    income_process: str = param(
        "published",
        "income process: published (index moves -1/0/+1 w.p. income_probs on the income_min..income_max grid), "
        "rouwenhorst or tauchen (AR(1) log income on num_income points, mean income 1)",
    )
    income_rho: float = param(0.9, "persistence of AR(1) log income (rouwenhorst, tauchen)")
    income_sigma: float = param(0.2, "standard deviation of the innovations of AR(1) log income")
    income_width: float = param(3.0, "tauchen: the grid spans +-income_width unconditional standard deviations")
    initial_income: str = param(
        "published",
        "income marginal of mu_0: published (uniform, mu_0 uniform) or stationary (the income chain's; "
        "wealth stays uniform)",
    )

    def __check_init__(self):
        check(self.num_wealth >= 2, f"num_wealth must be >= 2, got {self.num_wealth}")
        check(self.num_income >= 1, f"num_income must be >= 1, got {self.num_income}")
        check(self.num_actions >= 1, f"num_actions must be >= 1, got {self.num_actions}")
        check(self.wealth_max > 0.0, f"wealth_max must be > 0, got {self.wealth_max}")
        check(
            0.0 < self.income_min <= self.income_max,
            f"need 0 < income_min <= income_max, got {self.income_min}, {self.income_max}",
        )
        check(self.grid_pivot > 0.0, f"grid_pivot must be > 0, got {self.grid_pivot}")
        check((0.0 < self.alpha) & (self.alpha < 1.0), f"alpha must lie in (0, 1), got {self.alpha}")
        check(self.crra > 0.0, f"crra must be > 0, got {self.crra}")
        check(self.consumption_floor > 0.0, f"consumption_floor must be > 0, got {self.consumption_floor}")
        check(self.z_std >= 0.0, f"z_std must be >= 0, got {self.z_std}")
        traced = any(isinstance(x, jax.core.Tracer) for x in (self.z_persistence, self.z_std, self.common_noise))
        if not traced and self.common_noise:  # (a game built inside jit is checked where its values are concrete)
            spread = self.z_spread()
            check(
                spread <= Z_SPREAD_MAX,
                f"log productivity z would overflow: with z_persistence={self.z_persistence} and "
                f"z_std={self.z_std} its standard deviation reaches {np.max(spread):.3g} by t={self.horizon}, and "
                f"exp(z) is beyond float32 past z = {LOG_FLOAT32_MAX:.1f}; allowed: {Z_SIGMAS:g} standard deviations "
                f"of z within that (<= {Z_SPREAD_MAX:.2f}: |z_persistence| <= 1 with the default z_std keeps it)",
            )
        check_probabilities(self.income_probs, "income_probs")
        check(len(self.income_probs) == 3, f"income_probs needs 3 entries (-1, 0, +1), got {len(self.income_probs)}")
        check(
            self.income_process in INCOME_PROCESSES,
            f"unknown income_process {self.income_process!r}; allowed: {', '.join(INCOME_PROCESSES)}",
        )
        check(
            self.initial_income in INITIAL_INCOME,
            f"unknown initial_income {self.initial_income!r}; allowed: {', '.join(INITIAL_INCOME)}",
        )
        # a parameter of another income process would be silently ignored (income_rho=0.95
        # under the published moves, say): one set away from its default is refused
        defaults = {name: field.default for name, field in params.fields_of(type(self)).items()}
        unused = [name for name in _NOT_READ_BY[self.income_process] if getattr(self, name) != defaults[name]]
        check(
            not unused,
            f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by income_process="
            f"{self.income_process} (income_rho, income_sigma: rouwenhorst and tauchen; income_width: tauchen; "
            "income_probs, income_min, income_max: published)",
        )
        if self.income_process != "published":
            check(
                self.num_income >= 2,
                f"income_process={self.income_process} needs num_income >= 2 points, got {self.num_income}",
            )
            check(-1.0 < self.income_rho < 1.0, f"income_rho must lie in (-1, 1), got {self.income_rho}")
            check(self.income_sigma > 0.0, f"income_sigma must be > 0, got {self.income_sigma}")
            check(self.income_width > 0.0, f"income_width must be > 0, got {self.income_width}")
            with np.errstate(over="ignore", invalid="ignore"):
                levels = self.income_grid_np()  # (its stationary distribution: refused if not unique)
            check(
                bool(np.all(np.isfinite(levels)) and levels.max() <= params.FLOAT32_MAX and levels.min() > 0.0),
                f"the {self.income_process} income levels exp(x) span more than float32 can hold "
                f"(x up to {np.abs(self._log_income_chain()[0]).max():.4g}): income_sigma / sqrt(1 - income_rho^2) "
                "is too large",
            )
        if self.initial_income == "stationary":
            self.initial_income_np()  # a chain without a unique one is refused here, naming it

    def z_spread(self):
        """The standard deviation of log productivity at ``t = T``, the largest over
        ``t``: ``z_std sqrt(sum_{k < T} z_persistence^(2k))`` (numpy; an array where the
        parameters are, as for games stacked on a run axis)."""
        rho = np.asarray(self.z_persistence, dtype=np.float64)[..., None]
        with np.errstate(over="ignore"):
            total = np.sum(rho ** (2 * np.arange(self.horizon)), axis=-1)
        return np.asarray(self.z_std, dtype=np.float64) * np.sqrt(total)

    @property
    def n_states(self) -> int:
        return self.num_wealth * self.num_income

    @property
    def n_actions(self) -> int:
        return self.num_actions

    @property
    def own_history_informative(self) -> bool:
        """``False``: kernel and rewards depend on ``z`` only through the prices, which
        are the observation."""
        return False

    # -- grids (float64 numpy, converted to the default float dtype on use) ------------
    def wealth_grid_np(self) -> np.ndarray:
        p = self.grid_pivot
        return np.maximum(np.geomspace(p, self.wealth_max + p, self.num_wealth) - p, 0.0)

    def income_grid_np(self) -> np.ndarray:
        """Income levels ``y_j``: the published geometric grid, or ``exp(x_j)`` of the
        AR(1) chain's points scaled so that mean income under its stationary
        distribution is 1."""
        if self.income_process == "published":
            p = self.grid_pivot
            return np.geomspace(self.income_min + p, self.income_max + p, self.num_income) - p
        levels = np.exp(self._log_income_chain()[0])
        return levels / (income.stationary_distribution(self.income_chain_np()) @ levels)

    def _log_income_chain(self) -> tuple[np.ndarray, np.ndarray]:
        if self.income_process == "rouwenhorst":
            return income.rouwenhorst(self.num_income, self.income_rho, self.income_sigma)
        return income.tauchen(self.num_income, self.income_rho, self.income_sigma, self.income_width)

    def income_chain_np(self) -> np.ndarray:
        """``(num_income, num_income)`` transition matrix of the income index (with
        ``idiosyncratic_noise`` on): the published clipped moves or the AR(1) chain."""
        if self.income_process == "published":
            return income.clipped_moves(self.num_income, self.income_probs)
        return self._log_income_chain()[1]

    def initial_income_np(self) -> np.ndarray:
        """``(num_income,)`` income marginal of ``mu_0`` (``initial_income``)."""
        if self.initial_income == "stationary":
            return income.stationary_distribution(self.income_chain_np())
        return np.full(self.num_income, 1.0 / self.num_income)

    def wealth_below(self, x):
        """Index of the largest wealth grid point ``<= x`` (``-1`` below the grid): for any
        ``x`` but NaN exactly ``searchsorted(grid, x, side="right") - 1``, but read off the
        geometric grid's logarithm (a guess within one point, settled against the grid
        itself) instead of a binary search, whose loop of gathers XLA runs at every step
        of every rollout and backward recursion (the kernel depends on the mean field)."""
        grid = jnp.asarray(self.wealth_grid_np(), dtype=float)
        p, nw = self.grid_pivot, self.num_wealth
        step = math.log((self.wealth_max + p) / p) / (nw - 1)
        guess = jnp.floor(jnp.log(jnp.maximum(x + p, p) / p) / step).astype(jnp.int32)
        guess = jnp.clip(guess, 0, nw - 1)
        # the answer is guess - 1, guess or guess + 1: count the two grid points above
        # guess - 1 that lie at or below x (a reduction, so XLA computes it once)
        near = guess[..., None] + jnp.arange(2, dtype=guess.dtype)
        below = (grid[jnp.minimum(near, nw - 1)] <= x[..., None]) & (near < nw)
        return guess - 1 + jnp.sum(below, axis=-1, dtype=jnp.int32)

    def _w_y(self):
        w = jnp.asarray(np.repeat(self.wealth_grid_np(), self.num_income), dtype=float)
        y = jnp.asarray(np.tile(self.income_grid_np(), self.num_wealth), dtype=float)
        return w, y

    def state_features(self):
        p = self.grid_pivot
        wg, yg = self.wealth_grid_np(), self.income_grid_np()

        def log_unit(x, grid):
            lo, hi = np.log(grid[0] + p), np.log(grid[-1] + p)
            return (np.log(x + p) - lo) / (hi - lo) if hi > lo else np.zeros_like(x)

        feats = np.stack(
            [log_unit(np.repeat(wg, self.num_income), wg), log_unit(np.tile(yg, self.num_wealth), yg)], axis=-1
        )
        return jnp.asarray(feats, dtype=float)

    def action_values(self):
        return (jnp.arange(self.num_actions, dtype=float) + 0.5) / self.num_actions

    # -- noise -------------------------------------------------------------------------
    def sample_noise(self, key):
        if not self.common_noise:
            return MacroNoise(z=jnp.zeros(self.horizon + 1))
        eps = jax.random.normal(key, (self.horizon,))

        def ar1(z, e):
            z = self.z_persistence * z + self.z_std * e
            return z, z

        _, zs = jax.lax.scan(ar1, jnp.zeros(()), eps)
        return MacroNoise(z=jnp.concatenate([jnp.zeros(1), zs]))

    def noise_support(self):
        if self.common_noise:
            return None
        return NoiseSupport(MacroNoise(z=jnp.zeros((1, self.horizon + 1))), jnp.ones(1))

    def initial_mean_field(self, noise):
        if self.initial_income == "published":
            return jnp.full(self.n_states, 1.0 / self.n_states)
        mu0 = np.outer(np.full(self.num_wealth, 1.0 / self.num_wealth), self.initial_income_np())
        return jnp.asarray(mu0.reshape(-1), dtype=float)

    # -- prices, kernel, rewards -------------------------------------------------------
    def prices(self, mu, z):
        """Interest rate and wage ``(r, W)`` from the mean field and log productivity."""
        w, y = self._w_y()
        return self.prices_at(mu @ w, mu @ y, z)

    def prices_at(self, capital, labour, z):
        """Interest rate and wage ``(r, W)`` from capital ``K``, labour ``L`` and log
        productivity ``z`` (what :meth:`prices` computes from the mean field's moments)."""
        tfp = jnp.exp(z)
        r = tfp * self.alpha * (labour / (capital + 1e-6)) ** (1.0 - self.alpha)
        wage = tfp * (1.0 - self.alpha) * (capital / (labour + 1e-6)) ** self.alpha
        return r, wage

    def aggregate_state(self, r, wage, labour, newton_steps: int = 4):
        """``(K, z)`` from published prices ``(r, W)`` and labour ``L``: the inverse of
        :meth:`prices_at` in ``(K, z)``. ``log r - log W`` is strictly decreasing in
        ``K``; it is solved for ``log K`` by Newton's method from the solution without
        the ``1e-6`` offsets (exact to rounding in a few steps), then ``z`` follows from
        ``r``."""
        a, eps = self.alpha, 1e-6
        target = jnp.log(r) - jnp.log(wage)
        const = jnp.log(a / (1.0 - a)) + (1.0 - a) * jnp.log(labour) + a * jnp.log(labour + eps)
        u = const - target  # log K without the offsets

        def newton(u, _):
            k = jnp.exp(u)
            gap = const - (1.0 - a) * jnp.log(k + eps) - a * u - target
            slope = -(1.0 - a) * k / (k + eps) - a
            return u - gap / slope, None

        u, _ = jax.lax.scan(newton, u, None, length=newton_steps)
        capital = jnp.exp(u)
        z = jnp.log(r) - jnp.log(a) - (1.0 - a) * (jnp.log(labour) - jnp.log(capital + eps))
        return capital, z

    def cash_at_prices(self, r, wage):
        """Cash on hand ``(1 + r) w + W y`` of every state ``(n,)`` at given prices."""
        w, y = self._w_y()
        return (1.0 + r) * w + wage * y

    def cash_on_hand(self, mu, noise, t):
        return self.cash_at_prices(*self.prices(mu, noise.z[t]))

    def kernel(self, mu, noise, t):
        return self.kernel_at_prices(*self.prices(mu, noise.z[t]))

    def kernel_at_prices(self, r, wage):
        """The transition kernel when prices are ``(r, W)`` (given, not derived from ``mu``)."""
        grid = jnp.asarray(self.wealth_grid_np(), dtype=float)
        nw, ny = self.num_wealth, self.num_income
        w_next = self.cash_at_prices(r, wage)[:, None] * (1.0 - self.action_values())[None, :]
        lo = jnp.clip(self.wealth_below(w_next), 0, nw - 2)
        frac = jnp.clip((w_next - grid[lo]) / (grid[lo + 1] - grid[lo]), 0.0, 1.0)
        # the two neighbours as a broadcast, not a stack: XLA runs a loop over a stacked
        # minor axis slowly (measurement: bench/results/compiler_options.md)
        upper = jnp.arange(2, dtype=lo.dtype)
        wealth_idx = lo[..., None] + upper  # (n, m, 2)
        wealth_prob = jnp.where(upper == 1, frac[..., None], 1.0 - frac[..., None])
        n = self.n_states
        j = jnp.arange(n) % ny
        index = (wealth_idx * ny + j[:, None, None]).astype(jnp.int32)  # (n, m, 2): income unchanged
        if not self.idiosyncratic_noise:
            return Kernel(index, wealth_prob)
        if self.income_process != "published":
            # the AR(1) chain, independently of the action: (i', j) -> (i', j') w.p. P[j, j']
            chain = jnp.asarray(self.income_chain_np(), dtype=float)
            income_idx = (jnp.arange(n) // ny * ny)[:, None] + jnp.arange(ny)
            return Kernel(index, wealth_prob, Spread(income_idx.astype(jnp.int32), chain[j]))
        # then the income moves, independently of the action: (n, 3) from (i', j)
        moves, move_prob = jnp.array([-1, 0, 1]), jnp.asarray(self.income_probs, dtype=float)
        income_idx = (jnp.arange(n) // ny * ny)[:, None] + jnp.clip(j[:, None] + moves, 0, ny - 1)
        return Kernel(index, wealth_prob, Spread(income_idx.astype(jnp.int32), jnp.broadcast_to(move_prob, (n, 3))))

    def utility(self, x):
        # The floor never binds in the exact game (cash >= W y_min > 0 since K > 0); in a
        # sampled population of a few agents all can sit at w = 0, so K = 0, W = 0 and
        # consumption 0: a large finite penalty instead of -inf.
        x = jnp.maximum(x, self.consumption_floor)
        log_utility = self.crra == 1.0
        power = jnp.where(log_utility, 1.0, 1.0 - self.crra)  # never 0: the unused branch stays finite
        return jnp.where(log_utility, jnp.log(x), x**power / power)

    def reward_at_prices(self, r, wage):
        """Step reward ``u(c a)`` ``(n, m)`` when prices are ``(r, W)``."""
        cash = self.cash_at_prices(r, wage)
        return self.utility(cash[:, None] * self.action_values()[None, :])

    def terminal_reward_at_prices(self, r, wage):
        """Terminal reward ``u(c)`` ``(n, m)`` when prices are ``(r, W)``."""
        cash = self.cash_at_prices(r, wage)
        return jnp.broadcast_to(self.utility(cash)[:, None], (self.n_states, self.num_actions))

    def reward(self, mu, mu_next, noise, t):
        return self.reward_at_prices(*self.prices(mu, noise.z[t]))

    def terminal_reward(self, mu, mu_next, noise, t):
        return self.terminal_reward_at_prices(*self.prices(mu, noise.z[t]))

    def describe_noise(self, noise):
        z = np.asarray(noise.z)
        return f"log productivity {z.min():+.3f}..{z.max():+.3f}, ends {z[-1]:+.3f}"

    def observation(self, mu, noise, t):
        return jnp.stack(self.prices(mu, noise.z[t]))

    # -- extra outputs -----------------------------------------------------------------
    def aggregates(self, mu, noise, t):
        """Prices, capital, log productivity and wealth quantiles (smallest grid point
        whose cumulative population share reaches the level, up to the rounding of the
        cumulative sum: ``num_wealth`` units of the precision, so an exact tie such as the
        uniform start's counts as reached in every precision) at ``t``."""
        r, wage = self.prices(mu, noise.z[t])
        w, _ = self._w_y()
        grid = jnp.asarray(self.wealth_grid_np(), dtype=float)
        below = jnp.cumsum(mu.reshape(self.num_wealth, self.num_income).sum(-1))
        slack = self.num_wealth * jnp.finfo(below.dtype).eps

        def quantile(level):
            share = level * below[-1] * (1.0 - slack)
            return grid[jnp.minimum(jnp.searchsorted(below, share), self.num_wealth - 1)]

        return {
            "interest rate r_t": r,
            "wage W_t": wage,
            "capital K_t": mu @ w,
            "log productivity z_t": noise.z[t],
            "median wealth": quantile(0.5),
            "wealth, 90th percentile": quantile(0.9),
        }

    def profiles(self, mu, probs, noise):
        """The wealth distribution at ``t = 0, T/8, T/4, T/2, T`` and the savings policy
        ``1 - E[a]`` by wealth and income at ``t = 0`` and ``T/2``."""
        nw, ny, horizon = self.num_wealth, self.num_income, self.horizon
        wealth, actions = self.wealth_grid_np(), np.asarray(self.action_values())
        times = sorted({0, horizon // 8, horizon // 4, horizon // 2, horizon})
        shares = {f"t = {t}": mu[t].reshape(nw, ny).sum(-1) for t in times}
        out = [Profile("wealth distribution", wealth, shares, "wealth", "population share", "symlog")]
        for t in sorted({0, horizon // 2}):
            saved = 1.0 - (probs[t] @ actions).reshape(nw, ny)
            curves = {f"income {y:.2f}": saved[:, j] for j, y in enumerate(self.income_grid_np())}
            title = f"savings policy at t = {t}"
            out.append(Profile(title, wealth, curves, "wealth", "expected share of cash saved", "symlog"))
        return out

    # -- moments (docs/economists.md#moments) -------------------------------------------
    def state_coordinates(self):
        """State ``s = i num_income + j``: wealth ``w_i`` and income ``y_j``."""
        wealth, income = self.wealth_grid_np(), self.income_grid_np()
        return {"wealth": np.repeat(wealth, len(income)), "income": np.tile(income, len(wealth))}

    def moment_specs(self):
        """Aggregates (capital, output, consumption, prices), wealth inequality (Gini, top
        shares, the Lorenz curve) and savings rates; the definitions are in
        ``docs/economists.md``."""
        wealth, income = self.wealth_grid_np(), self.income_grid_np()
        return {
            "K": MomentSpec("capital K_t"),
            "Y": MomentSpec("output Y_t"),
            "K_over_Y": MomentSpec("capital-output ratio K_t / Y_t"),
            "L": MomentSpec("labour L_t (aggregate efficiency units)"),
            "r": MomentSpec("interest rate r_t", deviation="points"),
            "W": MomentSpec("wage W_t"),
            "z": MomentSpec("log productivity z_t", deviation="points"),
            "gini_wealth": MomentSpec("Gini coefficient of wealth", deviation="points"),
            "top10_wealth_share": MomentSpec("top 10% wealth share", deviation="points"),
            "top1_wealth_share": MomentSpec("top 1% wealth share", deviation="points"),
            "lorenz_wealth": MomentSpec(
                "Lorenz curve of wealth", (("population share", LORENZ_SHARES),), deviation="points"
            ),
            "C": MomentSpec("consumption C_t", decision=True),
            "saving_rate": MomentSpec("net saving rate S_t / (r_t K_t + W_t L_t)", decision=True, deviation="points"),
            "saving_rate_by_income": MomentSpec(
                "net saving rate by income", (("income", income),), decision=True, deviation="points"
            ),
            "saving_rate_by_state": MomentSpec(
                "net saving rate by wealth and income",
                (("wealth", wealth), ("income", income)),
                decision=True,
                deviation="points",
            ),
        }

    def output(self, mu, z):
        """Output ``Y = e^z K^alpha L^(1 - alpha)`` of the Cobb-Douglas technology whose
        marginal products are :meth:`prices` (so ``r K + W L = Y`` up to their 1e-6)."""
        w, y = self._w_y()
        capital, labour = mu @ w, mu @ y
        return jnp.exp(z) * capital**self.alpha * labour ** (1.0 - self.alpha)

    def moments(self, mu, noise, t):
        z = noise.z[t]
        r, wage = self.prices(mu, z)
        w, y = self._w_y()
        capital, output = mu @ w, self.output(mu, z)
        wealth_mass = mu.reshape(self.num_wealth, self.num_income).sum(-1)
        grid = jnp.asarray(self.wealth_grid_np(), dtype=mu.dtype)
        shares = jnp.asarray(LORENZ_SHARES, dtype=mu.dtype)
        return {
            "K": capital,
            "Y": output,
            "K_over_Y": capital / output,
            "L": mu @ y,
            "r": r,
            "W": wage,
            "z": z,
            # (the wealth grid ascends: taken as it is, no sort)
            "gini_wealth": gini(wealth_mass, grid, ascending=True),
            "top10_wealth_share": top_share(wealth_mass, grid, 0.1, ascending=True),
            "top1_wealth_share": top_share(wealth_mass, grid, 0.01, ascending=True),
            "lorenz_wealth": lorenz_curve(wealth_mass, grid, shares, ascending=True),
        }

    def decision_moments(self, mu, probs, noise, t):
        """The budget constraint ``consumption + w' = (1 + r) w + W y`` with consumption
        ``c a`` and ``w' = c (1 - a)`` under the policy's ``pi_t``; at ``t = T - 1`` the
        terminal reward consumes everything (consumption ``c``, ``w' = 0``). Net saving
        ``w' - w`` over income ``r w + W y``."""
        r, wage = self.prices(mu, noise.z[t])
        w, y = self._w_y()
        cash = self.cash_at_prices(r, wage)
        consumed = jnp.where(t == self.horizon - 1, 1.0, probs @ self.action_values())  # E_pi[a]
        consumption = cash * consumed
        saving = cash - consumption - w  # net: w' - w
        income = r * w + wage * y
        by = (self.num_wealth, self.num_income)
        mass = mu.reshape(by)
        return {
            "C": mu @ consumption,
            "saving_rate": (mu @ saving) / (mu @ income),
            "saving_rate_by_income": (mass * saving.reshape(by)).sum(0) / (mass * income.reshape(by)).sum(0),
            "saving_rate_by_state": (saving / income).reshape(by),
        }

    def noise_from_innovations(self, innovations):
        """``z_t = z_persistence z_{t-1} + z_std e_t`` from ``z_{-1} = 0`` (the game's own
        paths have ``e_0 = 0``, so ``z_0 = 0``, and ``e_t ~ N(0, 1)`` after), whether or not
        ``common_noise`` is on: with it off the policy faced ``z = 0`` only and the shock
        is unanticipated (an "MIT shock")."""

        def ar1(z, e):
            z = self.z_persistence * z + self.z_std * e
            return z, z

        _, zs = jax.lax.scan(ar1, jnp.zeros((), dtype=innovations.dtype), innovations)
        return MacroNoise(z=zs)
