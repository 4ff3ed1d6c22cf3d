"""The embedded textures dataset: layout, determinism, exact defect masks, caching."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stad_utils.data import textures
from stad_utils.data.mvtec import MVTecAD
from stad_utils.data.textures import (
    CATEGORIES,
    DEFECT_KINDS,
    DEFECTS,
    TEST_ROWS,
    TexturesSpec,
    ensure_textures,
    random_crop,
)

SPEC = TexturesSpec(image_size=64, train_images=4, test_good_images=2, images_per_defect=2)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """One generation with SPEC, shared read-only by the tests below."""
    return ensure_textures(tmp_path_factory.mktemp("tex") / "textures", spec=SPEC)


@pytest.fixture
def copy_of_generated(generated, tmp_path) -> Path:
    """A private copy (mtimes preserved) for tests that modify the dataset."""
    return Path(shutil.copytree(generated, tmp_path / "textures"))


# -- layout -------------------------------------------------------------------------------
def test_layout_and_counts(generated):
    assert sorted(p.name for p in generated.iterdir()) == sorted([*CATEGORIES, "manifest.json"])
    assert not list(generated.parent.glob(".textures-*"))  # no staging folder left
    for category in CATEGORIES:
        for sub, count in SPEC.expected_counts().items():
            assert len(list((generated / category / sub).glob("*.png"))) == count, sub
    manifest = json.loads((generated / "manifest.json").read_text())
    assert manifest["spec"] == asdict(SPEC) and manifest["categories"] == list(CATEGORIES)
    assert manifest["generator"] == "stad_utils.data.textures"
    # the manifest lists exactly the files written, with their SHA-256
    written = {str(p.relative_to(generated)) for p in generated.rglob("*.png")}
    assert set(manifest["files"]) == written
    some = "grass/ground_truth/crack/001_mask.png"
    assert manifest["files"][some] == hashlib.sha256((generated / some).read_bytes()).hexdigest()


def test_expected_counts():
    counts = SPEC.expected_counts()
    assert counts["train/good"] == 4 and counts["test/good"] == 2
    assert {k for k in counts if k.startswith("test/")} == {
        "test/good",
        *(f"test/{kind}" for kind in DEFECT_KINDS),
    }
    assert all(counts[f"ground_truth/{kind}"] == 2 for kind in DEFECT_KINDS)


@pytest.mark.parametrize("category", CATEGORIES)
def test_loads_as_mvtec(generated, category):
    test = MVTecAD(generated, category, "test", image_size=None)
    assert test.counts() == Counter({"good": 2, **{kind: 2 for kind in DEFECT_KINDS}})
    sample = test[0]
    assert sample["image"].shape == (3, 64, 64)
    assert len(MVTecAD(generated, category, "train", val_fraction=0.0)) == 4


def test_images_are_rgb_and_masks_binary_pngs_of_the_right_size(generated):
    for path in generated.rglob("*.png"):
        with Image.open(path) as image:
            mode = "L" if "ground_truth" in path.parts else "RGB"
            assert image.mode == mode and image.size == (64, 64), path


def test_every_defect_mask_is_binary_non_empty_and_fits_its_image(generated):
    for category in CATEGORIES:
        for kind in DEFECT_KINDS:
            for image_path in sorted((generated / category / "test" / kind).glob("*.png")):
                mask_path = (
                    generated / category / "ground_truth" / kind / f"{image_path.stem}_mask.png"
                )
                mask = np.array(Image.open(mask_path))
                assert mask.shape == np.array(Image.open(image_path)).shape[:2]
                assert set(np.unique(mask)) == {0, 255}, mask_path  # non-empty, binary
                assert (mask > 0).mean() < 0.5, mask_path  # a defect, not the whole image


# -- determinism --------------------------------------------------------------------------
def test_generation_is_deterministic(generated, tmp_path):
    again = ensure_textures(tmp_path / "again", spec=SPEC)
    assert _files(again) == _files(generated)
    assert len(_files(again)) == 3 * sum(SPEC.expected_counts().values())


def test_another_seed_gives_other_images(generated, tmp_path):
    spec = TexturesSpec(
        image_size=64, train_images=4, test_good_images=2, images_per_defect=2, seed=1
    )
    other = _files(ensure_textures(tmp_path / "other", spec=spec))
    base = _files(generated)
    assert other.keys() == base.keys()
    differing = [name for name in base if "ground_truth" not in name and other[name] != base[name]]
    images = [name for name in base if "ground_truth" not in name]
    assert len(differing) == len(images)


# -- caching ------------------------------------------------------------------------------
def test_second_call_does_not_regenerate(copy_of_generated, monkeypatch):
    before = _mtimes(copy_of_generated)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although the dataset was complete")

    monkeypatch.setattr(textures, "generate_category", fail)
    assert ensure_textures(copy_of_generated, spec=SPEC) == copy_of_generated
    assert _mtimes(copy_of_generated) == before


def test_a_deleted_file_triggers_regeneration(copy_of_generated, generated):
    victim = copy_of_generated / "grass" / "test" / "crack" / "001.png"
    victim.unlink()
    ensure_textures(copy_of_generated, spec=SPEC)
    assert _files(copy_of_generated) == _files(generated)


def test_a_corrupt_manifest_triggers_regeneration(copy_of_generated, generated):
    manifest = copy_of_generated / "manifest.json"
    manifest.write_text("{not json")
    ensure_textures(copy_of_generated, spec=SPEC)
    assert json.loads(manifest.read_text())["spec"] == asdict(SPEC)
    assert _files(copy_of_generated) == _files(generated)


def test_another_spec_triggers_regeneration(copy_of_generated):
    spec = TexturesSpec(image_size=64, train_images=3, test_good_images=1, images_per_defect=1)
    ensure_textures(copy_of_generated, spec=spec)
    assert len(list((copy_of_generated / "brick/train/good").glob("*.png"))) == 3
    assert len(list((copy_of_generated / "brick/test/spot").glob("*.png"))) == 1
    assert json.loads((copy_of_generated / "manifest.json").read_text())["spec"] == asdict(spec)


# -- crops never mix train and test rows --------------------------------------------------
def _row_index_photo() -> np.ndarray:
    """A 512×512 'photo' whose pixels hold their row number."""
    return np.repeat(np.arange(512, dtype=np.float32)[:, None], 512, axis=1)


@pytest.mark.parametrize("size", [64, 128, TEST_ROWS])
def test_random_crop_keeps_train_and_test_rows_apart(size):
    photo = _row_index_photo()
    boundary = 512 - TEST_ROWS
    rng = np.random.default_rng(0)
    train_rows, test_rows = set(), set()
    for _ in range(200):
        for split, rows in (("train", train_rows), ("test", test_rows)):
            crop = random_crop(photo, size, split, rng)
            assert crop.shape[:2] == (size, size)
            assert np.ptp(crop, axis=1).max() == 0  # each crop row is one photo row
            assert sorted(np.unique(crop)) == list(range(int(crop.min()), int(crop.min()) + size))
            rows.update(np.unique(crop).astype(int).tolist())
    assert max(train_rows) < boundary <= min(test_rows)


def test_random_crop_flips_both_ways():
    photo = _row_index_photo() + np.arange(512, dtype=np.float32)[None, :] / 1000
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(60):
        crop = random_crop(photo, 32, "train", rng)
        seen.add((bool(crop[0, 0] > crop[-1, 0]), bool(crop[0, 0] > crop[0, -1])))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


def test_generated_train_and_test_crops_use_separate_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(
        textures,
        "photograph",
        lambda category: np.repeat(_row_index_photo()[..., None] / 511, 3, 2),
    )
    textures.generate_category("brick", tmp_path / "brick", SPEC)
    last_train_value = round((512 - TEST_ROWS - 1) * 255 / 511)
    train = [np.array(Image.open(p)) for p in (tmp_path / "brick/train/good").glob("*.png")]
    test = [np.array(Image.open(p)) for p in (tmp_path / "brick/test/good").glob("*.png")]
    assert len(train) == 4 and len(test) == 2
    assert max(a.max() for a in train) <= last_train_value
    assert min(a.min() for a in test) > last_train_value


# -- defects: the mask is exactly the region drawn into -----------------------------------
@pytest.mark.parametrize("kind", DEFECT_KINDS)
@pytest.mark.parametrize("size", [64, 128])
def test_defects_change_exactly_their_mask(kind, size):
    photo = textures.photograph("gravel")
    donor = textures.photograph("brick")
    for seed in range(12):
        rng = np.random.default_rng(seed)
        clean = random_crop(photo, size, "test", rng)
        original = clean.copy()
        out, mask = DEFECTS[kind](clean, rng, donor)
        assert np.array_equal(clean, original)  # the input is not modified
        assert mask.dtype == bool and mask.shape == clean.shape[:2]
        assert out.shape == clean.shape
        assert mask.any() and not mask.all()
        assert np.array_equal(out[~mask], clean[~mask])
        assert out.min() >= 0 and out.max() <= 1
        if kind != "patch":
            assert (out[mask] != clean[mask]).any(axis=-1).mean() > 0.9


def test_stain_mask_is_never_empty():
    # seeds where the noise used to swamp the blob and leave an empty mask
    photo = textures.photograph("brick")
    for size, seed in [(64, 131), (64, 188), (128, 344)]:
        rng = np.random.default_rng(seed)
        clean = random_crop(photo, size, "test", rng)
        out, mask = DEFECTS["stain"](clean, rng)
        assert mask.sum() > 10
        assert np.array_equal(out[~mask], clean[~mask])
        # rust-brown: darker overall, and redder than blue
        assert (out[mask].sum(-1) < clean[mask].sum(-1)).mean() > 0.9
        assert (out[mask][:, 0] > out[mask][:, 2]).all()


def test_patch_pastes_the_donor():
    rng = np.random.default_rng(3)
    image = np.zeros((64, 64, 3), np.float32)
    donor = np.ones((100, 100, 3), np.float32) * 0.5
    out, mask = DEFECTS["patch"](image, rng, donor)
    rows, cols = np.nonzero(mask)
    assert mask.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # a filled rectangle
    assert np.all(out[mask] == 0.5) and np.all(out[~mask] == 0)


def test_spot_is_one_of_the_paint_colours():
    rng = np.random.default_rng(5)
    clean = random_crop(textures.photograph("grass"), 64, "test", rng)
    out, mask = DEFECTS["spot"](clean, rng)
    mean_colour = out[mask].mean(axis=0)
    distances = np.abs(textures.SPOT_COLOURS - mean_colour).max(axis=1)
    assert distances.min() < 0.05


def test_photograph_and_unknown_category():
    photo = textures.photograph("grass")
    assert photo.shape == (512, 512, 3) and photo.dtype == np.float32
    assert photo[..., 1].mean() > photo[..., 0].mean()  # grass is green
    assert 0 <= photo.min() and photo.max() <= 1
    with pytest.raises(ValueError, match="Unknown texture 'wood'"):
        textures.photograph("wood")


# -- never delete or overwrite what the generator did not write (issue 18) ---------------
def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_a_folder_holding_a_foreign_dataset_is_refused_and_untouched(tmp_path):
    folder = tmp_path / "mine"
    (folder / "screws/train/good").mkdir(parents=True)
    (folder / "screws/train/good/img_001.png").write_bytes(b"my precious image")
    (folder / "notes.txt").write_text("labelled by hand, 3 weeks of work\n")
    before = _listing(folder)
    with pytest.raises(textures.TexturesFolderError, match="not empty") as info:
        ensure_textures(folder, spec=SPEC)
    message = str(info.value)
    assert str(folder) in message and "nothing was changed" in message
    assert "notes.txt" in message and "--root" in message
    assert _listing(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging left


def test_a_foreign_manifest_is_not_taken_for_ours(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"name": "someone else's dataset"}))
    (folder / "brick").mkdir()
    before = _listing(folder)
    with pytest.raises(textures.TexturesFolderError, match="no textures manifest of ours"):
        ensure_textures(folder, spec=SPEC)
    assert _listing(folder) == before


def test_an_empty_folder_is_filled(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    assert ensure_textures(folder, spec=SPEC) == folder
    assert len(list(folder.rglob("*.png"))) == 3 * sum(SPEC.expected_counts().values())


def test_a_file_in_place_of_the_folder_is_refused(tmp_path):
    path = tmp_path / "textures"
    path.write_text("not a folder")
    with pytest.raises(textures.TexturesFolderError, match="is a file"):
        ensure_textures(path, spec=SPEC)
    assert path.read_text() == "not a folder"


def test_a_rebuild_keeps_a_user_category_and_notes(copy_of_generated, generated):
    user_category = copy_of_generated / "wood/train/good"
    user_category.mkdir(parents=True)
    (user_category / "000.png").write_bytes(b"a user's own image")
    (copy_of_generated / "notes.md").write_text("my notes\n")
    extra = copy_of_generated / "brick/train/good/mine.png"
    extra.write_bytes(b"added beside ours")
    user_files = {
        name: data
        for name, data in _listing(copy_of_generated).items()
        if name.startswith("wood") or name in ("notes.md", "brick/train/good/mine.png")
    }
    (copy_of_generated / "grass/test/crack/001.png").unlink()

    ensure_textures(copy_of_generated, spec=SPEC)
    after = _listing(copy_of_generated)
    assert {name: after.get(name) for name in user_files} == user_files
    ours = {
        name: data
        for name, data in _files(copy_of_generated).items()
        if name not in user_files  # the user's PNGs were compared above
    }
    assert ours == _files(generated)
    assert not list(copy_of_generated.parent.glob(".textures-*"))


def test_a_changed_file_is_rewritten(copy_of_generated, generated):
    victim = copy_of_generated / "gravel/ground_truth/spot/000_mask.png"
    victim.write_bytes(b"edited")
    ensure_textures(copy_of_generated, spec=SPEC)
    assert victim.read_bytes() == (generated / "gravel/ground_truth/spot/000_mask.png").read_bytes()


def test_a_user_file_where_ours_would_go_is_never_overwritten(copy_of_generated):
    # a bigger spec needs train image 004, and a user put their own file at that path
    theirs = copy_of_generated / "brick/train/good/004.png"
    theirs.write_bytes(b"theirs")
    bigger = TexturesSpec(image_size=64, train_images=5, test_good_images=2, images_per_defect=2)
    manifest_before = (copy_of_generated / "manifest.json").read_bytes()
    with pytest.raises(textures.TexturesFolderError, match="was not written by") as info:
        ensure_textures(copy_of_generated, spec=bigger)
    assert str(theirs) in str(info.value)
    assert theirs.read_bytes() == b"theirs"
    assert (copy_of_generated / "manifest.json").read_bytes() == manifest_before


def test_a_manifest_of_the_previous_format_is_still_ours(copy_of_generated, generated):
    (copy_of_generated / "manifest.json").write_text(
        json.dumps({"spec": asdict(SPEC), "categories": list(CATEGORIES)})
    )
    (copy_of_generated / "notes.txt").write_text("keep me")
    ensure_textures(copy_of_generated, spec=SPEC)
    assert json.loads((copy_of_generated / "manifest.json").read_text())["files"]
    assert (copy_of_generated / "notes.txt").read_text() == "keep me"
    assert _files(copy_of_generated) == _files(generated)


def test_data_command_refuses_a_foreign_folder(tmp_path, capsys):
    """The command line reports the refusal as one message (exit 1), folder untouched."""
    from stad_utils.__main__ import main

    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["data", "--root", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err and "Traceback" not in err
    assert _listing(folder) == {"notes.txt": b"mine"}


def test_bench_dry_run_refuses_a_foreign_textures_folder(tmp_path, monkeypatch, capsys):
    from stad_utils.__main__ import main

    monkeypatch.setenv("STAD_DATA", str(tmp_path))
    monkeypatch.setenv("STAD_PROFILE", "quick")
    foreign = tmp_path / "textures"
    (foreign / "brick").mkdir(parents=True)
    (foreign / "README").write_text("not generated")
    before = _listing(foreign)
    assert main(["bench", "--dry-run", "--out", str(tmp_path / "sweep")]) == 1
    assert "nothing was changed" in capsys.readouterr().err
    assert _listing(foreign) == before
