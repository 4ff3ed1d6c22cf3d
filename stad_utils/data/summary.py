"""Dataset statistics: how many images of each kind, how large the defects are."""

from __future__ import annotations

from pathlib import Path

from ..tables import Column, markdown_table
from .mvtec import MVTecAD


def category_statistics(
    root: str | Path, category: str, image_size: int | None = None, val_fraction: float = 0.1
) -> dict:
    """Counts per split and defect type, and the defects' mean area (in % of the image)."""
    train = MVTecAD(root, category, "train", image_size, val_fraction)
    val = MVTecAD(root, category, "val", image_size, val_fraction)
    test = MVTecAD(root, category, "test", image_size, cache=False)
    counts = test.counts()
    areas = [float(test[i]["mask"].mean()) for i, label in enumerate(test.labels) if label]
    return {
        "category": category,
        "train": len(train),
        "val": len(val),
        "test_good": counts.get("good", 0),
        "test_defective": sum(v for k, v in counts.items() if k != "good"),
        "defect_types": sorted(k for k in counts if k != "good"),
        "mean_defect_area_percent": 100 * sum(areas) / max(len(areas), 1),
    }


#: The columns of :func:`statistics_table`, one per key of :func:`category_statistics`.
STATISTICS_COLUMNS = (
    Column("category", align="left"),
    Column("train"),
    Column("val"),
    Column("test_good", "test good"),
    Column("test_defective", "test defective"),
    Column("defect_types", "defect types", ", ".join, align="left"),
    Column("mean_defect_area_percent", "mean defect area", "{:.2f} %"),
)


def statistics_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`category_statistics` rows."""
    return markdown_table(rows, STATISTICS_COLUMNS)
