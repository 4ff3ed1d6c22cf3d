"""The dense-features chapter proves the fast extraction exact against the patch-by-patch
evaluation (p = 17, 33, 65), measures a speed-up, and checks its exercises."""

import pytest
from notebook_runner import figure_count, run_chapter

pytestmark = [pytest.mark.notebook]


@pytest.fixture(scope="module")
def chapter4(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch04")
    return run_chapter("04_dense_features", out), out / "04_dense_features.ipynb"


def test_dense_extraction_equals_the_naive_one(chapter4):
    values, _ = chapter4
    for p in (17, 33, 65):
        assert values[f"max_difference_p{p}"] < 1e-4, p
    assert values["one_layer_matches_sliding"] is True


def test_dense_extraction_is_faster(chapter4):
    values, executed = chapter4
    assert values["speedup"] > 1
    assert 200 < values["predicted_ratio_p65"] < 300  # multiply-adds, from the layer table
    assert figure_count(executed) >= 2


def test_dense_features_exercises_pass(chapter4):
    values, _ = chapter4
    assert values["ex_pool_offsets_ok"] is True
    assert values["ex_unwarp_ok"] is True
