"""Golden numbers: exploitability of fixed policies with common noise off.

The pinned values were computed in float64 by mfax and, independently, by the naive
numpy reference in ``tests/reference_games.py`` (agreeing to all 10 digits shown).
Beach bar is the exact average over the 51 bar locations. In float32 (the default)
they must hold to 6 significant digits; in float64 to 1e-9.
"""

from __future__ import annotations

import contextlib

import jax
import pytest

import mfax
from conftest import slow
from mfax.dynamics import enumerate_noise
from mfax.evaluation import evaluate
from mfax.policies import FixedAction, Uniform

# (game, policy) -> (exploitability, policy return); "middle" is the stay / median action.
GOLDEN = {
    ("linear_quadratic", "uniform"): (4615.309014, -5546.185194),
    ("linear_quadratic", "middle"): (4541.016299, -5471.892480),
    ("beach_bar", "uniform"): (577.1739102, -720.8651796),
    ("beach_bar", "middle"): (576.4710309, -720.1623003),
    ("macro", "uniform"): (147.1838149, -157.7358932),
    ("macro", "middle"): (36.37970536, -46.39340522),
    ("sis", "uniform"): (0.8613503637, -2.282017087),
    ("sis", "middle"): (1.884078099, -3.089364194),
}


def _evaluate(name, policy_name):
    # the macro economy made and evaluated without its game checks (seconds at T = 128;
    # they are test_validation's and test_check_game's), as conftest.published makes it
    with mfax.games.unchecked() if name == "macro" else contextlib.nullcontext():
        game = mfax.make(name, common_noise=False)
        n, m = game.n_states, game.n_actions
        policy = Uniform(n, m) if policy_name == "uniform" else FixedAction(n, m, m // 2)
        return evaluate(game, policy, enumerate_noise(game))


# The default tier checks every game's golden numbers in float32 (the macro economy for
# its middle policy only: its uniform one takes 5 s there) and, in float64, the uniform
# policy's of the linear-quadratic game and SIS; the other pairs are repeated variants
# (a second policy, a second precision) and run in the slow tier.
FLOAT32_SLOW = {("macro", "uniform")}  # slow: test_golden_float32[macro-middle] checks macro
FLOAT64_SLOW = {  # slow: test_golden_float32 checks these games; the float64 entries left, that precision
    ("linear_quadratic", "middle"),
    ("beach_bar", "uniform"),
    ("beach_bar", "middle"),
    ("sis", "middle"),
    ("macro", "uniform"),
    ("macro", "middle"),
}


@pytest.mark.parametrize(
    ("name", "policy_name"), [slow(*pair) if pair in FLOAT32_SLOW else pair for pair in sorted(GOLDEN)]
)
def test_golden_float32(name, policy_name):
    result = _evaluate(name, policy_name)
    exploitability, ret = GOLDEN[(name, policy_name)]
    assert result.exploitability == pytest.approx(exploitability, rel=2e-6)
    assert result.exploitability_info == pytest.approx(exploitability, rel=2e-6)
    assert result.policy_return == pytest.approx(ret, rel=2e-6)


@pytest.mark.parametrize(
    ("name", "policy_name"), [slow(*pair) if pair in FLOAT64_SLOW else pair for pair in sorted(GOLDEN)]
)
def test_golden_float64(name, policy_name):
    with jax.enable_x64(True):
        result = _evaluate(name, policy_name)
    exploitability, ret = GOLDEN[(name, policy_name)]
    assert result.exploitability == pytest.approx(exploitability, rel=1e-9)
    assert result.policy_return == pytest.approx(ret, rel=1e-9)
