"""Teacher pre-training: eq. 4 on triplets through the shared loop; save, load, resume."""

import pytest
import torch

from stad_utils.data.patches import TripletPatches
from stad_utils.losses import teacher_loss
from stad_utils.methods.patch_teacher import PatchTeacher, TeacherLossWeights, load_teacher
from stad_utils.train import TrainConfig, fit


def _photos():
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(48, 48, 3, generator=generator).numpy() for _ in range(3)]


def _config(**changes):
    base = dict(
        epochs=1,
        batch_size=8,
        lr=2e-4,
        weight_decay=1e-5,
        optimizer="adam",
        channels_last=False,
        select_on_validation=False,
        progress=False,
    )
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def data():
    return TripletPatches(17, _photos(), length=24, seed=0, augment=False)


def _teacher(**kwargs):
    # P is random here (pretrained=False) and drawn from the global generator: seed it, so
    # that every teacher of a test distils the same P.
    torch.manual_seed(0)
    return PatchTeacher(
        p=17, backbone="resnet18", target_size=32, width=0.25, seed=1, pretrained=False, **kwargs
    )


def test_batch_loss_is_eq4_with_per_entry_weights(data):
    teacher = _teacher()
    batch = {
        k: torch.stack([data[i][k] for i in range(8)]) for k in ("anchor", "positive", "negative")
    }
    loss, count = teacher.batch_loss(batch, torch.device("cpu"))
    d = teacher.describe(batch["anchor"])
    expected = teacher_loss(
        d,
        decoded=teacher.decoder(d),
        target=teacher.target(batch["anchor"]),
        positive=teacher.describe(batch["positive"]),
        negative=teacher.describe(batch["negative"]),
        lambda_k=1 / 512,
        lambda_c=1 / (8 * 7),
    )
    assert count == 8
    assert loss.item() == pytest.approx(expected.total.item(), rel=1e-5)
    assert set(teacher.parts[-1]) == {"distillation", "metric", "compactness", "total"}
    assert teacher.decoder_dim == 512  # ResNet-18's deepest features: the decoder follows P


def test_explicit_weights_switch_terms_off(data):
    teacher = _teacher(weights=TeacherLossWeights(distillation=0.0, compactness=0.0))
    batch = {
        k: torch.stack([data[i][k] for i in range(4)]) for k in ("anchor", "positive", "negative")
    }
    loss, _ = teacher.batch_loss(batch, torch.device("cpu"))
    assert loss.item() == pytest.approx(teacher.parts[-1]["metric"], rel=1e-6)
    assert teacher.parts[-1]["distillation"] == 0.0


def test_pretraining_through_the_shared_loop_resumes_exactly(data, tmp_path):
    whole = _teacher()
    fit(whole, data, None, _config(epochs=2))
    interrupted = _teacher()
    fit(
        interrupted,
        data,
        None,
        _config(epochs=2, checkpoint_dir=str(tmp_path), stop_after_epochs=1),
    )
    resumed = _teacher()
    history = fit(resumed, data, None, _config(epochs=2, checkpoint_dir=str(tmp_path)))
    assert history.images_seen == 2 * len(data)
    for key, value in whole.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key


def test_save_and_load_teacher(tmp_path):
    teacher = _teacher()
    loaded = load_teacher(teacher.save_teacher(tmp_path / "teacher.pt"))
    patches = torch.rand(2, 3, 17, 17)
    with torch.no_grad():
        assert torch.equal(loaded(patches), teacher.network(patches))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_chapter_3s_teacher_is_the_one_the_method_would_pretrain():
    """Chapter 3 trains its teacher step by step and leaves it in the cache of pre-trained
    teachers (``teacher_cache_path``); that is right only if ``pretrain_teacher`` trains
    the same network from the same settings, whatever the global random state."""
    from stad_utils.data.patches import NATURAL_PHOTOS, load_photos
    from stad_utils.methods.patch_teacher import pretrain_teacher

    torch.manual_seed(12345)  # the chapter has drawn random numbers before
    triplets = TripletPatches(17, load_photos(NATURAL_PHOTOS), length=64 * 2, seed=0)
    chapter = PatchTeacher(p=17, backbone="efficientnet_lite0", target_size=64, width=0.125, seed=0)
    config = TrainConfig(
        epochs=1,
        batch_size=64,
        lr=2e-4,
        weight_decay=1e-5,
        optimizer="adam",
        seed=0,
        device="cpu",
        channels_last=False,
        select_on_validation=False,
        progress=False,
    )
    fit(chapter, triplets, None, config)
    torch.manual_seed(999)
    method = pretrain_teacher(
        17, "efficientnet_lite0", width=0.125, steps=2, seed=0, progress=False
    )
    for key, value in chapter.network.state_dict().items():
        assert torch.equal(value, method.network.state_dict()[key]), key
