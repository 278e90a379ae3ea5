"""Bad input is refused with one clear line: defective games, config files of the wrong
types, non-finite parameters and learning rates, sizes that cannot fit in memory; and
weights of many counted draws stay exact."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import ALL_GAMES, slow
from mfax.dynamics import noise_batch
from mfax.evaluation import evaluate
from mfax.games import SIS, BeachBar, Game, GameError, NoiseSupport, SISNoise, registry, validate_game
from mfax.policies import Uniform
from mfax.run.cli import app

runner = CliRunner()


def one_line_error(args: list[str], message: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mfax: error: ") and message in lines[0], result.stderr
    return lines[0]


# -- defective games ---------------------------------------------------------------------
# Each is the sis example with one defect; all would otherwise run and produce numbers.
# Concrete games are final, so the defects extend an abstract game that delegates every
# function to the example (abstract: each defect gives its own name).


class Delegate(Game):
    """A game that hands every function to ``inner`` (a subclass sets it and the sizes):
    a defect is then one method overridden."""

    inner: ClassVar[Game]

    def state_features(self):
        return self.inner.state_features()

    def action_values(self):
        return self.inner.action_values()

    def sample_noise(self, key):
        return self.inner.sample_noise(key)

    def noise_support(self):
        return self.inner.noise_support()

    def initial_mean_field(self, noise):
        return self.inner.initial_mean_field(noise)

    def kernel(self, mu, noise, t):
        return self.inner.kernel(mu, noise, t)

    def reward(self, mu, mu_next, noise, t):
        return self.inner.reward(mu, mu_next, noise, t)

    def observation(self, mu, noise, t):
        return self.inner.observation(mu, noise, t)


class SISDelegate(Delegate):
    sis: ClassVar[SIS] = SIS()  # (a subclass may give another SIS)
    n_states: ClassVar[int] = SIS.n_states
    n_actions: ClassVar[int] = SIS.n_actions
    horizon: ClassVar[int] = sis.horizon
    gamma: ClassVar[float] = sis.gamma

    @property
    def inner(self) -> Game:
        return self.sis


class BrokenSupport(SISDelegate):
    """A noise support that fails with a plain Python error."""

    name: ClassVar[str] = "broken_support"

    def noise_support(self):
        raise ZeroDivisionError("division by zero")


class RowsSumTo1_5(SISDelegate):
    name: ClassVar[str] = "rows_sum_to_1_5"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(prob=k.prob.at[1, 0].multiply(1.5))


class NegativeProbability(SISDelegate):
    name: ClassVar[str] = "negative_probability"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(prob=k.prob.at[0, 1].set(jnp.array([1.2, -0.2])))


class IndexOutOfRange(SISDelegate):
    name: ClassVar[str] = "index_out_of_range"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(index=k.index.at[1, 1, 1].set(2))


class NaNReward(SISDelegate):
    name: ClassVar[str] = "nan_reward"

    def reward(self, mu, mu_next, noise, t):
        return super().reward(mu, mu_next, noise, t).at[1, 0].set(jnp.nan)


class NarrowReward(SISDelegate):
    name: ClassVar[str] = "narrow_reward"

    def reward(self, mu, mu_next, noise, t):
        return super().reward(mu, mu_next, noise, t)[:, :1]  # (n, 1): would broadcast silently


class MeanFieldSumsTo2(SISDelegate):
    name: ClassVar[str] = "mean_field_sums_to_2"

    def initial_mean_field(self, noise):
        return 2.0 * super().initial_mean_field(noise)


class ShortNoisePath(SISDelegate):
    name: ClassVar[str] = "short_noise_path"

    def sample_noise(self, key):
        noise = super().sample_noise(key)
        return noise._replace(report_error=noise.report_error[:-1])  # t = 0..T-1 only

    def noise_support(self):
        return None


class SupportWeightsSumTo3(SISDelegate):
    name: ClassVar[str] = "support_weights_sum_to_3"

    def noise_support(self):
        support = super().noise_support()
        return NoiseSupport(support.noise, 3.0 * support.weight)


class VectorAggregate(SISDelegate):
    name: ClassVar[str] = "vector_aggregate"

    def aggregates(self, mu, noise, t):
        return {"infected share": mu[1], "both shares": mu}  # aggregates are scalars


class CategoricalWord(SISDelegate):
    name: ClassVar[str] = "categorical_word"

    @property
    def actions_categorical(self):
        return "no"


class GridOfFourCells(SISDelegate):
    name: ClassVar[str] = "grid_of_four_cells"

    @property
    def state_grid(self):
        return (("x", 2), ("y", 2))


DEFECTS = [
    (RowsSumTo1_5, "kernel row (s=1, a=0) at t=0 sums to 1.5"),
    (NegativeProbability, "kernel row (s=0, a=1) at t=0 has a negative entry -0.2"),
    (IndexOutOfRange, "kernel index at (s=1, a=1, k=1) at t=0 is 2; states are 0..1"),
    (NaNReward, "reward at t=0 is nan at (s=1, a=0)"),
    (NarrowReward, "reward at t=0 must have shape (2, 2), got (2, 1)"),
    (MeanFieldSumsTo2, "initial mean field sums to 2"),
    (ShortNoisePath, "observation at t=T=8 reads out of bounds"),
    (SupportWeightsSumTo3, "noise support weight vector sums to 3"),
    (VectorAggregate, "aggregate 'both shares' at t=0 must be a scalar, got shape (2,)"),
    (CategoricalWord, "actions_categorical must be True or False, got 'no'"),
    (GridOfFourCells, "state_grid's sizes multiply to 4, not n_states=2: (('x', 2), ('y', 2))"),
]


@pytest.mark.parametrize(
    ("grid", "says"),
    [
        ((("x", True), ("y", 4)), "the size True of axis 'x' is not a whole number >= 1"),
        ((("x", 2.0), ("y", 2)), "the size 2.0 of axis 'x' is not a whole number >= 1"),
        ((("", 2), ("y", 2)), "the axis name '' is not a non-empty string"),
        ((("x", 4),), "got (('x', 4),)"),
        ({("x", 2), ("y", 2)}, "must be None or a tuple of 2-3 (name, size) pairs"),
        (((n, 2) for n in "xy"), "must be None or a tuple of 2-3 (name, size) pairs"),
        ((("x", 2, 1), ("y", 2)), "('x', 2, 1) is not a (name, size) pair"),
        ((("x", 3), ("y", 2)), "state_grid's sizes multiply to 6, not n_states=4: (('x', 3), ('y', 2))"),
        ((("x", 1), ("y", 2), ("z", 2), ("w", 1)), "got (('x', 1), ('y', 2), ('z', 2), ('w', 1))"),
    ],
)
def test_a_state_grid_is_tuple_of_named_whole_sizes_multiplying_to_the_states(grid, says):
    """(The review: a bool size passed and the figure raised after training; a generator
    passed the check, which used it up; a set's order changed with the hash seed.)"""
    import types

    from mfax.games.validate import _Failed, _sizes

    game = types.SimpleNamespace(n_states=4, n_actions=2, horizon=1, actions_categorical=False, state_grid=grid)
    with pytest.raises(_Failed) as info:
        _sizes(game)
    assert says in str(info.value) and str(info.value).startswith("state_grid"), str(info.value)
    ok = types.SimpleNamespace(**{**vars(game), "state_grid": [["x", np.int64(2)], ("y", 2)]})
    assert _sizes(ok) == "n=4 on a map (x=2, y=2), m=2, T=1"  # (mfax check-game's line names the map)
    assert _sizes(types.SimpleNamespace(**{**vars(game), "state_grid": None})) == "n=4, m=2, T=1"


@pytest.mark.parametrize(("cls", "message"), DEFECTS, ids=[c.name for c, _ in DEFECTS])
def test_defective_game_is_refused_naming_the_defect(cls, message):
    with pytest.raises(GameError) as info:
        validate_game(cls())
    text = str(info.value)
    assert text.startswith(f"game {cls.name!r}: ") and message in text and "\n" not in text, text


@pytest.mark.parametrize(
    ("cls", "message"),
    # slow: a second defect (the first entry checks that make and evaluate refuse; each
    # defect's line is test_defective_game_is_refused_naming_the_defect's)
    [DEFECTS[0], slow(*DEFECTS[1], id=DEFECTS[1][0].name)],
    ids=[c.name for c, _ in DEFECTS[:2]],
)
def test_make_and_evaluate_refuse_a_defective_game(cls, message, monkeypatch):
    monkeypatch.setitem(registry._GAMES, cls.name, cls)
    with pytest.raises(GameError, match=re.escape(message)):
        mfax.make(cls.name)
    game = cls()
    with pytest.raises(GameError, match=re.escape(message)):
        evaluate(game, Uniform(game.n_states, game.n_actions), noise_batch(SIS(), "exact"))


def test_training_refuses_a_defective_game(monkeypatch, tmp_path):
    monkeypatch.setitem(registry._GAMES, NaNReward.name, NaNReward)
    out = tmp_path / "run"
    one_line_error(["train", "--game", NaNReward.name, "--out", str(out), "--no-progress"], "reward at t=0 is nan")
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "params"),
    [(name, {}) if name != "macro" else slow(name, {}) for name in ALL_GAMES]  # (the published economy: slow)
    + [
        # slow: further parameter sets of beach_bar and sis (their defaults: the entries above)
        slow("beach_bar", {"idiosyncratic_noise": False, "common_noise": False}),
        ("macro", {"idiosyncratic_noise": False, "horizon": 4}),
        slow("sis", {"common_noise": False, "horizon": 3}),
    ],
)
def test_builtin_games_pass_validation(name, params):
    assert registry._GAMES.keys() >= set(ALL_GAMES)
    from mfax.games.validate import _check

    _check(mfax.make(name, **params))  # make validates once; this checks again, uncached


