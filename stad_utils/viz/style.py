"""The book's figure style: one place for colours, fonts and image display."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import torch


def pyplot_for_files():
    """``matplotlib.pyplot`` for writing figures to files: a script (no pyplot imported yet)
    gets the display-free Agg backend; a notebook keeps its own backend, so its later
    figures still show."""
    import sys

    if "matplotlib.pyplot" not in sys.modules:
        mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


ANOMALY_CMAP = "inferno"  # perceptually uniform, dark = normal, bright = anomalous
MASK_COLOR = (0.0, 0.85, 1.0)  # cyan outlines read well on every texture and on inferno
GOOD_COLOR = "#2a9d8f"
DEFECT_COLOR = "#e76f51"

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.frameon": False,
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (idempotent)."""
    mpl.rcParams.update(STYLE)


def new_axes(ax=None, size=(4.2, 3.8)):
    """``(figure, axes)`` to draw on: ``ax`` and its figure when given (a panel of a larger
    figure), else a new figure of ``size`` inches. Applies the book's style either way."""
    import matplotlib.pyplot as plt

    use_book_style()
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    return ax.figure, ax


def hide_axes(ax) -> None:
    """Turn ``ax`` into a bare frame for an image: no ticks, no grid, no spines."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def to_numpy_image(image) -> np.ndarray:
    """(3, H, W) or (H, W) tensor/array in [0, 1] → (H, W, 3) or (H, W) float array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return np.clip(image, 0, 1) if image.ndim == 3 else image


HEADLESS_ENV = "STAD_HEADLESS"


def interactive_figure(show, **controls):
    """``ipywidgets.interactive(show, **controls)``, rendered lazily when headless.

    Executing a notebook without a front end (Jupyter Book, papermill, the tests) cannot
    use a widget, and an Output widget filled during execution can leave nbclient waiting
    forever for a reply (jupyter/nbclient#312). With ``STAD_HEADLESS=1`` (set by
    ``make book`` and the tests) the function is therefore not run until a control
    changes; in a live notebook the explorer draws at once, as usual.
    """
    import os

    import ipywidgets as widgets

    manual = os.environ.get(HEADLESS_ENV, "") not in ("", "0")
    return widgets.interactive(show, {"manual": manual, "manual_name": "draw"}, **controls)
