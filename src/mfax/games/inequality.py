"""Inequality of a discrete distribution, exactly: Lorenz curve, Gini coefficient, top
shares (``docs/economists.md#moments``).

A distribution puts mass ``m_i >= 0`` (summing to one) on values ``x_0 <= x_1 <= ...``
(a wealth grid; values given in another order are sorted first, their masses with them)
with mean ``X = sum_i m_i x_i > 0``. Its Lorenz curve is the
piecewise-linear curve through ``(0, 0)`` and the points

.. math::

    F_i = \\sum_{k \\le i} m_k,\\qquad L_i = \\frac{1}{X} \\sum_{k \\le i} m_k x_k,

i.e. the share ``L(p)`` of the total held by the poorest fraction ``p`` of the
population, where a fraction of an atom holds that fraction of the atom's total (mass is
split at a cut: within an atom the curve is linear). Then

* the Gini coefficient ``G = 1 - 2 int_0^1 L(p) dp = 1 - sum_i m_i (L_{i-1} + L_i)``
  (exact: the curve is piecewise linear), which equals the mean absolute difference over
  twice the mean, ``sum_{i,j} m_i m_j |x_i - x_j| / (2 X)``; 0 for a degenerate
  distribution;
* the top-``q`` share ``1 - L(1 - q)``: the share of the total held by the richest
  fraction ``q`` of the population.

All functions are pure ``jax.numpy`` (jit- and vmap-friendly).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def lorenz_points(mass: Float[Array, " k"], values: Float[Array, " k"], ascending: bool = False):
    """The Lorenz curve's vertices ``(F, L)``, each ``(k + 1,)`` starting at ``(0, 0)``,
    of mass ``mass`` on ``values`` (``mass`` need not be normalised; ``values`` in any
    order: sorted here, stably, with their masses). ``ascending=True``: the caller knows
    ``values`` ascend (a grid) and they are taken as they are; the sort's gather changes
    how XLA fuses the sums after it, so compiled figures would differ in the last bits."""
    if not ascending:  # (unsorted values gave a meaningless curve and Gini)
        order = jnp.argsort(values, stable=True)
        mass, values = mass[order], values[order]
    mass = mass / jnp.sum(mass)
    held = mass * values
    zero = jnp.zeros(1, dtype=held.dtype)
    cum_mass = jnp.concatenate([zero, jnp.cumsum(mass)])
    cum_held = jnp.concatenate([zero, jnp.cumsum(held)]) / jnp.sum(held)
    return cum_mass, cum_held


def lorenz_curve(
    mass: Float[Array, " k"], values: Float[Array, " k"], shares: Float[Array, " q"], ascending: bool = False
) -> Float[Array, " q"]:
    """``L(p)`` at each population share ``p`` in ``shares`` (in ``[0, 1]``): linear
    interpolation between the vertices, i.e. mass split at the cut (atoms of zero mass
    change nothing). ``ascending``: as :func:`lorenz_points`."""
    cum_mass, cum_held = lorenz_points(mass, values, ascending)
    # the segment [F_{i-1}, F_i] holding p with F_{i-1} < p <= F_i (an empty atom's
    # segment has zero width and is never picked for p > 0; at p = 0 the share is 0)
    upper = jnp.clip(jnp.searchsorted(cum_mass, shares, side="left"), 1, cum_mass.shape[0] - 1)
    lo_f, hi_f = cum_mass[upper - 1], cum_mass[upper]
    width = hi_f - lo_f
    frac = jnp.clip(jnp.where(width > 0, (shares - lo_f) / jnp.where(width > 0, width, 1.0), 0.0), 0.0, 1.0)
    return cum_held[upper - 1] + frac * (cum_held[upper] - cum_held[upper - 1])


def gini(mass: Float[Array, " k"], values: Float[Array, " k"], ascending: bool = False) -> Float[Array, ""]:
    """The Gini coefficient ``1 - sum_i m_i (L_{i-1} + L_i)`` of mass ``mass`` on
    ``values`` (in any order; ``ascending``: as :func:`lorenz_points`)."""
    cum_mass, cum_held = lorenz_points(mass, values, ascending)
    width = cum_mass[1:] - cum_mass[:-1]
    return 1.0 - jnp.sum(width * (cum_held[1:] + cum_held[:-1]))


def top_share(
    mass: Float[Array, " k"], values: Float[Array, " k"], top: float, ascending: bool = False
) -> Float[Array, ""]:
    """The share of the total held by the richest fraction ``top`` (in ``(0, 1]``) of the
    population: ``1 - L(1 - top)`` (``ascending``: as :func:`lorenz_points`)."""
    return 1.0 - lorenz_curve(mass, values, jnp.asarray([1.0 - top]), ascending)[0]
