"""A run directory: resolved config, metrics (CSV + JSONL), checkpoint, summary, plots.

Layout::

    RUN/mfax-run.json        marker: this directory is an mfax run (written first)
    RUN/config.json          resolved configuration (every default filled in)
    RUN/code.json            the user code the config names (a game or solver given as
                             module:Name or file.py:Name): its reference and, for a
                             file, its sha256 (bytes) and code_sha256 (its code:
                             comments, layout, docstrings left out), and those of the
                             user's modules it imports (``imports``: module -> its
                             file relative to the folder of the code's file, and both
                             digests)
    RUN/metrics.csv          one row per evaluation and run (also metrics.jsonl)
    RUN/summary.json         final figures (rewritten after every chunk)
    RUN/provenance.json      what produced the run (versions, revision, backend, precision)
    RUN/checkpoint.eqx       latest training state (Equinox leaf serialisation, numpy .npy
                             records, no pickle), replaced atomically
    RUN/checkpoint.json      sha256 of checkpoint.eqx, verified on load, and the iteration
                             it holds (what `--iteration K` finds it by)
    RUN/checkpoint-best.eqx  the state at the evaluation where a run reached the lowest
                             exploitability (per path) of every run (the earliest of equals),
                             with its sha256 in checkpoint-best.json
    RUN/checkpoints/iteration-NNNNNNNN.eqx
                             with ``keep`` N > 0: the N most recent evaluations' states, each
                             with its sha256 in iteration-NNNNNNNN.json
    RUN/mfax.lock            held (flock) by the one process writing the run
    RUN/plots/*.png

Safety rules: only a directory that is an mfax run (the marker, or for runs written
before the marker existed: a config.json in mfax's format beside metrics.jsonl or
checkpoint.eqx) is resumed or replaced, and replacing removes only the files listed
in ``OWN_FILES``; one process at a time writes a run (``lock``); every write goes to a
per-process temporary file first and replaces its target atomically. A run directory
may come from someone else: reading it back never imports the code its config names
(a game or solver outside mfax) unless the reader allows it (:class:`Consent`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
import secrets
import stat
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np

from mfax.errors import ArgumentError, GameError, advice, warn
from mfax.games.plugins import (
    MAIN,
    canonical,
    code_digest,
    file_digest,
    is_reference,
    module_file,
    parse,
    user_imports,
)
from mfax.run.columns import ADDED_COLUMNS, METRIC_COLUMNS, PARAMS, csv_cells, csv_columns
from mfax.run.config import TrainConfig, from_dict, resolve
from mfax.run.signals import deferred_signals
from mfax.run.trackers import OWN_EVENTS

MARKER = "mfax-run.json"
TUNE_MARKER = "mfax-tune.json"  # the folder of an `mfax tune` study (mfax.run.tune), its best run in best/
LOCK = "mfax.lock"  # not in OWN_FILES: removing a held lock file would let a second writer in
# The run an --overwrite replaces is moved here (its files at their relative paths; the
# marker stays, a new run's is the same) until the new run's first checkpoint; ASIDE_DONE
# is written in it once every file is there. Left by a killed process, it is settled by
# the next command on the run (RunDir.settle): moved back, or (the new run had its
# checkpoint) removed. ASIDE_STARTED, written in it before the first file moves, lists
# the files set aside: only those are moved back or removed, anything else stays, with
# the folder; a folder without either mark is not mfax's and is never touched (but one
# an earlier mfax left, which marked it only once complete: RunDir._recover). DISCARDED:
# where an earlier mfax renamed the replaced run before removing it.
ASIDE = ".mfax-replaced"
ASIDE_STARTED = "mfax-aside-started"
ASIDE_DONE = "mfax-aside-complete"
DISCARDED = ".mfax-replaced.discard"
# the run folders where this process failed to remove the replaced run (said once)
_DISCARD_FAILED: set[Path] = set()
# the code.json files this process said were missing (said once)
_CODE_MISSING_SAID: set[Path] = set()
# Every file mfax writes in a run directory (glob patterns relative to it): --overwrite
# removes these and nothing else. A file mfax starts writing (a new plot, a new
# checkpoint) must be listed here.
_KEPT_NAME = "iteration-" + "[0-9]" * 8  # a kept checkpoint's name, without .eqx/.json
_REPLACED = (
    MARKER,
    "config.json",
    "code.json",
    "metrics.csv",
    "metrics.jsonl",
    "summary.json",
    "provenance.json",
    *(
        f"{name}.{ext}"
        for name in ("checkpoint", "checkpoint-best", f"checkpoints/{_KEPT_NAME}")
        for ext in ("eqx", "json")
    ),
)
OWN_FILES = (
    *_REPLACED,
    *(f"{name}.*.tmp" for name in _REPLACED),  # per-process temporary files (see _replace_with)
    "checkpoint.tmp",  # the temporary files of mfax versions before per-process names
    "summary.tmp",
    "wandb_id",
    "plots/exploitability.png",
    "plots/mean_field.png",
    "plots/mean_field_grid.png",
    "plots/policy.png",
    "plots/aggregates.png",
    "plots/profiles.png",
    "plots/moments.png",
    "plots/moment_curves.png",
    "plots/irf.png",
    "plots/wealth.png",  # the macro plots of mfax versions before aggregates.png and profiles.png
    "plots/prices.png",
    "plots/savings.png",
    "tensorboard/*/events.out.tfevents.*",
    # mfax export's default targets (run/export.py): the npz file, the CSV folder's files
    "export.npz",
    "export.npz.*.tmp",
    "export/mfax-export.json",
    "export/*.csv",
    "export/*.tmp",
    "irf.json",
)


EXPORT_MARKER = "mfax-export.json"  # the manifest of a CSV export's folder (run/export.py)


def read_manifest(path: Path) -> dict | None:
    """The manifest of an ``npz`` export mfax wrote, or ``None`` for any other file (read
    without unpickling anything)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a .npy file: one array, not an archive
        return None
    try:
        with archive:
            if "manifest" not in archive.files:
                return None
            data = json.loads(str(archive["manifest"]))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    return data if isinstance(data, dict) and data.get("mfax_export") == 1 else None


def folder_manifest(folder: Path) -> dict | None:
    """The manifest of a CSV export's folder mfax wrote, or ``None``."""
    marker = folder / EXPORT_MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("mfax_export") == 1 else None


IRF_KEYS = ("run", "run_index", "checkpoint", "innovations", "moments")  # what `mfax irf` writes in its JSON
# a tensorboard folder of mfax's tracker (run/trackers.py: run{r}_seed{s}[_lr{lr}][_{name}{value}...],
# the swept game parameters' values without a learning rate too: an exact solver's sweep)
_TRACKER_FOLDER = re.compile(r"run[0-9]+_seed-?[0-9]+(_[^/]*)?")


def _written_by_mfax(root: Path, pattern: str, path: Path) -> bool:
    """Whether ``path`` (a match of ``pattern`` in ``OWN_FILES``) is a file mfax wrote. The
    names a user may well give their own files are judged by content: a figure carries
    :data:`PNG_TAG`, ``irf.json`` holds what ``mfax irf`` writes, the export's CSV files are
    those its manifest lists (and ``export.npz`` holds a manifest), tensorboard event files
    are named as the tracker names them (:data:`~mfax.run.trackers.OWN_EVENTS`) in its run
    folders. The run's data files are mfax's by name (a run directory is mfax's: the
    marker or its config)."""
    if path.is_symlink():
        return not pattern.startswith(("plots/", "export", "irf", "tensorboard/", "checkpoints/"))
    try:
        kept = pattern.startswith(f"checkpoints/{_KEPT_NAME}.") and not pattern.endswith(".tmp")
        if kept and (root / MARKER).is_file():  # (a folder an earlier mfax set aside holds its files by name)
            return _kept_by_this_run(root, path)
        if pattern.startswith("plots/") or pattern == "irf.json":
            if pattern == "irf.json" and not _of_this_run(root, _read_record(path)):
                return False
            return _mfax_wrote(path, IRF_KEYS if pattern == "irf.json" else ())
        if pattern.startswith("tensorboard/"):  # (a user's event files in such a folder are theirs)
            return bool(_TRACKER_FOLDER.fullmatch(path.parent.name) and OWN_EVENTS.fullmatch(path.name))
        if pattern == "export.npz":
            data = read_manifest(path)
            return data is not None and _of_this_run(root, data)
        if pattern.startswith("export/"):
            marker = root / "export" / EXPORT_MARKER
            data = folder_manifest(root / "export")
            if data is None or not _of_this_run(root, data):
                return False
            if path == marker:
                return True
            listed = {Path(str(name)).name for name in data.get("files", {})} | {marker.name}
            if pattern.endswith(".tmp"):  # a per-process temporary file of a listed one
                return any(re.fullmatch(re.escape(name) + r"\.[0-9]+\.tmp", path.name) for name in listed)
            return path.name in listed
    except (OSError, ValueError, UnicodeDecodeError, GameError):  # (GameError: _disk's unreadable file)
        return False
    return True


def run_id_of(root: Path) -> str | None:
    """The id the run at ``root`` was created with (its marker's ``run_id``; ``None`` for a
    run mfax created before it recorded one)."""
    named = _read_record(root / MARKER).get("run_id")
    return named if isinstance(named, str) else None


def _kept_by_this_run(root: Path, path: Path, verify: bool = True) -> bool:
    """Whether ``path``, named as a kept checkpoint or its digest (``checkpoints/
    iteration-NNNNNNNN.eqx`` / ``.json``), is one this run wrote: its digest names the
    iteration of its name and this run's id (or, in a run mfax created before it recorded
    ids, none), and the checkpoint's bytes are the digest's. A user's file, or another
    run's checkpoint copied there, is not (``--keep`` pruned them, ``--overwrite`` removed
    them). ``verify=False``: the digest's word for it, without reading the checkpoint."""
    if _KEPT_NAMES.fullmatch(path.name) is None or path.parent.is_symlink():
        return False
    record = _read_record(path.with_suffix(".json"))
    accepted = record.get("sha256")
    if not (isinstance(accepted, list) and record.get("iteration") == int(path.name[10:18])):
        return False
    if record.get("run_id") != run_id_of(root):
        return False
    checkpoint = path.with_suffix(".eqx")
    if not checkpoint.is_file() or checkpoint.is_symlink():
        return path.suffix == ".json"  # (a digest whose checkpoint is gone: a kill between the writes)
    return not verify or hashlib.sha256(checkpoint.read_bytes()).hexdigest() in accepted


