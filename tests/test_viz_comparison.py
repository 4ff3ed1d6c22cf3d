"""The comparison figures draw from plain dicts, with gaps and other costs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from stad_utils.viz.comparison import plot_cost_accuracy, plot_per_category  # noqa: E402

POINTS = {
    "stfpm": {"train_seconds": 20.0, "au_pro": 0.94, "parameters": 1.4e6, "ms": 5.5},
    "fvv": {"train_seconds": 50.0, "au_pro": 0.95, "parameters": 2.8e6, "ms": 16.0},
    "untimed": {"train_seconds": None, "au_pro": 0.9, "parameters": 1e6, "ms": None},
}


def test_per_category_bars_with_gaps_and_error_bars():
    values = {"stfpm": {"brick": 0.97, "grass": 0.95}, "fvv": {"brick": 0.98}}
    errors = {"stfpm": {"brick": 0.01, "grass": None}}
    fig = plot_per_category(values, errors)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["brick", "grass"]
    assert len(ax.patches) == 4  # 2 methods × 2 categories, the missing one drawn at 0
    plt.close(fig)


def test_cost_accuracy_leaves_out_missing_points_and_takes_another_cost():
    fig = plot_cost_accuracy(POINTS)
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and "training time" in ax.get_xlabel()
    plt.close(fig)
    fig = plot_cost_accuracy(POINTS, cost="ms", xlabel="ms per image")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ms per image"
    assert sorted(c.get_offsets()[0][0] for c in ax.collections) == [5.5, 16.0]
    plt.close(fig)
