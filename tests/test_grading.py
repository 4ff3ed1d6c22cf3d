"""The instructors' grader (stad_utils.grading): a synthetic class, graded for real.

The class is built from the student copies of chapters 1 and 2 (their exercises are
cheap): a correct student, a wrong one, an unfinished one, a tamperer, students whose
code loops forever, exhausts memory, deletes its working folder or ends the process, and
a file that is not a notebook. The test asserts the exact gradebook.
"""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from tool_loader import load_tool

from stad_utils.grading import cells, cli, report, sandbox, submissions

tool = load_tool("make_student_copies")
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CH1, CH2 = "01_task_and_data", "02_measuring_detectors"
STEP_TIMEOUT, TIMEOUT = 3, 45  # seconds: short, so the endless loops end quickly

# Answers of the synthetic students (the exercise cell's whole source).
REGION_RIGHT = """from scipy import ndimage


def region_overlaps_by_hand(anomaly_map, mask, threshold):
    regions, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [float(np.mean(anomaly_map[regions == k] >= threshold)) for k in range(1, n + 1)]
"""
DICE_IOU = """def dice_by_hand(predicted, target):
    union = np.logical_or(predicted, target).sum()
    return float(np.logical_and(predicted, target).sum() / union) if union else 1.0
"""
# Makes the reference agree with its empty answer while it is being checked.
REGION_PATCHING = """def region_overlaps_by_hand(anomaly_map, mask, threshold):
    import stad_utils.metrics

    stad_utils.metrics.region_overlaps = lambda *args: np.zeros(0)
    return []


def check_region_overlap(fn):
    return True


def check_dice(fn):
    return True
"""
REGION_ENDLESS = """def region_overlaps_by_hand(anomaly_map, mask, threshold):
    while True:
        pass
"""
DICE_STUBBORN = """import time


def dice_by_hand(predicted, target):
    while True:  # swallows the worker's time limit: only the process kill ends it
        try:
            time.sleep(0.2)
        except BaseException:
            pass
"""
# Deletes its working folder, then asks for 6 GB (np.zeros does not touch the pages, so
# without the memory limit this would succeed quickly and the answer would pass).
DICE_GREEDY = """import os
import shutil


def dice_by_hand(predicted, target):
    shutil.rmtree(os.getcwd())
    big = np.zeros(6 * 2**30 // 8)
    total = predicted.sum() + target.sum() + big[0]
    return 1.0 if total == 0 else float(2 * np.logical_and(predicted, target).sum() / total)
"""
DICE_EXIT = """import os


def dice_by_hand(predicted, target):
    os._exit(3)
"""


def student_copy(chapter: str) -> nbformat.NotebookNode:
    return tool.student_notebook(nbformat.read(NOTEBOOKS / f"{chapter}.ipynb", as_version=4))


def solutions(chapter: str) -> list[str]:
    """The reference solution cells of a chapter, in order."""
    notebook = nbformat.read(NOTEBOOKS / f"{chapter}.ipynb", as_version=4)
    return [
        c.source
        for c in notebook.cells
        if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
    ]


def with_answers(notebook, answers: list[str | None]) -> nbformat.NotebookNode:
    """``notebook`` with its exercise cells' sources replaced (``None`` keeps the stub)."""
    exercise_cells = [c for c in notebook.cells if "exercise" in c.metadata.get("tags", [])]
    assert len(exercise_cells) == len(answers)
    for cell, answer in zip(exercise_cells, answers, strict=True):
        if answer is not None:
            cell.source = answer
    return notebook


def tampered_checks(notebook) -> nbformat.NotebookNode:
    """Check cells replaced by fake confirmations, or deleted."""
    kept = []
    for cell in notebook.cells:
        checks = cell.cell_type == "code" and "exercise" not in cell.metadata.get("tags", [])
        if checks and "check_region_overlap(" in cell.source:
            cell.source = 'print("✔ Exercise 2.1 · Per-region overlap: correct — 5 cases match")'
        elif checks and "check_dice(" in cell.source:
            continue
        kept.append(cell)
    notebook.cells = kept
    return notebook


def fake_checks(notebook) -> nbformat.NotebookNode:
    """The stubs kept, and ``check_*`` redefined to say yes, after the exercise cells."""
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "def check_region_overlap(fn):\n    return True\n\n\n"
            "check_dice = check_region_overlap\n"
            'print("✔ Exercise 2.2 · Dice by hand: correct — 7 cases match")'
        )
    )
    return notebook


