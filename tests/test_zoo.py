"""bench/zoo.py: its figures are mfax's own, its budgets and failures are reported as
they happen, and it runs without the original libraries (their cells say so)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import mfax
from mfax.solvers.classical import solve

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def zoo():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("zoo", BENCH / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def left_right(zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    argv = ["--only", "mfglib.left_right", "--algos", "omd", "--iterations", "3", "--repeats", "1"]
    rows = zoo.main([*argv, "--out", str(out), "--no-figure", "--budget", "2"])
    return rows, out


def test_zoo_lists_every_exact_solver(zoo):
    names = zoo.exact_solvers()
    assert {"fp", "omd", "fixed_point", "boltzmann", "munchausen", "prior_descent"} <= set(names)
    assert not {"spg", "rspg", "ippo", "rippo", "momd"} & set(names)  # sampled / learned: not tabular


def test_zoo_writes_its_table(left_right):
    rows, out = left_right
    (row,) = rows
    # the uniform policy of MFGLib's left-right: exploitability 1/4 (MFGLib's figure too,
    # bench/results/mfglib_crosscheck.md); three OMD steps lower it
    assert row["exploitability_0"] == pytest.approx(0.25, rel=1e-12)
    assert 0.0 < row["exploitability"] < 0.25 and row["mfax_s"] > 0
    saved = json.loads((out / "zoo_only.json").read_text())
    assert [r["algorithm"] for r in saved["rows"]] == ["omd"]
    assert saved["meta"]["sizes"]["mfglib.left_right"] == dict(horizon=2, states=3, actions=2, paths=1)
    table = (out / "zoo_only.md").read_text()
    assert "| mfglib.left_right | 2, 3, 2, 1 | omd | 0.25 -> " in table


@pytest.mark.slow
def test_zoo_figures_are_the_solvers_own(left_right):
    rows, _ = left_right
    with jax.enable_x64(True):
        _, history = solve(mfax.make("mfglib.left_right"), "omd", 3)  # OMD's default lr, as the zoo's
    expl = np.asarray(history.exploitability)
    assert rows[0]["exploitability_0"] == pytest.approx(expl[0], rel=1e-12)
    assert rows[0]["exploitability"] == pytest.approx(expl[3], rel=1e-12)


def test_zoo_without_mfglib_says_not_installed(left_right):
    rows, _ = left_right
    if importlib.util.find_spec("mfglib") is not None:
        assert all(r["original"]["status"] == "measured" for r in rows)
    else:
        assert all(r["original"]["status"] == "not installed" for r in rows)
        assert all("ratio" not in r for r in rows)


def test_original_over_budget_and_crash(zoo):
    slow = zoo.Original("lib", "slow", lambda: "built", lambda state: time.sleep(5), budget=0.05)
    slow.step()
    result = slow.finish()
    assert result["status"] == "over budget" and result["why"] == "first iteration"
    assert 0.04 < result["lower_bound"] < 1.0 and result["seconds"] is None

    def fail(state):
        raise RuntimeError("shape mismatch\nsecond line")

    broken = zoo.Original("lib", "broken", lambda: "built", fail, budget=1.0)
    broken.step()
    assert broken.finish()["status"] == "crashed" and broken.why == "RuntimeError: shape mismatch"
    fine = zoo.Original("lib", "fine", lambda: "built", lambda state: None, budget=1.0)
    for _ in range(3):
        fine.step()
    assert fine.finish()["status"] == "measured" and fine.finish()["iterations"] == 3
