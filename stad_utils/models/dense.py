"""Dense descriptors: the p×p patch descriptor of every pixel, in one pass.

A patch network maps one p×p patch to one descriptor. An anomaly map needs the
descriptor of the patch centred on *every* pixel. Evaluating the network patch by patch
(:func:`naive_dense`) repeats almost all the work, since neighbouring patches overlap.
Running the network on the whole image once shares that work, but each stride-2 pooling
layer halves the resolution: the output then only has the descriptors of every
8th pixel (p = 65).

**Fast dense feature extraction** (Bailer et al., BMVC 2017, the method Uninformed
Students and the thesis §4.3.1 cite) keeps every pixel:

1. *Multi-pooling.* After a pooling layer with stride ``s``, the patches whose top-left
   corners differ by a multiple of ``s`` share the same pooling grid, but a patch
   shifted by ``(i, j)``, ``0 ≤ i, j < s``, needs the grid shifted by ``(i, j)``. So the
   pooling is evaluated for all ``s²`` offsets — as a stride-1 pooling read out at
   ``[i::s, j::s]`` — and the ``s²`` results are stacked in the batch dimension. The
   layers after it run on all of them at once.
2. *Unwarping.* At the end, the batch holds ``Π s_k²`` low-resolution maps per image.
   Undoing the stacking from the last pooling layer to the first interleaves them back:
   ``out[.., y·s + i, x·s + j] = map_(i,j)[.., y, x]``.

The work per layer stays close to one full-resolution stride-1 pass, and the output is
exactly what the patch-by-patch evaluation gives (tested to 1e-4 in float32).

**Borders and image sizes.** The image is padded by ``p // 2`` pixels on each side
(``padding="reflect"`` by default, ``"replicate"``, or ``"constant"`` zeros; pixels are in
``[0, 1]`` so zeros are black), so the output has the input's size: pixel ``(r, c)``
gets the descriptor of the patch ``padded[r : r + p, c : c + p]``, the patch centred on
``(r, c)``. Any ``H, W ≥ 1`` works: internally the padded image is extended with zeros
at the bottom and right until ``H`` and ``W`` are multiples of the product of the
pooling strides (1, 4 or 8 for p = 17, 33, 65), and the extra outputs are cropped;
those zeros never reach a kept output. The one restriction is PyTorch's: reflect
padding needs ``H, W > p // 2``; smaller images raise a ``ValueError`` that says so.

Quick use::

    net = patch_network(65, seed=0)
    dense = DenseExtractor(net)                 # padding="reflect"
    maps = dense(images)                        # (B, 3, H, W) -> (B, 128, H, W)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .patch_networks import PatchNetwork, cpu_fast_layout

PADDING_MODES = ("reflect", "replicate", "constant")
# Modules that act on each value (or each pixel) independently: applied unchanged.
_POINTWISE = (nn.LeakyReLU, nn.ReLU, nn.Identity, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU)


def image_chunks(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The batch to extract densely, split for speed: one image at a time on a CPU, whole
    elsewhere.

    A batch's dense maps are tens of MB per layer (16 images of 128² at p = 65: 75 MB).
    On a CPU, allocations that large are fresh pages from the operating system every
    time, and zeroing them cost 40 % of Uninformed Students' prediction; one image's
    maps (5 MB) are reused from the allocator's heap. Measured in a whole run on grass
    (45 test images, 3 scales × (3 students + teacher)): 0.92 s per image in batches of
    16, 0.53 s one at a time. GPUs keep their own cache of memory and want large batches."""
    if images.device.type == "cpu" and len(images) > 1:
        return images.split(1)
    return (images,)


def _check_images(images: torch.Tensor) -> tuple[int, int]:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"Images must have shape (B, 3, H, W); got {tuple(images.shape)}.")
    return images.shape[2], images.shape[3]


