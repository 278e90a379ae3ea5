"""XLA options for the exact programs (mfax.compiling): chosen, switchable, same results."""

from __future__ import annotations

import contextlib

import jax
import numpy as np
import pytest

import mfax
from conftest import TINY_NETWORK, slow
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


def _trainer(algo: str, game: str = "beach_bar") -> Trainer:
    """Three exact iterations on a short game; a network solver with TINY_NETWORK (the same
    kinds of product as the published network, smaller)."""
    hparams = TINY_NETWORK if algo in ("spg", "rspg") else {}
    return Trainer.build(
        resolve(TrainConfig(game=game, algo=algo, iterations=3, noise="exact", params={"horizon": 6}, hparams=hparams))
    )


def _train_chunk(game, algo):
    trainer = _trainer(algo, game)
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


def _chunk_text(monkeypatch, value: str | None) -> str:
    if value is None:
        monkeypatch.delenv(compiling.PRECISION_ENV, raising=False)
    else:
        monkeypatch.setenv(compiling.PRECISION_ENV, value)
    trainer = _trainer("rspg")
    return trainer.chunk_fn(3).lower(trainer.initial_states()).as_text()


def _dot_precisions(text: str) -> list[str]:
    import re

    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert dots, "the training program has matrix products"
    return [(re.findall(r"precision = \[(\w+), \w+\]", line) or ["none"])[0] for line in dots]


def test_matmul_precision_full_float32_by_default_and_switchable(monkeypatch):
    """Every float32 product of a training program asks for full float32 (JAX's default
    lets a GPU use TensorFloat-32); the switch reaches the program; a bad value is one
    line naming the allowed ones."""
    assert set(_dot_precisions(_chunk_text(monkeypatch, None))) == {"HIGHEST"}
    assert set(_dot_precisions(_chunk_text(monkeypatch, "float32"))) == {"HIGHEST"}
    assert set(_dot_precisions(_chunk_text(monkeypatch, "tensorfloat32"))) == {"HIGH"}
    assert set(_dot_precisions(_chunk_text(monkeypatch, "default"))) == {"DEFAULT"}
    monkeypatch.setenv(compiling.PRECISION_ENV, "fp16")
    with pytest.raises(GameError, match="MFAX_MATMUL_PRECISION must be one of float32, tensorfloat32, default") as err:
        compiling.matmul_precision()
    assert "\n" not in str(err.value)


def test_evaluation_checker_and_rollouts_are_traced_with_the_precision(monkeypatch):
    """Not only the driver's chunks: mfax's other compiled entry points (a rollout, the
    exact evaluation's path values, the game checker) trace their products under it."""
    from mfax.dynamics.pushforward import rollout_batch
    from mfax.evaluation.exploitability import path_values
    from mfax.games.registry import make
    from mfax.policies.networks import NetworkPolicy

    monkeypatch.delenv(compiling.PRECISION_ENV, raising=False)
    jax.clear_caches()  # programs another test traced would be reused without binding a product
    seen = []
    real = jax.lax.dot_general_p.bind

    def spy(*args, **params):
        seen.append(params.get("precision"))
        return real(*args, **params)

    with mfax.games.unchecked():  # the checker's products are the third part's
        game = make("beach_bar", horizon=4)
    support = game.noise_support()
    policy = NetworkPolicy(game, jax.random.key(0), recurrent=True, mlp_width=8, obs_embed=8, gru_hidden=8)
    monkeypatch.setattr(jax.lax.dot_general_p, "bind", spy)  # the calls below, not the set-up
    rollout_batch(game, policy, support.noise)
    assert seen and all(p is not None and "HIGHEST" in str(p) for p in seen), seen
    seen.clear()
    game = make("beach_bar", horizon=5)  # another program: traced afresh
    support = game.noise_support()
    path_values(game, policy, support.noise, support.weight, False)
    assert seen and all(p is not None and "HIGHEST" in str(p) for p in seen), seen
    seen.clear()
    assert mfax.check_game(make("mfglib.crowd_motion")).ok  # its observation is a product mu @ x
    assert seen and all(p is not None and "HIGHEST" in str(p) for p in seen), seen


