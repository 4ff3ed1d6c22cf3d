"""Profiles, device choice, seeding and the data root."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from stad_utils import config
from stad_utils.config import (
    PROFILES,
    Profile,
    data_root,
    describe,
    get_profile,
    pick_device,
    resolve_profile_name,
    seed_everything,
)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(config, "_mps_available", lambda: False)


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")


# -- profiles -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "env, cuda, expected",
    [
        ("quick", True, "quick"),
        ("full", False, "full"),
        ("  FULL ", False, "full"),
        ("auto", True, "full"),
        ("auto", False, "quick"),
        (None, True, "full"),
        (None, False, "quick"),
    ],
)
def test_resolve_profile_name_from_environment(monkeypatch, env, cuda, expected):
    if env is None:
        monkeypatch.delenv("STAD_PROFILE", raising=False)
    else:
        monkeypatch.setenv("STAD_PROFILE", env)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_profile_name() == expected


def test_invalid_profile_name(monkeypatch):
    monkeypatch.setenv("STAD_PROFILE", "fast")
    with pytest.raises(ValueError, match="Unknown profile 'fast'") as info:
        resolve_profile_name()
    assert "STAD_PROFILE" in str(info.value) and "'quick', 'full' or 'auto'" in str(info.value)
    with pytest.raises(ValueError, match="Unknown profile 'huge'"):
        get_profile("huge")


def test_explicit_name_wins_over_environment(monkeypatch):
    monkeypatch.setenv("STAD_PROFILE", "full")
    assert resolve_profile_name("quick") == "quick"
    monkeypatch.setenv("STAD_PROFILE", "not-a-profile")  # not even read
    assert resolve_profile_name("full") == "full"


def test_get_profile_returns_the_named_profile(monkeypatch):
    monkeypatch.setenv("STAD_PROFILE", "quick")
    quick = get_profile()
    assert quick is PROFILES["quick"]
    assert (quick.dataset, quick.backbone) == ("textures", "efficientnet_lite0")
    full = get_profile("full")
    assert (full.dataset, full.image_size, full.batch_size, full.epochs) == ("mvtec", 256, 32, 100)


def test_with_overrides_ignores_none():
    base = PROFILES["quick"]
    changed = base.with_overrides(epochs=None, lr=0.1, image_size=None, category="grass")
    assert changed.lr == 0.1 and changed.category == "grass"
    assert changed.epochs == base.epochs and changed.image_size == base.image_size
    assert base.lr == 0.4 and base.category == "brick"  # the original is untouched
    assert base.with_overrides(epochs=None) == base
    with pytest.raises(TypeError):
        base.with_overrides(not_a_field=1)


def test_profile_to_dict_round_trips():
    profile = PROFILES["full"]
    assert Profile(**profile.to_dict()) == profile
    # the full profile trains with STFPM's settings (the Profile defaults)
    training = {k: profile.to_dict()[k] for k in ("epochs", "batch_size", "lr", "momentum")}
    assert training == {"epochs": 100, "batch_size": 32, "lr": 0.4, "momentum": 0.9}
    assert (profile.weight_decay, profile.optimizer, profile.seed) == (1e-4, "sgd", 42)


# -- devices ------------------------------------------------------------------------------
def test_pick_device_cuda_without_cuda(no_gpu):
    with pytest.raises(RuntimeError, match="'cuda' was requested but CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(RuntimeError, match="Apple MPS is not available"):
        pick_device("mps")


def test_pick_device_unknown_name(no_gpu):
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        pick_device("tpu")


@pytest.fixture(autouse=True)
def nothing_announced_yet(monkeypatch):
    """pick_device prints a device the first time a process picks it."""
    monkeypatch.setattr(config, "_announced", set())


def test_pick_device_defaults_to_cpu_and_says_so(no_gpu, capsys):
    device = pick_device()
    assert device == torch.device("cpu")
    assert capsys.readouterr().out == "Device: cpu\n"
    assert pick_device("CPU", verbose=False) == torch.device("cpu")
    assert pick_device(verbose="once") == torch.device("cpu")  # a sweep's run: said already
    assert capsys.readouterr().out == ""
    assert pick_device() == torch.device("cpu")  # a notebook's setup cell says it again
    assert capsys.readouterr().out == "Device: cpu\n"


def test_pick_device_prefers_cuda_when_available(fake_gpu, capsys):
    assert pick_device() == torch.device("cuda")
    assert capsys.readouterr().out == "Device: cuda (Fake GPU)\n"


def test_pick_device_on_this_cpu_only_machine(capsys):
    if torch.cuda.is_available() or config._mps_available():
        pytest.skip("this check is for CPU-only machines (like CI)")
    assert pick_device() == torch.device("cpu")
    assert capsys.readouterr().out == "Device: cpu\n"


def test_describe_names_everything():
    line = describe(PROFILES["quick"], torch.device("cpu"))
    assert line == (
        "Profile: quick | dataset: textures/brick | backbone: efficientnet_lite0 | "
        "image size: 128 | device: cpu"
    )


# -- seeding and data ---------------------------------------------------------------------
def test_seed_everything_repeats_random_numbers():
    seed_everything(123)
    first = (torch.rand(5), np.random.rand(3), random.random())
    seed_everything(123)
    second = (torch.rand(5), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    seed_everything(124)
    assert not torch.equal(torch.rand(5), first[0])


def test_data_root_honours_stad_data(monkeypatch, tmp_path):
    monkeypatch.setenv("STAD_DATA", str(tmp_path / "datasets"))
    assert data_root() == tmp_path / "datasets"
    monkeypatch.setenv("STAD_DATA", "~/somewhere")
    assert data_root() == Path.home() / "somewhere"


def test_data_root_without_stad_data(monkeypatch):
    monkeypatch.delenv("STAD_DATA", raising=False)
    checkout = Path(config.__file__).resolve().parents[1] / "data"
    if (checkout / "README.md").exists():
        assert data_root() == checkout
    else:
        assert data_root() == Path.home() / "stad_data"


# -- progress bars ------------------------------------------------------------------------
def run_headless_loop(monkeypatch, capsys, epochs=20, **options):
    """A training-like loop over a headless progress bar; returns (stdout, stderr)."""
    monkeypatch.setenv("STAD_HEADLESS", "1")
    bar = config.progress_bar(range(epochs), desc="training STFPM", **options)
    for epoch in bar:
        bar.set_postfix({"loss": f"{1 / (epoch + 1):.4f}"})
    bar.close()
    return capsys.readouterr()


def test_a_headless_progress_bar_writes_one_line_with_the_final_state(monkeypatch, capsys):
    captured = run_headless_loop(monkeypatch, capsys)
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "\r" not in captured.err
    assert lines[0].startswith("training STFPM: 100%")
    assert "20/20" in lines[0] and "loss=0.0500" in lines[0]


def test_an_unfinished_headless_bar_reports_where_it_stopped(monkeypatch, capsys):
    monkeypatch.setenv("STAD_HEADLESS", "1")
    with config.progress_bar(total=100, desc="archive") as bar:
        bar.update(30)
        bar.update(20)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("archive:  50%") and "50/100" in lines[0]


def test_a_disabled_headless_progress_bar_writes_nothing(monkeypatch, capsys):
    captured = run_headless_loop(monkeypatch, capsys, disable=True)
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize("value", ["", "0"])
def test_a_live_notebook_keeps_tqdm_autos_bar(monkeypatch, value):
    import tqdm.auto

    monkeypatch.setenv("STAD_HEADLESS", value)
    bar = config.progress_bar(range(2), disable=True)
    assert type(bar) is tqdm.auto.tqdm
