"""What produced a run: versions, source revision, backend, devices, precision, XLA options.

:func:`collect` describes the current process. A new run records it in
``RUN/provenance.json``; :func:`check` compares a run's record with the current process
and gives one warning line naming what differs (``mfax train --resume`` and
``mfax eval RUN`` print it); :func:`record` notes each resume under a different setup in
the file's ``resumed`` list, and :func:`record_schedule` each resume that replans the run
(``--resume --iterations N``) in its ``schedule`` list.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def source_revision() -> str | None:
    """The git commit of mfax's source (``+modified`` when its files differ from it),
    when mfax runs from a git checkout that tracks it; else ``None``."""
    here = Path(__file__).resolve().parent.parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10)

    try:
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return None  # not a checkout, or one of another project (mfax installed inside it)
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".").stdout.strip()
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return head.stdout.strip() + ("+modified" if changed else "")


def _products(setting: str) -> str:
    """mfax's products' precision, with JAX's own setting where mfax leaves it in force."""
    if setting != "default":
        return setting
    import jax

    own = jax.config.jax_default_matmul_precision
    return "default" if own is None else f"default (jax_default_matmul_precision={own})"


def plugin_versions(game: str, algo: str) -> dict[str, str]:
    """The installed plug-ins a run's ``game`` and solver (``algo``) come from, with their
    distributions' versions (``{"game plug-in": "crowd-games 0.2"}``); nothing for mfax's
    own, those registered in the process and references to a file or module (whose code
    ``code.json`` records by digest)."""
    from mfax.games import plugins
    from mfax.games.registry import GROUP, game_names
    from mfax.solvers.base import SOLVER_GROUP, is_registered

    found = {}
    # (only a name nothing registered holds is looked up: no scan of the installed packages, no
    # import of the solver modules a run does not use)
    for key, name, group, registered in (
        ("game plug-in", game, GROUP, lambda name: name in game_names()),
        ("solver plug-in", algo, SOLVER_GROUP, is_registered),
    ):
        if not registered(name):
            ep = plugins.entry_points(group).get(name)
            if ep is not None:
                found[key] = plugins.origin(ep).removeprefix("plug-in of ")
    return found


