"""Pre-training the Uninformed Students teacher (seed 000 eqs. 1–4; thesis §4.3.2).

A patch network T̂ (p = 17, 33 or 65) learns to describe p×p patches of natural images
with three losses: distillation of a pretrained CNN's patch descriptor through a decoder
(eq. 1), triplet metric learning (eq. 2) and descriptor compactness (eq. 3), weighted and
summed (eq. 4). Training uses the one loop of :mod:`stad_utils.train` (progress bar, NaN
guard, checkpoints and resume), fed with :class:`~stad_utils.data.patches.TripletPatches`.
Pre-trained teachers are cached by their settings (:func:`teacher_cache_path`), so that
chapter 3's teacher and Uninformed Students' share one file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import build_backbone
from ..config import data_root
from ..files import load_torch, write_atomically
from ..losses import teacher_loss
from ..models.patch_networks import PatchNetwork, cpu_fast_layout, decoder, patch_network


@dataclass
class TeacherLossWeights:
    """λ_k, λ_m, λ_c of eq. 4, the triplet margin and the compactness reading.

    The seeds give no values for the λs. ``None`` (the default for λ_k and λ_c) scales a
    term to a per-entry mean — λ_k = 1/D for the D-dimensional squared distance of eq. 1,
    λ_c = 1/(n(n−1)) for the n(n−1) correlations summed in eq. 3 — so that the three
    terms start at comparable sizes (about 1) instead of thousands.
    """

    distillation: float | None = None
    metric: float = 1.0
    compactness: float | None = None
    margin: float = 1.0
    compactness_over: str = "patches"  # the seeds' reading; "dimensions" = the paper's


class PatchTeacher(nn.Module):
    """The teacher T̂ being pre-trained, with its decoder D and the frozen network P.

    Args:
        p: receptive field (17, 33 or 65).
        backbone: the pretrained network P whose pooled deepest features (stride 32:
            ResNet-18's 512 channels, EfficientNet-Lite0's 320) are the distillation
            target; the decoder's output size follows it.
        target_size: patches are resized to this size before P sees them.
        width: width multiplier of the patch network (1.0 = the paper's).
        weights: the loss weights.
        seed: initialization seed of T̂ and D.
    """

    def __init__(
        self,
        p: int = 65,
        backbone: str = "resnet18",
        target_size: int = 96,
        width: float = 1.0,
        weights: TeacherLossWeights | None = None,
        seed: int = 0,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.weights = weights or TeacherLossWeights()
        self.target_size = target_size
        self.network: PatchNetwork = patch_network(p, width=width, seed=seed)
        self.pretrained_net = build_backbone(
            backbone, pretrained=pretrained, layers=("layer4",)
        ).freeze()
        self.decoder_dim = self.pretrained_net.channels["layer4"]
        self.decoder = decoder(target_dim=self.decoder_dim, seed=seed)
        self.parts: list[dict[str, float]] = []  # per training step, for the loss curves

    @torch.no_grad()
    def target(self, patches: torch.Tensor) -> torch.Tensor:
        """P(p): ``(B, 3, p, p)`` → ``(B, D)``, P's deepest features averaged over space."""
        resized = F.interpolate(
            cpu_fast_layout(patches), size=self.target_size, mode="bilinear", align_corners=False
        )
        return self.pretrained_net(resized)["layer4"].mean(dim=(2, 3))

    def describe(self, patches: torch.Tensor) -> torch.Tensor:
        """T̂(p): ``(B, 3, p, p)`` → ``(B, 128)``."""
        return self.network(patches).flatten(1)

    def batch_loss(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, int]:
        """Eq. 4 on a batch of triplets; records the three parts in ``self.parts``."""
        anchor, positive, negative = (
            batch[k].to(device) for k in ("anchor", "positive", "negative")
        )
        w = self.weights
        descriptors = self.describe(anchor)
        n = descriptors.shape[0] if w.compactness_over == "patches" else descriptors.shape[1]
        lambda_k = 1.0 / self.decoder_dim if w.distillation is None else w.distillation
        if w.compactness is None:  # a batch of one has no pairs to decorrelate
            lambda_c = 1.0 / (n * (n - 1)) if n > 1 else 0.0
        else:
            lambda_c = w.compactness
        loss = teacher_loss(
            descriptors,
            decoded=self.decoder(descriptors) if lambda_k else None,
            target=self.target(anchor) if lambda_k else None,
            positive=self.describe(positive) if w.metric else None,
            negative=self.describe(negative) if w.metric else None,
            margin=w.margin,
            lambda_k=lambda_k,
            lambda_m=w.metric,
            lambda_c=lambda_c,
            compactness_over=w.compactness_over,
        )
        self.parts.append(
            {
                "distillation": loss.distillation.item(),
                "metric": loss.metric.item(),
                "compactness": loss.compactness.item(),
                "total": loss.total.item(),
            }
        )
        return loss.total, anchor.shape[0]

    def save_teacher(self, path: str | Path) -> Path:
        """Save T̂ alone (what the students will learn from)."""
        saved = {
            "p": self.network.receptive_field,
            "width": self.network.width,
            "state": self.network.state_dict(),
        }
        # never a half-written teacher under its name, even when several shards of a
        # sweep pre-train it at once
        return write_atomically(path, lambda temporary: torch.save(saved, temporary))


def load_teacher(path: str | Path, device: str | torch.device = "cpu") -> PatchNetwork:
    """A pre-trained patch network saved by :meth:`PatchTeacher.save_teacher`, frozen."""
    saved = load_torch(path, map_location=device, what="pre-trained teacher")
    network = patch_network(saved["p"], width=saved["width"])
    network.load_state_dict(saved["state"])
    network.requires_grad_(False)
    return network.to(device).eval()


def pretrain_teacher(
    p: int,
    backbone: str = "resnet18",
    width: float = 1.0,
    steps: int = 20_000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    images=None,
    image_folder: str | Path | None = None,
    progress: bool = True,
) -> PatchTeacher:
    """Pre-train a teacher as chapter 3 does: ``steps`` Adam steps (lr 2e-4, weight decay
    1e-5, the original paper's values) on batches of ``batch_size`` triplets of natural
    images (``images``: a list of RGB arrays; default: scikit-image's photographs without
    the three the textures dataset is made of), or every image under ``image_folder`` (e.g.
    an ImageNet subset, as in the original paper). Returns the trained
    :class:`PatchTeacher` (``.network`` is T̂; ``save_teacher`` writes it)."""
    from ..data.patches import NATURAL_PHOTOS, ImageFolderPatches, TripletPatches, load_photos
    from ..train import TrainConfig, fit

    device = torch.device(device)
    if image_folder is not None:
        triplets = ImageFolderPatches(
            image_folder, p, length=batch_size * steps, seed=seed, max_side=512
        )
    else:
        triplets = TripletPatches(
            p,
            images if images is not None else load_photos(NATURAL_PHOTOS),
            length=batch_size * steps,
            seed=seed,
        )
    # The distillation target's input size: P sees each patch resized (DESIGN.md §2).
    target_size = 64 if backbone == "efficientnet_lite0" else 224
    teacher = PatchTeacher(p, backbone=backbone, target_size=target_size, width=width, seed=seed)
    config = TrainConfig(
        epochs=1,
        batch_size=batch_size,
        lr=2e-4,
        weight_decay=1e-5,
        optimizer="adam",
        seed=seed,
        device=device.type,
        channels_last=False,
        select_on_validation=False,
        progress=progress,
    )
    fit(teacher.to(device), triplets, None, config)
    return teacher


def teacher_cache_path(
    p: int,
    width: float,
    backbone: str,
    steps: int,
    seed: int,
    images: str | None = None,
    folder: str | None = None,
) -> Path:
    """Where the teacher pre-trained with these settings is kept (``folder``, default
    ``<data root>/teachers``): chapter 3 leaves the teacher it trains there, and the method
    reuses it."""
    folder = Path(folder) if folder else data_root() / "teachers"
    tag = _folder_tag(images) if images else ""
    return folder / f"teacher_p{p}_w{width:g}_{backbone}_steps{steps}_seed{seed}{tag}.pt"


#: Teachers shipped with the package (``tools/pretrain_teachers.py`` made them with
#: :func:`pretrain_teacher`; ``teachers.json`` records the settings and SHA-256 of each).
SHIPPED_TEACHERS = Path(__file__).resolve().parents[1] / "pretrained"


def shipped_teacher(name: str) -> Path | None:
    """The package's copy of the teacher cached as ``name`` (a :func:`teacher_cache_path`
    file name), or ``None``. The package ships the quick profile's three teachers
    (p = 17, 33, 65 at width 0.25, 150 steps on the default photographs): pre-training
    them costs a CPU about 100 s, most of chapter 5's time, for weights that are the same
    for every reader. Chapter 3 still pre-trains one and shows how. A shipped teacher is
    used even where the cache holds a file of the same name."""
    path = SHIPPED_TEACHERS / name
    return path if path.is_file() else None


def _folder_tag(folder: str) -> str:
    """``_<name>-<8 hex digits of the absolute path>``: teachers pre-trained on two folders
    with the same name are cached apart."""
    resolved = str(Path(folder).expanduser().resolve())
    return f"_{Path(resolved).name}-{hashlib.sha1(resolved.encode()).hexdigest()[:8]}"