def _network_rollout(game_name: str):
    """The mean-field paths and action probabilities of a small recurrent network policy
    on a short game (a rollout: its products traced under the setting in force)."""
    from mfax.dynamics.pushforward import rollout_batch
    from mfax.games.registry import make
    from mfax.policies.networks import NetworkPolicy

    with mfax.games.unchecked():  # the game's checks are not what this compares
        game = make(game_name, horizon=4)
    policy = NetworkPolicy(game, jax.random.key(2), recurrent=True, **TINY_NETWORK)
    return jax.tree.map(np.asarray, rollout_batch(game, policy, game.noise_support().noise))


# slow: the rollout entry shows the same identity on a network policy's products (the
# setting reaching the training program is test_matmul_precision_full_float32_by_default_and_switchable's)
@pytest.mark.parametrize("program", ["rollout", slow("training")])
def test_float32_products_give_the_same_training_on_the_cpu(monkeypatch, program):
    """On the CPU, XLA computes float32 products in float32 whatever the request: the
    default (full float32) and JAX's default give bit-identical training (and rollouts)."""
    if jax.default_backend() != "cpu":
        pytest.skip("the identity holds on the CPU only (a GPU's default is TensorFloat-32)")
    run = (
        (lambda: _train_chunk("beach_bar", "rspg"))
        if program == "training"
        else (lambda: _network_rollout("beach_bar"))
    )
    monkeypatch.setenv(compiling.PRECISION_ENV, "float32")
    ours = run()
    monkeypatch.setenv(compiling.PRECISION_ENV, "default")
    jaxs = run()
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(jaxs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_program_traced_under_one_setting_is_not_reused_under_another(monkeypatch):
    """The driver's kept chunks and the rollouts (JAX's cache) tell the settings apart:
    switching the setting in one process gives the other products, and switching back
    the same executable."""
    import re

    from mfax.dynamics.pushforward import rollout_batch
    from mfax.games.registry import make
    from mfax.policies.networks import NetworkPolicy
    from mfax.solvers import driver

    trainer = _trainer("rspg")
    states = trainer.initial_states()
    kept, precisions = [], []
    for value in ("float32", "tensorfloat32", "float32"):
        monkeypatch.setenv(compiling.PRECISION_ENV, value)
        compiled = driver.compiled_chunk(trainer.solver, 3, states)
        kept.append(compiled)
        precisions.append(set(re.findall(r"operand_precision=\{(\w+),", compiled.as_text())))
    assert precisions == [{"highest"}, {"high"}, {"highest"}]
    assert kept[0] is kept[2] and kept[1] is not kept[0]

    game = make("beach_bar", horizon=3)
    policy = NetworkPolicy(game, jax.random.key(1), recurrent=False, mlp_width=4, obs_embed=4)
    noise = game.noise_support().noise
    real = jax.lax.dot_general_p.bind
    seen: dict[str, list[str]] = {}
    for value in ("default", "float32"):  # JAX's default traced first, at the top level
        monkeypatch.setenv(compiling.PRECISION_ENV, value)
        bound = seen.setdefault(value, [])

        def spy(*args, bound=bound, **params):
            bound.append(str(params.get("precision")))
            return real(*args, **params)

        with monkeypatch.context() as m:
            m.setattr(jax.lax.dot_general_p, "bind", spy)
            rollout_batch(game, policy, noise)
    assert seen["default"] and not any("HIGHEST" in p for p in seen["default"])
    # the float32 call traced a program of its own (its products bound again, at HIGHEST)
    assert seen["float32"] and all("HIGHEST" in p for p in seen["float32"])


def test_programs_run_once_on_small_games_compile_at_level_0(monkeypatch):
    """The game's checks (compiled and run once) skip LLVM's optimisation on a small game
    only, and use the older fusion emitters on any (on the CPU, where the XLA knows the
    options); the switch to XLA's defaults turns both off."""
    monkeypatch.delenv(compiling.DEFAULTS_ENV, raising=False)
    small, large = compiling.ONCE_MAX_WORK, compiling.ONCE_MAX_WORK + 1
    if jax.default_backend() == "cpu":
        known = {k: v for k, v in compiling.ONCE_ANY_SIZE.items() if compiling._cpu_accepts(((k, v),))}
        assert compiling.once_options(small) == {**known, **compiling.ONCE_OPTIONS}
        assert compiling.once_options(large) == known
    else:
        assert compiling.once_options(small) == compiling.once_options(large) == {}
    monkeypatch.setenv(compiling.DEFAULTS_ENV, "1")
    assert compiling.once_options(small) == compiling.once_options(large) == {}


def test_the_checks_say_the_same_at_either_level(monkeypatch):
    """The same report, every check's status and detail, whether the checks' program is
    compiled at level 0 with the older fusion emitters (a small game), with those emitters
    alone (the limit lowered), or with XLA's defaults."""
    game = mfax.make("sis", horizon=6)
    quick = mfax.check_game(game).as_dict()
    monkeypatch.setattr(compiling, "ONCE_MAX_WORK", 0)
    assert "xla_backend_optimization_level" not in compiling.once_options(1)
    assert mfax.check_game(game).as_dict() == quick
    monkeypatch.setenv(compiling.DEFAULTS_ENV, "1")
    assert compiling.once_options(1) == {}
    assert mfax.check_game(game).as_dict() == quick


def test_the_checks_compile_with_the_options_their_size_gives(monkeypatch):
    """validate_game sizes its program as documented (paths scanned, the first one
    included, x T x states x actions) and compiles it with those options."""
    import equinox as eqx

    from mfax.games import validate

    sizes, given = [], []
    real_jit = eqx.filter_jit

    def spy_options(work):
        sizes.append(work)
        return {"xla_backend_optimization_level": 0}

    def spy_jit(fn, **kwargs):
        given.append(kwargs.get("compiler_options"))
        return real_jit(fn, **kwargs)

    monkeypatch.setattr(compiling, "once_options", spy_options)
    monkeypatch.setattr(validate.eqx, "filter_jit", spy_jit)
    game = mfax.make("beach_bar", num_states=10)
    validate._check(game)
    assert sizes and set(sizes) == {(1 + 12) * 30 * 10 * 11}  # 12 support paths and the first path
    assert given and all(options == {"xla_backend_optimization_level": 0} for options in given)


# -- LAPACK's threads in programs that factorise -------------------------------------------
def _no_blas_thread_env(monkeypatch):
    for name in compiling.BLAS_THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)


