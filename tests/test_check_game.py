"""The game checker: one defective game per named check (fault injection), each failing
that check and no other; the report, the one-line refusal, ``mfax check-game`` and
``--no-check``; and the helpers that make a correct game short, against hand-written
equivalents."""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import mfax
from conftest import ALL_GAMES
from mfax.dynamics import noise_batch
from mfax.evaluation import evaluate
from mfax.games import (
    SIS,
    BeachBar,
    Game,
    GameError,
    Kernel,
    NoCommonNoise,
    NoiseSupport,
    Spread,
    check_game,
    dense_kernel,
    deterministic_kernel,
    registry,
    unchecked,
    validate,
    validate_game,
)
from mfax.games.validate import CHECK_NAMES, second_mean_field
from mfax.params import param
from mfax.policies import Uniform
from mfax.run.cli import app
from test_validation import Delegate, IndexOutOfRange, NaNReward, NegativeProbability, ShortNoisePath, SISDelegate

runner = CliRunner()
EXPENSIVE = {
    "vmap.noise_paths",
    "vmap.mean_fields",
    "jit.no_retrace",
    "jit.pure",
    "noise.shared_prefix",
    "noise.sampled_as_supported",
}
KERNEL_VALUES = {
    "kernel.dtypes",
    "kernel.probabilities_finite",
    "kernel.probabilities_nonnegative",
    "kernel.probabilities_sum_to_one",
    "kernel.indices_in_range",
}


# -- one defect per check ----------------------------------------------------------------------


class RowsSumToHalf(SISDelegate):
    name: ClassVar[str] = "rows_sum_to_half"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(prob=k.prob.at[1, 0].multiply(0.5))


class RowsSumToHalfMidway(SISDelegate):
    """A defect at neither checked end (t = 3 of 8): it passed every check and halved the
    mass of the population that reached it."""

    name: ClassVar[str] = "rows_sum_to_half_midway"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(prob=k.prob.at[1, 0].multiply(jnp.where(t == 3, 0.5, 1.0)))


class RowsLeakAwayFromMu0(SISDelegate):
    """Rows normalised right only at the initial mean field (a normaliser computed from
    ``mu_0``, say): every check at ``mu_0`` passes, and the population loses mass as soon
    as its distribution moves, from the first step on."""

    name: ClassVar[str] = "rows_leak_away_from_mu0"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        moved = jnp.max(jnp.abs(mu - self.initial_mean_field(noise))) > 1e-3
        return k._replace(prob=k.prob.at[1, 0].multiply(jnp.where(moved, 0.5, 1.0)))


class NaNRewardAwayFromMu0(SISDelegate):
    """A reward dividing by a mass that ``mu_0`` keeps away from zero only at ``t = 2``."""

    name: ClassVar[str] = "nan_reward_away_from_mu0"

    def reward(self, mu, mu_next, noise, t):
        r = super().reward(mu, mu_next, noise, t)
        moved = jnp.max(jnp.abs(mu - self.initial_mean_field(noise))) > 1e-3
        return r.at[0, 1].set(jnp.where(moved & (t == 2), jnp.nan, r[0, 1]))


class IndexOutOfRangeMidway(SISDelegate):
    name: ClassVar[str] = "index_out_of_range_midway"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(index=k.index.at[1, 1].set(jnp.where(t == 3, 2, k.index[1, 1])))


class NaNRewardMidway(SISDelegate):
    name: ClassVar[str] = "nan_reward_midway"

    def reward(self, mu, mu_next, noise, t):
        r = super().reward(mu, mu_next, noise, t)
        return r.at[1, 0].set(jnp.where(t == 3, jnp.nan, r[1, 0]))


class NaNObservationMidway(SISDelegate):
    """Not finite at t=3 only: the observation was checked at t=0 and T (a review)."""

    name: ClassVar[str] = "nan_observation_midway"

    def observation(self, mu, noise, t):
        return jnp.where(t == 3, jnp.nan, super().observation(mu, noise, t))


class DescribeNoiseTypo(SISDelegate):
    """A typo in the words for the plots: every check passed, the plots of a finished
    training ended in a traceback (a review)."""

    name: ClassVar[str] = "describe_noise_typo"

    def describe_noise(self, noise):
        return f"regime {noise.regmie}"


class SecondStageRowsSumToHalf(SISDelegate):
    name: ClassVar[str] = "second_stage_rows_sum_to_half"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)  # then: intermediate j stays at j, with mass 0.5 from j = 1
        return k._replace(then=Spread(jnp.array([[0], [1]], jnp.int32), jnp.array([[1.0], [0.5]])))


class FloatIndices(SISDelegate):
    name: ClassVar[str] = "float_indices"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(index=k.index.astype(jnp.float32))


class RewardPerState(SISDelegate):
    name: ClassVar[str] = "reward_per_state"

    def reward(self, mu, mu_next, noise, t):
        return super().reward(mu, mu_next, noise, t)[:, 0]  # (n,): would broadcast silently


class SupportWeightsSumTo09(SISDelegate):
    name: ClassVar[str] = "support_weights_sum_to_0_9"

    def noise_support(self):
        support = super().noise_support()
        return NoiseSupport(support.noise, 0.9 * support.weight)


class ObservationGrowsWithT(SISDelegate):
    name: ClassVar[str] = "observation_grows_with_t"

    def observation(self, mu, noise, t):
        return jnp.full((int(t) + 1,), mu[1])  # eager only: the shape follows t


class PythonIfInKernel(SISDelegate):
    name: ClassVar[str] = "python_if_in_kernel"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        if mu[1] > 0.5:  # a Python `if` on a traced value: not jittable
            return k
        return k


class HostCallbackObservation(SISDelegate):
    name: ClassVar[str] = "host_callback_observation"

    def observation(self, mu, noise, t):
        obs = super().observation(mu, noise, t)
        return jax.pure_callback(np.asarray, jax.ShapeDtypeStruct(obs.shape, obs.dtype), obs)  # jit yes, vmap no


class FreshStaticField(SISDelegate):
    """A static field made anew at each construction (a ``functools.partial`` is equal
    only to itself): every program using a second instance built alike compiles again."""

    name: ClassVar[str] = "fresh_static_field"
    scale: Callable = eqx.field(static=True, default_factory=lambda: functools.partial(operator.mul, 1.0))

    def reward(self, mu, mu_next, noise, t):
        return self.scale(super().reward(mu, mu_next, noise, t))


