"""Measuring detectors: the metrics of MVTec AD and of the thesis.

Every function takes NumPy arrays or PyTorch tensors. Shapes, used throughout:

* ``anomaly_maps`` — ``(N, H, W)`` or ``(N, 1, H, W)`` real scores, higher = more anomalous;
* ``masks`` — ground truth of the same shape, binary: values in ``{0, 1}`` (or ``{0, 255}``,
  or booleans); all zeros for good images;
* ``labels`` — ``(N,)`` image labels, 0 good, 1 defective;
* ``image_scores`` — ``(N,)`` one score per image (by default the maximum of its map,
  thesis eq. 5.5).

What is computed, and where it comes from:

============================  =================================================================
function                      definition
============================  =================================================================
:func:`image_auroc`           area under the image-level ROC curve (thesis §4.5)
:func:`pixel_auroc`           area under the pixel-level ROC curve (thesis §4.5, §6.2)
:func:`au_pro`                area under the per-region-overlap curve up to an FPR limit, the
                              MVTec AD algorithm (Bergmann et al., IJCV 2021)
:func:`dice`                  2|P ∩ G| / (|P| + |G|) (thesis §6.2)
:func:`f1_optimal_threshold`  image-level F1-optimal threshold (thesis eq. 5.6): an oracle, it
                              reads the test labels; label-free rules are in
                              :mod:`stad_utils.thresholds`
:func:`false_goods_bads`      miss-classified images at that threshold (thesis §6.4.3)
:func:`normalized_scores`     min–max normalized image scores centred on the threshold (eq. 5.7)
:func:`evaluate`              all of the above for one category → :class:`MetricsReport`
:func:`tabulate`              many reports → one Markdown table with a mean row
============================  =================================================================

Convention for thresholds: a pixel or image is predicted *defective* when its score is
``>= threshold`` (the convention of scikit-learn's curves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score, roc_curve

from . import thresholds
from .tables import Column, markdown_table, metric_columns

__all__ = [
    "EIGHT_CONNECTED",
    "as_labels",
    "as_maps_and_masks",
    "as_scores",
    "RocCurve",
    "ProCurve",
    "FalseCounts",
    "MetricsReport",
    "THRESHOLD_FREE_KEYS",
    "image_scores_from_maps",
    "image_roc",
    "image_auroc",
    "pixel_roc",
    "pixel_auroc",
    "label_regions",
    "region_overlaps",
    "pro_curve",
    "area_under_curve",
    "au_pro",
    "dice",
    "dice_at_threshold",
    "f1_curve",
    "f1_optimal_threshold",
    "false_goods_bads",
    "normalized_scores",
    "evaluate",
    "tabulate",
]

#: 8-connectivity: pixels touching by an edge or a corner belong to the same defect region
#: (the structuring element of the MVTec AD evaluation code).
EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


class RocCurve(NamedTuple):
    """A ROC curve: false-positive rates, true-positive rates and the thresholds used."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


class ProCurve(NamedTuple):
    """A PRO curve: false-positive rates and per-region overlaps, both starting at 0."""

    fpr: np.ndarray
    pro: np.ndarray


class FalseCounts(NamedTuple):
    """Miss-classified images at a threshold (thesis §6.4.3)."""

    false_goods: int  # defective images predicted good (missed defects)
    false_bads: int  # good images predicted defective (false alarms)


# ----------------------------------------------------------------------------------------
# Input checking: one place, clear messages
# ----------------------------------------------------------------------------------------


