"""The feature-modelling baselines (PatchCore-like nearest neighbour, PaDiM-like Gaussian)
on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stad_utils.methods import baselines as B


def grid(vectors) -> torch.Tensor:
    """Vectors (C,) laid out as one image of h = 1, w = len(vectors): (1, C, 1, w)."""
    return torch.tensor(vectors, dtype=torch.float32).T[None, :, None, :]


class FakeExtractor(nn.Module):
    """Stands in for a FeatureExtractor: 'layer2' = 8×8 average pooling of the RGB image
    (3 channels, stride 8), 'layer3' = 16×16 pooling of its mean (1 channel, stride 16)."""

    layers = ("layer2", "layer3")

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, images):
        return {
            "layer2": F.avg_pool2d(images, 8),
            "layer3": F.avg_pool2d(images.mean(dim=1, keepdim=True), 16),
        }


def test_nearest_neighbour_distances_by_hand():
    bank = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    features = grid([[0.0, 1.0], [3.0, 0.0], [6.0, 8.0], [3.0, 4.0]])
    # (0, 1) is 1 from (0, 0); (3, 0) is 3 from (0, 0) and 4 from (3, 4); (6, 8) is 5 from
    # (3, 4); (3, 4) is in the bank.
    expected = torch.tensor([[[1.0, 3.0, 5.0, 0.0]]])
    assert torch.allclose(B.nearest_neighbour_distances(features, bank), expected)
    assert torch.allclose(B.nearest_neighbour_distances(features, bank, chunk=1), expected)


def test_memory_bank_has_one_row_per_image_and_position():
    features = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    bank = B.memory_bank(features)
    assert bank.shape == (8, 3)
    assert torch.equal(bank[5], features[1, :, 0, 1])  # image 1, row 0, column 1


def test_subsample_bank_keeps_distinct_rows_of_the_bank():
    bank = torch.arange(40, dtype=torch.float32).reshape(20, 2)
    small = B.subsample_bank(bank, 5, seed=3)
    assert small.shape == (5, 2)
    rows = {tuple(row) for row in bank.tolist()}
    assert len({tuple(row) for row in small.tolist()}) == 5
    assert all(tuple(row) in rows for row in small.tolist())
    assert torch.equal(small, B.subsample_bank(bank, 5, seed=3))  # repeatable
    assert B.subsample_bank(bank, 50) is bank
    with pytest.raises(ValueError, match="at least 1"):
        B.subsample_bank(bank, 0)


def test_baseline_caps_its_memory_bank():
    good = torch.rand(4, 3, 32, 32)
    baseline = B.FeatureBaseline(FakeExtractor(), max_bank=10).fit(good)
    assert baseline.bank.shape == (10, 4)  # 4 images × 4 × 4 positions, capped at 10


def test_gaussian_and_mahalanobis_by_hand():
    # Four training images, one position, two channels: mean (2, 0); unbiased variances
    # 2/3 and 8/3, no covariance. (3, 2) is then sqrt(1 / (2/3) + 4 / (8/3)) = sqrt(3) away.
    train = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0], [2.0, -2.0]])[:, :, None, None]
    gaussian = B.fit_gaussian_per_position(train, epsilon=0.0)
    assert torch.allclose(gaussian.mean[:, 0, 0].float(), torch.tensor([2.0, 0.0]))
    covariance = torch.linalg.inv(gaussian.precision[0, 0])
    assert torch.allclose(
        covariance, torch.tensor([[2 / 3, 0.0], [0.0, 8 / 3]], dtype=torch.float64)
    )
    test = torch.tensor([[3.0, 2.0], [2.0, 0.0]])[:, :, None, None]
    distances = B.mahalanobis_distances(test, gaussian)
    assert distances[:, 0, 0].tolist() == pytest.approx([math.sqrt(3), 0.0], abs=1e-6)


def test_each_position_has_its_own_gaussian():
    # Position 0 sees values around 0, position 1 around 10 (one channel).
    train = torch.tensor([[[[-1.0, 9.0]]], [[[1.0, 11.0]]], [[[0.0, 10.0]]]])  # (3, 1, 1, 2)
    gaussian = B.fit_gaussian_per_position(train, epsilon=0.0)  # variance 1 at both
    distances = B.mahalanobis_distances(torch.tensor([[[[10.0, 10.0]]]]), gaussian)
    assert distances[0, 0].tolist() == pytest.approx([10.0, 0.0], abs=1e-6)


def test_regularization_keeps_few_images_invertible():
    train = torch.randn(3, 8, 2, 2)  # 3 images, 8 channels: a singular covariance
    gaussian = B.fit_gaussian_per_position(train)  # + 0.01 I
    assert torch.isfinite(B.mahalanobis_distances(train, gaussian)).all()


def test_patch_features_concatenate_layers_on_the_first_grid():
    images = torch.rand(5, 3, 32, 32)
    features = B.patch_features(FakeExtractor(), images, neighbourhood=1, batch_size=2)
    assert features.shape == (5, 3 + 1, 4, 4)
    assert torch.allclose(features[:, :3], F.avg_pool2d(images, 8))
    # layer3 (2×2) upsampled bilinearly to 4×4 keeps its mean
    layer3 = F.avg_pool2d(images.mean(dim=1, keepdim=True), 16)
    assert torch.allclose(features[:, 3].mean(dim=(1, 2)), layer3.mean(dim=(1, 2, 3)), atol=1e-6)
    smoothed = B.patch_features(FakeExtractor(), images, neighbourhood=3)
    inner = F.avg_pool2d(F.avg_pool2d(images, 8), 3, stride=1)  # 3×3 means, no padding
    assert torch.allclose(smoothed[:, :3, 1:-1, 1:-1], inner, atol=1e-6)


def test_upsample_maps_keeps_constants_and_sizes():
    scores = torch.full((2, 4, 4), 7.0)
    maps = B.upsample_maps(scores, 32, sigma=2.0)
    assert maps.shape == (2, 32, 32) and maps.dtype == np.float32
    assert np.allclose(maps, 7.0)


@pytest.mark.parametrize("kind", B.FeatureBaseline.KINDS)
def test_baseline_finds_a_bright_square(kind):
    generator = torch.Generator().manual_seed(0)
    good = 0.5 + 0.05 * torch.rand(12, 3, 64, 64, generator=generator)
    test = 0.5 + 0.05 * torch.rand(2, 3, 64, 64, generator=generator)
    test[1, :, 40:56, 8:24] = 1.0  # a defect in the lower left
    baseline = B.FeatureBaseline(FakeExtractor(), kind=kind, sigma=1.0).fit(good)
    maps = baseline.anomaly_maps(test)
    assert maps.shape == (2, 64, 64)
    row, column = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert 36 <= row < 60 and 4 <= column < 28
    assert maps[1].max() > 3 * maps[0].max()


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="Unknown baseline kind"):
        B.FeatureBaseline(FakeExtractor(), kind="knn")
    with pytest.raises(RuntimeError, match="Call fit"):
        B.FeatureBaseline(FakeExtractor()).patch_scores(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"not \['layer1'\]"):
        B.patch_features(FakeExtractor(), torch.rand(1, 3, 32, 32), layers=("layer1",))
    with pytest.raises(ValueError, match="odd number"):
        B.patch_features(FakeExtractor(), torch.rand(1, 3, 32, 32), neighbourhood=2)
    with pytest.raises(ValueError, match=r"bank must be \(M, 2\)"):
        B.nearest_neighbour_distances(grid([[0.0, 1.0]]), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        B.memory_bank(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="at least 2 training images"):
        B.fit_gaussian_per_position(torch.zeros(1, 2, 2, 2))
    gaussian = B.fit_gaussian_per_position(torch.rand(3, 2, 2, 2))
    with pytest.raises(ValueError, match="do not match the fitted"):
        B.mahalanobis_distances(torch.rand(1, 2, 4, 4), gaussian)
