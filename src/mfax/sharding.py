"""Spreading noise paths (and runs) over devices and hosts with JAX's own runtime.

A :class:`jax.sharding.Mesh` with axes ``("runs", "paths")``: the runs of a vmapped
training (seeds x learning rates) are split over ``runs`` when their number allows it,
and the noise paths of every iteration over ``paths``. Nothing else changes: the
computation is the same jitted program, XLA inserts the reductions over paths (the
gradient and the returns are sums over paths), so results match one device to
floating-point tolerance. Several hosts join through :func:`initialize_distributed`
(``jax.distributed``); each then owns a slice of the paths, and only process 0 writes
metrics and checkpoints.
"""

from __future__ import annotations

import math
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mfax.errors import ArgumentError, GameError

RUNS, PATHS = "runs", "paths"


def make_mesh(devices: int | None, num_runs: int = 1, shard_runs: bool = True) -> Mesh | None:
    """A ``(runs, paths)`` mesh over ``devices`` devices (default: all), or ``None`` for one.

    The runs axis gets ``gcd(num_runs, devices)`` devices (all runs stay replicated
    across hosts when ``shard_runs`` is off, so every process holds whole states).
    """
    available = jax.devices()
    count = len(available) if devices is None else devices
    if jax.process_count() > 1 and count != len(available):
        # (a mesh of some devices: a host without one held no shard; none: each host computed
        # every path while the figures were gathered as if they were split)
        raise ArgumentError(
            "devices",
            f"a multi-host run computes on every device of its {jax.process_count()} processes "
            f"({len(available)}): leave devices out (got {count})",
        )
    if count < 1 or count > len(available):
        raise ArgumentError("devices", f"devices must lie in 1..{len(available)} (devices available), got {count}")
    if count == 1:
        return None
    runs = math.gcd(num_runs, count) if shard_runs else 1
    grid = np.array(available[:count]).reshape(runs, count // runs)
    return Mesh(grid, (RUNS, PATHS))


def runs_vmapped(num_runs: int, mesh: Mesh | None) -> bool:
    """Whether :func:`map_runs` batches ``num_runs`` runs with ``vmap`` (never a single run)."""
    return num_runs > 1 and (mesh is not None or jax.default_backend() != "cpu")


def runs_held(num_runs: int, devices: int | None) -> float:
    """How many runs' training-iteration arrays (in units of one run's, all its paths) one
    memory holds at once in the program :func:`train_mesh` and :func:`map_runs` make for
    ``num_runs`` runs on ``devices`` devices (default: all). One CPU device loops over the
    runs: 1. One accelerator vmaps them: ``num_runs``. On a mesh each device computes its
    runs' share of the paths: ``(runs per device) / (devices per run)``; CPU devices all
    share the host's memory, which then holds every run's arrays: ``num_runs``."""
    available = len(jax.devices())
    count = available if devices is None else max(1, min(devices, available))
    cpu = jax.default_backend() == "cpu"
    if count == 1:
        return 1.0 if cpu or num_runs == 1 else float(num_runs)
    if cpu:
        return float(num_runs)
    runs_axis = math.gcd(num_runs, count) if jax.process_count() == 1 else 1
    return (num_runs // runs_axis) / (count // runs_axis)


def map_runs(fn, states, mesh: Mesh | None = None):
    """``fn`` applied to each run of ``states`` (leading run axis ``R``), in one program.

    A single run is computed unbatched (with a mesh too: its ``runs`` axis then has one
    device). Several runs are vmapped and split over the mesh's ``runs`` axis; without a
    mesh they are vmapped on accelerators but looped (``lax.map``) on the CPU, where a
    batch of runs turns every matrix product into a batched one that XLA's CPU backend
    runs well below its matmul peak (measurement: ``bench/results/compiler_options.md``)."""
    num_runs = jax.tree.leaves(states)[0].shape[0]
    if num_runs == 1:
        return jax.tree.map(lambda x: x[None], fn(jax.tree.map(lambda x: x[0], states)))
    if mesh is not None:
        return jax.vmap(fn, spmd_axis_name=RUNS)(states)
    if runs_vmapped(num_runs, mesh):
        return jax.vmap(fn)(states)
    return jax.lax.map(fn, states)


def shard_paths(tree, mesh: Mesh | None):
    """Constrain the leading (path) axis of every leaf to be split over ``paths``."""
    if mesh is None:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(PATHS))), tree)


