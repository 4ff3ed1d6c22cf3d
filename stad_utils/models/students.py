"""Students that are not copies of their teacher: the thesis' Simple Student and 1×1 adapters.

**Simple Student** (thesis §5.3, Appendix A.2). STFPM's student is a random twin of the
teacher. The Simple Student is a ResNet-18 whose BasicBlocks in layer1..layer3 are
*bottlenecked*: each block's first convolution keeps only ``inner`` filters (16, 16 and 32
in the thesis) and its second convolution restores the block's output channels (64, 128,
256), so the features at strides 4/8/16 still match the ResNet-18 teacher's, channel for
channel. The stem, the downsample branches and layer4 (unused) are ResNet-18's::

    ResNet-18 BasicBlock of layer2:      Simple Student's block of layer2:
    conv1  3×3, 128 filters (stride 2)   conv1  3×3, 16 filters (stride 2)
    conv2  3×3, 128 filters              conv2  3×3, 128 filters
    + downsample 1×1, 128 (stride 2)     + downsample 1×1, 128 (stride 2)

The idea (§5.3.1, after Reverse Distillation's one-class bottleneck): a student with less
room can only learn the essential, nominal features, so it should disagree more with the
teacher on defects. Up to layer3 it has about 0.41 M parameters against ResNet-18's 2.78 M.

**1×1 adapters** (beyond the thesis: its §5.3.2 and §7 name this as future work). The
residual connections and the distillation tie the student's channels to the teacher's.
:class:`AdaptedStudent` cuts that tie: a 1×1 convolution per layer maps whatever the
student computes to the teacher's channels, so the bottlenecked ResNet-18 can learn from
the EfficientNet-Lite0 teacher (24/40/112 channels at the same strides 4/8/16).
:func:`simple_student` does this automatically when the teacher's channels differ.

Both students have :class:`~stad_utils.backbones.FeatureExtractor`'s interface: images
``(B, 3, H, W)`` in ``[0, 1]`` in, ``{layer: (B, C_l, H / s_l, W / s_l)}`` out, and the
attributes ``name``, ``layers``, ``channels``, ``strides``.

Quick use::

    s = simple_student("resnet18", seed=0)            # Appendix A.2, a FeatureExtractor
    s = simple_student("efficientnet_lite0", seed=0)  # the same, + 1×1 adapters to 24/40/112
    print(parameter_table(teacher("resnet18"), s).to_markdown())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from ..backbones import (
    DEFAULT_LAYERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LAYER_NAMES,
    LAYER_STRIDES,
    STUDENT_BN_MOMENTUM,
    BackboneSpec,
    FeatureExtractor,
    FreezableModule,
    backbone_spec,
    count_parameters,
    resnet_stages,
    seeded_initialization,
    set_batchnorm_momentum,
)
from ..tables import Column, markdown_table

__all__ = [
    "SIMPLE_STUDENT_INNER",
    "AdaptedStudent",
    "ParameterTable",
    "bottleneck_resnet18",
    "parameter_table",
    "simple_student",
    "simple_student_resnet18",
    "stage_parameters",
]

#: Filters of each BasicBlock's first convolution in layer1, layer2, layer3 (Appendix A.2).
SIMPLE_STUDENT_INNER = (16, 16, 32)
#: ResNet-18's output channels of layer1..layer4 (kept by the Simple Student).
_RESNET18_CHANNELS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


# ----------------------------------------------------------------------------------------
# The Simple Student: a bottlenecked ResNet-18 (Appendix A.2)
# ----------------------------------------------------------------------------------------


def _init_like_torchvision(module: nn.Module) -> None:
    """torchvision's ResNet initialization: He (fan-out) for convolutions, BN = identity."""
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _check_inner(inner: Sequence[int]) -> tuple[int, int, int]:
    inner = tuple(inner)
    if len(inner) != 3 or not all(isinstance(n, int) and n > 0 for n in inner):
        raise ValueError(
            f"inner must be three positive integers (filters of conv1 in layer1, layer2, "
            f"layer3), e.g. {SIMPLE_STUDENT_INNER}; got {inner!r}."
        )
    return inner


