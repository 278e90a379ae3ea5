"""A learned, history-aware best response: a lower bound of the exploitability.

The per-path best response knows the future noise, so it over-states the exploitability
when noise is random (upper bound). A deviator that sees only the public history and its
own current state is one non-anticipative deviation: it can do no better than the best
non-anticipative one, so the gain of *any* such deviator is a lower bound of the
non-anticipative exploitability. We train one by the same structural gradient (exact
over individuals, autodiff through the backward recursion) against the fixed
population: its mean-field path and observations are those the population policy
generates, and the deviator's GRU reads those public observations only. For games with
finite noise, evaluated on the whole support (``--noise exact``), the non-anticipative
exploitability lies in ``[learned lower bound, per-path upper bound]``; on sampled paths
both are estimates of those figures and neither order is proven. The information-consistent figure is the
gain of one particular deviation of that kind, not the best one where an agent's own
state is evidence about hidden noise, so a learned deviator may gain more than it
(``docs/algorithms/exploitability.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from mfax import compiling
from mfax.dynamics.noise import NoiseBatch, draw_noise, small_support
from mfax.dynamics.pushforward import rollout_batch
from mfax.evaluation.objective import objective
from mfax.evaluation.values import policy_value
from mfax.games.base import Game
from mfax.policies.base import Policy
from mfax.policies.networks import NetworkPolicy
from mfax.solvers import driver
from mfax.solvers.base import Metrics, Solver
from mfax.solvers.optim import OptimParams, descend, learning_rate, optimizer, split_trainable
from mfax.solvers.structural import TrainState


class LearnedBestResponse(NamedTuple):
    """``exploitability_lower_bound = deviator_return - policy_return`` on the
    evaluation noise; ``curve`` is the deviator's training return per iteration."""

    exploitability_lower_bound: float
    deviator_return: float
    policy_return: float
    iterations: int
    curve: jax.Array
    deviator: NetworkPolicy


class DeviatorSolver(Solver):
    """Structural-gradient ascent of one history-aware deviator against a fixed population
    (module docstring); a step's ``policy_return`` is the deviator's objective on the
    step's noise paths, before the update."""

    game: Game
    population: Policy
    initial: Any  # the deviator's trainable arrays at the start
    static: Any
    optim: OptimParams = eqx.field(static=True)
    iterations: int = eqx.field(static=True)
    num_paths: int = eqx.field(static=True)
    exact: NoiseBatch | None
    support: Any

    def init(self, key, lr) -> TrainState:
        params = self.initial
        return TrainState(params, optimizer(self.optim).init(params), jnp.int32(0), key, jnp.asarray(lr, float))

    def step(self, state: TrainState) -> tuple[TrainState, Metrics]:
        game, population, static = self.game, self.population, self.static

        def gain(p, noise, weight):
            traj = rollout_batch(game, population, noise)
            return objective(game, eqx.combine(p, static), traj, noise, weight)

        it = state.iteration
        noise, weight = draw_noise(game, jax.random.fold_in(state.key, it), self.num_paths, self.exact, self.support)
        value, grads = jax.value_and_grad(gain)(state.params, noise, weight)
        ascent = jax.tree.map(jnp.negative, grads)
        updates, opt_state = optimizer(self.optim).update(ascent, state.opt_state, state.params)
        lr = learning_rate(state.lr, it, self.iterations, self.optim.final_lr_fraction)
        params = descend(state.params, updates, lr)
        finite = jnp.isfinite(value) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
        nan = jnp.full((), jnp.nan, value.dtype)
        return TrainState(params, opt_state, it + 1, state.key, state.lr), Metrics(
            value, nan, nan, optax.tree.norm(grads), lr, nan, finite
        )

    def policy(self, state: TrainState) -> NetworkPolicy:
        return eqx.combine(state.params, self.static)


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
    solver = DeviatorSolver(game, population, params, static, optim, iterations, num_paths, exact, support)
    states = jax.tree.map(lambda x: x[None], solver.init(key, lr))
    states, metrics = driver.iterate(solver, states, iterations, chunk, progress)
    curve = metrics.policy_return[0]
    params = jax.tree.map(lambda x: x[0], states.params)
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
