"""``mfax export RUN``: a trained policy's world along noise paths, as files other tools
read (``docs/economists.md#exporting-a-run``).

On the run's evaluation noise paths (or the first ``paths`` of them), by the exact
push-forward under the run's policy: the mean fields ``mu_0..mu_T``, the policy
``pi_0..pi_{T-1}`` (history-aware policies act differently on each path), the game's
aggregates (the macro game's prices among them), its moments, each path's weight and
noise. Two formats:

* ``npz`` (one file, ``numpy.load``): ``mean_field`` ``(P, T+1, n)``, ``policy``
  ``(P, T, n, m)``, ``weight`` ``(P,)``, ``state_<name>`` ``(n,)`` (what each state is,
  where the game says: the macro game's wealth and income), ``aggregate_<name>`` ``(P, T+1)``,
  ``moment_<name>`` ``(P, T+1, ...)`` or ``(P, T, ...)``, ``noise_<field>`` (the noise
  pytree's leaves), and ``manifest``: a JSON string saying what each array is;
* ``csv`` (a folder): ``paths.csv``, ``states.csv`` (where the game says what each state
  is), ``mean_field.csv``, ``policy.csv``,
  ``aggregates.csv`` (where the game declares aggregates), ``moments.csv`` (scalar moments by path and ``t``),
  ``moments_expected.csv`` and one ``moment_<name>.csv`` per array-valued moment (long
  format: one row per path, ``t`` and coordinates), one ``noise_<field>.csv`` per leaf
  of the noise (long format: ``path``, the leaf's own indices ``index_1, ...``,
  ``value``), with ``mfax-export.json`` listing every file, its columns and its number
  of rows.

Safety, as for run directories (:mod:`mfax.run.rundir`): mfax writes only where nothing
is, or (``overwrite``) over an export it wrote itself: an ``.npz`` holding mfax's
manifest, a folder holding ``mfax-export.json``, whose listed files alone are removed.
Every file goes to a temporary file first and replaces its target atomically; a CSV
export's files are written into a hidden folder in the target first and moved in
together, so an export cut short (Ctrl-C) leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mfax.dynamics.noise import NoiseBatch
from mfax.errors import GameError, advice
from mfax.evaluation.moments import aggregate_series, chunk_size, rollout_chunks
from mfax.games.base import Game, moment_paths, noise_words
from mfax.policies.base import Policy
from mfax.run.rundir import EXPORT_MARKER as MARKER
from mfax.run.rundir import _replace_with, file_above, folder_manifest, read_manifest, read_only_folder, running
from mfax.run.signals import deferred_signals

STAGING_PREFIX = ".mfax-export-"  # the hidden folder a CSV export is written into first
# ... named with its writer's process id (.mfax-export-<pid>-<random>); an earlier mfax
# named it without (.mfax-export-<random>)
# The staging folders this process is writing into now (another thread's export, say): one
# of this process's that is not here was left by a cleanup that failed, and is removed.
_WRITING: set[Path] = set()
_WRITING_LOCK = threading.Lock()
# in a staging folder, the file its writer holds an exclusive flock on while it writes: a
# lock, unlike a process id, is not repeated by containers sharing the folder (each has its
# own process ids, 1 among them), and it ends with its process
STAGING_LOCK = ".mfax-writing"
# ... made under this name, locked, then renamed: never seen unlocked under the other
_STAGING_LOCK_NEW = STAGING_LOCK + ".new"
_STAGING = re.compile(re.escape(STAGING_PREFIX) + r"(?:(?P<pid>[0-9]+)-)?[A-Za-z0-9_]{8}")

FORMATS = ("npz", "csv")
LIMIT_BYTES = 2 * 2**30
"""The largest export written without fewer paths: above it, a one-line error says how
large it would be and suggests ``--paths``."""


def _paths_option() -> str:
    """How many paths to export, as the user gives it (``--paths``; ``num_paths`` from Python)."""
    return advice("--paths", "num_paths")


def slug(label: str) -> str:
    """``"interest rate r_t"`` -> ``"interest_rate_r_t"``: a name usable as a key and a
    column."""
    return re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_").lower() or "value"


def check_slugs(labels, what: str) -> None:
    """Refuse labels that :func:`slug` maps to one name (``"K_t"`` and ``"k_t"``): one
    would silently replace the other in the export."""
    seen: dict[str, str] = {}
    for label in labels:
        other = seen.setdefault(slug(label), label)
        if other != label:
            raise GameError(
                f"{what} {other!r} and {label!r} would be exported under one name {slug(label)!r} "
                "(names are lower-cased, other characters become '_'); rename one of them in the game"
            )


def collect(game: Game, policy: Policy, batch: NoiseBatch, num_paths: int | None = None) -> dict[str, Any]:
    """Everything an export holds, on the first ``num_paths`` paths of ``batch`` (default:
    all): ``mean_field``, ``policy``, ``weight`` (renormalised over the paths taken),
    ``aggregates`` and ``moments`` (dicts of per-path arrays), ``noise`` (the paths'
    noise pytree on the host), ``exact`` (the whole support, exactly weighted)."""
    total = batch.num_paths
    num_paths = total if num_paths is None else num_paths
    if not 1 <= num_paths <= total:
        raise GameError(f"{_paths_option()} must be in 1..{total} (the run's evaluation paths), got {num_paths}")
    specs = game.moment_specs()
    mus, probs, aggregates, moments = [], [], [], []
    for _, sub, traj in rollout_chunks(game, policy, batch.noise, num_paths, chunk_size(game, num_paths)):
        k = traj.mu.shape[0]
        sub = jax.tree.map(lambda x, k=k: x[:k], sub)
        mus.append(traj.mu)
        probs.append(traj.probs)
        aggregates.append(aggregate_series(game, traj.mu, sub))
        if specs:
            found = moment_paths(game, jnp.asarray(traj.mu), jnp.asarray(traj.probs), sub)
            moments.append({name: np.asarray(v) for name, v in jax.device_get(found).items()})
    weight = np.asarray(batch.weight, dtype=np.float64)[:num_paths]
    check_slugs(aggregates[0], "aggregates")
    check_slugs(
        [jax.tree_util.keystr(keys) for keys, _ in jax.tree_util.tree_flatten_with_path(batch.noise)[0]], "noise leaves"
    )
    states = {name: np.asarray(v, dtype=np.float64) for name, v in game.state_coordinates().items()}
    for name, v in states.items():
        if v.shape != (game.n_states,):
            raise GameError(
                f"state coordinate {name!r} of game {game.name!r} has shape {v.shape}; ({game.n_states},) expected"
            )
    check_slugs(states, "state coordinates")
    return {
        "states": states,
        "mean_field": np.concatenate(mus),
        "policy": np.concatenate(probs),
        "weight": weight / weight.sum(),
        "aggregates": {name: np.concatenate([a[name] for a in aggregates]) for name in aggregates[0]},
        "moments": {name: np.concatenate([m[name] for m in moments]) for name in specs},
        "noise": jax.tree.map(lambda x: np.asarray(x[:num_paths]), jax.device_get(batch.noise)),
        "exact": bool(batch.exact and num_paths == total),
    }


def estimate_bytes(game: Game, num_paths: int, fmt: str) -> int:
    """About how large an export of ``num_paths`` paths is: the mean fields, the policy, the
    aggregates and the moments (the array-valued ones by their axes: the macro economy's saving rate by
    state, its Lorenz curve; they made 5% of an npz export the estimate left out), at 4
    bytes a number in ``npz`` and about 24 a number with its row's indices in ``csv``."""
    horizon, n, m = game.horizon, game.n_states, game.n_actions
    per_path = (horizon + 1) * (n + _aggregate_count(game)) + horizon * n * m
    for spec in game.moment_specs().values():
        per_path += (horizon if spec.decision else horizon + 1) * math.prod(len(c) for _, c in spec.axes)
    return num_paths * per_path * (4 if fmt == "npz" else 24)


