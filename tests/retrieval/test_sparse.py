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


def topk_rows_reference(m, k):
    """Per-row numpy reference of the CSR top-k cut: entries sorted by (-value, column), the first ``k`` kept."""
    m = sp.csr_matrix(m)
    out = sp.lil_matrix(m.shape, dtype=m.dtype)
    for r in range(m.shape[0]):
        cols = m.indices[m.indptr[r] : m.indptr[r + 1]]
        vals = m.data[m.indptr[r] : m.indptr[r + 1]]
        order = sorted(range(len(cols)), key=lambda j: (-float(vals[j]), int(cols[j])))[:k]
        for j in order:
            out[r, cols[j]] = vals[j]
    return out.tocsr()


def tied_rows(n, v, rng, dtype, k):
    """(n, v) CSR with weights from {0.25, 0.5, 1, 2}, row lengths 0 ... 3k (empty, shorter and longer than k)."""
    lengths = rng.integers(0, 3 * k + 1, n)
    lengths[:3] = [0, k, k + 1]
    cols = [np.sort(rng.choice(v, size=min(n_r, v), replace=False)) for n_r in lengths]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])])
    data = rng.choice(np.array([0.25, 0.5, 1.0, 2.0], dtype=dtype), size=indptr[-1])
    return sp.csr_matrix((data, np.concatenate(cols).astype(np.int32), indptr), shape=(n, v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_elements", [None, 7])
def test_topk_csr_ties_by_smaller_column_against_row_reference(dtype, chunk_elements):
    """Many equal weights at the cut: the kept entries are those of a per-row (-value, column) sort; rows with at most
    ``k`` entries are left as they are; the dense tensor version agrees; a small ``chunk_elements`` (many blocks, some
    of one row) changes nothing."""
    rng = np.random.default_rng(5)
    kw = {} if chunk_elements is None else {"chunk_elements": chunk_elements}
    for k in (1, 3, 8):
        m = tied_rows(60, 40, rng, dtype, k)
        before = (m.indptr.copy(), m.indices.copy(), m.data.copy())
        got = topk_sparsify_csr(m, k, **kw)
        ref = topk_rows_reference(m, k)
        assert got.dtype == dtype and got.has_sorted_indices
        np.testing.assert_array_equal(got.indptr, ref.indptr)
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_array_equal(got.data, ref.data)
        dense = topk_sparsify(torch.from_numpy(m.toarray()), k).numpy()
        np.testing.assert_array_equal(got.toarray(), dense)
        for r in np.flatnonzero(np.diff(m.indptr) <= k):  # short rows untouched
            np.testing.assert_array_equal(got[r].toarray(), m[r].toarray())
        for a, b in zip(before, (m.indptr, m.indices, m.data)):
            np.testing.assert_array_equal(a, b)  # input not modified
        # the tie rule is exercised: some cut row has equal weights on both sides of the cut
        rows = [np.sort(m.data[m.indptr[r] : m.indptr[r + 1]])[::-1] for r in range(m.shape[0])]
        assert any(len(w) > k and w[k - 1] == w[k] for w in rows)
    m = tied_rows(20, 40, rng, dtype, 4)
    np.testing.assert_array_equal(topk_sparsify_csr(m, 50, **kw).toarray(), m.toarray())  # k above every row


def test_topk_csr_float64_precision_nan_explicit_zeros_and_unsorted_input():
    # float64 weights that are equal in float32: the larger one wins, not the smaller column
    m = sp.csr_matrix(np.array([[1.0, 1.0 + 1e-12, 0.5]]))
    np.testing.assert_array_equal(topk_sparsify_csr(m, 1).indices, [1])
    assert topk_sparsify_csr(m, 1).dtype == np.float64
    # explicit zeros are entries (kept when among the k largest); NaN ranks last and does not crash
    z = sp.csr_matrix((np.array([0.0, 0.5, 0.0, np.nan], dtype=np.float32), np.array([0, 1, 2, 3]), [0, 4]),
                      shape=(1, 5))
    got = topk_sparsify_csr(z, 2)
    np.testing.assert_array_equal(got.indices, [0, 1])
    np.testing.assert_array_equal(got.data, [0.0, 0.5])
    np.testing.assert_array_equal(topk_sparsify_csr(z, 4).indices, [0, 1, 2, 3])
    # unsorted column ids within rows: same cut as the sorted matrix, sorted output, input left as it was
    rng = np.random.default_rng(6)
    m = tied_rows(30, 25, rng, np.float32, 3)
    perm = np.concatenate([m.indptr[r] + rng.permutation(m.indptr[r + 1] - m.indptr[r]) for r in range(30)])
    u = sp.csr_matrix((m.data[perm], m.indices[perm], m.indptr), shape=m.shape)
    indices = u.indices.copy()
    got = topk_sparsify_csr(u, 3)
    ref = topk_sparsify_csr(m, 3)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.data, ref.data)
    np.testing.assert_array_equal(u.indices, indices)
    # no cut, empty matrix, bad arguments
    for no_cut in (None, "all"):
        np.testing.assert_array_equal(topk_sparsify_csr(m, no_cut).toarray(), m.toarray())
    assert topk_sparsify_csr(sp.csr_matrix((0, 5), dtype=np.float32), 2).shape == (0, 5)
    with pytest.raises(ValueError, match="top-k"):
        topk_sparsify_csr(m, 0)
    with pytest.raises(ValueError, match="chunk_elements"):
        topk_sparsify_csr(m, 2, chunk_elements=0)


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
