"""Checks for the comparison chapter (the benchmark sweep)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from ..bench import collect
from . import attempt, fail, passed

# (method, category, seeds, metric values per seed): a small sweep with three seeds, one
# category run with a single seed (no standard deviation) and a failed run.
_FAKE_SWEEP = [
    ("stfpm", "brick", (42, 43, 44), (0.91, 0.95, 0.90)),
    ("stfpm", "grass", (42, 43, 44), (0.80, 0.86, 0.83)),
    ("fvv", "brick", (42, 43, 44), (0.93, 0.92, 0.97)),
    ("fvv", "grass", (42,), (0.88,)),
]
_FAILED = ("fvv", "grass", 43)


def write_fake_runs(folder: str | Path, metric: str = "au_pro") -> Path:
    """Run files as the sweep writes them (``<method>__<category>__seed<seed>.json``, and
    an ``.error.json`` for a run that failed) in ``folder``; returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for method, category, seeds, values in _FAKE_SWEEP:
        for seed, value in zip(seeds, values, strict=True):
            key = f"{method}__{category}__seed{seed}"
            job = {"method": method, "category": category, "seed": seed, "key": key}
            record = {"method": method, "category": category, "seed": seed, metric: value}
            record.update({"train_seconds": 10.0 + seed - 42, "job": job})
            (folder / f"{key}.json").write_text(json.dumps(record, indent=2))
    method, category, seed = _FAILED
    key = f"{method}__{category}__seed{seed}"
    job = {"method": method, "category": category, "seed": seed, "key": key}
    error = {"job": job, "error": "RuntimeError: CUDA out of memory (simulated)"}
    (folder / f"{key}.error.json").write_text(json.dumps(error, indent=2))
    return folder


def reference_seed_summary(runs_dir: str | Path, metric: str) -> dict:
    """``{(method, category): (mean, std)}`` over seeds, as :func:`stad_utils.bench.merge`
    computes it (sample std, ``None`` with one seed)."""
    summary = collect(Path(runs_dir).parent).summary
    return {
        (row["method"], row["category"]): (row[f"{metric}_mean"], row[f"{metric}_std"])
        for row in summary
    }


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _compare_summaries(name: str, answer, expected: dict, where: str, metric: str) -> None:
    try:
        answer = {tuple(key): tuple(value) for key, value in dict(answer).items()}
    except (TypeError, ValueError):
        fail(name, "return a dict {(method, category): (mean, std)}.")
    if set(answer) != set(expected):
        missing = sorted(set(expected) - set(answer))
        extra = sorted(set(answer) - set(expected))
        fail(
            name,
            f"on {where} the keys differ: missing {missing or 'none'}, unexpected "
            f"{extra or 'none'}. One key per (method, category) of a finished run; skip "
            "the *.error.json files of failed runs.",
        )
    for key, (mean, std) in expected.items():
        got_mean, got_std = answer[key][0], answer[key][1]
        if not _close(got_mean, mean):
            fail(name, f"on {where} the mean {metric} of {key} is {got_mean}, expected {mean}.")
        if not _close(got_std, std):
            hint = (
                "With one seed there is no standard deviation: return None."
                if std is None
                else "Use the sample standard deviation (divide by n − 1, "
                "statistics.stdev or np.std(..., ddof=1))."
            )
            fail(name, f"on {where} the std of {key} is {got_std}, expected {std}. {hint}")