# -- config files, non-finite numbers ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('iterations = "ten"\n', "config key 'iterations' must be an integer, got 'ten'"),
        ('x64 = "no"\n', "config key 'x64' must be true or false, got 'no'"),
        ("paths = 2.5\n", "config key 'paths' must be an integer or null, got 2.5"),
        ('lr = "fast"\n', "config key 'lr' must be a number or a list of numbers, got 'fast'"),
        ('log_to = "wandb"\n', "config key 'log_to' must be a list of strings"),
        ("[network]\nmlp_width = true\n", "parameter 'mlp_width' of solver 'rspg' must be int, got True"),
        ("[hparams]\nmlp_width = 0\n", "network size mlp_width must be >= 1, got 0"),
        ("network = 3\n", "config key 'network' must be a table"),
        ("lr = nan\n", "learning rates must be finite and > 0"),
    ],
)
def test_config_file_values_are_type_checked(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    one_line_error(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"], message)
    assert not (tmp_path / "run").exists()


def test_config_file_json_bool_and_int_are_not_interchangeable():
    from mfax.run.config import from_dict

    with pytest.raises(GameError, match="'iterations' must be an integer, got True"):
        from_dict({"iterations": True})
    with pytest.raises(GameError, match="'x64' must be true or false, got 0"):
        from_dict({"x64": 0})
    config = from_dict({"lr": 1, "x64": True, "network": {"head": None}})
    assert config.lr == [1.0] and isinstance(config.lr[0], float) and config.x64 is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--lr", "inf"], "learning rates must be finite and > 0, got [inf]"),
        (["train", "--lr", "nan"], "learning rates must be finite and > 0, got [nan]"),
        (["train", "--set", "kappa=nan", "--game", "linear_quadratic"], "parameter 'kappa'"),
        (["train", "--algo", "omd", "--game", "sis", "--hp", "lr=inf"], "parameter 'lr' of solver 'omd'"),
        (["eval", "--set", "shift=inf", "--game", "linear_quadratic"], "must be a finite number, got inf"),
        (["eval", "--learned-br", "--br-lr", "inf"], "--br-lr must be finite and > 0, got inf"),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path, args, message):
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "run"), "--no-progress"]
    one_line_error(args, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "0.01,0.02,1e-2"], "lr lists 0.01 more than once (0.01, 0.02, 0.01)"),
        (["--set", "gamma=0.5,0.50"], "game parameter 'gamma' lists 0.5 more than once"),
    ],
)
def test_a_sweep_that_repeats_a_value_is_refused(tmp_path, args, message):
    """Runs that differ by nothing are copies: refused before the run directory exists,
    naming the repeat (the done line called them "runs of different games")."""
    out = tmp_path / "run"
    line = one_line_error(["train", "--game", "beach_bar", *args, "--out", str(out), "--no-progress"], message)
    assert "--seeds N" in line and not out.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kappa": float("nan")}, "parameter 'kappa' of game 'linear_quadratic' must be a finite number, got nan"),
        ({"sigma": float("inf")}, "parameter 'sigma' of game 'linear_quadratic' must be a finite number, got inf"),
    ],
)
def test_make_refuses_non_finite_parameters(params, message):
    with pytest.raises(GameError, match=re.escape(message)):
        mfax.make("linear_quadratic", **params)
    with pytest.raises(GameError, match="finite"):
        mfax.make("beach_bar", idiosyncratic_probs=(0.5, float("nan"), 0.5))


