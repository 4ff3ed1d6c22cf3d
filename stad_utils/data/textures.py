"""The embedded *textures* dataset: synthetic defects on real texture photographs.

MVTec AD cannot be downloaded everywhere (and never in CI), so the quick profile runs on
this small dataset. Its good images are crops of scikit-image's real photographs
(``brick``, ``grass``, ``gravel``), tinted with a colour palette per category; its
defects are drawn on other crops with exact ground-truth masks: the mask is exactly the
region the defect was drawn into.

Five defect kinds, in the spirit of MVTec AD's texture categories:

* ``scratch`` — a thin, curved, bright metallic line (exposed material);
* ``spot``    — a small ellipse of foreign material: black, white or blue paint;
* ``crack``   — a dark, jagged, branching line;
* ``stain``   — an irregular rust-brown blob, translucent over the texture;
* ``patch``   — a rectangle cut from another texture and pasted in.

Train crops come from the top of each photograph and test crops from its bottom rows,
so no test pixel was seen in training. Everything is deterministic from one seed and
written in MVTec AD layout (RGB PNG images, binary PNG masks).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage import draw

from ..config import data_root
from ..files import write_atomically

CATEGORIES = ("brick", "grass", "gravel")
DEFECT_KINDS = ("scratch", "spot", "crack", "stain", "patch")
FORMAT_VERSION = 2  # bump when the generator changes: old copies are then rebuilt


@dataclass(frozen=True)
class TexturesSpec:
    """What to generate. The defaults keep the whole dataset near 8 MB (measured 8.1 MB)."""

    image_size: int = 128
    train_images: int = 60
    test_good_images: int = 15
    images_per_defect: int = 6
    seed: int = 0
    version: int = FORMAT_VERSION

    def expected_counts(self) -> dict[str, int]:
        counts = {"train/good": self.train_images, "test/good": self.test_good_images}
        for kind in DEFECT_KINDS:
            counts[f"test/{kind}"] = self.images_per_defect
            counts[f"ground_truth/{kind}"] = self.images_per_defect
        return counts


# Each grayscale photo becomes a duotone: black maps to the first colour, white to the
# second. Colour makes the textures look like materials, and lets defects differ in hue
# as real ones do (MVTec AD has "color" defects in several categories).
PALETTES = {
    "brick": ((0.28, 0.09, 0.06), (0.97, 0.78, 0.62)),
    "grass": ((0.04, 0.14, 0.02), (0.70, 0.92, 0.38)),
    "gravel": ((0.16, 0.14, 0.12), (0.93, 0.89, 0.80)),
}
# The texture a "patch" defect is cut from.
DONORS = {"brick": "gravel", "grass": "brick", "gravel": "grass"}


def photograph(category: str) -> np.ndarray:
    """scikit-image's photo of ``category`` in its palette: float32 (512, 512, 3) in [0, 1]."""
    if category not in CATEGORIES:
        raise ValueError(f"Unknown texture {category!r}; choose one of {CATEGORIES}.")
    gray = getattr(skdata, category)().astype(np.float32)[..., None] / 255.0
    dark, light = (np.array(c, dtype=np.float32) for c in PALETTES[category])
    return (1 - gray) * dark + gray * light


# -- crops ------------------------------------------------------------------------------
TEST_ROWS = 160  # the bottom rows of each photo are reserved for test crops


def random_crop(photo: np.ndarray, size: int, split: str, rng: np.random.Generator):
    """A ``size``×``size`` crop from the train (top) or test (bottom) part of the photo,
    randomly flipped (flips keep every texture's look, unlike 90° turns of bricks)."""
    height, width = photo.shape[:2]
    top_limit = height - TEST_ROWS
    if split == "train":
        y = rng.integers(0, top_limit - size + 1)
    else:
        y = rng.integers(top_limit, height - size + 1)
    x = rng.integers(0, width - size + 1)
    crop = photo[y : y + size, x : x + size]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1, :]
    return np.ascontiguousarray(crop)


