"""ROC and PRO curves, thresholds and per-region overlaps (chapter 2 and every evaluation).

Every function returns the matplotlib Figure. Curves take the named tuples of
:mod:`stad_utils.metrics` (``RocCurve``, ``ProCurve``) or plain ``(x, y)`` pairs; several
curves are given as a dict ``{name: curve}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb

from stad_utils import metrics

from .style import (
    ANOMALY_CMAP,
    DEFECT_COLOR,
    GOOD_COLOR,
    MASK_COLOR,
    hide_axes,
    interactive_figure,
    new_axes,
    use_book_style,
)

__all__ = [
    "plot_roc",
    "plot_pro",
    "plot_roc_and_pro",
    "plot_report_curves",
    "plot_region_overlaps",
    "plot_threshold_grid",
    "threshold_explorer",
    "plot_f1_curve",
    "plot_normalized_scores",
]

#: Colours of a predicted mask against the ground truth.
HIT_COLOR = DEFECT_COLOR  # defect pixels found
MISS_COLOR = "#1d4e89"  # defect pixels missed
FALSE_ALARM_COLOR = "#bdbdbd"  # normal pixels predicted defective
BACKGROUND_COLOR = "#262626"
CURVE_COLORS = ("#264653", DEFECT_COLOR, GOOD_COLOR, "#e9c46a", "#8a5a9e", "#6c757d")
MAX_POINTS = 5000  # curves with millions of points are thinned for drawing only


def _as_curves(curves) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One curve or ``{name: curve}`` → ``{name: (x, y)}``."""
    if isinstance(curves, Mapping):
        return {str(k): (np.asarray(v[0]), np.asarray(v[1])) for k, v in curves.items()}
    return {"": (np.asarray(curves[0]), np.asarray(curves[1]))}


def _thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS):
    """At most about ``max_points`` points of a long curve, end points kept (drawing only)."""
    if x.size <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, x.size - 1, max_points).astype(np.int64))
    return x[keep], y[keep]


