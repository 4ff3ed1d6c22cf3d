"""Predictions image by image: an ipywidgets explorer and its static counterpart.

:func:`prediction_explorer` needs a live kernel (two sliders: the image and the threshold);
:func:`prediction_grid` draws the same panels for a few fixed images, so the rendered book
shows them without a kernel. :func:`plot_prediction` is the figure the explorer redraws.

Shapes: ``images`` (N, 3, H, W) in [0, 1] (or (N, H, W) grayscale), ``masks`` (N, H, W) or
(N, 1, H, W) binary, ``maps`` (N, H, W) or (N, 1, H, W) at the resolution of the masks;
arrays or tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from stad_utils import metrics

from .grids import anomaly_grid, outline_mask
from .style import ANOMALY_CMAP, hide_axes, interactive_figure, to_numpy_image, use_book_style

__all__ = ["plot_prediction", "prediction_explorer", "prediction_grid"]

DEFAULT_PERCENTILE = 95.0  # the explorer's starting threshold when none is given


def _checked(images, masks, maps) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Images as a list of (H, W, 3)/(H, W) arrays, maps (N, H, W) float, masks (N, H, W) bool."""
    amaps, gt = metrics.as_maps_and_masks(maps, masks)
    pictures = [to_numpy_image(image) for image in images]
    if len(pictures) != amaps.shape[0]:
        raise ValueError(
            f"There are {len(pictures)} images but {amaps.shape[0]} anomaly maps: give one "
            "map and one mask per image."
        )
    if pictures and pictures[0].shape[:2] != amaps.shape[1:]:
        raise ValueError(
            f"Images are {pictures[0].shape[:2]} but the maps are {amaps.shape[1:]} (H, W): "
            "upsample the maps to the image size first."
        )
    return pictures, amaps, gt


def _colour_scale(maps: np.ndarray) -> tuple[float, float]:
    """One colour scale for all maps, as :func:`~stad_utils.viz.grids.anomaly_grid` uses."""
    return float(maps.min()), float(np.percentile(maps, 99.9))