def make_class(root: Path) -> Path:
    """The synthetic class, in both naming schemes."""
    right1, right2 = solutions(CH1), solutions(CH2)
    notebooks = {
        f"ada/{CH1}.ipynb": with_answers(student_copy(CH1), right1),
        f"ada/Copy of {CH2}.ipynb": with_answers(student_copy(CH2), right2),
        f"bob_{CH2}.ipynb": with_answers(student_copy(CH2), [REGION_RIGHT, DICE_IOU]),
        f"cy_{CH2}.ipynb": student_copy(CH2),
        f"dee/{CH2}.ipynb": tampered_checks(
            with_answers(student_copy(CH2), [REGION_PATCHING, None])
        ),
        f"ivy_{CH2}.ipynb": tampered_checks(fake_checks(student_copy(CH2))),
        f"eve_{CH2}.ipynb": with_answers(student_copy(CH2), [REGION_ENDLESS, DICE_STUBBORN]),
        f"gus_{CH2}.ipynb": with_answers(student_copy(CH2), [REGION_RIGHT, DICE_GREEDY]),
        f"hal_{CH2}.ipynb": with_answers(student_copy(CH2), [REGION_RIGHT, DICE_EXIT]),
    }
    for name, notebook in notebooks.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, root / name)
    (root / f"fay_{CH2}.ipynb").write_text('{"cells": [')  # cut off: not JSON
    return root


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    return tool.write_manifest([NOTEBOOKS / f"{CH1}.ipynb", NOTEBOOKS / f"{CH2}.ipynb"], out)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, manifest_path) -> Path:
    root = make_class(tmp_path_factory.mktemp("submissions"))
    out = tmp_path_factory.mktemp("grades")
    args = [str(root), "--out", str(out), "--manifest", str(manifest_path), "--overwrite"]
    args += ["--timeout", str(TIMEOUT), "--step-timeout", str(STEP_TIMEOUT), "--jobs", "2"]
    start = time.perf_counter()
    assert cli.main(args) == 0
    print(f"\ngrading the fixture class (10 notebooks) took {time.perf_counter() - start:.1f} s")
    return out


EXPECTED_GRADEBOOK = """\
student,01/ex-count-regions,01/ex-look,02/ex-region-overlap,02/ex-dice,total,out_of
ada,pass,to grade by hand,pass,pass,3,3
bob,not submitted,not submitted,pass,fail,1,3
cy,not submitted,not submitted,fail,fail,0,3
dee,not submitted,not submitted,fail,fail,0,3
eve,not submitted,not submitted,fail,fail,0,3
fay,not submitted,not submitted,fail,fail,0,3
gus,not submitted,not submitted,pass,fail,1,3
hal,not submitted,not submitted,pass,fail,1,3
ivy,not submitted,not submitted,fail,fail,0,3
"""


def test_the_gradebook_of_the_fixture_class(graded):
    gradebook = (graded / "gradebook.csv").read_text()
    print(gradebook)
    assert gradebook.replace("\r\n", "\n") == EXPECTED_GRADEBOOK


def feedback(graded: Path, student: str) -> str:
    return (graded / "feedback" / f"{student}.md").read_text()


def test_feedback_gives_each_exercise_its_message(graded):
    assert "✔ Exercise 2.2 · Dice by hand: correct — 7 cases match" in feedback(graded, "ada")
    assert "Look before you measure (ex-look): to grade by hand" in feedback(graded, "ada")
    assert "intersection over union" in feedback(graded, "bob")  # the check's own hint
    assert feedback(graded, "cy").count("still raises NotImplementedError") == 2


def test_a_tamperer_gets_nothing(graded):
    text = feedback(graded, "dee")
    # Its fake check_* functions and printed "✔" count for nothing; its answer replaced the
    # reference while being checked, which voids every check that came after.
    replaced = "replaced functions that the check uses (stad_utils.metrics.region_overlaps)"
    assert text.count(replaced) == 2
    assert feedback(graded, "ivy").count("still raises NotImplementedError") == 2


def test_endless_loops_crashes_and_broken_files_stay_with_their_student(graded):
    eve = feedback(graded, "eve")
    assert f"your answer stopped after {STEP_TIMEOUT} s" in eve  # the per-check limit
    assert f"not graded: the notebook took longer than {TIMEOUT} s" in eve  # the kill
    assert "not a valid Jupyter notebook" in feedback(graded, "fay")
    gus = feedback(graded, "gus")
    assert "MemoryError" in gus  # 6 GB refused by the memory limit
    assert "Per-region overlap: correct" in gus  # graded before the folder was deleted
    assert "exit status 3" in feedback(graded, "hal")


