"""Threshold rules (stad_utils.thresholds) and their place in metrics.evaluate."""

import numpy as np
import pytest

from stad_utils import metrics, thresholds


def test_image_f1_oracle_is_eq_5_6_and_says_it_reads_labels():
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    # thresholds 0.35: P=2/3 R=1 F1=0.8; 0.4: P=1/2 R=1/2 F1=0.5; 0.8: P=1 R=1/2 F1=2/3
    rule = thresholds.image_f1_oracle(labels, scores)
    assert rule.value == pytest.approx(0.35)
    assert rule.uses_test_labels and "oracle" in rule.source and "5.6" in rule.source


def test_pixel_f1_oracle_on_a_hand_made_case():
    maps = np.array([[[0.1, 0.9], [0.8, 0.2]]])
    masks = np.array([[[0, 1], [0, 0]]])
    # t=0.9: P=1 R=1 → F1=1 (t=0.8: P=1/2 → F1=2/3)
    rule = thresholds.pixel_f1_oracle(maps, masks)
    assert rule.value == pytest.approx(0.9)
    assert rule.uses_test_labels and "5.4.2" in rule.source


def test_validation_quantile_takes_an_observed_score_rounding_up():
    val = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    # 0.8 quantile of 10 values, method "higher": index ceil(0.8 · 9) = 8 → 9.0
    rule = thresholds.validation_quantile(val, false_alarm_rate=0.2)
    assert rule.value == 9.0
    assert not rule.uses_test_labels
    assert rule.params == {"false_alarm_rate": 0.2, "validation_images": 10}
    assert thresholds.validation_quantile(val, 0.0).value == 10.0  # no false alarm on val


def test_validation_pixel_quantile_counts_pixels():
    maps = np.arange(100, dtype=float).reshape(1, 10, 10)
    rule = thresholds.validation_pixel_quantile(maps, false_alarm_rate=0.05)
    # 0.95 quantile of 0..99 with "higher": index ceil(0.95 · 99) = 95
    assert rule.value == 95.0
    assert (maps >= rule.value).mean() == pytest.approx(0.05)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2])
def test_false_alarm_rate_out_of_range_is_refused(rate):
    with pytest.raises(ValueError, match=r"false-alarm rate must be in \[0, 1\)"):
        thresholds.validation_quantile([1.0, 2.0], rate)


def test_empty_or_nan_validation_scores_are_refused():
    with pytest.raises(ValueError, match="validation_image_scores is empty"):
        thresholds.validation_quantile([])
    with pytest.raises(ValueError, match="validation_maps contains 1 NaN and 0 infinite"):
        thresholds.validation_pixel_quantile(np.array([[[1.0, np.nan]]]))
    with pytest.raises(ValueError, match="anomaly_maps contains 0 NaN and 1 infinite"):
        thresholds.pixel_f1_oracle(np.array([[[1.0, np.inf]]]), np.array([[[0, 1]]]))


def _test_set(rng):
    """Eight good and eight defective 8×8 maps; defects are a bright 2×2 square."""
    maps = rng.random((16, 8, 8)) * 0.5
    masks = np.zeros((16, 8, 8))
    labels = np.array([0] * 8 + [1] * 8)
    for i in range(8, 16):
        masks[i, 2:4, 3:5] = 1
        maps[i, 2:4, 3:5] += 0.4 + 0.05 * (i - 8)
    return maps, masks, labels


def test_evaluate_records_every_rule_with_its_source_and_numbers():
    rng = np.random.default_rng(0)
    maps, masks, labels = _test_set(rng)
    val_maps = rng.random((5, 8, 8)) * 0.5
    report = metrics.evaluate(maps, masks, labels, validation_maps=val_maps)
    assert set(report.thresholds) == set(thresholds.RULES)
    assert report.threshold_rule == "image_f1_oracle"  # the thesis' default headline
    oracle = report.thresholds["image_f1_oracle"]
    assert report.threshold == oracle["value"] and report.dice == oracle["dice"]
    deployable = report.thresholds["validation_quantile"]
    assert deployable["value"] == pytest.approx(val_maps.reshape(5, -1).max(axis=1).max())
    bad = maps.reshape(16, -1).max(axis=1) >= deployable["value"]
    assert deployable["false_bads"] == int(np.count_nonzero(bad[:8]))
    assert deployable["false_goods"] == int(np.count_nonzero(~bad[8:]))
    assert deployable["dice"] == pytest.approx(metrics.dice(maps >= deployable["value"], masks))
    for rule in report.thresholds.values():
        assert rule["uses_test_labels"] == (rule["rule"] not in thresholds.DEPLOYABLE_RULES)


