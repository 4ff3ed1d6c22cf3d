"""Tests of stad_utils.metrics: analytic cases, a brute-force reference, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from stad_utils import metrics as M

# ----------------------------------------------------------------------------------------
# A brute-force reference: one threshold per distinct score, straight from the definitions
# ----------------------------------------------------------------------------------------


def brute_force_pro_curve(maps, masks):
    """PRO curve by thresholding at every distinct score (descending), plus (0, 0)."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks).astype(bool)
    regions = []
    for m in masks:
        labelled, n = ndimage.label(m, structure=np.ones((3, 3)))
        regions.append([labelled == k for k in range(1, n + 1)])
    fpr, pro = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        predicted = maps >= t
        fpr.append(predicted[~masks].sum() / (~masks).sum())
        overlaps = [
            predicted[i][region].sum() / region.sum()
            for i in range(len(maps))
            for region in regions[i]
        ]
        pro.append(np.mean(overlaps))
    return np.array(fpr), np.array(pro)


def brute_force_area(x, y, limit):
    """Area under the polyline (x, y) on [0, limit], segment by segment."""
    area = 0.0
    for x0, y0, x1, y1 in zip(x[:-1], y[:-1], x[1:], y[1:], strict=True):
        if x1 <= limit:
            area += 0.5 * (y0 + y1) * (x1 - x0)
        elif x0 < limit:
            y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += 0.5 * (y0 + y_limit) * (limit - x0)
    return area


@st.composite
def maps_and_masks(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 6))
    # Few distinct values → many ties; or arbitrary floats.
    elements = draw(
        st.sampled_from(
            [
                st.integers(0, 4).map(float),
                st.floats(-10, 10, allow_nan=False, width=32),
            ]
        )
    )
    maps = draw(hnp.arrays(np.float32, (n, h, w), elements=elements))
    masks = draw(hnp.arrays(np.uint8, (n, h, w), elements=st.integers(0, 1)))
    return maps, masks


# ----------------------------------------------------------------------------------------
# AU-PRO: analytic cases
# ----------------------------------------------------------------------------------------


def two_blob_case():
    masks = np.zeros((3, 16, 16), dtype=np.uint8)
    masks[0, 2:8, 2:10] = 1
    masks[1, 10:12, 3:5] = 1  # image 2 is good: empty mask
    return masks


def test_perfect_detector_scores_one():
    masks = two_blob_case()
    maps = masks.astype(np.float32) + 0.01 * np.arange(masks.size).reshape(masks.shape) / masks.size
    value, curve = M.au_pro(maps, masks)
    assert value == pytest.approx(1.0)
    assert M.pixel_auroc(maps, masks) == pytest.approx(1.0)
    assert M.image_auroc(maps, [1, 1, 0]) == pytest.approx(1.0)
    assert curve.fpr[0] == 0 and curve.pro[0] == 0
    assert curve.fpr[-1] == 1 and curve.pro[-1] == 1


def test_inverted_detector_scores_zero():
    masks = two_blob_case()
    maps = 1.0 - masks.astype(np.float32)
    value, curve = M.au_pro(maps, masks)
    assert value == 0.0
    np.testing.assert_allclose(curve.fpr, [0, 1, 1])
    np.testing.assert_allclose(curve.pro, [0, 0, 1])
    assert M.pixel_auroc(maps, masks) == 0.0


def test_stripes_case_computed_by_hand():
    # One 4 × 8 image whose score is constant along each column ("stripes").
    # Columns 6 and 7 are one defect region (8 pixels); 6 normal columns = 24 pixels.
    # Column scores: col 7 → 8, col 0 → 7, col 6 → 6, cols 1..5 → 5, 4, 3, 2, 1.
    # Thresholds from the top:
    #   t = 8: column 7 found       → (FPR, PRO) = (0, 4/8)   = (0, 0.5)
    #   t = 7: column 0 (normal)    →              (4/24, 0.5) = (1/6, 0.5)
    #   t = 6: column 6 found       →              (1/6, 1)
    #   t = 5 … 1: one normal column each → (2/6, 1) … (1, 1)
    # Area up to 0.3: 0.5 · 1/6 + 1 · (0.3 − 1/6) = 13/60;  AU-PRO = (13/60) / 0.3 = 13/18.
    column_scores = np.array([7, 5, 4, 3, 2, 1, 6, 8], dtype=np.float32)
    maps = np.tile(column_scores, (4, 1))[None]
    masks = np.zeros((1, 4, 8), dtype=np.uint8)
    masks[0, :, 6:] = 1
    value, curve = M.au_pro(maps, masks)
    assert value == pytest.approx(13 / 18)
    np.testing.assert_allclose(curve.fpr, [0, 0, 1 / 6, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1])
    np.testing.assert_allclose(curve.pro, [0, 0.5, 0.5, 1, 1, 1, 1, 1, 1])
    # Up to FPR 1 the area is 1 − 0.5 · 1/6 = 11/12.
    assert M.au_pro(maps, masks, fpr_limit=1.0)[0] == pytest.approx(11 / 12)


