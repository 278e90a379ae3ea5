"""Finite Markov chains for an AR(1) process: Rouwenhorst's and Tauchen's discretisations.

An AR(1) process ``x' = rho x + sigma eps``, ``eps ~ N(0, 1)``, ``|rho| < 1``, has
unconditional standard deviation ``sigma_x = sigma / sqrt(1 - rho^2)``. Both methods give
``N`` equally spaced points ``x_0 < .. < x_{N-1}`` symmetric about 0 and a transition
matrix ``P[i, j] = Pr(x' = x_j | x = x_i)`` (rows sum to one); they are written here from
their published definitions.

* **Rouwenhorst** (1995), in the form of Kopecky and Suen (2010, "Finite state Markov-chain
  approximations to highly persistent processes", Review of Economic Dynamics 13): with
  ``p = (1 + rho) / 2``, the points span ``[-psi, psi]``, ``psi = sigma_x sqrt(N - 1)``,
  and ``P_N`` is built from ``P_2 = [[p, 1 - p], [1 - p, p]]`` by

  .. math::

      P_N = p \\begin{bmatrix} P_{N-1} & 0 \\\\ 0^\\top & 0 \\end{bmatrix}
          + (1 - p) \\begin{bmatrix} 0 & P_{N-1} \\\\ 0 & 0^\\top \\end{bmatrix}
          + (1 - p) \\begin{bmatrix} 0^\\top & 0 \\\\ P_{N-1} & 0 \\end{bmatrix}
          + p \\begin{bmatrix} 0 & 0^\\top \\\\ 0 & P_{N-1} \\end{bmatrix},

  every row but the first and the last then halved. Its stationary distribution is
  binomial, ``pi_i = C(N-1, i) / 2^(N-1)``; its conditional mean is exactly
  ``rho x``, so the chain's first-order autocorrelation is ``rho`` and its unconditional
  variance ``sigma_x^2``, exactly, for every ``N``.

* **Tauchen** (1986, "Finite state Markov-chain approximations to univariate and vector
  autoregressions", Economics Letters 20): the points span ``[-m sigma_x, m sigma_x]``
  (``m = width``, 3 in Tauchen's paper), spacing ``d``; with ``Phi`` the standard normal
  distribution function,
  ``P[i, j] = Phi((x_j - rho x_i + d/2) / sigma) - Phi((x_j - rho x_i - d/2) / sigma)``,
  the first column taking everything below ``x_0 + d/2`` and the last everything above
  ``x_{N-1} - d/2``. Its moments match the process only approximately (badly when
  ``rho`` is close to one and ``N`` small, Kopecky and Suen's point).

Everything is numpy float64: the chains are built once, on the host, like the game's grids.
"""

from __future__ import annotations

import math

import numpy as np

from mfax.errors import GameError


def _check(points: int, rho: float, sigma: float) -> None:
    if points < 2:
        raise GameError(f"an AR(1) discretisation needs at least 2 points, got {points}")
    if not -1.0 < rho < 1.0:
        raise GameError(f"the AR(1) persistence must lie in (-1, 1), got {rho}")
    if not sigma > 0.0:
        raise GameError(f"the AR(1) innovation standard deviation must be > 0, got {sigma}")


def unconditional_std(rho: float, sigma: float) -> float:
    """``sigma / sqrt(1 - rho^2)``: the standard deviation of the stationary AR(1)."""
    return sigma / math.sqrt(1.0 - rho * rho)


def rouwenhorst(points: int, rho: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Rouwenhorst's chain for ``x' = rho x + sigma eps``: ``(x (N,), P (N, N))``."""
    _check(points, rho, sigma)
    p = (1.0 + rho) / 2.0
    trans = np.array([[p, 1.0 - p], [1.0 - p, p]])
    for size in range(3, points + 1):
        grown = np.zeros((size, size))
        grown[:-1, :-1] += p * trans
        grown[:-1, 1:] += (1.0 - p) * trans
        grown[1:, :-1] += (1.0 - p) * trans
        grown[1:, 1:] += p * trans
        grown[1:-1] /= 2.0
        trans = grown
    psi = unconditional_std(rho, sigma) * math.sqrt(points - 1)
    return np.linspace(-psi, psi, points), trans


def tauchen(points: int, rho: float, sigma: float, width: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Tauchen's chain for ``x' = rho x + sigma eps`` on ``[-width sigma_x, width sigma_x]``:
    ``(x (N,), P (N, N))``."""
    _check(points, rho, sigma)
    if not width > 0.0:
        raise GameError(f"the Tauchen grid's width must be > 0 standard deviations, got {width}")
    top = width * unconditional_std(rho, sigma)
    x = np.linspace(-top, top, points)
    half = (x[1] - x[0]) / 2.0
    cdf = np.vectorize(lambda v: 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))))
    mean = rho * x[:, None]  # (N, 1): the conditional mean from each point
    upper = cdf((x[None, :] + half - mean) / sigma)
    lower = cdf((x[None, :] - half - mean) / sigma)
    trans = upper - lower
    trans[:, 0] = upper[:, 0]
    trans[:, -1] = 1.0 - lower[:, -1]
    return x, trans


def stationary_distribution(trans: np.ndarray) -> np.ndarray:
    """The stationary distribution ``pi = pi P`` of a finite chain (``sum pi = 1``): the
    least-squares solution of the stacked system, unique for an irreducible chain."""
    n = trans.shape[0]
    system = np.vstack([trans.T - np.eye(n), np.ones((1, n))])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    pi = np.linalg.lstsq(system, rhs, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def chain_moments(x: np.ndarray, trans: np.ndarray) -> tuple[float, float]:
    """``(persistence, variance)`` of the chain in its stationary distribution: the
    first-order autocorrelation ``Corr(x_t, x_{t+1})`` and ``Var(x_t)``."""
    pi = stationary_distribution(trans)
    mean = pi @ x
    var = pi @ (x - mean) ** 2
    cov = pi @ ((x - mean) * (trans @ (x - mean)))
    return float(cov / var), float(var)


def clipped_moves(points: int, probs: tuple[float, ...]) -> np.ndarray:
    """The ``(N, N)`` transition matrix of index moves ``-1, 0, +1`` with probabilities
    ``probs``, clipped to ``0..N-1`` (the macro game's published income process)."""
    trans = np.zeros((points, points))
    for move, prob in zip((-1, 0, 1), probs, strict=True):
        for i in range(points):
            trans[i, min(max(i + move, 0), points - 1)] += prob
    return trans
