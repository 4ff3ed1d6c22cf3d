"""One experiment, end to end: train a method on a category, evaluate it, write it down.

The command line (``python -m stad_utils fit``), the benchmarks and the chapters'
comparison tables all go through :func:`run`, so a number printed anywhere can be
reproduced from the command line with the same data and seed.

An output folder holds::

    DIR/report.json      flat metrics + timings + the full configuration
    DIR/model.pt         the trained method (``Method.load``)
    DIR/checkpoint/      the training checkpoint without the store (``train_and_evaluate``
                         keeps it in the store entry); an interrupted run resumes from it
    DIR/figures/*.png    loss curve, ROC/PRO curves, score histogram, example maps
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import TRAINING_SETTINGS, Profile, get_profile, pick_device
from .data import load_splits
from .errors import RunFolderError, StadError, UsageError
from .files import read_json, write_atomically, write_json
from .methods import METHODS, Method
from .metrics import THRESHOLD_FREE_KEYS, MetricsReport, evaluate
from .tables import METRIC_COLUMNS, Column, markdown_table, metric_columns
from .threads import use_idle_cores
from .train import OPTIMIZERS, TrainConfig, TrainHistory, identity_differences

IMAGE_SIZES = (32, 1024)  # the accepted --image-size range (pixels)
# What `fit --overwrite` may replace in an output folder: the tool's own files only.
OWN_FILES = (
    "model.pt",
    "report.json",
    "checkpoint/last.pt",
    *(f"figures/{name}" for name in ("loss.png", "curves.png", "scores.png", "examples.png")),
)

REPORT_KEYS = (
    "method",
    "category",
    *MetricsReport.KEYS,
    "train_seconds",
    "train_images_per_second",
    "predict_seconds_per_image",
    "parameters",
    "profile",
    "device",
    "seed",
)


#: The settings the layers below the user's decide (RunConfig fields; None = not given).
DECIDED_SETTINGS = ("backbone", "image_size", *TRAINING_SETTINGS, "seed")


@dataclass
class RunConfig:
    """Everything that defines one run. ``None`` fields are decided by :meth:`create`.

    ``profile`` is a profile's name, or a :class:`~stad_utils.config.Profile` object
    (e.g. one changed with ``with_overrides`` in a notebook); once resolved it is the name.
    """

    method: str
    data: str
    category: str
    out: str | None = None
    profile: str | Profile | None = None
    backbone: str | None = None
    image_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None
    seed: int | None = None
    device: str | None = None
    method_options: dict = field(default_factory=dict)
    figures: bool = True

    @classmethod
    def create(
        cls, method: str, data, category: str, profile: str | Profile | None = None, **user
    ) -> RunConfig:
        """The resolved configuration: every setting decided once, by the first layer that
        gives it (:func:`setting_layers`): the user's value (``user``, any field) > the
        profile's exception for this method (``Profile.method_training``) > the method's
        own (``Method.training_defaults``) > the profile's. ``profile`` is a name (``None``
        = ``STAD_PROFILE`` or auto) or a :class:`Profile` object, used as it is."""
        unknown = sorted(set(user) - {f.name for f in fields(cls)})
        if unknown:
            raise UsageError(
                f"RunConfig has no setting {', '.join(map(repr, unknown))}: its settings are "
                f"{', '.join(f.name for f in fields(cls))}."
            )
        if method not in METHODS:
            raise ValueError(
                f"Unknown method {method!r}: choose one of {', '.join(sorted(METHODS))}."
            )
        chosen = profile if isinstance(profile, Profile) else get_profile(profile)
        values = {"method": method, "data": data, "category": category, **user}
        layers = [settings for _, settings in setting_layers(method, chosen)]
        for key in DECIDED_SETTINGS:
            if values.get(key) is None:
                values[key] = next(layer[key] for layer in layers if layer.get(key) is not None)
        # the profile's options for this method (e.g. smaller networks on a CPU), under the
        # user's; recorded here so that the report (and a sweep's resume) sees them
        values["method_options"] = {
            **chosen.method_options.get(method, {}),
            **(values.get("method_options") or {}),
        }
        values["profile"] = chosen.name
        # paths are stored absolute, so a report still finds its data from another folder
        for key in ("data", "out"):
            if values.get(key) is not None:
                values[key] = os.path.abspath(os.path.expanduser(values[key]))
        config = cls(**values)
        config._resolved = True  # not a field: resolving it again changes nothing
        return config

    def resolved(self) -> RunConfig:
        """This configuration with every ``None`` decided (:meth:`create`). A resolved one
        is returned as it is: its profile (perhaps an object) is not looked up again."""
        if getattr(self, "_resolved", False):
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["method_options"] = dict(values["method_options"])
        return RunConfig.create(**values)

    def validate(self) -> None:
        """Refuse settings that cannot give a meaningful run, before any work is done
        (call it on the resolved configuration). Raises :class:`UsageError`."""
        low, high = IMAGE_SIZES
        checks = (
            ("--epochs", self.epochs, _is_int(self.epochs) and self.epochs >= 1, "at least 1"),
            (
                "--batch-size",
                self.batch_size,
                _is_int(self.batch_size) and self.batch_size >= 1,
                "at least 1",
            ),
            (
                "--image-size",
                self.image_size,
                _is_int(self.image_size) and low <= self.image_size <= high,
                f"between {low} and {high} pixels",
            ),
            (
                "--seed",
                self.seed,
                _is_int(self.seed) and 0 <= self.seed < 2**32,
                "an integer from 0 to 2**32 - 1",
            ),
            ("--lr", self.lr, _is_number(self.lr) and self.lr > 0, "a positive number"),
            (
                "--momentum",
                self.momentum,
                _is_number(self.momentum) and 0 <= self.momentum < 1,
                "a number from 0 to below 1",
            ),
            (
                "--weight-decay",
                self.weight_decay,
                _is_number(self.weight_decay) and self.weight_decay >= 0,
                "a number of at least 0",
            ),
            (
                "--optimizer",
                self.optimizer,
                self.optimizer in OPTIMIZERS,
                f"one of {', '.join(OPTIMIZERS)}",
            ),
        )
        problems = [
            f"{flag} must be {rule} (got {value!r})" for flag, value, ok, rule in checks if not ok
        ]
        if problems:
            raise UsageError("; ".join(problems) + ".")
        check_method_options(self.method, self.method_options)

    def train_config(self, device: torch.device) -> TrainConfig:
        """The training settings, copied from the resolved configuration."""
        config = self.resolved()
        return TrainConfig(
            **{key: getattr(config, key) for key in (*TRAINING_SETTINGS, "seed")},
            device=device.type,
            checkpoint_dir=str(Path(config.out) / "checkpoint") if config.out else None,
        )

    def build_method(self) -> Method:
        config = self.resolved()  # the profile's options for the method included
        try:
            return METHODS[config.method](
                backbone=config.backbone, seed=config.seed, **config.method_options
            )
        except TypeError as error:  # e.g. a list where a number belongs
            raise UsageError(
                f"{config.method} refused the method options {config.method_options}: "
                f"{error}. Its options are: {', '.join(method_option_names(config.method))}."
            ) from error


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def setting_layers(method: str, profile: Profile) -> list[tuple[str, dict]]:
    """Where a run's settings come from when the user leaves them out, first layer first:
    ``(name, settings)``. Each setting is taken from the first layer that gives it.

    1. the profile's exception for this method (``profile.method_training[method]``),
    2. the method's own (``Method.training_defaults``, e.g. Uninformed Students' Adam),
    3. the profile's own fields (STFPM's training settings unless the profile differs).

    The first two may set only :data:`~stad_utils.config.TRAINING_SETTINGS`; another key
    (a typo would otherwise be ignored) raises :class:`UsageError` naming it."""
    layers = [
        (
            f"profile {profile.name!r}, method_training[{method!r}]",
            profile.method_training.get(method, {}),
        ),
        (f"{METHODS[method].__name__}.training_defaults", METHODS[method].training_defaults),
    ]
    for name, settings in layers:
        unknown = [key for key in settings if key not in TRAINING_SETTINGS]
        if unknown:
            raise UsageError(
                f"{name} has no training setting {', '.join(map(repr, unknown))}: the valid "
                f"ones are {', '.join(TRAINING_SETTINGS)}."
            )
    profile_wide = {key: getattr(profile, key) for key in DECIDED_SETTINGS}
    return [*layers, (f"profile {profile.name!r}", profile_wide)]


_SET_ELSEWHERE = {"self", "backbone", "seed", "pretrained"}  # given by --backbone, --seed


def method_option_names(method: str) -> list[str]:
    """The options ``--method-options`` may set for ``method`` (its constructor's)."""
    parameters = inspect.signature(METHODS[method].__init__).parameters
    return [name for name in parameters if name not in _SET_ELSEWHERE]


def _type_matches(value, default) -> bool:
    """Whether an option's value has the kind of its default (JSON gives lists for
    tuples and ints for whole floats)."""
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple)
    return True


