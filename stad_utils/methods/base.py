"""The interface every method shares: ``fit``, ``predict``, ``save``, ``load``.

A method file reads like its section of the paper: it builds its networks in
``__init__`` and defines ``loss(images)`` and ``anomaly_map(images)``. Everything else —
training, batching, devices, checkpoints — lives here and in :mod:`stad_utils.train`.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import CorruptFileError
from ..files import load_torch, write_atomically
from ..threads import use_idle_cores
from ..train import TrainConfig, TrainHistory, fit, make_loader

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name`` (command line, runner)."""
    METHODS[cls.name] = cls
    return cls


class Method(nn.Module):
    """Base class of the anomaly detectors.

    Subclasses set ``name`` and implement the two functions below. Every argument of a
    subclass's constructor (its defaults filled in, ``pretrained`` aside) is recorded in
    ``self.options`` before the constructor's body runs, so ``save`` stores each one and
    ``load`` rebuilds the same method; a constructor may keep an option in another form by
    passing it to ``Method.__init__`` (``layers=tuple(layers)``) or writing
    ``self.options[name]``. The methods to implement:

    * ``loss(images (B, 3, H, W)) -> scalar``: the training loss on good images;
    * ``anomaly_map(images (B, 3, H, W)) -> (B, H, W)``: per-pixel anomaly scores.
    """

    name = "method"
    # Training settings of the method's paper that differ from the profile's (STFPM's SGD),
    # keys of config.TRAINING_SETTINGS, e.g. {"optimizer": "adam", "lr": 1e-4}.
    # RunConfig.create applies them below the user's values and the profile's exception
    # for the method (Profile.method_training), above the profile's own fields.
    training_defaults: dict = {}

    def __init__(self, **normalized) -> None:
        """``normalized``: options in the form the method keeps them (e.g. a tuple given as a
        list); they replace the recorded arguments of the same name."""
        super().__init__()
        self.options = {**self.__dict__.get("options", {}), **normalized}
        self.history: TrainHistory | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_options(cls.__init__)

    # -- to implement ------------------------------------------------------------------
    def loss(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def image_score(self, maps: torch.Tensor) -> torch.Tensor:
        """Image-level score from anomaly maps ``(B, H, W) -> (B,)``: the maximum
        (thesis eq. 5.5)."""
        return maps.flatten(1).amax(dim=1)

    # -- shared ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def fit(self, train_set: Dataset, val_set: Dataset | None, config: TrainConfig) -> TrainHistory:
        """Train on good images (``train_set``), select the epoch on ``val_set``."""
        self.history = fit(self, train_set, val_set, config)
        return self.history

    def anomaly_map_with_parts(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The anomaly map ``(B, H, W)`` and the named ``(B, H, W)`` maps it is built from,
        in one pass. No parts by default; Uninformed Students gives each scale's e, v and
        eq. 8 score, which chapter 5 studies without predicting the test set again."""
        return self.anomaly_map(images), {}

    @torch.no_grad()
    def predict(self, data, batch_size: int = 16, parts: bool = False):
        """Anomaly maps ``(N, H, W)`` and image scores ``(N,)`` as float32 arrays; with
        ``parts=True`` also a third value, the parts of the maps by name
        (:meth:`anomaly_map_with_parts`), each ``(N, H, W)``.

        ``data`` is a dataset of dict samples, or a tensor of images ``(N, 3, H, W)``
        in ``[0, 1]``.
        """
        self.eval()
        use_idle_cores(self.device)
        if isinstance(data, torch.Tensor):
            batches = [{"image": chunk} for chunk in data.split(batch_size)]
        else:
            batches = make_loader(data, batch_size, shuffle=False)
        maps, scores, pieces = [], [], {}
        for batch in batches:
            images = batch["image"].to(self.device)
            if parts:
                amap, named = self.anomaly_map_with_parts(images)
                for name, value in named.items():
                    pieces.setdefault(name, []).append(value.float().cpu())
            else:
                amap = self.anomaly_map(images)
            amap = amap.float()
            maps.append(amap.cpu())
            scores.append(self.image_score(amap).cpu())
        maps, scores = torch.cat(maps).numpy(), torch.cat(scores).numpy()
        if not parts:
            return maps, scores
        return maps, scores, {name: torch.cat(value).numpy() for name, value in pieces.items()}

    def parameter_count(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def save(self, path: str | Path) -> Path:
        """Save options and weights (teacher included, so ``load`` needs no download).

        Atomically: an interrupted save leaves the previous file whole. Only plain data is
        saved (tensors, numbers, strings, lists, dicts), so ``load`` can refuse anything
        that is not weights."""
        saved = {"name": self.name, "options": self.options, "state": self.state_dict()}
        return write_atomically(path, lambda temporary: torch.save(saved, temporary))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Method:
        """Rebuild a saved method (of any registered kind when called on ``Method``)."""
        saved = load_torch(path, map_location=device, what="model file")
        if not isinstance(saved, dict) or not {"name", "options", "state"} <= set(saved):
            raise CorruptFileError(
                f"{path} is not a model saved by stad_utils (it lacks its name, options or "
                "weights). Give the model.pt that fit wrote."
            )
        if cls is Method and saved["name"] not in METHODS:
            raise ValueError(
                f"{path} holds a {saved['name']!r} method, which this version of stad_utils "
                f"does not know (it has: {', '.join(sorted(METHODS))}). Update the package."
            )
        method_cls = METHODS[saved["name"]] if cls is Method else cls
        method = method_cls(**saved["options"], pretrained=False)
        method.load_state_dict(saved["state"])
        return method.to(device).eval()


#: constructor arguments that are not options: ``pretrained`` only says whether to download
#: the teacher's weights (``load`` passes ``False``: the weights come from the file)
NOT_OPTIONS = ("pretrained",)


def _recording_options(init):
    """Wrap a method's ``__init__`` so that its arguments become ``self.options``.

    The names come from the constructor's signature (read once, here), so a new argument
    is saved and restored without being listed anywhere else. Only the outermost
    constructor records: a subclass's arguments are the ones ``load`` must pass back.
    """
    signature = inspect.signature(init)
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        raise TypeError(
            f"{init.__qualname__} takes *args: a method's options must have names, so that "
            "load can pass them back."
        )

    @functools.wraps(init)
    def init_recording_options(self, *args, **kwargs):
        if "options" not in self.__dict__:  # not yet recorded by a subclass's constructor
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            options = {}
            for name, value in list(bound.arguments.items())[1:]:  # [0] is self
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    options.update(value)
                elif name not in NOT_OPTIONS:
                    options[name] = value
            # set before nn.Module.__init__ runs, so the body may read its options
            self.__dict__["options"] = options
        init(self, *args, **kwargs)

    return init_recording_options
