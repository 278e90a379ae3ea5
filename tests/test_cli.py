"""The command line, as a user runs it (in-process through Typer's runner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mfax.run.cli import app

runner = CliRunner()


@pytest.mark.smoke
def test_list_shows_every_game_with_defaults():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0
    games = json.loads(result.output.strip().splitlines()[-1])["games"]
    assert {"beach_bar", "linear_quadratic", "macro", "sis"} <= set(games)
    params = {p["name"]: p["default"] for p in games["beach_bar"]}
    assert params["num_states"] == 101 and params["close_probability"] == 0.5
    text = runner.invoke(app, ["list"]).output
    assert "idiosyncratic_probs" in text


@pytest.mark.smoke
def test_eval_json_last_line():
    result = runner.invoke(
        app, ["eval", "--game", "beach_bar", "--policy", "uniform", "--set", "common_noise=false", "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    for key in ("exploitability", "exploitability_info", "policy_return", "best_response_return", "noise_paths"):
        assert key in record
    assert record["noise_paths"] == 51 and record["noise"] == "exact"
    assert record["exploitability"] == pytest.approx(577.1739102, rel=2e-6)
    assert record["exploitability_info"] == pytest.approx(record["exploitability"], rel=1e-6)


def test_eval_sampled_noise_on_macro_reports_null_info():
    result = runner.invoke(
        app,
        [
            "eval",
            "--game",
            "macro",
            "--set",
            "horizon=4",
            "--set",
            "num_wealth=10",
            "--noise",
            "sample",
            "--paths",
            "3",
            "--policy",
            "action:3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["exploitability_info"] is None and record["noise_paths"] == 3 and record["noise"] == "sample"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--game", "nope"], "unknown game 'nope'; allowed:"),
        (["eval", "--set", "colour=red"], "unknown parameter 'colour' for game 'beach_bar'; allowed:"),
        (["eval", "--set", "gamma=0"], "gamma must lie in (0, 1]"),
        (["eval", "--set", "gamma"], "--set expects key=value"),
        (["eval", "--policy", "action:99"], "K must be an integer in 0..10"),
        (["eval", "--policy", "greedy"], "unknown policy 'greedy'; allowed: uniform, action:K"),
        (["eval", "--noise", "lots"], "unknown noise mode 'lots'; allowed: exact, sample, auto"),
        (["eval", "--paths", "0"], "--paths must be >= 1"),
        (["eval", "--game", "macro", "--noise", "exact"], "has no finite noise support"),
        (["train", "--log-to", "mlflow"], "unknown tracker 'mlflow' for --log-to; allowed: tensorboard, wandb"),
    ],
)
@pytest.mark.smoke
def test_bad_input_gives_one_line_error(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mfax: error: ") and message in lines[0], result.stderr
