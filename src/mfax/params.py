"""Declared, documented, validated parameters (shared by games and solvers).

A parameter is a dataclass field made with :func:`param` (a default and a help text).
It has one of two roles. *Static* (the default): part of the compiled program, as
shapes, switches, strings and whatever host-side code (numpy grids, an enumerated
noise support) reads are. *Traced* (``traced=True``): a number that only enters
arithmetic (a reward weight, a probability used inside the kernel, the discount): an
ordinary Equinox field, so a game built with Python numbers is closed over as constants
exactly like a static one, while games that differ only in traced values can be stacked
on a leading axis (:func:`mfax.games.stack_games`) and run side by side under
``jax.vmap`` in one compiled program.

``build`` checks names and types and gives one-line errors naming what is wrong and
what is allowed; ``parse_text`` turns ``key=value`` command-line text into the field's
type. Values are validated further by the owning class (``__check_init__`` or
``__post_init__``).

A numeric parameter may declare a default *search range*, ``search=(low, high)`` or
``(low, high, "log")``: the range ``mfax tune`` searches when it is not told otherwise
(:func:`search_range`). A parameter without one is searched only when asked by name.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx

from mfax.errors import GameError, MfaxError, advice, exception_line, raised_at

SEARCH_SCALES = ("linear", "log")


def param(default: Any, help: str, traced: bool = False, search: tuple | None = None) -> Any:
    """A documented parameter field: static (part of the compiled program) unless
    ``traced``, then an ordinary pytree leaf. Code reading a traced parameter must take
    a tracer: ``jax.numpy`` arithmetic, no Python ``if``, no ``math``/``numpy`` calls.

    ``search``: the default range ``mfax tune`` searches for a numeric parameter,
    ``(low, high)`` (uniform) or ``(low, high, "log")`` (log-uniform); an integer
    parameter's bounds are integers. A declaration error is a ``TypeError``."""
    metadata = {"help": help, "traced": traced}
    if search is not None:
        metadata["search"] = _declared_range(default, search)
    return eqx.field(default=default, static=not traced, metadata=metadata)


def _declared_range(default: Any, search: tuple) -> tuple[float, float, str]:
    """``search`` as ``(low, high, scale)``, checked against the default's type."""
    numeric = isinstance(default, int | float) and not isinstance(default, bool)
    if not numeric or not isinstance(search, tuple) or len(search) not in (2, 3):
        raise TypeError(f"search must be (low, high[, 'log']) for a numeric parameter, got {search!r}")
    low, high, *rest = search
    scale = rest[0] if rest else "linear"
    kind = int if isinstance(default, int) else (int, float)
    if not all(isinstance(x, kind) and not isinstance(x, bool) for x in (low, high)) or scale not in SEARCH_SCALES:
        raise TypeError(f"search range {search!r} does not fit a parameter whose default is {default!r}")
    if not (low < high and (scale != "log" or low > 0)):
        raise TypeError(f"search range {search!r} needs low < high (and low > 0 for 'log')")
    return low, high, scale


def search_range(cls: type, name: str) -> tuple[float, float, str] | None:
    """The declared search range ``(low, high, scale)`` of parameter ``name`` of ``cls``
    (``scale``: ``"linear"`` or ``"log"``; ``None``: it declares none)."""
    field = fields_of(cls).get(name)
    return None if field is None else field.metadata.get("search")


