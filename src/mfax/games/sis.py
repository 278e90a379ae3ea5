"""A worked example of writing your own game: an SIS epidemic ("sis").

This file is the template for new games: extend :class:`~mfax.games.base.Game` (the
class is then final), declare every parameter with :func:`~mfax.params.param` (default +
help text; ``traced=True`` for the numbers that only enter arithmetic, so that a sweep
over them is one compiled program), validate in ``__check_init__`` and implement the
abstract methods of the protocol (its optional ones, such as ``aggregates``, have
defaults).
Register it with :func:`mfax.games.register` and every tool works on it: exact
push-forward, sampled populations, evaluation, exploitability, the CLI.

The game. Each agent is susceptible (state 0) or infected (state 1) and each day either
goes out (action 0) or stays home (action 1) at a cost. A susceptible agent who goes out
is infected with probability ``beta * I_t`` (``I_t`` the infected share), at home with
``home_factor * beta * I_t``; infected agents recover with probability ``recovery``.
The transmission rate is a hidden common shock (``beta_mild`` or ``beta_severe``, drawn
once), and the only public information is a noisy daily infection report
``I_t + report_error * e_t``, ``e_t = +-1``. The noise has finite support
(2 regimes x 2^T report errors), so exploitability can be computed exactly on the tree
of public reports.

.. math::

    P(S \\to I) = \\beta\\, I_t\\, (1 - (1 - h)\\,[a = \\text{home}]),\\quad
    P(I \\to S) = \\rho,\\quad
    r_t(s, a) = -c_I [s = I] - c_H [a = \\text{home}]
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfax.games.base import Game, Kernel, NoiseSupport, check, discount
from mfax.params import param


class SISNoise(NamedTuple):
    """severe: () float, 1 in the severe regime; report_error: (T+1,) float in {-1, +1}."""

    severe: jax.Array
    report_error: jax.Array


class SIS(Game):
    name: ClassVar[str] = "sis"

    horizon: int = param(8, "number of days T (exact noise enumerates 2 * 2^T paths)")
    gamma: float = discount(1.0)
    initial_infected: float = param(0.2, "infected share at t = 0", traced=True)
    beta_mild: float = param(0.4, "transmission rate in the mild regime", traced=True)
    beta_severe: float = param(
        0.9, "transmission rate in the severe regime (read only with common_noise=true)", traced=True
    )
    severe_probability: float = param(
        0.5,
        "probability of the severe regime (static: the noise support keeps only possible regimes; "
        "read only with common_noise=true)",
    )
    home_factor: float = param(0.1, "infection risk at home relative to going out", traced=True)
    recovery: float = param(0.3, "daily recovery probability", traced=True)
    infection_cost: float = param(1.0, "cost of a day spent infected", traced=True)
    home_cost: float = param(0.3, "cost of a day at home", traced=True)
    report_error: float = param(
        0.05, "size of the error of the public infection report (read only with common_noise=true)", traced=True
    )
    common_noise: bool = param(True, "random regime and report errors (off: mild regime, exact reports)")

    def __check_init__(self):
        check(self.horizon <= 16, f"horizon must be <= 16 for the sis game (2^T noise paths), got {self.horizon}")
        for name in ("initial_infected", "severe_probability", "home_factor", "recovery"):
            value = getattr(self, name)
            check((0.0 <= value) & (value <= 1.0), f"{name} must lie in [0, 1], got {value}")
        check(self.report_error >= 0.0, f"report_error must be >= 0 (the size of the error), got {self.report_error}")
        for name in ("beta_mild", "beta_severe"):
            value = getattr(self, name)
            message = f"{name} must lie in [0, 1] (it is a probability at I = 1), got {value}"
            check((0.0 <= value) & (value <= 1.0), message)

    n_states: ClassVar[int] = 2
    n_actions: ClassVar[int] = 2

    @property
    def own_history_informative(self) -> bool:
        """``True`` while the regime is random and matters: a susceptible agent's own
        infection depends on the hidden ``beta``, and the public reports need not reveal
        it (they do not when the population stays home). For games stacked on a run
        axis: whether it holds for any of them."""
        regimes_differ = bool(np.any(np.not_equal(self.beta_mild, self.beta_severe)))
        return self.common_noise and regimes_differ and 0.0 < self.severe_probability < 1.0

    def state_features(self):
        return jnp.array([[0.0], [1.0]])

    def action_values(self):
        return jnp.array([0.0, 1.0])

    def sample_noise(self, key):
        if not self.common_noise:
            return SISNoise(jnp.zeros(()), jnp.zeros(self.horizon + 1))
        k_regime, k_report = jax.random.split(key)
        severe = jax.random.bernoulli(k_regime, self.severe_probability).astype(float)
        signs = jnp.where(jax.random.bernoulli(k_report, 0.5, (self.horizon,)), 1.0, -1.0)
        return SISNoise(severe, jnp.concatenate([signs, jnp.zeros(1)]))

    def noise_support(self):
        if not self.common_noise:
            return NoiseSupport(SISNoise(jnp.zeros(1), jnp.zeros((1, self.horizon + 1))), jnp.ones(1))
        regimes = [(0.0, 1.0 - self.severe_probability), (1.0, self.severe_probability)]
        regimes = [(r, p) for r, p in regimes if p > 0.0]
        # every sign sequence, in itertools.product((-1, 1), repeat=T) order: the bits of 0..2^T-1
        bits = (np.arange(2**self.horizon)[:, None] >> np.arange(self.horizon - 1, -1, -1)) & 1
        signs = np.concatenate([2.0 * bits - 1.0, np.zeros((len(bits), 1))], axis=1)
        severe = np.repeat([r for r, _ in regimes], len(signs))
        errors = np.tile(signs, (len(regimes), 1))
        weight = np.repeat([p / len(signs) for _, p in regimes], len(signs))
        return NoiseSupport(
            SISNoise(jnp.asarray(severe, float), jnp.asarray(errors, float)), jnp.asarray(weight, float)
        )

    def initial_mean_field(self, noise):
        return jnp.array([1.0 - self.initial_infected, self.initial_infected])

    def kernel(self, mu, noise, t):
        beta = jnp.where(noise.severe > 0, self.beta_severe, self.beta_mild)
        risk = beta * mu[1] * jnp.array([1.0, self.home_factor])  # by action
        p_infected = jnp.stack([risk, jnp.full(2, 1.0 - self.recovery)])  # (n, m)
        index = jnp.broadcast_to(jnp.array([0, 1], jnp.int32), (2, 2, 2))
        prob = jnp.stack([1.0 - p_infected, p_infected], axis=-1)
        return Kernel(index, prob)

    def reward(self, mu, mu_next, noise, t):
        infected = jnp.array([0.0, 1.0])[:, None]
        home = jnp.array([0.0, 1.0])[None, :]
        return -self.infection_cost * infected - self.home_cost * home + jnp.zeros((2, 2))

    def describe_noise(self, noise):
        return f"{'severe' if float(noise.severe) == 1.0 else 'mild'} regime"

    def observation(self, mu, noise, t):
        return jnp.stack([mu[1] + self.report_error * noise.report_error[t]])
