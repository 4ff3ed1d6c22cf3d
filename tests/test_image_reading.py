"""Reading images and masks exactly, whatever the PNG's pixel mode (issue 18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURE_HEIGHT, FIXTURE_WIDTH, fixture_mask, write_png
from PIL import Image

from stad_utils.data.mvtec import (
    DatasetLayoutError,
    ImageFormatError,
    MVTecAD,
    read_image,
    read_mask,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3)).astype(np.uint8)
GRAY = RNG.integers(0, 256, (5, 7)).astype(np.uint8)


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def _as_float_rgb(array: np.ndarray, scale: float) -> torch.Tensor:
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return torch.from_numpy(array.astype(np.float64) / scale).permute(2, 0, 1).float()


def _read_float(path: Path) -> torch.Tensor:
    image = read_image(path)
    return image.float() / 255 if image.dtype == torch.uint8 else image


# -- images -------------------------------------------------------------------------------
def test_16_bit_png_is_scaled_by_65535(tmp_path):
    values = np.array([[0, 1, 256, 32768], [40000, 65534, 65535, 12345]], np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    image = read_image(path)
    assert image.dtype == torch.float32 and image.shape == (3, 2, 4)
    expected = _as_float_rgb(values, 65535.0)
    torch.testing.assert_close(image, expected, rtol=0, atol=1e-7)
    assert image.max() == 1.0 and image.min() == 0.0  # not all white (issue 18)
    assert 0.49 < image[0, 0, 3] < 0.51


def test_16_bit_images_give_a_dataset_in_unit_range(tmp_path):
    root = tmp_path / "mvtec"
    ramp = np.arange(FIXTURE_HEIGHT * FIXTURE_WIDTH).reshape(FIXTURE_HEIGHT, FIXTURE_WIDTH) * 100
    for name in ("train/good/000.png", "test/good/000.png", "test/bad/000.png"):
        (root / "c" / name).parent.mkdir(parents=True, exist_ok=True)
        _save(Image.fromarray(ramp.astype(np.uint16)), root / "c" / name)
    write_png(root / "c/ground_truth/bad/000_mask.png", fixture_mask(0))
    sample = MVTecAD(root, "c", "test", image_size=16)[0]
    assert sample["image"].dtype == torch.float32
    assert 0 <= sample["image"].min() and sample["image"].max() <= ramp.max() / 65535 + 1e-6
    assert sample["image"].std() > 0.05  # a ramp, not a constant white image
    full = MVTecAD(root, "c", "train", image_size=None, val_fraction=0.0)[0]["image"]
    torch.testing.assert_close(full, _as_float_rgb(ramp, 65535.0), rtol=0, atol=1e-7)


def test_8_bit_rgb_and_grayscale_are_unchanged(tmp_path):
    rgb = read_image(_save(Image.fromarray(RGB), tmp_path / "rgb.png"))
    assert rgb.dtype == torch.uint8
    assert torch.equal(rgb, torch.from_numpy(RGB).permute(2, 0, 1))
    gray = read_image(_save(Image.fromarray(GRAY), tmp_path / "gray.png"))
    assert torch.equal(gray, torch.from_numpy(np.repeat(GRAY[None], 3, axis=0)))
    single = read_image(tmp_path / "gray.png", mode="L")
    assert torch.equal(single, torch.from_numpy(GRAY[None]))


def test_palette_png_gives_the_palette_colours(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30], [200, 200, 0]], np.uint8)
    indices = RNG.integers(0, 4, (5, 7)).astype(np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette.ravel().tolist())
    path = _save(image, tmp_path / "palette.png")
    assert Image.open(path).mode == "P"
    assert torch.equal(read_image(path), torch.from_numpy(palette[indices]).permute(2, 0, 1))


def test_palette_png_with_a_transparent_entry_is_refused(tmp_path):
    image = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0])
    path = tmp_path / "transparent.png"
    image.save(path, transparency=0)
    with pytest.raises(ImageFormatError, match="transparent pixels") as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_opaque_alpha_is_dropped_exactly(tmp_path, mode):
    colour = GRAY if mode == "LA" else RGB
    alpha = np.full(GRAY.shape, 255, np.uint8)
    array = np.dstack([colour, alpha])
    path = _save(Image.fromarray(array, mode=mode), tmp_path / f"{mode}.png")
    assert Image.open(path).mode == mode
    torch.testing.assert_close(_read_float(path), _as_float_rgb(colour, 255.0))


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_transparent_pixels_are_refused_naming_the_file(tmp_path, mode):
    colour = GRAY if mode == "LA" else RGB
    alpha = np.full(GRAY.shape, 255, np.uint8)
    alpha[2, 3] = 0
    path = _save(Image.fromarray(np.dstack([colour, alpha]), mode=mode), tmp_path / "a.png")
    with pytest.raises(ImageFormatError, match="transparent pixels") as info:
        read_image(path)
    assert str(path) in str(info.value) and mode in str(info.value)
    assert isinstance(info.value, OSError)


def test_one_bit_png_is_black_and_white(tmp_path):
    bits = RNG.integers(0, 2, (5, 7)).astype(bool)
    path = _save(Image.fromarray(bits), tmp_path / "bits.png")
    assert Image.open(path).mode == "1"
    assert torch.equal(read_image(path), torch.from_numpy(np.repeat(bits[None], 3, 0) * 255).byte())


def test_cmyk_is_converted_with_the_standard_formula(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [51, 102, 153, 51]]], np.uint8)
    path = tmp_path / "cmyk.tif"  # PNG cannot hold CMYK; TIFF keeps the values exactly
    Image.fromarray(cmyk, mode="CMYK").save(path)
    c, k = cmyk[..., :3].astype(float), cmyk[..., 3:].astype(float)
    expected = np.round((255 - c) * (255 - k) / 255)
    got = read_image(path).permute(1, 2, 0).numpy().astype(float)
    assert np.abs(got - expected).max() <= 1
    assert got[0, 0].tolist() == [255, 255, 255] and got[0, 2].tolist() == [0, 0, 0]


def test_an_unsupported_mode_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.ones((3, 3), np.float32) * 0.5, mode="F").save(path)
    with pytest.raises(ImageFormatError, match="pixel mode 'F'") as info:
        read_image(path)
    assert str(path) in str(info.value) and "PNG" in str(info.value)


# -- masks --------------------------------------------------------------------------------
def _expected_mask(shape=(5, 7)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[1:3, 2:6] = True
    return mask


@pytest.mark.parametrize(
    "name, to_image",
    [
        ("0/1 gray", lambda m: Image.fromarray(m.astype(np.uint8))),
        ("0/255 gray", lambda m: Image.fromarray(m.astype(np.uint8) * 255)),
        ("16-bit 0/65535", lambda m: Image.fromarray(m.astype(np.uint16) * 65535)),
        ("16-bit 0/1", lambda m: Image.fromarray(m.astype(np.uint16))),
        ("1-bit", lambda m: Image.fromarray(m)),
        ("RGB red", lambda m: Image.fromarray(np.dstack([m * 255, 0 * m, 0 * m]).astype(np.uint8))),
        ("palette index", lambda m: Image.fromarray(m.astype(np.uint8), mode="P")),
    ],
)
def test_any_nonzero_mask_pixel_is_defect_whatever_the_scale(tmp_path, name, to_image):
    mask = _expected_mask()
    path = _save(to_image(mask), tmp_path / "mask.png")
    loaded = read_mask(path)
    assert loaded.dtype == torch.bool and loaded.shape == (1, 5, 7)
    assert torch.equal(loaded[0], torch.from_numpy(mask)), name


def _dataset_with_mask(root: Path, mask: np.ndarray, name: str = "000_mask.png") -> Path:
    image = np.full((FIXTURE_HEIGHT, FIXTURE_WIDTH, 3), 90, np.uint8)
    write_png(root / "c/train/good/000.png", image)
    write_png(root / "c/test/bad/000.png", image)
    write_png(root / f"c/ground_truth/bad/{name}", mask)
    return root


def test_zero_one_masks_are_not_read_as_empty(tmp_path):
    mask = (fixture_mask(0) > 0).astype(np.uint8)  # saved as 0/1 instead of 0/255
    root = _dataset_with_mask(tmp_path / "mvtec", mask)
    loaded = MVTecAD(root, "c", "test", image_size=None)[0]["mask"][0]
    assert torch.equal(loaded, torch.from_numpy(mask).float())
    assert loaded.sum() == mask.sum() > 0


def test_an_empty_mask_on_a_defective_image_is_an_error_naming_the_file(tmp_path):
    root = _dataset_with_mask(tmp_path / "mvtec", np.zeros((FIXTURE_HEIGHT, FIXTURE_WIDTH)))
    ds = MVTecAD(root, "c", "test", image_size=None)
    with pytest.raises(DatasetLayoutError, match="is empty") as info:
        ds[0]
    message = str(info.value)
    assert str(root / "c/ground_truth/bad/000_mask.png") in message
    assert str(root / "c/test/bad/000.png") in message and "test/good" in message


@pytest.mark.parametrize("name", ["000_MASK.PNG", "000_Mask.png", "000_mask.PNG", "000_mask.bmp"])
def test_mask_names_match_case_insensitively(tmp_path, name):
    root = _dataset_with_mask(tmp_path / "mvtec", fixture_mask(1), name=name)
    ds = MVTecAD(root, "c", "test", image_size=None)
    assert ds.items[0][1] == root / "c/ground_truth/bad" / name
    assert torch.equal(ds[0]["mask"][0], torch.from_numpy(fixture_mask(1) > 0).float())


def test_two_masks_differing_in_case_are_ambiguous(tmp_path):
    root = _dataset_with_mask(tmp_path / "mvtec", fixture_mask(1))
    write_png(root / "c/ground_truth/bad/000_MASK.png", fixture_mask(2))
    if len(list((root / "c/ground_truth/bad").iterdir())) < 2:
        pytest.skip("case-insensitive file system")
    with pytest.raises(DatasetLayoutError, match="Several masks") as info:
        MVTecAD(root, "c", "test")
    assert "000_MASK.png" in str(info.value) and "000_mask.png" in str(info.value)