def _under_vmap(batched_rule):
    """The identity on its arrays, ``batched_rule`` on each under ``jax.vmap`` (public
    ``jax.custom_batching``): a game that behaves differently when batched."""

    @jax.custom_batching.custom_vmap
    def f(*xs):
        return xs if len(xs) > 1 else xs[0]

    @f.def_vmap
    def _rule(axis_size, in_batched, *xs):  # called when any argument is batched
        if len(xs) == 1:
            return batched_rule(xs[0]), in_batched[0]
        return tuple(batched_rule(x) for x in xs), tuple(in_batched)

    return f


class ProbabilitiesSwappedUnderVmap(SISDelegate):
    """Under vmap the two successors' probabilities trade places: another distribution."""

    name: ClassVar[str] = "probabilities_swapped_under_vmap"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(prob=_under_vmap(lambda p: p[..., ::-1])(k.prob))


_KERNEL_TRACES: list[int] = []


class KernelCountsItsTraces(SISDelegate):
    """A kernel reading Python state its own traces change (a module-level list that grows
    with every trace): its values depend on how often the tools traced it before. It
    passed every check, and ``mfax.solve`` gave a negative exploitability (a user's
    1-D crowd game, found by an audit)."""

    name: ClassVar[str] = "kernel_counts_its_traces"

    def kernel(self, mu, noise, t):
        _KERNEL_TRACES.append(1)
        k = super().kernel(mu, noise, t)
        return k._replace(prob=k.prob[..., ::-1]) if len(_KERNEL_TRACES) % 2 else k


class SuccessorsReorderedUnderVmap(SISDelegate):
    """Under vmap the successors are listed the other way round, each with its own
    probability: the same distribution (a grid point bracketed from the other side)."""

    name: ClassVar[str] = "successors_reordered_under_vmap"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return Kernel(*_under_vmap(lambda x: x[..., ::-1])(k.index, k.prob))


class Float32OnlyDifferenceUnderVmap(SISDelegate):
    """Under vmap, and in float32 only, the reward moves by 1e-2: what rounding amplified
    by a fine grid looks like to the checker (the macro economy at 5000 wealth points)."""

    name: ClassVar[str] = "float32_only_difference_under_vmap"

    def reward(self, mu, mu_next, noise, t):
        r = super().reward(mu, mu_next, noise, t) + 0.0 * mu[1]  # (SIS's reward is constant: batch it)
        return _under_vmap(lambda x: x + (1e-2 if x.dtype == jnp.float32 else 0.0))(r)


class FalseSharedPrefix(SISDelegate):
    """Declares that every path agrees until the horizon, but SIS's shocks move its
    kernel from path to path."""

    name: ClassVar[str] = "false_shared_prefix"

    @property
    def shared_until(self) -> int:
        return self.horizon

    def prefix_key(self, noise):
        return jnp.zeros((1,))


class IfOnTracedParameter(SISDelegate):
    """A Python ``if`` on a traced parameter: fine with a number, a crash in a sweep,
    which maps over it."""

    name: ClassVar[str] = "if_on_traced_parameter"
    bonus: float = param(0.2, "a reward bonus (traced: a sweep may map over it)", traced=True)

    def reward(self, mu, mu_next, noise, t):
        return super().reward(mu, mu_next, noise, t) + (0.0 if self.bonus < 0.5 else self.bonus)


class SupportWeightsOnOnePath(SISDelegate):
    """Support weights that are not sample_noise's probabilities (all on the first path):
    training, which draws paths by the weights, and sampled evaluation, which calls
    sample_noise, would see two different games."""

    name: ClassVar[str] = "support_weights_on_one_path"

    def noise_support(self):
        support = self.sis.noise_support()
        return NoiseSupport(support.noise, jnp.zeros_like(support.weight).at[0].set(1.0))


class InfiniteAggregate(SISDelegate):
    """An aggregate that divides by an empty mass: infinite (NaN, "not defined at t", is
    allowed)."""

    name: ClassVar[str] = "infinite_aggregate"

    def aggregates(self, mu, noise, t):
        return {"undefined here": jnp.float32(jnp.nan), "share per empty state": 1.0 / jnp.zeros(())}


class SupportPathsAsLists(SISDelegate):
    """Support paths given as nested Python lists: thousands of leaves where
    sample_noise has two arrays."""

    name: ClassVar[str] = "support_paths_as_lists"

    def noise_support(self):
        support = super().noise_support()
        return NoiseSupport(jax.tree.map(lambda x: np.asarray(x).tolist(), support.noise), support.weight)


class SupportWithoutPathAxis(SISDelegate):
    """One support path given without its leading path axis."""

    name: ClassVar[str] = "support_without_path_axis"

    def noise_support(self):
        support = super().noise_support()
        return NoiseSupport(jax.tree.map(lambda x: x[0], support.noise), jnp.ones(1))


class SupportWithAWeightMissing(SISDelegate):
    """One weight fewer than paths: it said "leaf has shape (8, 4); sampled paths have
    (4,), so (7, 4)", never naming the weights (found by an audit of the plug-in path)."""

    name: ClassVar[str] = "support_with_a_weight_missing"

    def noise_support(self):
        support = super().noise_support()
        weight = support.weight[1:] / jnp.sum(support.weight[1:])
        return NoiseSupport(support.noise, weight)


class SupportWithAWeightCut(SISDelegate):
    """One weight fewer than paths, the rest as they were: it was said to sum to 0.9985,
    and the check naming the number of weights was skipped (a review)."""

    name: ClassVar[str] = "support_with_a_weight_cut"

    def noise_support(self):
        support = super().noise_support()
        return NoiseSupport(support.noise, support.weight[1:])


