"""Comparing methods across categories: the benchmark sweep's figures (``stad_utils.bench``).

Every function returns the matplotlib Figure. The inputs are plain dicts, so a chapter
can draw its own comparison without the sweep:

* ``plot_per_category({method: {category: value}}, errors=...)`` — grouped bars, one group
  per category and one bar per method, error bars (e.g. the standard deviation over seeds)
  where given;
* ``plot_cost_accuracy({method: {"train_seconds", "au_pro", "parameters"}})`` — training
  time (or another ``cost``, log scale) against accuracy, the marker area growing with the
  parameter count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .curves import CURVE_COLORS
from .style import new_axes

__all__ = ["plot_per_category", "plot_cost_accuracy", "method_colors"]

#: More colours than methods: the book's palette, then matplotlib's tab10.
_PALETTE = (*CURVE_COLORS, *plt.get_cmap("tab10").colors)


def method_colors(methods) -> dict[str, object]:
    """One colour per method, in the given order (the same in every comparison figure)."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(methods)}


def _number(value) -> float:
    """A float, or NaN for ``None`` / missing values."""
    return math.nan if value is None else float(value)


def plot_per_category(
    values: Mapping[str, Mapping[str, float]],
    errors: Mapping[str, Mapping[str, float]] | None = None,
    ylabel: str = "AU-PRO",
    title: str = "Per category",
    ax=None,
):
    """Grouped bars: one group per category, one bar per method.

    ``values``: ``{method: {category: value}}``; categories are drawn in the order they
    first appear. ``errors``: the same shape (e.g. the standard deviation over seeds);
    missing or ``None`` entries draw no error bar. A method without a value for a category
    leaves a gap.
    """
    methods = list(values)
    categories = list(dict.fromkeys(c for name in methods for c in values[name]))
    width_inches = 1.0 + len(categories) * (0.3 * max(len(methods), 1) + 0.2)
    fig, ax = new_axes(ax, size=(min(12.0, max(4.8, width_inches)), 3.6))
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(categories))
    colors = method_colors(methods)
    for i, name in enumerate(methods):
        heights = np.array([_number(values[name].get(c)) for c in categories])
        spread = None
        if errors is not None and name in errors:
            spread = np.array([_number(errors[name].get(c)) for c in categories])
            spread = None if np.all(np.isnan(spread)) else np.nan_to_num(spread)
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            np.nan_to_num(heights),
            width * 0.92,
            yerr=spread,
            capsize=3 if spread is not None else 0,
            color=colors[name],
            label=name,
            error_kw={"elinewidth": 1, "ecolor": "0.2"},
        )
    ax.set_xticks(x, categories, rotation=30 if len(categories) > 5 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    finite = [v for name in methods for v in values[name].values() if v is not None]
    if finite and 0 <= min(finite) and max(finite) <= 1:
        ax.set_ylim(0, 1.05)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_cost_accuracy(
    points: Mapping[str, Mapping[str, float]],
    accuracy: str = "au_pro",
    ylabel: str = "mean AU-PRO",
    title: str = "Cost against accuracy",
    ax=None,
    cost: str = "train_seconds",
    xlabel: str = "training time per category (s, log scale)",
):
    """A cost (log scale; default training seconds) against accuracy, one marker per method.

    ``points``: ``{method: {cost: value, accuracy: value, "parameters": n}}``. The marker
    area grows with the parameter count; the label gives it in millions. Methods without
    a cost or an accuracy are left out. Another cost, e.g. ``cost="ms_per_image"``, needs
    its ``xlabel``.
    """
    fig, ax = new_axes(ax, size=(5.6, 3.8))
    colors = method_colors(points)
    drawn = {
        name: p
        for name, p in points.items()
        if p.get(cost) is not None and p.get(accuracy) is not None
    }
    largest = max((_number(p.get("parameters")) for p in drawn.values()), default=math.nan)
    by_accuracy = sorted(drawn, key=lambda name: float(drawn[name][accuracy]))
    for name, p in drawn.items():
        parameters = _number(p.get("parameters"))
        scale = parameters / largest if largest and not math.isnan(parameters) else 0.0
        seconds = max(float(p[cost]), 1e-3)
        ax.scatter(
            seconds,
            float(p[accuracy]),
            s=40 + 400 * scale,
            color=colors[name],
            alpha=0.8,
            edgecolor="0.2",
            zorder=3,
        )
        label = name if math.isnan(parameters) else f"{name} ({parameters / 1e6:.1f} M)"
        ax.annotate(
            label,
            (seconds, float(p[accuracy])),
            xytext=(8, 6 if by_accuracy.index(name) % 2 else -12),  # neighbours alternate
            textcoords="offset points",
        )
    ax.margins(y=0.15)  # room for the labels above and below
    ax.set_xscale("log")
    subs = (1, 2, 5)
    if drawn:
        seconds = [max(float(p[cost]), 1e-3) for p in drawn.values()]
        low, high = min(seconds) / 2, max(seconds) * 4  # room for the labels
        ax.set_xlim(low, high)
        if high / low > 500:  # over more than ~3 decades 1-2-5 ticks would overlap
            subs = (1,)
    # plain tick labels (1, 10, 100) rather than mathtext powers of ten
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title + " (marker area ∝ parameters)")
    fig.tight_layout()
    return fig