def check_method_options(method: str, options: dict) -> None:
    """Refuse options the method's constructor does not take, or of the wrong kind."""
    parameters = inspect.signature(METHODS[method].__init__).parameters
    valid = method_option_names(method)
    reserved = sorted(set(options) & {"backbone", "seed"})
    if reserved:
        raise UsageError(
            f"Set {', '.join(reserved)} with --{'/--'.join(reserved)}, not in --method-options."
        )
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise UsageError(
            f"{method} has no option {', '.join(map(repr, unknown))}. Its options are: "
            f"{', '.join(valid)}."
        )
    for key, value in options.items():
        default = parameters[key].default
        if not _type_matches(value, default):
            raise UsageError(
                f"The {method} option {key!r} must be like its default {default!r} "
                f"({type(default).__name__}), not {value!r} ({type(value).__name__})."
            )


def data_fingerprint(data: str | Path, category: str) -> str:
    """A short hash of the category's file list (relative names and sizes): a changed,
    added or removed image gives another fingerprint, so a run folder is never resumed
    on other data. Reading sizes, not contents, keeps it instant."""
    folder = Path(data) / category
    digest = hashlib.sha256()
    for parent, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = Path(parent) / name
            digest.update(
                f"{path.relative_to(folder).as_posix()}\t{path.stat().st_size}\n".encode()
            )
    return digest.hexdigest()[:16]


