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

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import get_profile, pick_device
from .data import load_splits
from .methods import METHODS, Method
from .metrics import MetricsReport, evaluate
from .train import TrainConfig, TrainHistory

ENSEMBLES = ("fvv", "uninformed_students")  # methods whose ensemble size the profile sets

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


@dataclass
class RunConfig:
    """Everything that defines one run. ``None`` fields take the profile's value."""

    method: str
    data: str
    category: str
    out: str | None = None
    profile: str | None = None
    backbone: str | None = None
    image_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    device: str | None = None
    method_options: dict = field(default_factory=dict)
    figures: bool = True

    def resolved(self) -> RunConfig:
        """A copy with every ``None`` replaced by the profile's setting."""
        profile = get_profile(self.profile)
        values = asdict(self)
        if values["method"] in METHODS:  # settings for this method come before the profile's
            for settings in (
                profile.method_training.get(values["method"], {}),
                METHODS[values["method"]].training_defaults,
            ):
                for key, value in settings.items():
                    if key in values and values[key] is None:
                        values[key] = value
        for key in ("backbone", "image_size", "epochs", "batch_size", "lr", "seed"):
            if values[key] is None:
                values[key] = getattr(profile, key)
        # the profile's options for this method (e.g. smaller networks on a CPU), under the
        # user's; recorded here so that the report (and a sweep's resume) sees them
        options = {**profile.method_options.get(values["method"], {}), **values["method_options"]}
        if values["method"] in ENSEMBLES:  # the profile's ensemble size unless given
            options.setdefault("num_students", profile.num_students)
        values["method_options"] = options
        values["profile"] = profile.name
        if values["method"] not in METHODS:
            raise ValueError(
                f"Unknown method {values['method']!r}: choose one of {', '.join(sorted(METHODS))}."
            )
        return RunConfig(**values)

    def train_config(self, device: torch.device) -> TrainConfig:
        profile = get_profile(self.profile)
        defaults = METHODS[self.method].training_defaults
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            momentum=profile.momentum,
            weight_decay=defaults.get("weight_decay", profile.weight_decay),
            optimizer=defaults.get("optimizer", "sgd"),
            seed=self.seed,
            device=device.type,
            checkpoint_dir=str(Path(self.out) / "checkpoint") if self.out else None,
        )

    def build_method(self) -> Method:
        config = self.resolved()  # the profile's options for the method included
        return METHODS[config.method](
            backbone=config.backbone, seed=config.seed, **config.method_options
        )


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def predict_timed(method: Method, dataset) -> tuple[np.ndarray, np.ndarray, float]:
    """Anomaly maps, image scores and the mean seconds per image of ``predict``.

    Call it on a dataset whose samples are already decoded (cached), so that the time is
    the method's, not the image decoder's.
    """
    _synchronize(method.device)
    started = time.perf_counter()
    maps, scores = method.predict(dataset)
    _synchronize(method.device)
    seconds = time.perf_counter() - started
    return maps, scores, seconds / max(len(dataset), 1)


