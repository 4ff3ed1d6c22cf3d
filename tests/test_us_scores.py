"""Uninformed Students' score, eqs. 5–8, against hand-computed cases."""

import pytest
import torch

from stad_utils.losses import student_regression_loss
from stad_utils.methods.us_scores import (
    ScoreStatistics,
    descriptor_statistics,
    normalize_teacher,
    predictive_variance,
    regression_error,
    standardized_score,
)


def _map(*vectors):
    """(1, d, 1, len(vectors)) map from plain d-vectors (one pixel each)."""
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, len(vectors[0]), 1, -1)


def test_descriptor_statistics_per_component():
    teacher = _map((1.0, 10.0), (3.0, 10.0), (5.0, 10.0))
    mean, std = descriptor_statistics(teacher)
    assert mean.tolist() == pytest.approx([3.0, 10.0])
    # population std of (1, 3, 5) = sqrt(8/3); a constant component is floored, not 0
    assert std[0].item() == pytest.approx((8 / 3) ** 0.5)
    assert std[1].item() == pytest.approx(1e-6)
    normalized = normalize_teacher(teacher, mean, std)
    assert normalized[0, 0, 0].tolist() == pytest.approx([-(1.5**0.5), 0.0, 1.5**0.5], rel=1e-5)


def test_regression_error_and_variance_by_hand():
    # Two students at one pixel: (1, 0) and (3, 0); their mean is (2, 0).
    s1, s2 = _map((1.0, 0.0)), _map((3.0, 0.0))
    target = _map((2.0, 1.0))
    assert regression_error([s1, s2], target).item() == pytest.approx(1.0)  # ‖(0, −1)‖²
    # eq. 7: (1 + 9)/2 − 4 = 1 = mean squared distance to the mean
    assert predictive_variance([s1, s2]).item() == pytest.approx(1.0)
    assert predictive_variance([s1, s1, s1]).item() == pytest.approx(0.0)


def test_variance_is_the_mean_squared_distance_to_the_mean():
    generator = torch.Generator().manual_seed(0)
    students = [torch.randn(2, 5, 3, 4, generator=generator) for _ in range(4)]
    stack = torch.stack(students)
    direct = (stack - stack.mean(0)).pow(2).sum(2).mean(0)
    assert torch.allclose(predictive_variance(students), direct, atol=1e-5)


def test_one_students_regression_loss_is_its_mean_error():
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 4, 3, 3, generator=generator), torch.randn(2, 4, 3, 3)
    mean, std = torch.zeros(4), torch.ones(4) * 2
    loss = student_regression_loss(student, teacher, mean, std)
    error = regression_error([student], normalize_teacher(teacher, mean, std))
    assert loss.item() == pytest.approx(error.mean().item(), rel=1e-6)


def test_standardized_score_eq8():
    stats = ScoreStatistics.from_maps(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 4.0]))
    # e: mean 2, sample std √2; v: mean 2, sample std √8
    assert stats.error_mean == pytest.approx(2.0) and stats.variance_std == pytest.approx(8**0.5)
    score = standardized_score(torch.tensor([4.0]), torch.tensor([2.0]), stats)
    assert score.item() == pytest.approx(2 / 2**0.5)
    with pytest.raises(ValueError, match="at least two pixels"):
        ScoreStatistics.from_maps(torch.tensor([1.0]), torch.tensor([1.0]))


def test_descriptor_statistics_of_batches_equal_those_of_the_whole():
    generator = torch.Generator().manual_seed(4)
    maps = 1000.0 + torch.randn(7, 3, 5, 4, generator=generator)  # a large offset
    whole = descriptor_statistics(maps)
    batched = descriptor_statistics(iter([maps[:2], maps[2:3], maps[3:]]))
    flat = maps.double().transpose(0, 1).reshape(3, -1)
    assert torch.allclose(whole[0].double(), flat.mean(1), rtol=1e-6)
    assert torch.allclose(whole[1].double(), flat.std(1, unbiased=False), rtol=1e-4)
    assert torch.allclose(batched[0], whole[0]) and torch.allclose(batched[1], whole[1], rtol=1e-4)
    with pytest.raises(ValueError, match="at least one"):
        descriptor_statistics(iter([]))
