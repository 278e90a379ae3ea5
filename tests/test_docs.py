"""The documentation under docs/ cannot drift from the code: every registered game and
solver has its page, every parameter appears there with its default (parsed as the
command line would parse it), and every docs/ path or relative link resolves."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import mfax
from mfax import params
from mfax.solvers import solver_names, solver_spec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def table_rows(page: Path, section: str) -> dict[str, str]:
    """``{name: default text}`` from the first table after the heading ``section``."""
    text = page.read_text()
    start = text.index(f"## {section}")
    rows = {}
    for line in text[start:].splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def solver_pages() -> dict[str, Path]:
    """Solver name -> page, from the algorithm table of docs/index.md."""
    pages = {}
    for line in (DOCS / "index.md").read_text().splitlines():
        link = re.search(r"\]\((algorithms/[\w]+\.md)\)", line)
        if line.startswith("|") and link:
            for name in re.findall(r"`(\w+)`", line.split("|")[1]):
                pages[name] = DOCS / link.group(1)
    return pages


@pytest.mark.parametrize("name", mfax.games.game_names())
def test_every_game_parameter_is_documented_with_its_default(name):
    # a game named family.game (mfglib.beach_bar) is a section of the family's page
    family, dot, _ = name.partition(".")
    page = DOCS / "games" / (f"{family}.md" if dot else f"{name}.md")
    rows = table_rows(page, f"Parameters of `{name}`" if dot else "Parameters")
    described = mfax.games.describe(name)
    assert list(rows) == [p for p, _, _ in described], f"{page}: parameter table differs from the game's parameters"
    for key, default, _ in described:
        assert mfax.games.parse_value(name, key, rows[key]) == default, (page, key, rows[key], default)


def test_every_solver_has_a_page_listing_its_hyper_parameters():
    pages = solver_pages()
    assert set(solver_names()) <= set(pages), set(solver_names()) - set(pages)
    for name in solver_names():
        assert pages[name].is_file(), pages[name]
        assert "## When to use it" in pages[name].read_text(), f"{pages[name]}: no 'When to use it' section"
        hparams = solver_spec(name).hparams
        if hparams is None:
            continue
        rows = table_rows(pages[name], "Hyper-parameters (`--hp key=value`)")
        owner = f"solver {name!r}"
        assert list(rows) == [p for p, _, _ in params.describe(hparams)], pages[name]
        for key, default, _ in params.describe(hparams):
            assert params.parse_text(hparams, owner, key, rows[key]) == default, (pages[name], key)


def test_krusell_smith_hyper_parameters_are_documented_with_their_defaults():
    from mfax.solvers.krusell_smith import KrusellSmithSettings

    page = DOCS / "economists.md"
    rows = table_rows(page, "Krusell-Smith side by side")
    assert list(rows) == [p for p, _, _ in params.describe(KrusellSmithSettings)], page
    for key, default, _ in params.describe(KrusellSmithSettings):
        assert params.parse_text(KrusellSmithSettings, "krusell-smith", key, rows[key]) == default, key


def test_cited_docs_paths_and_links_resolve():
    cited = set()
    for folder in ("src", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            cited |= set(re.findall(r"docs/[\w/]+\.md", path.read_text()))
    assert cited, "no docstring points into docs/"
    for ref in sorted(cited):
        assert (ROOT / ref).is_file(), f"{ref} is cited but does not exist"
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|png|cff))\)", page.read_text()):
            served = ROOT / target if target.startswith("bench/results/") else None  # docs/_hooks/bench_figures.py
            assert (page.parent / target).resolve().is_file() or (served and served.is_file()), (
                f"{page}: broken link {target}"
            )


def test_no_citation_of_files_outside_the_project():
    outside = re.compile(r"\b(GAMES|ALGORITHMS|DESIGN|STYLE)\.md\b|shared/spec")
    for folder in ("src", "bench", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md"):
                assert not outside.search(path.read_text()), path


def test_ci_runs_exactly_the_readme_test_command():
    """The README's test command is the one CI runs (the default tier and its coverage floor)."""
    command = re.search(r"```bash\n(\.venv/bin/python -m pytest[^\n]*)\n```", (ROOT / "README.md").read_text())
    assert command, "README.md shows no test command"
    assert command.group(1) in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_page_is_in_the_site_navigation():
    """mkdocs only lists a page missing from ``nav`` (no warning): every page must be reachable."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    assert pages
    assert [p for p in pages if f": {p}" not in nav] == []


def test_the_cli_reference_page_renders_every_command():
    """docs/cli.md is rendered at build time from the typer app (docs/_hooks/cli_reference.py)."""
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "_hooks" / "cli_reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = (DOCS / "cli.md").read_text()
    assert hook.MARKER in page
    rendered = hook.on_page_markdown(page, None, None, None)
    from mfax.run.cli import app

    names = [c.name for c in app.registered_commands]
    assert "train" in names and "eval" in names
    for name in names:
        assert f"## `mfax {name}`" in rendered and f"Usage: mfax {name} " in rendered, name
    assert "--noise" in rendered.split("## `mfax train`")[1]  # the options themselves, not only headings
