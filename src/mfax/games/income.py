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
    p, q = (1.0 + rho) / 2.0, (1.0 - rho) / 2.0  # q, not 1 - p: 1 + rho rounds to 2 for rho near 1
    trans = np.array([[p, q], [q, p]])
    for size in range(3, points + 1):
        grown = np.zeros((size, size))
        grown[:-1, :-1] += p * trans
        grown[:-1, 1:] += q * trans
        grown[1:, :-1] += q * trans
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
    mean = rho * x[:, None]  # (N, 1): the conditional mean from each point
    edges = np.concatenate([[-math.inf], (x[1:] + x[:-1]) / 2.0, [math.inf]])  # x_j's cell: x_j -+ d/2
    trans = _normal_mass((edges[None, :-1] - mean) / sigma, (edges[None, 1:] - mean) / sigma)
    return x, trans / trans.sum(axis=1, keepdims=True)


def _normal_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Phi(b) - Phi(a)`` for ``a <= b``, accurate in both tails: from the nearer tail's
    complementary error function, so a cell far from the conditional mean keeps its tiny
    but positive probability (``0.5 (1 + erf)`` rounds everything below about 1e-16 to 0
    and made a persistent chain with few points reducible)."""
    erfc = np.vectorize(math.erfc, otypes=[float])
    root2 = math.sqrt(2.0)
    upper_tail = 0.5 * (erfc(a / root2) - erfc(b / root2))  # exact where a >= 0
    lower_tail = 0.5 * (erfc(-b / root2) - erfc(-a / root2))  # exact where b <= 0
    straddling = 1.0 - 0.5 * erfc(-a / root2) - 0.5 * erfc(b / root2)
    return np.where(a >= 0.0, upper_tail, np.where(b <= 0.0, lower_tail, straddling))


def stationary_distribution(trans: np.ndarray) -> np.ndarray:
    """The stationary distribution ``pi = pi P`` (``sum pi = 1``) of a finite chain with
    one closed class of states (else it is not unique: refused in one line); the states
    outside it, transient, get 0. On the closed class, the Grassmann-Taksar-Heyman state
    reduction (Grassmann, Taksar and Heyman 1985, "Regenerative analysis and steady state
    distributions for Markov chains", Operations Research 33): it eliminates states one
    by one with sums of non-negative terms only (no ``1 - P[k, k]``), so transition
    probabilities as small as 1e-26 (Tauchen's chain with ``rho = 0.99`` on 3 points)
    keep their weight."""
    p = np.asarray(trans, dtype=np.float64)
    n = p.shape[0]
    reach = (p > 0.0) | np.eye(n, dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(n)))):  # transitive closure by squaring
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    closed = np.all(reach.T | ~reach, axis=1)  # i is closed: every state i reaches reaches i back
    classes = {tuple(np.flatnonzero(reach[i])) for i in np.flatnonzero(closed)}
    if len(classes) > 1:
        shown = "; ".join(" ".join(map(str, c)) for c in sorted(classes))
        raise GameError(
            f"the income chain has {len(classes)} closed classes of income indices ({shown}): its stationary "
            f"distribution is not unique; every income level must be reachable from every other"
        )
    keep = np.array(classes.pop())
    a = p[np.ix_(keep, keep)].copy()
    for k in range(len(keep) - 1, 0, -1):
        a[:k, k] /= a[k, :k].sum()  # > 0: the class is closed and communicating
        a[:k, :k] += np.outer(a[:k, k], a[k, :k])
    sub = np.zeros(len(keep))
    sub[0] = 1.0
    for j in range(1, len(keep)):
        sub[j] = sub[:j] @ a[:j, j]
    pi = np.zeros(n)
    pi[keep] = sub / sub.sum()
    return pi


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
