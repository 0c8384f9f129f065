"""Seismic backend (optional extra): recall@10 against the exact backend, save / load, same interface."""

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("seismic")

from motion_text.retrieval.seismic import SeismicSparseIndex  # noqa: E402
from motion_text.retrieval.sparse import SparseIndex, load_index  # noqa: E402


def _zipf_sparse(n, v, nnz, rng):
    p = 1.0 / np.arange(1, v + 1)
    p /= p.sum()
    rows = [np.unique(rng.choice(v, size=nnz, p=p)) for _ in range(n)]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    data = rng.lognormal(0, 0.5, size=indptr[-1]).astype(np.float32)
    return sp.csr_matrix((data, np.concatenate(rows), indptr), shape=(n, v))


@pytest.fixture(scope="module")
def collection():
    rng = np.random.default_rng(0)
    docs = _zipf_sparse(5000, 3000, 40, rng)
    queries = _zipf_sparse(200, 3000, 12, rng)
    return docs, queries


def recall_at_k(got, ref):
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max((b >= 0).sum(), 1) for a, b in zip(got, ref)]))


def test_seismic_recall_at_10_against_exact(collection):
    """Documented settings (module defaults = Seismic's guideline values): recall@10 >= 0.95."""
    docs, queries = collection
    exact = SparseIndex.from_vectors(docs).search(queries, 10, with_terms=False)
    seis = SeismicSparseIndex.from_vectors(docs)
    res = seis.search(queries, 10)
    r = recall_at_k(res.ids, exact.ids)
    print(f"seismic recall@10 vs exact: {r:.4f}")
    assert r >= 0.95
    # matched terms are consistent with the returned documents
    d = docs.toarray()
    for i, terms in zip(res.ids[0], res.terms[0]):
        assert all(d[i, t] > 0 for t, _ in terms)


def test_seismic_save_load_round_trip(collection, tmp_path):
    docs, queries = collection
    keys = [f"m{i}" for i in range(docs.shape[0])]
    seis = SeismicSparseIndex.from_vectors(docs, keys=keys, top_k=16)
    seis.save(tmp_path / "seis")
    back = load_index(tmp_path / "seis")
    assert isinstance(back, SeismicSparseIndex) and list(back.keys) == keys and back.top_k == 16
    a, b = seis.search(queries[:20], 10, with_terms=False), back.search(queries[:20], 10, with_terms=False)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.keys == b.keys
    assert back.nbytes > 0