def test_a_check_failure_names_the_parameters_set_away_from_their_defaults():
    """A game that fails its checks only because of a value the user set (a risk aversion
    of 100 makes the lowest consumption's utility -inf in float32) names those values:
    `mfax solve-macro --set crra=100` said only "reward at t=0 is -inf"."""
    with pytest.raises(GameError) as err:
        mfax.make("macro", crra=100.0, num_wealth=40, horizon=8)
    assert str(err.value).startswith("game 'macro' with num_wealth=40, horizon=8, crra=100.0: reward at t=0 is -inf")
    report = mfax.check_game(mfax.make("sis"))  # at its defaults: nothing to name
    assert report.ok and report.set_here == ()


# -- memory -------------------------------------------------------------------------------


def test_training_that_cannot_fit_is_refused_with_the_estimate(tmp_path):
    """Sampled macro paths (no finite support): 10^5 paths of 128 steps x 1000 states x 20
    actions cannot fit anywhere; refused before anything is allocated or written."""
    out = tmp_path / "run"
    one_line_error(
        ["train", "--game", "macro", "--paths", "100000", "--out", str(out), "--no-progress"],
        "one training iteration (macro, rspg, 100000 noise paths) needs about",
    )
    assert not out.exists()


def test_an_evaluation_that_alone_cannot_fit_is_named_as_such(tmp_path):
    """--eval-paths 10^9 on sis: the refusal named "one training iteration (sis, spg, 8
    noise paths)", the training's figures, and asked for fewer --paths; it is the
    evaluation of each checkpoint, and the training alone would fit."""
    out = tmp_path / "run"
    args = ["train", "--game", "sis", "--algo", "spg", "--noise", "sample", "--eval-paths", "1000000000"]
    one_line_error(
        [*args, "--out", str(out), "--no-progress"],
        "evaluating a checkpoint (sis, 1000000000 evaluation noise paths) needs about",
    )
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_huge_economy_is_refused_by_its_memory_estimate_before_its_checks(tmp_path, monkeypatch, command):
    """macro with num_wealth=1000000 (5 million states): `mfax train` ran the game's checks
    for over five minutes before the memory refusal they only delayed; refused at once."""

    def validate(game):
        raise AssertionError("the game's checks ran before the memory estimate")

    monkeypatch.setattr("mfax.run.config.validate_game", validate)
    monkeypatch.setattr("mfax.run.cli.validate_game", validate)
    monkeypatch.setattr("mfax.games.registry.validate_game", validate)
    out = tmp_path / "run"
    args = ["--game", "macro", "--set", "num_wealth=1000000"]
    if command == "train":
        expected = "one training iteration (macro, rspg, 8 noise paths) needs about"
        one_line_error(["train", *args, "--out", str(out), "--no-progress"], expected)
    else:
        one_line_error(["eval", *args], "an evaluation of macro on 128 noise paths needs about")
    assert not out.exists()