def bottleneck_resnet18(inner: Sequence[int] = SIMPLE_STUDENT_INNER) -> torchvision.models.ResNet:
    """torchvision's ResNet-18 (random) with the Simple Student's bottlenecked blocks.

    In every BasicBlock of layer1..layer3, ``conv1``/``bn1`` get ``inner[k]`` filters and
    ``conv2`` maps them back to the block's output channels; everything else (stem,
    ``downsample`` branches, layer4, head) is ResNet-18's. The module names are
    torchvision's, so ``print`` gives Appendix A.2's summary. Draws its random weights from
    PyTorch's global generator (use :func:`simple_student_resnet18` with a ``seed``).
    """
    inner = _check_inner(inner)
    network = torchvision.models.resnet18(weights=None)
    for layer, width in zip(LAYER_NAMES[:3], inner, strict=True):
        for block in network.get_submodule(layer):
            c_in, c_out = block.conv1.in_channels, block.conv2.out_channels
            block.conv1 = nn.Conv2d(c_in, width, 3, block.stride, padding=1, bias=False)
            block.bn1 = nn.BatchNorm2d(width)
            block.conv2 = nn.Conv2d(width, c_out, 3, 1, padding=1, bias=False)
            for module in (block.conv1, block.bn1, block.conv2):
                _init_like_torchvision(module)
    return network


def _simple_student_spec(inner: tuple[int, int, int]) -> BackboneSpec:
    def no_weights(network: nn.Module) -> None:
        raise ValueError("The Simple Student has no pretrained weights: it is always random.")

    return BackboneSpec(
        name="simple_resnet18",
        make_network=lambda: bottleneck_resnet18(inner),
        load_weights=no_weights,
        stages=resnet_stages(),
        channels=dict(_RESNET18_CHANNELS),
        mean=IMAGENET_MEAN,  # the same input normalization as the resnet18 backbone
        std=IMAGENET_STD,
        weights_source=f"none (random; conv1 filters {inner} in layer1..3)",
    )


def simple_student_resnet18(
    inner: Sequence[int] = SIMPLE_STUDENT_INNER,
    seed: int | None = None,
    layers: Sequence[str] = DEFAULT_LAYERS,
) -> FeatureExtractor:
    """The thesis' Simple Student (Appendix A.2) as a trainable :class:`FeatureExtractor`.

    Returns ``{"layer1": (B, 64, H/4, W/4), "layer2": (B, 128, H/8, W/8),
    "layer3": (B, 256, H/16, W/16)}`` for images in ``[0, 1]``, normalized with ImageNet's
    mean and std like the ``resnet18`` teacher. ``.body`` is the bottlenecked ResNet-18
    cut after the deepest requested layer (``.body.layer2[0].conv1`` etc.); ``.inner``
    records the bottleneck widths.

    ``seed`` makes the initialization repeatable without touching the global random
    state; batch-norm momentum is 0.1, as for every student (``STUDENT_BN_MOMENTUM``).
    """
    inner = _check_inner(inner)
    spec = _simple_student_spec(inner)
    with seeded_initialization(seed):
        extractor = FeatureExtractor(spec, spec.make_network(), layers)
    extractor.inner = inner
    set_batchnorm_momentum(extractor, STUDENT_BN_MOMENTUM)
    return extractor.train()


# ----------------------------------------------------------------------------------------
# 1×1 adapters: any student, any teacher with the same strides
# ----------------------------------------------------------------------------------------