def _aggregate_count(game: Game) -> int:
    """How many aggregates the game reports (their shapes traced, nothing computed)."""
    try:
        noise = jax.eval_shape(game.sample_noise, jax.random.PRNGKey(0))
        mu = jax.ShapeDtypeStruct((game.n_states,), jnp.result_type(float))
        return len(jax.eval_shape(lambda z, x: game.aggregates(x, z, jnp.int32(0)), noise, mu))
    except Exception:  # (a game that does not trace is refused elsewhere, in its own words)
        return 0


def default_target(run_root: Path, fmt: str) -> Path:
    """Where an export goes by default: ``RUN/export.npz`` or the folder ``RUN/export``."""
    return run_root / ("export.npz" if fmt == "npz" else "export")


# -- what is there: refuse to overwrite what mfax did not write -------------------------------
def _just_made(entry: Path) -> bool:
    """Whether the staging folder ``entry`` is empty and was made within the last minute
    (its writer makes its lock file next)."""
    try:
        return not any(entry.iterdir()) and time.time() - entry.stat().st_mtime < 60
    except OSError:
        return False


def _locked(path: Path) -> bool | None:
    """Whether a writer holds the flock of the staging lock file ``path`` (this process's
    other exports too: a lock is per open file); ``None`` when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:  # (unreadable: never a guess that lets mfax remove what another writes)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # (a file system without locks: by process id)
        return None
    finally:
        os.close(fd)  # (releases the test's own lock)
    return False


def staging_folders(folder: Path) -> tuple[list[Path], list[tuple[Path, int]]]:
    """The staging folders of CSV exports in ``folder``: those left by an export that was
    killed (its writer no longer runs), and those being written now ``(folder, pid)``.
    Only mfax's: a real folder named as :func:`write_csv` names it that holds nothing but
    the ``*.csv`` files it writes there; anything else under such a name is the user's."""
    left, live = [], []
    for entry in folder.iterdir() if folder.is_dir() else ():
        named = _STAGING.fullmatch(entry.name)
        if named is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            ours = all(
                (p.suffix == ".csv" or p.name in (STAGING_LOCK, _STAGING_LOCK_NEW))
                and p.is_file()
                and not p.is_symlink()
                for p in entry.iterdir()
            )
        except OSError:
            continue
        if not ours:
            continue
        pid = None if named.group("pid") is None else int(named.group("pid"))
        # this process's own exports it knows (a lock test from this process would take,
        # then release, its own lock where the file system makes flocks per process: NFS)
        writing = True if entry.resolve() in _WRITING else _locked(entry / STAGING_LOCK)
        if writing is None:  # its lock file not yet renamed into place, or not yet made
            writing = _locked(entry / _STAGING_LOCK_NEW)
        if writing is None and _just_made(entry):  # (made, its lock next: not another's by a process id)
            writing = True
        if writing is None:  # (an earlier mfax's, or one killed before its lock: by its process id; one of
            # this process's that it is not writing (not in _WRITING) was left by a cleanup that failed)
            writing = pid is not None and pid != os.getpid() and running(pid)
        if writing:
            live.append((entry, pid))
        else:
            left.append(entry)
    return left, live


