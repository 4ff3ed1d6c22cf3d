"""Checks for the STFPM chapter."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..methods.stfpm import normalized_distance
from . import answer_like, attempt, fail, passed


def _feature_pairs():
    generator = torch.Generator().manual_seed(0)
    t = torch.randn(2, 8, 5, 6, generator=generator)
    s = torch.randn(2, 8, 5, 6, generator=generator)
    return [
        ("random features", t, s),
        ("student = 3 × teacher (same direction)", t, 3 * t),
        ("student = −teacher (opposite direction)", t, -t),
        ("one channel", t[:, :1], s[:, :1].abs()),
    ]


def check_layer_map(layer_map) -> bool:
    """Check ``layer_map(teacher (B, C, h, w), student (B, C, h, w)) -> (B, h, w)``, eq. 4.15."""
    name = "Exercise 6.1 (the per-layer anomaly map)"
    for description, t, s in _feature_pairs():
        answer = attempt(name, layer_map, t.clone(), s.clone())
        expected = normalized_distance(t, s)
        answer = answer_like(
            name, answer, expected, description, "one value per position, channels summed"
        )
        if not torch.allclose(answer, expected, atol=1e-5):
            hint = "Normalize each feature vector to unit length along the channel axis (dim=1)."
            if torch.allclose(answer, 2 * expected, atol=1e-5):
                hint = "You are off by a factor 2: eq. 4.15 has a ½."
            elif torch.allclose(answer, 1 - expected, atol=1e-5):
                hint = "That is the cosine similarity; the map is ½‖t̂ − ŝ‖² = 1 − cos."
            fail(name, f"for {description} your values differ from eq. 4.15. {hint}")
    return passed(name, "eq. 4.15 reproduced, scale-invariant")


def _reference_combine(layer_maps, size):
    combined = None
    for amap in layer_maps:
        up = F.interpolate(amap.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
        combined = up.squeeze(1) if combined is None else combined * up.squeeze(1)
    return combined


def check_combine_maps(combine_maps) -> bool:
    """Check ``combine_maps(layer_maps: list of (B, h_k, w_k), size) -> (B, H, W)`` (§5.4.1)."""
    name = "Exercise 6.2 (combining the layers)"
    generator = torch.Generator().manual_seed(1)
    layer_maps = [torch.rand(2, 16 // 2**k, 16 // 2**k, generator=generator) for k in range(3)]
    size = (64, 64)
    answer = attempt(name, combine_maps, [m.clone() for m in layer_maps], size)
    expected = _reference_combine(layer_maps, size)
    answer = answer_like(name, answer, expected)
    if not torch.allclose(answer, expected, atol=1e-5):
        summed = sum(
            F.interpolate(m.unsqueeze(1), size=size, mode="bilinear").squeeze(1) for m in layer_maps
        )
        hint = "Upsample each map bilinearly (align_corners=False), then multiply them."
        if torch.allclose(answer, summed, atol=1e-5):
            hint = "You added the maps; STFPM multiplies them element-wise."
        fail(name, f"your combined map differs from the reference. {hint}")
    return passed(name, "upsampled bilinearly and multiplied")
