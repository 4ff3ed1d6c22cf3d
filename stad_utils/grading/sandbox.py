"""Grade one submitted notebook in a subprocess of its own.

The student's code is untrusted. :func:`grade_submission` reads the notebook here (a file
that is not a notebook is reported without running anything), then starts
:mod:`stad_utils.grading.worker` in a new temporary working folder and a new process
group, with

* a wall-clock limit for the whole submission (the process group is killed after it),
* a time limit for each cell and each check (inside the worker),
* a memory limit (``RLIMIT_AS``) and a file-size limit (``RLIMIT_FSIZE``), where the OS
  has them,
* the quick CPU profile: ``STAD_PROFILE=quick``, ``CUDA_VISIBLE_DEVICES=""``, one thread.

An endless loop, a crash, a huge allocation or a deleted working folder therefore ends
that submission only. This is not a security boundary against a student who *wants* to
harm the machine: run the grader in a container (see the instructors' guide).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass
class Limits:
    """Resource limits of one submission."""

    timeout: float = 300.0  # seconds for the whole submission
    step_timeout: float = 60.0  # seconds for one cell or one check
    memory_gb: float = 4.0  # address space of the worker (RLIMIT_AS); 0 = no limit
    max_file_mb: float = 100.0  # largest file the student's code may write
    execute: str = "definitions"  # which code runs: see stad_utils.grading.cells


@dataclass
class CheckResult:
    label: str
    status: str  # pass, fail, error, timeout, not graded
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class SubmissionResult:
    """What grading one notebook gave: the checks' results and any problem."""

    student: str
    chapter: str
    path: Path
    checks: dict[str, CheckResult] = field(default_factory=dict)
    problem: str = ""  # invalid notebook, timeout, crash: one line
    cell_errors: list[dict] = field(default_factory=list)
    output: str = ""  # the end of what the student's code printed
    seconds: float = 0.0


def read_code_cells(path: Path) -> list[list]:
    """``[[cell number, source]]`` of the notebook's code cells (numbers from 1, counting
    every cell); a clear ``ValueError`` if the file is not a Jupyter notebook."""
    try:
        text = path.read_text(encoding="utf-8")
        notebook = nbformat.reads(text, as_version=4)
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not text (not a Jupyter notebook): {error}") from error
    except Exception as error:  # nbformat raises several kinds for a broken file
        raise ValueError(f"the file is not a valid Jupyter notebook: {error}") from error
    return [
        [number, cell.source]
        for number, cell in enumerate(notebook.cells, start=1)
        if cell.cell_type == "code"
    ]


def worker_environment(workdir: Path) -> dict[str, str]:
    """The parent's environment with the quick CPU profile, one thread, and the package
    importable from the temporary working folder."""
    env = dict(os.environ)
    env.update(
        STAD_PROFILE="quick",
        STAD_HEADLESS="1",
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
        TMPDIR=str(workdir),
    )
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_PARENT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return env


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the worker and anything it started (it leads its own process group)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _exit_problem(returncode: int) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        detail = {
            "SIGKILL": " (killed: out of memory?)",
            "SIGXFSZ": " (a file grew past the size limit)",
            "SIGSEGV": " (a crash in compiled code)",
        }.get(name, "")
        return f"the grading process was ended by signal {name or -returncode}{detail}"
    return f"the notebook's code ended the grading process (exit status {returncode})"


def grade_submission(
    student: str, chapter: str, path: Path, exercises: list[dict], limits: Limits
) -> SubmissionResult:
    """Run ``exercises``' checks (the manifest's checked exercises of the chapter) on the
    answers of the notebook at ``path``."""
    result = SubmissionResult(student, chapter, Path(path))
    start = time.perf_counter()
    try:
        cells = read_code_cells(Path(path))
    except (OSError, ValueError) as error:
        result.problem = str(error)
    else:
        _run_and_collect(result, cells, exercises, limits)
    for exercise in exercises:  # the checks that gave no result, for any reason
        if exercise["label"] not in result.checks:
            reason = result.problem or "no result"
            result.checks[exercise["label"]] = CheckResult(
                exercise["label"], "not graded", f"not graded: {reason}."
            )
    result.seconds = time.perf_counter() - start
    return result


def _run_and_collect(
    result: SubmissionResult, cells: list[list], exercises: list[dict], limits: Limits
) -> None:
    """Run the worker on the notebook's cells; put its records into ``result``."""
    job = {
        "cells": cells,
        "exercises": exercises,
        "execute": limits.execute,
        "step_timeout": limits.step_timeout,
        "memory_gb": limits.memory_gb,
        "max_file_mb": limits.max_file_mb,
    }
    workdir = Path(tempfile.mkdtemp(prefix="stad-grade-"))
    try:
        records, output, problem = _run_worker(job, workdir, limits.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.output, result.problem = output, problem
    labels = {e["label"] for e in exercises}
    for record in records:
        if record.get("event") == "grader error":
            problem = result.problem = (
                f"the grader {record.get('message')} (write the manifest again with `make "
                "student` for this version of the package)"
            )
        elif record.get("event") == "ran":
            result.cell_errors = list(record.get("errors", []))
        elif record.get("event") == "check" and record.get("label") in labels:
            result.checks[record["label"]] = CheckResult(
                record["label"], str(record.get("status")), str(record.get("message"))
            )
    if not problem and not any(r.get("event") == "done" for r in records):
        result.problem = "the grading process stopped before the end"


def _run_worker(job: dict, workdir: Path, timeout: float) -> tuple[list[dict], str, str]:
    """Run the worker on ``job``; ``(records, end of its output, problem)``."""
    with (
        tempfile.TemporaryFile() as job_file,
        tempfile.TemporaryFile() as results,
        tempfile.TemporaryFile() as output,
    ):
        job_file.write(json.dumps(job).encode())
        job_file.seek(0)
        process = subprocess.Popen(
            [sys.executable, "-m", "stad_utils.grading.worker", str(results.fileno())],
            stdin=job_file,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=worker_environment(workdir),
            pass_fds=(results.fileno(),),
            start_new_session=True,
        )
        problem = ""
        try:
            returncode = process.wait(timeout=timeout)
            if returncode:
                problem = _exit_problem(returncode)
        except subprocess.TimeoutExpired:
            problem = f"the notebook took longer than {timeout:g} s and was stopped"
        finally:
            _kill_group(process)  # also any process the student's code left behind
            process.wait()
        results.seek(0)
        records = []
        for line in results.read().decode("utf-8", "replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        output.seek(0, os.SEEK_END)
        output.seek(max(0, output.tell() - 4000))
        return records, output.read().decode("utf-8", "replace"), problem
