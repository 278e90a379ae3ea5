"""What the ``mfax`` commands share: one-line user errors, ``key=value`` option parsing.

Imported by :mod:`mfax.run.cli` and by the command modules it registers
(:mod:`mfax.run.cli_macro`), which never import :mod:`mfax.run.cli` back.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from mfax import params
from mfax.errors import ArgumentError, GameError, MfaxError, command_line_words
from mfax.games import parse_value
from mfax.run.config import is_list_param
from mfax.solvers import solver_spec


def home(value: str | None) -> str | None:
    """A path option's value with a leading ``~`` or ``~user`` read as that home folder,
    as the shell reads it in a word of its own: ``--out=~/runs`` and a quoted ``'~/runs'``
    reach mfax as written (a folder named ``~`` in the current one was made, before)."""
    return None if value is None else os.path.expanduser(value)


# a command said what a Ctrl-C left behind (main() then does not add "mfax: interrupted")
INTERRUPTION_SAID: list[bool] = []


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn user errors (:class:`~mfax.errors.MfaxError`, operating-system errors) into
    one-line ``mfax: error: ...`` messages on stderr and exit status 2."""
    try:
        yield
    except MfaxError as err:
        typer.echo(f"mfax: error: {as_flags(err)}{notes(err)}", err=True)
        raise typer.Exit(2) from None
    except BrokenPipeError:  # the reader of the output went away (`mfax ... | head`): not bad input
        raise typer.Exit(output_closed()) from None
    except OSError as err:  # read-only or full disk, a path through a file, ...
        where = "" if err.filename is None else f": {err.filename}"
        typer.echo(f"mfax: error: {err.strerror or err}{where}", err=True)
        raise typer.Exit(2) from None


# the line of a command whose output was closed (exit status 141, as SIGPIPE's)
CLOSED_OUTPUT = "stopped: its output was closed (the reader of the pipe ended); the files written so far are kept"


