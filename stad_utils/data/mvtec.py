"""MVTec AD (and any folder in its layout) as a PyTorch dataset of dict samples.

The layout (Bergmann et al., CVPR 2019)::

    ROOT/CATEGORY/train/good/*.png
    ROOT/CATEGORY/test/good/*.png
    ROOT/CATEGORY/test/<defect_type>/*.png
    ROOT/CATEGORY/ground_truth/<defect_type>/<stem>_mask.png

Each sample is a dict (see ARCHITECTURE.md, "The batch"): ``image`` (3, H, W) float in
[0, 1] (8- and 16-bit files scaled exactly), ``mask`` (1, H, W) float in {0, 1} (any
nonzero mask pixel is defect), ``label`` (0 good, 1 defective),
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


MASK_SUFFIXES = (".png", ".bmp")  # lossless only: any nonzero mask pixel is a defect


def mask_path_for(root: Path, image: Path, defect_type: str) -> Path:
    """The ground-truth mask of a defective test image: ``<stem>_mask.png`` in
    ``ground_truth/<defect_type>``, the name matched case-insensitively like image names
    (``000_MASK.PNG`` is found too). Returns the expected MVTec path if there is none;
    two files that differ only in case are refused as ambiguous."""
    folder = root / "ground_truth" / defect_type
    expected = folder / f"{image.stem}_mask.png"
    wanted = {f"{image.stem}_mask{suffix}".lower() for suffix in MASK_SUFFIXES}
    found = (
        sorted(p for p in folder.iterdir() if p.name.lower() in wanted) if folder.is_dir() else []
    )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetLayoutError(
            f"Several masks for {image} in {folder} ({names}): keep exactly one."
        )
    return found[0] if found else expected


class ImageFormatError(OSError):
    """An image file is readable but its pixel format cannot be converted exactly."""


# Modes Pillow converts to RGB exactly (by their standard definitions). CMYK uses the
# naive formula R = (255 - C)(255 - K)/255, as every viewer without a colour profile.
_CONVERTED_TO_RGB = ("P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _pixels(handle: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """The file's pixels as (H, W) or (H, W, 3) integers and their full scale (255 for
    8-bit files, 65535 for 16-bit ones). Alpha is dropped only where every pixel is
    opaque: a transparent pixel has no colour to read, so such files are refused."""
    mode = handle.mode
    if mode == "P" and "transparency" in handle.info:
        handle, mode = handle.convert("RGBA"), "RGBA"
    elif mode == "PA":
        handle, mode = handle.convert("RGBA"), "RGBA"
    if mode in ("L", "RGB"):
        return np.asarray(handle), 255
    if mode == "1":
        return np.asarray(handle.convert("L")), 255
    if mode in _SIXTEEN_BIT:
        return np.asarray(handle).astype(np.uint16), 65535
    if mode == "I":  # 16-bit grayscale PNGs, as older Pillow versions open them
        values = np.asarray(handle)
        if values.min() >= 0 and values.max() <= 65535:
            return values.astype(np.uint16), 65535
    if mode in ("LA", "RGBA"):
        array = np.asarray(handle)
        if array[..., -1].min() < 255:
            raise ImageFormatError(
                f"The image {path} has transparent pixels (mode {mode}), whose colour is "
                "undefined. Flatten it onto a background and save it without alpha "
                "(e.g. as RGB PNG)."
            )
        return array[..., :-1].squeeze(-1) if mode == "LA" else array[..., :3], 255
    if mode in _CONVERTED_TO_RGB:
        return np.asarray(handle.convert("RGB")), 255
    raise ImageFormatError(
        f"The image {path} has pixel mode {mode!r}, which cannot be read exactly. Save it "
        "as an 8- or 16-bit grayscale or RGB PNG."
    )


def _decode(path: Path) -> tuple[np.ndarray, int]:
    try:
        with Image.open(path) as handle:
            return _pixels(handle, path)
    except ImageFormatError:
        raise
    except (OSError, ValueError) as error:
        raise OSError(
            f"Cannot read the image {path}: the file is corrupt or not an image "
            f"({error}). Delete it, or re-download / regenerate the dataset."
        ) from error


def read_image(path: Path, mode: str = "RGB") -> torch.Tensor:
    """Decode an image file exactly; a clear error naming the file if it cannot be.

    Returns ``(C, H, W)``: 3 channels for ``mode="RGB"`` (grayscale files are repeated),
    1 for ``mode="L"`` (colour files get Pillow's luma weights). 8-bit files give uint8;
    files with more bits (16-bit PNG) give float32 already scaled to [0, 1], so no
    precision is lost. Palette, 1-bit, CMYK and opaque LA/RGBA files are converted;
    partly transparent ones are refused. Pillow decodes: torchvision's own image
    decoding is deprecated since 0.29.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}.")
    array, scale = _decode(Path(path))
    if mode == "RGB" and array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    elif mode == "L" and array.ndim == 3:
        luma = array.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        array = np.round(luma).astype(array.dtype)
    tensor = torch.from_numpy(np.array(array))  # a writable copy
    if scale != 255:
        tensor = tensor.to(torch.float32) / scale
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def read_mask(path: Path) -> torch.Tensor:
    """A ground-truth mask as bool ``(1, H, W)``: any nonzero pixel (in any channel) is
    defect, whatever the file's scale (0/1, 0/255, 16-bit). In a palette (P) mask the
    palette index is the label, as in segmentation datasets: index 0 is good."""
    path = Path(path)
    try:
        with Image.open(path) as handle:
            if handle.mode == "P":
                return torch.from_numpy(np.asarray(handle) != 0).unsqueeze(0)
    except (OSError, ValueError):
        pass  # _decode below reports the unreadable file
    array, _ = _decode(path)
    nonzero = array != 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(axis=-1)
    return torch.from_numpy(nonzero).unsqueeze(0)


def to_unit_float(image: torch.Tensor) -> torch.Tensor:
    """An image from ``read_image`` as float32 in [0, 1]."""
    return image.float().div_(255.0) if image.dtype == torch.uint8 else image.float()


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
                            f"Missing ground-truth mask for {image}: expected {mask} (the "
                            "name is matched case-insensitively, .png or .bmp). Add the "
                            "mask, or move the image to test/good if it has no defect."
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
            mask = read_mask(mask_path).to(torch.uint8)  # any nonzero pixel is defect
            if mask.shape[-2:] != image.shape[-2:]:
                raise DatasetLayoutError(
                    f"Mask {mask_path} is {tuple(mask.shape[-2:])} but its image {path} "
                    f"is {tuple(image.shape[-2:])}: they must have the same size."
                )
            if not mask.any():
                raise DatasetLayoutError(
                    f"The mask {mask_path} of the defective image {path} is empty (no "
                    "nonzero pixel). Mark the defect in the mask, or move the image to "
                    "test/good if it has none."
                )
        if self.image_size is not None:
            size = [self.image_size, self.image_size]
            image = TF.resize(image, size, antialias=True)
            mask = TF.resize(mask, size, interpolation=TF.InterpolationMode.NEAREST)
        return {
            "image": to_unit_float(image),
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