DEFECTS = [
    (
        SupportWithAWeightMissing,
        {"noise_support.paths_shape"},
        "noise support has 512 paths but 511 weights; give one weight per path",
    ),
    (
        SupportWithAWeightCut,
        {"noise_support.paths_shape"},
        "noise support has 512 paths but 511 weights; give one weight per path",
    ),
    (
        SupportPathsAsLists,
        {"noise_support.paths_shape"},
        "got a SISNoise of 5120 leaves and PyTreeDef(CustomNode(namedtuple[SISNoise], [*, *])); lists where arrays",
    ),
    (SupportWithoutPathAxis, {"noise_support.paths_shape"}, "noise support leaf has shape () and sample_noise's ()"),
    (RowsSumToHalf, {"kernel.probabilities_sum_to_one"}, "kernel row (s=1, a=0) at t=0 sums to 0.5"),
    (
        SecondStageRowsSumToHalf,
        {"kernel.probabilities_sum_to_one"},
        "second kernel stage row (j=1) at t=0 sums to 0.5",
    ),
    (RowsSumToHalfMidway, {"kernel.probabilities_sum_to_one"}, "kernel row (s=1, a=0) at t=3 sums to 0.5"),
    (
        RowsLeakAwayFromMu0,
        {"kernel.probabilities_sum_to_one"},
        "kernel row (s=1, a=0) at t=0 at the second mean field (mu_0 mixed half and half with a fixed full-support "
        "distribution) sums to 0.5",
    ),
    (NaNRewardAwayFromMu0, {"reward.finite"}, "reward at t=2 at the second mean field (mu_0 mixed"),
    (IndexOutOfRangeMidway, {"kernel.indices_in_range"}, "kernel index at (s=1, a=1, k=0) at t=3 is 2; states"),
    (NaNRewardMidway, {"reward.finite"}, "reward at t=3 is nan at (s=1, a=0)"),
    (NaNObservationMidway, {"observation.finite"}, "observation at t=3 is nan at 0; every entry must be finite"),
    (DescribeNoiseTypo, {"noise.describe"}, "describe_noise failed on a noise path: AttributeError: "),
    (NegativeProbability, {"kernel.probabilities_nonnegative"}, "kernel row (s=0, a=1) at t=0 has a negative entry"),
    (IndexOutOfRange, {"kernel.indices_in_range"}, "kernel index at (s=1, a=1, k=1) at t=0 is 2; states are 0..1"),
    (FloatIndices, {"kernel.dtypes"}, "kernel indices at t=0 must be int32, got float32"),
    (NaNReward, {"reward.finite"}, "reward at t=0 is nan at (s=1, a=0)"),
    (RewardPerState, {"reward.shape"}, "reward at t=0 must have shape (2, 2), got (2,)"),
    (ShortNoisePath, {"noise.path_length"}, "observation at t=T=8 reads out of bounds"),
    (SupportWeightsSumTo09, {"noise_support.weights_sum_to_one"}, "noise support weight vector sums to 0.9"),
    (
        ObservationGrowsWithT,
        {"jit.traceable", "observation.constant_shape"},
        "observation has shape (1,) at t=0 and (2,) at t=1; it must not depend on t",
    ),
    (PythonIfInKernel, {"jit.traceable"}, "kernel: TracerBoolConversionError"),
    (HostCallbackObservation, {"vmap.noise_paths", "vmap.mean_fields"}, "does not trace under jax.vmap"),
    (FreshStaticField, {"jit.no_retrace"}, "static fields not equal in two instances built alike: scale"),
    (
        IfOnTracedParameter,
        {"jit.traceable"},
        "reward and terminal_reward: TracerBoolConversionError: Attempted boolean conversion of traced array with "
        "shape bool[]: a Python "
        "if, bool(), int() or numpy call on a traced value (t, the mean field, the noise, or a parameter declared "
        "traced=True); write it with jnp.where or jax.lax.cond, or make that parameter static",
    ),
    (SupportWeightsOnOnePath, {"noise.sampled_as_supported"}, "drew noise path 1, whose support weight is 0"),
    (
        InfiniteAggregate,
        {"aggregates.scalars"},
        "aggregate 'share per empty state' at t=0 is inf; an aggregate is finite, or NaN where not defined",
    ),
    (FalseSharedPrefix, {"noise.shared_prefix"}, "have the same prefix_key but different kernel at mu mu_0 at t = "),
    (
        ProbabilitiesSwappedUnderVmap,
        {"vmap.noise_paths", "vmap.mean_fields"},
        "['kernel'][0]: the next-state distribution of state 0, action 0 differs: E[v(s')] for a random v is",
    ),
    (
        KernelCountsItsTraces,
        {"jit.pure"},
        "after one call of each function, 0.",
    ),
]


@functools.cache
def report_of(cls: type[Game]):
    """One report per defective game, shared by the tests that read it."""
    return check_game(cls())


@pytest.mark.parametrize(("cls", "failed", "detail"), DEFECTS, ids=[c.name for c, _, _ in DEFECTS])
def test_each_defect_fails_its_named_check_and_no_other(cls, failed, detail):
    report = report_of(cls)
    assert {r.name for r in report.failures} == failed, str(report)
    assert any(detail in r.detail for r in report.failures), str(report)
    assert not report.ok and [r.name for r in report.results] == list(CHECK_NAMES)
    for result in report.results:
        if result.status == "skip":  # only what the failure keeps from running
            assert result.name in EXPENSIVE | KERNEL_VALUES | {"reward.finite", "observation.finite"} | {
                "noise.path_length",
                "observation.shape",
                "aggregates.scalars",
                "kernel.shape",
                "reward.shape",
                "noise_support.paths_shape",
            }, str(report)
    with pytest.raises(GameError) as info:
        report.raise_if_failed()
    text = str(info.value)
    assert text.startswith(f"game {cls.name!r}: {report.failures[0].detail} (check {report.failures[0].name}")
    assert "\n" not in text


@pytest.mark.parametrize("cls", [FreshStaticField, NaNReward])
def test_validate_game_refuses_the_first_cheap_failure_only(cls):
    """validate_game (make, train, eval) runs the cheap checks: a game that fails only
    vmap or retracing is let through."""
    expensive_only = {r.name for r in report_of(cls).failures} <= EXPENSIVE
    if expensive_only:
        validate_game(cls())
    else:
        with pytest.raises(GameError, match=r"^game 'nan_reward': reward at t=0 is nan .*\(check reward.finite\)$"):
            validate_game(cls())


def test_a_kernel_that_does_not_trace_skips_only_what_needs_it():
    report = report_of(PythonIfInKernel)
    for name in ("kernel.shape", *sorted(KERNEL_VALUES), "noise.path_length"):
        assert report[name].status == "skip", str(report)
    for name in ("reward.shape", "reward.finite", "observation.finite", "noise_support.weights_sum_to_one"):
        assert report[name].status == "pass", str(report)


class PythonIfInSampleNoise(SISDelegate):
    name: ClassVar[str] = "python_if_in_sample_noise"

    def sample_noise(self, key):
        noise = super().sample_noise(key)
        if noise.severe > 0:  # a Python `if` on a traced value
            return noise._replace(report_error=-noise.report_error)
        return noise


def test_noise_that_does_not_trace_is_named_and_the_rest_skipped_without_a_crash():
    report = check_game(PythonIfInSampleNoise())
    assert [r.name for r in report.failures] == ["jit.traceable"], str(report)
    assert report["jit.traceable"].detail.startswith("sample_noise: TracerBoolConversionError")
    assert report["sizes.integers"].status == report["noise_support.weights_sum_to_one"].status == "pass"
    assert {r.status for r in report.results[3:] if r.name != "noise_support.weights_sum_to_one"} == {"skip"}