def run_identity(config: RunConfig) -> dict:
    """Every setting of a resolved configuration that changes the result, and the data it
    trains on; an output folder holds one run, identified by this (epochs aside)."""
    return {
        "method": config.method,
        "data": config.data,
        "data_fingerprint": data_fingerprint(config.data, config.category),
        "category": config.category,
        "image_size": config.image_size,
        "backbone": config.backbone,
        "method_options": config.method_options,
        **{key: getattr(config, key) for key in TRAINING_SETTINGS if key != "epochs"},
        "seed": config.seed,
        "profile": config.profile,
    }


def check_out_folder(out: Path, identity: dict, epochs: int, overwrite: bool) -> None:
    """Refuse to reuse ``out`` for a different run; with ``overwrite``, start afresh in it
    (the old run's files are replaced once the new run is saved, see
    :func:`remove_stale_files`; other files stay). The same run with more epochs may
    continue."""
    if overwrite:  # the old checkpoint must not be resumed; the rest is replaced at the end
        (out / "checkpoint" / "last.pt").unlink(missing_ok=True)
        return
    report = out / "report.json"
    if not report.exists():
        return  # a checkpoint alone is compared by the training loop
    saved = read_json(report, "run report")
    old = saved.get("run_identity") or {}
    # a setting an older report does not record (momentum, weight decay, optimizer) could
    # not be changed then: its run used the same value, so it is not a difference
    differences = identity_differences(old, {k: v for k, v in identity.items() if k in old})
    if not old:  # a report written before run identities: compare what it records
        config = saved.get("config", {})
        differences = [
            f"{key}: {config.get(key)!r} → {identity[key]!r}"
            for key in ("method", "category", "image_size", "backbone", "seed")
            if key in config and config.get(key) != identity[key]
        ]
    saved_epochs = saved.get("config", {}).get("epochs")
    if isinstance(saved_epochs, int) and saved_epochs > epochs:
        differences.append(f"epochs: {saved_epochs} → {epochs} (fewer)")
    if differences:
        raise RunFolderError(
            f"The output folder {out} holds another run; what differs: "
            f"{'; '.join(differences)}. Choose another --out, or add --overwrite to replace "
            "that run's model, report, figures and checkpoint (other files stay)."
        )


def remove_stale_files(out: Path, written: list[Path]) -> None:
    """After ``fit --overwrite``: remove the old run's own files that the new run did not
    rewrite (e.g. figures of a run with metrics, when the new one has none)."""
    kept = {path.resolve() for path in written}
    for name in OWN_FILES:
        if (out / name).resolve() not in kept:
            (out / name).unlink(missing_ok=True)


