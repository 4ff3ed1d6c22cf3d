"""Make the pre-trained teachers the package ships (``stad_utils/pretrained``).

    python tools/pretrain_teachers.py [--check]

The quick profile's Uninformed Students uses three teachers (p = 17, 33, 65 at width
0.25, 150 steps on scikit-image's photographs). They are the same for every reader, and
pre-training them costs a 2-core CPU about 100 s, so the package ships them; a teacher in
the reader's cache (``<data>/teachers``, where chapter 3 leaves its own) comes first.

This script pre-trains them with :func:`~stad_utils.methods.patch_teacher.pretrain_teacher`,
exactly as a reader's run would, writes each under its cache name and records the settings
and SHA-256 of each in ``teachers.json``. ``--check`` pre-trains them again and prints how
far the new descriptors are from the shipped ones, without writing anything.
Run it after changing the patch networks, the teacher losses or the triplets.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stad_utils.config import PROFILES, pick_device  # noqa: E402
from stad_utils.files import write_json  # noqa: E402
from stad_utils.methods.patch_teacher import (  # noqa: E402
    SHIPPED_TEACHERS,
    load_teacher,
    pretrain_teacher,
    teacher_cache_path,
)
from stad_utils.methods.uninformed_students import UninformedStudents  # noqa: E402

MANIFEST = SHIPPED_TEACHERS / "teachers.json"


def quick_teacher_settings() -> list[dict]:
    """The quick profile's teachers: its Uninformed Students options over the defaults."""
    profile = PROFILES["quick"]
    options = UninformedStudents(
        pretrained=False,
        backbone=profile.backbone,
        **profile.method_options["uninformed_students"],
    ).options
    return [
        {
            "p": p,
            "width": options["width"],
            "backbone": profile.backbone,
            "steps": options["teacher_steps"],
            "seed": options["teacher_seed"],
        }
        for p in options["scales"]
    ]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def descriptor_gap(a: torch.nn.Module, b: torch.nn.Module, p: int) -> float:
    """Largest difference of the two networks' descriptors of 64 random patches, relative
    to the largest descriptor value."""
    patches = torch.rand(64, 3, p, p, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x, y = a(patches), b(patches)
    return float((x - y).abs().max() / y.abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    device = pick_device("cpu")
    entries = {}
    for settings in quick_teacher_settings():
        name = teacher_cache_path(**settings, folder=str(SHIPPED_TEACHERS)).name
        teacher = pretrain_teacher(**settings, device=device, progress=False)
        path = SHIPPED_TEACHERS / name
        if args.check:
            gap = descriptor_gap(teacher.network.eval(), load_teacher(path), settings["p"])
            print(f"{name}: descriptors differ by {gap:.2e} of their largest value")
            continue
        teacher.save_teacher(path)
        entries[name] = {
            **settings,
            "images": "stad_utils.data.patches.NATURAL_PHOTOS",
            "final_loss": teacher.parts[-1],
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "sha256": sha256(path),
        }
        print(f"wrote {path.relative_to(REPO)}")
    if not args.check:
        write_json(MANIFEST, {"made_by": "python tools/pretrain_teachers.py", "teachers": entries})
        print(f"wrote {MANIFEST.relative_to(REPO)}")


if __name__ == "__main__":
    main()
