"""Solving from Python: mfax.solve, Result, mfax.load, the compilation cache's settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

import mfax
from conftest import TINY_NETWORK, slow
from mfax.evaluation.exploitability import evaluate
from mfax.games import BeachBar
from mfax.run.api import config_of
from mfax.run.cache import cache_dir, enable_compilation_cache
from mfax.run.cli import app
from mfax.run.rundir import RunDir
from test_validation import SISDelegate

runner = CliRunner()
SMALL_GAME = {"num_states": 10, "horizon": 6}
HPARAMS = {"spg": TINY_NETWORK, "ippo": {**TINY_NETWORK, "num_envs": 4}, "momd": {"num_agents": 8}}


@pytest.mark.parametrize("algo", ["fp", slow("omd"), slow("spg"), slow("ippo"), slow("momd")])
def test_solve_returns_a_consistent_result(algo):
    result = mfax.solve("beach_bar", algo, iterations=3, eval_every=2, hp=HPARAMS.get(algo), **SMALL_GAME)
    h = result.history
    assert set(h) >= {"iteration", "run", "exploitability", "policy_return", "wall_clock_s"}
    assert list(h["iteration"]) == [0, 2, 3] and list(h["run"]) == [0, 0, 0]
    assert all(len(v) == 3 for v in h.values())
    assert result.iterations == 3 and result.stop_reason == "iterations"
    assert result.exploitability == pytest.approx(h["exploitability"][-1])
    assert result.policy_return == pytest.approx(h["policy_return"][-1])
    assert np.isfinite(result.seconds) and result.seconds >= 0
    # the policy is mfax's: scoring it again on the evaluation paths gives the final figure
    again = evaluate(result.game, result.policy, result.eval_noise)
    assert again.exploitability == pytest.approx(result.exploitability, rel=1e-5, abs=1e-6)
    mu = result.mean_field
    assert mu.shape == (result.eval_noise.num_paths, result.game.horizon + 1, 10)
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-5)


def test_solve_takes_a_game_instance_and_records_its_parameters():
    game = mfax.make("beach_bar", **SMALL_GAME)
    result = mfax.solve(game, "fp", iterations=1)
    assert result.config.game == "beach_bar" and result.config.params == SMALL_GAME
    assert result.game.n_states == 10


class NotebookSIS(SISDelegate):
    """A game class as a notebook defines it: in module ``__main__``."""

    __module__ = "__main__"
    name: ClassVar[str] = "notebook_sis"


def test_a_notebook_game_class_is_solved_saved_and_loaded_back_with_the_class(tmp_path, monkeypatch):
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "NotebookSIS", NotebookSIS, raising=False)
    result = mfax.solve(NotebookSIS(), "fp", iterations=1, out=tmp_path / "run")
    assert result.config.game == "__main__:NotebookSIS" and result.game == NotebookSIS()
    with pytest.raises(mfax.GameError, match="names game code '__main__:NotebookSIS'"):
        mfax.load(tmp_path / "run")  # code is imported only when named again
    again = mfax.load(tmp_path / "run", game=NotebookSIS)
    np.testing.assert_array_equal(again.history["exploitability"], result.history["exploitability"])
    monkeypatch.delattr(main, "NotebookSIS")  # another process: its __main__ has no such class
    with pytest.raises(mfax.GameError, match="defined in a script or notebook, not in this process; name the file"):
        mfax.load(tmp_path / "run", trust_code=True)


@pytest.mark.parametrize("target", ["50%", mfax.Relative(0.5), "absolute"])
def test_target_exploitability_stops_at_the_first_evaluation_below_it(target):
    kwargs = dict(iterations=60, eval_every=1, **SMALL_GAME)
    if target == "absolute":
        full = mfax.solve("beach_bar", "fp", **kwargs).history["exploitability"]
        target = float(full[0] / 3)
    result = mfax.solve("beach_bar", "fp", target_exploitability=target, **kwargs)
    ex = result.history["exploitability"]
    limit = target if isinstance(target, float) else 0.5 * ex[0]
    assert result.stop_reason == "target"
    assert ex[-1] <= limit < ex[-2] and result.iterations == len(ex) - 1 < 60


def test_callback_sees_every_evaluation_and_can_stop():
    seen = []

    def callback(record):
        seen.append(record)
        return record["iteration"] >= 2

    result = mfax.solve("beach_bar", "fp", iterations=10, eval_every=1, callback=callback, **SMALL_GAME)
    assert [r["iteration"] for r in seen] == [0, 1, 2]
    assert result.stop_reason == "callback" and result.iterations == 2
    assert [r["exploitability"] for r in seen] == pytest.approx(list(result.history["exploitability"]))
    assert all(len(r["rows"]) == 1 and r["seconds"] >= 0 for r in seen)


def test_time_budget_stops_at_the_first_evaluation_past_it():
    result = mfax.solve("beach_bar", "fp", iterations=10, time_budget=1e-9, **SMALL_GAME)
    assert result.stop_reason == "time_budget" and result.iterations == 0


def test_out_writes_the_run_directory_that_load_eval_plot_and_resume_read(tmp_path):
    out = tmp_path / "run"
    result = mfax.solve(
        "beach_bar", "fp", iterations=20, eval_every=2, target_exploitability="50%", out=out, **SMALL_GAME
    )
    assert result.stop_reason == "target" and result.iterations < 20
    assert RunDir(out).is_run() and (out / "checkpoint.eqx").is_file()
    loaded = mfax.load(out)
    assert loaded.stop_reason == "target" and loaded.iterations == result.iterations
    for column in result.history:
        np.testing.assert_array_equal(loaded.history[column], result.history[column])
    got = runner.invoke(app, ["eval", str(out), "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["exploitability"] == pytest.approx(result.exploitability)
    got = runner.invoke(app, ["plot", str(out)])
    assert got.exit_code == 0, got.output
    assert {p.name for p in (out / "plots").iterdir()} == {"exploitability.png", "mean_field.png", "policy.png"}
    # the stopped run is resumable by the command line to its planned iterations
    got = runner.invoke(app, ["train", "--resume", str(out), "--no-progress", "--no-plots"])
    assert got.exit_code == 0, got.output
    assert mfax.load(out).iterations == 20


def test_resume_continues_a_stopped_run_as_if_it_had_not_stopped(tmp_path):
    """A notebook had no way to continue a run but `mfax train --resume` (a review)."""
    whole = mfax.solve("beach_bar", "omd", iterations=8, eval_every=2, **SMALL_GAME)
    out = tmp_path / "run"
    stop = lambda record: record["iteration"] >= 4  # noqa: E731
    cut = mfax.solve("beach_bar", "omd", iterations=8, eval_every=2, callback=stop, out=out, **SMALL_GAME)
    assert (cut.stop_reason, cut.iterations) == ("callback", 4)
    back = mfax.resume(out)
    assert (back.stop_reason, back.iterations) == ("iterations", 8)
    for column in ("iteration", "exploitability", "exploitability_info", "policy_return"):
        np.testing.assert_array_equal(back.history[column], whole.history[column])
    assert mfax.load(out).exploitability == back.exploitability == whole.exploitability
    longer = mfax.resume(out, iterations=10)  # a new total
    assert (longer.stop_reason, longer.iterations, longer.config.iterations) == ("iterations", 10, 10)
    met = mfax.resume(out, iterations=16, target_exploitability=1e9)  # (met at this call's first evaluation)
    assert (met.stop_reason, met.iterations, met.config.iterations) == ("target", 12, 16)
    with pytest.raises(mfax.GameError, match="is not a run directory"):
        mfax.resume(tmp_path / "nothing")
    with pytest.raises(mfax.GameError, match=r"^iterations must be a whole number >= 1, got 0$"):
        mfax.resume(out, iterations=0)


def test_save_and_load_give_the_result_back(tmp_path):
    result = mfax.solve("beach_bar", "fp", iterations=4, eval_every=2, **SMALL_GAME)
    assert list(tmp_path.iterdir()) == []
    saved = result.save(tmp_path / "saved")
    back = mfax.load(saved)
    assert back.summary == result.summary and back.config == result.config
    for column in result.history:
        np.testing.assert_array_equal(back.history[column], result.history[column])
    np.testing.assert_array_equal(back.mean_field, result.mean_field)
    assert mfax.load(saved, np.int64(4)).iterations == 4  # the last iteration by number (numpy's was refused)
    # the checkpoint held, beside the run's total: load(dir, K) gave only the total (a review)
    best = mfax.load(saved, "best")
    assert (best.iteration, best.iterations) == (best.summary["best_iteration"], 4) and back.iteration == 4
    assert best.exploitability == min(result.history["exploitability"])
    with pytest.raises(mfax.GameError, match=r"available: .*a run trained by `mfax train --keep N` keeps the N"):
        mfax.load(saved, 3)  # Python's words: solve has no keep
    holds = r"already holds a run; resume it \(mfax.resume\), replace it \(overwrite=True\) or write elsewhere$"
    with pytest.raises(mfax.GameError, match=holds):
        result.save(saved)
    result.save(saved, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(mfax.GameError, match="not an mfax run"):
        result.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_a_save_over_a_run_that_fails_part_way_leaves_the_old_run(tmp_path, monkeypatch):
    """Result.save(overwrite=True) deleted the old run's files before writing the new
    ones: a full disk part-way lost both (found in a review)."""
    from mfax.run import rundir as rundir_module

    old = mfax.solve("sis", "fp", iterations=1, common_noise=False).save(tmp_path / "run")
    before = {str(p.relative_to(old)): p.read_bytes() for p in old.rglob("*") if p.is_file() and p.name != "mfax.lock"}
    result = mfax.solve("sis", "omd", iterations=2, common_noise=False)
    real, written = rundir_module._replace_with, []

    def full_disk(path, data):
        written.append(path)
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(rundir_module, "_replace_with", full_disk)
    with pytest.raises(OSError, match="No space left"):
        result.save(old, overwrite=True)
    monkeypatch.undo()
    after = {str(p.relative_to(old)): p.read_bytes() for p in old.rglob("*") if p.is_file() and p.name != "mfax.lock"}
    assert after == before and not (old / ".mfax-replaced").exists()
    assert mfax.load(result.save(old, overwrite=True)).config.algo == "omd"
    assert not (old / ".mfax-replaced").exists() and not (old / ".mfax-replaced.discard").exists()


def test_save_load_and_export_refuse_switches_and_paths_of_other_types(tmp_path):
    """Found by an audit of the Python API: overwrite="no" (truthy) replaced a saved run
    and trust_code="no" imported a run's code; a number as a path was pathlib's TypeError."""
    result = mfax.solve("sis", "fp", iterations=1, common_noise=False)
    saved = result.save(tmp_path / "keep")
    before = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    for call, says in (
        (lambda: result.save(saved, overwrite="no"), "overwrite must be True or False, got 'no'"),
        (lambda: result.save(7), "path must be a path (a str or a pathlib.Path), got 7"),
        (lambda: mfax.load(saved, trust_code="no"), "trust_code must be True or False, got 'no'"),
        (lambda: mfax.load(None), "path must be a path (a str or a pathlib.Path), got None"),
        (lambda: result.save(""), "path is empty; name a path (the current folder is '.')"),  # it meant "."
        (lambda: mfax.load(saved, game=3), "game must be a game reference (a str) or a Game subclass, got 3"),
        (lambda: result.policy_of(True), "run index must be an integer in 0..0, got True"),
        (lambda: result.policy_of(0.5), "run index must be an integer in 0..0, got 0.5"),
        (
            lambda: mfax.solve("sis", "fp", iterations=1, common_noise=False, callback=lambda r: np.ones(2) > 0),
            "callback must return True or False (stop or go on) or None, got array([ True,  True])",
        ),
        # "no" is true in Python: it stopped the run; a wrong signature was Python's TypeError after training began
        (
            lambda: mfax.solve("sis", "fp", iterations=1, common_noise=False, callback=lambda r: "no"),
            "callback must return True or False (stop or go on) or None, got 'no'",
        ),
        (
            lambda: mfax.solve("sis", "fp", iterations=1, common_noise=False, callback=lambda: True),
            "callback must take one argument (the evaluation's record, a dict)",
        ),
    ):
        with pytest.raises(mfax.GameError) as err:
            call()
        assert says in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()} == before


def test_numpy_scalars_are_read_as_the_numbers_they_hold():
    """np.int64 counts and sizes were refused ("must be int") and np.float32 parameters too,
    while np.float64 passed (it subclasses float): a loop over np.arange could not solve."""
    assert mfax.make("beach_bar", num_states=np.int64(7), gamma=np.float32(0.5)).num_states == 7
    result = mfax.solve(
        "sis", "fp", iterations=np.int64(2), eval_every=np.int32(1), common_noise=False, recovery=np.float32(0.25)
    )
    assert result.iterations == 2 and result.config.params["recovery"] == 0.25
    assert type(result.config.iterations) is int and type(result.config.params["recovery"]) is float


def test_plot_methods_return_figures():
    result = mfax.solve("beach_bar", "fp", iterations=2, **SMALL_GAME)
    for figure in (result.plot_exploitability(), result.plot_mean_field(2), result.plot_policy(2)):
        assert isinstance(figure, Figure) and figure.axes
    assert len(result.plot_mean_field(2).axes) == 2 * 2  # two heat maps and their colour bars
    assert result.plot_aggregates() is None and result.plot_profiles() is None  # beach_bar declares none
    assert result.plot_mean_field_grid() is None  # its states are not the cells of a map
    grid = mfax.solve("openspiel.crowd_modelling_2d", "fp", iterations=1, size=3, horizon=4)
    assert len(grid.plot_mean_field_grid(times=[0, 4]).axes) == 2 + 1  # two maps, one colour bar
    with pytest.raises(mfax.GameError, match=r"the times of the maps must be integers in 0\.\.4"):
        grid.plot_mean_field_grid(times=[5])


def test_to_pandas_without_pandas_is_one_line(monkeypatch):
    result = mfax.solve("beach_bar", "fp", iterations=1, **SMALL_GAME)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(mfax.GameError, match="needs pandas") as err:
        result.to_pandas()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(algo="nope"), "unknown"),
        (dict(iterations=-1), "iterations must be >= 1"),
        (dict(target_exploitability="ten"), "target_exploitability must be"),
        (dict(target_exploitability="150%"), "fraction in"),
        (dict(target_exploitability=-1.0), "target_exploitability must be a finite number >= 0"),
        (dict(time_budget=-1.0), "time_budget must be"),
        (dict(callback=3), "callback must be callable"),
        # named as the keyword arguments, in Python's words (they said "config key 'hparams' must be a table")
        (dict(iterations="2"), "iterations must be an integer, got '2'"),
        (dict(hp=[1]), r"hp must be a dict \(name: value\), got \[1\]"),
        (dict(paths="4"), "paths must be an integer or None, got '4'"),
        (dict(seeds=0), "seeds must be >= 1"),
        (dict(seed=None), "^seed must be an integer, got None$"),  # (it trained seed 0)
        (dict(seeds=None), "^seeds must be an integer, got None$"),
        # a deterministic solver trained identical copies, one per seed
        (dict(algo="fp", seeds=2), r"seeds=2: fp is deterministic \(it draws nothing from its seed\), so every seed"),
        (dict(game=BeachBar(num_states=10), num_states=12), "go with a game reference"),
        (dict(colour=3), "'colour' is neither an argument of solve nor a parameter of game 'beach_bar'"),
        (dict(algo=None), "algo must be a solver's name, got None; allowed: spg, rspg"),
        (dict(overwrite="no"), "overwrite must be True or False, got 'no'"),
        (dict(progress="yes"), "progress must be True or False, got 'yes'"),
        (dict(params=[1]), "params must be a dict of game parameters \\(name: value\\), got list"),
        (dict(out=3), "out must be a path \\(a str or a pathlib.Path\\), got 3"),
        # recorded as if used: beach bar's 102 paths are enumerated, ippo samples its own
        (dict(paths=64), "paths= is not used with exact noise: every one of beach_bar's 102 noise paths"),
        (dict(algo="ippo", noise="sample", paths=8), "paths= is not used by ippo"),
        (
            dict(game=BeachBar(num_states=10), iteration=3),
            "'iteration' is neither an argument of solve nor a parameter of game 'beach_bar'; solve's arguments: "
            "iterations, .*; the game's parameters \\(given with a game reference string, not a Game instance\\): ",
        ),
        (
            dict(game=BeachBar(num_states=10), params={"num_states": 12}),
            "parameters \\(num_states\\) go with a game reference string, not a Game instance",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, kwargs, message):
    arguments = {"game": "beach_bar", "algo": "fp", "iterations": 2, "out": tmp_path / "run", **kwargs}
    with pytest.raises(mfax.GameError, match=message) as err:
        mfax.solve(arguments.pop("game"), arguments.pop("algo"), **arguments)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_load_of_a_directory_that_is_not_a_run_is_one_line(tmp_path):
    with pytest.raises(mfax.GameError, match="not a run directory"):
        mfax.load(tmp_path)


def test_cache_dir_follows_the_environment(tmp_path):
    home = str(Path.home())
    assert cache_dir({}) == Path(home) / ".cache" / "mfax" / "jax"
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "mfax" / "jax"
    assert cache_dir({"MFAX_COMPILATION_CACHE": "1", "XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "mfax" / "jax"
    for on in ("true", "On", "yes"):  # (true made a directory ./true; false was off)
        assert cache_dir({"MFAX_COMPILATION_CACHE": on, "XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "mfax" / "jax"
    assert cache_dir({"MFAX_COMPILATION_CACHE": str(tmp_path / "c")}) == tmp_path / "c"
    for off in ("0", "off", "False"):
        assert cache_dir({"MFAX_COMPILATION_CACHE": off}) is None


def test_enabling_the_cache_keeps_a_directory_already_configured():
    import jax

    configured = jax.config.jax_compilation_cache_dir  # the test session's (conftest)
    assert configured
    assert enable_compilation_cache() == Path(configured)
    assert jax.config.jax_compilation_cache_dir == configured


def test_an_unusable_cache_directory_is_one_warning_and_no_cache(tmp_path, monkeypatch):
    """MFAX_COMPILATION_CACHE=~nosuchuser/c (or no home directory at all) ended every
    command, `mfax --help` too, in a RuntimeError traceback; a file, or a directory under
    one, gave JAX's two-line UserWarning ("File exists"), a read-only one a pair per
    program compiled."""
    import jax

    from mfax.run.cache import ENV

    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    configured = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        with pytest.warns(mfax.errors.MfaxWarning) as caught:
            for value in (str(mine), str(mine / "sub"), "~no-such-user-of-mfax/cache"):
                monkeypatch.setenv(ENV, value)
                assert enable_compilation_cache() is None
            monkeypatch.delenv(ENV)  # the default directory, without a home directory
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

            def homeless():
                raise RuntimeError("Could not determine home directory.")

            monkeypatch.setattr(Path, "home", homeless)
            assert enable_compilation_cache() is None
        assert not jax.config.jax_compilation_cache_dir
    finally:
        jax.config.update("jax_compilation_cache_dir", configured)
    said = [str(w.message) for w in caught]
    assert len(said) == 4 and all(ENV + "=0 turns it off" in line for line in said), said
    assert "is not a directory" in said[0]
    assert said[2].startswith("the compilation cache '~no-such-user-of-mfax/cache' names a home directory that")
    assert said[3].startswith(
        "the compilation cache directory ($XDG_CACHE_HOME/mfax/jax, or ~/.cache/mfax/jax) cannot be found: no home"
    ), said[3]
    assert mine.read_text() == "mine"


def test_load_of_a_run_cut_short_says_interrupted(tmp_path):
    from mfax.run.config import TrainConfig
    from mfax.run.train import train

    config = TrainConfig(game="beach_bar", algo="fp", params=SMALL_GAME, iterations=4, eval_every=1)
    train(config, tmp_path / "run", progress=False, stop_after=2)  # as if killed after 2 iterations
    result = mfax.load(tmp_path / "run")
    assert result.stop_reason == "interrupted" and result.iterations == 2
    assert list(result.history["iteration"]) == [0, 1, 2]


@pytest.mark.slow
def test_the_command_line_caches_compiled_programs_by_default_and_not_when_turned_off(tmp_path):
    import os
    import subprocess

    def train(out: str, **env: str) -> None:
        environ = {k: v for k, v in os.environ.items() if k != "MFAX_COMPILATION_CACHE"}
        args = ["train", "--game", "beach_bar", "--set", "num_states=10", "--algo", "fp", "--iterations", "1"]
        args += ["--out", str(tmp_path / out), "--no-plots", "--no-progress"]
        code = "from mfax.run.cli import main; main()"
        done = subprocess.run(
            [sys.executable, "-c", code, *args], env={**environ, **env}, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr

    train("a", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert any((tmp_path / "xdg" / "mfax" / "jax").iterdir())  # the compiled programs, for the next process
    train("b", XDG_CACHE_HOME=str(tmp_path / "xdg-off"), MFAX_COMPILATION_CACHE="0")
    assert not (tmp_path / "xdg-off").exists()


@pytest.mark.parametrize(
    ("algo", "why"), [("fp", "it has no learning rate"), ("omd", "its step size is the hyper-parameter lr \\(hp\\)")]
)
def test_solve_refuses_a_learning_rate_its_solver_does_not_use(tmp_path, algo, why):
    """``lr=`` was ignored by the tabular solvers (a list trained identical copies): one
    line, before any run directory is made."""
    with pytest.raises(mfax.GameError, match=f"^lr is not used by {algo}: {why} \\(solvers that take lr: spg"):
        mfax.solve("beach_bar", algo, iterations=2, lr=[0.1, 0.5], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_diverged_solve_without_out_names_no_folder(monkeypatch):
    """Without ``out=`` the run lives in a temporary folder that goes with the call: the
    message named it as where the last good checkpoint was kept."""
    from mfax.run.train import TrainingDiverged
    from mfax.solvers import driver

    monkeypatch.setattr(
        driver, "first_nonfinite", lambda metrics, start, solver=None: "non-finite policy return at iteration 1"
    )
    with pytest.raises(TrainingDiverged) as err:
        mfax.solve("sis", "fp", iterations=2, common_noise=False)
    text = str(err.value)
    assert text.startswith("non-finite policy return at iteration 1; stopped (nothing kept without out=DIR")
    assert "mfax-solve-" not in text
    # nor a policy its evaluation refuses (a review: a plug-in solver's table summing to 2)
    from mfax.run import train

    def refused(trainer, states, iteration, *rest):
        if iteration == 0:
            return scored(trainer, states, iteration, *rest)
        raise mfax.GameError("Tabular policy row (t=0, s=0) sums to 2; it must sum to 1")

    monkeypatch.undo()
    scored = train._eval_rows
    monkeypatch.setattr(train, "_eval_rows", refused)
    with pytest.raises(mfax.GameError) as err:
        mfax.solve("sis", "fp", iterations=2, common_noise=False)
    assert str(err.value) == (
        "Tabular policy row (t=0, s=0) sums to 2; it must sum to 1 (found evaluating iteration 2; stopped; nothing "
        "kept without out=DIR, which keeps the last good checkpoint)"
    )


def test_conflicting_or_odd_arguments_are_one_line(tmp_path):
    with pytest.raises(mfax.GameError, match="game parameter horizon given both in params and as a keyword"):
        mfax.solve("sis", "fp", iterations=1, params={"horizon": 3}, horizon=4)
    with pytest.raises(mfax.GameError, match=r"check_game expects a game instance .*got str"):
        mfax.check_game("beach_bar")
    with pytest.raises(mfax.GameError, match=r"which must be 'last', 'best' or a kept iteration, got 1\.5"):
        mfax.load(tmp_path, which=1.5)
    # found by an audit of the Python API (tracebacks, or a message naming the metaclass)
    game = mfax.make("sis")
    with pytest.raises(mfax.GameError, match=r"key must be a JAX random key .*got 3"):
        mfax.check_game(game, key=3)
    with pytest.raises(KeyError, match=r"no check named 'nope'; the report's checks: sizes\.integers, "):
        mfax.check_game(game)["nope"]
    with pytest.raises(mfax.GameError, match=r"got the class SIS \(give an instance: SIS\(...\)\)"):
        mfax.solve(type(game), "fp", iterations=1)
    with pytest.raises(mfax.GameError, match=r"a sweep takes a list of games, got one game \('sis'\)"):
        mfax.games.stack_games(game)
    other = mfax.make("sis", recovery=0.4)
    assert np.shape(mfax.games.stack_games(g for g in (game, other)).recovery) == (2,)  # a generator too


class SISBonus(SISDelegate):
    """A game with a field that is not a declared parameter (a plain dataclass field)."""

    name: ClassVar[str] = "sis_bonus"
    bonus: float = 0.0

    def reward(self, mu, mu_next, noise, t):
        return super().reward(mu, mu_next, noise, t) + self.bonus


def test_solve_refuses_a_game_instance_with_a_field_it_cannot_record(tmp_path):
    """``solve`` recorded an instance by its declared parameters only: ``bonus=5`` was
    dropped and the run trained and reported the game with ``bonus=0``."""
    with pytest.raises(mfax.GameError, match=r"field bonus=5.0 is not declared with param\(\), so a run would") as err:
        mfax.solve(SISBonus(bonus=5.0), "fp", iterations=1, out=tmp_path / "run")
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()
    assert config_of(SISBonus(), {}, algo="fp").params == {}  # its default: the same game


def test_solve_refuses_a_game_instance_holding_an_array_of_values(tmp_path):
    import jax.numpy as jnp

    game = mfax.make("sis", common_noise=False)
    stacked = mfax.games.stack_games([game, mfax.make("sis", common_noise=False, recovery=0.4)])
    assert np.shape(stacked.recovery) == (2,)
    with pytest.raises(mfax.GameError, match=r"parameter '\w+' of game 'sis' holds an array of shape \(2,\)"):
        mfax.solve(stacked, "fp", iterations=1, out=tmp_path / "run")
    one = eqx_replace(game, recovery=jnp.asarray(0.4))  # one value as a 0-d array: recorded as the number
    assert config_of(one, {}, algo="fp").params["recovery"] == pytest.approx(0.4)


def eqx_replace(game, **values):
    import equinox as eqx

    return eqx.tree_at(lambda g: [getattr(g, k) for k in values], game, list(values.values()))


@pytest.mark.parametrize("num_paths", [0, -1, 2.5, True, 2])
def test_plotting_a_number_of_paths_that_is_not_a_count_is_one_line(num_paths):
    """(2 of the run's one evaluation path drew the one, silently.)"""
    result = mfax.solve("sis", "fp", iterations=1, common_noise=False)
    says = f"num_paths must be an integer in 1..1 \\(the evaluation paths, to plot\\), got {num_paths}$"
    with pytest.raises(mfax.GameError, match=says):
        result.plot_mean_field(num_paths)
    assert result.plot_mean_field().axes  # the default: 3, or all when there are fewer


# -- figures no correct game gives ----------------------------------------------------------


def test_figure_defects_name_what_no_correct_game_gives():
    """The per-path best response knows the whole noise path: the information-consistent
    exploitability is at most the per-path one, and both are >= 0, up to rounding."""
    from mfax.evaluation.exploitability import above_words, figure_defects

    assert figure_defects(0.5, 0.3, -10.0, float64=False) == []
    assert figure_defects(-1e-7, -2e-7, -1.0, float64=False) == []  # float32 rounding of a zero
    assert figure_defects(0.3, 0.3 + 1e-6, -5.0, float64=False) == []  # equal up to rounding
    [line] = figure_defects(-1.344, None, -6.0, float64=False)
    assert line.startswith("exploitability (per path) -1.344 (below 0 by more than float32 rounding")
    [line] = figure_defects(0.35, 2.01, -6.0, float64=True)
    assert line == (
        "exploitability (information-consistent) 2.01 (above the per-path figure by more than float64 rounding "
        "explains: a deviator who knows the whole noise path does at least as well; a defect); per path 0.35"
    )
    assert above_words(None, 0.3, 1.0) == above_words(0.3, None, 1.0) == ""


def test_solve_warns_with_the_defects_its_result_shows(monkeypatch):
    """An impure game passed every check before ``jit.pure``, and ``mfax.solve`` returned
    a negative exploitability without a word (the CLI said "a defect"): the result lists
    such figures and ``solve`` warns with them."""
    import warnings

    import mfax.evaluation.exploitability as exploitability

    kwargs = dict(params={"horizon": 3}, iterations=2, eval_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mfax.DefectWarning)  # none for a correct game
        assert mfax.solve("sis", "fp", **kwargs).defects == []
    monkeypatch.setattr(exploitability, "figure_defects", lambda *a: ["exploitability (per path) -1.3 (... a defect)"])
    with pytest.warns(mfax.DefectWarning, match=r"^exploitability \(per path\) -1.3 \(\.\.\. a defect\)$"):
        assert mfax.solve("sis", "fp", **kwargs).defects == ["exploitability (per path) -1.3 (... a defect)"]


def test_reading_a_float64_run_leaves_the_process_in_its_precision(tmp_path):
    """mfax.load of a run trained with --x64 switched float64 on for the whole process: a
    float32 run trained after it ran in float64, was labelled float32 and could not be
    read back ("changed dtype"); its figures differed (found by an audit)."""
    import jax
    from typer.testing import CliRunner

    from mfax.run.cli import app

    args = dict(hp=TINY_NETWORK, iterations=2, eval_every=2, lr=3e-2, num_states=11, horizon=4)
    before = mfax.solve("linear_quadratic", "spg", **args).exploitability
    wide = tmp_path / "x64"
    try:
        done = CliRunner().invoke(
            app,
            [
                "train",
                "--game",
                "linear_quadratic",
                "--set",
                "num_states=11",
                "--set",
                "horizon=4",
                "--algo",
                "spg",
                *[x for k, v in TINY_NETWORK.items() for x in ("--hp", f"{k}={v}")],
                "--iterations",
                "2",
                "--eval-every",
                "2",
                "--lr",
                "3e-2",
                "--x64",
                "--out",
                str(wide),
                "--no-plots",
                "--no-progress",
            ],
        )  # (the command line switches float64 on for its process: this one, here)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert done.exit_code == 0, done.output
    read = mfax.load(wide)
    assert not jax.config.jax_enable_x64
    assert read.mean_field.dtype == np.float64 and read.summary["dtype"] == "float64"  # its own precision
    after = mfax.solve("linear_quadratic", "spg", out=tmp_path / "narrow", **args)
    assert after.summary["dtype"] == "float32" and after.exploitability == before
    assert mfax.load(tmp_path / "narrow").exploitability == before  # read back (it was refused)
    assert read.policy_of(0) is not None and not jax.config.jax_enable_x64
    # the run's own arrays used with mfax's functions: within its precision, its own figure
    from mfax.evaluation import evaluate

    with read.precision():
        again = evaluate(read.game, read.policy, read.eval_noise)
    assert float(again.exploitability) == pytest.approx(read.exploitability, rel=1e-12)
    # a process computing in float64 (the user's choice): a new run is float64, and says so
    jax.config.update("jax_enable_x64", True)
    try:
        made = mfax.solve("linear_quadratic", "spg", out=tmp_path / "made", **args)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert made.summary["dtype"] == "float64" and mfax.load(tmp_path / "made").mean_field.dtype == np.float64


def test_solve_in_float64_for_the_call_only():
    """``mfax.solve(..., x64=True)``, as ``mfax train --x64``: there was no float64 switch
    in the Python API (``x64`` was refused as an unknown game parameter; a review), only
    the process-wide ``jax_enable_x64``."""
    import jax

    narrow = mfax.solve("mfglib.left_right", "fp", iterations=3)
    wide = mfax.solve("mfglib.left_right", "fp", iterations=3, x64=True)
    assert not jax.config.jax_enable_x64  # the process as it was
    assert wide.config.x64 and wide.summary["dtype"] == "float64" and wide.mean_field.dtype == np.float64
    assert narrow.summary["dtype"] == "float32" and narrow.mean_field.dtype == np.float32
    assert wide.exploitability == pytest.approx(narrow.exploitability, rel=1e-6, abs=1e-6)  # (float32 rounding)
    with pytest.raises(mfax.GameError, match=r"^x64 must be True or False, got 'yes'$"):
        mfax.solve("mfglib.left_right", "fp", iterations=3, x64="yes")
