"""Code from outside mfax: references to a user's classes, and installed plug-ins.

A *reference* names an object in a user's code, ``TARGET:NAME``:

* ``package.module:Name``: the module is imported (:func:`importlib.import_module`), so
  it must be importable (installed, or on ``PYTHONPATH``);
* ``path/to/file.py:Name`` (a target that ends in ``.py`` or holds a ``/``; relative to
  the working directory): the file is loaded as a module of its own whose name is
  derived from its resolved path (``mfax_file_<digest>``), so it shadows no other
  module, and loading one file twice gives the same objects.

A *plug-in* is declared by an installed distribution as an entry point, ``NAME =
module:object`` in group ``mfax.games`` (a game class) or ``mfax.solvers`` (a solver
spec); it is found when a name is not built-in and loaded on first use.

Loading a reference or a plug-in runs its code. Every failure is one line
(:class:`~mfax.errors.GameError`) saying what was named and why it could not be used.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import re
import site
import sys
import sysconfig
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from mfax.errors import GameError, exception_line

T = TypeVar("T")
FILE_MODULE_PREFIX = "mfax_file_"
FORMS = "package.module:Name or path/to/file.py:Name"


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def check_name(name: Any, what: str) -> str:
    """``name`` if it can name a registered ``what`` (``"game"``, ``"solver"``): a str of
    letters, digits, ``_``, ``.`` and ``-`` (not first), not ending in ``.py``; anything
    else is a one-line error. A name with ``:`` or ``/`` or ending in ``.py`` reads as a
    reference to code, one with spaces or a leading ``-`` cannot be typed as an option's
    value, and one that is not a str broke every later look-up (sorting the names)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".py"):
        raise GameError(
            f"a {what}'s name must be letters, digits, '_', '.' or '-' (not first), not ending in .py "
            f"(as in 'my_game' or 'lab.crowd-2d'), got {name!r}"
        )
    return name


def is_reference(text: str) -> bool:
    """Whether ``text`` names code (``TARGET:NAME``) rather than a registered name."""
    return ":" in text


@dataclass(frozen=True)
class Reference:
    """A parsed reference: ``file`` (resolved) for a file, else the ``module`` name;
    ``name`` the attribute (dotted for a nested one)."""

    name: str
    module: str | None = None
    file: Path | None = None

    @property
    def text(self) -> str:
        """The canonical reference: a file by its absolute path."""
        return f"{self.file if self.file is not None else self.module}:{self.name}"


def parse(text: str, what: str, base: Path | None = None) -> Reference:
    """Split ``text`` at its last colon; a file target is resolved against ``base``
    (default: the working directory)."""
    target, _, name = text.rpartition(":")
    if not target.strip() or not name.strip() or not all(part.isidentifier() for part in name.split(".")):
        raise GameError(f"{what} reference {text!r} must be {FORMS}")
    if ":" in target and not target.endswith(".py") and "/" not in target.rpartition(":")[2]:
        # file.py:Name:x (read as module 'file.py:Name'); a ':' in a folder's name is a path's
        raise GameError(f"{what} reference {text!r} has more than one ':'; it must be {FORMS}")
    if target.endswith(".py") or "/" in target:
        path = Path(target).expanduser()
        return Reference(name, file=((base or Path.cwd()) / path).resolve())
    return Reference(name, module=target)


def canonical(text: str, base: Path | None = None) -> str:
    """``text`` with a file target made absolute (names, module references and malformed
    references as they are: loading reports the latter)."""
    try:
        return parse(text, "game", base).text if is_reference(text) else text
    except GameError:
        return text


def short_name(text: str) -> str:
    """A name to label things with: a reference's attribute name, else ``text``."""
    return text.rpartition(":")[2] if is_reference(text) else text


def file_digest(path: Path) -> str | None:
    """The sha256 of a file's bytes (``None`` when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def code_digest(path: Path) -> str | None:
    """The sha256 of what a Python file's code says, leaving out comments, blank lines,
    layout (line breaks, indentation width, spacing) and docstrings: the sha256 of its
    syntax tree (``ast.dump`` without positions, the docstrings removed) and of the
    Python version that parsed it. ``None`` when the file cannot be read or parsed.
    Two files of the same digest run the same statements; what they can still differ in
    is what a program rarely reads: its docstrings (``__doc__``) and line numbers
    (``inspect``, tracebacks). Another Python version's digest of the same code differs."""
    try:
        with warnings.catch_warnings():  # (3.12+: invalid escape sequences are warned at parse)
            warnings.simplefilter("ignore")
            tree = ast.parse(path.read_bytes())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]  # (a body of a docstring alone: a pass)
        text = ast.dump(tree, include_attributes=False)
    except Exception:  # (unreadable, not Python, too deep, an integer too long to print, ...)
        return None
    return hashlib.sha256(f"python {sys.version_info[0]}.{sys.version_info[1]}\n{text}".encode()).hexdigest()


