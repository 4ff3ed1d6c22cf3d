"""The anomaly score of Uninformed Students (seed 000 eqs. 5–8; thesis eqs. 4.12–4.14).

Pure functions on dense descriptor maps, the building blocks of the Uninformed Students
method (issue "Uninformed Students, part 2"): the teacher's normalization, the ensemble's
regression error and predictive variance, and their standardized sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


def descriptor_statistics(
    teacher_maps: torch.Tensor | Iterable[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-component mean μ and standard deviation σ of the teacher's descriptors
    ``(N, d, H, W)`` over all pixels of all (good training) images — the μ and diag(σ) of
    eq. 5. Returns two ``(d,)`` tensors; σ is floored at 1e-6 so no component divides by 0.

    ``teacher_maps`` may also be an iterable of such batches (a whole training set does
    not fit in memory at once). Each batch's mean and sum of squared deviations are taken
    on its device in float32 (Apple MPS has no float64) and merged on the CPU in float64
    with Chan et al.'s pairwise update, which stays exact where E[x²] − E[x]² would not.
    The returned tensors are on the device of the maps.
    """
    batches = [teacher_maps] if isinstance(teacher_maps, torch.Tensor) else teacher_maps
    count, mean, squares, device = 0, None, None, None
    for maps in batches:
        flat = maps.detach().float().transpose(0, 1).reshape(maps.shape[1], -1)
        n, device = flat.shape[1], maps.device
        batch_mean = flat.mean(dim=1)
        batch_squares = (flat - batch_mean[:, None]).pow(2).sum(dim=1).cpu().double()
        batch_mean = batch_mean.cpu().double()
        if mean is None:
            count, mean, squares = n, batch_mean, batch_squares
            continue
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        squares = squares + batch_squares + delta.pow(2) * (count * n / total)
        count = total
    if mean is None:
        raise ValueError("Descriptor statistics need at least one descriptor map.")
    std = (squares / count).sqrt().clamp_min(1e-6)
    return mean.float().to(device), std.float().to(device)


def normalize_teacher(teacher: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
    """``(y^T − μ) diag(σ)⁻¹`` of eqs. 5–6 for descriptor maps ``(B, d, H, W)``."""
    return (teacher - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def regression_error(students: Sequence[torch.Tensor], teacher_normalized: torch.Tensor):
    """Eq. 6: ``e = ‖μ − (y^T − μ_T) diag(σ)⁻¹‖²`` with μ the students' mean prediction.

    ``students``: M maps ``(B, d, H, W)``; ``teacher_normalized`` ``(B, d, H, W)``.
    Returns ``(B, H, W)``.
    """
    mean = torch.stack(list(students)).mean(dim=0)
    return (mean - teacher_normalized).pow(2).sum(dim=1)


def predictive_variance(students: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 7: ``v = 1/M Σ_i ‖μ^{S_i}‖² − ‖μ‖²``, the ensemble's predictive variance.

    It equals the mean squared distance of the students' predictions to their mean (so
    it is ≥ 0). ``students``: M maps ``(B, d, H, W)`` → ``(B, H, W)``.
    """
    stack = torch.stack(list(students))
    return stack.pow(2).sum(dim=2).mean(dim=0) - stack.mean(dim=0).pow(2).sum(dim=1)


@dataclass(frozen=True)
class ScoreStatistics:
    """e_μ, e_σ, v_μ, v_σ of eq. 8: the mean and standard deviation of the regression
    error and of the predictive variance over the pixels of good *validation* images."""

    error_mean: float
    error_std: float
    variance_mean: float
    variance_std: float

    @classmethod
    def from_maps(cls, error: torch.Tensor, variance: torch.Tensor) -> ScoreStatistics:
        """From e and v maps of validation images (any shape)."""
        if error.numel() < 2 or variance.numel() < 2:
            raise ValueError("Score statistics need the maps of at least two pixels.")
        e, v = error.double(), variance.double()
        return cls(
            e.mean().item(), max(e.std().item(), 1e-12), v.mean().item(), max(v.std().item(), 1e-12)
        )


def standardized_score(error: torch.Tensor, variance: torch.Tensor, stats: ScoreStatistics):
    """Eq. 8: ``(e − e_μ)/e_σ + (v − v_μ)/v_σ``, element-wise (any shape)."""
    return (error - stats.error_mean) / stats.error_std + (
        variance - stats.variance_mean
    ) / stats.variance_std
