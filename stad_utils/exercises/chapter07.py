"""Checks for the Feature Vectors Variance chapter.

The chapter prints ``ensemble_terms`` (eqs. 5.3 and 5.4 from the stacked students), so
the exercises ask for what it does not show: the variance from a running sum of the
students (one map in memory instead of M), and the whole FVV anomaly map of a pyramid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..methods.fvv import ensemble_error_and_variance
from ..methods.stfpm import combine_layer_maps
from . import answer_like, attempt, fail, passed

VARIANCE = "Exercise 7.1 · The variance from a running sum"
FVV_MAP = "Exercise 7.2 · The FVV anomaly map"


def _ensembles():
    generator = torch.Generator().manual_seed(7)
    t = torch.randn(2, 6, 4, 5, generator=generator)
    students = [torch.randn(2, 6, 4, 5, generator=generator) for _ in range(3)]
    agree = [2.0 * t, 0.5 * t, 3.0 * t]  # same direction: no disagreement
    return [
        ("three random students", students),
        ("students pointing the same way", agree),
        ("two students", students[:2]),
        ("five students", students + [-s for s in students[:2]]),
    ]


def _normalized_sum(students):
    return sum(F.normalize(s, dim=1) for s in students)


def check_variance_from_sum(variance_from_sum) -> bool:
    """Check ``variance_from_sum(total (B, C, h, w), m) -> (B, h, w)``: v_k of eq. 5.3
    from the sum of the M normalized student vectors alone (for unit vectors,
    v_k = 1 − ‖mean‖²)."""
    for description, students in _ensembles():
        total, m = _normalized_sum(students), len(students)
        answer = attempt(VARIANCE, variance_from_sum, total.clone(), m)
        expected = ensemble_error_and_variance(students[0], students)[1]
        answer = answer_like(VARIANCE, answer, expected, description, "channels summed")
        if torch.allclose(answer, expected, atol=1e-5):
            continue
        mean_norm = (total / m).pow(2).sum(dim=1)
        hint = (
            "Each normalized vector has length 1, so the mean of ‖ŝ‖² is 1; expand "
            "(1/M) Σ‖ŝ − mean‖² and write it with ‖mean‖² only."
        )
        if torch.allclose(answer, mean_norm, atol=1e-5):
            hint = "That is ‖mean‖²; the variance is what the unit length leaves: 1 − ‖mean‖²."
        elif torch.allclose(answer, 1 - total.pow(2).sum(dim=1), atol=1e-5):
            hint = "`total` is a sum over the M students: divide it by m to get their mean."
        elif torch.allclose(answer, (1 - mean_norm) * m / (m - 1), atol=1e-5):
            hint = "Divide by M, not M − 1: this book uses the population standard deviation."
        fail(VARIANCE, f"for {description} your v_k differs from eq. 5.3. {hint}")
    return passed(VARIANCE, "eq. 5.3 from one running sum")


def fvv_map_reference(teacher_pyramid: dict, student_pyramids: list, size) -> torch.Tensor:
    """The reference: per layer e_k + v_k, upsampled bilinearly to ``size`` and multiplied."""
    layer_maps = []
    for k in teacher_pyramid:
        error, variance = ensemble_error_and_variance(
            teacher_pyramid[k], [s[k] for s in student_pyramids]
        )
        layer_maps.append(error + variance)
    return combine_layer_maps(layer_maps, size)


def _pyramid_cases():
    generator = torch.Generator().manual_seed(8)
    shapes = {"layer1": (6, 16, 16), "layer2": (8, 8, 8), "layer3": (10, 4, 4)}

    def pyramid():
        return {k: torch.randn(2, *shape, generator=generator) for k, shape in shapes.items()}

    teacher, students = pyramid(), [pyramid() for _ in range(3)]
    return [
        ("three students", teacher, students, (32, 32)),
        ("two students, a non-square size", teacher, students[:2], (32, 48)),
    ]


def _fvv_hint(answer, teacher, students, size) -> str:
    terms = {k: ensemble_error_and_variance(teacher[k], [s[k] for s in students]) for k in teacher}

    def combined(pick, join):
        ups = [
            F.interpolate(pick(*terms[k]).unsqueeze(1), size=size, mode="bilinear").squeeze(1)
            for k in teacher
        ]
        out = ups[0]
        for up in ups[1:]:
            out = join(out, up)
        return out

    if torch.allclose(answer, combined(lambda e, v: e, torch.mul), atol=1e-5):
        return "You used the error e_k only; the layer's score is e_k + v_k."
    if torch.allclose(answer, combined(lambda e, v: v, torch.mul), atol=1e-5):
        return "You used the variance v_k only; the layer's score is e_k + v_k."
    if torch.allclose(answer, combined(lambda e, v: e + v, torch.add), atol=1e-5):
        return "You added the layers; FVV multiplies them, as STFPM does."
    return (
        "Per layer: normalize teacher and students along the channels, e_k + v_k "
        "(eqs. 5.3, 5.4), upsample bilinearly (align_corners=False), then multiply."
    )


def check_fvv_map(fvv_map) -> bool:
    """Check ``fvv_map(teacher_pyramid, student_pyramids, size) -> (B, H, W)``: per layer
    e_k + v_k (eqs. 5.3, 5.4), upsampled bilinearly to ``size`` and multiplied (§5.4.1)."""
    for description, teacher, students, size in _pyramid_cases():
        answer = attempt(
            FVV_MAP,
            fvv_map,
            {k: v.clone() for k, v in teacher.items()},
            [{k: v.clone() for k, v in s.items()} for s in students],
            size,
        )
        expected = fvv_map_reference(teacher, students, size)
        answer = answer_like(FVV_MAP, answer, expected, description)
        if not torch.allclose(answer, expected, atol=1e-5):
            hint = _fvv_hint(answer, teacher, students, size)
            fail(FVV_MAP, f"for {description} your map differs from FVV's. {hint}")
    return passed(FVV_MAP, "eqs. 5.3–5.4 per layer, upsampled and multiplied")
