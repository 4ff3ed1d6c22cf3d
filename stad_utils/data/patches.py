"""Patches and triplets of natural images for pre-training an Uninformed Students teacher.

The teacher is pre-trained on patches of natural images (the original uses ImageNet),
by distillation (eq. 1) and triplet metric learning (eq. 2). Offline, the default
source is scikit-image's bundled photographs (:data:`PHOTOS`): colour photos and
grayscale photos and textures, all converted to RGB ``float32`` in ``[0, 1]``. Note that
the embedded *textures* dataset is cut from the ``brick``, ``grass`` and ``gravel``
photos, so a teacher pre-trained with them has seen (defect-free) crops of that
material; pass ``images=load_photos(NATURAL_PHOTOS)`` to leave them out.

* :class:`RandomPatches` — augmented random p×p crops (for distillation).
* :class:`TripletPatches` — triplets ``(p, p⁺, p⁻)`` (seed 000, "Metric Learning"):
  ``p`` a random crop, ``p⁺`` the same crop translated by a few pixels plus additive
  white Gaussian noise, ``p⁻`` a crop of *another* image.
* :class:`ImageFolderPatches` — the same triplets from any folder of images (full
  profile: e.g. an ImageNet subset), loaded lazily.

Augmentation (each crop): random position, horizontal and vertical flips, and a small
colour jitter (brightness ±0.1, contrast and saturation ×[0.9, 1.1]), then clipping to
``[0, 1]``. Every sample is a pure function of ``(seed, index)``: the same seed gives the
same samples in any order and with any number of workers.

Samples are dicts of ``float32`` tensors ``(3, p, p)`` in ``[0, 1]`` (not normalized: the
patch networks normalize internally) plus integer metadata; a ``DataLoader`` batches
them into ``(B, 3, p, p)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata
from torch.utils.data import Dataset

# scikit-image's bundled photographs (no download needed), colour first.
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "camera",
    "coins",
    "moon",
    "brick",
    "grass",
    "gravel",
)
# The same without the three textures the embedded textures dataset is made of.
NATURAL_PHOTOS = tuple(name for name in PHOTOS if name not in ("brick", "grass", "gravel"))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb_float(array: np.ndarray) -> np.ndarray:
    """Any image array → ``float32 (H, W, 3)`` in ``[0, 1]``.

    Accepts ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (alpha dropped),
    integers (scaled by their dtype's maximum) or floats (taken as ``[0, 1]``, clipped).
    """
    a = np.asarray(array)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    else:
        a = np.clip(a.astype(np.float32), 0.0, 1.0)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"Expected an (H, W), (H, W, 3) or (H, W, 4) image; got {a.shape}.")
    return np.ascontiguousarray(a)


def load_photos(names: Sequence[str] = PHOTOS) -> list[np.ndarray]:
    """scikit-image's photographs by name, as RGB ``float32 (H, W, 3)`` arrays in ``[0, 1]``."""
    photos = []
    for name in names:
        loader = getattr(skdata, name, None)
        if loader is None:
            raise ValueError(f"scikit-image has no photograph {name!r}; see PHOTOS.")
        photos.append(to_rgb_float(loader()))
    return photos


@dataclass(frozen=True)
class Augment:
    """Augmentation of a crop: flips and a small colour jitter (all drawn per crop)."""

    flips: bool = True
    brightness: float = 0.1  # added, uniform in [−b, b]
    contrast: float = 0.1  # deviation from the crop's mean scaled by [1 − c, 1 + c]
    saturation: float = 0.1  # deviation from gray scaled by [1 − s, 1 + s]

    def __call__(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(h, w, 3)`` float in ``[0, 1]`` → augmented copy, same shape, clipped."""
        out = crop
        if self.flips:
            if rng.random() < 0.5:
                out = out[:, ::-1]
            if rng.random() < 0.5:
                out = out[::-1, :]
        out = np.array(out, dtype=np.float32)  # a copy, never a view of the image
        if self.brightness:
            out += rng.uniform(-self.brightness, self.brightness)
        if self.contrast:
            mean = out.mean()
            out = (out - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean
        if self.saturation:
            gray = out.mean(axis=2, keepdims=True)
            out = gray + (out - gray) * rng.uniform(1 - self.saturation, 1 + self.saturation)
        return np.clip(out, 0.0, 1.0, dtype=np.float32)


NO_AUGMENT = Augment(flips=False, brightness=0.0, contrast=0.0, saturation=0.0)


def _tensor(crop: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))


class _PatchSampler(Dataset):
    """Shared machinery: a list of images, deterministic per-index random crops."""

    def __init__(
        self,
        p: int,
        images: Sequence[np.ndarray] | None,
        *,
        length: int,
        seed: int,
        augment: Augment | bool,
        margin: int = 0,
    ) -> None:
        if p < 1 or length < 1:
            raise ValueError(f"p and length must be positive; got p={p}, length={length}.")
        self.p, self.length, self.seed, self.margin = p, length, seed, margin
        self.augment = Augment() if augment is True else (augment or NO_AUGMENT)
        if images is not None:
            self._images = [to_rgb_float(image) for image in images]
            for k, image in enumerate(self._images):
                self._check_size(image, f"image {k}")
        self._check_count()

    # -- image access (overridden by ImageFolderPatches) --------------------------------
    @property
    def n_images(self) -> int:
        return len(self._images)

    def image(self, k: int) -> np.ndarray:
        return self._images[k]

    def _check_count(self) -> None:
        if self.n_images < 1:
            raise ValueError("No images to sample patches from.")

    def _check_size(self, image: np.ndarray, label: str) -> None:
        need = self.p + 2 * self.margin
        if min(image.shape[:2]) < need:
            raise ValueError(
                f"{label} is {image.shape[0]}×{image.shape[1]}; patches of p = {self.p} with "
                f"shifts up to {self.margin} need at least {need}×{need} pixels."
            )

    # -- sampling -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        return np.random.default_rng([self.seed, index])

    def _crop(self, rng: np.random.Generator, k: int, size: int) -> np.ndarray:
        """An augmented random ``size × size`` crop of image ``k``: ``(size, size, 3)``."""
        image = self.image(k)
        top = int(rng.integers(0, image.shape[0] - size + 1))
        left = int(rng.integers(0, image.shape[1] - size + 1))
        return self.augment(image[top : top + size, left : left + size], rng)


class RandomPatches(_PatchSampler):
    """Augmented random p×p crops: ``{"patch": (3, p, p), "source": image index}``.

    ``images``: arrays (any of :func:`to_rgb_float`'s forms), default :func:`load_photos`.
    """

    def __init__(
        self,
        p: int,
        images: Sequence[np.ndarray] | None = None,
        *,
        length: int = 10_000,
        seed: int = 0,
        augment: Augment | bool = True,
    ) -> None:
        super().__init__(
            p,
            load_photos() if images is None else images,
            length=length,
            seed=seed,
            augment=augment,
        )

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        k = int(rng.integers(self.n_images))
        return {"patch": _tensor(self._crop(rng, k, self.p)), "source": k}


class TripletPatches(_PatchSampler):
    """Triplets for eq. 2: ``{"anchor", "positive", "negative"}`` ``(3, p, p)`` tensors,
    plus ``"shift"`` (the translation ``(dy, dx)``), ``"anchor_source"`` and
    ``"negative_source"`` (image indices, always different).

    * anchor ``p``: an augmented random crop of a random image;
    * positive ``p⁺``: the crop translated by ``(dy, dx)``, each uniform in
      ``[−max_shift, max_shift]`` and not both 0, plus white Gaussian noise of standard
      deviation ``noise_std``, clipped to ``[0, 1]``. Where both are defined,
      ``positive[:, y, x] = anchor[:, y + dy, x + dx] + noise``;
    * negative ``p⁻``: an augmented random crop of a different image.

    ``images`` default :func:`load_photos` (needs at least two images, each at least
    ``p + 2·max_shift`` pixels on each side).
    """

    def __init__(
        self,
        p: int,
        images: Sequence[np.ndarray] | None = None,
        *,
        length: int = 10_000,
        seed: int = 0,
        max_shift: int = 4,
        noise_std: float = 0.05,
        augment: Augment | bool = True,
    ) -> None:
        if max_shift < 1:
            raise ValueError(f"max_shift must be at least 1 pixel; got {max_shift}.")
        if images is None and not isinstance(self, ImageFolderPatches):
            images = load_photos()
        self.max_shift, self.noise_std = max_shift, noise_std
        super().__init__(p, images, length=length, seed=seed, augment=augment, margin=max_shift)

    def _check_count(self) -> None:
        if self.n_images < 2:
            raise ValueError("Triplets need at least two images (the negative is from another).")

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        p, m = self.p, self.max_shift
        a = int(rng.integers(self.n_images))
        window = self._crop(rng, a, p + 2 * m)
        while True:
            dy, dx = (int(v) for v in rng.integers(-m, m + 1, size=2))
            if dy or dx:
                break
        anchor = window[m : m + p, m : m + p]
        shifted = window[m + dy : m + dy + p, m + dx : m + dx + p]
        noise = rng.normal(0.0, self.noise_std, size=shifted.shape).astype(np.float32)
        positive = np.clip(shifted + noise, 0.0, 1.0)
        b = int(rng.integers(self.n_images - 1))
        b += b >= a  # any image but the anchor's
        negative = self._crop(rng, b, p)
        return {
            "anchor": _tensor(anchor),
            "positive": _tensor(positive),
            "negative": _tensor(negative),
            "shift": torch.tensor([dy, dx]),
            "anchor_source": a,
            "negative_source": b,
        }


def _find_images(root: Path, extensions: Sequence[str]) -> list[Path]:
    exts = {e.lower() for e in extensions}
    return sorted(path for path in root.rglob("*") if path.suffix.lower() in exts)


class ImageFolderPatches(TripletPatches):
    """:class:`TripletPatches` from every image under ``root`` (searched recursively,
    sorted by path), loaded lazily as RGB.

    ``max_side`` (optional) shrinks images whose longer side exceeds it; an image too
    small for a ``p + 2·max_shift`` window is enlarged (bicubic) to fit.
    """

    def __init__(
        self,
        root: str | Path,
        p: int,
        *,
        length: int = 10_000,
        seed: int = 0,
        max_shift: int = 4,
        noise_std: float = 0.05,
        augment: Augment | bool = True,
        max_side: int | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"{self.root} is not a folder.")
        self.paths = _find_images(self.root, extensions)
        self.max_side = max_side
        super().__init__(
            p,
            None,
            length=length,
            seed=seed,
            max_shift=max_shift,
            noise_std=noise_std,
            augment=augment,
        )

    @property
    def n_images(self) -> int:
        return len(self.paths)

    def _check_count(self) -> None:
        if self.n_images < 2:
            raise ValueError(
                f"Found {self.n_images} image(s) under {self.root}; triplets need at least two "
                f"(extensions {', '.join(IMAGE_EXTENSIONS)})."
            )

    def image(self, k: int) -> np.ndarray:
        with Image.open(self.paths[k]) as im:
            im = im.convert("RGB")
            need = self.p + 2 * self.margin
            w, h = im.size
            scale = 1.0
            if self.max_side is not None and max(w, h) > self.max_side:
                scale = self.max_side / max(w, h)
            if min(w, h) * scale < need:
                scale = need / min(w, h)
            if scale != 1.0:
                size = (max(need, round(w * scale)), max(need, round(h * scale)))
                im = im.resize(size, Image.Resampling.BICUBIC)
            return to_rgb_float(np.asarray(im))


__all__ = [
    "PHOTOS",
    "NATURAL_PHOTOS",
    "Augment",
    "NO_AUGMENT",
    "load_photos",
    "to_rgb_float",
    "RandomPatches",
    "TripletPatches",
    "ImageFolderPatches",
]