def place_runs(tree, mesh: Mesh | None):
    """Put stacked run states on the mesh, split over ``runs`` on the leading axis."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, P(RUNS))

    def one(x):  # from host data: valid on one host and across several
        host = np.asarray(x) if not isinstance(x, jax.Array) or x.is_fully_addressable else to_host(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


def initialize_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Join a multi-host run through ``jax.distributed.initialize``.

    Arguments default to the usual environment (``MFAX_COORDINATOR``,
    ``MFAX_NUM_PROCESSES``, ``MFAX_PROCESS_ID``; under SLURM JAX reads its own variables
    when all three are ``None``). On CPU the gloo collectives are used.
    """
    if coordinator is not None and not coordinator.strip():  # ('' joined no run, silently)
        raise GameError("the coordinator is empty; name it as HOST:PORT (e.g. 10.0.0.1:1234)")
    coordinator = coordinator or _env("MFAX_COORDINATOR")
    if num_processes is None and _env("MFAX_NUM_PROCESSES") is not None:
        num_processes = _env_int("MFAX_NUM_PROCESSES")
    if process_id is None and _env("MFAX_PROCESS_ID") is not None:
        process_id = _env_int("MFAX_PROCESS_ID")
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise GameError(f"the coordinator is HOST:PORT (e.g. 10.0.0.1:1234), got {coordinator!r}")
    if num_processes is not None and num_processes < 1:
        raise GameError(f"the number of processes must be >= 1, got {num_processes}")
    if process_id is not None and not 0 <= process_id < (num_processes or process_id + 1):
        raise GameError(f"the process id must lie in 0..{(num_processes or 1) - 1}, got {process_id}")
    before = jax.config.jax_cpu_collectives_implementation
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # only used by the CPU backend
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    except (ValueError, RuntimeError) as e:  # a value neither given nor found in a cluster's environment
        # (SLURM, ...), or JAX already computing in this process (it must join first)
        jax.config.update("jax_cpu_collectives_implementation", before)
        given = [
            name
            for name, v in (
                ("coordinator", coordinator),
                ("number of processes", num_processes),
                ("process id", process_id),
            )
            if v is not None
        ]
        if len(given) == 3:  # everything given: joining itself failed (unreachable, or JAX already running)
            raise GameError(
                f"could not join the multi-host run at {coordinator} as process {process_id} of {num_processes}: {e}"
            ) from None
        raise GameError(
            f"a multi-host run needs the coordinator, the number of processes and the process id together "
            f"(--coordinator, --num-processes, --process-id, or MFAX_COORDINATOR, MFAX_NUM_PROCESSES, "
            f"MFAX_PROCESS_ID), unless a cluster's environment JAX reads gives the rest; given: "
            f"{', '.join(given) or 'none'} ({e})"
        ) from None


def _env(name: str) -> str | None:
    """The environment variable ``name``; empty (``MFAX_COORDINATOR=``) is unset, as a
    shell's ``VAR= command`` means (an empty coordinator was ignored, an empty number of
    processes refused as not an integer)."""
    return os.environ.get(name, "").strip() or None


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except ValueError:
        raise GameError(f"environment variable {name} must be an integer, got {os.environ[name]!r}") from None


def is_main_process() -> bool:
    return jax.process_index() == 0


def train_mesh(devices: int | None, num_runs: int) -> Mesh | None:
    """The training mesh: runs are split over devices only within one process (so that
    every host holds whole training states for checkpoints)."""
    return make_mesh(devices, num_runs, shard_runs=jax.process_count() == 1)


def run_to_host(tree, r: int):
    """Run ``r`` (index ``r`` of the leading axis) of every leaf as a numpy array on this
    host: sliced where it lies when the array is on this host, so only that run moves;
    arrays spread over hosts are fetched whole first (:func:`to_host`)."""

    def one(x):
        if not isinstance(x, jax.Array):
            return np.asarray(x)[r]
        if x.is_fully_addressable and all(d.platform == "cpu" for d in x.devices()):
            # in host memory already: read in place and copy run r, without the slicing
            # program x[r] would compile (the view is dropped at once, so x stays donatable)
            return np.array(np.asarray(x)[r])
        if x.is_fully_addressable:
            return np.asarray(x[r])
        return to_host(x)[r]

    return jax.tree.map(one, tree)


