"""Uninformed Students' patch networks: a p×p patch in, one 128-d descriptor out.

Teacher and students of Uninformed Students (seed 000, "Training the Teacher (1/4)";
thesis §4.3.1) are small CNNs without padding whose receptive field is the patch size
``p`` (17, 33 or 65): a ``(B, 3, p, p)`` batch of patches gives ``(B, 128, 1, 1)``
descriptors. Leaky ReLUs (slope 5e-3) follow every convolution except the last. During
teacher pre-training a *decoder* ``D`` (a 1×1 convolution, i.e. a fully connected layer)
maps the 128-d descriptor to the size of the pretrained network's descriptor (eq. 1).

Input convention: the networks take images in ``[0, 1]`` (like every ``stad_utils``
model) and normalize them internally with ImageNet's mean and standard deviation
(:data:`~stad_utils.backbones.IMAGENET_MEAN`, :data:`~stad_utils.backbones.IMAGENET_STD`).

The layer tables are data (:func:`architecture_table`), so a chapter can print them,
and the tests check that every row's output size is the size the network really
produces. Sources and corrections:

* ``p = 65``: the table of seed 000, made consistent (see :data:`P65_TABLE_FIX`).
* ``p = 33`` and ``p = 17``: the tables of the original paper's supplementary material
  (Bergmann et al., CVPR 2020, arXiv 1911.02357) as transcribed layer by layer in the
  comments of a public re-implementation (L. Chen, 2020); the paper's own text was not
  available offline. ``p = 17`` needs one correction (:data:`P17_TABLE_FIX`).

Quick use::

    net = patch_network(65, seed=0)
    net(torch.rand(8, 3, 65, 65)).shape           # (8, 128, 1, 1)
    net.pool_strides                               # (2, 2, 2)
    for row in architecture_table(65): print(row)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ..backbones import IMAGENET_MEAN, IMAGENET_STD

RECEPTIVE_FIELDS = (17, 33, 65)
DESCRIPTOR_DIM = 128
LEAKY_SLOPE = 5e-3
# ResNet-18's global-average-pooled descriptor: the decoder size of seed 000's table.
DEFAULT_DECODER_DIM = 512

P65_TABLE_FIX = (
    "Seed 000's table for p = 65 is inconsistent in two rows. (1) The third MaxPool is "
    "listed as 4×4×256, but pooling keeps the channel count and Conv3 outputs 128 "
    "channels: we use 4×4×128 (Conv4 then maps 128 → 256 channels, 4×4 → 1×1). "
    "(2) Conv5 is listed with a 3×3 kernel, but its input is 1×1 and a 3×3 kernel "
    "without padding cannot be applied to it: we use a 1×1 kernel (256 → 128 channels, "
    "1×1 → 1×1). Every other row is unchanged. (Another consistent reading keeps "
    "4×4×256 and lets Conv3 output 256 channels; the talk author's own code does that. "
    "It doubles Conv3 and Conv4, and we follow the rows' channel counts instead.)"
)
P17_TABLE_FIX = (
    "The original paper's table for p = 17 lists Conv1 with a 5×5 kernel and a 12×12 "
    "output, but 17 − 5 + 1 = 13. We keep the listed output size and use a 6×6 kernel "
    "(17 − 6 + 1 = 12), so that the following rows (8×8, 4×4, 1×1) hold and the "
    "receptive field is exactly 17."
)
TABLE_SOURCES = {
    65: "seed 000 (talk), 'Network architecture of T̂ with a receptive field p = 65'; "
    "corrected as in P65_TABLE_FIX",
    33: "Bergmann et al. 2020 (arXiv 1911.02357), supplementary table for p = 33, as "
    "transcribed in a public re-implementation (L. Chen, 2020)",
    17: "Bergmann et al. 2020 (arXiv 1911.02357), supplementary table for p = 17, as "
    "transcribed in a public re-implementation (L. Chen, 2020); corrected as in "
    "P17_TABLE_FIX",
}


@dataclass(frozen=True)
class LayerRow:
    """One row of a layer table: the layer, its output size ``(H, W, C)``, kernel, stride.

    ``kernel`` and ``stride`` are ``None`` for the input row.
    """

    layer: str
    output: tuple[int, int, int]
    kernel: int | None
    stride: int | None

    @property
    def kind(self) -> str:
        """``"input"``, ``"conv"``, ``"maxpool"`` or ``"decode"``."""
        name = self.layer.lower()
        if name.startswith("conv"):
            return "conv"
        return name if name in ("input", "maxpool", "decode") else "unknown"

    def as_dict(self) -> dict[str, str]:
        """The row as the paper prints it, e.g. ``{"layer": "Conv1", "output": "61×61×128",
        "kernel": "5×5", "stride": "1"}`` (empty strings for the input's kernel/stride)."""
        h, w, c = self.output
        return {
            "layer": self.layer,
            "output": f"{h}×{w}×{c}",
            "kernel": "" if self.kernel is None else f"{self.kernel}×{self.kernel}",
            "stride": "" if self.stride is None else str(self.stride),
        }


def _rows(*rows: tuple) -> tuple[LayerRow, ...]:
    return tuple(LayerRow(*row) for row in rows)


# The tables at width 1, with a 512-d decoder. Output sizes are (H, W, C).
_TABLES: dict[int, tuple[LayerRow, ...]] = {
    65: _rows(
        ("Input", (65, 65, 3), None, None),
        ("Conv1", (61, 61, 128), 5, 1),
        ("MaxPool", (30, 30, 128), 2, 2),
        ("Conv2", (26, 26, 128), 5, 1),
        ("MaxPool", (13, 13, 128), 2, 2),
        ("Conv3", (9, 9, 128), 5, 1),
        ("MaxPool", (4, 4, 128), 2, 2),  # seed 000: 4×4×256 (see P65_TABLE_FIX)
        ("Conv4", (1, 1, 256), 4, 1),
        ("Conv5", (1, 1, 128), 1, 1),  # seed 000: 3×3 kernel (see P65_TABLE_FIX)
        ("Decode", (1, 1, 512), 1, 1),
    ),
    33: _rows(
        ("Input", (33, 33, 3), None, None),
        ("Conv1", (29, 29, 128), 5, 1),
        ("MaxPool", (14, 14, 128), 2, 2),
        ("Conv2", (10, 10, 256), 5, 1),
        ("MaxPool", (5, 5, 256), 2, 2),
        ("Conv3", (4, 4, 256), 2, 1),
        ("Conv4", (1, 1, 128), 4, 1),
        ("Decode", (1, 1, 512), 1, 1),
    ),
    17: _rows(
        ("Input", (17, 17, 3), None, None),
        ("Conv1", (12, 12, 128), 6, 1),  # paper: 5×5 kernel (see P17_TABLE_FIX)
        ("Conv2", (8, 8, 256), 5, 1),
        ("Conv3", (4, 4, 256), 5, 1),
        ("Conv4", (1, 1, 128), 4, 1),
        ("Decode", (1, 1, 512), 1, 1),
    ),
}

# What the seed prints for p = 65, verbatim, so a chapter can show both side by side.
SEED_P65_TABLE: tuple[LayerRow, ...] = _rows(
    ("Input", (65, 65, 3), None, None),
    ("Conv1", (61, 61, 128), 5, 1),
    ("MaxPool", (30, 30, 128), 2, 2),
    ("Conv2", (26, 26, 128), 5, 1),
    ("MaxPool", (13, 13, 128), 2, 2),
    ("Conv3", (9, 9, 128), 5, 1),
    ("MaxPool", (4, 4, 256), 2, 2),
    ("Conv4", (1, 1, 256), 4, 1),
    ("Conv5", (1, 1, 128), 3, 1),
    ("Decode", (1, 1, 512), 1, 1),
)


def _check_p(p: int) -> None:
    if p not in _TABLES:
        raise ValueError(f"No patch network for p = {p!r}; choose one of {RECEPTIVE_FIELDS}.")


def architecture_table(
    p: int,
    *,
    width: float = 1.0,
    descriptor_dim: int = DESCRIPTOR_DIM,
    decoder_dim: int | None = DEFAULT_DECODER_DIM,
) -> list[LayerRow]:
    """The layer table of the patch network with receptive field ``p`` (17, 33 or 65).

    Rows in order: the input, every convolution and pooling layer, then the decoder
    (omitted when ``decoder_dim`` is None). ``width`` scales the hidden channel counts
    (``round(c · width)``, at least 1); the last convolution always outputs
    ``descriptor_dim`` channels. With the defaults this is the corrected table of the
    seeds; ``[row.as_dict() for row in architecture_table(65)]`` prints like the paper.
    """
    _check_p(p)
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}.")
    rows = list(_TABLES[p])
    last_conv = max(i for i, row in enumerate(rows) if row.kind == "conv")
    scaled = []
    channels = 3
    for i, row in enumerate(rows):
        h, w, c = row.output
        if row.kind == "conv":
            channels = descriptor_dim if i == last_conv else max(1, round(c * width))
        elif row.kind == "decode":
            if decoder_dim is None:
                continue
            channels = decoder_dim
        elif row.kind == "input":
            channels = c
        # pooling keeps the channel count of the layer before it
        scaled.append(LayerRow(row.layer, (h, w, channels), row.kernel, row.stride))
    return scaled


