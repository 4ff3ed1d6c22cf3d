"""The one training loop every method uses.

It owns what a method file should not: data loading, the optimizer, a progress bar,
the loss history, the divergence guard, model selection on the validation split,
checkpoints and resuming, mixed precision on CUDA, channels-last memory layout, and
seeding. A method provides ``loss(images)`` and ``anomaly_map(images)``; see
:class:`stad_utils.methods.base.Method`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .config import Profile, progress_bar, seed_everything
from .errors import RunFolderError
from .files import load_torch, write_atomically
from .threads import use_idle_cores


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the message says what to change."""


@dataclass
class TrainConfig:
    """How to train. The defaults are STFPM's (Wang et al. 2021; thesis §6.3), written
    once as :class:`~stad_utils.config.Profile`'s defaults."""

    epochs: int = Profile.epochs
    batch_size: int = Profile.batch_size
    lr: float = Profile.lr
    momentum: float = Profile.momentum  # SGD only
    weight_decay: float = Profile.weight_decay
    optimizer: str = Profile.optimizer  # one of OPTIMIZERS: "sgd" (STFPM), "adam" (US)
    seed: int = Profile.seed
    device: str = "cpu"
    checkpoint_dir: str | None = None  # where last.pt goes; None = no checkpoints
    resume: bool = True  # continue from checkpoint_dir/last.pt when it exists
    select_on_validation: bool = True  # keep the epoch with the lowest validation score
    amp: bool | None = None  # mixed precision; None = on CUDA only
    channels_last: bool = True  # about 1.5× faster on CPU (DESIGN.md §2)
    progress: bool = True
    stop_after_epochs: int | None = None  # for tests: simulate an interruption
    # What else defines the run and must match to resume it (the runner's data folder and
    # fingerprint, category, image size); plain values only, they go into the checkpoint.
    identity: dict = field(default_factory=dict)


@dataclass
class TrainHistory:
    """What happened during training, epoch by epoch."""

    loss: list[float] = field(default_factory=list)
    validation_score: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0  # training time of all sessions (a resumed run adds to it)
    images_seen: int = 0
    resumed_from_epoch: int | None = None  # epochs already done when this session began
    session_seconds: float = 0.0  # training time of this session alone

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "images_per_second": self.images_per_second}


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, generator=None) -> DataLoader:
    """A DataLoader of dict batches. No worker processes: our datasets are cached in
    memory, and workers would only add start-up time (and trouble on macOS/Windows)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _prepare(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


#: The optimizers ``TrainConfig.optimizer`` may name.
OPTIMIZERS = ("sgd", "adam")


def _make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}.")


def _run_identity(method, config: TrainConfig) -> dict:
    """What must match for a checkpoint to be resumed: the model, its options (backbone,
    ensemble size, ...), the settings that shape training and what the caller adds in
    ``config.identity`` (the data, category and image size). Not the number of epochs,
    which a resumed run may extend."""
    return {
        "model": type(method).__name__,
        "options": getattr(method, "options", {}),
        **{
            k: getattr(config, k)
            for k in ("batch_size", "lr", "momentum", "weight_decay", "optimizer", "seed", "amp")
        },
        **config.identity,
    }


def identity_differences(old: dict | None, new: dict) -> list[str]:
    """Human-readable ``key: old → new`` for every setting that differs."""
    old = old or {}
    return [
        f"{key}: {old.get(key)!r} → {new.get(key)!r}"
        for key in sorted(set(old) | set(new), key=str)
        if _plain(old.get(key)) != _plain(new.get(key))
    ]


def _plain(value):
    """Tuples and lists compare equal (a checkpoint may hold either)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _batch_loss(method, batch: dict, device: torch.device, config: TrainConfig):
    """(loss, number of samples) of one batch. Methods train on ``batch["image"]``;
    a model with its own kind of batch (e.g. triplets of patches) defines
    ``batch_loss(batch, device) -> (loss, count)``."""
    if hasattr(method, "batch_loss"):
        return method.batch_loss(batch, device)
    images = _prepare(batch["image"], device, config.channels_last)
    return method.loss(images), images.shape[0]


def _check_finite(loss: torch.Tensor, epoch: int, step: int, config: TrainConfig) -> None:
    if not torch.isfinite(loss):
        raise DivergenceError(
            f"Training diverged: the loss became {loss.item()} at epoch {epoch + 1}, step "
            f"{step + 1}. Lower the learning rate (now {config.lr}; try {config.lr / 4:g}), "
            "check the input images for NaN values"
            + (", or turn mixed precision off (amp=False)" if _use_amp(config) else "")
            + "."
        )


def _use_amp(config: TrainConfig) -> bool:
    """Mixed precision (float16 with a gradient scaler) is a CUDA feature here: on the CPU
    and on Apple MPS training stays in float32 whatever ``amp`` says."""
    on_cuda = torch.device(config.device).type == "cuda"
    return on_cuda and (config.amp is None or config.amp)


