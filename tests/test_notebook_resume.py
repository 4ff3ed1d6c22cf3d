"""A chapter killed mid-training resumes from its checkpoint when it is run again, and ends
with the numbers of a run that was never interrupted (issue 16: a Colab session that
disconnects loses no finished epoch when STAD_DATA is on Google Drive)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from notebook_runner import NOTEBOOKS, cell_timeout, run_chapter

from stad_utils.data import ensure_textures

pytestmark = [pytest.mark.notebook]

EPOCHS = 6
COMPARED = ("au_pro", "image_auroc", "pixel_auroc", "dice", "best_epoch", "loss_first", "loss_last")


def data_folder(path: Path) -> Path:
    """A fresh data folder (empty store) sharing the textures dataset."""
    textures = ensure_textures()
    path.mkdir(parents=True)
    (path / "README.md").write_text("test data folder\n")
    (path / "textures").symlink_to(textures, target_is_directory=True)
    return path


def kill_tree(process: subprocess.Popen) -> None:
    """Kill papermill and its kernel (the kernel runs in a session of its own)."""
    parent = psutil.Process(process.pid)
    for child in parent.children(recursive=True):
        child.kill()
    parent.kill()
    process.wait(timeout=60)


def start_chapter(data: Path, out: Path) -> subprocess.Popen:
    code = (
        "import papermill; papermill.execute_notebook("
        f"{str(NOTEBOOKS / '06_stfpm.ipynb')!r}, {str(out / 'killed.ipynb')!r}, "
        f"parameters={{'EPOCHS': {EPOCHS}}}, cwd={str(NOTEBOOKS)!r}, kernel_name='python3', "
        f"progress_bar=False, execution_timeout={cell_timeout()})"
    )
    env = {**os.environ, "STAD_DATA": str(data), "STAD_PROFILE": "quick", "STAD_HEADLESS": "1"}
    env.pop("MPLBACKEND", None)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)


def wait_for_checkpoint(data: Path, process: subprocess.Popen, timeout: float = 900) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((data / "store").glob("stfpm/*/*/checkpoint/last.pt"))
        if found:
            return found[0]
        if process.poll() is not None:
            pytest.fail(f"the chapter ended (code {process.returncode}) before a checkpoint")
        time.sleep(0.1)
    pytest.fail("no checkpoint appeared")


def test_an_interrupted_chapter_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    interrupted = data_folder(tmp_path / "interrupted")
    process = start_chapter(interrupted, tmp_path)
    try:
        checkpoint = wait_for_checkpoint(interrupted, process)
    finally:
        kill_tree(process)
    entry = checkpoint.parent.parent
    assert not (entry / "report.json").exists(), "the chapter finished before it was killed"
    epoch = torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]
    assert epoch < EPOCHS - 1

    monkeypatch.setenv("STAD_DATA", str(interrupted))
    resumed = run_chapter("06_stfpm", tmp_path, EPOCHS=EPOCHS)
    report = json.loads((entry / "report.json").read_text())
    assert report["resumed"] is True  # it went on from the checkpoint, not from epoch 1
    assert len(report["history"]["loss"]) == EPOCHS

    monkeypatch.setenv("STAD_DATA", str(data_folder(tmp_path / "uninterrupted")))
    (tmp_path / "again").mkdir()
    uninterrupted = run_chapter("06_stfpm", tmp_path / "again", EPOCHS=EPOCHS)
    assert {k: resumed[k] for k in COMPARED} == {k: uninterrupted[k] for k in COMPARED}