def receptive_field_of(rows: list[LayerRow]) -> int:
    """The number of input pixels (per side) the 1×1 output actually depends on.

    Computed backwards through the layers: ``r_in = (r_out − 1) · stride + kernel``.
    Pooling with floor rounding drops the last row/column when a size is odd, so this
    can be smaller than ``p``: 17 for p = 17, 32 for p = 33, 60 for p = 65. The dropped
    pixels are the bottom/right ones of the patch.
    """
    r = 1
    for row in reversed(rows):
        if row.kind in ("conv", "maxpool"):
            r = (r - 1) * row.stride + row.kernel
    return r


# Channels-last memory order for the patch networks' inputs on a CPU: oneDNN runs their
# small convolutions 1.2–1.8× faster so (benchmarks/bench_layout.py). A switch, so the
# benchmark can measure both orders in one run.
CHANNELS_LAST_ON_CPU = True


def cpu_fast_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) in channels-last memory order on a CPU, unchanged elsewhere (on
    CUDA and MPS the gain is not measured here). The same values and shape: only the order
    of the numbers in memory differs, so results agree to float rounding."""
    if not CHANNELS_LAST_ON_CPU or x.device.type != "cpu" or x.dim() != 4:
        return x
    return x.contiguous(memory_format=torch.channels_last)


class PatchNetwork(nn.Module):
    """A patch network: ``(B, 3, p, p)`` images in ``[0, 1]`` → ``(B, d, 1, 1)`` descriptors.

    Attributes: ``receptive_field`` (p), ``descriptor_dim`` (d = 128),
    ``pool_strides`` (strides of the pooling layers, in order), ``table`` (the rows it
    was built from), ``effective_receptive_field`` (see :func:`receptive_field_of`),
    ``body`` (the layers as an ``nn.Sequential`` named ``conv1, act1, pool1, ...``;
    it sees normalized images).
    """

    def __init__(self, p: int, *, width: float = 1.0, descriptor_dim: int = DESCRIPTOR_DIM) -> None:
        super().__init__()
        self.table = architecture_table(p, width=width, descriptor_dim=descriptor_dim)
        self.receptive_field = p
        self.descriptor_dim = descriptor_dim
        self.width = width
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        convs = [row for row in self.table if row.kind == "conv"]
        channels, n_conv, n_pool = 3, 0, 0
        for row in self.table:
            if row.kind == "conv":
                n_conv += 1
                out = row.output[2]
                layers[f"conv{n_conv}"] = nn.Conv2d(channels, out, row.kernel, row.stride)
                if n_conv < len(convs):  # no activation after the last convolution
                    layers[f"act{n_conv}"] = nn.LeakyReLU(LEAKY_SLOPE)
                channels = out
            elif row.kind == "maxpool":
                n_pool += 1
                layers[f"pool{n_pool}"] = nn.MaxPool2d(row.kernel, row.stride)
        self.body = nn.Sequential(layers)
        self.pool_strides = tuple(row.stride for row in self.table if row.kind == "maxpool")
        self.effective_receptive_field = receptive_field_of(self.table)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` → ImageNet-normalized, same shape."""
        return (images - self.mean) / self.std

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, 3, p, p)`` patches in ``[0, 1]`` → ``(B, d, 1, 1)`` descriptors."""
        p = self.receptive_field
        if patches.dim() != 4 or patches.shape[1] != 3 or tuple(patches.shape[-2:]) != (p, p):
            raise ValueError(
                f"A p = {p} patch network takes patches of shape (B, 3, {p}, {p}); got "
                f"{tuple(patches.shape)}. For descriptors of every pixel of an image use "
                "stad_utils.models.DenseExtractor."
            )
        return self.body(cpu_fast_layout(self.normalize(patches)))

    def stage_shapes(self) -> list[tuple[str, tuple[int, int, int]]]:
        """Run one zero patch and return ``(module name, (H, W, C))`` after every conv and
        pooling layer, in order: the sizes to compare with :attr:`table`."""
        shapes = []
        p = self.receptive_field
        x = torch.zeros(1, 3, p, p, device=self.mean.device)
        with torch.no_grad():
            x = self.normalize(x)
            for name, module in self.body.named_children():
                x = module(x)
                if isinstance(module, nn.Conv2d | nn.MaxPool2d):
                    shapes.append((name, (x.shape[2], x.shape[3], x.shape[1])))
        return shapes

    def extra_repr(self) -> str:
        return (
            f"p={self.receptive_field}, descriptor_dim={self.descriptor_dim}, "
            f"width={self.width}, pool_strides={self.pool_strides}"
        )


class Decoder(nn.Module):
    """The distillation decoder ``D`` of eq. 1: a 1×1 convolution ``d → target_dim``.

    Accepts ``(B, d)`` → ``(B, target_dim)`` or ``(B, d, H, W)`` → ``(B, target_dim, H, W)``
    (a 1×1 convolution on a 1×1 map is the fully connected layer of the seeds).
    """

    def __init__(
        self, descriptor_dim: int = DESCRIPTOR_DIM, target_dim: int = DEFAULT_DECODER_DIM
    ) -> None:
        super().__init__()
        self.descriptor_dim = descriptor_dim
        self.target_dim = target_dim
        self.conv = nn.Conv2d(descriptor_dim, target_dim, kernel_size=1)

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        if descriptors.dim() == 2:
            return self.conv(descriptors[:, :, None, None])[:, :, 0, 0]
        if descriptors.dim() == 4:
            return self.conv(descriptors)
        raise ValueError(
            f"Decoder takes (B, {self.descriptor_dim}) or (B, {self.descriptor_dim}, H, W); "
            f"got {tuple(descriptors.shape)}."
        )


def patch_network(
    p: int,
    *,
    width: float = 1.0,
    descriptor_dim: int = DESCRIPTOR_DIM,
    seed: int | None = None,
) -> PatchNetwork:
    """The Uninformed Students patch network with receptive field ``p`` (17, 33 or 65).

    ``width`` scales the hidden channels (1.0 = the paper's; smaller is faster on a CPU);
    ``seed`` makes the random initialization repeatable without touching the global RNG.
    """
    _check_p(p)
    if seed is None:
        return PatchNetwork(p, width=width, descriptor_dim=descriptor_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PatchNetwork(p, width=width, descriptor_dim=descriptor_dim)


def decoder(
    target_dim: int = DEFAULT_DECODER_DIM,
    descriptor_dim: int = DESCRIPTOR_DIM,
    *,
    seed: int | None = None,
) -> Decoder:
    """The distillation decoder ``d → target_dim`` (e.g. 512 for ResNet-18's descriptor)."""
    if seed is None:
        return Decoder(descriptor_dim, target_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Decoder(descriptor_dim, target_dim)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def total_stride(net: PatchNetwork) -> int:
    """The product of the pooling strides (1 for p = 17, 4 for p = 33, 8 for p = 65)."""
    return math.prod(net.pool_strides)