def _read_record(path: Path) -> dict:
    """A JSON object's content ({} for anything else)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _of_this_run(root: Path, record: dict) -> bool:
    """Whether an export's manifest or an impulse response's record written in the run
    directory ``root`` is of this run: one that names another run by its absolute path
    (``mfax export OTHER --out RUN/export.npz``) is that run's result, which the user
    put here and an ``--overwrite`` of this run keeps. One that names no run
    (``Result.export``), or a relative path (an earlier mfax), is this run's."""
    named = record.get("run")
    if not isinstance(named, str) or not Path(named).is_absolute():  # (a relative name: an earlier mfax's,
        return True  # relative to a folder it did not record: the run's own, as it was)
    try:
        return Path(named).resolve() == root.resolve()
    except (OSError, RuntimeError):
        return False


def json_ready(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, an infinity: Python's ``json``
    writes them as ``NaN``/``Infinity``, which is not JSON) replaced by ``None`` (null),
    inside dicts, lists and tuples too."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


_KEPT = re.compile(r"iteration-(\d{8})\.eqx")
_KEPT_NAMES = re.compile(r"iteration-\d{8}\.(eqx|json)")  # a kept checkpoint and its digest


_SPECIAL = {
    stat.S_IFIFO: "named pipe",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


def special_file(path: Path) -> str | None:
    """What ``path`` is when it is neither a file nor a folder (through links): a named
    pipe, a device or a socket, which a read would wait on forever or never finish."""
    try:
        kind = stat.S_IFMT(path.stat().st_mode)
    except (OSError, ValueError):
        return None
    return _SPECIAL.get(kind)


@contextlib.contextmanager
def _disk(action: str, path: Path) -> Iterator[None]:
    """Operating-system errors (read-only or full disk, a path through a file) as one
    line; a read of a named pipe or a device (it would wait forever) refused first."""
    kind = special_file(path) if action == "read" else None
    if kind is not None:
        raise GameError(f"cannot read {str(path)!r}: it is a {kind}, not a file mfax wrote; move it away")
    try:
        yield
    except OSError as err:
        raise GameError(f"cannot {action} {str(path)!r}: {err.strerror or err}") from None


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (``True`` where that cannot be told: never a guess
    that lets mfax remove a folder another process is writing)."""
    if pid == os.getpid() or os.name != "posix":  # (os.kill(pid, 0) ends the process on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (PermissionError), or unknown: running
        return True
    return True


_LEFT_TMP = re.compile(r"(?P<name>.+)\.(?P<pid>[0-9]+)\.tmp")


def left_by_a_killed_writer(path: Path, names: tuple[str, ...]) -> bool:
    """Whether ``path`` is the temporary file (:func:`_replace_with`) of one of ``names``
    that a process killed mid-write left: ``NAME.PID.tmp``, its process gone."""
    named = _LEFT_TMP.fullmatch(path.name)
    return bool(named) and named["name"] in names and path.is_file() and not running(int(named["pid"]))


def _walk(folder: Path) -> list[Path]:
    """Every entry under ``folder`` (never through a linked folder), deepest last."""
    out = []
    for top, dirs, files in os.walk(folder):
        out += [Path(top) / name for name in (*dirs, *files)]
    return out


def is_aside(folder: Path) -> bool:
    """Whether ``folder`` is one mfax set a replaced run aside in (it holds
    :data:`ASIDE_STARTED` or :data:`ASIDE_DONE`); a folder of the user's by that name is not."""
    return (
        folder.is_dir()
        and not folder.is_symlink()
        and any((folder / mark).is_file() and not (folder / mark).is_symlink() for mark in (ASIDE_STARTED, ASIDE_DONE))
    )


def _mark_started(folder: Path, names: list[str]) -> None:
    """Write the set-aside's start mark: the files' paths relative to the run, which are
    all mfax ever moves back or removes there (written before the first file moves: one
    a kill cut short lists nothing, and nothing had moved)."""
    with _disk("write", folder / ASIDE_STARTED):
        (folder / ASIDE_STARTED).write_text(json.dumps({"files": names}) + "\n")


def _set_aside_files(folder: Path) -> list[Path]:
    """The files mfax set aside in ``folder``: the ones its start mark lists (moved back or
    removed already, some may be gone); in a folder an earlier mfax marked only complete
    (no list), the run's files there that :func:`_written_by_mfax` recognises."""
    started = folder / ASIDE_STARTED
    if not started.is_file():
        return _earlier_files(folder)
    try:
        names = json.loads(started.read_text()).get("files")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):  # (cut short: nothing had moved)
        return []
    listed = [Path(n) for n in names if isinstance(n, str)] if isinstance(names, list) else []
    return [
        folder / n
        for n in listed
        if n.parts and not n.is_absolute() and ".." not in n.parts and not _linked_on_the_way(folder, n)
    ]


def _linked_on_the_way(folder: Path, relative: Path) -> bool:
    """Whether a folder between ``folder`` and ``folder / relative`` is a symbolic link
    (mfax makes none there: a file reached through it is elsewhere)."""
    return any((folder / Path(*relative.parts[:i])).is_symlink() for i in range(1, len(relative.parts)))


def _present(paths: list[Path]) -> list[Path]:
    """Those of ``paths`` that are there (a file or a link)."""
    return [p for p in paths if p.is_file() or p.is_symlink()]


def _earlier_files(folder: Path) -> list[Path]:
    """The files in ``folder`` that an earlier mfax set aside there (it listed none): the
    matches of :data:`OWN_FILES` at their relative paths that :func:`_written_by_mfax`
    recognises, never through a linked folder."""
    found: dict[Path, None] = {}
    for pattern in OWN_FILES:
        for path in folder.glob(pattern):
            inside = [p for p in path.parents if folder in p.parents]
            if (path.is_file() or path.is_symlink()) and not any(p.is_symlink() for p in inside):
                if _written_by_mfax(folder, pattern, path):
                    found[path] = None
    return list(found)


def _earlier_aside(folder: Path) -> list[Path] | None:
    """The files of a set-aside an earlier mfax left unmarked in ``folder`` (it marked the
    folder only once every file was there, and unmarked it first when putting them back:
    a kill in either left it so), ``None`` unless every file there is one of them: a folder
    holding anything else is the user's."""
    if not folder.is_dir() or folder.is_symlink() or is_aside(folder):
        return None
    entries = [p for p in _walk(folder) if p.is_symlink() or not p.is_dir()]
    own = _earlier_files(folder)
    return own if entries and set(entries) == set(own) else None


