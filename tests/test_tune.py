"""``mfax tune`` / :func:`mfax.tune`: the search space, bad inputs, batched trials (one
program, each trial's value that of a solo solve), the kept study (resumed, guarded) and
the best run directory; slow tier: tuning beats the default hyper-parameters.

Bad inputs are refused before Optuna is imported, so those tests run without it; the
rest skip without Optuna (the optional extra ``mfax[tune]``)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import TINY_NETWORK, one_error_line
from mfax.errors import GameError
from mfax.games.sis import SIS
from mfax.params import param, search_range
from mfax.run.cli import app
from mfax.run.tune import INSTALL, parse_range, search_space
from mfax.tracing import TRACES

# a 10-state beach bar with a short horizon, the bar always open (one noise path): every
# trial compiles and trains in moments
TINY_BAR = dict(num_states=10, horizon=6, common_noise=False)
TINY_SET = [arg for key, value in TINY_BAR.items() for arg in ("--set", f"{key}={value}")]


def _tune(**kwargs):
    args = dict(params=TINY_BAR, trials=2, iterations=2, eval_every=1)
    return mfax.tune("beach_bar", **{**args, **kwargs})


# -- the space and the declarations (no Optuna needed) ---------------------------------
def test_declared_ranges_and_default_space():
    from mfax.solvers.classical import OMDHyperParams
    from mfax.solvers.ppo import PPOParams

    assert search_range(OMDHyperParams, "lr") == (1e-3, 10.0, "log")
    assert search_range(PPOParams, "clip_eps") is None
    # OMD's rate is its hyper-parameter; SPG's is --lr (TrainConfig.lr), searched log-uniformly
    omd = search_space("omd", None, {}, False)
    assert list(omd) == ["lr"] and omd["lr"].log and omd["lr"].low == 1e-3
    assert list(search_space("spg", None, {}, False)) == ["lr"]
    assert list(search_space("momd", None, {}, False)) == ["lr", "tau", "alpha"]
    # fixed names are not searched; --space names exactly what is searched, declared range or given
    assert list(search_space("momd", None, {"tau": 1.0}, True)) == ["alpha"]
    chosen = search_space("ippo", {"clip_eps": "0.1:0.3", "entropy_coef": None}, {}, False)
    assert chosen["clip_eps"].low == 0.1 and not chosen["clip_eps"].log and chosen["entropy_coef"].high == 0.1
    assert search_space("ippo", {"updates": "10:40"}, {}, False)["updates"].integer


def test_param_search_declarations():
    assert param(1.0, "x", search=(0.1, 2.0)).metadata["search"] == (0.1, 2.0, "linear")
    assert param(4, "n", search=(1, 8, "log")).metadata["search"] == (1, 8, "log")
    for default, bad in [("a", (0, 1)), (1.0, (1.0, 0.5)), (1.0, (0.0, 1.0, "log")), (1, (0.5, 2)), (1.0, (0, 1, "x"))]:
        with pytest.raises(TypeError):
            param(default, "x", search=bad)


def test_list_shows_the_ranges():
    result = CliRunner().invoke(app, ["list", "--json"])
    solvers = json.loads(result.stdout)["solvers"]
    assert solvers["spg"]["lr_search"] == [1e-5, 0.1, "log"] and solvers["omd"]["lr_search"] is None
    assert {h["name"]: h["search"] for h in solvers["omd"]["hparams"]} == {"lr": [1e-3, 10.0, "log"]}
    text = CliRunner().invoke(app, ["list"]).stdout
    assert "[tune: 0.001:10:log]" in text and "--lr" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(algo="omd", space={"gamma": "0.1:1"}), "'omd' cannot search 'gamma'; searchable: lr"),
        (dict(algo="omd", space={"lr": "0.1-1"}), "a range is (low, high), (low, high, 'log') or 'low:high[:log]'"),
        (dict(algo="omd", space={"lr": 5}), "space={'lr': 5}: a range is (low, high)"),  # (a TypeError)
        (dict(algo="omd", space={"lr": {0.1, 1.0}}), "a range is (low, high)"),  # a set: no order
        (dict(algo="omd", space={"lr": "a:1"}), "low and high must be finite numbers"),
        (dict(algo="omd", space={"lr": "1:0.1"}), "low must be below high, got low 1 >= high 0.1"),
        (dict(algo="omd", space={"lr": "0:1:log"}), "a log range needs low > 0"),
        (dict(algo="omd", space={"lr": "0:1"}), "space={'lr': '0:1'}: 0 is not allowed"),
        (dict(algo="ippo", space={"updates": "1.5:4"}), "must be integers (the hyper-parameter is an integer)"),
        (dict(algo="ippo", space={"clip_eps": None}), "clip_eps declares no search range"),
        (dict(algo="ippo", space={"head": "0:1"}), "cannot search 'head'"),
        (dict(algo="omd", space={"lr": None}, hp={"lr": 0.2}), "lr is also fixed"),
        (dict(algo="omd", trials=0), "trials must be an integer in 1..2147483647, got 0"),
        (dict(algo="omd", batch=0), "batch must be an integer in 1..2147483647"),
        (dict(algo="spg", lr=[0.1, 0.2]), "a fixed lr must be one number"),
        (dict(algo="fp"), "solver 'fp' has nothing to search: it takes no lr and no numeric hyper-parameter"),
        (dict(algo="omd", hp={"lr": 0.2}), "'omd' has nothing to search by default"),
        (dict(algo="omd", params={**TINY_BAR, "gamma": [0.9, 0.99]}), "tune trains one game"),
        (dict(algo="nope"), "unknown algorithm 'nope'"),
        # found by an audit of the Python API: the keyword won silently, tracebacks
        (dict(algo="omd", params={**TINY_BAR, "gamma": 0.9}, gamma=0.8), "gamma given both in params and as a keyword"),
        (dict(algo="omd", params=[1]), "params must be a dict of game parameters"),
        (dict(algo="omd", trials=10**12), "trials must be an integer in 1..2147483647, got 1000000000000"),
        # tune's own arguments, not solve's (seeds is solve's: it was listed as allowed)
        (dict(algo="omd", seeds=3), "'seeds' is neither an argument of tune nor a parameter of game"),
        (dict(algo="omd", log=3), "log must be callable"),
        (dict(algo="omd", seed=None), "seed must be an integer, got None"),
        (dict(algo="omd", out=5), "out must be a path (a str or a pathlib.Path), got 5"),
        (dict(algo="omd", space=["lr"]), "space must be a dict (hyper-parameter: range or None), got list"),
    ],
)
def test_bad_inputs(kwargs, message):
    with pytest.raises(GameError) as err:
        _tune(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_a_sweep_in_tunes_own_words():
    """``--set key=v1,v2`` is a sweep, which tune refuses as such (it said "must be float,
    got '0.5,0.9'")."""
    for item in ("gamma=0.5,0.9", "close_probability=0.2,0.5", "gamma=0.5,0.5"):
        result = CliRunner().invoke(app, ["tune", "--algo", "omd", *TINY_SET, "--set", item])
        key = item.split("=")[0]
        assert one_error_line(
            result, f"tune trains one game; game parameter(s) {key} have several values (a sweep): give one value"
        )
    # the same line from Python, for a traced parameter and for one that fixes the program
    for key, values in (("gamma", [0.5, 0.9]), ("close_probability", [0.2, 0.5])):
        with pytest.raises(GameError, match=rf"tune trains one game; game parameter\(s\) {key} have several values"):
            _tune(algo="omd", **{key: values})


def test_parse_range_forms():
    assert parse_range("lr", "1e-3:1:log").text == "0.001:1:log"
    assert parse_range("lr", (0.1, 2)).log is False


def test_without_optuna_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(GameError, match=r'pip install "mfax\[tune\]"'):
        _tune(algo="omd")
    result = CliRunner().invoke(app, ["tune", "--algo", "omd", *TINY_SET, "--trials", "1"])
    assert one_error_line(result, INSTALL)
    result = CliRunner().invoke(app, ["tune", "--algo", "omd", *TINY_SET, "--space", "lr=1:0"])
    assert one_error_line(result, "low must be below high")  # bad input first: no install needed to hear of it


# -- trials (Optuna needed) ------------------------------------------------------------
# SPG's learning rate alone: a batched search. The kept-study test runs the same programs
# (three runs side by side, one run alone) as the batch test: compiled once per session.
SPG = dict(algo="spg", hp=TINY_NETWORK, batch=3)


def test_batched_trials_are_one_program_and_each_a_solo_solve():
    pytest.importorskip("optuna")
    before = TRACES["structural_chunk"]
    result = _tune(trials=3, **SPG)
    assert TRACES["structural_chunk"] - before == 1  # three trials, one compiled training program
    assert result.batched and {t["batch"] for t in result.trials} == {0}
    assert result.trials[0]["default"] and result.trials[0]["lr"] == 1e-3  # the defaults come first
    assert len({t["lr"] for t in result.trials}) == 3
    solo_args = dict(params=TINY_BAR, iterations=2, eval_every=1, hp=TINY_NETWORK)
    for trial in result.trials:
        solo = mfax.solve("beach_bar", "spg", **solo_args, lr=trial["lr"])
        assert trial["value"] == pytest.approx(np.min(solo.history["exploitability"]), rel=1e-5)
    assert result.best_value == min(t["value"] for t in result.trials)


def test_kept_study_resumes_and_best_is_the_best_trial(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    first = _tune(trials=3, out=out, **SPG)
    assert first.resumed == 0 and len(first.trials) == 3
    lines = []
    second = _tune(trials=4, out=out, log=lines.append, **SPG)
    assert second.resumed == 3 and [t["trial"] for t in second.trials] == [0, 1, 2, 3]
    assert any("continuing the study" in line and "3 of 4" in line for line in lines)
    assert [t["lr"] for t in second.trials[:3]] == [t["lr"] for t in first.trials]  # the first three kept
    assert [t["batch"] for t in second.trials] == [0, 0, 0, 1]
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["value"]) for r in rows] == pytest.approx([t["value"] for t in second.trials])
    assert [r["default"] for r in rows] == ["True", "False", "False", "False"]
    # out/best: the best trial alone, stopped at its best evaluation; mfax eval reads it
    best = mfax.load(out / "best")
    assert best.exploitability == pytest.approx(second.best_value, rel=1e-5)
    assert best.config.lr == pytest.approx([second.best_params["lr"]])
    assert best.stop_reason == "best_iteration"  # (it said "callback": the user gave none)
    assert json.loads((out / "mfax-tune.json").read_text())["best_trial"] == second.best_trial
    # the study's folder named where a run is expected: its best run named (a review)
    with pytest.raises(GameError, match=r"holds an mfax tune study, not a run; its best trial's run is '.*best'$"):
        mfax.load(out)
    # another search into the same directory, or a directory mfax did not write: refused
    with pytest.raises(
        GameError, match=r"holds a study of another search .*differs in: config\.hparams .*'max_grad_norm': 2\.0"
    ):
        _tune(trials=4, out=out, **{**SPG, "hp": {**TINY_NETWORK, "max_grad_norm": 2.0}})
    with pytest.raises(GameError, match=r"holds a study of another search .*differs in: space\.lr "):
        _tune(trials=4, out=out, space={"lr": "1e-4:1e-2:log"}, **SPG)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(GameError, match="not an mfax tune study"):
        _tune(algo="omd", out=foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_a_study_of_a_float64_process_is_not_continued_in_float32(tmp_path):
    """Its trials ran in float64 (the process's precision) but the study recorded none:
    a float32 call continued it, mixing the precisions of its trials (a review)."""
    pytest.importorskip("optuna")
    import jax

    out = tmp_path / "study"
    with jax.enable_x64(True):
        _tune(algo="omd", trials=1, out=out)
    assert json.loads((out / "mfax-tune.json").read_text())["search"]["config"]["x64"] is True
    differs = r"holds a study of another search \(it differs in: config\.x64 True -> False\)"
    with pytest.raises(GameError, match=differs):
        _tune(algo="omd", trials=2, out=out)


def test_a_diverging_batch_is_trained_again_trial_by_trial():
    """Absurd learning rates: the batch's program stops at a non-finite value; each trial is
    then trained alone and valued at the lowest exploitability it reached (iteration 0)."""
    pytest.importorskip("optuna")
    result = _tune(trials=3, space={"lr": "1e30:1e37:log"}, **SPG)
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 3 and result.default_value is None
    assert [t["best_iteration"] for t in result.trials] == [0, 0, 0]
    assert all("non-finite value after iteration" in t["note"] for t in result.trials)
    assert all("trained alone: its batch of 3 stopped at a non-finite value" in t["note"] for t in result.trials)
    assert len({t["value"] for t in result.trials}) == 1  # the same initial network (the same seed)


def test_cli_table_and_json(tmp_path):
    pytest.importorskip("optuna")
    args = ["tune", "--algo", "omd", *TINY_SET, "--trials", "2"]
    args += ["--iterations", "2", "--eval-every", "1", "--space", "lr=0.05:2:log"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "best: trial" in result.stdout and "default" in result.stdout and "one trial at a time" in result.stdout
    result = CliRunner().invoke(app, [*args, "--json"])
    record = json.loads(result.stdout)
    assert record["space"]["lr"] == {"low": 0.05, "high": 2.0, "log": True, "integer": False}
    assert record["best"]["value"] == min(t["value"] for t in record["trials"]) and len(record["trials"]) == 2


def test_a_defaults_trial_cut_short_by_a_kill_is_run_again(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    from mfax.run import tune as tune_mod

    out = tmp_path / "study"
    train_for_real = tune_mod._Search.run

    def killed(self, values):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_mod._Search, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        _tune(algo="omd", out=out)
    monkeypatch.setattr(tune_mod._Search, "run", train_for_real)
    result = _tune(algo="omd", out=out)
    assert result.default_value is not None
    done = [t for t in result.trials if t["state"] == "COMPLETE"]
    assert done[0]["default"] and len(done) == 2


@pytest.mark.parametrize("content", [b"junk\n", b"", b"SQLite format 3\x00" + bytes(84)])
def test_a_damaged_study_file_is_one_line_and_left_as_it_was(tmp_path, content):
    """A study.db that is not an SQLite database (a 113-line SQLAlchemy traceback), empty
    (SQLite wrote its tables into it, then Optuna's KeyError traceback) or an SQLite
    header without a database: one line naming the file."""
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    _tune(algo="omd", trials=np.int64(1), out=out)  # (numpy integers count as integers: they were refused)
    (out / "study.db").write_bytes(content)
    with pytest.raises(GameError, match=r"study\.db (is not a study|cannot be read as a study).*give another out$"):
        _tune(algo="omd", trials=2, out=out)
    if not content.startswith(b"SQLite"):
        assert (out / "study.db").read_bytes() == content


def test_a_user_folder_where_the_best_trial_goes_is_refused_before_any_trial(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    _tune(algo="omd", trials=1, out=out)
    shutil.rmtree(out / "best")
    (out / "best").mkdir()
    (out / "best" / "notes.txt").write_text("mine\n")
    before = (out / "trials.csv").read_text()
    with pytest.raises(GameError, match=r"refusing to overwrite .*best': it is a non-empty directory that is not"):
        _tune(algo="omd", trials=3, out=out)
    assert (out / "trials.csv").read_text() == before and (out / "best" / "notes.txt").read_text() == "mine\n"


def test_time_budget_counts_training_seconds_alike_for_every_trial():
    pytest.importorskip("optuna")
    # a budget spent by the first chunk: every trial, the first (which compiles the program)
    # as the second (which reads it from the cache), ends at its first evaluation after
    # training, not at iteration 0 as a budget that counted compilation ended the first
    result = _tune(algo="omd", iterations=50, time_budget=1e-9)
    assert [t["iterations"] for t in result.trials] == [1, 1]


def test_time_budget_counts_training_and_evaluation_not_building_or_compiling():
    """A trial's clock runs from its first evaluation and counts the chunks and the
    evaluations (on a small game most of its time: a budget of training seconds alone let
    a 1-second trial run for two minutes), not the waits for a compilation."""
    from mfax.run.tune import _Search

    search = _Search("beach_bar", "omd", {}, {}, {}, None, 2.0)
    spent = search.clock()
    assert not spent({"seconds": 30.0, "compile_seconds": 0.0})  # built and evaluated at iteration 0: the start
    assert not spent({"seconds": 91.0, "compile_seconds": 60.0})  # a minute compiling, one second of work
    assert spent({"seconds": 92.5, "compile_seconds": 60.0})  # chunks and evaluations: 2.5 s
    other = search.clock()  # every trial has its own clock
    assert not other({"seconds": 5.0, "compile_seconds": 0.0}) and other({"seconds": 7.0, "compile_seconds": 0.0})
    endless = dataclasses.replace(search, time_budget=None).clock()
    assert not endless({"seconds": 0.0, "compile_seconds": 0.0})
    assert not endless({"seconds": 1e9, "compile_seconds": 0.0})


def test_an_infinite_time_budget_is_no_budget(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    result = _tune(algo="omd", trials=1, out=out, time_budget=float("inf"))
    assert json.loads((out / "mfax-tune.json").read_text())["search"]["time_budget"] is None  # JSON, not Infinity
    assert result.trials[0]["iterations"] == 2
    # a study an earlier mfax kept with an infinite budget (its marker says Infinity) goes on
    marker = out / "mfax-tune.json"
    record = json.loads(marker.read_text())
    record["search"]["time_budget"] = float("inf")
    marker.write_text(json.dumps(record))
    assert len(_tune(algo="omd", trials=2, out=out, time_budget=float("inf")).trials) == 2


def test_a_study_whose_budget_counted_training_alone_is_not_continued(tmp_path):
    """Its trials ran under another rule: values not comparable with the new ones."""
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    _tune(algo="omd", trials=1, out=out, time_budget=100.0)
    marker = out / "mfax-tune.json"
    record = json.loads(marker.read_text())
    assert record["search"]["time_budget_counts"] == "training and evaluation"
    del record["search"]["time_budget_counts"]  # as an earlier mfax wrote it
    marker.write_text(json.dumps(record))
    with pytest.raises(GameError, match=r"time budget counted the training chunks alone .* write elsewhere \(out\)$"):
        _tune(algo="omd", trials=2, out=out, time_budget=100.0)


def test_a_solver_the_game_does_not_take_is_refused_before_the_study_is_written(tmp_path):
    """mf_omo on a game with common noise: one line, and no study directory left behind to
    block (or be continued by) the next command."""
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    with pytest.raises(GameError, match="mf_omo applies to games without common noise"):
        mfax.tune("beach_bar", algo="mf_omo", trials=1, iterations=2, params=dict(num_states=10, horizon=6), out=out)
    assert not out.exists()


def test_a_read_only_study_is_named_so(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    import os

    from mfax.run import tune as tune_mod

    out = tmp_path / "study"
    _tune(algo="omd", trials=1, out=out)
    before = (out / "study.db").read_bytes()
    db = str(out / "study.db")
    real = os.access
    monkeypatch.setattr(tune_mod.os, "access", lambda p, mode: False if str(p) == db else real(p, mode))
    with pytest.raises(GameError, match=r"study\.db' is read-only: the study writes to this file"):
        _tune(algo="omd", trials=2, out=out)
    assert (out / "study.db").read_bytes() == before
    # best/, cleared and trained into at the end: named before the search, not after it
    best = str(out / "best")
    monkeypatch.setattr(tune_mod.os, "access", lambda p, mode: False if str(p) == best else real(p, mode))
    with pytest.raises(GameError, match=r"best' is read-only: the study writes to this folder"):
        _tune(algo="omd", trials=2, out=out)
    # trials.csv is replaced through a temporary file in the folder: read-only, it is no obstacle
    csv_file = str(out / "trials.csv")
    monkeypatch.setattr(tune_mod.os, "access", lambda p, mode: False if str(p) == csv_file else real(p, mode))
    assert len(_tune(algo="omd", trials=2, out=out).trials) == 2


def test_a_study_started_again_in_its_folder_trains_its_own_best(tmp_path):
    """study.db removed: the next command starts a new study whose trial numbers restart;
    the old study's best/ (recorded under a trial number the new study reuses) is trained
    again, never kept as the new best."""
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    _tune(algo="omd", trials=2, out=out, space={"lr": "0.05:0.1:log"})
    (out / "study.db").unlink()
    summary = out / "best" / "summary.json"  # the old study's best/, marked to tell it apart
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "old_study": True}))
    new = _tune(algo="omd", trials=2, out=out, space={"lr": "0.05:0.1:log"})
    assert new.resumed == 0
    assert "old_study" not in json.loads(summary.read_text())  # trained again, not kept
    best = mfax.load(out / "best")
    assert best.config.hparams["lr"] == pytest.approx(new.best_params["lr"])
    assert best.exploitability == pytest.approx(new.best_value, rel=1e-5)


def test_a_complete_study_asked_for_fewer_trials_trains_nothing(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    _tune(algo="omd", trials=2, out=out)
    lines = []
    result = _tune(algo="omd", trials=1, out=out, log=lines.append)
    assert len(result.trials) == 2
    assert any("holds 2 complete trials, 1 asked: nothing to train" in line for line in lines), lines
    lines.clear()
    _tune(algo="omd", trials=1, out=tmp_path / "one", log=lines.append)
    _tune(algo="omd", trials=1, out=tmp_path / "one", log=lines.append)
    assert any("holds 1 complete trial, 1 asked" in line for line in lines), lines
    assert not any("2 of 1" in line for line in lines)


def test_ctrl_c_keeps_the_table_and_says_how_to_go_on(tmp_path, monkeypatch):
    """An interrupted trial is in trials.csv (failed) at once, and the command says that
    the same command continues the study."""
    pytest.importorskip("optuna")
    from mfax.run import tune as tune_mod

    out = tmp_path / "study"
    _tune(algo="omd", trials=1, out=out)
    monkeypatch.setattr(tune_mod._Search, "run", lambda self, values: (_ for _ in ()).throw(KeyboardInterrupt))
    args = ["tune", "--algo", "omd", *TINY_SET, "--trials", "2", "--iterations", "2", "--eval-every", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 130
    assert "the complete trials are kept in" in result.output
    assert "the same command continues the study" in result.output
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL"]
    assert rows[1]["note"] == "cut short: the call that trained it was stopped"  # (empty, before: a review)
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "new")])
    assert result.exit_code == 130 and "interrupted" in result.output
    # while the best trial is trained again: the search is done, best/ is as it was
    monkeypatch.undo()
    monkeypatch.setattr(tune_mod._Search, "rerun", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "third")])
    assert result.exit_code == 130
    assert "interrupted while training the best trial again (in " in result.output
    assert "is as it was; the search is complete: the same command trains the best trial again" in result.output


