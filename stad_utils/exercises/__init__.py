"""Automatic checks for the chapters' exercises.

Each ``check_*`` function takes the reader's answer (usually a function), compares it
with the reference on hand-made and random cases, and either prints a short
confirmation and returns ``True`` or raises :class:`ExerciseError` with a hint that
says what differs. The checks never reveal the solution.
"""

from __future__ import annotations


class ExerciseError(AssertionError):
    """The reader's answer is not right yet; the message says how it differs."""


def passed(exercise: str, detail: str = "") -> bool:
    """Print the standard confirmation line and return ``True``."""
    print(f"✔ {exercise}: correct{' — ' + detail if detail else ''}")
    return True


def fail(exercise: str, hint: str) -> None:
    """Raise the standard error for a wrong answer."""
    raise ExerciseError(f"✘ {exercise}: not yet. {hint}")


def not_implemented_hint(exercise: str, error: NotImplementedError) -> None:
    """Turn the stub's ``NotImplementedError`` into a friendly message."""
    raise ExerciseError(
        f"✘ {exercise}: the function still raises NotImplementedError — replace the "
        "`raise NotImplementedError` line with your implementation."
    ) from error


def attempt(exercise: str, answer, *args, **kwargs):
    """Call the reader's ``answer(*args, **kwargs)``; a stub that still raises
    ``NotImplementedError`` becomes the friendly message of :func:`not_implemented_hint`."""
    try:
        return answer(*args, **kwargs)
    except NotImplementedError as error:
        not_implemented_hint(exercise, error)
