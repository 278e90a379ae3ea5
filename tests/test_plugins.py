"""Games and solvers from outside mfax: file and module references, installed plug-ins,
and run directories that never import the code they name without the reader's consent."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import ClassVar

import jax.numpy as jnp
import pytest
from typer.testing import CliRunner

import mfax
from conftest import one_error_line
from mfax import make
from mfax.games import SIS, GameError, game_class, game_reference
from mfax.run.cli import app
from mfax.run.config import load_file
from mfax.solvers import solver_spec

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "crowd.py"
QUIET = ["--no-progress", "--no-plots"]
TRAIN = ["--algo", "fp", "--iterations", "2", "--eval-every", "1", *QUIET]


@pytest.fixture
def crowd(tmp_path) -> Path:
    """The example game, copied to a folder outside the package."""
    folder = tmp_path / "mine"
    folder.mkdir()
    return Path(shutil.copy(EXAMPLE, folder / "crowd.py"))


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A package ``crowdpkg`` on ``sys.path``: the example game as ``crowdpkg.games``, a
    module that fails on import and a plug-in solver spec."""
    root = tmp_path / "site"
    pkg = root / "crowdpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, pkg / "games.py")
    (pkg / "failing.py").write_text("raise RuntimeError('no licence server')\n")
    (pkg / "solvers.py").write_text(
        "import dataclasses\nfrom mfax.solvers import solver_spec\n"
        "SPEC = dataclasses.replace(solver_spec('fp'), description='fictitious play, from a plug-in')\n"
        "def not_a_spec():\n    return 42\n"
    )
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m == "crowdpkg" or m.startswith("crowdpkg.")]:
        del sys.modules[name]


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_a_file_game_is_one_class_however_named_and_shadows_no_module(crowd, monkeypatch):
    ref = f"{crowd}:Crowd"
    game = make(ref, n_sites=7, crowd_aversion=2.0)
    assert (game.n_states, game.n_actions, game.crowd_aversion) == (7, 3, 2.0)
    monkeypatch.chdir(crowd.parent)
    assert game_class("crowd.py:Crowd") is type(game) is game_class(ref)
    assert game_reference(type(game)) == ref and game_reference(SIS) == "sis"
    # a file named like a standard module is loaded under its own name
    shadow = Path(shutil.copy(crowd, crowd.parent / "random.py"))
    assert game_class(f"{shadow}:Crowd") is not type(game)
    import random

    assert Path(random.__file__).parent != crowd.parent and sys.modules["random"] is random
    with pytest.raises(GameError, match=r"parameter 'n_sites' of game .* must be int"):
        make(ref, n_sites="seven")
    with pytest.raises(GameError, match="n_sites must be >= 2"):
        make(ref, n_sites=1)


def test_a_module_game_and_a_module_solver(package):
    game = make("crowdpkg.games:Crowd", horizon=3)
    assert game.horizon == 3 and type(game) is game_class("crowdpkg.games:Crowd")
    assert game_reference(type(game)) == "crowdpkg.games:Crowd"
    spec = solver_spec("crowdpkg.solvers:SPEC")
    assert spec.name == "crowdpkg.solvers:SPEC" and spec.build is solver_spec("fp").build


BAD_FILES = {
    "syntax.py": ("def broken(:\n", "loading game file .*syntax.py' failed: SyntaxError"),
    "imports.py": ("import no_such_module_anywhere\n", "failed: ModuleNotFoundError: No module named"),
    "raises.py": ("raise ValueError('first line\\nsecond line')\n", "failed: ValueError: first line$"),
    # found by an audit of the plug-in path: mfax ended with the file's status and no word;
    # a sibling module the file imports was "No module named 'helper'" alone
    "exits.py": ("import sys\nsys.exit(3)\n", r"failed: it called sys.exit\(3\) when imported \(code a script runs"),
    "sibling.py": (
        "import helper_of_sibling\n",
        "No module named 'helper_of_sibling' \\(the file's own folder is not on",
    ),
    "helper_of_sibling.py": ("x = 1\n", None),
}


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("{dir}/missing.py:Crowd", "game file .*missing.py' not found"),
        ("{dir}/syntax.py:Crowd", BAD_FILES["syntax.py"][1]),
        ("{dir}/imports.py:Crowd", BAD_FILES["imports.py"][1]),
        ("{dir}/raises.py:Crowd", BAD_FILES["raises.py"][1]),
        ("{dir}/exits.py:Crowd", BAD_FILES["exits.py"][1]),
        ("{dir}/sibling.py:Crowd", BAD_FILES["sibling.py"][1]),
        ("{dir}/crowd.py:Crowds", "crowd.py' has no attribute 'Crowds'; it defines the class Crowd$"),
        ("{dir}/crowd.py:Crowd:x", "crowd.py:Crowd:x' has more than one ':'; it must be package.module:Name or "),
        ("{dir}/crowd.py:Crowd.n_sites.x", "crowd.py' has no attribute 'Crowd.n_sites.x'$"),  # (was a traceback)
        ("{dir}/crowd.py:jnp.nothing", "crowd.py' has no attribute 'jnp.nothing'$"),  # (not jnp's classes)
        ("{dir}/crowd.py:jnp", "is a module, not a game"),
        ("{dir}/crowd.py:ClassVar", "is a _SpecialForm, not a game"),
        ("{dir}/crowd.py:check.__class__", "is class function, not a game"),
        ("{dir}/crowd.py:deterministic_kernel", "is a function, not a game"),
        (
            "{dir}/crowd.py:NoCommonNoise",
            "is abstract: it does not define action_values, gamma, horizon, initial_mean_field",
        ),
        ("{dir}/crowd.py:", "must be package.module:Name or path/to/file.py:Name"),
        (":Crowd", "must be package.module:Name or path/to/file.py:Name"),
        ("{dir}/crowd.py:1st", "must be package.module:Name or path/to/file.py:Name"),
        ("no_such_pkg.games:Crowd", "game module 'no_such_pkg.games' not found \\(it must be importable"),
        ("crowdpkg.failing:Crowd", "importing game module 'crowdpkg.failing' failed: RuntimeError: no licence server"),
        ("crowdpkg.games:Nope", "'crowdpkg.games' has no attribute 'Nope'"),
        ("no_such_game", "unknown game 'no_such_game'; allowed: beach_bar, "),
        ("{dir}/crowd.py", "crowd.py' names a file but not the object in it; write .*crowd.py:Name"),
    ],
)
def test_every_bad_game_reference_is_one_line(crowd, package, ref, message):
    for name, (text, _) in BAD_FILES.items():
        (crowd.parent / name).write_text(text)
    with pytest.raises(GameError, match=message) as err:
        game_class(ref.format(dir=crowd.parent))
    assert "\n" not in str(err.value)
    result = invoke("list", ref.format(dir=crowd.parent))
    one_error_line(result, str(err.value))