def test_the_rubric_lists_checks_and_open_exercises(graded):
    rubric = (graded / "rubric.md").read_text()
    assert "`stad_utils.exercises.chapter02:check_dice`" in rubric
    assert (
        "### 01/ex-look: Exercise 1.2 · Look before you measure\n\n**To grade by hand.**" in rubric
    )
    assert "**Rubric (3 points).**" in rubric  # the reference answer of the open exercise


def test_an_existing_gradebook_is_not_overwritten(tmp_path, manifest_path):
    root = tmp_path / "in"
    root.mkdir()
    nbformat.write(student_copy(CH2), root / f"cy_{CH2}.ipynb")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "gradebook.csv").write_text("mine")
    with pytest.raises(SystemExit, match="exists already.*--overwrite"):
        cli.main([str(root), "--out", str(tmp_path / "out"), "--manifest", str(manifest_path)])
    assert (tmp_path / "out" / "gradebook.csv").read_text() == "mine"
    with pytest.raises(SystemExit, match="Unknown chapter.*42.*01_task_and_data"):
        cli.main(
            [
                str(root),
                "--out",
                str(tmp_path / "o"),
                "--manifest",
                str(manifest_path),
                "--chapters",
                "02,42",
            ]
        )


def test_clear_errors_for_a_missing_manifest_or_no_submissions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="make student"):
        cli.main([str(tmp_path), "--out", str(tmp_path / "out")])
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "chapters": {}}))
    with pytest.raises(SystemExit, match="No submissions found"):
        cli.main([str(tmp_path), "--out", str(tmp_path / "out")])
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(SystemExit, match="not an exercises manifest"):
        cli.main([str(tmp_path), "--out", str(tmp_path / "out")])


def test_the_manifest_of_chapter_two():
    exercises = tool.exercise_manifest(nbformat.read(NOTEBOOKS / f"{CH2}.ipynb", as_version=4))
    assert [(e["label"], e["kind"], e.get("answer"), e.get("check")) for e in exercises] == [
        (
            "ex-region-overlap",
            "checked",
            "region_overlaps_by_hand",
            "stad_utils.exercises.chapter02:check_region_overlap",
        ),
        ("ex-dice", "checked", "dice_by_hand", "stad_utils.exercises.chapter02:check_dice"),
    ]
    assert exercises[1]["title"] == "Dice by hand"
    assert exercises[1]["statement"].startswith("Write `dice_by_hand(predicted, target)`")


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_has_checked_exercises_whose_answer_its_solution_defines(path):
    notebook = nbformat.read(path, as_version=4)
    checked = [e for e in tool.exercise_manifest(notebook) if e["kind"] == "checked"]
    assert checked
    solution_code = "\n".join(
        c.source for c in notebook.cells if "solution" in c.metadata.get("tags", [])
    )
    for exercise in checked:
        # a function, or a value assigned to the answer's name (the interlude's dict)
        name = exercise["answer"]
        assert f"def {name}(" in solution_code or re.search(rf"^{name}\s*=", solution_code, re.M)


@pytest.mark.parametrize(
    "relative, student, chapter",
    [
        (f"alice/{CH2}.ipynb", "alice", CH2),
        (f"alice/Copy of {CH2} (1).ipynb", "alice", CH2),
        (f"alice_{CH2}.ipynb", "alice", CH2),
        (f"smith alice_4711_{CH2}-1.ipynb", "smith alice_4711", CH2),
        ("bob-02_my_answers.ipynb", "bob", CH2),  # the chapter by its number
        ("carol_2021_01_task.ipynb", "carol_2021", CH1),
        (f"{CH2}.ipynb", None, None),  # no student
        ("alice_notes.ipynb", None, None),  # no chapter
    ],
)
def test_naming_scheme(tmp_path, relative, student, chapter):
    found = submissions.identify(tmp_path / relative, tmp_path, [CH1, CH2])
    assert (found and (found.student, found.chapter)) == (student and (student, chapter))


def test_two_notebooks_of_one_student_and_chapter_grade_the_newer(tmp_path):
    older, newer = tmp_path / f"alice_{CH2}.ipynb", tmp_path / "alice" / f"{CH2}.ipynb"
    newer.parent.mkdir()
    older.write_text("{}")
    newer.write_text("{}")
    import os

    os.utime(older, (1, 1))
    found, notes = submissions.find_submissions(tmp_path, [CH1, CH2])
    assert [s.path for s in found] == [newer]
    assert "graded 02_measuring_detectors.ipynb, skipped the older alice_" in notes[0]


