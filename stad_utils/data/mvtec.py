"""MVTec AD (and any folder in its layout) as a PyTorch dataset of dict samples.

The layout (Bergmann et al., CVPR 2019)::

    ROOT/CATEGORY/train/good/*.png
    ROOT/CATEGORY/test/good/*.png
    ROOT/CATEGORY/test/<defect_type>/*.png
    ROOT/CATEGORY/ground_truth/<defect_type>/<stem>_mask.png

Each sample is a dict (see ARCHITECTURE.md, "The batch"): ``image`` (3, H, W) float in
[0, 1], ``mask`` (1, H, W) float in {0, 1}, ``label`` (0 good, 1 defective),
``defect_type`` and ``path``.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "val", "test")


class DatasetLayoutError(FileNotFoundError):
    """The folder is not in MVTec AD layout; the message says what is missing."""


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def validation_split(paths: list[Path], fraction: float, seed: int) -> tuple[list, list]:
    """Split the good training images into (train, validation), deterministically.

    The validation images are for model selection and score normalization; test labels
    are never used for either. At least one image goes to each side when possible.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}.")
    order = list(range(len(paths)))
    random.Random(seed).shuffle(order)
    n_val = round(len(paths) * fraction)
    if fraction > 0 and len(paths) >= 2:
        n_val = min(max(n_val, 1), len(paths) - 1)
    val_index = set(order[:n_val])
    train = [p for i, p in enumerate(paths) if i not in val_index]
    val = [p for i, p in enumerate(paths) if i in val_index]
    return train, val


def mask_path_for(root: Path, image: Path, defect_type: str) -> Path:
    """The ground-truth mask file of a defective test image (MVTec naming)."""
    return root / "ground_truth" / defect_type / f"{image.stem}_mask.png"


def read_image(path: Path, mode: str = "RGB") -> torch.Tensor:
    """Decode an image file; a clear error if it cannot be read.

    Returns a uint8 tensor ``(C, H, W)``: 3 channels for ``mode="RGB"`` (grayscale files
    are repeated to RGB), 1 for ``mode="L"``. Pillow decodes: torchvision's own image
    decoding is deprecated since 0.29.
    """
    try:
        with Image.open(path) as handle:
            array = np.asarray(handle.convert(mode))
    except (OSError, ValueError) as error:
        raise OSError(
            f"Cannot read the image {path}: the file is corrupt or not an image "
            f"({error}). Delete it, or re-download / regenerate the dataset."
        ) from error
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)


class MVTecAD(Dataset):
    """One category of MVTec AD, or of any dataset in its layout.

    Args:
        root: folder holding the category folders (e.g. ``data/mvtec``).
        category: category folder name (e.g. ``"carpet"``).
        split: ``"train"`` (good images minus validation), ``"val"`` (a deterministic
            part of ``train/good``) or ``"test"`` (good and defective, with masks).
        image_size: resize images to this square size (bilinear, antialiased) and masks
            with nearest neighbour; ``None`` keeps the files' size.
        val_fraction: share of ``train/good`` held out as the validation split.
        seed: seed of the validation split.
        cache: keep decoded, resized samples in memory (the sets are small).
    """

    def __init__(
        self,
        root: str | Path,
        category: str,
        split: str = "train",
        image_size: int | None = 256,
        val_fraction: float = 0.1,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        self.root = Path(root)
        self.category = category
        self.split = split
        self.image_size = image_size
        self.folder = self.root / category
        self._check_layout()
        self.items = self._list_items(val_fraction, seed)
        self._cache: dict[int, dict] | None = {} if cache else None

    # -- layout ---------------------------------------------------------------------
    def _check_layout(self) -> None:
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f"Dataset root {self.root} does not exist. Download MVTec AD with "
                "`python -m stad_utils download --category CAT` or point root at the "
                "folder that holds the category folders."
            )
        if not self.folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DatasetLayoutError(
                f"Category {self.category!r} not found in {self.root} "
                f"(found: {', '.join(found) or 'nothing'})."
            )
        for needed in ("train/good", "test"):
            if not (self.folder / needed).is_dir():
                raise DatasetLayoutError(
                    f"{self.folder} is not in MVTec AD layout: missing folder "
                    f"'{needed}'. Expected CATEGORY/train/good, CATEGORY/test/<kind> and "
                    "CATEGORY/ground_truth/<kind>."
                )
        if not _images_in(self.folder / "train" / "good"):
            raise DatasetLayoutError(f"No training images in {self.folder / 'train/good'}.")

    def _list_items(self, val_fraction: float, seed: int) -> list[tuple[Path, Path | None, str]]:
        """(image path, mask path or None, defect type) for every sample of the split."""
        if self.split in ("train", "val"):
            train, val = validation_split(
                _images_in(self.folder / "train" / "good"), val_fraction, seed
            )
            return [(p, None, "good") for p in (train if self.split == "train" else val)]
        items = []
        for kind_dir in sorted(d for d in (self.folder / "test").iterdir() if d.is_dir()):
            kind = kind_dir.name
            for image in _images_in(kind_dir):
                mask = None
                if kind != "good":
                    mask = mask_path_for(self.folder, image, kind)
                    if not mask.is_file():
                        raise DatasetLayoutError(
                            f"Missing ground-truth mask for {image}: expected {mask}."
                        )
                items.append((image, mask, kind))
        if not items:
            raise DatasetLayoutError(f"No test images in {self.folder / 'test'}.")
        return items

    # -- samples --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = self._load(index)
        if self._cache is not None:
            self._cache[index] = sample
        return sample

    def _load(self, index: int) -> dict:
        path, mask_path, kind = self.items[index]
        image = read_image(path)  # grayscale categories become RGB here
        if mask_path is None:
            mask = torch.zeros((1, *image.shape[-2:]), dtype=torch.uint8)
        else:
            mask = read_image(mask_path, mode="L")
            if mask.shape[-2:] != image.shape[-2:]:
                raise DatasetLayoutError(
                    f"Mask {mask_path} is {tuple(mask.shape[-2:])} but its image {path} "
                    f"is {tuple(image.shape[-2:])}: they must have the same size."
                )
        mask = (mask > 127).to(torch.uint8)  # binarize (MVTec masks are 0/255)
        if self.image_size is not None:
            size = [self.image_size, self.image_size]
            image = TF.resize(image, size, antialias=True)
            mask = TF.resize(mask, size, interpolation=TF.InterpolationMode.NEAREST)
        return {
            "image": image.float().div_(255.0),
            "mask": mask.float(),
            "label": int(kind != "good"),
            "defect_type": kind,
            "path": str(path),
        }

    # -- summaries ------------------------------------------------------------------
    def counts(self) -> Counter:
        """Number of images per defect type ("good" included)."""
        return Counter(kind for _, _, kind in self.items)

    @property
    def labels(self) -> list[int]:
        return [int(kind != "good") for _, _, kind in self.items]

    @property
    def defect_types(self) -> list[str]:
        return [kind for _, _, kind in self.items]

    def masks(self) -> np.ndarray:
        """All ground-truth masks as one uint8 array ``(N, H, W)`` in {0, 1} (for metrics)."""
        return np.stack([self[i]["mask"][0].numpy().astype(np.uint8) for i in range(len(self))])

    def __repr__(self) -> str:
        return (
            f"MVTecAD(category={self.category!r}, split={self.split!r}, "
            f"images={len(self)}, image_size={self.image_size})"
        )


def categories(root: str | Path) -> list[str]:
    """The category folders under ``root`` that look like MVTec layout."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "train" / "good").is_dir())