def plot_prediction(
    image,
    mask,
    amap,
    threshold: float,
    title: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    size: float = 2.4,
):
    """One image in four panels: image, anomaly map, overlay, predicted mask ``amap ≥ threshold``.

    ``image`` (3, H, W) or (H, W) in [0, 1]; ``mask`` (H, W) or (1, H, W) binary; ``amap``
    (H, W). The ground truth is outlined in cyan on the image, the overlay and the predicted
    mask; the colour bar of the map marks the threshold. The title gives the image's Dice
    (1.0 when both the prediction and the ground truth are empty).
    """
    pictures, maps, gt = _checked([image], np.asarray(mask)[None], np.asarray(amap)[None])
    picture, amap, truth = pictures[0], maps[0], gt[0]
    low, high = _colour_scale(maps)
    vmin = low if vmin is None else vmin
    vmax = high if vmax is None else vmax
    predicted = amap >= threshold
    score = metrics.dice(predicted, truth)

    use_book_style()
    fig, axes = plt.subplots(1, 4, figsize=(4 * size + 0.9, size + 0.6), layout="constrained")
    axes[0].imshow(picture, cmap="gray", vmin=0, vmax=1)
    outline_mask(axes[0], truth)
    shown = axes[1].imshow(amap, cmap=ANOMALY_CMAP, vmin=vmin, vmax=vmax)
    axes[2].imshow(picture, cmap="gray", vmin=0, vmax=1)
    axes[2].imshow(amap, cmap=ANOMALY_CMAP, vmin=vmin, vmax=vmax, alpha=0.5)
    outline_mask(axes[2], truth)
    axes[3].imshow(predicted, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    outline_mask(axes[3], truth)
    names = ("image + ground truth", "anomaly map", "overlay", "prediction (map ≥ threshold)")
    for ax, name in zip(axes, names, strict=True):
        hide_axes(ax)
        ax.set_title(name, fontsize=9)
    bar = fig.colorbar(shown, ax=axes.tolist(), shrink=0.85, pad=0.01, label="anomaly score")
    if vmin <= threshold <= vmax:
        bar.ax.axhline(threshold, color="white", lw=2)
        bar.ax.axhline(threshold, color="black", lw=1, ls="--")
    head = f"{title}: " if title else ""
    fig.suptitle(f"{head}Dice {score:.2f} at threshold {threshold:.3g}", fontsize=10)
    return fig


def _threshold_range(maps: np.ndarray, thresholds) -> tuple[float, float, float]:
    """``(low, high, start)`` of the threshold slider."""
    low, high = float(maps.min()), float(maps.max())
    if thresholds is None:
        start = float(np.percentile(maps, DEFAULT_PERCENTILE))
    elif np.ndim(thresholds) == 0:
        start = float(thresholds)
        low, high = min(low, start), max(high, start)
    else:
        values = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError("thresholds is empty: give a threshold, a range or None.")
        low, high = float(values.min()), float(values.max())
        start = float(np.clip(np.percentile(maps, DEFAULT_PERCENTILE), low, high))
    return low, high, start


def prediction_explorer(
    images,
    masks,
    maps,
    titles: Sequence[str] | None = None,
    thresholds: float | Sequence[float] | None = None,
):
    """An ipywidgets explorer: a slider over the images and one over the threshold.

    Shows :func:`plot_prediction` of the chosen image: image with the ground truth outlined,
    anomaly map, overlay, predicted mask ``map ≥ threshold``, and the image's Dice in the
    title. All maps share one colour scale. Shapes as in the module docstring; ``titles``
    one per image (default ``image i``).

    ``thresholds``: ``None`` (slider from the smallest to the largest map value, starting at
    their 95th percentile), a number (e.g. ``report.threshold``; the start value), or a
    sequence of numbers (the slider spans their minimum to maximum).

    Returns the ``ipywidgets.interactive`` widget (its ``out`` is the Output that shows the
    figure). Needs a live kernel to respond; headless (papermill, the book build) it is only
    displayed, so pair it with :func:`prediction_grid`.
    """
    import ipywidgets as widgets
    from IPython.display import display

    pictures, amaps, gt = _checked(images, masks, maps)
    n = amaps.shape[0]
    if n == 0:
        raise ValueError("prediction_explorer needs at least one image.")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries but there are {n} images.")
    vmin, vmax = _colour_scale(amaps)
    low, high, start = _threshold_range(amaps, thresholds)
    index_slider = widgets.IntSlider(
        value=0, min=0, max=n - 1, step=1, description="image", continuous_update=False
    )
    threshold_slider = widgets.FloatSlider(
        value=start,
        min=low,
        max=high,
        step=(high - low) / 200 or 0.01,
        description="threshold",
        continuous_update=False,
        readout_format=".3g",
    )

    def show(index: int, threshold: float):
        title = titles[index] if titles is not None else f"image {index}"
        fig = plot_prediction(
            pictures[index], gt[index], amaps[index], threshold, title, vmin=vmin, vmax=vmax
        )
        display(fig)
        plt.close(fig)

    return interactive_figure(show, index=index_slider, threshold=threshold_slider)


def prediction_grid(
    images,
    masks,
    maps,
    threshold: float,
    indices: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    size: float = 1.9,
):
    """The static counterpart of :func:`prediction_explorer`, for a few fixed images.

    One row per image in ``indices`` (default: up to four, spread over the set) with
    image · ground truth · anomaly map · overlay · predicted mask at ``threshold``
    (:func:`~stad_utils.viz.grids.anomaly_grid`); each row is labelled with its title and
    Dice. The colour scale is that of all ``maps``, as in the explorer. Shapes as in the
    module docstring.
    """
    pictures, amaps, gt = _checked(images, masks, maps)
    n = amaps.shape[0]
    if indices is None:
        indices = np.unique(np.linspace(0, n - 1, min(n, 4)).round().astype(int)).tolist()
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("indices is empty: choose at least one image.")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries but there are {n} images.")
    labels = [
        f"{titles[i] if titles is not None else f'image {i}'}\n"
        f"Dice {metrics.dice(amaps[i] >= threshold, gt[i]):.2f}"
        for i in indices
    ]
    _, vmax = _colour_scale(amaps)
    fig = anomaly_grid(
        [images[i] for i in indices],
        gt[indices].astype(np.float32),
        amaps[indices],
        titles=labels,
        threshold=threshold,
        size=size,
        vmax=vmax,
    )
    fig.suptitle(f"predictions at threshold {threshold:.3g}", fontsize=10)
    fig.tight_layout()
    return fig