# -- defects: each returns (image, mask), mask = exactly the region drawn into -----------
def _curve(rng, size, length, bend):
    """Points of a random quadratic Bézier curve of about ``length`` pixels."""
    start = rng.uniform(0.2 * size, 0.8 * size, 2)
    angle = rng.uniform(0, np.pi)
    end = np.clip(start + length * np.array([np.cos(angle), np.sin(angle)]), 2, size - 3)
    middle = (start + end) / 2 + rng.normal(0, bend, 2)
    t = np.linspace(0, 1, 200)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * middle + t**2 * end


def _draw_polyline(points, shape):
    mask = np.zeros(shape, bool)
    points = np.round(points).astype(int)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:], strict=True):
        rr, cc = draw.line(r0, c0, r1, c1)
        keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        mask[rr[keep], cc[keep]] = True
    return mask


def scratch(image, rng, other=None):
    size, shape = image.shape[0], image.shape[:2]
    line = _draw_polyline(_curve(rng, size, rng.uniform(0.35, 0.7) * size, 12), shape)
    mask = ndimage.binary_dilation(line, iterations=int(rng.integers(1, 3)))
    steel = rng.uniform(0.85, 1.0) * np.array([0.97, 0.98, 1.0], dtype=np.float32)
    out = image.copy()
    out[mask] = 0.3 * image[mask] + 0.7 * steel
    return out, mask


SPOT_COLOURS = np.array(
    [(0.05, 0.05, 0.06), (0.95, 0.95, 0.93), (0.12, 0.25, 0.75)], dtype=np.float32
)  # black, white and blue paint


def spot(image, rng, other=None):
    size = image.shape[0]
    center = rng.uniform(0.2 * size, 0.8 * size, 2)
    radii = rng.uniform(0.04, 0.09, 2) * size
    shape = image.shape[:2]
    rr, cc = draw.ellipse(*center, *radii, shape=shape, rotation=rng.uniform(0, np.pi))
    mask = np.zeros(shape, bool)
    mask[rr, cc] = True
    paint = SPOT_COLOURS[rng.integers(len(SPOT_COLOURS))]
    out = image.copy()
    out[mask] = np.clip(paint + rng.normal(0, 0.03, (mask.sum(), 1)), 0, 1)
    return out, mask


