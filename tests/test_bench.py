"""bench/'s scripts: a user mistake is refused in one line before any work, a smoke or
subset run never replaces the committed results of the full run, the source trees that
some scripts compare are the ones their children import, and the optional libraries are
named when missing. The scripts' work is replaced by stand-ins: nothing here trains."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
REPO = BENCH.parent


@pytest.fixture(scope="module")
def load():
    """Import a bench script as a module (bench/ on the path, as ``python bench/NAME.py`` has it)."""
    sys.path.insert(0, str(BENCH))
    modules = {}

    def load(name: str):
        if name not in modules:
            x64 = jax.config.jax_enable_x64  # some scripts switch float64 on when imported
            spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up
            spec.loader.exec_module(module)
            jax.config.update("jax_enable_x64", x64)
            modules[name] = module
        return modules[name]

    yield load
    sys.path.remove(str(BENCH))


def no_work(monkeypatch, module, *names):
    """Replace the functions that do a script's work by ones that fail the test."""

    def work(*args, **kwargs):
        raise AssertionError("the script started working before refusing")

    for name in names:
        monkeypatch.setattr(module, name, work)


def refusal(capsys, main, argv) -> str:
    """The one line a script refuses ``argv`` with (exit status not 0)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    code = exit_.value.code
    message = capsys.readouterr().err if isinstance(code, int) else str(code)
    assert code not in (0, None)
    assert len(message.strip().splitlines()) == 1, message
    assert "Traceback" not in message
    return message


def installed(*modules) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


# -- 4, 7: bad options, one line each, before any work ------------------------------------
# the functions that do a script's work (replaced by ones that fail the test)
WORK = {
    "convergence": ("run_one",),
    "param_sweep": ("measure",),
    "pushforward": ("run_config", "sizes_of"),
    "t126_settings": ("run_setting",),
    "sweep_training": ("compiled_chunk",),
    "blas_threads": ("time_game",),
}


@pytest.mark.parametrize(
    "script,argv,words",
    [
        ("convergence", ["--games", "nosuch"], ["--games", "nosuch", "linear_quadratic"]),
        ("convergence", ["--games", "sis"], ["--games", "sis", "beach_bar"]),
        ("convergence", ["--seeds", "-1"], ["--seeds", ">= 1"]),
        ("convergence", ["--seeds", "0"], ["--seeds", ">= 1"]),
        ("convergence", ["--iterations", "0"], ["--iterations", ">= 1"]),
        ("convergence", ["--thresholds", "-1"], ["--thresholds", "(0, 1]"]),
        ("param_sweep", ["--values", "a,b"], ["--values", "comma-separated numbers"]),
        ("param_sweep", ["--game", "nosuch"], ["--game", "nosuch", "macro"]),
        ("param_sweep", ["--param", "nosuch"], ["'nosuch'", "traced", "crra"]),
        ("param_sweep", ["--param", "num_wealth", "--values", "10,20"], ["'num_wealth'", "traced", "crra"]),
        ("param_sweep", ["--paths", "0"], ["--paths", ">= 1"]),
        ("param_sweep", ["--repeats", "0"], ["--repeats", ">= 1"]),
        ("param_sweep", ["--game", "beach_bar", "--quick"], ["--quick", "macro", "--set"]),
        ("param_sweep", ["--set", "nosuch=1"], ["nosuch", "allowed"]),
        ("pushforward", ["--batch", "-3"], ["--batch", ">= 1"]),
        ("pushforward", ["--batch", "0"], ["--batch", ">= 1"]),
        ("pushforward", ["--min-repeats", "0"], ["--min-repeats", ">= 1"]),
        ("pushforward", ["--max-repeats", "0"], ["--max-repeats", ">= 1"]),
        ("pushforward", ["--budget", "0"], ["--budget", "> 0"]),
        ("pushforward", ["--games", "sis"], ["--games", "sis", "macro"]),
        ("t126_settings", ["--seeds", "3-1"], ["--seeds", "0 <= a <= b", "'3-1'"]),
        ("t126_settings", ["--seeds", "x"], ["--seeds", "a-b"]),
        ("t126_settings", ["--lrs", "a,b"], ["--lrs", "comma-separated numbers"]),
        ("t126_settings", ["--lrs", "0.01,-1"], ["--lrs", "positive"]),
        ("t126_settings", ["--settings", "99"], ["--settings", "0..7"]),
        ("t126_settings", ["--iterations", "0"], ["--iterations", ">= 1"]),
        ("t126_settings", ["--report", "/nonexistent/t.json"], ["--report", "cannot read"]),
        ("t126_settings", ["--settings=-1"], ["--settings", "0..7", "'-1'"]),
        ("t126_settings", ["--lrs", "nan"], ["--lrs", "positive finite"]),
        ("sweep_training", ["--game", "beach_bar", "--quick"], ["--quick", "macro", "beach_bar"]),
        ("sweep_training", ["--param", "nosuch"], ["'nosuch'", "traced", "crra"]),
        ("sweep_training", ["--param", "num_wealth"], ["'num_wealth'", "traced", "crra"]),
        ("sweep_training", ["--values", "a,b"], ["--values", "comma-separated numbers"]),
        ("sweep_training", ["--values", "1.5,-3"], ["crra", "> 0", "-3"]),
        ("sweep_training", ["--game", "nosuch"], ["--game", "nosuch", "macro"]),
        ("sweep_training", ["--algo", "nosuch"], ["--algo", "nosuch", "rspg"]),
        ("sweep_training", ["--length", "0"], ["--length", ">= 1"]),
        ("sweep_training", ["--repeats", "-1"], ["--repeats", ">= 1"]),
        ("blas_threads", ["--games", "nosuch"], ["--games", "nosuch", "mfglib.crowd_motion"]),
        ("blas_threads", ["--games", ","], ["--games", "(none given)"]),
        ("blas_threads", ["--load", "-1"], ["--load", ">= 0"]),
        ("blas_threads", ["--rounds", "0"], ["--rounds", ">= 1"]),
    ],
)
def test_scripts_refuse_bad_options(load, capsys, monkeypatch, script, argv, words):
    module = load(script)
    no_work(monkeypatch, module, *WORK[script])
    message = refusal(capsys, module.main, argv)
    assert all(w in message for w in words), message


def test_classical_refuses_bad_options(load, capsys, monkeypatch):
    classical = load("classical")
    no_work(monkeypatch, classical, "run")
    assert "--chunk" in refusal(capsys, classical.main, ["--chunk", "0"])
    message = refusal(capsys, classical.main, ["--quick", "--only", "nosuch"])
    # the quick run's labels, each once; not the full run's
    labels = [row[0] for row in classical.QUICK]
    assert all(message.count(label) == 1 for label in labels), message
    assert "bar never closes" not in message


@pytest.mark.skipif(installed("torch", "mfglib"), reason="MFGLib installed: nothing to refuse")
def test_classical_vs_mfglib_names_the_missing_library_first(load, capsys, monkeypatch):
    classical = load("classical")
    no_work(monkeypatch, classical, "run")
    message = refusal(capsys, classical.main, ["--vs-mfglib"])
    assert "pip install" in message and ("PyTorch" in message or "MFGLib" in message)


def test_history_matters_refuses_bad_options(load, capsys, monkeypatch, tmp_path):
    history = load("history_matters")
    no_work(monkeypatch, history, "run")
    message = refusal(capsys, history.main, ["--games", "macro"])
    assert "macro has no finite noise support" in message and "beach_bar" in message and "sis" in message
    assert "no registered game" in refusal(capsys, history.main, ["--games", "nosuch"])
    assert "--seeds" in refusal(capsys, history.main, ["--seeds", "0"])
    blocked = tmp_path / "a file"
    blocked.write_text("")
    message = refusal(capsys, history.main, ["--out", str(blocked / "x")])
    assert "--out" in message and "cannot create" in message


def test_paired_speed_refuses_bad_options(load, capsys, monkeypatch):
    paired = load("paired_speed")
    no_work(monkeypatch, paired, "run_tree", "check_tree")
    assert "--rounds" in refusal(capsys, paired.main, ["--old", str(REPO), "--new", str(REPO), "--rounds", "0"])
    message = refusal(capsys, paired.main, ["--old", str(REPO), "--new", str(REPO), "--only", "nosuch"])
    assert "'nosuch'" in message and "beach_bar rspg sample" in message


def test_latency_refuses_bad_options(load, capsys, monkeypatch):
    latency = load("latency")
    no_work(monkeypatch, latency, "one", "check_tree")
    assert "--rounds" in refusal(capsys, latency.main, ["--rounds", "0"])
    message = refusal(capsys, latency.main, ["--algos", "fp,nosuch"])
    assert "--algos" in message and "rippo" in message


def test_zoo_report_without_a_run(load, capsys, monkeypatch, tmp_path):
    zoo = load("zoo")
    no_work(monkeypatch, zoo, "_main")
    message = refusal(capsys, zoo.main, ["--report", "--out", str(tmp_path)])
    assert "zoo.json" in message and "does not exist" in message


def test_a_refusal_is_one_line_on_stderr():
    """The script as a user runs it: one line on stderr, status 2, no usage block, no traceback."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "convergence.py"), "--games", "sis"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("convergence.py: error:")


