"""The optimiser of every gradient-based solver, declared once.

Global-norm clipping, then Adam's scaling; the learning rate is applied by the solver's
step so that each run carries its own base rate (a sweep over ``--lr`` is one compiled
program), decaying linearly over the run:

.. math::

    \\eta_k = \\eta \\Big(1 - (1 - f)\\, \\frac{k}{K - 1}\\Big), \\qquad k = 0..K-1

with ``f`` the final fraction (``final_lr_fraction``) and ``K`` the run's iterations.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from mfax.games.base import check
from mfax.params import param


class OptimParams(eqx.Module):
    """Optimiser hyper-parameters (``--hp``), shared by SPG/RSPG, IPPO/RIPPO and M-OMD."""

    max_grad_norm: float = param(1.0, "global-norm gradient clipping")
    final_lr_fraction: float = param(0.1, "learning rate at the last iteration, as a fraction of --lr (linear decay)")
    adam_b1: float = param(0.9, "Adam's first-moment decay")
    adam_b2: float = param(0.999, "Adam's second-moment decay")
    adam_eps: float = param(1e-8, "Adam's epsilon")

    def __check_init__(self):
        check(self.max_grad_norm > 0.0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        check(
            0.0 <= self.final_lr_fraction <= 1.0,
            f"final_lr_fraction must lie in [0, 1], got {self.final_lr_fraction}",
        )
        for name in ("adam_b1", "adam_b2"):
            check(0.0 <= getattr(self, name) < 1.0, f"{name} must lie in [0, 1), got {getattr(self, name)}")
        check(self.adam_eps > 0.0, f"adam_eps must be > 0, got {self.adam_eps}")


def optimizer(hp: OptimParams) -> optax.GradientTransformation:
    """Clipping at ``hp.max_grad_norm``, then Adam's scaling (no learning rate)."""
    return optax.chain(
        optax.clip_by_global_norm(hp.max_grad_norm),
        optax.scale_by_adam(b1=hp.adam_b1, b2=hp.adam_b2, eps=hp.adam_eps),
    )


def learning_rate(base, iteration, iterations: int, final_fraction: float):
    """Linear decay from ``base`` at iteration 0 to ``final_fraction * base`` at the last,
    computed in ``base``'s precision (an int32 iteration divided alone gave float32: under
    ``--x64`` the rate was 0.023249999 for 0.02325)."""
    frac = jnp.asarray(iteration).astype(jnp.result_type(base)) / max(iterations - 1, 1)
    return base * (1.0 - (1.0 - final_fraction) * frac)


def descend(params, updates, lr):
    """``params - lr * updates``."""
    return optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))


def split_trainable(module: eqx.Module) -> tuple[eqx.Module, eqx.Module]:
    """(trainable arrays, static rest) of a module."""
    return eqx.partition(module, eqx.is_inexact_array)
