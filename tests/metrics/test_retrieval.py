"""Retrieval metric against plain numpy references written here and against TMR's own metric code."""

from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.metrics.retrieval import (
    RetrievalMetric,
    format_table,
    protocol_all,
    protocol_all_captions,
    protocol_small_batches,
    protocol_threshold,
    retrieval_ranks,
)


def ref_ranks(sims, ties="average", gt_cols=None):
    """Loop reference: sort each row by decreasing similarity, locate the correct value(s)."""
    out = []
    for i, row in enumerate(np.asarray(sims, dtype=np.float64)):
        dist = -row
        target = dist[i] if gt_cols is None else min(dist[j] for j in gt_cols[i])
        srt = np.sort(dist, kind="stable")
        positions = [p for p, v in enumerate(srt) if v == target]
        if ties == "average":
            out.append(np.mean(positions))
        elif ties == "optimistic":
            out.append(positions[0])
        else:  # order: stable argsort position of the correct column
            col = i if gt_cols is None else min(gt_cols[i], key=lambda j: (dist[j], j))
            out.append(int(np.where(np.argsort(dist, kind="stable") == col)[0][0]))
    return np.array(out)


def ref_metrics(ranks):
    out = {f"R{k:02d}": 100 * np.mean(ranks < k) for k in (1, 2, 3, 5, 10)}
    out["MedR"] = np.median(ranks) + 1
    return out


@pytest.mark.parametrize("ties", ["average", "optimistic", "order"])
def test_ranks_match_reference_with_ties(ties):
    rng = np.random.default_rng(0)
    sims = rng.integers(0, 6, size=(40, 40)).astype(np.float64) / 5  # many ties
    got = retrieval_ranks(torch.from_numpy(sims), ties=ties).numpy()
    np.testing.assert_allclose(got, ref_ranks(sims, ties))
    got_t = retrieval_ranks(torch.from_numpy(sims).T, ties=ties).numpy()
    np.testing.assert_allclose(got_t, ref_ranks(sims.T, ties))


def test_protocol_all_both_directions_all_k():
    rng = np.random.default_rng(1)
    sims = rng.normal(size=(50, 50))
    sims[np.arange(50), np.arange(50)] += 1.0
    res = protocol_all(torch.from_numpy(sims))
    for d, s in (("t2m", sims), ("m2t", sims.T)):
        ref = ref_metrics(ref_ranks(s))
        for k, v in ref.items():
            assert res[d][k] == pytest.approx(v), (d, k)


def test_threshold_protocol_hand_example():
    # 3 items; captions 0 and 1 are near-duplicates (cosine 1), caption 2 differs
    sent = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    sims = torch.tensor([[0.1, 0.9, 0.0], [0.2, 0.3, 0.8], [0.5, 0.1, 0.4]])
    res = protocol_threshold(sims, sent, threshold=0.95)
    # t2m row 0: correct = min distance over cols {0,1} -> sim 0.9 at rank 0; row 1: best of {0,1} = 0.3 -> rank 1;
    # row 2: col 2 sim 0.4, one larger (0.5) -> rank 1
    assert res["t2m"]["R01"] == pytest.approx(100 / 3)
    assert res["t2m"]["R02"] == pytest.approx(100.0)
    ranks = ref_ranks(sims.numpy(), gt_cols=[[0, 1], [0, 1], [2]])
    np.testing.assert_allclose(retrieval_ranks(sims, torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]]).bool()).numpy(),
                               ranks)


def test_small_batches_hand_computed():
    n, bs = 70, 32  # two batches, 6 items dropped
    perm = np.random.RandomState(0).permutation(n)
    first, second = perm[:bs], perm[bs : 2 * bs]
    sims = np.eye(n)  # perfect retrieval everywhere ...
    # ... except in the second batch, where every text prefers the next motion of the batch (rank 1)
    for a, b in zip(second, np.roll(second, -1)):
        sims[a, b] = 2.0
    res = protocol_small_batches(torch.from_numpy(sims), batch_size=bs, seed=0)
    assert res["t2m"]["R01"] == pytest.approx((100 + 0) / 2)
    assert res["t2m"]["R02"] == pytest.approx(100.0)
    assert res["t2m"]["MedR"] == pytest.approx((1 + 2) / 2)
    assert res["m2t"]["R01"] == pytest.approx(50.0)
    assert len(first) == bs


def test_all_captions_protocol_reference():
    rng = np.random.default_rng(2)
    n_m, caps = 12, 3
    motion = rng.normal(size=(n_m, 8))
    owner = np.repeat(np.arange(n_m), caps)
    text = motion[owner] + rng.normal(scale=1.5, size=(n_m * caps, 8))
    res = protocol_all_captions(torch.from_numpy(text), torch.from_numpy(motion), torch.from_numpy(owner))
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    m = motion / np.linalg.norm(motion, axis=1, keepdims=True)
    s = t @ m.T
    t2m = np.array([np.where(np.argsort(-s[i], kind="stable") == owner[i])[0][0] for i in range(len(t))])
    m2t = np.array([min(np.where(np.argsort(-s[:, j], kind="stable") == c)[0][0] for c in np.where(owner == j)[0])
                    for j in range(n_m)])
    for d, r in (("t2m", t2m), ("m2t", m2t)):
        for k in (1, 5, 10):
            assert res[d][f"R{k:02d}"] == pytest.approx(100 * np.mean(r < k))
        assert res[d]["MedR"] == np.floor(np.median(r)) + 1
    assert res["t2m"]["rsum"] == pytest.approx(sum(res[d][f"R{k:02d}"] for d in ("t2m", "m2t") for k in (1, 5, 10)))


