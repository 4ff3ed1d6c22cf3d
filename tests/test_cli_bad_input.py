"""The command line under bad input (issue 18): nothing lost, nothing silently wrong.

Most cases run ``python -m stad_utils`` in a subprocess on the tiny MVTec-layout fixture
(32-pixel images, one epoch); cases that need a fault injected (a full disk, Ctrl-C) call
``main`` in this process with the fault monkeypatched in.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from conftest import make_mvtec_tree, write_png

from stad_utils import files
from stad_utils.__main__ import main
from stad_utils.errors import CorruptFileError, DiskFullError
from stad_utils.methods import Method

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--method", "stfpm", "--profile", "quick", "--image-size", "32", "--epochs", "1"]
FAST += ["--batch-size", "4", "--device", "cpu", "--no-figures"]


def cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m stad_utils ARGS``; its exit status, stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "STAD_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "stad_utils", *map(str, args)],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_main(capsys, monkeypatch):
    """``main(ARGS)`` in this process (torch is imported once, so it is much faster than a
    subprocess); the same exit status, stdout and stderr as :func:`cli`."""

    def call(*args, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(status, out, err)

    return call


def fit_args(data: Path, out: Path, category: str = "alpha", *extra) -> list[str]:
    return ["fit", *FAST, "--data", str(data), "--category", category, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset root, run folder) of one finished fit, made once for the module; tests
    that change the run folder work on a copy (:func:`copy_run`)."""
    base = tmp_path_factory.mktemp("finished")
    data = make_mvtec_tree(base / "mvtec")
    out = base / "run"
    result = cli(*fit_args(data, out))
    assert result.returncode == 0, result.stderr
    return data, out


def copy_run(finished, tmp_path: Path) -> tuple[Path, Path]:
    data, out = finished
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return data, copy


