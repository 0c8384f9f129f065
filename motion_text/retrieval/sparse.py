"""Exact sparse retrieval over lexical (vocabulary-sized) vectors: top-k sparsification and an inverted index.

The lexical method (Lyu et al., lexical four-phase motion-text pretraining) represents motions and captions by
non-negative vectors ``p`` in R^{|V|} (V = the BERT WordPiece vocabulary) and scores a pair by the raw dot product
``s(t, m) = <p_t, p_m>`` (Eq. 1). Sparse vectors are searched as in learned sparse retrieval for text (SPLADE,
Formal et al., 2021): an inverted index maps each term to its postings ``(doc id, weight)`` and a query only touches
the posting lists of its own non-zero terms.

* :func:`topk_sparsify` keeps the ``k`` largest entries of each vector (top-k sparsifying at inference, paper
  §4.3 / Fig. 4; ``k=None`` or ``"all"``: no cut).
* :class:`SparseIndex` is the exact backend: postings stored as a CSR matrix of shape ``(V, N)`` (row t = the
  postings of term t, doc ids sorted), scored with a sparse x sparse product (scipy's SMMP kernel).

Exactness and ties
------------------
``search`` returns the same top-k as a dense dot product ``Q @ D.T`` of the stored vectors, with ties broken by the
smaller document id (position in the collection). Candidates are found with the float32 product, and every document
whose float32 score could reach the k-th best (a window of the float32 rounding bound, ``(m + 2) 2^-24`` relative,
for ``m`` query terms) is scored again in float64 from the postings; products of two float32 numbers are exact in
float64, so the returned scores are the float64 dot products of the stored float32 weights. Only documents sharing
at least one term with the query (score > 0) are returned; rows with fewer than ``k`` such documents are padded with
id ``-1`` and score ``0``. Vectors must be non-negative (a negative weight would let an unmatched document, score 0,
outrank a matched one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from motion_text.retrieval.vectors import (
    INDEX_FORMAT_VERSION,
    SearchResult,
    check_k,
    pad_results,
    stack_batches,
    to_csr,
    topk_sparsify,
    topk_sparsify_csr,
    vocabulary,
)

__all__ = ["topk_sparsify", "topk_sparsify_csr", "to_csr", "vocabulary", "SearchResult", "SparseIndex",
           "load_index", "stack_batches", "INDEX_FORMAT_VERSION"]

log = logging.getLogger(__name__)

_U32 = 2.0 ** -24  # unit round-off of float32


# ---- exact backend ---------------------------------------------------------------------------------------------------
class SparseIndex:
    """Exact inverted index: term -> postings ``(doc id, weight)`` plus the documents' key ids.

    Build with :meth:`from_vectors` (or :meth:`from_batches` while encoding a collection), query with
    :meth:`search`, persist with :meth:`save` / :meth:`load` (numpy ``.npz``, no pickle).

    Parameters
    ----------
    postings : scipy.sparse.csr_matrix
        (V, N) float32; row t holds the postings of term t (column = doc id, sorted).
    keys : sequence of str, optional
        Key id of each document (default: ``"0" .. "N-1"``).
    vocab : sequence of str, optional
        Token string of each term id (kept in the saved index, for readable terms and exports).
    top_k : int, optional
        The top-k cut the documents were built with (recorded only).
    """

    backend = "exact"

    def __init__(self, postings: sp.csr_matrix, keys: Sequence[str] | None = None,
                 vocab: Sequence[str] | None = None, top_k: int | None = None) -> None:
        post = sp.csr_matrix(postings, dtype=np.float32)
        post.sort_indices()
        self._post = post
        n = post.shape[1]
        self.keys = np.asarray([str(i) for i in range(n)] if keys is None else [str(k) for k in keys], dtype=str)
        if len(self.keys) != n:
            raise ValueError(f"got {len(self.keys)} keys for {n} documents")
        self.vocab = None if vocab is None else [str(v) for v in vocab]
        if self.vocab is not None and len(self.vocab) != post.shape[0]:
            raise ValueError(f"vocab has {len(self.vocab)} entries, the vectors have {post.shape[0]} terms")
        self.top_k = top_k

    # -- construction --
    @classmethod
    def from_vectors(cls, vectors: Any, keys: Sequence[str] | None = None, *, top_k: int | str | None = None,
                     vocab: Sequence[str] | None = None) -> SparseIndex:
        """Index (N, V) document vectors (tensor, array, scipy sparse, or a list of those), optionally cut to
        their ``top_k`` largest terms first."""
        docs = to_csr(vectors, what="document vectors")
        kk = check_k(top_k)
        if kk is not None:
            docs = topk_sparsify_csr(docs, kk)
        return cls(docs.T.tocsr(), keys=keys, vocab=vocab, top_k=kk)

    @classmethod
    def from_batches(cls, batches: Iterable[tuple[Any, Sequence[str]]], *, top_k: int | str | None = None,
                     vocab: Sequence[str] | None = None) -> SparseIndex:
        """Index an iterable of ``(vectors (B, V), keys (B,))`` batches; each batch is cut and made sparse as it
        arrives, so the dense (N, V) matrix never exists."""
        kk = check_k(top_k)
        docs, keys = stack_batches(batches, kk)
        return cls(docs.T.tocsr(), keys=keys, vocab=vocab, top_k=kk)

    # -- properties --
    def __len__(self) -> int:
        return self._post.shape[1]

    @property
    def vocab_size(self) -> int:
        return self._post.shape[0]

    @property
    def nnz(self) -> int:
        return int(self._post.nnz)

    @property
    def nbytes(self) -> int:
        """Bytes of the postings arrays (doc ids, weights, term offsets); key ids and vocabulary excluded."""
        p = self._post
        return int(p.data.nbytes + p.indices.nbytes + p.indptr.nbytes)

    def __repr__(self) -> str:
        return (f"SparseIndex(docs={len(self)}, vocab={self.vocab_size}, nnz={self.nnz}, "
                f"avg_terms={self.nnz / max(len(self), 1):.1f}, top_k={self.top_k}, bytes={self.nbytes})")

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """``(doc ids, weights)`` of term ``term`` (doc ids increasing)."""
        if not 0 <= int(term) < self.vocab_size:
            raise ValueError(f"term id {term} is outside the vocabulary [0, {self.vocab_size})")
        lo, hi = self._post.indptr[term], self._post.indptr[term + 1]
        return self._post.indices[lo:hi].astype(np.int64), self._post.data[lo:hi]

    def documents(self) -> sp.csr_matrix:
        """The (N, V) document vectors as a CSR matrix (a transposed copy of the postings)."""
        return self._post.T.tocsr()

    # -- search --
    def _rescore(self, q_terms: np.ndarray, q_vals: np.ndarray, cand: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """float64 scores of candidate docs and the (m, c) contribution matrix q_t * d_t (0 where d_t = 0)."""
        p = self._post
        contrib = np.zeros((len(q_terms), len(cand)), dtype=np.float64)
        for i, (t, w) in enumerate(zip(q_terms, q_vals)):
            lo, hi = p.indptr[t], p.indptr[t + 1]
            if hi == lo:
                continue
            seg = p.indices[lo:hi]
            pos = np.minimum(np.searchsorted(seg, cand), hi - lo - 1)
            hit = seg[pos] == cand
            contrib[i] = np.where(hit, float(w) * p.data[lo + pos].astype(np.float64), 0.0)
        return contrib.sum(0), contrib

    def _top(self, q_terms: np.ndarray, q_vals: np.ndarray, cand: np.ndarray, approx: np.ndarray, k: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact top-k among candidates with float32 scores ``approx``: window on the float32 bound, float64
        rescoring, order (score desc, doc id asc)."""
        if len(cand) > k:
            kth = float(np.partition(approx, len(approx) - k)[len(approx) - k])
            gamma = (len(q_terms) + 2) * _U32
            keep = approx.astype(np.float64) >= kth * (1.0 - 2.0 * gamma)
            cand = cand[keep]
        scores, contrib = self._rescore(q_terms, q_vals, cand)
        order = np.lexsort((cand, -scores))[:k]
        return cand[order], scores[order], contrib[:, order]

    def search(self, queries: Any, k: int = 10, *, with_terms: bool = True, batch_size: int = 32,
               groups: Sequence[Sequence[int]] | None = None) -> SearchResult:
        """Top-``k`` documents of each query by dot product (exact; ties: smaller doc id first).

        Parameters
        ----------
        queries : tensor / array / scipy sparse
            (Q, V) non-negative query vectors (``p_t`` of captions, or keyword vectors).
        k : int
            Number of hits per query.
        with_terms : bool
            Also return the matched terms of each hit with their contributions ``q_t d_t``.
        batch_size : int
            Queries scored per sparse product (memory ~ batch_size x matched documents).
        groups : sequence of term-id groups, optional
            Coverage-first ranking (keyword search): documents are ordered first by how many groups they match
            (a group matches when the document has any of its terms), then by score, then by doc id.

        Returns
        -------
        SearchResult
            ``(ids, scores, terms, keys)``.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        q = to_csr(queries, self.vocab_size, what="query vectors")
        group_docs = None
        if groups is not None:
            group_docs = []
            for g in groups:
                ids = [int(t) for t in g]
                if not ids:
                    raise ValueError(f"every group needs at least one term id, got {list(groups)!r}")
                group_docs.append(np.unique(self._post[ids].indices))
        all_ids, all_scores, all_terms = [], [], []
        for start in range(0, q.shape[0], batch_size):
            qb = q[start : start + batch_size]
            s = (qb @ self._post).tocsr()  # (b, N) float32 scores of the matched documents
            for r in range(qb.shape[0]):
                q_terms = qb.indices[qb.indptr[r] : qb.indptr[r + 1]]
                q_vals = qb.data[qb.indptr[r] : qb.indptr[r + 1]]
                cand = s.indices[s.indptr[r] : s.indptr[r + 1]].astype(np.int64)
                approx = s.data[s.indptr[r] : s.indptr[r + 1]]
                if group_docs is None:
                    ids, sc, contrib = self._top(q_terms, q_vals, cand, approx, k)
                else:
                    ids, sc, contrib = self._top_by_coverage(q_terms, q_vals, cand, approx, k, group_docs)
                all_ids.append(ids)
                all_scores.append(sc)
                if with_terms:
                    hits = []
                    for j in range(len(ids)):
                        nz = np.nonzero(contrib[:, j])[0]
                        nz = nz[np.lexsort((q_terms[nz], -contrib[nz, j]))]
                        hits.append([(int(q_terms[i]), float(contrib[i, j])) for i in nz])
                    all_terms.append(hits)
        ids, scores = pad_results(all_ids, all_scores, k)
        keys = [[str(self.keys[i]) for i in row] for row in all_ids]
        return SearchResult(ids, scores, all_terms if with_terms else None, keys)

    def _top_by_coverage(self, q_terms, q_vals, cand, approx, k, group_docs):
        cover = np.zeros(len(cand), dtype=np.int64)
        for docs in group_docs:
            cover += np.isin(cand, docs, assume_unique=True)
        ids, scores, contribs = [], [], []
        for level in sorted(set(cover.tolist()), reverse=True):
            sel = cover == level
            i, s, c = self._top(q_terms, q_vals, cand[sel], approx[sel], k - sum(len(x) for x in ids))
            ids.append(i)
            scores.append(s)
            contribs.append(c)
            if sum(len(x) for x in ids) >= k:
                break
        if not ids:
            return cand[:0], np.zeros(0), np.zeros((len(q_terms), 0))
        return np.concatenate(ids), np.concatenate(scores), np.concatenate(contribs, axis=1)

    # -- persistence --
    def save(self, path: str | Path) -> Path:
        """Write the index to ``path`` (a ``.npz`` file, suffix added when missing); returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        p = self._post
        np.savez(path, format_version=np.int64(INDEX_FORMAT_VERSION), backend=np.str_(self.backend),
                 shape=np.asarray(p.shape, dtype=np.int64), indptr=p.indptr, indices=p.indices, data=p.data,
                 keys=self.keys, vocab=np.asarray(self.vocab if self.vocab is not None else [], dtype=str),
                 has_vocab=np.bool_(self.vocab is not None),
                 top_k=np.int64(-1 if self.top_k is None else self.top_k))
        return path

    @classmethod
    def load(cls, path: str | Path) -> SparseIndex:
        """Read an index written by :meth:`save` (``allow_pickle=False``)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no index file at {str(path)!r}")
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - truncated, random bytes, pickled objects: one message naming the file
            raise ValueError(f"{path}: not a readable index file ({type(e).__name__}: {str(e)[:160]})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: expected an index (.npz archive written by `motion-text index`), found a "
                             ".npy array")
        try:
            with z:
                return cls._from_npz(z, path)
        except KeyError as e:
            raise ValueError(f"{path}: not an index written by `motion-text index` (no {e.args[0]!r} array)") from None
        except Exception as e:  # noqa: BLE001 - damaged members (bad zip CRC, wrong shapes): name the file
            if isinstance(e, ValueError) and str(path) in str(e):
                raise
            raise ValueError(f"{path}: damaged index file ({type(e).__name__}: {str(e)[:160]})") from None

    @classmethod
    def _from_npz(cls, z, path: Path) -> SparseIndex:
        backend = str(z["backend"]) if "backend" in z else "?"
        if backend != cls.backend:
            raise ValueError(f"{str(path)!r} holds a {backend!r} index, not {cls.backend!r}")
        version = int(z["format_version"])
        if version != INDEX_FORMAT_VERSION:
            raise ValueError(f"{str(path)!r} has index format {version}, this code reads {INDEX_FORMAT_VERSION}")
        shape = tuple(int(s) for s in z["shape"])
        post = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
        vocab = [str(v) for v in z["vocab"]] if bool(z["has_vocab"]) else None
        top_k = int(z["top_k"])
        return cls(post, keys=z["keys"], vocab=vocab, top_k=None if top_k < 0 else top_k)


def load_index(path: str | Path) -> Any:
    """Load an index of either backend: a ``.npz`` file (exact) or a Seismic index folder."""
    path = Path(path)
    if path.is_dir():
        from motion_text.retrieval.seismic import SeismicSparseIndex

        return SeismicSparseIndex.load(path)
    if not path.exists() and path.with_name(path.name + ".npz").is_file():
        path = path.with_name(path.name + ".npz")
    return SparseIndex.load(path)
