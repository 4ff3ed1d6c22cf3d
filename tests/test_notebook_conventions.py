"""Every chapter follows the notebook conventions of ARCHITECTURE.md."""

from pathlib import Path

import nbformat
import pytest
import yaml
from tool_loader import load_tool

REPO = Path(__file__).resolve().parents[1]
make_student_copies = load_tool("make_student_copies")
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_structure(path):
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    first = cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "What you will learn" in first.source
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    assert "PROFILE = None" in tagged[0].source
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "## Exercises" in markdown and "## Summary" in markdown
    assert "{exercise}" in markdown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_cell_installs_from_the_configured_repository(path):
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    url = config["repository"]["url"]
    sources = [c.source for c in nbformat.read(path, as_version=4).cells]
    assert any("google.colab" in s and f"git+{url}" in s for s in sources)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_removes_every_solution(path):
    notebook = nbformat.read(path, as_version=4)
    copy = make_student_copies.student_notebook(notebook)
    text = "\n".join(c.source for c in copy.cells)
    assert "### BEGIN SOLUTION" not in text and "solution-start" not in text
    stubs = text.count("raise NotImplementedError(")
    solutions = sum(
        "solution" in c.metadata.get("tags", []) and c.cell_type == "code" for c in notebook.cells
    )
    assert stubs >= solutions >= 1
    # The rest of the chapter is untouched.
    kept = [c for c in notebook.cells if "solution" not in c.metadata.get("tags", [])]
    assert [c.source for c in kept] == [
        c.source for c in copy.cells if "exercise" not in c.metadata.get("tags", [])
    ]


def test_every_chapter_is_in_the_table_of_contents():
    toc = (REPO / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in toc
