"""mkdocs hook: the command-line reference page renders each command's ``--help`` from
the typer app at build time, so the page cannot drift from the code.

A page containing the marker ``<!-- mfax-cli-help -->`` gets, in its place, one section
per command of ``mfax`` (in the order the app lists them) holding that command's help
text as ``mfax COMMAND --help`` prints it (fixed width 100).
"""

from __future__ import annotations

import click
import typer

MARKER = "<!-- mfax-cli-help -->"
WIDTH = 100


def help_text(command: click.Command, info_name: str, parent: click.Context | None = None) -> str:
    context = click.Context(command, info_name=info_name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(context)


def reference() -> str:
    from mfax.run.cli import app

    group = typer.main.get_command(app)
    root = click.Context(group, info_name="mfax", terminal_width=WIDTH, max_content_width=WIDTH)
    sections = ["## `mfax`", "", "```text", help_text(group, "mfax"), "```", ""]
    for name in group.list_commands(root):
        sections += [
            f"## `mfax {name}`",
            "",
            "```text",
            help_text(group.get_command(root, name), name, root),
            "```",
            "",
        ]
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())
