"""InfoNCE and CCCL against loop / numpy references written here."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.losses.contrastive import cccl, cccl_lambda, filter_mask, info_nce


def _norm(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax(row):
    row = np.asarray(row, dtype=np.float64)
    finite = row[np.isfinite(row)]
    mx = finite.max()
    return row - (mx + np.log(np.exp(finite - mx).sum()))


def ref_info_nce(t, m, tau, drop=None):
    t, m = _norm(t), _norm(m)
    s = t @ m.T / tau
    if drop is not None:
        s = np.where(drop, -np.inf, s)
    n = len(s)
    t2m = -np.mean([_log_softmax(s[i])[i] for i in range(n)])
    m2t = -np.mean([_log_softmax(s[:, j])[j] for j in range(n)])
    return (t2m + m2t) / 2


def test_info_nce_matches_reference():
    g = torch.Generator().manual_seed(0)
    t, m = torch.randn(9, 6, generator=g), torch.randn(9, 6, generator=g)
    out = info_nce(t, m, temperature=0.1, sent_emb=None)
    assert float(out["loss"]) == pytest.approx(ref_info_nce(t.numpy(), m.numpy(), 0.1), rel=1e-5)


def test_filtering_removes_exactly_the_near_duplicates():
    g = torch.Generator().manual_seed(1)
    t, m = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    sent = torch.eye(6)
    sent[3] = sent[1]  # captions 1 and 3 identical
    sent[5] = 0.9 * sent[0] + 0.1 * sent[2]  # cosine ~0.99 with caption 0
    mask = filter_mask(sent, 0.8)
    expected = np.zeros((6, 6), bool)
    for a, b in ((1, 3), (0, 5)):
        expected[a, b] = expected[b, a] = True
    np.testing.assert_array_equal(mask.numpy(), expected)
    out = info_nce(t, m, temperature=0.1, sent_emb=sent, filter_threshold=0.8)
    assert float(out["filtered"]) == 4
    assert float(out["loss"]) == pytest.approx(ref_info_nce(t.numpy(), m.numpy(), 0.1, expected), rel=1e-5)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_cc(p, q):
    sp, sq = _softmax(p), _softmax(q)
    return np.mean([np.sum(sp[i] * (np.log(sp[i]) - np.log(sq[i]))) for i in range(len(p))])


def ref_cccl(t, m, z, log_scales, lam):
    a, b, zz = _norm(t), _norm(m), _norm(z)
    sc, st, sm, sz = np.exp(log_scales)
    c, tt, mm, zt = sc * a @ b.T, st * a @ a.T, sm * b @ b.T, sz * zz @ zz.T
    n = len(c)
    nce = (-np.mean([_log_softmax(c[i])[i] for i in range(n)]) - np.mean([_log_softmax(c[:, j])[j] for j in range(n)])) / 2
    teach = ref_cc(zt, tt) + ref_cc(zt, mm)
    cons = sum((ref_cc(u, c) + ref_cc(u, c.T) + ref_cc(c, u) + ref_cc(c.T, u)) / 4 for u in (tt, mm))
    return nce + lam * cons + (1 - lam) * teach


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_cccl_matches_reference(lam):
    g = torch.Generator().manual_seed(2)
    t, m, z = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g), torch.randn(7, 4, generator=g)
    scales = torch.tensor([math.log(10), math.log(8), math.log(12), math.log(5)], requires_grad=True)
    out = cccl(t, m, z, scales, lam=lam)
    ref = ref_cccl(t.numpy(), m.numpy(), z.numpy(), scales.detach().numpy(), lam)
    assert float(out["loss"]) == pytest.approx(ref, rel=1e-5)
    out["loss"].backward()
    grads = scales.grad.abs()
    # s_z only enters through the teacher term, which vanishes at lam = 1
    assert (grads[:3] > 0).all() and ((grads[3] > 0) if lam < 1 else (grads[3] == 0))


def test_cccl_lambda_schedule():
    assert [cccl_lambda(e, 40, 100) for e in (0, 39, 40, 70, 100, 250)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]


MOTPP = Path(__file__).resolve().parents[1] / "fixtures" / "mot_cccl" / "motpp_cccl.npz"


@pytest.mark.parametrize("variant", ["plain", "filtered"])
def test_cccl_matches_motpp_outputs(variant):
    """Loss and gradients of MoT++ (mesnico/MOTpp@9192f01) ``InfoNCECrossConsistent`` (kldiv, lambda 40 -> 100,
    epoch 60), without and with ``infonce_loss_fn=InfoNCE_with_filtering(temperature=0.1, threshold_selfsim=0.8)``,
    stored by tests/fixtures/mot_cccl/make_fixture.py. The filtered variant uses the fixed temperature 0.1, so the
    multimodal scale s_c gets a gradient from L_cons only."""
    ref = np.load(MOTPP)
    m = torch.tensor(ref["motion"], requires_grad=True)
    t = torch.tensor(ref["text"], requires_grad=True)
    scales = torch.tensor(ref["log_scales"], requires_grad=True)
    kw = {"filter_threshold": 0.8} if variant == "filtered" else {}
    out = cccl(t, m, torch.tensor(ref["sent_emb"]), scales, lam=cccl_lambda(60, 40, 100), **kw)
    gm, gt, gs = torch.autograd.grad(out["loss"], (m, t, scales))
    np.testing.assert_allclose(out["loss"].item(), ref[f"{variant}_loss"].item(), rtol=1e-5)
    np.testing.assert_allclose(gm.numpy(), ref[f"{variant}_grad_motion"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gt.numpy(), ref[f"{variant}_grad_text"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gs.numpy(), ref[f"{variant}_grad_log_scales"], rtol=1e-4, atol=1e-6)


def test_cccl_raw_dot_products_without_normalize():
    """``normalize=False`` (dagger-MoT++): C, T, M are raw dot products of the given vectors, Z stays normalised.
    Reference: the docstring's formulas in numpy, with A = text and B = motion unnormalised; the loss also differs
    from the normalised one (the flag is not a no-op)."""
    g = torch.Generator().manual_seed(3)
    t, m = torch.rand(5, 6, generator=g) * 2, torch.rand(5, 6, generator=g) * 2  # non-negative, as p_t, p_m
    z = torch.randn(5, 4, generator=g) * 3
    log_scales = np.log([0.2, 0.3, 0.25, 10.0])
    scales = torch.tensor(log_scales, dtype=torch.float32)
    a, b, zz = t.double().numpy(), m.double().numpy(), _norm(z.double().numpy())
    sc, st, sm, sz = np.exp(log_scales)
    c, tt, mm, zt = sc * a @ b.T, st * a @ a.T, sm * b @ b.T, sz * zz @ zz.T
    n = len(c)
    for lam in (0.0, 0.3, 1.0):
        nce = -(np.mean([_log_softmax(c[i])[i] for i in range(n)]) + np.mean([_log_softmax(c[:, j])[j]
                                                                           for j in range(n)])) / 2
        teach = ref_cc(zt, tt) + ref_cc(zt, mm)
        cons = sum((ref_cc(u, c) + ref_cc(u, c.T) + ref_cc(c, u) + ref_cc(c.T, u)) / 4 for u in (tt, mm))
        out = cccl(t, m, z, scales, lam=lam, normalize=False)
        assert float(out["nce"]) == pytest.approx(nce, rel=1e-5)
        assert float(out["teach"]) == pytest.approx(teach, rel=1e-5)
        assert float(out["cons"]) == pytest.approx(cons, rel=1e-5)
        assert float(out["loss"]) == pytest.approx(nce + lam * cons + (1 - lam) * teach, rel=1e-5)
        normed = cccl(t, m, z, scales, lam=lam)
        assert float(normed["loss"]) == pytest.approx(ref_cccl(a, b, z.double().numpy(), log_scales, lam), rel=1e-5)
        assert abs(float(normed["loss"]) - float(out["loss"])) > 1e-3
    # with filtering, L_nce's logits are raw A B^T / nce_temperature
    sent = torch.eye(5)
    sent[3] = sent[1]
    drop = filter_mask(sent, 0.8).numpy()
    s = np.where(drop, -np.inf, a @ b.T / 5.0)
    ref_nce = -(np.mean([_log_softmax(s[i])[i] for i in range(n)]) + np.mean([_log_softmax(s[:, j])[j]
                                                                             for j in range(n)])) / 2
    out = cccl(t, m, sent, scales, lam=0.5, filter_threshold=0.8, nce_temperature=5.0, normalize=False)
    assert float(out["nce"]) == pytest.approx(ref_nce, rel=1e-5)
