"""mkdocs hook: the benchmark figures are served from where the benchmarks write them,
``bench/results/*.png`` (no copy under docs/ to fall out of date). A page links one as
``bench/results/NAME.png`` relative to the documentation root."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File


def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for figure in sorted((root / "bench" / "results").glob("*.png")):
        path = figure.relative_to(root).as_posix()
        files.append(
            File(path, src_dir=str(root), dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"])
        )
    return files