def test_a_field_not_declared_as_a_parameter_is_named_as_such():
    """--set of a game field declared without param(): "unknown parameter 'crowd' for
    game 'x'; allowed: " listed nothing (found by an audit of the plug-in path)."""
    import equinox as eqx

    from mfax.params import check_names, param

    class Plain(eqx.Module):
        crowd: float = 1.0

    with pytest.raises(GameError, match=r"^unknown parameter 'crowd' for game 'x': it declares no parameters; its "):
        check_names(Plain, "game 'x'", ["crowd"])
    with pytest.raises(GameError, match=r"^unknown parameter 'other' for game 'x': it declares no parameters$"):
        check_names(Plain, "game 'x'", ["other"])

    class Mixed(eqx.Module):  # a parameter beside a plain field: the plain one was only "unknown"
        speed: float = param(1.0, "speed")
        crowd: float = 1.0

    with pytest.raises(GameError, match=r"^unknown parameter 'crowd' for game 'x'; allowed: speed; its field 'crowd' "):
        check_names(Mixed, "game 'x'", ["crowd"])
    with pytest.raises(GameError, match=r"^unknown parameter 'other' for game 'x'; allowed: speed$"):
        check_names(Mixed, "game 'x'", ["other"])


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("first", "game '.*bare.py:Crowd': field 'goal' has no default; every field of a game or solver needs a "),
        ("last", "loading game file .*bare.py' failed: TypeError: non-default argument 'goal' follows default "),
    ],
)
def test_a_game_field_without_a_default_is_one_line_with_what_to_write(crowd, where, message):
    """A bare ``goal: float`` (mfax makes games from their defaults and --set): first, the
    class builds and mfax names the field; after defaulted fields, Python refuses the class
    and mfax adds what to write (both printed a traceback)."""
    text = crowd.read_text()
    anchor = '    n_sites: int = param(5, "sites on the ring")\n'
    bare = "    goal: float\n"
    text = text.replace(anchor, bare + anchor if where == "first" else anchor + bare)
    (crowd.parent / "bare.py").write_text(text)
    ref = f"{crowd.parent}/bare.py:Crowd"
    with pytest.raises(GameError, match=message) as err:
        game_class(ref)
    assert 'name: type = param(default, "help")' in str(err.value)
    one_error_line(invoke("check-game", ref), "has no default" if where == "first" else "follows default")


def test_a_failed_load_leaves_no_module_and_the_fixed_file_then_loads(crowd):
    broken = crowd.parent / "later.py"
    broken.write_text("raise ImportError('not yet')\n")
    before = set(sys.modules)
    with pytest.raises(GameError, match="ImportError: not yet"):
        game_class(f"{broken}:Crowd")
    assert set(sys.modules) == before
    shutil.copy(crowd, broken)
    assert game_class(f"{broken}:Crowd").name == "crowd"


def test_a_class_mfax_cannot_import_again_has_no_reference():
    namespace = {"__name__": "__main__"}
    exec(EXAMPLE.read_text(), namespace)  # as a script or a notebook cell defines it
    with pytest.raises(GameError, match=r"Crowd is defined in __main__ .* name it path/to/file\.py:Crowd"):
        game_reference(namespace["Crowd"])


def test_a_colon_in_a_folders_name_is_part_of_the_path(crowd, tmp_path):
    """Refusing every reference with two ':' refused a game file in a folder named with a
    time of day (runs/2026-12-06T05:50/crowd.py:Crowd), and runs trained there."""
    folder = tmp_path / "2026-12-06T05:50"
    folder.mkdir()
    copy = Path(shutil.copy(crowd, folder / "crowd.py"))
    assert make(f"{copy}:Crowd", n_sites=6).n_states == 6


def test_bad_solver_references_are_one_line(package):
    with pytest.raises(GameError, match=r"'crowdpkg\.solvers:not_a_spec' is an object of type int, not a solver"):
        solver_spec("crowdpkg.solvers:not_a_spec")
    with pytest.raises(GameError, match="unknown algorithm 'nope'; allowed: spg, "):
        solver_spec("nope")


def test_list_shows_one_file_game_with_its_parameters(crowd):
    text = invoke("list", f"{crowd}:Crowd").output
    assert "crowd_aversion *" in text and "sites on the ring" in text
    games = json.loads(invoke("list", f"{crowd}:Crowd", "--json").output)["games"]
    first = games[f"{crowd}:Crowd"][0]
    assert (first["name"], first["default"], first["traced"]) == ("n_sites", 5, False)


