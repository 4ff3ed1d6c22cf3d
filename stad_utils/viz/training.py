"""Training curves and the distribution of image scores (the training and evaluation chapters).

Every function returns the matplotlib Figure. A training history is a
:class:`stad_utils.train.TrainHistory` or a plain dict with the same keys (``loss``,
``validation_score``, ``best_epoch``); several histories (e.g. the students of an
ensemble) are given as a dict ``{label: history}``. Epochs are drawn 1-based: epoch ``k`` of
the plot is ``history.loss[k - 1]``, and ``best_epoch`` (0-based, as ``fit`` records it) is
drawn at ``best_epoch + 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from stad_utils import metrics

from .curves import CURVE_COLORS
from .style import DEFECT_COLOR, GOOD_COLOR, new_axes, use_book_style

__all__ = [
    "plot_loss_curve",
    "plot_score_histogram",
    "plot_per_defect_scores",
    "plot_loss_parts",
    "plot_threshold_rules",
]

LOSS_COLOR = CURVE_COLORS[0]
VALIDATION_COLOR = DEFECT_COLOR
THRESHOLD_COLOR = "0.25"


# ----------------------------------------------------------------------------------------
# Training histories
# ----------------------------------------------------------------------------------------


def _is_history(obj) -> bool:
    return hasattr(obj, "loss") or (isinstance(obj, Mapping) and "loss" in obj)


def _history_fields(history) -> tuple[np.ndarray, np.ndarray, int | None]:
    """``(loss, validation_score, best_epoch)`` of a TrainHistory or a dict."""
    if isinstance(history, Mapping):
        loss = history["loss"]
        validation = history.get("validation_score") or []
        best = history.get("best_epoch")
    else:
        loss = history.loss
        validation = getattr(history, "validation_score", None) or []
        best = getattr(history, "best_epoch", None)
    loss = np.asarray(loss, dtype=np.float64).reshape(-1)
    validation = np.asarray(validation, dtype=np.float64).reshape(-1)
    return loss, validation, None if best is None else int(best)


def _as_histories(history) -> dict[str, tuple[np.ndarray, np.ndarray, int | None]]:
    """One history or ``{label: history}`` → ``{label: (loss, validation, best_epoch)}``."""
    if _is_history(history) and not (
        isinstance(history, Mapping) and _is_history(history.get("loss"))
    ):
        histories = {"": history}
    elif isinstance(history, Mapping):
        histories = {str(k): v for k, v in history.items()}
    else:
        raise TypeError(
            "history must be a TrainHistory, a dict with a 'loss' list, or a dict "
            f"{{label: history}}; got {type(history).__name__}."
        )
    out = {}
    for label, h in histories.items():
        if not _is_history(h):
            raise TypeError(f"history {label!r} has no 'loss': got {type(h).__name__}.")
        fields = _history_fields(h)
        if fields[0].size == 0:
            raise ValueError(
                f"history {label!r} has no loss values: train for at least one epoch first."
                if label
                else "The history has no loss values: train for at least one epoch first."
            )
        out[label] = fields
    return out


def plot_loss_curve(history, ax=None, title: str = "training history"):
    """Training loss per epoch and, when recorded, the validation score and selected epoch.

    ``history``: a :class:`~stad_utils.train.TrainHistory`, a dict with keys ``loss``
    (E,), ``validation_score`` (E,) or empty, ``best_epoch`` (0-based int or None) — or a
    dict ``{label: history}`` to overlay several (e.g. the students of an ensemble; one
    colour per history, solid loss, dashed validation score).

    The loss uses a log scale when its values span more than one decade. The validation
    score (mean anomaly score of good validation images, lower is better) is drawn on a
    second y-axis on the right, the selected epoch (``best_epoch``) marked with a dotted line
    and a dot. Epochs are numbered from 1 on the x-axis.
    """
    histories = _as_histories(history)
    single = len(histories) == 1
    fig, ax = new_axes(ax, size=(5.6, 3.8))
    has_validation = any(v.size for _, v, _ in histories.values())
    ax2 = None
    if has_validation:
        ax2 = ax.twinx()
        ax2.grid(False)
        ax2.spines["right"].set_visible(True)
    marker_size = 3 if max(loss.size for loss, _, _ in histories.values()) <= 40 else 0

    for (label, (loss, validation, best)), color in zip(
        histories.items(), CURVE_COLORS * len(histories), strict=False
    ):
        loss_color = LOSS_COLOR if single else color
        val_color = VALIDATION_COLOR if single else color
        epochs = np.arange(1, loss.size + 1)
        ax.plot(
            epochs,
            loss,
            color=loss_color,
            lw=2,
            marker="o",
            ms=marker_size,
            label="training loss" if single else f"{label} loss",
        )
        if validation.size and ax2 is not None:
            ax2.plot(
                np.arange(1, validation.size + 1),
                validation,
                color=val_color,
                lw=1.6,
                ls="--",
                marker="o",
                ms=marker_size,
                label="validation score" if single else f"{label} validation",
            )
        if best is not None:
            ax.axvline(best + 1, color=val_color, ls=":", lw=1.2)
            if validation.size > best and ax2 is not None:
                ax2.plot(
                    [best + 1],
                    [validation[best]],
                    "o",
                    color=val_color,
                    ms=8,
                    mfc="white",
                    mew=2,
                    label=f"selected epoch {best + 1}" if single else f"{label} selected",
                )

    losses = np.concatenate([loss for loss, _, _ in histories.values()])
    if losses.min() > 0 and losses.max() / losses.min() > 10:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    longest = max(loss.size for loss, _, _ in histories.values())
    ax.set_xlim(0.5, longest + 0.5)
    ax.set_ylabel("training loss", color=LOSS_COLOR if single else "black")
    ax.set_title(title)
    handles = _history_legend(ax, ax2, histories, single)
    if ax2 is not None:
        ax2.set_ylabel(
            "validation score (lower is better)", color=VALIDATION_COLOR if single else "black"
        )
    # Below the axes: curves fill the plot area, wherever they run.
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=min(len(handles), 3 if single else 4),
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def _history_legend(ax, ax2, histories, single: bool) -> list:
    """Single history: one entry per line. Several: one per history, then the line styles."""
    if single:
        handles = list(ax.get_lines()[:1])
        if ax2 is not None:
            handles += list(ax2.get_lines())
        best = next(iter(histories.values()))[2]
        if best is not None and ax2 is None:
            handles.append(
                Line2D([], [], color=VALIDATION_COLOR, ls=":", label=f"selected epoch {best + 1}")
            )
        return handles
    handles = [
        Line2D([], [], color=color, lw=2, label=label)
        for label, color in zip(histories, CURVE_COLORS * len(histories), strict=False)
    ]
    handles.append(Line2D([], [], color="0.3", lw=2, label="training loss"))
    if ax2 is not None:
        handles.append(Line2D([], [], color="0.3", lw=1.6, ls="--", label="validation score"))
    if any(best is not None for _, _, best in histories.values()):
        handles.append(
            Line2D([], [], color="0.3", ls=":", marker="o", mfc="white", label="selected epoch")
        )
    return handles


# ----------------------------------------------------------------------------------------
# Image scores
# ----------------------------------------------------------------------------------------


def _scores_and_threshold(image_scores, threshold):
    """Accept a :class:`~stad_utils.metrics.MetricsReport` in place of the scores."""
    if hasattr(image_scores, "image_scores") and hasattr(image_scores, "threshold"):
        report = image_scores
        return metrics.as_scores(report.image_scores), (
            report.threshold if threshold is None else threshold
        )
    return metrics.as_scores(image_scores), threshold


def _shared_bins(scores: np.ndarray, bins) -> np.ndarray:
    if bins is None:
        bins = int(np.clip(round(2 * np.sqrt(scores.size)), 6, 40))
    return np.histogram_bin_edges(scores, bins=bins)


def plot_score_histogram(
    image_scores,
    labels,
    threshold: float | None = None,
    ax=None,
    title: str = "image scores: good vs defective",
    bins: int | Sequence[float] | None = None,
):
    """Overlaid histograms of the image scores of good and defective images, shared bins.

    ``image_scores`` (N,) (or a :class:`~stad_utils.metrics.MetricsReport`, whose scores and
    threshold are used); ``labels`` (N,) 0 good / 1 defective. ``bins``: a number of bins or
    the bin edges (default about 2·√N bins over the range of all scores). With
    ``threshold`` a vertical line is drawn; its legend entry counts the images on the wrong
    side (defective means score ≥ threshold).
    """
    scores, threshold = _scores_and_threshold(image_scores, threshold)
    y = metrics.as_labels(labels, scores.size)
    edges = _shared_bins(scores, bins)
    fig, ax = new_axes(ax, size=(5.6, 3.2))
    classes = ((0, "good", GOOD_COLOR), (1, "defective", DEFECT_COLOR))
    counts = {label: np.histogram(scores[y == label], bins=edges)[0] for label, _, _ in classes}
    for label, name, color in classes:  # the fills first, so no outline is hidden
        ax.stairs(
            counts[label],
            edges,
            fill=True,
            color=to_rgba(color, 0.35),
            lw=0,
            label=f"{name} ({int(counts[label].sum())})",
        )
    for label, _, color in classes:
        ax.stairs(counts[label], edges, color=color, lw=1.6, zorder=3, label="_outline")
    if threshold is not None:
        missed = int(np.count_nonzero((y == 1) & (scores < threshold)))
        alarms = int(np.count_nonzero((y == 0) & (scores >= threshold)))
        ax.axvline(
            threshold,
            color=THRESHOLD_COLOR,
            ls="--",
            lw=1.4,
            label=f"threshold {threshold:.3g}\n({missed} missed, {alarms} false alarms)",
        )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("image score")
    ax.set_ylabel("number of images")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def _defect_order(types: np.ndarray) -> list[str]:
    """``"good"`` first, then the defect types alphabetically."""
    names = sorted(set(types.tolist()))
    return (["good"] if "good" in names else []) + [n for n in names if n != "good"]


def _horizontal_boxplot(ax, data, positions):
    kwargs = dict(
        positions=positions,
        widths=0.55,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "0.93", "edgecolor": "0.55"},
        medianprops={"color": "0.3", "lw": 1.5},
        whiskerprops={"color": "0.55"},
        capprops={"color": "0.55"},
        zorder=1,
    )
    version = tuple(int(p) for p in mpl.__version__.split(".")[:2])
    if version >= (3, 10):
        kwargs["orientation"] = "horizontal"
    else:  # pragma: no cover - matplotlib < 3.10
        kwargs["vert"] = False
    ax.boxplot(data, **kwargs)


def plot_per_defect_scores(
    image_scores,
    defect_types,
    threshold: float | None = None,
    ax=None,
    title: str = "image scores by defect type",
):
    """Image scores per defect type (one row each, ``good`` on top): box plot and points.

    ``image_scores`` (N,) (or a :class:`~stad_utils.metrics.MetricsReport`, whose scores and
    threshold are used); ``defect_types`` (N,) strings, ``"good"`` for good images (the
    ``defect_type`` of the dataset samples). With ``threshold`` a vertical line is drawn and
    each row states how many of its images score ≥ threshold: *found* for a defect type,
    *flagged* (false alarms) for the good images.
    """
    scores, threshold = _scores_and_threshold(image_scores, threshold)
    types = np.asarray([str(t) for t in defect_types])
    if types.size != scores.size:
        raise ValueError(
            f"defect_types has {types.size} entries but there are {scores.size} image scores: "
            "give one per image."
        )
    order = _defect_order(types)
    fig, ax = new_axes(ax, size=(6.0, 0.45 * len(order) + 1.3))
    positions = np.arange(len(order))[::-1]  # the first row on top
    groups = [scores[types == name] for name in order]
    _horizontal_boxplot(ax, groups, positions)
    rng = np.random.default_rng(0)
    for name, values, y in zip(order, groups, positions, strict=True):
        color = GOOD_COLOR if name == "good" else DEFECT_COLOR
        jitter = y + rng.uniform(-0.18, 0.18, values.size)
        ax.scatter(values, jitter, s=18, color=color, alpha=0.85, lw=0, zorder=3)
    ax.set_yticks(
        positions, [f"{name} ({values.size})" for name, values in zip(order, groups, strict=True)]
    )
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.grid(False, axis="y")
    if threshold is not None:
        ax.axvline(
            threshold, color=THRESHOLD_COLOR, ls="--", lw=1.4, label=f"threshold {threshold:.3g}"
        )
        transform = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
        for name, values, y in zip(order, groups, positions, strict=True):
            above = int(np.count_nonzero(values >= threshold))
            word = "flagged" if name == "good" else "found"
            ax.text(
                1.02,
                y,
                f"{above}/{values.size} {word}",
                transform=transform,
                va="center",
                fontsize=8,
                color=GOOD_COLOR if name == "good" else DEFECT_COLOR,
            )
        title = f"{title} (threshold {threshold:.3g}, dashed)"
    ax.set_xlabel("image score")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_loss_parts(parts, smooth: int = 10, title: str = "teacher pre-training"):
    """One panel per loss term of a list of per-step dicts (e.g. ``PatchTeacher.parts``),
    raw values faint and a moving average of ``smooth`` steps on top."""
    use_book_style()
    keys = list(parts[0])
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        values = np.array([p[key] for p in parts], dtype=float)
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, color=GOOD_COLOR, alpha=0.3, linewidth=0.8)
        if len(values) >= smooth:
            kernel = np.ones(smooth) / smooth
            ax.plot(
                steps[smooth - 1 :],
                np.convolve(values, kernel, mode="valid"),
                color=GOOD_COLOR,
                linewidth=1.8,
            )
        ax.set_title(key)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("loss")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


#: line styles of the threshold rules: oracles dashed, label-free rules solid
_RULE_STYLE = {True: ("--", THRESHOLD_COLOR), False: ("-", "#264653")}


def plot_threshold_rules(image_scores, labels, validation_scores, rules, ax=None):
    """Test score histograms with each threshold rule drawn, and the validation scores.

    ``image_scores`` (N,) and ``labels`` (N,) of the test set; ``validation_scores`` (V,)
    of good validation images, drawn as ticks under the axis; ``rules``: a sequence of
    :class:`~stad_utils.thresholds.Threshold`. Oracles (rules that read the test labels)
    are dashed, label-free rules solid; each legend entry counts the missed defective
    images and the false alarms at that threshold.
    """
    scores = np.asarray(image_scores, dtype=float).reshape(-1)
    y = metrics.as_labels(labels, scores.size)
    val = np.asarray(validation_scores, dtype=float).reshape(-1)
    edges = _shared_bins(np.concatenate([scores, val]), None)
    fig = plot_score_histogram(scores, y, ax=ax, bins=edges, title="one test set, two thresholds")
    ax = fig.axes[0] if ax is None else ax
    ax.plot(val, np.full(val.size, -0.25), "|", color=GOOD_COLOR, ms=12, mew=1.5,
            label=f"good validation images ({val.size})", clip_on=False)  # fmt: skip
    for rule in rules:
        style, color = _RULE_STYLE[bool(rule.uses_test_labels)]
        missed = int(np.count_nonzero((y == 1) & (scores < rule.value)))
        alarms = int(np.count_nonzero((y == 0) & (scores >= rule.value)))
        kind = "oracle, reads test labels" if rule.uses_test_labels else "no test labels"
        ax.axvline(rule.value, color=color, ls=style, lw=1.6,
                   label=f"{rule.rule} ({kind}): {rule.value:.3g}\n"
                   f"{missed} missed, {alarms} false alarms")  # fmt: skip
    ax.set_ylim(bottom=-0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