def _library_roots() -> tuple[Path, ...]:
    """Where Python's own modules and installed distributions live (and mfax's source,
    which an editable install leaves outside them): code there is not the user's."""
    paths = sysconfig.get_paths()
    roots = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    roots += list(getattr(site, "getsitepackages", list)())
    roots.append(getattr(site, "getusersitepackages", lambda: None)())
    roots.append(Path(__file__).resolve().parents[1])  # the mfax package
    out = set()
    for root in roots:
        if root:
            out |= {Path(root).absolute(), Path(root).resolve()}
    return tuple(out)


def code_root(file: Path, module: str | None = None) -> Path:
    """The folder a user's code lives in: a file's own folder; for the source ``file`` of
    module ``module`` (``a.b.c``), the folder that holds its top-level module or package."""
    parents = file.resolve().parents
    depth = 0 if module is None else module.count(".") + (file.name == "__init__.py")
    return parents[min(depth, len(parents) - 1)]


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` as this process would run it: the module already
    imported, else found on ``sys.path`` (a package's submodules on its ``__path__``)
    without running anything; ``None`` for a built-in, a compiled extension, a module not
    found, or one a finder cannot say."""
    try:
        module = sys.modules.get(name)
        if module is not None:
            origin = getattr(module, "__file__", None)
        else:
            search, spec, parts = None, None, name.split(".")
            for depth in range(len(parts)):
                here = ".".join(parts[: depth + 1])
                loaded = sys.modules.get(here)
                if loaded is not None and depth < len(parts) - 1:
                    search = getattr(loaded, "__path__", None)
                else:
                    spec = _find_spec(here, sys.path if search is None else search)
                    if spec is None:
                        return None
                    search = spec.submodule_search_locations
                if depth < len(parts) - 1 and search is None:
                    return None
            origin = None if spec is None else spec.origin
        if not origin or not str(origin).endswith(".py"):
            return None
        path = Path(origin)
        return path if path.is_file() else None
    except Exception:  # a finder's own failure (a namespace package's parent not imported, say)
        return None


def _find_spec(name: str, search: list[str]):
    """The spec of module ``name`` on the folders ``search``, as the import system's path
    finder would find it but without a parent package imported: the first folder with
    the module or a regular package, else a namespace package of every folder holding a
    portion (the path finder itself asks for the parent's module there)."""
    portions: list[str] = []
    for entry in search:
        finder = sys.path_importer_cache.get(entry)
        for hook in sys.path_hooks if finder is None else ():
            try:
                finder = hook(entry)
                break
            except ImportError:
                continue
        spec = None if finder is None or not hasattr(finder, "find_spec") else finder.find_spec(name)
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions.extend(spec.submodule_search_locations or [])
    if not portions:
        return None
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = portions
    return spec


def _imported_names(path: Path, package: str | None) -> list[str]:
    """The modules the import statements of the source file ``path`` name (top level or
    inside functions; a dotted import's parent packages too; a relative import resolved
    against ``package``, skipped without one)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except Exception:  # unreadable, not Python, or too deep for the parser: nothing to follow
        return []
    names: list[str] = []

    def add(dotted: str) -> None:
        parts = dotted.split(".")
        names.extend(".".join(parts[: i + 1]) for i in range(len(parts)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if not package:
                    continue
                try:
                    base = importlib.util.resolve_name("." * node.level + base, package)
                except (ImportError, ValueError):
                    continue
            if base:
                add(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return list(dict.fromkeys(names))


def user_imports(path: Path, module: str | None = None) -> dict[str, Path]:
    """The user's modules that the code in ``path`` (the source of module ``module``, or a
    file loaded on its own) runs when imported: the modules its import statements name,
    directly or through each other, whose source files lie in its :func:`code_root` or
    below it (a helper beside a game file, the rest of the user's package), outside
    Python's installation and installed distributions, and not mfax; for a module, its
    parent packages' ``__init__`` too. Found by reading the import statements, not by
    running them (an import that a condition skips counts as well), by module name."""
    path = path.resolve()
    root, libraries = code_root(path, module), _library_roots()

    def mine(file: Path) -> bool:
        here = file.resolve()
        return (
            here != path
            and here.is_relative_to(root)
            and not any(f.is_relative_to(lib) for f in (file.absolute(), here) for lib in libraries)
        )

    found: dict[str, Path] = {}
    parents = module.split(".")[:-1] if module else []
    for depth in range(len(parents)):  # importing a.b.c runs a/__init__.py and a/b/__init__.py
        name = ".".join(parents[: depth + 1])
        file = module_file(name)
        if file is not None and mine(file):
            found[name] = file.resolve()
    pending, seen = [(path, module)], {path}
    pending += [(file, name) for name, file in found.items()]
    while pending:
        source, name = pending.pop()
        package = None
        if name:
            package = name if source.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imported_names(source, package):
            if imported in found or imported == name:
                continue
            file = module_file(imported)
            if file is None or not mine(file):
                continue
            found[imported] = file.resolve()
            if found[imported] not in seen:
                seen.add(found[imported])
                pending.append((found[imported], imported))
    return dict(sorted(found.items()))


FIELD_DEFAULTS = 'every field of a game or solver needs a default: name: type = param(default, "help")'


def one_line(err: BaseException) -> str:
    """An exception in one line: its type and the first line of its message (with what to
    do where the cause is a field declared without a default)."""
    text = exception_line(err)
    if isinstance(err, TypeError) and "non-default argument" in text:
        text += f"; {FIELD_DEFAULTS}"
    return text


def _load_file(path: Path, what: str) -> ModuleType:
    if path.is_dir():
        raise GameError(f"{what} file {str(path)!r} is a directory; name the Python file: path/to/file.py:ClassName")
    if not path.is_file():
        raise GameError(f"{what} file {str(path)!r} not found")
    name = FILE_MODULE_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GameError(f"{what} file {str(path)!r} cannot be loaded as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses (hence Equinox) look their module up
    try:
        spec.loader.exec_module(module)
    except SystemExit as err:  # (it ended mfax with its status, silently)
        del sys.modules[name]
        raise GameError(f"loading {what} file {str(path)!r} failed: {_exited(err)}") from None
    except Exception as err:
        del sys.modules[name]
        text = one_line(err)
        missing = getattr(err, "name", None) if isinstance(err, ModuleNotFoundError) else None
        if missing and any((path.parent / f"{missing.split('.')[0]}{end}").exists() for end in (".py", "")):
            text += (
                f" (the file's own folder is not on Python's path: add {str(path.parent)!r} to PYTHONPATH, or "
                f"make the helper part of the {what}'s file)"
            )
        raise GameError(f"loading {what} file {str(path)!r} failed: {text}") from None
    return module


def _exited(err: SystemExit) -> str:
    """What a module that called ``sys.exit`` while being imported did, in words."""
    return (
        f"it called sys.exit({err.code!r}) when imported (code a script runs belongs under "
        '`if __name__ == "__main__":`)'
    )


def _import(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and (module == err.name or module.startswith(err.name + ".")):
            raise GameError(
                f"{what} module {module!r} not found (it must be importable: installed or on PYTHONPATH; "
                "a file is named path/to/file.py:Name)"
            ) from None
        raise GameError(f"importing {what} module {module!r} failed: {one_line(err)}") from None
    except SystemExit as err:
        raise GameError(f"importing {what} module {module!r} failed: {_exited(err)}") from None
    except Exception as err:
        raise GameError(f"importing {what} module {module!r} failed: {one_line(err)}") from None


def load(text: str, what: str) -> Any:
    """The object a reference names (its module imported, or its file loaded)."""
    ref = parse(text, what)
    module = _load_file(ref.file, what) if ref.file is not None else _import(ref.module, what)
    obj: Any = module
    for depth, part in enumerate(ref.name.split(".")):
        if not hasattr(obj, part):
            if ref.module == MAIN:
                raise GameError(
                    f"{what} reference {text!r}: {ref.name} was defined in a script or notebook, not in this "
                    f"process; name the file that defines it (path/to/file.py:{ref.name}) instead"
                )
            where = str(ref.file) if ref.file is not None else ref.module
            defines = _defines(module) if depth == 0 else ""  # (what the file or module itself defines)
            raise GameError(f"{what} reference {text!r}: {where!r} has no attribute {ref.name!r}{defines}")
        obj = getattr(obj, part)
    return obj


def _defines(module: ModuleType) -> str:
    """The classes ``module`` defines itself (not those it imports), in words for an error
    about a name it lacks: ``; it defines the classes Corridor, Crowd`` (none: nothing)."""
    names = sorted(
        key
        for key, value in vars(module).items()
        if isinstance(value, type) and not key.startswith("_") and getattr(value, "__module__", None) == module.__name__
    )
    if not names:
        return ""
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    return f"; it defines the class{'es' if len(names) > 1 else ''} {shown}"


MAIN = "__main__"  # the module of a script's or a notebook's own definitions


def reference_of(obj: Any, what: str, main: bool = False) -> str:
    """The reference that names ``obj`` (a class or object defined at the top level of a
    module, or nested in a class there) so that :func:`load` finds it again: its file's
    for a module loaded from a file, else its module's. With ``main``, an object of a
    script or notebook (module ``__main__``) is named ``__main__:Name``, which this
    process alone can load (the Python API runs it in memory); else that is an error."""
    qualname, module = getattr(obj, "__qualname__", None), getattr(obj, "__module__", None)
    if not qualname or not module or "<" in qualname:
        raise GameError(f"{what} {obj!r} is not defined at the top level of a module, so mfax cannot name it")
    if module == MAIN and main:
        return f"{MAIN}:{qualname}"
    if module == MAIN:
        raise GameError(
            f"{what} {qualname} is defined in __main__ (a script or a notebook), which mfax cannot import again; "
            f"put it in a file and name it path/to/file.py:{qualname}"
        )
    if module.startswith(FILE_MODULE_PREFIX):
        return f"{sys.modules[module].__file__}:{qualname}"
    return f"{module}:{qualname}"


# -- installed plug-ins (entry points) ---------------------------------------------------
def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The entry points of ``group`` by name (the first of a name wins)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def origin(ep: metadata.EntryPoint) -> str:
    """Where a plug-in comes from, e.g. ``plug-in of crowd-games 0.2``."""
    dist = getattr(ep, "dist", None)
    return "plug-in" if dist is None else f"plug-in of {dist.metadata['Name']} {dist.version}"


def load_entry_point(ep: metadata.EntryPoint, what: str) -> Any:
    try:
        return ep.load()
    except Exception as err:
        raise GameError(f"{what} {ep.name!r} ({origin(ep)}, {ep.value}) cannot be loaded: {one_line(err)}") from None


def shadowed(group: str, registered: Mapping[str, Any]) -> dict[str, str]:
    """The plug-ins of ``group`` whose names are ``registered`` (a built-in's name, say),
    which those names never reach: name -> origin and target."""
    return {name: f"{origin(ep)}, {ep.value}" for name, ep in entry_points(group).items() if name in registered}


def installed(group: str, registered: Mapping[str, Any]) -> dict[str, str]:
    """The plug-ins of ``group`` whose names are not ``registered``: name -> origin."""
    return {name: origin(ep) for name, ep in entry_points(group).items() if name not in registered}


def lookup(
    name: str,
    registered: Mapping[str, T],
    group: str,
    what: str,
    accept: Callable[[Any, str], T],
    known_as: Mapping[str, str] | None = None,
) -> T:
    """What ``name`` names: a ``registered`` object, else a reference's or an installed
    plug-in's (entry point ``group``), which ``accept(obj, name)`` checks (and may
    convert); an unknown name is a one-line error listing the choices (``what``: the
    error's noun, e.g. ``"game"``), with what ``known_as`` says of it (another library's
    name -> the sentence giving mfax's) or else the closest choice of a misspelling."""
    if not isinstance(name, str):  # (a number or a list would fail below with a raw TypeError)
        allowed = _choices(registered, entry_points(group))
        raise GameError(f"{what} must be a name or a reference string, got {name!r}; allowed: {allowed}, or {FORMS}")
    if name in registered:
        return registered[name]
    if is_reference(name):
        return accept(load(name, what), name)
    found = entry_points(group)
    if name in found:
        rivals = {ep.value: ep for ep in metadata.entry_points(group=group) if ep.name == name}
        if len(rivals) > 1:  # (the first found won, silently: which one depends on the path's order)
            listed = "; ".join(f"{origin(ep)}: {value}" for value, ep in rivals.items())
            raise GameError(
                f"{what} {name!r} is declared by {len(rivals)} installed plug-ins that differ ({listed}); name the "
                "one you mean by its reference, package.module:Name"
            )
        return accept(load_entry_point(found[name], what), name)
    if name.endswith(".py"):
        raise GameError(f"{what} {name!r} names a file but not the object in it; write {name}:Name")
    hint = _hint(name, [*registered, *found], known_as or {})
    raise GameError(f"unknown {what} {name!r}{hint}; allowed: {_choices(registered, found)}, or {FORMS}")


def _hint(name: str, choices: list[str], known_as: Mapping[str, str]) -> str:
    """`` (OpenSpiel's mfg_garnet is mfax's openspiel.garnet)`` where ``name``, or its part
    after a prefix (``openspiel.mfg_garnet``), is another library's name of a choice;
    else `` (did you mean fp?)`` for a choice written in other cases, or
    `` (did you mean openspiel.garnet?)`` for the choices it is the last part of, or the
    closest choice (a misspelling); else nothing."""
    for original in (name, name.rpartition(".")[2]):
        if original in known_as:
            return f" ({known_as[original]})"
    close = [c for c in choices if c.lower() == name.lower()]  # (FP: fp)
    close = close or [c for c in choices if c.rpartition(".")[2] == name]  # (crowd_motion: mfglib.crowd_motion)
    close = close or difflib.get_close_matches(name, choices, n=1, cutoff=0.75)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _choices(registered: Mapping[str, Any], found: Mapping[str, Any]) -> str:
    """The registered names, then the installed plug-ins' not among them."""
    return ", ".join([*registered, *sorted(set(found) - set(registered))])
