"""Find the submitted notebooks and tell whose they are and which chapter.

The naming scheme (SUBMISSIONS is the folder given to ``grade``):

* ``SUBMISSIONS/<student>/<anything>.ipynb`` — one folder per student, e.g.
  ``alice/02_measuring_detectors.ipynb`` or ``alice/Copy of 02_measuring_detectors.ipynb``;
* ``SUBMISSIONS/<student>_<NN_chapter>.ipynb`` — all in one folder, the student's name
  first (separated by ``_``, ``-`` or a space), e.g. ``alice_02_measuring_detectors.ipynb``
  or an LMS export such as ``smith_alice_4711_02_measuring_detectors-1.ipynb``.

The chapter is found by its notebook's name (``02_measuring_detectors``) in the file
name, or else by its number followed by ``_`` (``…_02_….ipynb``). Checkpoints
(``.ipynb_checkpoints``) and hidden files are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEPARATORS = "_- ."


@dataclass(frozen=True)
class Submission:
    student: str
    chapter: str  # the chapter notebook's stem, e.g. 02_measuring_detectors
    path: Path


def _find_chapter(name: str, chapters: list[str]) -> tuple[str, int] | None:
    """``(chapter, start of its name or number in name)``; the last match wins, as a
    student name may contain digits."""
    found = [(name.rfind(c), c) for c in chapters if c in name]
    if found:
        start, chapter = max(found)
        return chapter, start
    numbers = {c[:2]: c for c in chapters if re.match(r"\d\d_", c)}
    matches = [m for m in re.finditer(r"(?:^|[_\- ])(\d\d)_", name) if m.group(1) in numbers]
    if matches:
        last = matches[-1]
        return numbers[last.group(1)], last.start(1)
    return None


def identify(path: Path, root: Path, chapters: list[str]) -> Submission | None:
    """The submission at ``path`` (under ``root``), or ``None`` if no chapter is named."""
    relative = path.relative_to(root)
    found = _find_chapter(path.stem, chapters)
    if found is None:
        return None
    chapter, start = found
    if len(relative.parts) > 1:
        student = relative.parts[0]
    else:
        student = path.stem[:start].strip(SEPARATORS)
    if not student:
        return None
    return Submission(student, chapter, path)


def find_submissions(root: Path, chapters: list[str]) -> tuple[list[Submission], list[str]]:
    """``(submissions, notes)``: every notebook under ``root`` that names a chapter, sorted
    by student and chapter, and a note for each file skipped or replaced.

    Two files of the same student and chapter: the most recently modified is graded.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"The submissions folder {root} does not exist.")
    chosen: dict[tuple[str, str], Submission] = {}
    notes = []
    for path in sorted(root.rglob("*.ipynb")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        submission = identify(path, root, chapters)
        if submission is None:
            notes.append(f"skipped {path}: its name gives no student and chapter")
            continue
        key = (submission.student, submission.chapter)
        if key in chosen:
            older, newer = sorted(
                [chosen[key], submission], key=lambda s: (s.path.stat().st_mtime, str(s.path))
            )
            notes.append(
                f"{key[0]} has two notebooks of {key[1]}: graded {newer.path.name}, "
                f"skipped the older {older.path.name}"
            )
            submission = newer
        chosen[key] = submission
    return sorted(chosen.values(), key=lambda s: (s.student, s.chapter)), notes