def _blas_threads() -> list[int]:
    import threadpoolctl

    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_a_factorising_program_runs_lapack_on_one_thread_and_the_setting_comes_back(monkeypatch):
    _no_blas_thread_env(monkeypatch)
    cholesky = jax.jit(jax.numpy.linalg.cholesky)
    cholesky(np.eye(3, dtype=np.float32)).block_until_ready()  # jaxlib loads its LAPACK
    before = _blas_threads()
    assert before, "no BLAS library found by threadpoolctl"
    seen = []

    def program(x):
        seen.append(_blas_threads())
        return cholesky(x)

    limited = compiling.one_blas_thread(program)
    assert limited is not program
    assert np.allclose(limited(4.0 * np.eye(3, dtype=np.float32)), 2.0 * np.eye(3))
    assert seen == [[1] * len(before)]
    assert _blas_threads() == before
    # a thread count the environment sets is the user's: mfax leaves it alone
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert compiling.one_blas_thread(program) is program


@pytest.mark.parametrize("algo,limited", [("omi", True), ("fp", False)])
def test_only_solvers_that_factorise_run_under_the_limit(monkeypatch, algo, limited):
    _no_blas_thread_env(monkeypatch)
    calls = []

    class Controller:
        def limit(self, **kwargs):
            calls.append(kwargs)
            return contextlib.nullcontext()

    monkeypatch.setattr(compiling, "_blas_controller", Controller)
    with jax.enable_x64(True):
        mfax.solve("mfglib.beach_bar", algo, iterations=2)
    assert calls == ([{"limits": 1, "user_api": "blas"}] * len(calls) if limited else [])
    assert bool(calls) == limited
