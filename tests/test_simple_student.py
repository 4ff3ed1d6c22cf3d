"""Simple Student: STFPM's training and maps with the bottlenecked student."""

import pytest
import torch

from stad_utils.methods import STFPM, Method, SimpleStudent
from stad_utils.methods.stfpm import pyramid_anomaly_map
from stad_utils.models.students import AdaptedStudent


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_resnet18_teacher_gets_the_appendix_a2_student():
    method = SimpleStudent("resnet18", seed=0, pretrained=False)
    assert not isinstance(method.student, AdaptedStudent)
    assert method.student.body.layer1[0].conv1.out_channels == 16
    assert method.student.body.layer3[1].conv1.out_channels == 32
    # 412,736 parameters up to layer3 (hand count in tests/test_students.py) vs 2,782,784.
    assert _count(method.student) == 412_736
    assert _count(method.teacher) == 2_782_784


def test_efficientnet_teacher_gets_adapters_and_matching_maps():
    method = SimpleStudent("efficientnet_lite0", seed=0, pretrained=True)
    assert isinstance(method.student, AdaptedStudent)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        t, s = method.teacher(images), method.student(images)
    assert {k: v.shape[1] for k, v in s.items()} == {"layer1": 24, "layer2": 40, "layer3": 112}
    assert all(t[k].shape == s[k].shape for k in t)
    with torch.no_grad():
        assert torch.allclose(method.anomaly_map(images), pyramid_anomaly_map(t, s, (64, 64)))


def test_loss_trains_only_the_student():
    method = SimpleStudent("resnet18", seed=0, pretrained=False)
    method.loss(torch.rand(2, 3, 64, 64)).backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    assert all(p.grad is not None for p in method.student.parameters())


def test_is_an_stfpm_and_round_trips(tmp_path):
    method = SimpleStudent("resnet18", inner=(8, 8, 16), seed=3, pretrained=False).eval()
    assert isinstance(method, STFPM) and method.name == "simple_student"
    loaded = Method.load(method.save(tmp_path / "ss.pt"))
    assert isinstance(loaded, SimpleStudent)
    assert loaded.student.body.layer1[0].conv1.out_channels == 8
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.anomaly_map(images), method.anomaly_map(images))


def test_bad_inner_is_refused():
    with pytest.raises(ValueError, match="three positive integers"):
        SimpleStudent("resnet18", inner=(16, 16), pretrained=False)