def assert_clean_error(result, status: int, *phrases: str) -> None:
    """One message, no traceback, the expected exit status and words."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)


# ----------------------------------------------------------------------------------------
# 2. A run folder belongs to one run
# ----------------------------------------------------------------------------------------


def test_the_run_records_its_data_identity(finished):
    data, out = finished
    report = json.loads((out / "report.json").read_text())
    identity = report["run_identity"]
    assert identity["data"] == str(data) and identity["category"] == "alpha"
    assert identity["image_size"] == 32 and len(identity["data_fingerprint"]) == 16
    assert report["resumed_from_epoch"] is None


@pytest.mark.parametrize(
    "change, named",
    [
        (["--category", "gamma"], "category: 'alpha' → 'gamma'"),
        (["--image-size", "48"], "image_size: 32 → 48"),
        (["--data", "OTHER"], "data: "),
    ],
)
def test_reusing_a_run_folder_for_another_run_is_refused(
    run_main, finished, tmp_path, change, named
):
    data, out = copy_run(finished, tmp_path)
    model_before = (out / "model.pt").read_bytes()
    if change[0] == "--data":
        other = tmp_path / "other"
        shutil.copytree(data, other)
        change = ["--data", str(other)]
    args = fit_args(data, out)
    for flag, value in zip(change[::2], change[1::2], strict=True):
        args[args.index(flag) + 1] = value
    result = run_main(*args)
    assert_clean_error(
        result, 2, f"The output folder {out} holds another run", named, "--overwrite"
    )
    assert (out / "model.pt").read_bytes() == model_before


def test_changed_data_files_are_another_run(run_main, finished, tmp_path):
    data, out = copy_run(finished, tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert report["run_identity"]["data"] == str(data)
    write_png(data / "alpha/train/good/extra.png", np.zeros((20, 24, 3)))  # a new image
    try:
        result = run_main(*fit_args(data, out))
    finally:
        (data / "alpha/train/good/extra.png").unlink()
    assert_clean_error(result, 2, "holds another run", "data_fingerprint: ")


def test_fewer_epochs_are_refused_and_more_resume(run_main, finished, tmp_path):
    data, out = copy_run(finished, tmp_path)
    args = fit_args(data, out)
    args[args.index("--epochs") + 1] = "2"
    result = run_main(*args)
    assert result.returncode == 0, result.stderr
    assert "Resuming from" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["resumed_from_epoch"] == 1 and report["history"]["resumed_from_epoch"] == 1
    assert len(report["history"]["loss"]) == 2
    history = report["history"]
    assert 0 < history["session_seconds"] < history["seconds"] == report["train_seconds"]
    # back to 1 epoch: the folder holds a 2-epoch run now
    assert_clean_error(run_main(*fit_args(data, out)), 2, "epochs: 2 → 1 (fewer)")


def test_overwrite_replaces_only_the_tools_own_files(run_main, finished, tmp_path):
    data, out = copy_run(finished, tmp_path)
    (out / "notes.txt").write_text("mine")
    (out / "figures").mkdir()
    (out / "figures" / "curves.png").write_bytes(b"the old run's figure")
    result = run_main(*fit_args(data, out, "gamma", "--overwrite"))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "report.json").read_text())["category"] == "gamma"
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "figures" / "curves.png").exists()  # the old run's, not rewritten
    assert "Resuming" not in result.stdout  # the old checkpoint was replaced, not resumed


# ----------------------------------------------------------------------------------------
# 4. Everything written is atomic; a full disk says so
# ----------------------------------------------------------------------------------------


def _failing_torch_save(obj, path, *args, **kwargs):
    Path(path).write_bytes(b"half a model")
    raise RuntimeError("basic_ios::clear: iostream error")


def test_an_interrupted_model_save_keeps_the_previous_model(finished, tmp_path, monkeypatch):
    _, out = copy_run(finished, tmp_path)
    before = (out / "model.pt").read_bytes()
    method = Method.load(out / "model.pt")
    monkeypatch.setattr(torch, "save", _failing_torch_save)
    with pytest.raises(RuntimeError, match="iostream"):
        method.save(out / "model.pt")
    assert (out / "model.pt").read_bytes() == before
    assert not list(out.glob("*.tmp"))


def test_a_full_disk_during_fit_says_so_and_keeps_the_old_run(
    finished, tmp_path, monkeypatch, capsys
):
    data, out = copy_run(finished, tmp_path)
    report_before = (out / "report.json").read_text()
    original = Path.write_text

    def disk_full(self, text, *args, **kwargs):
        if self.name.startswith("report.json"):
            original(self, text[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full)
    assert main(fit_args(data, out)) == 1
    err = capsys.readouterr().err
    assert f"Disk full while writing {out / 'report.json'}" in err and "Traceback" not in err
    assert (out / "report.json").read_text() == report_before
    assert Method.load(out / "model.pt").name == "stfpm"
    assert not list(out.glob("*.tmp"))


def test_a_failing_figure_write_keeps_the_old_figure(tmp_path, monkeypatch):
    from stad_utils.runner import _save_figure
    from stad_utils.viz.style import pyplot_for_files

    plt = pyplot_for_files()
    path = tmp_path / "loss.png"
    path.write_bytes(b"old figure")
    figure = plt.figure()
    monkeypatch.setattr(figure, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        _save_figure(plt, figure, path)
    assert path.read_bytes() == b"old figure"


# ----------------------------------------------------------------------------------------
# 6. No code runs from a crafted model file
# ----------------------------------------------------------------------------------------


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_a_crafted_model_file_is_refused_and_runs_no_code(finished, tmp_path, kind):
    _, out = copy_run(finished, tmp_path)
    marker = tmp_path / "code-ran"
    payload = {"name": "stfpm", "options": {}, "state": _RunsCode(marker)}
    if kind == "pickle":
        (out / "model.pt").write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, out / "model.pt")
    result = cli("evaluate", "--run", out, "--device", "cpu")
    assert_clean_error(result, 1, f"Refusing to load the model file {out / 'model.pt'}")
    assert not marker.exists()


# ----------------------------------------------------------------------------------------
# 8. Test-set problems are found before training; the model is still saved
# ----------------------------------------------------------------------------------------


def _only_good_test_set(root: Path) -> str:
    for kind in ("broken", "scratch"):
        shutil.rmtree(root / "alpha" / "test" / kind)
        shutil.rmtree(root / "alpha" / "ground_truth" / kind)
    return "only good images"


def _corrupt_test_image(root: Path) -> str:
    (root / "alpha/test/broken/001.png").write_bytes(b"not a png")
    return "Cannot read the image"


def _mask_of_the_wrong_size(root: Path) -> str:
    write_png(root / "alpha/ground_truth/broken/001_mask.png", np.zeros((10, 10)))
    return "must have the same size"


@pytest.mark.parametrize(
    "spoil", [_only_good_test_set, _corrupt_test_image, _mask_of_the_wrong_size]
)
def test_a_test_set_that_cannot_be_scored_still_gives_a_model(run_main, tmp_path, spoil):
    data = make_mvtec_tree(tmp_path / "mvtec")
    reason = spoil(data)
    out = tmp_path / "run"
    result = run_main(*fit_args(data, out))
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and reason in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["image_auroc"] is None and report["au_pro"] is None
    assert reason in report["metrics_missing_reason"]
    assert report["train_seconds"] > 0
    assert Method.load(out / "model.pt").name == "stfpm"


def test_the_test_set_is_checked_before_training(mvtec_root, tmp_path, monkeypatch, capsys):
    _corrupt_test_image(mvtec_root)

    def no_training(*args, **kwargs):
        raise KeyboardInterrupt  # stops the run where training would begin

    monkeypatch.setattr("stad_utils.methods.base.Method.fit", no_training)
    assert main(fit_args(mvtec_root, tmp_path / "run")) == 130
    assert "warning: the test set cannot be read" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# 9. Numbers and method options are validated up front
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value, rule",
    [
        ("--epochs", "0", "--epochs must be at least 1 (got 0)"),
        ("--epochs", "-3", "--epochs must be at least 1 (got -3)"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
        ("--image-size", "7", "--image-size must be between 32 and 1024 pixels (got 7)"),
        ("--image-size", "10000", "--image-size must be between 32 and 1024"),
        ("--seed", "-1", "--seed must be an integer from 0"),
    ],
)
def test_out_of_range_numbers_are_refused_before_any_work(
    mvtec_root, tmp_path, capsys, flag, value, rule
):
    args = fit_args(mvtec_root, tmp_path / "run")
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert rule in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_numbers_are_refused_from_the_command_line_too(mvtec_root, tmp_path):
    result = cli(*fit_args(mvtec_root, tmp_path / "run", "alpha", "--epochs", "0"))
    assert_clean_error(result, 2, "error: --epochs must be at least 1 (got 0).")


@pytest.mark.parametrize(
    "options, message",
    [
        ('{"num_students": 3}', "stfpm has no option 'num_students'. Its options are: layers"),
        ('{"layers": 3}', "The stfpm option 'layers' must be like its default"),
        ('{"seed": 3}', "Set seed with --seed"),
    ],
)
def test_bad_method_options_are_explained(mvtec_root, tmp_path, capsys, options, message):
    args = fit_args(mvtec_root, tmp_path / "run", "alpha", "--method-options", options)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------
# 10. One error style: a message, no traceback; --debug; Ctrl-C; corrupt files
# ----------------------------------------------------------------------------------------


def test_a_missing_dataset_is_one_message_and_debug_adds_the_traceback(run_main, tmp_path):
    args = fit_args(tmp_path / "nowhere", tmp_path / "run")
    result = cli(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Dataset root ") and str(tmp_path / "nowhere") in last
    debug = run_main("--debug", *args)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "Traceback" in run_main(*args, "--debug").stderr  # after the command as well


def test_ctrl_c_in_fit_exits_130_with_the_resume_command(mvtec_root, tmp_path):
    out = tmp_path / "run"
    args = fit_args(mvtec_root, out, "alpha", "--overwrite")
    args[args.index("--epochs") + 1] = "500"
    process = subprocess.Popen(
        [sys.executable, "-m", "stad_utils", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "STAD_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job ignores SIGINT, and Python keeps an ignored SIGINT
        # ignored: give the child the default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # generous limits: on a busy machine importing torch alone can take half a minute
    deadline = time.monotonic() + 600
    while not (out / "checkpoint" / "last.pt").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.2)
    assert (out / "checkpoint" / "last.pt").exists(), "no epoch finished in 600 s"
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("fit did not stop within 300 s of Ctrl-C") from None
    assert process.returncode == 130, err
    resume = [word for word in args if word != "--overwrite"]
    assert "python -m stad_utils " + " ".join(resume) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["model.pt", "report.json"])
def test_a_corrupt_run_file_is_named_with_what_to_do(run_main, finished, tmp_path, name):
    _, out = copy_run(finished, tmp_path)
    whole = (out / name).read_bytes()
    (out / name).write_bytes(whole[: len(whole) // 2])
    result = run_main("evaluate", "--run", out, "--device", "cpu")
    assert_clean_error(result, 1, str(out / name), "corrupt", "restore it from a copy")


def test_disk_full_errors_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old")

    def full(temporary):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=f"Disk full while writing {path}"):
        files.write_atomically(path, full)
    assert path.read_text() == "old"


def test_a_report_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "report.json").write_text('{"method": ')
    with pytest.raises(CorruptFileError, match="run report .*report.json is corrupt"):
        files.read_json(tmp_path / "report.json", "run report")


# ----------------------------------------------------------------------------------------
# 11. Smaller ones
# ----------------------------------------------------------------------------------------


def test_a_relative_data_path_is_stored_resolved(run_main, tmp_path):
    make_mvtec_tree(tmp_path / "mvtec")
    result = run_main(*fit_args(Path("mvtec"), Path("run")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "run" / "report.json").read_text())["config"]
    assert config["data"] == str(tmp_path / "mvtec") and config["out"] == str(tmp_path / "run")
    # from another folder, evaluate finds the data; --output may name a missing folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    output = tmp_path / "new" / "folder" / "again.json"
    result = run_main(
        "evaluate", "--run", tmp_path / "run", "--device", "cpu", "--output", output, cwd=elsewhere
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text())["category"] == "alpha"


def test_every_torch_load_in_the_package_is_weights_only():
    calls = [
        (path.name, line.strip())
        for path in (ROOT / "stad_utils").rglob("*.py")
        for line in path.read_text().splitlines()
        if "torch.load(" in line
    ]
    assert calls and all("weights_only=True" in line for _, line in calls), calls


def test_written_files_follow_the_umask(finished):
    _, out = finished  # written by a process with the default umask 022 of this test run
    mask = os.umask(0o022)
    os.umask(mask)
    if mask != 0o022:
        pytest.skip("the test process does not run with umask 022")
    for name in ("model.pt", "report.json", "checkpoint/last.pt"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((out / "checkpoint").stat().st_mode) == 0o755


def test_write_atomically_follows_another_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        files.write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o640


def test_nan_is_written_as_null_in_strict_json(tmp_path):
    files.write_json(
        tmp_path / "r.json", {"validation_score": [0.5, float("nan")], "x": math_inf()}
    )

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    data = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert data == {"validation_score": [0.5, None], "x": None}


def math_inf() -> float:
    return float("inf")


def test_bench_dry_run_checks_the_categories(run_main, mvtec_root, tmp_path):
    result = run_main(
        "bench",
        "--out",
        tmp_path / "b",
        "--data",
        mvtec_root,
        "--categories",
        "alpha,bricks",
        "--methods",
        "stfpm",
        "--dry-run",
    )
    assert_clean_error(result, 2, "No category 'bricks' in", "Found: alpha, beta, gamma")
