"""Fast dense feature extraction equals the patch-by-patch evaluation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stad_utils.models import DenseExtractor, naive_dense, pad_images, patch_network
from stad_utils.models.dense import image_chunks, stride_offsets, unwarp

ATOL = 1e-4  # float32


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def nets():
    return {p: patch_network(p, seed=p).eval() for p in (17, 33, 65)}


# Full-width networks. Reflect padding needs H, W > p // 2, hence the sizes for p = 65.
CASES = [
    (17, (2, 3, 24, 28), "reflect"),
    (17, (2, 3, 24, 28), "constant"),
    (33, (1, 3, 20, 22), "reflect"),  # 20, 22: not multiples of the total stride 4
    (33, (1, 3, 13, 9), "constant"),
    (65, (1, 3, 34, 33), "reflect"),  # 34, 33: not multiples of 8
    (65, (1, 3, 12, 10), "constant"),
]


@pytest.mark.parametrize(("p", "shape", "padding"), CASES)
def test_dense_equals_naive(nets, p, shape, padding):
    torch.manual_seed(0)
    images = torch.rand(*shape)
    net = nets[p]
    with torch.no_grad():
        dense = DenseExtractor(net, padding=padding)(images)
    naive = naive_dense(net, images, padding=padding, batch_size=512)
    assert dense.shape == naive.shape == (shape[0], 128, shape[2], shape[3])
    assert max_diff(dense, naive) < ATOL
    assert naive.abs().max() > 0.01  # not a trivially zero comparison


def test_each_pixel_is_its_centred_patch(nets):
    """Pixel (r, c) holds the descriptor of padded[r : r + p, c : c + p]."""
    p = 33
    images = torch.rand(2, 3, 21, 19)
    with torch.no_grad():
        dense = DenseExtractor(nets[p], "replicate")(images)
        padded = F.pad(images, (16, 16, 16, 16), mode="replicate")
        for b, r, c in [(0, 0, 0), (1, 20, 18), (0, 7, 11), (1, 3, 17)]:
            patch = padded[b : b + 1, :, r : r + p, c : c + p]
            assert max_diff(nets[p](patch).flatten(), dense[b, :, r, c]) < ATOL


def test_padding_modes_differ_only_near_the_border(nets):
    images = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        reflect = DenseExtractor(nets[17], "reflect")(images)
        constant = DenseExtractor(nets[17], "constant")(images)
    r = 17 // 2
    inner = (slice(None), slice(None), slice(r, 40 - r), slice(r, 40 - r))
    assert max_diff(reflect[inner], constant[inner]) < ATOL  # patches inside the image
    assert max_diff(reflect, constant) > 1e-3  # border patches see the padding


def test_any_size_with_a_narrow_net():
    net = patch_network(65, width=0.25, seed=1).eval()
    for h, w in [(9, 13), (16, 8), (17, 25), (1, 1)]:
        images = torch.rand(1, 3, h, w)
        with torch.no_grad():
            dense = DenseExtractor(net, "replicate")(images)
        assert dense.shape == (1, 128, h, w)
        assert max_diff(dense, naive_dense(net, images, "replicate")) < ATOL


def test_naive_batch_size_and_rows():
    net = patch_network(17, width=0.25, seed=0).eval()
    images = torch.rand(2, 3, 10, 12)
    full = naive_dense(net, images, batch_size=1000)
    assert torch.allclose(naive_dense(net, images, batch_size=7), full, atol=1e-6)
    part = naive_dense(net, images, batch_size=5, rows=(3, 6))
    assert part.shape == (2, 128, 3, 12)
    assert torch.allclose(part, full[:, :, 3:6], atol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        naive_dense(net, images, rows=(5, 11))


def test_gradients_match_patchwise():
    """Students train densely: gradients through the extractor equal those of the patches."""
    torch.manual_seed(0)
    net = patch_network(33, width=0.125, seed=0)
    images = torch.rand(1, 3, 8, 8)
    weights = torch.randn(1, 128, 8, 8)
    (DenseExtractor(net, "constant")(images) * weights).sum().backward()
    dense_grad = net.body.conv1.weight.grad.clone()
    net.zero_grad()
    padded = pad_images(images, 33, "constant")
    patches = padded.unfold(2, 33, 1).unfold(3, 33, 1)[0].permute(1, 2, 0, 3, 4)
    out = net(patches.reshape(64, 3, 33, 33)).view(8, 8, 128).permute(2, 0, 1)
    (out[None] * weights).sum().backward()
    assert torch.allclose(dense_grad, net.body.conv1.weight.grad, atol=1e-4)


def test_unwarp_inverts_the_offset_stacking():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).view(2, 3, 8, 12)
    stacked = stride_offsets(x, 2)
    assert stacked.shape == (8, 3, 4, 6)
    # offset-major: batch index = (i·s + j)·N + n; offset (0, 1) of image 1 is 1·2 + 1
    assert torch.equal(stacked[1 * 2 + 1], x[1, :, 0::2, 1::2])
    assert torch.equal(stacked[2 * 2 + 0], x[0, :, 1::2, 0::2])  # offset (1, 0), image 0
    assert torch.equal(unwarp(stacked, 2), x)


def test_errors_are_clear(nets):
    with pytest.raises(ValueError, match=r"larger than 32×32.*got H×W = 20×40"):
        DenseExtractor(nets[65])(torch.rand(1, 3, 20, 40))
    with pytest.raises(ValueError, match="larger than 32×32"):
        naive_dense(nets[65], torch.rand(1, 3, 40, 32))
    with pytest.raises(ValueError, match="Unknown padding"):
        DenseExtractor(nets[17], padding="circular")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        DenseExtractor(nets[17])(torch.rand(3, 20, 20))
    # constant and replicate padding work for any size, even below p
    tiny = torch.rand(1, 3, 5, 3)
    with torch.no_grad():
        assert DenseExtractor(nets[65], "replicate")(tiny).shape == (1, 128, 5, 3)


@pytest.mark.parametrize("p", [17, 33, 65])
def test_channels_last_on_a_cpu_gives_the_same_descriptors(p, monkeypatch):
    """cpu_fast_layout changes only the memory order of the inputs (for speed,
    benchmarks/bench_layout.py): the dense maps and the patch descriptors agree with the
    default order to float rounding, and come back with the same shape."""
    from stad_utils.models import patch_networks

    torch.manual_seed(0)
    dense = DenseExtractor(patch_network(p, width=0.25, seed=1).eval())
    images = torch.rand(2, 3, 40, 44)
    patches = torch.rand(3, 3, p, p)
    with torch.no_grad():
        monkeypatch.setattr(patch_networks, "CHANNELS_LAST_ON_CPU", False)
        plain_maps, plain_descriptors = dense(images), dense.patch_net(patches)
        monkeypatch.setattr(patch_networks, "CHANNELS_LAST_ON_CPU", True)
        fast_maps, fast_descriptors = dense(images), dense.patch_net(patches)
    assert fast_maps.shape == plain_maps.shape == (2, 128, 40, 44)
    assert torch.allclose(fast_maps, plain_maps, atol=1e-5)
    assert torch.allclose(fast_descriptors, plain_descriptors, atol=1e-5)
    assert patch_networks.cpu_fast_layout(images).is_contiguous(memory_format=torch.channels_last)


def test_image_chunks_split_a_cpu_batch_into_single_images():
    images = torch.rand(3, 3, 8, 8)
    chunks = image_chunks(images)
    assert [tuple(c.shape) for c in chunks] == [(1, 3, 8, 8)] * 3
    assert torch.equal(torch.cat(chunks), images)
    single = images[:1]
    assert len(image_chunks(single)) == 1 and image_chunks(single)[0] is single
    # not on a CPU: one chunk, the batch itself (a meta tensor stands in for a GPU's)
    on_meta = torch.empty(3, 3, 8, 8, device="meta")
    chunks = image_chunks(on_meta)
    assert len(chunks) == 1 and chunks[0] is on_meta
