"""Sharding over devices: same results as one device (forced CPU devices, in a subprocess
so the device count does not leak into other tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Each test trains or compiles in a subprocess with 4 forced CPU devices (minutes on 2 cores).
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, tempfile
    import jax
    from mfax.run.config import TrainConfig
    from mfax.run.rundir import RunDir
    from mfax.run.train import train

    assert jax.device_count() == 4, jax.devices()
    net = dict(obs_embed=16, gru_hidden=16, state_embed=8, aggregate_embed=8, mlp_width=16)
    out = {}
    for name, devices, noise in [("one", 1, "exact"), ("four", 4, "exact"), ("one_s", 1, "sample"),
                                 ("four_s", 4, "sample")]:
        config = TrainConfig(game="beach_bar", params={"num_states": 31, "horizon": 10}, iterations=6,
                             eval_every=3, lr=[1e-2, 3e-3], seeds=2, hparams=net, devices=devices, noise=noise,
                             paths=12)
        with tempfile.TemporaryDirectory() as tmp:
            train(config, tmp + "/run", progress=False)
            out[name] = [(r["exploitability"], r["exploitability_info"], r["policy_return"], r["grad_norm"])
                         for r in RunDir(tmp + "/run").read_metrics()]
    print(json.dumps(out))
    """
)


def test_sharded_training_and_evaluation_match_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for single, sharded in (("one", "four"), ("one_s", "four_s")):
        assert len(out[single]) == len(out[sharded]) == 3 * 4
        for a, b in zip(out[single], out[sharded], strict=True):
            for x, y in zip(a, b, strict=True):
                if x is None:
                    assert y is None
                else:
                    assert abs(x - y) <= 1e-4 * max(1.0, abs(x)), (a, b)


SPLIT_SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    from mfax.run.config import TrainConfig, resolve
    from mfax.run.train import Trainer

    net = dict(obs_embed=8, gru_hidden=8, state_embed=8, aggregate_embed=8, mlp_width=16)
    out = {}
    for devices in (1, 2, 4):
        # sampled: 40 draws counted over the finite support, the drawn paths packed
        for noise in ("exact", "sample"):
            config = resolve(TrainConfig(game="beach_bar", params={"num_states": 31, "horizon": 10}, iterations=4,
                                         hparams=net, devices=devices, noise=noise, paths=40))
            trainer = Trainer.build(config)
            states = trainer.initial_states()
            compiled = trainer.chunk_fn(2).lower(states).compile()
            cost = compiled.cost_analysis()
            cost = cost[0] if isinstance(cost, list) else cost
            _, metrics = compiled(states)
            support = trainer.solver.support
            out[f"{noise}{devices}"] = {"flops": cost["flops"], "capacity": trainer.solver.capacity,
                                        "support": None if support is None else support.weight.shape[0],
                                        "metrics": [[float(x) for x in m[0]] for m in metrics[:3]]}
    print(json.dumps(out))
    """
)


def test_one_run_splits_its_paths_over_devices():
    """With one run, every device computes only its share of the noise paths (a device
    computing every path would cost as many FLOPs per device as one device alone), also
    for sampled draws packed over a finite support, with the same metrics as one device."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for devices in (1, 2, 4):
        sample = out[f"sample{devices}"]
        assert sample["capacity"] < sample["support"], sample  # packing is in play
        assert sample["capacity"] % devices == 0, sample  # a whole number of packed paths per device
    for noise in ("exact", "sample"):
        one = out[f"{noise}1"]
        assert out[f"{noise}2"]["flops"] < 0.6 * one["flops"], out
        assert out[f"{noise}4"]["flops"] < 0.45 * one["flops"], out
        for devices in (2, 4):
            for a, b in zip(one["metrics"], out[f"{noise}{devices}"]["metrics"], strict=True):
                for x, y in zip(a, b, strict=True):
                    assert abs(x - y) <= 1e-4 * max(1.0, abs(x)), (noise, devices, a, b)


RUNS_SCRIPT = textwrap.dedent(
    """
    import json
    from mfax.sharding import runs_held, train_mesh

    out = []
    for runs in (1, 2, 3, 6, 8):
        for devices in (None, 1, 2, 4):
            mesh = train_mesh(devices, runs)
            # the host's memory holds every device's: all runs when a mesh vmaps them,
            # one at a time when one CPU device loops over them
            held = 1 if mesh is None else runs
            out.append((runs, devices, runs_held(runs, devices), held))
    print(json.dumps(out))
    """
)


def test_the_memory_estimates_runs_held_are_the_meshs():
    """The memory estimate multiplies an iteration's arrays by the runs one memory holds
    at once (mfax.sharding.runs_held): CPU devices share the host's, which holds every run
    of a mesh (4 seeds on 4 devices were counted once); one CPU device loops (one)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", RUNS_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for runs, devices, estimated, held in json.loads(result.stdout.strip().splitlines()[-1]):
        assert estimated == held, (runs, devices, estimated, held)