def check_target(path: Path, fmt: str, overwrite: bool) -> None:
    """Raise unless an export may be written at ``path``: nothing there; an empty folder
    (``csv``); or, with ``overwrite``, an export mfax wrote there."""
    where = str(path)
    if fmt not in FORMATS:
        raise GameError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "npz" and path.suffix != ".npz":
        csv = advice("--format csv", 'format="csv"')
        raise GameError(
            f"an npz export is one file named *.npz, got {where!r} (for example {str(path.with_suffix('.npz'))!r}; "
            f"a folder of CSV files: {csv})"
        )
    if fmt == "csv" and path.suffix == ".npz":
        npz = advice("--format npz", 'format="npz"')
        raise GameError(f"a csv export is a folder, got {where!r}, a name for an npz file ({npz})")
    if fmt == "csv" and path.suffix.lower() == ".csv" and not path.is_dir():  # (one of its files, by name)
        raise GameError(
            f"a csv export is a folder of CSV files (a table each, listed in {MARKER}), got {where!r}, "
            f"a name for one file; name the folder, for example {str(path.with_suffix(''))!r}"
        )
    if path.is_symlink():  # a link: what mfax would replace or write into is somewhere else
        raise GameError(
            f"refusing to write the export at {where!r}: it is a symbolic link (to {os.readlink(path)!r}); "
            "give the path it points to"
        )
    above = file_above(path)
    if above is not None:
        raise GameError(f"cannot write an export at {where!r}: {str(above)!r} is not a directory")
    # where the files go (the CSV folder, or the folder above): writable, said before the
    # export is computed (it was "Permission denied" on a hidden staging folder after)
    folder = read_only_folder(path if fmt == "csv" else path.parent)
    if folder is not None:
        raise GameError(f"cannot write the export at {where!r}: the folder {str(folder)!r} is read-only")
    if not path.exists():
        return
    if fmt == "npz":
        if not path.is_file():
            raise GameError(f"refusing to write the export over {where!r}: it is not a file mfax wrote")
        if read_manifest(path) is None:
            raise GameError(f"refusing to overwrite {where!r}: it is not an export mfax wrote")
    else:
        if not path.is_dir():
            raise GameError(f"refusing to write the CSV export into {where!r}: it is not a directory")
        left, live = staging_folders(path)
        if live:
            raise GameError(
                f"refusing to write into {where!r}: another export is being written there (process {live[0][1]}, "
                f"into {live[0][0].name!r}); wait for it to end or choose another folder"
            )
        if all(entry in left for entry in path.iterdir()):  # empty, or what a killed export left
            return
        if folder_manifest(path) is None:
            raise GameError(f"refusing to write into {where!r}: a non-empty directory that is not an mfax export")
    if not overwrite:
        raise _held_already(where, read_manifest(path) if fmt == "npz" else folder_manifest(path))


