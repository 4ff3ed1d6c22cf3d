"""How a run's settings are decided: one merge (``RunConfig.create``), in one order.

user > the profile's exception for the method (``Profile.method_training``) > the method's
own (``Method.training_defaults``) > the profile's fields. The same merge serves the
notebooks (a ``Profile`` object), the command line and the sweep.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from stad_utils.__main__ import _setting_options, build_parser, main
from stad_utils.bench import BenchJob, Sweep, sweep_settings
from stad_utils.config import PROFILES, TRAINING_SETTINGS, get_profile
from stad_utils.errors import UsageError
from stad_utils.methods.stfpm import STFPM
from stad_utils.runner import RunConfig
from stad_utils.store import run_key, run_settings
from stad_utils.train import TrainConfig

CPU = torch.device("cpu")


def resolve(profile, method="stfpm", **user) -> RunConfig:
    return RunConfig.create(method, "data", "brick", profile, **user)


# -- the order of the layers ---------------------------------------------------------------
def test_weight_decay_given_in_each_layer_in_turn(monkeypatch):
    """Each layer, once it gives weight_decay, wins over every layer below it."""
    profile = PROFILES["quick"].with_overrides(weight_decay=0.001)
    assert resolve(profile).weight_decay == 0.001  # the profile's own field
    monkeypatch.setattr(STFPM, "training_defaults", {"weight_decay": 0.002})
    assert resolve(profile).weight_decay == 0.002  # the method's default beats it
    exception = profile.with_overrides(method_training={"stfpm": {"weight_decay": 0.003}})
    assert resolve(exception).weight_decay == 0.003  # the profile's per-method exception
    mine = resolve(exception, weight_decay=0.004)
    assert mine.weight_decay == 0.004  # the user's value beats them all
    assert mine.train_config(CPU).weight_decay == 0.004  # and is what training uses
    assert resolve(exception, weight_decay=0).weight_decay == 0  # 0 is a value, not "unset"


def test_each_training_setting_comes_from_the_first_layer_that_gives_it(monkeypatch):
    monkeypatch.setattr(STFPM, "training_defaults", {"optimizer": "adam", "lr": 0.01})
    profile = PROFILES["quick"].with_overrides(
        epochs=7, momentum=0.5, method_training={"stfpm": {"lr": 0.02, "batch_size": 3}}
    )
    config = resolve(profile, epochs=2)
    train = config.train_config(CPU)
    decided = {key: getattr(train, key) for key in TRAINING_SETTINGS}
    assert decided == {
        "epochs": 2,  # user
        "batch_size": 3,  # the profile's exception for stfpm
        "lr": 0.02,  # the exception beats the method's 0.01
        "momentum": 0.5,  # the profile's
        "weight_decay": 1e-4,  # the profile's (STFPM's, a Profile default)
        "optimizer": "adam",  # the method's
    }
    assert (train.seed, config.image_size, config.backbone) == (42, 128, "efficientnet_lite0")


def test_uninformed_students_in_the_quick_profile():
    config = RunConfig(method="uninformed_students", data="x", category="y", profile="quick")
    train = config.resolved().train_config(CPU)
    # epochs and lr: the quick profile's exception; optimizer and weight decay: the method's
    assert (train.epochs, train.lr, train.optimizer, train.weight_decay) == (7, 1e-3, "adam", 1e-5)
    assert (train.batch_size, train.momentum) == (8, 0.9)  # the profile's


def test_train_config_defaults_are_the_full_profiles_stfpm_settings():
    full, train = PROFILES["full"], TrainConfig()
    for key in (*TRAINING_SETTINGS, "seed"):
        assert getattr(train, key) == getattr(full, key), key
    assert (train.lr, train.momentum, train.weight_decay) == (0.4, 0.9, 1e-4)
    assert (train.epochs, train.batch_size, train.seed) == (100, 32, 42)


# -- unknown keys --------------------------------------------------------------------------
def test_an_unknown_key_in_a_profiles_method_training_is_named():
    profile = PROFILES["quick"].with_overrides(method_training={"stfpm": {"weight_dcay": 0}})
    with pytest.raises(UsageError) as error:
        resolve(profile)
    assert str(error.value) == (
        "profile 'quick', method_training['stfpm'] has no training setting 'weight_dcay': "
        "the valid ones are epochs, batch_size, lr, momentum, weight_decay, optimizer."
    )


def test_an_unknown_key_in_a_methods_training_defaults_is_named(monkeypatch):
    monkeypatch.setattr(STFPM, "training_defaults", {"nesterov": True})
    with pytest.raises(UsageError, match=r"STFPM.training_defaults has no training setting "):
        resolve("quick")


def test_an_unknown_user_setting_is_named():
    with pytest.raises(UsageError, match="RunConfig has no setting 'weight_dcay': its settings"):
        resolve("quick", weight_dcay=0)


def test_an_unknown_key_from_the_overrides_variable_is_named(monkeypatch):
    monkeypatch.setenv(
        "STAD_PROFILE_OVERRIDES", '{"method_training": {"fvv": {"learning_rate": 0.1}}}'
    )
    with pytest.raises(UsageError, match="method_training\\['fvv'\\] has no training setting"):
        resolve("full", method="fvv")


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("weight_decay", -1.0, "--weight-decay must be a number of at least 0 (got -1.0)."),
        ("momentum", 1.5, "--momentum must be a number from 0 to below 1 (got 1.5)."),
        ("optimizer", "rmsprop", "--optimizer must be one of sgd, adam (got 'rmsprop')."),
    ],
)
def test_new_settings_out_of_range_are_refused(setting, value, message):
    with pytest.raises(UsageError) as error:
        resolve("quick", **{setting: value}).validate()
    assert str(error.value) == message


# -- a Profile object carries through -------------------------------------------------------
def test_a_profile_object_from_with_overrides_reaches_training():
    profile = get_profile("quick").with_overrides(
        epochs=3, momentum=0.5, weight_decay=0.0, optimizer="adam", image_size=64, seed=7
    )
    config = RunConfig(method="stfpm", data="x", category="grass", profile=profile).resolved()
    train = config.train_config(CPU)
    assert (train.epochs, train.momentum, train.weight_decay, train.optimizer, train.seed) == (
        3,
        0.5,
        0.0,
        "adam",
        7,
    )
    assert (config.image_size, config.profile) == (64, "quick")  # recorded by name
    assert asdict(config)["profile"] == "quick"  # reports and store keys hold plain values


def test_a_chapters_epochs_reach_every_method():
    """A chapter's EPOCHS (``with_overrides``) beats the profile's per-method exceptions
    (quick: FVV 12, Uninformed Students 7); left out, each method keeps its own."""
    quick = get_profile("quick")
    assert resolve(quick, method="fvv").epochs == 12
    assert resolve(quick, method="stfpm").epochs == 20
    changed = quick.with_overrides(epochs=3)
    for method in ("fvv", "stfpm", "uninformed_students"):
        assert resolve(changed, method=method).epochs == 3
    assert resolve(changed, method="uninformed_students").lr == 1e-3  # the other settings stay
    assert quick.method_training["fvv"] == {"epochs": 12}  # the original is unchanged


def test_a_resolved_config_is_not_looked_up_again_by_its_profiles_name():
    """The object's method options stay its own: the named quick profile would add width."""
    profile = get_profile("quick").with_overrides(method_options={})
    config = resolve(profile, method="uninformed_students")
    assert config.method_options == {}
    assert config.resolved() is config and config.resolved().method_options == {}
    assert resolve("quick", method="uninformed_students").method_options["width"] == 0.25


