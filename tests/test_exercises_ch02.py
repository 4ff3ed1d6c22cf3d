"""The checks of chapter 2's exercises accept right answers and explain wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter02 import check_dice, check_region_overlap


def overlaps_right(anomaly_map, mask, threshold):
    regions, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [(anomaly_map[regions == k] >= threshold).mean() for k in range(1, n + 1)]


def overlaps_reversed(anomaly_map, mask, threshold):
    return overlaps_right(anomaly_map, mask, threshold)[::-1]  # any order is fine


def overlaps_four_connected(anomaly_map, mask, threshold):
    regions, n = ndimage.label(mask)
    return [(anomaly_map[regions == k] >= threshold).mean() for k in range(1, n + 1)]


def overlaps_strict(anomaly_map, mask, threshold):
    regions, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [(anomaly_map[regions == k] > threshold).mean() for k in range(1, n + 1)]


def overlaps_counts(anomaly_map, mask, threshold):
    regions, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [(anomaly_map[regions == k] >= threshold).sum() for k in range(1, n + 1)]


def dice_right(predicted, target):
    total = predicted.sum() + target.sum()
    return 1.0 if total == 0 else 2 * (predicted & target).sum() / total


def dice_iou(predicted, target):
    union = (predicted | target).sum()
    return 1.0 if union == 0 else (predicted & target).sum() / union


def dice_no_empty_case(predicted, target):
    return 2 * (predicted & target).sum() / (predicted.sum() + target.sum())


def stub(*args):
    ### BEGIN SOLUTION
    raise NotImplementedError("write your solution here")
    ### END SOLUTION


@pytest.mark.parametrize("answer", [overlaps_right, overlaps_reversed])
def test_region_overlap_accepts_right_answers(answer, capsys):
    assert check_region_overlap(answer) is True
    assert "✔ Exercise 2.1 · Per-region overlap: correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (overlaps_four_connected, "touch only by a corner"),
        (overlaps_strict, "use >=, not >"),
        (overlaps_counts, "divided by \\(pixels of that region\\)"),
        (lambda *args: "nonsense", "return a list or array of numbers"),
    ],
)
def test_region_overlap_explains_wrong_answers(answer, hint):
    with pytest.raises(
        ExerciseError, match="✘ Exercise 2.1 · Per-region overlap: not yet. .*" + hint
    ):
        check_region_overlap(answer)


def test_dice_accepts_the_right_answer(capsys):
    assert check_dice(dice_right) is True
    assert "✔ Exercise 2.2 · Dice by hand: correct" in capsys.readouterr().out


def test_dice_explains_wrong_answers():
    with pytest.raises(ExerciseError, match="intersection over union"):
        check_dice(dice_iou)
    with np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(ExerciseError, match="both empty.*define the score as 1.0"):
            check_dice(dice_no_empty_case)
    with pytest.raises(ExerciseError, match="divides by zero.*1.0"):
        check_dice(lambda p, t: 2 * int((p & t).sum()) / int(p.sum() + t.sum()))


@pytest.mark.parametrize("check", [check_region_overlap, check_dice])
def test_stub_gets_the_friendly_message(check):
    with pytest.raises(ExerciseError, match="still raises NotImplementedError") as info:
        check(stub)
    assert isinstance(info.value.__cause__, NotImplementedError)
