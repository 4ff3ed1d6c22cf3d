"""Dataset statistics: how many images of each kind, how large the defects are."""

from __future__ import annotations

from pathlib import Path

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


def statistics_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`category_statistics` rows."""
    header = (
        "| category | train | val | test good | test defective | defect types | "
        "mean defect area |\n|---|---:|---:|---:|---:|---|---:|\n"
    )
    body = "".join(
        f"| {r['category']} | {r['train']} | {r['val']} | {r['test_good']} | "
        f"{r['test_defective']} | {', '.join(r['defect_types'])} | "
        f"{r['mean_defect_area_percent']:.2f} % |\n"
        for r in rows
    )
    return header + body
