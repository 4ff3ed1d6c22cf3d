"""Checks for the Feature Vectors Variance chapter."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..methods.fvv import ensemble_error_and_variance
from . import answer_like, attempt, fail, passed


def _ensembles():
    generator = torch.Generator().manual_seed(7)
    t = torch.randn(2, 6, 4, 5, generator=generator)
    students = [torch.randn(2, 6, 4, 5, generator=generator) for _ in range(3)]
    agree = [2.0 * t, 0.5 * t, 3.0 * t]  # same direction: no disagreement, no error
    return [
        ("random students", t, students),
        ("students agreeing with the teacher", t, agree),
        ("two students", t, students[:2]),
    ]


def _answer_and_expected(name, answer_fn, term: int, description, t, students):
    """The reader's map and the reference (``term`` 0: e_k, 1: v_k), shapes checked."""
    answer = attempt(name, answer_fn, t.clone(), [s.clone() for s in students])
    expected = ensemble_error_and_variance(t, students)[term]
    return answer_like(name, answer, expected, description), expected


def check_ensemble_variance(ensemble_variance) -> bool:
    """Check ``ensemble_variance(teacher, students) -> (B, h, w)``: v_k of eq. 5.3."""
    name = "Exercise 7.1 (the ensemble's variance v_k)"
    for description, t, students in _ensembles():
        answer, expected = _answer_and_expected(
            name, ensemble_variance, 1, description, t, students
        )
        if torch.allclose(answer, expected, atol=1e-5):
            continue
        normalized = torch.stack([F.normalize(s, dim=1) for s in students])
        hint = "Normalize each student's vectors (eq. 5.2) before taking the standard deviation."
        if torch.allclose(answer, normalized.var(0, unbiased=True).sum(1), atol=1e-5):
            hint = (
                "You used the sample standard deviation (divide by M − 1); this book uses "
                "the population one (divide by M): torch.var(..., unbiased=False)."
            )
        elif torch.allclose(answer, normalized.var(0, unbiased=False).sum(1).sqrt(), atol=1e-5):
            hint = "Eq. 5.3 takes the *squared* norm of the standard-deviation vector."
        fail(name, f"for {description} your v_k differs from eq. 5.3. {hint}")
    return passed(name, "eq. 5.3 reproduced")


def check_ensemble_error(ensemble_error) -> bool:
    """Check ``ensemble_error(teacher, students) -> (B, h, w)``: e_k of eq. 5.4."""
    name = "Exercise 7.2 (the ensemble's error e_k)"
    for description, t, students in _ensembles():
        answer, expected = _answer_and_expected(name, ensemble_error, 0, description, t, students)
        if not torch.allclose(answer, expected, atol=1e-5):
            mean_first = F.normalize(torch.stack(students).mean(0), dim=1)
            hint = "Average the *normalized* student vectors, then compare with t̂ (eq. 5.4)."
            tn = F.normalize(t, dim=1)
            if torch.allclose(answer, 0.5 * (tn - mean_first).pow(2).sum(1), atol=1e-5):
                hint = (
                    "You normalized the mean; eq. 5.4 takes the mean of the normalized "
                    "vectors (so it can be shorter than 1 when students disagree)."
                )
            fail(name, f"for {description} your e_k differs from eq. 5.4. {hint}")
    return passed(name, "eq. 5.4 reproduced")
