"""Chapter 2 runs top to bottom and records numbers that agree with stad_utils.metrics."""

from __future__ import annotations

import numpy as np
import pytest
from notebook_runner import figure_count, run_chapter  # tests/ is on sys.path (conftest)

from stad_utils import metrics

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("notebooks")]

CHAPTER = "02_measuring_detectors"


@pytest.fixture(scope="module")
def glued(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch02")
    values = run_chapter(CHAPTER, out)
    values["_executed"] = out / f"{CHAPTER}.ipynb"
    return values


def test_worked_example_au_pro_matches_the_package(glued):
    maps = np.asarray(glued["worked_maps"], dtype=np.float32)
    masks = np.asarray(glued["worked_masks"], dtype=np.uint8)
    assert maps.shape == masks.shape == (2, 32, 32)
    expected, _ = metrics.au_pro(maps, masks, fpr_limit=0.3)
    assert glued["worked_au_pro"] == pytest.approx(expected, abs=1e-12)
    assert 0.5 < glued["worked_au_pro"] < 1.0
    overlaps = metrics.region_overlaps(maps, masks, 0.5)
    assert glued["worked_overlaps"] == pytest.approx(overlaps.round(4).tolist())
    # The point of the example: the small region is found, the large one only partly.
    large, small = glued["worked_overlaps"]
    assert small == 1.0 and 0.0 < large < 1.0
    assert glued["worked_pro"] == pytest.approx(np.mean(overlaps), abs=1e-4)
    assert glued["worked_pixel_tpr"] < glued["worked_pro"]


def test_threshold_and_counts_match_the_package(glued):
    scores, labels = glued["image_scores"], glued["labels"]
    assert len(scores) == len(labels) == 24 and sum(labels) == 12
    threshold = metrics.f1_optimal_threshold(labels, scores)
    assert glued["f1_threshold"] == pytest.approx(threshold)
    counts = metrics.false_goods_bads(labels, scores, threshold)
    assert (glued["false_goods"], glued["false_bads"]) == tuple(counts)
    assert 0.0 < glued["dice"] < 1.0


def test_image_auroc_blind_to_location(glued):
    assert glued["image_auroc_shifted"] == glued["image_auroc"]
    assert glued["au_pro_shifted"] < glued["au_pro"] - 0.3


def test_exercises_pass_and_figures_are_shown(glued):
    assert glued["ex_region_overlap_ok"] is True
    assert glued["ex_dice_ok"] is True
    assert figure_count(glued["_executed"]) >= 7


def test_label_free_threshold_uses_only_the_validation_scores(glued):
    """Section 2.8: the deployable threshold is the 0.95 quantile of the validation scores."""
    val = np.asarray(glued["val_scores"])
    assert val.size == 20
    expected = np.quantile(val, 0.95, method="higher")
    assert glued["deployable_threshold"] == pytest.approx(expected)
    counts = metrics.false_goods_bads(glued["labels"], glued["image_scores"], expected)
    assert (glued["deployable_false_goods"], glued["deployable_false_bads"]) == tuple(counts)
    assert 0.0 <= glued["deployable_dice"] <= 1.0
