"""Checks for the dense-features chapter: the two steps of fast dense extraction."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import dense
from . import attempt, fail, passed


def _reference_pool_all_offsets(x: torch.Tensor, s: int) -> torch.Tensor:
    return dense.stride_offsets(F.max_pool2d(x, s, stride=1), s)


def _cases():
    generator = torch.Generator().manual_seed(4)
    return [
        ("one 8×8 map, s = 2", torch.randn(1, 1, 8, 8, generator=generator), 2),
        ("a batch of 3, 2 channels, 9×11, s = 2", torch.randn(3, 2, 9, 11, generator=generator), 2),
        (
            "a batch of 2, 3 channels, 13×10, s = 3",
            torch.randn(2, 3, 13, 10, generator=generator),
            3,
        ),
    ]


def _as_tensor(answer, name: str, description: str) -> torch.Tensor:
    if not isinstance(answer, torch.Tensor):
        fail(name, f"for {description} you returned {type(answer).__name__}; return a tensor.")
    return answer.detach().float()


def _image_major(pieces_by_offset: list[torch.Tensor]) -> torch.Tensor:
    """The same pieces stacked image by image instead of offset by offset."""
    return torch.stack(pieces_by_offset, dim=1).flatten(0, 1)


def check_pool_all_offsets(pool_all_offsets) -> bool:
    """Check ``pool_all_offsets(x (B, C, H, W), s) -> (s²·B, C, h, w)``, offset-major."""
    name = "Exercise 4.1 · Pooling at every offset"
    for description, x, s in _cases():
        answer = attempt(name, pool_all_offsets, x.clone(), s)
        answer = _as_tensor(answer, name, description)
        expected = _reference_pool_all_offsets(x, s)
        b, c, h, w = expected.shape
        if answer.shape != expected.shape:
            hint = (
                f"Expected (s²·B, C, h, w) = {tuple(expected.shape)}: the s² offsets are "
                "stacked in the batch dimension, each cropped to the size of the smallest "
                "one (that of offset (s − 1, s − 1))."
            )
            if answer.shape[0] == x.shape[0]:
                hint += " Your batch has only B entries: did you compute one offset only?"
            fail(name, f"for {description} the shape is {tuple(answer.shape)}. {hint}")
        if torch.allclose(answer, expected, atol=1e-6):
            continue
        pieces = list(expected.split(x.shape[0], dim=0))
        swapped = torch.cat([pieces[j * s + i] for i in range(s) for j in range(s)], dim=0)
        avg = dense.stride_offsets(F.avg_pool2d(x, s, stride=1), s)
        hint = (
            "Offset (i, j) is the stride-s max pooling of x shifted by i rows and j columns, "
            "i.e. of x[:, :, i:, j:]."
        )
        if torch.allclose(answer, _image_major(pieces), atol=1e-6):
            hint = (
                "Right values, wrong order: stack offset by offset (all B images of offset "
                "(0, 0), then all of offset (0, 1), …), not image by image."
            )
        elif torch.allclose(answer, swapped, atol=1e-6):
            hint = (
                "Row and column offsets are swapped: offset (i, j) shifts by i *rows* and j "
                "*columns*, and the order is i·s + j (j varies fastest)."
            )
        elif torch.allclose(answer, avg, atol=1e-6):
            hint = "You averaged; the patch networks use *max* pooling."
        fail(name, f"for {description} your values differ from the reference. {hint}")
    return passed(name, "s² shifted poolings, offset-major in the batch")


def check_unwarp(unwarp) -> bool:
    """Check ``unwarp(stacked (s²·B, C, h, w), s) -> (B, C, s·h, s·w)``, the interleaving."""
    name = "Exercise 4.2 · Unwarping"
    for description, x, s in _cases():
        stacked = _reference_pool_all_offsets(x, s)
        answer = attempt(name, unwarp, stacked.clone(), s)
        answer = _as_tensor(answer, name, description)
        expected = dense.unwarp(stacked, s)
        if answer.shape != expected.shape:
            fail(
                name,
                f"for {description} the shape is {tuple(answer.shape)}, expected "
                f"(B, C, s·h, s·w) = {tuple(expected.shape)}.",
            )
        if torch.allclose(answer, expected, atol=1e-6):
            continue
        m = stacked.shape[0] // (s * s)
        pieces = stacked.split(m, dim=0)  # offset-major: pieces[i·s + j] is offset (i, j)
        transposed = torch.empty_like(expected)
        for i in range(s):
            for j in range(s):
                transposed[:, :, j::s, i::s] = pieces[i * s + j]
        blocks = torch.cat(
            [torch.cat([pieces[i * s + j] for j in range(s)], dim=3) for i in range(s)], dim=2
        )
        # Reading the stack image by image: entry b·s² + k taken as offset k of image b.
        as_image_major = stacked.view(m, s * s, *stacked.shape[1:]).transpose(0, 1)
        image_major = dense.unwarp(as_image_major.flatten(0, 1), s)
        hint = (
            "Output pixel (y·s + i, x·s + j) of image b is pixel (y, x) of the map of offset "
            "(i, j), which is entry (i·s + j)·B + b of the stack."
        )
        if torch.allclose(answer, transposed, atol=1e-6):
            hint = "Rows and columns are swapped: offset (i, j) fills out[..., i::s, j::s]."
        elif torch.allclose(answer, blocks, atol=1e-6):
            hint = (
                "You placed the offsets side by side as blocks; they must be *interleaved*: "
                "offset (i, j) fills every s-th pixel, out[..., i::s, j::s]."
            )
        elif torch.allclose(answer, image_major, atol=1e-6):
            hint = (
                "The batch is offset-major: entries 0 … B − 1 are offset (0, 0) of every "
                "image, the next B are offset (0, 1), and so on."
            )
        fail(name, f"for {description} your values differ from the reference. {hint}")
    # The point of the exercise: pooling at every offset, then unwarping, is stride-1 pooling.
    return passed(name, "interleaved back: pooling at every offset + unwarp = stride-1 pooling")
