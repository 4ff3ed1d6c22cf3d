"""The Uninformed Students method: training windows, eq. 5 loss, eq. 8 statistics from
validation images only, multi-scale mean, save/load, errors, and the runner's settings."""

import numpy as np
import pytest
import torch
from memory_data import GoodImages

from stad_utils.losses import student_regression_loss
from stad_utils.methods import Method, UninformedStudents
from stad_utils.methods import patch_teacher as patch_teacher_module
from stad_utils.methods.us_scores import (
    ScoreStatistics,
    descriptor_statistics,
    predictive_variance,
    regression_error,
    standardized_score,
)
from stad_utils.models import DenseExtractor
from stad_utils.runner import RunConfig
from stad_utils.train import TrainConfig

SIZE = 40  # > 65 // 2, so reflect padding works at every scale


def _method(**options):
    settings = {"scales": (17, 33), "num_students": 2, "width": 0.125, "seed": 3}
    settings.update(options)
    return UninformedStudents(pretrained=False, **settings)


def test_windows_cut_from_the_padded_image_give_the_whole_image_descriptors():
    torch.manual_seed(0)
    images = torch.rand(2, 3, SIZE, SIZE)
    method = _method(scales=(17, 33, 65), crop_size=12)
    torch.manual_seed(7)
    windows = method._training_windows(images)
    torch.manual_seed(7)  # the same draw of window positions
    ys = torch.randint(0, SIZE - 12 + 1, (2,)).tolist()
    xs = torch.randint(0, SIZE - 12 + 1, (2,)).tolist()
    with torch.no_grad():
        for index, window in enumerate(windows):
            dense = DenseExtractor(method.teachers[index])
            assert window.shape[-1] == 12 + 2 * (method.scales[index] // 2)
            whole = dense(images)
            inner = dense(window, padded=True)
            for b in range(2):
                expected = whole[b, :, ys[b] : ys[b] + 12, xs[b] : xs[b] + 12]
                assert torch.allclose(inner[b], expected, atol=1e-5)


def test_selection_with_windows_is_the_whole_image_error_in_the_central_window():
    torch.manual_seed(2)
    images = torch.rand(2, 3, SIZE, SIZE)
    method = _method(crop_size=12)
    whole_method = _method()  # no crop size: selection on the whole images
    whole_method.load_state_dict(method.state_dict())
    for index, teacher in enumerate(method.teachers):
        mean, std = descriptor_statistics(DenseExtractor(teacher)(images).detach())
        for m in (method, whole_method):
            m.descriptor_mean[index], m.descriptor_std[index] = mean, std
    with torch.no_grad():
        windowed = method.selection_map(images)
        whole = whole_method.selection_map(images)
    top = (SIZE - 12) // 2
    assert windowed.shape == (2, 12, 12) and whole.shape == (2, SIZE, SIZE)
    assert torch.allclose(windowed, whole[:, top : top + 12, top : top + 12], atol=1e-4)


def test_loss_is_eq5_summed_over_students_and_scales():
    torch.manual_seed(1)
    images = torch.rand(2, 3, SIZE, SIZE)
    method = _method()
    for index, teacher in enumerate(method.teachers):
        mean, std = descriptor_statistics(DenseExtractor(teacher)(images).detach())
        method.descriptor_mean[index], method.descriptor_std[index] = mean, std
    expected = 0.0
    with torch.no_grad():
        for index, teacher in enumerate(method.teachers):
            target = DenseExtractor(teacher)(images)
            for student in method.students[index]:
                expected += student_regression_loss(
                    DenseExtractor(student)(images),
                    target,
                    method.descriptor_mean[index],
                    method.descriptor_std[index],
                ).item()
    assert method.loss(images).item() == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two scales, two students each, trained for 2 epochs on random images."""
    method = _method()
    train_set, val_set = GoodImages(8, seed=0, size=SIZE), GoodImages(4, seed=1, size=SIZE)
    config = TrainConfig(
        epochs=2, batch_size=4, lr=1e-3, optimizer="adam", progress=False, channels_last=False
    )
    method.fit(train_set, val_set, config)
    return method, train_set, val_set


def test_statistics_come_from_training_and_validation_images(trained):
    method, train_set, val_set = trained
    with torch.no_grad():
        for index, teacher in enumerate(method.teachers):
            mean, std = descriptor_statistics(DenseExtractor(teacher)(train_set.images))
            assert torch.allclose(method.descriptor_mean[index], mean, atol=1e-5)
            assert torch.allclose(method.descriptor_std[index], std, atol=1e-5)
            e, v = method.error_and_variance(index, val_set.images)
            stats = method.statistics(index)
            expected = ScoreStatistics.from_maps(e, v)
            assert stats.error_mean == pytest.approx(expected.error_mean, rel=1e-4)
            assert stats.variance_std == pytest.approx(expected.variance_std, rel=1e-4)
            # standardized on the validation pixels: each term has mean 0 there
            assert standardized_score(e, v, stats).mean().item() == pytest.approx(0.0, abs=1e-4)


def test_anomaly_map_is_the_mean_of_the_scale_scores(trained):
    method, _, val_set = trained
    images = val_set.images[:2]
    with torch.no_grad():
        per_scale = method.scale_maps(images)
        students = method.student_maps(0, images)
        e = regression_error(students, method.normalized_teacher(0, images))
        assert torch.allclose(per_scale[17]["error"], e)
        assert torch.allclose(per_scale[17]["variance"], predictive_variance(students))
        both = method.anomaly_map(images)
        mean = (per_scale[17]["score"] + per_scale[33]["score"]) / 2
        assert torch.allclose(both, mean, atol=1e-5)
        method.use_scales = [33]
        assert torch.allclose(method.anomaly_map(images), per_scale[33]["score"], atol=1e-5)
    method.use_scales = method.scales
    with pytest.raises(ValueError, match="subset"):
        method.use_scales = [65]


def test_predict_returns_each_scales_maps_with_the_anomaly_maps(trained):
    """Chapter 5 studies e, v and the score of every scale from the run's one prediction
    pass: the parts must be exactly what scale_maps gives, and the maps unchanged."""
    method, _, val_set = trained
    images = val_set.images[:3]
    maps, scores = method.predict(images)
    maps_too, scores_too, parts = method.predict(images, parts=True)
    assert np.array_equal(maps, maps_too) and np.array_equal(scores, scores_too)
    assert sorted(parts) == sorted(
        f"p{p}/{k}" for p in (17, 33) for k in ("error", "variance", "score")
    )
    with torch.no_grad():
        per_scale = method.scale_maps(images)
    for p in (17, 33):
        for key in ("error", "variance", "score"):
            assert np.allclose(parts[f"p{p}/{key}"], per_scale[p][key].numpy(), atol=1e-6)
    method.use_scales = [33]
    try:  # the anomaly map averages use_scales only; the parts keep every scale
        maps_33, _, parts_33 = method.predict(images, parts=True)
        assert np.allclose(maps_33, parts_33["p33/score"], atol=1e-6)
        assert "p17/score" in parts_33
    finally:
        method.use_scales = method.scales


def test_save_and_load_give_the_same_maps(trained, tmp_path):
    method, _, val_set = trained
    path = method.save(tmp_path / "us.pt")
    method.use_scales = [33]
    assert Method.load(method.save(tmp_path / "one.pt")).use_scales == (33,)  # saved
    method.use_scales = method.scales
    loaded = Method.load(path)
    assert isinstance(loaded, UninformedStudents) and loaded.use_scales == (17, 33)
    maps, scores = method.predict(val_set.images)
    maps2, scores2 = loaded.predict(val_set.images)
    assert (maps == maps2).all() and (scores == scores2).all()
    assert scores.shape == (4,) and maps.shape == (4, SIZE, SIZE)


def test_clear_errors():
    with pytest.raises(ValueError, match="scales must be"):
        UninformedStudents(scales=(16,), pretrained=False)
    with pytest.raises(ValueError, match="at least 2 students"):
        UninformedStudents(num_students=1, pretrained=False)
    method = _method()
    with pytest.raises(RuntimeError, match="call fit"):
        method.anomaly_map(torch.rand(1, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="validation split is empty"):
        method.fit(GoodImages(2, size=SIZE), GoodImages(0, size=SIZE), TrainConfig(epochs=1))


def test_teachers_are_pretrained_once_then_reused(tmp_path, monkeypatch):
    calls = []
    real = patch_teacher_module.pretrain_teacher

    def counting(p, **kwargs):
        calls.append(p)
        return real(p, **kwargs)

    monkeypatch.setattr(patch_teacher_module, "pretrain_teacher", counting)
    options = {"scales": (17,), "teacher_steps": 2, "teacher_dir": str(tmp_path)}
    first = UninformedStudents(backbone="efficientnet_lite0", width=0.125, **options)
    first.prepare_teachers(torch.device("cpu"), progress=False)
    second = UninformedStudents(backbone="efficientnet_lite0", width=0.125, **options)
    second.prepare_teachers(torch.device("cpu"), progress=False)
    assert calls == [17]  # the second method found the saved teacher
    assert [p.name for p in tmp_path.iterdir()] == [
        "teacher_p17_w0.125_efficientnet_lite0_steps2_seed0.pt"
    ]
    for a, b in zip(first.teachers.parameters(), second.teachers.parameters(), strict=True):
        assert torch.equal(a, b)
    untrained = UninformedStudents(width=0.125, scales=(17,), pretrained=False)
    assert not torch.equal(next(untrained.teachers.parameters()), next(first.teachers.parameters()))


def test_runner_uses_the_method_and_profile_training_settings():
    quick = RunConfig(method="uninformed_students", data="x", category="y", profile="quick")
    resolved = quick.resolved()
    assert (resolved.lr, resolved.epochs) == (1e-3, 7)  # the quick profile's
    train = resolved.train_config(torch.device("cpu"))
    assert (train.optimizer, train.weight_decay) == ("adam", 1e-5)
    method = resolved.build_method()
    assert method.options["width"] == 0.25 and method.options["crop_size"] == 24
    assert method.options["num_students"] == 3 and method.scales == (17, 33, 65)
    mine = RunConfig(
        method="uninformed_students", data="x", category="y", profile="quick", lr=1e-3, epochs=2
    ).resolved()
    assert (mine.lr, mine.epochs) == (1e-3, 2)
    stfpm = RunConfig(method="stfpm", data="x", category="y", profile="quick").resolved()
    assert (stfpm.lr, stfpm.epochs) == (0.4, 20)
    assert stfpm.train_config(torch.device("cpu")).optimizer == "sgd"


def test_command_line_fit_and_evaluate_on_an_mvtec_folder(mvtec_root, tmp_path, capsys):
    """Any MVTec-layout folder: fit writes a report and a model that evaluate reloads."""
    import json

    from stad_utils.__main__ import main

    out = tmp_path / "run"
    options = {
        "scales": [17, 33],
        "num_students": 2,
        "width": 0.125,
        "teacher_steps": 2,
        "teacher_dir": str(tmp_path / "teachers"),
    }
    argv = ["fit", "--method", "uninformed_students", "--data", str(mvtec_root)]
    argv += ["--category", "beta", "--out", str(out), "--profile", "quick", "--epochs", "1"]
    argv += ["--image-size", "40", "--method-options", json.dumps(options), "--no-figures"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "uninformed_students" and report["category"] == "beta"
    assert 0.0 <= report["au_pro"] <= 1.0 and 0.0 <= report["image_auroc"] <= 1.0
    assert report["config"]["lr"] == 1e-3  # the quick profile's setting for the method
    loaded = Method.load(out / "model.pt")
    assert loaded.scales == (17, 33) and loaded.options["num_students"] == 2
    assert main(["evaluate", "--run", str(out), "--output", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["au_pro"] == pytest.approx(report["au_pro"], abs=1e-6)
    assert again["image_auroc"] == pytest.approx(report["image_auroc"], abs=1e-6)


def test_teachers_can_learn_from_a_folder_of_images(mvtec_root, tmp_path):
    method = UninformedStudents(
        backbone="efficientnet_lite0",
        scales=(17,),
        width=0.125,
        teacher_steps=1,
        teacher_dir=str(tmp_path / "teachers"),
        teacher_images=str(mvtec_root / "alpha" / "train"),
    )
    method.prepare_teachers(torch.device("cpu"), progress=False)
    saved = sorted(p.name for p in (tmp_path / "teachers").iterdir())
    assert len(saved) == 1  # no temporary file is left behind
    assert saved[0].startswith("teacher_p17_w0.125_efficientnet_lite0_steps1_seed0_train-")
    other = tmp_path / "elsewhere" / "train"  # another folder with the same name
    other.mkdir(parents=True)
    for image in sorted((mvtec_root / "alpha" / "train" / "good").iterdir())[:2]:
        (other / image.name).write_bytes(image.read_bytes())
    method.options["teacher_images"] = str(other)
    method.prepare_teachers(torch.device("cpu"), progress=False)
    assert len(list((tmp_path / "teachers").iterdir())) == 2
