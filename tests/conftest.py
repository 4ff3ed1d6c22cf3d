"""Shared fixtures for the unit tests.

The tests folder is put on ``sys.path`` so ``from notebook_runner import run_chapter``
works from any test module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

# The fixture dataset written by ``mvtec_root``: 3 categories of 20×24 (H×W) images.
FIXTURE_HEIGHT, FIXTURE_WIDTH = 20, 24
FIXTURE_CATEGORIES = ("alpha", "beta", "gamma")  # "beta" is grayscale
FIXTURE_TRAIN_IMAGES = 10
FIXTURE_TEST = {"good": 2, "broken": 3, "scratch": 2}


def write_png(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array (H, W) or (H, W, 3) as a PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def fixture_mask(index: int) -> np.ndarray:
    """A 0/255 mask: a rectangle whose position depends on ``index``."""
    mask = np.zeros((FIXTURE_HEIGHT, FIXTURE_WIDTH), np.uint8)
    mask[4 + index : 12 + index, 5 : 17 - index] = 255
    return mask


def make_mvtec_tree(root: Path, seed: int = 0) -> Path:
    """Write a tiny dataset in MVTec AD layout under ``root``; return ``root``."""
    rng = np.random.default_rng(seed)
    for category in FIXTURE_CATEGORIES:
        gray = category == "beta"
        shape = (FIXTURE_HEIGHT, FIXTURE_WIDTH) if gray else (FIXTURE_HEIGHT, FIXTURE_WIDTH, 3)
        folder = root / category
        for i in range(FIXTURE_TRAIN_IMAGES):
            write_png(folder / f"train/good/{i:03d}.png", rng.integers(0, 256, shape))
        for kind, count in FIXTURE_TEST.items():
            for i in range(count):
                write_png(folder / f"test/{kind}/{i:03d}.png", rng.integers(0, 256, shape))
                if kind != "good":
                    write_png(folder / f"ground_truth/{kind}/{i:03d}_mask.png", fixture_mask(i))
    return root


@pytest.fixture
def mvtec_root(tmp_path: Path) -> Path:
    """A fresh tiny MVTec-layout dataset (alpha, beta=grayscale, gamma) in ``tmp_path``."""
    return make_mvtec_tree(tmp_path / "mvtec")


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The strict book build into ``_build/html``, once per test session: warnings are
    errors, every chapter executes (quick profile). Shared by tests/test_book.py and the
    browser test, which therefore always looks at a fresh build and never builds twice
    (pytest keeps a failed build's error for every later test that asks)."""
    shutil.rmtree(REPO / "_build", ignore_errors=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "STAD_PROFILE": "quick", "STAD_HEADLESS": "1"}
    env.pop("MPLBACKEND", None)  # figures must render inline in the executed chapters
    result = subprocess.run(
        [str(jupyter_book), "build", ".", "-W", "-n", "--keep-going"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    # the whole log, for a person: pytest shows only its end, and only after the session
    log = REPO / "_build" / "book-build.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return REPO / "_build" / "html"
