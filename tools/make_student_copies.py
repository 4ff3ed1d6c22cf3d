"""Write student copies of the chapter notebooks, with the solutions taken out.

In the source notebooks (see ARCHITECTURE.md, "Exercises and student copies"):

* markdown cells tagged ``solution`` (the ``solution-start``/``solution-end``
  directives around a reference answer) are removed;
* in code cells tagged ``solution``, the lines between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` are replaced by ``raise NotImplementedError(...)`` at the same
  indentation, so the function signature and docstring stay for the student.

Usage: ``python tools/make_student_copies.py [--out student] notebooks/*.ipynb``
"""

from __future__ import annotations

import argparse
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
