"""Checks for the STFPM chapter."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..methods.stfpm import normalized_distance
from . import answer_like, attempt, fail, passed

LOSS = "Exercise 6.1 · The loss of each image"
COMBINE = "Exercise 6.2 · Combining the layers"


def per_image_reference(teacher_pyramid: dict, student_pyramid: dict) -> torch.Tensor:
    """The reference: eq. 4.15 averaged over each layer's positions, summed over the
    layers, one value per image -> ``(B,)``; its mean is ``pyramid_loss``."""
    return sum(
        normalized_distance(teacher_pyramid[k], student_pyramid[k]).mean(dim=(1, 2))
        for k in teacher_pyramid
    )


def _pyramids():
    generator = torch.Generator().manual_seed(0)
    shapes = {"layer1": (8, 16, 16), "layer2": (12, 8, 8), "layer3": (16, 4, 4)}
    teacher = {k: torch.randn(3, *shape, generator=generator) for k, shape in shapes.items()}
    student = {k: torch.randn(3, *shape, generator=generator) for k, shape in shapes.items()}
    scaled = {k: 3 * v for k, v in teacher.items()}
    return [
        ("random pyramids", teacher, student),
        ("student = 3 × teacher (same directions)", teacher, scaled),
        (
            "one image",
            {k: v[:1] for k, v in teacher.items()},
            {k: v[:1] for k, v in student.items()},
        ),
    ]


def _loss_hint(answer, teacher, student) -> str:
    maps = {k: normalized_distance(teacher[k], student[k]) for k in teacher}
    summed_positions = sum(m.sum(dim=(1, 2)) for m in maps.values())
    if torch.allclose(answer, summed_positions, atol=1e-4):
        return "You summed over the positions; eq. 4.15 averages them (1/(w_k h_k) Σ_ij)."
    if torch.allclose(answer, 2 * per_image_reference(teacher, student), atol=1e-5):
        return "You are off by a factor 2: eq. 4.15 has a ½."
    mean_layers = per_image_reference(teacher, student) / len(teacher)
    if torch.allclose(answer, mean_layers, atol=1e-5):
        return "You averaged the layers; STFPM sums them."
    return (
        "Normalize each feature vector along the channels (dim=1), take ½‖t̂ − ŝ‖² per "
        "position, average each layer's map over its own positions, then add the layers."
    )


def check_per_image_loss(per_image_loss) -> bool:
    """Check ``per_image_loss(teacher_pyramid, student_pyramid) -> (B,)``: for each image,
    eq. 4.15 averaged over each layer's positions and summed over the layers (the
    training loss of that image alone)."""
    for description, teacher, student in _pyramids():
        answer = attempt(
            LOSS,
            per_image_loss,
            {k: v.clone() for k, v in teacher.items()},
            {k: v.clone() for k, v in student.items()},
        )
        expected = per_image_reference(teacher, student)
        answer = answer_like(LOSS, answer, expected, description, "one value per image")
        if not torch.allclose(answer, expected, atol=1e-5):
            hint = _loss_hint(answer, teacher, student)
            fail(LOSS, f"for {description} your losses differ from eq. 4.15. {hint}")
    return passed(LOSS, "eq. 4.15 per image; its mean is the batch loss")


def _reference_combine(layer_maps, size):
    combined = None
    for amap in layer_maps:
        up = F.interpolate(amap.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
        combined = up.squeeze(1) if combined is None else combined * up.squeeze(1)
    return combined


def check_combine_maps(combine_maps) -> bool:
    """Check ``combine_maps(layer_maps: list of (B, h_k, w_k), size) -> (B, H, W)`` (§5.4.1)."""
    generator = torch.Generator().manual_seed(1)
    layer_maps = [torch.rand(2, 16 // 2**k, 16 // 2**k, generator=generator) for k in range(3)]
    size = (64, 64)
    answer = attempt(COMBINE, combine_maps, [m.clone() for m in layer_maps], size)
    expected = _reference_combine(layer_maps, size)
    answer = answer_like(COMBINE, answer, expected)
    if not torch.allclose(answer, expected, atol=1e-5):
        summed = sum(
            F.interpolate(m.unsqueeze(1), size=size, mode="bilinear").squeeze(1) for m in layer_maps
        )
        hint = "Upsample each map bilinearly (align_corners=False), then multiply them."
        if torch.allclose(answer, summed, atol=1e-5):
            hint = "You added the maps; STFPM multiplies them element-wise."
        fail(COMBINE, f"your combined map differs from the reference. {hint}")
    return passed(COMBINE, "upsampled bilinearly and multiplied")
