"""The pre-trained teachers the package ships (``stad_utils/pretrained``): what the
quick profile asks for, what ``pretrain_teacher`` makes, and used only where no teacher
of the reader's own is cached."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from stad_utils.methods import UninformedStudents
from stad_utils.methods import patch_teacher as patch_teacher_module
from stad_utils.methods.patch_teacher import (
    SHIPPED_TEACHERS,
    load_teacher,
    pretrain_teacher,
    shipped_teacher,
    teacher_cache_path,
)

REPO = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((SHIPPED_TEACHERS / "teachers.json").read_text())["teachers"]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "pretrain_teachers", REPO / "tools" / "pretrain_teachers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_teachers_are_the_quick_profiles():
    """Changing the quick profile's teachers (width, steps, scales) without running
    ``tools/pretrain_teachers.py`` fails here, instead of silently pre-training on CPUs."""
    wanted = _tool().quick_teacher_settings()
    names = {teacher_cache_path(**s, folder=str(SHIPPED_TEACHERS)).name for s in wanted}
    assert set(MANIFEST) == names, "run: python tools/pretrain_teachers.py"
    assert {path.name for path in SHIPPED_TEACHERS.glob("*.pt")} == names
    for settings in wanted:
        name = teacher_cache_path(**settings).name
        entry = MANIFEST[name]
        assert {k: entry[k] for k in settings} == settings
        path = shipped_teacher(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        network = load_teacher(path)
        assert (network.receptive_field, network.width) == (settings["p"], settings["width"])


def test_a_missing_teacher_comes_from_the_package_and_a_cached_one_wins(tmp_path, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("pre-trained although the package ships this teacher")

    monkeypatch.setattr(patch_teacher_module, "pretrain_teacher", no_pretraining)
    options = {"backbone": "efficientnet_lite0", "width": 0.25, "teacher_steps": 150}
    method = UninformedStudents(scales=(17, 65), teacher_dir=str(tmp_path), **options)
    method.prepare_teachers(torch.device("cpu"), progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing written into the reader's folder
    for index, p in enumerate((17, 65)):
        name = teacher_cache_path(p, 0.25, "efficientnet_lite0", 150, 0).name
        shipped = load_teacher(shipped_teacher(name))
        for a, b in zip(method.teachers[index].parameters(), shipped.parameters(), strict=True):
            assert torch.equal(a, b)

    # a teacher of the reader's own (chapter 3 leaves one in the cache) comes first
    own = UninformedStudents(scales=(17,), width=0.25, pretrained=False, seed=5)
    name = teacher_cache_path(17, 0.25, "efficientnet_lite0", 150, 0).name
    torch.save({"p": 17, "width": 0.25, "state": own.teachers[0].state_dict()}, tmp_path / name)
    method = UninformedStudents(scales=(17,), teacher_dir=str(tmp_path), **options)
    method.prepare_teachers(torch.device("cpu"), progress=False)
    for a, b in zip(method.teachers[0].parameters(), own.teachers[0].parameters(), strict=True):
        assert torch.equal(a, b)

    # teachers of another image folder are never replaced by the package's
    assert shipped_teacher("teacher_p17_w0.25_efficientnet_lite0_steps150_seed0_x-1.pt") is None


@pytest.mark.parametrize("p", [17])
def test_pretraining_again_gives_the_shipped_teacher(p, monkeypatch):
    """The shipped file is what ``pretrain_teacher`` makes with the recorded settings
    (with the recorded thread count: sums split over threads round differently)."""
    name, entry = next((n, e) for n, e in MANIFEST.items() if e["p"] == p)
    monkeypatch.setenv("STAD_CPU_THREADS", str(entry["threads"]))
    settings = {k: entry[k] for k in ("p", "width", "backbone", "steps", "seed")}
    teacher = pretrain_teacher(**settings, device="cpu", progress=False)
    gap = _tool().descriptor_gap(teacher.network.eval(), load_teacher(shipped_teacher(name)), p)
    assert gap < 1e-3
    assert teacher.parts[-1]["total"] == pytest.approx(entry["final_loss"]["total"], rel=1e-3)
