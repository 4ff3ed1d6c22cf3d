"""Tests of stad_utils.viz: each figure shows the data it is given.

The assertions read the returned Figure (axes, lines, patches, images), never pixels.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402

from stad_utils import metrics as M  # noqa: E402
from stad_utils.train import TrainHistory  # noqa: E402
from stad_utils.viz import curves as C  # noqa: E402
from stad_utils.viz import explorer as E  # noqa: E402
from stad_utils.viz import grids as G  # noqa: E402
from stad_utils.viz import style as S  # noqa: E402
from stad_utils.viz import training as T  # noqa: E402

H, W = 16, 20


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    monkeypatch.delenv("STAD_HEADLESS", raising=False)  # tests model a live notebook
    yield
    plt.close("all")


def make_set(n: int = 5, seed: int = 0):
    """``images`` (N, 3, H, W) tensor, ``masks`` (N, 1, H, W) tensor, ``maps`` (N, H, W) array.

    Image 0 is good (empty mask); the others have a rectangle whose map values are raised.
    """
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.random((n, 3, H, W), dtype=np.float32))
    masks = torch.zeros(n, 1, H, W)
    maps = rng.random((n, H, W)).astype(np.float32)
    for i in range(1, n):
        masks[i, 0, 3 + i : 8 + i, 4 : 10 + i] = 1
        maps[i][masks[i, 0].bool().numpy()] += 1.0 + 0.2 * i
    return images, masks, maps


def lines_labelled(ax, prefix: str):
    return [line for line in ax.get_lines() if line.get_label().startswith(prefix)]


def images_of(ax) -> list[AxesImage]:
    return [a for a in ax.get_children() if isinstance(a, AxesImage)]


# ----------------------------------------------------------------------------------------
# style
# ----------------------------------------------------------------------------------------


def test_to_numpy_image_channel_last_and_clipped():
    image = torch.full((3, 4, 5), 2.0)
    out = S.to_numpy_image(image)
    assert out.shape == (4, 5, 3) and out.max() == 1.0
    assert S.to_numpy_image(np.zeros((1, 4, 5))).shape == (4, 5)
    assert S.to_numpy_image(np.zeros((4, 5))).shape == (4, 5)


def test_use_book_style_sets_the_rcparams():
    S.use_book_style()
    assert matplotlib.rcParams["axes.spines.top"] is False
    assert matplotlib.rcParams["legend.frameon"] is False


def test_hide_axes_leaves_a_bare_frame():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    S.hide_axes(ax)
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert not any(spine.get_visible() for spine in ax.spines.values())
    assert not any(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())
    plt.close(fig)


# ----------------------------------------------------------------------------------------
# grids
# ----------------------------------------------------------------------------------------


def test_outline_mask_draws_a_contour_only_for_a_defect():
    fig, ax = plt.subplots()
    G.outline_mask(ax, np.zeros((H, W)))
    assert not ax.collections
    mask = np.zeros((H, W))
    mask[4:9, 5:12] = 1
    G.outline_mask(ax, mask)
    assert len(ax.collections) == 1
    assert isinstance(fig, Figure)


def test_sample_grid_one_panel_per_sample_and_outlines():
    images, masks, _ = make_set(5)
    samples = [
        {"image": images[i], "mask": masks[i], "defect_type": "good" if i == 0 else "crack"}
        for i in range(5)
    ]
    fig = G.sample_grid(samples, columns=3)
    assert len(fig.axes) == 6  # 2 rows × 3 columns, the last one empty
    assert [ax.get_title() for ax in fig.axes[:5]] == ["good"] + ["crack"] * 4
    assert not images_of(fig.axes[5])
    np.testing.assert_allclose(
        images_of(fig.axes[2])[0].get_array(), images[2].permute(1, 2, 0).numpy()
    )
    assert not fig.axes[0].collections  # good: no outline
    assert len(fig.axes[1].collections) == 1
    fig = G.sample_grid(samples, columns=5, titles=list("abcde"), show_masks=False)
    assert [ax.get_title() for ax in fig.axes] == list("abcde")
    assert not any(ax.collections for ax in fig.axes)


def test_image_mask_pairs_images_on_top_masks_below():
    images, masks, _ = make_set(4)
    samples = [{"image": images[i], "mask": masks[i], "defect_type": f"t{i}"} for i in range(4)]
    fig = G.image_mask_pairs(samples)
    assert len(fig.axes) == 8
    top, bottom = fig.axes[:4], fig.axes[4:]
    assert [ax.get_title() for ax in top] == ["t0", "t1", "t2", "t3"]
    np.testing.assert_array_equal(images_of(bottom[3])[0].get_array(), masks[3, 0].numpy())


@pytest.mark.parametrize("threshold", [None, 1.5])
def test_anomaly_grid_columns_and_shared_colour_scale(threshold):
    images, masks, maps = make_set(3)
    fig = G.anomaly_grid(images, masks, maps, titles=["a", "b", "c"], threshold=threshold)
    columns = 4 if threshold is None else 5
    assert len(fig.axes) == 3 * columns
    axes = np.array(fig.axes).reshape(3, columns)
    assert [ax.get_title() for ax in axes[0]][:4] == [
        "image",
        "ground truth",
        "anomaly map",
        "overlay",
    ]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["a", "b", "c"]
    expected = (float(maps.min()), float(np.percentile(maps, 99.9)))
    for row in range(3):
        shown = images_of(axes[row, 2])[0]
        np.testing.assert_allclose(shown.get_array(), maps[row])
        assert shown.get_clim() == pytest.approx(expected)  # one scale for every row
        assert images_of(axes[row, 3])[1].get_clim() == pytest.approx(expected)
    if threshold is not None:
        assert axes[0, 4].get_title() == "prediction"
        for row in range(3):
            np.testing.assert_array_equal(
                images_of(axes[row, 4])[0].get_array(), maps[row] >= threshold
            )
    fig = G.anomaly_grid(images, masks, maps, vmax=3.0)
    assert images_of(fig.axes[2])[0].get_clim()[1] == 3.0


def test_layer_maps_row_one_panel_per_layer_at_its_own_resolution():
    images, masks, maps = make_set(2)
    layers = {"layer1": np.random.rand(8, 10), "layer2": np.random.rand(4, 5)}
    fig = G.layer_maps_row(images[1], masks[1], layers, maps[1])
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1:3] == ["layer1 (8×10)", "layer2 (4×5)"]
    np.testing.assert_allclose(images_of(fig.axes[2])[0].get_array(), layers["layer2"])
    np.testing.assert_allclose(images_of(fig.axes[3])[0].get_array(), maps[1])
    assert len(fig.axes[0].collections) == 1 and len(fig.axes[3].collections) == 1


# ----------------------------------------------------------------------------------------
# curves (those not covered by tests/test_metrics.py)
# ----------------------------------------------------------------------------------------


def test_plot_roc_draws_the_given_curve_and_the_diagonal():
    fpr, tpr = np.array([0.0, 0.2, 1.0]), np.array([0.0, 0.8, 1.0])
    fig = C.plot_roc({"image": (fpr, tpr), "pixel": (fpr, fpr)})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3
    chance, image, pixel = ax.get_lines()
    np.testing.assert_array_equal(image.get_xdata(), fpr)
    np.testing.assert_array_equal(image.get_ydata(), tpr)
    area = float(np.trapezoid(tpr, fpr))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["chance (0.500)", f"image AUROC {area:.3f}", "pixel AUROC 0.500"]


def test_plot_roc_thins_long_curves_for_drawing():
    x = np.linspace(0, 1, 3 * C.MAX_POINTS)
    fig = C.plot_roc((x, np.sqrt(x)))
    line = fig.axes[0].get_lines()[1]
    assert len(line.get_xdata()) <= C.MAX_POINTS
    assert line.get_xdata()[0] == 0 and line.get_xdata()[-1] == 1


def test_plot_roc_and_pro_and_report_curves_panels():
    maps = np.zeros((2, 8, 8))
    masks = np.zeros((2, 8, 8), dtype=np.uint8)
    masks[1, 2:5, 2:5] = 1
    maps[1, 2:5, 2:5] = 1.0
    maps[0, 0, 0] = 0.5
    report = M.evaluate(maps, masks, [0, 1])
    fig = C.plot_roc_and_pro(report.pixel_roc, report.pro_curve, title="both")
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["pixel-level ROC", "PRO curve"]
    assert fig._suptitle.get_text() == "both"
    fig = C.plot_report_curves(report, title="report")
    assert [ax.get_title() for ax in fig.axes] == [
        "image-level ROC",
        "pixel-level ROC",
        "PRO curve",
    ]
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert f"AU-PRO {report.au_pro:.3f}" in legend


def test_plot_f1_curve_marks_the_best_threshold():
    thresholds, f1 = np.array([0.1, 0.3, 0.5]), np.array([0.6, 0.9, 0.4])
    fig = C.plot_f1_curve(thresholds, f1, best=0.3)
    ax = fig.axes[0]
    vertical = [line for line in ax.get_lines() if list(line.get_xdata()) == [0.3, 0.3]]
    assert len(vertical) == 1
    assert any("F1 = 0.900" in t.get_text() for t in ax.texts)
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    np.testing.assert_array_equal(dots[0].get_ydata(), f1)


def test_plot_normalized_scores_one_scatter_per_class():
    normalized = np.array([0.1, 0.2, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 1, 1, 1])
    fig = C.plot_normalized_scores(normalized, labels)
    good, defective = fig.axes[0].collections
    np.testing.assert_array_equal(good.get_offsets()[:, 0], [0.1, 0.2])
    np.testing.assert_array_equal(defective.get_offsets()[:, 0], [0.7, 0.8, 0.9])
    threshold = lines_labelled(fig.axes[0], "threshold")[0]
    assert list(threshold.get_xdata()) == [0.5, 0.5]


def test_threshold_explorer_slider_range_and_callback(monkeypatch):
    import ipywidgets as widgets

    _, masks, maps = make_set(3)
    widget = C.threshold_explorer(maps, masks)
    assert isinstance(widget, widgets.interactive)
    slider = widget.children[0]
    assert slider.min == pytest.approx(float(maps.min()), rel=1e-6)
    assert slider.max == pytest.approx(float(maps.max()), rel=1e-6)
    # interactive swallows exceptions of its callback: record the figures it draws.
    drawn, original = [], C.plot_region_overlaps
    monkeypatch.setattr(
        C, "plot_region_overlaps", lambda *a, **k: drawn.append(original(*a, **k)) or drawn[-1]
    )
    slider.value = float(np.percentile(maps, 90))  # the callback runs on every change
    assert len(drawn) == 1
    assert f"threshold {slider.value:.3g}" in drawn[0]._suptitle.get_text()
    widget = C.threshold_explorer(maps, masks, thresholds=[0.2, 0.9])
    assert (widget.children[0].min, widget.children[0].max) == pytest.approx((0.2, 0.9))


# ----------------------------------------------------------------------------------------
# training: loss curves
# ----------------------------------------------------------------------------------------


def test_loss_curve_of_a_plain_dict_has_no_twin_axis():
    fig = T.plot_loss_curve({"loss": [1.0, 0.8, 0.7, 0.65]}, title="t")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    (line,) = lines_labelled(ax, "training loss")
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(line.get_ydata(), [1.0, 0.8, 0.7, 0.65])
    assert ax.get_yscale() == "linear"  # less than a decade
    assert ax.get_title() == "t" and ax.get_xlabel() == "epoch"


def test_loss_curve_with_validation_marks_the_selected_epoch():
    loss = list(10.0 * 0.5 ** np.arange(8))  # spans more than a decade → log scale
    validation = [3.0, 2.0, 1.5, 1.2, 1.1, 1.15, 1.3, 1.4]
    history = TrainHistory(loss=loss, validation_score=validation, best_epoch=4)
    fig = T.plot_loss_curve(history)
    assert len(fig.axes) == 2
    ax, twin = fig.axes
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(lines_labelled(ax, "training loss")[0].get_ydata(), loss)
    np.testing.assert_allclose(lines_labelled(twin, "validation score")[0].get_ydata(), validation)
    (selected,) = lines_labelled(twin, "selected epoch 5")  # 0-based 4 → epoch 5
    assert list(selected.get_xdata()) == [5] and list(selected.get_ydata()) == [1.1]
    vertical = [line for line in ax.get_lines() if list(line.get_xdata()) == [5, 5]]
    assert len(vertical) == 1
    assert "validation score" in twin.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["training loss", "validation score", "selected epoch 5"]


def test_loss_curve_overlays_several_histories():
    histories = {
        "student 1": TrainHistory(loss=[2.0, 1.0, 0.5], validation_score=[3, 2, 2.5], best_epoch=1),
        "student 2": {"loss": [3.0, 1.5, 0.9], "validation_score": [4, 3, 2], "best_epoch": 2},
    }
    fig = T.plot_loss_curve(histories)
    ax, twin = fig.axes
    np.testing.assert_array_equal(lines_labelled(ax, "student 1 loss")[0].get_ydata(), [2, 1, 0.5])
    np.testing.assert_array_equal(
        lines_labelled(ax, "student 2 loss")[0].get_ydata(), [3, 1.5, 0.9]
    )
    np.testing.assert_array_equal(
        lines_labelled(twin, "student 2 validation")[0].get_ydata(), [4, 3, 2]
    )
    assert lines_labelled(twin, "student 1 selected")[0].get_xdata()[0] == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["student 1", "student 2"]
    assert "validation score" in legend and "selected epoch" in legend


def test_loss_curve_draws_into_a_given_axes_and_rejects_empty_history():
    fig, axes = plt.subplots(1, 2)
    assert T.plot_loss_curve(TrainHistory(loss=[1.0]), ax=axes[1]) is fig
    assert lines_labelled(axes[1], "training loss")
    with pytest.raises(ValueError, match="no loss"):
        T.plot_loss_curve(TrainHistory())
    with pytest.raises(TypeError):
        T.plot_loss_curve([1.0, 2.0])


# ----------------------------------------------------------------------------------------
# training: image scores
# ----------------------------------------------------------------------------------------


def class_patches(ax) -> dict[str, np.ndarray]:
    """Counts of the labelled histogram fills: ``{"good (15)": counts, ...}``."""
    return {
        p.get_label(): p.get_data().values
        for p in ax.patches
        if isinstance(p, StepPatch) and not p.get_label().startswith("_")
    }


def test_score_histogram_few_images_shared_bins_and_threshold():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0, 1, 15), rng.normal(2, 1, 30)])
    labels = np.array([0] * 15 + [1] * 30)
    fig = T.plot_score_histogram(scores, labels, threshold=1.0)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    counts = class_patches(ax)
    assert set(counts) == {"good (15)", "defective (30)"}
    assert counts["good (15)"].sum() == 15 and counts["defective (30)"].sum() == 30
    edges = [p.get_data().edges for p in ax.patches if isinstance(p, StepPatch)]
    for e in edges[1:]:
        np.testing.assert_array_equal(e, edges[0])  # shared bins
    assert edges[0][0] == scores.min() and edges[0][-1] == scores.max()
    (line,) = lines_labelled(ax, "threshold")
    assert list(line.get_xdata()) == [1.0, 1.0]
    missed = int(np.sum(scores[15:] < 1.0))
    alarms = int(np.sum(scores[:15] >= 1.0))
    assert f"({missed} missed, {alarms} false alarms)" in line.get_label()


def test_score_histogram_from_a_report_and_without_threshold():
    maps = np.zeros((4, 6, 6))
    masks = np.zeros((4, 6, 6), dtype=np.uint8)
    masks[2:, 1:3, 1:3] = 1
    maps[2:, 1:3, 1:3] = 1.0
    maps[1, 0, 0] = 0.4
    report = M.evaluate(maps, masks, [0, 0, 1, 1])
    fig = T.plot_score_histogram(report, [0, 0, 1, 1], bins=4)
    ax = fig.axes[0]
    (line,) = lines_labelled(ax, "threshold")
    assert line.get_xdata()[0] == report.threshold
    assert len(class_patches(ax)["good (2)"]) == 4
    fig = T.plot_score_histogram([0.1, 0.2, 0.9], [0, 0, 1])
    assert not lines_labelled(fig.axes[0], "threshold")
    with pytest.raises(ValueError, match="3 entries"):
        T.plot_score_histogram([0.1, 0.2], [0, 0, 1])


def test_per_defect_scores_good_first_and_counts():
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.95, 0.4])
    types = ["good", "scratch", "good", "crack", "good", "scratch", "crack"]
    fig = T.plot_per_defect_scores(scores, types, threshold=0.5)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["good (3)", "crack (2)", "scratch (2)"]
    ticks = dict(zip(labels, ax.get_yticks(), strict=True))
    assert ticks["good (3)"] > ticks["crack (2)"] > ticks["scratch (2)"]  # good on top
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in points] == [3, 2, 2]
    np.testing.assert_array_equal(np.sort(points[0].get_offsets()[:, 0]), [0.1, 0.2, 0.3])
    (line,) = lines_labelled(ax, "threshold")
    assert list(line.get_xdata()) == [0.5, 0.5]
    assert [t.get_text() for t in ax.texts] == ["0/3 flagged", "1/2 found", "2/2 found"]
    assert "threshold 0.5" in ax.get_title()
    fig = T.plot_per_defect_scores(scores, types)
    assert not fig.axes[0].texts and not lines_labelled(fig.axes[0], "threshold")
    with pytest.raises(ValueError, match="one per image"):
        T.plot_per_defect_scores(scores, types[:-1])


# ----------------------------------------------------------------------------------------
# explorer
# ----------------------------------------------------------------------------------------


def test_plot_prediction_panels_and_dice():
    images, masks, maps = make_set(3)
    threshold = 1.5
    fig = E.plot_prediction(images[2], masks[2], maps[2], threshold, title="crack")
    assert len(fig.axes) == 5  # four panels and the colour bar
    panels = fig.axes[:4]
    np.testing.assert_array_equal(images_of(panels[3])[0].get_array(), maps[2] >= threshold)
    np.testing.assert_allclose(images_of(panels[1])[0].get_array(), maps[2])
    for ax in (panels[0], panels[2], panels[3]):
        assert len(ax.collections) == 1  # the ground-truth outline
    dice = M.dice(maps[2] >= threshold, masks[2, 0].numpy())
    assert fig._suptitle.get_text() == f"crack: Dice {dice:.2f} at threshold 1.5"


def test_prediction_explorer_sliders_and_callback(monkeypatch):
    import ipywidgets as widgets

    images, masks, maps = make_set(5)
    widget = E.prediction_explorer(images, masks, maps, titles=list("abcde"))
    assert isinstance(widget, widgets.interactive)
    assert isinstance(widget.out, widgets.Output)
    index, threshold = widget.kwargs_widgets
    assert (index.min, index.max, index.value) == (0, 4, 0)
    assert threshold.min == pytest.approx(float(maps.min()), rel=1e-6)
    assert threshold.max == pytest.approx(float(maps.max()), rel=1e-6)
    assert threshold.value == pytest.approx(float(np.percentile(maps, 95)), rel=1e-6)

    calls = []
    original = E.plot_prediction

    def recording(*args, **kwargs):
        fig = original(*args, **kwargs)
        calls.append((args, fig._suptitle.get_text()))
        return fig

    monkeypatch.setattr(E, "plot_prediction", recording)
    index.value = 3
    threshold.value = 1.7
    assert len(calls) == 2
    args, title = calls[-1]
    np.testing.assert_array_equal(args[2], maps[3])
    assert args[3] == pytest.approx(1.7)
    dice = M.dice(maps[3] >= args[3], masks[3, 0].numpy())
    assert title == f"d: Dice {dice:.2f} at threshold {args[3]:.3g}"


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [(0.5, (None, None, 0.5)), (5.0, (None, 5.0, 5.0)), ([0.2, 0.8], (0.2, 0.8, None))],
)
def test_prediction_explorer_threshold_argument(thresholds, expected):
    images, masks, maps = make_set(2)
    _, slider = E.prediction_explorer(images, masks, maps, thresholds=thresholds).kwargs_widgets
    low, high, start = expected
    assert slider.min == pytest.approx(float(maps.min()) if low is None else low, rel=1e-6)
    assert slider.max == pytest.approx(float(maps.max()) if high is None else high, rel=1e-6)
    if start is not None:
        assert slider.value == pytest.approx(start)
    assert slider.min <= slider.value <= slider.max


def test_prediction_explorer_rejects_mismatched_inputs():
    images, masks, maps = make_set(3)
    with pytest.raises(ValueError, match="3 anomaly maps"):
        E.prediction_explorer(images[:2], masks, maps)
    with pytest.raises(ValueError, match="titles"):
        E.prediction_explorer(images, masks, maps, titles=["a"])


def test_prediction_grid_is_anomaly_grid_at_the_threshold():
    images, masks, maps = make_set(5)
    threshold = 1.5
    fig = E.prediction_grid(images, masks, maps, threshold, indices=[1, 4], titles=list("abcde"))
    assert len(fig.axes) == 2 * 5
    axes = np.array(fig.axes).reshape(2, 5)
    for row, i in enumerate([1, 4]):
        np.testing.assert_array_equal(images_of(axes[row, 4])[0].get_array(), maps[i] >= threshold)
        dice = M.dice(maps[i] >= threshold, masks[i, 0].numpy())
        assert axes[row, 0].get_ylabel() == f"{'abcde'[i]}\nDice {dice:.2f}"
    vmax = float(np.percentile(maps, 99.9))  # the scale of all maps, as in the explorer
    assert images_of(axes[0, 2])[0].get_clim()[1] == pytest.approx(vmax)
    assert images_of(axes[1, 2])[0].get_clim()[1] == pytest.approx(vmax)
    assert "threshold 1.5" in fig._suptitle.get_text()
    fig = E.prediction_grid(images, masks, maps, threshold)  # default: 4 spread images
    assert len(fig.axes) == 4 * 5
    assert fig.axes[0].get_ylabel().startswith("image 0")


def test_explorers_draw_lazily_when_headless(monkeypatch):
    """STAD_HEADLESS=1 (book builds, tests): no drawing until a control is used."""
    images, masks, maps = make_set(5)
    calls = []
    monkeypatch.setattr(E, "plot_prediction", lambda *a, **k: calls.append(a) or plt.figure())
    monkeypatch.setenv("STAD_HEADLESS", "1")
    widget = E.prediction_explorer(images, masks, maps)
    assert calls == [] and widget.manual
    widget.update()  # what the "draw" button does
    assert len(calls) == 1
    monkeypatch.setenv("STAD_HEADLESS", "0")
    E.prediction_explorer(images, masks, maps)
    assert len(calls) == 2  # a live notebook draws at once


def test_descriptor_pca_image_orders_components_by_variance():
    rng = np.random.default_rng(0)
    strong = np.repeat(np.linspace(-5, 5, 8)[None, :], 8, axis=0)  # a horizontal ramp
    descriptors = np.stack([strong, 0.01 * rng.normal(size=(8, 8)), np.zeros((8, 8))])
    rgb = G.descriptor_pca_image(descriptors)
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    red = rgb[..., 0]  # the first component follows the ramp (up to sign)
    assert abs(np.corrcoef(red[0], np.arange(8))[0, 1]) > 0.99


def test_triplet_and_descriptor_figures():
    triplet = {k: torch.rand(3, 9, 9) for k in ("anchor", "positive", "negative")}
    fig = G.triplet_grid([triplet, triplet])
    assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "anchor"
    fig = G.image_and_descriptor_pca(
        torch.rand(2, 3, 8, 8), np.random.rand(2, 5, 8, 8), titles=["a", "b"]
    )
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "a"


def test_maps_side_by_side_scales_each_column_separately():
    images, masks = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8)
    small, large = np.random.rand(2, 8, 8) * 0.01, np.random.rand(2, 8, 8) * 100
    fig = G.maps_side_by_side(images, masks, {"e": large, "v": small})
    assert len(fig.axes) == 6
    assert fig.axes[1].images[0].get_clim()[1] > 1 > fig.axes[2].images[0].get_clim()[1]


def test_plot_loss_parts_one_panel_per_term():
    parts = [{"distillation": 10 - i, "metric": 1 / (i + 1), "total": 11 - i} for i in range(30)]
    fig = T.plot_loss_parts(parts, smooth=5)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["distillation", "metric", "total"]
    raw = fig.axes[0].lines[0].get_ydata()
    assert list(raw) == [10 - i for i in range(30)]
    assert len(fig.axes[0].lines[1].get_ydata()) == 26  # moving average of 5


def test_maps_side_by_side_row_scale_is_shared_along_each_row():
    images, masks = torch.rand(2, 3, 8, 8), torch.zeros(2, 8, 8)
    weak = np.stack([np.full((8, 8), 0.5), np.full((8, 8), 50.0)])  # row 0 weak, row 1 strong
    weak[:, 0, 0] = 0.0
    strong = weak * 2
    fig = G.maps_side_by_side(images, masks, {"e": weak, "score": strong}, color_scale="row")
    # axes: row 0 = [image, e, score], row 1 = [image, e, score]
    row0 = [fig.axes[i].images[0].get_clim() for i in (1, 2)]
    row1 = [fig.axes[i].images[0].get_clim() for i in (4, 5)]
    assert row0[0] == row0[1] and row1[0] == row1[1]  # one scale per row
    assert row0[0][1] == pytest.approx(1.0, rel=0.01)  # row 0 is not drawn on row 1's scale
    assert row1[0][1] == pytest.approx(100.0, rel=0.01)
    with pytest.raises(ValueError, match="color_scale"):
        G.maps_side_by_side(images, masks, {"e": weak}, color_scale="image")


def test_pyplot_for_files_keeps_the_backend_once_pyplot_is_in_use():
    import matplotlib
    import matplotlib.pyplot as plt

    from stad_utils.viz.style import pyplot_for_files

    before = matplotlib.get_backend()
    assert pyplot_for_files() is plt
    assert matplotlib.get_backend() == before  # a notebook's inline backend would stay


def test_ensemble_plane_keeps_e_exact_and_v_as_far_as_two_axes_allow():
    from stad_utils.methods.us_scores import predictive_variance, regression_error
    from stad_utils.viz.ensemble import ensemble_plane, plot_ensemble_at_pixels

    generator = torch.Generator().manual_seed(2)
    students = torch.randn(3, 6, generator=generator)
    teacher = torch.randn(6, generator=generator)
    plane = ensemble_plane(students, teacher)
    maps = [s.view(1, 6, 1, 1) for s in students]
    e = regression_error(maps, teacher.view(1, 6, 1, 1)).item()
    v = predictive_variance(maps).item()
    assert plane["error"] == pytest.approx(e, rel=1e-5)
    assert plane["variance"] == pytest.approx(v, rel=1e-5)
    # the teacher lies on the first axis at distance √e
    assert plane["teacher"][1] == pytest.approx(0.0, abs=1e-9)
    assert plane["teacher"][0] == pytest.approx(e**0.5, rel=1e-6)
    # three students span a plane around their mean: the projection keeps all of v only if
    # that plane holds the teacher's direction; it never shows more than v
    shown = (plane["students"] ** 2).sum(axis=1).mean()
    assert shown <= v + 1e-9 and shown > 0
    agreeing = ensemble_plane(torch.ones(3, 4), torch.zeros(4))
    assert agreeing["variance"] == 0.0 and agreeing["error"] == pytest.approx(4.0)
    fig = plot_ensemble_at_pixels([plane, agreeing], ["defect", "good"])
    assert len(fig.axes) == 2 and "e = " in fig.axes[0].get_title()
    assert fig.axes[1].get_xlim()[1] == pytest.approx(2 * 1.15)  # its own: teacher at 2
    fig = plot_ensemble_at_pixels([plane, agreeing], ["defect", "good"], shared_scale=True)
    assert fig.axes[0].get_xlim() == fig.axes[1].get_xlim()  # one scale for both
