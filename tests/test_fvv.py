"""Feature Vectors Variance: eqs. 5.2–5.4 by hand, the ensemble, its options."""

import pytest
import torch
from memory_data import GoodImages

from stad_utils.methods import FeatureVectorsVariance, Method
from stad_utils.methods.fvv import ensemble_error_and_variance
from stad_utils.methods.stfpm import combine_layer_maps, pyramid_loss
from stad_utils.train import TrainConfig


def _vectors(*rows):
    """(1, C, 1, 1) tensors from plain vectors."""
    return [torch.tensor(r, dtype=torch.float32).view(1, -1, 1, 1) for r in rows]


def test_hand_computed_error_and_variance():
    teacher, s1, s2 = _vectors((1.0, 0.0), (2.0, 0.0), (0.0, 5.0))
    error, variance = ensemble_error_and_variance(teacher, [s1, s2])
    # normalized students (1, 0) and (0, 1); mean (½, ½); per-channel variance ¼ each
    assert variance.item() == pytest.approx(0.5)
    # e = ½‖(1, 0) − (½, ½)‖² = ½ (¼ + ¼)
    assert error.item() == pytest.approx(0.25)
    assert error.shape == variance.shape == (1, 1, 1)


def test_agreeing_students_have_no_variance():
    teacher, a, b, c = _vectors((1.0, 2.0, 3.0), (2.0, 4.0, 6.0), (0.1, 0.2, 0.3), (5, 10, 15))
    error, variance = ensemble_error_and_variance(teacher, [a, b, c])
    assert variance.item() == pytest.approx(0.0, abs=1e-7)
    assert error.item() == pytest.approx(0.0, abs=1e-7)


def test_bias_variance_decomposition():
    """Mean of the students' own eq.-4.15 distances = e_k + ½ v_k."""
    generator = torch.Generator().manual_seed(3)
    teacher = torch.randn(2, 5, 3, 4, generator=generator)
    students = [torch.randn(2, 5, 3, 4, generator=generator) for _ in range(4)]
    error, variance = ensemble_error_and_variance(teacher, students)
    t = torch.nn.functional.normalize(teacher, dim=1)
    own = torch.stack(
        [0.5 * (t - torch.nn.functional.normalize(s, dim=1)).pow(2).sum(1) for s in students]
    ).mean(0)
    assert torch.allclose(own, error + 0.5 * variance, atol=1e-6)


@pytest.fixture(scope="module")
def fvv():
    return FeatureVectorsVariance("resnet18", num_students=3, seed=5, pretrained=False).eval()


def test_students_start_differently_and_teacher_is_frozen(fvv):
    first = [next(s.parameters()).detach().clone() for s in fvv.students]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    assert not any(p.requires_grad for p in fvv.teacher.parameters())
    assert all(p.requires_grad for s in fvv.students for p in s.parameters())


def test_loss_is_the_sum_of_the_students_stfpm_losses_with_one_teacher_pass(fvv):
    images = torch.rand(2, 3, 64, 64)
    calls = []
    handle = fvv.teacher.register_forward_hook(lambda *args: calls.append(1))
    loss = fvv.loss(images)
    handle.remove()
    assert len(calls) == 1  # the teacher runs once for all students
    targets = fvv.teacher(images)
    expected = sum(pyramid_loss(targets, s(images)) for s in fvv.students)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("scoring", ["error+variance", "variance", "error"])
def test_anomaly_map_combines_the_chosen_terms(fvv, scoring):
    images = torch.rand(2, 3, 64, 64)
    fvv.scoring = scoring
    with torch.no_grad():
        amap = fvv.anomaly_map(images)
        terms = fvv.layer_terms(images)
    fvv.scoring = "error+variance"
    pick = {
        "error+variance": lambda e, v: e + v,
        "variance": lambda e, v: v,
        "error": lambda e, v: e,
    }[scoring]
    expected = combine_layer_maps([pick(e, v) for e, v in terms.values()], (64, 64))
    assert amap.shape == (2, 64, 64)
    assert torch.allclose(amap, expected)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="at least 2 students"):
        FeatureVectorsVariance("resnet18", num_students=1, pretrained=False)
    with pytest.raises(ValueError, match="scoring must be one of"):
        FeatureVectorsVariance("resnet18", scoring="max", pretrained=False)


def test_save_and_load_keep_options_and_maps(fvv, tmp_path):
    fvv.scoring = "variance"
    path = fvv.save(tmp_path / "fvv.pt")
    fvv.scoring = "error+variance"
    loaded = Method.load(path)
    assert isinstance(loaded, FeatureVectorsVariance) and loaded.scoring == "variance"
    assert len(loaded.students) == 3
    images = torch.rand(1, 3, 64, 64)
    fvv.scoring = "variance"
    with torch.no_grad():
        assert torch.allclose(loaded.anomaly_map(images), fvv.anomaly_map(images), atol=1e-6)
    fvv.scoring = "error+variance"


def test_independent_order_trains_each_student_on_its_own_shuffle():
    config = TrainConfig(epochs=2, batch_size=2, lr=0.01, progress=False, channels_last=False)
    shared = FeatureVectorsVariance("resnet18", num_students=2, seed=1, pretrained=False)
    independent = FeatureVectorsVariance(
        "resnet18", num_students=2, seed=1, pretrained=False, independent_order=True
    )
    independent.load_state_dict(shared.state_dict())
    h_shared = shared.fit(GoodImages(6), GoodImages(2, seed=1), config)
    h_independent = independent.fit(GoodImages(6), GoodImages(2, seed=1), config)
    assert len(h_independent.loss) == 2 and h_independent.images_seen == 2 * 2 * 6
    assert h_shared.images_seen == 2 * 6
    # Student 0 sees the same order (seed + 0) either way; student 1 a different one.
    assert not torch.equal(
        next(shared.students[1].parameters()), next(independent.students[1].parameters())
    )
