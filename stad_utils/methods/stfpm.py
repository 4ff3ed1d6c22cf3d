"""STFPM: Student–Teacher Feature Pyramid Matching (Wang et al. 2021; thesis §4.4).

A frozen, ImageNet-pretrained teacher and a randomly initialized student of the same
architecture see the same good image. At the stages of stride 4, 8 and 16 the student
learns to reproduce the teacher's feature vectors, compared by cosine distance. On a
defect the student, never trained on anything like it, disagrees with the teacher.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..backbones import DEFAULT_LAYERS, build_backbone, student
from .base import Method, register


def normalized_distance(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Per-position loss of thesis eq. 4.15: ``½ ‖t̂ − ŝ‖²`` with ℓ2-normalized vectors.

    ``teacher``, ``student``: ``(B, C, h, w)`` → ``(B, h, w)``. Since ``‖t̂‖ = ‖ŝ‖ = 1``,
    this equals ``1 − cos(t, s)``: 0 when the vectors point the same way, at most 2.
    """
    t = F.normalize(teacher.float(), dim=1)
    s = F.normalize(student.float(), dim=1)
    return 0.5 * (t - s).pow(2).sum(dim=1)


def pyramid_loss(teacher_features: dict, student_features: dict) -> torch.Tensor:
    """STFPM's training loss (thesis eq. 4.15, summed over layers).

    For each layer k the per-position distances are averaged over the ``h_k × w_k``
    positions (the ``1/(w_k h_k) Σ_ij`` of Wang et al.) and over the batch; the layers'
    averages are then summed.
    """
    return sum(
        normalized_distance(teacher_features[k], student_features[k]).mean()
        for k in teacher_features
    )


def combine_layer_maps(layer_maps, size: tuple[int, int]) -> torch.Tensor:
    """Thesis §5.4.1: upsample each ``(B, h_k, w_k)`` map bilinearly to ``size`` and
    multiply them element-wise → ``(B, H, W)``."""
    combined = None
    for layer_map in layer_maps:
        up = F.interpolate(layer_map.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
        combined = up.squeeze(1) if combined is None else combined * up.squeeze(1)
    return combined


def pyramid_anomaly_map(
    teacher_features: dict, student_features: dict, size: tuple[int, int]
) -> torch.Tensor:
    """STFPM's anomaly map (thesis §4.4.5, §5.4.1): the per-layer maps of eq. 4.15,
    upsampled bilinearly to the input ``size`` and multiplied element-wise.

    Returns ``(B, H, W)``.
    """
    return combine_layer_maps(
        [normalized_distance(teacher_features[k], student_features[k]) for k in teacher_features],
        size,
    )


@register
class STFPM(Method):
    """STFPM with any registered backbone (ResNet-18 in the paper).

    Args:
        backbone: teacher and student architecture (see :mod:`stad_utils.backbones`).
        layers: the stages to match (default: strides 4, 8, 16).
        seed: seed of the student's random initialization.
        pretrained: load the teacher's ImageNet weights (``False`` only when the weights
            come from a saved method afterwards).
    """

    name = "stfpm"

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: Sequence[str] = DEFAULT_LAYERS,
        seed: int = 0,
        pretrained: bool = True,
    ) -> None:
        super().__init__(layers=tuple(layers))
        self.teacher = build_backbone(backbone, pretrained=pretrained, layers=layers).freeze()
        self.student = student(backbone, layers=layers, seed=seed)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Eq. 4.15 summed over layers, on a batch of good images ``(B, 3, H, W)``."""
        with torch.no_grad():
            targets = self.teacher(images)
        return pyramid_loss(targets, self.student(images))

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        """Product of the upsampled per-layer maps (§4.4.5): ``(B, 3, H, W) -> (B, H, W)``."""
        return pyramid_anomaly_map(self.teacher(images), self.student(images), images.shape[-2:])
