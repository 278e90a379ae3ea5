"""Income processes: Rouwenhorst's and Tauchen's AR(1) chains against their published
definitions and the process's moments, and the macro game's income options (published
defaults unchanged, the AR(1) chain in the kernel, the stationary initial marginal)."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import mfax
from mfax import params
from mfax.dynamics.noise import sample_noise
from mfax.dynamics.pushforward import rollout_batch
from mfax.games import income
from mfax.games.macro import Macro
from mfax.policies.base import Uniform


def test_rouwenhorst_three_points_by_hand():
    rho, sigma = 0.6, 0.5
    x, trans = income.rouwenhorst(3, rho, sigma)
    p = (1 + rho) / 2
    q = 1 - p
    expected = [[p * p, 2 * p * q, q * q], [p * q, p * p + q * q, p * q], [q * q, 2 * p * q, p * p]]
    np.testing.assert_allclose(trans, expected, rtol=1e-14)
    psi = sigma / math.sqrt(1 - rho**2) * math.sqrt(2)
    np.testing.assert_allclose(x, [-psi, 0.0, psi], rtol=1e-14)


@pytest.mark.parametrize("points,rho", [(2, 0.3), (5, 0.9), (9, 0.99), (12, -0.5)])
def test_rouwenhorst_rows_binomial_and_exact_moments(points, rho):
    sigma = 0.2
    x, trans = income.rouwenhorst(points, rho, sigma)
    np.testing.assert_allclose(trans.sum(axis=1), 1.0, atol=1e-14)
    assert np.all(trans >= 0)
    binomial = np.array([math.comb(points - 1, i) for i in range(points)]) / 2.0 ** (points - 1)
    np.testing.assert_allclose(income.stationary_distribution(trans), binomial, atol=1e-12)
    # the conditional mean is exactly rho x, so persistence and variance are exact
    np.testing.assert_allclose(trans @ x, rho * x, atol=1e-12)
    persistence, variance = income.chain_moments(x, trans)
    assert persistence == pytest.approx(rho, abs=1e-12)
    assert variance == pytest.approx(sigma**2 / (1 - rho**2), rel=1e-12)


def test_tauchen_three_points_by_hand():
    # rho = 0, sigma = 1, width 1: points -1, 0, 1, spacing 1; every row is
    # [Phi(-1/2), Phi(1/2) - Phi(-1/2), 1 - Phi(1/2)]
    x, trans = income.tauchen(3, 0.0, 1.0, width=1.0)
    phi = 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))
    np.testing.assert_allclose(x, [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(trans, np.tile([1 - phi, 2 * phi - 1, 1 - phi], (3, 1)), rtol=1e-12)


def test_tauchen_rows_and_approximate_moments():
    # stated tolerance: rho = 0.9 on 21 points (width 3) within 0.005 in persistence and
    # 5% in variance; on 5 points Tauchen's variance is far off (Kopecky and Suen's point)
    # while Rouwenhorst's stays exact
    rho, sigma = 0.9, 0.2
    target = sigma**2 / (1 - rho**2)
    x, trans = income.tauchen(21, rho, sigma)
    np.testing.assert_allclose(trans.sum(axis=1), 1.0, atol=1e-13)
    assert np.all(trans >= 0)
    persistence, variance = income.chain_moments(x, trans)
    assert abs(persistence - rho) < 0.005
    assert abs(variance / target - 1) < 0.05
    _, coarse = income.chain_moments(*income.tauchen(5, rho, sigma))
    assert abs(coarse / target - 1) > 0.3


@pytest.mark.parametrize(("points", "rho"), [(3, 0.99), (3, 0.98), (4, 0.995), (5, 0.999)])
def test_tauchen_keeps_its_far_tails_and_their_stationary_weight(points, rho):
    """0.5 (1 + erf) rounded probabilities below about 1e-16 to 0: at rho = 0.99 on 3
    points the chain became the identity (never moving), its 'stationary distribution' the
    uniform one and the income levels, scaled to mean 1 under it, wrong; at 0.98 P[1, 0]
    and P[1, 2] differed by 0.2%."""
    sigma = 0.2
    x, trans = income.tauchen(points, rho, sigma)
    np.testing.assert_allclose(trans, trans[::-1, ::-1], rtol=1e-9)  # symmetric about 0
    assert np.all(np.diag(trans, 1) > 0.0) and np.all(np.diag(trans, -1) > 0.0)  # irreducible
    half = (x[1] - x[0]) / 2
    for i, j in [(1, 0), (points - 1, 0)]:  # the lower tail by the complementary error function
        exact = 0.5 * math.erfc(-((x[0] + half - rho * x[i]) / sigma) / math.sqrt(2))
        assert trans[i, j] == pytest.approx(exact, rel=1e-12)
    pi = income.stationary_distribution(trans)
    # balance of flows at every state, written without 1 - P[k, k] (which rounds to 0)
    for k in range(points):
        others = np.arange(points) != k
        outflow, inflow = pi[k] * trans[k, others].sum(), pi[others] @ trans[others, k]
        assert outflow == pytest.approx(inflow, rel=1e-9)
    np.testing.assert_allclose(pi, pi[::-1], rtol=1e-12)
    if (points, rho) == (3, 0.99):  # the reviewer's independent log-space computation
        np.testing.assert_allclose(pi, [0.0864, 0.8271, 0.0864], atol=1e-4)


def test_stationary_distribution_needs_one_closed_class():
    with pytest.raises(mfax.GameError, match=r"3 closed classes of income indices \(0; 1; 2\)"):
        income.stationary_distribution(np.eye(3))
    with pytest.raises(mfax.GameError, match="not unique"):
        income.stationary_distribution(np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    # one closed class and transient states: unique (the transient ones get 0)
    np.testing.assert_allclose(income.stationary_distribution(np.array([[0.5, 0.5], [0.0, 1.0]])), [0.0, 1.0])
    np.testing.assert_allclose(income.stationary_distribution(np.array([[1.0, 0.0], [0.5, 0.5]])), [1.0, 0.0])
    # a persistent Rouwenhorst chain: 1 + rho rounded to 2 and the chain to the identity
    _, trans = income.rouwenhorst(5, 0.9999999999999999, 0.2)
    assert np.all(np.diag(trans, 1) > 0.0)
    np.testing.assert_allclose(income.stationary_distribution(trans), np.array([1, 4, 6, 4, 1]) / 16, rtol=1e-9)


def test_chain_errors_are_one_line():
    with pytest.raises(mfax.GameError, match="at least 2 points"):
        income.rouwenhorst(1, 0.5, 0.1)
    with pytest.raises(mfax.GameError, match=r"persistence must lie in \(-1, 1\)"):
        income.tauchen(5, 1.0, 0.1)
    with pytest.raises(mfax.GameError, match="standard deviation must be > 0"):
        income.rouwenhorst(5, 0.5, 0.0)
    with pytest.raises(mfax.GameError, match="width"):
        income.tauchen(5, 0.5, 0.1, width=0.0)


SMALL = dict(num_wealth=12, horizon=6)


def macro(**values) -> Macro:
    """The macro game with ``values``, checked as ``mfax.make`` checks them but without
    its compiled self-check (these tests read grids and chains, or compile on their own)."""
    return params.build(Macro, "game 'macro'", **values)


def test_published_income_is_unchanged():
    game = macro(**SMALL)
    p = game.grid_pivot
    np.testing.assert_allclose(game.income_grid_np(), np.geomspace(0.1 + p, 2.0 + p, 5) - p)
    np.testing.assert_allclose(np.asarray(game.initial_mean_field(None)), 1.0 / game.n_states)
    # the published chain: index moves -1/0/+1 w.p. 0.1/0.8/0.1, clipped; doubly
    # stochastic, so its stationary distribution is uniform
    chain = game.income_chain_np()
    np.testing.assert_allclose(chain[0], [0.9, 0.1, 0, 0, 0])
    np.testing.assert_allclose(chain[2], [0, 0.1, 0.8, 0.1, 0])
    np.testing.assert_allclose(income.stationary_distribution(chain), 0.2, atol=1e-12)


def test_ar1_income_grid_and_chain():
    for process in ("tauchen", "rouwenhorst"):
        game = macro(**SMALL, income_process=process, income_rho=0.8, income_sigma=0.3)
        chain = game.income_chain_np()
        np.testing.assert_allclose(chain, getattr(income, process)(5, 0.8, 0.3)[1])
        levels = game.income_grid_np()
        pi = income.stationary_distribution(chain)
        assert pi @ levels == pytest.approx(1.0, rel=1e-12)  # mean income 1
        ratios = np.log(levels[1:] / levels[:-1])
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-10)  # equally spaced in logs


def test_ar1_chain_in_the_kernel():
    # the kernel's income stage: from (w_i', y_j) to (w_i', y_j') w.p. chain[j, j'],
    # whatever the action
    game = macro(**SMALL, income_process="rouwenhorst", income_rho=0.7, num_income=4)
    then = jax.jit(lambda r, w: game.kernel_at_prices(r, w).then)(0.05, 1.0)
    ny, index = 4, np.asarray(then.index)
    np.testing.assert_array_equal(index, (np.arange(game.n_states) // ny * ny)[:, None] + np.arange(ny))
    np.testing.assert_allclose(np.asarray(then.prob), game.income_chain_np()[np.arange(game.n_states) % ny], atol=1e-7)


@pytest.mark.slow
def test_stationary_initial_income_stays_stationary():
    game = mfax.make(
        "macro", **SMALL, income_process="rouwenhorst", initial_income="stationary", income_rho=0.7, num_income=4
    )
    batch = sample_noise(game, jax.random.key(1), 2)
    traj = rollout_batch(game, Uniform(game.n_states, game.n_actions), batch.noise)
    marginals = np.asarray(traj.mu).reshape(2, game.horizon + 1, game.num_wealth, 4).sum(2)
    binomial = np.array([1, 3, 3, 1]) / 8
    np.testing.assert_allclose(marginals, np.broadcast_to(binomial, marginals.shape), atol=1e-6)
    # (the published moves would flatten it)
    assert np.abs(binomial @ income.clipped_moves(4, (0.1, 0.8, 0.1)) - binomial).max() > 0.01
    np.testing.assert_allclose(np.asarray(traj.mu).sum(-1), 1.0, atol=1e-5)
    wealth = np.asarray(traj.mu[:, 0]).reshape(2, game.num_wealth, 4).sum(-1)
    np.testing.assert_allclose(wealth, 1.0 / game.num_wealth, atol=1e-7)  # wealth starts uniform


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"income_process": "ar1"}, "unknown income_process 'ar1'; allowed: published, rouwenhorst, tauchen"),
        ({"initial_income": "ergodic"}, "unknown initial_income 'ergodic'; allowed: published, stationary"),
        ({"income_process": "tauchen", "income_rho": 1.0}, r"income_rho must lie in \(-1, 1\), got 1.0"),
        ({"income_process": "rouwenhorst", "income_sigma": 0.0}, "income_sigma must be > 0"),
        ({"income_process": "tauchen", "income_width": -1.0}, "income_width must be > 0"),
        ({"income_process": "rouwenhorst", "num_income": 1}, "needs num_income >= 2"),
        # another process's parameter was silently ignored (a persistence that changed nothing)
        ({"income_rho": 0.95}, "income_rho is not used by income_process=published"),
        ({"income_process": "rouwenhorst", "income_width": 2.0}, "income_width is not used by income_process=rouw"),
        ({"income_process": "tauchen", "income_probs": (0.2, 0.6, 0.2)}, "income_probs is not used by income_pro"),
        ({"income_process": "tauchen", "income_min": 0.2, "income_max": 3.0}, "income_min, income_max are not used"),
        # overflowing levels were numpy warnings, then a NaN kernel naming no parameter
        (
            {"income_process": "rouwenhorst", "income_rho": 0.9999999999999999},
            "the rouwenhorst income levels exp\\(x\\) span more than float32 can hold",
        ),
        # a chain that never moves has no unique stationary marginal (it was the uniform one)
        ({"income_probs": (0.0, 1.0, 0.0), "initial_income": "stationary"}, "5 closed classes of income indices"),
    ],
)
def test_bad_income_parameters(bad, message):
    with pytest.raises(mfax.GameError, match=message):
        mfax.make("macro", **SMALL, **bad)
