"""Uninformed Students (seed 000, "Training the Students" and "Anomaly Scoring Function";
thesis §4.3.2): an ensemble of students regresses a descriptive teacher, at several scales.

Per receptive field p (17, 33 or 65):

* a **teacher** T̂, the patch network pre-trained on natural images (eqs. 1–4,
  :mod:`~stad_utils.methods.patch_teacher`), frozen;
* the per-component mean μ and standard deviation σ of its dense descriptors over the
  good *training* images (eq. 5);
* **M students** with the teacher's architecture, randomly initialized, trained densely
  to regress the normalized teacher descriptors (eq. 5, summed over students);
* the ensemble's **regression error** e (eq. 6) and **predictive variance** v (eq. 7),
  each standardized with its mean and standard deviation over the pixels of the good
  *validation* images and summed (eq. 8) — never with statistics of test images.

The anomaly map is the mean of the per-scale scores over the scales in use (seed 000,
"Multi-scale resolution"); the image score is its maximum. Descriptors of every pixel come
from the fast dense feature extraction (:class:`~stad_utils.models.DenseExtractor`).

Training students on whole images costs a dense forward and backward pass of M networks
per pixel. ``crop_size`` (the quick profile's choice, not the paper's) trains on one
random window per image instead: the window is cut from the padded image, so its
descriptors are exactly those of the whole image at those pixels, only fewer of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..losses import student_regression_loss
from ..models.dense import DenseExtractor, image_chunks, pad_images
from ..models.patch_networks import RECEPTIVE_FIELDS, PatchNetwork, patch_network
from ..threads import use_idle_cores
from ..train import TrainConfig, TrainHistory, make_loader
from .base import Method, register

# the teacher cache lives beside the teacher; imported here too, so that the old
# `from stad_utils.methods.uninformed_students import teacher_cache_path` still works
from .patch_teacher import shipped_teacher, teacher_cache_path
from .us_scores import (
    ScoreStatistics,
    descriptor_statistics,
    normalize_teacher,
    predictive_variance,
    regression_error,
    standardized_score,
)


@register
class UninformedStudents(Method):
    """Uninformed Students: per scale a pre-trained teacher and ``num_students`` students.

    Args:
        backbone: the pretrained CNN the teachers distil (eq. 1) during pre-training.
        scales: the receptive fields, any non-empty subset of (17, 33, 65).
        num_students: ensemble size M per scale (3 by default).
        width: width multiplier of teachers and students (1.0 = the paper's networks).
        seed: student m of scale p starts from seed ``seed + m``; the teachers' pre-training
            uses ``teacher_seed``.
        teacher_steps: pre-training steps of each teacher (batches of 64 triplets).
        teacher_dir: where pre-trained teachers are kept and reused (a teacher depends on
            p, width, backbone, steps, seed and images, not on the category). ``None`` =
            ``<data root>/teachers``. Teachers the package ships (the quick profile's) are
            taken from the package instead.
        teacher_images: a folder of natural images to pre-train the teachers on (the
            original uses ImageNet); ``None`` = scikit-image's bundled photographs.
        crop_size: train the students on one random ``crop_size``² window per image
            (``None``: on whole images, as in the paper).
        padding: border handling of the dense extraction (see ``DenseExtractor``).
        use_scales: the scales the anomaly map averages (default: all); see
            :attr:`use_scales`.
        pretrained: pre-train (or reuse) the teachers in ``fit``. ``False`` is for
            ``load``, where the teachers come with the saved weights.

    Student training defaults (:attr:`training_defaults`): Adam, learning rate 1e-4,
    weight decay 1e-5, the values of the original paper (Bergmann et al. 2020); the
    seeds give none.
    """

    name = "uninformed_students"
    training_defaults = {"optimizer": "adam", "lr": 1e-4, "weight_decay": 1e-5}

    def __init__(
        self,
        backbone: str = "resnet18",
        scales: Sequence[int] = RECEPTIVE_FIELDS,
        num_students: int = 3,
        width: float = 1.0,
        seed: int = 0,
        teacher_steps: int = 20_000,
        teacher_seed: int = 0,
        teacher_dir: str | None = None,
        teacher_images: str | None = None,
        crop_size: int | None = None,
        padding: str = "reflect",
        use_scales: Sequence[int] | None = None,
        pretrained: bool = True,
    ) -> None:
        scales = tuple(sorted(int(p) for p in scales))
        if (
            not scales
            or any(p not in RECEPTIVE_FIELDS for p in scales)
            or len(set(scales)) < len(scales)
        ):
            raise ValueError(
                f"scales must be distinct values among {RECEPTIVE_FIELDS}; got {scales}."
            )
        if num_students < 2:
            raise ValueError("An ensemble needs at least 2 students (its variance is 0 otherwise).")
        super().__init__(scales=scales)
        self.pretrained = pretrained
        self.teachers = nn.ModuleList(
            patch_network(p, width=width, seed=teacher_seed) for p in scales
        )
        self.teachers.requires_grad_(False)
        self.students = nn.ModuleList(
            nn.ModuleList(patch_network(p, width=width, seed=seed + m) for m in range(num_students))
            for p in scales
        )
        d = self.teachers[0].descriptor_dim
        # eq. 5's μ and σ per scale, and eq. 8's (e_μ, e_σ, v_μ, v_σ) per scale; NaN = not fitted
        self.register_buffer("descriptor_mean", torch.full((len(scales), d), float("nan")))
        self.register_buffer("descriptor_std", torch.full((len(scales), d), float("nan")))
        self.register_buffer("score_statistics", torch.full((len(scales), 4), float("nan")))
        self.use_scales = scales if use_scales is None else use_scales  # validated by the setter

    # -- which scales the map averages -----------------------------------------------------
    @property
    def scales(self) -> tuple[int, ...]:
        return self.options["scales"]

    @property
    def use_scales(self) -> tuple[int, ...]:
        """The scales the anomaly map averages; a subset of ``scales``, changeable after
        training (no retraining: each scale is an independent model)."""
        return self.options["use_scales"]

    @use_scales.setter
    def use_scales(self, value: Iterable[int]) -> None:
        value = tuple(sorted(int(p) for p in value))
        if not value or any(p not in self.scales for p in value):
            raise ValueError(
                f"use_scales must be a non-empty subset of {self.scales}; got {value}."
            )
        self.options["use_scales"] = value  # saved with the method

    def train(self, mode: bool = True) -> UninformedStudents:
        super().train(mode)
        self.teachers.eval()  # frozen: the teachers never train
        return self

    # -- dense descriptors -----------------------------------------------------------------
    def _dense(self, net: PatchNetwork) -> DenseExtractor:
        return DenseExtractor(net, padding=self.options["padding"])

    def normalized_teacher(self, index: int, images: torch.Tensor, padded: bool = False):
        """The teacher's descriptors of scale ``index``, normalized as in eqs. 5–6:
        ``(B, 3, H, W)`` → ``(B, d, H, W)``."""
        with torch.no_grad():
            descriptors = self._dense(self.teachers[index])(images, padded=padded)
        return normalize_teacher(
            descriptors, self.descriptor_mean[index], self.descriptor_std[index]
        )

    def student_maps(self, index: int, images: torch.Tensor, padded: bool = False):
        """The M students' predictions of scale ``index``: M maps ``(B, d, H, W)``."""
        return [self._dense(s)(images, padded=padded) for s in self.students[index]]

    # -- training --------------------------------------------------------------------------
    def fit(self, train_set, val_set, config: TrainConfig) -> TrainHistory:
        """Pre-train (or reuse) the teachers, measure μ and σ on ``train_set`` (eq. 5),
        train the students (eq. 5), then measure e and v on ``val_set`` (eq. 8)."""
        if val_set is None or len(val_set) == 0:
            raise ValueError(
                "Uninformed Students standardizes its scores with statistics of good "
                "validation images (eq. 8), and the validation split is empty. Use a "
                "dataset with more good training images, or a larger validation fraction."
            )
        device = torch.device(config.device)
        use_idle_cores(device)  # for the statistics before and after the training loop
        self.to(device)
        if self.pretrained:
            self.prepare_teachers(device, progress=config.progress)
        self.fit_descriptor_statistics(train_set, config.batch_size)
        self.history = super().fit(train_set, val_set, config)
        self.fit_score_statistics(val_set, config.batch_size)
        return self.history

    def prepare_teachers(self, device: torch.device, progress: bool = True) -> None:
        """Load each scale's pre-trained teacher: the package's copy when it ships one with
        these settings (:func:`~.patch_teacher.shipped_teacher`; the quick profile's), else
        the one in ``teacher_dir``, else pre-train and save it there first (eqs. 1–4 on
        natural-image triplets)."""
        from .patch_teacher import load_teacher, pretrain_teacher

        o = self.options
        for index, p in enumerate(self.scales):
            path = teacher_cache_path(
                p,
                o["width"],
                o["backbone"],
                o["teacher_steps"],
                o["teacher_seed"],
                o["teacher_images"],
                o["teacher_dir"],
            )
            if o["teacher_images"] is None and shipped_teacher(path.name):
                # The package's copy first, even over a cached file of the same name (e.g.
                # chapter 3's): every reader then gets the same teacher, and the store's
                # key, which covers the package's files, names the teacher a run used.
                path = shipped_teacher(path.name)
            elif not path.exists():
                pretrain_teacher(
                    p,
                    backbone=o["backbone"],
                    width=o["width"],
                    steps=o["teacher_steps"],
                    seed=o["teacher_seed"],
                    image_folder=o["teacher_images"],
                    device=device,
                    progress=progress,
                ).save_teacher(path)
            self.teachers[index].load_state_dict(load_teacher(path).state_dict())
        self.teachers.requires_grad_(False)

    @torch.no_grad()
    def fit_descriptor_statistics(self, train_set, batch_size: int = 8) -> None:
        """μ and σ of eq. 5: per scale, over all pixels of the good training images."""
        loader = make_loader(train_set, batch_size, shuffle=False)
        for index, teacher in enumerate(self.teachers):
            dense = self._dense(teacher.eval())
            mean, std = descriptor_statistics(
                dense(chunk)
                for batch in loader
                for chunk in image_chunks(batch["image"].to(self.device))
            )
            self.descriptor_mean[index], self.descriptor_std[index] = mean, std

    def _training_windows(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per scale, the input the students train on: the whole images, or one random
        ``crop_size``² window per image cut from the padded image (same pixels at every
        scale, so the scales see the same image content)."""
        crop = self.options["crop_size"]
        b, _, h, w = images.shape
        if crop is None or crop >= min(h, w):
            return [images] * len(self.scales)
        ys = torch.randint(0, h - crop + 1, (b,)).tolist()
        xs = torch.randint(0, w - crop + 1, (b,)).tolist()
        windows = []
        for p in self.scales:
            padded = pad_images(images, p, self.options["padding"])
            size = crop + 2 * (p // 2)
            windows.append(
                torch.stack(
                    [
                        padded[i, :, y : y + size, x : x + size]
                        for i, (y, x) in enumerate(zip(ys, xs, strict=True))
                    ]
                )
            )
        return windows

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Eq. 5 summed over the students of every scale (one optimizer steps them all; Adam
        is per parameter, so each student gets the updates it would get alone)."""
        total = images.new_zeros(())
        for index, window in enumerate(self._training_windows(images)):
            is_padded = window is not images  # a window cut from the padded image
            with torch.no_grad():
                teacher = self._dense(self.teachers[index])(window, padded=is_padded)
            for predicted in self.student_maps(index, window, padded=is_padded):
                total = total + student_regression_loss(
                    predicted, teacher, self.descriptor_mean[index], self.descriptor_std[index]
                )
        return total

    def selection_map(self, images: torch.Tensor) -> torch.Tensor:
        """What model selection minimizes during training (eq. 8's statistics do not exist
        yet): the regression error e (eq. 6), averaged over the scales. Every scale's e is
        in the same unit — squared teacher standard deviations, by eq. 5's normalization —
        so no scale dominates the mean by its descriptors' size alone.

        With ``crop_size`` (students trained on windows) it is measured on the central
        ``crop_size``² window of each validation image, cut from the padded image (exactly
        the whole image's e at those pixels): selection runs after every epoch, and on
        whole 128² images it cost more than the training itself."""
        windows = self._central_windows(images)
        errors = [
            regression_error(
                self.student_maps(i, window, padded=window is not images),
                self.normalized_teacher(i, window, padded=window is not images),
            )
            for i, window in enumerate(windows)
        ]
        return torch.stack(errors).mean(dim=0)

    def _central_windows(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per scale, the central ``crop_size``² window of each image, padded by p // 2
        from the padded image (the whole images when there is no smaller crop size)."""
        crop = self.options["crop_size"]
        _, _, h, w = images.shape
        if crop is None or crop >= min(h, w):
            return [images] * len(self.scales)
        top, left = (h - crop) // 2, (w - crop) // 2
        windows = []
        for p in self.scales:
            size = crop + 2 * (p // 2)
            padded = pad_images(images, p, self.options["padding"])
            windows.append(padded[:, :, top : top + size, left : left + size])
        return windows

    # -- scoring ---------------------------------------------------------------------------
    def error_and_variance(self, index: int, images: torch.Tensor):
        """e (eq. 6) and v (eq. 7) of scale ``index``: two ``(B, H, W)`` maps."""
        chunks = image_chunks(images)
        if len(chunks) > 1:  # one image at a time on a CPU (see image_chunks)
            pieces = [self.error_and_variance(index, chunk) for chunk in chunks]
            return tuple(torch.cat(maps) for maps in zip(*pieces, strict=True))
        students = self.student_maps(index, images)
        return (
            regression_error(students, self.normalized_teacher(index, images)),
            predictive_variance(students),
        )

    @torch.no_grad()
    def fit_score_statistics(self, val_set, batch_size: int = 8) -> None:
        """e_μ, e_σ, v_μ, v_σ of eq. 8, per scale, over the pixels of good validation images."""
        self.eval()
        loader = make_loader(val_set, batch_size, shuffle=False)
        for index in range(len(self.scales)):
            errors, variances = [], []
            for batch in loader:
                e, v = self.error_and_variance(index, batch["image"].to(self.device))
                errors.append(e.cpu())
                variances.append(v.cpu())
            stats = ScoreStatistics.from_maps(torch.cat(errors), torch.cat(variances))
            self.score_statistics[index] = torch.tensor(
                [stats.error_mean, stats.error_std, stats.variance_mean, stats.variance_std]
            )

    def statistics(self, index: int) -> ScoreStatistics:
        """The eq. 8 statistics of scale ``index``."""
        values = self.score_statistics[index].tolist()
        if any(value != value for value in values):  # NaN: fit (or load) first
            raise RuntimeError(
                "The score statistics of eq. 8 are not measured yet: call fit(...) (or load a "
                "trained method) before scoring images."
            )
        return ScoreStatistics(*values)

    def scale_maps(self, images: torch.Tensor) -> dict[int, dict[str, torch.Tensor]]:
        """Per scale p: ``{"error": e, "variance": v, "score": eq. 8}``, each ``(B, H, W)``."""
        maps = {}
        for index, p in enumerate(self.scales):
            e, v = self.error_and_variance(index, images)
            maps[p] = {
                "error": e,
                "variance": v,
                "score": standardized_score(e, v, self.statistics(index)),
            }
        return maps

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        """The mean over ``use_scales`` of the per-scale scores of eq. 8: ``(B, H, W)``."""
        scores = [
            standardized_score(*self.error_and_variance(i, images), self.statistics(i))
            for i, p in enumerate(self.scales)
            if p in self.use_scales
        ]
        return torch.stack(scores).mean(dim=0)

    def anomaly_map_with_parts(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The anomaly map and, for every scale p (``use_scales`` or not), its maps
        ``"p{p}/error"`` (eq. 6), ``"p{p}/variance"`` (eq. 7) and ``"p{p}/score"`` (eq. 8)."""
        per_scale = self.scale_maps(images)
        parts = {
            f"p{p}/{name}": value for p, maps in per_scale.items() for name, value in maps.items()
        }
        # the same mean, in the same order, as anomaly_map
        used = [maps["score"] for p, maps in per_scale.items() if p in self.use_scales]
        combined = torch.stack(used).mean(dim=0)
        return combined, parts
