"""Datasets: MVTec AD (and any folder in its layout), its download, and the embedded
*textures* dataset used offline."""

from __future__ import annotations

from pathlib import Path

from ..config import Profile, data_root
from .download import MVTEC_CATEGORIES, download_mvtec
from .mvtec import DatasetLayoutError, MVTecAD, categories
from .summary import category_statistics, statistics_table
from .textures import CATEGORIES as TEXTURE_CATEGORIES
from .textures import DEFECT_KINDS as TEXTURE_DEFECTS
from .textures import ensure_textures


def dataset_root(profile: Profile) -> Path:
    """The root folder of the profile's dataset, materialized if needed.

    ``textures`` is generated on first use (seconds); ``mvtec`` downloads the profile's
    category on first use (resumable, checksummed).
    """
    if profile.dataset == "textures":
        return ensure_textures()
    if profile.dataset == "mvtec":
        return download_mvtec(data_root() / "mvtec", profile.category)
    raise ValueError(f"Unknown dataset {profile.dataset!r}: use 'textures' or 'mvtec'.")


def load_splits(
    root: str | Path, category: str, image_size: int | None, seed: int = 0
) -> tuple[MVTecAD, MVTecAD, MVTecAD]:
    """The (train, validation, test) datasets of one category, at one image size."""
    return tuple(
        MVTecAD(root, category, split, image_size=image_size, seed=seed)
        for split in ("train", "val", "test")
    )


__all__ = [
    "load_splits",
    "MVTecAD",
    "DatasetLayoutError",
    "categories",
    "category_statistics",
    "statistics_table",
    "dataset_root",
    "download_mvtec",
    "ensure_textures",
    "MVTEC_CATEGORIES",
    "TEXTURE_CATEGORIES",
    "TEXTURE_DEFECTS",
]
