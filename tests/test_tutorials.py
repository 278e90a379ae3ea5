"""The tutorials under docs/tutorials/ run as written (CI: ``pytest -m docs``).

Each page is one script: its ``python`` code blocks are executed in order in one
namespace, and every line of its ``bash`` blocks is an ``mfax`` command run as a
subprocess, which must succeed. Blocks fenced otherwise (``py``, ``console``, ``text``)
are shown only. Everything runs in a temporary directory holding a copy of
``examples/``, so relative paths in the pages (``examples/corridor.py``,
``--out runs/...``) resolve as they do for a reader in the repository's root.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.docs


def blocks(page: Path) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block of ``page``, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text())]


def mfax_commands(code: str) -> list[list[str]]:
    """The argument lists of a ``bash`` block's commands (comments dropped); a line that
    is not an ``mfax`` command is an error, so nothing shown as runnable goes unrun."""
    commands = []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] == "mfax", f"a bash block of a tutorial runs only mfax commands, got: {line}"
        commands.append(words[1:])
    return commands


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs_as_written(page, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the page may extend it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    namespace: dict = {"__name__": f"tutorial_{page.stem}"}
    ran = 0
    for language, code in blocks(page):
        if language == "python":
            exec(compile(code, f"{page.name} (python block {ran})", "exec"), namespace)
            ran += 1
        elif language == "bash":
            for args in mfax_commands(code):
                done = subprocess.run(
                    [sys.executable, "-c", "from mfax.run.cli import main; main()", *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                assert done.returncode == 0, f"{page.name}: mfax {shlex.join(args)}\n{done.stdout}\n{done.stderr}"
                ran += 1
    assert ran, f"{page.name} has no executable block"


def test_a_failing_block_fails_the_tutorial(tmp_path, monkeypatch):
    """The runner is not vacuous: a page whose command fails, or that shows a non-mfax
    command as runnable, is reported."""
    page = tmp_path / "broken.md"
    page.write_text("```bash\nmfax eval --game no_such_game\n```\n")
    with pytest.raises(AssertionError, match="no_such_game"):
        test_tutorial_runs_as_written(page, tmp_path / "run", monkeypatch)
    with pytest.raises(AssertionError, match="only mfax commands"):
        mfax_commands("pip install mfax")
