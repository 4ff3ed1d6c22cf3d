"""A CPU rehearsal of the FULL profile: every chapter runs with ``PROFILE = "full"``.

On Colab ``auto`` picks the full profile (MVTec AD, the ResNet-18 teacher, 256² images,
100 epochs), whose code paths the quick-profile chapter tests never reach: torchvision
ResNet layers, the MVTec layout and download check, whole-image Uninformed Students
training at batch 1, full-width patch networks, 224² distillation targets, the sweep.
Here every chapter executes in the full profile at a tiny budget, set through
``STAD_PROFILE_OVERRIDES`` (64² images, one epoch, one teacher pre-training step), on:

* an MVTec-layout fixture made by the textures generator, under the name of the full
  profile's category (``carpet``), in ``$STAD_DATA/mvtec`` where the download puts it;
* a TEST STAND-IN for torchvision's ImageNet ResNet-18 weights (random tensors of the
  right shapes), written where torch.hub caches the real file (``$TORCH_HOME``), because
  the real weights cannot be downloaded here. Downloads are disabled (``STAD_OFFLINE``).

The numbers of such a run mean nothing; what is checked is that every chapter completes,
records every value it glues, and says it ran the full profile. A last test proves the
product rule: without the weights file and offline, a chapter stops with
``WeightsUnavailableError`` instead of training on a silently random teacher.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torchvision
from notebook_runner import NOTEBOOKS, run_chapter

from stad_utils.backbones import WeightsUnavailableError, weights_file
from stad_utils.data.textures import TexturesSpec, generate_category

pytestmark = [pytest.mark.notebook]

# The budget: everything the full profile does, at the smallest size that exercises it.
# 64² keeps layer3 of ResNet-18 at 4×4 and is larger than the reflect padding of p = 65.
REHEARSAL_OVERRIDES = {
    "image_size": 64,
    "epochs": 1,
    "batch_size": 4,
    # Uninformed Students: one pre-training step per teacher, and quarter-width networks:
    # at full width one whole-image training step costs 0.7 TFLOP at 64² (about a minute
    # per image on this CPU); the width changes channel counts, not code paths. Chapter 9's
    # sweep trains it on the p = 17 scale only (chapter 5 passes its own three scales).
    "method_options": {"uninformed_students": {"teacher_steps": 1, "width": 0.25, "scales": [17]}},
    # the full profile's own epochs for Uninformed Students (15) come before "epochs"
    "method_training": {"uninformed_students": {"epochs": 1}},
}
# Chapter knobs that have no profile field (chapter 3 chooses its full-profile steps itself).
CHAPTER_PARAMETERS = {"03_descriptive_teacher": {"STEPS": 2}}
CHAPTERS = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
CATEGORY = "carpet"  # the full profile's category
FULL_LINE = f"Profile: full | dataset: mvtec/{CATEGORY} | backbone: resnet18 | image size: 64"


def write_mvtec_fixture(data: Path) -> Path:
    """A small MVTec-layout category under the full profile's name, made from the
    textures generator (brick): 14 good images (chapter 1 shows 12 of the training split),
    2 good and 5 defective test images."""
    spec = TexturesSpec(image_size=64, train_images=14, test_good_images=2, images_per_defect=1)
    generate_category("brick", data / "mvtec" / CATEGORY, spec)
    return data / "mvtec"


def write_stand_in_resnet18_weights() -> Path:
    """TEST STAND-IN, NOT IMAGENET WEIGHTS: a random ResNet-18 state dict saved where
    torch.hub caches torchvision's real file, so the loading path runs as on Colab."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    path = weights_file(weights.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def glued_names(name: str) -> set[str]:
    """The names a chapter glues with a literal name (f-string names are left out)."""
    notebook = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    return set(re.findall(r"""\bglue\(\s*["'](\w+)["']""", source))


def printed_text(path: Path) -> str:
    notebook = nbformat.read(str(path), as_version=4)
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


