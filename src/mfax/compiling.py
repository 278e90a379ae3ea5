"""How mfax compiles its exact programs: XLA options chosen by measurement.

XLA's CPU backend hands some fused operations (matrix products with their neighbours,
reductions, element-wise chains) to YNNPACK. On mfax's exact programs, a scan over time
of small per-step products, gathers and scatters, those fusions are slower than XLA's
own loops and Eigen's products, so the exact programs turn them off; the PPO baselines
run slower without them, so they keep XLA's defaults. The measurements behind this
(``bench/train_speed.py`` and single-program timings) are in
``bench/results/compiler_options.md``.

:func:`compiler_options` gives the options for the exact programs (structural
training, evaluation, classical solvers): YNNPACK fusions off on the CPU, nothing on
other backends or where the installed XLA does not know the option. Set
``MFAX_XLA_DEFAULTS=1`` to compile everything with XLA's defaults (``0`` or unset:
these options; any other value is an error).
"""

from __future__ import annotations

import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp

from mfax.errors import GameError

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
DEFAULTS_ENV = "MFAX_XLA_DEFAULTS"


@functools.cache
def _cpu_options_accepted() -> bool:
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(jax.ShapeDtypeStruct((), jnp.float32)).compile()
    except Exception:  # an XLA without the option: compile with its defaults
        return False
    return True


def compiler_options() -> dict[str, str]:
    """XLA options for mfax's exact programs on the current default backend."""
    switch = os.environ.get(DEFAULTS_ENV, "")
    if switch not in ("", "0", "1"):
        raise GameError(f"{DEFAULTS_ENV} must be 0 or 1 (1: compile with XLA's defaults), got {switch!r}")
    if switch == "1":
        return {}
    if jax.default_backend() != "cpu" or not _cpu_options_accepted():
        return {}
    return dict(CPU_OPTIONS)


def jit(fn, **kwargs):
    """``jax.jit`` with :func:`compiler_options`."""
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def filter_jit(fn):
    """``eqx.filter_jit`` with :func:`compiler_options`, decided at the first call (so
    importing mfax neither starts a backend nor fixes its choice)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        options = compiler_options()
        key = tuple(sorted(options.items()))
        if key not in compiled:
            compiled[key] = eqx.filter_jit(fn, compiler_options=options)
        return compiled[key](*args, **kwargs)

    compiled: dict = {}
    return wrapper