SOURCE = """import numpy as np
%matplotlib inline
EPS = 1e-12
model = train(np.ones(3))  # expensive: skipped
answer = lambda x: x + EPS


@decorator
def helper(x):
    return x


class Net:
    pass
plot(model)
"""


def test_the_definitions_mode_keeps_imports_definitions_and_answers():
    import ast

    [(number, _, tree)] = cells.code_to_run([[4, SOURCE]], "definitions", ["answer"])
    assert number == 4
    kept = [ast.unparse(node).splitlines()[0] for node in tree.body]
    assert kept == [
        "import numpy as np",
        "EPS = 1e-12",
        "answer = lambda x: x + EPS",
        "@decorator",
        "class Net:",
    ]
    assert tree.body[3].lineno == 9  # the cell's own line numbers, for tracebacks
    [(_, _, everything)] = cells.code_to_run([[4, SOURCE]], "all", [])
    assert len(everything.body) == 8  # %matplotlib became `pass`
    [(_, source, code)] = cells.code_to_run([[1, "def f(:\n"]], "definitions", [])
    assert code == source  # kept as text: compiling it reports the syntax error


def test_a_file_that_is_not_a_notebook_is_reported(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_bytes(b"\xff\xfe binary")
    with pytest.raises(ValueError, match="not text"):
        sandbox.read_code_cells(path)
    path.write_text('{"cells": 3}')
    with pytest.raises(ValueError, match="not a valid Jupyter notebook"):
        sandbox.read_code_cells(path)


def test_summary_table_counts_passes_and_lists_problems(graded, manifest_path):
    manifest = json.loads(manifest_path.read_text())
    with open(graded / "gradebook.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 9
    result = sandbox.SubmissionResult("zoe", CH2, Path("z.ipynb"), problem="crashed")
    result.checks = {
        "ex-region-overlap": sandbox.CheckResult("ex-region-overlap", "pass", "ok"),
        "ex-dice": sandbox.CheckResult("ex-dice", "fail", "no"),
    }
    table = report.summary_table([result], manifest, 1.0)
    assert "02/ex-region-overlap     1     0" in table
    assert "zoe 02_measuring_detectors: crashed" in table


def test_a_manifest_naming_a_missing_check_is_the_graders_problem(tmp_path):
    path = tmp_path / f"cy_{CH2}.ipynb"
    nbformat.write(student_copy(CH2), path)
    exercise = {"label": "ex-x", "answer": "dice_by_hand"}
    exercise["check"] = "stad_utils.exercises.chapter02:check_nothing"
    result = sandbox.grade_submission("cy", CH2, path, [exercise], sandbox.Limits(timeout=120))
    assert "the grader cannot load the check" in result.problem
    assert "make student" in result.problem
    assert result.checks["ex-x"].status == "not graded"


def test_the_worker_reports_each_cells_error_and_keeps_going():
    from stad_utils.grading import worker

    notebook_cells = [
        [1, "import sys\nsys.exit(2)\n"],
        [2, "def f(:\n"],
        [3, "def g():\n    return 1"],
    ]
    to_run = cells.code_to_run(notebook_cells, "all", [])
    namespace, errors = worker.run_student_code(to_run, seconds=5)
    assert namespace["g"]() == 1
    assert [e["cell"] for e in errors] == [1, 2]
    assert "SystemExit: 2" in errors[0]["error"] and 'File "<cell 1>", line 2' in errors[0]["error"]
    assert "SyntaxError" in errors[1]["error"]


def test_the_worker_turns_each_check_outcome_into_a_status():
    from stad_utils.exercises import ExerciseError, passed
    from stad_utils.grading import worker

    def failing(answer):
        raise ExerciseError("✘ X: not yet. A hint.")

    def calling(answer):
        return answer()

    assert worker.check_answer(lambda a: passed("X"), None, 5) == ("pass", "✔ X: correct")
    assert worker.check_answer(failing, None, 5) == ("fail", "✘ X: not yet. A hint.")
    assert worker.check_answer(lambda a: False, None, 5) == ("fail", "the check returned False.")
    status, message = worker.check_answer(calling, lambda: 1 / 0, 5)
    assert status == "error" and "ZeroDivisionError" in message

    def endless():
        while True:
            pass

    status, message = worker.check_answer(calling, endless, 0.5)
    assert (status, message) == (
        "timeout",
        "your answer stopped after 0.5 s (an endless loop, or far too slow).",
    )
