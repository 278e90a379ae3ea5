"""The user-error types, at the bottom of every layer (this module imports nothing of mfax).

A user error is bad input: a message of one line that names what is wrong and what is
allowed. The command line prints it as ``mfax: error: <message>`` and exits with status 2,
without a traceback; library callers catch :class:`MfaxError`. A training that goes
non-finite is not a refusal of its input but an outcome: it raises
``mfax.run.train.TrainingDiverged``, a ``RuntimeError`` (the command line prints its one
line and exits with status 1).

A message that advises a setting says it as the user gives it (:func:`advice`):
``--noise exact`` under the ``mfax`` command, ``noise="exact"`` from Python.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import warnings
from collections.abc import Iterator


class MfaxError(Exception):
    """A user error: one line naming what is wrong and what is allowed."""


class GameError(MfaxError, ValueError):
    """Invalid input: game names, parameters or their values, configs, options. A
    ``ValueError`` too, so ``except ValueError`` keeps catching it."""


class ArgumentError(GameError):
    """A bad value of one named argument of the Python API, the message starting with its
    name (``time_budget must be ...``). A command that takes the argument as an option of
    the same name says the option instead (``--time-budget must be ...``)."""

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


class DefectWarning(UserWarning):
    """Figures that no correct game gives (an exploitability below zero, an
    information-consistent one above the per-path one, beyond rounding): a defect of the
    game or of mfax to report, not a refusal of the input."""


class MfaxWarning(UserWarning):
    """Something the user should know that does not stop what they asked for (a run's
    plots not drawn, a configuration edited since training, the old run of an
    ``--overwrite`` not yet removed): :func:`warn`'s category from Python."""


def warn(message: str) -> None:
    """One warning: the line ``mfax: warning: <message>`` on stderr while an ``mfax``
    command runs; from Python, a :class:`MfaxWarning` (``warnings`` filters and
    ``pytest.warns`` see it)."""
    if _COMMAND_LINE.get():
        print(f"mfax: warning: {message}", file=sys.stderr)
    else:
        warnings.warn(message, MfaxWarning, stacklevel=3)


# Whether the words of a message are the ``mfax`` command's (set while a command runs):
# lower layers that advise a setting say it as the user would type it there.
_COMMAND_LINE: contextvars.ContextVar[bool] = contextvars.ContextVar("mfax_command_line", default=False)


def advice(command_line: str, python: str) -> str:
    """A setting a message advises, in the words of the interface in use: ``command_line``
    (the option as typed, ``--noise exact``) while an ``mfax`` command runs,
    ``python`` (the keyword argument, ``noise="exact"``) otherwise."""
    return command_line if _COMMAND_LINE.get() else python


@contextlib.contextmanager
def command_line_words() -> Iterator[None]:
    """Within this block, :func:`advice` says the command line's words (the ``mfax``
    command runs its commands in one)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def exception_line(err: BaseException) -> str:
    """An exception of the user's code in one line: its type and the first non-empty line
    of its message (``ValueError: slip must be <= 1``)."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def raised_at(err: BaseException, cls: type) -> str:
    """`` (file.py, line 12)``: the last line of ``cls``'s own file that ``err`` passed
    through (where it was raised, or where that file called what raised it); nothing
    when it passed through none (a library's line would point away from the defect)."""
    own = getattr(sys.modules.get(cls.__module__), "__file__", None)
    frames, tb = [], err.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    mine = [frame for frame in frames if own is not None and frame[0] == own]
    if not mine:
        return ""
    file, line = mine[-1]
    return f" ({file.replace(chr(92), '/').rpartition('/')[2]}, line {line})"
