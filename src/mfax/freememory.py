"""How much memory is free: the probe every estimate compares with (the games' checker
before it runs a game's functions, :mod:`mfax.memory` before training or evaluating)."""

from __future__ import annotations

import os
from pathlib import Path

import jax

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_bytes(device: jax.Device | None = None) -> int | None:
    """Free memory of ``device`` (default: the first local device), or ``None`` when it
    cannot be told: the accelerator's ``memory_stats`` limit minus what is in use, else
    the host's ``MemAvailable`` (Linux), else its free physical pages."""
    device = device or jax.local_devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # backends without memory statistics
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return min((x for x in (_host_available(), cgroup_available()) if x is not None), default=None)


def _host_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cgroup_available(root: Path = CGROUP_ROOT, proc: str = "/proc/self/cgroup") -> int | None:
    """What the memory limits of this process's control group and of its ancestors leave
    (limit minus usage, the smallest over the hierarchy; a container's or a batch job's
    limit, which ``MemAvailable`` does not show), or ``None`` where no limit is set or
    none can be read. Reads cgroup v2 (``memory.max``) and v1 (``memory.limit_in_bytes``)."""
    try:
        lines = Path(proc).read_text().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2
            base, files = root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1
            base, files = root / controllers, ("memory.limit_in_bytes", "memory.usage_in_bytes")
            if not base.is_dir():
                base = root / "memory"
        else:
            continue
        directory = base / path.lstrip("/")
        while True:
            left = _left(directory, *files)
            if left is not None:
                best = left if best is None else min(best, left)
            if directory == base or base not in directory.parents:
                break
            directory = directory.parent
    return best


def _left(directory: Path, limit_file: str, usage_file: str) -> int | None:
    """The group's limit minus its usage, less the page cache the kernel reclaims under
    pressure (``inactive_file``, v1 ``total_inactive_file``, of ``memory.stat``; what
    ``docker stats`` leaves out too: a group that read many files looked full)."""
    try:
        limit = (directory / limit_file).read_text().strip()
        usage = int((directory / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:  # no limit
        return None
    try:
        pairs = (line.split() for line in (directory / "memory.stat").read_text().splitlines())
        stat = dict(pair for pair in pairs if len(pair) == 2)
        usage -= int(stat.get("inactive_file", stat.get("total_inactive_file", 0)))
    except (OSError, ValueError):
        pass
    return max(int(limit) - max(usage, 0), 0)


def gigabytes(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"