def test_a_file_game_trains_evaluates_and_plots_from_the_cli(crowd, tmp_path):
    ref, run = f"{crowd}:Crowd", tmp_path / "run"
    trained = invoke("train", "--game", ref, "--set", "crowd_aversion=1,3", "--out", run, *TRAIN, "--json")
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout)
    finals = summary["final_exploitability_per_run"]
    assert summary["iterations"] == 2 and summary["runs"] == 2 and finals[0] != finals[1]  # one run per value
    config = json.loads((run / "config.json").read_text())
    assert config["game"] == ref and config["params"] == {"crowd_aversion": [1.0, 3.0]}
    import hashlib

    from mfax.games.plugins import code_digest

    code = json.loads((run / "code.json").read_text())
    digest = hashlib.sha256(crowd.read_bytes()).hexdigest()
    assert code["game"] == {"reference": ref, "sha256": digest, "code_sha256": code_digest(crowd), "imports": {}}
    assert len(code["game"]["code_sha256"]) == 64
    assert code["trained_on"]["game"] == ref and "algo" not in code  # what the run was created with
    evaluated = invoke("eval", run, "--game", ref, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads(evaluated.stdout)
    assert record["game"] == "crowd" and record["exploitability"] == pytest.approx(min(finals))  # the best run
    # a fixed policy on the file game, with --set
    fixed = invoke("eval", "--game", ref, "--policy", "action:1", "--set", "n_sites=6", "--json")
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["params"] == {"n_sites": 6}


def test_the_done_line_of_a_file_games_learning_rates_names_the_lowest(crowd, tmp_path):
    """The line read the run's config without the consent the command was given, so for
    a game given as a file it left out the lowest run (a review)."""
    flags = ["--algo", "spg", "--lr", "0.001,0.03", "--iterations", "1", "--eval-every", "1", "--hp", "mlp_width=8"]
    result = invoke("train", "--game", f"{crowd}:Crowd", "--out", tmp_path / "run", *flags, *QUIET)
    assert result.exit_code == 0, result.output
    assert "; the lowest, run " in result.output and " of 2: " in result.output


def _trained(crowd: Path, run: Path, *extra: str) -> None:
    result = invoke("train", "--game", f"{crowd}:Crowd", "--out", run, *TRAIN, *extra)
    assert result.exit_code == 0, result.output


def test_a_run_never_imports_the_code_it_names_without_consent(crowd, tmp_path, monkeypatch):
    """A received run: eval, plot and --resume refuse to import its game file until the
    reader names the game again (a copy elsewhere will do) or passes --trust-code."""
    run = tmp_path / "run"
    _trained(crowd, run)
    imported = []
    from mfax.games import plugins

    real_load = plugins._load_file
    monkeypatch.setattr(plugins, "_load_file", lambda *a: imported.append(a) or real_load(*a))
    for command in (["eval", run], ["plot", run], ["train", "--resume", run, *QUIET]):
        one_error_line(invoke(*command), f"names game code '{crowd}:Crowd', which mfax imports (runs) only if")
    assert imported == []
    copy = Path(shutil.copy(crowd, tmp_path / "copy.py"))
    for command in (["eval", run, "--game", "sis"], ["plot", run, "--game", f"{copy}:Other"]):
        one_error_line(invoke(*command), "does not name this run's game")
    # a typo in the reader's --game is the reader's (it was reported as config.json's)
    typo = one_error_line(invoke("plot", run, "--game", f"{tmp_path / 'cpy.py'}:Crowd"), "error: --game '")
    assert f"Crowd': file '{tmp_path / 'cpy.py'}' not found" in typo and "config.json" not in typo
    with pytest.raises(mfax.GameError, match=r"^game 'sis' does not name this run's game"):  # Python's words
        mfax.load(run, game="sis")
    assert imported == []
    assert invoke("eval", run, "--game", f"{copy}:Crowd").exit_code == 0  # the reader's copy
    moved = crowd.rename(crowd.parent / "moved.py")  # the file gone from where the run found it: say what to do
    one_error_line(invoke("eval", run, "--trust-code"), f"file '{crowd}' not found; name the game's file where it is")
    moved.rename(crowd)
    assert invoke("plot", run, "--trust-code").exit_code == 0
    assert (run / "plots" / "policy.png").is_file()
    resumed = invoke("train", "--resume", run, "--game", f"{crowd}:Crowd", "--iterations", "3", *QUIET)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run / "summary.json").read_text())["iterations"] == 3
    assert {Path(a[0]) for a in imported} == {copy, crowd}  # what the reader named, nothing else


def test_a_changed_game_file_is_named_in_a_warning(crowd, tmp_path):
    run = tmp_path / "run"
    _trained(crowd, run)
    crowd.write_text(crowd.read_text() + "EDITED = 1\n")
    result = invoke("eval", run, "--trust-code")
    assert result.exit_code == 0
    assert f"mfax: warning: '{crowd}' is not the file the run was trained with" in result.stderr
    # a resume would train on other code than the run's first iterations: refused, nothing touched
    before = (run / "metrics.jsonl").read_text(), (run / "code.json").read_text()
    line = one_error_line(invoke("train", "--resume", run, "--trust-code", "--iterations", "8", *QUIET), "resuming")
    assert "is not the file the run was trained with" in line and "restore the file or start a new run" in line
    assert ((run / "metrics.jsonl").read_text(), (run / "code.json").read_text()) == before
    (run / "code.json").write_text('{"game": ')  # torn
    one_error_line(invoke("eval", run, "--trust-code"), "code.json' is corrupt")


