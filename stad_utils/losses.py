"""The losses of the seeds, one function each (Uninformed Students' teacher and student).

Equation numbers: seed 000 (talk) eqs. 1–5 and the thesis (seed 001) eqs. 4.8–4.12.
Shapes: ``B`` patches in a mini-batch, ``d`` = 128 descriptor dimensions, ``D`` the
pretrained network's descriptor size (e.g. 512).

Quick use::

    parts = teacher_loss(t_anchor, decoded=dec, target=pretrained,
                         positive=t_pos, negative=t_neg, margin=1.0)
    parts.total.backward()
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

_EPS = 1e-8


def _flat(x: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, n)`` or ``(B, n, 1, 1)`` → ``(B, n)``."""
    if x.dim() == 4 and x.shape[2:] == (1, 1):
        return x.flatten(1)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (B, n) or (B, n, 1, 1); got {tuple(x.shape)}.")
    return x


def distillation_loss(decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Knowledge distillation, seed 000 eq. 1 / thesis eq. 4.8.

    ``L_k = ‖D(T̂(p)) − P(p)‖²``: the squared Euclidean distance between the decoded
    teacher descriptor ``decoded (B, D)`` and the pretrained network's descriptor
    ``target (B, D)``, summed over the ``D`` components and averaged over the batch.
    (``(B, D, 1, 1)`` inputs are accepted too.) Returns a scalar.
    """
    decoded, target = _flat(decoded, "decoded"), _flat(target, "target")
    if decoded.shape != target.shape:
        raise ValueError(
            f"Shapes differ: decoded {tuple(decoded.shape)}, target {tuple(target.shape)}."
        )
    return (decoded - target).pow(2).sum(dim=1).mean()


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float,
    *,
    swap: bool = True,
) -> torch.Tensor:
    """Triplet (metric learning) loss, seed 000 eq. 2 / thesis eq. 4.9.

    ``anchor = T̂(p)``, ``positive = T̂(p⁺)``, ``negative = T̂(p⁻)``, each ``(B, d)`` (or
    ``(B, d, 1, 1)``). Per triplet::

        δ⁺ = ‖T̂(p) − T̂(p⁺)‖²
        δ⁻ = min(‖T̂(p) − T̂(p⁻)‖², ‖T̂(p⁺) − T̂(p⁻)‖²)      (swap=True, seed 000)
        L_m = max(0, δ⁺ − δ⁻ + margin)

    averaged over the batch; a scalar. δ⁻ takes the *smaller* (harder) of the two
    negative distances (the "anchor swap" of Balntas et al. 2016). ``swap=False`` uses
    ``δ⁻ = ‖T̂(p) − T̂(p⁻)‖²`` only, as the thesis' eq. 4.9 writes it.
    """
    a, pos, neg = _flat(anchor, "anchor"), _flat(positive, "positive"), _flat(negative, "negative")
    d_pos = (a - pos).pow(2).sum(dim=1)
    d_neg = (a - neg).pow(2).sum(dim=1)
    if swap:
        d_neg = torch.minimum(d_neg, (pos - neg).pow(2).sum(dim=1))
    return torch.clamp(d_pos - d_neg + margin, min=0.0).mean()


def correlation_matrix(
    descriptors: torch.Tensor, over: Literal["patches", "dimensions"] = "patches"
) -> torch.Tensor:
    """Pearson correlation matrix of a batch of descriptors ``(B, d)``.

    * ``over="patches"`` → ``(B, B)``: entry ``(i, j)`` is the correlation between the
      descriptors of patches ``i`` and ``j``, each descriptor read as ``d`` samples: every
      *row* is centred (its mean over the ``d`` components subtracted) and scaled to unit
      Euclidean norm, then ``C = X̃ X̃ᵀ``. Same as ``np.corrcoef(X)``.
    * ``over="dimensions"`` → ``(d, d)``: entry ``(k, l)`` is the correlation between
      descriptor components ``k`` and ``l`` across the ``B`` patches: every *column* is
      centred over the batch and scaled to unit norm, then ``C = X̃ᵀ X̃``. Same as
      ``np.corrcoef(X.T)``.

    A constant row (column) has no defined correlation; a small epsilon in the norm
    makes its entries 0 instead of NaN.
    """
    x = _flat(descriptors, "descriptors")
    if over == "patches":
        axis = 1
    elif over == "dimensions":
        axis = 0
    else:
        raise ValueError(f"over must be 'patches' or 'dimensions'; got {over!r}.")
    x = x - x.mean(dim=axis, keepdim=True)
    x = x / (x.norm(dim=axis, keepdim=True) + _EPS)
    return x @ x.T if over == "patches" else x.T @ x


def compactness_loss(
    descriptors: torch.Tensor,
    over: Literal["patches", "dimensions"] = "patches",
    *,
    absolute: bool = True,
    reduction: Literal["sum", "mean"] = "sum",
) -> torch.Tensor:
    """Descriptor compactness, seed 000 eq. 3 / thesis eq. 4.10: ``L_c = Σ_{i≠j} c_ij``.

    ``descriptors (B, d)`` (or ``(B, d, 1, 1)``): the teacher's descriptors ``T̂(p)`` of the
    mini-batch. ``c`` is :func:`correlation_matrix` (Pearson: centred, then normalized);
    the loss is the sum (``reduction="sum"``, the equation) or the mean (``"mean"``, easier
    to weigh) of its off-diagonal entries. Returns a scalar.

    Two readings of ``c_ij``:

    * ``over="patches"`` (default): what both seeds write — "the correlation between the
      descriptors of two different patches" ``T̂(p_i)`` and ``T̂(p_j)`` of the mini-batch,
      a ``B × B`` matrix; each descriptor is centred over its ``d`` components.
    * ``over="dimensions"``: the original paper (Bergmann et al. 2020, after L2-Net's
      compactness term): the correlation matrix of the descriptor *components* over the
      mini-batch, ``d × d``; each component is centred over the ``B`` patches. This
      decorrelates the 128 channels, so none is redundant — the compactness the paper
      names.

    ``absolute=True`` (default) sums ``|c_ij|``. The equation's literal signed sum
    (``absolute=False``) is not minimized by *uncorrelated* descriptors: it equals
    ``‖Σ_i x̃_i‖² − n`` for the ``n`` unit-norm centred vectors, so it reaches its minimum
    ``−n`` by making them *anti*-correlated on average, and a pair with correlation −1
    is as redundant as one with +1. Summing absolute values makes 0 the minimum,
    reached exactly when every off-diagonal correlation is 0, which is the stated goal
    ("minimize the correlation"). Its gradient at exactly 0 is taken as 0. All
    off-diagonal entries can be 0 only if there is room: ``B ≤ d − 1`` for patches
    (``B`` orthogonal vectors in the ``d − 1`` dimensions left after centring), and
    ``d ≤ B − 1`` for dimensions (so 128 components need mini-batches of 129 or more).
    """
    c = correlation_matrix(descriptors, over)
    off = c[~torch.eye(c.shape[0], dtype=torch.bool, device=c.device)]
    if absolute:
        off = off.abs()
    if reduction == "sum":
        return off.sum()
    if reduction == "mean":
        return off.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}.")


class TeacherLoss(NamedTuple):
    """The result of :func:`teacher_loss`: the weighted total and the unweighted parts."""

    total: torch.Tensor
    distillation: torch.Tensor
    metric: torch.Tensor
    compactness: torch.Tensor


def teacher_loss(
    descriptors: torch.Tensor,
    *,
    decoded: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    positive: torch.Tensor | None = None,
    negative: torch.Tensor | None = None,
    margin: float = 1.0,
    lambda_k: float = 1.0,
    lambda_m: float = 1.0,
    lambda_c: float = 1.0,
    compactness_over: Literal["patches", "dimensions"] = "patches",
    compactness_absolute: bool = True,
    swap: bool = True,
) -> TeacherLoss:
    """The teacher's loss, seed 000 eq. 4 / thesis eq. 4.11.

    ``L = λ_k L_k + λ_m L_m + λ_c L_c`` with ``L_k`` :func:`distillation_loss` of
    ``decoded`` and ``target (B, D)``, ``L_m`` :func:`triplet_loss` of
    ``(descriptors, positive, negative)`` (each ``(B, d)``, ``descriptors = T̂(p)`` the
    anchors) and ``L_c`` :func:`compactness_loss` of ``descriptors``.

    A term whose weight is 0 may leave its inputs ``None``; it is then reported as 0.
    Returns :class:`TeacherLoss` ``(total, distillation, metric, compactness)``, the
    parts unweighted.
    """
    zero = descriptors.new_zeros(())
    if lambda_k != 0:
        if decoded is None or target is None:
            raise ValueError("lambda_k != 0 needs decoded and target.")
        l_k = distillation_loss(decoded, target)
    else:
        l_k = zero
    if lambda_m != 0:
        if positive is None or negative is None:
            raise ValueError("lambda_m != 0 needs positive and negative.")
        l_m = triplet_loss(descriptors, positive, negative, margin, swap=swap)
    else:
        l_m = zero
    if lambda_c != 0:
        l_c = compactness_loss(descriptors, compactness_over, absolute=compactness_absolute)
    else:
        l_c = zero
    total = lambda_k * l_k + lambda_m * l_m + lambda_c * l_c
    return TeacherLoss(total, l_k, l_m, l_c)


def student_regression_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> torch.Tensor:
    """A student's regression loss, seed 000 eq. 5 / thesis eq. 4.12.

    ``L(S_i) = 1/(wh) Σ_(r,c) ‖μ^{S_i}_(r,c) − (y^T_(r,c) − μ) diag(σ)⁻¹‖²``.
    ``student`` and ``teacher`` are dense descriptor maps ``(B, d, H, W)``; ``mean`` and
    ``std`` ``(d,)`` are the teacher's per-component statistics on anomaly-free
    training images. The squared distance is summed over ``d`` and averaged over the
    ``H·W`` pixels and the batch. Returns a scalar.
    """
    if student.shape != teacher.shape or student.dim() != 4:
        raise ValueError(
            f"student and teacher must both be (B, d, H, W); got {tuple(student.shape)} "
            f"and {tuple(teacher.shape)}."
        )
    target = (teacher - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    return (student - target).pow(2).sum(dim=1).mean()