def test_an_evaluation_that_is_not_finite_is_one_line_not_nan():
    """Each reward is finite, but float32 sums of kappa=1e35 overflow: `mfax eval` printed
    nan and -inf with exit status 0, and --json wrote NaN (not JSON)."""
    for extra in ([], ["--json"]):
        one_line_error(
            ["eval", "--game", "linear_quadratic", "--set", "kappa=1e35", *extra],
            "the evaluation is not finite in float32 (policy return -inf, best-response return -inf, "
            "exploitability nan)",
        )


def test_a_defect_met_by_the_memory_estimate_is_named_by_the_checks(tmp_path):
    """The estimate reads the game's noise support before the checks run: a support that
    fails is still named by the checks, in one line."""
    out = tmp_path / "run"
    for command in (["train", "--out", str(out), "--no-progress"], ["eval"]):
        one_line_error(
            [*command, "--game", f"{Path(__file__).resolve()}:BrokenSupport"],
            "noise_support",
        )
    assert not out.exists()


def test_counted_draws_beyond_the_memory_are_refused(tmp_path, monkeypatch):
    """10^9 draws counted over the beach bar's 102 paths (36 GB for the draw alone) on a
    machine with 8 GiB free."""
    monkeypatch.setattr("mfax.memory.available_bytes", lambda device=None: 8 * 2**30)
    one_line_error(
        ["train", "--noise", "sample", "--paths", "1000000000", "--out", str(tmp_path / "r"), "--no-progress"],
        "GiB of memory, only 8 GiB is free; use fewer --paths",
    )


