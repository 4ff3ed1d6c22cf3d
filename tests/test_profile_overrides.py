"""STAD_PROFILE_OVERRIDES: the rehearsal and expert knob that changes a profile's fields."""

import pytest
import torch

from stad_utils.config import PROFILES, describe, get_profile
from stad_utils.runner import RunConfig

ENV = "STAD_PROFILE_OVERRIDES"


def test_unset_or_empty_changes_nothing(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert get_profile("full") is PROFILES["full"]
    monkeypatch.setenv(ENV, "  ")
    assert get_profile("full") is PROFILES["full"]
    assert PROFILES["full"].overrides == ()


def test_fields_change_and_the_profile_keeps_its_name_and_paths(monkeypatch):
    monkeypatch.setenv(ENV, '{"image_size": 64, "epochs": 1, "lr": 1}')
    full = get_profile("full")
    assert (full.name, full.dataset, full.backbone) == ("full", "mvtec", "resnet18")
    assert (full.image_size, full.epochs, full.lr) == (64, 1, 1)
    assert full.overrides == ("epochs", "image_size", "lr")
    assert PROFILES["full"].image_size == 256  # the table itself is untouched


def test_per_method_settings_are_merged_not_replaced(monkeypatch):
    monkeypatch.setenv(
        ENV,
        '{"method_options": {"uninformed_students": {"teacher_steps": 1}, "fvv": {"x": 2}},'
        ' "method_training": {"uninformed_students": {"epochs": 2}}}',
    )
    quick = get_profile("quick")
    assert quick.method_options["uninformed_students"] == {
        "width": 0.25,
        "teacher_steps": 1,
        "crop_size": 24,
    }
    assert quick.method_options["fvv"] == {"x": 2}
    assert quick.method_training["uninformed_students"] == {"epochs": 2, "lr": 1e-3}
    # the run configuration (command line, chapters, sweep) sees them
    config = RunConfig(method="uninformed_students", data="", category="brick", profile="quick")
    resolved = config.resolved()
    assert resolved.epochs == 2 and resolved.method_options["teacher_steps"] == 1


def test_describe_names_the_changed_fields(monkeypatch):
    monkeypatch.setenv(ENV, '{"image_size": 64}')
    line = describe(get_profile("full"), torch.device("cpu"))
    assert line.startswith("Profile: full | dataset: mvtec/carpet | backbone: resnet18 | ")
    assert "image size: 64" in line
    assert line.endswith(f"| changed by {ENV}: image_size")


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"image_size": 64', "is not valid JSON"),
        ("[64]", "must be a JSON object"),
        ('{"imagesize": 64}', "cannot change 'imagesize': it may change dataset, category"),
        ('{"name": "quick"}', "cannot change 'name'"),
        ('{"image_size": "64"}', "'image_size' must be an integer (like 256); got '64'"),
        ('{"epochs": true}', "'epochs' must be an integer"),
        ('{"lr": "fast"}', "'lr' must be a number"),
        ('{"method_options": {"uninformed_students": 1}}', "'method_options' is per method"),
    ],
)
def test_bad_overrides_fail_clearly(monkeypatch, text, message):
    monkeypatch.setenv(ENV, text)
    with pytest.raises(ValueError, match=ENV) as info:
        get_profile("full")
    assert message in str(info.value)


def test_a_float_field_accepts_an_integer(monkeypatch):
    monkeypatch.setenv(ENV, '{"lr": 1}')
    assert get_profile("quick").lr == 1


def test_a_profile_wide_training_setting_reaches_every_method(monkeypatch):
    """As a chapter's EPOCHS does (with_overrides): {"epochs": 1} is one epoch for every
    method, whatever the profile's exceptions (quick: FVV 12, Uninformed Students 7)."""
    monkeypatch.setenv(ENV, '{"epochs": 1}')
    for method in ("fvv", "stfpm", "uninformed_students"):
        config = RunConfig(method=method, data="", category="brick", profile="quick")
        assert config.resolved().epochs == 1, method
    us = RunConfig(method="uninformed_students", data="", category="brick", profile="quick")
    assert us.resolved().lr == 1e-3  # the exception's other settings stay
    # an exception given with it still wins for its method
    monkeypatch.setenv(ENV, '{"epochs": 1, "method_training": {"fvv": {"epochs": 2}}}')
    fvv = RunConfig(method="fvv", data="", category="brick", profile="quick")
    assert fvv.resolved().epochs == 2