def test_an_interrupted_training_of_the_best_trial_leaves_best_as_it_was(tmp_path, monkeypatch):
    """The best trial was trained again straight into best/, an --overwrite that set the
    previous best aside until the new run's first checkpoint: a Ctrl-C after it left a
    run stopped at iteration 0, which `mfax eval DIR/best` read as the best policy without
    a word, the previous (complete) best gone (found by a new user's audit). It is now
    trained in DIR/.best-next and copied into best/ once complete."""
    pytest.importorskip("optuna")
    from mfax.run import tune as tune_mod
    from mfax.run.rundir import RunDir

    out = tmp_path / "study"
    first = _tune(algo="omd", trials=1, out=out)
    best = out / "best"
    (best / "notes.txt").write_text("mine")  # a user's file in best/: kept whatever happens

    def files():
        return {p.relative_to(best).as_posix(): p.read_bytes() for p in best.rglob("*") if p.is_file()}

    before = files()
    real = tune_mod._Search.rerun

    def cut_short(self, values, best_iteration, out=None):
        real(self, values, 0, out)  # a run stopped at its first checkpoint, as a Ctrl-C leaves it
        raise KeyboardInterrupt

    marker = json.loads((out / "mfax-tune.json").read_text())
    (out / "mfax-tune.json").write_text(json.dumps({**marker, "best_trial": 99}))  # best/ to be trained again
    monkeypatch.setattr(tune_mod._Search, "rerun", cut_short)
    args = ["tune", "--algo", "omd", *TINY_SET, "--trials", "1", "--iterations", "2", "--eval-every", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert f"{str(best)!r} is as it was" in result.output
    assert files() == before
    monkeypatch.undo()
    again = CliRunner().invoke(app, [*args, "--out", str(out)])  # the same command: best/ trained again, whole
    assert again.exit_code == 0, again.output
    assert (best / "notes.txt").read_text() == "mine" and not (out / ".best-next").exists()
    summary = RunDir(best).read_summary()
    row = next(t for t in first.trials if t["trial"] == first.best_trial)
    assert summary["iterations"] == row["best_iteration"]
    assert json.loads((out / "mfax-tune.json").read_text())["best_trial"] == first.best_trial


def test_noise_exact_continues_a_study_whose_auto_noise_was_exact(tmp_path):
    """`--noise exact` was refused as "another search" of a study made with the default
    `--noise auto`, which on this game enumerates the noise too (found by a new user's
    audit): auto is compared as what it means for the game; sampled noise stays another
    search."""
    pytest.importorskip("optuna")
    out = tmp_path / "study"
    _tune(trials=1, out=out, **SPG)  # noise auto: the tiny bar's one path, enumerated
    lines = []
    again = _tune(trials=1, out=out, noise="exact", log=lines.append, **SPG)
    assert len(again.trials) == 1 and any("nothing to train" in line for line in lines)
    with pytest.raises(GameError, match=r"another search .*config\.noise 'exact' -> 'sample'"):
        _tune(trials=1, out=out, noise="sample", paths=2, **SPG)


def test_a_ctrl_c_while_the_best_run_is_copied_acts_once_it_is_in_place(tmp_path, monkeypatch):
    """A Ctrl-C during the copy into best/ left the staging run in DIR/.best-next for good
    (its removal came after the signal was acted on) and the line said a trial had been
    cut short; a kill while the staging run was removed (its marker first) left a folder
    no longer an mfax run, which every later call refused (found by a review). The copy,
    the marker and the removal now end whole, the line says what is complete, and what a
    kill leaves is still an mfax run, which the next call removes."""
    pytest.importorskip("optuna")
    import signal

    from mfax.run.rundir import RunDir

    real = RunDir.write_files

    def copy_then_ctrl_c(self, files, overwrite=False):
        real(self, files, overwrite)
        os.kill(os.getpid(), signal.SIGINT)  # held until the copy, the marker and the removal are done

    monkeypatch.setattr(RunDir, "write_files", copy_then_ctrl_c)
    out = tmp_path / "study"
    args = ["tune", "--algo", "omd", *TINY_SET, "--trials", "1", "--iterations", "2", "--eval-every", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert f"interrupted once the study and its best run were complete (in {str(out / 'best')!r})" in result.output
    assert (out / "best" / "summary.json").is_file() and not (out / ".best-next").exists()
    monkeypatch.undo()
    # a kill while .best-next was removed: its marker is the last file left
    staging = out / ".best-next"
    shutil.copytree(out / "best", staging)
    for path in [p for p in staging.rglob("*") if p.is_file() and p.name != "mfax-run.json"]:
        path.unlink()
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert not staging.exists() and (out / "best" / "summary.json").is_file()
    staging.mkdir()  # a kill after its last file, before the folder went
    assert CliRunner().invoke(app, [*args, "--out", str(out)]).exit_code == 0 and not staging.exists()


def test_a_ctrl_c_after_the_retraining_before_the_copy_says_best_is_as_it_was(tmp_path, monkeypatch):
    """A Ctrl-C acted on after the best trial was trained again and before the copy's
    signals were held said "once the study and its best run were complete", though best/
    was as it was (the next call trains it again); and one between the two steps had no
    line of its own at all."""
    pytest.importorskip("optuna")
    import contextlib

    import mfax.run.tune as tune_module

    @contextlib.contextmanager
    def ctrl_c_before_the_hold():
        raise KeyboardInterrupt
        yield  # (a generator, as the real one)

    monkeypatch.setattr(tune_module, "deferred_signals", ctrl_c_before_the_hold)
    out = tmp_path / "study"
    args = ["tune", "--algo", "omd", *TINY_SET, "--trials", "1", "--iterations", "2", "--eval-every", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert f"{str(out / 'best')!r} is as it was" in result.output and "were complete" not in result.output
    assert not (out / "best" / "summary.json").exists()
    monkeypatch.undo()
    again = CliRunner().invoke(app, [*args, "--out", str(out)])  # trains it again, into best/
    assert again.exit_code == 0, again.output
    assert (out / "best" / "summary.json").is_file() and not (out / ".best-next").exists()


def test_an_output_closed_during_a_study_keeps_the_table_whole(tmp_path):
    """`mfax tune ... | head -2`: the line of a complete trial failed to print (the
    reader gone) after the trial was recorded in study.db and before trials.csv was
    rewritten, and the command ended as bad input (status 2). The table is now written
    before the lines, and a closed output ends with status 141 and a line saying so."""
    pytest.importorskip("optuna")
    import typer

    from mfax.run.cli_common import CLOSED_OUTPUT, user_errors

    said = []

    def say(line):
        if line.startswith("trial 1:"):
            raise BrokenPipeError(32, "Broken pipe")
        said.append(line)

    out = tmp_path / "study"
    with pytest.raises(BrokenPipeError):
        _tune(algo="omd", trials=3, out=out, log=say)
    with open(out / "trials.csv") as f:
        assert [(r["trial"], r["state"]) for r in csv.DictReader(f)] == [("0", "COMPLETE"), ("1", "COMPLETE")]
    with pytest.raises(typer.Exit) as ended, user_errors():
        raise BrokenPipeError(32, "Broken pipe")
    assert ended.value.exit_code == 141 and "its output was closed" in CLOSED_OUTPUT


def test_sigterm_keeps_the_table_and_says_so(tmp_path, monkeypatch):
    """A plain kill (SIGTERM, which ``mfax``'s main raises as ``Terminated``) ended a
    search with status 143 and no word; it now says what Ctrl-C says, as terminated."""
    pytest.importorskip("optuna")
    from mfax.run import tune as tune_mod
    from mfax.run.signals import Terminated

    out = tmp_path / "study"
    _tune(algo="omd", trials=1, out=out)
    monkeypatch.setattr(tune_mod._Search, "run", lambda self, values: (_ for _ in ()).throw(Terminated(143)))
    args = ["tune", "--algo", "omd", *TINY_SET, "--trials", "2", "--iterations", "2", "--eval-every", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 143
    assert "terminated (SIGTERM); the complete trials are kept in" in result.output
    with open(out / "trials.csv") as f:
        assert [r["state"] for r in csv.DictReader(f)] == ["COMPLETE", "FAIL"]
    monkeypatch.undo()
    monkeypatch.setattr(tune_mod._Search, "rerun", lambda *a, **k: (_ for _ in ()).throw(Terminated(143)))
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "third")])
    assert result.exit_code == 143
    assert "terminated (SIGTERM) while training the best trial again (in " in result.output


def test_a_learning_rate_asked_twice_in_a_batch_is_trained_once():
    """Copies of one run are refused by the solver (a sweep's values must differ), so a
    batch in which the sampler asked one learning rate twice trains it once and gives
    both trials its outcome."""
    from conftest import TINY_NETWORK
    from mfax.run.tune import LR, Range, _Search

    args = dict(iterations=2, eval_every=1, noise="sample", paths=4, eval_paths=4)
    search = _Search("sis", "spg", args, {LR: Range(1e-3, 1.0, log=True)}, dict(TINY_NETWORK), None, None)
    assert search.batched
    twice, other, again = search.run([{LR: 0.05}, {LR: 0.2}, {LR: 0.05}])
    assert twice.value == again.value and twice.value != other.value


def test_a_trial_value_below_zero_says_what_it_is():
    """A trial's exploitability below zero within float32 rounding of its policy's return
    is named so (as mfax train's done line does), read at the trial's best evaluation."""
    from mfax.run.tune import _Outcome, _outcomes, _trial_line

    rows = [
        dict(run=0, iteration=0, exploitability=2.1, policy_return=-9.0),
        dict(run=0, iteration=5, exploitability=-9.5e-07, policy_return=-3.2),
    ]
    (outcome,) = _outcomes(rows, 1, 1.0)
    assert (outcome.value, outcome.best_iteration, outcome.policy_return) == (-9.5e-07, 5, -3.2)
    line = _trial_line(3, outcome, {"lr": 0.1})
    assert "-> exploitability -9.5e-07 (0 up to float32 rounding) (1.0 s)" in line, line
    assert "rounding" not in _trial_line(3, _Outcome(0.5, 5, 5, 1.0, "", -3.2), {"lr": 0.1})
    # the table too: the figure marked, what it is said under the table (it showed -5.96e-08 bare)
    from types import SimpleNamespace

    from mfax.run.cli_tune import _table

    row = dict(trial=3, state="COMPLETE", value=-5.96e-08, lr=0.1, best_iteration=5, seconds=1.0, default=False)
    lines = _table(SimpleNamespace(space={"lr": None}, trials=[{**row, "policy_return": -3.2}], best_trial=3))
    assert "-5.96e-08*" in lines[1] and lines[-1] == "  * trial 3: -5.96e-08 (0 up to float32 rounding)"


# -- the slow tier: tuning against the defaults ----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("game", "algo", "trials"),
    [("beach_bar", "omd", 8), ("mfglib.crowd_motion", "omd", 8), ("beach_bar", "spg", 6)],
)
def test_tuning_beats_the_defaults(game, algo, trials):
    """On a budget of 20 iterations, the best trial beats a separate solve with the
    default hyper-parameters by at least 10% (the defaults are one of the trials, so the
    best is never worse: the margin is what the search must find). SPG's six trials are
    one batch: one compiled program."""
    pytest.importorskip("optuna")
    budget = dict(iterations=20, eval_every=5)
    result = mfax.tune(game, algo, trials=trials, batch=6, **budget)
    default = mfax.solve(game, algo, **budget)
    default_value = float(np.min(default.history["exploitability"]))
    assert result.default_value == pytest.approx(default_value, rel=1e-5)
    assert result.best_value < 0.9 * default_value, (result.best_value, default_value, result.best_params)


