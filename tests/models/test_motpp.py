"""Tests of the MoT++ motion encoder (body-part tokens, factorised spatial/temporal transformer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from motion_text.data.skeleton import get_skeleton
from motion_text.models.encoders.motpp import PART_ORDER, MoTPPEncoder, guo_frame_tokens, uniform_resample

D, FF, HEADS = 16, 32, 2
DIMS = {"humanml3d": 263, "kitml": 251}


def _encoder(skeleton: str = "humanml3d", **kw) -> MoTPPEncoder:
    torch.manual_seed(0)
    kw = {"latent_dim": D, "ff_size": FF, "num_heads": HEADS, "num_spatial_layers": 1, "num_temporal_layers": 1,
          **kw}
    enc = MoTPPEncoder(skeleton, **kw)
    # the zero-initialised parameters get random values so that the tests see their effect
    with torch.no_grad():
        for p in (enc.spatial_cls, enc.spatial_pos, enc.temporal_cls):
            p.normal_()
    return enc


def _mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.tensor([[i < n for i in range(t)] for n in lengths])


# ---------------------------------------------------------------------------------------------------------------
# tokens and parts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["humanml3d", "kitml"])
def test_frame_tokens_match_hand_indexed_guo_layout(name):
    skel = get_skeleton(name)
    j, dim = skel.num_joints, DIMS[name]
    feats = np.random.default_rng(0).normal(size=(2, 3, dim))
    # Guo layout written out by hand: 4 root | 3(J-1) ric | 6(J-1) rot6d | 3J local vel | 4 contacts
    ric0, rot0, vel0, foot0 = 4, 4 + 3 * (j - 1), 4 + 9 * (j - 1), 4 + 9 * (j - 1) + 3 * j
    assert foot0 + 4 == dim
    ref = np.zeros((2, 3, j + 1, 12))
    for b in range(2):
        for t in range(3):
            f = feats[b, t]
            ref[b, t, 0, :7] = np.concatenate([f[0:4], f[vel0:vel0 + 3]])
            for k in range(1, j):
                ref[b, t, k, 0:6] = f[rot0 + 6 * (k - 1): rot0 + 6 * k]
                ref[b, t, k, 6:9] = f[ric0 + 3 * (k - 1): ric0 + 3 * k]
                ref[b, t, k, 9:12] = f[vel0 + 3 * k: vel0 + 3 * k + 3]
            ref[b, t, j, :4] = f[foot0:foot0 + 4]
    out = guo_frame_tokens(torch.from_numpy(feats), skel)
    np.testing.assert_allclose(out.numpy(), ref)
    np.testing.assert_allclose(_encoder(name).frame_tokens(torch.from_numpy(feats)).numpy(), ref)
    with pytest.raises(ValueError):
        guo_frame_tokens(torch.zeros(1, 2, dim + 1), skel)


@pytest.mark.parametrize("name", ["humanml3d", "kitml"])
def test_parts_cover_every_token_once(name):
    skel = get_skeleton(name)
    enc = _encoder(name)
    assert tuple(enc.part_indices) == PART_ORDER
    counts = np.zeros(skel.num_joints + 1, dtype=int)
    for idx in enc.part_indices.values():
        for i in idx:
            counts[i] += 1
    np.testing.assert_array_equal(counts, np.ones(skel.num_joints + 1, dtype=int))
    assert enc.part_indices["feet"] == (skel.num_joints,) and enc.part_indices["root"] == (0,)
    for part, idx in enc.part_indices.items():
        assert enc.part_proj[part].in_features == 12 * len(idx)


# ---------------------------------------------------------------------------------------------------------------
# a loop reference: each sample alone, each valid frame alone, no padding anywhere
# ---------------------------------------------------------------------------------------------------------------


def _reference(enc: MoTPPEncoder, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    return _reference_sequences(enc, x, lengths)[0]


def _reference_sequences(enc: MoTPPEncoder, x: torch.Tensor, lengths: list[int]
                         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(the (B, n_cls, D) CLS outputs, the per-sample (length, D) frame outputs after the final norm), one sample and
    one frame at a time."""
    n = enc.num_cls
    outs, frame_outs = [], []
    for b, length in enumerate(lengths):
        cls_sum = torch.zeros(n, D)
        frames = []
        for t in range(length):
            tok = guo_frame_tokens(x[b, t][None], enc.skeleton)[0]  # (J+1, 12)
            parts = torch.stack([enc.part_proj[p](tok[list(idx)].reshape(-1)) for p, idx in enc.part_indices.items()])
            h = torch.cat([enc.spatial_cls, parts]) + enc.spatial_pos
            for block in enc.spatial_blocks:
                h = block(h[None])[0]
            cls_sum = cls_sum + h[:n]
            frames.append(h[n:].mean(0))
        seq = torch.cat([enc.temporal_cls + cls_sum / length, torch.stack(frames)])
        pos = torch.arange(seq.shape[0], dtype=torch.float64)[:, None]
        k = torch.arange(D)
        angle = pos / 10000 ** (2 * (k // 2) / D)
        seq = seq + torch.where(k % 2 == 0, torch.sin(angle), torch.cos(angle)).float()
        for block in enc.temporal_blocks:
            seq = block(seq[None])[0]
        h = F.layer_norm(seq, (D,), enc.norm.weight, enc.norm.bias, eps=1e-6)
        outs.append(enc.head[2](torch.relu(h[:n])))
        frame_outs.append(h[n:])
    return torch.stack(outs), frame_outs


@pytest.mark.parametrize("name", ["humanml3d", "kitml"])
def test_forward_matches_loop_reference(name):
    enc = _encoder(name).eval()
    lengths = [5, 2, 4]
    x = torch.randn(3, 6, DIMS[name])
    with torch.no_grad():
        out = enc(x, _mask(lengths, 6))
        ref = _reference(enc, x, lengths)
    assert out.shape == (3, 2, D)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_encode_sequence_is_forward_then_normed_frame_outputs():
    """dagger-MoT++'s per-token outputs: the CLS part is forward's output exactly, the frame part the temporal stage's
    frame outputs after the final LayerNorm (loop reference); the frame mask is the input's."""
    enc = _encoder().eval()
    lengths = [5, 2, 4]
    x = torch.randn(3, 6, 263)
    mask = _mask(lengths, 6)
    with torch.no_grad():
        seq, frame_mask = enc.encode_sequence(x, mask, return_mask=True)
        out = enc(x, mask)
        _, ref_frames = _reference_sequences(enc, x, lengths)
    assert seq.shape == (3, 2 + 6, D) and torch.equal(frame_mask, mask)
    assert torch.equal(seq[:, :2], out)
    assert torch.equal(enc.encode_sequence(x, mask), seq)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(seq[b, 2:2 + n], ref_frames[b], atol=1e-5, rtol=1e-5)


def test_encode_sequence_of_resampled_clips_returns_their_frame_mask():
    enc = _encoder(max_frames=6).eval()
    x = torch.randn(2, 15, 263)
    idx = torch.div(torch.arange(6) * 15, 6, rounding_mode="floor")
    with torch.no_grad():
        seq, frame_mask = enc.encode_sequence(x, _mask([15, 4], 15), return_mask=True)
        ref0 = enc.encode_sequence(x[0:1, idx], torch.ones(1, 6, dtype=torch.bool))
        ref1 = enc.encode_sequence(x[1:2, :4], torch.ones(1, 4, dtype=torch.bool))
    assert seq.shape == (2, 2 + 6, D)
    assert torch.equal(frame_mask, _mask([6, 4], 6))
    torch.testing.assert_close(seq[0:1], ref0, atol=1e-5, rtol=0)
    torch.testing.assert_close(seq[1:2, :2 + 4], ref1, atol=1e-5, rtol=0)


def test_encode_sequence_official_forward():
    enc = _encoder(max_frames=8, official_forward=True).eval()
    x = torch.randn(2, 10, 263)
    mask = _mask([10, 3], 10)
    with torch.no_grad():
        seq, frame_mask = enc.encode_sequence(x, mask, return_mask=True)
        assert torch.equal(seq[:, :2], enc(x, mask))
    assert seq.shape == (2, 2 + 8, D) and torch.equal(frame_mask, _mask([8, 3], 8))
    with torch.no_grad():
        _, short_mask = enc.encode_sequence(x[:, :5], mask[:, :5], return_mask=True)
    assert torch.equal(short_mask, _mask([5, 3], 8))


def test_padding_invariance():
    enc = _encoder().eval()
    x = torch.randn(2, 5, 263)
    padded = torch.cat([x, 30 * torch.randn(2, 6, 263)], dim=1)
    padded[1, 3:] = 30 * torch.randn(8, 263)
    with torch.no_grad():
        a = enc(x, _mask([5, 3], 5))
        b = enc(padded, _mask([5, 3], 11))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_per_sample_independence():
    enc = _encoder().eval()
    x = torch.randn(3, 6, 263)
    mask = _mask([6, 3, 5], 6)
    x2 = x.clone()
    x2[0] += torch.randn(6, 263)  # sample 0 is the one whose CLS the reference code shares
    with torch.no_grad():
        a, b = enc(x, mask), enc(x2, mask)
    torch.testing.assert_close(a[1:], b[1:], atol=1e-6, rtol=0)
    assert not torch.allclose(a[0], b[0])


def test_gradient_reaches_every_parameter():
    torch.manual_seed(1)
    enc = MoTPPEncoder("kitml", latent_dim=D, ff_size=FF, num_heads=HEADS)  # zero-init CLS / part embedding
    x = torch.randn(2, 7, 251)
    out = enc(x, _mask([7, 4], 7))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_drop_path_schedule_spans_all_blocks():
    enc = MoTPPEncoder(latent_dim=D, ff_size=FF, num_heads=HEADS, drop_path=0.3)
    rates = [blk.drop_path1.p for blk in [*enc.spatial_blocks, *enc.temporal_blocks]]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    assert all(blk.drop_path1.p == blk.drop_path2.p for blk in [*enc.spatial_blocks, *enc.temporal_blocks])


def test_vae_flag_and_input_checks():
    enc = _encoder(vae=False).eval()
    x = torch.randn(2, 4, 263)
    assert enc(x, _mask([4, 2], 4)).shape == (2, 1, D)
    assert enc.spatial_pos.shape == (8, D)
    assert _encoder().spatial_pos.shape == (9, D)
    with pytest.raises(ValueError):
        enc(torch.randn(2, 4, 251), _mask([4, 2], 4))
    with pytest.raises(ValueError):
        MoTPPEncoder("amass")


# ---------------------------------------------------------------------------------------------------------------
# length handling
# ---------------------------------------------------------------------------------------------------------------


def test_uniform_resample_matches_interpolate():
    max_frames = 8
    lengths = [13, 5, 20]
    x = torch.randn(3, 20, 4)
    out, mask = uniform_resample(x, _mask(lengths, 20), max_frames)
    assert out.shape == (3, max_frames, 4)
    np.testing.assert_array_equal(mask.numpy(), _mask([8, 5, 8], 8).numpy())
    for b, n in enumerate(lengths):
        if n > max_frames:  # reference: F.interpolate (nearest) of the first n frames, as MoT++'s uniform_sample
            ref = F.interpolate(x[b:b + 1, :n].transpose(1, 2), size=max_frames, mode="nearest").transpose(1, 2)[0]
            torch.testing.assert_close(out[b], ref)
        else:
            torch.testing.assert_close(out[b, :n], x[b, :n])
    short, short_mask = uniform_resample(x[:, :6], _mask([6, 5, 6], 6), max_frames)
    assert short is not None and short.shape[1] == 6 and short_mask.shape == (3, 6)
    with pytest.raises(ValueError):
        uniform_resample(x, torch.rand(3, 20) > 0.5, max_frames)


def test_long_clips_are_resampled_in_forward():
    enc = _encoder(max_frames=6).eval()
    x = torch.randn(2, 15, 263)
    lengths = [15, 4]
    idx = torch.div(torch.arange(6) * 15, 6, rounding_mode="floor")  # nearest source frame, floor(i * L / T)
    with torch.no_grad():
        out = enc(x, _mask(lengths, 15))
        ref0 = enc(x[0:1, idx], torch.ones(1, 6, dtype=torch.bool))
        ref1 = enc(x[1:2, :4], torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(out[0:1], ref0, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1:2], ref1, atol=1e-5, rtol=0)


def test_autocast_bf16():
    enc = _encoder("kitml").train()
    x = torch.randn(2, 5, 251)
    mask = _mask([5, 2], 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x, mask)
    assert out.shape == (2, 2, D) and torch.isfinite(out).all()
    out.float().sum().backward()
    enc.eval()
    with torch.no_grad():
        ref = enc(x, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(x, mask)
    torch.testing.assert_close(low.float(), ref, atol=0.1, rtol=0.05)
