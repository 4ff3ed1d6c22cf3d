"""The Uninformed Students chapter in the quick profile: the method trained on brick, its
two terms, its scales and its exercises (floors below the measured values)."""

import pytest
from notebook_runner import figure_count, run_chapter

pytestmark = [pytest.mark.notebook]


@pytest.fixture(scope="module")
def chapter5(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch05")
    return run_chapter("05_uninformed_students", out), out / "05_uninformed_students.ipynb"


def test_the_notebook_code_is_the_package_code(chapter5):
    values, _ = chapter5
    assert values["terms_match_package"] is True


def test_the_method_detects_and_segments(chapter5):
    values, executed = chapter5
    assert values["us_image_auroc"] >= 0.9
    assert values["us_au_pro"] >= 0.85
    assert figure_count(executed) >= 5
    # at the chosen pixels the defect's ensemble misses the teacher by more, and spreads more
    assert values["pixel_error_defect"] > values["pixel_error_good"]
    assert values["pixel_variance_defect"] > values["pixel_variance_good"]


def test_each_term_and_scale_is_a_detector(chapter5):
    values, _ = chapter5
    terms, scales = values["term_table"], values["scale_table"]
    assert list(terms) == ["regression error e", "predictive variance v", "e + v (eq. 8)"]
    assert list(scales) == ["p = 17", "p = 33", "p = 65", "all scales (mean)"]
    for row in [*terms.values(), *scales.values()]:
        assert row["pixel_auroc"] > 0.6  # every term and every scale beats chance clearly
    # the mean of the scales is close to the best single scale on AU-PRO
    best = max(scales[k]["au_pro"] for k in scales if k.startswith("p ="))
    assert scales["all scales (mean)"]["au_pro"] >= best - 0.1


def test_exercises_pass(chapter5):
    values, _ = chapter5
    assert values["ex_variance_ok"] is True
    assert values["ex_combine_ok"] is True
