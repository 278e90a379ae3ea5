"""The ``mfax`` command's entry point. Loading the command line (JAX and every module of
mfax) takes seconds; a Ctrl-C meanwhile raised KeyboardInterrupt inside whatever was
loading: a traceback, an ImportError from a compiled extension, or nothing at all when a
garbage-collection callback swallowed it (the command then ran on). While loading,
SIGINT ends the command at once with one line and status 130, as a Ctrl-C later does;
nothing has been written by then."""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED = "mfax: interrupted while loading; nothing was run"


def _interrupted(signum, frame) -> None:
    sys.stderr.write(INTERRUPTED + "\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:  # (an ignored SIGINT stays ignored)
        signal.signal(signal.SIGINT, _interrupted)
    try:
        from mfax.run.cli import main as command
    finally:
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)
    command()
