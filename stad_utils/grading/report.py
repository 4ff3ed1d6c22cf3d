"""The grader's outputs: the gradebook, each student's feedback, the rubric, a summary."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

from .sandbox import SubmissionResult

PASS, FAIL, BY_HAND, NOT_SUBMITTED = "pass", "fail", "to grade by hand", "not submitted"


def column(chapter: str, label: str) -> str:
    """Gradebook column of an exercise: the chapter's number and the label, ``02/ex-dice``."""
    return f"{chapter.split('_')[0]}/{label}"


def safe_name(student: str) -> str:
    """A file name for a student (no path separators or odd characters)."""
    return re.sub(r"[^\w.\- ]", "_", student).strip(". ") or "student"


def gradebook_rows(results: list[SubmissionResult], manifest: dict) -> tuple[list[str], list[dict]]:
    """``(header, rows)``: one row per student, one column per exercise of the chapters
    submitted, then ``total`` (checked exercises passed) and ``out_of``."""
    chapters = sorted({r.chapter for r in results})
    exercises = [(c, e) for c in chapters for e in manifest["chapters"][c]["exercises"]]
    header = ["student"] + [column(c, e["label"]) for c, e in exercises] + ["total", "out_of"]
    by_student: dict[str, dict[str, SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, {})[result.chapter] = result
    rows = []
    for student in sorted(by_student):
        row, total = {"student": student}, 0
        for chapter, exercise in exercises:
            result = by_student[student].get(chapter)
            if result is None:
                value = NOT_SUBMITTED
            elif exercise["kind"] != "checked":
                value = BY_HAND
            else:
                value = PASS if result.checks[exercise["label"]].passed else FAIL
            total += value == PASS
            row[column(chapter, exercise["label"])] = value
        row["total"] = total
        row["out_of"] = sum(e["kind"] == "checked" for _, e in exercises)
        rows.append(row)
    return header, rows


def write_gradebook(path: Path, results: list[SubmissionResult], manifest: dict) -> list[dict]:
    header, rows = gradebook_rows(results, manifest)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _fenced(text: str) -> str:
    return f"```text\n{text.rstrip()}\n```"


def numbered_title(exercise: dict) -> str:
    """``Exercise 6.1 · Title`` as the book's box and the check's messages say it; the
    title alone for a manifest without numbers."""
    if exercise.get("number"):
        return f"Exercise {exercise['number']} · {exercise['title']}"
    return exercise["title"]


def feedback_markdown(student: str, results: list[SubmissionResult], manifest: dict) -> str:
    """A student's feedback: per chapter, each exercise's result and message, the errors."""
    parts = [f"# Feedback for {student}"]
    for result in sorted(results, key=lambda r: r.chapter):
        exercises = manifest["chapters"][result.chapter]["exercises"]
        checked = [e for e in exercises if e["kind"] == "checked"]
        passed = sum(result.checks[e["label"]].passed for e in checked)
        parts.append(f"## {result.chapter} ({result.path.name})")
        parts.append(f"**{passed} of {len(checked)} checked exercises pass.**")
        if result.problem:
            parts.append(f"**Problem:** {result.problem}.")
        for exercise in exercises:
            title = f"### {numbered_title(exercise)} ({exercise['label']})"
            if exercise["kind"] != "checked":
                parts.append(f"{title}: {BY_HAND}\n\nYour instructor reads your answer.")
                continue
            check = result.checks[exercise["label"]]
            parts.append(f"{title}: {PASS if check.passed else FAIL}\n\n{_fenced(check.message)}")
        if result.cell_errors:
            parts.append("### Errors while running your notebook's code")
            parts.extend(f"Cell {e['cell']}:\n\n{_fenced(e['error'])}" for e in result.cell_errors)
        if result.problem and result.output.strip():
            parts.append(f"### The end of what your code printed\n\n{_fenced(result.output)}")
    return "\n\n".join(parts) + "\n"


def write_feedback(folder: Path, results: list[SubmissionResult], manifest: dict) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    by_student: dict[str, list[SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, []).append(result)
    written = []
    for student, own in sorted(by_student.items()):
        path = folder / f"{safe_name(student)}.md"
        path.write_text(feedback_markdown(student, own, manifest), encoding="utf-8")
        written.append(path)
    return written


def rubric_markdown(chapters: list[str], manifest: dict) -> str:
    """What each exercise asks and how it is graded: the check, or by hand."""
    parts = [
        "# Rubric",
        "Checked exercises are graded by the package's check function; "
        "open ones are yours to grade, with the statement, a reference answer and a rubric "
        "below.",
    ]
    for chapter in chapters:
        parts.append(f"## {chapter}")
        for exercise in manifest["chapters"][chapter]["exercises"]:
            head = f"### {column(chapter, exercise['label'])}: {numbered_title(exercise)}"
            if exercise["kind"] == "checked":
                how = f"Checked automatically: `{exercise['check']}`. {exercise.get('rubric', '')}"
            else:
                how = f"**{BY_HAND.capitalize()}.**"
            parts.append(f"{head}\n\n{how}\n\n{exercise['statement']}")
            if exercise.get("reference"):  # an open exercise's reference answer and rubric
                parts.append(exercise["reference"])
    return "\n\n".join(parts) + "\n"


def summary_table(results: list[SubmissionResult], manifest: dict, seconds: float) -> str:
    """Pass counts per exercise, the submissions with a problem, and the time taken."""
    counts: Counter = Counter()
    labels = []
    for chapter in sorted({r.chapter for r in results}):
        for exercise in manifest["chapters"][chapter]["exercises"]:
            if exercise["kind"] == "checked":
                labels.append((chapter, exercise["label"]))
    for result in results:
        for label, check in result.checks.items():
            counts[(result.chapter, label, check.passed)] += 1
    width = max([len(column(c, label)) for c, label in labels] + [8])
    lines = [f"{'exercise':{width}}  pass  fail"]
    for chapter, label in labels:
        lines.append(
            f"{column(chapter, label):{width}}  {counts[(chapter, label, True)]:4d}  "
            f"{counts[(chapter, label, False)]:4d}"
        )
    problems = [r for r in results if r.problem]
    lines.append(
        f"{len(results)} submissions of {len({r.student for r in results})} students graded "
        f"in {seconds:.1f} s; {len(problems)} with a problem" + (":" if problems else ".")
    )
    lines.extend(f"  {r.student} {r.chapter}: {r.problem}" for r in problems)
    return "\n".join(lines)
