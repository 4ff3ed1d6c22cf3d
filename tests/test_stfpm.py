"""STFPM (thesis §4.4): the distance of eq. 4.15, the pyramid loss, the multiplied
upsampled anomaly map (§4.4.5, §5.4.1) and the ``STFPM`` method object.

Backbones use random weights (``pretrained=False``) and small inputs, so nothing is
downloaded and every test runs in well under a second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from memory_data import GoodImages

from stad_utils.methods import METHODS, STFPM, Method
from stad_utils.methods.stfpm import normalized_distance, pyramid_anomaly_map, pyramid_loss


def vectors(*pairs: tuple[float, float]) -> torch.Tensor:
    """2-channel feature maps of shape (1, 2, 1, len(pairs)) holding the given vectors."""
    return torch.tensor(pairs, dtype=torch.float32).T.reshape(1, 2, 1, len(pairs))


def numpy_distance(t: np.ndarray, s: np.ndarray) -> float:
    """½‖t̂ − ŝ‖² for two 1-D vectors, written out."""
    t_hat = t / np.sqrt((t**2).sum())
    s_hat = s / np.sqrt((s**2).sum())
    return 0.5 * float(((t_hat - s_hat) ** 2).sum())


# ----------------------------------------------------------------------------------------
# normalized_distance (eq. 4.15)
# ----------------------------------------------------------------------------------------


def test_normalized_distance_hand_computed_cases():
    # orthogonal → ½‖(1,-1)‖² = 1; same direction, other length → 0; opposite → ½·4 = 2
    teacher = vectors((1, 0), (3, 4), (1, 0), (1, 1))
    student = vectors((0, 1), (6, 8), (-1, 0), (1, 0))
    result = normalized_distance(teacher, student)
    assert result.shape == (1, 1, 4)
    expected = torch.tensor([1.0, 0.0, 2.0, 1.0 - 0.5**0.5])
    torch.testing.assert_close(result[0, 0], expected, atol=1e-6, rtol=0)


def test_normalized_distance_equals_one_minus_cosine_and_shape():
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 5, 3, 4, generator=generator)
    student = torch.randn(2, 5, 3, 4, generator=generator)
    result = normalized_distance(teacher, student)
    assert result.shape == (2, 3, 4)
    assert result.dtype == torch.float32
    cosine = F.cosine_similarity(teacher, student, dim=1)
    torch.testing.assert_close(result, 1 - cosine, atol=1e-6, rtol=0)
    assert float(result.min()) >= 0.0 and float(result.max()) <= 2.0


def test_normalized_distance_is_scale_invariant():
    generator = torch.Generator().manual_seed(1)
    teacher = torch.randn(1, 4, 2, 2, generator=generator)
    student = torch.randn(1, 4, 2, 2, generator=generator)
    reference = normalized_distance(teacher, student)
    scaled = normalized_distance(7.5 * teacher, 0.01 * student)
    torch.testing.assert_close(scaled, reference, atol=1e-6, rtol=0)
    # … but not invariant to flipping one of them: cos → −cos
    torch.testing.assert_close(normalized_distance(teacher, -student), 2 - reference)


def test_normalized_distance_accepts_half_precision():
    teacher = vectors((1, 0)).half()
    student = vectors((0, 1)).half()
    result = normalized_distance(teacher, student)
    assert result.dtype == torch.float32
    assert result.item() == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------------------
# pyramid_loss
# ----------------------------------------------------------------------------------------


def test_pyramid_loss_is_sum_over_layers_of_mean_distance():
    generator = torch.Generator().manual_seed(2)
    shapes = {"layer1": (2, 3, 4, 6), "layer2": (2, 5, 2, 3)}
    teacher = {k: torch.randn(*shape, generator=generator) for k, shape in shapes.items()}
    student = {k: torch.randn(*shape, generator=generator) for k, shape in shapes.items()}

    expected = 0.0
    for k, (batch, _, height, width) in shapes.items():
        t, s = teacher[k].numpy(), student[k].numpy()
        total = 0.0
        for b in range(batch):
            for i in range(height):
                for j in range(width):
                    total += numpy_distance(t[b, :, i, j], s[b, :, i, j])
        expected += total / (batch * height * width)

    loss = pyramid_loss(teacher, student)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_pyramid_loss_hand_computed_two_layers():
    # layer a: distances (1, 0) → mean 0.5; layer b: one position, opposite → 2. Sum 2.5.
    teacher = {"a": vectors((1, 0), (3, 4)), "b": vectors((1, 0))}
    student = {"a": vectors((0, 1), (6, 8)), "b": vectors((-1, 0))}
    assert pyramid_loss(teacher, student).item() == pytest.approx(2.5, abs=1e-6)


def test_pyramid_loss_is_zero_when_student_matches_teacher_up_to_scale():
    generator = torch.Generator().manual_seed(3)
    teacher = {"layer1": torch.randn(2, 4, 8, 8, generator=generator)}
    student = {"layer1": 3.0 * teacher["layer1"]}
    assert pyramid_loss(teacher, student).item() == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------------------
# pyramid_anomaly_map (§4.4.5, §5.4.1)
# ----------------------------------------------------------------------------------------


def test_pyramid_anomaly_map_hand_computed():
    # layer "fine" (1×2): distances 0 and 1; bilinear (align_corners=False) to width 4
    # gives 0, ¼, ¾, 1. Layer "coarse" (1×1): distance 2 everywhere. Product: 0, ½, 1.5, 2.
    teacher = {"fine": vectors((1, 0), (1, 0)), "coarse": vectors((1, 0))}
    student = {"fine": vectors((2, 0), (0, 1)), "coarse": vectors((-1, 0))}
    result = pyramid_anomaly_map(teacher, student, (1, 4))
    assert result.shape == (1, 1, 4)
    torch.testing.assert_close(result[0, 0], torch.tensor([0.0, 0.5, 1.5, 2.0]))


def test_pyramid_anomaly_map_is_product_of_upsampled_layer_maps():
    generator = torch.Generator().manual_seed(4)
    shapes = {"layer1": (2, 3, 8, 8), "layer2": (2, 6, 4, 4), "layer3": (2, 4, 2, 2)}
    teacher = {k: torch.randn(*shape, generator=generator) for k, shape in shapes.items()}
    student = {k: torch.randn(*shape, generator=generator) for k, shape in shapes.items()}
    size = (32, 32)

    expected = torch.ones(2, *size)
    for k, (batch, _, height, width) in shapes.items():
        t, s = teacher[k].numpy(), student[k].numpy()
        layer = np.zeros((batch, 1, height, width), np.float32)
        for b in range(batch):
            for i in range(height):
                for j in range(width):
                    layer[b, 0, i, j] = numpy_distance(t[b, :, i, j], s[b, :, i, j])
        upsampled = F.interpolate(
            torch.from_numpy(layer), size=size, mode="bilinear", align_corners=False
        )
        expected = expected * upsampled[:, 0]

    result = pyramid_anomaly_map(teacher, student, size)
    assert result.shape == (2, 32, 32)
    torch.testing.assert_close(result, expected, atol=1e-6, rtol=1e-5)


def test_pyramid_anomaly_map_single_layer_is_upsampled_distance():
    generator = torch.Generator().manual_seed(5)
    teacher = {"layer2": torch.randn(3, 4, 3, 5, generator=generator)}
    student = {"layer2": torch.randn(3, 4, 3, 5, generator=generator)}
    result = pyramid_anomaly_map(teacher, student, (12, 20))
    layer = normalized_distance(teacher["layer2"], student["layer2"])
    expected = F.interpolate(
        layer[:, None], size=(12, 20), mode="bilinear", align_corners=False
    ).squeeze(1)
    assert result.shape == (3, 12, 20)
    torch.testing.assert_close(result, expected)
    # a constant layer map stays that constant after upsampling
    flat = pyramid_anomaly_map(
        {"x": vectors((1, 0), (1, 0))}, {"x": vectors((0, 1), (0, 1))}, (3, 7)
    )
    torch.testing.assert_close(flat, torch.ones(1, 3, 7))


# ----------------------------------------------------------------------------------------
# The STFPM method object
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stfpm() -> STFPM:
    torch.manual_seed(0)  # the random teacher comes from the global generator
    return STFPM("resnet18", pretrained=False, seed=0)


def images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_stfpm_is_registered():
    assert METHODS["stfpm"] is STFPM
    assert STFPM.name == "stfpm"


def test_stfpm_teacher_frozen_student_trainable(stfpm):
    assert sum(p.numel() for p in stfpm.teacher.parameters()) > 0
    assert all(not p.requires_grad for p in stfpm.teacher.parameters())
    assert all(p.requires_grad for p in stfpm.student.parameters())
    assert stfpm.parameter_count(trainable_only=True) == sum(
        p.numel() for p in stfpm.student.parameters()
    )
    stfpm.train()
    try:
        assert stfpm.training and stfpm.student.training
        assert not stfpm.teacher.training
        assert not any(m.training for m in stfpm.teacher.modules())
    finally:
        stfpm.eval()


def test_stfpm_options_recorded(stfpm):
    assert stfpm.options == {
        "backbone": "resnet18",
        "layers": ("layer1", "layer2", "layer3"),
        "seed": 0,
    }


def test_stfpm_loss_gradient_reaches_only_the_student():
    torch.manual_seed(0)
    method = STFPM("resnet18", pretrained=False, seed=0, layers=("layer1", "layer2"))
    method.train()
    loss = method.loss(images(2, 32))
    assert loss.ndim == 0 and loss.requires_grad
    assert 0.0 < loss.item() < 2.0 * 2  # two layers, each distance in [0, 2]
    loss.backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    student_grads = [p.grad for p in method.student.parameters()]
    assert all(g is not None for g in student_grads)
    assert sum(float(g.abs().sum()) for g in student_grads) > 0.0


def test_stfpm_anomaly_map_shape_and_values(stfpm):
    batch = images(2, 64)
    with torch.no_grad():
        amap = stfpm.anomaly_map(batch)
        teacher, student = stfpm.teacher(batch), stfpm.student(batch)
    assert amap.shape == (2, 64, 64)
    torch.testing.assert_close(amap, pyramid_anomaly_map(teacher, student, (64, 64)))
    # a product of three distances in [0, 2]
    assert float(amap.min()) >= 0.0 and float(amap.max()) <= 8.0


def test_stfpm_anomaly_map_non_square_input(stfpm):
    with torch.no_grad():
        amap = stfpm.anomaly_map(torch.rand(1, 3, 32, 48))
    assert amap.shape == (1, 32, 48)


def test_stfpm_predict_on_tensor_and_dataset(stfpm):
    data = images(5, 64, seed=1)
    maps, scores = stfpm.predict(data, batch_size=2)
    assert isinstance(maps, np.ndarray) and isinstance(scores, np.ndarray)
    assert maps.dtype == np.float32 and scores.dtype == np.float32
    assert maps.shape == (5, 64, 64) and scores.shape == (5,)
    np.testing.assert_array_equal(scores, maps.max(axis=(1, 2)))
    assert not stfpm.training

    maps_ds, scores_ds = stfpm.predict(GoodImages(images=data), batch_size=3)
    assert maps_ds.dtype == np.float32 and scores_ds.dtype == np.float32
    assert maps_ds.shape == (5, 64, 64) and scores_ds.shape == (5,)
    np.testing.assert_allclose(maps_ds, maps, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(scores_ds, maps_ds.max(axis=(1, 2)))


def test_stfpm_save_and_load_round_trip(tmp_path):
    torch.manual_seed(1)
    method = STFPM("resnet18", pretrained=False, seed=2, layers=("layer1", "layer3"))
    with torch.no_grad():  # weights no fresh STFPM would have: load must restore them
        for p in method.student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    method.eval()
    batch = images(2, 32, seed=3)
    with torch.no_grad():
        before = method.anomaly_map(batch)

    path = method.save(tmp_path / "models" / "stfpm.pt")
    assert path.exists()
    torch.manual_seed(99)  # a rebuilt random teacher would now differ
    loaded = Method.load(path)
    assert type(loaded) is STFPM
    assert loaded.options == method.options
    assert not loaded.training
    assert all(not p.requires_grad for p in loaded.teacher.parameters())
    with torch.no_grad():
        after = loaded.anomaly_map(batch)
    assert torch.equal(after, before)

    loaded_direct = STFPM.load(path)
    assert type(loaded_direct) is STFPM
    with torch.no_grad():
        assert torch.equal(loaded_direct.anomaly_map(batch), before)


def test_stfpm_student_init_depends_only_on_seed():
    def student_state(seed: int, global_seed: int) -> dict:
        torch.manual_seed(global_seed)
        method = STFPM("resnet18", pretrained=False, seed=seed, layers=("layer1",))
        return method.student.state_dict()

    first = student_state(seed=7, global_seed=0)
    same = student_state(seed=7, global_seed=123)  # the global generator does not matter
    other = student_state(seed=8, global_seed=0)
    assert first.keys() == same.keys() == other.keys()
    assert all(torch.equal(first[k], same[k]) for k in first)
    weights = [k for k in first if k.endswith("weight") and first[k].ndim == 4]
    assert weights
    assert not any(torch.equal(first[k], other[k]) for k in weights)
