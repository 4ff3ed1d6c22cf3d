"""Checks for the Simple Student chapter."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from . import attempt, fail, passed

# (in channels, inner filters, out channels, stride): the blocks of Appendix A.2.
BLOCKS = [(64, 16, 64, 1), (64, 16, 128, 2), (128, 16, 128, 1), (128, 32, 256, 2),
          (256, 32, 256, 1)]  # fmt: skip


def reference_block(c_in: int, inner: int, c_out: int, stride: int) -> nn.Module:
    """A bottlenecked BasicBlock as in Appendix A.2 (torchvision's block, slimmed conv1)."""
    downsample = None
    if stride != 1 or c_in != c_out:
        downsample = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
        )
    block = BasicBlock(c_in, c_out, stride, downsample)
    block.conv1 = nn.Conv2d(c_in, inner, 3, stride, 1, bias=False)
    block.bn1 = nn.BatchNorm2d(inner)
    block.conv2 = nn.Conv2d(inner, c_out, 3, 1, 1, bias=False)
    return block


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_block_parameters(block_parameters) -> bool:
    """Check ``block_parameters(c_in, inner, c_out, stride) -> int`` against torchvision."""
    name = "Exercise 8.1 · Parameters of a slim block"
    for c_in, inner, c_out, stride in BLOCKS:
        answer = int(attempt(name, block_parameters, c_in, inner, c_out, stride))
        expected = _count(reference_block(c_in, inner, c_out, stride))
        if answer != expected:
            hint = (
                "Count conv1 (3×3, no bias), bn1 (2 per channel), conv2, bn2, and — when "
                "the stride is 2 or the channels change — the 1×1 downsample conv and its "
                "batch norm."
            )
            fail(
                name,
                f"for a block {c_in}→{inner}→{c_out} (stride {stride}) you counted "
                f"{answer:,}, expected {expected:,}. {hint}",
            )
    return passed(name, f"{len(BLOCKS)} blocks of Appendix A.2 counted right")


def check_slim_block(slim_block) -> bool:
    """Check ``slim_block(c_in, inner, c_out, stride) -> nn.Module`` (a bottlenecked block)."""
    name = "Exercise 8.2 · Build a slim block"
    x = torch.randn(2, 64, 16, 16)
    for c_in, inner, c_out, stride in BLOCKS:
        block = attempt(name, slim_block, c_in, inner, c_out, stride)
        inputs = torch.randn(2, c_in, 16, 16) if c_in != 64 else x
        out = block(inputs)
        shape = (2, c_out, 16 // stride, 16 // stride)
        if tuple(out.shape) != shape:
            fail(
                name,
                f"block {c_in}→{inner}→{c_out} (stride {stride}) gives "
                f"{tuple(out.shape)}, expected {shape}.",
            )
        expected = _count(reference_block(c_in, inner, c_out, stride))
        if _count(block) != expected:
            fail(
                name,
                f"block {c_in}→{inner}→{c_out} has {_count(block):,} parameters, "
                f"expected {expected:,} (conv1 to {inner} filters, conv2 back to {c_out}).",
            )
        widths = sorted({m.out_channels for m in block.modules() if isinstance(m, nn.Conv2d)})
        if inner not in widths:
            fail(name, f"no convolution of block {c_in}→{inner}→{c_out} has {inner} filters.")
    return passed(name, "shapes and parameter counts match Appendix A.2")