def test_an_edit_of_comments_layout_or_docstrings_only_is_no_change_of_code(crowd, tmp_path, monkeypatch):
    """Any byte changed in the game file (a comment fixed) refused --resume, with no way
    on but restoring the file. code.json now also records the sha256 of the code itself
    (its syntax tree, without comments, layout and docstrings): a file that differs only
    there is the same code, read and resumed without a word, and code.json then records
    the file as it is; an edit of a statement, a string or a number is still refused."""
    folder = crowd.parent
    (folder / "crowd_helper.py").write_text('"""Helper."""\nSCALE = 1.0\n')
    crowd.write_text(crowd.read_text() + "import crowd_helper  # noqa\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "crowd_helper", raising=False)
    run = tmp_path / "run"
    _trained(crowd, run)
    from mfax.games.plugins import FILE_MODULE_PREFIX, code_digest

    def as_a_new_process():
        for name in [m for m in sys.modules if m.startswith((FILE_MODULE_PREFIX, "crowd_helper"))]:
            monkeypatch.delitem(sys.modules, name)

    original = crowd.read_text()
    assert '"""' in original and "    def reward(" in original
    reformatted = (
        "# a comment at the top\n\n"
        + original.replace('"""', '"""Docstring edited. ', 1).replace("    def reward(", "    # why\n\n    def reward(")
        + "\n\n# and one at the end\n"
    )
    crowd.write_text(reformatted)
    (folder / "crowd_helper.py").write_text('"""Helper, reworded."""\n\nSCALE = 1.0  # the scale\n')
    assert code_digest(crowd) == json.loads((run / "code.json").read_text())["game"]["code_sha256"]
    as_a_new_process()
    read = invoke("eval", run, "--trust-code")
    assert read.exit_code == 0 and read.stderr == "", read.output
    as_a_new_process()
    resumed = invoke("train", "--resume", run, "--trust-code", "--iterations", "8", *QUIET)
    assert resumed.exit_code == 0 and resumed.stderr == "", resumed.output
    record = json.loads((run / "code.json").read_text())["game"]
    import hashlib

    assert record["sha256"] == hashlib.sha256(crowd.read_bytes()).hexdigest()  # the file as it is now
    assert (
        record["imports"]["crowd_helper"]["sha256"]
        == hashlib.sha256((folder / "crowd_helper.py").read_bytes()).hexdigest()
    )
    # a changed number, a changed string (not a docstring), a statement: other code
    for edit in (
        ("SCALE = 1.0", "SCALE = 1.5", folder / "crowd_helper.py"),
        ("SCALE = 1.0", "SCALE = 1.0\nNAME = 'x'", folder / "crowd_helper.py"),
        ("# and one at the end", "OTHER = 1", crowd),
    ):
        old, new, file = edit
        before = file.read_text()
        file.write_text(before.replace(old, new))
        as_a_new_process()
        line = one_error_line(invoke("train", "--resume", run, "--trust-code", "--iterations", "10", *QUIET), "resum")
        assert f"'{file}'" in line and "is not the file the run was trained with" in line
        file.write_text(before)


def test_the_users_modules_a_game_file_imports_are_recorded_and_their_edits_seen(crowd, tmp_path, monkeypatch):
    """A helper module beside the game file (on PYTHONPATH), and one the helper imports:
    code.json records their sha256 (it recorded the game file's only, so an edit of a
    helper went unseen and a resume trained on other code); numpy, jax and mfax are not
    the user's and are not recorded. A helper is compared where the run found it, beside
    the game's file (beside the copy of a copied project), not wherever ``sys.path``
    finds a module of its name first."""
    folder = crowd.parent
    (folder / "crowd_helper.py").write_text("import numpy\nfrom crowd_costs import MOVE\nSCALE = 1.0\n")
    (folder / "crowd_costs.py").write_text("MOVE = 0.1\n")
    crowd.write_text(crowd.read_text() + "import crowd_helper  # noqa\nfrom crowd_helper import SCALE  # noqa\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "crowd_helper", raising=False)
    monkeypatch.delitem(sys.modules, "crowd_costs", raising=False)
    run = tmp_path / "run"
    _trained(crowd, run)
    import hashlib

    helper = folder / "crowd_costs.py"
    from mfax.games.plugins import code_digest

    assert json.loads((run / "code.json").read_text())["game"]["imports"] == {
        name: {
            "file": f"{name}.py",
            "sha256": hashlib.sha256((folder / f"{name}.py").read_bytes()).hexdigest(),
            "code_sha256": code_digest(folder / f"{name}.py"),
        }
        for name in ("crowd_costs", "crowd_helper")
    }
    assert invoke("eval", run, "--trust-code").stderr == ""  # unchanged: nothing to say
    from mfax.games.plugins import FILE_MODULE_PREFIX

    def as_a_new_process():  # the game and its helpers imported afresh
        for name in [m for m in sys.modules if m.startswith((FILE_MODULE_PREFIX, "crowd_helper", "crowd_costs"))]:
            monkeypatch.delitem(sys.modules, name)

    # another crowd_costs.py first on sys.path is the one the game imports: said (the file
    # beside the game's, unchanged, was compared instead, and a resume went on silently)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "crowd_costs.py").write_text("MOVE = 9.0\n")
    sys.path.insert(0, str(elsewhere))
    try:
        as_a_new_process()
        shadowed = invoke("eval", run, "--trust-code")
        assert f"'{elsewhere / 'crowd_costs.py'}' (module crowd_costs, imported by the code of" in shadowed.stderr
        as_a_new_process()
        one_error_line(invoke("train", "--resume", run, "--trust-code", "--iterations", "3", *QUIET), "resuming")
    finally:
        sys.path.remove(str(elsewhere))
    as_a_new_process()
    ran = tmp_path / "the edited helper ran"
    helper.write_text(f"open({str(ran)!r}, 'w').close()\nMOVE = 0.5\n")
    before = (run / "metrics.jsonl").read_text(), (run / "code.json").read_text()
    line = one_error_line(invoke("train", "--resume", run, "--trust-code", "--iterations", "3", *QUIET), "resuming")
    assert f"'{helper}' (module crowd_costs" in line and "restore the file or start a new run" in line
    assert ((run / "metrics.jsonl").read_text(), (run / "code.json").read_text()) == before
    assert not ran.exists()  # refused before any of the edited code ran
    result = invoke("eval", run, "--trust-code")
    assert result.exit_code == 0
    assert f"mfax: warning: '{helper}' (module crowd_costs, imported by the code of '{crowd}') is not the file" in (
        result.stderr
    )
    # a copy of the project elsewhere, named again, its folder on the path: its own helpers
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    helper.write_text("MOVE = 0.1\n")  # the original restored
    sys.path.insert(0, str(copy))
    try:
        as_a_new_process()
        copied = invoke("eval", run, "--game", f"{copy / 'crowd.py'}:Crowd")
    finally:
        sys.path.remove(str(copy))
    assert f"'{copy / 'crowd_costs.py'}' (module crowd_costs" in copied.stderr and str(helper) not in copied.stderr
    as_a_new_process()
    resumed = invoke("train", "--resume", run, "--trust-code", "--iterations", "3", *QUIET)
    assert resumed.exit_code == 0, resumed.output


def test_a_checkpoint_scored_otherwise_than_when_trained_is_said(crowd, tmp_path, monkeypatch):
    """Code no record covers (a module outside the game's folder, an installed plug-in, mfax
    itself) can change what a run's game is: eval scores the checkpoint again on the run's
    own paths and says when it differs from what metrics.jsonl recorded (it printed the
    new game's figures silently); ``--json`` carries the recorded figures."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "crowd_weights.py").write_text("AVERSION = 1.0\n")
    text = crowd.read_text().replace("-self.crowd_aversion * mu", "-self.crowd_aversion * crowd_weights.AVERSION * mu")
    crowd.write_text(text + "import crowd_weights  # noqa\n")
    monkeypatch.syspath_prepend(str(shared))
    monkeypatch.delitem(sys.modules, "crowd_weights", raising=False)
    run = tmp_path / "run"
    _trained(crowd, run)
    assert json.loads((run / "code.json").read_text())["game"]["imports"] == {}  # (outside the game's folder)
    same = invoke("eval", run, "--trust-code", "--json")
    assert same.exit_code == 0 and "warning" not in same.stderr, same.stderr
    record = json.loads(same.stdout)  # stdout is the JSON object alone (the report on stderr)
    assert record["recorded"]["exploitability"] == pytest.approx(record["exploitability"], rel=1e-6)
    (shared / "crowd_weights.py").write_text("AVERSION = 3.0\n")
    monkeypatch.delitem(sys.modules, "crowd_weights")
    from mfax.games.plugins import FILE_MODULE_PREFIX

    for name in [m for m in sys.modules if m.startswith(FILE_MODULE_PREFIX)]:  # (as a new process reads it)
        monkeypatch.delitem(sys.modules, name)
    changed = invoke("eval", run, "--trust-code", "--json")
    assert changed.exit_code == 0
    assert "mfax: warning: the checkpoint of iteration 2 (run 0) scores policy_return " in changed.stderr
    assert "when it was trained" in changed.stderr and "or mfax changed since" in changed.stderr
    # a resume scores its checkpoint again too: the iterations from here train on another game
    resumed = invoke("train", "--resume", run, "--trust-code", "--iterations", "3", *QUIET)
    assert resumed.exit_code == 0, resumed.output
    assert f"mfax: warning: '{run}': the checkpoint of iteration 2 (run 0) scores policy_return " in resumed.stderr
    assert "the iterations from here train on today's game" in resumed.stderr
    # ... and the run says so in its files, in this and every later session (it was a warning only)
    (noted,) = json.loads((run / "summary.json").read_text())["rescored_differently"]
    assert (noted["iteration"], noted["run"]) == (2, 0) and noted["difference"].startswith("policy_return ")
    again = invoke("train", "--resume", run, "--trust-code", "--iterations", "4", *QUIET)
    assert again.exit_code == 0 and "scores" not in again.stderr, again.output  # (today's game since iteration 2)
    assert json.loads((run / "summary.json").read_text())["rescored_differently"] == [noted]


def test_a_package_games_edited_helpers_refuse_a_resume_before_running(package, tmp_path):
    """A game named as ``crowdpkg.games:Crowd``: finding its file imported the package (ran
    its ``__init__``, edited or not) before any check, and a run read back by the file's
    path (``--game .../games.py:Crowd``) looked for the helpers in the wrong folder and ran
    the edited one before refusing; the helpers' paths are now relative to the folder of
    the game's file, however it is named."""
    pkg = package / "crowdpkg"
    (pkg / "costs.py").write_text("MOVE = 0.1\n")
    source = pkg / "games.py"
    source.write_text(source.read_text() + "from crowdpkg.costs import MOVE  # noqa\n")
    run = tmp_path / "run"
    mfax.solve("crowdpkg.games:Crowd", "fp", iterations=2, eval_every=1, out=run)
    imports = json.loads((run / "code.json").read_text())["game"]["imports"]
    assert imports["crowdpkg"]["file"] == "__init__.py" and imports["crowdpkg.costs"]["file"] == "costs.py"
    ran = tmp_path / "ran"
    for file in ("__init__.py", "costs.py"):
        (pkg / file).write_text(f"open({str(ran / file)!r}, 'w').close()\nMOVE = 0.5\n")
    ran.mkdir()
    for name in [m for m in sys.modules if m == "crowdpkg" or m.startswith("crowdpkg.")]:
        del sys.modules[name]
    for named in (["--trust-code"], ["--game", f"{source}:Crowd"]):
        line = one_error_line(invoke("train", "--resume", run, *named, "--iterations", "3", *QUIET), "resuming")
        assert f"'{pkg / 'costs.py'}' (module crowdpkg.costs" in line and f"'{pkg / '__init__.py'}'" in line
        assert list(ran.iterdir()) == []  # none of the edited code ran


def test_user_imports_reads_import_statements_without_running_them(tmp_path, monkeypatch):
    """Module names resolved without importing (a package's ``__init__`` not run, nested
    folders without one: a namespace package's finder failed on a parent not imported and
    made every later read of the run a traceback); only files in the code's folder or
    below and outside the installed libraries (a virtual environment inside the project)."""
    import site

    from mfax.games.plugins import user_imports

    root = tmp_path / "src"
    pkg = root / "labgames"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('never run')\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "kernels.py").write_text("from ..shared import costs\n")
    (pkg / "rewards.py").write_text("from .sub.kernels import step\n")
    (pkg / "shared").mkdir()  # a namespace package, two levels deep
    (pkg / "shared" / "costs.py").write_text("MOVE = 1\n")
    (root / "ns" / "deep").mkdir(parents=True)
    (root / "ns" / "deep" / "util.py").write_text("import venvlib\n")
    venv = root / ".venv" / "lib" / "site-packages"
    venv.mkdir(parents=True)
    (venv / "venvlib.py").write_text("")
    (pkg / "game.py").write_text(
        "import os, json\nimport jax.numpy as jnp\nimport mfax\nfrom . import rewards\n"
        "import ns.deep.util\n"
        "def late():\n    import helper_not_found\n"
    )
    monkeypatch.syspath_prepend(str(venv))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(venv)])
    found = user_imports(pkg / "game.py", "labgames.game")
    assert found == {
        "labgames": pkg / "__init__.py",
        "labgames.rewards": pkg / "rewards.py",
        "labgames.shared.costs": pkg / "shared" / "costs.py",
        "labgames.sub": pkg / "sub" / "__init__.py",
        "labgames.sub.kernels": pkg / "sub" / "kernels.py",
        "ns.deep.util": root / "ns" / "deep" / "util.py",
    }
    assert not any(name == "labgames" or name.startswith(("labgames.", "ns")) for name in sys.modules)
    # a file loaded on its own: only its folder and below, a relative import has no package
    assert user_imports(pkg / "rewards.py") == {}
    assert user_imports(pkg / "game.py") == {}  # (imports of its package: above its folder)


