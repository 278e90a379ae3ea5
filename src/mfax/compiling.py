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

A program compiled to run once, the game's checks before a run, is compiled with XLA's
older (quicker to compile) fusion emitters, and on a small game without LLVM's
optimisation passes (:func:`once_options`): a first result waits for its compilation,
and its run takes microseconds either way. Without them XLA does not fuse
a product and a sum into one multiply-add, so a checked value can differ from what a
run computes in its last bit: a check's verdict can move only for a value within a
rounding of the check's tolerance.

Matrix products: JAX leaves the arithmetic of a float32 product to the backend, which on
recent NVIDIA GPUs is TensorFloat-32 (inputs rounded to 10 mantissa bits, about 1e-3
relative) and on TPUs bfloat16 passes. mfax's compiled programs (training, evaluation,
the solvers, the game checker) are traced under :func:`precision`, by default full
float32 products on every backend, so a float32 run computes its products at the same
precision on a GPU as on the CPU (where XLA computes float32 products in float32 anyway:
the CPU's programs and results are unchanged). ``MFAX_MATMUL_PRECISION`` chooses: ``float32`` (default),
``tensorfloat32`` (TensorFloat-32 where the hardware has it: faster on recent NVIDIA GPUs,
less precise) or ``default`` (the backend's own choice, JAX's default); any other value
is an error. It is read at each call of a compiled entry point (programs traced under
one setting are kept apart from the others'); float64 products are float64 whatever it
says. Inside mfax's programs it replaces JAX's own ``jax_default_matmul_precision``
(which ``default`` leaves in force); functions a user calls in their own ``jax.jit``
(``mfax.evaluation.policy_value``, say) follow JAX's setting. Runs record it in
``provenance.json``.

Factorisations: on the CPU, XLA hands a Cholesky factorisation or a triangular solve to
the LAPACK jaxlib loads (in the PyPI wheels, scipy's OpenBLAS), whose own pool of threads
(one per core) then competes with XLA's threads and with whatever else the machine runs,
and on a busy machine waits for cores it does not get. Programs that factorise
(occupation-measure inclusion's projection: ``Solver.factorises``) therefore run with
the process's BLAS/LAPACK libraries limited to one thread for the call
(:func:`one_blas_thread`, through ``threadpoolctl``), the setting restored after it,
unless the environment sets the library's thread count itself (:data:`BLAS_THREAD_ENVS`);
what it gives is measured in ``bench/results/compiler_options.md``.
"""

from __future__ import annotations

import contextlib
import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp

from mfax.errors import GameError

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
DEFAULTS_ENV = "MFAX_XLA_DEFAULTS"
PRECISION_ENV = "MFAX_MATMUL_PRECISION"
# MFAX_MATMUL_PRECISION -> jax.default_matmul_precision (None: leave JAX's default)
PRECISIONS = {"float32": "float32", "tensorfloat32": "tensorfloat32", "default": None}


# A program compiled to run once on a small game (the game's checks): LLVM's optimisation
# passes cost more compile time than they save run time; on the macro economy they pay
# (measured: bench/results/latency_checks_2026-12-04.md).
ONCE_OPTIONS = {"xla_backend_optimization_level": 0}
# ... and on a game of any size: XLA's older fusion emitters compile faster, on the macro
# economy too (bench/results/latency_checks_fusion_emitters_2026-12-05.md).
ONCE_ANY_SIZE = {"xla_cpu_use_fusion_emitters": False}
ONCE_MAX_WORK = 1 << 22

# Set in the environment, any of these says how many threads BLAS/LAPACK may use, and
# mfax leaves that choice alone (one_blas_thread).
BLAS_THREAD_ENVS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "BLIS_NUM_THREADS")


@functools.cache
def _cpu_accepts(options: tuple[tuple[str, object], ...]) -> bool:
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(jax.ShapeDtypeStruct((), jnp.float32)).compile()
    except Exception:  # an XLA without the option: compile with its defaults
        return False
    return True


def _defaults_asked() -> bool:
    switch = os.environ.get(DEFAULTS_ENV, "")
    if switch not in ("", "0", "1"):
        raise GameError(f"{DEFAULTS_ENV} must be 0 or 1 (1: compile with XLA's defaults), got {switch!r}")
    return switch == "1"


def compiler_options() -> dict[str, str]:
    """XLA options for mfax's exact programs on the current default backend."""
    if _defaults_asked() or jax.default_backend() != "cpu" or not _cpu_accepts(tuple(CPU_OPTIONS.items())):
        return {}
    return dict(CPU_OPTIONS)


def once_options(work: int) -> dict[str, object]:
    """XLA options for a program compiled to run once (the game's checks): on the CPU,
    XLA's older fusion emitters (:data:`ONCE_ANY_SIZE`), and where its ``work`` (its
    state-action-steps, say) is at most :data:`ONCE_MAX_WORK` optimisation level 0 as
    well (:data:`ONCE_OPTIONS`); XLA's defaults on other backends and with
    ``MFAX_XLA_DEFAULTS=1``. An option the installed XLA does not know is left out."""
    if _defaults_asked() or jax.default_backend() != "cpu":
        return {}
    wanted = {**ONCE_ANY_SIZE, **(ONCE_OPTIONS if work <= ONCE_MAX_WORK else {})}
    if _cpu_accepts(tuple(wanted.items())):  # (one probe where the XLA knows them all)
        return wanted
    return {k: v for k, v in wanted.items() if _cpu_accepts(((k, v),))}


def matmul_precision() -> str:
    """The float32 matrix-product precision of mfax's programs (``MFAX_MATMUL_PRECISION``,
    default ``float32``; module docstring)."""
    value = os.environ.get(PRECISION_ENV, "") or "float32"
    if value not in PRECISIONS:
        raise GameError(f"{PRECISION_ENV} must be one of {', '.join(PRECISIONS)} (unset: float32), got {value!r}")
    return value


@contextlib.contextmanager
def precision():
    """Trace (or run) the enclosed JAX code with :func:`matmul_precision`'s products."""
    value = PRECISIONS[matmul_precision()]
    if value is None:
        yield
        return
    with jax.default_matmul_precision(value):
        yield


def precise(fn):
    """``fn`` run under :func:`precision`. Put it outside a jitted function
    (``precise(eqx.filter_jit(f))``): the call is then traced under the setting and JAX's
    cache, which keys programs by it, never hands a program traced under one setting to a
    call under another (inside, ``jax.jit(precise(f))``, the program would carry the
    precision but the cache would not see it). :func:`jit` and :func:`filter_jit` do this."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with precision():
            return fn(*args, **kwargs)

    return wrapper


def jit(fn, options: dict[str, str] | None = None, **kwargs):
    """``jax.jit`` with ``options`` (default :func:`compiler_options`), called (and lowered:
    ``.lower``) under :func:`precision`, so that JAX's own cache tells the settings apart."""
    jitted = jax.jit(fn, compiler_options=compiler_options() if options is None else options, **kwargs)
    call = precise(jitted)
    call.lower = precise(jitted.lower)
    return call


def filter_jit(fn):
    """``eqx.filter_jit`` with :func:`compiler_options` (decided at the first call, so
    importing mfax neither starts a backend nor fixes its choice) and :func:`precision`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        options = compiler_options()
        key = (tuple(sorted(options.items())), matmul_precision())
        if key not in compiled:
            compiled[key] = eqx.filter_jit(fn, compiler_options=options)
        with precision():
            return compiled[key](*args, **kwargs)

    compiled: dict = {}
    return wrapper


class _OneBlasThread:
    """A compiled program called to completion with the BLAS/LAPACK libraries the process
    has loaded limited to one thread; their settings restored after the call."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        with _blas_controller().limit(limits=1, user_api="blas"):
            # XLA runs the program after the call returns: wait for it inside the limit
            return jax.block_until_ready(self.fn(*args, **kwargs))


_BLAS_CONTROLLER = None


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS/LAPACK libraries, made at the first limited
    call: after a factorising program was compiled, so it sees the LAPACK that program calls
    (jaxlib loads it while lowering the first factorisation)."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        import threadpoolctl

        _BLAS_CONTROLLER = threadpoolctl.ThreadpoolController()
    return _BLAS_CONTROLLER


def one_blas_thread(fn):
    """``fn`` (a compiled program that factorises) as it will run: on the CPU, a callable
    that runs it to completion with BLAS/LAPACK limited to one thread (module docstring);
    ``fn`` itself on other backends or where the environment sets a BLAS thread count
    (:data:`BLAS_THREAD_ENVS`)."""
    if jax.default_backend() != "cpu" or any(os.environ.get(name) for name in BLAS_THREAD_ENVS):
        return fn
    return _OneBlasThread(fn)
