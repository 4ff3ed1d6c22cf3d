"""The shared training loop (``stad_utils.train.fit``): loss history, repeatability, model
selection on the validation split, the divergence guard, checkpoints and resuming.

Most tests use a tiny method defined here (a frozen random conv as "teacher", a small
conv net with batch norm and dropout as "student") on 12 random 32×32 images, so a whole
run takes a fraction of a second. Dropout and batch norm make the results depend on the
random generators and on the shuffling, which is what resuming must restore.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from memory_data import GoodImages
from torch import nn

from stad_utils.methods import STFPM, Method
from stad_utils.train import (
    DivergenceError,
    TrainConfig,
    TrainHistory,
    fit,
    make_loader,
    validation_score,
)

SIZE = 32
N_TRAIN = 12


def TinyImages(n: int = N_TRAIN, seed: int = 0, size: int = SIZE) -> GoodImages:
    """``n`` random images as dict samples."""
    return GoodImages(n=n, seed=seed, size=size)


class TinyMethod(Method):
    """A student (conv, batch norm, dropout, conv) regressing a frozen random conv."""

    name = "tiny_test_method"  # not registered: METHODS stays as the package defines it

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.teacher = nn.Conv2d(3, 8, 3, padding=1)
            self.student = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.Dropout(0.2),
                nn.Conv2d(8, 8, 1),
            )
        self.teacher.requires_grad_(False)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return (self.teacher(images) - self.student(images)).pow(2).mean()

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        return (self.teacher(images) - self.student(images)).pow(2).mean(dim=1)


class NaNAfter(TinyMethod):
    """Returns NaN from the ``bad_call``-th call of ``loss`` on (counted from 1)."""

    def __init__(self, bad_call: int) -> None:
        super().__init__()
        self.bad_call, self.calls = bad_call, 0

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = super().loss(images)
        return loss * float("nan") if self.calls >= self.bad_call else loss


class Parabola(Method):
    """One scalar weight ``w``: the loss pulls it to 5, the anomaly map is ``(w − 2)²``.

    Momentum SGD carries ``w`` past 2 on its way to 5, so the best validation epoch lies
    strictly inside the run and the selected ``w`` can be checked by hand.
    """

    name = "parabola_test_method"

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return (self.w - 5.0) ** 2 + 0.0 * images.mean()

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        return ((self.w - 2.0) ** 2).expand(images.shape[0], *images.shape[-2:])


class FrozenOnly(Method):
    name = "frozen_test_method"

    def __init__(self) -> None:
        super().__init__()
        self.teacher = nn.Conv2d(3, 4, 3).requires_grad_(False)


def config(**overrides) -> TrainConfig:
    settings = {"epochs": 4, "batch_size": 4, "lr": 0.05, "seed": 3, "progress": False}
    return TrainConfig(**{**settings, **overrides})


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    different = [k for k in state_a if not torch.equal(state_a[k], state_b[k])]
    assert not different, f"tensors differ: {different}"


def weights_differ(a: nn.Module, b: nn.Module) -> bool:
    state_a, state_b = a.state_dict(), b.state_dict()
    return any(not torch.equal(state_a[k], state_b[k]) for k in state_a)


# ----------------------------------------------------------------------------------------
# History
# ----------------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_records_history():
    method = TinyMethod()
    untrained = TinyMethod()
    history = method.fit(TinyImages(), None, config(epochs=6))
    assert isinstance(history, TrainHistory)
    assert method.history is history
    assert len(history.loss) == 6
    assert all(math.isfinite(x) for x in history.loss)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.images_seen == 6 * N_TRAIN
    assert history.seconds > 0 and history.images_per_second > 0
    assert history.images_per_second == pytest.approx(history.images_seen / history.seconds)
    assert history.validation_score == [] and history.best_epoch is None
    assert weights_differ(method, untrained)
    assert not method.training  # fit leaves the method in eval mode
    recorded = history.to_dict()
    assert recorded["loss"] == history.loss
    assert recorded["images_per_second"] == history.images_per_second


def test_images_seen_counts_a_partial_last_batch():
    history = fit(TinyMethod(), TinyImages(n=10), None, config(epochs=3, batch_size=4))
    assert len(history.loss) == 3
    assert history.images_seen == 30


def test_stfpm_training_lowers_the_loss():
    torch.manual_seed(0)
    method = STFPM("resnet18", pretrained=False, seed=0, layers=("layer1", "layer2"))
    history = method.fit(TinyImages(n=8), None, config(epochs=5, lr=0.4))
    assert len(history.loss) == 5
    assert history.loss[-1] < history.loss[0]
    assert history.images_seen == 5 * 8
    assert not method.teacher.training and not method.student.training


# ----------------------------------------------------------------------------------------
# Repeatability
# ----------------------------------------------------------------------------------------


def test_same_seed_gives_identical_runs():
    first, second = TinyMethod(), TinyMethod()
    history_1 = first.fit(TinyImages(), TinyImages(n=4, seed=1), config())
    history_2 = second.fit(TinyImages(), TinyImages(n=4, seed=1), config())
    assert history_1.loss == history_2.loss
    assert history_1.validation_score == history_2.validation_score
    assert_same_weights(first, second)


def test_different_seed_gives_a_different_run():
    first, second = TinyMethod(), TinyMethod()
    history_1 = first.fit(TinyImages(), None, config(seed=3))
    history_2 = second.fit(TinyImages(), None, config(seed=4))
    assert history_1.loss != history_2.loss
    assert weights_differ(first, second)


# ----------------------------------------------------------------------------------------
# Model selection on the validation split
# ----------------------------------------------------------------------------------------


def test_model_selection_keeps_the_best_validation_epoch_by_hand():
    settings = config(epochs=10, batch_size=4, lr=0.01, weight_decay=0.0)
    # The trajectory of w without selection: w after every epoch.
    trajectory = []
    free = Parabola()
    for epochs in range(1, 11):
        free = Parabola()
        fit(free, TinyImages(), None, config(**{**vars(settings), "epochs": epochs}))
        trajectory.append(free.w.item())
    scores = [(w - 2.0) ** 2 for w in trajectory]
    best = int(np.argmin(scores))
    assert 0 < best < 9, trajectory  # the test is only meaningful with an inner optimum

    method = Parabola()
    history = method.fit(TinyImages(), TinyImages(n=4, seed=1), settings)
    assert history.validation_score == pytest.approx(scores, rel=1e-6)
    assert history.best_epoch == best
    assert method.w.item() == pytest.approx(trajectory[best], rel=1e-6)
    assert method.w.item() != pytest.approx(trajectory[-1], rel=1e-3)


def test_model_selection_restores_best_epoch_weights():
    validation = TinyImages(n=4, seed=1)
    settings = config(epochs=6, lr=0.2)  # this lr overshoots: the best epoch is an early one
    method = TinyMethod()
    history = method.fit(TinyImages(), validation, settings)
    assert len(history.validation_score) == 6
    best = int(np.argmin(history.validation_score))
    assert history.best_epoch == best
    assert best < 5, history.validation_score  # meaningful only if the last epoch is worse
    loader = make_loader(validation, settings.batch_size, shuffle=False)
    recomputed = validation_score(method, loader, settings)
    assert recomputed == pytest.approx(min(history.validation_score), rel=1e-6)
    assert recomputed != pytest.approx(history.validation_score[-1], rel=1e-3)
    # the same run stopped after the best epoch, without selection, has the same weights
    shorter = TinyMethod()
    fit(shorter, TinyImages(), None, config(epochs=best + 1, lr=0.2, select_on_validation=False))
    assert_same_weights(method, shorter)


def test_validating_does_not_change_the_training_run():
    # Dropout draws from the global generator; validation must not draw from it too.
    without = TinyMethod()
    history_without = without.fit(TinyImages(), None, config(epochs=3))
    with_validation = TinyMethod()
    history_with = with_validation.fit(
        TinyImages(), TinyImages(n=4, seed=1), config(epochs=3, select_on_validation=False)
    )
    assert history_with.loss == history_without.loss
    assert_same_weights(with_validation, without)
    selected = TinyMethod()
    history_selected = selected.fit(TinyImages(), TinyImages(n=4, seed=1), config(epochs=3))
    assert history_selected.loss == history_without.loss


def test_without_selection_the_last_epoch_is_kept():
    settings = config(epochs=6, lr=0.01, weight_decay=0.0, select_on_validation=False)
    method = Parabola()
    history = method.fit(TinyImages(), TinyImages(n=4, seed=1), settings)
    assert history.validation_score == [] and history.best_epoch is None
    longest = Parabola()
    fit(longest, TinyImages(), None, settings)
    assert method.w.item() == longest.w.item()


def test_validation_score_is_mean_anomaly_score():
    method = Parabola()
    with torch.no_grad():
        method.w.fill_(5.0)  # (5 − 2)² = 9 at every pixel
    loader = make_loader(TinyImages(n=5), batch_size=2, shuffle=False)
    assert validation_score(method, loader, config()) == pytest.approx(9.0)
    assert not method.training


# ----------------------------------------------------------------------------------------
# Divergence guard
# ----------------------------------------------------------------------------------------


def test_nan_loss_raises_divergence_error_naming_the_epoch():
    # 12 images, batches of 4: 3 steps per epoch, so call 8 is epoch 3, step 2.
    with pytest.raises(DivergenceError) as caught:
        fit(NaNAfter(bad_call=8), TinyImages(), None, config(epochs=5, lr=0.05))
    message = str(caught.value)
    assert "the loss became nan at epoch 3, step 2" in message
    assert "Lower the learning rate (now 0.05; try 0.0125)" in message
    assert "mixed precision" not in message  # AMP is off on the CPU
    assert isinstance(caught.value, RuntimeError)


def test_huge_learning_rate_raises_divergence_error():
    with pytest.raises(DivergenceError, match=r"at epoch \d+, step \d+\. Lower the learning rate"):
        fit(TinyMethod(), TinyImages(), None, config(epochs=20, lr=1e6))


# ----------------------------------------------------------------------------------------
# Checkpoints and resuming
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("select", [False, True], ids=["last-epoch", "select-on-validation"])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, capsys, select):
    validation = TinyImages(n=4, seed=1)
    settings = {"epochs": 4, "select_on_validation": select}

    uninterrupted = TinyMethod()
    history_a = uninterrupted.fit(TinyImages(), validation, config(**settings))

    folder = tmp_path / "checkpoints"
    interrupted = TinyMethod()
    history_b = interrupted.fit(
        TinyImages(),
        validation,
        config(**settings, checkpoint_dir=str(folder), stop_after_epochs=2),
    )
    assert len(history_b.loss) == 2
    assert history_b.loss == history_a.loss[:2]
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]  # atomic: no .tmp left
    saved = torch.load(folder / "last.pt", weights_only=False)
    assert saved["epoch"] == 1
    assert saved["history"]["loss"] == history_a.loss[:2]
    capsys.readouterr()

    resumed = TinyMethod()
    history_c = resumed.fit(
        TinyImages(), validation, config(**settings, checkpoint_dir=str(folder))
    )
    assert f"Resuming from {folder / 'last.pt'} after epoch 2." in capsys.readouterr().out
    assert history_c.loss == history_a.loss
    assert history_c.validation_score == history_a.validation_score
    assert history_c.best_epoch == history_a.best_epoch
    assert history_c.images_seen == history_a.images_seen == 4 * N_TRAIN
    assert_same_weights(resumed, uninterrupted)
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]
    assert torch.load(folder / "last.pt", weights_only=False)["epoch"] == 3


def test_a_resumed_run_uses_the_thread_count_it_was_trained_with(tmp_path, monkeypatch):
    """Sums split over threads round differently, so a resumed training takes the count
    saved in its checkpoint, whatever the machine's load is now."""
    from stad_utils import threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_default_threads", 2)
    monkeypatch.setattr(threads, "_last_decision", None)
    folder = tmp_path / "checkpoints"
    try:
        monkeypatch.setattr(threads, "idle_cores", lambda: 1.9)  # an idle machine: 2
        TinyMethod().fit(
            TinyImages(), None, config(epochs=3, checkpoint_dir=str(folder), stop_after_epochs=1)
        )
        assert torch.load(folder / "last.pt", weights_only=False)["threads"] == 2
        monkeypatch.setattr(threads, "_last_decision", None)
        monkeypatch.setattr(threads, "idle_cores", lambda: 1.0)  # now a busy one: 1
        TinyMethod().fit(TinyImages(), None, config(epochs=3, checkpoint_dir=str(folder)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_resume_false_ignores_an_existing_checkpoint(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    reference = TinyMethod()
    history_a = reference.fit(TinyImages(), None, config(epochs=3))
    fit(TinyMethod(), TinyImages(), None, config(epochs=3, checkpoint_dir=str(folder)))
    assert (folder / "last.pt").exists()
    capsys.readouterr()

    fresh = TinyMethod()
    history = fresh.fit(
        TinyImages(), None, config(epochs=3, checkpoint_dir=str(folder), resume=False)
    )
    assert "Resuming" not in capsys.readouterr().out
    assert len(history.loss) == 3 and history.loss == history_a.loss
    assert history.images_seen == 3 * N_TRAIN
    assert_same_weights(fresh, reference)


def test_finished_checkpoint_resumes_to_no_more_training(tmp_path):
    folder = tmp_path / "checkpoints"
    first = TinyMethod()
    history_a = first.fit(TinyImages(), None, config(epochs=2, checkpoint_dir=str(folder)))
    again = TinyMethod()
    history_b = again.fit(TinyImages(), None, config(epochs=2, checkpoint_dir=str(folder)))
    assert history_b.loss == history_a.loss
    assert history_b.images_seen == history_a.images_seen
    assert_same_weights(again, first)


# ----------------------------------------------------------------------------------------
# Misuse
# ----------------------------------------------------------------------------------------


def test_method_without_trainable_parameters_is_refused():
    with pytest.raises(ValueError, match="FrozenOnly has no trainable parameters"):
        fit(FrozenOnly(), TinyImages(), None, config())


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    folder = str(tmp_path / "ckpt")
    fit(TinyMethod(), TinyImages(), None, config(epochs=1, checkpoint_dir=folder))
    with pytest.raises(ValueError, match="belongs to a different run"):
        fit(TinyMethod(), TinyImages(), None, config(epochs=2, lr=0.123, checkpoint_dir=folder))


def test_an_empty_validation_set_keeps_the_last_epoch():
    method = TinyMethod()
    history = method.fit(TinyImages(), TinyImages(n=0), config(epochs=3))
    assert history.validation_score == [] and history.best_epoch is None


def test_amp_is_a_cuda_feature():
    from stad_utils.train import _use_amp

    assert not _use_amp(TrainConfig(device="cpu", amp=True))
    assert _use_amp(TrainConfig(device="cuda")) and not _use_amp(
        TrainConfig(device="cuda", amp=False)
    )


def test_a_resumed_run_says_so_and_times_this_session_apart(tmp_path):
    folder = str(tmp_path / "ckpt")
    first = fit(TinyMethod(), TinyImages(), None, config(epochs=2, checkpoint_dir=folder))
    assert first.resumed_from_epoch is None and first.session_seconds == first.seconds > 0
    resumed = fit(TinyMethod(), TinyImages(), None, config(epochs=3, checkpoint_dir=folder))
    assert resumed.resumed_from_epoch == 2 and len(resumed.loss) == 3
    assert 0 < resumed.session_seconds < resumed.seconds
    assert resumed.seconds == pytest.approx(first.seconds + resumed.session_seconds)


def test_a_checkpoint_names_what_differs_including_the_data(tmp_path):
    folder = str(tmp_path / "ckpt")
    data = {"data": "/data/a", "category": "brick", "image_size": 64}
    fit(TinyMethod(), TinyImages(), None, config(epochs=1, checkpoint_dir=folder, identity=data))
    other = {**data, "category": "grass", "image_size": 32}
    with pytest.raises(ValueError, match="category: 'brick' → 'grass'; image_size: 64 → 32"):
        fit(
            TinyMethod(),
            TinyImages(),
            None,
            config(epochs=2, checkpoint_dir=folder, identity=other),
        )


def test_a_checkpoint_with_more_epochs_than_asked_is_refused(tmp_path):
    folder = str(tmp_path / "ckpt")
    fit(TinyMethod(), TinyImages(), None, config(epochs=3, checkpoint_dir=folder))
    with pytest.raises(ValueError, match="already trained 3 epochs, more than the 2 asked for"):
        fit(TinyMethod(), TinyImages(), None, config(epochs=2, checkpoint_dir=folder))


def test_checkpoints_load_without_unpickling_code(tmp_path):
    folder = tmp_path / "ckpt"
    fit(TinyMethod(), TinyImages(), None, config(epochs=1, checkpoint_dir=str(folder)))
    state = torch.load(folder / "last.pt", weights_only=True)  # plain data only
    assert state["epoch"] == 0 and state["history"]["resumed_from_epoch"] is None
