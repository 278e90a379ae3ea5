"""JAX's persistent compilation cache for mfax's programs (on by default).

The command line and :func:`mfax.solve` compile a training chunk and an evaluation per
configuration; with the cache on, a repeat of a configuration in a fresh process reads
the compiled executables from disk instead of compiling them again.

Where the cache lives is set by the environment variable ``MFAX_COMPILATION_CACHE``:

* unset, empty or ``1``: ``$XDG_CACHE_HOME/mfax/jax`` (``~/.cache/mfax/jax`` when
  ``XDG_CACHE_HOME`` is unset);
* ``0`` (or ``off``, ``false``, ``no``): no persistent cache;
* anything else: that directory.

A cache directory already configured in this process (``jax_compilation_cache_dir``, by
the user or a test harness) is left as it is. Every program is cached, however short its
compilation (``jax_persistent_cache_min_compile_time_secs = 0``): the small games'
programs compile in well under JAX's default threshold of one second, yet together make
up most of the time to a first result.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "MFAX_COMPILATION_CACHE"
_OFF = ("0", "off", "false", "no")


def cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The cache directory the environment asks for (``None``: the cache is off)."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value and value != "1":
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mfax" / "jax"


def enable_compilation_cache() -> Path | None:
    """Turn JAX's persistent compilation cache on as :func:`cache_dir` says, unless this
    process has configured one already; returns the directory in use (``None``: off)."""
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = cache_dir()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
