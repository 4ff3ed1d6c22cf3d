"""The Feature Vectors Variance chapter: an ensemble trained in the quick profile, three
scores from it, and the comparison table of chapters 6–8 (floors below the measured values:
FVV image AUROC 0.998 and AU-PRO 0.976, variance only 0.976 / 0.953 on brick)."""

import pytest
from notebook_runner import assert_every_texture_trained, figure_count, run_chapter

pytestmark = [pytest.mark.notebook]


@pytest.fixture(scope="module")
def chapter7(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch07")
    return run_chapter(
        "07_feature_vectors_variance", out
    ), out / "07_feature_vectors_variance.ipynb"


def test_fvv_detects_the_defects(chapter7):
    values, executed = chapter7
    assert values["terms_match_package"] is True
    assert values["fvv_image_auroc"] >= 0.93
    assert values["fvv_au_pro"] >= 0.88
    # The disagreement alone is an anomaly score: far better than chance.
    assert values["variance_only_image_auroc"] >= 0.75
    assert figure_count(executed) >= 3


def test_comparison_table_and_price(chapter7):
    values, _ = chapter7
    table = values["comparison"]
    assert list(table) == ["STFPM", "FVV (M = 3)", "FVV, variance only", "Simple Student"]
    # FVV holds a teacher and three students: more parameters than STFPM's two networks.
    assert table["FVV (M = 3)"]["parameters"] > table["STFPM"]["parameters"]
    # Teacher + 3 students = 4 networks against STFPM's 2 (the teacher is shared).
    assert table["FVV (M = 3)"]["parameters"] == 2 * table["STFPM"]["parameters"]
    assert table["Simple Student"]["parameters"] < table["STFPM"]["parameters"]
    # Training times are measured, not asserted (benchmarks/bench_ensemble.py).
    assert values["time_ratio"] > 0


def test_fvv_exercises_pass(chapter7):
    values, _ = chapter7
    assert values["ex_variance_ok"] is True
    assert values["ex_error_ok"] is True


def test_the_other_textures_are_trained_for_chapter_9(chapter7):
    """In the quick profile the chapter also trains FVV on the other two textures (chapter
    9 loads them from the store); measured AU-PRO brick, grass, gravel: 0.976, 0.968, 0.920."""
    assert_every_texture_trained(chapter7[0], floor=0.85)
