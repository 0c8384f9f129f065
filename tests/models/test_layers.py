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
    Dropout,
    DropPath,
    PreNormBlock,
    SinusoidalPositionalEncoding,
    TransformerEncoderLayer,
    attention,
    autocast_safe_fastpath,
    dropout,
    dropout_keep_probability,
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


# ---- dropout with fast CPU masks ---------------------------------------------------------------------------------
def test_dropout_mask_statistics_scale_and_gradient():
    x = torch.randn(400, 500, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, 0.1)
    keep = dropout_keep_probability(0.1)
    assert keep == 1 - 6554 / 65536 and abs(keep - 0.9) < 1e-5
    kept = y != 0
    # each element kept or zeroed; kept ones scaled by exactly 1 / keep
    torch.testing.assert_close(y[kept], (x * (1 / keep))[kept].float(), rtol=1e-6, atol=0)
    n = x.numel()
    rate = kept.double().mean().item()
    assert abs(rate - keep) < 5 * math.sqrt(keep * (1 - keep) / n)  # 5 binomial standard deviations
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / keep)  # d y / d x = mask / keep
    # independent over elements: neighbours' keep indicators are uncorrelated
    k = kept.flatten().double()
    corr = torch.corrcoef(torch.stack([k[:-1], k[1:]]))[0, 1].item()
    assert abs(corr) < 5 / math.sqrt(n)


def test_dropout_reproducible_under_manual_seed_and_fresh_per_call():
    x = torch.ones(64, 64)
    torch.manual_seed(3)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5), a) and not torch.equal(a, b)


def test_dropout_identity_cases_and_errors():
    x = torch.randn(8, 9)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    assert dropout(x.bfloat16(), 0.2).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="probability"):
        dropout(x, 1.5)
    module = Dropout(0.25)
    assert isinstance(module, nn.Dropout) and module.state_dict() == {}
    assert module.eval()(x) is x


def test_attention_cpu_dropout_path_equals_sdpa_when_nothing_is_dropped():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64) for _ in range(3))
    valid = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    valid[1, ..., 5:] = False
    additive = torch.randn(7, 7, generator=g, dtype=torch.float64)
    tiny = 1e-6  # > 0 takes the explicit path; rounds to a drop probability of 0, so nothing is dropped
    assert dropout_keep_probability(tiny) == 1.0
    for mask in (None, valid, additive):
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(attention(q, k, v, mask, tiny), ref)
    # a query whose keys are all masked gets 0, as from PyTorch's kernel (not NaN), with finite gradients
    dead = valid.expand(2, 3, 7, 7).clone()
    dead[0, :, 2] = False
    qg = q.clone().requires_grad_(True)
    out = attention(qg, k, v, dead, tiny)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=dead))
    assert (out[0, :, 2] == 0).all() and torch.isfinite(torch.autograd.grad(out.sum(), qg)[0]).all()
    blocked = torch.where(dead, 0.0, float("-inf")).double()
    torch.testing.assert_close(attention(q, k, v, blocked, tiny), out.detach())
    # with dropout the weights of each row are dropped and rescaled: the output is a reweighted mix of v
    torch.manual_seed(0)
    out = attention(q, k, v, valid, 0.5)
    assert out.shape == q.shape and not torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=valid))


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_layer_matches_pytorch_layer(batch_first):
    torch.manual_seed(0)
    kw = dict(d_model=16, nhead=4, dim_feedforward=32, activation="gelu", batch_first=batch_first)
    ours = TransformerEncoderLayer(dropout=1e-6, **kw).double().train()
    ref = nn.TransformerEncoderLayer(dropout=0.0, **kw).double().train()
    assert ours.load_state_dict(ref.state_dict()) is not None and ours.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(3, 6, 16, dtype=torch.float64, requires_grad=True)
    xin = x if batch_first else x.transpose(0, 1)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, 4:] = True
    causal = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)  # True = not allowed
    for kwargs in ({}, {"src_key_padding_mask": pad}, {"src_key_padding_mask": pad, "src_mask": causal}):
        out, want = ours(xin, **kwargs), ref(xin, **kwargs)
        torch.testing.assert_close(out, want)
        g_ours = torch.autograd.grad(out.square().sum(), x)[0]
        g_ref = torch.autograd.grad(want.square().sum(), x)[0]
        torch.testing.assert_close(g_ours, g_ref)
    # eval mode is PyTorch's own path
    torch.testing.assert_close(ours.eval()(xin, src_key_padding_mask=pad), ref.eval()(xin, src_key_padding_mask=pad))