def test_the_memory_refusal_advises_only_what_the_configuration_has(tmp_path, monkeypatch):
    """FP on exact noise was told to use fewer paths, seeds, learning rates and network
    sizes, which it either has not or is refused (found by an audit of the Python API)."""
    monkeypatch.setattr("mfax.memory.available_bytes", lambda device=None: 2**20)
    line = one_line_error(
        ["train", "--algo", "fp", "--noise", "exact", "--out", str(tmp_path / "r"), "--no-progress"],
        "(beach_bar, fp, 102 noise paths, the game's whole support) needs about",
    )
    assert line.endswith("is free; use a smaller game (fewer states, steps or noise paths in its support)"), line
    with pytest.raises(mfax.GameError) as err:
        mfax.solve("beach_bar", "rspg", noise="sample", seeds=2, iterations=1)
    assert str(err.value).endswith(
        "is free; use fewer paths (or eval_paths), fewer seeds or smaller hp network sizes"
    ), str(err.value)


def test_runs_batched_on_an_accelerator_count_each_runs_arrays(monkeypatch):
    """Runs side by side are vmapped on an accelerator (looped on the CPU), so each holds
    an iteration's arrays at once: the estimate counted them once, and 8 seeds that needed
    8 times the memory of one were accepted, to fail in XLA's allocator."""
    from mfax.memory import training_bytes
    from mfax.run.config import TrainConfig, resolve

    game = mfax.make("beach_bar")

    def need(seeds):
        config = resolve(TrainConfig(game="beach_bar", noise="sample", seeds=seeds))
        return training_bytes(config, game, None, 102)

    on_cpu = need(8)
    assert on_cpu < 1.1 * need(1)
    monkeypatch.setattr("mfax.sharding.jax.default_backend", lambda: "gpu")
    assert need(8) > 7 * need(1)
    # on a mesh of 4 accelerators each holds its runs' share of their paths
    from mfax.sharding import runs_held

    monkeypatch.setattr("mfax.sharding.jax.devices", lambda: [object()] * 4)
    assert [runs_held(r, None) for r in (1, 3, 4, 8)] == [0.25, 0.75, 1.0, 2.0]
    assert runs_held(8, 1) == 8.0
    monkeypatch.setattr("mfax.sharding.jax.devices", lambda: [object()])
    free = 3 * need(1)
    monkeypatch.setattr("mfax.memory.available_bytes", lambda device=None: free)
    need(1)  # one run fits
    with pytest.raises(mfax.GameError, match="8 runs side by side"):
        mfax.solve("beach_bar", "rspg", noise="sample", seeds=8, iterations=1)


def test_a_replay_batch_beyond_the_memory_is_refused(tmp_path):
    """M-OMD draws --hp batch_size transitions per gradient step: 10^8 of them (about 540
    GB) ended in XLA's RESOURCE_EXHAUSTED traceback after the run directory was written."""
    out = tmp_path / "r"
    one_line_error(
        ["train", "--algo", "momd", "--hp", "batch_size=100000000", "--out", str(out), "--no-progress"],
        "one training iteration (beach_bar, momd, 16 populations of 8 agents) needs about",
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--algo", "ippo", "--paths", "500"],
            "--paths is not used by ippo: each iteration samples num_envs=16 populations (a hyper-parameter)",
        ),
        (["--algo", "momd", "--noise", "sample", "--paths", "3"], "--paths is not used by momd"),
        (["--algo", "rspg", "--paths", "64"], "--paths is not used with exact noise: every one of beach_bar's 102"),
        (["--algo", "fp", "--noise", "exact", "--eval-paths", "3"], "--eval-paths is not used with exact noise"),
    ],
)
def test_paths_a_run_does_not_use_are_refused(tmp_path, args, message):
    """They were recorded in config.json as if used (two ippo runs with --paths 1 and 500
    were identical)."""
    out = tmp_path / "r"
    one_line_error(["train", *args, "--out", str(out), "--no-progress"], message)
    assert not out.exists()


def test_a_game_too_large_to_check_is_refused_before_its_functions_run(monkeypatch):
    """The checker built a 100,000,000-state beach bar's kernel (about 95 GiB) and the
    system killed the process without a word; the size is now read off the shapes first."""
    monkeypatch.setattr("mfax.games.validate.available_bytes", lambda device=None: 2**20)
    # the evaluation's own memory check reads the machine's free memory: with less free
    # than this evaluation needs (12 GiB free in one CI run) it refused first; it cannot
    # tell here, so the checker's refusal is the one tested, whatever the machine has
    monkeypatch.setattr("mfax.memory.available_bytes", lambda device=None: None)
    # before the evaluation enumerates the noise support (as large: 23 GiB at 10^8 states),
    # with the checks or without (--no-check skipped it: a traceback, or the system's kill)
    for unchecked in ([], ["--no-check"]):
        one_line_error(
            ["eval", "--set", "num_states=20001", *unchecked],
            "game 'beach_bar' (20001 states, 11 actions): a step of it builds kernels and rewards of about",
        )
        one_line_error(
            ["train", "--set", "num_states=20001", "--iterations", "1", "--no-progress", *unchecked],
            "game 'beach_bar' (20001 states, 11 actions):",
        )
    with pytest.raises(mfax.GameError, match="checking it builds kernels and rewards of about"):
        mfax.make("beach_bar", num_states=2003)
    monkeypatch.setattr("mfax.games.validate.available_bytes", lambda device=None: None)  # cannot tell: checked
    assert mfax.make("beach_bar", num_states=2003).n_states == 2003


