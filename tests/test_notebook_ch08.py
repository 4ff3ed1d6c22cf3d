"""The Simple Student chapter: architecture tables, training, per-defect comparison."""

import pytest
from notebook_runner import assert_every_texture_trained, figure_count, run_chapter

pytestmark = [pytest.mark.notebook]


@pytest.fixture(scope="module")
def chapter8(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch08")
    return run_chapter("08_simple_student", out), out / "08_simple_student.ipynb"


def test_architecture_numbers(chapter8):
    values, _ = chapter8
    # Up to layer3: 412,736 against ResNet-18's 2,782,784 (hand counts in test_students.py).
    assert values["ss_parameters"] == 412_736
    assert values["resnet18_parameters"] == 2_782_784


def test_simple_student_detects_the_defects(chapter8):
    values, executed = chapter8
    assert values["ss_image_auroc"] >= 0.90
    assert values["ss_au_pro"] >= 0.85
    assert values["stfpm_au_pro"] >= 0.88
    assert set(values["per_type_difference"]) == {"crack", "patch", "scratch", "spot", "stain"}
    assert figure_count(executed) >= 2


def test_simple_student_exercises_pass(chapter8):
    values, _ = chapter8
    assert values["ex_block_parameters_ok"] is True
    assert values["ex_slim_block_ok"] is True
    assert list(values["comparison"]) == [
        "STFPM",
        "FVV (M = 3)",
        "FVV, variance only",
        "Simple Student",
    ]


def test_the_other_textures_are_trained_for_chapter_9(chapter8):
    """In the quick profile the chapter also trains Simple Student on the other two
    textures (chapter 9 loads them from the store); measured AU-PRO brick, grass, gravel:
    0.973, 0.953, 0.892."""
    assert_every_texture_trained(chapter8[0], floor=0.82)