def two_regions(small_first: bool):
    """Two 8 × 8 images: a 16-pixel region in image 0, a 1-pixel region in image 1."""
    masks = np.zeros((2, 8, 8), dtype=np.uint8)
    masks[0, 0:4, 0:4] = 1  # big: 16 pixels
    masks[1, 5, 5] = 1  # small: 1 pixel
    maps = np.zeros((2, 8, 8), dtype=np.float32)
    maps[0, 7, :] = 0.7  # 11 normal pixels at 0.7
    maps[1, 0, 0:3] = 0.7
    big, small = (0.5, 1.0) if small_first else (1.0, 0.5)
    maps[0, 0:4, 0:4] = big
    maps[1, 5, 5] = small
    return maps, masks


@pytest.mark.parametrize("small_first", [True, False])
def test_each_region_counts_equally(small_first):
    # Normal pixels: 128 − 17 = 111. Whichever region scores 1.0 is found first (PRO 0.5,
    # whatever its size), then 11 normal pixels at 0.7 (FPR 11/111), then the other region.
    # Curve: (0,0) (0,.5) (11/111,.5) (11/111,1) (1,1), the same for both orders:
    # AU-PRO = (0.5 · 11/111 + (0.3 − 11/111)) / 0.3 = 1 − 5.5 / 33.3.
    maps, masks = two_regions(small_first)
    value, curve = M.au_pro(maps, masks)
    assert value == pytest.approx(1 - 5.5 / 33.3)
    np.testing.assert_allclose(curve.fpr, [0, 0, 11 / 111, 11 / 111, 1])
    np.testing.assert_allclose(curve.pro, [0, 0.5, 0.5, 1, 1])
    # At threshold 0.7 the region found first is fully covered, the other not at all.
    overlaps = M.region_overlaps(maps, masks, 0.7)
    np.testing.assert_allclose(overlaps, [0, 1] if small_first else [1, 0])
    # The pixel ROC weighs pixels, not regions: the orders differ a lot.
    # P(defect pixel > normal pixel): small first → (1·111 + 16·100) / (17·111);
    # big first → (16·111 + 1·100) / (17·111).
    expected = (111 + 1600) / 1887 if small_first else (1776 + 100) / 1887
    assert M.pixel_auroc(maps, masks) == pytest.approx(expected)


def test_regions_are_eight_connected_and_good_images_count():
    masks = np.zeros((2, 5, 5), dtype=np.uint8)
    masks[0, 1, 1] = masks[0, 2, 2] = masks[0, 3, 3] = 1  # a diagonal: one region
    regions, sizes = M.label_regions(masks)
    assert sizes.tolist() == [50 - 3, 3]
    assert set(np.unique(regions).tolist()) == {0, 1}
    # Scores: the defect at 1, the good image at 2: every pixel of the good image is a
    # false positive (25 of 47 normal pixels) before any defect is found.
    maps = masks.astype(np.float32)
    maps[1] = 2.0
    curve = M.pro_curve(maps, masks)
    np.testing.assert_allclose(curve.fpr, [0, 25 / 47, 25 / 47, 1])
    np.testing.assert_allclose(curve.pro, [0, 0, 1, 1])


def test_all_equal_scores_give_the_diagonal_and_interpolate_at_the_limit():
    masks = two_blob_case()
    maps = np.full(masks.shape, 0.25, dtype=np.float32)
    value, curve = M.au_pro(maps, masks)
    np.testing.assert_array_equal(curve.fpr, [0, 1])
    np.testing.assert_array_equal(curve.pro, [0, 1])
    # Area of the diagonal up to 0.3 is 0.3²/2 (interpolated at 0.3): normalized 0.15.
    assert value == pytest.approx(0.15)
    assert M.au_pro(maps, masks, fpr_limit=1.0)[0] == pytest.approx(0.5)
    assert M.au_pro(maps, masks, fpr_limit=0.05)[0] == pytest.approx(0.025)


