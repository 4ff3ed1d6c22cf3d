"""An ensemble's predictions at one pixel, drawn in the plane where e and v can be seen.

Uninformed Students' two scores at a pixel are the squared distance of the students' mean
prediction to the teacher's (normalized) descriptor, e (eq. 6), and the students' mean
squared distance to their mean, v (eq. 7). The descriptors have 128 dimensions;
:func:`ensemble_plane` picks the 2-D plane through the students' mean that holds the
direction to the teacher (so e is drawn exactly) and the students' main direction of
disagreement (so most of v is drawn), and :func:`plot_ensemble_at_pixels` draws a few
pixels side by side on one scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .style import DEFECT_COLOR, GOOD_COLOR, use_book_style

__all__ = ["ensemble_plane", "plot_ensemble_at_pixels"]


def ensemble_plane(students: torch.Tensor, teacher: torch.Tensor) -> dict:
    """Project one pixel's ensemble on a plane. ``students`` ``(M, d)``, ``teacher`` ``(d,)``.

    Returns ``{"students": (M, 2), "mean": (2,), "teacher": (2,), "error": e,
    "variance": v}`` with the students' mean at the origin, the teacher on the first
    axis (at distance √e), the second axis along the students' largest spread orthogonal
    to it; ``error`` and ``variance`` are eqs. 6 and 7 in all ``d`` dimensions.
    """
    students, teacher = students.double(), teacher.double()
    mean = students.mean(dim=0)
    deviations = students - mean
    error = float((mean - teacher).pow(2).sum())
    variance = float(deviations.pow(2).sum(dim=1).mean())
    to_teacher = teacher - mean
    first = to_teacher / to_teacher.norm() if to_teacher.norm() > 0 else torch.eye(len(mean))[0]
    rest = deviations - (deviations @ first)[:, None] * first  # spread orthogonal to axis 1
    if rest.norm() > 1e-12:
        second = torch.linalg.svd(rest, full_matrices=False).Vh[0]
    else:  # all students on the line to the teacher: any orthogonal direction
        second = torch.linalg.svd(torch.eye(len(mean)) - torch.outer(first, first)).U[:, 0]
    basis = torch.stack([first, second], dim=1).double()  # (d, 2)
    return {
        "students": (deviations @ basis).numpy(),
        "mean": np.zeros(2),
        "teacher": (to_teacher @ basis).numpy(),
        "error": error,
        "variance": variance,
    }


def plot_ensemble_at_pixels(
    planes: Sequence[dict], titles: Sequence[str], size: float = 3.2, shared_scale: bool = False
):
    """One panel per pixel (from :func:`ensemble_plane`): students as dots, their mean as
    a cross, the teacher's descriptor as a star; the title gives e and v in all dimensions.
    Each panel is scaled to its own points (a defect's distances can be thousands of times
    a good pixel's, and would shrink the good panel to a dot), unless ``shared_scale``."""
    use_book_style()
    fig, axes = plt.subplots(1, len(planes), figsize=(size * len(planes), size + 0.5))
    axes = np.atleast_1d(axes)

    def reach_of(chosen):
        points = np.concatenate([np.vstack([p["students"], p["teacher"]]) for p in chosen])
        return float(np.abs(points).max()) * 1.15 or 1.0

    for ax, plane, title in zip(axes, planes, titles, strict=True):
        reach = reach_of(planes if shared_scale else [plane])
        students = plane["students"]
        for point in students:
            ax.plot([0, point[0]], [0, point[1]], color=GOOD_COLOR, alpha=0.35, lw=1)
        ax.scatter(students[:, 0], students[:, 1], s=45, color=GOOD_COLOR, label="students")
        ax.plot([0, plane["teacher"][0]], [0, plane["teacher"][1]], color=DEFECT_COLOR, lw=1.5)
        ax.scatter(*plane["teacher"], marker="*", s=220, color=DEFECT_COLOR, label="teacher")
        ax.scatter(0, 0, marker="x", s=80, color="black", label="students' mean")
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.set_title(f"{title}\ne = {plane['error']:.3g}, v = {plane['variance']:.3g}")
        ax.set_xlabel("towards the teacher")
        ax.set_ylabel("students' main disagreement")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig
