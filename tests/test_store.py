"""The store of trained models: one key per result, loaded instead of retrained, resumed
after an interruption to the same result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stad_utils.train
from stad_utils import store as store_module
from stad_utils.methods import METHODS
from stad_utils.runner import RunConfig, run, train_and_evaluate
from stad_utils.store import StoreEntry, method_options

CPU = torch.device("cpu")


@pytest.fixture
def data_dir(tmp_path, monkeypatch, mvtec_root):
    """STAD_DATA in a temporary folder, so the store starts empty."""
    monkeypatch.setenv("STAD_DATA", str(tmp_path / "stad_data"))
    return mvtec_root


def tiny(data, **changes) -> RunConfig:
    values = dict(
        method="stfpm",
        data=str(data),
        category="alpha",
        profile="quick",
        image_size=32,
        epochs=2,
        batch_size=4,
        seed=1,
        figures=False,
    )
    return RunConfig(**{**values, **changes})


def key_of(config: RunConfig, device=CPU) -> str:
    return StoreEntry(config.resolved(), device).key


@pytest.mark.parametrize(
    "change",
    [
        {"epochs": 3},
        {"lr": 0.1},
        {"seed": 2},
        {"image_size": 64},
        {"batch_size": 2},
        {"backbone": "resnet18"},
        {"category": "gamma"},
        {"method": "simple_student"},
        {"method_options": {"layers": ["layer1", "layer2"]}},
        {"profile": "full"},
    ],
)
def test_every_setting_that_changes_the_result_changes_the_key(data_dir, change):
    assert key_of(tiny(data_dir, **change)) != key_of(tiny(data_dir))


def test_where_and_how_a_run_is_written_do_not_change_the_key(data_dir, tmp_path):
    base = key_of(tiny(data_dir))
    assert key_of(tiny(data_dir, out=str(tmp_path / "x"), figures=True, device="cpu")) == base
    # the method's defaults written out are the same run as leaving them out
    defaults = {"layers": ["layer1", "layer2", "layer3"]}
    assert key_of(tiny(data_dir, method_options=defaults)) == base


def test_the_device_type_and_the_data_files_are_in_the_key(data_dir):
    config = tiny(data_dir).resolved()
    assert key_of(config, torch.device("cuda")) != key_of(config)
    before = key_of(config)
    image = next((data_dir / "alpha" / "train" / "good").glob("*.png"))
    image.write_bytes(image.read_bytes() + b"\0")  # one byte more in one image
    assert key_of(config) != before


def test_a_changed_package_source_changes_the_key(data_dir, monkeypatch):
    before = key_of(tiny(data_dir))
    monkeypatch.setattr(store_module, "code_fingerprint", lambda: "edited")
    assert key_of(tiny(data_dir)) != before


def test_method_options_fill_in_the_defaults():
    config = RunConfig(method="fvv", data="d", category="c", backbone="b", seed=3)
    options = method_options(METHODS["fvv"], {"num_students": 4}, config)
    assert options == {
        "layers": ["layer1", "layer2", "layer3"],
        "num_students": 4,
        "scoring": "error+variance",
        "independent_order": False,
    }


def test_a_missing_category_folder_is_a_clear_error(data_dir):
    with pytest.raises(FileNotFoundError, match="No category folder .*delta"):
        key_of(tiny(data_dir, category="delta"))


def test_a_stored_run_is_loaded_with_the_same_results(data_dir):
    first = train_and_evaluate(tiny(data_dir))
    second = train_and_evaluate(tiny(data_dir))
    assert (first.from_store, second.from_store) == (False, True)
    np.testing.assert_array_equal(second.maps, first.maps)
    for key in ("au_pro", "image_auroc", "pixel_auroc", "train_seconds", "run_seconds"):
        assert second.report[key] == first.report[key], key
    assert second.metrics.au_pro == pytest.approx(first.metrics.au_pro)
    assert second.history.loss == first.history.loss
    assert second.method.state_dict().keys() == first.method.state_dict().keys()
    # run() (command line, sweep) reads the same entry
    assert run(tiny(data_dir))["from_store"] is True
    # without the store, it trains again
    assert train_and_evaluate(tiny(data_dir), store=False).from_store is False


def test_an_entry_cut_short_is_trained_again(data_dir):
    first = train_and_evaluate(tiny(data_dir))
    entry = StoreEntry(tiny(data_dir).resolved(), CPU)
    (entry.folder / "report.json").write_text('{"au_pro": ')  # a crash mid-write
    assert not entry.complete
    again = train_and_evaluate(tiny(data_dir))
    assert again.from_store is False
    assert again.report["au_pro"] == first.report["au_pro"]


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_result_of_an_uninterrupted_one(
    data_dir, tmp_path, monkeypatch, capsys
):
    config = tiny(data_dir, epochs=3)
    real_save = stad_utils.train._save_checkpoint
    saves = []

    def save_then_stop(path, state):  # the process dies right after epoch 2's checkpoint
        real_save(path, state)
        saves.append(state["epoch"])
        if state["epoch"] == 1:
            raise Interrupted

    monkeypatch.setattr(stad_utils.train, "_save_checkpoint", save_then_stop)
    with pytest.raises(Interrupted):
        train_and_evaluate(config)
    monkeypatch.setattr(stad_utils.train, "_save_checkpoint", real_save)
    entry = StoreEntry(config.resolved(), CPU)
    assert (entry.checkpoint_dir / "last.pt").exists() and not entry.complete

    resumed = train_and_evaluate(config)
    assert saves == [0, 1]  # then epoch 3 only: the first two were not trained again
    assert "Resuming" in capsys.readouterr().out
    assert resumed.report["resumed"] is True
    assert resumed.report["run_seconds"] >= resumed.report["train_seconds"]
    assert len(resumed.history.loss) == 3

    monkeypatch.setenv("STAD_DATA", str(tmp_path / "another_store"))
    uninterrupted = train_and_evaluate(config)
    assert uninterrupted.report["resumed"] is False
    assert resumed.history.loss == uninterrupted.history.loss
    np.testing.assert_array_equal(resumed.maps, uninterrupted.maps)
    for key in ("au_pro", "image_auroc", "pixel_auroc"):
        assert resumed.report[key] == uninterrupted.report[key], key


def test_the_store_entry_records_its_settings(data_dir):
    train_and_evaluate(tiny(data_dir))
    entry = StoreEntry(tiny(data_dir).resolved(), CPU)
    assert entry.complete
    assert entry.folder.parent.parent.parent == store_module.store_root()
    assert entry.settings["epochs"] == 2
    assert entry.settings["data_fingerprint"]
    assert not entry.checkpoint_dir.exists()  # the finished run lives in model.pt


@pytest.mark.parametrize(
    ("method", "chapter_options"),
    [
        ("uninformed_students", {"scales": (17, 33, 65)}),  # chapter 5
        ("stfpm", {}),  # chapters 6, 7, 8
        ("fvv", {"num_students": 3}),  # chapters 7, 8
        ("simple_student", {"inner": [16, 16, 32]}),  # chapters 7, 8
    ],
)
def test_the_sweep_finds_the_runs_the_chapters_trained(data_dir, method, chapter_options):
    from stad_utils.bench import BenchJob, Sweep

    chapter = RunConfig(
        method=method,
        data=str(data_dir),
        category="alpha",
        profile="quick",
        seed=42,
        device="cpu",
        method_options=chapter_options,
    )
    sweep = Sweep(data=data_dir, out=data_dir / "bench", profile="quick", keep_models=True)
    swept = sweep.run_config(BenchJob(method, "alpha", 42))
    assert key_of(swept) == key_of(chapter)
