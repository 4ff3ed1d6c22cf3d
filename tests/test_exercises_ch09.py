"""Chapter 9's checks: right answers pass, the usual mistakes get their hints."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter09 import (
    check_pareto_front,
    check_seed_summary,
    reference_pareto_front,
    write_fake_runs,
)


def stub(*args, **kwargs):
    raise NotImplementedError("Your turn")


@pytest.mark.parametrize("check", [check_seed_summary, check_pareto_front])
def test_a_stub_gets_the_friendly_message(check):
    with pytest.raises(ExerciseError, match="still raises NotImplementedError"):
        check(stub)


# ----------------------------------------------------------------------------------------
# Exercise 9.1: mean and standard deviation over seeds
# ----------------------------------------------------------------------------------------


def _values(runs_dir, metric, skip_errors=True):
    values = {}
    for path in sorted(Path(runs_dir).glob("*.json")):
        if skip_errors and path.name.endswith(".error.json"):
            continue
        record = json.loads(path.read_text())
        key = (record["job"]["method"], record["job"]["category"])
        values.setdefault(key, []).append(record[metric])
    return values


def summary_right(runs_dir, metric):
    return {
        key: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else None)
        for key, v in _values(runs_dir, metric).items()
    }


def summary_population_std(runs_dir, metric):
    return {
        key: (statistics.mean(v), statistics.pstdev(v) if len(v) > 1 else None)
        for key, v in _values(runs_dir, metric).items()
    }


def summary_zero_std(runs_dir, metric):
    return {
        key: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
        for key, v in _values(runs_dir, metric).items()
    }


def summary_reads_error_files(runs_dir, metric):
    return {key: (statistics.mean(v), None) for key, v in _values(runs_dir, metric, False).items()}


def summary_per_method(runs_dir, metric):
    merged = {}
    for (method, _), v in _values(runs_dir, metric).items():
        merged.setdefault((method, "all"), []).extend(v)
    return {key: (statistics.mean(v), statistics.stdev(v)) for key, v in merged.items()}


def test_seed_summary_accepts_the_right_answer(tmp_path):
    assert check_seed_summary(summary_right) is True
    runs = write_fake_runs(tmp_path / "runs")
    assert check_seed_summary(summary_right, runs) is True


@pytest.mark.parametrize(
    "answer, hint",
    [
        (summary_population_std, "n − 1"),
        (summary_zero_std, "return None"),
        (summary_reads_error_files, "error.json"),
        (summary_per_method, "keys differ"),
    ],
    ids=lambda item: getattr(item, "__name__", item),
)
def test_seed_summary_explains_wrong_answers(answer, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_seed_summary(answer)


# ----------------------------------------------------------------------------------------
# Exercise 9.2: the Pareto front
# ----------------------------------------------------------------------------------------


def front_right(points, cost, gain):
    return reference_pareto_front(points, cost, gain)


def front_dominated(points, cost, gain):
    return set(points) - reference_pareto_front(points, cost, gain)


def front_strict_dominance(points, cost, gain):  # forgets that a tie dominates nobody
    return [
        name
        for name, p in points.items()
        if not any(
            o[cost] <= p[cost] and o[gain] >= p[gain] for k, o in points.items() if k != name
        )
    ]


def front_gain_only(points, cost, gain):
    best = max(p[gain] for p in points.values())
    return [name for name, p in points.items() if p[gain] == best]


def test_pareto_front_accepts_the_right_answer():
    chapter = {
        "uninformed_students": {"train_seconds": 300.0, "au_pro": 0.90, "parameters": 5e5},
        "stfpm": {"train_seconds": 30.0, "au_pro": 0.95, "parameters": 1.4e6},
        "simple_student": {"train_seconds": 15.0, "au_pro": 0.94, "parameters": 1.1e6},
    }
    assert check_pareto_front(front_right, chapter) is True
    assert reference_pareto_front(chapter, "train_seconds", "au_pro") == {"stfpm", "simple_student"}


@pytest.mark.parametrize(
    "answer, hint",
    [
        (front_dominated, "returned the dominated"),
        (front_strict_dominance, "tied"),
        (front_gain_only, "strictly better"),
    ],
    ids=lambda item: getattr(item, "__name__", item),
)
def test_pareto_front_explains_wrong_answers(answer, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_pareto_front(answer)