def test_headline_rule_can_be_a_deployable_one():
    rng = np.random.default_rng(1)
    maps, masks, labels = _test_set(rng)
    val_maps = rng.random((5, 8, 8)) * 0.5
    report = metrics.evaluate(
        maps, masks, labels, validation_maps=val_maps, threshold_rule="validation_quantile"
    )
    assert report.threshold == report.thresholds["validation_quantile"]["value"]
    assert report.false_bads == report.thresholds["validation_quantile"]["false_bads"]


def test_a_validation_rule_without_validation_maps_is_a_clear_error():
    maps, masks, labels = _test_set(np.random.default_rng(2))
    with pytest.raises(ValueError, match="validation rules need validation_maps"):
        metrics.evaluate(maps, masks, labels, threshold_rule="validation_quantile")
    with pytest.raises(ValueError, match="not available"):
        metrics.evaluate(maps, masks, labels, threshold_rule="no_such_rule")


def test_no_test_label_reaches_a_deployable_rule():
    """Shuffling the test labels and masks changes the oracles, never the deployable values."""
    rng = np.random.default_rng(3)
    maps, masks, labels = _test_set(rng)
    val_maps = rng.random((6, 8, 8)) * 0.5
    base = metrics.evaluate(maps, masks, labels, validation_maps=val_maps)
    order = np.random.default_rng(4).permutation(16)
    shuffled = metrics.evaluate(maps, masks[order], labels[order], validation_maps=val_maps)
    for rule in thresholds.DEPLOYABLE_RULES:
        assert shuffled.thresholds[rule]["value"] == base.thresholds[rule]["value"]
    assert shuffled.thresholds["image_f1_oracle"]["value"] != pytest.approx(
        base.thresholds["image_f1_oracle"]["value"]
    )


def test_fit_and_evaluate_record_every_rule_and_take_the_rule_as_an_option(tmp_path, capsys):
    """``fit`` writes every threshold with its source; ``evaluate --threshold-rule``
    makes a label-free rule the headline, fitted on the good validation images only."""
    import json

    from conftest import make_mvtec_tree

    from stad_utils.__main__ import main

    data = make_mvtec_tree(tmp_path / "mvtec")
    out = tmp_path / "run"
    fast = ["--method", "stfpm", "--profile", "quick", "--image-size", "32", "--epochs", "1"]
    fast += ["--batch-size", "4", "--device", "cpu", "--no-figures"]
    args = ["fit", *fast, "--data", str(data), "--category", "alpha", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["threshold_rule"] == "image_f1_oracle"
    assert set(report["thresholds"]) == set(thresholds.RULES)
    oracle = report["thresholds"]["image_f1_oracle"]
    assert report["threshold"] == oracle["value"] and report["dice"] == oracle["dice"]
    assert oracle["uses_test_labels"] is True
    assert report["thresholds"]["validation_quantile"]["uses_test_labels"] is False
    assert "oracle: reads test labels" in capsys.readouterr().out

    output = tmp_path / "again" / "report.json"
    args = ["evaluate", "--run", str(out), "--threshold-rule", "validation_quantile"]
    assert main([*args, "--false-alarm-rate", "0.2", "--output", str(output)]) == 0
    again = json.loads(output.read_text())
    rule = again["thresholds"]["validation_quantile"]
    assert again["threshold_rule"] == "validation_quantile"
    assert again["threshold"] == rule["value"] and rule["params"]["false_alarm_rate"] == 0.2
    assert (again["false_goods"], again["false_bads"]) == (rule["false_goods"], rule["false_bads"])
