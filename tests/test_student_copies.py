"""tools/make_student_copies.py: solutions out, stubs in, everything else kept."""

import nbformat
import pytest
from tool_loader import load_tool

tool = load_tool("make_student_copies")

SOLUTION = '''def area(mask):
    """Share of defective pixels."""
    ### BEGIN SOLUTION
    return mask.mean()
    ### END SOLUTION
'''


def test_solution_body_becomes_an_indented_stub():
    out = tool.strip_solution(SOLUTION)
    assert "return mask.mean()" not in out
    assert '    """Share of defective pixels."""' in out
    assert "    # YOUR CODE HERE\n    raise NotImplementedError(" in out
    namespace = {}
    exec(out, namespace)  # the stub still defines the function…
    with pytest.raises(NotImplementedError, match="Your turn"):
        namespace["area"](None)  # …which tells the student what to do


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "without"),
        ("x = 1\n### END SOLUTION\n", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "nested"),
    ],
)
def test_unbalanced_markers_are_errors(source, message):
    with pytest.raises(ValueError, match=message):
        tool.strip_solution(source)


def test_notebook_copy(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_markdown_cell(
            "```{solution-start} ex\n```", metadata={"tags": ["solution"]}
        ),
        nbformat.v4.new_code_cell(SOLUTION, metadata={"tags": ["solution"]}),
        nbformat.v4.new_markdown_cell("```{solution-end}\n```", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell(
            "check(area)", outputs=[nbformat.v4.new_output("stream", text="x")]
        ),
    ]
    source = tmp_path / "ch.ipynb"
    nbformat.write(notebook, source)
    assert tool.main([str(source), "--out", str(tmp_path / "student")]) == 0
    copy = nbformat.read(tmp_path / "student" / "ch.ipynb", as_version=4)
    assert [c.cell_type for c in copy.cells] == ["markdown", "code", "code"]
    assert copy.cells[1].metadata["tags"] == ["exercise"]
    assert copy.cells[2].outputs == []


def test_solution_cell_without_markers_is_refused():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["solution"]})]
    with pytest.raises(ValueError, match="no '### BEGIN SOLUTION'"):
        tool.student_notebook(notebook)


def test_a_written_reference_is_the_open_exercises_and_is_stripped(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(
            "```{exercise} 1.2 · Look\n:label: ex-look\n:nonumber:\n\nLook.\n```"
        ),
        nbformat.v4.new_markdown_cell(
            "```{solution-start} ex-look\n:class: dropdown\n```\n\n**Reference answer.** Seen.\n\n"
            "```{solution-end}\n```",
            metadata={"tags": ["solution", "rubric"]},
        ),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    [exercise] = tool.exercise_manifest(notebook)
    assert exercise == {
        "label": "ex-look",
        "number": "1.2",
        "title": "Look",
        "statement": "Look.",
        "kind": "open",
        "reference": "**Reference answer.** Seen.",
    }
    copy = tool.student_notebook(notebook)
    assert [c.source for c in copy.cells] == [notebook.cells[0].source, "x = 1"]


def test_an_unclosed_solution_start_is_an_error():
    with pytest.raises(ValueError, match="ex-look is not closed"):
        tool.written_reference(
            "```{solution-start} ex-look\n:class: dropdown\n```{solution-end}\n```"
        )
