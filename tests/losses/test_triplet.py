"""DropTriple losses against loop references written here and against rehamot's own outputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.losses.triplet import drop_mask, drop_triple_loss, triplet_loss


def _emb(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)


def ref_g(e1, e2, margin, mining, drop=None, mode="zero"):
    e1, e2 = e1.numpy().astype(np.float64), e2.numpy().astype(np.float64)
    s = e1 @ e2.T
    n = len(s)
    total = 0.0
    for i in range(n):
        costs = []
        for j in range(n):
            if i == j:
                continue
            sij = s[i, j]
            if drop is not None and drop[i, j]:
                if mode == "remove":
                    continue
                sij = 0.0
            costs.append(max(0.0, margin + sij - s[i, i]))
        if not costs:
            continue
        total += sum(costs) if mining == "sum" else max(costs)
    return total


@pytest.mark.parametrize("mining", ["sum", "max"])
@pytest.mark.parametrize("mode", ["zero", "remove"])
def test_variants_match_loop_reference(mining, mode):
    e1, e2 = _emb(10, 4, 0), _emb(10, 4, 1)
    for drop in (False, True):
        out = triplet_loss(e1, e2, mining=mining, drop=drop, delta_hetero=0.5, delta_homo=0.6, drop_mode=mode)
        d = drop_mask(e1, e2, 0.5, 0.6).numpy() if drop else None
        assert float(out["loss"]) == pytest.approx(ref_g(e1, e2, 0.2, mining, d, mode), rel=1e-5, abs=1e-6)


def test_drop_mask_exact_pairs():
    e1, e2 = _emb(12, 3, 2), _emb(12, 3, 3)
    mask = drop_mask(e1, e2, 0.7, 0.9).numpy()
    p, q = (e1 @ e1.T).numpy(), (e2 @ e2.T).numpy()
    expected = (p > 0.7) | (q > 0.9)
    np.fill_diagonal(expected, False)
    np.testing.assert_array_equal(mask, expected)


def test_shared_caption_pair_is_dropped():
    motion = _emb(4, 8, 4)
    text = _emb(4, 8, 5)
    text[2] = text[0]  # two different motions share the same caption
    mask = drop_mask(text, motion, 0.7, 0.9, drop_duplicates=True)  # g(t, m): query modality = text
    assert mask[0, 2] and mask[2, 0]
    # default: the reference's < 1 - 1e-6 test keeps exact duplicates as negatives
    assert not drop_mask(text, motion, 0.7, 0.9)[0, 2]
    assert not drop_mask(text, motion, 0.7, 0.9, drop_duplicates=False)[0, 2]


def test_no_gradient_through_masks():
    e1, e2 = _emb(6, 4, 6).requires_grad_(), _emb(6, 4, 7).requires_grad_()
    mask = drop_mask(e1, e2)
    assert not mask.requires_grad
    out = drop_triple_loss(e1, e2, warm=False)
    out["loss"].backward()
    assert e1.grad is not None


def test_mild_samples_violating_negatives():
    e1, e2 = _emb(8, 4, 8), _emb(8, 4, 9)
    out = triplet_loss(e1, e2, mining="mild", generator=torch.Generator().manual_seed(0))
    sh = triplet_loss(e1, e2, mining="sum")["loss"]
    mh = triplet_loss(e1, e2, mining="max")["loss"]
    assert 0 < float(out["loss"]) <= float(mh) + 1e-6 <= float(sh) + 1e-6


def test_warm_up_uses_sum_without_dropping():
    m, t = _emb(6, 4, 10), _emb(6, 4, 11)
    warm = drop_triple_loss(m, t, warm=True)
    assert float(warm["dropped"]) == 0
    assert float(warm["loss"]) == pytest.approx(ref_g(m, t, 0.2, "sum") + ref_g(t, m, 0.2, "sum"), rel=1e-5)


REHAMOT = Path(__file__).resolve().parents[1] / "fixtures" / "droptriple" / "rehamot_softcontrastive.npz"


@pytest.mark.parametrize("warm", [False, True])
def test_default_matches_rehamot_soft_contrastive_loss(warm):
    """Loss and gradients of rehamot@06ed696 ``model/losses/losses.py::SoftContrastiveLoss`` (margin 0.2,
    thresholds 0.7 / 0.9) on a batch with duplicate captions, stored by tests/fixtures/droptriple/make_fixture.py."""
    ref = np.load(REHAMOT)
    name = "warm_sum" if warm else "hard_drop"
    m = torch.tensor(ref["motion"], requires_grad=True)
    t = torch.tensor(ref["text"], requires_grad=True)
    out = drop_triple_loss(m, t, warm=warm)  # every default: margin, thresholds, drop mode, duplicates, mining
    gm, gt = torch.autograd.grad(out["loss"], (m, t))
    np.testing.assert_allclose(out["loss"].item(), ref[f"{name}_loss"], rtol=1e-6)
    np.testing.assert_allclose(gm.numpy(), ref[f"{name}_grad_motion"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gt.numpy(), ref[f"{name}_grad_text"], rtol=1e-5, atol=1e-6)


def test_dropping_duplicates_is_an_option_that_changes_the_loss():
    ref = np.load(REHAMOT)
    m, t = torch.tensor(ref["motion"]), torch.tensor(ref["text"])
    keep = drop_triple_loss(m, t, warm=False)
    drop = drop_triple_loss(m, t, warm=False, drop_duplicates=True)
    assert drop["dropped"] > keep["dropped"]  # the duplicate-caption pairs (similarity 1) are dropped too
    assert abs(drop["loss"].item() - float(ref["hard_drop_loss"])) > 0.1
