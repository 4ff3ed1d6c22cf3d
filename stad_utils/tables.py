"""Markdown tables, one way: rows of values, columns that say how to show them.

Every table of the package (metrics per category, dataset statistics, the published
numbers, backbones and parameter counts, the runner's comparison and the benchmark's
report) goes through :func:`markdown_table` (``tests/test_tables.py`` checks that no module
writes one by hand), and every metric has one title and one format, in
:data:`METRIC_COLUMNS`. Quick use::

    from stad_utils.tables import Column, markdown_table, metric_columns

    columns = [Column("category", align="left"), *metric_columns("image_auroc", "au_pro")]
    print(markdown_table([{"category": "carpet", "image_auroc": 0.98, "au_pro": 0.91}],
                         columns, mean_label="mean"))

Why hand-written: pandas' ``to_markdown`` needs the extra package ``tabulate`` and picks
its own spacing and number formats, while the book compares some tables byte for byte
(``book/results.md`` against :func:`stad_utils.published.published_tables`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

__all__ = [
    "METRIC_COLUMNS",
    "MISSING",
    "Column",
    "markdown_table",
    "metric_columns",
]

#: What a table shows where a value is missing (``None``, NaN or no such key).
MISSING = "–"


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Args:
        key: the key of the value in each row.
        title: the header; default: ``key``.
        format: a ``str.format`` pattern (``"{:.3f}"``) or a function value → text.
            Text values (``str``) are shown as they are, whatever the format.
        align: ``"right"`` (numbers) or ``"left"`` (names, lists).
        mean: whether the mean row shows this column's mean (see :func:`markdown_table`).
        mean_format: how to show the mean; default: ``format``.
    """

    key: str
    title: str | None = None
    format: str | Callable[[object], str] = "{}"
    align: str = "right"
    mean: bool = True
    mean_format: str | Callable[[object], str] | None = None

    def __post_init__(self) -> None:
        if self.align not in ("left", "right"):
            raise ValueError(
                f"Column {self.key!r}: align must be 'left' or 'right', not {self.align!r}."
            )

    @property
    def header(self) -> str:
        return self.key if self.title is None else self.title

    def show(self, value, missing: str = MISSING) -> str:
        """``value`` as text: ``missing`` for ``None``/NaN, text as is, else formatted."""
        return _show(value, self.format, missing)

    def show_mean(self, value, missing: str = MISSING) -> str:
        return _show(value, self.format if self.mean_format is None else self.mean_format, missing)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _show(value, fmt, missing: str) -> str:
    if _is_missing(value):
        return missing
    if isinstance(value, str):
        return value
    return fmt(value) if callable(fmt) else fmt.format(value)


def _mean(values: list):
    """Mean of the values present (``None`` skipped); NaN if one is NaN (unknown mean)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def markdown_table(
    rows: Iterable[Mapping],
    columns: Sequence[Column],
    mean_label: str | None = None,
    missing: str = MISSING,
) -> str:
    """A Markdown table, one line per row and a header; ends with a newline.

    ``rows`` are mappings ``{key: value}``; a key a row lacks shows as ``missing``, as do
    ``None`` and NaN. With ``mean_label`` a last row shows, in the first column, that
    label and, in every column with ``mean=True`` but the first, the mean of the values
    present (``None`` and absent keys are skipped; a NaN value makes the mean NaN, shown
    as ``missing``). Columns with ``mean=False`` stay empty in that row.
    """
    if not columns:
        raise ValueError("markdown_table needs at least one column.")
    rows = list(rows)
    lines = [
        _line(c.header for c in columns),
        "|" + "|".join("---" if c.align == "left" else "---:" for c in columns) + "|",
    ]
    lines += [_line(c.show(row.get(c.key), missing) for c in columns) for row in rows]
    if mean_label is not None:
        means = [
            column.show_mean(_mean([row.get(column.key) for row in rows]), missing)
            if column.mean
            else ""
            for column in columns[1:]
        ]
        lines.append(_line([mean_label, *means]))
    return "\n".join(lines) + "\n"


def _line(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# ----------------------------------------------------------------------------------------
# The metrics: one title and one format each
# ----------------------------------------------------------------------------------------

#: Every metric a report or a benchmark row holds → its column (title, format). The
#: first seven are :attr:`stad_utils.metrics.MetricsReport.KEYS`, in that order (tested).
METRIC_COLUMNS: dict[str, Column] = {
    column.key: column
    for column in (
        Column("image_auroc", "image AUROC", "{:.3f}"),
        Column("pixel_auroc", "pixel AUROC", "{:.3f}"),
        Column("au_pro", "AU-PRO", "{:.3f}"),
        Column("dice", "Dice", "{:.3f}"),
        # thresholds are not comparable across categories: no mean
        Column("threshold", "threshold", "{:.3g}", mean=False),
        Column("false_goods", "false goods", "{:.3g}"),
        Column("false_bads", "false bads", "{:.3g}"),
        # at the threshold fitted on good validation images (no test labels)
        Column("label_free_dice", "Dice (label-free t)", "{:.3f}"),
        Column("label_free_false_goods", "false goods (label-free)", "{:.3g}"),
        Column("label_free_false_bads", "false bads (label-free)", "{:.3g}"),
        Column("train_seconds", "training s", "{:.1f}"),
        Column("predict_seconds_per_image", "ms per image", lambda s: f"{1000 * s:.1f}"),
        Column("parameters", "parameters", "{:,.0f}"),
        Column("peak_memory_mb", "peak MB", "{:.0f}"),
    )
}


def metric_columns(*keys: str, **changes) -> list[Column]:
    """The columns of :data:`METRIC_COLUMNS` for ``keys`` (all when none are given), with
    ``changes`` applied to each (e.g. ``digits``-specific ``format=...``).

    Raises ``ValueError`` naming the known keys for an unknown one.
    """
    unknown = [key for key in keys if key not in METRIC_COLUMNS]
    if unknown:
        raise ValueError(f"Unknown metric {unknown}: use one of {', '.join(METRIC_COLUMNS)}.")
    return [replace(METRIC_COLUMNS[key], **changes) for key in keys or METRIC_COLUMNS]
