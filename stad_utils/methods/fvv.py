"""Feature Vectors Variance (thesis §5.2): STFPM with an ensemble of students whose
disagreement is a second anomaly score.

M students of the teacher's architecture, initialized differently, learn the teacher's
feature pyramid on good images (eq. 5.1, the STFPM loss). On a defect they not only miss
the teacher's features, they also disagree with one another. Per layer k and position
(i, j) the score is the ensemble's regression error e_k (eq. 5.4) plus its variance v_k
(eq. 5.3); the layers are combined as in STFPM (§5.4.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import DEFAULT_LAYERS, build_backbone, student
from ..train import TrainConfig, TrainHistory, fit
from .base import Method, register
from .stfpm import STFPM, combine_layer_maps, pyramid_loss

SCORINGS = ("error+variance", "variance", "error")


def ensemble_error_and_variance(
    teacher: torch.Tensor, students: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two per-position terms of FVV for one layer.

    ``teacher`` ``(B, C, h, w)``; ``students`` M tensors of the same shape.
    Returns ``(e_k, v_k)``, each ``(B, h, w)``:

    * the students' vectors are ℓ2-normalized (eq. 5.2);
    * ``v_k = ‖std‖²`` (eq. 5.3), the squared norm of the per-channel standard deviation
      over the M students — the population standard deviation (divide by M), so that
      ``v_k`` is the mean squared distance of the students to their mean;
    * ``e_k = ½‖t̂ − mean_m ŝ_m‖²`` (eq. 5.4), the error of the ensemble's mean vector.
    """
    t = F.normalize(teacher.float(), dim=1)
    s = torch.stack([F.normalize(x.float(), dim=1) for x in students])  # (M, B, C, h, w)
    mean = s.mean(dim=0)
    variance = s.var(dim=0, unbiased=False).sum(dim=1)  # ‖std‖² = Σ_c std_c²
    error = 0.5 * (t - mean).pow(2).sum(dim=1)
    return error, variance


@register
class FeatureVectorsVariance(Method):
    """FVV: a frozen pretrained teacher and an ensemble of ``num_students`` students.

    Args:
        backbone: teacher and students' architecture.
        layers: the matched stages (default: strides 4, 8, 16).
        num_students: ensemble size M (3 in the thesis, §6.3).
        seed: student m is initialized with seed ``seed + m``.
        scoring: ``"error+variance"`` (§5.2), ``"variance"`` (the variance-only score of
            §6.5) or ``"error"`` (the ensemble mean's error alone, for comparison).
        independent_order: train the students one after the other, each with its own
            shuffle of the images (seed ``seed + m``) and its own model selection — the
            alternative the thesis mentions (§5.2.2) to decouple them further.
        pretrained: load the teacher's ImageNet weights.

    By default all students see the same images in the same order (as in the thesis): their losses
    are summed and one SGD optimizer steps them all, which — SGD being per parameter — gives
    each student the same updates as training it alone on that order, while running the
    teacher only once per batch. Model selection, however, picks one epoch for the whole
    ensemble, on its error + variance map.
    """

    name = "fvv"

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: Sequence[str] = DEFAULT_LAYERS,
        num_students: int = 3,
        seed: int = 0,
        scoring: str = "error+variance",
        independent_order: bool = False,
        pretrained: bool = True,
    ) -> None:
        if num_students < 2:
            raise ValueError("An ensemble needs at least 2 students (its variance is 0 otherwise).")
        super().__init__(layers=tuple(layers))
        self.scoring = scoring  # validated by the setter
        self.independent_order = independent_order
        self.teacher = build_backbone(backbone, pretrained=pretrained, layers=layers).freeze()
        self.students = nn.ModuleList(
            student(backbone, layers=layers, seed=seed + m) for m in range(num_students)
        )

    @property
    def scoring(self) -> str:
        """Which terms the anomaly map uses; may be changed after training (no retraining)."""
        return self.options["scoring"]

    @scoring.setter
    def scoring(self, value: str) -> None:
        if value not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {value!r}.")
        self.options["scoring"] = value  # saved with the method

    def fit(self, train_set, val_set, config: TrainConfig) -> TrainHistory:
        if not self.independent_order:
            return super().fit(train_set, val_set, config)
        histories = []
        for m, one_student in enumerate(self.students):
            single = _OneStudent(self.teacher, one_student)
            checkpoint = config.checkpoint_dir and str(Path(config.checkpoint_dir) / f"student{m}")
            histories.append(
                fit(
                    single,
                    train_set,
                    val_set,
                    replace(config, seed=config.seed + m, checkpoint_dir=checkpoint),
                )
            )
        self.history = TrainHistory(
            loss=[sum(values) for values in zip(*(h.loss for h in histories), strict=True)],
            seconds=sum(h.seconds for h in histories),
            images_seen=sum(h.images_seen for h in histories),
        )
        return self.history

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Sum over students of eq. 5.1 (the STFPM loss), the teacher run once."""
        with torch.no_grad():
            targets = self.teacher(images)
        return sum(pyramid_loss(targets, s(images)) for s in self.students)

    def layer_terms(self, images: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{layer: (e_k, v_k)}`` at the layers' own resolutions, each ``(B, h_k, w_k)``."""
        targets = self.teacher(images)
        outputs = [s(images) for s in self.students]
        return {
            k: ensemble_error_and_variance(targets[k], [o[k] for o in outputs]) for k in targets
        }

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        """Per layer e_k + v_k (or one of them), combined over layers (§5.4.1): ``(B, H, W)``."""
        per_layer = []
        for error, variance in self.layer_terms(images).values():
            if self.scoring == "variance":
                per_layer.append(variance)
            elif self.scoring == "error":
                per_layer.append(error)
            else:
                per_layer.append(error + variance)
        return combine_layer_maps(per_layer, images.shape[-2:])


class _OneStudent(STFPM):
    """One student of an ensemble with the shared teacher: STFPM, for training it alone."""

    name = "_fvv_student"

    def __init__(self, teacher: nn.Module, one_student: nn.Module) -> None:
        Method.__init__(self)
        self.options = {}  # a part of an FVV ensemble, never saved on its own
        self.teacher, self.student = teacher, one_student