def _to_numpy(x) -> np.ndarray:
    """A NumPy view of an array or a (CPU or GPU) tensor, without copying when possible."""
    if hasattr(x, "detach"):  # a torch.Tensor; torch is not imported here on purpose
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def _drop_channel(a: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W) stays, (N, 1, H, W) → (N, H, W); anything else is an error."""
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 3:
        return a
    raise ValueError(
        f"{name} must be shaped (N, H, W) or (N, 1, H, W), but has shape {tuple(a.shape)}. "
        "For a single map of shape (H, W) pass map[None]."
    )


def _as_maps(anomaly_maps, name: str = "anomaly_maps") -> np.ndarray:
    """Anomaly maps as a float32/float64 array (N, H, W); finite values only."""
    a = _drop_channel(_to_numpy(anomaly_maps), name)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)  # integers, booleans and float16 are exact in float64
    _check_finite(a, name)
    return a


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.isfinite(a).all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int(np.isinf(a).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values; every score must be a "
            "finite number. NaN usually comes from a diverged model or a division by zero "
            "(e.g. normalizing by a zero standard deviation): fix the model or the "
            "normalization, or replace them with np.nan_to_num if you know what they mean."
        )


def _as_masks(masks, name: str = "masks") -> np.ndarray:
    """Ground truth as a boolean array (N, H, W). Accepts {0, 1}, {0, 255} and booleans."""
    m = _drop_channel(_to_numpy(masks), name)
    if m.dtype == bool:
        return m
    zero = m == 0
    if np.all(zero | (m == 1)) or np.all(zero | (m == 255)):
        return ~zero
    other = m[~(zero | (m == 1) | (m == 255))]
    found = np.unique(other)[:5] if other.size else np.unique(m)[:5]
    raise ValueError(
        f"{name} must be binary, with values in {{0, 1}} or {{0, 255}}, but contains "
        f"{found.tolist()}{' …' if np.unique(m).size > 7 else ''}. Masks resized with "
        "bilinear interpolation have in-between values: resize them with nearest-neighbour "
        "interpolation, or binarize them (e.g. mask > 0.5)."
    )


def as_labels(labels, n: int | None = None, name: str = "labels") -> np.ndarray:
    """Image labels (array, tensor or list) as an int array (N,) with values in {0, 1}.

    ``n``: the number of images they must match; ``name``: how error messages call them.
    ``ValueError`` saying what to do for a scalar, a wrong count or values other than 0/1.
    """
    y = _to_numpy(labels)
    if y.ndim == 0:
        raise ValueError(f"{name} must be a sequence with one label per image, not a scalar.")
    y = y.reshape(-1)
    if n is not None and y.size != n:
        raise ValueError(
            f"{name} has {y.size} entries but there are {n} images: give one per image."
        )
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(
            f"{name} must be 0 (good) or 1 (defective), but contains "
            f"{np.unique(y)[:5].tolist()}. Convert defect types to labels with "
            "(defect_type != 'good')."
        )
    return y.astype(np.int64)


def as_scores(
    scores, n: int | None = None, name: str = "image_scores", *, allow_empty: bool = True
) -> np.ndarray:
    """Scores (array, tensor or list, of any shape) as a flat float64 array of finite values.

    ``n``: the number of images they must match; ``name``: how error messages call them;
    ``allow_empty=False`` refuses an empty array (a threshold needs a score).
    ``ValueError`` for a wrong count, an unwanted empty array or NaN / infinite scores.
    """
    s = np.asarray(_to_numpy(scores), dtype=np.float64).reshape(-1)
    if not allow_empty and s.size == 0:
        raise ValueError(f"{name} is empty: give at least one score.")
    if n is not None and s.size != n:
        raise ValueError(
            f"{name} has {s.size} entries but there are {n} images: give one per image."
        )
    _check_finite(s, name)
    return s


def _check_same_shape(maps: np.ndarray, masks: np.ndarray) -> None:
    if maps.shape != masks.shape:
        raise ValueError(
            f"anomaly_maps have shape {maps.shape} but masks have shape {masks.shape} (after "
            "dropping a channel axis of size 1): they must match pixel for pixel. Upsample the "
            "maps to the mask size (torch.nn.functional.interpolate(maps, size=(H, W), "
            "mode='bilinear')) or resize the masks with nearest-neighbour interpolation."
        )


def _check_two_classes(y: np.ndarray, what: str) -> None:
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0 or n_pos == y.size:
        only = "defective" if n_pos else "good"
        raise ValueError(
            f"{what} needs both good and defective examples, but all {y.size} are {only}: "
            "the ROC curve (and its area) is undefined with only one class. Evaluate on a test "
            "set that contains good and defective images."
        )


def _check_fpr_limit(fpr_limit: float) -> float:
    try:
        limit = float(fpr_limit)
    except (TypeError, ValueError):
        raise ValueError(f"fpr_limit must be a number in (0, 1], got {fpr_limit!r}.") from None
    if not (0.0 < limit <= 1.0):  # also rejects NaN
        raise ValueError(
            f"fpr_limit must be in (0, 1] (a false-positive rate; MVTec AD uses 0.3), "
            f"got {fpr_limit!r}."
        )
    return limit


def as_maps_and_masks(anomaly_maps, masks) -> tuple[np.ndarray, np.ndarray]:
    """Checked inputs: maps (N, H, W) float32/float64, masks (N, H, W) bool, same shape.

    Accepts arrays or tensors shaped (N, H, W) or (N, 1, H, W); raises ``ValueError`` with
    what to do for NaN/infinite scores, non-binary masks or different shapes.
    """
    maps = _as_maps(anomaly_maps)
    gt = _as_masks(masks)
    _check_same_shape(maps, gt)
    return maps, gt


# ----------------------------------------------------------------------------------------
# Image level
# ----------------------------------------------------------------------------------------


def image_scores_from_maps(anomaly_maps) -> np.ndarray:
    """Image anomaly score = maximum of its anomaly map (thesis eq. 5.5).

    ``anomaly_maps`` (N, H, W) or (N, 1, H, W) → scores (N,) float64.
    """
    maps = _as_maps(anomaly_maps)
    return maps.reshape(maps.shape[0], -1).max(axis=1).astype(np.float64)


def _image_scores(anomaly_maps, image_scores, n: int | None = None) -> np.ndarray:
    if image_scores is not None:
        return as_scores(image_scores, n)
    if anomaly_maps is None:
        raise ValueError("Give anomaly_maps (image score = their maximum) or image_scores.")
    return image_scores_from_maps(anomaly_maps)


def image_roc(anomaly_maps, labels, image_scores=None) -> RocCurve:
    """Image-level ROC curve: TPR = TP / (TP + FN) against FPR = FP / (FP + TN) (thesis §4.5).

    ``anomaly_maps`` (N, H, W) or (N, 1, H, W), or ``None`` when ``image_scores`` (N,) are
    given; ``labels`` (N,) 0 good / 1 defective. Defective is the positive class.
    """
    scores = _image_scores(anomaly_maps, image_scores)
    y = as_labels(labels, scores.size)
    _check_two_classes(y, "Image AUROC")
    fpr, tpr, thresholds = roc_curve(y, scores)
    return RocCurve(fpr, tpr, thresholds)


def image_auroc(anomaly_maps, labels, image_scores=None) -> float:
    """Area under the image-level ROC curve (thesis §4.5, §6.2); 0.5 = chance, 1 = perfect.

    Shapes as in :func:`image_roc`. The image score is the map's maximum (eq. 5.5) unless
    ``image_scores`` are given.
    """
    scores = _image_scores(anomaly_maps, image_scores)
    y = as_labels(labels, scores.size)
    _check_two_classes(y, "Image AUROC")
    return float(roc_auc_score(y, scores))


# ----------------------------------------------------------------------------------------
# Pixel level: ROC
# ----------------------------------------------------------------------------------------


def _pixel_roc(maps: np.ndarray, gt: np.ndarray) -> RocCurve:
    _check_two_classes(gt.reshape(-1), "Pixel AUROC (over all pixels of all images)")
    fpr, tpr, thresholds = roc_curve(gt.reshape(-1), maps.reshape(-1))
    return RocCurve(fpr, tpr, thresholds)


def pixel_roc(anomaly_maps, masks) -> RocCurve:
    """Pixel-level ROC curve over all pixels of all images (thesis §4.5).

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W). Every pixel is one example:
    large defects weigh more than small ones (see :func:`au_pro` for the alternative).
    """
    return _pixel_roc(*as_maps_and_masks(anomaly_maps, masks))


def pixel_auroc(anomaly_maps, masks) -> float:
    """Area under the pixel-level ROC curve (thesis §4.5, §6.2). Shapes as in :func:`pixel_roc`."""
    maps, gt = as_maps_and_masks(anomaly_maps, masks)
    _check_two_classes(gt.reshape(-1), "Pixel AUROC (over all pixels of all images)")
    return float(roc_auc_score(gt.reshape(-1), maps.reshape(-1)))


# ----------------------------------------------------------------------------------------
# Pixel level: PRO and AU-PRO (MVTec AD)
# ----------------------------------------------------------------------------------------


def label_regions(masks) -> tuple[np.ndarray, np.ndarray]:
    """Connected defect regions of every ground-truth map, 8-connected (MVTec AD).

    ``masks`` (N, H, W) or (N, 1, H, W) binary. Returns ``regions`` (N, H, W) int32, where
    0 is a normal pixel and k ≥ 1 the global id of a region (ids are numbered image after
    image, in ``scipy.ndimage.label`` order within an image), and ``sizes`` (R + 1,) int64:
    ``sizes[0]`` is the number of normal pixels and ``sizes[k]`` the area of region k.
    """
    gt = _as_masks(masks)
    regions = np.zeros(gt.shape, dtype=np.int32)
    sizes = [0]
    offset = 0
    for i in range(gt.shape[0]):
        if not gt[i].any():
            sizes[0] += gt[i].size
            continue
        n = ndimage.label(gt[i], structure=EIGHT_CONNECTED, output=regions[i])
        counts = np.bincount(regions[i].reshape(-1), minlength=n + 1)
        sizes[0] += int(counts[0])
        sizes.extend(counts[1:].tolist())
        np.add(regions[i], offset, out=regions[i], where=regions[i] > 0)
        offset += n
    return regions, np.asarray(sizes, dtype=np.int64)


def region_overlaps(anomaly_maps, masks, threshold: float) -> np.ndarray:
    """Per-region overlap at one threshold: |{p in region : score(p) >= t}| / |region|.

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W). Returns (R,) float64, one value
    per connected defect region (order of :func:`label_regions`). Their mean is the PRO
    value at this threshold (Bergmann et al., IJCV 2021, §4.2).
    """
    maps, gt = as_maps_and_masks(anomaly_maps, masks)
    regions, sizes = label_regions(gt)
    hits = np.bincount(regions[maps >= threshold], minlength=sizes.size)
    return hits[1:] / sizes[1:]


def pro_curve(anomaly_maps, masks) -> ProCurve:
    """The per-region-overlap (PRO) curve of MVTec AD: mean region overlap against pixel FPR.

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W); good images (empty masks) count.
    Returns :class:`ProCurve` ``(fpr, pro)``, float64 arrays of equal length that start at
    (0, 0), are non-decreasing and end at (1, 1), with one point per distinct score.

    The algorithm of the MVTec AD evaluation code (Bergmann et al., "The MVTec Anomaly
    Detection Dataset: A Comprehensive Real-World Dataset for Unsupervised Anomaly
    Detection", IJCV 2021; ``compute_pro`` of the MVTec AD evaluation scripts), step by step:

    1. label each ground-truth map into 8-connected regions;
    2. every normal pixel of every image (good images included) adds 1 to the false-positive
       count, every pixel of a region adds 1 / (size of its region) to the overlap count;
    3. sort all scores once, descending; FPR = cumulative false positives / number of normal
       pixels, PRO = cumulative overlap / number of regions;
    4. among equal scores keep only the last point (a threshold cannot split ties);
    5. start the curve at (0, 0).

    No library computes this correctly (scikit-learn has no PRO; several re-implementations
    sample a fixed grid of thresholds, which biases the area), so it is written here by hand:
    SciPy for the connected components, NumPy for the rest. It sorts once and keeps only
    integer positions of defect pixels, so 100 maps of 1024 × 1024 fit in a few GB.
    """
    maps, gt = as_maps_and_masks(anomaly_maps, masks)
    defect_flat, defect_ids, sizes = _defect_pixels(gt)
    n_normal, n_regions = int(sizes[0]), sizes.size - 1
    if n_regions == 0:
        raise ValueError(
            "AU-PRO is undefined: the masks contain no defective region at all (every mask "
            "is empty), so there is no overlap to measure. Evaluate on a test set that "
            "includes defective images with their ground-truth masks."
        )
    if n_normal == 0:
        raise ValueError(
            "AU-PRO is undefined: every pixel is defective, so there are no normal pixels and "
            "no false-positive rate. Include good pixels (e.g. good images) in the evaluation."
        )
    scores = maps.reshape(-1)  # a view for contiguous input: no copy
    order = np.argsort(scores)[::-1]  # the one sort; ties in any order (merged below)
    # run_ends[k]: position k is the last of a run of equal scores. Thresholding at that
    # score selects exactly the pixels at positions 0..k (ties merged into one point).
    sorted_scores = scores[order]
    run_ends = np.empty(scores.size, dtype=bool)
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=run_ends[:-1])
    run_ends[-1] = True
    del sorted_scores
    # Where the defect pixels come in the descending order, and the region of each.
    is_defect_sorted = gt.reshape(-1)[order]
    defect_pos = np.flatnonzero(is_defect_sorted)
    del is_defect_sorted
    region_of = defect_ids[np.searchsorted(defect_flat, order[defect_pos])]
    del order
    # Cumulative overlap: every pixel of region r adds 1 / |r| (float64 sums).
    cum_overlap = np.zeros(defect_pos.size + 1, dtype=np.float64)
    np.cumsum(1.0 / sizes[region_of], out=cum_overlap[1:])
    last = np.flatnonzero(run_ends)
    del run_ends
    fpr = np.empty(last.size + 1, dtype=np.float64)
    pro = np.empty(last.size + 1, dtype=np.float64)
    fpr[0] = pro[0] = 0.0
    for start in range(0, last.size, _CHUNK):  # chunks keep temporaries small
        ends = last[start : start + _CHUNK]
        n_defect = np.searchsorted(defect_pos, ends, side="right")  # defect pixels in 0..end
        # False positives = pixels seen − defect pixels seen: every other one is normal.
        fpr[1 + start : 1 + start + ends.size] = (ends + 1 - n_defect) / n_normal
        pro[1 + start : 1 + start + ends.size] = cum_overlap[n_defect] / n_regions
    np.minimum(pro, 1.0, out=pro)
    pro[-1] = 1.0  # all regions covered; MVTec appends (1, 1), rounding aside the same point
    return ProCurve(fpr, pro)


_CHUNK = 1 << 22


def _defect_pixels(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The defect pixels of boolean masks (N, H, W), 8-connected regions, memory ∝ defects.

    Returns flat indices (D,) ascending, the global region id of each (D,) (ids from 1),
    and ``sizes`` (R + 1,): ``sizes[0]`` normal pixels, ``sizes[k]`` the area of region k.
    """
    hw = int(np.prod(gt.shape[1:]))
    flats, ids, sizes = [], [], [0]
    for i in range(gt.shape[0]):
        if not gt[i].any():
            sizes[0] += hw
            continue
        labelled, n = ndimage.label(gt[i], structure=EIGHT_CONNECTED)
        flat = np.flatnonzero(labelled)
        region = labelled.reshape(-1)[flat]
        sizes[0] += hw - flat.size
        sizes.extend(np.bincount(region, minlength=n + 1)[1:].tolist())
        flats.append(flat + i * hw)
        ids.append(region.astype(np.int64) + (len(sizes) - 1 - n))
    if not flats:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.asarray(sizes, np.int64)
    return np.concatenate(flats), np.concatenate(ids), np.asarray(sizes, dtype=np.int64)


def area_under_curve(x, y, x_max: float) -> float:
    """Trapezoidal area under y(x) on [x[0], x_max], interpolating linearly at ``x_max``.

    ``x`` (K,) non-decreasing, ``y`` (K,). Points with ``x <= x_max`` are integrated with the
    trapezoidal rule; if ``x_max`` falls strictly between two points, the segment is cut
    there with y interpolated linearly (the ``trapezoid`` function of the MVTec AD
    evaluation code). Not normalized: divide by ``x_max`` for a value in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    inside = int(np.searchsorted(x, x_max, side="right"))  # points with x <= x_max
    xs, ys = x[:inside], y[:inside]
    area = float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))
    if 0 < inside < x.size and xs[-1] < x_max:
        x0, y0, x1, y1 = x[inside - 1], y[inside - 1], x[inside], y[inside]
        y_at_limit = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_at_limit) * (x_max - x0)
    return area


def au_pro(anomaly_maps, masks, fpr_limit: float = 0.3) -> tuple[float, ProCurve]:
    """Normalized area under the PRO curve up to ``fpr_limit`` (MVTec AD's AU-PRO).

    AU-PRO = (1 / fpr_limit) ∫₀^{fpr_limit} PRO(FPR) dFPR (Bergmann et al., IJCV 2021,
    §4.2; the MVTec AD evaluation code). The limit 0.3 is MVTec AD's. Thesis §4.5 speaks of
    the area "of the ROC until a specific FPR (usually 0.3)": that is a partial ROC AUC, a
    different metric (TPR counts pixels, PRO counts regions equally); the thesis conflates
    the two, and the value 0.3 is the only thing they share.
    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W). Every connected defect region
    counts equally, whatever its size. Returns ``(value in [0, 1], ProCurve)``:

    >>> value, (fpr, pro) = au_pro(maps, masks)  # doctest: +SKIP
    """
    limit = _check_fpr_limit(fpr_limit)
    curve = pro_curve(anomaly_maps, masks)
    return float(area_under_curve(curve.fpr, curve.pro, limit) / limit), curve


# ----------------------------------------------------------------------------------------
# Threshold-dependent metrics
# ----------------------------------------------------------------------------------------


def dice(predicted, target) -> float:
    """Dice score 2 |P ∩ G| / (|P| + |G|) over all pixels given (thesis §6.2).

    ``predicted`` and ``target`` binary, any equal shape (e.g. (N, H, W)): the sums run over
    every pixel of every image, good images included (a false alarm on a good image lowers
    the score). When both are empty (nothing predicted, nothing to find) the prediction is
    perfect and the score is defined as 1.0.
    """
    p = _to_numpy(predicted).astype(bool, copy=False)
    g = _to_numpy(target).astype(bool, copy=False)
    if p.shape != g.shape:
        raise ValueError(f"predicted {p.shape} and target {g.shape} must have the same shape.")
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(g))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(p & g)) / total


def dice_at_threshold(anomaly_maps, masks, threshold: float) -> float:
    """Dice of the predicted mask ``anomaly_maps >= threshold`` against ``masks`` (thesis §6.4.2).

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W); see :func:`dice`.
    """
    maps, gt = as_maps_and_masks(anomaly_maps, masks)
    return dice(maps >= threshold, gt)


def f1_curve(labels, image_scores) -> tuple[np.ndarray, np.ndarray]:
    """Image-level F1 = 2 · precision · recall / (precision + recall) (thesis eq. 4.16) per threshold.

    ``labels`` (N,), ``image_scores`` (N,). Returns ``(thresholds, f1)``, thresholds
    increasing (every distinct score; defective means score >= threshold); F1 is 0 where
    precision and recall are both 0. Computed with scikit-learn's ``precision_recall_curve``.
    """
    scores = as_scores(image_scores)
    y = as_labels(labels, scores.size)
    _check_two_classes(y, "The F1-optimal threshold")
    precision, recall, thresholds = precision_recall_curve(y, scores)
    p, r = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    denominator = p + r
    f1 = np.divide(2 * p * r, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return thresholds, f1


def f1_optimal_threshold(labels, image_scores) -> float:
    """The image-level F1-optimal threshold, thesis eq. 5.6: argmax_t F1(t).

    ``labels`` (N,), ``image_scores`` (N,). The result is one of the scores; images with
    ``score >= threshold`` are predicted defective. Ties in F1 go to the lowest threshold.
    The thesis uses this threshold for the predicted masks (Dice) and the false goods/bads.
    """
    thresholds, f1 = f1_curve(labels, image_scores)
    return float(thresholds[int(np.argmax(f1))])


def false_goods_bads(labels, image_scores, threshold: float) -> FalseCounts:
    """False goods and false bads at ``threshold`` (thesis §5.4.2, §6.4.3, Table 6.1).

    ``labels`` (N,), ``image_scores`` (N,); an image is predicted defective ("bad") when
    ``score >= threshold``.

    * false goods = defective images predicted good (missed defects, false negatives);
    * false bads = good images predicted defective (false alarms, false positives).

    The thesis' Table 6.1 reports "false bads/goods" in that order — false bads first: e.g.
    Simple Student on Pill, image AUROC 0.448, scores 26/0, and Pill has 26 good test images
    (an F1-optimal threshold on a near-chance detector calls every image defective).
    """
    scores = as_scores(image_scores)
    y = as_labels(labels, scores.size)
    bad = scores >= threshold
    return FalseCounts(
        false_goods=int(np.count_nonzero((y == 1) & ~bad)),
        false_bads=int(np.count_nonzero((y == 0) & bad)),
    )


def normalized_scores(image_scores, threshold: float) -> np.ndarray:
    """Min–max normalized image scores centred on the threshold, thesis eq. 5.7.

    normalized = (score − threshold) / (max − min) + 0.5, with max and min over the test
    set's ``image_scores`` (N,). The threshold lands at 0.5, so > 0.5 means predicted
    defective, and the distance from 0.5 is comparable across categories. Returns (N,).
    """
    scores = as_scores(image_scores)
    spread = float(scores.max() - scores.min())
    if spread == 0.0:
        raise ValueError(
            "Eq. 5.7 divides by (max − min) of the image scores, but all scores are equal. "
            "A detector that gives every image the same score cannot be normalized."
        )
    return (scores - threshold) / spread + 0.5


# ----------------------------------------------------------------------------------------
# One report per category, one table for many
# ----------------------------------------------------------------------------------------

#: The metrics that need no threshold (they rank the scores): the first of
#: :attr:`MetricsReport.KEYS`. Chapters and tables that compare detectors use these names.
THRESHOLD_FREE_KEYS = ("image_auroc", "pixel_auroc", "au_pro")


@dataclass
class MetricsReport:
    """Every metric of one category; :meth:`to_dict` gives the flat JSON-friendly part."""

    image_auroc: float
    pixel_auroc: float
    au_pro: float
    dice: float
    threshold: float
    false_goods: int
    false_bads: int
    fpr_limit: float = 0.3
    threshold_rule: str = "image_f1_oracle"  # the rule behind threshold, dice, false counts
    #: every rule computed: {rule: {value, rule, source, uses_test_labels, params, dice,
    #: false_goods, false_bads}} (see :mod:`stad_utils.thresholds`)
    thresholds: dict = field(default_factory=dict, repr=False)
    image_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    normalized_scores: np.ndarray | None = field(default=None, repr=False)
    image_roc: RocCurve | None = field(default=None, repr=False)
    pixel_roc: RocCurve | None = field(default=None, repr=False)
    pro_curve: ProCurve | None = field(default=None, repr=False)

    KEYS = (
        *THRESHOLD_FREE_KEYS,
        "dice",
        "threshold",
        "false_goods",
        "false_bads",
    )

    def to_dict(self) -> dict:
        """``{image_auroc, pixel_auroc, au_pro, dice, threshold, false_goods, false_bads}``."""
        return {key: getattr(self, key) for key in self.KEYS}


def evaluate(
    anomaly_maps,
    masks,
    labels,
    image_scores=None,
    fpr_limit: float = 0.3,
    *,
    validation_maps=None,
    validation_scores=None,
    threshold_rule: str = "image_f1_oracle",
    false_alarm_rate: float = 0.05,
    pixel_false_alarm_rate: float = 0.01,
) -> MetricsReport:
    """All metrics of one category's test set (thesis §6.2; MVTec AD) → :class:`MetricsReport`.

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W) at the same resolution;
    ``labels`` (N,) 0 good / 1 defective; ``image_scores`` (N,) optional (default: map
    maxima, eq. 5.5).

    Thresholds (see :mod:`stad_utils.thresholds`): every rule that the inputs allow is
    computed, each with its Dice and false goods/bads, into ``report.thresholds``. The
    oracles (image-level F1, eq. 5.6; pixel-level F1, §5.4.2) read the test set. With
    ``validation_maps`` (V, H, W) of good validation images (and optionally their
    ``validation_scores`` (V,), default the map maxima), the deployable rules are added:
    a ``false_alarm_rate`` quantile of the validation image scores and a
    ``pixel_false_alarm_rate`` quantile of their pixels. ``threshold_rule`` names the one
    behind the headline ``threshold``, ``dice``, ``false_goods`` and ``false_bads``; the
    default is the thesis' image-level F1 oracle.
    """
    limit = _check_fpr_limit(fpr_limit)
    maps, gt = as_maps_and_masks(anomaly_maps, masks)
    y = as_labels(labels, maps.shape[0])
    mislabelled = np.flatnonzero((y == 0) & gt.reshape(gt.shape[0], -1).any(axis=1))
    if mislabelled.size:
        raise ValueError(
            f"Images {mislabelled[:5].tolist()} are labelled good (0) but their masks contain "
            "defect pixels: labels and masks disagree. Good images must have empty masks."
        )
    scores = _image_scores(maps, image_scores, maps.shape[0])
    # One roc_curve per level, its area by sklearn's auc: what roc_auc_score computes, but
    # the pixel scores are sorted once and the curves kept for plotting.
    img_roc = image_roc(None, y, scores)
    pix_roc = _pixel_roc(maps, gt)
    curve = pro_curve(maps, gt)
    rules = _threshold_rules(
        maps, gt, y, scores, validation_maps, validation_scores,
        false_alarm_rate, pixel_false_alarm_rate,
    )  # fmt: skip
    if threshold_rule not in rules:
        raise ValueError(
            f"Threshold rule {threshold_rule!r} is not available here: choose one of "
            f"{', '.join(rules)}"
            + (
                " (the validation rules need validation_maps of good validation images)."
                if threshold_rule in thresholds.DEPLOYABLE_RULES
                else "."
            )
        )
    headline = rules[threshold_rule]
    threshold = headline["value"]
    spread = scores.max() - scores.min()
    return MetricsReport(
        image_auroc=float(auc(img_roc.fpr, img_roc.tpr)),
        pixel_auroc=float(auc(pix_roc.fpr, pix_roc.tpr)),
        au_pro=area_under_curve(curve.fpr, curve.pro, limit) / limit,
        dice=headline["dice"],
        threshold=threshold,
        false_goods=headline["false_goods"],
        false_bads=headline["false_bads"],
        fpr_limit=limit,
        threshold_rule=threshold_rule,
        thresholds=rules,
        image_scores=scores,
        normalized_scores=normalized_scores(scores, threshold) if spread > 0 else None,
        image_roc=img_roc,
        pixel_roc=pix_roc,
        pro_curve=curve,
    )


def _threshold_rules(
    maps, gt, y, scores, validation_maps, validation_scores, rate, pixel_rate
) -> dict[str, dict]:
    """Every threshold rule the inputs allow → {rule: threshold, source, Dice, false counts}."""
    found = [thresholds.image_f1_oracle(y, scores), thresholds.pixel_f1_oracle(maps, gt)]
    if validation_maps is not None:
        val_maps = _as_maps(validation_maps, "validation_maps")
        val_scores = _image_scores(val_maps, validation_scores, val_maps.shape[0])
        found.append(thresholds.validation_quantile(val_scores, rate))
        found.append(thresholds.validation_pixel_quantile(val_maps, pixel_rate))
    rules = {}
    for rule in found:
        counts = false_goods_bads(y, scores, rule.value)
        rules[rule.rule] = {
            **rule.to_dict(),
            "dice": dice(maps >= rule.value, gt),
            "false_goods": counts.false_goods,
            "false_bads": counts.false_bads,
        }
    return rules


def tabulate(reports: Mapping[str, MetricsReport], digits: int = 3) -> str:
    """A Markdown table: one row per category, then the mean of every column but the threshold.

    ``reports`` maps a category name to its :class:`MetricsReport` (or to a dict with the
    same keys, e.g. a loaded ``report.json``). Thresholds are not comparable across
    categories, so their mean is left empty; so is a cell whose value is missing or NaN.
    """
    if not reports:
        raise ValueError("tabulate needs at least one report.")
    rows = [
        {**(r.to_dict() if hasattr(r, "to_dict") else dict(r)), "category": name}
        for name, r in reports.items()
    ]
    limits = {getattr(r, "fpr_limit", None) for r in reports.values()} - {None}
    au_pro_title = f"AU-PRO (FPR ≤ {limits.pop():g})" if len(limits) == 1 else "AU-PRO"

    def number(value) -> str:
        return f"{value:.{digits}f}"

    def count(value) -> str:  # false goods / bads: integers, or a mean over seeds
        return str(int(value)) if float(value).is_integer() else number(value)

    def shown(column: Column) -> Column:  # the metric's column, with ``digits``
        if column.key == "threshold":
            return replace(column, format=lambda value: f"{value:.{digits}g}")
        if column.key in ("false_goods", "false_bads"):
            return replace(column, format=count, mean_format="{:.1f}")
        title = au_pro_title if column.key == "au_pro" else column.title
        return replace(column, title=title, format=number)

    columns = [Column("category", align="left")]
    columns += [shown(column) for column in metric_columns(*MetricsReport.KEYS)]
    return markdown_table(rows, columns, mean_label="**mean**", missing="").removesuffix("\n")