def _clear_aside(folder: Path, files: list[Path]) -> list[Path]:
    """Remove ``files`` (mfax's, in ``folder``), then the folders that held them (and
    those named as a run's folders, ``plots``, ``checkpoints``, ...) once empty, then the
    marks (the completion mark first: a kill before the last leaves a folder that is
    still mfax's), then ``folder`` when empty. Returns what stays: what mfax did not
    write (an empty folder of the user's too)."""
    for path in files:
        with _disk("remove", path):
            path.unlink(missing_ok=True)
    # the folders that held them, and those mfax's files go in (emptied by an earlier
    # clearing a kill cut short, when the files of an earlier mfax's folder were not listed)
    own = {m for pattern in OWN_FILES if "/" in pattern for m in folder.glob(pattern.rsplit("/", 1)[0])}
    held = {p for path in (*files, *(m / "-" for m in own)) for p in path.parents if folder in p.parents}
    for sub in sorted(held, key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir() and not sub.is_symlink():
            with contextlib.suppress(OSError):
                sub.rmdir()  # (only when empty)
    for mark in (ASIDE_DONE, ASIDE_STARTED):
        with _disk("remove", folder / mark):
            (folder / mark).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # (only when empty)
    return _walk(folder) if folder.is_dir() else []


def _kept_foreign(folder: Path, left: list[Path]) -> None:
    """Say that ``folder`` stays, holding ``left`` (what mfax did not write)."""
    if left:
        names = ", ".join(repr(p.relative_to(folder).as_posix()) for p in left[:3]) + (" ..." if len(left) > 3 else "")
        warn(
            f"kept {str(folder)!r}: it holds what mfax did not write ({names}); mfax's own files there are "
            "dealt with; move the rest out and remove the folder"
        )


def _replace_with(path: Path, data: bytes) -> None:
    """Write ``data`` to a per-process temporary file beside ``path``, then atomically
    replace ``path`` (a link there is replaced, never written through); the temporary
    file never outlives a failure. Its name keeps within the 255 bytes a name may have
    whenever ``path``'s own name does."""
    tmp = path.with_name(f"{path.name[:200]}.{os.getpid()}.tmp")
    try:
        with _disk("write", path):
            tmp.write_bytes(data)
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


# what link() says on a file system without hard links (FAT, some network and FUSE ones)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}


def _put_back(path: Path, target: Path) -> Path:
    """Move ``path`` to ``target`` unless something is there already (a hard link, which
    fails rather than replace, then the unlink; where the file system has no hard links,
    a rename after a check); else beside it as ``TARGET.before-overwrite[-K]``. Returns
    where it went."""
    for k in range(1000):
        place = target if k == 0 else target.with_name(f"{target.name}.before-overwrite" + (f"-{k}" if k > 1 else ""))
        try:
            os.link(path, place, follow_symlinks=False)
        except FileExistsError:
            if _same_file(path, place):  # linked by a put-back cut short before its unlink: finish it
                path.unlink()
                return place
            continue
        except OSError as err:
            if err.errno not in _NO_HARD_LINKS:
                raise
            if place.exists() or place.is_symlink():
                continue
            os.rename(path, place)
            return place
        path.unlink()
        return place
    raise FileExistsError(errno.EEXIST, "a thousand files named as the run's", str(target))


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (hard links of one inode; links not followed)."""
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _free_folder(root: Path, relative: Path) -> tuple[Path, Path | None]:
    """Where a file at ``relative`` (below ``root``) is put back, and what blocks its own
    place: its own place and ``None``, unless a folder on the way is now a file or a link
    (a link would take it somewhere else), in which case that folder's part of the path
    becomes ``NAME.before-overwrite`` and the folder is named."""
    parts = relative.parts
    for i in range(1, len(parts)):
        folder = root.joinpath(*parts[:i])
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            return root.joinpath(*parts[: i - 1], f"{parts[i - 1]}.before-overwrite", *parts[i:]), folder
    return root / relative, None


_READ_ATTEMPTS = 4  # reads of a checkpoint whose digest does not match, before it is corrupt

# the keys of config.json that every mfax version wrote (a run from before the marker)
_PRE_MARKER_KEYS = frozenset(
    {"game", "params", "algo", "iterations", "paths", "noise", "lr", "seeds", "seed", "eval_every", "eval_paths"}
)

PNG_TAG = {"Software": "mfax"}  # the PNG text chunk mfax's figures carry (see output_writable)
_PNG_CHUNK = b"".join(b"tEXt" + k.encode() + b"\x00" + v.encode() for k, v in PNG_TAG.items())
FIGURE_KEY = "mfax-figure"  # the PNG text chunk that names which figure it is (irf, prices, ...)


def png_tags(kind: str | None = None) -> dict[str, str]:
    """The PNG text chunks of an mfax figure (``kind``: which one, e.g. ``"irf"``)."""
    return PNG_TAG if kind is None else {**PNG_TAG, FIGURE_KEY: kind}


def _png_texts(data: bytes) -> dict[str, str]:
    """The ``tEXt`` chunks of PNG ``data`` before its image data (empty: not a PNG)."""
    texts: dict[str, str] = {}
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return texts
    at = 8
    while at + 8 <= len(data):
        length, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"tEXt":
            key, _, value = data[at + 8 : at + 8 + length].partition(b"\x00")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        at += 12 + length
    return texts


def file_above(path: Path) -> Path | None:
    """The nearest existing path above ``path`` when it is not a directory (a file: nothing
    can be created under it), else ``None``."""
    above = next((p for p in path.parents if p.exists() or p.is_symlink()), None)
    return above if above is not None and not above.is_dir() else None


def read_only_folder(path: Path) -> Path | None:
    """The folder files at ``path`` would be written in (``path`` itself when it is a
    folder, else the nearest existing folder above it) when it is read-only; ``None``
    when it is writable (or nothing above exists)."""
    folder = path if path.is_dir() else next((p for p in path.parents if p.exists()), None)
    return folder if folder is not None and not os.access(folder, os.W_OK | os.X_OK) else None


def output_writable(path: Path | str, *keys: str, figure: str | None = None) -> None:
    """Raise (one line, reading only) unless an output file may be written at ``path``, a
    place the user chose outside a run directory: it is missing, or a file mfax wrote
    there of the kind about to be written: with ``keys``, a JSON object holding every one
    of them; without, a ``.png`` carrying :data:`PNG_TAG` (with ``figure``: mfax's figure
    of that name, :func:`png_tags`; another command's figure is not replaced). Never a
    file mfax cannot tell it wrote, nor one of another kind (a figure is not replaced by
    a JSON record), nor a path under a file or in a read-only folder (said before
    anything is written or computed)."""
    path = Path(path)
    above = file_above(path)
    if above is not None:
        raise GameError(f"cannot write {str(path)!r}: {str(above)!r} is a file, not a directory")
    folder = read_only_folder(path.parent)
    if folder is not None:
        raise GameError(f"cannot write {str(path)!r}: the folder {str(folder)!r} is read-only")
    if not path.exists() and not path.is_symlink():
        return
    if not (path.is_file() and not path.is_symlink() and _mfax_wrote(path, keys)):
        kind = f"a JSON record with {', '.join(keys)}" if keys else "a PNG figure carrying mfax's tag"
        raise GameError(
            f"refusing to overwrite {str(path)!r}: it is not an output of this kind that mfax wrote ({kind}); "
            "remove it or choose another path"
        )
    if figure is not None:
        with _disk("read", path):
            other = _png_texts(path.read_bytes()[: 1 << 16]).get(FIGURE_KEY)
        if other != figure:
            whose = "an earlier mfax's figure (which one cannot be told)" if other is None else f"mfax's {other} figure"
            raise GameError(
                f"refusing to overwrite {str(path)!r}: it is {whose}, and this writes the {figure} figure; remove it "
                "or choose another path"
            )


def _mfax_wrote(path: Path, keys: tuple[str, ...] = ()) -> bool:
    """Whether the file ``path`` says by its content that mfax wrote it: with ``keys``, a
    JSON object holding every one of them (whatever its name); without, a ``.png``
    carrying :data:`PNG_TAG`."""
    if not keys:
        if path.suffix.lower() != ".png":  # (a figure the user named NAME.PNG, say)
            return False
        with _disk("read", path):
            return _PNG_CHUNK in path.read_bytes()[: 1 << 16]
    with _disk("read", path):
        head = path.read_bytes()
    try:
        data = json.loads(head)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and set(keys) <= set(data)


def _digest_of(checkpoint: Path) -> Path:
    """Where the sha256 of a checkpoint file is: ``NAME.json`` beside ``NAME.eqx``."""
    return checkpoint.with_suffix(".json")


@dataclass(frozen=True)
class Consent:
    """Which code a run's config may import when the run is read back (``mfax eval RUN``,
    ``mfax plot RUN``, ``--resume``). ``game``: a game reference the reader names again;
    it must name the run's game (the same reference, or a file of the same class name
    elsewhere, a copy) and replaces the recorded one. ``trust``: every reference the
    config names. By default none: a built-in or plug-in game and solver only."""

    game: str | None = None
    trust: bool = False


NO_CODE = Consent()  # the default: no code outside mfax and its installed plug-ins


# config.json's entries that say what problem the run's checkpoints solve (the others say
# how it is trained or evaluated: iterations, eval_every, eval_paths, keep, log_to, devices)
# (eval_paths: the metrics' figures are on its paths, a resume cannot change them; x64: the
# checkpoint's arrays are of its precision)
TRAINED_ON = ("game", "params", "algo", "hparams", "lr", "seeds", "seed", "noise", "paths", "eval_paths", "x64")


def _trained_on(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key) for key in TRAINED_ON}


def edits(data: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """``["params {...} -> {...}", ...]``: the entries of config.json's ``data`` that are
    not what code.json's ``record`` says the run was created with (none when it does not
    say: a run from an older mfax)."""
    created = record.get("trained_on")
    if not isinstance(created, dict):
        return []
    changed = []
    for key in TRAINED_ON:
        was, now = created.get(key), data.get(key)
        if key not in created or was == now:
            continue
        if key == "game" and isinstance(was, str) and is_reference(was):
            continue  # code named by a reference: code.json's digest says whether it changed
        if isinstance(was, dict) and isinstance(now, dict):  # name the entries: params.kappa
            for name in sorted(set(was) | set(now)):
                if was.get(name) != now.get(name):  # an entry absent on one side: its default then
                    old, new = (json.dumps(d[name]) if name in d else "(default)" for d in (was, now))
                    changed.append(f"{key}.{name} {old} -> {new}")
        else:
            changed.append(f"{key} {json.dumps(was)} -> {json.dumps(now)}")
    return changed


def code_record(config: TrainConfig) -> dict[str, Any]:
    """code.json's content: for the game and the solver named by a reference, the
    reference and (a file) the sha256 of its bytes and of its code
    (:func:`~mfax.games.plugins.code_digest`: comments, layout and docstrings left out),
    and the same of each of the user's modules it imports."""
    record = {}
    for key in ("game", "algo"):
        ref = getattr(config, key)
        if is_reference(ref):
            file = _code_file(ref)
            record[key] = {"reference": ref, **_digests(file)}
            if file is not None:  # the user's modules it imports: an edit of a helper changes the game too
                folder = file.resolve().parent  # (a module named again by its file has the same folder)
                record[key]["imports"] = {
                    name: {"file": Path(os.path.relpath(path, folder)).as_posix(), **_digests(path)}
                    for name, path in user_imports(file, parse(ref, key).module).items()
                }
    return record


def _digests(file: Path | None) -> dict[str, str | None]:
    if file is None:
        return {"sha256": None}
    return {"sha256": file_digest(file), "code_sha256": code_digest(file)}


def _code_differs(file: Path, entry: dict[str, Any]) -> str | None:
    """How ``file`` differs from the one code.json's ``entry`` recorded, in words (its
    sha256 then and now); ``None`` when it has the same bytes, or the same code
    (an edit of comments, layout or docstrings only: ``code_sha256`` equal), or when it
    cannot be read now (loading it says so if it is needed)."""
    then, now = entry.get("sha256"), file_digest(file)
    if not isinstance(then, str) or now is None or now == then:
        return None
    code = entry.get("code_sha256")
    if isinstance(code, str) and code_digest(file) == code:
        return None
    return f"sha256 {then[:12]} then, {now[:12]} now"


def _code_file(ref: str) -> Path | None:
    """The file of the code a reference names: the file itself, or the module's source
    (found without running it; ``None`` when there is none, e.g. ``__main__``)."""
    parsed = parse(ref, "game")
    if parsed.file is not None:
        return parsed.file
    if parsed.module == MAIN:
        return None
    return module_file(parsed.module)  # (importlib's find_spec imported, so ran, its parent packages)


def _named_again(recorded: str, named: str) -> str:
    """The reference the reader named, if it names the run's game ``recorded``."""
    mine = canonical(named)
    if mine == recorded:
        return mine
    if is_reference(mine) and is_reference(recorded):
        theirs, ours = parse(recorded, "game"), parse(mine, "game")
        if theirs.file is not None and ours.file is not None and theirs.name == ours.name:
            return mine  # a copy of the file elsewhere (its content is compared by _check_unchanged)
        if theirs.module == MAIN and theirs.name == ours.name:
            return mine  # a class of a script or notebook, now from a file or module
        if theirs.name == ours.name and _stem(theirs) == _stem(ours):
            return mine  # a module's file named as a file (corridor:Corridor, examples/corridor.py:Corridor), or back
    raise ArgumentError("game", f"game {named!r} does not name this run's game {recorded!r}")


