"""Beach-bar RSPG (exact noise) to the paper's 200-iteration exploitability (126): which
optimiser settings reach it in the fewest iterations.

For each setting (a set of ``--hp`` values, the iterations planned and a linear learning
-rate warm-up), every learning rate of ``--lrs`` and every seed of ``--seeds`` trains in
one compiled program (vmapped on accelerators); the per-path exploitability of the
policy each iteration starts from is the training metric of the exact structural step
(the same figure as an evaluation after every iteration). Reported per setting and
learning rate: the median over seeds of the first iteration at or below 126, the median
of the iteration from which it stays there, and the exploitability at the end.

Settings are chosen on some seeds and checked on others (``--seeds``): the median of five
seeds moves by tens of iterations, so a setting that wins on the seeds it was picked on
proves little until it wins on fresh ones.

Usage::

    python bench/t126_settings.py --seeds 0-4 --lrs 0.01,0.02 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from benchutil import ArgumentParser, crossings, median_crossing, out_dir, positive, wrote

THRESHOLD = 126.0  # the paper's per-path exploitability after 200 iterations

# name -> (hparams, iterations planned, warm-up iterations)
SETTINGS: dict[str, tuple[dict, int, int]] = {
    "default (clip 1, b1 0.9, b2 0.999, decay to 0.1 over 100)": ({}, 100, 0),
    "warm-up 5": ({}, 100, 5),
    "warm-up 10": ({}, 100, 10),
    "clip 10": ({"max_grad_norm": 10.0}, 100, 0),
    "clip 0.3": ({"max_grad_norm": 0.3}, 100, 0),
    "b1 0.8": ({"adam_b1": 0.8}, 100, 0),
    "b1 0.95": ({"adam_b1": 0.95}, 100, 0),
    "decay over 200": ({}, 200, 0),
}


def seed_range(text: str) -> list[int]:
    """argparse type: ``a-b``, the seeds a..b (inclusive, 0 <= a <= b)."""
    try:
        lo, hi = (int(x) for x in text.split("-"))
    except ValueError:
        lo, hi = 0, -1
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected seeds a-b with 0 <= a <= b, got {text!r}")
    return list(range(lo, hi + 1))


def run_setting(name: str, lrs: list[float], seeds: list[int], length: int) -> dict:
    import jax
    import numpy as np

    import mfax.solvers.structural as structural
    from mfax.run.config import TrainConfig, resolve
    from mfax.run.train import Trainer
    from mfax.solvers.optim import learning_rate

    hparams, planned, warmup = SETTINGS[name]

    def warmed(base, iteration, iterations, final_fraction):
        rate = learning_rate(base, iteration, iterations, final_fraction)
        return rate if warmup == 0 else rate * jax.numpy.minimum(1.0, (iteration + 1) / warmup)

    structural.learning_rate = warmed
    try:
        config = resolve(
            TrainConfig(
                game="beach_bar",
                algo="rspg",
                noise="exact",
                lr=lrs,
                seed=seeds[0],
                seeds=len(seeds),
                iterations=planned,
                hparams=hparams,
            )
        )
        trainer = Trainer.build(config)
        order = [(config.run_seed(r), config.run_lr(r)) for r in range(config.num_runs)]
        t0 = time.perf_counter()
        _, metrics = trainer.chunk_fn(length)(trainer.initial_states())
        curves = np.asarray(metrics.exploitability)
        seconds = time.perf_counter() - t0
    finally:
        structural.learning_rate = learning_rate
    out = {
        "setting": name,
        "hparams": hparams,
        "planned": planned,
        "warmup": warmup,
        "seconds": seconds,
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "lrs": [],
    }
    for lr in lrs:
        rows = []
        for seed in seeds:
            curve = [float(x) for x in curves[order.index((seed, lr))]]
            first, stays = crossings(list(enumerate(curve)), THRESHOLD)
            rows.append({"seed": seed, "first": first, "stays": stays, "final": curve[-1], "curve": curve})
        out["lrs"].append(
            {
                "lr": lr,
                "first": median_crossing([r["first"] for r in rows], length - 1),
                "stays": median_crossing([r["stays"] for r in rows], length - 1),
                "final": statistics.median(r["final"] for r in rows),
                "seeds": rows,
            }
        )
    return out


def _fmt(v) -> str:
    return "-" if v is None else f"{v:g}"


def lines(results: list[dict], length: int, chosen: int) -> list[str]:
    """The table; with ``chosen`` > 0 the first ``chosen`` seeds (those a setting would be
    picked on) and the others (those that check the pick) are also summarised apart."""
    seeds = [r["seed"] for r in results[0]["lrs"][0]["seeds"]] if results else []
    split = 0 < chosen < len(seeds)
    out = [
        "# Beach-bar RSPG to 126: optimiser settings",
        "",
        f"Exact noise, {length} iterations, seeds {seeds[0]}-{seeds[-1]}; per-path exploitability of the "
        "policy each iteration starts from (the exact step's training metric). 'first' / 'stays': the median "
        "over seeds of the first iteration at or below 126 and of the one from which it stays there (a seed "
        f"that never does counts as beyond {length - 1}; '-' when half of them never do); 'final': the median "
        f"exploitability after {length} iterations. Device: {results[0].get('device', 'not recorded')}, JAX "
        f"{results[0].get('jax', 'not recorded')}, float32. Warm-up k: the learning rate ramped linearly over "
        "the first k iterations (applied by this script; mfax has no such option).",
        "",
    ]
    if split:
        out += [
            f"| setting | lr | first, seeds {seeds[0]}-{seeds[chosen - 1]} | median | first, seeds "
            f"{seeds[chosen]}-{seeds[-1]} | median | all seeds: median first | median stays | median final |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|",
        ]
    else:
        out += [
            "| setting | lr | first (per seed) | median first | median stays | median final |",
            "|---|---:|---|---:|---:|---:|",
        ]
    for res in results:
        for row in res["lrs"]:
            runs = row["seeds"]
            cells = []
            for part in (runs[:chosen], runs[chosen:]) if split else (runs,):
                firsts = [r["first"] for r in part]
                cells.append(", ".join(_fmt(v) for v in firsts))
                if split:
                    cells.append(_fmt(median_crossing(firsts, length - 1)))
            out.append(
                f"| {res['setting']} | {row['lr']:g} | {' | '.join(cells)} | {_fmt(row['first'])} "
                f"| {_fmt(row['stays'])} | {row['final']:.1f} |"
            )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-4"), help="seeds a-b (default 0-4)")
    parser.add_argument("--lrs", default="0.005,0.01,0.02", help="comma-separated learning rates (default %(default)s)")
    parser.add_argument("--settings", default=None, help="comma-separated setting numbers (default: all)")
    parser.add_argument("--iterations", type=positive, default=100, help="iterations of each training")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for t126_settings<tag>.{md,json} (with --settings: t126_settings_settingsI-J<tag>)",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument(
        "--chosen", type=positive, default=5, help="summarise the first N seeds apart from the others (default 5)"
    )
    parser.add_argument("--report", default=None, help="only rewrite the table of this JSON (next to it, .md)")
    args = parser.parse_args(argv)
    if args.report is not None:
        try:
            results = json.loads(Path(args.report).read_text())
            length = len(results[0]["lrs"][0]["seeds"][0]["curve"])
            table = "\n".join(lines(results, length, args.chosen)) + "\n"
        except (OSError, ValueError) as err:
            parser.error(f"--report {args.report}: cannot read that JSON ({err})")
        except (LookupError, TypeError, AttributeError):
            parser.error(f"--report {args.report}: not the JSON of a t126_settings.py run (a list of settings)")
        md = Path(args.report).with_suffix(".md")
        md.write_text(table)
        wrote(md.with_suffix(""), "md")
        return
    try:
        lrs = [float(x) for x in args.lrs.split(",")]
    except ValueError:
        parser.error(f"--lrs must be comma-separated numbers, got {args.lrs!r}")
    if not all(math.isfinite(lr) and lr > 0 for lr in lrs):
        parser.error(f"--lrs must be positive finite numbers, got {args.lrs!r}")
    names = list(SETTINGS)
    if args.settings is not None:
        try:
            chosen = [int(i) for i in args.settings.split(",")]
        except ValueError:
            chosen = [-1]
        if not all(0 <= i < len(SETTINGS) for i in chosen):
            parser.error(f"--settings takes numbers 0..{len(SETTINGS) - 1}, got {args.settings!r}")
        names = [names[i] for i in chosen]
    out = out_dir(parser, args.out) if args.out else None
    results = []
    for name in names:
        res = run_setting(name, lrs, args.seeds, args.iterations)
        print(json.dumps({k: v for k, v in res.items() if k != "lrs"}), flush=True)
        results.append(res)
        text = "\n".join(lines(results, args.iterations, args.chosen)) + "\n"
        if out is not None:
            # a subset of the settings never replaces the full run's files
            subset_name = "" if args.settings is None else "_settings" + "-".join(args.settings.split(","))
            base = out / f"t126_settings{subset_name}{args.tag}"
            base.with_suffix(".md").write_text(text)
            base.with_suffix(".json").write_text(json.dumps(results))
    print(text)
    if out is not None:
        wrote(base, "md", "json")


if __name__ == "__main__":
    main()
