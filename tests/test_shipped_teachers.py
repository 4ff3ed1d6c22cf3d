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
NAME_TAIL = ("efficientnet_lite0", 150, 0)  # backbone, steps, seed of the quick teachers


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


def test_the_package_teachers_are_used_and_nothing_is_pre_trained(tmp_path, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("pre-trained although the package ships this teacher")

    monkeypatch.setattr(patch_teacher_module, "pretrain_teacher", no_pretraining)
    options = {"backbone": "efficientnet_lite0", "width": 0.25, "teacher_steps": 150}
    # a cached file of the same name (chapter 3 leaves its own p = 33 there): not used,
    # so that every reader's runs, and the store keys naming them, have the same teacher
    shipped_17 = load_teacher(shipped_teacher(teacher_cache_path(17, 0.25, *NAME_TAIL).name))
    cached = {k: v + 1.0 for k, v in shipped_17.state_dict().items()}
    name_17 = teacher_cache_path(17, 0.25, *NAME_TAIL).name
    torch.save({"p": 17, "width": 0.25, "state": cached}, tmp_path / name_17)
    method = UninformedStudents(scales=(17, 65), teacher_dir=str(tmp_path), **options)
    method.prepare_teachers(torch.device("cpu"), progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [name_17]  # nothing written
    for index, p in enumerate((17, 65)):
        shipped = load_teacher(shipped_teacher(teacher_cache_path(p, 0.25, *NAME_TAIL).name))
        for a, b in zip(method.teachers[index].parameters(), shipped.parameters(), strict=True):
            assert torch.equal(a, b)

    # teachers of another image folder, or other settings, are never the package's
    assert shipped_teacher("teacher_p17_w0.25_efficientnet_lite0_steps150_seed0_x-1.pt") is None
    assert shipped_teacher("teacher_p17_w0.25_efficientnet_lite0_steps150_seed1.pt") is None


def test_pretraining_again_gives_the_shipped_teacher(monkeypatch):
    """The shipped file is what ``pretrain_teacher`` makes with the recorded settings.

    Bit for bit only with the same float32 kernels: 150 Adam steps amplify rounding.
    Measured on the machine that made the files (largest descriptor difference over the
    largest descriptor, 64 random patches): the same thread count 0.0; one thread
    instead of two 0.13; another seed 1.13. Another CPU picks other kernels (CI's did), so
    the bound sits between rounding and a wrong setting."""
    name, entry = next((n, e) for n, e in MANIFEST.items() if e["p"] == 17)
    if torch.__version__.split("+")[0] != entry["torch"].split("+")[0]:
        pytest.skip(f"made with torch {entry['torch']}, this is {torch.__version__}")
    monkeypatch.setenv("STAD_CPU_THREADS", str(entry["threads"]))
    settings = {k: entry[k] for k in ("p", "width", "backbone", "steps", "seed")}
    teacher = pretrain_teacher(**settings, device="cpu", progress=False)
    gap = _tool().descriptor_gap(teacher.network.eval(), load_teacher(shipped_teacher(name)), 17)
    assert gap < 0.5