def check_seed_summary(seed_summary, runs_dir: str | Path | None = None) -> bool:
    """Check ``seed_summary(runs_dir, metric) -> {(method, category): (mean, std)}`` on a
    made-up sweep (three seeds, a single-seed category, a failed run) and, if given, on
    the chapter's own ``runs_dir``, against :func:`stad_utils.bench.merge`'s summary."""
    name = "Exercise 9.1 · Mean and spread over seeds"
    with tempfile.TemporaryDirectory() as tmp:
        fake = write_fake_runs(Path(tmp) / "runs")
        for metric in ("au_pro", "train_seconds"):
            try:
                answer = attempt(name, seed_summary, fake, metric)
            except (KeyError, TypeError, ValueError) as error:
                fail(
                    name,
                    f"on a made-up sweep your function raised {type(error).__name__}: {error}. "
                    "A failed run leaves <key>.error.json without metrics: skip those files.",
                )
            _compare_summaries(
                name, answer, reference_seed_summary(fake, metric), "a made-up sweep", metric
            )
    if runs_dir is not None:
        answer = attempt(name, seed_summary, Path(runs_dir), "au_pro")
        expected = reference_seed_summary(runs_dir, "au_pro")
        _compare_summaries(name, answer, expected, "the chapter's sweep", "au_pro")
    return passed(name, "the same means and standard deviations as merge's summary")


def reference_pareto_front(points: dict, cost: str, gain: str) -> set:
    """The names no other point dominates (cost no higher and gain no lower, one of the
    two strictly)."""

    def dominates(a, b):
        return (
            a[cost] <= b[cost] and a[gain] >= b[gain] and (a[cost] < b[cost] or a[gain] > b[gain])
        )

    return {
        name
        for name, point in points.items()
        if not any(dominates(other, point) for key, other in points.items() if key != name)
    }


def _points(pairs: dict) -> dict:
    return {name: {"train_seconds": c, "au_pro": g} for name, (c, g) in pairs.items()}


_FRONT_CASES = [
    ("a chain", _points({"a": (1, 0.5), "b": (2, 0.7), "c": (3, 0.6), "d": (1, 0.4)})),
    ("equal cost", _points({"a": (1, 0.5), "b": (1, 0.6), "c": (5, 0.9)})),
    ("equal gain", _points({"a": (1, 0.8), "b": (2, 0.8), "c": (4, 0.85)})),
    ("a tie", _points({"a": (1, 0.5), "b": (1, 0.5), "c": (0.5, 0.2)})),
    ("one point", _points({"a": (3, 0.7)})),
    ("a trade-off", _points({"a": (100, 0.95), "b": (30, 0.93), "c": (10, 0.90)})),
]


def check_pareto_front(pareto_front, points: dict | None = None) -> bool:
    """Check ``pareto_front(points, cost, gain) -> names`` on made-up cases and, if given,
    on the chapter's ``{method: {metric: value}}``."""
    name = "Exercise 9.2 · The Pareto front"
    cases = list(_FRONT_CASES)
    if points is not None:
        cases.append(("the chapter's methods", dict(points)))
    for description, case in cases:
        answer = attempt(name, pareto_front, case, "train_seconds", "au_pro")
        try:
            answer = set(answer)
        except TypeError:
            fail(name, "return the names of the methods on the front (a list or a set).")
        expected = reference_pareto_front(case, "train_seconds", "au_pro")
        if answer == expected:
            continue
        hint = "A method is dominated when another costs no more and gains no less, and is "
        hint += "strictly better in at least one of the two."
        if answer == set(case) - expected:
            hint = "You returned the dominated methods; the front is the others."
        elif answer < expected and any(
            _tied(case, missing, other) for missing in expected - answer for other in case
        ):
            hint = "Methods tied with another (same cost and gain) dominate neither: keep both."
        fail(
            name,
            f"for {description} ({_describe(case)}) you gave {sorted(answer)}, expected "
            f"{sorted(expected)}. {hint}",
        )
    return passed(name, f"{len(cases)} cases")


def _tied(points: dict, a: str, b: str) -> bool:
    return a != b and all(points[a][k] == points[b][k] for k in ("train_seconds", "au_pro"))


def _describe(points: dict) -> str:
    return ", ".join(
        f"{name}: {p['train_seconds']:g} s, {p['au_pro']:.3g}" for name, p in points.items()
    )