def test_set_problem(test_set) -> str | None:
    """Why the test set cannot be scored, or ``None``. Decodes every test image and mask,
    so a corrupt file or a mask of the wrong size is found before training, not after."""
    try:
        masks = test_set.masks()
    except (OSError, ValueError) as error:
        return f"the test set cannot be read: {error}"
    labels = np.asarray(test_set.labels)
    if labels.size == 0:
        return "the test set is empty"
    if labels.min() == labels.max():
        only = "defective" if labels[0] else "good"
        return (
            f"the test set holds only {only} images ({labels.size}); image AUROC, pixel "
            "AUROC and AU-PRO need good and defective images"
        )
    if not masks.any():
        return (
            "no ground-truth mask of the test set marks a defective pixel; pixel AUROC and "
            "AU-PRO need masks of the defects"
        )
    return None


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def predict_timed(
    method: Method, dataset, parts: bool = False
) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Anomaly maps, image scores, the mean seconds per image of ``predict`` and, with
    ``parts``, the maps' parts (:meth:`Method.anomaly_map_with_parts`; else ``{}``).

    Call it on a dataset whose samples are already decoded (cached), so that the time is
    the method's, not the image decoder's.
    """
    use_idle_cores(method.device)  # its CPU sample (0.1 s) is not the method's time
    _synchronize(method.device)
    started = time.perf_counter()
    if parts:
        maps, scores, named = method.predict(dataset, parts=True)
    else:
        (maps, scores), named = method.predict(dataset), {}
    _synchronize(method.device)
    seconds = time.perf_counter() - started
    return maps, scores, seconds / max(len(dataset), 1), named


def flat_report(
    config: RunConfig, metrics: MetricsReport | None, method: Method, extra: dict
) -> dict:
    """The report's flat keys (DESIGN.md §8) followed by the full configuration. Without
    ``metrics`` (a test set that cannot be scored) the metric keys are ``None``."""
    values = metrics.to_dict() if metrics is not None else dict.fromkeys(MetricsReport.KEYS)
    report = {
        "method": config.method,
        "category": config.category,
        **{k: _plain(v) for k, v in values.items()},
        **extra,
        "parameters": method.parameter_count(),
        "profile": config.profile,
        "seed": config.seed,
    }
    report = {key: report[key] for key in REPORT_KEYS}
    report["config"] = asdict(config)
    report["versions"] = {
        "stad_utils": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    return report


def _plain(value):
    """numpy scalars → Python numbers, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def evaluate_with_parts(
    method: Method,
    test_set,
    config: RunConfig,
    device: torch.device,
    history=None,
    val_set=None,
    threshold_rule: str = "image_f1_oracle",
    false_alarm_rate: float = 0.05,
    parts: bool = False,
) -> tuple[dict, MetricsReport, np.ndarray, dict]:
    """Evaluate a trained method on ``test_set``: (flat report, metrics, anomaly maps,
    with ``parts`` the maps' parts by name (:meth:`Method.anomaly_map_with_parts`), else
    ``{}``).

    With ``val_set`` (good validation images) the label-free threshold rules are added to
    the oracles (:mod:`stad_utils.thresholds`); ``threshold_rule`` names the one behind
    the headline ``threshold``, ``dice`` and false counts. Every rule is recorded in
    ``report["thresholds"]`` with its source."""
    test_set.masks()  # decodes and caches the test images before timing
    maps, scores, seconds_per_image, named = predict_timed(method, test_set, parts)
    metrics = score(method, maps, scores, test_set, val_set, threshold_rule, false_alarm_rate)
    extra = {
        "train_seconds": history.seconds if history else None,
        "train_images_per_second": history.images_per_second if history else None,
        "predict_seconds_per_image": seconds_per_image,
        "device": device.type,
    }
    report = {**flat_report(config, metrics, method, extra), **threshold_fields(metrics)}
    if history is not None:
        report["history"] = history.to_dict()
    return report, metrics, maps, named


def evaluate_method(*args, **kwargs) -> tuple[dict, MetricsReport, np.ndarray]:
    """:func:`evaluate_with_parts` (same arguments) without the parts: (flat report,
    metrics, anomaly maps)."""
    report, metrics, maps, _ = evaluate_with_parts(*args, **kwargs)
    return report, metrics, maps


