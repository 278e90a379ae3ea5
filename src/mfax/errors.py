"""The user-error types, at the bottom of every layer (this module imports nothing of mfax).

A user error is bad input: a message of one line that names what is wrong and what is
allowed. The command line prints it as ``mfax: error: <message>`` and exits with status 2,
without a traceback; library callers catch :class:`MfaxError`. A training that goes
non-finite is not a refusal of its input but an outcome: it raises
``mfax.run.train.TrainingDiverged``, a ``RuntimeError`` (the command line prints its one
line and exits with status 1).
"""

from __future__ import annotations


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
