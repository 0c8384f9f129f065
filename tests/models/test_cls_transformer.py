"""Tests of DropTriple's [cls]-token motion encoder."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder

NFEATS, D, EMBED, FF, LAYERS, HEADS = 9, 16, 24, 32, 2, 2


def _encoder() -> ClsTransformerEncoder:
    torch.manual_seed(0)
    return ClsTransformerEncoder(NFEATS, latent_dim=D, embed_dim=EMBED, ff_size=FF, num_layers=LAYERS,
                                 num_heads=HEADS)


def _mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.tensor([[i < n for i in range(t)] for n in lengths])


def test_output_unit_norm_and_projection():
    enc = _encoder().train()
    x = torch.randn(3, 7, NFEATS)
    mask = _mask([7, 4, 1], 7)
    out = enc(x, mask)
    assert out.shape == (3, EMBED)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
    enc.eval()
    with torch.no_grad():
        h = enc.backbone(x, mask)
        out = enc(x, mask)
    assert h.shape == (3, D)
    # forward = normalize(fc(normalize(backbone))), written out by hand
    u = h / h.norm(dim=-1, keepdim=True)
    e = u @ enc.fc.weight.T + enc.fc.bias
    torch.testing.assert_close(out, e / e.norm(dim=-1, keepdim=True), atol=1e-6, rtol=1e-6)


def test_backbone_matches_layerwise_reference():
    enc = _encoder().eval()
    x = torch.randn(1, 5, NFEATS)
    h = torch.cat([enc.emb_token[None, None], x @ enc.skel_embedding.weight.T + enc.skel_embedding.bias], dim=1)
    pe = torch.tensor([[math.sin(p / 10000 ** (2 * (k // 2) / D)) if k % 2 == 0
                        else math.cos(p / 10000 ** (2 * (k // 2) / D)) for k in range(D)] for p in range(6)])
    h = h + pe[None]
    for layer in enc.seqTransEncoder.layers:
        h = F.layer_norm(h + layer.self_attn(h, h, h, need_weights=False)[0], (D,), layer.norm1.weight,
                         layer.norm1.bias, layer.norm1.eps)
        h = F.layer_norm(h + layer.linear2(F.gelu(layer.linear1(h))), (D,), layer.norm2.weight, layer.norm2.bias,
                         layer.norm2.eps)
    with torch.no_grad():
        torch.testing.assert_close(enc.backbone(x, torch.ones(1, 5, dtype=torch.bool)), h[:, 0].detach(),
                                   atol=1e-5, rtol=1e-5)


def test_padding_invariance():
    enc = _encoder().eval()
    x = torch.randn(2, 6, NFEATS)
    padded = torch.cat([x, 40 * torch.randn(2, 5, NFEATS)], dim=1)
    padded[1, 2:] = 40 * torch.randn(9, NFEATS)
    with torch.no_grad():
        a = enc(x, _mask([6, 2], 6))
        b = enc(padded, _mask([6, 2], 11))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_per_sample_independence():
    enc = _encoder().eval()
    x = torch.randn(3, 5, NFEATS)
    mask = _mask([5, 3, 4], 5)
    x2 = x.clone()
    x2[2] += torch.randn(5, NFEATS)
    with torch.no_grad():
        a, b = enc(x, mask), enc(x2, mask)
    torch.testing.assert_close(a[:2], b[:2], atol=1e-6, rtol=0)
    assert not torch.allclose(a[2], b[2])


def test_parameter_names_follow_reference_and_input_checks():
    enc = _encoder()
    prefixes = {k.split(".")[0] for k in enc.state_dict()}
    assert prefixes == {"skel_embedding", "emb_token", "seqTransEncoder", "fc"}
    assert enc.emb_token.shape == (D,)
    with pytest.raises(ValueError):
        enc(torch.randn(2, 5, NFEATS + 1), _mask([5, 2], 5))
    with pytest.raises(ValueError):
        enc(torch.randn(2, 5, NFEATS), _mask([5, 2], 4))


def test_autocast_bf16():
    enc = _encoder().train()
    x = torch.randn(2, 5, NFEATS)
    mask = _mask([5, 3], 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x, mask)
    assert torch.isfinite(out).all() and out.shape == (2, EMBED)
    out.float().sum().backward()
    assert enc.emb_token.grad is not None
    enc.eval()
    with torch.no_grad():
        ref = enc(x, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(x, mask)
    torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0.05)