def override(base: type, name: str, default: Any) -> Any:
    """A subclass's own default for the parameter ``name`` that ``base`` declares: the
    same help text and role, another default."""
    declared = fields_of(base)
    if name not in declared:
        raise TypeError(f"{base.__name__} declares no parameter {name!r}")
    meta = declared[name].metadata
    search = meta.get("search")
    return param(default, meta["help"], meta["traced"], None if search is None else tuple(search))


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    """The declared parameters of a class: its own first, in declaration order, then
    those it inherits, nearest base first (a solver's own before the network's and the
    optimiser's)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if "help" in f.metadata}
    order: list[str] = []
    for klass in cls.__mro__:
        order += [name for name in vars(klass).get("__annotations__", {}) if name in fields and name not in order]
    return {name: fields[name] for name in order}


def traced_names(cls: type) -> list[str]:
    """The names of the traced parameters of a class, in declaration order."""
    return [name for name, f in fields_of(cls).items() if f.metadata.get("traced", False)]


def changed(obj: Any) -> tuple[str, ...]:
    """``name=value`` of each declared parameter of ``obj`` that is not at its default
    (a failure then names the values the user set); an array value (a stacked sweep) is
    left out."""
    out = []
    for name, field in fields_of(type(obj)).items():
        if field.default is dataclasses.MISSING or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        try:
            same = bool(value == field.default)
        except Exception:  # an array: its truth is ambiguous
            continue
        if not same:
            out.append(f"{name}={value!r}")
    return tuple(out)


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """``(name, default, help)`` of every parameter."""
    return [(f.name, f.default, f.metadata["help"]) for f in fields_of(cls).values()]


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "a bool (true, false, 1, 0, yes, no, on, off)"
    return "a comma-separated list of numbers" if isinstance(default, tuple) else type(default).__name__


INT32_MAX = 2**31 - 1  # counts and sizes enter JAX programs as int32
SEED_MAX = 2**32 - 1  # a PRNG seed (jax.random.key, numpy's and Optuna's samplers)
FLOAT32_MAX = 3.4028234663852886e38  # a float parameter must fit the float32 a run computes in


def is_integer_from(value: Any, low: int) -> bool:
    """Whether ``value`` is an integer (Python or numpy; not a bool, not a float) ``>= low``:
    a count, a size or an index a user gave."""
    import numpy as np

    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low


def coerce(owner: str, field: dataclasses.Field, value: Any) -> Any:
    """Check a value against the type of the field's default; ints widen to floats;
    NaN and infinities are refused (no parameter means anything by them). A numpy scalar
    is read as the Python number it holds (``np.int64(5)``, ``np.float32(0.5)``)."""
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    default = _typed_default(field)
    bad = GameError(f"parameter {field.name!r} of {owner} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        if abs(value) > INT32_MAX:
            raise GameError(f"parameter {field.name!r} of {owner} must lie within +-{INT32_MAX} (int32), got {value}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        _finite(owner, field.name, value)
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise bad
        items = tuple(value)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in items):
            raise bad
        for v in items:
            _finite(owner, field.name, v)
        return tuple(float(v) for v in items)
    return value


def _typed_default(field: dataclasses.Field) -> Any:
    """The default whose type a value is checked against: a whole number declared ``float``
    (``damping: float = param(1, ...)``) is the float it means, so that 0.5 is accepted."""
    declared = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", None)
    if declared == "float" and isinstance(field.default, int) and not isinstance(field.default, bool):
        return float(field.default)
    return field.default


def _finite(owner: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise GameError(f"parameter {name!r} of {owner} must be a finite number, got {value!r}")
    if abs(value) > FLOAT32_MAX:  # inf in the float32 a run computes in
        raise GameError(f"parameter {name!r} of {owner} must lie within +-3.4e38 (float32), got {value!r}")


def check_names(cls: type, owner: str, names) -> dict[str, dataclasses.Field]:
    fields = fields_of(cls)
    unknown = sorted(set(names) - set(fields))
    if unknown:
        # a field without param(...) is not a parameter: say so (the list of those allowed
        # does not show it, and "allowed: " listed nothing when no field is one)
        undeclared = dataclasses.is_dataclass(cls) and any(f.name == unknown[0] for f in dataclasses.fields(cls))
        how = (
            f"; its field {unknown[0]!r} is not declared with mfax.params.param(default, help), which makes "
            "a field a parameter"
            if undeclared
            else ""
        )
        if not fields:
            raise GameError(f"unknown parameter {unknown[0]!r} for {owner}: it declares no parameters{how}")
        raise GameError(f"unknown parameter {unknown[0]!r} for {owner}; allowed: {', '.join(fields)}{how}")
    return fields


def build(cls: type, owner: str, **values: Any) -> Any:
    """``cls(**values)`` after checking names and types (one-line errors). The class's own
    refusal of the values (``__check_init__``, ``__post_init__``) is one line too: a
    plain ``raise ValueError(...)`` there gave the whole traceback, where mfax's own
    ``check`` gives its line."""
    fields = check_names(cls, owner, values)
    coerced = {k: coerce(owner, fields[k], v) for k, v in values.items()}
    try:
        return cls(**coerced)
    except MfaxError:
        raise
    except Exception as err:  # (user code: its refusal, or its defect, named where it was raised)
        given = f" with {', '.join(f'{k}={v!r}' for k, v in values.items())}" if values else ""
        raise GameError(f"{owner}{given} could not be made: {exception_line(err)}{raised_at(err, cls)}") from err


def parse_text(cls: type, owner: str, key: str, text: str) -> Any:
    """Parse command-line text for parameter ``key`` by the type of its default."""
    default = _typed_default(check_names(cls, owner, [key])[key])
    text = text.strip()
    if "," in text and isinstance(default, bool | int | float):  # --hp lr=0.5,1 (--set lists sweep before this)
        search = advice("search them with `mfax tune`", "search them with mfax.tune")
        several = f"; to compare values, train one run per value or {search}" if owner.startswith("solver") else ""
        if owner.startswith("game"):  # (here one game at a time: say where several values are taken)
            where = advice("in `mfax train --set`", "in mfax.solve")
            several = f"; several values of a traced parameter (marked * by `mfax list`) train side by side {where}"
        raise GameError(f"parameter {key!r} of {owner} takes one value, got {text!r}{several}")
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(float(v) for v in text.strip("()[]").split(",") if v.strip())
        return text
    except ValueError:
        pass
    raise GameError(f"parameter {key!r} of {owner} must be {_kind(default)}, got {text!r}")
