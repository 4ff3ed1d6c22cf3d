"""The published tables were transcribed correctly: their own summary rows agree."""

import numpy as np
import pytest

from stad_utils import published


def test_uninformed_students_mean_is_the_slide_mean():
    assert np.mean(list(published.US_PRO.values())) == pytest.approx(0.857, abs=5e-4)
    assert set(published.US_PRO) == set(published.CATEGORY_ORDER)


@pytest.mark.parametrize(
    "table, backbone, average",
    [
        (published.ANOMALIB_STFPM_IMAGE_AUROC, "resnet18", 0.893),
        (published.ANOMALIB_STFPM_PIXEL_AUROC, "resnet18", 0.951),
        (published.ANOMALIB_STFPM_IMAGE_AUROC, "wide_resnet50_2", 0.876),
        (published.ANOMALIB_STFPM_PIXEL_AUROC, "wide_resnet50_2", 0.903),
    ],
)
def test_anomalib_averages_match_the_appendix(table, backbone, average):
    assert np.mean(list(table[backbone].values())) == pytest.approx(average, abs=1e-3)


def test_thesis_tables_cover_the_same_14_categories():
    for table in (
        published.THESIS_IMAGE_AUROC,
        published.THESIS_DICE,
        published.THESIS_FALSE_BADS_GOODS,
    ):
        for method in ("stfpm", "fvv", "simple_student"):
            assert set(table[method]) == set(published.CATEGORY_ORDER) - {"grid"}


def test_published_for_collects_every_source():
    rows = published.published_for("stfpm", "carpet")
    sources = {row["source"] for row in rows}
    assert any("thesis" in s for s in sources) and any("anomalib" in s for s in sources)
    assert {"metric": "image_auroc", "value": 0.977, "source": published.SOURCES["THESIS"]} in rows
    assert published.published_for("stfpm", "brick") == []
    assert published.published_for("uninformed_students", "grid")[0]["value"] == 0.819
