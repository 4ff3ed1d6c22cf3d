"""Automatic checks for the chapters' exercises.

Each ``check_*`` function takes the reader's answer (usually a function), compares it
with the reference on hand-made and random cases, and either prints a short
confirmation and returns ``True`` or raises :class:`ExerciseError` with a hint that
says what differs. The checks never reveal the solution.
"""

from __future__ import annotations

import torch


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


def answer_like(
    exercise: str, answer, expected: torch.Tensor, description: str = "", shape_note: str = ""
) -> torch.Tensor:
    """The reader's ``answer`` as a CPU tensor of ``expected``'s dtype (a NumPy array, or a
    tensor in float64 or on the GPU, compares like any other); a wrong shape fails with
    both shapes, ``for <description>`` first and ``(<shape_note>)`` after when given."""
    answer = torch.as_tensor(answer, dtype=expected.dtype).cpu()
    if answer.shape != expected.shape:
        where = f"for {description} " if description else ""
        note = f" ({shape_note})" if shape_note else ""
        fail(
            exercise,
            f"{where}the shape is {tuple(answer.shape)}, expected {tuple(expected.shape)}{note}.",
        )
    return answer
