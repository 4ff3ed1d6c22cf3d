"""Uninformed Students' patch networks: tables, shapes, corrections, decoder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stad_utils.models import (
    P17_TABLE_FIX,
    P65_TABLE_FIX,
    SEED_P65_TABLE,
    TABLE_SOURCES,
    Decoder,
    architecture_table,
    decoder,
    patch_network,
)
from stad_utils.models.patch_networks import LEAKY_SLOPE, receptive_field_of


def inconsistent_rows(rows) -> list[str]:
    """Rows whose output does not follow from the previous row (no padding, floor pooling)."""
    bad = []
    for prev, row in zip(rows, rows[1:], strict=False):
        h, w, c = prev.output
        if row.kind == "conv":
            expected_hw = (h - row.kernel + 1, w - row.kernel + 1)
            ok = row.output[:2] == expected_hw and min(expected_hw) >= 1
        elif row.kind == "maxpool":
            ok = row.output == (
                (h - row.kernel) // row.stride + 1,
                (w - row.kernel) // row.stride + 1,
                c,
            )
        elif row.kind == "decode":
            ok = row.output[:2] == (h, w) and row.kernel == 1
        else:
            ok = False
        if not ok:
            bad.append(row.layer)
    return bad


@pytest.mark.parametrize("p", [17, 33, 65])
def test_table_rows_are_the_real_output_shapes(p):
    net = patch_network(p, seed=0)
    table = architecture_table(p)
    layer_rows = [row for row in table if row.kind in ("conv", "maxpool")]
    shapes = net.stage_shapes()
    assert [shape for _, shape in shapes] == [row.output for row in layer_rows]
    # names line up too: convN ↔ ConvN, poolN ↔ MaxPool
    for (name, _), row in zip(shapes, layer_rows, strict=True):
        assert name.startswith("conv" if row.kind == "conv" else "pool")
    assert table[0].output == (p, p, 3)
    assert inconsistent_rows(table) == []


@pytest.mark.parametrize("p", [17, 33, 65])
def test_patch_to_descriptor_and_decoder(p):
    net = patch_network(p, seed=0)
    out = net(torch.rand(2, 3, p, p))
    assert out.shape == (2, 128, 1, 1)
    assert net.receptive_field == p and net.descriptor_dim == 128
    decode_row = architecture_table(p)[-1]
    assert decode_row.layer == "Decode" and decode_row.output == (1, 1, 512)
    dec = decoder(512, seed=0)
    assert dec(out).shape == (2, 512, 1, 1)
    assert dec(out.flatten(1)).shape == (2, 512)
    # The two paths may pick different float32 kernels (memory layout, CPU type): equal to
    # float32 rounding, not bit for bit.
    torch.testing.assert_close(dec(out)[:, :, 0, 0], dec(out.flatten(1)), rtol=1e-5, atol=1e-6)


def test_pool_strides_and_activations():
    expected = {17: (), 33: (2, 2), 65: (2, 2, 2)}
    for p, strides in expected.items():
        net = patch_network(p)
        assert net.pool_strides == strides
        modules = list(net.body.children())
        convs = [m for m in modules if isinstance(m, nn.Conv2d)]
        acts = [m for m in modules if isinstance(m, nn.LeakyReLU)]
        assert len(acts) == len(convs) - 1  # after every convolution but the last
        assert all(a.negative_slope == LEAKY_SLOPE == 5e-3 for a in acts)
        assert isinstance(modules[-1], nn.Conv2d)  # the descriptor is not activated
        for i, m in enumerate(modules[:-1]):
            if isinstance(m, nn.Conv2d):
                assert isinstance(modules[i + 1], nn.LeakyReLU)


def test_p65_fix_is_documented_and_makes_the_table_consistent():
    ours = architecture_table(65)
    assert inconsistent_rows(list(SEED_P65_TABLE)) == ["MaxPool", "Conv5"]
    changed = [
        (seed.layer, seed.as_dict(), fixed.as_dict())
        for seed, fixed in zip(SEED_P65_TABLE, ours, strict=True)
        if seed != fixed
    ]
    assert [layer for layer, _, _ in changed] == ["MaxPool", "Conv5"]
    (_, seed_pool, fixed_pool), (_, seed_conv5, fixed_conv5) = changed
    assert (seed_pool["output"], fixed_pool["output"]) == ("4×4×256", "4×4×128")
    assert (seed_conv5["kernel"], fixed_conv5["kernel"]) == ("3×3", "1×1")
    for text in ("4×4×128", "1×1 kernel", "Conv5", "pooling keeps the channel count"):
        assert text in P65_TABLE_FIX
    assert "6×6" in P17_TABLE_FIX and "12×12" in P17_TABLE_FIX
    assert set(TABLE_SOURCES) == {17, 33, 65}


def test_table_as_printed():
    rows = [row.as_dict() for row in architecture_table(33)]
    assert rows[0] == {"layer": "Input", "output": "33×33×3", "kernel": "", "stride": ""}
    assert rows[1] == {"layer": "Conv1", "output": "29×29×128", "kernel": "5×5", "stride": "1"}
    assert [r["layer"] for r in rows] == [
        "Input", "Conv1", "MaxPool", "Conv2", "MaxPool", "Conv3", "Conv4", "Decode",
    ]  # fmt: skip
    assert architecture_table(17, decoder_dim=None)[-1].layer == "Conv4"
    assert architecture_table(17, decoder_dim=1280)[-1].output == (1, 1, 1280)


def test_effective_receptive_field_is_what_the_network_sees():
    # floor pooling drops the last row/column of odd-sized maps
    assert [patch_network(p).effective_receptive_field for p in (17, 33, 65)] == [17, 32, 60]
    net = patch_network(65, seed=0)
    x = torch.rand(1, 3, 65, 65)
    base = net(x)
    y = x.clone()
    y[:, :, 60:, :] = torch.rand(1, 3, 5, 65)  # rows 60..64 do not matter
    y[:, :, :, 60:] = torch.rand(1, 3, 65, 5)
    assert torch.equal(net(y), base)
    y[:, :, 59, 59] += 0.5  # row/column 59 does
    assert not torch.allclose(net(y), base)
    assert receptive_field_of(architecture_table(17)) == 17


def test_width_scales_hidden_channels_only():
    net = patch_network(33, width=0.25)
    assert [row.output[2] for row in net.table] == [3, 32, 32, 64, 64, 64, 128, 512]
    assert net(torch.rand(1, 3, 33, 33)).shape == (1, 128, 1, 1)
    assert patch_network(17, descriptor_dim=64)(torch.rand(1, 3, 17, 17)).shape == (1, 64, 1, 1)


def test_normalization_is_imagenet_inside_the_network():
    net = patch_network(17, seed=0)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.rand(2, 3, 17, 17)
    # atol: the network runs channels-last on a CPU (cpu_fast_layout), a float-rounding change
    assert torch.allclose(net(x), net.body((x - mean) / std), atol=1e-6)
    assert torch.allclose(net.normalize(mean.expand(1, 3, 4, 4)), torch.zeros(1, 3, 4, 4))


def test_seeded_construction_is_repeatable_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = patch_network(33, seed=7), patch_network(33, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    c = patch_network(33, seed=8)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_errors_are_clear():
    with pytest.raises(ValueError, match="choose one of"):
        patch_network(31)
    net = patch_network(17)
    with pytest.raises(ValueError, match=r"\(B, 3, 17, 17\).*DenseExtractor"):
        net(torch.rand(1, 3, 20, 20))
    with pytest.raises(ValueError, match="Decoder takes"):
        Decoder()(torch.rand(2, 128, 1))
