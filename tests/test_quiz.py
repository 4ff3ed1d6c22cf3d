"""Quick checks (issue 15): every chapter has 2–4, the book shows each with its folded
answer, the notebook's live cell answers at once, and the student copy drops the answers."""

from pathlib import Path

import nbformat
import pytest
from tool_loader import load_tool

from stad_utils.exercises.quiz import (
    QUESTIONS,
    answer_markdown,
    chapter_label,
    question_markdown,
    quick_check,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
tool = load_tool("make_student_copies")


def keys_of(path: Path) -> list[str]:
    return [key for key in QUESTIONS if key.split(".")[0] == chapter_label(path.stem)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_chapter_shows_its_questions_with_folded_answers(path):
    keys = keys_of(path)
    assert 2 <= len(keys) <= 4
    cells = nbformat.read(path, as_version=4).cells
    sources = [c.source for c in cells]
    for key in keys:
        question = sources.index(question_markdown(key))
        answer = cells[question + 1]
        assert answer.source == answer_markdown(key) and answer.metadata.tags == ["solution"]
        live = cells[question + 2]
        assert f'quick_check("{key}", None)' in live.source
        assert "remove-cell" in live.metadata.tags  # the book shows the folded answer instead
    copy = "\n".join(
        c.source for c in tool.student_notebook(nbformat.read(path, as_version=4)).cells
    )
    assert ":::{admonition} Answer" not in copy and "Quick check" in copy


def test_quick_check_answers_at_once(capsys):
    assert quick_check("2.A", "c") is True
    assert "✔ Quick check 2.A: right." in capsys.readouterr().out
    assert quick_check("2.A", "(A)") is False
    out = capsys.readouterr().out
    assert "✘ Quick check 2.A: not quite." in out and "order" in out  # the hint
    assert quick_check("7.A", 0.5) is True and quick_check("7.A", 0.7) is False
    assert quick_check("1.B", 0.00038) is True  # within the tolerance of 25 / 65536
    assert quick_check("1.B", None) is None
    assert "replace None by your answer (a number)" in capsys.readouterr().out


def test_quick_check_bad_input():
    with pytest.raises(ValueError, match="takes a letter, one of a, b, c; got 'd'"):
        quick_check("2.A", "d")
    with pytest.raises(KeyError, match="No quick check '10.A'"):
        quick_check("10.A", "a")


@pytest.mark.parametrize("key", list(QUESTIONS))
def test_every_question_is_answered_right_by_its_own_answer(key):
    question = QUESTIONS[key]
    assert quick_check(key, question.answer) is True
    wrong = "a" if question.answer != "a" else "b"
    assert quick_check(key, wrong if question.options else float(question.answer) + 1) is False