def output_closed() -> int:
    """Say that the command's output was closed (on stderr, unless that is closed too:
    ``2>&1 | head``), point the closed standard output at the null device (Python's flush
    at exit would raise, and print, a second BrokenPipeError) and return the exit status,
    141 as a process that SIGPIPE ended."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"mfax: {CLOSED_OUTPUT}\n")
        sys.stderr.flush()
    return 141


def as_flags(err: MfaxError) -> str:
    """``err``'s line in the words of the command being run: a check shared with the
    Python API names its argument (``time_budget must be ...``, an
    :class:`~mfax.errors.ArgumentError`); when the command takes that argument as an
    option and the value came from it, the line names the option as typed (``--time-budget
    must be ...``). A value that came from elsewhere (a ``--config`` file's ``keep = -1``,
    a run's config.json on ``--resume``) keeps the key's name: the user typed no such option."""
    message = str(err)
    name = getattr(err, "argument", None)
    ctx = _click_globals.get_current_context(silent=True)
    if not isinstance(err, ArgumentError) or ctx is None or not message.startswith(name + " "):
        return message
    for param in ctx.command.params:
        flags = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
        if param.name == name and flags:
            source = ctx.get_parameter_source(param.name)
            if getattr(source, "name", None) != "COMMANDLINE":
                return ("the config file's " if ctx.params.get("config_file") else "") + message
            return flags[0] + message[len(name) :]
    return message


def two_digits(x: float) -> str:
    """A standard error to two significant digits, without an exponent between 1e-4 and
    1e6 (``120``, not ``1.2e+02``, beside a six-digit figure)."""
    return f"{float(f'{x:.2g}'):g}"


def json_text(value: Any) -> str:
    """``value`` as the JSON text of a ``--json`` line: a float that is not finite is
    ``null`` (:func:`~mfax.run.rundir.json_ready`), as in ``summary.json``."""
    from mfax.run.rundir import json_ready

    return json.dumps(json_ready(value), allow_nan=False)


# where a --json command's JSON object goes: stdout as it was when the command began
# (:func:`json_on_stdout` sends the rest of its output to stderr meanwhile)
_JSON_OUT: contextvars.ContextVar[Any] = contextvars.ContextVar("mfax_json_out", default=None)


JSON_HELP = "print one JSON object on stdout, what it says for a reader on stderr [default: off]"
ITERATION_HELP = (
    "which checkpoint of RUN: 'last', 'best' (the lowest exploitability per path; of several runs, the evaluation "
    "where one of them reached the lowest of all: one checkpoint holds them all) or an iteration K that has one (the "
    "last, the best, or one kept by `mfax train --keep N`)"
)


def json_on_stdout(command):
    """A command with ``--json`` (its ``as_json`` argument): with it, stdout carries only
    the one JSON object :func:`emit_json` writes (``mfax eval RUN --json | jq``), and what
    the command says for a reader (its table, the files it wrote) goes to stderr."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if not kwargs.get("as_json"):
            return command(*args, **kwargs)
        token = _JSON_OUT.set(sys.stdout)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return command(*args, **kwargs)
        finally:
            _JSON_OUT.reset(token)

    return wrapper


def emit_json(value: Any) -> None:
    """``value`` as the ``--json`` object (:func:`json_text`), on stdout (see
    :func:`json_on_stdout`)."""
    typer.echo(json_text(value), file=_JSON_OUT.get() or sys.stdout)


def notes(err: BaseException) -> str:
    """What mfax noted on ``err`` after raising it (``mfax: ...`` notes: the run an
    ``--overwrite`` was replacing is back, say), as the end of its one line."""
    said = [n.removeprefix("mfax: ") for n in getattr(err, "__notes__", ()) if n.startswith("mfax: ")]
    return "".join(f"; {n}" for n in said)


def check_seed(seed: int | None, option: str = "--seed", offset: int = 0) -> None:
    """``seed`` as a 32-bit PRNG seed (with ``offset``: the largest ``seed + k`` a command
    derives from it); beyond it ``jax.random.PRNGKey`` wrapped around silently, so that
    ``2^32`` drew ``0``'s paths."""
    top = params.SEED_MAX - offset
    if seed is not None and not 0 <= seed <= top:
        raise GameError(f"{option} must lie in 0..{top} (PRNG seeds are 32-bit), got {seed}")


def refuse_empty(option: str, value: str | None, what: str, default: str) -> None:
    """One line for an option given as empty text (``--out ""``), which used to fall back
    to ``default`` (or the current folder) silently; ``what`` the option names."""
    if value is not None and not value.strip():
        raise GameError(f"{option} is empty; name the {what} or leave {option} out for {default}")


# click's exceptions, from the click typer runs on (typer 0.22+ vendors its own copy as
# ``typer._click``; earlier ones use the ``click`` package): the module beside the group's base.
_CLICK = TyperGroup.__mro__[1].__module__.rsplit(".", 1)[0]
_click_exceptions = importlib.import_module(_CLICK + ".exceptions")
_click_globals = importlib.import_module(_CLICK + ".globals")
_Abort = getattr(importlib.import_module("typer.core"), "Abort", None) or _click_exceptions.Abort  # typer 0.22+


class OneLineErrors(TyperGroup):
    """The ``mfax`` command group, whose command-line parsing errors (an unknown option or
    command, a value of the wrong type, a missing argument) are one ``mfax: error:`` line
    naming what is wrong and where to read what is allowed, like every other user error,
    instead of click's usage block. ``mfax`` alone still prints the help. Its commands
    run in :func:`~mfax.errors.command_line_words`: advice names options as typed."""

    def main(self, args: Any = None, prog_name: Any = None, *more: Any, standalone_mode: bool = True, **extra: Any):
        with command_line_words():
            return self._main(args, prog_name, *more, standalone_mode=standalone_mode, **extra)

    def _given_twice(self, args: list[str]) -> str | None:
        """:func:`_given_twice_in` for the command ``args`` name (none: ``None``)."""
        named = next((at for at, arg in enumerate(args) if not arg.startswith("-")), None)
        command = None if named is None else self.commands.get(args[named])
        if command is None:
            return None
        return _given_twice_in(args[named], command.params, [str(a) for a in args[named + 1 :]])

    def _main(self, args: Any, prog_name: Any, *more: Any, standalone_mode: bool, **extra: Any):
        if not standalone_mode:
            return super().main(args, prog_name, *more, standalone_mode=False, **extra)
        twice = self._given_twice(list(sys.argv[1:] if args is None else args))
        if twice is not None:
            typer.echo(f"mfax: error: {twice}", err=True)
            sys.exit(2)
        try:
            code = super().main(args, prog_name, *more, standalone_mode=False, **extra)
        except _click_exceptions.ClickException as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # `mfax` or a group with no arguments
                err.show()
                sys.exit(err.exit_code)
            message = err.format_message()
            if type(err).__name__ == "NoSuchOption" and getattr(err, "option_name", None):
                close = _close_options(err.option_name, getattr(err, "possibilities", None) or [])
                message = f"no such option: {err.option_name}" + (
                    f"; did you mean {' or '.join(close)}?" if close else ""
                )
            ctx = getattr(err, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"mfax: error: {message}{hint}", err=True)
            sys.exit(err.exit_code)
        except _Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _given_twice_in(command: str, params: list, args: list[str]) -> str | None:
    """The line for an option of one value given twice in ``args`` (the command's own,
    after its name): click kept the last one silently (``--iterations 2 --iterations 1``
    trained 1; ``--out a --out b`` wrote b), where a ``--set`` key given twice is refused."""
    single = {
        name: param
        for param in params
        if getattr(param, "param_type_name", "") == "option"
        and not (param.multiple or param.is_flag or getattr(param, "count", False))
        for name in (*param.opts, *param.secondary_opts)
    }
    seen: dict[str, tuple[str, str]] = {}
    at = 0
    while at < len(args) and args[at] != "--":
        name, eq, value = args[at].partition("=")
        param = single.get(name) if name.startswith("-") else None
        if param is not None:
            if not eq:
                value = args[at + 1] if at + 1 < len(args) else ""
                at += 1
            if param.name in seen:
                first, earlier = seen[param.name]
                return (
                    f"{name} given twice ({first} {earlier!r}, then {value!r}); give it once "
                    f"(see 'mfax {command} --help')"
                )
            seen[param.name] = (name, value)
        at += 1
    return None


def _close_options(name: str, offered: list[str]) -> list[str]:
    """The options click offers for an unknown ``name`` that resemble it by their names
    without the dashes: click compares them with the dashes, so that ``--bogus`` was
    offered ``--out``."""
    import difflib

    bare = name.lstrip("-")
    return [o for o in offered if difflib.SequenceMatcher(None, bare, o.lstrip("-")).ratio() >= 0.6]


def _pairs(flag: str, items: list[str]) -> Iterator[tuple[str, str]]:
    """``["key=value", ...]`` -> ``(key, value)`` pairs, keys stripped; ``flag`` names the
    option in the error for an item without ``=``."""
    seen: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise GameError(f"{flag} expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key in seen:  # the last one silently won
            raise GameError(f"{flag} {key} given twice ({seen[key]!r} and {value!r}); give each key once")
        seen[key] = value
        yield key, value


def parse_overrides(game: str, items: list[str], sweep: bool = False) -> dict:
    """``--set`` items -> typed parameters of ``game``. With ``sweep``, ``key=v1,v2,...``
    for a parameter that is a single number gives the list of values (one run per value,
    :attr:`mfax.run.config.TrainConfig.param_sets`)."""
    out = {}
    for key, value in _pairs("--set", items):
        if sweep and "," in value and not is_list_param(game, key):
            out[key] = [parse_value(game, key, part) for part in value.split(",")]
        else:
            out[key] = parse_value(game, key, value)
    return out


def parse_hparams(algo: str, items: list[str]) -> dict:
    """``--hp`` items -> typed hyper-parameters of solver ``algo``."""
    spec = solver_spec(algo)
    return {key: spec.parse_hparam(key, value) for key, value in _pairs("--hp", items)}


def parse_times(text: str, flag: str) -> list[int]:
    """``"0,16,32"`` -> ``[0, 16, 32]``: non-negative integers (checked against the
    horizon where it is known)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):  # "0,,3" skipped an entry silently
        raise GameError(f"{flag} expects comma-separated integers t >= 0 (no empty entry), got {text!r}")
    try:
        times = [int(part) for part in parts]
    except ValueError:
        raise GameError(f"{flag} expects comma-separated integers t >= 0, got {text!r}") from None
    if not times or min(times) < 0:
        raise GameError(f"{flag} expects comma-separated integers t >= 0, got {text!r}")
    return times
