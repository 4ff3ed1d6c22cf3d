"""Issue 15: exercises are numbered per chapter the same way in the book's box, the
check's messages and the student copy, and every open exercise has a reference answer
and a rubric that the student copy does not contain."""

import importlib
import inspect
import re
from pathlib import Path

import nbformat
import pytest
from tool_loader import load_tool

from stad_utils.exercises.quiz import chapter_label

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
tool = load_tool("make_student_copies")


def chapter_prefix(path: Path) -> str:
    """``06_stfpm`` -> ``6``; the interlude ``02b_the_field`` -> ``B``."""
    return chapter_label(path.stem)


def exercises(path: Path) -> list[dict]:
    return tool.exercise_manifest(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_numbered_per_chapter_without_the_books_counter(path):
    found = exercises(path)
    assert [e["number"] for e in found] == [
        f"{chapter_prefix(path)}.{i}" for i in range(1, len(found) + 1)
    ]
    markdown = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    # sphinx-exercise would number the boxes across the whole book ("Exercise 16")
    assert markdown.count("{exercise}") == markdown.count(":nonumber:") == len(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_check_names_its_exercise_as_the_box_does(path):
    for exercise in exercises(path):
        if exercise["kind"] != "checked":
            continue
        module, name = exercise["check"].split(":")
        source = inspect.getsource(importlib.import_module(module))
        assert f'"Exercise {exercise["number"]} · {exercise["title"]}"' in source, name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_open_exercise_has_a_reference_answer_and_a_rubric(path):
    for exercise in exercises(path):
        if exercise["kind"] == "open":
            reference = exercise.get("reference", "")
            assert reference.startswith("**Reference answer.**"), exercise["label"]
            assert re.search(r"\*\*Rubric \(\d+ points\)\.\*\*", reference), exercise["label"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_copy_keeps_the_numbers_and_drops_the_references(path):
    notebook = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in tool.student_notebook(notebook).cells)
    for exercise in tool.exercise_manifest(notebook):
        assert f"{{exercise}} {exercise['number']} · {exercise['title']}" in text
        if exercise["kind"] == "open":
            assert exercise["reference"][:200] not in text
    assert "Reference answer" not in text and "**Rubric" not in text