class MeanFieldTooLong(SISDelegate):
    name: ClassVar[str] = "mean_field_too_long"

    def initial_mean_field(self, noise):
        return jnp.append(super().initial_mean_field(noise), 0.0)


def test_a_mean_field_of_the_wrong_shape_stops_before_the_functions_traced_with_it():
    report = check_game(MeanFieldTooLong())
    assert [r.name for r in report.failures] == ["initial_mean_field.shape"], str(report)
    assert report.failures[0].detail == "initial mean field must have shape (2,), got (3,)"
    assert report["jit.traceable"].status == report["kernel.shape"].status == "skip"


def test_report_reads_one_line_per_check_and_raises_the_first_failure():
    report = report_of(RowsSumToHalf)
    lines = str(report).splitlines()
    assert len(lines) == len(CHECK_NAMES) + 2  # and the paths covered, then the counts
    assert lines[-2].startswith("checked on each of the 512 noise support paths: the initial mean field")
    assert "FAIL kernel.probabilities_sum_to_one: kernel row (s=1, a=0) at t=0 sums to 0.5; it must sum to 1" in lines
    assert "PASS kernel.indices_in_range" in lines and "SKIP jit.no_retrace: needs every other check to pass" in lines
    assert lines[-1] == "game 'rows_sum_to_half': 24 passed, 1 failed, 6 skipped"
    with pytest.raises(GameError, match=r"sums to 0\.5; it must sum to 1 \(check kernel.probabilities_sum_to_one\)$"):
        report.raise_if_failed()
    assert report.as_dict()["ok"] is False and json.dumps(report.as_dict())


def test_unchecked_lets_a_defective_game_through_and_is_scoped():
    with unchecked():
        validate_game(NaNReward())  # (eval --no-check: evaluates it, below)
    with pytest.raises(GameError, match=r"reward at t=0 is nan at \(s=1, a=0\).*\(check reward.finite\)"):
        validate_game(NaNReward())


def test_a_kernel_is_compared_under_vmap_as_a_distribution_not_as_its_successor_lists():
    report = check_game(SuccessorsReorderedUnderVmap())
    assert report.ok and {r.status for r in report.results} == {"pass"}, str(report)
    assert report["vmap.noise_paths"].detail == "" and report["vmap.mean_fields"].detail == ""


def test_a_float32_difference_under_vmap_that_vanishes_in_float64_passes_and_is_named():
    report = check_game(Float32OnlyDifferenceUnderVmap())
    assert report.ok, str(report)
    for name in ("vmap.noise_paths", "vmap.mean_fields"):
        detail = report[name].detail
        assert detail.startswith("the same in float64; in float32 they differ by rounding"), str(report)
        assert "['reward']" in detail and "under vmap" in detail, detail


# slow: a second precision of the test above (a vmap check that passes with an empty
# detail: test_a_kernel_is_compared_under_vmap_as_a_distribution_not_as_its_successor_lists)
@pytest.mark.slow
def test_a_float32_only_difference_under_vmap_is_none_in_float64():
    with jax.enable_x64(True):  # already in float64: the difference is the game's
        report = check_game(Float32OnlyDifferenceUnderVmap())
    assert report.ok, str(report)  # (it is float32-only: in float64 there is none)
    assert report["vmap.noise_paths"].detail == ""


@pytest.mark.slow
def test_the_macro_economy_on_a_fine_grid_passes_the_vmap_checks():
    """5000 wealth points: in float32 vmap and one path at a time round the prices
    differently (~2e-6), which moves interpolation weights by up to ~1e-3 and brackets
    some next wealth by the neighbouring grid points; equal in float64 (it failed both
    vmap checks before)."""
    report = check_game(mfax.make("macro", num_wealth=5000))
    assert report.ok, str(report)
    assert report["vmap.noise_paths"].detail.startswith("the same in float64"), str(report)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_GAMES)
@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_packaged_games_pass_every_check(name, x64):
    with jax.enable_x64(x64):
        report = check_game(mfax.make(name))
    assert report.ok and {r.status for r in report.results} == {"pass"}, str(report)


# -- the command line --------------------------------------------------------------------------