def _stem(ref) -> str:
    """The module name a reference's code would have: a file's stem, or a module's last part."""
    return ref.file.stem if ref.file is not None else ref.module.rpartition(".")[2]


def _check_unchanged(ref: str, entry: Any, continuing: bool = False) -> list[str]:
    """A warning (``continuing``: an error) when the file ``ref`` names is not the one the
    run recorded (an edit of comments, layout or docstrings only is none:
    :func:`_code_differs`); returns its path then (none: unchanged, or nothing to compare)."""
    recorded = entry.get("sha256") if isinstance(entry, dict) else None
    file = None if recorded is None else _code_file(ref)
    if file is None or recorded is None or not file.is_file():
        return []
    changes = []
    differs = _code_differs(file, entry)
    if differs:
        changes.append((file, f"is not the file the run was trained with ({differs})"))
    return _said(changes + _imports_changed(file, ref, entry, loaded=False), continuing)


def _imports_changed(file: Path, ref: str, entry: Any, loaded: bool) -> list[tuple[Path, str]]:
    """The user's modules the code imports (code.json's ``imports``) whose file changed:
    before the code is loaded (``loaded=False``), the file where the run found each,
    beside the code read now (a copied project: the copy's), so that a refused resume
    runs none of it; once loaded, each module the process imported from another file (a
    module of its name first on ``sys.path`` is the one the game runs)."""
    imports = entry.get("imports") if isinstance(entry, dict) else None
    if not isinstance(imports, dict):
        return []
    folder, changes = file.resolve().parent, []
    for name, held in sorted(imports.items()):
        where = held.get("file") if isinstance(held, dict) else None
        if not isinstance(where, str):
            continue
        beside = folder / where
        imported = getattr(sys.modules.get(name), "__file__", None)
        if loaded:
            if not isinstance(imported, str) or Path(imported).resolve() == beside.resolve():
                continue  # (not imported, or the file compared before loading)
            helper = Path(imported)
        else:
            helper = beside
        differs = _code_differs(helper, held) if helper.is_file() else None  # (gone: loading says so if needed)
        if differs:
            changes.append(
                (
                    helper,
                    f"(module {name}, imported by the code of {str(file)!r}) is not the file the run was trained "
                    f"with ({differs})",
                )
            )
    return changes


def _check_imports(ref: str, entry: Any, continuing: bool = False) -> list[str]:
    """As :func:`_check_unchanged`, once the code is loaded, for the user's modules it
    imported from other files than those compared before (:func:`_imports_changed`)."""
    recorded = entry.get("sha256") if isinstance(entry, dict) else None
    file = None if recorded is None else _code_file(ref)
    if file is None or not file.is_file():
        return []
    return _said(_imports_changed(file, ref, entry, loaded=True), continuing)


def _said(changes: list[tuple[Path, str]], continuing: bool) -> list[str]:
    """Warn of (``continuing``: refuse) the changed files; their paths."""
    if not changes:
        return []
    what = "; ".join(f"{str(path)!r} {text}" for path, text in changes)
    if continuing:
        raise GameError(
            f"{what}: resuming would train on other code than its first iterations; restore the file or start a new run"
        )
    warn(what)
    return [str(path) for path, _ in changes]


def _csv_text(rows: list[dict[str, Any]], header: bool, columns: list[str] | None = None) -> str:
    """metrics.csv's lines for ``rows`` (with its header line when ``header``), in
    ``columns`` (default: :func:`~mfax.run.columns.csv_columns` of the rows; appending,
    the file's own header, so that every line has the file's columns)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or csv_columns(rows), extrasaction="ignore", restval="")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(csv_cells(row))
    return out.getvalue()


def _csv_header(path: Path) -> list[str] | None:
    """The column names of the CSV file ``path``'s first line (``None``: no complete first
    line)."""
    with path.open(newline="") as f:
        line = f.readline()
    if not line.endswith("\n"):
        return None
    return next(csv.reader([line]), None) or None


def _same_figure(text: str, value: Any) -> bool:
    """Whether a metrics.csv cell ``text`` records ``value`` (metrics.jsonl's): equal as
    text, or as numbers to float32's precision; a NaN or inf is ``nan``/``inf`` in
    metrics.csv (or, rewritten on a resume, an empty cell) and null in metrics.jsonl."""
    try:
        a = float(text)
    except ValueError:
        return value is not None and text == str(value)
    if value is None:
        return not math.isfinite(a)
    try:
        b = float(value)
    except (TypeError, ValueError):
        return False
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


# the columns every metrics row has (rows written before mfax added a column lack it)
REQUIRED = tuple(column for column in METRIC_COLUMNS if column not in ADDED_COLUMNS)


def _metrics_row_problem(row: dict[str, Any]) -> str | None:
    """What makes ``row`` (one line of metrics.jsonl, a dict with an integer iteration)
    other than a row mfax writes: a metric column missing, a negative or non-integer
    iteration, run or seed, a wall-clock that is not a number, a figure that is not a
    number or null, swept values that are not an object of scalars; ``None`` when
    nothing. Every
    reader of the rows (resume, eval, plot, the trackers, the API) relies on them."""
    missing = [column for column in REQUIRED if column not in row]
    if missing:
        return f"it lacks {', '.join(repr(c) for c in missing)}"
    for column in ("iteration", "run", "seed"):
        value = row[column]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"its {column!r} is {json.dumps(value)}, not a whole number >= 0"
    for column in METRIC_COLUMNS:
        value = row.get(column)
        if value is None and column == "wall_clock_s":
            return f"its {column!r} is null, not a number"
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"its {column!r} is {json.dumps(value)}, not a number or null"
    swept = row.get(PARAMS)
    if swept is not None and not (
        isinstance(swept, dict) and all(not isinstance(v, dict | list) for v in swept.values())
    ):
        return f"its {PARAMS!r} is {json.dumps(swept)}, not an object of the swept parameters' values"
    return None


def _jsonl_text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(json_ready(row)) + "\n" for row in rows)


def _widening_leaf(f, like: Any) -> Any:
    """Equinox's reading of one checkpoint leaf, with an array stored in a narrower
    dtype of the same kind as ``like``'s (float32 for float64, int32 for int64: a run
    trained in float32 evaluated with ``--x64``) converted to ``like``'s dtype, which is
    exact; equinox's own check then refuses every other mismatch."""
    import jax.numpy as jnp

    value = eqx.default_deserialise_filter_spec(f, like)
    want, got = getattr(like, "dtype", None), getattr(value, "dtype", None)
    if want is None or got is None or want == got or not hasattr(value, "shape"):
        return value
    same_kind = np.dtype(got).kind == np.dtype(want).kind and np.dtype(got).kind in "fiu"
    if same_kind and np.dtype(got).itemsize < np.dtype(want).itemsize:
        return value.astype(want) if isinstance(value, np.ndarray) else jnp.asarray(value, dtype=want)
    return value


def _devices_here(data: Any) -> Any:
    """config.json's ``devices`` limited to the devices of this machine: a run trained on
    more (``--devices 4`` on a larger host) is read back, evaluated and continued on those
    here instead of being refused (the provenance line says the setup differs; results
    match to floating-point tolerance, long trainings drift apart slowly)."""
    devices = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(devices, int) or isinstance(devices, bool) or devices <= 1:
        return data
    import jax

    here = len(jax.devices())
    if devices <= here:
        return data
    return {**data, "devices": here}