def pad_images(images: torch.Tensor, p: int, padding: str = "reflect") -> torch.Tensor:
    """Pad ``(B, 3, H, W)`` by ``p // 2`` on each side → ``(B, 3, H + 2·(p//2), W + 2·(p//2))``.

    ``padding`` is ``"reflect"`` (mirror without repeating the edge pixel), ``"replicate"``
    (repeat the edge pixel) or ``"constant"`` (zeros). Raises ``ValueError`` for an unknown
    mode, or for reflect padding of an image not larger than ``p // 2`` in H or W.
    """
    h, w = _check_images(images)
    if padding not in PADDING_MODES:
        raise ValueError(f"Unknown padding {padding!r}; choose one of {PADDING_MODES}.")
    r = p // 2
    if padding == "reflect" and (h <= r or w <= r):
        raise ValueError(
            f"Reflect padding by p // 2 = {r} pixels needs images larger than {r}×{r} "
            f"(H and W > {r}); got H×W = {h}×{w}. Use a larger image, or "
            "padding='replicate' or 'constant', which work for any size."
        )
    if padding == "constant":
        return F.pad(images, (r, r, r, r), mode="constant", value=0.0)
    return F.pad(images, (r, r, r, r), mode=padding)


def stride_offsets(x: torch.Tensor, s: int) -> torch.Tensor:
    """Multi-pooling step: a stride-1 result ``(N, C, h, w)`` → its ``s²`` strided read-outs
    ``[i::s, j::s]`` (offset ``i·s + j`` major), cropped to a common size, stacked in the
    batch: ``(s²·N, C, h', w')``."""
    pieces = [x[:, :, i::s, j::s] for i in range(s) for j in range(s)]
    h = min(piece.shape[2] for piece in pieces)
    w = min(piece.shape[3] for piece in pieces)
    return torch.cat([piece[:, :, :h, :w] for piece in pieces], dim=0)


def unwarp(x: torch.Tensor, s: int) -> torch.Tensor:
    """Inverse of one stacking: ``(s²·M, C, h, w)`` → ``(M, C, h·s, w·s)`` with
    ``out[m, :, y·s + i, x·s + j] = x[(i·s + j)·M + m, :, y, x]``."""
    n, c, h, w = x.shape
    m = n // (s * s)
    x = x.view(s, s, m, c, h, w).permute(2, 3, 4, 0, 5, 1)
    return x.reshape(m, c, h * s, w * s)


def _dense_layer(module: nn.Module, x: torch.Tensor, strides: list[int]) -> torch.Tensor:
    """Apply one layer of the patch network densely, recording its stride in ``strides``."""
    if isinstance(module, _POINTWISE):
        return module(x)
    if isinstance(module, nn.Conv2d):
        if module.padding not in ((0, 0), "valid") or module.dilation != (1, 1):
            raise ValueError(f"Dense extraction needs unpadded, undilated convolutions: {module}")
        if module.stride[0] != module.stride[1]:
            raise ValueError(f"Dense extraction needs square strides: {module}")
        s = module.stride[0]
        y = F.conv2d(x, module.weight, module.bias, stride=1, groups=module.groups)
    elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        k = module.kernel_size
        s = module.stride if module.stride is not None else k
        if not (isinstance(k, int) and isinstance(s, int)) or module.padding not in (0, (0, 0)):
            raise ValueError(f"Dense extraction needs square, unpadded pooling: {module}")
        if module.ceil_mode:
            raise ValueError(f"Dense extraction needs ceil_mode=False pooling: {module}")
        if isinstance(module, nn.MaxPool2d):
            if module.dilation not in (1, (1, 1)):
                raise ValueError(f"Dense extraction needs undilated pooling: {module}")
            y = F.max_pool2d(x, k, stride=1)
        else:
            y = F.avg_pool2d(x, k, stride=1)
    else:
        raise ValueError(
            f"Dense extraction does not know the layer {type(module).__name__}; it handles "
            "Conv2d, MaxPool2d, AvgPool2d and pointwise activations."
        )
    if s == 1:
        return y
    strides.append(s)
    return stride_offsets(y, s)


