"""What OpenSpiel's single-population mean-field games share once written as mfax games.

OpenSpiel (``docs/games/openspiel.md``) writes a mean-field game as a game tree: an initial
chance node draws the state from ``mu_0``; then, ``T`` times, a decision node (the agent
picks an action and receives the reward of the node), a chance node (idiosyncratic noise)
and a mean-field node (the population's distribution at the new time is registered).
Rewards sit on the decision nodes of ``t = 0..T-1`` and read the mean field registered for
``t``; the tree is undiscounted and its values are the sums of the rewards along a path.
mfax's games keep that reward at ``t`` (``R_t`` reads ``mu_t``), ``gamma = 1`` by default.

Agents in OpenSpiel observe their position and ``t``; the mfax games publish the mean
field and ``t / T`` (:func:`time_observation`), which is what a policy of OpenSpiel's
``(x, t)`` tables can depend on besides its own state.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# OpenSpiel adds this to the mean field before taking its logarithm (crowd modelling's
# Python version): it keeps log(0) finite at states nobody visits.
LOG_EPSILON = 1e-25
# The C++ games (crowd modelling 1-D and 2-D, garnet) hold it as a 32-bit float.
CPP_LOG_EPSILON = float(np.float32(1e-25))  # 1.0000000195414814e-25


def time_observation(mu, t, horizon: int):
    """The public observation ``[mu, t / T]``: the mean field and the clock."""
    return jnp.concatenate([mu, jnp.reshape(t / horizon, (1,)).astype(mu.dtype)])


def torus_spread(n: int, offsets, probs):
    """Index and probability arrays of the action-independent noise ``j -> (j + d) mod n``
    with ``d`` in ``offsets`` drawn with ``probs``, for every intermediate state ``j``."""
    j = jnp.arange(n, dtype=jnp.int32)[:, None]
    index = (j + jnp.asarray(offsets, jnp.int32)[None, :]) % n
    prob = jnp.broadcast_to(jnp.asarray(probs, dtype=float), index.shape)
    return index, prob
