"""The whole book builds strictly from a clean _build: warnings are errors, every
chapter is executed (quick profile) and errors in cells are fatal. The build is the
session fixture ``built_book`` (conftest.py), shared with the browser test."""

import re

import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def test_index_leads_to_the_introduction(built_book):
    index = (built_book / "index.html").read_text()
    assert "book/intro.html" in index
    intro = (built_book / "book" / "intro.html").read_text()
    assert "Student–Teacher Anomaly Detection" in intro


def test_chapter1_page_has_its_figures_exercise_and_colab_button(built_book):
    page = (built_book / "notebooks" / "01_task_and_data.html").read_text()
    assert "1. The task and its data" in page
    assert len(re.findall(r"<img [^>]*src=\"[^\"]*\.png\"", page)) >= 2
    assert "Count the defect regions" in page  # the exercise box
    assert "colab.research.google.com" in page
    assert "Traceback" not in page


def test_references_resolve(built_book):
    references = (built_book / "book" / "references.html").read_text().lower()
    assert "mvtec" in references and "uninformed students" in references


def test_every_chapter_opens_with_its_cost_measured_in_this_build(built_book):
    """book/_ext/cost_box.py: the CPU time of the chapter's own execution in this build
    (the strict build executes every chapter), and the GPU estimate from the data file."""
    chapters = sorted((built_book / "notebooks").glob("*.html"))
    assert len(chapters) >= 10
    for page in chapters:
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text()))
        assert text.count("What this chapter costs to run") == 1, page.name
        match = re.search(r"Quick profile, measured in this build: ([\d.,]+) s of CPU time", text)
        assert match and float(match[1].replace(",", "")) > 0, page.name
        assert "not measured" not in text and "What drives the cost" in text, page.name
    setup = (built_book / "book" / "setup.html").read_text()
    assert "8,527.1" in setup  # Uninformed Students' GFLOP per training image, from the data
