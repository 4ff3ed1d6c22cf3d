"""Chapter 1 runs in the quick profile and records the dataset it describes."""

import pytest
from notebook_runner import figure_count, run_chapter

from stad_utils.data import MVTecAD, ensure_textures
from stad_utils.data.textures import DEFECT_KINDS, TexturesSpec

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("notebooks")]


@pytest.fixture(scope="module")
def chapter1(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch01")
    return run_chapter("01_task_and_data", out), out / "01_task_and_data.ipynb"


def test_chapter1_records_the_textures_dataset(chapter1):
    values, _ = chapter1
    spec = TexturesSpec()
    assert values["categories"] == ["brick", "grass", "gravel"]
    assert values["n_train"] + values["n_val"] == spec.train_images
    assert values["n_val"] == round(0.1 * spec.train_images)
    assert values["n_test_good"] == spec.test_good_images
    assert values["n_test_defective"] == spec.images_per_defect * len(DEFECT_KINDS)
    assert values["defect_types"] == sorted(DEFECT_KINDS)
    # Defects are small but not invisible: between 0.5 % and 10 % of an image on average.
    assert 0.5 < values["mean_defect_area_percent"] < 10


def test_chapter1_batch_and_exercise(chapter1):
    values, executed = chapter1
    assert values["batch_image_shape"] == [8, 3, 128, 128]
    assert values["batch_mask_values"] == [0.0, 1.0]
    assert values["ex_count_regions_ok"] is True
    # Every defective image has at least one region.
    assert all(count >= 6 for count in values["regions_per_defect_type"].values())
    assert figure_count(executed) >= 2


def test_chapter1_statistics_match_the_package(chapter1):
    values, _ = chapter1
    test_set = MVTecAD(ensure_textures(), "brick", "test", image_size=128)
    assert values["n_test_good"] == test_set.counts()["good"]