class DenseExtractor(nn.Module):
    """Fast dense feature extraction (Bailer et al. 2017) around a :class:`PatchNetwork`.

    ``forward(images (B, 3, H, W) in [0, 1]) -> (B, d, H, W)``: channel vector ``[:, :, r, c]``
    is the network's descriptor of the p×p patch centred on pixel ``(r, c)`` of the image
    padded by ``p // 2`` (see the module docstring for borders and sizes). Shares the
    wrapped network's parameters, so gradients flow to it (students can train densely).
    """

    def __init__(self, patch_net: PatchNetwork, padding: str = "reflect") -> None:
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"Unknown padding {padding!r}; choose one of {PADDING_MODES}.")
        self.patch_net = patch_net
        self.padding = padding
        self.receptive_field = patch_net.receptive_field
        self.descriptor_dim = patch_net.descriptor_dim
        self.total_stride = math.prod(_layer_stride(module) for module in patch_net.body.children())

    def forward(self, images: torch.Tensor, padded: bool = False) -> torch.Tensor:
        """Dense descriptors ``(B, d, H, W)``. With ``padded=True`` the input is a window
        already padded by ``p // 2`` on each side (e.g. cut from a larger padded image):
        ``(B, 3, H + 2·(p//2), W + 2·(p//2))`` → ``(B, d, H, W)``, the descriptors of the
        window's inner pixels exactly as the whole image would give them."""
        p, step = self.receptive_field, self.total_stride
        if padded:
            h, w = (size - 2 * (p // 2) for size in _check_images(images))
            if h < 1 or w < 1:
                raise ValueError(
                    f"A window padded for p = {p} must be larger than {p - 1} pixels in H "
                    f"and W; got {tuple(images.shape[-2:])}."
                )
            x = images
        else:
            h, w = _check_images(images)
            x = pad_images(images, p, self.padding)
        # Extend to multiples of the total stride; these zeros only reach cropped outputs.
        extra_h, extra_w = (-h) % step, (-w) % step
        if extra_h or extra_w:
            x = F.pad(x, (0, extra_w, 0, extra_h), mode="constant", value=0.0)
        x = cpu_fast_layout(self.patch_net.normalize(x))
        strides: list[int] = []
        for module in self.patch_net.body.children():
            x = _dense_layer(module, x, strides)
        expected = ((h + extra_h) // step, (w + extra_w) // step)
        if tuple(x.shape[-2:]) != expected:  # the network is not a valid patch network
            raise RuntimeError(
                f"Dense extraction produced {tuple(x.shape[-2:])} maps, expected {expected}: "
                f"does the network map a {p}×{p} patch to 1×1?"
            )
        for s in reversed(strides):
            x = unwarp(x, s)
        return x[:, :, :h, :w]

    def extra_repr(self) -> str:
        return f"padding={self.padding!r}, total_stride={self.total_stride}"


def _layer_stride(module: nn.Module) -> int:
    if isinstance(module, nn.Conv2d):
        return module.stride[0]
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        s = module.stride if module.stride is not None else module.kernel_size
        return s if isinstance(s, int) else s[0]
    return 1


@torch.no_grad()
def naive_dense(
    patch_net: PatchNetwork,
    images: torch.Tensor,
    padding: str = "reflect",
    batch_size: int = 256,
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The reference: cut out every p×p patch and run the network on them in batches.

    ``images (B, 3, H, W)`` in ``[0, 1]`` → ``(B, d, H, W)``, or ``(B, d, r1 − r0, W)`` for
    ``rows=(r0, r1)`` (only those output rows are computed: for timing on a subset).
    Padding as :func:`pad_images`. Patches are gathered ``batch_size`` at a time from a
    strided view, so memory does not grow with the image. Runs without gradients.
    """
    h, w = _check_images(images)
    p = patch_net.receptive_field
    r0, r1 = (0, h) if rows is None else rows
    if not 0 <= r0 < r1 <= h:
        raise ValueError(f"rows must satisfy 0 <= r0 < r1 <= H = {h}; got {rows}.")
    padded = pad_images(images, p, padding)
    # (B, 3, H, W, p, p): view[b, :, y, x] is the patch whose top-left corner is (y, x)
    view = padded.unfold(2, p, 1).unfold(3, p, 1)[:, :, r0:r1]
    b_count, n_rows = images.shape[0], r1 - r0
    total = b_count * n_rows * w
    out = torch.empty(total, patch_net.descriptor_dim, dtype=images.dtype, device=images.device)
    index = torch.arange(total, device=images.device)
    for start in range(0, total, batch_size):
        idx = index[start : start + batch_size]
        bi, rest = idx // (n_rows * w), idx % (n_rows * w)
        yi, xi = rest // w, rest % w
        patches = view[bi, :, yi, xi]  # (n, 3, p, p), a copy of just this batch
        out[start : start + batch_size] = patch_net(patches).flatten(1)
    return out.view(b_count, n_rows, w, -1).permute(0, 3, 1, 2).contiguous()