def test_the_code_digest_of_a_file_python_cannot_print_or_parse_is_none(tmp_path):
    """code_digest reads the file's syntax tree: a file it cannot read, parse or print
    (an integer literal of more than 4300 digits: repr refuses it) gives ``None`` (the
    bytes are compared then), never an exception (training such a game was a
    ValueError traceback); a parse warning (an invalid escape, 3.12+) is not printed."""
    from mfax.games.plugins import code_digest

    cases = {
        "long.py": "BIG = 0x" + "f" * 4000 + "\n",
        "syntax.py": "def (:\n",
        "nul.py": "x = 1\0\n",
        "escape.py": "import re\nPATTERN = re.compile('\\d+')\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert code_digest(tmp_path / "long.py") is None
        assert code_digest(tmp_path / "syntax.py") is None
        assert code_digest(tmp_path / "nul.py") is None
        assert code_digest(tmp_path / "missing.py") is None
        assert code_digest(tmp_path) is None
        assert len(code_digest(tmp_path / "escape.py")) == 64


def test_a_game_file_edited_to_other_sizes_is_named_when_its_checkpoint_no_longer_fits(crowd, tmp_path, monkeypatch):
    """A game file edited to another number of states after training: after the sha256
    warning, the checkpoint's refusal guessed "written by another mfax version?"
    (found by an audit of the plug-in path); it now names the changed file."""
    run = tmp_path / "run"
    _trained(crowd, run)
    # one more site on the ring, every function following: a correct game whose tables no longer fit
    text = crowd.read_text().replace("self.n_sites", "self.n_states")
    assert "        return self.n_states\n" in text
    crowd.write_text(text.replace("        return self.n_states\n", "        return self.n_sites + 1\n"))
    from mfax.games.plugins import FILE_MODULE_PREFIX

    for name in [m for m in sys.modules if m.startswith(FILE_MODULE_PREFIX)]:  # (as a new process reads it)
        monkeypatch.delitem(sys.modules, name)
    result = invoke("eval", run, "--trust-code")
    assert result.exit_code == 2, result.output
    warning, error = [line for line in result.stderr.splitlines() if line.strip()]
    assert warning.startswith(f"mfax: warning: '{crowd}' is not the file the run was trained with")
    assert error.startswith("mfax: error: cannot read checkpoint ") and "another mfax version" not in error
    assert f"('{crowd}' changed since the run was trained: restore it)" in error


def test_a_module_game_run_is_read_back_by_its_file_and_its_edits_are_seen(package, tmp_path):
    """Solved from an imported class (``crowdpkg.games:Crowd``): naming its file reads it
    back (it was 'does not name this run's game'), and the module's source is hashed like
    a file's (it recorded none, so an edit went unseen)."""
    run = tmp_path / "run"
    mfax.solve("crowdpkg.games:Crowd", "fp", iterations=2, eval_every=2, out=run)
    record = json.loads((run / "code.json").read_text())["game"]
    assert record["reference"] == "crowdpkg.games:Crowd" and len(record["sha256"]) == 64
    source = package / "crowdpkg" / "games.py"
    assert invoke("eval", run, "--game", f"{source}:Crowd").exit_code == 0
    one_error_line(invoke("eval", run, "--game", f"{source}:Other"), "does not name this run's game")
    source.write_text(source.read_text() + "EDITED = 1\n")
    edited = invoke("eval", run, "--game", "crowdpkg.games:Crowd")
    assert edited.exit_code == 0 and "is not the file the run was trained with" in edited.stderr


def test_a_solver_file_reference_needs_trust_code_to_be_read_back(package, tmp_path):
    spec_file = tmp_path / "my_solver.py"
    shutil.copy(package / "crowdpkg" / "solvers.py", spec_file)
    run = tmp_path / "run"
    result = invoke("train", "--game", "sis", "--algo", f"{spec_file}:SPEC", "--out", run, *TRAIN[2:])
    assert result.exit_code == 0, result.output
    one_error_line(invoke("eval", run, "--game", "sis"), "names solver code")
    assert invoke("eval", run, "--trust-code").exit_code == 0


def test_trust_code_is_refused_where_nothing_is_read_back(crowd):
    one_error_line(invoke("train", "--game", f"{crowd}:Crowd", "--trust-code", *QUIET), "--trust-code applies to")
    one_error_line(invoke("eval", "--trust-code"), "--trust-code applies to a RUN")


def test_a_config_file_names_a_game_relative_to_itself(crowd, tmp_path):
    config = crowd.parent / "train.toml"
    config.write_text('game = "crowd.py:Crowd"\nalgo = "fp"\n[params]\nmove_cost = 0.5\n')
    loaded = load_file(config)
    assert loaded.game == f"{crowd}:Crowd" and loaded.params == {"move_cost": 0.5}
    run = tmp_path / "run"
    result = invoke("train", "--config", config, "--out", run, "--iterations", "1", *QUIET)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["game"] == f"{crowd}:Crowd"


ENTRY_POINTS = """\
[mfax.games]
crowd = crowdpkg.games:Crowd
broken = crowdpkg.failing:Crowd
sis = crowdpkg.games:Crowd

[mfax.solvers]
fp_plugin = crowdpkg.solvers:SPEC
"""


@pytest.fixture
def installed(package):
    """``crowdpkg`` installed as distribution mfax-crowd 0.3 declaring plug-ins."""
    info = package / "mfax_crowd-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mfax-crowd\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return package


def test_installed_plug_ins_are_listed_beside_the_built_ins_and_a_broken_one_is_one_line(installed):
    listed = json.loads(invoke("list", "--json").output)
    assert listed["plugins"] == {
        "games": {"crowd": "plug-in of mfax-crowd 0.3", "broken": "plug-in of mfax-crowd 0.3"},
        "solvers": {"fp_plugin": "plug-in of mfax-crowd 0.3"},
    }
    assert {"sis", "crowd"} <= set(listed["games"]) and "broken" not in listed["games"]
    assert listed["games"]["crowd"][0]["name"] == "n_sites" and "fp_plugin" in listed["solvers"]
    broken = listed["broken"]["games"]["broken"]
    assert "\n" not in broken and "cannot be loaded: RuntimeError: no licence server" in broken
    text = invoke("list").output
    assert "  crowd  [plug-in of mfax-crowd 0.3]" in text and "fictitious play, from a plug-in" in text
    assert "  broken  BROKEN: game 'broken' (plug-in of mfax-crowd 0.3, crowdpkg.failing:Crowd)" in text
    assert game_class("sis") is SIS  # a built-in name is never shadowed
    # ... and the plug-in under it is named as unused (it was left out without a word)
    assert listed["shadowed"] == {"games": {"sis": "plug-in of mfax-crowd 0.3, crowdpkg.games:Crowd"}, "solvers": {}}
    assert "  sis  SHADOWED: the game plug-in 'sis' (plug-in of mfax-crowd 0.3, crowdpkg.games:Crowd) has" in text


def test_a_name_two_installed_plug_ins_declare_differently_is_refused(installed):
    """Two installed packages declaring one game name: the first found won, silently, so
    a run evaluated with the other package's code after the path's order changed
    (found by an audit of the plug-in path)."""
    info = installed / "mfax_rival-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mfax-rival\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mfax.games]\ncrowd = crowdpkg.failing:Crowd\nbroken = crowdpkg.failing:Crowd\n"
    )
    with pytest.raises(GameError, match=r"^game 'crowd' is declared by 2 installed plug-ins that differ \(plug-in of "):
        game_class("crowd")
    with pytest.raises(GameError, match="no licence server"):  # the same declaration twice: not ambiguous
        game_class("broken")
    one_error_line(invoke("train", "--game", "crowd", *QUIET), "name the one you mean by its reference")


