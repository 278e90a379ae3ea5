"""mfax against MFGLib 0.3.0 on MFGLib's ten games: exploitability of fixed policies and
of the first fictitious-play and online-mirror-descent iterates, and the time per
iteration of each library, in one run.

    # in a venv with MFGLib (PyTorch) and mfax: see docs/games/mfglib.md
    python bench/mfglib_crosscheck.py              # every game at MFGLib's defaults
    python bench/mfglib_crosscheck.py --only beach_bar,left_right --iterations 5

Writes bench/results/mfglib_crosscheck.{md,json}. Both libraries compute in float64.
Mapping of conventions (docs/games/mfglib.md): MFGLib's steps ``t = 0..T`` are mfax's
``horizon = T + 1``; its exploitability ``sum_s mu_0(s) (max_a Q*_0(s, a) - V^pi_0(s))``
with undiscounted sums over time is mfax's (``gamma = 1``, one noise path); its
fictitious play counts the initial policy as iterate 0 (mfax ``initial=average``) and
splits best-response ties evenly (``ties=split``); its mirror descent is mfax's OMD with
``lr = alpha``. A game whose rewards or transitions read the state-action distribution
is rewritten exactly in mfax with two steps per MFGLib step: its tables are mapped with
``mfax.games.mfglib.joint_table``.

This file is also imported by tests/test_mfglib_games.py (``crosscheck``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import platform
import time
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import mfax
from mfax.dynamics.noise import enumerate_noise
from mfax.evaluation.exploitability import evaluate
from mfax.games.mfglib import JointMeanFieldGame, joint_table
from mfax.policies.base import Tabular
from mfax.solvers import driver
from mfax.solvers.classical import SOLVERS, FPHyperParams, OMDHyperParams

RESULTS = Path(__file__).resolve().parent / "results"
TOLERANCE = 1e-6  # relative agreement asked of every figure
GAMES = (
    "beach_bar",
    "building_evacuation",
    "conservative_treasure_hunting",
    "crowd_motion",
    "equilibrium_price",
    "left_right",
    "linear_quadratic",
    "random_linear",
    "rock_paper_scissors",
    "susceptible_infected",
)


@contextlib.contextmanager
def torch_dtype(dtype):
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def mfglib_env(name: str, **params):
    """MFGLib's environment ``name`` in float64. ``random_linear``'s tables are drawn as
    MFGLib draws them by default (float32) and then widened, so that the game is MFGLib's
    published one (drawn in float64, PyTorch's uniforms would be other numbers)."""
    import torch
    from mfglib.env import Environment

    with torch_dtype(torch.float64):
        env = getattr(Environment, name)(**params)
    if name == "random_linear":
        with torch_dtype(torch.float32):
            drawn = Environment.random_linear(**params)
        for fn, ref, keys in (
            (env.reward_fn, drawn.reward_fn, ("r1", "r2")),
            (env.transition_fn, drawn.transition_fn, ("p1", "p2")),
        ):
            for key in keys:
                setattr(fn, key, getattr(ref, key).double())
    return env


def shapes(env) -> tuple[int, int, int]:
    return env.T + 1, env.n_states, env.n_actions


def fixed_policies(env, seed: int = 0) -> dict[str, np.ndarray]:
    """Uniform, a deterministic one (action ``(3 s + 2 t + 1) mod m``) and a random table,
    as ``(T + 1, n, m)`` float64 arrays."""
    T1, n, m = shapes(env)
    t, s = np.meshgrid(np.arange(T1), np.arange(n), indexing="ij")
    det = np.eye(m)[(3 * s + 2 * t + 1) % m]
    rand = np.random.default_rng(seed).uniform(size=(T1, n, m)) + 0.05
    return {
        "uniform": np.full((T1, n, m), 1.0 / m),
        "deterministic": det,
        "random": rand / rand.sum(-1, keepdims=True),
    }


def to_torch(env, table: np.ndarray):
    import torch

    return torch.tensor(table, dtype=torch.float64).reshape(env.T + 1, *env.S, *env.A)


def mfglib_exploitability(env, table: np.ndarray) -> float:
    import mfglib.alg  # noqa: F401  (MFGLib 0.3.0: importing mfglib.scoring first is a circular import)
    from mfglib.scoring import exploitability_score

    with torch_dtype(__import__("torch").float64):
        return float(exploitability_score(env, to_torch(env, table)))


def mfglib_iterates(
    env, algo: str, iterations: int, alpha: float = 1.0, split_near_ties: bool = False
) -> tuple[list[np.ndarray], float]:
    """MFGLib's FP (``alpha = 0``: weights ``1/(i+2)``) or OMD policies after
    ``0..iterations`` steps from uniform, and its seconds per step. ``split_near_ties``:
    FP's best response splits over the actions within 64 ulps of the best (mfax's rule)
    instead of MFGLib's exact equality."""
    import torch
    from mfglib.alg import FictitiousPlay, OnlineMirrorDescent

    with torch_dtype(torch.float64):
        alg = FictitiousPlay() if algo == "fp" else OnlineMirrorDescent(alpha=alpha)
        step = alg.step_next_state
        if algo == "fp" and (len(env.A) > 1 or split_near_ties):
            # MFGLib's own step fails on multi-dimensional actions (fp_step_any_actions)
            step = functools.partial(fp_step_any_actions, split_near_ties=split_near_ties)
        T1, n, m = shapes(env)
        state = alg.init_state(env, torch.full((T1, *env.S, *env.A), 1.0 / m))
        out = [state.pi.reshape(T1, n, m).numpy().copy()]
        t0 = time.perf_counter()
        for _ in range(iterations):
            state = step(state, None, None)
            out.append(state.pi.reshape(T1, n, m).numpy().copy())
        seconds = (time.perf_counter() - t0) / max(iterations, 1)
    return out, seconds


def fp_step_any_actions(state, atol=None, rtol=None, split_near_ties: bool = False):
    """MFGLib 0.3.0's fictitious-play step (``FictitiousPlay.step_next_state``, weights
    ``1/(i+2)``) with the state marginals broadcast over every action axis. MFGLib's own
    keeps one trailing axis for the actions and fails with a shape error on a game with a
    multi-dimensional action space (``equilibrium_price``, actions ``(Q+1, H+1)``).
    ``split_near_ties``: the greedy best response splits over the actions within 64 ulps
    of the best (mfax's ``ties=split``) rather than over the exactly equal ones."""
    import torch
    from mfglib.alg.fictitious_play import State
    from mfglib.alg.greedy_policy_given_mean_field import Greedy_Policy
    from mfglib.utils import mean_field_from_policy

    env = state.env
    L = mean_field_from_policy(state.pi, env=env)
    pi_br = near_tie_greedy(env, L) if split_near_ties else Greedy_Policy(env, L)
    L_br = mean_field_from_policy(pi_br, env=env)
    actions = (1,) * len(env.A)
    mu = L.flatten(start_dim=1 + len(env.S)).sum(-1).reshape(env.T + 1, *env.S, *actions)
    mu_br = L_br.flatten(start_dim=1 + len(env.S)).sum(-1).reshape(env.T + 1, *env.S, *actions)
    alpha = 1.0 / (state.i + 2)
    numer = (1 - alpha) * mu * state.pi + alpha * mu_br * pi_br
    denom = (1 - alpha) * mu + alpha * mu_br
    pi = torch.nan_to_num(numer / denom, nan=1.0 / env.n_actions)
    return State(i=state.i + 1, env=env, pi=pi)


def near_tie_greedy(env, L):
    """MFGLib's greedy policy (``Greedy_Policy``) with ties up to 64 ulps split evenly."""
    import torch
    from mfglib.alg.q_fn import QFn

    T1, n, m = shapes(env)
    q = QFn(env, L).optimal().reshape(T1, n, m)
    top = q.max(dim=-1, keepdim=True).values
    near = (q >= top - 64 * torch.finfo(q.dtype).eps * (1.0 + top.abs())).to(q.dtype)
    return (near / near.sum(-1, keepdim=True)).reshape(T1, *env.S, *env.A)


def mfax_game(name: str, **params) -> mfax.Game:
    return mfax.make(f"mfglib.{name}", **params)


def mfax_table(game: mfax.Game, table: np.ndarray) -> jax.Array:
    """A table of MFGLib's layout as a policy table of ``game``."""
    if isinstance(game, JointMeanFieldGame):
        return joint_table(game, jnp.asarray(table))
    return jnp.asarray(table)


def mfax_exploitability(game: mfax.Game, table: np.ndarray, batch=None) -> float:
    batch = enumerate_noise(game) if batch is None else batch
    return float(evaluate(game, Tabular(mfax_table(game, table)), batch).exploitability)


def mfax_iterates(game: mfax.Game, algo: str, iterations: int, alpha: float = 1.0, timing: int = 0):
    """mfax's FP (MFGLib's conventions: ``initial=average``, ``ties=split``) or OMD
    (``lr = alpha``): exploitability of the policies after ``0..iterations`` updates, and
    the seconds per iteration of a compiled chunk of ``timing`` iterations (0: not timed)."""
    batch = enumerate_noise(game)
    hp = FPHyperParams(initial="average", ties="split", flow="own") if algo == "fp" else OMDHyperParams(lr=alpha)
    solver = SOLVERS[algo](game, batch, hp)
    states = driver.initial_states(solver, [0], [0.0])
    run = driver.chunk(solver, iterations + 1).lower(states).compile()
    _, metrics = run(states)
    expl = [float(x) for x in np.asarray(metrics.exploitability)[0]]
    seconds = None
    if timing:
        states = driver.initial_states(solver, [0], [0.0])
        timed = driver.chunk(solver, timing).lower(states).compile()
        t0 = time.perf_counter()
        _, m = timed(states)
        jax.block_until_ready(m)
        seconds = (time.perf_counter() - t0) / timing
    return expl, seconds


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def compare_game(name: str, iterations: int, timing: int, params: dict | None = None) -> dict:
    """Every figure of one game, both libraries, with relative differences."""
    params = params or {}
    env = mfglib_env(name, **params)
    game = mfax_game(name, **params)
    batch = enumerate_noise(game)
    rows = []
    for label, table in fixed_policies(env).items():
        theirs, ours = mfglib_exploitability(env, table), mfax_exploitability(game, table, batch)
        rows.append({"what": f"{label} policy", "mfglib": theirs, "mfax": ours, "rel": relative(theirs, ours)})
    speed = {}
    for algo in ("fp", "omd"):
        pis, their_s = mfglib_iterates(env, algo, iterations)
        their = [mfglib_exploitability(env, pi) for pi in pis]
        ours, our_s = mfax_iterates(game, algo, iterations, timing=timing)
        near = [None] * len(their)
        if algo == "fp" and any(relative(a, b) > TOLERANCE for a, b in zip(their, ours, strict=True)):
            # a best response chosen among values one rounding apart: rerun MFGLib splitting near-ties
            near = [mfglib_exploitability(env, pi) for pi in mfglib_iterates(env, algo, iterations, 1.0, True)[0]]
        for k, (a, b, c) in enumerate(zip(their, ours, near, strict=True)):
            row = {"what": f"{algo} iterate {k}", "mfglib": a, "mfax": b, "rel": relative(a, b)}
            if c is not None:
                row |= {"mfglib_near_ties_split": c, "rel_near_ties_split": relative(c, b)}
            rows.append(row)
        speed[algo] = {"mfglib_s": their_s, "mfax_s": our_s, "ratio": their_s / our_s if our_s else None}
    return {
        "game": f"mfglib.{name}",
        "params": params,
        "sizes": {"T": env.T, "states": env.n_states, "actions": env.n_actions},
        "mfax_sizes": {"horizon": game.horizon, "states": game.n_states, "actions": game.n_actions},
        "rows": rows,
        "max_rel": max(r["rel"] for r in rows),
        "max_rel_near_ties_split": max(r.get("rel_near_ties_split", r["rel"]) for r in rows),
        "speed": speed,
    }


HEADER = "| policy | MFGLib | mfax | rel. difference | MFGLib, near-ties split | rel. |"


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# mfax against MFGLib 0.3.0 on MFGLib's games",
        "",
        f"{meta['machine']}; JAX {meta['jax']}, PyTorch {meta['torch']}, MFGLib {meta['mfglib']}; float64 both. "
        f"Exploitability (MFGLib's definition, which is mfax's here) of three fixed policies and of the policies "
        f"after 0..{meta['iterations']} FP and OMD (alpha = lr = 1) iterations; 'rel' the relative difference. "
        f"Time per iteration: MFGLib's step_next_state averaged over the same iterations; mfax's over a compiled "
        f"chunk of {meta['timing']} iterations (compilation excluded, the exact figures of every iterate included).",
        "",
        "| game | MFGLib T, states, actions | mfax horizon, states | figures | max rel. difference | "
        "same, MFGLib's FP splitting near-ties | "
        "FP s/it MFGLib | FP s/it mfax | ratio | OMD s/it MFGLib | OMD s/it mfax | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sz, ms, fp, omd = r["sizes"], r["mfax_sizes"], r["speed"]["fp"], r["speed"]["omd"]
        lines.append(
            f"| {r['game']} | {sz['T']}, {sz['states']}, {sz['actions']} | {ms['horizon']}, {ms['states']} | "
            f"{len(r['rows'])} | {r['max_rel']:.1e} | {r['max_rel_near_ties_split']:.1e} | "
            f"{fp['mfglib_s']:.3g} | {fp['mfax_s']:.3g} | "
            f"{fp['ratio']:.0f}x | {omd['mfglib_s']:.3g} | {omd['mfax_s']:.3g} | {omd['ratio']:.0f}x |"
        )
    lines += ["", "## Every figure", ""]
    for r in results:
        lines += [f"### {r['game']}", "", HEADER]
        lines += ["|---|---|---|---|---|---|"]
        for x in r["rows"]:
            near = x.get("mfglib_near_ties_split")
            extra = "| | |" if near is None else f"| {near:.12g} | {x['rel_near_ties_split']:.1e} |"
            lines.append(f"| {x['what']} | {x['mfglib']:.12g} | {x['mfax']:.12g} | {x['rel']:.1e} " + extra)
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    # here, not at the top: tests import this file without bench/ on the path
    from benchutil import ArgumentParser, out_dir, positive, require, wrote

    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated game names (default: all ten)")
    parser.add_argument("--iterations", type=positive, default=5, help="FP and OMD iterates compared")
    parser.add_argument("--timing", type=positive, default=50, help="mfax iterations timed per algorithm")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(GAMES)
    unknown = [n for n in names if n not in GAMES]
    if unknown:
        parser.error(f"--only: unknown game {unknown[0]!r}; allowed: {', '.join(GAMES)}")
    require(parser.prog, "mfglib", "torch")
    out_dir(parser, args.out)
    jax.config.update("jax_enable_x64", True)
    import mfglib
    import torch

    results = []
    for name in names:
        t0 = time.perf_counter()
        results.append(compare_game(name, args.iterations, args.timing))
        r = results[-1]
        print(f"{r['game']}: max rel {r['max_rel']:.2e} ({time.perf_counter() - t0:.0f} s)", flush=True)
    meta = {
        "machine": f"{platform.machine()} CPU, {__import__('os').cpu_count()} cores",
        "jax": jax.__version__,
        "torch": torch.__version__,
        "mfglib": getattr(mfglib, "__version__", "?"),
        "iterations": args.iterations,
        "timing": args.timing,
    }
    suffix = "" if not args.only else "_only"
    (args.out / f"mfglib_crosscheck{suffix}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    (args.out / f"mfglib_crosscheck{suffix}.md").write_text(markdown(results, meta))
    wrote(args.out / f"mfglib_crosscheck{suffix}", "md", "json")


if __name__ == "__main__":
    main()
