"""MVTecAD on small generated folders in MVTec AD layout."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    FIXTURE_CATEGORIES,
    FIXTURE_HEIGHT,
    FIXTURE_TEST,
    FIXTURE_TRAIN_IMAGES,
    FIXTURE_WIDTH,
    fixture_mask,
    write_png,
)
from PIL import Image
from torch.utils.data import DataLoader

from stad_utils.data.mvtec import DatasetLayoutError, MVTecAD, categories, validation_split


def _file_array(path: str | Path) -> np.ndarray:
    return np.array(Image.open(path))


# -- samples ------------------------------------------------------------------------------
def test_sample_keys_types_and_shapes_at_file_size(mvtec_root):
    ds = MVTecAD(mvtec_root, "alpha", "test", image_size=None)
    sample = ds[0]
    assert set(sample) == {"image", "mask", "label", "defect_type", "path"}
    assert sample["image"].dtype == torch.float32
    assert sample["mask"].dtype == torch.float32
    assert sample["image"].shape == (3, FIXTURE_HEIGHT, FIXTURE_WIDTH)
    assert sample["mask"].shape == (1, FIXTURE_HEIGHT, FIXTURE_WIDTH)
    assert isinstance(sample["label"], int)
    assert isinstance(sample["defect_type"], str)
    assert isinstance(sample["path"], str)
    # pixel values are the file's, scaled to [0, 1] (no normalization)
    expected = torch.from_numpy(_file_array(sample["path"])).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(sample["image"], expected, rtol=0, atol=1e-6)


def test_resize_is_bilinear_for_images_and_nearest_for_masks(tmp_path):
    root = tmp_path / "mvtec"
    halves = np.zeros((FIXTURE_HEIGHT, FIXTURE_WIDTH, 3), np.uint8)
    halves[:, FIXTURE_WIDTH // 2 :] = 255
    write_png(root / "c/train/good/000.png", halves)
    write_png(root / "c/test/bad/000.png", halves)
    write_png(root / "c/ground_truth/bad/000_mask.png", fixture_mask(0))

    sample = MVTecAD(root, "c", "test", image_size=16)[0]
    assert sample["image"].shape == (3, 16, 16)
    assert sample["mask"].shape == (1, 16, 16)
    image_values = sample["image"].unique()
    # bilinear: values strictly between the two input levels appear at the edge
    assert ((image_values > 0.01) & (image_values < 0.99)).any()
    assert sample["image"].min() >= 0 and sample["image"].max() <= 1
    # nearest: the mask stays binary and keeps about its share of the area
    assert set(sample["mask"].unique().tolist()) == {0.0, 1.0}
    area_before = (fixture_mask(0) > 0).mean()
    assert abs(sample["mask"].mean().item() - area_before) < 0.1


def test_grayscale_category_becomes_three_identical_channels(mvtec_root):
    sample = MVTecAD(mvtec_root, "beta", "train", image_size=None)[0]
    image = sample["image"]
    assert image.shape == (3, FIXTURE_HEIGHT, FIXTURE_WIDTH)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    gray = torch.from_numpy(_file_array(sample["path"])).float() / 255
    torch.testing.assert_close(image[0], gray, rtol=0, atol=1e-6)
    assert image.std() > 0  # not a constant image


def test_masks_are_binarized_to_zero_and_one(mvtec_root):
    # an anti-aliased edge: any nonzero pixel is defect, 200 as well as 100 (issue 18)
    mask = fixture_mask(0)
    mask[0, 0], mask[0, 1] = 200, 100
    write_png(mvtec_root / "alpha/ground_truth/broken/000_mask.png", mask)
    ds = MVTecAD(mvtec_root, "alpha", "test", image_size=None)
    index = next(i for i, (p, _, _) in enumerate(ds.items) if p.parent.name == "broken")
    loaded = ds[index]["mask"][0]
    assert set(loaded.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(loaded, torch.from_numpy(mask > 0).float())
    assert loaded[0, 0] == 1 and loaded[0, 1] == 1 and loaded[0, 2] == 0


def test_good_and_train_images_have_all_zero_masks(mvtec_root):
    test = MVTecAD(mvtec_root, "gamma", "test", image_size=12)
    goods = [test[i] for i in range(len(test)) if test[i]["defect_type"] == "good"]
    assert len(goods) == FIXTURE_TEST["good"]
    for sample in goods:
        assert sample["label"] == 0
        assert sample["mask"].shape == (1, 12, 12)
        assert sample["mask"].sum() == 0
    defective = [test[i] for i in range(len(test)) if test[i]["label"] == 1]
    assert all(s["mask"].sum() > 0 for s in defective)
    train = MVTecAD(mvtec_root, "gamma", "train", image_size=12)
    assert all(train[i]["mask"].sum() == 0 and train[i]["label"] == 0 for i in range(len(train)))


def test_labels_counts_and_defect_types(mvtec_root):
    ds = MVTecAD(mvtec_root, "alpha", "test", image_size=None)
    assert ds.counts() == Counter(FIXTURE_TEST)
    assert len(ds) == sum(FIXTURE_TEST.values())
    assert ds.labels == [int(s["defect_type"] != "good") for s in (ds[i] for i in range(len(ds)))]
    assert sum(ds.labels) == FIXTURE_TEST["broken"] + FIXTURE_TEST["scratch"]
    for i in range(len(ds)):
        assert ds[i]["defect_type"] == Path(ds[i]["path"]).parent.name
    assert "split='test'" in repr(ds) and f"images={len(ds)}" in repr(ds)


def test_dataloader_batches_samples(mvtec_root):
    ds = MVTecAD(mvtec_root, "alpha", "test", image_size=8)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 8, 8)
    assert batch["mask"].shape == (4, 1, 8, 8)
    assert batch["label"].shape == (4,)


def test_cache_returns_the_same_sample_object(mvtec_root):
    cached = MVTecAD(mvtec_root, "alpha", "train", image_size=8)
    assert cached[0] is cached[0]
    uncached = MVTecAD(mvtec_root, "alpha", "train", image_size=8, cache=False)
    assert uncached[0] is not uncached[0]
    assert torch.equal(uncached[0]["image"], cached[0]["image"])


def test_categories_lists_layout_folders(mvtec_root):
    (mvtec_root / "not_a_category").mkdir()
    assert categories(mvtec_root) == list(FIXTURE_CATEGORIES)
    assert categories(mvtec_root / "missing") == []


# -- validation split ---------------------------------------------------------------------
def _paths(ds):
    return [p for p, _, _ in ds.items]


def test_validation_split_is_deterministic_complete_and_disjoint(mvtec_root):
    kwargs = dict(image_size=8, val_fraction=0.3, seed=7)
    train = _paths(MVTecAD(mvtec_root, "alpha", "train", **kwargs))
    val = _paths(MVTecAD(mvtec_root, "alpha", "val", **kwargs))
    assert val == _paths(MVTecAD(mvtec_root, "alpha", "val", **kwargs))
    assert train == _paths(MVTecAD(mvtec_root, "alpha", "train", **kwargs))
    all_good = sorted((mvtec_root / "alpha/train/good").glob("*.png"))
    assert sorted(train + val) == all_good
    assert not set(train) & set(val)
    assert len(val) == 3 and len(train) == FIXTURE_TRAIN_IMAGES - 3
    # the seed matters: some other seed gives another validation set
    others = {
        tuple(_paths(MVTecAD(mvtec_root, "alpha", "val", image_size=8, val_fraction=0.3, seed=s)))
        for s in range(8)
    }
    assert len(others) > 1


@pytest.mark.parametrize("n, fraction", [(2, 0.01), (3, 0.1), (10, 0.04), (5, 0.99)])
def test_validation_split_keeps_both_sides_non_empty(n, fraction):
    paths = [Path(f"{i}.png") for i in range(n)]
    train, val = validation_split(paths, fraction, seed=0)
    assert len(val) >= 1 and len(train) >= 1
    assert sorted(train + val) == paths


def test_validation_split_zero_fraction_and_bad_fraction():
    paths = [Path(f"{i}.png") for i in range(5)]
    assert validation_split(paths, 0.0, seed=0) == (paths, [])
    assert validation_split(paths[:1], 0.5, seed=0) == (paths[:1], [])
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        validation_split(paths, 1.0, seed=0)


# -- layout errors ------------------------------------------------------------------------
def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist") as info:
        MVTecAD(tmp_path / "nowhere", "alpha")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_unknown_category_lists_found_categories(mvtec_root):
    with pytest.raises(DatasetLayoutError, match="'delta' not found") as info:
        MVTecAD(mvtec_root, "delta")
    assert "found: alpha, beta, gamma" in str(info.value)


def test_missing_train_good(mvtec_root):
    shutil.rmtree(mvtec_root / "alpha/train/good")
    with pytest.raises(DatasetLayoutError, match="missing folder 'train/good'"):
        MVTecAD(mvtec_root, "alpha", "test")


def test_empty_train_good(mvtec_root):
    for p in (mvtec_root / "alpha/train/good").iterdir():
        p.unlink()
    with pytest.raises(DatasetLayoutError, match="No training images"):
        MVTecAD(mvtec_root, "alpha")


def test_missing_test_folder(mvtec_root):
    shutil.rmtree(mvtec_root / "alpha/test")
    with pytest.raises(DatasetLayoutError, match="missing folder 'test'"):
        MVTecAD(mvtec_root, "alpha", "train")


def test_missing_mask_for_defective_image(mvtec_root):
    missing = mvtec_root / "alpha/ground_truth/scratch/001_mask.png"
    missing.unlink()
    with pytest.raises(DatasetLayoutError, match="Missing ground-truth mask") as info:
        MVTecAD(mvtec_root, "alpha", "test")
    assert str(missing) in str(info.value)
    assert str(mvtec_root / "alpha/test/scratch/001.png") in str(info.value)


def test_mask_of_a_different_size(mvtec_root):
    mask_path = mvtec_root / "alpha/ground_truth/broken/000_mask.png"
    write_png(mask_path, np.full((FIXTURE_HEIGHT + 2, FIXTURE_WIDTH), 255))
    ds = MVTecAD(mvtec_root, "alpha", "test", image_size=None)
    index = next(i for i, (_, m, _) in enumerate(ds.items) if m == mask_path)
    with pytest.raises(DatasetLayoutError, match="must have the same size") as info:
        ds[index]
    assert str(mask_path) in str(info.value)
    assert f"({FIXTURE_HEIGHT + 2}, {FIXTURE_WIDTH})" in str(info.value)


def test_corrupt_image_raises_oserror_naming_the_path(mvtec_root):
    bad = mvtec_root / "alpha/train/good/000.png"
    bad.write_bytes(b"this is not a png at all" * 10)
    ds = MVTecAD(mvtec_root, "alpha", "train", val_fraction=0.0, image_size=None)
    index = next(i for i, (p, _, _) in enumerate(ds.items) if p == bad)
    with pytest.raises(OSError, match="Cannot read the image") as info:
        ds[index]
    assert str(bad) in str(info.value)
    assert not isinstance(info.value, DatasetLayoutError)


def test_bad_split_name(mvtec_root):
    with pytest.raises(ValueError, match=r"split must be one of .*'validation'"):
        MVTecAD(mvtec_root, "alpha", "validation")