def test_a_plug_in_game_and_solver_train_and_are_read_back_without_consent(installed, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", "--game", "crowd", "--algo", "fp_plugin", "--out", run, *TRAIN[2:])
    assert result.exit_code == 0, result.output
    code = json.loads((run / "code.json").read_text())
    assert set(code) == {"trained_on"}  # installed code: nothing to consent to
    assert invoke("eval", run).exit_code == 0
    # the plug-ins' versions are recorded, and another version is named on eval and resume
    # (a new version was advised when a plug-in's code changes, and recorded nowhere; a review)
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["game plug-in"] == provenance["solver plug-in"] == "mfax-crowd 0.3"
    info = installed / "mfax_crowd-0.3.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mfax-crowd\nVersion: 0.4\n")
    info.rename(installed / "mfax_crowd-0.4.dist-info")
    evaluated = invoke("eval", run)
    said = "was produced under another setup: game plug-in mfax-crowd 0.3 -> mfax-crowd 0.4; solver plug-in"
    assert evaluated.exit_code == 0 and said in evaluated.stderr, evaluated.stderr
    resumed = invoke("train", "--resume", run, "--iterations", "3", *QUIET)
    assert resumed.exit_code == 0 and "game plug-in mfax-crowd 0.3 -> mfax-crowd 0.4" in resumed.stderr, resumed.output
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["resumed"][-1]["solver plug-in"] == "mfax-crowd 0.4"
    one_error_line(invoke("train", "--game", "broken", "--out", tmp_path / "b", *QUIET), "no licence server")


