"""Write student copies of the chapter notebooks, with the solutions taken out.

In the source notebooks (see ARCHITECTURE.md, "Exercises and student copies"):

* markdown cells tagged ``solution`` (the ``solution-start``/``solution-end``
  directives around a reference answer) are removed;
* in code cells tagged ``solution``, the lines between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` are replaced by ``raise NotImplementedError(...)`` at the same
  indentation, so the function signature and docstring stay for the student.

It also writes ``<out>/manifest.json``, the list of every chapter's exercises (label,
title, statement; for a checked exercise the answer's name and the check function) that
``python -m stad_utils grade`` reads.

Usage: ``python tools/make_student_copies.py [--out student] notebooks/*.ipynb``
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import re
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("Your turn: write the solution here, then run the check below.")'


def strip_solution(source: str) -> str:
    """Replace every BEGIN/END SOLUTION block of ``source`` by a stub line."""
    lines, out, inside = source.splitlines(), [], False
    for number, line in enumerate(lines, 1):
        if line.strip() == BEGIN:
            if inside:
                raise ValueError(f"line {number}: nested '{BEGIN}'")
            inside = True
            indent = re.match(r"\s*", line).group(0)
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}{STUB}")
        elif line.strip() == END:
            if not inside:
                raise ValueError(f"line {number}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"'{BEGIN}' without '{END}'")
    return "\n".join(out)


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without solutions and without outputs."""
    cells = []
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            if cell.cell_type == "markdown":
                continue
            if BEGIN not in cell.source:
                raise ValueError(
                    f"A code cell tagged 'solution' has no '{BEGIN}' marker:\n{cell.source[:200]}"
                )
            cell = nbformat.from_dict(dict(cell))
            cell.source = strip_solution(cell.source)
            cell.metadata["tags"] = [t for t in tags if t != "solution"] + ["exercise"]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    copy = nbformat.from_dict(dict(notebook))
    copy.cells = cells
    return copy


# ```{exercise} Title  ...  ``` (three or more backticks, closed by the same number).
EXERCISE = re.compile(
    r"^(`{3,})\{exercise\}[ \t]*(?P<title>[^\n]*)\n(?P<body>.*?)^\1[ \t]*$", re.S | re.M
)
SOLUTION_START = re.compile(r"\{solution-start\}\s+(?P<label>\S+)")
SOLUTION_END = re.compile(r"^`{3,}\{solution-end\}", re.M)
# Exercises are numbered per chapter in their title, "6.1 · Title", with ``:nonumber:``
# (sphinx-exercise would otherwise number them across the whole book).
NUMBERED_TITLE = re.compile(r"^(?P<number>(?:\d+|[A-Z])\.\d+)\s+·\s+(?P<title>.+)$")
MANIFEST_VERSION = 1


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _exercise_directives(text: str) -> list[dict]:
    """The exercises of a markdown cell: label, title and statement (options removed)."""
    found = []
    for match in EXERCISE.finditer(text):
        body = match.group("body")
        label = re.search(r"^:label:\s*(\S+)", body, re.M)
        if label is None:
            raise ValueError(f"The exercise {match.group('title')!r} has no ':label:' option.")
        statement = "\n".join(line for line in body.splitlines() if not line.startswith(":"))
        number, title = _number_and_title(match.group("title"))
        found.append(
            {
                "label": label.group(1),
                "number": number,
                "title": title,
                "statement": statement.strip(),
            }
        )
    return found


def _number_and_title(heading: str) -> tuple[str | None, str]:
    """``"6.1 · The per-layer map"`` -> ``("6.1", "The per-layer map")``; no number: None."""
    match = NUMBERED_TITLE.match(heading.strip())
    if match is None:
        return None, heading.strip()
    return match.group("number"), match.group("title").strip()


