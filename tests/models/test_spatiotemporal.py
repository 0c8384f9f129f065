"""Tests for motion_text.models.encoders.spatiotemporal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motion_text.models.encoders.spatiotemporal import SpatioTemporalEncoder, masked_temporal_pool

J, C_IN = 5, 3


def make_encoder(**kwargs) -> SpatioTemporalEncoder:
    torch.manual_seed(0)
    defaults = dict(num_joints=J, in_dim=C_IN, dim=16, out_dim=12, depth=2, num_heads=2, max_len=32)
    defaults.update(kwargs)
    return SpatioTemporalEncoder(**defaults).eval()


def test_shapes_and_mask():
    enc = make_encoder()
    x = torch.randn(3, 9, J, C_IN)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    tokens, token_mask = enc(x, mask)
    assert tokens.shape == (3, 9, J, 12) and token_mask.shape == (3, 9, J)
    assert torch.equal(token_mask, mask[:, :, None].expand(3, 9, J))
    assert torch.all(tokens[1, 6:] == 0)

    pooled = make_encoder(max_tokens_t=4)
    tokens, token_mask = pooled(x, mask)
    stride = math.ceil(9 / 4)
    assert tokens.shape == (3, math.ceil(9 / stride), J, 12)
    windows = [range(w * stride, min(w * stride + stride, 9)) for w in range(tokens.shape[1])]
    expected = [[any(bool(mask[1, t]) for t in win)] * J for win in windows]
    assert token_mask[1].tolist() == expected == [[True] * J] * 2 + [[False] * J]  # frames 6..8 invalid


def test_padding_invariance():
    enc = make_encoder()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 7, J, C_IN, generator=g)
    mask = torch.ones(1, 7, dtype=torch.bool)
    x_pad = torch.cat([x, 50 * torch.randn(1, 5, J, C_IN, generator=g)], dim=1)
    mask_pad = torch.cat([mask, torch.zeros(1, 5, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        a, _ = enc(x, mask)
        b, b_mask = enc(x_pad, mask_pad)
    torch.testing.assert_close(b[:, :7], a, atol=1e-5, rtol=1e-5)
    assert not b_mask[:, 7:].any()

    # with pooling: padding that keeps the window length (stride 2 for T=7 and T=8) changes nothing
    pooled = make_encoder(max_tokens_t=4)
    with torch.no_grad():
        a, _ = pooled(x, mask)
        b, _ = pooled(x_pad[:, :8], mask_pad[:, :8])
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_per_sample_independence():
    enc = make_encoder()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 8, J, C_IN, generator=g)
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[2, 5:] = False
    with torch.no_grad():
        a, _ = enc(x, mask)
        x2 = x.clone()
        x2[1] = torch.randn(8, J, C_IN, generator=g)
        mask2 = mask.clone()
        mask2[1, 3:] = False
        b, _ = enc(x2, mask2)
    torch.testing.assert_close(b[[0, 2]], a[[0, 2]], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(b[1], a[1])


def test_gradients_and_empty_clip():
    enc = make_encoder().train()
    x = torch.randn(2, 6, J, C_IN, requires_grad=True)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1] = False  # no valid frame: finite output, all-False token mask
    tokens, token_mask = enc(x, mask)
    assert torch.isfinite(tokens).all() and not token_mask[1].any()
    tokens.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())


def test_masked_temporal_pool_matches_loop():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 7, J, 4, generator=g)
    mask = torch.tensor([[1, 1, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    pooled, pmask = masked_temporal_pool(x, mask, 3)
    xn, mn = x.numpy(), mask.numpy()
    for b in range(2):
        for w in range(3):
            frames = [t for t in range(3 * w, min(3 * w + 3, 7)) if mn[b, t]]
            assert bool(pmask[b, w]) == bool(frames)
            expected = np.mean(xn[b, frames], axis=0) if frames else np.zeros((J, 4))
            np.testing.assert_allclose(pooled[b, w].numpy(), expected, atol=1e-6)


def test_rejects_bad_inputs():
    enc = make_encoder()
    with pytest.raises(ValueError, match="x must be"):
        enc(torch.randn(1, 4, J + 1, C_IN), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.randn(1, 40, J, C_IN), torch.ones(1, 40, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_heads"):
        SpatioTemporalEncoder(J, C_IN, dim=10, num_heads=3)


def _reference_block(block, x, frame_mask):
    """One block written out per sequence: spatial attention over each frame's joints, temporal attention over each
    joint's valid frames (padding frames masked as keys), then the MLP; heads split by hand, plain softmax."""

    def mha(attn, seq, keys_valid=None):  # seq (S, C)
        s, c = seq.shape
        h = attn.num_heads
        q, k, v = attn.qkv(seq).view(s, 3, h, c // h).permute(1, 2, 0, 3)  # each (h, S, d)
        scores = q @ k.transpose(1, 2) / math.sqrt(c // h)
        if keys_valid is not None:
            scores = scores.masked_fill(~keys_valid[None, None, :], float("-inf"))
        return attn.proj((scores.softmax(-1) @ v).permute(1, 0, 2).reshape(s, c))

    b, t, j, _ = x.shape
    out = x.clone()
    for i in range(b):
        for f in range(t):
            out[i, f] = out[i, f] + mha(block.attn_s, block.norm_s(out[i, f]))
    res = out.clone()
    for i in range(b):
        for n in range(j):
            res[i, :, n] = res[i, :, n] + mha(block.attn_t, block.norm_t(out[i, :, n]), frame_mask[i])
    return res + block.mlp(block.norm_m(res))


def test_block_matches_per_sequence_reference():
    enc = make_encoder(depth=1)
    block = enc.blocks[0]
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 7, J, 16, generator=g)
    frame_mask = torch.ones(2, 7, dtype=torch.bool)
    frame_mask[1, 4:] = False
    with torch.no_grad():
        torch.testing.assert_close(block(x, frame_mask), _reference_block(block, x, frame_mask), atol=1e-5, rtol=1e-5)


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn()`` runs (each storage once)."""
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values())


def test_checkpointing_keeps_outputs_and_gradients_and_saves_less():
    """Training mode with dropout: the recomputed branches replay the same dropout draws, so outputs and every
    gradient equal the plain forward's; autograd keeps far fewer activations (the branch inputs only)."""
    x = torch.randn(3, 9, J, C_IN)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[2, 5:] = False
    results = []
    for checkpointing in (False, True):
        enc = make_encoder(dropout=0.3, checkpointing=checkpointing).train()
        torch.manual_seed(7)
        (tokens, _), saved = _saved_bytes(lambda enc=enc: enc(x, mask))
        (tokens.square().sum()).backward()
        grads = {n: p.grad.clone() for n, p in enc.named_parameters()}
        results.append((tokens.detach(), grads, saved))
    (t0, g0, s0), (t1, g1, s1) = results
    assert torch.equal(t0, t1)
    assert g0.keys() == g1.keys()
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-5, atol=1e-6, msg=name)
    assert s1 < s0 / 3, (s0, s1)
    # inference (no grad) never recomputes: the flag changes nothing there
    enc = make_encoder(checkpointing=True)
    with torch.no_grad():
        torch.testing.assert_close(enc(x, mask)[0], make_encoder()(x, mask)[0], rtol=0, atol=0)