class AdaptedStudent(FreezableModule):
    """A student feature extractor followed by one 1×1 convolution per layer.

    ``adapters[layer]`` maps the student's ``C_s`` channels to the teacher's ``C_t`` at
    every position: a learnt linear map (plus bias) of each feature vector, which leaves
    the spatial size alone. So the student's architecture is free; only the strides must
    agree with the teacher's (checked here, ``ValueError`` otherwise).

    Why a bias: the teacher's features need not be centred at zero (EfficientNet-Lite0's
    layers end with a batch norm whose learnt shift is not followed by a ReLU), while a
    ResNet student's features are non-negative (after a ReLU). The loss compares
    directions (cosine), which a constant offset changes, and the bias costs only ``C_t``
    parameters per layer. No batch norm or activation: the adapter should add as little
    capacity as possible, so that the student's bottleneck stays the bottleneck.

    Args:
        student: a feature extractor with ``layers``, ``channels`` and ``strides``.
        teacher_channels: ``{layer: C_t}`` for the layers to adapt (a subset of the
            student's); the output has exactly these layers.
        teacher_strides: ``{layer: stride}`` of the teacher; default: the uniform strides
            4/8/16/32 of :mod:`stad_utils.backbones`.
        seed: seed of the adapters' random initialization (PyTorch's default for
            convolutions); the global random state is left untouched.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher_channels: Mapping[str, int],
        teacher_strides: Mapping[str, int] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        teacher_strides = dict(LAYER_STRIDES if teacher_strides is None else teacher_strides)
        missing = [k for k in teacher_channels if k not in student.channels]
        if missing or not teacher_channels:
            raise ValueError(
                f"The teacher's layers {list(teacher_channels)} must be among the student's "
                f"{list(student.layers)}; missing: {missing}."
            )
        for layer in teacher_channels:
            s_stride, t_stride = student.strides[layer], teacher_strides.get(layer)
            if s_stride != t_stride:
                raise ValueError(
                    f"Stride mismatch at {layer}: the student's features are at stride "
                    f"{s_stride}, the teacher's at stride {t_stride}, so their spatial sizes "
                    "differ and a 1×1 convolution cannot align them. Pick layers (or a "
                    "student) with the teacher's strides."
                )
        self.student = student
        self.name = f"{student.name}+1x1"
        self.layers = tuple(k for k in student.layers if k in teacher_channels)
        self.channels = {k: int(teacher_channels[k]) for k in self.layers}
        self.strides = {k: student.strides[k] for k in self.layers}
        self.student_channels = {k: student.channels[k] for k in self.layers}
        with seeded_initialization(seed):
            self.adapters = nn.ModuleDict(
                {
                    k: nn.Conv2d(self.student_channels[k], self.channels[k], 1, bias=True)
                    for k in self.layers
                }
            )

    @classmethod
    def for_teacher(
        cls, student: nn.Module, teacher: nn.Module, seed: int | None = None
    ) -> AdaptedStudent:
        """Adapters from ``student`` to the channels and strides of ``teacher``'s layers."""
        return cls(student, teacher.channels, teacher.strides, seed=seed)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, 3, H, W)`` in ``[0, 1]`` → ``{layer: (B, C_t, H / s_l, W / s_l)}``."""
        features = self.student(images)
        return {k: self.adapters[k](features[k]) for k in self.layers}

    def extra_repr(self) -> str:
        shapes = ", ".join(
            f"{k}: {self.student_channels[k]}→{self.channels[k]} ch / {self.strides[k]}"
            for k in self.layers
        )
        return f"name={self.name!r}, layers=({shapes})"


def simple_student(
    teacher_name: str,
    inner: Sequence[int] = SIMPLE_STUDENT_INNER,
    seed: int | None = None,
    layers: Sequence[str] = DEFAULT_LAYERS,
) -> FeatureExtractor | AdaptedStudent:
    """The Simple Student for the teacher ``teacher_name``, ready to train.

    For ``resnet18`` (the thesis' setting) it is :func:`simple_student_resnet18`, whose
    channels already match. For a teacher with other channels (``efficientnet_lite0``:
    24/40/112, ``wide_resnet50_2``: 256/512/1024) the same student is wrapped in an
    :class:`AdaptedStudent` whose 1×1 convolutions map 64/128/256 channels to the
    teacher's. One ``seed`` initializes both (repeatably, global random state untouched).
    """
    spec = backbone_spec(teacher_name)  # ValueError for unknown names
    base = simple_student_resnet18(inner, seed=seed, layers=layers)
    teacher_channels = {k: spec.channels[k] for k in base.layers}
    if teacher_channels == base.channels:
        return base
    teacher_strides = {k: spec.strides[k] for k in base.layers}
    adapter_seed = None if seed is None else seed + 1
    return AdaptedStudent(base, teacher_channels, teacher_strides, seed=adapter_seed).train()


# ----------------------------------------------------------------------------------------
# Parameter counts, stage by stage
# ----------------------------------------------------------------------------------------

_ADAPTERS = "1×1 adapters"


def stage_parameters(module: nn.Module) -> dict[str, int]:
    """Parameters of each stage: ``{"stem": n, "layer1": n, ..., [_ADAPTERS: n]}``.

    ``module`` is a :class:`FeatureExtractor` (teacher, student or Simple Student) or an
    :class:`AdaptedStudent` (its adapters are one extra entry, ``"1×1 adapters"``).
    """
    if isinstance(module, AdaptedStudent):
        counts = stage_parameters(module.student)
        counts = {k: v for k, v in counts.items() if k == "stem" or k in module.layers}
        counts[_ADAPTERS] = count_parameters(module.adapters)
        return counts
    if not isinstance(module, FeatureExtractor):
        raise TypeError(
            f"Expected a FeatureExtractor or an AdaptedStudent, got {type(module).__name__}."
        )
    return {
        stage: sum(count_parameters(part) for part in parts)
        for stage, parts in module.stage_modules().items()
    }


@dataclass(frozen=True)
class ParameterTable:
    """Teacher and student parameters side by side, stage by stage; shows as a table.

    ``rows``: ``[{"part": "stem", "teacher": n or None, "student": n or None}, ...]``.
    """

    teacher_name: str
    student_name: str
    rows: list[dict]

    @property
    def teacher_total(self) -> int:
        return sum(r["teacher"] or 0 for r in self.rows)

    @property
    def student_total(self) -> int:
        return sum(r["student"] or 0 for r in self.rows)

    def as_dict(self) -> dict[str, dict[str, int | None]]:
        """``{part: {"teacher": n, "student": n}}`` plus ``"total"``: plain Python, for glue."""
        table = {r["part"]: {"teacher": r["teacher"], "student": r["student"]} for r in self.rows}
        table["total"] = {"teacher": self.teacher_total, "student": self.student_total}
        return table

    def to_markdown(self) -> str:
        def ratio(teacher: int | None, student: int | None) -> float | None:
            return student / teacher if teacher and student else None

        columns = (
            Column("part", align="left"),
            Column("teacher", f"teacher ({self.teacher_name})", "{:,}"),
            Column("student", f"student ({self.student_name})", "{:,}"),
            Column("ratio", "student / teacher", "{:.2f}"),
        )
        rows = [{**r, "ratio": ratio(r["teacher"], r["student"])} for r in self.rows]
        total = {"part": "total", "teacher": self.teacher_total, "student": self.student_total}
        total["ratio"] = ratio(total["teacher"], total["student"])
        rows.append({c.key: f"**{c.show(total[c.key], missing='—')}**" for c in columns})
        return markdown_table(rows, columns, missing="—").removesuffix("\n")

    _repr_markdown_ = to_markdown  # Jupyter renders it as a table
    __str__ = to_markdown


def parameter_table(teacher_module: nn.Module, student_module: nn.Module) -> ParameterTable:
    """Parameters per stage (stem, layer1, layer2, layer3, and 1×1 adapters if any) of a
    teacher and a student, for a side-by-side table (``.to_markdown()``).

    Counts only what computes the returned layers (extractors are cut after their deepest
    layer), so ResNet-18's unused layer4 and head are not counted.
    """
    teacher_counts = stage_parameters(teacher_module)
    student_counts = stage_parameters(student_module)
    parts = list(teacher_counts) + [p for p in student_counts if p not in teacher_counts]
    rows = [
        {"part": p, "teacher": teacher_counts.get(p), "student": student_counts.get(p)}
        for p in parts
    ]
    return ParameterTable(teacher_module.name, student_module.name, rows)
