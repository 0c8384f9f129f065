"""Exact sparse index: top-k sparsification, exactness against a dense float64 product (with ties), save / load."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from motion_text.retrieval.sparse import SparseIndex, load_index, to_csr, topk_sparsify, topk_sparsify_csr


def random_sparse(n, v, density, rng, levels=None):
    """(n, v) float32 CSR; ``levels``: weights drawn from a few values, so that many scores tie."""
    m = sp.random(n, v, density=density, format="csr", random_state=rng, dtype=np.float32)
    if levels is not None:
        m.data = rng.choice(np.asarray(levels, dtype=np.float32), size=m.nnz)
    return m


def dense_reference(q, d, k):
    """Top-k ids by a dense float64 dot product; ties by smaller doc id; only positive scores."""
    s = q.toarray().astype(np.float64) @ d.toarray().astype(np.float64).T
    out = np.full((s.shape[0], k), -1)
    for r, row in enumerate(s):
        order = np.lexsort((np.arange(len(row)), -row))
        order = order[row[order] > 0][:k]
        out[r, : len(order)] = order
    return out, s


def test_topk_sparsify_keeps_largest_and_ties_by_smaller_id():
    x = torch.tensor([[0.1, 0.5, 0.5, 0.0, 0.3], [0.0, 0.0, 0.2, 0.0, 0.0]])
    y = topk_sparsify(x, 2)
    assert torch.equal(y, torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.0, 0.0]]))
    assert torch.equal(topk_sparsify(x, 1)[0], torch.tensor([0.0, 0.5, 0.0, 0.0, 0.0]))  # tie: id 1 before id 2
    for no_cut in (None, "all", 99):
        assert torch.equal(topk_sparsify(x, no_cut), x)
    with pytest.raises(ValueError, match="top-k"):
        topk_sparsify(x, 0)


def test_topk_csr_matches_tensor_version():
    rng = np.random.default_rng(0)
    m = random_sparse(50, 300, 0.1, rng, levels=[0.5, 1.0, 2.0])
    for k in (1, 3, 8, 64):
        got = topk_sparsify_csr(m, k).toarray()
        ref = topk_sparsify(torch.from_numpy(m.toarray()), k).numpy()
        np.testing.assert_array_equal(got, ref)
        assert (np.diff(topk_sparsify_csr(m, k).indptr) <= k).all()


@pytest.mark.parametrize("levels", [None, [0.25, 0.5, 1.0]])
def test_exact_top10_identical_to_dense_float64_product(levels):
    """Random sparse vectors; ``levels`` makes exact score ties frequent (they are broken by the smaller doc id)."""
    rng = np.random.default_rng(1 if levels is None else 2)
    docs = random_sparse(3000, 2000, 0.01, rng, levels)
    queries = random_sparse(200, 2000, 0.01, rng, levels)
    index = SparseIndex.from_vectors(docs)
    res = index.search(queries, 10, with_terms=False, batch_size=17)
    ref, s = dense_reference(queries, docs, 10)
    np.testing.assert_array_equal(res.ids, ref)
    for r in range(len(ref)):
        hit = ref[r] >= 0
        np.testing.assert_allclose(res.scores[r, hit], s[r, ref[r, hit]], rtol=0, atol=1e-12)
    if levels is not None:  # the tie case was exercised: some top-10 lists contain equal scores
        assert any(len(set(row[row > 0])) < (row > 0).sum() for row in res.scores)


def test_matched_terms_sum_to_score_and_keys():
    rng = np.random.default_rng(3)
    docs = random_sparse(100, 50, 0.2, rng)
    keys = [f"M{i:03d}" for i in range(100)]
    index = SparseIndex.from_vectors(torch.from_numpy(docs.toarray()), keys=keys, vocab=[f"w{i}" for i in range(50)])
    q = np.zeros(50, dtype=np.float32)
    q[[3, 7, 11]] = [1.0, 0.5, 2.0]
    res = index.search(q, 5)
    d = docs.toarray().astype(np.float64)
    for rank, (i, score, terms) in enumerate(zip(res.ids[0], res.scores[0], res.terms[0])):
        assert res.keys[0][rank] == keys[i]
        assert {t for t, _ in terms} == {t for t in (3, 7, 11) if d[i, t] > 0}
        assert sum(w for _, w in terms) == pytest.approx(score)
        assert [w for _, w in terms] == sorted((w for _, w in terms), reverse=True)
    rec = res.records(index.vocab)[0][0]
    assert rec["rank"] == 1 and rec["key"] == keys[res.ids[0, 0]] and rec["terms"][0][0].startswith("w")


def test_postings_hold_doc_ids_and_weights():
    m = sp.csr_matrix(np.array([[0, 1.5, 0], [2.0, 0.5, 0], [0, 0, 3.0]], dtype=np.float32))
    index = SparseIndex.from_vectors(m, keys=["a", "b", "c"])
    ids, w = index.postings(1)
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_array_equal(w, np.array([1.5, 0.5], dtype=np.float32))
    assert index.nnz == 4 and len(index) == 3 and index.vocab_size == 3


def test_padding_when_fewer_matches_than_k():
    m = sp.csr_matrix(np.array([[1.0, 0], [0, 1.0], [0, 2.0]], dtype=np.float32))
    res = SparseIndex.from_vectors(m).search(np.array([[1.0, 0.0]]), 3)
    np.testing.assert_array_equal(res.ids[0], [0, -1, -1])
    assert res.keys[0] == ["0"] and res.scores[0, 1] == 0


def test_index_top_k_cut_applies_to_documents():
    rng = np.random.default_rng(4)
    docs = random_sparse(40, 100, 0.3, rng)
    index = SparseIndex.from_vectors(docs, top_k=5)
    assert index.top_k == 5
    np.testing.assert_array_equal(index.documents().toarray(), topk_sparsify_csr(docs, 5).toarray())


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    docs = random_sparse(200, 300, 0.05, rng)
    keys = [f"k{i}" for i in range(200)]
    vocab = [f"t{i}" for i in range(300)]
    index = SparseIndex.from_vectors(docs, keys=keys, vocab=vocab, top_k=8)
    path = index.save(tmp_path / "idx")
    assert path.suffix == ".npz"
    back = load_index(tmp_path / "idx")  # suffix found
    assert isinstance(back, SparseIndex)
    assert list(back.keys) == keys and back.vocab == vocab and back.top_k == 8
    np.testing.assert_array_equal(back.documents().toarray(), index.documents().toarray())
    q = random_sparse(20, 300, 0.05, rng)
    a, b = index.search(q, 10), back.search(q, 10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.terms == b.terms


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="no index file"):
        SparseIndex.load(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", backend=np.str_("seismic"), format_version=np.int64(1))
    with pytest.raises(ValueError, match="seismic"):
        SparseIndex.load(tmp_path / "other.npz")


def test_input_validation():
    with pytest.raises(ValueError, match="non-negative"):
        to_csr(np.array([[1.0, -0.5]]))
    with pytest.raises(ValueError, match="non-finite"):
        to_csr(np.array([[np.inf, 0.5]]))
    index = SparseIndex.from_vectors(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="columns"):
        index.search(np.ones((1, 5)), 2)
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.ones((1, 4)), 0)


def test_coverage_groups_rank_documents_matching_all_groups_first():
    # doc 0: huge weight on term 0 only; doc 1: small weights on terms 0 and 1; doc 2: term 1 only
    d = np.array([[9.0, 0, 0], [0.1, 0.1, 0], [0, 5.0, 0]], dtype=np.float32)
    index = SparseIndex.from_vectors(d)
    q = np.array([[1.0, 1.0, 0]])
    np.testing.assert_array_equal(index.search(q, 3).ids[0], [0, 2, 1])
    np.testing.assert_array_equal(index.search(q, 3, groups=[[0], [1]]).ids[0], [1, 0, 2])


def test_from_batches_equals_from_vectors():
    rng = np.random.default_rng(3)
    docs = np.where(rng.random((9, 40)) < 0.2, rng.random((9, 40)), 0.0).astype(np.float32)
    keys = [f"d{i}" for i in range(9)]
    whole = SparseIndex.from_vectors(docs, keys=keys, top_k=4)
    batched = SparseIndex.from_batches([(docs[:4], keys[:4]), (docs[4:], keys[4:])], top_k=4)
    q = rng.random((3, 40)).astype(np.float32)
    a, b = whole.search(q, 5), batched.search(q, 5)
    assert list(batched.keys) == list(whole.keys) == keys
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(ValueError, match="3 vectors but 2 keys"):
        SparseIndex.from_batches([(docs[:3], keys[:2])])