def test_a_file_game_is_solved_from_python_by_reference_and_by_instance(crowd, tmp_path):
    """``mfax.solve`` takes a file game by its reference or as an instance of its class;
    the run it writes records the reference, and ``mfax.load`` reads it back only with
    the reader's consent."""
    ref = f"{crowd}:Crowd"
    by_ref = mfax.solve(ref, "fp", iterations=3, eval_every=3, crowd_aversion=2.0)
    assert by_ref.config.game == ref and by_ref.config.params == {"crowd_aversion": 2.0}
    assert by_ref.history["exploitability"][-1] < by_ref.history["exploitability"][0]
    game = mfax.make(ref, crowd_aversion=2.0)
    out = tmp_path / "solved"
    by_instance = mfax.solve(game, "fp", iterations=3, eval_every=3, out=out)
    assert by_instance.config.game == ref and by_instance.config.params == {"crowd_aversion": 2.0}
    assert by_instance.exploitability == pytest.approx(by_ref.exploitability, rel=1e-6)
    with pytest.raises(GameError, match=r"mfax.load\(\.\.\., game=REF\)"):
        mfax.load(out)
    assert mfax.load(out, game=ref).exploitability == pytest.approx(by_ref.exploitability, rel=1e-6)


class _NotAGame:
    pass


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (SIS(), "game 'SIS\\(.*\\)' is an instance of SIS, not a game class; give the class"),
        (_NotAGame, "game '_NotAGame' is class _NotAGame, not a game \\(a subclass of mfax.games.Game\\)"),
        (3, "game '3' is a int, not a game"),
        (mfax.games.NoCommonNoise, "game 'NoCommonNoise' is abstract: it does not define"),
    ],
)
def test_register_refuses_what_is_not_a_concrete_game_class_in_one_line(obj, message):
    """``register`` took anything; ``make`` or ``solve`` then failed with a raw
    ``AttributeError``/``TypeError``."""
    with pytest.raises(GameError, match=message) as err:
        mfax.register(obj)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", [5, None, ["sis"]])
def test_a_game_name_that_is_not_a_string_is_one_line(name):
    with pytest.raises(GameError, match=r"game must be a name or a reference string, got .*; allowed: beach_bar"):
        make(name)


class _Unnamed(mfax.games.NoCommonNoise):
    """Two places, stay or switch; no name (abstract): the tests below name it."""

    n_states: ClassVar[int] = 2
    n_actions: ClassVar[int] = 2
    horizon: ClassVar[int] = 2
    gamma: ClassVar[float] = 1.0

    def state_features(self):
        return jnp.array([[0.0], [1.0]])

    def action_values(self):
        return jnp.array([0.0, 1.0])

    def initial_mean_field(self, noise):
        return jnp.array([0.5, 0.5])

    def kernel(self, mu, noise, t):
        return mfax.games.deterministic_kernel(jnp.array([[0, 1], [1, 0]]))

    def reward(self, mu, mu_next, noise, t):
        return -mu_next[:, None] * jnp.ones((2, 2))

    def observation(self, mu, noise, t):
        return mu


@pytest.mark.parametrize("name", [5, "", " sis2", "sis2 ", "a:b", "x.py", "path/to", "--set", "a\nb", "-x"])
def test_register_refuses_a_name_that_cannot_name_it(name):
    """A game class named 5 was registered, after which every look-up (``game_names``,
    ``make("beach_bar")``) failed with a raw TypeError (the names are sorted); ``'a:b'``,
    ``'x.py'`` or ``' sis2'`` were accepted, names that read as code or another game."""
    named = type("Named", (_Unnamed,), {"name": name})
    with pytest.raises(GameError, match="a game's name must be letters, digits") as err:
        mfax.register(named)
    assert "\n" not in str(err.value)
    assert make("sis").n_states == 2 and "sis" in mfax.game_names()


def test_register_solver_refuses_a_name_that_cannot_name_it():
    from mfax.solvers.base import SolverSpec, register_solver

    with pytest.raises(GameError, match="a solver's name must be letters"):
        register_solver(SolverSpec("my solver", "a solver with a space in its name", lambda *a: None))


def test_register_takes_dots_and_dashes_in_a_name():
    mfax.register(type("Named", (_Unnamed,), {"name": "lab.two-places"}))
    assert make("lab.two-places").n_states == 2 and "lab.two-places" in mfax.game_names()