def test_a_chapters_profile_object_and_the_sweep_share_a_store_key(mvtec_root):
    """Chapter 9 reuses the chapters' runs: same settings, same key."""
    chapter = get_profile("quick").with_overrides(category="alpha")
    made = RunConfig.create("stfpm", mvtec_root, "alpha", chapter, device="cpu")
    swept = Sweep(data=mvtec_root, out=mvtec_root / "bench", profile="quick").run_config(
        BenchJob("stfpm", "alpha", 42)
    )
    assert run_key(run_settings(made, CPU)) == run_key(run_settings(swept, CPU))


@pytest.mark.parametrize(
    "method, chapter_options",
    [
        ("stfpm", {}),
        ("fvv", {"num_students": 3}),  # chapter 7's NUM_STUDENTS
        ("simple_student", {"inner": [16, 16, 32]}),  # chapter 8's list(INNER)
        ("uninformed_students", {"scales": (17, 33, 65)}),  # chapter 5's SCALES
    ],
)
def test_the_other_categories_of_chapters_5_to_8_are_the_sweeps_runs(
    mvtec_root, method, chapter_options
):
    """Chapter 9 trains only what chapters 5–8 did not: a chapter's run on any category,
    with the options the chapter spells out at their defaults, has the sweep's key."""
    chapter = get_profile("quick").with_overrides(category="alpha")
    made = RunConfig.create(method, mvtec_root, "beta", chapter, method_options=chapter_options)
    swept = Sweep(data=mvtec_root, out=mvtec_root / "bench", profile="quick").run_config(
        BenchJob(method, "beta", 42)
    )
    assert run_key(run_settings(made, CPU)) == run_key(run_settings(swept, CPU))


