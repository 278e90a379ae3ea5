"""How a structural training iteration scales: states, noise paths, devices.

Each configuration runs in a fresh subprocess (so peak RSS is its own): an SPG training
iteration (compiled chunk, compile excluded, median of repeats) with a reduced policy
network (MLP width 32, embeddings 16) so that the largest grids fit the time budget.

* states: linear-quadratic with 10^2..10^5 states (exact noise, 2 paths);
* paths: the macro game reduced to 20 x 5 states and T = 32 (continuous noise, so every
  sampled path is distinct) with 8..1024 sampled paths;
* devices: the paths experiment at 256 paths with 1, 2 and 4 forced CPU devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count``): each device computes its
  share of the paths; on a 2-core machine the gain is bounded by the two cores.

Growth exponents are least-squares slopes of log(time) and log(peak RSS - baseline)
against log(size). Writes ``bench/results/scaling.{md,json}`` (``--quick``:
``scaling_quick.{md,json}``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from benchutil import ArgumentParser, out_dir, stem, wrote

WORKER = """
import json, resource, statistics, sys, time
import jax
from mfax.run.config import TrainConfig, resolve
from mfax.run.train import Trainer

spec = json.loads(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
net = dict(obs_embed=16, gru_hidden=16, state_embed=16, aggregate_embed=16, mlp_width=32)
config = resolve(TrainConfig(game=spec["game"], params=spec["params"], algo="spg", noise=spec["noise"],
                             paths=spec["paths"], iterations=1000, hparams=net, devices=spec.get("devices")))
trainer = Trainer.build(config)
states = trainer.initial_states()
chunk = trainer.chunk_fn(spec["chunk"]).lower(states).compile()
states, metrics = chunk(states)
jax.block_until_ready(metrics)
times = []
for _ in range(spec["repeats"]):
    t = time.perf_counter()
    states, metrics = chunk(states)
    jax.block_until_ready(metrics)
    times.append((time.perf_counter() - t) / spec["chunk"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds_per_iteration": statistics.median(times), "peak_rss_mb": peak, "baseline_mb": base,
                  "devices": jax.device_count(), "n_states": trainer.game.n_states}))
"""


def measure(spec: dict, devices: int | None = None) -> dict:
    env = dict(os.environ)
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return {**spec, **json.loads(out.stdout.strip().splitlines()[-1])}


def slope(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a minute)")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    name = stem("scaling", "quick" if args.quick else "")
    out = out_dir(parser, args.out)
    states = [100, 1_000] if args.quick else [100, 1_000, 10_000, 100_000]
    paths = [8, 32] if args.quick else [8, 32, 128, 512, 1024]
    macro = {"num_wealth": 20, "horizon": 32}
    rows = {"states": [], "paths": [], "devices": []}
    for n in states:
        spec = {
            "game": "linear_quadratic",
            "params": {"num_states": n},
            "noise": "exact",
            "paths": 2,
            "chunk": 2,
            "repeats": 3,
        }
        rows["states"].append(measure(spec))
        print(json.dumps(rows["states"][-1]), flush=True)
    for p in paths:
        spec = {"game": "macro", "params": macro, "noise": "sample", "paths": p, "chunk": 2, "repeats": 3}
        rows["paths"].append(measure(spec))
        print(json.dumps(rows["paths"][-1]), flush=True)
    for d in [1, 2] if args.quick else [1, 2, 4]:
        spec = {
            "game": "macro",
            "params": macro,
            "noise": "sample",
            "paths": 256,
            "chunk": 2,
            "repeats": 3,
            "devices": d,
        }
        rows["devices"].append(measure(spec, devices=d))
        print(json.dumps(rows["devices"][-1]), flush=True)

    def exponents(rs, key):
        xs = [r[key] for r in rs]
        t = slope(xs, [r["seconds_per_iteration"] for r in rs])
        m = slope(xs, [max(r["peak_rss_mb"] - r["baseline_mb"], 1.0) for r in rs])
        return t, m

    lines = [
        "# Scaling of a structural (SPG) training iteration",
        "",
        "Reduced network (MLP 32, embeddings 16); fresh process per row; peak RSS includes the ~200 MB of a "
        "JAX process.",
        "",
        "| experiment | game | states n | paths | devices | s / iteration | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind, rs in rows.items():
        for r in rs:
            lines.append(
                f"| {kind} | {r['game']} | {r['n_states']} | {r['paths']} | {r['devices']} "
                f"| {r['seconds_per_iteration']:.4f} | {r['peak_rss_mb']:.0f} |"
            )
    t_s, m_s = exponents(rows["states"][1:] if len(rows["states"]) > 2 else rows["states"], "n_states")
    t_p, m_p = exponents(rows["paths"][1:] if len(rows["paths"]) > 2 else rows["paths"], "paths")
    lines += [
        "",
        "Growth exponents (log-log slopes; first point dropped where there are more than two):",
        "",
        f"* time vs states: {t_s:.2f}; (peak RSS - baseline) vs states: {m_s:.2f}",
        f"* time vs paths: {t_p:.2f}; (peak RSS - baseline) vs paths: {m_p:.2f}",
    ]
    text = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1))
    print(text)
    wrote(out / name, "md", "json")


if __name__ == "__main__":
    main()
