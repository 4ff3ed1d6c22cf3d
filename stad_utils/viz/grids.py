"""Grids of images, ground-truth masks, anomaly maps and overlays."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import ANOMALY_CMAP, MASK_COLOR, hide_axes, to_numpy_image, use_book_style


def outline_mask(ax, mask, color=MASK_COLOR, linewidth=1.2) -> None:
    """Draw the outline of a binary mask (H, W) on ``ax``."""
    mask = to_numpy_image(mask)
    if mask.any():
        ax.contour(mask > 0.5, levels=[0.5], colors=[color], linewidths=linewidth)


def sample_grid(
    samples: Sequence[dict],
    columns: int = 6,
    titles: Sequence[str] | None = None,
    show_masks: bool = True,
    size: float = 1.7,
):
    """Images of dataset samples in a grid, ground truth outlined in cyan.

    ``samples`` are dataset dicts (``image`` (3, H, W), ``mask`` (1, H, W), ``defect_type``).
    """
    use_book_style()
    rows = int(np.ceil(len(samples) / columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(size * columns, size * rows + 0.2), squeeze=False
    )
    for ax in axes.ravel():
        hide_axes(ax)
    for i, sample in enumerate(samples):
        ax = axes.ravel()[i]
        ax.imshow(to_numpy_image(sample["image"]), cmap="gray", vmin=0, vmax=1)
        if show_masks:
            outline_mask(ax, sample["mask"])
        ax.set_title(titles[i] if titles else sample.get("defect_type", ""), fontsize=9)
    fig.tight_layout()
    return fig


def image_mask_pairs(samples: Sequence[dict], size: float = 1.9):
    """Two rows: defective images on top, their binary ground-truth masks below."""
    use_book_style()
    fig, axes = plt.subplots(
        2, len(samples), figsize=(size * len(samples), 2 * size + 0.3), squeeze=False
    )
    for i, sample in enumerate(samples):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(to_numpy_image(sample["image"]), cmap="gray", vmin=0, vmax=1)
        top.set_title(sample.get("defect_type", ""), fontsize=9)
        bottom.imshow(to_numpy_image(sample["mask"]), cmap="gray", vmin=0, vmax=1)
        for ax in (top, bottom):
            hide_axes(ax)
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("mask")
    fig.tight_layout()
    return fig


def anomaly_grid(
    images,
    masks,
    maps,
    titles: Sequence[str] | None = None,
    threshold: float | None = None,
    size: float = 1.9,
    vmax: float | None = None,
):
    """Rows of image · ground truth · anomaly map · overlay (· predicted mask).

    ``images`` (N, 3, H, W) in [0, 1]; ``masks`` (N, 1, H, W); ``maps`` (N, H, W).
    All maps share one colour scale (``vmax`` defaults to their 99.9th percentile), so
    brightness is comparable across rows. With ``threshold`` a predicted-mask column is
    added.
    """
    use_book_style()
    maps = np.stack([np.asarray(to_numpy_image(m), dtype=np.float32) for m in maps])
    vmin = float(maps.min())
    vmax = float(np.percentile(maps, 99.9)) if vmax is None else vmax
    columns = ["image", "ground truth", "anomaly map", "overlay"]
    if threshold is not None:
        columns.append("prediction")
    fig, axes = plt.subplots(
        len(maps),
        len(columns),
        figsize=(size * len(columns), size * len(maps) + 0.3),
        squeeze=False,
    )
    for row, (image, mask, amap) in enumerate(zip(images, masks, maps, strict=True)):
        image, mask = to_numpy_image(image), to_numpy_image(mask)
        ax = axes[row]
        ax[0].imshow(image, cmap="gray", vmin=0, vmax=1)
        ax[1].imshow(mask, cmap="gray", vmin=0, vmax=1)
        ax[2].imshow(amap, cmap=ANOMALY_CMAP, vmin=vmin, vmax=vmax)
        ax[3].imshow(image, cmap="gray", vmin=0, vmax=1)
        ax[3].imshow(amap, cmap=ANOMALY_CMAP, vmin=vmin, vmax=vmax, alpha=0.5)
        outline_mask(ax[3], mask)
        if threshold is not None:
            ax[4].imshow(amap >= threshold, cmap="gray", vmin=0, vmax=1)
            outline_mask(ax[4], mask)
        for a in ax:
            hide_axes(a)
        if titles:
            ax[0].set_ylabel(titles[row], fontsize=9)
    for a, name in zip(axes[0], columns, strict=True):
        a.set_title(name)
    fig.tight_layout()
    return fig


def layer_maps_row(image, mask, layer_maps: dict, combined, size: float = 2.1):
    """One image · its per-layer anomaly maps · their combination, in a row.

    ``image`` (3, H, W); ``mask`` (1, H, W); ``layer_maps`` {name: (h_k, w_k)} at their
    own resolutions (shown as they are, so the coarser grids are visible); ``combined``
    (H, W). Each map has its own colour scale: the point is *where* each layer responds.
    """
    use_book_style()
    panels = 2 + len(layer_maps)
    fig, axes = plt.subplots(1, panels, figsize=(size * panels, size + 0.4), squeeze=False)
    axes = axes[0]
    axes[0].imshow(to_numpy_image(image))
    outline_mask(axes[0], mask)
    axes[0].set_title("image + ground truth")
    for ax, (name, amap) in zip(axes[1:], layer_maps.items(), strict=False):
        amap = to_numpy_image(amap)
        ax.imshow(amap, cmap=ANOMALY_CMAP, interpolation="nearest")
        ax.set_title(f"{name} ({amap.shape[0]}×{amap.shape[1]})")
    axes[-1].imshow(to_numpy_image(combined), cmap=ANOMALY_CMAP)
    outline_mask(axes[-1], mask)
    axes[-1].set_title("product, upsampled")
    for ax in axes:
        hide_axes(ax)
    fig.tight_layout()
    return fig


def maps_side_by_side(
    images,
    masks,
    columns: dict,
    titles: Sequence[str] | None = None,
    size: float = 1.9,
    color_scale: str = "column",
):
    """Rows of image (ground truth outlined) · one map per named column.

    ``images`` (N, 3, H, W); ``masks`` (N, 1, H, W) or (N, H, W); ``columns``
    {name: maps (N, H, W)}. ``color_scale``:

    * ``"column"`` (default): each column has its own colour scale, shared by its rows
      (for terms with different units): brightness compares down a column, not across;
    * ``"row"``: each row has one scale shared by its maps (for maps in the same units,
      e.g. standardized scores): brightness compares across a row, and an image with a
      weak defect is not drawn black because another image has a strong one.
    """
    if color_scale not in ("column", "row"):
        raise ValueError(f"color_scale must be 'column' or 'row', got {color_scale!r}.")
    use_book_style()
    names = list(columns)
    stacks = {k: np.stack([to_numpy_image(m) for m in columns[k]]) for k in names}
    rows = np.stack([stacks[k] for k in names], axis=1)  # (N, columns, H, W)
    fig, axes = plt.subplots(
        len(images),
        1 + len(names),
        figsize=(size * (1 + len(names)), size * len(images) + 0.3),
        squeeze=False,
    )
    for row, (image, mask) in enumerate(zip(images, masks, strict=True)):
        axes[row, 0].imshow(to_numpy_image(image))
        outline_mask(axes[row, 0], mask)
        if titles:
            axes[row, 0].set_ylabel(titles[row], fontsize=9)
        for col, name in enumerate(names, start=1):
            stack = stacks[name] if color_scale == "column" else rows[row]
            axes[row, col].imshow(
                stacks[name][row],
                cmap=ANOMALY_CMAP,
                vmin=float(stack.min()),
                vmax=float(np.percentile(stack, 99.9)),
            )
            outline_mask(axes[row, col], mask, linewidth=0.8)
    for ax in axes.ravel():
        hide_axes(ax)
    axes[0, 0].set_title("image")
    for col, name in enumerate(names, start=1):
        axes[0, col].set_title(name)
    fig.tight_layout()
    return fig


def pooling_offsets(size: int = 8, stride: int = 2, panel: float = 2.3):
    """The ``stride²`` shifted pooling grids of one ``stride × stride`` pooling layer.

    One panel per offset ``(i, j)``, ``0 ≤ i, j < stride``: a ``size × size`` pixel grid
    (thin lines) with the pooling cells whose top-left corners are ``(i + stride·y,
    j + stride·x)`` filled in two alternating tints; pixels no cell of that offset covers
    are grey. Patches whose top-left corners differ by ``(i, j)`` (mod ``stride``) need the
    grid of offset ``(i, j)`` (thesis Fig. 4.16).
    """
    from matplotlib.patches import Rectangle

    use_book_style()
    n = stride * stride
    fig, axes = plt.subplots(1, n, figsize=(panel * n, panel + 0.35), squeeze=False)
    tints = ("#9ecae1", "#fdae6b")
    for ax, (i, j) in zip(
        axes[0], [(i, j) for i in range(stride) for j in range(stride)], strict=True
    ):
        ax.add_patch(Rectangle((0, 0), size, size, facecolor="0.85", edgecolor="none"))
        cells_y = (size - i) // stride
        cells_x = (size - j) // stride
        for y in range(cells_y):
            for x in range(cells_x):
                ax.add_patch(
                    Rectangle(
                        (j + stride * x, i + stride * y),
                        stride,
                        stride,
                        facecolor=tints[(x + y) % 2],
                        edgecolor="#08306b",
                        linewidth=1.4,
                    )
                )
        for k in range(size + 1):
            ax.plot([0, size], [k, k], color="white", linewidth=0.5, alpha=0.8)
            ax.plot([k, k], [0, size], color="white", linewidth=0.5, alpha=0.8)
        ax.set_xlim(-0.1, size + 0.1)
        ax.set_ylim(size + 0.1, -0.1)  # row 0 at the top, like an image
        ax.set_aspect("equal")
        hide_axes(ax)
        ax.set_title(f"offset ({i}, {j}): {cells_y}×{cells_x} cells")
    fig.tight_layout()
    return fig


def triplet_grid(triplets: Sequence[dict], size: float = 1.5):
    """Columns of (anchor p, positive p⁺, negative p⁻) patches, one column per triplet.

    ``triplets``: samples of :class:`~stad_utils.data.patches.TripletPatches`.
    """
    use_book_style()
    rows = ("anchor", "positive", "negative")
    fig, axes = plt.subplots(
        3, len(triplets), figsize=(size * len(triplets), size * 3 + 0.2), squeeze=False
    )
    for col, triplet in enumerate(triplets):
        for row, key in enumerate(rows):
            axes[row, col].imshow(to_numpy_image(triplet[key]))
            hide_axes(axes[row, col])
    for row, key in enumerate(rows):
        axes[row, 0].set_ylabel(key)
    fig.tight_layout()
    return fig


def descriptor_pca_image(descriptors) -> np.ndarray:
    """Dense descriptors ``(C, H, W)`` → an RGB image ``(H, W, 3)``: their first three
    principal components, each scaled to [0, 1] (robustly, 1st–99th percentile)."""
    d = np.asarray(descriptors, dtype=np.float64)
    flat = d.reshape(d.shape[0], -1).T
    flat = flat - flat.mean(axis=0)
    _, _, components = np.linalg.svd(flat, full_matrices=False)
    projected = flat @ components[:3].T
    low, high = np.percentile(projected, [1, 99], axis=0)
    rgb = np.clip((projected - low) / np.maximum(high - low, 1e-12), 0, 1)
    return rgb.reshape(*d.shape[1:], 3)


def image_and_descriptor_pca(
    images, descriptors, titles: Sequence[str] | None = None, size: float = 2.2
):
    """Top row: images ``(N, 3, H, W)``; bottom: their dense descriptors ``(N, C, H, W)``
    as colour (:func:`descriptor_pca_image`, one PCA per image)."""
    use_book_style()
    fig, axes = plt.subplots(
        2, len(images), figsize=(size * len(images), 2 * size + 0.3), squeeze=False
    )
    for i, (image, desc) in enumerate(zip(images, descriptors, strict=True)):
        axes[0, i].imshow(to_numpy_image(image))
        axes[1, i].imshow(descriptor_pca_image(desc))
        if titles:
            axes[0, i].set_title(titles[i])
        for ax in axes[:, i]:
            hide_axes(ax)
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("descriptors (PCA)")
    fig.tight_layout()
    return fig
