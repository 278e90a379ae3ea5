"""mfax's ``openspiel.*`` games against OpenSpiel: exploitability of fixed policies and of
the first iterates of fictitious play and mirror descent, in float64, with the time per
FP iteration of each library in the same run.

    python bench/openspiel_crosscheck.py            # writes bench/results/openspiel_crosscheck.{md,json}
    python bench/openspiel_crosscheck.py --only garnet   # rerun some cases, update the report

Run it in a venv with OpenSpiel (``pip install open_spiel`` and ``pip install -e .``).
Per game, on OpenSpiel's default instance:

* the exploitability of three fixed policies (uniform, deterministic, random table) by
  mfax, by OpenSpiel's ``NashConv``, and by the independent walk of OpenSpiel's tree of
  ``bench/openspiel_adapter.py`` keyed as the game's rules require (``walk``) and as
  OpenSpiel's evaluators key it (``walk[os]``);
* the time of one FP iteration: mfax's compiled step (after compilation), OpenSpiel's
  ``FictitiousPlay.iteration()``.

and on an instance small enough for OpenSpiel's tree walks (the default where it is):

* FP and OMD iterates ``0..K``: mfax (FP with OpenSpiel's conventions: the uniform
  policy kept as iterate 0, first maximiser; OMD with the same learning rate) against
  OpenSpiel's ``FictitiousPlay`` and ``MirrorDescent`` run on the game itself and on the
  game with the previous action in the node strings (``rekeyed``, mirror descent with
  a frozen policy per iteration: ``frozen``); the first FP iterate that differs is
  checked for a best-response tie (``tie gap``: how far OpenSpiel's choice is from mfax's
  maximum there).

``docs/games/openspiel.md`` explains every difference.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mfax  # noqa: E402
import openspiel_adapter as A  # noqa: E402
from benchutil import ArgumentParser, out_dir, require, wrote  # noqa: E402
from mfax.solvers.classical import FPHyperParams, fp_init, fp_step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TOL = 1e-6

# (label, game, default-instance overrides, iterate-instance overrides, K, OMD lr)
CASES = [
    ("crowd_modelling", "openspiel.crowd_modelling", {}, {}, 5, 1.0),
    ("linear_quadratic", "openspiel.linear_quadratic", {}, dict(size=8, horizon=5, n_actions_per_side=2), 4, 0.1),
    (
        "periodic_aversion",
        "openspiel.periodic_aversion",
        {},
        dict(size=9, horizon=4, n_actions_per_side=2, dt=0.05),
        3,
        0.1,
    ),
    ("crowd_modelling_2d", "openspiel.crowd_modelling_2d", {}, dict(size=5, horizon=5), 4, 1.0),
    ("normal_form coop", "openspiel.normal_form", dict(reward_function="coop"), {}, 5, 0.01),
    ("normal_form dom", "openspiel.normal_form", dict(reward_function="dom"), {}, 5, 1.0),
    (
        "normal_form biased_indirect_rps",
        "openspiel.normal_form",
        dict(reward_function="biased_indirect_rps"),
        {},
        5,
        1.0,
    ),
    ("garnet", "openspiel.garnet", {}, {}, 5, 1.0),
    ("dynamic_routing", "openspiel.dynamic_routing", {}, {}, 5, 1.0),
    ("dynamic_routing dt = 0.5", "openspiel.dynamic_routing", dict(time_step_length=0.5), {}, 5, 1.0),
]


def rel(a: float, b: float) -> float:
    """Relative difference, absolute when both are below 1e-12; NaN when one is missing."""
    if a != a or b != b:
        return float("nan")
    scale = max(abs(a), abs(b))
    return 0.0 if scale < 1e-12 else abs(a - b) / scale


def mfax_fp_seconds(game, steps: int = 20) -> float:
    """Seconds per compiled FP step (after compilation), min over 3 runs of ``steps``."""
    support = game.noise_support()
    hp = FPHyperParams(initial="average", ties="first", flow="own")
    step = jax.jit(lambda s: fp_step(game, support.noise, support.weight, s, hp)[0])
    state = fp_init(game, 1)
    jax.block_until_ready(step(state))
    best = float("inf")
    for _ in range(3):
        s = state
        start = time.perf_counter()
        for _ in range(steps):
            s = step(s)
        jax.block_until_ready(s)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def fixed_policies(game) -> dict:
    pair = A.pairing(game)
    os_game = pair.load()
    rows = {}
    for name, table in A.fixed_tables(game).items():
        m = A.mfax_exploitability(game, table)[0]
        o = A.openspiel_exploitability(pair, os_game, table)
        w = A.walk_exploitability(pair, os_game, table, "rules")
        w_os = A.walk_exploitability(pair, os_game, table, "openspiel")
        rows[name] = dict(mfax=m, openspiel=o, walk=w, walk_os=w_os)
    return rows


def tie_gap(game, mfax_tables, os_responses, k: int) -> float | None:
    """At FP iterate ``k`` (the first to differ), the largest ``max_a Q - Q[OpenSpiel's
    choice]`` of mfax's best-response values over the rows where the two best responses
    differ and the population is (``None`` if they agree everywhere it is)."""
    q, mu = A.best_response_q(game, mfax_tables[k - 1])
    os_br = os_responses[k - 1]
    reached = mu[:-1] > 0
    differ = (np.argmax(q, -1) != np.argmax(os_br, -1)) & reached
    if not differ.any():
        return None
    chosen = np.take_along_axis(q, np.argmax(os_br, -1)[..., None], -1)[..., 0]
    return float((q.max(-1) - chosen)[differ].max())


def iterates(game, k: int, lr: float) -> dict:
    pair = A.pairing(game)
    os_game = pair.load()
    rekeyed = A.rekeyed(pair, os_game)
    fixed = {
        name: dict(mfax=A.mfax_exploitability(game, t)[0], rekeyed=A.openspiel_exploitability(pair, rekeyed, t))
        for name, t in A.fixed_tables(game).items()
    }
    fp_m, fp_tables = A.mfax_fp(game, k)
    errors = {}
    try:
        fp_os, fp_os_s, _ = A.openspiel_fp(pair, os_game, k)
    except KeyError as err:  # OpenSpiel's TabularPolicy misses states (docs/games/openspiel.md)
        fp_os, fp_os_s, errors["fp"] = [float("nan")] * (k + 1), [], f"KeyError {err}"
    try:
        fp_rk, _, responses = A.openspiel_fp(pair, rekeyed, k, game=game)
    except KeyError as err:
        fp_rk, responses, errors["fp rekeyed"] = [float("nan")] * (k + 1), [], f"KeyError {err}"
    omd_m, _ = A.mfax_omd(game, k, lr)
    md_os, md_os_s = A.openspiel_md(pair, os_game, k, lr)
    md_rk, _ = A.openspiel_md(pair, rekeyed, k, lr)
    md_fr, _ = A.openspiel_md(pair, rekeyed, k, lr, frozen=True)
    first = next((i for i in range(k + 1) if not rel(fp_m[i], fp_rk[i]) <= TOL), None)
    gap = tie_gap(game, fp_tables, responses, first) if first and responses else None
    return dict(
        fixed=fixed,
        fp=dict(mfax=fp_m, openspiel=fp_os, rekeyed=fp_rk, first_difference=first, tie_gap=gap),
        omd=dict(mfax=omd_m, openspiel=md_os, rekeyed=md_rk, frozen=md_fr, lr=lr),
        openspiel_seconds=dict(fp=fp_os_s, md=md_os_s),
        errors=errors,
    )


def run(cases) -> list[dict]:
    out = []
    for label, name, default, small, k, lr in cases:
        print(f"== {label}", flush=True)
        game = mfax.make(name, **default)
        pair = A.pairing(game)
        row = dict(label=label, game=name, default=default, small=small, k=k)
        row["fixed"] = fixed_policies(game)
        row["mfax_fp_seconds"] = mfax_fp_seconds(game)
        try:
            _, seconds, _ = A.openspiel_fp(pair, pair.load(), 1)
            row["openspiel_fp_seconds"] = seconds[0]
        except KeyError:
            row["openspiel_fp_seconds"] = None
        row["iterates"] = iterates(mfax.make(name, **{**default, **small}), k, lr)
        out.append(row)
        print(json.dumps(row["fixed"]), flush=True)
    return out


def fmt(x) -> str:
    return "-" if x is None else f"{x:.10g}"


def report(rows: list[dict], meta: dict) -> str:
    lines = [
        "# mfax vs OpenSpiel: exploitability of OpenSpiel's mean-field games",
        "",
        f"OpenSpiel {meta['open_spiel']}, mfax {meta['mfax']}, JAX {meta['jax']} (float64, CPU), "
        f"{meta['machine']}. Generated by `bench/openspiel_crosscheck.py`; "
        "`docs/games/openspiel.md` explains every difference.",
        "",
        "## Fixed policies, OpenSpiel's default instance",
        "",
        "`walk`: the independent walk of OpenSpiel's tree keyed as the rules require; "
        "`walk[os]`: keyed by the observation string alone, as OpenSpiel's evaluators are.",
        "",
        "| game | policy | mfax | walk | OpenSpiel NashConv | walk[os] | mfax vs walk | OpenSpiel vs walk[os] "
        "| mfax vs OpenSpiel |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name, f in row["fixed"].items():
            lines.append(
                f"| {row['label']} | {name} | {fmt(f['mfax'])} | {fmt(f['walk'])} | {fmt(f['openspiel'])} "
                f"| {fmt(f['walk_os'])} | {rel(f['mfax'], f['walk']):.1e} | {rel(f['openspiel'], f['walk_os']):.1e} "
                f"| {rel(f['mfax'], f['openspiel']):.1e} |"
            )
    lines += [
        "",
        "## FP and OMD iterates",
        "",
        "On the instance named (overrides of the default; `{}`: the default). `rekeyed`: OpenSpiel's algorithm on "
        "its game with the previous action in the node strings; `frozen`: mirror descent evaluating each iteration "
        "under a copy of its policy. Max relative difference over iterates 0..K.",
        "",
        "| game | instance | K | fixed: mfax vs OpenSpiel rekeyed | FP: vs OpenSpiel | FP: vs rekeyed "
        "| first FP difference (tie gap) | OMD lr | OMD: vs OpenSpiel | OMD: vs rekeyed | OMD: vs rekeyed frozen |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        it = row["iterates"]
        fixed = max(rel(f["mfax"], f["rekeyed"]) for f in it["fixed"].values())

        def worst(a, b):
            diffs = [rel(x, y) for x, y in zip(a, b, strict=True)]
            return float("nan") if any(d != d for d in diffs) else max(diffs)

        fp, omd = it["fp"], it["omd"]
        first = "-" if fp["first_difference"] is None else f"{fp['first_difference']} ({fmt(fp['tie_gap'])})"
        if it.get("errors"):  # OpenSpiel's FP did not run
            first = "OpenSpiel's FP: " + "; ".join(f"{k}: KeyError" for k in it["errors"])
        lines.append(
            f"| {row['label']} | `{row['small'] or {}}` | {row['k']} | {fixed:.1e} "
            f"| {worst(fp['mfax'], fp['openspiel']):.1e} | {worst(fp['mfax'], fp['rekeyed']):.1e} | {first} "
            f"| {omd['lr']} | {worst(omd['mfax'], omd['openspiel']):.1e} | {worst(omd['mfax'], omd['rekeyed']):.1e} "
            f"| {worst(omd['mfax'], omd['frozen']):.1e} |"
        )
    lines += [
        "",
        "FP exploitability by iterate (mfax / OpenSpiel rekeyed):",
        "",
    ]
    for row in rows:
        fp = row["iterates"]["fp"]
        pairs = ", ".join(f"{a:.6g}/{b:.6g}" for a, b in zip(fp["mfax"], fp["rekeyed"], strict=True))
        lines.append(f"- {row['label']}: {pairs}")
    lines += [
        "",
        "## Time per FP iteration (OpenSpiel's default instance)",
        "",
        "mfax: one compiled exact FP step (best response, average, figures), after compilation, best of 3 x 20; "
        "OpenSpiel: one `FictitiousPlay.iteration()` on its game.",
        "",
        "| game | mfax (ms) | OpenSpiel (ms) | ratio |",
        "|---|---|---|---|",
    ]
    for row in rows:
        m = row["mfax_fp_seconds"] * 1e3
        if row["openspiel_fp_seconds"] is None:
            lines.append(f"| {row['label']} | {m:.3f} | fails (KeyError) | - |")
            continue
        o = row["openspiel_fp_seconds"] * 1e3
        lines.append(f"| {row['label']} | {m:.3f} | {o:.1f} | {o / m:.0f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose label contains this text")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--report", action="store_true", help="rewrite the .md from the .json, running nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.report:
        if not (out / "openspiel_crosscheck.json").is_file():
            parser.error(
                f"--report reads {out / 'openspiel_crosscheck.json'}, which does not exist; give the --out of a run"
            )
        saved = json.loads((out / "openspiel_crosscheck.json").read_text())
        (out / "openspiel_crosscheck.md").write_text(report(saved["rows"], saved["meta"]))
        wrote(out / "openspiel_crosscheck", "md")
        return
    from importlib.metadata import version

    cases = [c for c in CASES if args.only is None or args.only in c[0]]
    if not cases:
        parser.error(f"--only {args.only!r} matches no case; labels: {', '.join(c[0] for c in CASES)}")
    require(parser.prog, "pyspiel")
    out_dir(parser, out)
    meta = dict(
        open_spiel=version("open_spiel"),
        mfax=mfax.__version__,
        jax=jax.__version__,
        machine=f"{platform.machine()}, {platform.processor() or platform.system()}",
    )
    jnp.zeros(())  # backend up before timing
    rows = run(cases)
    previous = out / "openspiel_crosscheck.json"
    if args.only is not None and previous.is_file():  # rerun cases: replace them in the report
        fresh = {row["label"]: row for row in rows}
        old = json.loads(previous.read_text())["rows"]
        rows = [fresh.pop(row["label"], row) for row in old] + list(fresh.values())
    (out / "openspiel_crosscheck.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=2) + "\n")
    (out / "openspiel_crosscheck.md").write_text(report(rows, meta))
    print(report(rows, meta))
    wrote(out / "openspiel_crosscheck", "md", "json")


if __name__ == "__main__":
    main()
