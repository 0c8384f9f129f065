"""Synthetic lexical collections from real statistics (``benchmarks/sparse_stats.py``): the sampled vectors reproduce
the document frequencies, non-zeros per vector and weight quantiles of a small "real" collection made here by an
independent process (numpy's weighted choice without replacement, term-specific log-normal weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks import sparse_stats as ss
from motion_text.retrieval.sparse import topk_sparsify_csr

V = 400


@pytest.fixture(scope="module")
def real() -> sp.csr_matrix:
    """(1500, 400) vectors: 5-70 terms per row (skewed), Zipf term popularity over 300 terms, log-normal weights whose
    median depends on the term."""
    rng = np.random.default_rng(1)
    n, terms = 1500, 300
    pop = 1.0 / np.arange(1, terms + 1) ** 0.9
    pop /= pop.sum()
    vocab_ids = rng.permutation(V)[:terms]
    scale = rng.uniform(0.1, 2.0, terms)
    rows, cols, vals = [], [], []
    for i in range(n):
        k = int(np.clip(rng.gamma(2.0, 12.0), 5, 70))
        t = rng.choice(terms, size=k, replace=False, p=pop)
        rows += [i] * k
        cols += vocab_ids[t].tolist()
        vals += (scale[t] * rng.lognormal(0.0, 0.6, k)).tolist()
    return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, V))


@pytest.fixture(scope="module")
def stats(real) -> ss.LexicalStats:
    return ss.lexical_stats(real, top_k=32)


@pytest.fixture(scope="module")
def sampled(stats) -> sp.csr_matrix:
    return ss.sample_lexical(stats, 20_000, seed=3)


def test_stats_of_a_hand_made_matrix():
    p = sp.csr_matrix(np.array([[0.5, 0, 2.0, 0], [0, 0, 1.0, 3.0], [0.25, 0, 4.0, 0]], np.float32))
    s = ss.lexical_stats(p, top_k=1, levels=np.array([0.0, 0.5, 1.0]), min_count=2)
    assert s.term_ids.tolist() == [0, 2, 3] and s.nnz.tolist() == [2, 2, 2]
    np.testing.assert_allclose(s.df, [2 / 3, 1.0, 1 / 3])
    np.testing.assert_allclose(s.df_topk, [0, 2 / 3, 1 / 3])  # top-1 keeps 2.0, 3.0, 4.0
    np.testing.assert_allclose(s.term_quantiles[1], [1.0, 2.0, 4.0])  # term 2: its own quantiles
    np.testing.assert_allclose(s.term_quantiles[0], [0.25, 0.375, 0.5])
    # term 3 (seen once < min_count): its mean 3.0 times the mean shape of terms 0 and 2 (quantiles / mean weight)
    shape = (np.array([0.25, 0.375, 0.5]) / 0.375 + np.array([1.0, 2.0, 4.0]) / (7 / 3)) / 2
    np.testing.assert_allclose(s.term_quantiles[2], 3.0 * shape)
    np.testing.assert_allclose(s.pooled, np.quantile(p.data, [0, 0.5, 1]))
    assert not s.own_quantiles[2] and s.own_quantiles[:2].all()
    np.testing.assert_allclose(s.pooled_topk, [2.0, 3.0, 4.0])


def test_sampled_collection_reproduces_the_statistics(real, stats, sampled):
    got = ss.lexical_stats(sampled, top_k=32)
    assert sampled.shape == (20_000, V) and sampled.dtype == np.float32 and (sampled.data > 0).all()
    assert set(got.term_ids) <= set(stats.term_ids)  # only observed terms are drawn
    full = np.zeros(V)
    full[got.term_ids] = got.df
    df = full[stats.term_ids]
    assert np.abs(df - stats.df).max() < 0.02  # document frequencies (max over 300 terms, df up to ~0.5)
    assert np.abs(df - stats.df).mean() < 0.004
    assert got.nnz.mean() == pytest.approx(stats.nnz.mean(), rel=0.02)
    np.testing.assert_allclose(np.quantile(got.nnz, [0.1, 0.5, 0.9]), np.quantile(stats.nnz, [0.1, 0.5, 0.9]),
                               rtol=0.1)
    # after the index's top-32 cut: min(nnz, 32) follows the lengths
    assert np.minimum(got.nnz, 32).mean() == pytest.approx(np.minimum(stats.nnz, 32).mean(), rel=0.02)
    # pooled weight quantiles and a frequent term's own quantiles
    for a in (0.1, 0.5, 0.9):
        assert np.interp(a, got.levels, got.pooled) == pytest.approx(np.interp(a, stats.levels, stats.pooled), rel=0.05)
    top = int(np.argmax(stats.df))
    j = int(np.searchsorted(got.term_ids, stats.term_ids[top]))
    np.testing.assert_allclose(got.term_quantiles[j, 4:37], stats.term_quantiles[top, 4:37], rtol=0.06)
    cmp = ss.compare_stats(stats, got)
    assert cmp["untruncated"]["df_corr"] > 0.99 and cmp["new_terms"] == 0


def test_calibration_beats_weights_proportional_to_df(stats):
    """Successive sampling with weights = df saturates on frequent terms; the fitted weights do not."""
    w, lengths, tau = ss.fit_inclusion_weights(stats.df, stats.nnz)
    prob = np.unique(stats.nnz, return_counts=True)[1] / stats.n_rows
    pred = prob @ (1 - np.exp(-np.outer(tau, w)))
    np.testing.assert_allclose(pred, np.minimum(stats.df, 1 - 0.5 / stats.n_rows), rtol=1e-4)
    naive = stats.df / stats.df.sum()
    tau_naive = ss._tau(naive, lengths)
    pred_naive = prob @ (1 - np.exp(-np.outer(tau_naive, naive)))
    assert np.abs(pred_naive - stats.df).max() > 5 * np.abs(pred - stats.df).max()


def test_sampling_is_seeded(stats):
    a, b, c = (ss.sample_lexical(stats, 300, seed=s, chunk_draws=5_000) for s in (7, 7, 8))
    assert (a != b).nnz == 0 and (a != c).nnz > 0
    assert ss.sample_lexical(stats, 0).shape == (0, V)


def test_stats_file_round_trip_and_raw_vectors(tmp_path, real, stats):
    prov = {"checkpoint": "x.ckpt", "split": "test", "motions": 1500}
    path = ss.LexicalStats.save_pair(tmp_path / "s.npz", stats, stats, prov)
    m, t, p = ss.load_stats(path)
    assert p == prov and m.n_rows == 1500 and m.top_k == 32
    np.testing.assert_array_equal(m.df, stats.df)
    np.testing.assert_array_equal(t.term_quantiles, stats.term_quantiles.astype(np.float32))  # stored as float32
    raw = ss.save_vectors(tmp_path / "v.npz", real, real[:100], prov)
    m2, t2, p2 = ss.load_stats(raw, top_k=16)
    np.testing.assert_array_equal(m2.df, stats.df)
    assert t2.n_rows == 100 and m2.top_k == 16 and p2 == prov
    np.testing.assert_allclose(m2.df_topk * 1500, np.bincount(topk_sparsify_csr(real, 16).indices,
                                                                minlength=V)[m2.term_ids])


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(2))
    with pytest.raises(ValueError, match="bad.npz.*missing"):
        ss.load_stats(bad)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable .npz"):
        ss.load_stats(tmp_path / "junk.npz")
    np.savez(tmp_path / "neg.npz", **{f"{n}_{k}": v for n in ("p_m", "p_t") for k, v in
                                      (("data", np.array([-1.0])), ("indices", np.array([0])),
                                       ("indptr", np.array([0, 1])), ("shape", np.array([1, 3])))})
    with pytest.raises(ValueError, match="neg.npz: p_m: lexical weights must be finite and non-negative"):
        ss.load_stats(tmp_path / "neg.npz")
    np.savez(tmp_path / "fmt.npz", format=np.array("other"), provenance=np.array(json.dumps({})))
    with pytest.raises(ValueError, match="fmt.npz: statistics format 'other'"):
        ss.load_stats(tmp_path / "fmt.npz")


def test_run_config_is_found_beside_the_checkpoint(tmp_path):
    ck = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ck.parent.mkdir(parents=True)
    with pytest.raises(ValueError, match="no config.yaml"):
        ss.find_run_config(ck)
    cfg = tmp_path / "run" / "lightning_logs" / "version_0" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("data: {}\n")
    assert ss.find_run_config(ck) == cfg


def test_stats_benchmark_tiny(stats):
    from benchmarks import sparse

    out = sparse.run_from_stats(stats, stats, (300, 500), n_queries=12, latency_queries=3, top_k=8, verbose=False)
    a, b = out["rows"]
    assert (a["docs"], b["docs"]) == (300, 500) and a["nnz_per_doc"] <= 8 < a["nnz_per_doc_untruncated"]
    assert 0 < a["recall@10_top8_vs_untruncated"] <= 1 and a["exactness"]["identical_top10_rate"] == 1.0
    assert a["latency"]["queries"] == 3 and "fidelity" in a and "fidelity" not in b
    # a cut above every vector's length keeps them whole: the index is the exact untruncated ranking
    whole = sparse.stats_row(stats, ss.sample_lexical(stats, 5, seed=1), 200, seed=2, top_k=int(stats.nnz.max()),
                             latency_queries=1)
    assert whole[f"recall@10_top{int(stats.nnz.max())}_vs_untruncated"] == 1.0


def test_stats_benchmark_cli(tmp_path, real, capsys):
    from benchmarks import sparse

    vectors = ss.save_vectors(tmp_path / "v.npz", real, real[:50], {"checkpoint": "made.ckpt", "split": "test"})
    sparse.main(["--stats-from", str(vectors), "--gallery", "200", "--docs", "0", "--queries", "5",
                 "--latency-queries", "2", "--save-stats", str(tmp_path / "s.npz"), "--out", str(tmp_path / "r.json")])
    r = json.loads((tmp_path / "r.json").read_text())
    assert [row["docs"] for row in r["rows"]] == [200] and r["config"]["source"]["checkpoint"] == "made.ckpt"
    assert "200 docs: build" in capsys.readouterr().out
    assert r["real_reference"]["docs"] == 1500 and 0 < r["real_reference"]["recall@10_top32_vs_untruncated"] <= 1
    m, t, prov = ss.load_stats(tmp_path / "s.npz")
    assert m.n_rows == 1500 and t.n_rows == 50 and prov["split"] == "test"
    with pytest.raises(SystemExit, match="no such file"):
        sparse.main(["--stats-from", str(tmp_path / "none.npz")])


def test_truncation_recall_by_hand():
    from benchmarks import sparse

    docs = sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [0.0, 0.9, 0.8], [0.2, 0.0, 0.3]], np.float32))
    q = sp.csr_matrix(np.array([[0.0, 1.0, 1.0]], np.float32))
    # untruncated scores 0.5, 1.7, 0.3 -> top-2 {1, 0}; top-1 cut keeps 1.0 / 0.9 / 0.3 -> scores 0, 0.9, 0.3 -> {1, 2}
    assert sparse.truncation_recall(docs, q, top_k=1, k=2) == 0.5
    assert sparse.truncation_recall(docs, q, top_k=2, k=2) == 1.0
