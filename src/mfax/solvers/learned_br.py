"""A learned, history-aware best response: a lower bound of the exploitability.

The per-path best response knows the future noise, so it over-states the exploitability
when noise is random (upper bound). A deviator that sees only public history (and its
own state) can do no better than the information-consistent best response, so the gain
of *any* such deviator is a lower bound. We train one by the same structural gradient
(exact over individuals, autodiff through the backward recursion) against the fixed
population: its mean-field path and observations are those the population policy
generates, and the deviator's GRU reads those public observations only. For games with
finite noise the exact information-consistent figure must fall inside
``[learned lower bound, per-path upper bound]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mfax import compiling
from mfax.dynamics.noise import NoiseBatch, draw_noise, small_support
from mfax.dynamics.pushforward import rollout_batch
from mfax.evaluation.objective import objective
from mfax.evaluation.values import policy_value
from mfax.games.base import Game
from mfax.policies.base import Policy
from mfax.policies.networks import NetworkPolicy
from mfax.solvers.optim import OptimParams, descend, learning_rate, optimizer, split_trainable


class LearnedBestResponse(NamedTuple):
    """``exploitability_lower_bound = deviator_return - policy_return`` on the
    evaluation noise; ``curve`` is the deviator's training return per iteration."""

    exploitability_lower_bound: float
    deviator_return: float
    policy_return: float
    iterations: int
    curve: jax.Array
    deviator: NetworkPolicy


def learned_best_response(
    game: Game,
    population: Policy,
    deviator: NetworkPolicy,
    eval_noise: NoiseBatch,
    key,
    *,
    iterations: int = 300,
    lr: float = 1e-3,
    optim: OptimParams | None = None,
    num_paths: int = 32,
    chunk: int = 50,
    progress: Callable[[int], None] | None = None,
) -> LearnedBestResponse:
    """Train ``deviator`` (a recurrent :class:`NetworkPolicy`; warm-start it from the
    population's parameters when they share an architecture) against ``population``.

    With an exact ``eval_noise`` the deviator trains on the enumerated paths; otherwise
    on ``num_paths`` fresh Monte Carlo paths per iteration, and the bound is estimated
    on ``eval_noise``. Training runs ``chunk`` iterations per compiled call and calls
    ``progress(k)`` after each with the ``k`` iterations it ran. ``optim``: the optimiser
    (:class:`~mfax.solvers.optim.OptimParams`; its defaults when ``None``).
    """
    if not deviator.recurrent:
        raise ValueError("the learned best response needs a recurrent (history-aware) deviator")
    optim = OptimParams() if optim is None else optim
    params, static = split_trainable(deviator)
    exact = eval_noise if eval_noise.exact else None
    support = None if exact is not None else small_support(game, num_paths)
    tx = optimizer(optim)

    def gain(p, noise, weight):
        traj = rollout_batch(game, population, noise)
        return objective(game, eqx.combine(p, static), traj, noise, weight)

    def step(carry, it):
        p, opt_state = carry
        noise, weight = draw_noise(game, jax.random.fold_in(key, it), num_paths, exact, support)
        value, grads = jax.value_and_grad(gain)(p, noise, weight)
        updates, opt_state = tx.update(jax.tree.map(jnp.negative, grads), opt_state, p)
        p = descend(p, updates, learning_rate(lr, it, iterations, optim.final_lr_fraction))
        return (p, opt_state), value

    @functools.partial(compiling.jit, static_argnums=3)
    def run(p, opt_state, start, length):
        (p, opt_state), curve = jax.lax.scan(step, (p, opt_state), start + jnp.arange(length))
        return p, opt_state, curve

    opt_state, curves, done = tx.init(params), [], 0
    while done < iterations:  # chunks, so that a long training can report progress
        length = min(chunk, iterations - done)
        params, opt_state, curve = run(params, opt_state, jnp.int32(done), length)
        curves.append(curve)
        done += length
        if progress is not None:
            progress(length)
    curve = jnp.concatenate(curves)
    deviator = eqx.combine(params, static)

    @compiling.jit
    def returns(p):
        traj = rollout_batch(game, population, eval_noise.noise)
        v_pop = policy_value(game, traj, eval_noise.noise)
        pop = jnp.sum(eval_noise.weight * jnp.sum(traj.mu[:, 0] * v_pop, -1))
        dev = objective(game, eqx.combine(p, static), traj, eval_noise.noise, eval_noise.weight)
        return dev, pop

    dev, pop = (float(x) for x in returns(params))
    return LearnedBestResponse(dev - pop, dev, pop, iterations, curve, deviator)