class RunDir:
    """Paths and file formats of one run (no state beyond the root path, and what
    :meth:`load_config` found edited in config.json or changed in the code it names: a
    checkpoint that then does not fit says so)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.config_edits: list[str] = []
        self.code_changed: list[str] = []  # code files the run names, changed since training (load_config)

    marker_path = property(lambda self: self.root / MARKER)
    config_path = property(lambda self: self.root / "config.json")
    code_path = property(lambda self: self.root / "code.json")
    metrics_csv = property(lambda self: self.root / "metrics.csv")
    metrics_jsonl = property(lambda self: self.root / "metrics.jsonl")
    summary_path = property(lambda self: self.root / "summary.json")
    checkpoint_path = property(lambda self: self.root / "checkpoint.eqx")
    digest_path = property(lambda self: _digest_of(self.checkpoint_path))
    lock_path = property(lambda self: self.root / LOCK)
    plots_dir = property(lambda self: self.root / "plots")
    provenance_path = property(lambda self: self.root / "provenance.json")
    best_checkpoint_path = property(lambda self: self.root / "checkpoint-best.eqx")
    kept_dir = property(lambda self: self.root / "checkpoints")

    # -- what the directory is -----------------------------------------------------------
    def is_run(self) -> bool:
        """An mfax run: the marker, or (written before the marker) a config.json in
        mfax's format, holding every key every mfax version has written
        (:data:`_PRE_MARKER_KEYS`), beside metrics.jsonl of mfax's rows or checkpoint.eqx.
        Another tool's config.json with a ``game`` and an ``algo`` is not mistaken for one,
        nor a copy of a run's config.json kept beside a log of the user's own (which
        ``--overwrite`` removed)."""
        if self.marker_path.is_file():
            return True
        if not self.config_path.is_file():
            return False
        if not (self._mfax_rows(self.metrics_jsonl) or self.checkpoint_path.is_file()):
            return False
        try:
            data = json.loads(self.config_path.read_text())
            if not (isinstance(data, dict) and _PRE_MARKER_KEYS <= set(data)):
                return False
            from_dict(data)
            return True
        except (OSError, ValueError, TypeError, GameError):
            return False

    @staticmethod
    def _mfax_rows(path: Path) -> bool:
        """Whether ``path`` is a metrics.jsonl mfax wrote: every line a JSON object with an
        ``iteration`` and a ``run`` (a torn last line excepted: a writer killed mid-line)."""
        if not path.is_file() or path.is_symlink():
            return False
        try:
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            rows = [json.loads(line) for line in lines[:-1]]
            try:
                rows += [json.loads(lines[-1])] if lines else []
            except ValueError:
                pass
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        return all(isinstance(row, dict) and {"iteration", "run"} <= set(row) for row in rows)

    def check_new(self, overwrite: bool = False) -> None:
        """Raise unless a new run may be written here (reads only): the directory is
        missing or empty, or it is an mfax run and ``overwrite`` is set."""
        root = str(self.root)
        if not self.root.exists():
            if self.root.is_symlink():  # a link to nothing: the directory cannot be made there ("File exists")
                raise GameError(
                    f"cannot create run directory {root!r}: it is a link to {os.readlink(self.root)!r}, which does "
                    "not exist; create that directory, or give another path"
                )
            above = file_above(self.root)
            if above is not None:
                raise GameError(f"cannot create run directory {root!r}: {str(above)!r} is not a directory")
            return
        if not self.root.is_dir():
            raise GameError(f"run directory {root!r} is a file, not a directory")
        with _disk("read", self.root):
            left = {p.name for p in self._left_tmp()}  # (a writer killed mid-write: nothing saved)
            entries = [p.name for p in self.root.iterdir() if p.name != LOCK and p.name not in left]
        if not entries or self.is_stub():
            return
        if not self.is_run():
            what = "refusing to overwrite" if overwrite else "refusing to write into"
            raise GameError(
                f"{what} {root!r}: it is a non-empty directory that is not an mfax run; give a new or empty directory"
                + advice(" (--out)", " (out=)")
            )
        if not overwrite:
            raise GameError(
                f"run directory {root!r} already holds a run; "
                + advice(
                    "resume it (--resume), replace it (--overwrite)",
                    "resume it (mfax.resume), replace it (overwrite=True)",
                )
                + " or write elsewhere"
            )

    def _left_tmp(self) -> list[Path]:
        """The temporary files of the run's data files (and kept checkpoints) that a
        process killed mid-write left (:func:`left_by_a_killed_writer`)."""
        names = tuple(n for n in _REPLACED if not any(c in n for c in "/*["))
        found = [p for p in self.root.iterdir() if left_by_a_killed_writer(p, names)] if self.root.is_dir() else []
        if self.kept_dir.is_dir() and not self.kept_dir.is_symlink():
            for path in self.kept_dir.iterdir():
                named = _LEFT_TMP.fullmatch(path.name)
                if named and _KEPT_NAMES.fullmatch(named["name"]) and left_by_a_killed_writer(path, (named["name"],)):
                    found.append(path)
        return found

    def is_stub(self) -> bool:
        """Whether the directory holds only what a process killed as it started a run
        left: the marker (no config.json) and temporary files of killed writers. Nothing
        was trained: a new run may be written there (reads only)."""
        if not self.marker_path.is_file() or self.config_path.exists():
            return False
        left = {p.name for p in self._left_tmp()}
        return all(p.name in (LOCK, MARKER) or p.name in left for p in self.root.iterdir())

    def _refuse_a_file(self) -> None:
        """One line where a file is named instead of a run's folder (a file of a run, say)."""
        if self.root.is_file():
            raise GameError(f"{str(self.root)!r} is a file, not a run directory; name the folder of a run")

    def check_run(self) -> None:
        """Raise unless this is an mfax run directory (reads only)."""
        if not self.root.exists():
            raise GameError(f"{str(self.root)!r} is not a run directory: it does not exist")
        self._refuse_a_file()
        if not self.is_run():
            self._not_a_study()
            raise GameError(f"{str(self.root)!r} is not a run directory (no mfax run there)")

    def _not_a_study(self) -> None:
        """Raise, naming its best run, where this folder is an ``mfax tune`` study's."""
        best = self.root / "best"
        if (self.root / TUNE_MARKER).is_file() and (best / "config.json").is_file():
            raise GameError(
                f"{str(self.root)!r} holds an mfax tune study, not a run; its best trial's run is {str(best)!r}"
            )

    def start_new(self, config: TrainConfig, overwrite: bool = False, checked: bool = False) -> None:
        """Under the lock: check again (unless ``checked``: the caller did, under the lock,
        before setting the old run aside), remove the old run's files (``overwrite``; the
        marker is replaced, never missing), write the marker, then the config."""
        if not checked:
            self.check_new(overwrite)
        self.remove_own_files(keep_marker=True)
        # the folder's run id (what its kept checkpoints are told by), kept by an --overwrite: the
        # replaced run's files, restored if the new one fails before its first checkpoint, are still its own
        marker = {"mfax_run": 1, "run_id": run_id_of(self.root) or secrets.token_hex(8)}
        _replace_with(self.marker_path, json.dumps(marker).encode() + b"\n")
        self.save_config(config)

    def is_empty(self) -> bool:
        """Whether the directory is missing or holds nothing but mfax's lock file (reads only)."""
        with _disk("read", self.root):
            return not self.root.exists() or all(p.name == LOCK for p in self.root.iterdir())

    def own_files(self) -> list[Path]:
        """The files here that mfax wrote (matches of ``OWN_FILES`` that :func:`_written_by_mfax`
        recognises); never a match reached through a linked folder (``plots`` pointing
        elsewhere, say), whose files are not the run's."""
        return [
            p
            for pattern in OWN_FILES
            for p in self.root.glob(pattern)
            if (p.is_file() or p.is_symlink()) and not self._through_link(p) and _written_by_mfax(self.root, pattern, p)
        ]

    def _through_link(self, path: Path) -> bool:
        """Whether a folder between the run directory and ``path`` is a symbolic link."""
        return any(folder.is_symlink() for folder in path.parents if self.root in folder.parents)

    def remove_own_files(self, keep_marker: bool = False) -> None:
        """Delete the files mfax writes (``OWN_FILES``; ``keep_marker``: but the marker),
        never anything else; folders are removed only when they end up empty."""
        removed = []
        for path in self.own_files():
            if not (keep_marker and path == self.marker_path):
                with _disk("remove", path):
                    path.unlink()
                removed.append(path)
        self._remove_emptied(removed)

    def _remove_emptied(self, paths: list[Path]) -> None:
        """Remove the folders of the run that held ``paths`` and are now empty."""
        folders = {p for path in paths for p in path.parents if self.root in p.parents}
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with _disk("clear", folder):
                if not folder.is_symlink() and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    # -- the run an --overwrite replaces: aside until the new run's first checkpoint ------
    aside_path = property(lambda self: self.root / ASIDE)
    discarded_path = property(lambda self: self.root / DISCARDED)

    def set_aside(self) -> bool:
        """Move the files mfax wrote here (all but the marker) into :data:`ASIDE` at their
        relative paths, then mark it complete; ``False`` when there were none. Renames
        within the folder: no copy in memory, and a process killed before the new run's
        first checkpoint leaves the old run on disk (:meth:`settle`). A file that cannot
        be moved (a read-only folder) moves the others back and is one line naming it,
        with the run as it was."""
        if self.aside_path.is_dir() and not self.aside_path.is_symlink() and not any(self.aside_path.iterdir()):
            with _disk("remove", self.aside_path):  # (what a kill before its start mark, or after its last, leaves)
                self.aside_path.rmdir()
        if is_aside(self.aside_path):  # (its removal failed: never mixed with this)
            raise GameError(
                f"cannot replace the run in {str(self.root)!r}: the run an earlier --overwrite replaced is still in "
                f"{str(self.aside_path)!r} (its removal failed); remove that folder, then replace the run"
            )
        if self.aside_path.exists() or self.aside_path.is_symlink():
            raise GameError(
                f"cannot replace the run in {str(self.root)!r}: {str(self.aside_path)!r}, which mfax did not write "
                "(or left holding files it did not write), is where it sets the replaced run aside; move it, then "
                "replace the run"
            )
        files = [p for p in self.own_files() if p != self.marker_path]
        if not files:
            return False
        moved: list[tuple[Path, Path]] = []
        try:
            with _disk("create", self.aside_path):
                self.aside_path.mkdir()
            _mark_started(self.aside_path, [p.relative_to(self.root).as_posix() for p in files])
            for path in files:
                target = self.aside_path / path.relative_to(self.root)
                with _disk("set aside", path):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(path, target)  # (a link is moved as the link)
                moved.append((path, target))
            with _disk("write", self.aside_path):
                (self.aside_path / ASIDE_DONE).write_bytes(b"")
        except BaseException:
            for path, target in reversed(moved):
                with contextlib.suppress(OSError):
                    os.rename(target, path)
            if self.aside_path.is_dir() and not _present(_set_aside_files(self.aside_path)):
                with contextlib.suppress(GameError):
                    _clear_aside(self.aside_path, [self.aside_path / p.relative_to(self.root) for p in files])
            raise
        with contextlib.suppress(GameError):  # (an empty folder left behind is harmless)
            self._remove_emptied(files)
        return True

    def _move_back(self) -> None:
        """Move every file mfax set aside in :data:`ASIDE` back to its place, then remove
        the folder (what mfax did not write stays in it, and a warning says so). A file
        that appeared at a place since (one mfax did not write: the new run's own were
        removed) is never replaced: the old run's file goes beside it (:func:`_put_back`),
        and a warning names both."""
        said, listed = [], _set_aside_files(self.aside_path)
        for path in _present(listed):
            own = self.root / path.relative_to(self.aside_path)
            target, blocker = _free_folder(self.root, path.relative_to(self.aside_path))
            with _disk("put back", target):
                target.parent.mkdir(parents=True, exist_ok=True)
                placed = _put_back(path, target)
            if placed != own:
                blocked = blocker or own
                said.append(
                    f"kept {str(blocked)!r}, which appeared while the run it replaced was set aside; that run's "
                    f"file is beside it, as {str(placed)!r}"
                )
        left = _clear_aside(self.aside_path, listed)  # (moved: their folders, the marks, the folder)
        for message in said:  # (after the move: a warning turned into an error cannot stop it part-way)
            warn(message)
        _kept_foreign(self.aside_path, left)

    def restore_aside(self) -> None:
        """Put the run :meth:`set_aside` moved back in place of what was written since
        (the files mfax wrote, but the marker). The new run's checkpoint goes first: a
        kill part-way then never leaves a checkpoint beside the completion mark, which
        :meth:`settle` would read as the new run's and discard the old one."""
        if self.checkpoint_path.is_file() and not self.checkpoint_path.is_symlink():
            with _disk("remove", self.checkpoint_path):
                self.checkpoint_path.unlink()
        self.remove_own_files(keep_marker=True)
        # what remains is a move back alone: a restore cut short (a kill, an OSError) is
        # then finished by _recover as a set-aside cut short, never taken for a new run's files
        if not (self.aside_path / ASIDE_STARTED).is_file():  # (an earlier mfax's: it still is without the mark below)
            _mark_started(
                self.aside_path, [p.relative_to(self.aside_path).as_posix() for p in _earlier_files(self.aside_path)]
            )
        with _disk("put back", self.aside_path):
            (self.aside_path / ASIDE_DONE).unlink(missing_ok=True)
        self._move_back()

    def discard_aside(self) -> None:
        """Remove the set-aside run (the new one has its first checkpoint): the files mfax
        moved there, then its marks, the completion mark before the other (a kill part-way
        leaves a folder :meth:`settle` discards again, never one it would move back), then
        the folder, unless it holds something mfax did not write (kept, and said). A
        removal that fails is a warning, never an error (the new run's checkpoint is
        written): the old run stays aside, and the next command on the run removes it."""
        try:
            left = _clear_aside(self.aside_path, _set_aside_files(self.aside_path)) if is_aside(self.aside_path) else []
        except GameError as err:
            if self.root.resolve() not in _DISCARD_FAILED:  # (said once; tried again at each lock and checkpoint)
                _DISCARD_FAILED.add(self.root.resolve())
                warn(f"{err}: the run this one replaced stays in it until the next mfax command on the run removes it")
            return
        _DISCARD_FAILED.discard(self.root.resolve())
        _kept_foreign(self.aside_path, left)

    def _recover(self) -> None:
        """Under the lock: what a killed ``--overwrite`` left. Part-way through setting
        the old run aside (not complete): its files go back (the new run had not
        started). Complete, the new run without a checkpoint: the old run comes back in
        its place. Complete, the new run with one (killed before the old was removed):
        the old is removed. An earlier mfax marked the folder only once complete, and
        unmarked it first when putting the run back: a folder it left unmarked that holds
        nothing but the run's files is such a one cut short, and its files go back."""
        earlier = _earlier_aside(self.aside_path)
        if earlier:
            _mark_started(self.aside_path, [p.relative_to(self.aside_path).as_posix() for p in earlier])
        if is_aside(self.aside_path):  # (never a folder of the user's by that name)
            killed = f"a killed `mfax train --overwrite` in {str(self.root)!r}"
            if not (self.aside_path / ASIDE_DONE).is_file():
                self._move_back()
                warn(f"put back the run that {killed} had moved aside; nothing of the new run is kept")
            elif self.has_checkpoint():
                self.discard_aside()
                if not is_aside(self.aside_path):
                    warn(f"removed the run that {killed} replaced: the new run had saved its first checkpoint")
            else:
                self.restore_aside()
                warn(
                    f"put back the run that {killed} was replacing: the new run, stopped before its first "
                    "checkpoint, is removed"
                )
        # an earlier mfax renamed the old run there, then removed the folder whole
        discarded = (
            _set_aside_files(self.discarded_path)
            if is_aside(self.discarded_path)
            else _earlier_aside(self.discarded_path)
        )
        if discarded is not None:
            with contextlib.suppress(GameError):  # (tried again by the next command)
                _kept_foreign(self.discarded_path, _clear_aside(self.discarded_path, discarded))

    def settle(self) -> None:
        """Before a command reads or continues the run: what a killed ``--overwrite``
        left set aside is settled (:meth:`_recover`, under the lock; while the
        ``--overwrite`` still runs, the lock's one line names its process)."""
        if any(is_aside(f) or _earlier_aside(f) for f in (self.aside_path, self.discarded_path)):
            if not os.access(self.root, os.W_OK | os.X_OK):  # (read-only media: it cannot be settled here)
                raise GameError(
                    f"{str(self.root)!r} holds what a killed `mfax train --overwrite` left ({ASIDE}); it is read-only "
                    "here: copy it to writable storage, where the next mfax command settles it"
                )
            with self.lock():
                pass

    def read_files(self) -> dict[str, bytes]:
        """The run's data files by path relative to the run (the marker, config, metrics,
        summary, provenance, checkpoints and their digests; not plots, trackers' logs or
        temporary files): a copy that :meth:`write_files` writes back."""
        paths = [p for pattern in _REPLACED for p in self.root.glob(pattern) if p.is_file()]
        with _disk("read", self.root):
            return {p.relative_to(self.root).as_posix(): p.read_bytes() for p in paths if not self._through_link(p)}

    def write_files(self, files: dict[str, bytes], overwrite: bool = False) -> None:
        """Write a run copied by :meth:`read_files` here, as a new run is written: the
        directory must be missing, empty or (``overwrite``) an mfax run; under the lock,
        the marker first and the checkpoint last. A run it replaces is set aside
        (:meth:`set_aside`) and removed once every file is written; a failure or an
        interruption before puts it back, and a kill leaves what :meth:`settle` settles
        (the new copy's checkpoint, written last, says it is whole)."""
        self.check_new(overwrite)
        with self.lock(), deferred_signals():  # (a Ctrl-C acts once the copy, or the old run, is whole)
            self.check_new(overwrite)
            aside = self.set_aside()
            # (the replaced run's marker, put back with it: its run id tells its kept checkpoints)
            marker = self.marker_path.read_bytes() if aside and self.marker_path.is_file() else None
            try:
                self.remove_own_files(keep_marker=True)  # (what set_aside leaves: the marker, replaced first)
                order = {MARKER: 0, self.checkpoint_path.name: 2}
                for name in sorted(files, key=lambda n: order.get(n, 1)):
                    path = self.root / name
                    with _disk("create", path.parent):
                        path.parent.mkdir(parents=True, exist_ok=True)
                    _replace_with(path, files[name])
            except BaseException:
                if aside and self.has_checkpoint() and self.checkpoint_path.name in files:  # written last: whole
                    self.discard_aside()
                elif aside:
                    self.restore_aside()
                    if marker is not None:
                        _replace_with(self.marker_path, marker)
                raise
            if aside:
                self.discard_aside()

    @contextlib.contextmanager
    def lock(self, what: str = "run directory") -> Iterator[None]:
        """Hold ``mfax.lock`` (an exclusive flock) while writing; a second writer gets a
        one-line error naming the process that holds it (and the folder as ``what``: a
        tuner's study directory uses the same lock)."""
        with _disk(f"create {what}", self.root):
            self.root.mkdir(parents=True, exist_ok=True)
        with _disk("lock", self.lock_path):
            if self.lock_path.is_symlink():
                raise GameError(f"{str(self.lock_path)!r} is a link, not mfax's lock file; remove it")
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as err:  # (a bare "Permission denied" did not say which folder, nor why it matters)
                if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                why = "is on a read-only file system" if err.errno == errno.EROFS else "is not writable here"
                raise GameError(
                    f"cannot write in {what} {str(self.root)!r}: it {why} ({err.strerror}); mfax holds its lock "
                    f"file there while it writes; copy the folder to one you can write and name that"
                ) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise GameError(f"{str(self.lock_path)!r} is not a regular file, not mfax's lock file; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                raise GameError(
                    f"{what} {str(self.root)!r} is in use by process {holder}: one process writes it at a time; wait "
                    "for that one to end, or write elsewhere"
                ) from None
            held = os.pread(fd, 64, 0)
            if held and not re.fullmatch(rb"\d+\n?", held):
                raise GameError(
                    f"{str(self.lock_path)!r} is not mfax's lock file (it holds something other than a "
                    "process id); remove it or choose another directory"
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._recover()
            for path in self._left_tmp():  # what writers killed mid-write left (checkpoint-sized)
                with contextlib.suppress(OSError):
                    path.unlink()
            yield
        finally:
            os.close(fd)  # releases the flock

    # -- config ------------------------------------------------------------------------
    def trained_in_float64(self) -> bool:
        """Whether config.json says the run was trained in float64 (``x64``), read without
        validating or importing anything (``False`` when it cannot be read)."""
        if special_file(self.config_path):  # (the reader that follows says what it is)
            return False
        try:
            data = json.loads(self.config_path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        return isinstance(data, dict) and data.get("x64") is True

    def load_config(self, consent: Consent = NO_CODE, continuing: bool = False) -> TrainConfig:
        """The run's config, validated as a fresh run's is (an edited config.json too).
        Code the config names (a game or solver outside mfax) is imported only with the
        reader's ``consent``; otherwise a one-line error names it and how to allow it. A
        file of that code that is not the one the run was trained with is a warning to a
        reader, and an error for ``continuing`` (a resume would train on other code)."""
        self._refuse_a_file()
        if self.is_stub():
            raise GameError(
                f"{str(self.root)!r} holds only the marker of a run killed before its config was written: nothing "
                f"was trained; train anew there (`mfax train --out {self.root}`)"
            )
        if not self.root.exists():
            raise GameError(f"{str(self.root)!r} is not a run directory: it does not exist")
        if not self.config_path.is_file():
            self._not_a_study()
            kind = special_file(self.config_path)
            what = "no config.json" if kind is None else f"its config.json is a {kind}, not a file mfax wrote"
            raise GameError(f"{str(self.root)!r} is not a run directory ({what})")
        if consent.game is not None and is_reference(consent.game):  # the reader's own typo: say so
            named = parse(consent.game, "--game")
            if named.file is not None and not named.file.is_file():
                raise ArgumentError("game", f"game {consent.game!r}: file {str(named.file)!r} not found")
        raw = self._read_json(self.config_path)
        data = _devices_here(self._consented(raw, consent, continuing))
        try:
            config = resolve(from_dict(data))  # (imports the code the reader allowed)
        except GameError as err:
            moved = ""
            ref = data.get("game")
            if isinstance(ref, str) and is_reference(ref) and consent.game is None:
                file = parse(ref, "game").file
                if file is not None and not file.is_file():  # (moved, renamed, or another machine's path)
                    where = f"path/to/{file.name}:{parse(ref, 'game').name}"
                    moved = f"; name the game's file where it is now: --game {where} (mfax.load(..., game=...))"
            algo = data.get("algo")
            created = self._code_json().get("trained_on")
            edited = isinstance(created, dict) and "algo" in created and created["algo"] != algo
            if edited:  # (the run's own solver is known: config.json names another)
                changed = f"algo {json.dumps(created['algo'])} -> {json.dumps(algo)}"
                raise GameError(
                    f"{str(self.config_path)!r} was edited since the run was created ({changed}): {err}"
                ) from None
            if isinstance(algo, str) and not is_reference(algo) and str(err).startswith(f"unknown algorithm {algo!r}"):
                raise GameError(
                    f"run {str(self.root)!r} was trained with solver {algo!r}, which is not known to this process: a "
                    "solver registered with mfax.solvers.register_solver is known where it is registered; register it "
                    "again before reading the run (Python), or train with the solver named by its file or module "
                    "(--algo path/to/file.py:SPEC) or as an installed plug-in, which every process reads"
                ) from None
            raise GameError(f"{str(self.config_path)!r}: {err}{moved}") from None
        except (TypeError, ValueError, AttributeError) as err:
            raise GameError(f"{str(self.config_path)!r} is not a valid mfax configuration: {err}") from None
        record = self._code_json()  # the user's modules the code imported, now that it is loaded
        for key in ("game", "algo"):
            ref = data.get(key)
            if isinstance(ref, str) and is_reference(ref):
                self.code_changed.extend(_check_imports(ref, record.get(key), continuing))
        # a valid configuration, but another problem than the run's? (compared as mfax writes
        # it: a config.json of an older layout that means the same is not an edit)
        self._check_edits(json.loads(config.to_json()), continuing)
        return config

    def save_config(self, config: TrainConfig) -> None:
        """Write config.json and code.json (the code it names, and the entries of
        config.json that define the problem as the run was created: kept as they were
        when a resume rewrites config.json)."""
        text = config.to_json()
        record = code_record(config)
        earlier = self._code_json()
        created = earlier.get("trained_on")
        record["trained_on"] = created if isinstance(created, dict) else _trained_on(json.loads(text))
        _replace_with(self.config_path, text.encode())
        _replace_with(self.code_path, json.dumps(record, indent=2).encode() + b"\n")

    def _code_json(self) -> dict[str, Any]:
        """code.json's record; empty when there is none (a run from an older mfax)."""
        return self._read_json(self.code_path) if self.code_path.is_file() else {}

    def _check_edits(self, data: dict[str, Any], continuing: bool) -> None:
        """A config.json edited since the run was created in what defines its problem
        (a game parameter, the solver, its hyper-parameters, learning rates, seeds, noise):
        its checkpoints solve the original. A resume would train on from them on another
        problem: refused; a reader (eval, plot, export, load) is told in one line."""
        missing = not self.code_path.is_file() and self.marker_path.is_file() and self.metrics_jsonl.is_file()
        if missing and self.code_path.resolve() not in _CODE_MISSING_SAID:
            # (an mfax from before code.json wrote none: its runs are read and resumed as they were)
            _CODE_MISSING_SAID.add(self.code_path.resolve())
            warn(
                f"{str(self.code_path)!r} is missing: whether config.json was edited since the run was created "
                "cannot be told (it records the configuration the run was created with); restore it if you can"
            )
        changed = edits(data, self._code_json())
        self.config_edits = changed
        if not changed:
            return
        what = f"{str(self.config_path)!r} was edited since the run was created ({'; '.join(changed)})"
        if continuing:
            raise GameError(
                f"{what}: the checkpoints were trained on the original; restore it, or train a new run "
                "(mfax train --config on a copy)"
            )
        warn(f"{what}: what follows uses the edited configuration, the checkpoints were trained on the original")

    def _consented(self, data: dict[str, Any], consent: Consent, continuing: bool = False) -> dict[str, Any]:
        """``data`` (config.json's) with the game the reader named again; raises when it
        names code the reader has not allowed."""
        data = dict(data)
        record = self._code_json()
        if consent.game is not None and isinstance(data.get("game"), str):
            data["game"] = _named_again(data["game"], consent.game)
        for key, what in (("game", "game"), ("algo", "solver")):
            ref = data.get(key)
            if not (isinstance(ref, str) and is_reference(ref)):
                continue
            if not (consent.trust or (key == "game" and consent.game is not None)):
                how = (
                    "name the game again (--game REF; mfax.load(..., game=REF)) or pass --trust-code (trust_code=True)"
                    if key == "game"
                    else "pass --trust-code (mfax.load(..., trust_code=True))"
                )
                raise GameError(
                    f"run {str(self.root)!r} names {what} code {ref!r}, which mfax imports (runs) only if you "
                    f"allow it: {how}"
                )
            self.code_changed.extend(_check_unchanged(ref, record.get(key), continuing))
        return data

    def _read_json(self, path: Path) -> dict[str, Any]:
        with _disk("read", path):
            raw = path.read_bytes()
        try:
            data = json.loads(raw.decode())
        except ValueError as err:  # (UnicodeDecodeError too: bytes that are no text)
            raise GameError(f"{str(path)!r} is corrupt (not JSON: {err})") from None
        if not isinstance(data, dict):
            raise GameError(f"{str(path)!r} is corrupt (not a JSON object)")
        return data

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def has_other_checkpoints(self) -> bool:
        """A best or kept checkpoint (besides checkpoint.eqx)."""
        return self.best_checkpoint_path.is_file() or bool(self.kept_iterations())

    # -- metrics -----------------------------------------------------------------------
    def append_metrics(self, rows: list[dict[str, Any]]) -> None:
        new = not self.metrics_csv.exists()
        with _disk("write", self.metrics_csv):
            columns = None if new else _csv_header(self.metrics_csv)
            with self.metrics_csv.open("a", newline="") as f:
                f.write(_csv_text(rows, header=new, columns=columns))
        with _disk("write", self.metrics_jsonl), self.metrics_jsonl.open("a") as f:
            f.write(_jsonl_text(rows))

    def read_metrics(self) -> list[dict[str, Any]]:
        """The metric rows; a torn last line (a kill during an append) is dropped with a
        warning, any other unreadable line is an error."""
        if not self.metrics_jsonl.exists():
            return []
        with _disk("read", self.metrics_jsonl):
            lines = self.metrics_jsonl.read_bytes().decode(errors="replace").split("\n")
        rows = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("iteration"), int):
                    raise ValueError("not a metrics row")
            except ValueError:
                if number == len(lines):  # the last line, without its newline: torn
                    warn(f"dropped the torn last line of {str(self.metrics_jsonl)!r} (an interrupted write)")
                    break
                raise GameError(f"line {number} of {str(self.metrics_jsonl)!r} is corrupt") from None
            problem = _metrics_row_problem(row)
            if problem:
                raise GameError(
                    f"line {number} of {str(self.metrics_jsonl)!r} is not a metrics row as mfax writes it: {problem} "
                    f"(each row has {', '.join(REQUIRED)}: whole numbers for iteration, run and seed, a "
                    "number for wall_clock_s, numbers or null for the others); it was edited: restore it"
                )
            # (a row written before mfax recorded a column: null there, as for a figure not had)
            rows.append({**row, **{column: None for column in ADDED_COLUMNS if column not in row}})
        return rows

    def truncate_metrics(self, last_iteration: int, swept: Callable[[int], dict[str, Any]] | None = None) -> None:
        """Rewrite the metric files cleanly with the rows up to ``last_iteration`` (drops
        rows written after the checkpoint by a run killed between the two writes).
        Both files are rewritten from metrics.jsonl, so a metrics.csv that holds a row up
        to ``last_iteration`` which metrics.jsonl lacks or records otherwise (one of them
        was edited) is refused rather than overwritten (:meth:`csv_disagreement`).
        ``swept(r)``: run ``r``'s values of the game parameters a sweep varies, which
        metrics.csv's header names even with no row kept (the rows appended next follow
        it) and a row written before mfax recorded them is given."""
        every = self.read_metrics()
        rows = [r for r in every if r["iteration"] <= last_iteration]
        # (iteration 0 with no checkpoint is evaluated again at once: nothing to say)
        dropped = sorted({r["iteration"] for r in every if r["iteration"] > max(last_iteration, 0)})
        if swept is not None:
            rows = [r if r.get(PARAMS) or not swept(r["run"]) else {**r, PARAMS: swept(r["run"])} for r in rows]
        disagreement = self.csv_disagreement(rows, last_iteration)
        if disagreement:
            raise GameError(
                f"{str(self.metrics_csv)!r} and {self.metrics_jsonl.name} disagree ({disagreement}): one was "
                f"edited, and resuming rewrites both from {self.metrics_jsonl.name}; mfax leaves them as they "
                "are: make them agree (or move metrics.csv away) and resume again"
            )
        columns = csv_columns([*rows, {PARAMS: swept(0)}] if swept is not None else rows)
        _replace_with(self.metrics_csv, _csv_text(rows, header=True, columns=columns).encode())
        _replace_with(self.metrics_jsonl, _jsonl_text(rows).encode())
        if dropped:
            which = f"iteration {dropped[0]}" if len(dropped) == 1 else f"iterations {', '.join(map(str, dropped))}"
            warn(
                f"dropped the metrics rows of {which} from {str(self.root)!r}: they were recorded after its last "
                f"checkpoint (iteration {max(last_iteration, 0)}), by a session stopped before it saved that "
                "iterate; this one trains and evaluates those iterations again"
            )

    def csv_disagreement(self, rows: list[dict[str, Any]], last_iteration: int) -> str | None:
        """What metrics.csv records up to ``last_iteration`` that ``rows`` (metrics.jsonl's)
        would lose: a row they lack, or a figure they record otherwise (beyond the last
        digit of a float32); ``None`` when nothing. Only complete lines count: a torn last
        line is an interrupted append."""
        if not self.metrics_csv.is_file():
            return None
        with _disk("read", self.metrics_csv):
            text = self.metrics_csv.read_bytes().decode(errors="replace")
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        kept = {(r["iteration"], r["run"]): r for r in rows}
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
            try:
                key = (int(row.get("iteration") or ""), int(row.get("run") or ""))
            except ValueError:
                return f"line {line} of metrics.csv names no iteration and run"
            if key[0] > last_iteration:
                continue
            if key not in kept:
                return f"metrics.csv has iteration {key[0]} of run {key[1]}, metrics.jsonl has not"
            for column, value in row.items():
                if column not in METRIC_COLUMNS or column in ("iteration", "run") or not value:
                    continue
                other = kept[key].get(column)
                if not _same_figure(value, other):
                    where = f"{column} at iteration {key[0]} of run {key[1]}"
                    return f"{where}: {value} in metrics.csv, {other} in metrics.jsonl"
        return None

    # -- checkpoints: each NAME.eqx beside NAME.json, its sha256 ---------------------------
    def save_checkpoint(self, state: Any, iteration: int | None = None) -> None:
        """Replace the checkpoint and its digest, which records the ``iteration`` the
        state holds (see :meth:`_write_checkpoint`)."""
        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, state)
        self._write_checkpoint(self.checkpoint_path, buffer.getvalue(), iteration)

    def _write_checkpoint(self, path: Path, data: bytes, iteration: int | None = None) -> None:
        """Replace the checkpoint file ``path`` by ``data``, and its digest (with the
        ``iteration`` it holds). The digest file is written first and accepts the old
        checkpoint and the new one (and names no iteration), so a kill between the steps
        leaves a pair that verifies."""
        digest = _digest_of(path)
        new = hashlib.sha256(data).hexdigest()
        with _disk("read", path):
            old = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        _replace_with(digest, json.dumps({"sha256": [new, old] if old else [new]}).encode() + b"\n")
        _replace_with(path, data)
        held = {} if iteration is None else {"iteration": int(iteration)}
        run_id = run_id_of(self.root)
        held |= {} if run_id is None else {"run_id": run_id}
        _replace_with(digest, json.dumps({"sha256": [new], **held}).encode() + b"\n")
        if path == self.checkpoint_path and is_aside(self.aside_path):  # the new run's first: the old goes
            self.discard_aside()

    def held_iteration(self, path: Path) -> int | None:
        """The iteration the checkpoint file ``path`` holds, as its digest records it; for
        a file written before digests recorded it, what the kept file's name or (the last,
        the best) summary.json says; ``None`` when nothing says."""
        digest = _digest_of(path)
        if digest.is_file():
            held = self._read_json(digest).get("iteration")
            if isinstance(held, int) and not isinstance(held, bool):
                return held
        named = _KEPT.fullmatch(path.name)
        if named and path.parent == self.kept_dir:
            return int(named.group(1))
        key = {self.checkpoint_path: "iterations", self.best_checkpoint_path: "best_iteration"}.get(path)
        held = self.read_summary().get(key) if key is not None else None
        return held if isinstance(held, int) and not isinstance(held, bool) else None

    def _read_checkpoint(self, path: Path) -> bytes:
        """The bytes of the checkpoint file ``path``, verified against its digest; only
        checkpoint.eqx may lack one (runs older than the digests load unverified)."""
        digest = _digest_of(path)
        for attempt in range(_READ_ATTEMPTS):
            with _disk("read", path):
                data = path.read_bytes()
            if not digest.exists():
                break
            record = self._read_json(digest)
            accepted = record.get("sha256") if isinstance(record, dict) else None
            if not (
                isinstance(accepted, list)
                and accepted
                and all(isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in accepted)
            ):
                raise GameError(f"{str(digest)!r} is corrupt: expected a list of sha256 digests")
            if hashlib.sha256(data).hexdigest() in accepted:
                return data
            # a training writing this run may have swapped the pair between the two reads
            # (:meth:`_write_checkpoint`): read both again before calling it corrupt
            time.sleep(0.05 * (attempt + 1))
        else:
            raise GameError(f"checkpoint {str(path)!r} is corrupt: its sha256 does not match {digest.name}")
        if path != self.checkpoint_path or self.marker_path.is_file():
            # only checkpoint.eqx of a run written before digests existed (no marker) has none
            raise GameError(f"checkpoint {str(path)!r} cannot be verified: its {digest.name} is missing")
        return data

    def load_checkpoint(self, template: Any, path: Path | None = None) -> Any:
        """The checkpoint ``path`` (default: the last; see :meth:`checkpoint_for`),
        verified against its digest. Arrays stored narrower than the template's (a run
        trained in float32 read under ``--x64``) are widened to its dtype, exactly; any
        other difference is refused."""
        path = self.checkpoint_path if path is None else path
        data = self._read_checkpoint(path)
        try:
            return eqx.tree_deserialise_leaves(io.BytesIO(data), template, filter_spec=_widening_leaf)
        except Exception as err:  # corrupt, or another configuration's or mfax version's state
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            changed = self.config_edits
            if changed:
                why = f"config.json was edited since the run was created ({'; '.join(changed)}): restore it"
            elif self.code_changed:
                why = f"{' and '.join(map(repr, self.code_changed))} changed since the run was trained: restore it"
            else:
                why = "written by another mfax version?"
            raise GameError(
                f"cannot read checkpoint {str(path)!r}: it does not hold the solver state this mfax "
                f"builds for the run's configuration ({why}): {first}"
            ) from None

    # -- best and kept checkpoints (verified copies of checkpoint.eqx) --------------------
    def kept_checkpoint_path(self, iteration: int) -> Path:
        return self.kept_dir / f"iteration-{iteration:08d}.eqx"

    def kept_iterations(self) -> list[int]:
        """Iterations with a kept checkpoint, ascending."""
        if not self.kept_dir.is_dir():
            return []
        names = (p.name for p in self.kept_dir.iterdir())
        return sorted(int(m.group(1)) for m in map(_KEPT.fullmatch, names) if m)

    def best_iteration(self) -> int | None:
        """The evaluated iteration at which a run reached the lowest exploitability (per
        path) of every run at every evaluation (the earliest of equals), from the metrics:
        the checkpoint holding the best policy found. Several runs share one checkpoint,
        so it is that run's best, not each run's. (It was the lowest mean over the runs,
        which a sweep of learning rates could put at the untrained iteration 0 while one
        of them had halved its exploitability.)"""
        scores = [(row["exploitability"], row["iteration"]) for row in self.read_metrics()]
        scores = [score for score in scores if score[0] is not None]  # (not finite: never the best)
        return min(scores)[1] if scores else None

    def best_iterations(self) -> dict[int, int]:
        """Each run's evaluated iteration of its own lowest exploitability (per path; the
        earliest of equals), from the metrics; a run with no finite figure is left out.
        Several runs share one checkpoint file: a run's own best is kept as a file only
        where it is the best of all, the last, or a kept evaluation."""
        best: dict[int, tuple[float, int]] = {}
        for row in self.read_metrics():
            score = (row["exploitability"], row["iteration"])
            if score[0] is not None and (row["run"] not in best or score < best[row["run"]]):
                best[row["run"]] = score
        return {r: iteration for r, (_, iteration) in best.items()}

    def keep_checkpoint(self, iteration: int, keep: int) -> None:
        """After :meth:`save_checkpoint` at an evaluated ``iteration``: copy it as the best
        when it is, and (``keep`` > 0) as this iteration's, removing kept ones beyond the
        ``keep`` most recent (only files named as this layout names them)."""
        if not self.has_checkpoint():
            return
        data = self._read_checkpoint(self.checkpoint_path)
        if self.best_iteration() == iteration:
            self._write_checkpoint(self.best_checkpoint_path, data, iteration)
        if keep > 0:
            with _disk("create", self.kept_dir):
                self.kept_dir.mkdir(exist_ok=True)
            self._write_checkpoint(self.kept_checkpoint_path(iteration), data, iteration)
            if self.kept_dir.is_symlink():  # (never removed through a linked folder)
                return
            paths = {i: self.kept_checkpoint_path(i) for i in self.kept_iterations()}
            own = [i for i, path in paths.items() if _kept_by_this_run(self.root, path, verify=False)]
            for old in own[:-keep]:  # (never a file this run did not write, nor counted among its N)
                path = self.kept_checkpoint_path(old)
                if not _kept_by_this_run(self.root, path):
                    continue
                with _disk("remove", path):
                    path.unlink(missing_ok=True)
                    _digest_of(path).unlink(missing_ok=True)

    def checkpoint_for(self, which: str) -> Path:
        """The checkpoint file of ``which``: ``"last"``, ``"best"`` or an iteration that
        is the last, the best or a kept one; a one-line error lists what is available."""
        named = {"last": self.checkpoint_path, "best": self.best_checkpoint_path}
        if which in named and named[which].is_file():
            return named[which]
        # the files there and the iteration each holds; a kept file is its iteration's own
        last, best = (self.held_iteration(p) if p.is_file() else None for p in named.values())
        choices = {k: p for k, p in ((best, named["best"]), (last, named["last"])) if k is not None}
        choices.update({k: self.kept_checkpoint_path(k) for k in self.kept_iterations()})
        if which.isdigit() and int(which) in choices:
            return choices[int(which)]
        tags = {k: ", ".join(t for t, at in (("best", best), ("last", last)) if at == k) for k in choices}
        available = ", ".join(f"{k} ({tags[k]})" if tags[k] else str(k) for k in sorted(choices)) or "none"
        keep = advice(
            "train with --keep N to keep the N most recent evaluations' checkpoints",
            "a run trained by `mfax train --keep N` keeps the N most recent evaluations' checkpoints",
        )
        if which in named:  # its file is gone (removed by hand, or a full disk between two writes)
            listed = f"the checkpoints there: {available}" if choices else "no other checkpoint is there"
            gone = f"the {which} checkpoint, {named[which].name}, is missing from {str(self.root)!r}"
            raise GameError(f"{gone}; {listed}")
        if not which.isdigit():  # neither a name nor an iteration number (foo, -1)
            what = advice("--iteration", "which")
            raise GameError(
                f"{what} must be 'best', 'last' or an iteration (a whole number >= 0), got {which!r}; "
                f"{str(self.root)!r} has checkpoints of {available}"
            )
        raise GameError(
            f"no checkpoint of iteration {which} in {str(self.root)!r}; available: {available} "
            f"(also 'best', 'last'; {keep})"
        )

    # -- summary -----------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(json_ready(summary), indent=2) + "\n"
        _replace_with(self.summary_path, text.encode())

    def read_summary(self) -> dict[str, Any]:
        """The summary ({} before the first); a corrupt one is a one-line error."""
        if not self.summary_path.exists():
            return {}
        try:
            return self._read_json(self.summary_path)
        except GameError as err:
            raise GameError(f"{err}; `mfax train --resume {self.root}` rewrites it") from None
