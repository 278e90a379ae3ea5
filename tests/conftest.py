"""Shared test helpers: small game instances, the networks of short runs, conversions to
the numpy reference, and the ``slow`` parametrize entry.

Two tiers: ``pytest`` runs the default one (every behaviour once, on small games and short
runs, with a line-coverage report of src/mfax); ``pytest -m slow`` runs the rest (long
trainings, full-size games, several processes or devices, repeated variants)."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import settings

import mfax
from mfax.games import BeachBarNoise, LQNoise, MacroNoise

settings.register_profile("mfax", max_examples=8, deadline=None, derandomize=True)
settings.load_profile("mfax")


_SESSION_CACHE = "MFAX_TEST_SESSION_XLA_CACHE"


# The default tier compiles its programs with XLA's cheapest CPU code generation: most of
# its time is XLA compiling small programs that then run for milliseconds. Without
# LLVM's optimisation passes the whole tier took 14:40 against 17:24 on 2 cores; with
# XLA's older fusion emitters too, see docs/development.md. They change how fast a
# program runs, not what it computes, up to the last bit (a product and a sum fused
# into one multiply-add, the order of a sum). The slow tier (``-m slow``), the executed
# tutorials and the smoke subset compile as a user's run does; flags the caller set in
# XLA_FLAGS are kept, and a flag this jaxlib's XLA does not know is left out (an unknown
# flag would end every process).
FAST_COMPILE_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
    "--xla_cpu_use_fusion_emitters=false",
)


def _default_tier(config) -> bool:
    return "not slow" in (config.getoption("markexpr", "") or "")


def _known_to_xla(flags: list[str]) -> list[str]:
    """The ``flags`` this jaxlib's XLA accepts in XLA_FLAGS (probed in a fresh process:
    XLA reads them once, and ends the process on one it does not know)."""
    import subprocess
    import sys

    def accepted(chosen: list[str]) -> bool:
        env = {**os.environ, "XLA_FLAGS": " ".join(chosen), "JAX_PLATFORMS": "cpu"}
        code = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300).returncode == 0

    if not flags or accepted(flags):
        return flags
    return [flag for flag in flags if accepted([flag])]


def pytest_configure(config):
    """A compilation cache private to this test session: the many tests that build the
    same small training programs again (resume, kill, same seed) compile each once, in
    whichever worker (``-n``) meets it first: the session's first process makes the
    directory and the workers it starts inherit it, and so do the subprocesses tests
    start (kills, the console script: ``MFAX_COMPILATION_CACHE`` names it). It starts
    empty and is removed at the end, so no run reuses another session's executables,
    and mfax's default cache in the user's home (:mod:`mfax.run.cache`) is never used.
    In the default tier, :data:`FAST_COMPILE_FLAGS` join XLA_FLAGS (set by the first
    process, before JAX makes its CPU client; the workers inherit them).
    """
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers)
        if _default_tier(config):
            given = os.environ.get("XLA_FLAGS", "")
            missing = [flag for flag in FAST_COMPILE_FLAGS if flag.split("=")[0] not in given]
            os.environ["XLA_FLAGS"] = " ".join([given, *_known_to_xla(missing)]).strip()
        config.mfax_xla_cache = tempfile.mkdtemp(prefix="mfax-test-xla-cache-")
        os.environ[_SESSION_CACHE] = config.mfax_xla_cache
    os.environ["MFAX_COMPILATION_CACHE"] = os.environ[_SESSION_CACHE]
    jax.config.update("jax_compilation_cache_dir", os.environ[_SESSION_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if hasattr(config, "mfax_xla_cache"):
        shutil.rmtree(config.mfax_xla_cache, ignore_errors=True)
        os.environ.pop(_SESSION_CACHE, None)


# Networks far smaller than the published one (solver hyper-parameters, ``hparams=``): the
# same code paths on the test budget.
# SMALL_NETWORK learns (short runs whose exploitability must fall, runs compared bit for
# bit); TINY_NETWORK is for runs that check files, flags and errors, not learning.
SMALL_NETWORK = dict(obs_embed=32, gru_hidden=32, state_embed=16, aggregate_embed=16, mlp_width=32)
TINY_NETWORK = dict(obs_embed=8, gru_hidden=8, state_embed=8, aggregate_embed=8, mlp_width=8)


def one_error_line(result, message: str) -> str:
    """The one ``mfax: error:`` line (holding ``message``) of a command that exit 2 ended."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mfax: error: ") and message in lines[0], result.stderr
    return lines[0]


def slow(*values, **kwargs):
    """A ``parametrize`` entry that runs in the slow tier only (``pytest -m slow``): a
    repeated variant of a behaviour that a cheaper entry already checks by default."""
    return pytest.param(*values, marks=pytest.mark.slow, **kwargs)


def ref_path(game: mfax.Game, noise):
    """The numpy reference's description of one of our noise paths."""
    if isinstance(noise, LQNoise):
        return round(float(noise.z))
    if isinstance(noise, BeachBarNoise):
        return int(noise.bar), bool(float(noise.z[-1]) == 0.0)
    if isinstance(noise, MacroNoise):
        return tuple(float(z) for z in np.asarray(noise.z))
    raise TypeError(type(noise))


def path_at(noise, i: int):
    """Path ``i`` of a batched noise pytree."""
    return jax.tree.map(lambda x: x[i], noise)


def dense_kernel(kernel) -> np.ndarray:
    """``(n, m, n)`` transition matrix from a sparse kernel (a two-stage kernel's stages
    composed as matrices, in float64, independently of ``Kernel.flat``)."""
    index, prob = np.asarray(kernel.index), np.asarray(kernel.prob, dtype=np.float64)
    n, m, _ = index.shape
    size = n if kernel.then is None else kernel.then.index.shape[0]
    out = np.zeros((n, m, size))
    for s in range(n):
        for a in range(m):
            np.add.at(out[s, a], index[s, a], prob[s, a])
    if kernel.then is not None:
        spread = np.zeros((size, n))
        for j in range(size):
            np.add.at(spread[j], np.asarray(kernel.then.index[j]), np.asarray(kernel.then.prob[j], dtype=np.float64))
        out = out @ spread
    return out


def random_policy_table(key, game: mfax.Game) -> jnp.ndarray:
    """A random time-indexed policy ``(T, n, m)`` with full support."""
    return jax.random.dirichlet(key, jnp.ones(game.n_actions), (game.horizon, game.n_states))


ALL_GAMES = ["linear_quadratic", "beach_bar", "macro", "sis"]


@functools.cache
def published(name: str) -> mfax.Game:
    """The game ``name`` at its published defaults, made once per process by the first test
    that uses it. The published macro economy is made without its game checks: they take
    about 12 s at that size (under coverage) and belong to the slow tier, where
    test_validation and test_check_game run them; the other games are checked as
    :func:`mfax.make` checks them."""
    with mfax.games.unchecked() if name == "macro" else contextlib.nullcontext():
        return mfax.make(name)