def collect(float64: bool, plugins: dict[str, str] | None = None) -> dict[str, Any]:
    """This process's provenance; ``float64``: the precision the run computes in;
    ``plugins``: the run's plug-ins and their versions (:func:`plugin_versions`)."""
    import jax
    import jaxlib

    from mfax import __version__
    from mfax.compiling import DEFAULTS_ENV, compiler_options, matmul_precision

    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    return {
        "mfax": __version__,
        "source_revision": source_revision(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": f"{len(devices)} x {', '.join(kinds)}",
        "processes": jax.process_count(),
        "precision": "float64" if float64 else "float32",
        "matmul_precision": _products(matmul_precision()),
        "xla_options": compiler_options(),
        DEFAULTS_ENV: _defaults_switch(os.environ.get(DEFAULTS_ENV, "")),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        **(plugins or {}),
    }


# what a run recorded by an older mfax, which did not write these entries, computed with
UNRECORDED = {"matmul_precision": "default"}  # JAX's default products (TensorFloat-32 on recent GPUs)


def _defaults_switch(value: Any) -> Any:
    """``MFAX_XLA_DEFAULTS`` as a setting: ``"1"`` (XLA's defaults) or ``""`` (mfax's
    options, whether it was unset or ``"0"``)."""
    return "" if value in ("", "0") else value


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``["jax 0.4.30 -> 0.4.31", ...]`` for every entry that differs. The products'
    precision is not a difference between two CPU setups: XLA's CPU backend computes
    float32 products in float32 whatever the request (tested)."""
    from mfax.compiling import DEFAULTS_ENV

    recorded = {**UNRECORDED, **recorded}
    if DEFAULTS_ENV in recorded:  # "0" and unset are one setting (an older mfax recorded either)
        recorded[DEFAULTS_ENV] = _defaults_switch(recorded[DEFAULTS_ENV])
    on_cpus = recorded.get("backend") == current.get("backend") == "cpu"
    return [
        f"{key} {recorded.get(key)!s} -> {value!s}"
        for key, value in current.items()
        if key != "resumed" and recorded.get(key) != value and not (key == "matmul_precision" and on_cpus)
    ]


def same_products(path: Path) -> bool:
    """Whether every session recorded at ``path`` (the run's first and each resume that
    recorded another setup) computed float32 matrix products as this process does: then
    its recorded figures and this process's differ by rounding only, where TensorFloat-32
    against float32 differ by 1e-3. On CPUs always (XLA's CPU backend computes float32
    products in float32 whatever the request); ``False`` where the record does not say."""
    import jax

    from mfax.compiling import matmul_precision

    data = read(path)
    if data is None or "jax" not in data:  # no record of the setup that made the run
        return False
    now = {"backend": jax.default_backend(), "matmul_precision": _products(matmul_precision())}  # (as collect)
    for session in [data, *(s for s in data.get("resumed", []) if isinstance(s, dict))]:
        session = {**UNRECORDED, **session}
        if session.get("backend") == now["backend"] == "cpu":
            continue
        if session.get("matmul_precision") != now["matmul_precision"]:
            return False
    return True


def read(path: Path) -> dict[str, Any] | None:
    """The recorded provenance; ``None`` when absent (a run from an older mfax) or not
    what mfax writes (unreadable, or not a JSON object: a resume then records afresh)."""
    if not path.is_file():  # (absent; a named pipe or a device would never end its read)
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check(path: Path, float64: bool, plugins: dict[str, str] | None = None) -> str | None:
    """One warning line when the run at ``path`` was produced under another setup (a
    plug-in of another version included: ``plugins``, as :func:`collect`)."""
    recorded = read(path)
    if recorded is None or "jax" not in recorded:  # no record of the setup that made the run
        return None
    changed = differences(recorded, collect(float64, plugins))
    if not changed:
        return None
    return f"mfax: warning: {str(path.parent)!r} was produced under another setup: {'; '.join(changed)}"


def _kept_if_unreadable(path: Path) -> None:
    """Before a new record replaces it: a provenance.json that is a file but not what mfax
    writes (corrupt, or edited into something else) is moved beside it, to
    ``provenance.json.unreadable`` (``-2``, ``-3``, ... when that is taken), with a warning:
    the setups of the run's earlier sessions it may hold are not lost."""
    if not path.is_file() or path.is_symlink() or read(path) is not None:
        return
    from mfax.errors import warn

    kept = path.with_name(path.name + ".unreadable")
    number = 1
    while kept.exists() or kept.is_symlink():
        number += 1
        kept = path.with_name(f"{path.name}.unreadable-{number}")
    try:
        os.rename(path, kept)  # (the same folder: never replaces what is there, checked above)
    except OSError as err:
        warn(
            f"{str(path)!r} is not readable as mfax writes it, and could not be kept aside ({err.strerror}); it is "
            "replaced by a new record"
        )
        return
    warn(
        f"{str(path)!r} is not readable as mfax writes it (corrupt or edited); kept as {kept.name!r}, and a new "
        "record started"
    )


def record(path: Path, float64: bool, resumed_at: int | None = None, plugins: dict[str, str] | None = None) -> None:
    """Write a new run's provenance, or (``resumed_at``: the iteration it continues
    from) add the setup a resume runs under when it differs from the recorded one
    (``plugins``: as :func:`collect`)."""
    current = collect(float64, plugins)
    if resumed_at is not None:
        _kept_if_unreadable(path)
    data = read(path) if resumed_at is not None else None
    if data is None and resumed_at is not None:  # a run from an older mfax: its creator is unknown
        data = {"resumed": [{"iteration": resumed_at, **current}]}
    elif data is None:
        data = current
    elif differences(data, current):
        data.setdefault("resumed", []).append({"iteration": resumed_at, **current})
    else:
        return
    _write(path, data)


def record_schedule(path: Path, start: int, previous: int, planned: int) -> list[dict[str, int]]:
    """Note in the ``schedule`` list of provenance.json that a resume at iteration
    ``start`` plans the run over ``planned`` iterations in total where it was planned over
    ``previous``: the stretches ``{"from": K, "planned": N}`` the run has trained under, in
    order (a learning rate decays linearly to 0.1x over the total it was planned over).
    Returns them; config.json alone reproduces the run only when there is one."""
    _kept_if_unreadable(path)
    data = read(path) or {}
    stretches = data.get("schedule")
    if not (
        isinstance(stretches, list) and all(isinstance(s, dict) and isinstance(s.get("from"), int) for s in stretches)
    ):
        stretches = [{"from": 0, "planned": previous}]
    stretches = [s for s in stretches if s["from"] < start]  # what a stretch replanned again at start left
    if not stretches or stretches[-1].get("planned") != planned:
        stretches.append({"from": start, "planned": planned})
    data["schedule"] = stretches
    _write(path, data)
    return stretches


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace provenance.json by ``data``."""
    from mfax.run.rundir import _replace_with  # a per-process temporary file, one-line OS errors

    _replace_with(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
