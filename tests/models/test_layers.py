"""Tests of motion_text.models.layers against plain references (loops, math, torch.nn.MultiheadAttention)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from motion_text.models.layers import (
    MLP,
    DropPath,
    PreNormBlock,
    SinusoidalPositionalEncoding,
    autocast_safe_fastpath,
    lengths_to_mask,
    sinusoidal_table,
)

# ---------------------------------------------------------------------------------------------------------------
# lengths_to_mask
# ---------------------------------------------------------------------------------------------------------------


def test_lengths_to_mask_matches_loop():
    lengths = [3, 0, 5, 1]
    ref = np.zeros((4, 7), dtype=bool)
    for b, n in enumerate(lengths):
        for t in range(n):
            ref[b, t] = True
    out = lengths_to_mask(torch.tensor(lengths), 7)
    assert out.dtype == torch.bool
    np.testing.assert_array_equal(out.numpy(), ref)
    # default max_len is the longest length; lists are accepted
    np.testing.assert_array_equal(lengths_to_mask(lengths).numpy(), ref[:, :5])


@pytest.mark.parametrize(
    "lengths, max_len",
    [([2, -1], None), ([4, 2], 3), ([[1, 2]], None), (torch.tensor([1.5, 2.0]), None)],
)
def test_lengths_to_mask_rejects_bad_input(lengths, max_len):
    with pytest.raises(ValueError):
        lengths_to_mask(lengths, max_len)


# ---------------------------------------------------------------------------------------------------------------
# positional encoding
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [8, 7])
def test_sinusoidal_table_matches_formula(d):
    n = 12
    ref = np.zeros((n, d))
    for p in range(n):
        for k in range(d):
            angle = p / 10000 ** (2 * (k // 2) / d)
            ref[p, k] = math.sin(angle) if k % 2 == 0 else math.cos(angle)
    np.testing.assert_allclose(sinusoidal_table(n, d).numpy(), ref, atol=1e-6)


def test_positional_encoding_layouts_and_state_dict():
    d, t, b = 6, 5, 3
    table = torch.tensor([[math.sin(p / 10000 ** (2 * (k // 2) / d)) if k % 2 == 0
                           else math.cos(p / 10000 ** (2 * (k // 2) / d)) for k in range(d)] for p in range(t)])
    x = torch.randn(b, t, d)
    pe_bf = SinusoidalPositionalEncoding(d, dropout=0.0, max_len=10, batch_first=True)
    pe_sf = SinusoidalPositionalEncoding(d, dropout=0.0, max_len=10, batch_first=False)
    torch.testing.assert_close(pe_bf(x), x + table[None], atol=1e-6, rtol=0)
    torch.testing.assert_close(pe_sf(x.transpose(0, 1)), (x + table[None]).transpose(0, 1), atol=1e-6, rtol=0)
    # the table is a non-persistent buffer named `pe` (TMR checkpoints do not contain it)
    assert "pe" in dict(pe_bf.named_buffers())
    assert "pe" not in pe_bf.state_dict()
    with pytest.raises(ValueError):
        pe_bf(torch.randn(1, 11, d))


# ---------------------------------------------------------------------------------------------------------------
# DropPath
# ---------------------------------------------------------------------------------------------------------------


def test_drop_path_eval_identity_and_train_statistics():
    p = 0.3
    layer = DropPath(p).eval()
    x = torch.randn(4000, 3, 2) + 2.0
    assert torch.equal(layer(x), x)
    layer.train()
    torch.manual_seed(0)
    y = layer(x)
    # each sample is either dropped entirely or scaled by 1/(1-p)
    dropped = (y == 0).flatten(1).all(1)
    kept = torch.isclose(y, x / (1 - p)).flatten(1).all(1)
    assert bool((dropped | kept).all())
    frac = dropped.float().mean().item()
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / x.shape[0])
    assert torch.equal(DropPath(0.0).train()(x), x)
    with pytest.raises(ValueError):
        DropPath(1.0)


# ---------------------------------------------------------------------------------------------------------------
# PreNormBlock
# ---------------------------------------------------------------------------------------------------------------


def _reference_block(block: PreNormBlock, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
    """x + MHA(LN1 x) ; + FFN(LN2 x), with torch.nn.MultiheadAttention carrying the block's weights."""
    d = x.shape[-1]
    mha = nn.MultiheadAttention(d, block.heads, bias=True, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(block.qkv.weight)
        mha.in_proj_bias.copy_(block.qkv.bias)
        mha.out_proj.weight.copy_(block.proj.weight)
        mha.out_proj.bias.copy_(block.proj.bias)
    mha.eval()
    h = F.layer_norm(x, (d,), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    x = x + mha(h, h, h, key_padding_mask=key_padding_mask, need_weights=False)[0]
    h = F.layer_norm(x, (d,), block.norm2.weight, block.norm2.bias, block.norm2.eps)
    return x + block.mlp.fc2(F.gelu(block.mlp.fc1(h)))


def test_prenorm_block_matches_multihead_attention_reference():
    torch.manual_seed(0)
    block = PreNormBlock(16, heads=4, ff=24, dropout=0.2, attn_dropout=0.2, drop_path=0.2).eval()
    x = torch.randn(3, 7, 16)
    pad = torch.tensor([[False] * 7, [False] * 4 + [True] * 3, [False] * 2 + [True] * 5])
    with torch.no_grad():
        torch.testing.assert_close(block(x, pad), _reference_block(block, x, pad), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(block(x), _reference_block(block, x, None), atol=1e-5, rtol=1e-5)


def test_prenorm_block_ignores_padded_keys():
    torch.manual_seed(1)
    block = PreNormBlock(8, heads=2, ff=16).eval()
    x = torch.randn(2, 6, 8)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[:, 4:] = True
    x2 = x.clone()
    x2[:, 4:] = 100 * torch.randn(2, 2, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x, pad)[:, :4], block(x2, pad)[:, :4], atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        block(x, pad[:, :5])
    with pytest.raises(ValueError):
        PreNormBlock(10, heads=3, ff=8)


def test_prenorm_block_autocast_bf16():
    torch.manual_seed(2)
    block = PreNormBlock(16, heads=4, ff=32).eval()
    x = torch.randn(2, 5, 16)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with torch.no_grad():
        ref = block(x, pad)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(x, pad)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)


def test_mlp_matches_formula():
    torch.manual_seed(3)
    mlp = MLP(5, 9, 4, activation="relu").eval()
    x = torch.randn(3, 5)
    ref = torch.relu(x @ mlp.fc1.weight.T + mlp.fc1.bias) @ mlp.fc2.weight.T + mlp.fc2.bias
    torch.testing.assert_close(mlp(x), ref)
    with pytest.raises(ValueError):
        MLP(2, 3, activation="swish")


def test_autocast_safe_fastpath_only_under_autocast():
    assert torch.backends.mha.get_fastpath_enabled()
    with autocast_safe_fastpath("cpu"):
        assert torch.backends.mha.get_fastpath_enabled()
    with torch.autocast("cpu", dtype=torch.bfloat16), autocast_safe_fastpath("cpu"):
        assert not torch.backends.mha.get_fastpath_enabled()
    assert torch.backends.mha.get_fastpath_enabled()