def score(
    method: Method,
    maps,
    scores,
    test_set,
    val_set=None,
    threshold_rule: str = "image_f1_oracle",
    false_alarm_rate: float = 0.05,
) -> MetricsReport:
    """The metrics of a test set's anomaly ``maps`` (N, H, W) and image ``scores`` (N,),
    with the label-free thresholds fitted on ``val_set``'s good images (predicted here)."""
    val_maps = val_scores = None
    if val_set is not None and len(val_set) > 0:
        val_maps, val_scores = method.predict(val_set)
    return evaluate(
        maps,
        test_set.masks(),
        test_set.labels,
        scores,
        validation_maps=val_maps,
        validation_scores=val_scores,
        threshold_rule=threshold_rule,
        false_alarm_rate=false_alarm_rate,
    )


def threshold_fields(metrics: MetricsReport) -> dict:
    """A report's record of its thresholds: the headline rule and every rule's numbers."""
    return {
        "threshold_rule": metrics.threshold_rule,
        "thresholds": {
            name: {key: _plain(value) for key, value in rule.items()}
            for name, rule in metrics.thresholds.items()
        },
    }


@dataclass
class TrainedRun:
    """What :func:`train_and_evaluate` returns."""

    method: Method
    report: dict  # the flat report (DESIGN.md §8) with the configuration and history
    metrics: MetricsReport | None  # None when the test set cannot be scored
    maps: np.ndarray | None  # the test set's anomaly maps (N, H, W)
    history: TrainHistory | None
    from_store: bool  # loaded from the store of trained models, not trained now
    # with train_and_evaluate(parts=True), the test maps' parts by name
    # (Method.anomaly_map_with_parts) of a run trained now; a run loaded from the store has
    # none (predict them again with method.predict(test_set, parts=True))
    parts: dict = field(default_factory=dict)


def train_and_evaluate(
    config: RunConfig,
    device: str | torch.device | None = None,
    store: bool = True,
    splits=None,
    *,
    threshold_rule: str = "image_f1_oracle",
    false_alarm_rate: float = 0.05,
    checkpoint_dir: str | Path | None = None,
    parts: bool = False,
) -> TrainedRun:
    """Configure, build, train and evaluate one method on one category: the one sequence
    the command line, the benchmarks and the chapters share.

    The settings are validated first (:meth:`RunConfig.validate`). With ``store`` the run
    is looked up in the store of trained models (:mod:`stad_utils.store`): a run trained
    before with the same settings is loaded instead of trained again, and an interrupted
    one resumes from its checkpoint (in the store, or in ``checkpoint_dir`` if given).
    ``splits`` = (train, validation, test) datasets already loaded for this configuration.
    A test set that cannot be scored (:func:`test_set_problem`) still gives a trained
    model, and a report whose metrics are ``None`` with ``metrics_missing_reason``.
    Thresholds: every rule is recorded (``report["thresholds"]``); ``threshold_rule``
    names the headline one, ``false_alarm_rate`` tunes the label-free one. With ``parts``
    a run trained now keeps its test maps' parts (:meth:`Method.anomaly_map_with_parts`)
    in ``TrainedRun.parts``; a run loaded from the store has none.
    """
    from .store import StoreEntry

    started = time.perf_counter()
    config = config.resolved()
    config.validate()
    if not isinstance(device, torch.device):
        device = pick_device(device or config.device, verbose="once")
    train_set, val_set, test_set = splits or load_splits(
        config.data, config.category, config.image_size, config.seed
    )
    entry = StoreEntry(config, device) if store else None
    if entry is not None and entry.complete:
        method, report, maps, scores = entry.load(device)
        history = (
            TrainHistory(**_history_fields(report["history"])) if "history" in report else None
        )
        method.history = history
        metrics = score(method, maps, scores, test_set, val_set, threshold_rule, false_alarm_rate)
        report = {**report, **_metric_fields(metrics), **threshold_fields(metrics)}
        return TrainedRun(method, {**report, "from_store": True}, metrics, maps, history, True)
    problem = test_set_problem(test_set)
    if problem:
        print(
            f"warning: {problem}. The model is trained; its report has no metrics.",
            file=sys.stderr,
        )
    identity = run_identity(config)
    train_config = replace(
        config.train_config(device),
        identity={k: identity[k] for k in ("data", "data_fingerprint", "category", "image_size")},
    )
    resumed_seconds = 0.0
    if entry is not None:
        entry.begin()
        train_config.checkpoint_dir = str(entry.checkpoint_dir)
    if checkpoint_dir is not None:  # the command line keeps it in OUT/checkpoint
        train_config.checkpoint_dir = str(checkpoint_dir)
    if train_config.checkpoint_dir:
        resumed_seconds = checkpoint_seconds(Path(train_config.checkpoint_dir) / "last.pt")
    method = config.build_method()
    history = method.fit(train_set, val_set, train_config)
    if problem:
        extra = {
            "train_seconds": history.seconds,
            "train_images_per_second": history.images_per_second,
            "predict_seconds_per_image": None,
            "device": device.type,
        }
        report = flat_report(config, None, method, extra)
        report["metrics_missing_reason"] = problem
        report["history"] = history.to_dict()
        metrics = maps = None
        named = {}
    else:
        report, metrics, maps, named = evaluate_with_parts(
            method,
            test_set,
            config,
            device,
            history,
            val_set,
            threshold_rule,
            false_alarm_rate,
            parts=parts,
        )
    report["resumed_from_epoch"] = history.resumed_from_epoch
    report["run_identity"] = identity
    # the whole run (data, training, statistics, evaluation), interrupted parts included
    report["run_seconds"] = time.perf_counter() - started + resumed_seconds
    report["resumed"] = history.resumed_from_epoch is not None
    if entry is not None and metrics is not None:
        report["store_key"] = entry.key
        entry.save(method, report, maps, metrics.image_scores)
    return TrainedRun(method, {**report, "from_store": False}, metrics, maps, history, False, named)