def test_evaluation_that_cannot_fit_is_refused():
    one_line_error(["eval", "--noise", "sample", "--paths", "1000000000"], "an evaluation of beach_bar on 1000000000")


def test_memory_estimate_of_published_settings_is_modest():
    from mfax.memory import training_bytes
    from mfax.run.config import TrainConfig, resolve

    config = resolve(TrainConfig(game="beach_bar"))
    assert 10 * 2**20 < training_bytes(config, mfax.make("beach_bar"), 102, 102) < 2**30


@pytest.mark.slow
def test_exact_tabular_training_peaks_near_its_memory_estimate(tmp_path):
    """FP on a 401-state beach bar (402 paths) was estimated at 2.06 GiB and peaked at
    10.7 GiB of resident memory (12.5 s per iteration): its step held the (T, P, P, n)
    belief weights of every history node at once. They are no longer formed
    (mfax.evaluation.values.belief_mix): the run's peak stays within its estimate plus
    the runtime's own (about 0.5 GiB) and compiled code."""
    import subprocess
    import sys

    from mfax.memory import training_bytes
    from mfax.run.config import TrainConfig, resolve

    game = BeachBar(num_states=401)  # (its checks are not the subject)
    paths = int(game.noise_support().weight.shape[0])
    config = resolve(TrainConfig(game="beach_bar", algo="fp", params={"num_states": 401}))
    estimate = training_bytes(config, game, paths, paths)
    code = (
        "import atexit, resource\n"
        "atexit.register(lambda: print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
        "from mfax.run.entry import main\nmain()"
    )
    args = ["train", "--game", "beach_bar", "--algo", "fp", "--set", "num_states=401", "--iterations", "2"]
    args += ["--eval-every", "2", "--no-check", "--out", str(tmp_path / "run")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    peak = int(done.stdout.split("peak")[-1]) * 1024  # kilobytes on Linux
    assert estimate < 3 * 2**30 and peak < estimate + 1.5 * 2**30, (peak / 2**30, estimate / 2**30)


# -- exact weights of counted draws -------------------------------------------------------


@pytest.mark.parametrize(
    ("probs", "num_paths"),
    [
        # 17.5 million draws, 31/32 of them on the first path: its count (16.95 million,
        # 170 000 = 230 standard deviations past 2^24) passes 2^24 at half the draws
        ((0.96875, 0.03125), 17_500_000),
        slow((0.5, 0.5), 36_000_000),  # slow: the entry above; here each of the two counts passes 2^24
    ],
)
def test_counted_draw_weights_are_exact_beyond_float32_counting(probs, num_paths):
    """Draws over two paths where a count passes 2^24, where a float32 count stops
    growing (1 + 2^24 = 2^24); the weights must still sum to one."""
    from mfax.dynamics.noise import draw_noise

    support = NoiseSupport(SISNoise(jnp.zeros(2), jnp.zeros((2, 3))), jnp.array(probs))
    _, weight = draw_noise(SIS(horizon=2), jax.random.PRNGKey(0), num_paths, None, support)
    weight = np.asarray(weight, dtype=np.float64)
    assert weight.sum() == pytest.approx(1.0, abs=1e-6)
    assert weight == pytest.approx(list(probs), abs=5 / np.sqrt(num_paths))


# -- Ctrl-C ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_ends_with_the_message_and_status_130(tmp_path):
    """SIGINT at random moments of a training run (after its first checkpoint: on a loaded
    machine a fixed delay could fall before it, where the message rightly says there is
    none): each time the message, then exit status 130, never a crash in the
    interpreter's teardown (the old code: SIGSEGV in one of eight such trials, so a pass
    here is evidence, not proof)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    rng = random.Random(1)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    mfax_cli = [sys.executable, "-c", "from mfax.run.cli import main; main()"]
    for trial in range(6):
        args = ["train", "--game", "sis", "--algo", "spg", "--iterations", "100000", "--no-plots"]
        proc = subprocess.Popen(
            [*mfax_cli, *args, "--out", str(tmp_path / f"run{trial}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        checkpoint = tmp_path / f"run{trial}" / "checkpoint.eqx"
        waited = time.monotonic()
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() - waited < 300:
            time.sleep(0.2)
        time.sleep(rng.uniform(0, 16))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (trial, proc.returncode, err[-500:])
        assert "mfax: interrupted; the last checkpoint (iteration " in err and "Segmentation fault" not in err


def test_empty_names_and_lr_from_a_config_file_are_one_line_naming_what_was_given(tmp_path):
    # a CLI audit: these were accepted silently (logging to nothing, evaluating the uniform
    # policy or the current folder) or named a flag that was not given
    from conftest import one_error_line

    train = ["train", "--game", "mfglib.left_right", "--algo", "fp", "--iterations", "1", "--no-progress"]
    for given in ("", ","):
        result = runner.invoke(app, [*train, "--out", str(tmp_path / "a"), "--log-to", given])
        one_error_line(result, "--log-to names no tracker")
    assert not (tmp_path / "a").exists()
    one_error_line(runner.invoke(app, ["eval", "--game", "mfglib.left_right", "--policy", ""]), "--policy is empty")
    one_error_line(runner.invoke(app, ["eval", ""]), "RUN is empty")
    config = tmp_path / "c.toml"
    config.write_text('game = "mfglib.left_right"\nalgo = "fp"\nlr = 0.1\n')
    line = one_error_line(runner.invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / "b")]), "")
    assert line.startswith("mfax: error: the config file's lr is not used by fp"), line
    line = one_error_line(runner.invoke(app, [*train, "--lr", "nan", "--out", str(tmp_path / "b")]), "")
    assert "--lr is not used by fp" in line, line  # not "learning rates must be finite"
    assert not (tmp_path / "b").exists()
    run = tmp_path / "run"
    assert runner.invoke(app, [*train, "--out", str(run), "--no-plots"]).exit_code == 0
    for command in (["plot", str(run / "config.json")], ["eval", str(run / "config.json")]):
        one_error_line(runner.invoke(app, command), "is a file, not a run directory")
    target = str(tmp_path / "e.npz")
    exported = runner.invoke(app, ["export", str(run), "--iteration", " Best ", "--json", "--out", target])
    assert exported.exit_code == 0, exported.output
    import json

    assert json.loads(exported.stdout)["checkpoint"] == "best"


@pytest.mark.parametrize(
    "algo",
    # slow: the fp entry trains again from its config.json (lr and paths given there
    # whatever the solver); omd's and spg's are repeated variants (a second, third solver)
    ["fp", slow("omd"), slow("spg")],
)
def test_a_runs_own_config_json_trains_again_with_config(tmp_path, algo):
    """A run's config.json holds the resolved defaults (lr [1e-3]; paths, 8 for sis)
    whatever its solver and noise, and `--config` refused them as given: "the config
    file's lr is not used by fp", "the config file's paths is not used with exact noise"
    (getting-started says config.json reproduces a run). A value other than the default
    is still refused."""
    from conftest import TINY_NETWORK, one_error_line

    tiny = [x for k, v in TINY_NETWORK.items() for x in ("--hp", f"{k}={v}")]
    quiet = ["--iterations", "1", "--no-progress", "--no-plots"]
    extra = {"fp": [], "omd": [], "spg": ["--noise", "exact", *tiny]}[algo]
    first, again = tmp_path / f"{algo}1", tmp_path / f"{algo}2"
    trained = runner.invoke(app, ["train", "--game", "sis", "--algo", algo, *extra, *quiet, "--out", str(first)])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["train", "--config", str(first / "config.json"), *quiet, "--out", str(again)])
    assert result.exit_code == 0, (algo, result.output)
    assert json.loads((again / "config.json").read_text()) == json.loads((first / "config.json").read_text())
    record = json.loads((first / "config.json").read_text())
    (tmp_path / "c.json").write_text(json.dumps({**record, "paths": 16}))
    one_error_line(
        runner.invoke(app, ["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "x")]),
        "the config file's paths is not used with exact noise",
    )


def _crowd_rewarding(path: Path, lines: str) -> Path:
    """examples/crowd.py written to ``path`` with its reward ``r`` followed by ``lines``
    (which end in the ``return``)."""
    text = (Path(__file__).resolve().parents[1] / "examples" / "crowd.py").read_text()
    old = "        return -self.crowd_aversion * mu[:, None] - self.move_cost * jnp.abs(self.action_values())"
    old += "[None, :]\n"
    assert old in text
    path.write_text(text.replace(old, old.replace("return ", "r = ") + lines))
    return path


def test_a_reward_not_finite_where_the_checks_did_not_look_is_named_where_it_is(tmp_path):
    """A reward that is NaN only once a site holds more than 0.3 of the population passes
    the checks (mu_0 and a second mean field); the rollout then reaches it and the figures
    were NaN, training stopping with advice about float32 overflow and --x64. The
    evaluation now names t, state, action and the value; with the checks off it is left
    to the figures."""
    nan_at_site_1 = (
        "        return jnp.where((mu[:, None] > 0.3) & (jnp.arange(self.n_states)[:, None] == 1), jnp.nan, r)\n"
    )
    game = mfax.make(f"{_crowd_rewarding(tmp_path / 'crowd_nan.py', nan_at_site_1)}:Crowd")
    assert validate_game(game) is None  # (the checks pass: they do not go where the NaN is)
    policy, noise = Uniform(game.n_states, game.n_actions), noise_batch(game, "exact")
    message = (
        r"^game 'crowd': the reward is nan at t = 1, state 1, action 0 along this policy's rollout \(noise path 0\), "
        r"whose mean fields are finite there, at a mean field the checks did not visit"
    )
    with pytest.raises(GameError, match=message):
        evaluate(game, policy, noise)
    with mfax.games.validate.unchecked():
        assert np.isnan(evaluate(game, policy, noise).exploitability)
    result = CliRunner().invoke(
        app, ["train", "--game", f"{tmp_path / 'crowd_nan.py'}:Crowd", "--algo", "fp", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2 and "the reward is nan at t = 1, state 1, action 0" in result.stderr
    # met only once training moved the population there: the line says when, and what was kept
    later_file = _crowd_rewarding(tmp_path / "crowd_nan_later.py", nan_at_site_1.replace("> 0.3", "> 0.4"))
    args = ["train", "--game", f"{later_file}:Crowd", "--algo", "fp", "--iterations", "6"]
    later = CliRunner().invoke(app, [*args, "--eval-every", "1", "--out", str(tmp_path / "later"), "--no-plots"])
    assert later.exit_code == 2 and "the reward is nan at t = " in later.stderr, later.output
    assert "(found evaluating iteration 1; stopped, last good checkpoint (iteration 0) kept in " in later.stderr


def test_a_reward_nan_after_a_row_of_huge_finite_rewards_is_still_named(tmp_path):
    """The guard found a non-finite reward by each step's sum: a row of large finite
    rewards (3e38 at every action of a state, at t = 0) overflowed that sum to inf, the
    guard looked for the culprit in that row, found none, and said nothing about the NaN
    of t = 1 (the figures were NaN without a word). It now names the NaN."""
    huge_then_nan = (
        "        r = jnp.where((t == 0) & (jnp.arange(self.n_states)[:, None] == 0), 3e38, r)\n"
        "        return jnp.where((mu[:, None] > 0.3) & (jnp.arange(self.n_states)[:, None] == 1), jnp.nan, r)\n"
    )
    game = mfax.make(f"{_crowd_rewarding(tmp_path / 'crowd_huge.py', huge_then_nan)}:Crowd")
    policy, noise = Uniform(game.n_states, game.n_actions), noise_batch(game, "exact")
    with pytest.raises(GameError, match=r"^game 'crowd': the reward is nan at t = 1, state 1, action 0 along"):
        evaluate(game, policy, noise)


def test_a_learned_best_response_says_when_it_is_no_bound_or_diverged():
    """On sampled paths the learned gain was said to bound the non-anticipative figure from
    below (0.475 above the exact 0.393 on 2 sampled sis paths); a diverged deviator's NaN
    was called "negative" with exit status 0 (found by an independent audit)."""
    runner = CliRunner()
    base = ["eval", "--game", "sis", "--policy", "uniform", "--set", "horizon=3", "--learned-br"]
    sampled = runner.invoke(app, [*base, "--noise", "sample", "--paths", "2", "--br-iterations", "3", "--json"])
    assert sampled.exit_code == 0, sampled.output
    # with --json the report is on stderr and stdout is the JSON object alone
    assert "an estimate, not a proven bound" in sampled.stderr and "lies between" not in sampled.stderr
    assert json.loads(sampled.stdout)["learned_br_seed"] == 0
    diverged = runner.invoke(app, [*base, "--br-lr", "1e30", "--br-iterations", "3", "--no-progress"])
    assert diverged.exit_code == 2, diverged.output
    assert diverged.stderr.strip().startswith("mfax: error: the learned best response diverged (the deviator's return")