def flat_report(config: RunConfig, metrics: MetricsReport, method: Method, extra: dict) -> dict:
    """The report's flat keys (DESIGN.md §8) followed by the full configuration."""
    report = {
        "method": config.method,
        "category": config.category,
        **{k: _plain(v) for k, v in metrics.to_dict().items()},
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


def evaluate_method(
    method: Method, test_set, config: RunConfig, device: torch.device, history=None
) -> tuple[dict, MetricsReport, np.ndarray]:
    """Evaluate a trained method on ``test_set``: (flat report, metrics, anomaly maps)."""
    masks = test_set.masks()  # also decodes and caches the test images before timing
    maps, scores, seconds_per_image = predict_timed(method, test_set)
    metrics = evaluate(maps, masks, test_set.labels, scores)
    extra = {
        "train_seconds": history.seconds if history else None,
        "train_images_per_second": history.images_per_second if history else None,
        "predict_seconds_per_image": seconds_per_image,
        "device": device.type,
    }
    report = flat_report(config, metrics, method, extra)
    if history is not None:
        report["history"] = history.to_dict()
    return report, metrics, maps


@dataclass
class TrainedRun:
    """What :func:`train_and_evaluate` returns."""

    method: Method
    report: dict  # the flat report (DESIGN.md §8) with the configuration and history
    metrics: MetricsReport
    maps: np.ndarray  # the test set's anomaly maps (N, H, W)
    history: TrainHistory | None
    from_store: bool  # loaded from the store of trained models, not trained now


def train_and_evaluate(
    config: RunConfig, device: str | torch.device | None = None, store: bool = True, splits=None
) -> TrainedRun:
    """Configure, build, train and evaluate one method on one category: the one sequence
    the command line, the benchmarks and the chapters share.

    With ``store`` the run is looked up in the store of trained models
    (:mod:`stad_utils.store`) first: a run trained before with the same settings is loaded
    instead of trained again, and an interrupted one resumes from its checkpoint there.
    ``splits`` = (train, validation, test) datasets already loaded for this configuration.
    """
    from .store import StoreEntry

    started = time.perf_counter()
    config = config.resolved()
    device = device if isinstance(device, torch.device) else pick_device(device or config.device)
    train_set, val_set, test_set = splits or load_splits(
        config.data, config.category, config.image_size, config.seed
    )
    entry = StoreEntry(config, device) if store else None
    if entry is not None and entry.complete:
        method, report, maps, scores = entry.load(device)
        metrics = evaluate(maps, test_set.masks(), test_set.labels, scores)
        history = (
            TrainHistory(**_history_fields(report["history"])) if "history" in report else None
        )
        method.history = history
        return TrainedRun(method, {**report, "from_store": True}, metrics, maps, history, True)
    train_config = config.train_config(device)
    resumed_seconds = 0.0
    if entry is not None:
        entry.begin()
        train_config.checkpoint_dir = str(entry.checkpoint_dir)
        resumed_seconds = entry.resumed_seconds()  # spent before an interruption
    method = config.build_method()
    history = method.fit(train_set, val_set, train_config)
    report, metrics, maps = evaluate_method(method, test_set, config, device, history)
    # the whole run (data, training, statistics, evaluation), interrupted parts included
    report["run_seconds"] = time.perf_counter() - started + resumed_seconds
    report["resumed"] = resumed_seconds > 0
    if entry is not None:
        report["store_key"] = entry.key
        entry.save(method, report, maps, metrics.image_scores)
    return TrainedRun(method, {**report, "from_store": False}, metrics, maps, history, False)


def _history_fields(saved: dict) -> dict:
    """A saved ``TrainHistory.to_dict()`` without its derived keys."""
    return {k: v for k, v in saved.items() if k in TrainHistory.__dataclass_fields__}


def run(config: RunConfig, store: bool = True) -> dict:
    """Train (or load from the store), evaluate and (if ``config.out``) save one method on
    one category."""
    config = config.resolved()
    trained = train_and_evaluate(config, store=store)
    method, history, report = trained.method, trained.history, trained.report
    metrics, maps = trained.metrics, trained.maps
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        method.save(out / "model.pt")
        (out / "report.json").write_text(json.dumps(report, indent=2))
        if config.figures:
            _, _, test_set = load_splits(
                config.data, config.category, config.image_size, config.seed
            )
            save_figures(out / "figures", method, history, test_set, maps, metrics)
    return report


COMPARISON_COLUMNS = (
    ("image_auroc", "image AUROC", "{:.3f}"),
    ("pixel_auroc", "pixel AUROC", "{:.3f}"),
    ("au_pro", "AU-PRO", "{:.3f}"),
    ("dice", "Dice", "{:.3f}"),
    ("false_goods", "false goods", "{:.3g}"),
    ("false_bads", "false bads", "{:.3g}"),
    ("train_seconds", "training s", "{:.1f}"),
    ("parameters", "parameters", "{:,}"),
)


def comparison_table(reports: dict[str, dict]) -> str:
    """A Markdown table comparing runs (one row per name) on the same data and seed."""
    header = "| method | " + " | ".join(title for _, title, _ in COMPARISON_COLUMNS) + " |\n"
    header += "|---|" + "---:|" * len(COMPARISON_COLUMNS) + "\n"
    rows = ""
    for name, report in reports.items():
        cells = [
            "–" if report.get(key) is None else fmt.format(report[key])
            for key, _, fmt in COMPARISON_COLUMNS
        ]
        rows += f"| {name} | " + " | ".join(cells) + " |\n"
    return header + rows


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    category: str | None = None,
    device: str | None = None,
) -> dict:
    """Re-evaluate a saved run (optionally on another dataset folder or category)."""
    run_dir = Path(run_dir)
    saved = json.loads((run_dir / "report.json").read_text())
    config = RunConfig(**saved["config"])
    config.data = data or config.data
    config.category = category or config.category
    device_ = pick_device(device)
    method = Method.load(run_dir / "model.pt", device=device_)
    _, _, test_set = load_splits(config.data, config.category, config.image_size, config.seed)
    report, _, _ = evaluate_method(method, test_set, config, device_)
    report["train_seconds"] = saved["train_seconds"]
    report["train_images_per_second"] = saved["train_images_per_second"]
    return report


def save_figures(folder: Path, method, history, test_set, maps, metrics: MetricsReport) -> None:
    """The run's figures as PNG files (the same functions the chapters use)."""
    from .viz.style import pyplot_for_files

    plt = pyplot_for_files()
    from .viz.curves import plot_report_curves
    from .viz.grids import anomaly_grid
    from .viz.training import plot_loss_curve, plot_score_histogram

    folder.mkdir(parents=True, exist_ok=True)
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
    for name, figure in figures.items():
        figure.savefig(folder / name, bbox_inches="tight")
        plt.close(figure)


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