def test_area_under_curve_interpolates_or_stops_at_a_point():
    x = np.array([0.0, 0.2, 0.2, 0.6, 1.0])
    y = np.array([0.0, 0.4, 0.6, 1.0, 1.0])
    # Limit on a point: no interpolation, the vertical jump at 0.2 adds nothing.
    assert M.area_under_curve(x, y, 0.2) == pytest.approx(0.5 * 0.4 * 0.2)
    # Limit 0.4 cuts the segment (0.2, 0.6) → (0.6, 1.0) where y = 0.8.
    expected = 0.04 + 0.5 * (0.6 + 0.8) * 0.2
    assert M.area_under_curve(x, y, 0.4) == pytest.approx(expected)
    assert M.area_under_curve(x, y, 1.0) == pytest.approx(0.04 + 0.32 + 0.4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maps_and_masks(), st.sampled_from([0.05, 0.3, 0.5, 1.0]))
def test_au_pro_agrees_with_brute_force(data, limit):
    maps, masks = data
    if masks.all() or not masks.any():
        with pytest.raises(ValueError, match="AU-PRO is undefined"):
            M.au_pro(maps, masks)
        return
    value, curve = M.au_pro(maps, masks, fpr_limit=limit)
    fpr, pro = brute_force_pro_curve(maps, masks)
    np.testing.assert_allclose(curve.fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(curve.pro, pro, atol=1e-12)
    assert value == pytest.approx(brute_force_area(fpr, pro, limit) / limit, abs=1e-12)
    assert 0.0 <= value <= 1.0


@settings(max_examples=50, deadline=None)
@given(maps_and_masks())
def test_region_overlaps_mean_is_a_point_of_the_curve(data):
    maps, masks = data
    if masks.all() or not masks.any():
        return
    t = float(np.median(maps))
    overlaps = M.region_overlaps(maps, masks, t)
    fpr, pro = brute_force_pro_curve(maps, masks)
    thresholds = np.unique(maps)[::-1]
    k = int(np.flatnonzero(thresholds == thresholds[thresholds >= t].min())[0]) + 1
    assert overlaps.mean() == pytest.approx(pro[k])


def test_inputs_torch_channel_axis_and_255_masks_agree():
    maps, masks = two_regions(small_first=True)
    reference = M.au_pro(maps, masks)[0]
    assert M.au_pro(torch.from_numpy(maps)[:, None], torch.from_numpy(masks)[:, None])[0] == (
        pytest.approx(reference)
    )
    assert M.au_pro(maps.astype(np.float64), masks.astype(bool) * 255)[0] == pytest.approx(
        reference
    )


# ----------------------------------------------------------------------------------------
# Threshold, Dice, false goods/bads, normalized scores
# ----------------------------------------------------------------------------------------

SCORES = np.array([0.1, 0.4, 0.35, 0.8])
LABELS = np.array([0, 0, 1, 1])


def test_f1_optimal_threshold_by_hand():
    # t = 0.1: P 2/4, R 1 → F1 2/3;   t = 0.35: P 2/3, R 1 → F1 0.8 (best)
    # t = 0.4: P 1/2, R 1/2 → 0.5;    t = 0.8: P 1, R 1/2 → 2/3
    thresholds, f1 = M.f1_curve(LABELS, SCORES)
    np.testing.assert_allclose(thresholds, [0.1, 0.35, 0.4, 0.8])
    np.testing.assert_allclose(f1, [2 / 3, 0.8, 0.5, 2 / 3])
    assert M.f1_optimal_threshold(LABELS, SCORES) == 0.35
    # Perfect separation: the lowest defective score.
    assert M.f1_optimal_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == 0.7


def test_false_goods_and_bads_by_hand():
    # At 0.35: the good image scoring 0.4 is a false bad; no defective image is missed.
    assert M.false_goods_bads(LABELS, SCORES, 0.35) == (0, 1)
    # At 0.5: the defective image at 0.35 is a false good; the good ones are fine.
    counts = M.false_goods_bads(LABELS, SCORES, 0.5)
    assert counts.false_goods == 1 and counts.false_bads == 0
    # score == threshold counts as defective.
    assert M.false_goods_bads([1], [0.8], 0.8) == (0, 0)


def test_normalized_scores_eq_5_7_by_hand():
    normalized = M.normalized_scores(SCORES, 0.35)
    # (s − 0.35) / (0.8 − 0.1) + 0.5
    np.testing.assert_allclose(
        normalized, [0.5 - 0.25 / 0.7, 0.5 + 0.05 / 0.7, 0.5, 0.5 + 0.45 / 0.7]
    )
    assert normalized[2] == 0.5
    with pytest.raises(ValueError, match="all scores are equal"):
        M.normalized_scores([0.3, 0.3], 0.3)


def test_dice_by_hand():
    predicted = np.zeros((1, 3, 3), dtype=bool)
    target = np.zeros((1, 3, 3), dtype=bool)
    predicted[0, 0, 0:3] = True  # 3 pixels
    target[0, 0, 1:3] = target[0, 1, 1:3] = True  # 4 pixels, 2 shared
    assert M.dice(predicted, target) == pytest.approx(2 * 2 / (3 + 4))
    assert M.dice(predicted, predicted) == 1.0
    assert M.dice(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0  # both empty: defined as 1
    assert M.dice(predicted, np.zeros_like(target)) == 0.0
    # Over all images: a false alarm on a good image counts.
    maps = np.stack([predicted[0], np.eye(3, dtype=bool)]).astype(np.float32)
    masks = np.stack([target[0], np.zeros((3, 3), dtype=bool)])
    assert M.dice_at_threshold(maps, masks, 0.5) == pytest.approx(2 * 2 / (6 + 4))


# ----------------------------------------------------------------------------------------
# evaluate and tabulate
# ----------------------------------------------------------------------------------------


def test_evaluate_report_and_table():
    maps, masks = two_regions(small_first=True)
    good = np.zeros((2, 8, 8), dtype=np.float32)
    good[0, 3, 3] = 0.6  # a good image whose maximum (0.6) sits between the defects'
    all_maps = np.concatenate([maps, good])
    all_masks = np.concatenate([masks, np.zeros_like(masks)])
    labels = [1, 1, 0, 0]
    report = M.evaluate(all_maps, all_masks, labels)
    flat = report.to_dict()
    assert list(flat) == list(M.MetricsReport.KEYS)
    json.dumps(flat)  # JSON-friendly
    # Image scores (maxima): 0.7 (image 0's normal row), 1.0, 0.6, 0 → perfect ranking.
    np.testing.assert_allclose(report.image_scores, [0.7, 1.0, 0.6, 0.0])
    assert flat["image_auroc"] == 1.0
    assert flat["threshold"] == pytest.approx(0.7)
    assert (flat["false_goods"], flat["false_bads"]) == (0, 0)
    # At 0.7: predicted = 11 normal pixels + the small region; truth = 17 pixels.
    assert flat["dice"] == pytest.approx(2 * 1 / (12 + 17))
    # Normal pixels are now 111 + 128 = 239; the good image's 0.6 pixel is one more FP.
    # Curve: (0,.5) (11/239,.5) (12/239,.5) (12/239,1) (1,1).
    expected = (0.5 * 12 / 239 + (0.3 - 12 / 239)) / 0.3
    assert flat["au_pro"] == pytest.approx(expected)
    assert report.pro_curve.fpr[-1] == 1.0
    assert flat["pixel_auroc"] == pytest.approx(M.pixel_auroc(all_maps, all_masks))
    assert flat["au_pro"] == pytest.approx(M.au_pro(all_maps, all_masks)[0])
    assert report.image_roc.fpr.shape == report.image_roc.tpr.shape
    np.testing.assert_allclose(report.normalized_scores, [0.5, 0.8, 0.4, -0.2])

    table = M.tabulate({"first": report, "second": flat})
    lines = table.splitlines()
    assert lines[0].startswith("| category | image AUROC | pixel AUROC | AU-PRO (FPR ≤ 0.3)")
    assert len(lines) == 5
    assert lines[2].startswith("| first | 1.000 |")
    assert lines[-1].startswith("| **mean** | 1.000 |")
    assert f"{expected:.3f}" in lines[-1]


# ----------------------------------------------------------------------------------------
# Clear errors
# ----------------------------------------------------------------------------------------


def test_error_no_defective_region():
    with pytest.raises(ValueError, match="no defective region"):
        M.au_pro(np.random.rand(2, 4, 4), np.zeros((2, 4, 4)))


def test_error_shapes_differ():
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4\) but masks have shape \(2, 8, 8\)"):
        M.au_pro(np.random.rand(2, 4, 4), np.ones((2, 8, 8)))
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        M.au_pro(np.random.rand(4, 4), np.ones((4, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_error_non_finite_scores(bad):
    maps, masks = two_regions(True)
    maps[0, 1, 1] = bad
    with pytest.raises(
        ValueError, match="NaN and .* infinite values; every score must be a finite"
    ):
        M.au_pro(maps, masks)
    with pytest.raises(ValueError, match="finite"):
        M.evaluate(maps, masks, [1, 1])


def test_error_mask_not_binary():
    maps, masks = two_regions(True)
    soft = masks.astype(np.float32) * 0.5
    with pytest.raises(ValueError, match=r"must be binary.*\[0\.5\].*nearest-neighbour"):
        M.au_pro(maps, soft)
    mixed = masks.copy()
    mixed[0, 0, 0] = 255
    with pytest.raises(ValueError, match="must be binary"):
        M.pixel_auroc(maps, mixed)
    # {0, 255} and booleans are fine.
    assert M.au_pro(maps, masks * 255)[0] == M.au_pro(maps, masks.astype(bool))[0]


@pytest.mark.parametrize("limit", [0, -0.1, 1.5, float("nan"), "a"])
def test_error_fpr_limit_outside_unit_interval(limit):
    maps, masks = two_regions(True)
    with pytest.raises(ValueError, match=r"fpr_limit must be .*\(0, 1\]"):
        M.au_pro(maps, masks, fpr_limit=limit)


def test_error_one_class_only():
    with pytest.raises(ValueError, match="both good and defective.*all 3 are defective"):
        M.image_auroc(None, [1, 1, 1], image_scores=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="all 2 are good"):
        M.image_auroc(np.random.rand(2, 4, 4), [0, 0])
    with pytest.raises(ValueError, match="Pixel AUROC.*both good and defective"):
        M.pixel_auroc(np.random.rand(2, 4, 4), np.zeros((2, 4, 4)))


def test_error_labels_disagree_with_masks():
    maps, masks = two_regions(True)
    with pytest.raises(ValueError, match=r"Images \[1\] are labelled good"):
        M.evaluate(maps, masks, [1, 0])
    with pytest.raises(ValueError, match="0 \\(good\\) or 1 \\(defective\\)"):
        M.evaluate(maps, masks, [1, 2])


def test_public_validators_convert_and_explain():
    y = M.as_labels(torch.tensor([1, 0, 1]), 3)
    assert y.dtype == np.int64 and y.tolist() == [1, 0, 1]
    s = M.as_scores([1, 2.5], 2)
    assert s.dtype == np.float64 and s.tolist() == [1.0, 2.5]
    with pytest.raises(ValueError, match="labels has 2 entries but there are 3 images"):
        M.as_labels([0, 1], 3)
    with pytest.raises(ValueError, match="must be a sequence with one label per image"):
        M.as_labels(1)
    with pytest.raises(ValueError, match="val_scores contains 1 NaN and 0 infinite"):
        M.as_scores([0.1, np.nan], name="val_scores")
    assert M.as_scores(np.zeros((2, 0))).shape == (0,)  # empty is allowed unless refused
    with pytest.raises(ValueError, match="val_maps is empty: give at least one score"):
        M.as_scores(np.zeros((2, 0)), name="val_maps", allow_empty=False)


def test_chunked_curve_assembly_matches_brute_force(monkeypatch):
    monkeypatch.setattr(M, "_CHUNK", 3)  # many chunks on a small input
    rng = np.random.default_rng(5)
    maps = rng.integers(0, 20, (3, 7, 7)).astype(np.float32)
    masks = (rng.random((3, 7, 7)) > 0.7).astype(np.uint8)
    curve = M.pro_curve(maps, masks)
    fpr, pro = brute_force_pro_curve(maps, masks)
    np.testing.assert_allclose(curve.fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(curve.pro, pro, atol=1e-12)


# ----------------------------------------------------------------------------------------
# The figures of stad_utils.viz.curves show the numbers of the metrics
# ----------------------------------------------------------------------------------------


def test_curve_figures_report_the_metrics():
    import matplotlib.figure
    import matplotlib.pyplot as plt

    from stad_utils.viz import curves as C

    maps, masks = two_regions(small_first=True)
    value, curve = M.au_pro(maps, masks)
    fig = C.plot_pro({"detector": curve}, fpr_limit=0.3)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"detector AU-PRO {value:.3f}" in legend
    fig = C.plot_roc(M.pixel_roc(maps, masks))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"AUROC {M.pixel_auroc(maps, masks):.3f}" in legend
    fig = C.plot_region_overlaps(maps, masks, 0.7)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sorted(texts) == ["0%", "100%"]  # the big region missed, the small one found
    assert "PRO 0.50" in fig._suptitle.get_text()
    fig = C.plot_threshold_grid(maps, masks, [0.5, 1.0])
    assert len(fig.axes) == 4
    thresholds, f1 = M.f1_curve(LABELS, SCORES)
    assert isinstance(C.plot_f1_curve(thresholds, f1, best=0.35), matplotlib.figure.Figure)
    fig = C.plot_normalized_scores(M.normalized_scores(SCORES, 0.35), LABELS)
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close("all")
