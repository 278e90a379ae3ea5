"""XLA options for the exact programs (mfax.compiling): chosen, switchable, same results."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conftest import slow
from mfax import compiling
from mfax.games.base import GameError
from mfax.run.config import TrainConfig, resolve
from mfax.run.train import Trainer


def test_options_on_the_cpu_and_the_switch_to_xla_defaults(monkeypatch):
    monkeypatch.delenv(compiling.DEFAULTS_ENV, raising=False)
    if jax.default_backend() == "cpu":
        assert compiling.compiler_options() == compiling.CPU_OPTIONS
        # a product with its neighbours: XLA's defaults hand it to YNNPACK, mfax's do not
        x = np.ones((256, 256), np.float32)

        def fused(x):
            return jax.nn.relu(x @ x + 1.0).sum(0)

        assert "__ynn_fusion" in jax.jit(fused).lower(x).compile().as_text()
        compiled = compiling.jit(fused).lower(x).compile()
        assert "__ynn_fusion" not in compiled.as_text()
    else:
        assert compiling.compiler_options() == {}
    monkeypatch.setenv(compiling.DEFAULTS_ENV, "1")
    assert compiling.compiler_options() == {}
    monkeypatch.setenv(compiling.DEFAULTS_ENV, "yes")
    with pytest.raises(GameError, match="MFAX_XLA_DEFAULTS must be 0 or 1"):
        compiling.compiler_options()


def _train_chunk(game, algo):
    config = resolve(TrainConfig(game=game, algo=algo, iterations=3, noise="exact", params={"horizon": 6}))
    trainer = Trainer.build(config)
    states, metrics = trainer.chunk_fn(3)(trainer.initial_states())
    return jax.tree.map(np.asarray, (states, metrics))


@pytest.mark.parametrize("algo", [slow("rspg"), "fp"])
def test_same_training_with_and_without_the_options(monkeypatch, algo):
    monkeypatch.delenv(compiling.DEFAULTS_ENV, raising=False)
    tuned = _train_chunk("beach_bar", algo)
    monkeypatch.setenv(compiling.DEFAULTS_ENV, "1")
    default = _train_chunk("beach_bar", algo)
    for a, b in zip(jax.tree.leaves(tuned), jax.tree.leaves(default), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
