"""Checks for chapter 1, "The task and its data"."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import attempt, fail, passed

EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


def _reference_count(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, structure=EIGHT_CONNECTED)[1])


def _cases() -> list[tuple[str, np.ndarray]]:
    empty = np.zeros((8, 8), bool)
    two_blocks = empty.copy()
    two_blocks[1:3, 1:3] = True
    two_blocks[5:7, 4:8] = True
    diagonal = np.eye(6, dtype=bool)  # touching only at corners: ONE 8-connected region
    checker = np.indices((6, 6)).sum(0) % 2 == 0  # one region under 8-connectivity
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[3:6, 3:6] = False
    rng = np.random.default_rng(1)
    random_masks = [rng.random((16, 16)) > 0.8 for _ in range(5)]
    return [
        ("an empty mask", empty),
        ("two separate blocks", two_blocks),
        ("a diagonal line (pixels touching only at their corners)", diagonal),
        ("a checkerboard", checker),
        ("a ring", ring),
        *[(f"random mask #{i}", m) for i, m in enumerate(random_masks)],
    ]


def check_count_regions(count_regions) -> bool:
    """Check ``count_regions(mask: (H, W) bool array) -> int`` (8-connected regions)."""
    name = "Exercise 1.1 · Count the defect regions"
    for description, mask in _cases():
        answer = attempt(name, count_regions, mask.copy())
        expected = _reference_count(mask)
        if int(answer) != expected:
            hint = ""
            if int(answer) == int(ndimage.label(mask)[1]) != expected:
                hint = (
                    " Your count matches 4-connectivity; MVTec AD's regions are "
                    "8-connected (diagonal neighbours belong to the same region)."
                )
            fail(name, f"for {description} you returned {answer}, expected {expected}.{hint}")
    return passed(name, f"{len(_cases())} masks counted right")