@pytest.fixture(scope="module")
def full_environment(tmp_path_factory):
    """STAD_DATA, TORCH_HOME, STAD_OFFLINE and the overrides for the whole module."""
    root = tmp_path_factory.mktemp("full_rehearsal")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STAD_DATA", str(root / "data"))
        patch.setenv("TORCH_HOME", str(root / "torch"))
        patch.setenv("STAD_OFFLINE", "1")
        patch.setenv("STAD_PROFILE_OVERRIDES", json.dumps(REHEARSAL_OVERRIDES))
        write_mvtec_fixture(root / "data")
        weights = write_stand_in_resnet18_weights()
        assert weights.is_relative_to(root / "torch")
        yield root


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_in_the_full_profile(name, full_environment, record_property):
    out = full_environment / "executed"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    values = run_chapter(name, out, profile="full", **CHAPTER_PARAMETERS.get(name, {}))
    record_property("wall_seconds", round(time.perf_counter() - started, 1))
    record_property("glued", sorted(values))

    printed = printed_text(out / f"{name}.ipynb")
    assert FULL_LINE in printed, f"{name} did not run the full profile:\n{printed[:2000]}"
    assert "changed by STAD_PROFILE_OVERRIDES" in printed
    missing = glued_names(name) - set(values)
    assert not missing, f"{name} completed but did not record {sorted(missing)}"
    assert values, f"{name} recorded nothing"
    check_full_values(name, values)


def check_full_values(name: str, values: dict) -> None:
    """What shows that a chapter ran the full profile's data and networks."""
    if name == "01_task_and_data":
        assert values["categories"] == [CATEGORY]  # the MVTec-layout folder
        assert values["batch_image_shape"] == [7, 3, 64, 64]  # all 7 test images
    elif name == "03_descriptive_teacher":
        assert values["steps"] == 2
        assert values["descriptor_shape"][1:] == [128, 64, 64]  # dense, full width
    elif name == "05_uninformed_students":
        assert 0.0 <= values["us_au_pro"] <= 1.0
        assert values["published_au_pro"] > 0  # carpet is an MVTec AD category
    elif name == "09_comparing_methods":
        methods = ["fvv", "simple_student", "stfpm", "uninformed_students"]
        assert sorted(values["methods"]) == methods
        assert values["categories"] == [CATEGORY] and values["runs"] == 4
        assert values["published_rows"] > 0


def test_the_fixture_is_where_the_full_profile_looks(full_environment):
    """The chapters above read this data: the full profile's dataset root is the fixture,
    found complete (no download attempted)."""
    from stad_utils.config import get_profile
    from stad_utils.data import categories, dataset_root

    profile = get_profile("full")
    assert (profile.dataset, profile.backbone, profile.category) == ("mvtec", "resnet18", CATEGORY)
    root = dataset_root(profile)
    assert root == full_environment / "data" / "mvtec"
    assert categories(root) == [CATEGORY]


def test_no_weights_offline_stops_with_weights_unavailable(tmp_path, monkeypatch):
    """The product rule kept: without the weights file and offline, the full profile
    never trains on a random teacher; the chapter stops and says which file to put where."""
    import papermill

    monkeypatch.setenv("STAD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("STAD_OFFLINE", "1")
    monkeypatch.setenv("STAD_PROFILE_OVERRIDES", json.dumps(REHEARSAL_OVERRIDES))
    write_mvtec_fixture(tmp_path / "data")

    from stad_utils.runner import RunConfig

    data = str(tmp_path / "data" / "mvtec")
    config = RunConfig(method="stfpm", data=data, category=CATEGORY, profile="full")
    with pytest.raises(WeightsUnavailableError, match="resnet18-f37072fd.pth"):
        config.build_method()

    with pytest.raises(papermill.PapermillExecutionError) as info:
        run_chapter("06_stfpm", tmp_path, profile="full")
    assert info.value.ename == "WeightsUnavailableError"
    assert "downloads are disabled (STAD_OFFLINE is set)" in info.value.evalue