def test_the_store_key_holds_the_new_settings(mvtec_root):
    base = RunConfig.create("stfpm", mvtec_root, "alpha", "quick")
    settings = run_settings(base, CPU)
    assert (settings["momentum"], settings["weight_decay"], settings["optimizer"]) == (
        0.9,
        1e-4,
        "sgd",
    )
    keys = {run_key(settings)}
    for change in ({"weight_decay": 0.0}, {"momentum": 0.8}, {"optimizer": "adam"}):
        other = RunConfig.create("stfpm", mvtec_root, "alpha", "quick", **change)
        keys.add(run_key(run_settings(other, CPU)))
    assert len(keys) == 4


# -- the sweep and the command line take the same settings ---------------------------------
def test_a_sweep_sets_lr_weight_decay_optimizer_and_momentum(tmp_path):
    sweep = Sweep(
        data=tmp_path,
        out=tmp_path / "bench",
        profile="quick",
        lr=0.05,
        weight_decay=0.0,
        optimizer="adam",
        momentum=0.8,
    )
    config = sweep.run_config(BenchJob("stfpm", "brick", 1))
    assert (config.lr, config.weight_decay, config.optimizer, config.momentum) == (
        0.05,
        0.0,
        "adam",
        0.8,
    )
    assert config.train_config(CPU).lr == 0.05
    with pytest.raises(ValueError, match="A sweep has no setting 'learning_rate': it takes"):
        Sweep(data=tmp_path, out=tmp_path, learning_rate=0.1)


def test_fit_and_bench_share_every_run_setting_of_runconfig():
    assert set(_setting_options()) == set(sweep_settings())
    assert {"lr", "momentum", "weight_decay", "optimizer", "epochs"} <= set(sweep_settings())
    argv = "--lr 0.1 --weight-decay 0 --momentum 0.5 --optimizer adam --device cpu".split()
    fit = build_parser().parse_args(
        ["fit", "--method", "stfpm", "--data", "d", "--category", "c", "--out", "o", *argv]
    )
    bench = build_parser().parse_args(["bench", "--out", "o", *argv])
    for args in (fit, bench):
        assert (args.lr, args.weight_decay, args.momentum, args.optimizer) == (0.1, 0, 0.5, "adam")


def test_fit_writes_the_weight_decay_given_on_the_command_line(mvtec_root, tmp_path, monkeypatch):
    monkeypatch.setenv("STAD_DATA", str(tmp_path / "stad_data"))  # an empty store
    out = tmp_path / "run"
    argv = ["fit", "--method", "stfpm", "--data", str(mvtec_root), "--category", "alpha"]
    argv += ["--out", str(out), "--profile", "quick", "--image-size", "32", "--epochs", "1"]
    argv += ["--batch-size", "4", "--device", "cpu", "--no-figures", "--weight-decay", "0.003"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["weight_decay"] == 0.003
    assert (report["config"]["optimizer"], report["config"]["momentum"]) == ("sgd", 0.9)


def test_bench_passes_the_lr_to_every_run(tmp_path, monkeypatch):
    seen = []

    def fake_run(config):
        seen.append((config.method, config.lr, config.weight_decay))
        return {"method": config.method, "category": config.category, "device": "cpu"}

    monkeypatch.setattr("stad_utils.runner.run", fake_run)
    (tmp_path / "alpha" / "train" / "good").mkdir(parents=True)
    argv = ["bench", "--data", str(tmp_path), "--out", str(tmp_path / "bench"), "--no-merge"]
    argv += ["--methods", "stfpm,fvv", "--profile", "quick", "--lr", "0.07"]
    argv += ["--weight-decay", "0"]
    assert main(argv) == 0
    assert sorted(seen) == [("fvv", 0.07, 0.0), ("stfpm", 0.07, 0.0)]
    record = json.loads((tmp_path / "bench" / "runs" / "stfpm__alpha__seed42.json").read_text())
    assert (record["config"]["lr"], record["config"]["weight_decay"]) == (0.07, 0.0)
