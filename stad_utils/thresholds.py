"""Decision thresholds, and where each one's information comes from.

A detector outputs scores; a factory needs a yes/no. The thesis picks the threshold that
maximizes the image-level F1 score on the **test** set (eq. 5.6). That needs the test
labels, which a factory does not have when it sets a threshold, so the Dice and false
goods/bads it gives are best-case numbers: it is an *oracle*. This module keeps it, names
it as one, and adds rules that use only what a deployment has, good images:

==========================  =============================  ================================
rule                        uses                           source
==========================  =============================  ================================
``image_f1_oracle``         test labels (oracle)           thesis eq. 5.6
``pixel_f1_oracle``         test masks (oracle)            thesis §5.4.2, the alternative
``validation_quantile``     good validation images only    thesis §4.6: "a maximum
                                                           percentage of [errors] we are
                                                           willing to accept"
``validation_pixel_quantile``  good validation pixels only  the same rule per pixel
==========================  =============================  ================================

``validation_quantile`` targets a false-alarm rate on good images: the threshold is the
``1 − rate`` quantile of the good validation images' scores, so about that fraction of good
images score at or above it. With a few validation images the quantile is coarse; we take
the next order statistic up (NumPy's ``method="higher"``), which errs towards fewer false
alarms. ``validation_pixel_quantile`` does the same with the pixels of the good validation
maps, for a segmentation whose pixel false-positive rate is about ``rate``.

Every rule returns a :class:`Threshold` that carries its value, its rule, a plain-words
``source`` and ``uses_test_labels``, so a report can say where each number came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import precision_recall_curve

__all__ = [
    "Threshold",
    "RULES",
    "DEPLOYABLE_RULES",
    "image_f1_oracle",
    "pixel_f1_oracle",
    "validation_quantile",
    "validation_pixel_quantile",
]


@dataclass(frozen=True)
class Threshold:
    """A decision threshold: predicted defective when ``score >= value``."""

    value: float
    rule: str
    source: str
    uses_test_labels: bool
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _scores(values, name: str) -> np.ndarray:
    """``metrics.as_scores``: finite, flat, not empty."""
    from .metrics import as_scores  # metrics imports this module

    return as_scores(values, name=name, allow_empty=False)


def _check_rate(false_alarm_rate: float) -> float:
    rate = float(false_alarm_rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            f"The false-alarm rate must be in [0, 1), got {false_alarm_rate!r} "
            "(0.05 means: about 5 % of good images flagged)."
        )
    return rate


def image_f1_oracle(labels, image_scores) -> Threshold:
    """The thesis' threshold, eq. 5.6: argmax_t of the image-level F1 on the test set.

    ``labels`` (N,) 0 good / 1 defective, ``image_scores`` (N,). An oracle: it reads the
    test labels. Ties in F1 go to the lowest threshold (as :func:`metrics.f1_optimal_threshold`).
    """
    from .metrics import f1_optimal_threshold  # metrics imports this module

    return Threshold(
        value=f1_optimal_threshold(labels, image_scores),
        rule="image_f1_oracle",
        source="test labels (oracle): image-level F1-optimal, thesis eq. 5.6",
        uses_test_labels=True,
    )


def pixel_f1_oracle(anomaly_maps, masks) -> Threshold:
    """The pixel-level F1-optimal threshold, the alternative of thesis §5.4.2.

    ``anomaly_maps`` and ``masks`` (N, H, W) or (N, 1, H, W). An oracle: it reads the
    test masks ("that would imply that ground-truth masks are provided", §5.4.2). The
    F1 of every distinct pixel score comes from scikit-learn's ``precision_recall_curve``.
    """
    scores = _scores(anomaly_maps, "anomaly_maps")
    truth = (np.asarray(masks).reshape(-1) > 0).astype(np.int8)
    if truth.size != scores.size:
        raise ValueError(
            f"anomaly_maps has {scores.size} pixels but masks has {truth.size}: "
            "give maps and masks at the same resolution."
        )
    if not truth.any():
        raise ValueError("The masks have no defect pixel: a pixel-level F1 needs some.")
    precision, recall, thresholds = precision_recall_curve(truth, scores)
    p, r = precision[:-1], recall[:-1]
    denominator = p + r
    f1 = np.divide(2 * p * r, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return Threshold(
        value=float(thresholds[int(np.argmax(f1))]),
        rule="pixel_f1_oracle",
        source="test masks (oracle): pixel-level F1-optimal, thesis §5.4.2",
        uses_test_labels=True,
    )


def _quantile_rule(scores: np.ndarray, rate: float, rule: str, what: str, count: str) -> Threshold:
    """The ``1 − rate`` quantile of good ``scores`` (``method="higher"``: an observed score,
    rounding towards fewer false alarms) as the threshold ``rule``."""
    return Threshold(
        value=float(np.quantile(scores, 1.0 - rate, method="higher")),
        rule=rule,
        source=(
            f"good validation {what} only: the {1 - rate:.3g} quantile of {scores.size} "
            f"{'image' if what == 'images' else 'pixel'} scores "
            f"(target {'false-alarm rate' if what == 'images' else 'pixel false-positive rate'} "
            f"{rate:.3g})"
        ),
        uses_test_labels=False,
        params={"false_alarm_rate": rate, count: int(scores.size)},
    )


def validation_quantile(validation_image_scores, false_alarm_rate: float = 0.05) -> Threshold:
    """A deployable threshold from good validation images only (thesis §4.6).

    ``validation_image_scores`` (V,): the scores of good images the model never trained
    on. The threshold is their ``1 − false_alarm_rate`` quantile, so about
    ``false_alarm_rate`` of good images are flagged. No test image, label or mask is involved.
    """
    scores = _scores(validation_image_scores, "validation_image_scores")
    rate = _check_rate(false_alarm_rate)
    return _quantile_rule(scores, rate, "validation_quantile", "images", "validation_images")


def validation_pixel_quantile(validation_maps, false_alarm_rate: float = 0.01) -> Threshold:
    """A deployable pixel threshold from good validation maps only.

    ``validation_maps`` (V, H, W) or (V, 1, H, W): anomaly maps of good validation
    images. The threshold is the ``1 − false_alarm_rate`` quantile of their pixels, so
    about that fraction of good pixels is segmented as defective.
    """
    pixels = _scores(validation_maps, "validation_maps")
    rate = _check_rate(false_alarm_rate)
    return _quantile_rule(pixels, rate, "validation_pixel_quantile", "pixels", "validation_pixels")


#: every rule by name; the oracles read the test set, the others only good validation images
RULES = {
    "image_f1_oracle": image_f1_oracle,
    "pixel_f1_oracle": pixel_f1_oracle,
    "validation_quantile": validation_quantile,
    "validation_pixel_quantile": validation_pixel_quantile,
}
DEPLOYABLE_RULES = ("validation_quantile", "validation_pixel_quantile")
