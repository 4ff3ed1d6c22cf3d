"""Checks for the exercises of chapter 2, *Measuring detectors*.

* :func:`check_region_overlap` — per-region overlap at one threshold (the building block of
  the PRO curve);
* :func:`check_dice` — the Dice score of a predicted mask.

Each check compares the reader's function with :mod:`stad_utils.metrics` on hand-made and
random cases and returns ``True`` or raises :class:`~stad_utils.exercises.ExerciseError`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from stad_utils import metrics
from stad_utils.exercises import attempt, fail, passed

__all__ = ["check_region_overlap", "check_dice", "region_overlap_cases", "dice_cases"]


# ----------------------------------------------------------------------------------------
# Region overlap
# ----------------------------------------------------------------------------------------


def region_overlap_cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(description, anomaly_map (H, W) float32, mask (H, W) uint8, threshold) test cases."""
    cases = []
    # Two regions of different sizes; one pixel scores exactly the threshold.
    score = np.zeros((8, 8), dtype=np.float32)
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[0:4, 0:4] = 1  # 16 pixels
    mask[6, 6] = 1  # 1 pixel
    score[0:2, 0:4] = 0.9  # 8 of 16 above
    score[2, 0] = 0.5  # exactly the threshold: counts
    score[6, 6] = 0.2  # the small region is missed
    score[7, 0:3] = 0.8  # false positives do not change overlaps
    cases.append(("a 16-pixel and a 1-pixel region, threshold 0.5", score, mask, 0.5))
    # A diagonal line: one 8-connected region (three 4-connected ones).
    score = np.zeros((6, 6), dtype=np.float32)
    mask = np.zeros((6, 6), dtype=np.uint8)
    for k in range(1, 4):
        mask[k, k] = 1
    mask[1, 5] = mask[2, 5] = 1  # and a 2-pixel vertical region
    score[1, 1] = score[1, 5] = 1.0
    cases.append(("a diagonal region (8-connected) and a 2-pixel region", score, mask, 0.5))
    # Random blobs.
    rng = np.random.default_rng(2)
    for i in range(3):
        score = rng.random((16, 16)).astype(np.float32)
        mask = (ndimage.gaussian_filter(rng.random((16, 16)), 1.5) > 0.55).astype(np.uint8)
        mask[0, 0] = 1
        cases.append((f"random case {i + 1}", score, mask, 0.5))
    return cases


def _reference_overlaps(score, mask, threshold) -> np.ndarray:
    return metrics.region_overlaps(score[None], mask[None], threshold)


def check_region_overlap(fn) -> bool:
    """Check ``fn(anomaly_map, mask, threshold) -> per-region overlaps``.

    ``anomaly_map`` (H, W) float, ``mask`` (H, W) in {0, 1}; the answer is a sequence with
    one overlap per 8-connected defect region: the fraction of the region's pixels whose
    score is ``>= threshold``. Any order of the regions is accepted.
    """
    exercise = "Exercise 2.1 · Per-region overlap"
    for description, score, mask, threshold in region_overlap_cases():
        answer = attempt(exercise, fn, score.copy(), mask.copy(), threshold)
        try:
            got = np.sort(np.asarray(answer, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            fail(exercise, f"return a list or array of numbers (one per region), got {answer!r}.")
        expected = np.sort(_reference_overlaps(score, mask, threshold))
        if got.size != expected.size:
            four = ndimage.label(mask)[1]
            hint = (
                "Pixels that touch only by a corner belong to the same region: label with "
                "scipy.ndimage.label(mask, structure=np.ones((3, 3)))."
                if got.size == four and four != expected.size
                else "Find the regions with scipy.ndimage.label (8-connected)."
            )
            fail(
                exercise,
                f"on {description} there are {expected.size} regions but you returned "
                f"{got.size} overlaps. {hint}",
            )
        if not np.allclose(got, expected, atol=1e-9):
            strict = np.sort(_reference_overlaps(score, mask, np.nextafter(threshold, np.inf)))
            hint = (
                "A pixel whose score equals the threshold counts as detected: use >=, not >."
                if np.allclose(got, strict, atol=1e-9)
                else "Each overlap is (pixels of the region with score >= threshold) divided "
                "by (pixels of that region), a number between 0 and 1."
            )
            fail(exercise, f"on {description} the overlaps differ. {hint}")
    return passed(exercise, f"{len(region_overlap_cases())} cases match")


# ----------------------------------------------------------------------------------------
# Dice
# ----------------------------------------------------------------------------------------


def dice_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(description, predicted (H, W) bool, target (H, W) bool) test cases."""
    predicted = np.zeros((3, 3), dtype=bool)
    target = np.zeros((3, 3), dtype=bool)
    predicted[0, 0:3] = True
    target[0, 1:3] = target[1, 1:3] = True
    rng = np.random.default_rng(3)
    cases = [
        ("3 predicted pixels, 4 true pixels, 2 shared", predicted, target),
        ("a perfect prediction", target, target.copy()),
        ("nothing predicted, something to find", np.zeros_like(target), target),
    ]
    for i in range(3):
        cases.append(
            (f"random case {i + 1}", rng.random((12, 12)) > 0.6, rng.random((12, 12)) > 0.7)
        )
    empty = np.zeros_like(target)
    cases.append(("both empty (a good image, nothing predicted)", empty, empty.copy()))
    return cases


def check_dice(fn) -> bool:
    """Check ``fn(predicted, target) -> Dice score`` (thesis §6.2).

    ``predicted`` and ``target`` (H, W) boolean masks. Dice = 2 |P ∩ G| / (|P| + |G|); when
    both masks are empty the answer must be 1.0 (a perfect prediction).
    """
    exercise = "Exercise 2.2 · Dice by hand"
    for description, predicted, target in dice_cases():
        expected = metrics.dice(predicted, target)
        try:
            got = attempt(exercise, fn, predicted.copy(), target.copy())
        except ZeroDivisionError:
            fail(exercise, f"on {description} your function divides by zero. {_EMPTY_HINT}")
        try:
            got = float(got)
        except (TypeError, ValueError):
            fail(exercise, f"return one number, got {got!r}.")
        if np.isnan(got):
            fail(exercise, f"on {description} you return NaN. {_EMPTY_HINT}")
        if not np.isclose(got, expected, atol=1e-9):
            union = np.count_nonzero(predicted | target)
            iou = np.count_nonzero(predicted & target) / union if union else 1.0
            hint = (
                "That is the intersection over union (Jaccard index); Dice divides twice the "
                "intersection by the sum of the two areas."
                if np.isclose(got, iou)
                else "Dice = 2 · |P ∩ G| / (|P| + |G|), with |·| the number of True pixels."
            )
            fail(
                exercise, f"on {description} you return {got:.4f}, expected {expected:.4f}. {hint}"
            )
    return passed(exercise, f"{len(dice_cases())} cases match")


_EMPTY_HINT = (
    "When both masks are empty, nothing was predicted and there was nothing to find: "
    "define the score as 1.0."
)