@torch.no_grad()
def validation_score(method, loader: DataLoader, config: TrainConfig) -> float:
    """Mean anomaly score over good validation images (lower is better).

    Only good images are used, so model selection never sees a test label.
    """
    method.eval()
    device = torch.device(config.device)
    # A method whose anomaly map needs statistics measured after training (Uninformed
    # Students, eq. 8) selects on another map during training.
    score_map = getattr(method, "selection_map", method.anomaly_map)
    total, count = 0.0, 0
    for batch in loader:
        maps = score_map(_prepare(batch["image"], device, config.channels_last))
        total += maps.float().mean(dim=(1, 2)).sum().item()
        count += maps.shape[0]
    return total / max(count, 1)


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write never leaves a truncated last.pt."""
    write_atomically(path, lambda temporary: torch.save(state, temporary))


def fit(method, train_set: Dataset, val_set: Dataset | None, config: TrainConfig) -> TrainHistory:
    """Train ``method`` on good images; return the history.

    With ``select_on_validation`` the method ends with the weights of the epoch whose
    mean validation anomaly score was lowest. With ``checkpoint_dir``, the state after
    every epoch is saved to ``last.pt`` and an interrupted run resumes from it to the
    same result (model, optimizer, random generators and history are all restored).
    """
    device = torch.device(config.device)
    use_idle_cores(device)
    seed_everything(config.seed)
    method.to(device)
    if config.channels_last:
        method.to(memory_format=torch.channels_last)
    parameters = [p for p in method.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(f"{type(method).__name__} has no trainable parameters.")
    optimizer = _make_optimizer(parameters, config)
    use_amp = _use_amp(config)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    shuffle_generator = torch.Generator().manual_seed(config.seed)
    train_loader = make_loader(train_set, config.batch_size, True, shuffle_generator)
    # Its own generator: iterating a DataLoader draws a seed from its generator, and from
    # the global one it has none, which would make validating change the training run.
    if val_set is not None and len(val_set) == 0:
        val_set = None  # nothing to select on: keep the last epoch rather than epoch 1
    val_loader = (
        make_loader(val_set, config.batch_size, False, torch.Generator())
        if val_set is not None
        else None
    )

    history, best_state, best_score, start_epoch = TrainHistory(), None, math.inf, 0
    checkpoint = Path(config.checkpoint_dir) / "last.pt" if config.checkpoint_dir else None
    identity = _run_identity(method, config)
    if checkpoint is not None and config.resume and checkpoint.exists():
        # On the CPU first: the random-generator states must stay CPU tensors;
        # load_state_dict copies the weights to the model's device.
        state = load_torch(checkpoint, map_location="cpu", what="checkpoint")
        differences = identity_differences(state.get("identity"), identity)
        if differences:
            raise RunFolderError(
                f"The checkpoint {checkpoint} belongs to a different run; what differs: "
                f"{'; '.join(differences)}. Write this run to another output folder, or "
                "replace the old one (fit --overwrite, or delete the checkpoint)."
            )
        if state["epoch"] + 1 > config.epochs:
            raise RunFolderError(
                f"The checkpoint {checkpoint} has already trained {state['epoch'] + 1} "
                f"epochs, more than the {config.epochs} asked for. Ask for at least "
                f"{state['epoch'] + 1} epochs to continue it, or replace it (fit --overwrite, "
                "or another output folder)."
            )
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        shuffle_generator.set_state(state["shuffle_generator"])
        torch.set_rng_state(state["torch_rng"])
        history = TrainHistory(**state["history"])
        best_state, best_score = state["best_state"], state["best_score"]
        start_epoch = state["epoch"] + 1
        history.resumed_from_epoch, history.session_seconds = start_epoch, 0.0
        # the thread count it was trained with: sums split over threads round differently
        use_idle_cores(device, threads=state.get("threads"))
        print(f"Resuming from {checkpoint} after epoch {start_epoch}.")

    bar = progress_bar(
        range(start_epoch, config.epochs),
        initial=start_epoch,
        total=config.epochs,
        desc=f"training {type(method).__name__}",
        disable=not config.progress,
    )
    for epoch in bar:
        method.train()
        started, epoch_loss, batches = time.perf_counter(), 0.0, 0
        for step, batch in enumerate(train_loader):
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss, count = _batch_loss(method, batch, device, config)
            _check_finite(loss, epoch, step, config)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            epoch_loss += loss.item()
            batches += 1
            history.images_seen += count
        epoch_seconds = time.perf_counter() - started
        history.seconds += epoch_seconds
        history.session_seconds += epoch_seconds
        history.loss.append(epoch_loss / max(batches, 1))
        postfix = {"loss": f"{history.loss[-1]:.4f}"}
        if val_loader is not None and config.select_on_validation:
            score = validation_score(method, val_loader, config)
            history.validation_score.append(score)
            postfix["val"] = f"{score:.4g}"
            if score < best_score:
                best_score, history.best_epoch = score, epoch
                best_state = copy.deepcopy(method.state_dict())
        bar.set_postfix(postfix)
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "epoch": epoch,
                    "identity": identity,
                    "method": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "shuffle_generator": shuffle_generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": asdict(history),
                    "best_state": best_state,
                    "best_score": best_score,
                    "threads": torch.get_num_threads(),
                },
            )
        if config.stop_after_epochs is not None and epoch + 1 >= config.stop_after_epochs:
            break
    bar.close()
    if best_state is not None:
        method.load_state_dict(best_state)
    method.eval()
    return history
