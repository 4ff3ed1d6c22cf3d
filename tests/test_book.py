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
