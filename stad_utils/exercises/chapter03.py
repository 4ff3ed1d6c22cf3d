"""Checks for chapter 3, "A descriptive teacher"."""

from __future__ import annotations

import torch

from ..losses import compactness_loss, triplet_loss
from . import attempt, fail, passed


def _triplets():
    generator = torch.Generator().manual_seed(3)
    a, p, n = (torch.randn(6, 8, generator=generator) for _ in range(3))
    near_positive = a + 0.01  # δ⁺ tiny, hinge mostly zero
    swapped = a.clone()  # the positive is far from the negative, the anchor close to it
    return [
        ("random descriptors", a, p, n, 1.0),
        ("a close positive", a, near_positive, n, 0.5),
        ("anchor = negative", a, p, swapped, 2.0),
    ]


def check_triplet_loss(triplet) -> bool:
    """Check ``triplet(anchor, positive, negative, margin) -> scalar`` (seed 000 eq. 2)."""
    name = "Exercise 3.1 (the triplet loss)"
    for description, a, p, n, margin in _triplets():
        answer = float(attempt(name, triplet, a.clone(), p.clone(), n.clone(), margin))
        expected = triplet_loss(a, p, n, margin).item()
        if abs(answer - expected) > 1e-4 * max(1.0, abs(expected)):
            hint = "Use squared Euclidean distances and average the hinge over the batch."
            if abs(answer - triplet_loss(a, p, n, margin, swap=False).item()) < 1e-4:
                hint = (
                    "δ⁻ must be the smaller of ‖T̂(p) − T̂(p⁻)‖² and ‖T̂(p⁺) − T̂(p⁻)‖² "
                    "(eq. 2); you used only the first."
                )
            fail(
                name,
                f"for {description} you returned {answer:.4f}, expected {expected:.4f}. {hint}",
            )
    return passed(name, "eq. 2 with the harder of the two negative distances")


def check_compactness_loss(compactness) -> bool:
    """Check ``compactness(descriptors (B, d)) -> scalar``: eq. 3, correlations between
    the descriptors of different patches, absolute values summed off the diagonal."""
    name = "Exercise 3.2 (the compactness loss)"
    generator = torch.Generator().manual_seed(4)
    base = torch.randn(1, 16, generator=generator)
    cases = [
        ("random descriptors", torch.randn(5, 16, generator=generator)),
        ("identical descriptors", base.repeat(4, 1)),
        ("two opposite descriptors", torch.cat([base, -base])),
    ]
    for description, x in cases:
        answer = float(attempt(name, compactness, x.clone()))
        expected = compactness_loss(x).item()
        if abs(answer - expected) > 1e-4 * max(1.0, abs(expected)):
            hint = (
                "Centre each descriptor over its components, scale it to unit length, "
                "take all pairwise dot products and sum |c_ij| for i ≠ j."
            )
            if abs(answer - compactness_loss(x, "dimensions").item()) < 1e-4:
                hint = "That is the correlation over *dimensions*; eq. 3 correlates patches."
            elif abs(answer - compactness_loss(x, absolute=False).item()) < 1e-4:
                hint = "Sum the absolute values |c_ij|: negative correlations are not compact."
            fail(
                name,
                f"for {description} you returned {answer:.4f}, expected {expected:.4f}. {hint}",
            )
    return passed(name, "eq. 3 over the patches of a mini-batch")