def _held_already(where: str, held: dict | None) -> GameError:
    """The one line for an export where one is (``held``: its manifest) and no overwrite."""
    instead = advice("use --overwrite or another --out", "use overwrite=True or another path")
    if held is not None and held.get("complete") is False:
        return GameError(f"{where!r} holds an mfax export killed while its files were moved in; {instead}")
    return GameError(f"{where!r} already holds an mfax export; {instead}")


# -- writing ----------------------------------------------------------------------------
def manifest(game: Game, data: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """What the export holds, in words: the source (run, checkpoint, game, parameters),
    the sizes, each aggregate's and moment's label, times and axes."""
    specs = game.moment_specs()
    return {
        "mfax_export": 1,
        **source,
        "game": game.name,
        "paths": int(data["weight"].shape[0]),
        "exact": data["exact"],
        "horizon": game.horizon,
        "states": game.n_states,
        "actions": game.n_actions,
        "action_values": [float(v) for v in np.asarray(game.action_values())],
        "state_coordinates": [slug(name) for name in data.get("states", {})],
        "aggregates": {slug(name): name for name in data["aggregates"]},
        "moments": {
            name: {
                "label": spec.label,
                "times": "0..T-1" if spec.decision else "0..T",
                "axes": {axis: [float(c) for c in coords] for axis, coords in spec.axes},
            }
            for name, spec in specs.items()
        },
    }


def _as_it_was(created: bool, earlier: bool) -> str:
    """What an export that failed to write leaves, after "nothing of it was written"."""
    if created:
        return ""
    return ", the earlier export there is as it was" if earlier else ", the folder is as it was"


def write_npz(
    path: Path,
    game: Game,
    data: dict[str, Any],
    source: dict[str, Any],
    done: list[bool] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the ``npz`` export (see the module docstring); returns its manifest.
    ``done`` gets ``True`` once the file is in place (a Ctrl-C after it finds it whole)."""
    info = manifest(game, data, source)
    arrays = {
        "mean_field": data["mean_field"],
        "policy": data["policy"],
        "weight": data["weight"],
        **{f"state_{slug(name)}": v for name, v in data.get("states", {}).items()},
        **{f"aggregate_{slug(name)}": v for name, v in data["aggregates"].items()},
        **{f"moment_{name}": v for name, v in data["moments"].items()},
    }
    for keys, leaf in jax.tree_util.tree_flatten_with_path(data["noise"])[0]:
        arrays[f"noise_{slug(jax.tree_util.keystr(keys))}"] = np.asarray(leaf)
    info["arrays"] = {name: list(np.shape(v)) for name, v in arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, manifest=np.asarray(json.dumps(info)), **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_target(path, "npz", overwrite)  # again, at the last moment: another export written meanwhile
    had = path.exists()
    try:
        _replace_with(path, buffer.getvalue())
    except GameError as err:  # (a full disk, say)
        raise GameError(f"{err}; nothing of the export was written{_as_it_was(False, had)}") from None
    if done is not None:
        done.append(True)
    return info


def _table(header: list[str], rows) -> tuple[bytes, int]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return out.getvalue().encode(), count


def _cell(x: float) -> str:
    """A CSV cell: the shortest decimal that reads back to ``x`` in its own precision
    (a float32 number: at most 9 significant digits, a float64 one: at most 17; it was
    9 for both, so an ``--x64`` export lost digits); empty when not finite."""
    if not np.isfinite(x):
        return ""
    if isinstance(x, np.floating):
        return str(x)  # (numpy's shortest round-trip form for the scalar's dtype)
    if isinstance(x, int | np.integer | np.bool_):
        return str(int(x))
    return repr(float(x))


def _long(values: np.ndarray):
    """Rows ``(index_0, ..., index_{k-1}, value)``: one per entry of an array."""
    for index in np.ndindex(values.shape):
        yield [*index, _cell(values[index])]


def _on_axes(values: np.ndarray, axes):
    """Rows ``(path, t, coordinates..., value)`` of an array-valued moment."""
    coords = [np.asarray(c) for _, c in axes]
    for index in np.ndindex(values.shape):
        yield [index[0], index[1], *(_cell(c[i]) for c, i in zip(coords, index[2:], strict=True)), _cell(values[index])]


def csv_tables(game: Game, data: dict[str, Any]) -> dict[str, tuple[list[str], Any]]:
    """The CSV files of an export: name -> (header, rows)."""
    specs = game.moment_specs()
    weight, horizon = data["weight"], game.horizon
    paths = len(weight)
    noise = data["noise"]
    tables: dict[str, tuple[list[str], Any]] = {
        "paths.csv": (
            ["path", "weight", "description"],
            ([p, _cell(weight[p]), noise_words(game, jax.tree.map(lambda x, p=p: x[p], noise))] for p in range(paths)),
        ),
        "mean_field.csv": (["path", "t", "state", "mass"], _long(data["mean_field"])),
        "policy.csv": (
            ["path", "t", "state", *[f"action_{a}" for a in range(game.n_actions)]],
            (
                [p, t, s, *(_cell(x) for x in data["policy"][p, t, s])]
                for p, t, s in np.ndindex(data["policy"].shape[:3])
            ),
        ),
    }
    for keys, leaf in jax.tree_util.tree_flatten_with_path(noise)[0]:  # the noise itself, as in the npz
        leaf = np.asarray(leaf)
        leaf = leaf.astype(np.int64) if leaf.dtype == bool else leaf
        header = ["path", *(f"index_{k}" for k in range(1, leaf.ndim)), "value"]
        tables[f"noise_{slug(jax.tree_util.keystr(keys))}.csv"] = (header, _long(leaf))
    if data["aggregates"]:  # a game that declares none (beach bar) gets no file of bare (path, t) rows
        tables["aggregates.csv"] = (
            ["path", "t", *(slug(name) for name in data["aggregates"])],
            (
                [p, t, *(_cell(v[p, t]) for v in data["aggregates"].values())]
                for p in range(paths)
                for t in range(horizon + 1)
            ),
        )
    states = data.get("states", {})
    if states:  # what each state index is
        tables["states.csv"] = (
            ["state", *(slug(name) for name in states)],
            ([s, *(_cell(v[s]) for v in states.values())] for s in range(game.n_states)),
        )
    scalars = [name for name, spec in specs.items() if not spec.axes]
    if scalars:

        def at(name, p, t):
            values = data["moments"][name]
            return _cell(values[p, t]) if t < values.shape[1] else ""

        expected = {name: np.tensordot(weight, data["moments"][name], axes=1) for name in scalars}
        tables["moments.csv"] = (
            ["path", "t", *scalars],
            ([p, t, *(at(name, p, t) for name in scalars)] for p in range(paths) for t in range(horizon + 1)),
        )
        tables["moments_expected.csv"] = (
            ["t", *scalars],
            (
                [t, *(_cell(expected[name][t]) if t < len(expected[name]) else "" for name in scalars)]
                for t in range(horizon + 1)
            ),
        )
    for name, spec in specs.items():
        if spec.axes:
            header = ["path", "t", *(slug(axis) for axis, _ in spec.axes), name]
            tables[f"moment_{name}.csv"] = (header, _on_axes(data["moments"][name], spec.axes))
    for file, (header, _) in tables.items():  # a reader keys a row by its columns' names
        twice = next((c for i, c in enumerate(header) if c in header[:i]), None)
        if twice is not None:
            raise GameError(
                f"game {game.name!r} cannot be exported as CSV: {file} would have two columns named {twice!r} (a "
                "name of the game's aggregates, moments, moment axes or state coordinates is that of another, or "
                "of an index column: path, t, state); rename it in the game"
            )
    return tables


def write_csv(
    folder: Path,
    game: Game,
    data: dict[str, Any],
    source: dict[str, Any],
    done: list[bool] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the ``csv`` export into ``folder`` (see the module docstring); returns its
    manifest (``files``: each file's columns and rows). The files are written into a
    hidden folder inside ``folder`` first and moved into place together at the end (with
    Ctrl-C and SIGTERM held over the move): an export cut short leaves ``folder`` as it
    was, an earlier export there (``overwrite``) included; what an export killed outright
    (SIGKILL, a power cut) left in its hidden folder is removed by the next export there
    (:func:`staging_folders`). One killed during the move itself (milliseconds) leaves the
    manifest it writes first, marked ``"complete": false`` and listing both exports'
    files: an mfax export that the next ``overwrite`` replaces. ``done`` gets ``True`` once
    the files are in place (a Ctrl-C held over the move is raised after it)."""
    info = manifest(game, data, source)
    tables = csv_tables(game, data)  # (a game's names that clash are refused before anything is written)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    old = folder_manifest(folder)
    if old is not None and not overwrite:  # (one written since the target was checked)
        raise _held_already(str(folder), old)
    # a file under a name this export adds that the old export did not write is the user's
    owned = {Path(name).name for name in (old or {}).get("files", {})}
    for name in tables:
        target = folder / name
        if name not in owned and (target.exists() or target.is_symlink()):
            raise GameError(
                f"refusing to overwrite {str(target)!r}: the export there did not write it; "
                "remove it or choose another folder"
            )
    with _WRITING_LOCK:  # (another thread's export never sees this one's folder before it is noted)
        for left in staging_folders(folder)[0]:  # an export killed before its files were moved: its copies
            shutil.rmtree(left, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
        _WRITING.add(staging.resolve())
        held = _hold(staging / STAGING_LOCK)
    try:
        # another export into this folder at once: the one that started first goes on
        mine = _started(staging) if held is not None else time.time_ns()
        for other, pid in staging_folders(folder)[1]:
            if other.resolve() != staging.resolve() and _started(other) <= mine:
                raise GameError(
                    f"refusing to write into {str(folder)!r}: another export is being written there (process {pid}, "
                    f"into {other.name!r}); wait for it to end or choose another folder"
                )
        files = {}
        for name, (header, rows) in tables.items():
            content, count = _table(header, rows)
            try:
                (staging / name).write_bytes(content)
            except OSError as err:  # (a full disk: the write's error names no file)
                raise GameError(
                    f"cannot write the export into {str(folder)!r}: {err.strerror or err} (writing {name}); nothing "
                    f"of it was written{_as_it_was(created, old is not None)}"
                ) from None
            files[name] = {"columns": header, "rows": count}
        info["files"] = files
        with deferred_signals():  # milliseconds: the old export, or the new one, whole
            if folder_manifest(folder) != old:  # another export was written there since it was checked
                raise GameError(
                    f"another export was written into {str(folder)!r} while this one was computed; nothing of this "
                    "one was written: run it again to replace that one ("
                    + advice("--overwrite", "overwrite=True")
                    + ")"
                )
            # first, the manifest of a move under way: a kill part-way leaves an mfax export
            # (incomplete, and listing every file it may hold) that the next overwrite replaces
            moving = {**info, "complete": False, "files": {**(old or {}).get("files", {}), **files}}
            _replace_with(folder / MARKER, (json.dumps(moving, indent=2) + "\n").encode())
            if old is not None:  # an export mfax wrote (check_target allowed it): its files only
                for name in owned - set(tables):
                    target = folder / name
                    if target.is_file() and not target.is_symlink():
                        target.unlink()
            for name in tables:
                os.replace(staging / name, folder / name)
            info["complete"] = True
            _replace_with(folder / MARKER, (json.dumps(info, indent=2) + "\n").encode())
            if done is not None:
                done.append(True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if held is not None:
            os.close(held)
        if created and folder.is_dir() and not any(folder.iterdir()):  # the folder this export made, empty
            folder.rmdir()
        raise
    finally:
        _WRITING.discard(staging.resolve())
    shutil.rmtree(staging, ignore_errors=True)
    if held is not None:
        os.close(held)  # (after the folder is gone: it was never free while its files were there)
    return info


def _hold(path: Path) -> int | None:
    """Create the staging lock file ``path`` and hold an exclusive flock on it (its open
    file, returned; ``None`` where the file system has no locks): made under another name,
    locked, stamped with the time it started (:func:`_started`), then renamed, so that it
    is never seen unlocked."""
    new = path.with_name(_STAGING_LOCK_NEW)
    try:
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError:  # (then judged by its process id, as an earlier mfax's)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{time.time_ns()} {os.getpid()}\n".encode())
        os.rename(new, path)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            new.unlink()
        return None
    return fd


def _started(entry: Path) -> int:
    """When the export writing into the staging folder ``entry`` started (ns, as its lock
    file says; 0, the earliest, when it cannot be read: the other export gives way)."""
    try:
        return int((entry / STAGING_LOCK).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def export(
    game: Game,
    policy: Policy,
    batch: NoiseBatch,
    path: Path,
    fmt: str,
    *,
    num_paths: int | None = None,
    overwrite: bool = False,
    source: dict[str, Any] | None = None,
    done: list[bool] | None = None,
) -> dict[str, Any]:
    """Check the arguments and the target, collect the data (:func:`collect`) and write it in format
    ``fmt`` at ``path``; returns the manifest. ``source``: what produced the policy (run,
    checkpoint), recorded in the manifest. ``done`` gets ``True`` once the export is in
    place: an interruption before leaves the target as it was."""
    path = Path(path)
    num = batch.num_paths if num_paths is None else num_paths
    if not 1 <= num <= batch.num_paths:
        raise GameError(f"{_paths_option()} must be in 1..{batch.num_paths} (the run's evaluation paths), got {num}")
    size = estimate_bytes(game, num, fmt)
    if size > LIMIT_BYTES:
        fewer = max(1, int(num * LIMIT_BYTES / size))
        raise GameError(
            f"the {fmt} export of {num} paths would take about {size / 2**30:.1f} GiB (the mean fields and the "
            f"policy of {game.n_states} states x {game.n_actions} actions x {game.horizon} steps per path); "
            f"export at most {fewer} paths ({_paths_option()})"
            + ("" if fmt == "npz" else " or use " + advice("--format npz", 'format="npz"'))
        )
    check_target(path, fmt, overwrite)  # (after the arguments: a wrong one is said first, whatever the target)
    data = collect(game, policy, batch, num_paths)
    writer = write_npz if fmt == "npz" else write_csv
    return writer(path, game, data, source or {}, done, overwrite=overwrite)
