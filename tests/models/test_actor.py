"""Tests of the TMR ACTOR-style encoder/decoder and the VAE sampling step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from motion_text.models.encoders.actor import ACTORStyleEncoder
from motion_text.models.heads.decoder import ACTORStyleDecoder
from motion_text.models.layers import reparameterize

D, FF, LAYERS, HEADS, NFEATS = 16, 32, 2, 2, 11


def _encoder(vae: bool = True) -> ACTORStyleEncoder:
    torch.manual_seed(0)
    return ACTORStyleEncoder(NFEATS, vae=vae, latent_dim=D, ff_size=FF, num_layers=LAYERS, num_heads=HEADS)


def _decoder() -> ACTORStyleDecoder:
    torch.manual_seed(0)
    return ACTORStyleDecoder(NFEATS, latent_dim=D, ff_size=FF, num_layers=LAYERS, num_heads=HEADS)


def _mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.tensor([[i < n for i in range(t)] for n in lengths])


def _sin_table(n: int, d: int) -> torch.Tensor:
    return torch.tensor([[math.sin(p / 10000 ** (2 * (k // 2) / d)) if k % 2 == 0
                          else math.cos(p / 10000 ** (2 * (k // 2) / d)) for k in range(d)] for p in range(n)])


# ---------------------------------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------------------------------


def test_encoder_matches_layerwise_reference():
    """Eval output of one unpadded sequence vs. a hand-written post-norm transformer on the same weights."""
    enc = _encoder().eval()
    x = torch.randn(1, 6, NFEATS)
    h = torch.cat([enc.tokens[None], x @ enc.projection.weight.T + enc.projection.bias], dim=1)
    h = h + _sin_table(h.shape[1], D)[None]
    for layer in enc.seqTransEncoder.layers:
        a = layer.self_attn(h, h, h, need_weights=False)[0]
        h = F.layer_norm(h + a, (D,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
        f = layer.linear2(F.gelu(layer.linear1(h)))
        h = F.layer_norm(h + f, (D,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
    with torch.no_grad():
        out = enc(x, torch.ones(1, 6, dtype=torch.bool))
    torch.testing.assert_close(out, h[:, :2].detach(), atol=1e-5, rtol=1e-5)


def test_encoder_padding_invariance():
    enc = _encoder().eval()
    x = torch.randn(2, 5, NFEATS)
    mask = _mask([5, 3], 5)
    padded = torch.cat([x, 50 * torch.randn(2, 4, NFEATS)], dim=1)
    padded[1, 3:] = 50 * torch.randn(6, NFEATS)  # garbage in the padded frames of sample 1
    with torch.no_grad():
        a = enc(x, mask)
        b = enc(padded, _mask([5, 3], 9))
    assert a.shape == (2, 2, D)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_encode_sequence_returns_the_input_mask():
    enc = _encoder().eval()
    x, mask = torch.randn(2, 5, NFEATS), _mask([5, 3], 5)
    with torch.no_grad():
        seq, token_mask = enc.encode_sequence(x, mask, return_mask=True)
        assert torch.equal(seq, enc.encode_sequence(x, mask)) and torch.equal(seq[:, :2], enc(x, mask))
    assert seq.shape == (2, 2 + 5, D) and torch.equal(token_mask, mask)


def test_encoder_per_sample_independence_and_vae_flag():
    enc = _encoder().eval()
    x = torch.randn(3, 6, NFEATS)
    mask = _mask([6, 4, 2], 6)
    x2 = x.clone()
    x2[1] += torch.randn(6, NFEATS)
    with torch.no_grad():
        a, b = enc(x, mask), enc(x2, mask)
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]], atol=1e-6, rtol=0)
    assert not torch.allclose(a[1], b[1])
    assert _encoder(vae=False)(x, mask).shape == (3, 1, D)
    with pytest.raises(ValueError):
        enc(torch.randn(3, 6, NFEATS + 1), mask)
    with pytest.raises(ValueError):
        enc(x, mask[:, :5])


def _tmr_encoder_keys(num_layers: int, vae: bool) -> dict[str, tuple[int, ...]]:
    """State-dict layout of TMR's ACTORStyleEncoder (src/model/actor.py): name -> shape."""
    keys = {"tokens": (2 if vae else 1, D), "projection.weight": (D, NFEATS), "projection.bias": (D,)}
    for i in range(num_layers):
        p = f"seqTransEncoder.layers.{i}."
        keys |= {p + "self_attn.in_proj_weight": (3 * D, D), p + "self_attn.in_proj_bias": (3 * D,),
                 p + "self_attn.out_proj.weight": (D, D), p + "self_attn.out_proj.bias": (D,),
                 p + "linear1.weight": (FF, D), p + "linear1.bias": (FF,),
                 p + "linear2.weight": (D, FF), p + "linear2.bias": (D,),
                 p + "norm1.weight": (D,), p + "norm1.bias": (D,), p + "norm2.weight": (D,), p + "norm2.bias": (D,)}
    return keys


