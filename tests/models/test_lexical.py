"""Tests for the lexical head (Eq. 1-2), the bottleneck decoder (Eq. 4) and the masking utilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from motion_text.models.heads.bottleneck import BottleneckDecoder, masked_lm_loss
from motion_text.models.heads.lexical import LexicalHead, lexical_pool, saturate
from motion_text.models.masking import linear_curriculum, mask_frames, mask_tokens

H, V = 8, 50


def make_lm_head(seed: int = 0) -> nn.Module:
    """A small non-linear LM head (dense -> GELU -> LayerNorm -> decoder), like BERT's."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(H, H), nn.GELU(), nn.LayerNorm(H), nn.Linear(H, V))


def reference_lexical(lm_head: nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Hand computation: full logits, loop over tokens for the masked max, then log1p(relu)."""
    with torch.no_grad():
        logits = lm_head(tokens).numpy()  # b n v
    b, n, v = logits.shape
    out = np.zeros((b, v))
    for i in range(b):
        best = np.full(v, -np.inf)
        for t in range(n):
            if mask[i, t]:
                best = np.maximum(best, logits[i, t])
        out[i] = np.log1p(np.maximum(best, 0.0)) if np.isfinite(best).all() else 0.0
    return out


@pytest.fixture
def seeded_tokens():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randn(3, 11, H, generator=g)
    mask = torch.rand(3, 11, generator=g) > 0.4
    mask[0, :] = True
    mask[2, :] = False  # no valid token at all
    return tokens, mask


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 3, 4, 11, 64])
def test_lexical_head_matches_hand_computation(seeded_tokens, chunk_size, fused):
    tokens, mask = seeded_tokens
    lm_head = make_lm_head()
    p = LexicalHead(lm_head, chunk_size=chunk_size, fused=fused)(tokens, mask)
    assert p.shape == (3, V)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.detach().numpy(), reference_lexical(lm_head, tokens, mask), atol=1e-5)
    assert torch.all(p[2] == 0)


def test_lexical_head_masked_positions_do_not_contribute(seeded_tokens):
    tokens, mask = seeded_tokens
    head = LexicalHead(make_lm_head(), chunk_size=4)
    p = head(tokens, mask)
    perturbed = tokens.clone()
    perturbed[~mask] = 100.0 * torch.randn(int((~mask).sum()), H)
    torch.testing.assert_close(head(perturbed, mask), p)


def test_lexical_head_motion_shaped_input():
    g = torch.Generator().manual_seed(2)
    tokens = torch.randn(2, 5, 4, H, generator=g)  # b t j h
    mask = torch.ones(2, 5, 4, dtype=torch.bool)
    mask[1, 3:] = False
    lm_head = make_lm_head()
    p = LexicalHead(lm_head, chunk_size=3)(tokens, mask)
    expected = reference_lexical(lm_head, tokens.reshape(2, 20, H), mask.reshape(2, 20))
    np.testing.assert_allclose(p.detach().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("use_checkpoint, fused", [(True, False), (False, False), (False, True)])
def test_lexical_head_gradients_match_unchunked(seeded_tokens, use_checkpoint, fused):
    tokens, mask = seeded_tokens
    lm_head = make_lm_head()
    weights = torch.randn(V)

    x1 = tokens.clone().requires_grad_(True)
    head = LexicalHead(lm_head, chunk_size=3, use_checkpoint=use_checkpoint, fused=fused)
    (head(x1, mask) @ weights).sum().backward()
    g_param = [p.grad.clone() for p in lm_head.parameters()]
    lm_head.zero_grad()

    x2 = tokens.clone().requires_grad_(True)
    logits = lm_head(x2).masked_fill(~mask[..., None], float("-inf"))
    ref = torch.log1p(torch.relu(logits.amax(dim=1)))
    (ref @ weights).sum().backward()

    assert x1.grad is not None and float(x1.grad.abs().sum()) > 0
    torch.testing.assert_close(x1.grad, x2.grad)
    for got, p in zip(g_param, lm_head.parameters()):
        torch.testing.assert_close(got, p.grad)
    assert torch.all(x1.grad[~mask] == 0)


def test_saturate_inactive_grad_changes_the_backward_pass_only():
    x = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 2.0, float("-inf")]], requires_grad=True)
    exact = saturate(x)
    exact.sum().backward()
    g_exact = x.grad.clone()
    x.grad = None
    leaky = saturate(x, inactive_grad=0.25)
    leaky.sum().backward()
    assert torch.equal(leaky, exact)  # same values: log1p(relu(x)), 0 for -inf
    torch.testing.assert_close(exact, torch.tensor([[0.0, 0.0, 0.0, math.log1p(0.5), math.log1p(2.0), 0.0]]))
    torch.testing.assert_close(g_exact, torch.tensor([[0.0, 0.0, 0.0, 1 / 1.5, 1 / 3.0, 0.0]]))
    # slope 0.25 at x <= 0 (the clamp passes the gradient at 0), unchanged above 0, none for an empty row (-inf)
    torch.testing.assert_close(x.grad, torch.tensor([[0.25, 0.25, 0.25, 1 / 1.5, 1 / 3.0, 0.0]]))


@pytest.mark.parametrize("fused", [True, False])
def test_lexical_head_inactive_grad_reaches_inactive_terms(seeded_tokens, fused):
    """With ``inactive_grad`` the gradient of a term that no token activates reaches its argmax token: the head's
    gradient equals the unchunked autograd reference with the slope written out by hand."""
    tokens, mask = seeded_tokens
    lm_head = make_lm_head()
    weights = torch.randn(V)
    x1 = tokens.clone().requires_grad_(True)
    p = LexicalHead(lm_head, chunk_size=3, fused=fused)(x1, mask, inactive_grad=0.1)
    (p @ weights).sum().backward()
    x2 = tokens.clone().requires_grad_(True)
    best = lm_head(x2).masked_fill(~mask[..., None], float("-inf")).amax(dim=1)
    finite = torch.isfinite(best)
    best = torch.where(finite, best, torch.zeros_like(best))
    ref = torch.where(best > 0, torch.log1p(best.clamp(min=0)), 0.1 * best) * finite  # same gradient as saturate
    (ref @ weights).sum().backward()
    assert bool((best[:2] <= 0).any())  # some terms are inactive
    torch.testing.assert_close(x1.grad, x2.grad)
    assert float(x1.grad.abs().sum()) > 0 and torch.all(x1.grad[~mask] == 0)


def test_lexical_pool_rejects_bad_shapes():
    with pytest.raises(ValueError, match="mask shape"):
        lexical_pool(make_lm_head(), torch.randn(2, 3, H), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="chunk_size"):
        LexicalHead(make_lm_head(), chunk_size=0)


# ----------------------------------------------------------------------------------------------- bottleneck


def make_decoder(normalize: str = "sum") -> BottleneckDecoder:
    torch.manual_seed(3)
    return BottleneckDecoder(H, make_lm_head(4), num_layers=2, num_heads=2, max_len=16, normalize=normalize)


@pytest.mark.parametrize("normalize", ["softmax", "sum", "none"])
def test_cbow_matches_hand_computation(normalize):
    dec = make_decoder(normalize)
    g = torch.Generator().manual_seed(5)
    p = torch.relu(torch.randn(2, V, generator=g))
    w = torch.randn(V, H, generator=g)
    p_np, w_np = p.numpy().astype(np.float64), w.numpy().astype(np.float64)
    if normalize == "softmax":
        e = np.exp(p_np - p_np.max(1, keepdims=True))
        weights = e / e.sum(1, keepdims=True)
    elif normalize == "sum":
        weights = p_np / (p_np.sum(1, keepdims=True) + 1e-4)
    else:
        weights = p_np
    np.testing.assert_allclose(dec.cbow(p, w).numpy(), weights @ w_np, rtol=1e-5, atol=1e-5)


def test_bottleneck_stop_gradient_and_gradient_to_p():
    dec = make_decoder()
    g = torch.Generator().manual_seed(6)
    w_te = torch.randn(V, H, generator=g, requires_grad=True)
    p = torch.relu(torch.randn(2, V, generator=g)).requires_grad_(True)
    ids = torch.randint(5, V, (2, 7), generator=g)
    am = torch.ones(2, 7, dtype=torch.long)
    am[1, 5:] = 0
    logits = dec(p, ids, am, w_te)
    assert logits.shape == (2, 7, V)
    g_w, g_p = torch.autograd.grad(logits.square().sum(), [w_te, p], allow_unused=True)
    assert g_w is None or float(g_w.abs().sum()) == 0.0  # sg(W_te)
    assert g_p is not None and float(g_p.abs().sum()) > 0
    assert dec.cbow(p, w_te).grad_fn is not None
    (g_w_cbow,) = torch.autograd.grad(dec.cbow(p, w_te).sum(), [w_te], allow_unused=True)
    assert g_w_cbow is None


def test_bottleneck_depends_on_p_and_ignores_padding():
    dec = make_decoder().eval()
    g = torch.Generator().manual_seed(7)
    w_te = torch.randn(V, H, generator=g)
    ids = torch.randint(5, V, (1, 6), generator=g)
    am = torch.ones(1, 6, dtype=torch.long)
    p1, p2 = torch.relu(torch.randn(2, 1, V, generator=g)) * 3
    with torch.no_grad():
        a, b = dec(p1, ids, am, w_te), dec(p2, ids, am, w_te)
        assert not torch.allclose(a, b)
        padded_ids = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
        padded_am = torch.cat([am, torch.zeros(1, 3, dtype=torch.long)], 1)
        c = dec(p1, padded_ids, padded_am, w_te)
    torch.testing.assert_close(c[:, :6], a, atol=1e-5, rtol=1e-5)


def test_length_head_trains_only_itself_and_learns_lengths():
    """The length classifier reads sg(E_cbow): no gradient reaches p or the decoder's other parameters; a few Adam
    steps on vectors whose active word decides the length make it predict every length exactly; updates are counted
    in training mode only."""
    dec = make_decoder()
    g = torch.Generator().manual_seed(9)
    w_te = torch.randn(V, H, generator=g)
    lengths = torch.tensor([2, 5, 9, 13])
    p = torch.zeros(4, V)
    p[torch.arange(4), torch.tensor([10, 20, 30, 40])] = 2.0  # one active word per length
    p.requires_grad_(True)
    loss = dec.length_loss(p, w_te, lengths)
    loss.backward()
    assert p.grad is None
    assert all(q.grad is None for n, q in dec.named_parameters() if not n.startswith("length_head"))
    assert all(q.grad is not None for q in dec.length_head.parameters())
    expected = torch.nn.functional.cross_entropy(dec.length_logits(p, w_te), lengths)
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    opt = torch.optim.Adam(dec.length_head.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        dec.length_loss(p, w_te, lengths).backward()
        opt.step()
    assert int(dec.length_updates) == 101
    dec.eval()
    top = dec.predict_lengths(p, w_te, beam=3)
    assert top.shape == (4, 3) and top[:, 0].tolist() == lengths.tolist()
    dec.length_loss(p, w_te, lengths)
    assert int(dec.length_updates) == 101  # eval mode: not counted
    assert "length_updates" in dec.state_dict()
    assert dec.predict_lengths(p, w_te, beam=3, min_length=6).min() >= 6
    with torch.no_grad():  # the longest lengths the classifier can score leave no room for [CLS] / [SEP]
        dec.length_head[-1].bias[dec.max_len - 1:] = 1e4
    assert dec.predict_lengths(p, w_te, beam=3).max() <= dec.max_len - 2
    with pytest.raises(ValueError, match="lengths"):
        dec.length_loss(p, w_te, lengths[:2])


def test_masked_loss_equals_manual_cross_entropy():
    dec = make_decoder()
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(2, 5, V, generator=g)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[0, 3], labels[1, 4] = 7, 9, 11
    lg = logits.numpy().astype(np.float64)
    terms = []
    for i, t in [(0, 1), (0, 3), (1, 4)]:
        row = lg[i, t]
        lse = row.max() + math.log(np.exp(row - row.max()).sum())
        terms.append(lse - row[labels[i, t].item()])
    np.testing.assert_allclose(dec.loss(logits, labels).item(), np.mean(terms), rtol=1e-5)
    empty = masked_lm_loss(logits.requires_grad_(True), torch.full((2, 5), -100))
    assert empty.item() == 0.0 and empty.requires_grad


# ----------------------------------------------------------------------------------------------- masking

SPECIALS = (0, 1, 2, 3, 4)  # pad unk cls sep mask
MASK_ID = 4


def make_batch():
    g = torch.Generator().manual_seed(9)
    lengths = [12, 7, 3, 2]  # the last one is [CLS] [SEP] only
    ids = torch.zeros(4, 12, dtype=torch.long)
    am = torch.zeros(4, 12, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(5, 40, (n,), generator=g)
        ids[i, 0], ids[i, n - 1] = 2, 3
        am[i, :n] = 1
    ids[0, 5] = 1  # an [UNK] inside a caption is never masked
    return ids, am


@pytest.mark.parametrize("ratio", [0.15, 0.3, 0.5, 0.7, 1.0])
def test_mask_tokens_exact_counts_and_specials(ratio):
    ids, am = make_batch()
    masked, labels = mask_tokens(ids, am, ratio, MASK_ID, SPECIALS, torch.Generator().manual_seed(0))
    for i in range(ids.shape[0]):
        maskable = [t for t in range(ids.shape[1]) if am[i, t] and int(ids[i, t]) not in SPECIALS]
        n = len(maskable)
        expected = 0 if n == 0 else min(n, max(1, math.floor(ratio * n + 0.5)))
        chosen = [t for t in range(ids.shape[1]) if labels[i, t] != -100]
        assert len(chosen) == expected
        assert set(chosen) <= set(maskable)
        for t in range(ids.shape[1]):
            if t in chosen:
                assert masked[i, t] == MASK_ID and labels[i, t] == ids[i, t]
            else:
                assert masked[i, t] == ids[i, t]
        if ratio == 1.0:
            assert chosen == maskable


def test_mask_tokens_reproducible_and_bert_style():
    ids, am = make_batch()
    a = mask_tokens(ids, am, 0.5, MASK_ID, SPECIALS, torch.Generator().manual_seed(1))
    b = mask_tokens(ids, am, 0.5, MASK_ID, SPECIALS, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    big = torch.randint(5, 40, (64, 40), generator=torch.Generator().manual_seed(2))
    big_am = torch.ones_like(big)
    masked, labels = mask_tokens(
        big, big_am, 1.0, MASK_ID, SPECIALS, torch.Generator().manual_seed(3), vocab_size=40, bert_style=True
    )
    assert (labels != -100).all()
    frac_mask = (masked == MASK_ID).float().mean().item()
    frac_same = (masked == big).float().mean().item()
    assert 0.75 < frac_mask < 0.85 and 0.07 < frac_same < 0.16
    assert not torch.isin(masked[masked != MASK_ID], torch.tensor(SPECIALS)).any()
    with pytest.raises(ValueError, match="vocab_size"):
        mask_tokens(big, big_am, 0.5, MASK_ID, SPECIALS, bert_style=True)
    with pytest.raises(ValueError, match="ratio"):
        mask_tokens(ids, am, 0.0, MASK_ID, SPECIALS)


def test_mask_frames_counts():
    mask = torch.zeros(4, 10, dtype=torch.bool)
    for i, n in enumerate([10, 7, 1, 0]):
        mask[i, :n] = True
    keep = mask_frames(mask, 0.5, torch.Generator().manual_seed(0))
    assert not (keep & ~mask).any()
    for i, n in enumerate([10, 7, 1, 0]):
        hidden = min(math.floor(0.5 * n + 0.5), max(n - 1, 0))
        assert int(keep[i].sum()) == n - hidden
    assert keep[2, 0]  # the only frame of a one-frame clip is kept
    assert torch.equal(mask_frames(mask, 0.0), mask)


def test_linear_curriculum_values():
    assert linear_curriculum(0, 0.5, 1.0, 50) == pytest.approx(0.5)
    assert linear_curriculum(49, 0.5, 1.0, 50) == pytest.approx(1.0)
    assert linear_curriculum(60, 0.5, 1.0, 50) == pytest.approx(1.0)
    for epoch in range(0, 50, 7):
        assert linear_curriculum(epoch, 0.5, 1.0, 50) == pytest.approx(0.5 + 0.5 * epoch / 49)
    assert linear_curriculum(3, 0.4, 1.0, 11) == pytest.approx(0.4 + 0.6 * 0.3)
    assert linear_curriculum(0, 0.5, 1.0, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="epoch"):
        linear_curriculum(-1, 0.5, 1.0, 10)
    with pytest.raises(ValueError, match="num_epochs"):
        linear_curriculum(0, 0.5, 1.0, 0)
