"""The interlude runs top to bottom: the talk's table is the package's, the baselines'
metrics are sane and the exercises pass."""

from __future__ import annotations

import numpy as np
import pytest
from notebook_runner import figure_count, run_chapter  # tests/ is on sys.path (conftest)

from stad_utils import published
from stad_utils.data import TEXTURE_CATEGORIES

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("notebooks")]

CHAPTER = "02b_the_field"


@pytest.fixture(scope="module")
def glued(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch02b")
    values = run_chapter(CHAPTER, out)
    values["_executed"] = out / f"{CHAPTER}.ipynb"
    return values


def test_the_talks_table_is_the_packages(glued):
    assert glued["talk_baselines"] == published.TALK_BASELINES_PRO
    assert glued["talk_means"] == published.TALK_BASELINES_MEAN
    assert glued["talk_zipper_repeats_carpet"] == ["1-NN", "K-Means", "OC-SVM"]
    assert glued["talk_anogan_column_mean"] == pytest.approx(0.447, abs=5e-4)
    assert (glued["talk_best_baseline"], glued["talk_best_baseline_mean"]) == ("ℓ2-AE", 0.790)


def test_baselines_run_on_every_texture_with_sane_metrics(glued):
    assert glued["core_matches_package"] is True
    assert glued["baseline_categories"] == list(TEXTURE_CATEGORIES)
    results = glued["baseline_results"]
    assert set(results) == {
        f"{c}/{k}" for c in TEXTURE_CATEGORIES for k in ("nearest_neighbour", "gaussian")
    }
    for name, values in results.items():
        # well above chance on every category, but not perfect
        assert 0.6 < values["au_pro"] < 1.0, name
        assert 0.85 < values["pixel_auroc"] < 1.0, name
        assert 0.5 < values["image_auroc"] <= 1.0, name
    for kind in ("nearest_neighbour", "gaussian"):
        mean = np.mean([results[f"{c}/{kind}"]["au_pro"] for c in TEXTURE_CATEGORIES])
        key = "nn_mean_au_pro" if kind == "nearest_neighbour" else "gaussian_mean_au_pro"
        assert glued[key] == pytest.approx(mean, abs=1e-3)
    # 54 training images (60 minus the 10 % validation split) × 16 × 16 positions
    assert glued["bank_vectors"] == 54 * 16 * 16
    assert glued["bank_megabytes"] == pytest.approx(54 * 16 * 16 * 152 * 4 / 2**20, abs=0.01)
    assert glued["baseline_cpu_seconds"] > 0


def test_exercises_pass_and_figures_are_shown(glued):
    assert glued["ex_b1_ok"] is True
    assert glued["ex_b2_ok"] is True
    assert figure_count(glued["_executed"]) >= 3