# -- 5: missing optional libraries -----------------------------------------------------------
@pytest.mark.parametrize(
    "script,argv,modules,library",
    [
        ("algorithms_crosscheck", [], ("pyspiel",), "OpenSpiel"),
        ("algorithms_crosscheck", ["--only", "occupation"], ("torch", "mfglib"), "MFGLib"),
        ("mfglib_crosscheck", [], ("torch", "mfglib"), "MFGLib"),
        ("openspiel_crosscheck", [], ("pyspiel",), "OpenSpiel"),
    ],
)
def test_a_missing_library_is_named_before_any_work(load, capsys, script, argv, modules, library, tmp_path):
    if installed(*modules):
        pytest.skip(f"{library} installed: nothing to refuse")
    module = load(script)
    message = refusal(capsys, module.main, [*argv, "--out", str(tmp_path / "out")])
    assert "not installed" in message and "pip install" in message
    assert library in message or "PyTorch" in message
    assert not (tmp_path / "out").exists()  # refused before anything was written


# -- 1: smoke and subset runs keep the committed names -------------------------------------
def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_pushforward_quick_and_subset_names(load, capsys, monkeypatch, tmp_path):
    pushforward = load("pushforward")
    sizes = {"n": 100, "m": 3, "K": 3, "T": 4, "nmK": 900}
    monkeypatch.setattr(pushforward, "sizes_of", lambda game, params: sizes)
    monkeypatch.setattr(pushforward, "run_config", lambda cfg, timeout: {**cfg, "status": "error", "error": "stand-in"})
    pushforward.main(["--quick", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'pushforward_quick'}.{{md,json}}"
    pushforward.main(["--games", "macro", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'pushforward_macro'}.{{md,json}}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pushforward_macro.json",
        "pushforward_macro.md",
        "pushforward_quick.json",
        "pushforward_quick.md",
    ]


def fake_history(game, algo, iterations, seeds, lr, noise, eval_every):
    return {
        "game": game,
        "algo": algo,
        "iterations": iterations,
        "seeds": seeds,
        "lr": lr,
        "noise": noise,
        "noise_paths": 1,
        "exploitability": [0.012345, 0.023456],
        "exploitability_info": [0.01, 0.02],
        "initial_exploitability": 0.25,
        "wall_clock_s": 1.0,
        "curves": {},
    }


def test_history_matters_names_table_and_finished_games(load, capsys, monkeypatch, tmp_path):
    history = load("history_matters")
    monkeypatch.setattr(history, "run", fake_history)
    history.main(["--quick", "--games", "mfglib.left_right", "--out", str(tmp_path)])
    name = tmp_path / "history_matters_quick_mfglib.left_right"
    assert last_line(capsys) == f"wrote {name}.{{md,json}}"
    table = Path(f"{name}.md").read_text()
    assert "common noise on" not in table
    assert "| mfglib.left_right | 1 | spg |" in table  # the noise support's size: 1, no common noise
    assert "| 0.0179 +- 0.00786 |" in table and "| 0.01235, 0.02346 |" in table  # significant digits kept

    def second_game_fails(game, *args):  # a game finished before a failure is kept
        if game == "sis":
            raise KeyboardInterrupt
        return fake_history(game, *args)

    monkeypatch.setattr(history, "run", second_game_fails)
    with pytest.raises(KeyboardInterrupt):
        history.main(["--games", "mfglib.left_right", "sis", "--iterations", "2", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "history_matters_mfglib.left_right_sis_2it.json").read_text())
    assert [r["game"] for r in saved] == ["mfglib.left_right", "mfglib.left_right"]


def test_scaling_quick_name(load, capsys, monkeypatch, tmp_path):
    scaling = load("scaling")

    def measure(spec, devices=None):
        n = spec["params"].get("num_states", 100)
        seconds, rss = 1e-4 * n * spec["paths"], 300.0 + spec["paths"] + n / 10
        figures = {"seconds_per_iteration": seconds, "peak_rss_mb": rss, "baseline_mb": 200.0}
        return {**spec, **figures, "devices": devices or 1, "n_states": n}

    monkeypatch.setattr(scaling, "measure", measure)
    scaling.main(["--quick", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'scaling_quick'}.{{md,json}}"
    assert not (tmp_path / "scaling.md").exists()


def test_param_sweep_quick_name(load, capsys, monkeypatch, tmp_path):
    param_sweep = load("param_sweep")

    def measure(game, key, values, extra, paths, repeats):
        run = {"traces": 1, "compiles": 1, "compile_s": 1.0, "compile_s_each": [1.0], "run_s": 1.0}
        return dict(
            game=game,
            param=key,
            values=values,
            overrides=extra,
            n_states=1,
            n_actions=1,
            horizon=1,
            paths=paths,
            before=run,
            after=run,
            max_abs_diff=0.0,
            max_abs_value=1.0,
        )

    monkeypatch.setattr(param_sweep, "measure", measure)
    param_sweep.main(["--quick", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'param_sweep_quick'}.{{md,json}}"
    param_sweep.main(["--game", "beach_bar", "--param", "gamma", "--values", "0.9,0.95", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'param_sweep_beach_bar_gamma_0.9-0.95'}.{{md,json}}"
    assert not (tmp_path / "param_sweep.md").exists()


def test_classical_quick_only_name(load, capsys, monkeypatch, tmp_path):
    classical = load("classical")
    row = dict(
        algo="fp",
        lr=None,
        paths=2,
        iterations=1,
        seconds_per_iteration=1.0,
        initial_exploitability=1.0,
        final_exploitability=0.5,
        final_exploitability_per_path=0.5,
        best_exploitability=0.5,
        curve=[1.0, 0.5],
        reached={f"{f:g}": None for f in classical.FRACTIONS},
    )
    monkeypatch.setattr(classical, "run", lambda game, algo, iterations, lr, chunk: {**row, "algo": algo})
    monkeypatch.setattr(classical, "plot", lambda rows, path: path.write_text(""))
    classical.main(["--quick", "--only", "z = +-1", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'classical_quick_only'}.{{md,json,png}}"
    assert not (tmp_path / "classical_only.md").exists()


def test_latency_subset_name_and_out_is_a_path(load, capsys, monkeypatch, tmp_path):
    latency = load("latency")
    figures = {c: 0.1 for c in latency.COLUMNS}
    monkeypatch.setattr(latency, "check_tree", lambda prog, src: str(src / "mfax" / "__init__.py"))
    monkeypatch.setattr(latency, "one", lambda *a: {**figures, "programs": 3, "exploitability": 1.0, "backend": "cpu"})
    monkeypatch.chdir(tmp_path)
    latency.main(["--algos", "fp,omd", "--out", "mine", "--tag", "_quiet"])
    assert last_line(capsys) == f"wrote {Path('mine') / 'latency_fp_omd_quiet'}.{{md,json}}"
    assert (tmp_path / "mine" / "latency_fp_omd_quiet.md").is_file()  # relative to where it is run


def test_algorithms_crosscheck_out(load, capsys, monkeypatch, tmp_path):
    crosscheck = load("algorithms_crosscheck")
    monkeypatch.setattr(crosscheck, "require", lambda *a, **k: None)
    for part in ("openspiel_part", "mfglib_part", "mfglib_omo_part", "mfglib_omi_part"):
        monkeypatch.setattr(crosscheck, part, lambda *a, part=part, **k: [part])
    crosscheck.main(["--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'algorithms_crosscheck'}.md"
    assert "mfglib_omi_part" in (tmp_path / "algorithms_crosscheck.md").read_text()


# -- 2: the trees compared are the ones imported --------------------------------------------
def fake_tree(root: Path, init: str = "", cli: str | None = None) -> Path:
    (root / "src" / "mfax" / "run").mkdir(parents=True)
    (root / "src" / "mfax" / "__init__.py").write_text(init)
    (root / "src" / "mfax" / "run" / "__init__.py").write_text("")
    if cli is not None:
        (root / "src" / "mfax" / "run" / "cli.py").write_text(cli)
    return root


def test_a_tree_is_a_repository_root_or_its_src(load, capsys, tmp_path):
    benchutil = load("benchutil")
    tree = fake_tree(tmp_path / "tree")
    assert benchutil.mfax_src(str(tree)) == benchutil.mfax_src(str(tree / "src")) == (tree / "src").resolve()
    for script, argv in [
        ("fixed_seed_identity", ["--old", str(tmp_path), "--new", str(tree)]),
        ("paired_speed", ["--old", str(tree), "--new", str(tmp_path / "nowhere")]),
        ("latency", ["--against", str(tmp_path)]),
    ]:
        module = load(script)
        message = refusal(capsys, module.main, argv)
        assert "holds no mfax package" in message and "src/mfax/__init__.py" in message, message


def test_a_child_must_import_the_given_tree(load, tmp_path):
    benchutil = load("benchutil")
    broken = fake_tree(tmp_path / "broken", init="raise ImportError('half a checkout')") / "src"
    with pytest.raises(SystemExit, match="does not import: ImportError: half a checkout"):
        benchutil.check_tree("x.py", broken)
    elsewhere = fake_tree(tmp_path / "elsewhere", init="__file__ = '/installed/mfax/__init__.py'") / "src"
    with pytest.raises(SystemExit, match=r"imported /installed/mfax/__init__\.py"):
        benchutil.check_tree("x.py", elsewhere)
    good = fake_tree(tmp_path / "good") / "src"
    assert benchutil.check_tree("x.py", good) == str(good.resolve() / "mfax" / "__init__.py")


def test_fixed_seed_identity_child_reports_its_mfax(load, tmp_path):
    identity = load("fixed_seed_identity")
    cli = "import os, sys\ndef main():\n    out = sys.argv[sys.argv.index('--out') + 1]\n    os.makedirs(out)\n"
    cli += "    open(os.path.join(out, 'metrics.csv'), 'w').write('a,wall_clock_s\\n1,2\\n')\n"
    good = fake_tree(tmp_path / "good", cli=cli) / "src"
    assert identity.train(good, "fp", tmp_path / "run") == [{"a": "1"}]
    foreign = fake_tree(tmp_path / "foreign", init="__file__ = '/installed/mfax/__init__.py'", cli=cli) / "src"
    with pytest.raises(SystemExit, match=r"imported /installed/mfax/__init__\.py"):
        identity.train(foreign, "fp", tmp_path / "run2")


# -- 3: the ratio when RSPG does not reach a threshold ----------------------------------------
def curve(times, values):
    return [
        {"wall_clock_s": t, "exploitability": [v], "exploitability_info": [v]}
        for t, v in zip(times, values, strict=True)
    ]


def test_convergence_ratio_when_only_model_free_reaches(load, tmp_path):
    convergence = load("convergence")
    run = dict(game="beach_bar", iterations=3, seconds_per_iteration=1.0, compile_s=0.0)
    results = [
        {**run, "algo": "rspg", "train_wall_s": 40.0, "curve": curve([0, 20, 40], [100.0, 80.0, 70.0])},
        {**run, "algo": "ippo", "train_wall_s": 30.0, "curve": curve([0, 10, 30], [100.0, 50.0, 20.0])},
    ]
    table = convergence.summarise(results, ["beach_bar"], [0.3])
    (entry,) = table["beach_bar"]["ratios"]
    assert entry["fastest_model_free"] == "ippo" and entry["model_free_s"] == 30.0
    assert entry["ratio_at_most"] == 30.0 / 40.0
    meta = dict(
        platform="p",
        cores=2,
        jax="j",
        backend="cpu",
        quick=True,
        params={},
        seeds=1,
        threshold_fractions=[0.3],
        total_min=1.0,
    )
    text = convergence.write_markdown(tmp_path / "c.md", table, meta)
    assert "| not reached in 40.0 | ippo 30.0 | < 0.75 (model-free faster;" in text


# -- 8: what --help and a helper module say ---------------------------------------------------
@pytest.mark.parametrize(
    "script,words",
    [
        ("fixed_seed_identity", "(every metrics.csv column but the wall clock)."),
        ("sweep_training", "--set crra=1.5,2,3"),
    ],
)
def test_help_shows_the_whole_first_paragraph(load, capsys, script, words):
    with pytest.raises(SystemExit) as exit_:
        load(script).main(["--help"])
    assert exit_.value.code == 0
    assert words in " ".join(capsys.readouterr().out.split())  # argparse wraps the lines


def test_a_helper_module_says_what_it_is():
    run = [sys.executable, str(BENCH / "benchutil.py")]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "benchutil.py: a module imported by the benchmark scripts, not a benchmark; nothing to run"
    ]
    helped = subprocess.run([*run, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "What the benchmark scripts of bench/ share" in helped.stdout


def test_openspiel_adapter_run_directly_says_what_it_is():
    run = [sys.executable, str(BENCH / "openspiel_adapter.py")]
    done = subprocess.run(run, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "openspiel_adapter.py: a module" in done.stderr
    helped = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=REPO)
    assert helped.returncode == 0 and "mfax's ``openspiel.*`` games next to OpenSpiel's" in " ".join(
        helped.stdout.split()
    )


# -- t126_settings: which optimiser settings reach 126 first --------------------------------------
def test_t126_settings_crossings_and_report(load, capsys, tmp_path):
    t126 = load("t126_settings")
    util = load("benchutil")
    # first at or below 126, and the iteration from which it stays there
    assert util.crossings(list(enumerate([400.0, 120.0, 130.0, 125.0, 110.0])), 126.0) == (1, 3)
    assert util.crossings(list(enumerate([400.0, 120.0, 130.0])), 126.0) == (1, None)
    assert util.crossings(list(enumerate([400.0, 300.0])), 126.0) == (None, None)
    assert util.crossings([(5, 100.0), (10, 90.0)], 126.0) == (5, 5)
    # a seed that never crosses counts as beyond the cap; half of them never: no median
    assert util.median_crossing([3, None, 5], 9) == 5
    assert util.median_crossing([3, None, None], 9) is None
    assert util.median_crossing([3, None], 9) is None  # half of an even count

    def seeds(firsts):
        rows = []
        for i, first in enumerate(firsts):
            curve = [400.0] * 6 if first is None else [400.0] * first + [100.0] * (6 - first)
            f, stays = load("benchutil").crossings(list(enumerate(curve)), 126.0)
            rows.append({"seed": i, "first": f, "stays": stays, "final": curve[-1], "curve": curve})
        return rows

    results = [
        {"setting": "a", "lrs": [{"lr": 0.01, "first": 2, "stays": 2, "final": 100.0, "seeds": seeds([1, 2, 3, 4])}]},
        {
            "setting": "b",
            "lrs": [{"lr": 0.02, "first": None, "stays": None, "final": 400.0, "seeds": seeds([1, None, None, 5])}],
        },
    ]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(results))
    for bad in ([], {"a": 1}, [{"setting": "a"}]):  # not a run's JSON: one line, not a traceback
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        message = refusal(capsys, t126.main, ["--report", str(tmp_path / "bad.json")])
        assert "not the JSON of a t126_settings.py run" in message
    t126.main(["--report", str(path), "--chosen", "2"])
    table = (tmp_path / "t.md").read_text()
    assert "| first, seeds 0-1 | median | first, seeds 2-3 | median |" in table
    assert "| a | 0.01 | 1, 2 | 1.5 | 3, 4 | 3.5 | 2 | 2 | 100.0 |" in table
    assert "| b | 0.02 | 1, - | - | -, 5 | - | - | - | 400.0 |" in table
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 't'}.md"


def test_train_speed_t126_table_names_its_noise(load):
    """The time-to-126 table says which noise trained (a result from before the option had
    exact noise only), and a sampled setting's files do not replace the exact one's."""
    speed = load("train_speed")
    curve = [(0, 0.0, 400.0), (1, 0.1, 120.0)]
    seeds = [{"seed": 0, "first": 1, "stays": 1, "curve": curve}]
    rounds = [{"load": 0.5, "bare": 0.1, "published": 1.3, "ratio": 2600.0}]
    old = {"lr": 0.01, "iterations": 100, "iteration": 1, "stays": 1, "seeds": seeds, "rounds": rounds, "ratio": 2600.0}
    assert "Exact noise (every path of the support" in "\n".join(speed.t126_lines(old))
    sampled = {**old, "noise": "sample", "paths": 32, "iterations": 150}
    text = "\n".join(speed.t126_lines(sampled))
    assert "Sampled noise, 32 paths drawn each iteration, lr 0.01, 150 iterations planned" in text
    assert "| 1 | 0.5 | 0.100 | 1.300 | 260 | 0.1 | 2600.0x |" in text
    assert speed.t126_name("exact", None) == "train_speed_t126_paired"
    assert speed.t126_name("sample", 32) == "train_speed_t126_paired_sample32"


def test_convergence_subset_names(load, capsys, monkeypatch, tmp_path):
    convergence = load("convergence")

    def fake_run(game, algo, plan, seeds, tmp):
        curve = [{"exploitability": [1.0]}]
        return {"iterations": 1, "seconds_per_iteration": 0.1, "curve": curve, "compile_s": 0.0, "diverged": None}

    monkeypatch.setattr(convergence, "run_one", fake_run)
    monkeypatch.setattr(convergence, "summarise", lambda *a: {})
    monkeypatch.setattr(convergence, "write_markdown", lambda path, *a: path.write_text("") or "")
    monkeypatch.setattr(convergence, "plot", lambda *a: None)
    for argv, name in [
        ([], "convergence"),
        (["--quick"], "convergence_quick"),
        (["--seeds", "2"], "convergence"),  # the documented full run
        (["--games", "beach_bar"], "convergence_games_beach_bar"),
        (["--games", "macro"], "convergence_games_macro"),  # not the committed convergence_macro of another setup
        (["--algos", "rspg", "spg"], "convergence_algos_rspg_spg"),
        (["--seeds", "1"], "convergence_seeds1"),
        (["--iterations", "3"], "convergence_iterations3"),
        (["--set", "beach_bar.horizon=4", "--plan", "iterations.spg=2"], "convergence_set_plan"),
        (["--games", "beach_bar", "--tag", "_mine"], "convergence_mine"),  # the user named it
    ]:
        convergence.main([*argv, "--out", str(tmp_path)])
        assert last_line(capsys) == f"wrote {tmp_path / name}.{{md,json,png}}", argv


def test_sweep_training_names(load, capsys, monkeypatch, tmp_path):
    sweep = load("sweep_training")
    monkeypatch.setattr(sweep, "compiled_chunk", lambda config, length: (None, None, 1.0, 1))
    monkeypatch.setattr(sweep, "timed", lambda fn, states, repeats: ([0.5] * repeats, states))
    for argv, name in [
        ([], "sweep_training"),
        (["--quick"], "sweep_training_quick"),
        (["--quick", "--values", "2,4"], "sweep_training_quick_2-4"),
        (["--quick", "--length", "1", "--repeats", "1"], "sweep_training_quick_length1_repeats1"),
        (["--game", "linear_quadratic", "--param", "kappa", "--values", "0.5,1"], None),
    ]:
        argv = [*argv, "--out", str(tmp_path)]
        sweep.main(argv)
        expected = name or "sweep_training_linear_quadratic_rspg_kappa_0.5-1"
        assert last_line(capsys) == f"wrote {tmp_path / expected}.{{md,json}}", argv
        assert (
            f"Produced by `python bench/sweep_training.py {' '.join(argv)}`"
            in (tmp_path / f"{expected}.md").read_text()
        )


def test_blas_threads_times_both_settings_and_writes_its_table(load, capsys, tmp_path):
    blas = load("blas_threads")
    rows = blas.main(["--games", "mfglib.beach_bar", "--rounds", "2", "--length", "2", "--out", str(tmp_path)])
    assert last_line(capsys) == f"wrote {tmp_path / 'blas_threads'}.{{md,json}}"
    (row,) = rows
    assert row["game"] == "mfglib.beach_bar" and len(row["ratios"]) == 2
    assert row["default_s"] > 0 and row["one_s"] > 0
    assert "| mfglib.beach_bar | 3, 4 |" in (tmp_path / "blas_threads.md").read_text()
    assert not jax.config.jax_enable_x64  # float64 for the timings only