def crack(image, rng, other=None):
    size, shape = image.shape[0], image.shape[:2]
    mask = np.zeros(shape, bool)
    position = rng.uniform(0.3 * size, 0.7 * size, 2)
    heading = rng.uniform(0, 2 * np.pi)
    branches = [(position, heading, int(rng.integers(25, 45)))]
    while branches:
        position, heading, steps = branches.pop()
        points = [position]
        for _ in range(steps):
            heading += rng.normal(0, 0.35)
            position = np.clip(
                position + 1.5 * np.array([np.cos(heading), np.sin(heading)]), 0, size - 1
            )
            points.append(position)
            if rng.random() < 0.03 and len(branches) < 3:
                branches.append((position, heading + rng.choice([-1, 1]) * 0.8, steps // 2))
        mask |= _draw_polyline(np.array(points), shape)
    mask = ndimage.binary_dilation(mask)
    out = image.copy()
    out[mask] = image[mask] * 0.15
    return out, mask


RUST = np.array((0.40, 0.18, 0.05), dtype=np.float32)


def stain(image, rng, other=None):
    size = image.shape[0]
    noise = ndimage.gaussian_filter(rng.normal(size=image.shape[:2]), sigma=size * 0.04)
    yy, xx = np.mgrid[:size, :size]
    center = rng.uniform(0.25 * size, 0.75 * size, 2)
    radius = rng.uniform(0.08, 0.15) * size
    falloff = 1 - np.hypot(yy - center[0], xx - center[1]) / radius
    field = falloff + 0.6 * noise / noise.std()
    mask = field > 0.3
    if not mask.any():  # rare: the noise swamped the blob; use the noise-free stain
        mask = falloff > 0.3
    labels, count = ndimage.label(mask)
    if count > 1:  # keep the largest blob: one stain per image
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    strength = rng.uniform(0.45, 0.6)
    out = image.copy()
    out[mask] = image[mask] * (1 - strength) + strength * RUST
    return out, mask


def patch(image, rng, other):
    size = image.shape[0]
    h, w = (rng.uniform(0.15, 0.28, 2) * size).astype(int)
    y, x = rng.integers(4, size - h - 4), rng.integers(4, size - w - 4)
    sy, sx = rng.integers(0, other.shape[0] - h), rng.integers(0, other.shape[1] - w)
    mask = np.zeros(image.shape[:2], bool)
    mask[y : y + h, x : x + w] = True
    out = image.copy()
    out[y : y + h, x : x + w] = other[sy : sy + h, sx : sx + w]
    return out, mask


DEFECTS = {"scratch": scratch, "spot": spot, "crack": crack, "stain": stain, "patch": patch}


# -- writing ----------------------------------------------------------------------------
def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)


def generate_category(category: str, folder: Path, spec: TexturesSpec) -> None:
    """Write one category in MVTec AD layout under ``folder``."""
    photo = photograph(category)
    donor = photograph(DONORS[category])
    rng = np.random.default_rng([spec.seed, CATEGORIES.index(category)])
    for i in range(spec.train_images):
        _save_png(
            random_crop(photo, spec.image_size, "train", rng), folder / f"train/good/{i:03d}.png"
        )
    for i in range(spec.test_good_images):
        _save_png(
            random_crop(photo, spec.image_size, "test", rng), folder / f"test/good/{i:03d}.png"
        )
    for kind in DEFECT_KINDS:
        for i in range(spec.images_per_defect):
            clean = random_crop(photo, spec.image_size, "test", rng)
            image, mask = DEFECTS[kind](clean, rng, donor)
            _save_png(image, folder / f"test/{kind}/{i:03d}.png")
            _save_png(mask.astype(np.float32), folder / f"ground_truth/{kind}/{i:03d}_mask.png")


# -- the manifest: what this module wrote, so that nothing else is ever touched ---------
MANIFEST = "manifest.json"
GENERATOR = "stad_utils.data.textures"  # marks a manifest as ours


class TexturesFolderError(FileExistsError):
    """The target folder holds files this module did not write; nothing was changed."""


def expected_files(spec: TexturesSpec) -> list[str]:
    """The relative paths ``generate_category`` writes for every category."""
    files = []
    for category in CATEGORIES:
        for sub, count in spec.expected_counts().items():
            suffix = "_mask" if sub.startswith("ground_truth/") else ""
            files += [f"{category}/{sub}/{i:03d}{suffix}.png" for i in range(count)]
    return files


def _read_manifest(folder: Path) -> dict | None:
    """The folder's manifest as a dict, or None if it has none or it is unreadable."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _owned_files(manifest: dict) -> set[str] | None:
    """The files a manifest says this module wrote, or None if it is not ours.

    Current manifests list their files; those written before the list existed
    (``spec`` and ``categories`` only) own exactly the files their spec generates."""
    if manifest.get("generator") == GENERATOR and isinstance(manifest.get("files"), dict):
        return set(manifest["files"])
    if set(manifest) == {"spec", "categories"} and manifest["categories"] == list(CATEGORIES):
        try:
            return set(expected_files(TexturesSpec(**manifest["spec"])))
        except TypeError:
            return None
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_ok(folder: Path, spec: TexturesSpec) -> bool:
    """True if the folder holds this spec's dataset, every file present and unchanged."""
    manifest = _read_manifest(folder)
    if manifest is None or manifest.get("generator") != GENERATOR:
        return False
    if manifest.get("spec") != asdict(spec):
        return False
    recorded = manifest.get("files")
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(expected_files(spec)):
        return False
    try:
        return all(_sha256(folder / name) == digest for name, digest in recorded.items())
    except OSError:  # a file is missing or unreadable
        return False


def _claim(folder: Path) -> set[str]:
    """The files of ``folder`` this module may replace; refuses a folder it does not own.

    A folder is ours when it is missing, empty, or holds our manifest. A folder whose
    manifest is unreadable is still ours if it holds nothing but our category folders
    and that manifest (a crash while writing it)."""
    if not folder.exists():
        return set()
    if not folder.is_dir():
        raise TexturesFolderError(
            f"{folder} is a file, not a folder: the textures dataset cannot be written "
            "there. Choose another --root, or move that file away."
        )
    entries = sorted(p.name for p in folder.iterdir())
    if not entries:
        return set()
    manifest = _read_manifest(folder)
    owned = _owned_files(manifest) if manifest is not None else None
    if owned is not None:
        return owned
    if (
        manifest is None
        and (folder / MANIFEST).exists()
        and set(entries) <= {MANIFEST, *CATEGORIES}
    ):
        return set(expected_files(TexturesSpec())) | {
            str(p.relative_to(folder)) for c in CATEGORIES for p in (folder / c).rglob("*.png")
        }
    shown = ", ".join(entries[:8]) + (", ..." if len(entries) > 8 else "")
    raise TexturesFolderError(
        f"{folder} is not empty and holds no textures manifest of ours ({shown}), so the "
        "textures dataset is not written there: nothing was changed. Choose an empty or "
        "new folder (--root), or move those files away first."
    )


def _write_manifest(folder: Path, spec: TexturesSpec | None, files: dict[str, str]) -> None:
    manifest = {
        "generator": GENERATOR,
        "spec": asdict(spec) if spec is not None else None,  # None: a rebuild in progress
        "categories": list(CATEGORIES),
        "files": files,
    }
    write_atomically(
        folder / MANIFEST, lambda path: path.write_text(json.dumps(manifest, indent=2))
    )


def ensure_textures(root: str | Path | None = None, spec: TexturesSpec | None = None) -> Path:
    """Return the textures dataset root, generating it first if missing or invalid.

    The folder must be missing, empty, or hold this module's manifest; anything else is
    refused with :class:`TexturesFolderError` and left untouched. The dataset is built in
    a temporary folder, then only the files the manifest lists are replaced: a category
    or notes a user added beside them survive. The manifest records each file's SHA-256,
    so a missing or changed file triggers a rebuild.
    """
    spec = spec or TexturesSpec()
    folder = Path(root) if root is not None else data_root() / "textures"
    if _manifest_ok(folder, spec):
        return folder
    owned = _claim(folder)
    new_files = expected_files(spec)
    for name in new_files:  # never overwrite a file a user put where ours will go
        if name not in owned and (folder / name).exists():
            raise TexturesFolderError(
                f"{folder / name} was not written by the textures generator, but the "
                "dataset needs that path: nothing was changed. Move that file away."
            )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".textures-"))
    try:
        for category in CATEGORIES:
            generate_category(category, staging / category, spec)
        digests = {name: _sha256(staging / name) for name in new_files}
        folder.mkdir(parents=True, exist_ok=True)
        # First claim old and new files together, so a crash midway leaves a manifest
        # that still owns every file written so far (and fails the check: rebuilt).
        _write_manifest(folder, None, dict.fromkeys(sorted(owned | set(new_files)), ""))
        for name in sorted(owned - set(new_files)):
            (folder / name).unlink(missing_ok=True)
        for name in new_files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, folder / name)
        _write_manifest(folder, spec, digests)
        _remove_empty_folders(folder, {str(Path(n).parent) for n in owned})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _remove_empty_folders(folder: Path, candidates: set[str]) -> None:
    """Remove the folders that held only our files and are now empty (deepest first)."""
    for name in sorted(candidates, key=lambda n: -len(Path(n).parts)):
        for path in (folder / name, *(folder / name).parents):
            if path == folder or not path.is_relative_to(folder):
                break
            try:
                path.rmdir()  # only succeeds on an empty folder
            except OSError:
                break
