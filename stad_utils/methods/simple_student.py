"""Simple Student (thesis §5.3, Appendix A.2): STFPM with a bottlenecked student.

The student is ResNet-18 with the inner convolution of every BasicBlock in layers 1–3
slimmed to 16/16/32 filters, its block outputs still matching the teacher's 64/128/256
channels. With less capacity it should keep only what normal images need, and so miss
the teacher on anomalies by more (the bottleneck idea of reverse distillation, Deng & Li
2022). Training, loss (eq. 4.15) and anomaly map (§4.4.5) are STFPM's.

Beyond the thesis (its §5.3.2 and §7): for a teacher with other channels — the quick
profile's EfficientNet-Lite0 — 1×1 adapters map the student's channels to the teacher's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..backbones import DEFAULT_LAYERS, build_backbone
from ..models.students import SIMPLE_STUDENT_INNER, simple_student
from .base import Method, register
from .stfpm import STFPM


@register
class SimpleStudent(STFPM):
    """STFPM whose student is the bottlenecked ResNet-18 of Appendix A.2.

    Args:
        backbone: the teacher (``resnet18`` in the thesis; any registered backbone).
        layers: matched stages (default: strides 4, 8, 16).
        inner: filters of the inner convolution of the blocks of layers 1, 2, 3.
        seed: seed of the student's (and adapters') initialization.
        pretrained: load the teacher's ImageNet weights.
    """

    name = "simple_student"

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: Sequence[str] = DEFAULT_LAYERS,
        inner: Sequence[int] = SIMPLE_STUDENT_INNER,
        seed: int = 0,
        pretrained: bool = True,
    ) -> None:
        Method.__init__(self, layers=tuple(layers), inner=tuple(inner))  # not STFPM's student
        self.teacher = build_backbone(backbone, pretrained=pretrained, layers=layers).freeze()
        self.student = simple_student(backbone, inner=inner, seed=seed, layers=layers)
