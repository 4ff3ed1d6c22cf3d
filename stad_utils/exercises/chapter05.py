"""Checks for the Uninformed Students chapter."""

from __future__ import annotations

import torch

from ..methods.us_scores import ScoreStatistics, predictive_variance, standardized_score
from . import answer_like, attempt, fail, passed


def _students(seed: int, m: int = 3, shape=(2, 5, 3, 4)) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator) for _ in range(m)]


def check_predictive_variance(variance_fn) -> bool:
    """Check ``variance_fn(students) -> (B, H, W)``: v of eq. 7 for M maps ``(B, d, H, W)``."""
    name = "Exercise 5.1 · The predictive variance"
    one = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    cases = [
        ("three random students", _students(0)),
        ("two students", _students(1, m=2)),
        ("identical students", [one.clone(), one.clone(), one.clone()]),
    ]
    for description, students in cases:
        expected = predictive_variance(students)
        answer = answer_like(
            name,
            attempt(name, variance_fn, [s.clone() for s in students]),
            expected,
            description,
            "one value per pixel: sum over the d components",
        )
        if torch.allclose(answer, expected, atol=1e-4):
            continue
        stack = torch.stack(students)
        hint = "Eq. 7: the mean over students of ‖μ^S_i‖², minus ‖μ‖² of their mean μ."
        if torch.allclose(answer, stack.var(0, unbiased=True).sum(1), atol=1e-4):
            hint = "You divided by M − 1; eq. 7 averages over the M students (divide by M)."
        elif torch.allclose(answer, stack.pow(2).sum(2).mean(0), atol=1e-4):
            hint = "Subtract ‖μ‖², the squared norm of the students' *mean* prediction."
        elif torch.allclose(answer, expected.sqrt(), atol=1e-4):
            hint = "Eq. 7 is a variance (squared norms), not a standard deviation."
        fail(name, f"for {description} your v differs from eq. 7. {hint}")
    return passed(name, "eq. 7 reproduced, and it is 0 where the students agree")


def _scale_case(seed: int):
    generator = torch.Generator().manual_seed(seed)
    scales = (17, 33, 65)
    errors = {p: torch.rand(2, 6, 6, generator=generator) * (p / 10) for p in scales}
    variances = {p: torch.rand(2, 6, 6, generator=generator) * 0.1 for p in scales}
    stats = {
        p: ScoreStatistics(0.2 * p / 10, 0.1 * p / 10, 0.03, 0.02 + 0.01 * i)
        for i, p in enumerate(scales)
    }
    return errors, variances, stats


def check_combine_scales(combine_fn) -> bool:
    """Check ``combine_fn(errors, variances, stats) -> (B, H, W)``: the multi-scale map, the
    mean over scales of eq. 8 with each scale's own *validation* statistics."""
    name = "Exercise 5.2 · Combining the scales"
    for seed in (0, 1):
        errors, variances, stats = _scale_case(seed)
        for scales in ((17, 33, 65), (33,), (17, 65)):
            e = {p: errors[p].clone() for p in scales}
            v = {p: variances[p].clone() for p in scales}
            answer = attempt(name, combine_fn, e, v, {p: stats[p] for p in scales})
            per_scale = [standardized_score(errors[p], variances[p], stats[p]) for p in scales]
            expected = torch.stack(per_scale).mean(0)
            answer = answer_like(name, answer, expected)
            if torch.allclose(answer, expected, atol=1e-5):
                continue
            hint = "Standardize e and v of each scale with *its* statistics (eq. 8), then average."
            if torch.allclose(answer, torch.stack(per_scale).sum(0), atol=1e-5):
                hint = "You summed the scales; the method averages them (the mean)."
            else:
                own = [
                    (errors[p] - errors[p].mean()) / errors[p].std()
                    + (variances[p] - variances[p].mean()) / variances[p].std()
                    for p in scales
                ]
                if torch.allclose(answer, torch.stack(own).mean(0), atol=1e-4):
                    hint = (
                        "You standardized with the mean and standard deviation of the maps "
                        "being scored — statistics of *test* images. Eq. 8 uses those of the "
                        "good validation images: the `stats` argument."
                    )
            fail(name, f"for scales {scales} your map differs. {hint}")
    return passed(name, "the mean of the per-scale eq. 8 scores, validation statistics only")