def _history_fields(saved: dict) -> dict:
    """A saved ``TrainHistory.to_dict()`` without its derived keys."""
    return {k: v for k, v in saved.items() if k in TrainHistory.__dataclass_fields__}


def _metric_fields(metrics: MetricsReport) -> dict:
    return {key: _plain(value) for key, value in metrics.to_dict().items()}


def checkpoint_seconds(path: Path) -> float:
    """Training seconds already spent by an interrupted run (0 without a checkpoint)."""
    if not path.exists():
        return 0.0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return float(state["history"]["seconds"])
    except Exception:  # an unreadable checkpoint: fit says what is wrong with it
        return 0.0


def run(
    config: RunConfig,
    overwrite: bool = False,
    threshold_rule: str = "image_f1_oracle",
    false_alarm_rate: float = 0.05,
    store: bool = True,
) -> dict:
    """Train (or load from the store), evaluate and (if ``config.out``) save one method on
    one category.

    Everything is checked before training: the settings, the method options, the output
    folder (it holds this run or nothing; ``overwrite`` replaces another run's files) and
    the whole test set. The training checkpoint lives in ``OUT/checkpoint``, so the same
    command resumes an interrupted run."""
    config = config.resolved()
    config.validate()
    out = Path(config.out) if config.out else None
    if out is not None:
        check_out_folder(out, run_identity(config), config.epochs, overwrite)
    trained = train_and_evaluate(
        config,
        store=store,
        threshold_rule=threshold_rule,
        false_alarm_rate=false_alarm_rate,
        checkpoint_dir=out / "checkpoint" if out is not None else None,
    )
    method, history, report = trained.method, trained.history, trained.report
    metrics, maps = trained.metrics, trained.maps
    if config.out:
        out = Path(config.out)
        written = [method.save(out / "model.pt"), out / "checkpoint" / "last.pt"]
        if config.figures:
            _, _, test_set = load_splits(
                config.data, config.category, config.image_size, config.seed
            )
            written += save_figures(out / "figures", method, history, test_set, maps, metrics)
        written.append(write_json(out / "report.json", report))  # last: the run is complete
        if overwrite:
            remove_stale_files(out, written)
    return report


