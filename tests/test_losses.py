"""The teacher's losses (seed 000 eqs. 1–4) and the student's regression loss (eq. 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stad_utils.losses import (
    compactness_loss,
    correlation_matrix,
    distillation_loss,
    student_regression_loss,
    teacher_loss,
    triplet_loss,
)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_distillation_is_mean_squared_distance():
    decoded = t([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = t([[1.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    # per patch: 2² = 4 and 1 + 1 + 1 = 3 → mean 3.5
    assert distillation_loss(decoded, target).item() == pytest.approx(3.5)
    assert distillation_loss(decoded[..., None, None], target[..., None, None]).item() == 3.5
    with pytest.raises(ValueError, match="Shapes differ"):
        distillation_loss(decoded, target[:, :2])


def test_triplet_min_picks_positive_negative_distance():
    anchor, positive, negative = t([[0.0, 0.0]]), t([[1.0, 0.0]]), t([[2.0, 0.0]])
    # δ⁺ = 1; ‖a − n‖² = 4, ‖p⁺ − n‖² = 1 → δ⁻ = 1 → max(0, 1 − 1 + 0.5) = 0.5
    assert triplet_loss(anchor, positive, negative, 0.5).item() == pytest.approx(0.5)
    # the thesis' eq. 4.9 (no swap) uses 4: max(0, 1 − 4 + 0.5) = 0
    assert triplet_loss(anchor, positive, negative, 0.5, swap=False).item() == 0.0


def test_triplet_hinge_and_margin():
    anchor, positive, negative = t([[0.0, 0.0]]), t([[0.1, 0.0]]), t([[5.0, 0.0]])
    # δ⁺ = 0.01, δ⁻ = min(25, 24.01) = 24.01
    assert triplet_loss(anchor, positive, negative, 1.0).item() == 0.0  # hinge at zero
    assert triplet_loss(anchor, positive, negative, 30.0).item() == pytest.approx(6.0)
    # batch mean: one triplet with loss 6, one with loss 0
    two = triplet_loss(
        torch.cat([anchor, anchor]),
        torch.cat([positive, positive]),
        t([[5.0, 0.0], [100.0, 0.0]]),
        30.0,
    )
    assert two.item() == pytest.approx(3.0)


def test_compactness_patches_known_matrices():
    v = t([1.0, 3.0, 2.0, 5.0])
    correlated = torch.stack([v, 2 * v + 1, 0.5 * v - 3])  # positive affine copies
    assert torch.allclose(correlation_matrix(correlated), torch.ones(3, 3, dtype=torch.float64))
    assert compactness_loss(correlated).item() == pytest.approx(6.0)  # B(B − 1) ones
    assert compactness_loss(correlated, reduction="mean").item() == pytest.approx(1.0)
    uncorrelated = t([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])  # centred, orthogonal
    assert compactness_loss(uncorrelated).item() == pytest.approx(0.0, abs=1e-12)
    anti = torch.stack([v, -v])
    assert compactness_loss(anti).item() == pytest.approx(2.0)
    assert compactness_loss(anti, absolute=False).item() == pytest.approx(-2.0)


def test_compactness_dimensions_known_matrices():
    base = t([1.0, 2.0, 3.0, 4.0])
    correlated = torch.stack([base, 2 * base], dim=1)  # (B=4, d=2), columns correlated
    assert correlation_matrix(correlated, "dimensions").shape == (2, 2)
    assert compactness_loss(correlated, "dimensions").item() == pytest.approx(2.0)
    # the same descriptors read over patches: rows (1, 2), (2, 4), ... are all correlated
    assert compactness_loss(correlated, "patches").item() == pytest.approx(12.0)
    anti = torch.stack([base, -base], dim=1)
    assert compactness_loss(anti, "dimensions", absolute=False).item() == pytest.approx(-2.0)
    uncorrelated = t([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    assert compactness_loss(uncorrelated, "dimensions").item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("over", ["patches", "dimensions"])
def test_compactness_random_against_numpy(over):
    x = np.random.default_rng(0).normal(size=(16, 8))
    expected = np.corrcoef(x) if over == "patches" else np.corrcoef(x.T)
    c = correlation_matrix(torch.from_numpy(x), over).numpy()
    assert c.shape == expected.shape
    np.testing.assert_allclose(c, expected, atol=1e-10)
    off = ~np.eye(len(expected), dtype=bool)
    loss = compactness_loss(torch.from_numpy(x), over).item()
    assert loss == pytest.approx(np.abs(expected[off]).sum())
    signed = compactness_loss(torch.from_numpy(x), over, absolute=False).item()
    assert signed == pytest.approx(expected[off].sum())


def test_compactness_gradient_is_finite_for_constant_descriptors():
    x = torch.ones(4, 8, requires_grad=True)
    loss = compactness_loss(x) + compactness_loss(x, "dimensions")
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="over must be"):
        compactness_loss(torch.rand(4, 8), over="channels")


def test_teacher_loss_weights_and_parts():
    torch.manual_seed(0)
    anchor, positive, negative = torch.randn(3, 6, 16).unbind(0)
    decoded, target = torch.randn(2, 6, 32).unbind(0)
    parts = teacher_loss(
        anchor,
        decoded=decoded,
        target=target,
        positive=positive,
        negative=negative,
        margin=2.0,
        lambda_k=2.0,
        lambda_m=0.5,
        lambda_c=0.1,
    )
    l_k = distillation_loss(decoded, target)
    l_m = triplet_loss(anchor, positive, negative, 2.0)
    l_c = compactness_loss(anchor)
    assert torch.allclose(parts.distillation, l_k) and torch.allclose(parts.metric, l_m)
    assert torch.allclose(parts.compactness, l_c)
    assert torch.allclose(parts.total, 2.0 * l_k + 0.5 * l_m + 0.1 * l_c)
    assert l_m > 0 and l_c > 0  # every part counts in this case
    # a zero weight needs no inputs and reports 0
    only_c = teacher_loss(anchor, lambda_k=0.0, lambda_m=0.0, lambda_c=3.0)
    assert only_c.distillation.item() == only_c.metric.item() == 0.0
    assert torch.allclose(only_c.total, 3.0 * l_c)
    with pytest.raises(ValueError, match="needs decoded and target"):
        teacher_loss(anchor, positive=positive, negative=negative)


def test_student_regression_loss():
    mean, std = t([1.0, -1.0]), t([2.0, 0.5])
    teacher = torch.randn(2, 2, 3, 4, dtype=torch.float64)
    normalized = (teacher - mean.view(1, 2, 1, 1)) / std.view(1, 2, 1, 1)
    assert student_regression_loss(normalized, teacher, mean, std).item() == pytest.approx(0.0)
    # off by 1 in channel 0 and by 2 in channel 1 at every pixel: 1 + 4 = 5
    shifted = normalized + t([1.0, 2.0]).view(1, 2, 1, 1)
    assert student_regression_loss(shifted, teacher, mean, std).item() == pytest.approx(5.0)
