"""JAX's persistent compilation cache for mfax's programs (on by default).

The command line and :func:`mfax.solve` compile a training chunk and an evaluation per
configuration; with the cache on, a repeat of a configuration in a fresh process reads
the compiled executables from disk instead of compiling them again.

Where the cache lives is set by the environment variable ``MFAX_COMPILATION_CACHE``:

* unset, empty or ``1`` (or ``on``, ``true``, ``yes``): ``$XDG_CACHE_HOME/mfax/jax``
  (``~/.cache/mfax/jax`` when ``XDG_CACHE_HOME`` is unset);
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
_ON = ("1", "on", "true", "yes")


def cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The cache directory the environment asks for (``None``: the cache is off)."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value and value.lower() not in _ON:
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mfax" / "jax"


def _unusable(path: Path) -> str | None:
    """Why ``path`` cannot hold the cache (``None``: it can); made if missing."""
    try:
        if path.exists() and not path.is_dir():
            return "is not a directory"
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot be made ({error.strerror or error})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def enable_compilation_cache() -> Path | None:
    """Turn JAX's persistent compilation cache on as :func:`cache_dir` says, unless this
    process has configured one already; returns the directory in use (``None``: off).
    A directory that cannot be used leaves the cache off, with one warning
    (:func:`mfax.errors.warn`)."""
    import jax

    from mfax.errors import warn

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    try:
        path = cache_dir()
    except RuntimeError as error:  # "~user" without such a user, or no home directory at all
        given = os.environ.get(ENV, "").strip()
        if given and given.lower() not in _ON:
            where, problem = repr(given), f"names a home directory that cannot be found ({error})"
        else:
            where = "directory ($XDG_CACHE_HOME/mfax/jax, or ~/.cache/mfax/jax)"
            problem = f"cannot be found: no home directory ({error})"
    else:
        if path is None:
            return None
        where, problem = repr(str(path)), _unusable(path)
    if problem is not None:
        warn(
            f"the compilation cache {where} {problem}; compiling without it "
            f"({ENV}=DIR puts it in a writable directory, {ENV}=0 turns it off)"
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
