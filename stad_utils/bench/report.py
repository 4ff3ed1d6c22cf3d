"""The Markdown report of a merged sweep, its tables one by one (chapter 9 shows them),
our numbers beside the published ones, and the figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import runner
from ..published import CATEGORY_ORDER, SOURCES, published_for
from ..tables import MISSING, Column, markdown_table, metric_columns
from .joblist import unique

if TYPE_CHECKING:  # results.py imports this module: the class is only annotated here
    from .results import BenchResults


def _source_key(source: str) -> str:
    return next((key for key, text in SOURCES.items() if source.startswith(text)), source)


def published_beside(results: BenchResults) -> list[dict]:
    """Our mean beside every published number for the same method, category and metric:
    rows ``{method, category, metric, ours, published, source}`` where ``source`` is a
    key of :data:`stad_utils.published.SOURCES` (``THESIS``, ``ANOMALIB``, ``US_PRO``)
    with its detail, e.g. ``ANOMALIB, ResNet-18``, and ``source_key`` the bare key.
    Empty when no category matches."""
    rows = []
    for entry in results.summary:
        for item in published_for(entry["method"], entry["category"]):
            key = _source_key(item["source"])
            detail = item["source"][len(SOURCES.get(key, "")) :].strip(" ()")
            rows.append(
                {
                    "method": entry["method"],
                    "category": entry["category"],
                    "metric": item["metric"],
                    "ours": entry.get(f"{item['metric']}_mean"),
                    "published": item["value"],
                    "source": f"{key}, {detail}" if detail else key,
                    "source_key": key,
                }
            )
    return rows


#: Table 9.1's columns: accuracy, the decisions at the oracle threshold (test labels,
#: thesis eq. 5.6) beside those at the label-free one (good validation images only), and
#: the costs.
OVERALL_COLUMNS = (
    Column("method", align="left"),
    *(c for c in runner.COMPARISON_COLUMNS if c.key not in ("train_seconds", "parameters")),
    *metric_columns("train_seconds", "predict_seconds_per_image", "parameters", "peak_memory_mb"),
)

#: the metrics' titles in the report, the oracle's marked as such ("Dice (oracle t)")
_TITLES = {column.key: column.header for column in OVERALL_COLUMNS}


def _mean_std(mean, std, fmt: str = "{:.3f}") -> str:
    if mean is None:
        return MISSING
    return fmt.format(mean) + ("" if std is None else f" ± {fmt.format(std)}")


def _listing(values: list) -> str:
    return ", ".join(str(v) for v in values)


def overall_table(results: BenchResults) -> str:
    """The Markdown table of means per method (over categories, each the mean of its
    seeds): accuracy, decisions at the oracle and at the label-free threshold, time,
    parameters and peak memory."""
    return markdown_table(results.overall, OVERALL_COLUMNS)


def per_category_table(results: BenchResults) -> str:
    """The Markdown table of image AUROC, AU-PRO and Dice at the oracle and at the
    label-free threshold per category and method (mean ± std over seeds), with the
    published numbers beside them where there are some."""
    per_metric = {}
    for row in published_beside(results):
        per_metric.setdefault((row["method"], row["category"], row["metric"]), []).append(
            f"{row['published']:.3f} ({row['source']})"
        )
    columns = [Column("category", align="left"), Column("method", align="left"), Column("seeds")]
    for metric in ("image_auroc", "au_pro"):
        columns.append(Column(metric, _TITLES[metric]))
        if any(key[2] == metric for key in per_metric):
            columns.append(Column(f"published_{metric}", f"published {columns[-1].header}"))
    columns += [
        Column("dice", _TITLES["dice"]),
        Column("label_free_dice", _TITLES["label_free_dice"]),
    ]
    rows = []
    for category in results.categories:
        for method in results.methods:
            entry = next(
                (r for r in results.summary if r["method"] == method and r["category"] == category),
                None,
            )
            if entry is None:
                continue
            row = {"category": category, "method": method, "seeds": entry["seeds"]}
            for metric in ("image_auroc", "au_pro", "dice", "label_free_dice"):
                row[metric] = _mean_std(entry[f"{metric}_mean"], entry[f"{metric}_std"])
                published = per_metric.get((method, category, metric), [MISSING])
                row[f"published_{metric}"] = "; ".join(published)
            rows.append(row)
    return markdown_table(rows, columns)


def published_beside_table(results: BenchResults) -> str:
    """:func:`published_beside` as a Markdown table followed by the list of its sources;
    an empty string when no published number matches the categories."""
    published = published_beside(results)
    if not published:
        return ""

    def number(row: dict, key: str) -> str:
        return Column(key, format="{:.3f}" if "auroc" in row["metric"] else "{:.3g}").show(row[key])

    rows = [
        {
            **row,
            "metric": _TITLES.get(row["metric"], row["metric"]),
            "ours": number(row, "ours"),
            "published": number(row, "published"),
        }
        for row in published
    ]
    columns = [Column(key, align="left") for key in ("method", "category", "metric")]
    columns += [Column("ours"), Column("published"), Column("source", align="left")]
    used = sorted(unique(row["source_key"] for row in published))
    return (
        markdown_table(rows, columns)
        + "\n"
        + "\n".join(f"* `{key}`: {SOURCES[key]}" for key in used if key in SOURCES)
        + "\n"
    )


def results_markdown(results: BenchResults) -> str:
    """The Markdown report of a merged sweep (no timestamps, no paths)."""
    parts = ["# Benchmark results\n"]
    seeds = sorted(unique(row["seed"] for row in results.runs))
    parts.append(
        f"{len(results.runs)} runs: {len(results.methods)} method(s) × "
        f"{len(results.categories)} categor{'y' if len(results.categories) == 1 else 'ies'} "
        f"({_listing(results.categories)}) × {len(seeds)} seed(s) ({_listing(seeds)}).\n"
    )
    settings = [
        {
            "method": method,
            **{key: _listing(value) for key, value in results.settings[method].items()},
        }
        for method in results.methods
    ]
    columns = [Column(key, align="left") for key in ("method", "profile", "backbone")]
    columns += [Column("image_size", "image size"), Column("epochs")]
    parts.append(markdown_table(settings, columns))

    parts.append("## Means over categories and seeds\n")
    parts.append(
        "Each category weighs the same (the mean of its seeds' mean). Dice and the false "
        "goods and bads are shown twice: at the oracle threshold (image-level F1-optimal on "
        "the test labels, thesis eq. 5.6: a best case) and at the label-free one (a quantile "
        "of the good validation images' scores: what a deployment could set). Peak memory "
        "is the device's (CPU: the process's peak resident set).\n"
    )
    parts.append(overall_table(results))

    published = published_beside(results)
    parts.append("## Per category\n")
    parts.append("Mean ± standard deviation over seeds (no ± with one seed).\n")
    parts.append(per_category_table(results))

    parts.append("## Published numbers beside ours\n")
    if published:
        parts.append(
            "Every published number for a method and category we ran, beside our mean. The "
            "sources measured in their own setting (MVTec AD; the thesis: ResNet-18, "
            "224×224, seed 42), which can differ from ours above.\n"
        )
        parts.append(published_beside_table(results))
    else:
        parts.append(
            "No published numbers match these categories: the sources report MVTec AD "
            f"categories only ({_listing(CATEGORY_ORDER)}).\n"
        )
    if results.warnings:
        parts.append("## Notes\n")
        parts.append("\n".join(f"* {note}" for note in results.warnings) + "\n")
    return "\n".join(parts)


def save_figures(results: BenchResults, folder: str | Path) -> dict[str, Path]:
    """``per_category.png`` (AU-PRO per category and method, std over seeds as error bars)
    and ``cost_accuracy.png`` (training seconds against mean AU-PRO) in ``folder``."""
    from ..viz.style import pyplot_for_files

    plt = pyplot_for_files()
    from ..viz.comparison import plot_cost_accuracy, plot_per_category

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = {m: {} for m in results.methods}
    errors = {m: {} for m in results.methods}
    for row in results.summary:
        values[row["method"]][row["category"]] = row["au_pro_mean"]
        errors[row["method"]][row["category"]] = row["au_pro_std"]
    figures = {
        "per_category.png": plot_per_category(values, errors, ylabel="AU-PRO (FPR ≤ 0.3)"),
        "cost_accuracy.png": plot_cost_accuracy({row["method"]: row for row in results.overall}),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = folder / name
        figure.savefig(paths[name], bbox_inches="tight")
        plt.close(figure)
    return paths