@pytest.mark.parametrize("vae", [True, False])
def test_encoder_state_dict_matches_tmr_names(vae):
    enc = _encoder(vae)
    sd = enc.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == _tmr_encoder_keys(LAYERS, vae)
    assert {k.split(".")[0] for k in sd} == {"tokens", "projection", "seqTransEncoder"}
    # the positional table lives under the TMR name but is not saved
    assert enc.sequence_pos_encoding.pe.shape[-1] == D
    # a TMR checkpoint (prefixed "textencoder.") converts by stripping the prefix
    ckpt = {"textencoder." + k: torch.randn_like(v) for k, v in sd.items()}
    enc.load_state_dict({k.removeprefix("textencoder."): v for k, v in ckpt.items()}, strict=True)
    assert torch.equal(enc.tokens, ckpt["textencoder.tokens"])


# ---------------------------------------------------------------------------------------------------------------
# decoder
# ---------------------------------------------------------------------------------------------------------------


def test_decoder_zero_on_padding_and_length_invariance():
    dec = _decoder().eval()
    z = torch.randn(3, D)
    mask = _mask([7, 4, 1], 7)
    with torch.no_grad():
        out = dec(z, mask)
        longer = dec(z, _mask([7, 4, 1], 10))
    assert out.shape == (3, 7, NFEATS)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    assert bool((out[mask].abs().sum(-1) > 0).all())
    torch.testing.assert_close(out, longer[:, :7], atol=1e-5, rtol=0)


def test_decoder_state_dict_matches_tmr_names():
    sd = _decoder().state_dict()
    assert {k.split(".")[0] for k in sd} == {"seqTransDecoder", "final_layer"}
    expected = {"final_layer.weight": (NFEATS, D), "final_layer.bias": (NFEATS,)}
    for i in range(LAYERS):
        p = f"seqTransDecoder.layers.{i}."
        for att in ("self_attn", "multihead_attn"):
            expected |= {p + att + ".in_proj_weight": (3 * D, D), p + att + ".in_proj_bias": (3 * D,),
                         p + att + ".out_proj.weight": (D, D), p + att + ".out_proj.bias": (D,)}
        expected |= {p + "linear1.weight": (FF, D), p + "linear1.bias": (FF,),
                     p + "linear2.weight": (D, FF), p + "linear2.bias": (D,)}
        for n in (1, 2, 3):
            expected |= {p + f"norm{n}.weight": (D,), p + f"norm{n}.bias": (D,)}
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected


def test_encoder_decoder_autocast_bf16_and_backward():
    enc, dec = _encoder().train(), _decoder().train()
    x = torch.randn(2, 6, NFEATS)
    mask = _mask([6, 3], 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mu, logvar = enc(x, mask).unbind(1)
        out = dec(reparameterize(mu, logvar), mask)
    assert torch.isfinite(out).all() and out.shape == (2, 6, NFEATS)
    assert torch.equal(out[~mask].float(), torch.zeros_like(out[~mask].float()))
    out.float().sum().backward()
    assert enc.projection.weight.grad is not None and dec.final_layer.weight.grad is not None
    # evaluation without gradients (PyTorch's fused inference path) under autocast, vs. float32
    enc.eval(), dec.eval()
    with torch.inference_mode():
        ref = dec(enc(x, mask)[:, 0], mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = dec(enc(x, mask)[:, 0], mask)
    assert torch.backends.mha.get_fastpath_enabled()  # restored after the autocast forward
    torch.testing.assert_close(low.float(), ref, atol=0.1, rtol=0.05)


# ---------------------------------------------------------------------------------------------------------------
# reparameterize
# ---------------------------------------------------------------------------------------------------------------


def test_reparameterize_statistics_and_generator():
    n = 200_000
    mu = torch.tensor([0.5, -2.0, 3.0])
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.25)])
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu.expand(n, 3), logvar.expand(n, 3), generator=g)
    std = torch.tensor([1.0, 2.0, 0.5])
    # sample mean within 5 standard errors, sample std within 1 %
    assert bool(((z.mean(0) - mu).abs() < 5 * std / math.sqrt(n)).all())
    torch.testing.assert_close(z.std(0), std, rtol=0.01, atol=0)
    # standardised draws are uncorrelated across coordinates
    e = (z - mu) / std
    corr = (e.T @ e / n) - torch.eye(3)
    assert corr.abs().max() < 0.02
    # reproducible with a seeded generator, different without reseeding
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = reparameterize(mu, logvar, generator=g1)
    assert torch.equal(a, reparameterize(mu, logvar, generator=g2))
    assert not torch.equal(a, reparameterize(mu, logvar, generator=g1))
    with pytest.raises(ValueError):
        reparameterize(mu, logvar[:2])


def test_reparameterize_gradients():
    mu = torch.randn(4, requires_grad=True)
    logvar = torch.randn(4, requires_grad=True)
    g = torch.Generator().manual_seed(3)
    z = reparameterize(mu, logvar, generator=g)
    eps = torch.randn(4, generator=torch.Generator().manual_seed(3))
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(4))
    torch.testing.assert_close(logvar.grad, 0.5 * eps * torch.exp(0.5 * logvar.detach()))