def test_a_study_in_use_is_named_a_study_directory(tmp_path):
    """A second tune of the same folder said "run directory ... is in use": the folder
    is a study, and the line says so."""
    pytest.importorskip("optuna")
    from mfax.run.rundir import RunDir

    out = tmp_path / "study"
    with RunDir(out).lock("study directory"), pytest.raises(GameError) as err:
        _tune(algo="omd", trials=1, out=out)
    assert str(err.value) == (
        f"study directory {str(out)!r} is in use by process {os.getpid()}: one process writes it at a time; wait for "
        "that one to end, or write elsewhere"
    )


def test_a_trial_of_a_call_killed_outright_is_failed_with_a_note_and_one_that_errs_names_it(tmp_path, monkeypatch):
    """A trial left running by a SIGKILL is failed when the study is opened again; its row
    in trials.csv had an empty note, as had one cut short by an error (a review)."""
    optuna = pytest.importorskip("optuna")
    from mfax.run import tune as tune_mod

    out = tmp_path / "study"
    _tune(algo="omd", trials=1, out=out)
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}")
    study.ask()  # (what a process killed mid-trial leaves: a RUNNING trial)
    train_for_real = tune_mod._Search.run
    monkeypatch.setattr(tune_mod._Search, "run", lambda self, values: (_ for _ in ()).throw(GameError("bad step")))
    with pytest.raises(GameError, match="bad step"):
        _tune(algo="omd", trials=2, out=out)
    with open(out / "trials.csv") as f:
        notes = [(r["state"], r["note"]) for r in csv.DictReader(f)]
    assert notes[1:] == [
        ("FAIL", "cut short: the call that trained it was stopped"),
        ("FAIL", "cut short by an error: bad step"),
    ]
    monkeypatch.setattr(tune_mod._Search, "run", train_for_real)
    assert len([t for t in _tune(algo="omd", trials=2, out=out).trials if t["state"] == "COMPLETE"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"game": 3}, "game must be a Game instance or a game reference string, got int"),
        ({"game": None}, "game must be a Game instance or a game reference string, got NoneType"),
        ({"game": SIS}, "got the class SIS (give an instance: SIS(...))"),
        ({"algo": None}, "algo must be a solver's name, got None; allowed: spg,"),
        ({"hp": "ab"}, "hp must be a dict (name: value), got 'ab'"),
        ({"hp": [("lr", 0.1)]}, r"hp must be a dict \(name: value\), got \[\('lr', 0.1\)\]"),
    ],
)
def test_tune_refuses_a_bad_game_algo_or_hp_in_one_line_as_solve_does(kwargs, says):
    """A class or None as the game raised dataclasses' TypeError, algo=None tuned the
    default solver silently, a str or a list as hp a ValueError or a TypeError (a review)."""
    pytest.importorskip("optuna")
    with pytest.raises(mfax.GameError, match=says if "\\" in says else re.escape(says)):
        mfax.tune(**{"game": "sis", "algo": "omd", "trials": 1, **kwargs})
