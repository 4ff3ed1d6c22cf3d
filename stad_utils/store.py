"""A store of trained models: each (method, category, configuration) is trained once.

Chapters 5–8 train models that chapter 9's sweep would train again, and several chapters
train the same configuration. :func:`stad_utils.runner.train_and_evaluate` looks a run up
here first and trains only what is missing. An entry lives in
``<data root>/store/<method>/<category>/<key>/`` (so ``STAD_DATA`` on a Google Drive
folder keeps it across Colab sessions)::

    settings.json   everything the key was computed from (readable)
    checkpoint/     the training checkpoint: an interrupted run resumes from it
    model.pt        the trained method (``Method.load``)
    maps.npz        the test set's anomaly maps and image scores
    report.json     the run's report; written last, so its presence means "complete"

The key is a hash of every setting that changes the result, so the store never serves a
stale model: the fully resolved :class:`~stad_utils.runner.RunConfig` (method options with
their defaults filled in, profile, epochs, learning rate, momentum, weight decay,
optimizer, seed, image size, backbone), the training settings derived from it, the
device type, the dataset folder and a fingerprint of its files' contents, the versions
of stad_utils and torch, and a hash of the package's source code (a changed loss or model
invalidates every entry, even without a new version).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import data_root
from .files import write_atomically, write_json

STORE_FORMAT = 1  # bump when the layout of an entry changes
PACKAGE = Path(__file__).resolve().parent
# Folders whose code cannot change a trained model or its test maps.
_NOT_RESULT_CODE = ("viz", "exercises")
_CONFIG_NOT_KEYED = ("out", "figures", "device")  # where and how a run is written, not what
_TRAINING_NOT_KEYED = ("checkpoint_dir", "resume", "progress", "device", "stop_after_epochs")


def store_root() -> Path:
    """``<data root>/store``."""
    return data_root() / "store"


def _json_plain(value):
    """Tuples → lists and so on: the value as JSON gives it back."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def method_options(method_cls, options: dict, config) -> dict:
    """The constructor options of ``method_cls`` with every default filled in (so that
    ``{}`` and the defaults written out share one key). ``backbone`` and ``seed`` come from
    the configuration; ``pretrained`` only says whether to load weights."""
    signature = inspect.signature(method_cls.__init__)
    bound = signature.bind_partial(
        None, **{**options, "backbone": config.backbone, "seed": config.seed}
    )
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name in ("self", "pretrained", "backbone", "seed"):
        arguments.pop(name, None)
    return _json_plain(arguments)


_file_hashes: dict[tuple, str] = {}  # (path, size, mtime) → sha256, for this process


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _file_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _file_hashes[memo] = digest.hexdigest()
    return _file_hashes[memo]


def _tree_fingerprint(folder: Path, pattern: str = "*") -> str:
    """sha256 over the relative names and contents of the files under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{_file_sha256(path)}\0".encode())
    return digest.hexdigest()


def data_fingerprint(data: str | Path, category: str) -> str:
    """A fingerprint of the category's files (names and contents): regenerated or edited
    images give another key."""
    folder = Path(data).expanduser() / category
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No category folder {folder}: check the dataset root and the category name."
        )
    return _tree_fingerprint(folder)


def code_fingerprint() -> str:
    """A hash of the package's files that can change a result: its source, and the
    pre-trained teachers it ships (``stad_utils/pretrained``)."""
    digest = hashlib.sha256()
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pt")]):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in _NOT_RESULT_CODE:
            continue
        digest.update(f"{relative.as_posix()}\0{_file_sha256(path)}\0".encode())
    return digest.hexdigest()


def run_settings(config, device: torch.device) -> dict:
    """Everything the result of ``config`` (a resolved RunConfig) on ``device`` depends on."""
    from .methods import METHODS

    settings = {k: v for k, v in asdict(config).items() if k not in _CONFIG_NOT_KEYED}
    settings["method_options"] = method_options(
        METHODS[config.method], config.method_options, config
    )
    settings["data"] = str(Path(config.data).expanduser().resolve())
    settings["data_fingerprint"] = data_fingerprint(config.data, config.category)
    training = asdict(config.train_config(device))
    settings["training"] = {k: v for k, v in training.items() if k not in _TRAINING_NOT_KEYED}
    settings["device"] = device.type
    settings["versions"] = {"stad_utils": __version__, "torch": torch.__version__}
    settings["code"] = code_fingerprint()
    settings["store_format"] = STORE_FORMAT
    return _json_plain(settings)


def run_key(settings: dict) -> str:
    """The entry's name: 20 hex digits of the sha256 of the settings."""
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class StoreEntry:
    """One run's folder in the store."""

    def __init__(self, config, device: torch.device, root: str | Path | None = None):
        self.settings = run_settings(config, device)
        self.key = run_key(self.settings)
        base = Path(root) if root is not None else store_root()
        self.folder = base / config.method / config.category / self.key

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / "checkpoint"

    @property
    def complete(self) -> bool:
        """True when the entry holds a finished run made with exactly these settings."""
        try:
            recorded = json.loads((self.folder / "settings.json").read_text())
            json.loads((self.folder / "report.json").read_text())
        except (OSError, ValueError):  # missing, or cut short: not a finished run
            return False
        return (
            recorded == self.settings
            and (self.folder / "model.pt").exists()
            and (self.folder / "maps.npz").exists()
        )

    def begin(self) -> None:
        """Prepare the folder for training (keeping a checkpoint of the same settings)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.settings, indent=2, sort_keys=True)
        write_atomically(self.folder / "settings.json", lambda t: t.write_text(text))

    def save(self, method, report: dict, maps: np.ndarray, scores: np.ndarray) -> None:
        """Write the finished run; the report last, as the mark of completion."""
        method.save(self.folder / "model.pt")  # atomic, like every file the package writes
        write_atomically(self.folder / "maps.npz", lambda t: _save_arrays(t, maps, scores))
        write_json(self.folder / "report.json", report)  # strict JSON, atomic
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)  # the run is in model.pt

    def load(self, device: torch.device):
        """(method, report, maps, scores) of a complete entry."""
        from .methods import Method

        method = Method.load(self.folder / "model.pt", device=device)
        report = json.loads((self.folder / "report.json").read_text())
        with np.load(self.folder / "maps.npz") as saved:
            maps, scores = saved["maps"], saved["scores"]
        return method, report, maps, scores


def _save_arrays(path: Path, maps: np.ndarray, scores: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would add ".npz" to the name
        np.savez(handle, maps=maps, scores=scores)
