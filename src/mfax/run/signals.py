"""Holding Ctrl-C and SIGTERM over a step whose files must end whole: a training's record
step (metrics, checkpoint, summary), an export's move into place, a saved run's copy; and
noting a Ctrl-C that a callback could swallow (:func:`ctrl_c_noted`)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(SystemExit):
    """A SIGTERM held over a record step, raised once the step is whole (exit status 143)."""


_DEFERRED = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C and a plain kill; SIGKILL cannot wait


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM while the block runs, then act on them: the
    record step (metrics, checkpoint, kept copies, summary) ends whole, so the run's
    files always agree. Ctrl-C then acts as it would have (Python's handler raises
    KeyboardInterrupt); a SIGTERM under the default action raises :class:`Terminated`
    (exit status 143, as the signal's own), so that the ``finally`` blocks above run and
    the trackers write out what they still hold (the signal itself would end the process
    with TensorBoard's last rows in its writer's queue). Only the main thread can handle
    signals; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[tuple[int, Any]] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append((signum, frame))) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in arrived[:1]:  # the first is enough: it ends the session
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)  # Python's own SIGINT handler raises KeyboardInterrupt here
            elif handler == signal.SIG_DFL and signum == signal.SIGTERM:
                raise Terminated(128 + signum)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


@contextlib.contextmanager
def ctrl_c_noted() -> Iterator[list[int]]:
    """Ctrl-C raises KeyboardInterrupt as it does by default, and is also noted in the
    list yielded: one raised inside a callback that swallows exceptions (JAX's garbage
    collection callback: "Exception ignored in ...") is then still acted on after the
    block. Only the main thread sets signal handlers; elsewhere nothing is noted."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return

    def note(signum, frame):
        arrived.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def agreed_on_failure() -> Iterator[None]:
    """Several hosts: a process stopped before its training started (a bad --set on one
    host, a run directory process 0 refuses) tells the others why, instead of leaving
    them blocked in the first collective (:func:`mfax.sharding.agree`; Ctrl-C held over
    its one collective)."""
    from mfax.sharding import agree, agreement_pending, new_agreement

    new_agreement()
    try:
        yield
    except BaseException as err:
        if agreement_pending():
            with deferred_signals():
                agree(None, err)
        raise