def to_host(tree):
    """Every leaf as a numpy array on this host, also for arrays spread over hosts
    (replicated ones are read from a local copy, split ones are gathered)."""

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(x)
        local = x.addressable_shards[0].data
        if local.shape == x.shape:  # this host holds a whole copy
            return np.asarray(local)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(one, tree)


# -- one decision for the processes of a multi-host run ------------------------------------
_MESSAGE_BYTES = 400
_MAX_SETTINGS = 64
_agreed = [False]  # whether this process took part in the agreement of its current training


def agreement_pending() -> bool:
    """Whether this process, in a multi-host run, has still to take part in the agreement
    of its current training (:func:`agree`)."""
    return jax.process_count() > 1 and not _agreed[0]


def new_agreement() -> None:
    """A new training starts in this process: it takes part in one agreement again."""
    _agreed[0] = False


def _digest(value) -> tuple[int, int]:
    import hashlib
    import json

    raw = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(raw[:3], "little"), int.from_bytes(raw[3:6], "little")


def agree(settings: dict | None, failure: BaseException | None = None) -> None:
    """Every process of a multi-host run calls this once before training, with what
    defines the training (``settings``: names and JSON-able values, the same keys on
    every process) or with the error that stopped it first (``failure``). All processes
    then learn the same thing: when one failed, the others raise a one-line
    :class:`GameError` naming it (the failing one re-raises its own); when the settings
    differ, every process raises one naming the processes and settings that differ from
    process 0's (a mixture of settings trained silently: mismatched seeds, say). Without
    this, a process stopped alone left the others blocked in the first collective (a
    traceback after the distributed runtime's timeout). One collective of a fixed size (a
    signal arriving meanwhile cannot stop a process between two); the callers hold
    Ctrl-C over it. One process: nothing to agree."""
    if jax.process_count() == 1 or _agreed[0]:
        return
    _agreed[0] = True
    from jax.experimental import multihost_utils

    keys = sorted(settings) if settings is not None else []
    if len(keys) > _MAX_SETTINGS:
        raise ValueError(f"at most {_MAX_SETTINGS} settings are agreed on, got {len(keys)}")
    line = ""
    if failure is not None:
        line = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        if isinstance(failure, KeyboardInterrupt):
            line = "interrupted (Ctrl-C)"
        if len(line.encode()) > _MESSAGE_BYTES:  # (cut at a character, and said)
            line = line.encode()[: _MESSAGE_BYTES - 3].decode(errors="ignore") + "\u2026"
    message = line.encode()
    # each process: [failed, number of settings, message length, message bytes..., digests...]
    flat = np.zeros(3 + _MESSAGE_BYTES + 4 * _MAX_SETTINGS, np.int32)
    flat[:3] = int(failure is not None), len(keys), len(message)
    flat[3 : 3 + len(message)] = list(message)
    digests = [part for key in keys for part in (*_digest(key), *_digest(settings[key]))]
    flat[3 + _MESSAGE_BYTES : 3 + _MESSAGE_BYTES + len(digests)] = digests
    every = np.asarray(multihost_utils.process_allgather(flat)).reshape(jax.process_count(), flat.size)
    here = jax.process_index()
    failed = [p for p in range(every.shape[0]) if every[p, 0]]
    if failure is not None:
        return  # (the caller re-raises its own error)
    if failed:
        p = failed[0]
        text = bytes(int(b) for b in every[p, 3 : 3 + every[p, 2]]).decode(errors="replace")
        raise GameError(
            f"process {p} of the multi-host run stopped before training: {text}; nothing was trained "
            f"(this is process {here})"
        )
    start = 3 + _MESSAGE_BYTES

    def pairs(p):
        n = int(every[p, 1])
        return every[p, start : start + 4 * n].reshape(n, 4)

    ours, names = pairs(0), keys
    differing = []
    for p in range(1, every.shape[0]):
        theirs = pairs(p)
        if theirs.shape != ours.shape or np.any(theirs[:, :2] != ours[:, :2]):
            differing.append(f"process {p}: the settings' names")
            continue
        fields = [names[i] for i in range(len(names)) if np.any(theirs[i, 2:] != ours[i, 2:])]
        if fields:
            differing.append(f"process {p}: {', '.join(fields)}")
    if differing:
        raise GameError(
            "the processes of this multi-host run were not started with the same settings (differing from "
            f"process 0's: {'; '.join(differing)}); start the same command on every host: nothing was trained"
        )
