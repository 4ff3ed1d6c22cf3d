"""The checks of chapter 4's exercises accept right answers and explain wrong ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter04 import check_pool_all_offsets, check_unwarp


def _offset_pieces(x, s, pool=F.max_pool2d):
    pieces = [pool(x[:, :, i:, j:], s) for i in range(s) for j in range(s)]
    h, w = pieces[-1].shape[-2:]
    return [piece[:, :, :h, :w] for piece in pieces]


def pool_right(x, s):
    return torch.cat(_offset_pieces(x, s), dim=0)


def pool_via_stride_one(x, s):  # the package's way: stride-1 pooling read out at [i::s, j::s]
    full = F.max_pool2d(x, s, stride=1)
    pieces = [full[:, :, i::s, j::s] for i in range(s) for j in range(s)]
    h, w = pieces[-1].shape[-2:]
    return torch.cat([piece[:, :, :h, :w] for piece in pieces], dim=0)


def pool_image_major(x, s):
    return torch.stack(_offset_pieces(x, s), dim=1).flatten(0, 1)


def pool_swapped(x, s):
    pieces = _offset_pieces(x, s)
    return torch.cat([pieces[j * s + i] for i in range(s) for j in range(s)], dim=0)


def pool_average(x, s):
    return torch.cat(_offset_pieces(x, s, F.avg_pool2d), dim=0)


def pool_one_offset(x, s):
    return F.max_pool2d(x, s)


def pool_uncropped(x, s):
    return [F.max_pool2d(x[:, :, i:, j:], s) for i in range(s) for j in range(s)]


def unwarp_right(stacked, s):
    n, c, h, w = stacked.shape
    b = n // (s * s)
    out = stacked.new_empty(b, c, h * s, w * s)
    for i in range(s):
        for j in range(s):
            out[:, :, i::s, j::s] = stacked[(i * s + j) * b : (i * s + j + 1) * b]
    return out


def unwarp_transposed(stacked, s):
    n, c, h, w = stacked.shape
    b = n // (s * s)
    out = stacked.new_empty(b, c, h * s, w * s)
    for i in range(s):
        for j in range(s):
            out[:, :, j::s, i::s] = stacked[(i * s + j) * b : (i * s + j + 1) * b]
    return out


def unwarp_blocks(stacked, s):
    b = stacked.shape[0] // (s * s)
    pieces = stacked.split(b, dim=0)
    return torch.cat(
        [torch.cat([pieces[i * s + j] for j in range(s)], dim=3) for i in range(s)], dim=2
    )


def unwarp_image_major(stacked, s):
    n, c, h, w = stacked.shape
    b = n // (s * s)
    out = stacked.new_empty(b, c, h * s, w * s)
    for k in range(s * s):
        i, j = divmod(k, s)
        out[:, :, i::s, j::s] = stacked[k :: s * s]
    return out


def stub(*args):
    ### BEGIN SOLUTION
    raise NotImplementedError("write your solution here")
    ### END SOLUTION


@pytest.mark.parametrize("answer", [pool_right, pool_via_stride_one])
def test_pool_all_offsets_accepts_right_answers(answer, capsys):
    assert check_pool_all_offsets(answer) is True
    assert "✔ Exercise 4.1 · Pooling at every offset: correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (pool_image_major, "wrong order: stack offset by offset"),
        (pool_swapped, "Row and column offsets are swapped"),
        (pool_average, "You averaged"),
        (pool_one_offset, "did you compute one offset only"),
        (pool_uncropped, "return a tensor"),
    ],
)
def test_pool_all_offsets_explains_wrong_answers(answer, hint):
    with pytest.raises(ExerciseError, match="✘ Exercise 4.1 .*not yet. .*" + hint):
        check_pool_all_offsets(answer)


def test_unwarp_accepts_the_right_answer(capsys):
    assert check_unwarp(unwarp_right) is True
    assert "✔ Exercise 4.2 · Unwarping: correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (unwarp_transposed, "Rows and columns are swapped"),
        (unwarp_blocks, "side by side as blocks"),
        (unwarp_image_major, "The batch is offset-major"),
        (lambda stacked, s: stacked, "expected \\(B, C, s·h, s·w\\)"),
    ],
)
def test_unwarp_explains_wrong_answers(answer, hint):
    with pytest.raises(ExerciseError, match="✘ Exercise 4.2 .*not yet. .*" + hint):
        check_unwarp(answer)


def test_unwarp_inverts_pool_all_offsets_into_stride_one_pooling():
    x = torch.randn(2, 3, 9, 9)
    assert torch.equal(unwarp_right(pool_right(x, 2), 2), F.max_pool2d(x, 2, stride=1))


@pytest.mark.parametrize("check", [check_pool_all_offsets, check_unwarp])
def test_stub_gets_the_friendly_message(check):
    with pytest.raises(ExerciseError, match="still raises NotImplementedError") as info:
        check(stub)
    assert isinstance(info.value.__cause__, NotImplementedError)
