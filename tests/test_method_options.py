"""Every constructor option of every method survives save → load (issue 13).

The options a method saves come from its constructor's signature (``methods.base``), so
each method is built here with EVERY option set to a value other than its default, saved,
loaded, and compared: options, and anomaly maps on the same images.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from stad_utils.files import load_torch
from stad_utils.methods import METHODS, Method
from stad_utils.methods.base import NOT_OPTIONS
from stad_utils.methods.uninformed_students import UninformedStudents

# Every option of every registered method, each different from its default; small sizes so
# that building and running them takes a moment on a CPU.
NON_DEFAULT = {
    "stfpm": {"backbone": "efficientnet_lite0", "layers": ("layer1", "layer2"), "seed": 7},
    "simple_student": {
        "backbone": "efficientnet_lite0",
        "layers": ("layer1", "layer2"),
        "inner": (8, 8, 16),
        "seed": 7,
    },
    "fvv": {
        "backbone": "efficientnet_lite0",
        "layers": ("layer2", "layer3"),
        "num_students": 2,
        "seed": 7,
        "scoring": "variance",
        "independent_order": True,
    },
    "uninformed_students": {
        "backbone": "efficientnet_lite0",
        "scales": (17, 33),
        "num_students": 2,
        "width": 0.125,
        "seed": 7,
        "teacher_steps": 3,
        "teacher_seed": 5,
        "teacher_dir": "somewhere/teachers",
        "teacher_images": "somewhere/photos",
        "crop_size": 16,
        "padding": "replicate",
        "use_scales": (33,),
    },
}


def constructor_defaults(method: str) -> dict:
    parameters = inspect.signature(METHODS[method].__init__).parameters
    return {name: p.default for name, p in parameters.items() if name not in ("self", *NOT_OPTIONS)}


def test_every_method_and_every_option_is_covered():
    """A new method or a new constructor argument must be added to NON_DEFAULT."""
    assert set(NON_DEFAULT) == set(METHODS)
    for method, options in NON_DEFAULT.items():
        defaults = constructor_defaults(method)
        assert set(options) == set(defaults), method
        assert [name for name in options if options[name] == defaults[name]] == [], method


def give_statistics(method: Method) -> None:
    """Uninformed Students' eq. 5 and eq. 8 statistics are measured in ``fit``; give them
    values so its maps are finite numbers without training."""
    if isinstance(method, UninformedStudents):
        generator = torch.Generator().manual_seed(0)
        for buffer in (method.descriptor_mean, method.descriptor_std, method.score_statistics):
            buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)


@pytest.mark.parametrize("method", sorted(NON_DEFAULT))
def test_save_and_load_keep_every_option(method, tmp_path):
    original = METHODS[method](**NON_DEFAULT[method], pretrained=False).eval()
    give_statistics(original)
    assert original.options == NON_DEFAULT[method]

    path = original.save(tmp_path / "model.pt")
    saved = load_torch(path, what="model file")  # weights only: plain data
    assert saved["options"] == NON_DEFAULT[method]
    loaded = Method.load(path)
    assert type(loaded) is METHODS[method]
    assert loaded.options == saved["options"]

    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    maps, scores = original.predict(images)
    loaded_maps, loaded_scores = loaded.predict(images)
    assert maps.shape == (2, 32, 32) and torch.isfinite(torch.from_numpy(maps)).all()
    assert (loaded_maps == maps).all() and (loaded_scores == scores).all()


def test_an_option_changed_after_construction_is_saved(tmp_path):
    """FVV's scoring is changeable after training; the saved file has the new value."""
    fvv = METHODS["fvv"](backbone="efficientnet_lite0", layers=("layer1",), pretrained=False)
    fvv.scoring = "error"
    loaded = Method.load(fvv.save(tmp_path / "fvv.pt"))
    assert loaded.scoring == "error" and loaded.options["num_students"] == 3


def test_a_subclass_records_its_own_arguments():
    """Only the outermost constructor records: Simple Student's ``inner`` is kept even though
    it builds on STFPM, and a subclass without a constructor records its parent's."""

    class Quiet(METHODS["stfpm"]):
        name = "quiet_test_method"  # not registered

    quiet = Quiet(backbone="efficientnet_lite0", layers=["layer1"], pretrained=False)
    assert quiet.options == {"backbone": "efficientnet_lite0", "layers": ("layer1",), "seed": 0}
    simple = METHODS["simple_student"](
        backbone="efficientnet_lite0", layers=["layer1"], inner=[4, 4, 8], pretrained=False
    )
    assert simple.options["inner"] == (4, 4, 8) and simple.options["layers"] == ("layer1",)
