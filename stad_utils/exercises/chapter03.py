"""Checks for chapter 3, "A descriptive teacher".

The chapter prints its own eq. 2 and eq. 3 (patches) code, so the exercises ask for the
variants it does not show: eq. 2 with several negatives per anchor (hard-negative mining),
and eq. 3 in the original paper's reading, over the descriptor dimensions.
"""

from __future__ import annotations

import torch

from ..losses import compactness_loss, triplet_loss
from . import attempt, fail, passed

TRIPLET = "Exercise 3.1 · The hardest negative"
COMPACTNESS = "Exercise 3.2 · Compactness over the dimensions"


def hardest_negative_triplet(anchor, positive, negatives, margin):
    """The reference: eq. 2 where δ⁻ is the smallest distance of the anchor *or* the
    positive to any of the K negatives. ``negatives`` is ``(B, K, d)``."""
    d_pos = (anchor - positive).pow(2).sum(dim=1)
    to_anchor = (anchor.unsqueeze(1) - negatives).pow(2).sum(dim=2)  # (B, K)
    to_positive = (positive.unsqueeze(1) - negatives).pow(2).sum(dim=2)
    d_neg = torch.minimum(to_anchor, to_positive).amin(dim=1)
    return torch.clamp(d_pos - d_neg + margin, min=0).mean()


def _triplets():
    generator = torch.Generator().manual_seed(3)
    a, p = (torch.randn(6, 8, generator=generator) for _ in range(2))
    negatives = torch.randn(6, 4, 8, generator=generator)
    near = negatives.clone()
    near[:, 2] = p + 0.05  # one negative right next to the positive: only the swap sees it
    return [
        ("four random negatives", a, p, negatives, 1.0),
        ("one negative close to the positive", a, p, near, 0.5),
        ("a single negative (K = 1)", a, p, negatives[:, :1], 2.0),
    ]


def _triplet_hint(answer, a, p, negatives, margin) -> str:
    first = triplet_loss(a, p, negatives[:, 0], margin).item()
    if abs(answer - first) < 1e-4:
        return "You used only the first negative; δ⁻ is the smallest over all K of them."
    mean_over_k = torch.stack(
        [triplet_loss(a, p, negatives[:, k], margin) for k in range(negatives.shape[1])]
    ).mean()
    if abs(answer - mean_over_k.item()) < 1e-4:
        return (
            "You averaged K separate triplet losses; the hardest negative gives one δ⁻ per "
            "anchor: the minimum over the K negatives, then one hinge."
        )
    no_swap = (a.unsqueeze(1) - negatives).pow(2).sum(dim=2).amin(dim=1)
    d_pos = (a - p).pow(2).sum(dim=1)
    if abs(answer - torch.clamp(d_pos - no_swap + margin, min=0).mean().item()) < 1e-4:
        return "Keep the swap of eq. 2: the positive's distances to the negatives count too."
    return "Use squared Euclidean distances, broadcast (B, 1, d) against (B, K, d)."


def check_triplet_loss(triplet) -> bool:
    """Check ``triplet(anchor (B, d), positive (B, d), negatives (B, K, d), margin) -> scalar``:
    eq. 2 with δ⁻ the smallest distance of the anchor or the positive to any of the K
    negatives, the hinge averaged over the batch."""
    for description, a, p, negatives, margin in _triplets():
        answer = float(attempt(TRIPLET, triplet, a.clone(), p.clone(), negatives.clone(), margin))
        expected = hardest_negative_triplet(a, p, negatives, margin).item()
        if abs(answer - expected) > 1e-4 * max(1.0, abs(expected)):
            hint = _triplet_hint(answer, a, p, negatives, margin)
            fail(
                TRIPLET,
                f"for {description} you returned {answer:.4f}, expected {expected:.4f}. {hint}",
            )
    return passed(TRIPLET, "eq. 2 with the hardest of K negatives")


def check_compactness_loss(compactness) -> bool:
    """Check ``compactness(descriptors (B, d)) -> scalar``: eq. 3 in the original paper's
    reading, the correlations between descriptor *components* over the batch, absolute
    values summed off the diagonal."""
    generator = torch.Generator().manual_seed(4)
    base = torch.randn(8, 1, generator=generator)
    cases = [
        ("random descriptors", torch.randn(9, 5, generator=generator)),
        (
            "two copies of one component",
            torch.cat([base, base, torch.randn(8, 2, generator=generator)], dim=1),
        ),
        ("more components than patches", torch.randn(4, 6, generator=generator)),
    ]
    for description, x in cases:
        answer = float(attempt(COMPACTNESS, compactness, x.clone()))
        expected = compactness_loss(x, "dimensions").item()
        if abs(answer - expected) > 1e-4 * max(1.0, abs(expected)):
            hint = (
                "Centre each component (column) over the batch, scale each column to unit "
                "length, take the d × d matrix of dot products and sum |c_kl| for k ≠ l."
            )
            if abs(answer - compactness_loss(x, "patches").item()) < 1e-4:
                hint = (
                    "That is the chapter's reading, over the *patches* (B × B); this one "
                    "correlates the components (d × d)."
                )
            elif abs(answer - compactness_loss(x, "dimensions", absolute=False).item()) < 1e-4:
                hint = "Sum the absolute values |c_kl|: negative correlations are redundant too."
            fail(
                COMPACTNESS,
                f"for {description} you returned {answer:.4f}, expected {expected:.4f}. {hint}",
            )
    return passed(COMPACTNESS, "eq. 3 over the descriptor components")
