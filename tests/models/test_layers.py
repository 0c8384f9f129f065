"""Tests of motion_text.models.layers against plain references (loops, math, torch.nn.MultiheadAttention), and
checks that the models use PyTorch's layers through public interfaces only."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import motion_text
from motion_text.models.encoders.spatiotemporal import _Attention
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


# ---- masks: a query with every key masked gets 0 (PyTorch's kernel), also with attention dropout ----------------
@pytest.mark.parametrize("attn_dropout", [0.0, 0.5])
def test_prenorm_block_query_with_every_key_masked_gets_zero(attn_dropout):
    torch.manual_seed(4)
    block = PreNormBlock(8, heads=2, ff=16, attn_dropout=attn_dropout).train()
    x = torch.randn(2, 5, 8, requires_grad=True)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[0] = True  # sample 0: every key masked
    out = block.attention(x, pad)  # proj(attention) = proj.bias where the attention is 0
    torch.testing.assert_close(out[0], block.proj.bias.expand(5, 8))
    assert not torch.allclose(out[1], block.proj.bias.expand(5, 8))
    assert torch.isfinite(torch.autograd.grad(out.square().sum(), x)[0]).all()


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_spatiotemporal_attention_with_every_frame_masked_gets_zero(dropout):
    torch.manual_seed(5)
    attn = _Attention(8, 2, dropout).train()
    x = torch.randn(2, 4, 3, 8, requires_grad=True)  # b t j c
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[1] = False  # sample 1: no valid frame
    out = attn(x, valid)
    torch.testing.assert_close(out[1], attn.proj.bias.expand(4, 3, 8))
    assert torch.isfinite(torch.autograd.grad(out.square().sum(), x)[0]).all()


def test_prenorm_block_dropout_is_pytorchs_and_seeded():
    block = PreNormBlock(8, heads=2, ff=16, dropout=0.3, attn_dropout=0.3).train()
    assert type(block.proj_drop) is nn.Dropout and type(block.mlp.drop) is nn.Dropout
    x = torch.randn(2, 5, 8)
    torch.manual_seed(6)
    a, b = block(x), block(x)
    torch.manual_seed(6)
    assert torch.equal(block(x), a) and not torch.equal(a, b)


# ---- public torch interfaces only ------------------------------------------------------------------------------
_PACKAGE = Path(motion_text.__file__).parent
#: overrides / attributes / generators the package must not use again (private torch API, hand-rolled dropout)
_FORBIDDEN = ("def _sa_block", "def _ff_block", "def _mha_block", "_qkv_same_embed_dim", "SFC64", "random_raw")


def _model_modules() -> list:
    pkg = importlib.import_module("motion_text.models")
    return [importlib.import_module(m.name) for m in pkgutil.walk_packages(pkg.__path__, "motion_text.models.")]


def test_package_source_has_no_private_torch_overrides():
    hits = [f"{p.relative_to(_PACKAGE)}: {token}" for p in sorted(_PACKAGE.rglob("*.py"))
            for token in _FORBIDDEN if token in p.read_text()]
    assert not hits, hits


def test_model_classes_override_no_private_torch_method():
    """No class of motion_text.models redefines a ``_private`` name of a torch base class (``_sa_block``, ...)."""
    bad = []
    for module in _model_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            torch_bases = [c for c in cls.__mro__[1:] if c.__module__.startswith("torch")]
            for name, value in vars(cls).items():  # methods written in the class body (not metaclass entries)
                written = inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod, property))
                if written and re.fullmatch(r"_[a-z]\w*", name) and any(name in vars(c) for c in torch_bases):
                    bad.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    assert not bad, bad


def test_models_read_no_private_attribute_of_torch_objects():
    """``obj._name`` in models/ never names a private attribute of PyTorch's modules, tensors or optimizers."""
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    objects = [nn.MultiheadAttention(8, 2), layer, nn.TransformerEncoder(layer, 1, enable_nested_tensor=False),
               nn.Linear(2, 2), nn.LayerNorm(2), nn.Dropout(), nn.Embedding(3, 2), nn.Conv1d(2, 2, 3),
               nn.GroupNorm(1, 2), nn.Parameter(torch.zeros(1)), torch.optim.AdamW([nn.Parameter(torch.zeros(1))])]
    private = {name for obj in objects for scope in (vars(obj), *map(vars, type(obj).__mro__))
               for name in scope if re.fullmatch(r"_[a-z]\w*", name)}
    assert {"_qkv_same_embed_dim", "_sa_block", "_parameters"} <= private  # the scan can see what it looks for
    hits = [f"{p.relative_to(_PACKAGE)}: .{name}" for p in sorted((_PACKAGE / "models").rglob("*.py"))
            for name in set(re.findall(r"\.(_[a-z]\w*)", p.read_text())) & private]
    assert not hits, hits


def test_encoders_use_pytorchs_transformer_and_dropout_modules():
    from motion_text.models.encoders.actor import ACTORStyleEncoder

    enc = ACTORStyleEncoder(6, latent_dim=8, ff_size=16, num_layers=1, num_heads=2)
    layer = enc.seqTransEncoder.layers[0]
    assert type(layer) is nn.TransformerEncoderLayer
    assert all(type(m) is nn.Dropout for m in enc.modules() if isinstance(m, nn.Dropout))