def test_metric_equals_functional_and_deduplicates():
    rng = np.random.default_rng(3)
    n = 40
    t, m = torch.randn(n, 16, generator=torch.Generator().manual_seed(0)), torch.randn(n, 16)
    metric = RetrievalMetric(protocols=("all", "guo"))
    order = rng.permutation(n)
    for chunk in np.array_split(order, 5):
        idx = torch.as_tensor(chunk)
        metric.update(t[idx], m[idx], idx)
    metric.update(t[:3], m[:3], torch.arange(3))  # padding duplicates
    res = metric.compute()
    tn, mn = torch.nn.functional.normalize(t.double(), dim=-1), torch.nn.functional.normalize(m.double(), dim=-1)
    ref = protocol_all(tn @ mn.T)
    assert float(res["all/t2m/R05"]) == pytest.approx(ref["t2m"]["R05"])
    assert float(res["all/m2t/MedR"]) == pytest.approx(ref["m2t"]["MedR"])
    assert "guo/t2m/R10" in res
    assert "| all | t2m |" in format_table(res)


def test_metric_skips_missing_inputs(caplog):
    metric = RetrievalMetric(protocols=("all", "threshold", "nsim"))
    metric.update(torch.randn(5, 4), torch.randn(5, 4), torch.arange(5))
    with caplog.at_level("INFO"):
        res = metric.compute()
    assert not any(k.startswith(("threshold", "nsim")) for k in res)
    assert "threshold skipped" in caplog.text


def test_bad_arguments():
    with pytest.raises(ValueError, match="ties"):
        retrieval_ranks(torch.eye(3), ties="bad")
    with pytest.raises(ValueError, match="unknown protocols"):
        RetrievalMetric(protocols=("nope",))


def test_threshold_mask_equals_float64_product():
    from motion_text.metrics.retrieval import _cosine_above

    g = torch.Generator().manual_seed(3)
    e = torch.randn(300, 16, generator=g, dtype=torch.float64)
    e[:100] = e[100:200] + 0.2 * torch.randn(100, 16, generator=g, dtype=torch.float64)  # near-duplicates
    e = torch.nn.functional.normalize(e, dim=-1)
    c = e @ e.T
    for cut in (0.9, 0.0, float(c[0, 1])):  # the last one lies exactly on an entry
        assert torch.equal(_cosine_above(e, cut), c > cut)


@pytest.mark.parametrize("ties", ["average", "optimistic", "order"])
def test_sparse_gt_mask_matches_reference(ties):
    """A mask with a few True entries per row (the near-duplicate case) takes the nonzero-entries path."""
    rng = np.random.default_rng(4)
    n = 60
    sims = rng.integers(0, 6, size=(n, n)).astype(np.float64) / 5  # many ties
    mask = np.eye(n, dtype=bool)
    extra = rng.integers(0, n, size=(20, 2))
    mask[extra[:, 0], extra[:, 1]] = True
    assert mask.mean() < 0.05
    gt_cols = [list(np.nonzero(row)[0]) for row in mask]
    got = retrieval_ranks(torch.from_numpy(sims), torch.from_numpy(mask), ties=ties).numpy()
    np.testing.assert_allclose(got, ref_ranks(sims, ties, gt_cols=gt_cols))


TMR_THRESHOLD = Path(__file__).resolve().parents[1] / "fixtures" / "tmr_threshold" / "tmr_threshold.npz"


def test_threshold_protocol_matches_tmr_on_the_float32_boundary():
    """Ranks and metrics of TMR (Mathux/TMR@6d74688 ``src/model/metrics.py::all_contrastive_metrics``, threshold
    0.95) stored by tests/fixtures/tmr_threshold/make_fixture.py: captions 0/1 have the float32 similarity
    float32(0.9) (not a match for TMR, although their float64 cosine exceeds 0.9), captions 2/3 the next float32
    (a match for TMR, although their float64 cosine is below 0.9)."""
    ref = np.load(TMR_THRESHOLD)
    sims, sent = torch.from_numpy(ref["sims"]).double(), torch.from_numpy(ref["sent_emb"])
    gt = torch.eye(len(sims), dtype=torch.bool)
    gt[2, 3] = gt[3, 2] = True  # what TMR counts here, by hand: only the upper pair
    np.testing.assert_array_equal(retrieval_ranks(sims, gt).numpy(), ref["t2m_cols"])
    np.testing.assert_array_equal(retrieval_ranks(sims.T, gt.T).numpy(), ref["m2t_cols"])
    res = protocol_threshold(sims, sent, threshold=0.95)
    for d in ("t2m", "m2t"):
        for k in ("R01", "R02", "R03", "R05", "R10", "MedR"):
            assert res[d][k] == pytest.approx(float(ref[f"{d}_{k}"]), abs=1e-9), (d, k)
    # through the Metric (sims = I @ sims^T^T with normalize=False), sentence embeddings stored as float32
    metric = RetrievalMetric(protocols=("threshold",), normalize=False)
    metric.update(torch.eye(len(sims)), torch.from_numpy(ref["sims"]).T.contiguous(), torch.arange(len(sims)),
                  sent_emb=sent)
    out = metric.compute()
    assert float(out["threshold/t2m/R01"]) == pytest.approx(float(ref["t2m_R01"]))
    assert float(out["threshold/m2t/MedR"]) == pytest.approx(float(ref["m2t_MedR"]))
    # the float64-cosine option counts the other pair instead
    exact = protocol_threshold(sims, sent, threshold=0.95, exact_cosine=True)
    assert exact["t2m"]["R02"] != pytest.approx(res["t2m"]["R02"])
