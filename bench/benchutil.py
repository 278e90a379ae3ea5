"""What the benchmark scripts of bench/ share: their argument parser (a user mistake is
refused in one line), argument types, result names, optional libraries and the source
trees that some scripts compare.

A module imported by the scripts (``python bench/NAME.py`` puts bench/ on the path), not
a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose refusals are one line on stderr (``PROG: error: ...``, exit
    status 2), without the usage block that ``--help`` prints. Its name is the calling
    script's file name, also when its ``main`` is called from elsewhere (tests)."""

    def __init__(self, *args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__file__")
        if caller and "prog" not in kwargs:
            kwargs["prog"] = Path(caller).name
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _number(text: str, ok, expected: str) -> float:
    """``text`` as a float for which ``ok`` holds (NaN never does), else argparse's error."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return _number(text, lambda v: v > 0, "a number > 0")


def fraction(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    return _number(text, lambda v: 0 < v <= 1, "a fraction in (0, 1]")


def numbers(text: str) -> list[float]:
    """argparse type: comma-separated numbers."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 1.5,2,3, got {text!r}") from None
    return values


def check_sweep(parser: argparse.ArgumentParser, game: str, param: str, values: list[float], extra: dict) -> None:
    """Refuse in one line, before any work, a ``param`` that is not a traced parameter of
    ``game`` or a value (with the other parameters ``extra``) the game refuses."""
    from mfax.errors import MfaxError
    from mfax.games.registry import game_class
    from mfax.params import build, traced_names

    traced = traced_names(game_class(game))
    if param not in traced:
        allowed = ", ".join(traced) or "none (this game has no traced parameter)"
        parser.error(f"--param {param!r} is not a traced parameter of {game}; allowed: {allowed}")
    try:
        for v in values:  # every value is checked (one line naming a bad one)
            build(game_class(game), f"game {game!r}", **extra, **{param: v})
    except MfaxError as err:
        parser.error(str(err))


def stem(name: str, *variants: str) -> str:
    """The stem of a run's result files: ``name`` for the full documented run, ``name`` and
    the run's variants (``quick``, the subset it ran, ...) joined by ``_`` otherwise, so
    that a smoke or subset run never replaces the committed results of the full one."""
    return "_".join([name, *(v for v in variants if v)])


def subset(chosen: list[str], full: list[str] | tuple[str, ...]) -> str:
    """A result-name variant for a subset: ``""`` when ``chosen`` is all of ``full``,
    else the chosen names joined by ``_``."""
    return "" if set(chosen) == set(full) else "_".join(chosen)


def out_dir(parser: argparse.ArgumentParser, path: Path | str, option: str = "--out") -> Path:
    """Create the output folder before any work (a run that would fail to write after
    minutes of training is refused at once); a parser error if it cannot be created."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"{option} {path}: cannot create that folder ({err.strerror or err}); give a writable folder")
    return path


def wrote(base: Path | str, *suffixes: str) -> None:
    """The last line a script prints: the files it wrote."""
    print(f"wrote {base}.{{{','.join(suffixes)}}}" if len(suffixes) > 1 else f"wrote {base}.{suffixes[0]}")


def crossings(points: list[tuple[int, float]], threshold: float) -> tuple[int | None, int | None]:
    """``(first, stays)`` of a curve of ``(iteration, exploitability)`` points: the first
    iteration at or below ``threshold`` and the one from which it stays there to the last
    point (``None`` where there is none)."""
    first = next((i for i, e in points if e <= threshold), None)
    above = [i for i, e in points if e > threshold]
    stays = (above[-1] + 1 if above else points[0][0]) if points and points[-1][1] <= threshold else None
    return first, stays


def median_crossing(values: list[int | None], cap: int) -> float | None:
    """Median of crossing iterations, a run that never crossed counting as beyond ``cap``;
    ``None`` when at least half of them never crossed."""
    if 2 * sum(v is None for v in values) >= len(values):
        return None
    return statistics.median(sorted(cap + 1 if v is None else v for v in values))


# -- optional libraries ---------------------------------------------------------------------
# module -> (what it is, how to install it)
OPTIONAL = {
    "pyspiel": ("OpenSpiel", "pip install open_spiel"),
    "mfglib": ("MFGLib", "pip install mfglib (it pulls PyTorch)"),
    "torch": ("PyTorch", "pip install torch"),
}


def installed(module: str) -> bool:
    """Whether ``module`` imports (a library that is present but broken counts as absent)."""
    try:
        __import__(module)
    except Exception:
        return False
    return True


def require(prog: str, *modules: str, why: str = "") -> None:
    """Exit with one line naming the first missing optional library and how to install it."""
    for module in modules:
        if not installed(module):
            label, install = OPTIONAL[module]
            need = f" ({why})" if why else ""
            raise SystemExit(f"{prog}: error: needs {label}{need}, which is not installed here: {install}")


# -- source trees -----------------------------------------------------------------------------
PROBE = "import json, mfax; print(json.dumps({'mfax_file': mfax.__file__}))"


def mfax_src(text: str) -> Path:
    """argparse type: a source tree of mfax given as its repository root (``ROOT/src/mfax``)
    or as its ``src`` folder (``SRC/mfax``); returns the ``src`` folder."""
    path = Path(text).expanduser().resolve()
    for src in (path / "src", path):
        if (src / "mfax" / "__init__.py").is_file():
            return src
    raise argparse.ArgumentTypeError(
        f"{text} holds no mfax package: expected a repository root (with src/mfax/__init__.py) "
        "or its src folder (with mfax/__init__.py)"
    )


def tree_env(src: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process that imports mfax from ``src``."""
    path = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **extra, "PYTHONPATH": path}


def imported_from(src: Path, mfax_file: str) -> bool:
    """Whether a child's ``mfax.__file__`` lies in the tree ``src``."""
    return Path(mfax_file).resolve().is_relative_to(Path(src).resolve())


def check_tree(prog: str, src: Path) -> str:
    """Import mfax in a child process as the scripts' children do and exit with one line
    unless it comes from ``src`` (a tree whose package does not import falls back to the
    installed mfax otherwise); returns the child's ``mfax.__file__``."""
    done = subprocess.run([sys.executable, "-c", PROBE], env=tree_env(src), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{prog}: error: mfax of {src} does not import: {last}")
    mfax_file = json.loads(done.stdout.strip().splitlines()[-1])["mfax_file"]
    refuse_foreign(prog, src, mfax_file)
    return mfax_file


def refuse_foreign(prog: str, src: Path, mfax_file: str) -> None:
    """Exit with one line when a child imported mfax from somewhere else than ``src``."""
    if not imported_from(src, mfax_file):
        raise SystemExit(f"{prog}: error: a child meant to run the mfax of {src} imported {mfax_file}")


def module_only(name: str, doc: str | None) -> None:
    """What a helper module of bench/ does when run as a script: ``--help`` shows its
    docstring's first paragraph; anything else says in one line that it is no benchmark."""
    parser = ArgumentParser(prog=name, description=(doc or "").split("\n\n")[0])
    parser.parse_args()
    parser.exit(2, f"{name}: a module imported by the benchmark scripts, not a benchmark; nothing to run\n")


if __name__ == "__main__":
    module_only("benchutil.py", __doc__)