def test_check_game_command_exit_codes_and_output(monkeypatch):
    monkeypatch.setitem(registry._GAMES, RowsSumToHalf.name, RowsSumToHalf)
    result = runner.invoke(app, ["check-game", RowsSumToHalf.name])
    assert result.exit_code == 1, result.output
    assert "FAIL kernel.probabilities_sum_to_one: kernel row (s=1, a=0) at t=0 sums to 0.5" in result.stdout
    result = runner.invoke(app, ["check-game", RowsSumToHalf.name, "--json"])
    record = json.loads(result.stdout)
    assert result.exit_code == 1 and record["ok"] is False
    assert {c["name"] for c in record["checks"] if c["status"] == "fail"} == {"kernel.probabilities_sum_to_one"}
    result = runner.invoke(app, ["check-game", "sis", "--set", "horizon=2"])  # a packaged game passes them all
    assert result.exit_code == 0 and "game 'sis': 31 passed, 0 failed, 0 skipped" in result.stdout, result.output
    for args, message in (
        (["check-game", "no_such_game"], "unknown game 'no_such_game'"),
        (["check-game", "sis", "--set", "horizon=x"], "parameter 'horizon'"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.stderr.startswith("mfax: error: ") and message in result.stderr


def test_eval_refuses_a_defective_game_unless_no_check(monkeypatch):
    monkeypatch.setitem(registry._GAMES, NaNReward.name, NaNReward)
    result = runner.invoke(app, ["eval", "--game", NaNReward.name, "--json"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "mfax: error: game 'nan_reward': reward at t=0 is nan at (s=1, a=0); every entry must be finite "
        "(check reward.finite)"
    ]
    result = runner.invoke(app, ["eval", "--game", NaNReward.name, "--json", "--no-check"])
    assert result.exit_code == 0, result.output
    # JSON as other programs read it: NaN and Infinity are not JSON (they were written as such)
    record = json.loads(result.stdout.splitlines()[-1], parse_constant=lambda word: pytest.fail(f"{word} in --json"))
    assert record["game"] == NaNReward.name and record["policy_return"] is None  # what the check stops


def _train_args(tmp_path, out: str) -> list[str]:
    args = ["train", "--game", RowsSumToHalf.name, "--algo", "fp", "--iterations", "1", "--eval-every", "1"]
    return [*args, "--no-plots", "--no-progress", "--json", "--out", str(tmp_path / out)]


def test_train_refuses_a_defective_game_before_writing(monkeypatch, tmp_path):
    monkeypatch.setitem(registry._GAMES, RowsSumToHalf.name, RowsSumToHalf)
    result = runner.invoke(app, _train_args(tmp_path, "refused"))
    assert result.exit_code == 2 and "(check kernel.probabilities_sum_to_one)" in result.stderr
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_train_no_check_trains_a_game_the_checks_refuse(monkeypatch, tmp_path):
    monkeypatch.setitem(registry._GAMES, RowsSumToHalf.name, RowsSumToHalf)
    result = runner.invoke(app, [*_train_args(tmp_path, "run"), "--no-check"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["iterations"] == 1


class RewardOfThreeStates(SISDelegate):
    name: ClassVar[str] = "reward_of_three_states"

    def reward(self, mu, mu_next, noise, t):
        return jnp.zeros((3, 1)) * super().reward(mu, mu_next, noise, t)  # (3, 1) * (2, 2): does not trace


def test_train_no_check_on_a_game_that_fails_to_trace_names_the_defect_and_leaves_the_directory_empty(
    monkeypatch, tmp_path
):
    monkeypatch.setitem(registry._GAMES, RewardOfThreeStates.name, RewardOfThreeStates)
    args = [*_train_args(tmp_path, "run"), "--no-check"]
    args[args.index(RowsSumToHalf.name)] = RewardOfThreeStates.name
    result = runner.invoke(app, args)
    # (with --json, the lines for a reader, "run directory: ...", are on stderr too)
    lines = [line for line in result.stderr.splitlines() if line.startswith("mfax: ")]
    assert result.exit_code == 2 and len(lines) == 1 and result.stdout == "", result.output
    assert lines[0].startswith("mfax: error: game 'reward_of_three_states': reward and terminal_reward: TypeError:")
    assert "(check jit.traceable); found when the run failed with the game checks off (--no-check)" in lines[0]
    assert isinstance(result.exception, SystemExit)  # no traceback: the one line above
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["mfax.lock"]  # the same command can run again
    with pytest.raises(mfax.GameError, match=r"game checks off \(mfax\.games\.unchecked\(\)\)"), unchecked():
        mfax.solve(RewardOfThreeStates.name, algo="fp", iterations=1)  # from Python: Python's words
    with pytest.raises(ValueError) as raised, unchecked():  # a failure the skipped checks of a correct
        validate_game(mfax.make("sis", horizon=2))  # game do not explain propagates unchanged
        raise ValueError("not the game's")
    assert type(raised.value) is ValueError and str(raised.value) == "not the game's"


def test_a_reward_of_another_shape_is_refused_with_the_checks_off_too(monkeypatch, tmp_path):
    """A ``(n,)`` reward broadcasts against ``(n, m)`` arrays, so with the checks off a run
    trained on it silently; its shape is now refused as it is traced."""
    monkeypatch.setitem(registry._GAMES, RewardPerState.name, RewardPerState)
    args = [*_train_args(tmp_path, "run"), "--no-check"]
    args[args.index(RowsSumToHalf.name)] = RewardPerState.name
    result = runner.invoke(app, args)
    # (with --json, the lines for a reader, "run directory: ...", are on stderr too)
    lines = [line for line in result.stderr.splitlines() if line.startswith("mfax: ")]
    assert result.exit_code == 2 and len(lines) == 1 and result.stdout == "", result.output
    assert "game 'reward_per_state': reward must return shape (n_states, n_actions) = (2, 2), got (2,)" in lines[0]
    with pytest.raises(mfax.GameError, match=r"reward must return shape .* got \(2,\)"), unchecked():
        mfax.solve(RewardPerState.name, algo="fp", iterations=1)


# -- helpers for writing games -------------------------------------------------------------------


def test_deterministic_kernel_is_the_hand_written_one():
    nxt = jnp.array([[0, 1, 2], [0, 1, 2], [1, 2, 2]], jnp.int32)
    kernel = deterministic_kernel(nxt)
    by_hand = Kernel(nxt[..., None], jnp.ones((3, 3, 1)))
    for a, b in zip(kernel, by_hand, strict=True):
        assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b))
    then = Spread(jnp.array([[0], [1], [2], [2]], jnp.int32), jnp.ones((4, 1)))
    assert deterministic_kernel(nxt.at[0, 0].set(3), then=then).then is then
    with pytest.raises(GameError, match=r"next_states\[2, 1\] is 3; states are 0..2"):
        deterministic_kernel(nxt.at[2, 1].set(3))
    assert jax.jit(deterministic_kernel)(nxt).index.dtype == jnp.int32


def test_dense_kernel_is_sparse_validated_and_equal_to_the_matrix():
    rng = np.random.default_rng(0)
    matrix = rng.random((4, 3, 4)) * (rng.random((4, 3, 4)) < 0.5)
    matrix[..., 0] += 0.1  # every row has a non-zero entry
    matrix /= matrix.sum(-1, keepdims=True)
    kernel = dense_kernel(matrix)
    assert kernel.index.shape == (4, 3, int((matrix > 0).sum(-1).max())) and kernel.index.dtype == jnp.int32
    rebuilt = np.zeros_like(matrix)
    for s in range(4):
        for a in range(3):
            np.add.at(rebuilt[s, a], np.asarray(kernel.index[s, a]), np.asarray(kernel.prob[s, a], np.float64))
    np.testing.assert_allclose(rebuilt, matrix, rtol=1e-6)
    full = dense_kernel(jnp.asarray(matrix))  # JAX arrays keep every state: K = n
    assert full.index.shape == (4, 3, 4) and np.array_equal(full.index[2, 1], np.arange(4))
    assert jax.jit(dense_kernel)(jnp.asarray(matrix)).prob.shape == (4, 3, 4)
    bad = matrix.copy()
    bad[1, 2] *= 0.5
    with pytest.raises(GameError, match=r"dense kernel row \(s=1, a=2\) sums to 0\.5; it must sum to 1"):
        dense_kernel(bad)
    with pytest.raises(GameError, match=r"must have shape \(n, m, n\), got \(4, 3, 3\)"):
        dense_kernel(matrix[..., :3])


class Crowd(NoCommonNoise):
    """Three places on a line, move left/stay/right (deterministic), a crowd-averse
    reward; written with the helpers."""

    name: ClassVar[str] = "crowd_helpers"
    n_states: ClassVar[int] = 3
    n_actions: ClassVar[int] = 3
    horizon: ClassVar[int] = 4
    gamma: ClassVar[float] = 0.9

    def state_features(self):
        return jnp.linspace(0.0, 1.0, 3)[:, None]

    def action_values(self):
        return jnp.array([-1.0, 0.0, 1.0])

    def initial_mean_field(self, noise):
        return jnp.array([0.6, 0.3, 0.1])

    def kernel(self, mu, noise, t):
        return deterministic_kernel(jnp.clip(jnp.arange(3)[:, None] + jnp.arange(-1, 2)[None, :], 0, 2))

    def reward(self, mu, mu_next, noise, t):
        return -jnp.log(mu_next + 0.1)[:, None] - 0.1 * jnp.abs(self.action_values())[None, :]

    def observation(self, mu, noise, t):
        return mu


class CrowdByHand(Game):
    """:class:`Crowd` with its noise and kernel written out."""

    name: ClassVar[str] = "crowd_by_hand"
    n_states: ClassVar[int] = 3
    n_actions: ClassVar[int] = 3
    horizon: ClassVar[int] = 4
    gamma: ClassVar[float] = 0.9
    crowd: ClassVar[Crowd] = Crowd()

    def state_features(self):
        return self.crowd.state_features()

    def action_values(self):
        return self.crowd.action_values()

    def sample_noise(self, key):
        return jnp.zeros(())

    def noise_support(self):
        return NoiseSupport(jnp.zeros(1), jnp.ones(1))

    def initial_mean_field(self, noise):
        return self.crowd.initial_mean_field(noise)

    def kernel(self, mu, noise, t):
        nxt = jnp.clip(jnp.arange(3)[:, None] + jnp.arange(-1, 2)[None, :], 0, 2).astype(jnp.int32)
        return Kernel(nxt[..., None], jnp.ones((3, 3, 1)))

    def reward(self, mu, mu_next, noise, t):
        return self.crowd.reward(mu, mu_next, noise, t)

    def observation(self, mu, noise, t):
        return mu

    @property
    def own_history_informative(self):
        return False


def test_a_game_written_with_the_helpers_passes_and_equals_the_hand_written_one():
    assert check_game(Crowd()).ok
    with jax.enable_x64(True):
        results = []
        for game in (Crowd(), CrowdByHand()):
            batch = noise_batch(game, "exact")
            assert batch.exact and batch.num_paths == 1
            results.append(evaluate(game, Uniform(3, 3), batch).as_dict())
    assert results[0] == results[1] and results[0]["exploitability_info"] is not None
    assert Crowd().describe_noise(Crowd().sample_noise(jax.random.PRNGKey(0))) == "no common noise"


class _ListedNoise:
    """Just enough of a game for the support-against-sampling check: ``rows`` listed with
    ``weights``, ``sample_noise`` drawing row ``i`` with probability ``draw[i]``."""

    def __init__(self, rows, weights, draw):
        self.rows, self.weights, self.draw = jnp.asarray(rows), jnp.asarray(weights), jnp.asarray(draw)

    def noise_support(self):
        return NoiseSupport(self.rows, self.weights)

    def sample_noise(self, key):
        return self.rows[jax.random.choice(key, self.rows.shape[0], p=self.draw)]


def test_support_against_sampling_is_neither_fooled_nor_alarmed():
    """A path listed twice (MFGLib's crowd motion on a 1 x 1 torus) had all its draws
    counted on the last listing; tens of thousands of equally likely paths (sis at
    horizon 16) failed whenever one was drawn three times. Neither is a defect; a sampler
    that never draws half of the paths, or draws one of weight 0, still is."""
    from mfax.games import validate

    key = jax.random.key(0)
    twice = _ListedNoise([[0.0], [1.0], [1.0]], [0.5, 0.25, 0.25], [0.5, 0.5, 0.0])
    assert "match the 3 support weights" in validate._sampled_as_supported(twice, key)
    many = 20_000
    rows = np.arange(many, dtype=np.float32)[:, None]
    uniform = _ListedNoise(rows, np.full(many, 1 / many), np.full(many, 1 / many))
    assert "match the 20000 support weights" in validate._sampled_as_supported(uniform, key)
    half = np.where(np.arange(many) < many // 2, 2 / many, 0.0)
    with pytest.raises(validate._Failed, match=r"noise paths .* together has support weight"):
        validate._sampled_as_supported(_ListedNoise(rows, np.full(many, 1 / many), half), key)
    with pytest.raises(validate._Failed, match="whose support weight is 0"):
        validate._sampled_as_supported(_ListedNoise([[0.0], [1.0]], [1.0, 0.0], [0.5, 0.5]), key)


# -- every noise path of the support ---------------------------------------------------------
_SIS_SUPPORT = SIS().noise_support()  # (a support: the game checks are not the subject)
_LAST = jax.tree.map(lambda x: np.asarray(x[-1]), _SIS_SUPPORT.noise)  # one path of 512, not the one drawn first


class RowsSumToHalfOnOnePath(SISDelegate):
    """Rows summing to 0.5 on one noise path of the support: the checks looked at the
    path drawn from PRNGKey(0) only, passed the game, and its runs lost mass there."""

    name: ClassVar[str] = "rows_sum_to_half_on_one_path"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        hit = jnp.all(noise.report_error == _LAST.report_error) & (noise.severe == _LAST.severe)
        return k._replace(prob=k.prob.at[1, 0].multiply(jnp.where(hit, 0.5, 1.0)))


class NoFiniteSupport(SISDelegate):
    name: ClassVar[str] = "no_finite_support"

    def noise_support(self):
        return None


def test_every_path_of_a_finite_support_is_checked_and_the_failing_one_named():
    first = SISDelegate.sis.sample_noise(jax.random.PRNGKey(0))
    assert not (np.array_equal(first.report_error, _LAST.report_error) and first.severe == _LAST.severe)
    report = report_of(RowsSumToHalfOnOnePath)
    assert {r.name for r in report.failures} == {"kernel.probabilities_sum_to_one"}, str(report)
    detail = report["kernel.probabilities_sum_to_one"].detail
    assert "kernel row (s=1, a=0) at t=0 sums to 0.5" in detail and detail.endswith("(on noise support path 511)")
    assert "checked on each of the 512 noise support paths: the initial mean field, and the kernel" in str(report)
    with pytest.raises(GameError, match=r"sums to 0.5; it must sum to 1 \(on noise support path 511\)"):
        validate_game(RowsSumToHalfOnOnePath())  # make, evaluate and training refuse it too


def test_noise_without_a_finite_support_is_checked_on_sampled_paths_and_says_so():
    from mfax.games.validate import SAMPLED_PATHS

    report = check_game(NoFiniteSupport())
    assert report.ok, str(report)
    assert report.coverage.startswith(f"{SAMPLED_PATHS} sampled noise paths (the noise has no finite support)")
    assert report.as_dict()["coverage"] == report.coverage


class WeightedReward(SISDelegate):
    name: ClassVar[str] = "weighted_reward"
    weight: float = param(1.0, "reward weight", traced=True)

    def reward(self, mu, mu_next, noise, t):
        return self.weight * super().reward(mu, mu_next, noise, t)


def test_a_parameter_of_the_wrong_type_is_the_one_line_make_gives():
    """A constructor call skips make's checks: check_game raised JAX's TypeError."""
    with pytest.raises(GameError, match="parameter 'weight' of game 'weighted_reward' must be float, got '2'"):
        check_game(WeightedReward(weight="2"))
    assert check_game(WeightedReward(weight=jnp.asarray(2.0))).ok  # an array: the checks read it


class RowsLeakWhereTheRolloutGoes(SISDelegate):
    """Rows that halve only at mean fields neither checked one is (mu_0 and the second
    mean field): every check passes, and a rollout lost mass without a word (a user's
    crowd game reached a total mass of 2.25, found by an audit)."""

    name: ClassVar[str] = "rows_leak_where_the_rollout_goes"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        mu0 = self.initial_mean_field(noise)
        away = (jnp.max(jnp.abs(mu - mu0)) > 1e-3) & (jnp.max(jnp.abs(mu - second_mean_field(mu0))) > 1e-3)
        return k._replace(prob=k.prob.at[1, 0].multiply(jnp.where(away, 0.5, 1.0)))


class NegativeRowsWhereTheRolloutGoes(SISDelegate):
    """Rows that still sum to 1 with a negative entry, only at mean fields neither checked
    one is: the total mass stayed 1, so the evaluation's guard let a mean field with mass
    -0.15 at a state through (found by an audit of the plug-in path)."""

    name: ClassVar[str] = "negative_rows_where_the_rollout_goes"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        mu0 = self.initial_mean_field(noise)
        away = (jnp.max(jnp.abs(mu - mu0)) > 1e-3) & (jnp.max(jnp.abs(mu - second_mean_field(mu0))) > 1e-3)
        return k._replace(prob=k.prob.at[:, :].set(jnp.where(away, jnp.array([1.8, -0.8]), k.prob)))


def test_a_rollout_with_negative_mass_is_refused_by_the_evaluation_unless_unchecked():
    from mfax.games.validate import unchecked

    game = NegativeRowsWhereTheRolloutGoes()
    assert check_game(game).ok
    batch = noise_batch(game, "exact")
    with pytest.raises(GameError, match=r"^game 'negative_rows_where_the_rollout_goes': the mean field reached mass -"):
        evaluate(game, Uniform(2, 2), batch)
    # ... naming the first row that is no probability vector where the rollout went (it
    # named the noise path only; a review)
    with pytest.raises(GameError, match=r"; first at t = 1: kernel row \(s=0, a=0\) has a negative entry -0\.8"):
        evaluate(game, Uniform(2, 2), batch)
    with unchecked():
        evaluate(game, Uniform(2, 2), batch)


def test_a_rollout_that_loses_mass_is_refused_by_the_evaluation_unless_unchecked():
    from mfax.games.validate import unchecked

    game = RowsLeakWhereTheRolloutGoes()
    assert check_game(game).ok
    batch = noise_batch(game, "exact")
    with pytest.raises(
        GameError, match=r"^game 'rows_leak_where_the_rollout_goes': the mean field's total mass moved "
    ) as refused:
        evaluate(game, Uniform(2, 2), batch)
    assert str(refused.value).endswith("; first at t = 1: kernel row (s=1, a=0) sums to 0.5; it must sum to 1")
    with unchecked():  # --no-check: the user's call
        assert np.isfinite(evaluate(game, Uniform(2, 2), batch).exploitability)


def test_a_training_that_fails_on_a_defect_only_check_game_finds_names_it_in_one_line():
    """A game whose observation breaks under vmap passes the training's checks (the
    vmap ones are check-game's): the training ended in a JAX traceback of a hundred
    lines (found by an audit of the plug-in path). Its failure now runs every check, and
    the one that fails is the error."""
    with pytest.raises(GameError) as err:
        mfax.solve(HostCallbackObservation(), "spg", iterations=1, noise="sample", paths=2, eval_paths=2)
    text = str(err.value)
    assert text.startswith("game 'host_callback_observation': does not trace under jax.vmap") and "\n" not in text
    assert "(check vmap.noise_paths" in text and text.endswith("found when the run failed")


class RewardShiftedUnderVmap(SISDelegate):
    name: ClassVar[str] = "reward_shifted_under_vmap"

    def reward(self, mu, mu_next, noise, t):
        r = super().reward(mu, mu_next, noise, t) + 0.0 * mu[1]  # (SIS's reward is constant: batch it)
        return _under_vmap(lambda x: x + 1.0)(r)


def test_a_value_that_differs_under_vmap_is_named_by_plain_indices():
    """The entry was printed as ``['reward'][np.int64(0), np.int64(0)]`` (found by an
    audit of the plug-in path)."""
    detail = report_of(RewardShiftedUnderVmap)["vmap.noise_paths"].detail
    assert "['reward'][0, 0]: " in detail and "np." not in detail, detail


class TracedWidth(SISDelegate):
    """A parameter declared traced that sets an array's size."""

    name: ClassVar[str] = "traced_width"
    extra: int = param(2, "an extra width", traced=True)

    def reward(self, mu, mu_next, noise, t):
        r = super().reward(mu, mu_next, noise, t)
        return r + jnp.zeros((2, self.extra))[:, :2]


class TracedTiles(SISDelegate):
    name: ClassVar[str] = "traced_tiles"
    extra: int = param(2, "copies of the reward", traced=True)

    def reward(self, mu, mu_next, noise, t):
        return jnp.tile(super().reward(mu, mu_next, noise, t), (1, self.extra))[:, :2]


@pytest.mark.parametrize("cls", [TracedWidth, TracedTiles])
def test_a_traced_parameter_used_as_a_size_says_to_make_it_static(cls):
    """JAX's own words ("Shapes must be 1D sequences of concrete values", "parameters to
    jaxpr equations must have __hash__") named neither the cause nor what to do (found by
    an audit of the plug-in path)."""
    from mfax.games.validate import SHAPE_ADVICE

    detail = report_of(cls)["jit.traceable"].detail
    assert SHAPE_ADVICE in detail, detail


def test_a_support_past_the_checks_budget_is_sampled_and_the_prefix_pairs_thinned_saying_so(monkeypatch):
    """A 2003-state beach bar's 2006 support paths were each scanned by the cheap checks
    (mfax.make took 52 s), and check-game's noise.shared_prefix held every path's kernels
    at once (6.7 GB at 801 states; at 2003 the system killed it). Past the checks' budget
    (made small here) the cheap checks scan sampled paths and the prefix check compares an
    evenly spaced subset of the paths with their group's first, each saying so; a false
    declaration is still found."""
    monkeypatch.setattr(validate, "SUPPORT_WORK", 1000)
    monkeypatch.setattr(validate, "PREFIX_PAIRS", 2)
    # 12 paths x T 6 x 10 states x 11 actions = 7920 > 1000; 1000 // (t_b 3 x 10 x 11) = 3 pairs compared
    report = check_game(BeachBar(num_states=10, horizon=6))
    assert report.ok, str(report)
    assert report.coverage.startswith(
        "16 sampled noise paths (the noise has a support of 12 paths, too many to check each at 10 states x 11 "
        "actions x T = 6 within the checks' budget of 1000 path-state-action-steps)"
    ), report.coverage
    assert report["noise.shared_prefix"].detail == (
        "6 groups of 12 paths agree before t = 3 (3 of the 6 paths after their group's first compared with it, "
        "evenly spaced: the checks' budget)"
    )
    false = check_game(FalseSharedPrefix())
    assert {r.name for r in false.failures} == {"noise.shared_prefix"}, str(false)
    assert "have the same prefix_key but different kernel at mu mu_0 at t = " in false["noise.shared_prefix"].detail


class _WideBeachBar(Delegate):
    """The beach bar with 10009 states, by delegation (as SISDelegate)."""

    inner: ClassVar[Game] = BeachBar(num_states=10009, horizon=4)
    n_states: ClassVar[int] = 10009
    n_actions: ClassVar[int] = inner.n_actions
    horizon: ClassVar[int] = 4
    gamma: ClassVar[float] = inner.gamma

    @property
    def shared_until(self) -> int:
        return self.inner.shared_until

    def prefix_key(self, noise):
        return self.inner.prefix_key(noise)


class IndexShiftedOnClosingPaths(_WideBeachBar):
    """On the paths where the bar closes, the last row of the kernel's second stage leads
    one state lower at t = 1, before the declared shared prefix ends (t = 2): its index
    is 10004 against 10005, equal within the relative tolerance the floats are compared
    with, and the false declaration passed."""

    name: ClassVar[str] = "index_shifted_on_closing_paths"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        shift = jnp.where((t == 1) & (noise.z[-1] == 0), 1, 0).astype(k.then.index.dtype)
        return k._replace(then=k.then._replace(index=k.then.index.at[-1, 0].add(-shift)))


class WideBeachBar(_WideBeachBar):
    name: ClassVar[str] = "wide_beach_bar"


def test_kernel_indices_before_a_shared_prefix_ends_are_compared_exactly(monkeypatch):
    monkeypatch.setattr(validate, "SUPPORT_WORK", 1)  # four pairs of paths compared (each pair differs)
    monkeypatch.setattr(validate, "PREFIX_PAIRS", 4)
    game, key = IndexShiftedOnClosingPaths(), jax.random.PRNGKey(0)
    noise = game.sample_noise(key)
    assert int(game.kernel(game.initial_mean_field(noise), noise, jnp.int32(1)).then.index[-1, 0]) == 10_005
    with pytest.raises(validate._Failed, match="have the same prefix_key but different kernel at mu mu_0 at t = 1"):
        validate._shared_prefix(game, key, game.horizon)
    assert "agree before t = 2" in validate._shared_prefix(WideBeachBar(), key, game.horizon)  # the game itself


class PlainIntIndices(SISDelegate):
    """Kernel indices built from a plain ``int`` array: int32 in float32 mode, int64 in
    float64 mode, where the checks refuse them; ``check-game`` had no ``--x64`` to find it
    before a float64 run did (a review)."""

    name: ClassVar[str] = "plain_int_indices"

    def kernel(self, mu, noise, t):
        k = super().kernel(mu, noise, t)
        return k._replace(index=jnp.asarray(k.index, int))


def test_check_game_in_float64_finds_indices_a_float64_run_refuses(monkeypatch):
    monkeypatch.setitem(registry._GAMES, PlainIntIndices.name, PlainIntIndices)
    assert runner.invoke(app, ["check-game", PlainIntIndices.name]).exit_code == 0  # float32: int is int32
    try:
        result = runner.invoke(app, ["check-game", PlainIntIndices.name, "--x64"])
    finally:
        jax.config.update("jax_enable_x64", False)
    assert result.exit_code == 1, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("FAIL kernel.dtypes"))
    assert "kernel indices at t=0 must be int32, got int64" in line and "build indices as jnp.int32" in line


def test_a_broken_describe_noise_is_one_line_in_the_plots_and_the_exports():
    """What the plots and the CSV exports call on every path they name: one line naming
    the method, the exception and where it was raised (a traceback after training)."""
    from mfax.run.plots import path_title

    with unchecked():
        game = DescribeNoiseTypo()
    batch = noise_batch(game, "sample", jax.random.PRNGKey(0), 2)
    said = (
        r"^game 'describe_noise_typo': describe_noise failed on a noise path: AttributeError: .*regmie.* "
        r"\(test_check_game\.py, line \d+\)$"
    )
    with pytest.raises(GameError, match=said):
        path_title(game, jax.tree.map(np.asarray, batch.noise), 0, 0)
    assert path_title(SIS(), jax.tree.map(np.asarray, batch.noise), 1, 7).startswith("noise path 7: ")


def test_a_function_that_does_not_trace_is_named_with_the_games_line():
    """``jit.traceable`` named the function and the exception but not where in the game's
    file (a review, writing a game: a typo in an attribute name)."""
    import inspect

    detail = next(r.detail for r in report_of(PythonIfInKernel).failures if r.name == "jit.traceable")
    lines, first = inspect.getsourcelines(PythonIfInKernel.kernel)
    where = first + next(i for i, line in enumerate(lines) if line.strip().startswith("if mu[1]"))
    assert detail.endswith(f"(test_check_game.py, line {where})"), detail
