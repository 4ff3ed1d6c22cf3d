"""The grading subprocess: run one student's code, then the package's checks on it.

Started by :func:`stad_utils.grading.sandbox.grade_submission` as
``python -m stad_utils.grading.worker RESULTS_FD`` in a temporary working folder, with the
job (JSON) on standard input. Before any student code runs it

1. caps its own memory (``RLIMIT_AS``), file size and core dumps,
2. imports the package's check functions and keeps references to them, and
3. records the identity of the functions the checks rely on (see :func:`fingerprint`),

so a notebook that redefines ``check_*``, edits or deletes its check cells, or prints
"✔ correct" changes nothing: only the objects the grader calls count. It then runs the
student's code (:func:`stad_utils.grading.cells.code_to_run`) and calls each check on the
student's answer, every step under a time limit, and writes one JSON line per event to the
file descriptor RESULTS_FD (an unnamed file the parent holds, so the student's code cannot
delete it, and its prints cannot be mistaken for results).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import linecache
import os
import signal
import sys
import time
import traceback
import types

from stad_utils.grading.cells import code_to_run


class GradingTimeout(BaseException):
    """A step ran out of time. A ``BaseException``, so ``except Exception`` in the
    student's code does not swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`GradingTimeout` after ``seconds`` (POSIX; elsewhere only the parent's
    wall-clock limit applies)."""
    if not hasattr(signal, "setitimer") or not seconds:
        yield
        return

    def on_alarm(signum, frame):
        raise GradingTimeout(f"stopped after {seconds:g} s (an endless loop, or far too slow)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def limit_resources(memory_gb: float, max_file_mb: float) -> None:
    """Cap the address space and the size of any written file; no core dumps."""
    try:
        import resource
    except ImportError:  # Windows: only the wall-clock limit applies
        return
    limits = [(resource.RLIMIT_CORE, 0)]
    if memory_gb:
        limits.append((resource.RLIMIT_AS, int(memory_gb * 2**30)))
    if max_file_mb:
        limits.append((resource.RLIMIT_FSIZE, int(max_file_mb * 2**20)))
    for which, value in limits:
        with contextlib.suppress(ValueError, OSError):  # not settable here: skip it
            resource.setrlimit(which, (value, value))


# Modules whose functions the checks call. A student function that replaces one of them
# (say ``metrics.dice``) while it is being checked could make a wrong answer look right.
WATCHED_PREFIXES = ("stad_utils",)
WATCHED_MODULES = ("builtins", "math", "numpy", "scipy.ndimage", "torch", "torch.nn.functional")


def fingerprint() -> dict[str, tuple[int, int]]:
    """``{"module.name": (id of the object, id of its code)}`` for every function and class
    of the watched modules (and the methods of ``torch.Tensor``)."""
    namespaces = {
        name: vars(module)
        for name, module in list(sys.modules.items())
        if module is not None
        and (name.startswith(WATCHED_PREFIXES) or name in WATCHED_MODULES)
        and isinstance(module, types.ModuleType)
    }
    if "torch" in sys.modules:
        namespaces["torch.Tensor"] = vars(sys.modules["torch"].Tensor)
    prints = {}
    for prefix, namespace in namespaces.items():
        for name, value in list(namespace.items()):
            if callable(value) or isinstance(value, types.ModuleType):
                code = getattr(value, "__code__", None)
                prints[f"{prefix}.{name}"] = (id(value), id(code))
    return prints


def tampered(before: dict[str, tuple[int, int]]) -> list[str]:
    """The watched names that were replaced or deleted since ``before``."""
    now = fingerprint()
    return sorted(name for name, value in before.items() if now.get(name) != value)


def student_traceback(error: BaseException) -> str:
    """The traceback of ``error`` from the student's first frame on (the grader's frames
    say nothing to the student)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [i for i, frame in enumerate(frames) if frame.filename.startswith("<cell ")]
    shown = traceback.format_list(frames[own[0] :]) if own else []
    return "".join(shown + traceback.format_exception_only(type(error), error)).rstrip()


def run_student_code(cells: list[tuple[int, str, object]], seconds: float):
    """Execute the selected code, cell by cell, in one namespace; errors are collected."""
    namespace = {"__name__": "__student__"}
    errors = []
    for number, source, code in cells:
        filename = f"<cell {number}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            with time_limit(seconds):
                exec(compile(code, filename, "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - incl. sys.exit() and timeouts: reported
            errors.append({"cell": number, "error": student_traceback(error)})
    return namespace, errors


def check_answer(check, answer, seconds: float) -> tuple[str, str]:
    """``(status, message)`` of ``check(answer)``: pass, fail, error or timeout."""
    from stad_utils.exercises import ExerciseError

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), time_limit(seconds):
            result = check(answer)
    except ExerciseError as error:
        return "fail", str(error)
    except GradingTimeout as error:
        return "timeout", f"your answer {error}."
    except BaseException as error:  # noqa: BLE001 - incl. sys.exit(): all of it is feedback
        return "error", f"your answer raised an error:\n{student_traceback(error)}"
    if result is not True:
        return "fail", f"the check returned {result!r}."
    confirmations = [line for line in printed.getvalue().splitlines() if line.startswith("✔")]
    return "pass", confirmations[-1] if confirmations else "✔ correct"


def grade(job: dict, emit) -> None:
    """Run the job: load the checks, run the student's code, check every answer."""
    checks = {}
    for exercise in job["exercises"]:
        module, name = exercise["check"].split(":")
        try:
            checks[exercise["label"]] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:  # a manifest of another version
            emit(
                event="grader error", message=f"cannot load the check {exercise['check']}: {error}"
            )
            return
    # Some libraries patch others when first imported (torchvision's first import wraps
    # torch.manual_seed): import the course package's data and model stack before the
    # fingerprint, so that only the student's own replacements count as tampering.
    for module in ("torchvision", "stad_utils.data", "stad_utils.backbones"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    before = fingerprint()
    cells = code_to_run(job["cells"], job["execute"], [e["answer"] for e in job["exercises"]])
    start = time.perf_counter()
    namespace, errors = run_student_code(cells, job["step_timeout"])
    emit(event="ran", cells=len(cells), errors=errors, seconds=time.perf_counter() - start)
    for exercise in job["exercises"]:
        label, answer_name = exercise["label"], exercise["answer"]
        if answer_name not in namespace:
            status, message = (
                "error",
                (
                    f"`{answer_name}` is not defined: keep the exercise's function name, and "
                    "its cell (the error list above says if that cell failed)."
                ),
            )
        else:
            status, message = check_answer(
                checks[label], namespace[answer_name], job["step_timeout"]
            )
        changed = tampered(before)
        if changed:
            status, message = (
                "fail",
                (
                    "not graded: the notebook's code replaced functions that the check uses ("
                    + ", ".join(changed[:5])
                    + "). Answers must not change the course package."
                ),
            )
        emit(event="check", label=label, status=status, message=message)
    emit(event="done")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    results = os.fdopen(int(argv[0]), "w", buffering=1, encoding="utf-8")
    job = json.loads(sys.stdin.read())
    sys.stdin = open(os.devnull)  # noqa: SIM115 - the student's code gets no input

    def emit(**record):
        results.write(json.dumps(record) + "\n")
        results.flush()

    limit_resources(job["memory_gb"], job["max_file_mb"])
    grade(job, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
