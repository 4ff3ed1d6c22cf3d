"""Run a chapter with papermill (in the quick profile unless told) and read back what it
recorded.

Chapters record their results with ``myst_nb.glue(name, value, display=False)``; the
book can then quote them, and the tests assert on them here.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def cell_timeout() -> int:
    """The book's per-cell timeout in seconds (``execute.timeout`` in ``_config.yml``), so
    that the tests give a cell exactly the time the book build gives it."""
    import yaml

    return int(yaml.safe_load((REPO / "_config.yml").read_text())["execute"]["timeout"])


def run_chapter(name: str, out_dir: Path, profile: str = "quick", **parameters) -> dict:
    """Execute ``notebooks/<name>.ipynb`` in ``profile``; return its glued values.

    The executed copy is written to ``out_dir`` (inspect it when a test fails).
    """
    import papermill

    source = NOTEBOOKS / f"{name}.ipynb"
    target = Path(out_dir) / f"{name}.ipynb"
    env_before = os.environ.get("STAD_PROFILE")
    os.environ["STAD_PROFILE"] = profile
    # A non-interactive backend inherited from the shell (e.g. MPLBACKEND=Agg) would
    # stop the kernel from displaying figures; let ipykernel choose its inline one.
    os.environ.pop("MPLBACKEND", None)
    os.environ["STAD_HEADLESS"] = "1"  # explorers draw lazily (see viz.style.interactive_figure)
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            kernel_name="python3",
            progress_bar=False,
            # A finite per-cell timeout also makes nbclient poll for replies instead of
            # blocking on one read, which can hang forever after a widget is displayed
            # (jupyter/nbclient#312).
            execution_timeout=cell_timeout(),
        )
    finally:
        if env_before is None:
            os.environ.pop("STAD_PROFILE", None)
        else:
            os.environ["STAD_PROFILE"] = env_before
    return read_glued(target)


def read_glued(path: Path) -> dict:
    """The values a notebook recorded with ``myst_nb.glue`` (parsed from their repr)."""
    notebook = nbformat.read(str(path), as_version=4)
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            prefix = meta.get("mime_prefix", "")
            text = output["data"][prefix + "text/plain"]
            try:
                values[meta["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[meta["name"]] = text
    return values


def figure_count(path: Path) -> int:
    """How many PNG images an executed notebook displays."""
    notebook = nbformat.read(str(path), as_version=4)
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def assert_every_texture_trained(values: dict, floor: float) -> None:
    """Chapters 6–8 in the quick profile: their method on the three textures (chapter 9
    loads those runs), each at an AU-PRO of at least ``floor`` (glued as
    ``categories_au_pro``, the chapter's own category first)."""
    au_pro = values["categories_au_pro"]
    assert list(au_pro) == ["brick", "grass", "gravel"]
    assert all(value >= floor for value in au_pro.values()), au_pro