#: the columns of :func:`comparison_table`: the oracle's threshold-dependent numbers
#: (thesis eq. 5.6, reads the test labels) beside the label-free rule's
COMPARISON_COLUMNS = (
    *metric_columns(*THRESHOLD_FREE_KEYS),
    replace(METRIC_COLUMNS["dice"], title="Dice (oracle t)"),
    replace(METRIC_COLUMNS["false_goods"], title="false goods (oracle)"),
    replace(METRIC_COLUMNS["false_bads"], title="false bads (oracle)"),
    *metric_columns("label_free_dice", "label_free_false_goods", "label_free_false_bads"),
    *metric_columns("train_seconds", "parameters"),
)


def label_free_numbers(report: dict, rule: str = "validation_quantile") -> dict:
    """``label_free_dice``, ``label_free_false_goods``, ``label_free_false_bads`` of a
    report: the numbers at the threshold fitted on good validation images only (``None``
    when the report has no such rule, e.g. a run without validation images)."""
    found = (report.get("thresholds") or {}).get(rule) or {}
    return {f"label_free_{key}": found.get(key) for key in ("dice", "false_goods", "false_bads")}


def comparison_table(reports: dict[str, dict]) -> str:
    """A Markdown table comparing runs (one row per name) on the same data and seed, with
    the oracle threshold's Dice and false counts beside the label-free threshold's."""
    rows = [
        {"method": name, **report, **label_free_numbers(report)} for name, report in reports.items()
    ]
    return markdown_table(rows, [Column("method", align="left"), *COMPARISON_COLUMNS])


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    category: str | None = None,
    device: str | None = None,
    threshold_rule: str = "image_f1_oracle",
    false_alarm_rate: float = 0.05,
) -> dict:
    """Re-evaluate a saved run (optionally on another dataset folder or category), with
    the label-free thresholds fitted on that category's good validation images."""
    run_dir = Path(run_dir)
    for name in ("report.json", "model.pt"):
        if not (run_dir / name).is_file():
            raise StadError(
                f"{run_dir} has no {name}: give --run the output folder of a finished "
                "`fit` (its --out)."
            )
    saved = read_json(run_dir / "report.json", "run report")
    config = RunConfig(**saved["config"])
    config.data = os.path.abspath(data) if data else config.data
    config.category = category or config.category
    device_ = pick_device(device)
    method = Method.load(run_dir / "model.pt", device=device_)
    _, val_set, test_set = load_splits(config.data, config.category, config.image_size, config.seed)
    report, _, _ = evaluate_method(
        method, test_set, config, device_, None, val_set, threshold_rule, false_alarm_rate
    )
    report["train_seconds"] = saved.get("train_seconds")
    report["train_images_per_second"] = saved.get("train_images_per_second")
    return report


def save_figures(
    folder: Path, method, history, test_set, maps, metrics: MetricsReport | None
) -> list[Path]:
    """The run's figures as PNG files (the same functions the chapters use), each written
    atomically. Without ``metrics`` (a test set that cannot be scored) only the loss."""
    from .viz.style import pyplot_for_files

    plt = pyplot_for_files()
    from .viz.curves import plot_report_curves
    from .viz.grids import anomaly_grid
    from .viz.training import plot_loss_curve, plot_score_histogram

    folder.mkdir(parents=True, exist_ok=True)
    if metrics is None:
        return [_save_figure(plt, plot_loss_curve(history), folder / "loss.png")]
    labels = np.asarray(test_set.labels)
    examples = _examples(test_set.defect_types)
    figures = {
        "loss.png": plot_loss_curve(history),
        "curves.png": plot_report_curves(metrics),
        "scores.png": plot_score_histogram(metrics.image_scores, labels, metrics.threshold),
        "examples.png": anomaly_grid(
            [test_set[i]["image"] for i in examples],
            [test_set[i]["mask"] for i in examples],
            maps[examples],
            titles=[test_set.defect_types[i] for i in examples],
            threshold=metrics.threshold,
        ),
    }
    return [_save_figure(plt, figure, folder / name) for name, figure in figures.items()]


def _save_figure(plt, figure, path: Path) -> Path:
    write_atomically(
        path, lambda temporary: figure.savefig(temporary, format="png", bbox_inches="tight")
    )
    plt.close(figure)
    return path


def _examples(defect_types: list[str]) -> list[int]:
    """The first image of every defect type (good first)."""
    first = {}
    for index, kind in enumerate(defect_types):
        first.setdefault(kind, index)
    return (
        [first["good"], *(i for k, i in first.items() if k != "good")]
        if "good" in first
        else list(first.values())
    )