def written_reference(text: str) -> tuple[str, str] | None:
    """(label, text) of a markdown cell that holds a whole written reference answer: a
    ``solution-start`` and a ``solution-end`` directive around it (an open exercise's
    answer and rubric); ``None`` for any other cell."""
    start = SOLUTION_START.search(text)
    end = SOLUTION_END.search(text)
    if start is None or end is None:
        return None
    # The body starts after the fence that closes the solution-start directive.
    closing = re.search(r"^`{3,}[ \t]*$", text[start.end() : end.start()], re.M)
    if closing is None:
        raise ValueError(f"The solution-start directive of {start.group('label')} is not closed.")
    return start.group("label"), text[start.end() + closing.end() : end.start()].strip()


def _check_imports(notebook) -> dict[str, str]:
    """``{check_name: module}`` from the notebook's ``from stad_utils.exercises… import``."""
    modules = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_without_magics(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "stad_utils.exercises"
            ):
                for alias in node.names:
                    modules[alias.asname or alias.name] = node.module
    return modules


def _without_magics(source: str) -> str:
    return "\n".join(
        "pass" if line.lstrip()[:1] in "%!" and line.strip() else line
        for line in source.splitlines()
    )


def _check_call(source: str) -> tuple[str, str] | None:
    """(check function, answer name) of the first ``check_*(answer, …)`` call in ``source``."""
    for node in ast.walk(ast.parse(_without_magics(source))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_")
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            return node.func.id, node.args[0].id
    return None


def exercise_manifest(notebook: nbformat.NotebookNode) -> list[dict]:
    """Every exercise of a source notebook, in order.

    An exercise is *checked* when a ``solution-start`` cell names its label and the first
    code cell after the solution that is not tagged ``solution`` calls a ``check_*``
    function on the answer; every other exercise is *open* (graded by hand), and its
    written reference answer and rubric (one markdown cell tagged ``solution`` holding
    both ``solution-start`` and ``solution-end``) becomes its ``reference``.
    """
    exercises, by_label = [], {}
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "solution" not in _tags(cell):
            for exercise in _exercise_directives(cell.source):
                exercise["kind"] = "open"
                exercises.append(exercise)
                by_label[exercise["label"]] = exercise
    imports = _check_imports(notebook)
    pending = None  # the label whose solution was seen, waiting for its check cell
    for cell in notebook.cells:
        start = SOLUTION_START.search(cell.source) if cell.cell_type == "markdown" else None
        reference = written_reference(cell.source) if start else None
        if reference and reference[0] in by_label:
            by_label[reference[0]]["reference"] = reference[1]
            pending = None  # a written answer: no check cell follows
        elif start:
            # A label no exercise has is left to the book build (sphinx-exercise warns).
            pending = start.group("label") if start.group("label") in by_label else None
        elif pending and cell.cell_type == "code" and "solution" not in _tags(cell):
            call = _check_call(cell.source)
            if call:
                check, answer = call
                if check not in imports:
                    raise ValueError(
                        f"{check} (exercise {pending}) is not imported from stad_utils.exercises."
                    )
                function = getattr(importlib.import_module(imports[check]), check, None)
                if function is None:
                    raise ValueError(
                        f"{imports[check]} has no function {check} (exercise {pending})."
                    )
                by_label[pending].update(
                    kind="checked",
                    answer=answer,
                    check=f"{imports[check]}:{check}",
                    rubric=inspect.getdoc(function).split("\n\n")[0],
                )
            pending = None
    return exercises


def write_manifest(notebooks: list[Path], out: Path) -> Path:
    """Write ``out/manifest.json``: ``{"version", "chapters": {stem: {notebook, exercises}}}``."""
    chapters = {}
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        chapters[path.stem] = {"notebook": path.name, "exercises": exercise_manifest(notebook)}
    target = out / "manifest.json"
    target.write_text(
        json.dumps(
            {"version": MANIFEST_VERSION, "chapters": chapters}, indent=1, ensure_ascii=False
        )
        + "\n"
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("student"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        nbformat.write(student_notebook(notebook), args.out / path.name)
        print(f"{path} -> {args.out / path.name}")
    print(f"exercises of every chapter -> {write_manifest(args.notebooks, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
