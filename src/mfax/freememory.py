"""How much memory is free: the probe every estimate compares with (the games' checker
before it runs a game's functions, :mod:`mfax.memory` before training or evaluating)."""

from __future__ import annotations

import os

import jax


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
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gigabytes(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"