def test_a_solver_that_breaks_its_protocol_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    """A solver from outside mfax is traced once before training: a state without an
    iteration, a step that changes a shape or a dtype, returns a tuple for its Metrics or
    a vector figure, branches in Python on a traced value, a build that fails or returns
    no solver, a policy that is a bare array. Each was a traceback of 60 to 100 lines,
    several after the run's first files (a finished-looking run of 0 iterations, which
    the same command then refused to train into; a review)."""
    from typing import NamedTuple

    import equinox as eqx
    import jax

    from mfax.policies import Tabular
    from mfax.solvers import base
    from mfax.solvers.base import Metrics, Solver, SolverSpec, register_solver

    base._import_builtins()  # (registered in the process's registry, not in this test's copy)
    monkeypatch.setattr(base, "_SOLVERS", dict(base._SOLVERS))  # (this test's registrations go with it)

    class State(NamedTuple):
        probs: jax.Array
        iteration: jax.Array

    class Broken(Solver):
        game: object
        mode: str = eqx.field(static=True)

        def init(self, key, lr):
            probs = jnp.full((self.game.horizon, self.game.n_states, self.game.n_actions), 1.0 / self.game.n_actions)
            if self.mode == "keyed":  # a random start, from a solver declared deterministic
                probs = jax.nn.softmax(jax.random.normal(key, probs.shape), axis=-1)
            return (probs,) if self.mode == "no_iteration" else State(probs, jnp.int32(0))

        def step(self, state):
            nan = jnp.full((), jnp.nan)
            probs, iteration = state.probs, state.iteration + 1
            figure = jnp.sum(probs)
            if self.mode == "shape":
                probs = jnp.concatenate([probs, probs], axis=1)
            if self.mode == "dtype":
                iteration = iteration.astype(jnp.float32)
            if self.mode == "python_if" and figure > 0:
                pass
            if self.mode == "tuple":
                return State(probs, iteration), (figure, figure)
            figures = jnp.full(3, figure) if self.mode == "vector" else figure
            return State(probs, iteration), Metrics(figures, figure, figure, nan, nan, nan, jnp.bool_(True))

        def policy(self, state):
            return state.probs if self.mode == "array_policy" else Tabular(state.probs)

    cases = {
        "no_iteration": "init(key, lr) returned a tuple without an 'iteration' field",
        "shape": "step(state) changes the state's .probs from float32[2, 4, 3] to float32[2, 8, 3]",
        "dtype": "step(state) changes the state's .iteration from int32[] to float32[]",
        "python_if": "step(state) traced by jax.jit failed: TracerBoolConversionError",
        "tuple": "step(state) must return (state, mfax.solvers.base.Metrics), got tuple",
        "vector": "step(state)'s Metrics.policy_return has shape (3,); each figure is one scalar",
        "array_policy": "policy(state) returned ArrayImpl, not a mfax.policies.Policy",
        "keyed": "init(key, lr) depends on the key, but its SolverSpec says seeded=False",
        "ok": None,
    }
    builds = {f"broken_{mode}": lambda game, hp, setting, mode=mode: Broken(game, mode) for mode in cases}
    builds["broken_raises"] = lambda game, hp, setting: 1 / 0
    builds["broken_none"] = lambda game, hp, setting: None
    cases |= {
        "raises": "build(game, hparams, setting) failed: ZeroDivisionError: division by zero",
        "none": "build(game, hparams, setting) returned NoneType, not a mfax.solvers.Solver",
    }
    for name, build in builds.items():
        register_solver(SolverSpec(name, "a broken solver", build, None, uses_lr=False, seeded=False))
        expected, out = cases[name.removeprefix("broken_")], tmp_path / name
        game = "mfglib.rock_paper_scissors"
        if expected is None:  # the same solver, unbroken, trains
            assert mfax.solve(game, name, iterations=2, out=out).iterations == 2
            continue
        with pytest.raises(GameError) as err:
            mfax.solve(game, name, iterations=2, out=out)
        assert f"solver {name!r}: {expected}" in str(err.value) and "\n" not in str(err.value), err.value
        assert not out.exists() or not any(p.name != "mfax.lock" for p in out.iterdir()), sorted(out.iterdir())
    with pytest.raises(GameError, match="'fp' is built into mfax; register yours under another name"):
        register_solver(SolverSpec("fp", "a user's solver under a built-in name", builds["broken_ok"]))


def test_a_run_of_a_solver_registered_in_python_is_read_where_it_is_registered(tmp_path, monkeypatch):
    """A run records its solver by name: one registered with ``register_solver`` is read
    back where it is registered again; elsewhere the error said only "unknown algorithm",
    as if the run were damaged (a review)."""
    from mfax.solvers import base

    fp = solver_spec("fp")
    base._import_builtins()  # (registered in the process's registry, not in this test's copy)
    monkeypatch.setattr(base, "_SOLVERS", dict(base._SOLVERS))  # (this test's registrations go with it)
    mine = base.register_solver(base.SolverSpec("lab_fp", "FP, registered here", fp.build, fp.hparams, False, False))
    out = tmp_path / "run"
    mfax.solve("sis", "lab_fp", iterations=1, common_noise=False, out=out)
    assert mfax.load(out).config.algo == "lab_fp"
    monkeypatch.delitem(base._SOLVERS, "lab_fp")  # another process, which has not registered it
    with pytest.raises(GameError) as err:
        mfax.load(out)
    assert str(err.value).startswith(
        f"run {str(out)!r} was trained with solver 'lab_fp', which is not known to this process: a solver registered "
        "with mfax.solvers.register_solver is known where it is registered; register it again"
    )
    result = runner.invoke(app, ["eval", str(out)])
    one_error_line(result, "was trained with solver 'lab_fp', which is not known to this process")
    base.register_solver(mine)
    assert mfax.load(out).iterations == 1


def test_a_whole_number_default_of_a_float_parameter_takes_fractions():
    """``damping: float = param(1, ...)`` refused ``--hp damping=0.5`` as "must be int": the
    type came from the default alone (a review, writing a solver)."""
    import equinox as eqx

    from mfax.params import build, param, parse_text

    class Declared(eqx.Module):
        damping: float = param(1, "a float declared with a whole-number default")
        count: int = param(2, "an int")

    assert build(Declared, "solver 'mine'", damping=0.5).damping == 0.5
    assert parse_text(Declared, "solver 'mine'", "damping", "0.25") == 0.25
    with pytest.raises(GameError, match=r"parameter 'count' of solver 'mine' must be int, got 0\.5"):
        build(Declared, "solver 'mine'", count=0.5)


def test_a_games_own_plain_refusal_or_defect_is_one_line_naming_where(crowd):
    """A ``raise ValueError(...)`` in a game's ``__check_init__`` (not mfax's ``check``)
    printed the whole traceback (a review, writing a game from the docs); now one line
    with the values given, the exception and where it was raised. A defect there is
    named the same way."""
    text = crowd.read_text()
    anchor = "    def __check_init__(self):\n"
    refusal = (
        "        if self.move_cost > 1:\n"
        "            raise ValueError(f'move_cost must be <= 1, got {self.move_cost}')\n"
    )
    (crowd.parent / "plain.py").write_text(text.replace(anchor, anchor + refusal))
    (crowd.parent / "defect.py").write_text(text.replace(anchor, anchor + "        self.no_such_field.sum()\n"))
    line = text[: text.index(anchor)].count("\n") + 3  # (the raise, below the def and the if)
    ref = f"{crowd.parent}/plain.py:Crowd"
    said = (
        r"game '.*plain\.py:Crowd' with move_cost=2\.0 could not be made: ValueError: move_cost must be <= 1, "
        rf"got 2\.0 \(plain\.py, line {line}\)$"
    )
    with pytest.raises(GameError, match=said):
        make(ref, move_cost=2.0)
    command = invoke("eval", "--game", ref, "--set", "move_cost=2", "--policy", "uniform")
    one_error_line(command, "ValueError: move_cost")
    assert make(ref, move_cost=0.5).move_cost == 0.5
    defect = r"could not be made: AttributeError: .*no_such_field.* \(defect\.py, line \d+\)$"
    with pytest.raises(GameError, match=defect):
        make(f"{crowd.parent}/defect.py:Crowd")
