"""Which of a submitted notebook's code the grader runs.

Two modes:

``definitions`` (the default)
    From every code cell, in order, only the top-level statements that *define*
    something cheaply: imports, ``def`` and ``class`` statements, assignments of literal
    constants (``EPS = 1e-12``), and any assignment to an answer's name
    (``dice_by_hand = lambda p, t: …``). Everything else — training a model, plotting,
    the check cells — is skipped. The exercises take all their data as arguments and
    the checks call the answers on their own cases, so an answer needs only what it
    imports and the helpers it defines, wherever the student put them. A chapter that
    trains models for minutes is graded in seconds.

``all``
    Every code cell, in order, as "Run all" would (with the quick profile), an error in
    one cell not stopping the next. Slow (minutes per chapter and student), but it also
    grades answers that lean on variables computed by the chapter's cells.

IPython magics (``%pip``, ``!ls``) are turned into ``pass``: they are not Python.
"""

from __future__ import annotations

import ast

MODES = ("definitions", "all")
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def without_magics(source: str) -> str:
    """``source`` with IPython's ``%`` and ``!`` lines replaced by ``pass`` (same indent)."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped[:1] in ("%", "!"):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _assigned_names(node: ast.stmt) -> list[str] | None:
    """The plain names an assignment binds, or ``None`` if a target is not a plain name."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        if not isinstance(target, ast.Name):
            return None
        names.append(target.id)
    return names


def is_definition(node: ast.stmt, answers: set[str]) -> bool:
    """Whether the definitions mode runs this top-level statement."""
    if isinstance(node, DEFINITIONS):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        names = _assigned_names(node)
        return names is not None and (bool(answers & set(names)) or _is_literal(node.value))
    return False


def code_to_run(cells: list[list], mode: str, answers: list[str]) -> list[tuple[int, str, object]]:
    """``[(cell number, source, code)]`` to execute, from the notebook's ``[(number, source)]``.

    ``code`` is the ``ast.Module`` of the statements to run, with the cell's own line
    numbers (a traceback points at the line the student sees), or the source itself when
    it is not valid Python: compiling it then reports the syntax error.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    selected = []
    for number, source in cells:
        source = without_magics(source)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            selected.append((number, source, source))
            continue
        if mode == "definitions":
            tree.body = [node for node in tree.body if is_definition(node, set(answers))]
        if tree.body:
            selected.append((number, source, tree))
    return selected
