"""Patch and triplet sampling for teacher pre-training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from stad_utils.data.patches import (
    NATURAL_PHOTOS,
    NO_AUGMENT,
    PHOTOS,
    Augment,
    ImageFolderPatches,
    RandomPatches,
    TripletPatches,
    load_photos,
    to_rgb_float,
)


@pytest.fixture(scope="module")
def photos():
    return load_photos()


def overlap(anchor: np.ndarray, positive: np.ndarray, dy: int, dx: int):
    """(anchor, positive) on the pixels where positive[y, x] = anchor[y + dy, x + dx]."""
    p = anchor.shape[-1]
    a = anchor[:, max(dy, 0) : p + min(dy, 0), max(dx, 0) : p + min(dx, 0)]
    b = positive[:, max(-dy, 0) : p + min(-dy, 0), max(-dx, 0) : p + min(-dx, 0)]
    return a, b


def test_photos_are_rgb_float(photos):
    assert len(photos) == len(PHOTOS) >= 8
    assert set(NATURAL_PHOTOS) < set(PHOTOS) and "grass" not in NATURAL_PHOTOS
    for photo in photos:
        assert photo.dtype == np.float32 and photo.ndim == 3 and photo.shape[2] == 3
        assert 0.0 <= photo.min() and photo.max() <= 1.0 and photo.std() > 0.05
    assert to_rgb_float(np.full((4, 5), 255, np.uint8)).tolist() == np.ones((4, 5, 3)).tolist()


def test_triplet_shapes_and_ranges(photos):
    ds = TripletPatches(33, photos, length=50, seed=0)
    sample = ds[0]
    for key in ("anchor", "positive", "negative"):
        assert sample[key].shape == (3, 33, 33) and sample[key].dtype == torch.float32
        assert 0.0 <= sample[key].min() and sample[key].max() <= 1.0
    batch = next(iter(DataLoader(ds, batch_size=8)))
    assert batch["anchor"].shape == (8, 3, 33, 33) and batch["shift"].shape == (8, 2)
    assert len(ds) == 50
    with pytest.raises(IndexError):
        ds[50]


def test_positive_is_the_shifted_anchor_plus_noise(photos):
    ds = TripletPatches(17, photos, length=40, seed=1, max_shift=3, noise_std=0.05)
    correlations, residual_stds = [], []
    for i in range(40):
        s = ds[i]
        dy, dx = s["shift"].tolist()
        assert (dy, dx) != (0, 0) and max(abs(dy), abs(dx)) <= 3
        a, b = overlap(s["anchor"].numpy(), s["positive"].numpy(), dy, dx)
        if a.std() > 0.05:  # skip flat patches (sky), where correlation is all noise
            correlations.append(np.corrcoef(a.ravel(), b.ravel())[0, 1])
        residual_stds.append((b - a).std())
    assert len(correlations) >= 20 and np.median(correlations) > 0.9
    # the residual is the noise (a little less where clipping at 0 or 1 cuts it)
    assert 0.03 < np.median(residual_stds) < 0.06
    # without noise and augmentation the overlap is identical
    clean = TripletPatches(17, photos, length=5, seed=1, noise_std=0.0, augment=False)
    for i in range(5):
        s = clean[i]
        a, b = overlap(s["anchor"].numpy(), s["positive"].numpy(), *s["shift"].tolist())
        np.testing.assert_array_equal(a, b)


def test_negative_comes_from_another_image(photos):
    ds = TripletPatches(17, photos, length=60, seed=2)
    pairs = [(ds[i]["anchor_source"], ds[i]["negative_source"]) for i in range(60)]
    assert all(a != b for a, b in pairs)
    assert all(0 <= a < len(photos) and 0 <= b < len(photos) for a, b in pairs)
    assert len({a for a, _ in pairs}) > 5  # many images are used


def test_deterministic_given_seed(photos):
    a = TripletPatches(33, photos, length=20, seed=5)
    b = TripletPatches(33, photos, length=20, seed=5)
    c = TripletPatches(33, photos, length=20, seed=6)
    _ = b[3]  # order does not matter
    for key in ("anchor", "positive", "negative"):
        assert torch.equal(a[7][key], b[7][key])
    assert not torch.equal(a[7]["anchor"], c[7]["anchor"])
    r1, r2 = RandomPatches(17, photos, seed=4), RandomPatches(17, photos, seed=4)
    assert r1[9]["patch"].shape == (3, 17, 17)
    assert torch.equal(r1[9]["patch"], r2[9]["patch"])


def test_augment():
    rng = np.random.default_rng(0)
    crop = rng.random((6, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(NO_AUGMENT(crop, rng), crop)
    flips_only = Augment(brightness=0.0, contrast=0.0, saturation=0.0)
    outs = [flips_only(crop, np.random.default_rng(s)) for s in range(20)]
    variants = {
        crop.tobytes(),
        crop[::-1].tobytes(),
        crop[:, ::-1].tobytes(),
        crop[::-1, ::-1].tobytes(),
    }
    assert {np.ascontiguousarray(o).tobytes() for o in outs} == variants
    jittered = Augment(flips=False)(crop, np.random.default_rng(1))
    assert 0 < np.abs(jittered - crop).max() < 0.35


def test_errors():
    big = np.random.default_rng(0).random((64, 64, 3))
    with pytest.raises(ValueError, match="at least two"):
        TripletPatches(17, [big])
    with pytest.raises(ValueError, match=r"need at least 25×25"):
        TripletPatches(17, [big, big[:20]], max_shift=4)


def test_image_folder_patches(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (70, 70), dtype=np.uint8)).save(tmp_path / "sub/b.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolderPatches(tmp_path, 33, length=30, seed=0)
    assert [path.name for path in ds.paths] == ["a.png", "c.png", "b.jpg"]
    assert min(ds.image(1).shape[:2]) == 33 + 2 * 4  # the small image is enlarged to fit
    assert ds.image(2).shape == (70, 70, 3)  # grayscale → RGB
    again = ImageFolderPatches(tmp_path, 33, length=30, seed=0)
    for i in range(30):
        s = ds[i]
        assert s["anchor"].shape == (3, 33, 33) and s["anchor_source"] != s["negative_source"]
    assert torch.equal(ds[11]["negative"], again[11]["negative"])
    with pytest.raises(ValueError, match="Found 0 image"):
        ImageFolderPatches(tmp_path / "sub" / "..", 17, extensions=(".gif",))
