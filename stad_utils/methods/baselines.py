"""Two feature-modelling baselines on a frozen pretrained backbone (thesis §3.4).

Neither trains anything: both describe every position of a feature map by the vector of
a pretrained CNN (the same backbone the student–teacher methods use as their teacher) and
model the good images' vectors directly.

* **Nearest neighbour** (PatchCore-like, :cite:`roth2022patchcore`): keep every training
  vector in a *memory bank*; a test vector's score is its ℓ2 distance to the closest one.
  PatchCore also subsamples the bank with a greedy coreset and reweights the image score;
  we keep the whole bank (our training sets are small) and skip the reweighting.
* **Per-position Gaussian** (PaDiM-like, :cite:`defard2020padim`): at each position fit a
  mean and a covariance over the training images; a test vector's score is its
  Mahalanobis distance. PaDiM also draws a random subset of the channels; we keep them all.

Both return one low-resolution score map per image, upsampled to the image's size with
:func:`upsample_maps` (bilinear, then a Gaussian blur, as both papers do).

Written out here rather than taken from a library (anomalib has both) because the book
shows their few lines, and because they must run on our :class:`FeatureExtractor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..backbones import FeatureExtractor
from ..threads import use_idle_cores

__all__ = [
    "patch_features",
    "memory_bank",
    "subsample_bank",
    "nearest_neighbour_distances",
    "GaussianPerPosition",
    "fit_gaussian_per_position",
    "mahalanobis_distances",
    "upsample_maps",
    "FeatureBaseline",
]


def _check_features(features: torch.Tensor, name: str = "features") -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.dim() != 4:
        shape = tuple(getattr(features, "shape", ()))
        raise ValueError(f"{name} must be a (N, C, h, w) tensor, got shape {shape}.")
    return features


@torch.no_grad()
def patch_features(
    extractor: FeatureExtractor,
    images: torch.Tensor,
    layers: Sequence[str] = ("layer2", "layer3"),
    neighbourhood: int = 3,
    batch_size: int = 16,
) -> torch.Tensor:
    """One vector per position: ``images (N, 3, H, W)`` in [0, 1] → ``(N, C, h, w)``.

    The ``layers`` of the frozen ``extractor`` are upsampled (bilinear) to the grid of the
    first one and concatenated along the channels (C = the sum of their channels), as in
    PaDiM and PatchCore. With ``neighbourhood`` > 1 each vector is first averaged over a
    ``neighbourhood × neighbourhood`` window of its layer (PatchCore's local aggregation),
    so a position also sees its neighbours.
    """
    missing = [layer for layer in layers if layer not in extractor.layers]
    if missing:
        raise ValueError(
            f"The extractor returns {list(extractor.layers)}, not {missing}; build it with "
            f"those layers (e.g. backbones.teacher(name, layers={list(layers)}))."
        )
    if neighbourhood < 1 or neighbourhood % 2 == 0:
        raise ValueError(f"neighbourhood must be an odd number ≥ 1, got {neighbourhood}.")
    device = next(extractor.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        pyramid = extractor(images[start : start + batch_size].to(device))
        maps = [pyramid[layer] for layer in layers]
        if neighbourhood > 1:
            pad = neighbourhood // 2
            maps = [
                F.avg_pool2d(m, neighbourhood, stride=1, padding=pad, count_include_pad=False)
                for m in maps
            ]
        grid = maps[0].shape[-2:]
        maps = [maps[0]] + [
            F.interpolate(m, size=grid, mode="bilinear", align_corners=False) for m in maps[1:]
        ]
        out.append(torch.cat(maps, dim=1).cpu())
    return torch.cat(out)


def memory_bank(features: torch.Tensor) -> torch.Tensor:
    """Every training vector as one row: ``(N, C, h, w)`` → ``(N·h·w, C)``."""
    features = _check_features(features)
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


def subsample_bank(bank: torch.Tensor, max_vectors: int, seed: int = 0) -> torch.Tensor:
    """At most ``max_vectors`` rows of ``bank``, drawn at random without replacement (a
    crude stand-in for PatchCore's greedy coreset, for large training sets)."""
    if max_vectors < 1:
        raise ValueError(f"max_vectors must be at least 1, got {max_vectors}.")
    if len(bank) <= max_vectors:
        return bank
    generator = torch.Generator().manual_seed(seed)
    return bank[torch.randperm(len(bank), generator=generator)[:max_vectors].to(bank.device)]


def nearest_neighbour_distances(
    features: torch.Tensor, bank: torch.Tensor, chunk: int = 2048
) -> torch.Tensor:
    """ℓ2 distance from every test vector to its nearest neighbour in ``bank``.

    ``features (N, C, h, w)``, ``bank (M, C)`` → ``(N, h, w)``. The distances are computed
    ``chunk`` test vectors at a time, so memory stays at ``chunk × M`` numbers.
    """
    features = _check_features(features)
    if bank.dim() != 2 or bank.shape[1] != features.shape[1]:
        raise ValueError(
            f"bank must be (M, {features.shape[1]}) to match the features' channels, "
            f"got {tuple(bank.shape)}."
        )
    n, _, h, w = features.shape
    queries = memory_bank(features).to(device=bank.device, dtype=bank.dtype)
    nearest = torch.cat(
        [torch.cdist(part, bank).min(dim=1).values for part in queries.split(chunk)]
    )
    return nearest.reshape(n, h, w).cpu()


@dataclass
class GaussianPerPosition:
    """A Gaussian per position: ``mean (C, h, w)`` and ``precision (h, w, C, C)`` (the
    inverse of the regularized covariance)."""

    mean: torch.Tensor
    precision: torch.Tensor


def fit_gaussian_per_position(features: torch.Tensor, epsilon: float = 0.01) -> GaussianPerPosition:
    """Mean and covariance of the training vectors at each position (PaDiM).

    ``features (N, C, h, w)`` with N ≥ 2. The covariance is the unbiased one plus
    ``epsilon · I`` (PaDiM's regularization), which keeps it invertible when there are
    fewer images than channels.
    """
    features = _check_features(features).double()
    n = features.shape[0]
    if n < 2:
        raise ValueError(f"A covariance needs at least 2 training images, got {n}.")
    mean = features.mean(dim=0)  # (C, h, w)
    centred = (features - mean).permute(2, 3, 0, 1)  # (h, w, N, C)
    covariance = centred.transpose(-1, -2) @ centred / (n - 1)  # (h, w, C, C)
    covariance += epsilon * torch.eye(features.shape[1], dtype=covariance.dtype)
    # NumPy's batched inverse: torch.linalg.inv on a 4-d float64 batch failed with MKL's
    # "DLASWP" error on this CPU (torch 2.x).
    precision = torch.from_numpy(np.linalg.inv(covariance.numpy()))
    return GaussianPerPosition(mean=mean, precision=precision)


def mahalanobis_distances(features: torch.Tensor, gaussian: GaussianPerPosition) -> torch.Tensor:
    """Mahalanobis distance of each vector to its position's Gaussian: ``(N, C, h, w)`` →
    ``(N, h, w)``, ``sqrt((x − μ)ᵀ Σ⁻¹ (x − μ))``."""
    features = _check_features(features)
    if features.shape[1:] != gaussian.mean.shape:
        raise ValueError(
            f"features {tuple(features.shape[1:])} per image do not match the fitted "
            f"Gaussian's {tuple(gaussian.mean.shape)}: use the same backbone, layers and size."
        )
    delta = (features.double() - gaussian.mean).permute(0, 2, 3, 1)  # (N, h, w, C)
    squared = torch.einsum("nhwc,hwcd,nhwd->nhw", delta, gaussian.precision, delta)
    return squared.clamp_min(0).sqrt().float()


def upsample_maps(
    scores: torch.Tensor, size: int | tuple[int, int], sigma: float = 4.0
) -> np.ndarray:
    """Low-resolution score maps ``(N, h, w)`` → anomaly maps ``(N, H, W)`` (NumPy float32):
    bilinear upsampling, then a Gaussian blur of standard deviation ``sigma`` pixels
    (0 = none) — PaDiM's and PatchCore's choice."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    up = F.interpolate(scores[:, None].float(), size=size, mode="bilinear", align_corners=False)
    maps = up[:, 0].numpy()
    if sigma > 0:
        maps = np.stack([ndimage.gaussian_filter(m, sigma=sigma) for m in maps])
    return maps.astype(np.float32)


class FeatureBaseline:
    """Fit on good images, score test images: ``kind`` is ``"nearest_neighbour"`` or
    ``"gaussian"``. ``fit(images)`` and ``anomaly_maps(images)`` take ``(N, 3, H, W)`` in
    [0, 1]; the maps are ``(N, H, W)`` NumPy arrays for :func:`stad_utils.metrics.evaluate`.
    ``max_bank`` caps the nearest neighbour's memory bank by random subsampling (``None``:
    keep every training vector); the bank lives on the extractor's device.
    """

    KINDS = ("nearest_neighbour", "gaussian")

    def __init__(
        self,
        extractor: FeatureExtractor,
        kind: str = "nearest_neighbour",
        layers: Sequence[str] = ("layer2", "layer3"),
        sigma: float = 4.0,
        max_bank: int | None = None,
        seed: int = 0,
    ):
        if kind not in self.KINDS:
            raise ValueError(f"Unknown baseline kind {kind!r}: use one of {self.KINDS}.")
        self.extractor, self.kind, self.layers, self.sigma = extractor, kind, tuple(layers), sigma
        self.max_bank, self.seed = max_bank, seed
        self.bank: torch.Tensor | None = None
        self.gaussian: GaussianPerPosition | None = None

    def _device(self) -> torch.device:
        return next(self.extractor.parameters()).device

    def fit(self, images: torch.Tensor) -> FeatureBaseline:
        use_idle_cores(self._device())
        features = patch_features(self.extractor, images, self.layers)
        if self.kind == "nearest_neighbour":
            bank = memory_bank(features)
            if self.max_bank is not None:
                bank = subsample_bank(bank, self.max_bank, self.seed)
            self.bank = bank.to(self._device())
        else:
            self.gaussian = fit_gaussian_per_position(features)
        return self

    def patch_scores(self, images: torch.Tensor) -> torch.Tensor:
        """The low-resolution scores ``(N, h, w)`` before upsampling."""
        if self.bank is None and self.gaussian is None:
            raise RuntimeError("Call fit(good_images) before scoring images.")
        use_idle_cores(self._device())
        features = patch_features(self.extractor, images, self.layers)
        if self.kind == "nearest_neighbour":
            return nearest_neighbour_distances(features, self.bank)
        return mahalanobis_distances(features, self.gaussian)

    def anomaly_maps(self, images: torch.Tensor) -> np.ndarray:
        return upsample_maps(self.patch_scores(images), images.shape[-2:], self.sigma)