def _square(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def plot_roc(curves, title: str = "ROC curve", ax=None):
    """ROC curve(s): TPR against FPR, with the chance diagonal and the AUROC in the legend.

    ``curves``: a :class:`~stad_utils.metrics.RocCurve` / ``(fpr, tpr)`` pair, or a dict
    ``{name: curve}`` to compare several (e.g. image- and pixel-level).
    """
    fig, ax = new_axes(ax)
    ax.plot([0, 1], [0, 1], ls=":", color="0.6", lw=1, label="chance (0.500)")
    for (name, (fpr, tpr)), color in zip(_as_curves(curves).items(), CURVE_COLORS, strict=False):
        area = float(np.trapezoid(tpr, fpr))
        x, y = _thin(fpr, tpr)
        ax.plot(x, y, color=color, lw=2, label=f"{name + ' ' if name else ''}AUROC {area:.3f}")
    _square(ax, "false-positive rate", "true-positive rate", title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_pro(curves, fpr_limit: float = 0.3, title: str = "PRO curve", ax=None):
    """PRO curve(s): mean per-region overlap against pixel FPR, the area up to ``fpr_limit`` shaded.

    ``curves``: a :class:`~stad_utils.metrics.ProCurve` / ``(fpr, pro)`` pair or a dict of
    them. The legend gives each AU-PRO (normalized area up to ``fpr_limit``, MVTec AD).
    """
    fig, ax = new_axes(ax)
    ax.axvspan(0, fpr_limit, color="0.85", alpha=0.5, lw=0, label=f"FPR ≤ {fpr_limit:g}")
    ax.axvline(fpr_limit, color="0.5", lw=1, ls="--")
    for (name, (fpr, pro)), color in zip(_as_curves(curves).items(), CURVE_COLORS, strict=False):
        value = metrics.area_under_curve(fpr, pro, fpr_limit) / fpr_limit
        x, y = _thin(fpr, pro)
        inside = x <= fpr_limit
        y_limit = np.interp(fpr_limit, fpr, pro)
        ax.fill_between(
            np.append(x[inside], fpr_limit), np.append(y[inside], y_limit), color=color, alpha=0.2
        )
        ax.plot(x, y, color=color, lw=2, label=f"{name + ' ' if name else ''}AU-PRO {value:.3f}")
    _square(ax, "false-positive rate (normal pixels)", "per-region overlap (PRO)", title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_roc_and_pro(roc, pro, fpr_limit: float = 0.3, title: str | None = None):
    """Two panels: a pixel-level ROC curve and the PRO curve of the same maps.

    ``roc`` a :class:`~stad_utils.metrics.RocCurve` (or ``(fpr, tpr)``), ``pro`` a
    :class:`~stad_utils.metrics.ProCurve` (or ``(fpr, pro)``).
    """
    use_book_style()
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 4.0))
    plot_roc({"pixel": roc}, title="pixel-level ROC", ax=axes[0])
    plot_pro(pro, fpr_limit=fpr_limit, ax=axes[1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_report_curves(report, title: str | None = None):
    """Three panels for a :class:`~stad_utils.metrics.MetricsReport`: image ROC, pixel ROC, PRO."""
    use_book_style()
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.9))
    plot_roc({"image": report.image_roc}, title="image-level ROC", ax=axes[0])
    plot_roc({"pixel": report.pixel_roc}, title="pixel-level ROC", ax=axes[1])
    plot_pro(report.pro_curve, fpr_limit=report.fpr_limit, ax=axes[2])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------
# Thresholds and regions
# ----------------------------------------------------------------------------------------


def _overlap_image(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB: hits, misses, false alarms and background in the book's colours."""
    rgb = np.empty(predicted.shape + (3,), dtype=np.float32)
    rgb[...] = to_rgb(BACKGROUND_COLOR)
    rgb[predicted & ~truth] = to_rgb(FALSE_ALARM_COLOR)
    rgb[predicted & truth] = to_rgb(HIT_COLOR)
    rgb[~predicted & truth] = to_rgb(MISS_COLOR)
    return rgb


def _draw_overlap_panel(ax, score, truth, threshold, regions, overlaps) -> None:
    """Predicted mask vs ground truth of one image, each region labelled with its overlap."""
    ax.imshow(_overlap_image(score >= threshold, truth), interpolation="nearest")
    if truth.any():
        ax.contour(truth, levels=[0.5], colors=[MASK_COLOR], linewidths=1.0)
    for region_id in np.unique(regions[regions > 0]):
        pixels = np.argwhere(regions == region_id)
        cy, cx = pixels.mean(axis=0)
        if len(pixels) < 0.02 * regions.size:  # small region: label it from above
            cy = max(pixels[:, 0].min() - 0.06 * regions.shape[0], 0.04 * regions.shape[0])
        ax.text(
            cx,
            cy,
            f"{overlaps[region_id - 1]:.0%}",
            ha="center",
            va="center",
            fontsize=9,
            fontweight="bold",
            color="white",
            bbox={"boxstyle": "round,pad=0.15", "fc": "black", "alpha": 0.55, "lw": 0},
        )
    hide_axes(ax)


def _legend_handles():
    from matplotlib.patches import Patch

    return [
        Patch(color=HIT_COLOR, label="defect found"),
        Patch(color=MISS_COLOR, label="defect missed"),
        Patch(color=FALSE_ALARM_COLOR, label="false alarm"),
    ]


def plot_region_overlaps(
    anomaly_maps, masks, threshold: float, titles: Sequence[str] | None = None, size: float = 2.4
):
    """Anomaly maps (top) and predicted masks at ``threshold`` (bottom), regions annotated.

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W). Ground truth is outlined in
    cyan; each defect region shows its overlap (share of its pixels with score ≥
    threshold). The title gives the PRO value (mean overlap) and the pixel FPR.
    """
    maps, gt = metrics.as_maps_and_masks(anomaly_maps, masks)
    regions, sizes = metrics.label_regions(gt)
    overlaps = metrics.region_overlaps(maps, gt, threshold)
    fpr = np.count_nonzero((maps >= threshold) & ~gt) / max(int(sizes[0]), 1)
    use_book_style()
    n = maps.shape[0]
    fig, axes = plt.subplots(
        2, n, figsize=(size * n + 0.9, 2 * size + 0.8), squeeze=False, layout="constrained"
    )
    vmin, vmax = float(maps.min()), float(maps.max())
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        image = top.imshow(maps[i], cmap=ANOMALY_CMAP, vmin=vmin, vmax=vmax)
        if gt[i].any():
            top.contour(gt[i], levels=[0.5], colors=[MASK_COLOR], linewidths=1.0)
        top.set_title(titles[i] if titles else f"image {i + 1}", fontsize=9)
        hide_axes(top)
        _draw_overlap_panel(bottom, maps[i], gt[i], threshold, regions[i], overlaps)
    fig.colorbar(image, ax=axes[0, :].tolist(), shrink=0.8, label="anomaly score")
    pro = overlaps.mean() if overlaps.size else float("nan")
    fig.suptitle(f"threshold {threshold:.3g}:  PRO {pro:.2f},  pixel FPR {fpr:.3f}", fontsize=10)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncol=3, fontsize=8)
    return fig


def plot_threshold_grid(anomaly_maps, masks, thresholds: Sequence[float], size: float = 2.2):
    """The predicted masks at a few fixed thresholds: one row per threshold, one column per image.

    The static companion of :func:`threshold_explorer` (for the rendered book).
    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W).
    """
    maps, gt = metrics.as_maps_and_masks(anomaly_maps, masks)
    regions, sizes = metrics.label_regions(gt)
    use_book_style()
    n, rows = maps.shape[0], len(thresholds)
    fig, axes = plt.subplots(rows, n, figsize=(size * n + 1.4, size * rows), squeeze=False)
    for r, threshold in enumerate(thresholds):
        overlaps = metrics.region_overlaps(maps, gt, threshold)
        fpr = np.count_nonzero((maps >= threshold) & ~gt) / max(int(sizes[0]), 1)
        for i in range(n):
            _draw_overlap_panel(axes[r, i], maps[i], gt[i], threshold, regions[i], overlaps)
        axes[r, 0].set_ylabel(
            f"t = {threshold:.3g}\nPRO {overlaps.mean():.2f}, FPR {fpr:.3f}", fontsize=9
        )
    for i in range(n):
        axes[0, i].set_title(f"image {i + 1}", fontsize=9)
    axes[0, -1].legend(
        handles=_legend_handles(), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8
    )
    fig.tight_layout()
    return fig


def threshold_explorer(anomaly_maps, masks, thresholds: Sequence[float] | None = None):
    """An ipywidgets slider over the threshold redrawing :func:`plot_region_overlaps`.

    Needs a live kernel; pair it with :func:`plot_threshold_grid` for the rendered book.
    Returns the widget.
    """
    import ipywidgets as widgets
    from IPython.display import display

    maps, gt = metrics.as_maps_and_masks(anomaly_maps, masks)
    low, high = float(maps.min()), float(maps.max())
    if thresholds is not None:
        low, high = float(min(thresholds)), float(max(thresholds))
    slider = widgets.FloatSlider(
        value=(low + high) / 2,
        min=low,
        max=high,
        step=(high - low) / 100 or 0.01,
        description="threshold",
        continuous_update=False,
        readout_format=".3f",
    )

    def show(threshold):
        fig = plot_region_overlaps(maps, gt, threshold)
        display(fig)
        plt.close(fig)

    return interactive_figure(show, threshold=slider)


def plot_f1_curve(thresholds, f1, best: float | None = None, ax=None):
    """Image-level F1 against the threshold (thesis eq. 5.6), the optimum marked.

    ``thresholds`` and ``f1`` (K,) as returned by :func:`stad_utils.metrics.f1_curve`.
    """
    fig, ax = new_axes(ax, size=(5.0, 3.2))
    # F1 at threshold t_k holds for every t in (t_{k-1}, t_k]: steps to the left ("pre").
    ax.step(thresholds, f1, where="pre", color=CURVE_COLORS[0], lw=2)
    ax.plot(thresholds, f1, "o", color=CURVE_COLORS[0], ms=3)
    if best is not None:
        best_f1 = float(np.max(f1))
        ax.axvline(best, color=DEFECT_COLOR, ls="--", lw=1.2)
        ax.plot([best], [best_f1], "o", color=DEFECT_COLOR, ms=7)
        ax.text(
            best,
            0.06,
            f"  t* = {best:.3g}, F1 = {best_f1:.3f}",
            color=DEFECT_COLOR,
            ha="left",
            va="bottom",
        )
    ax.set_xlabel("threshold (image score ≥ threshold → defective)")
    ax.set_ylabel("image-level F1")
    ax.set_ylim(0, 1.05)
    fig.tight_layout()
    return fig


def plot_normalized_scores(normalized, labels, ax=None):
    """Normalized image scores (thesis eq. 5.7) by class; the threshold sits at 0.5.

    ``normalized`` (N,) from :func:`stad_utils.metrics.normalized_scores`, ``labels`` (N,).
    """
    normalized = np.asarray(normalized, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    fig, ax = new_axes(ax, size=(5.6, 2.4))
    rng = np.random.default_rng(0)
    for label, name, color in ((0, "good", GOOD_COLOR), (1, "defective", DEFECT_COLOR)):
        values = normalized[labels == label]
        jitter = label + rng.uniform(-0.15, 0.15, values.size)
        ax.scatter(values, jitter, s=22, color=color, label=name, alpha=0.85, lw=0)
    ax.axvline(0.5, color="0.3", ls="--", lw=1.2, label="threshold (0.5)")
    ax.set_yticks([0, 1], ["good", "defective"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("normalized score (eq. 5.7)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
