"""``python -m stad_utils grade SUBMISSIONS --out GRADES``: grade a class's notebooks."""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from . import report
from .cells import MODES
from .sandbox import Limits, SubmissionResult, grade_submission
from .submissions import Submission, find_submissions

MANIFEST_VERSION = 1
# (seconds per notebook, seconds per cell or check, GB of memory) of each --execute mode:
# the chapters' cells train models, which takes minutes and more address space.
MODE_DEFAULTS = {"definitions": (300, 60, 4), "all": (1800, 900, 8)}


def load_manifest(path: Path) -> dict:
    """The exercises manifest written by ``make student``, checked for its structure."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"Could not read the exercises manifest {path}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        raise SystemExit(
            f"{path} is not an exercises manifest of version {MANIFEST_VERSION}: write it "
            "again with `make student` (it writes student/manifest.json)."
        )
    return manifest


def default_manifest(submissions: Path) -> Path:
    """SUBMISSIONS/manifest.json, else student/manifest.json of the current folder."""
    for candidate in (submissions / "manifest.json", Path("student") / "manifest.json"):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        "No exercises manifest: run `make student` (it writes student/manifest.json) in the "
        "course folder, or give its path with --manifest."
    )


def grade_class(
    submissions: list[Submission], manifest: dict, limits: Limits, jobs: int = 1
) -> list[SubmissionResult]:
    """Grade every submission, ``jobs`` at a time, with a progress bar."""

    def grade(submission: Submission) -> SubmissionResult:
        exercises = [
            e
            for e in manifest["chapters"][submission.chapter]["exercises"]
            if e["kind"] == "checked"
        ]
        return grade_submission(
            submission.student, submission.chapter, submission.path, exercises, limits
        )

    results = []
    with (
        ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
        tqdm(total=len(submissions), desc="grading", unit="notebook") as bar,
    ):
        futures = [pool.submit(grade, s) for s in submissions]
        for future in as_completed(futures):
            result = future.result()
            bar.set_postfix_str(f"{result.student} {result.chapter[:2]}", refresh=False)
            bar.update()
            results.append(result)
    return sorted(results, key=lambda r: (r.student, r.chapter))


def run(args: argparse.Namespace) -> int:
    submissions_root = Path(args.submissions)
    manifest = load_manifest(args.manifest or default_manifest(submissions_root))
    chapters = sorted(manifest["chapters"])
    if args.chapters:
        wanted = [c.strip() for c in args.chapters.split(",") if c.strip()]
        unknown = [w for w in wanted if not any(c.startswith(w) for c in chapters)]
        if unknown:
            raise SystemExit(
                f"Unknown chapter(s) {', '.join(unknown)}: the manifest has {', '.join(chapters)}."
            )
        chapters = [c for c in chapters if any(c.startswith(w) for w in wanted)]
    try:
        found, notes = find_submissions(submissions_root, chapters)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from error
    for note in notes:
        print(f"note: {note}")
    if not found:
        raise SystemExit(
            f"No submissions found in {submissions_root}: name them "
            "<student>/<NN_chapter>.ipynb or <student>_<NN_chapter>.ipynb (see the "
            "instructors' guide)."
        )
    out = Path(args.out)
    gradebook = out / "gradebook.csv"
    if gradebook.exists() and not args.overwrite:
        raise SystemExit(
            f"{gradebook} exists already: give another --out, or --overwrite to replace "
            "the gradebook and the feedback files."
        )
    timeout, step_timeout, memory = MODE_DEFAULTS[args.execute]
    limits = Limits(
        timeout=args.timeout or timeout,
        step_timeout=args.step_timeout or step_timeout,
        memory_gb=memory if args.memory is None else args.memory,
        execute=args.execute,
    )
    start = time.perf_counter()
    results = grade_class(found, manifest, limits, jobs=args.jobs)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    report.write_gradebook(gradebook, results, manifest)
    report.write_feedback(out / "feedback", results, manifest)
    graded_chapters = sorted({r.chapter for r in results})
    (out / "rubric.md").write_text(report.rubric_markdown(graded_chapters, manifest), "utf-8")
    print(report.summary_table(results, manifest, seconds))
    print(f"Gradebook {gradebook}, feedback in {out / 'feedback'}, rubric {out / 'rubric.md'}")
    return 0


def add_grade_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``grade`` command to ``python -m stad_utils``'s subcommands."""
    parser = subparsers.add_parser(
        "grade",
        help="grade a class's notebooks: run the exercises' checks, write a gradebook",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade every submitted notebook in SUBMISSIONS: run the student's code "
        "in a sandboxed subprocess, call the package's check of every checked exercise on "
        "the student's answer, and write OUT/gradebook.csv, OUT/feedback/<student>.md and "
        "OUT/rubric.md.\n\nNaming: SUBMISSIONS/<student>/<NN_chapter>.ipynb or "
        "SUBMISSIONS/<student>_<NN_chapter>.ipynb.\n\nThis RUNS THE STUDENTS' CODE: run it "
        "in a container or on a throwaway machine (see the instructors' guide).",
    )
    parser.add_argument("submissions", type=Path, help="folder of the submitted notebooks")
    parser.add_argument("--out", required=True, type=Path, help="folder for the grades")
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="exercises manifest (default: SUBMISSIONS/manifest.json, else "
        "student/manifest.json, written by `make student`)",
    )
    parser.add_argument(
        "--chapters", default=None, help="only these chapters, e.g. 02,06 (default: all)"
    )
    parser.add_argument(
        "--execute",
        choices=MODES,
        default="definitions",
        help="which code runs: 'definitions' (imports, functions, classes: seconds per "
        "notebook) or 'all' cells with the quick profile (minutes) (default: definitions)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per notebook (default: 300; 1800 with --execute all)",
    )
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=None,
        help="seconds per cell and per check (default: 60; 900 with --execute all)",
    )
    parser.add_argument(
        "--memory",
        type=float,
        default=None,
        help="memory limit per notebook in GB, 0 for none (default: 4; 8 with --execute all)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks graded at the same time (default: 1)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing gradebook in OUT"
    )
    parser.set_defaults(handler=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``grade`` command on its own: ``main(["SUBMISSIONS", "--out", "GRADES"])``."""
    parser = argparse.ArgumentParser(prog="python -m stad_utils")
    add_grade_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["grade", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)
