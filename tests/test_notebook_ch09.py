"""The comparison chapter: the quick sweep (4 methods × 3 textures categories × 1 seed),
its tables, figures and guidance. The sweep's folder is under the data root, so a second
execution reuses the runs of the first. Floors below the values measured on a CPU: mean
image AUROC 0.967–0.993 and mean AU-PRO 0.939–0.974 per method."""

import pytest
from notebook_runner import figure_count, run_chapter

pytestmark = [pytest.mark.notebook]

METHODS = ["uninformed_students", "stfpm", "fvv", "simple_student"]


@pytest.fixture(scope="module")
def chapter9(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch09")
    return run_chapter("09_comparing_methods", out), out / "09_comparing_methods.ipynb"


def test_the_sweep_runs_every_method_on_every_category(chapter9):
    values, executed = chapter9
    assert values["runs"] == 12
    assert values["methods"] == METHODS
    assert values["categories"] == ["brick", "grass", "gravel"]
    assert values["side_by_side"] == METHODS  # every method's model loaded and run
    assert values["published_rows"] == 0  # the textures have no published numbers
    assert figure_count(executed) >= 6


def test_every_method_detects_the_defects(chapter9):
    values, _ = chapter9
    assert list(values["overall"]) == METHODS
    for method, row in values["overall"].items():
        assert row["image_auroc"] >= 0.90, method
        assert row["pixel_auroc"] >= 0.95, method
        assert row["au_pro"] >= 0.85, method
        assert row["train_seconds"] > 0 and row["parameters"] > 0, method
        # holds for a run resumed from an interrupted build's checkpoint too: its run file's
        # wall_seconds adds the training time of the earlier session (bench.run_sweep)
        assert values["run_seconds"][method] >= row["train_seconds"], method
    assert sum(values["au_pro_wins"].values()) == 3


def test_the_guidance_follows_the_table(chapter9):
    values, _ = chapter9
    overall = values["overall"]
    assert values["best_au_pro_method"] == max(overall, key=lambda m: overall[m]["au_pro"])
    assert values["fastest_training_method"] == min(
        overall, key=lambda m: overall[m]["train_seconds"]
    )
    assert values["smallest_method"] == min(overall, key=lambda m: overall[m]["parameters"])
    assert values["guidance_lines"] >= 5


def test_comparison_exercises_pass(chapter9):
    values, _ = chapter9
    assert values["ex_seed_summary_ok"] is True
    assert values["ex_pareto_front_ok"] is True
