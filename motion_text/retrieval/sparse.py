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
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["topk_sparsify", "topk_sparsify_csr", "to_csr", "vocabulary", "SearchResult", "SparseIndex",
           "load_index", "stack_batches", "INDEX_FORMAT_VERSION"]

log = logging.getLogger(__name__)

INDEX_FORMAT_VERSION = 1
_U32 = 2.0 ** -24  # unit round-off of float32


# ---- top-k sparsification --------------------------------------------------------------------------------------------
def _check_k(k: int | str | None) -> int | None:
    if k is None or (isinstance(k, str) and k.lower() == "all"):
        return None
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"top-k must be a positive integer, None or 'all', got {k!r}")
    return int(k)


def topk_sparsify(x: torch.Tensor, k: int | str | None) -> torch.Tensor:
    """Keep the ``k`` largest entries of each row of ``x`` and zero the others (top-k sparsifying).

    Applied at inference only (paper §4.3, "Ablation Studies on Sparsity"; Formal et al., 2021).

    Parameters
    ----------
    x : Tensor
        (..., V) lexical vectors.
    k : int, None or "all"
        Number of entries kept per row; ``None`` / ``"all"`` (or ``k >= V``) keeps everything (a copy).

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``. Exactly ``min(k, V)`` entries per row are kept: among equal values the
        smaller vocabulary id wins (stable descending sort), so a row with fewer than ``k`` non-zeros keeps all of
        them (plus zeros, which stay zero).
    """
    kk = _check_k(k)
    if x.dim() == 0:
        raise ValueError(f"x must have at least one dimension, got a scalar of shape {tuple(x.shape)}")
    if kk is None or kk >= x.shape[-1]:
        return x.clone()
    order = torch.sort(x, dim=-1, descending=True, stable=True).indices[..., :kk]  # (..., k)
    out = torch.zeros_like(x)
    return out.scatter(-1, order, x.gather(-1, order))


def topk_sparsify_csr(m: sp.csr_matrix, k: int | str | None) -> sp.csr_matrix:
    """:func:`topk_sparsify` for a scipy CSR matrix (rows = vectors); same tie rule (smaller column first)."""
    kk = _check_k(k)
    m = sp.csr_matrix(m)
    if kk is None:
        return m.copy()
    counts = np.diff(m.indptr)
    if counts.size == 0 or counts.max() <= kk:
        return m.copy()
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data.astype(np.float64), rows))  # by row, value desc, column asc
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    keep = rank < kk
    out = sp.csr_matrix((m.data[keep], m.indices[keep], np.concatenate([[0], np.cumsum(np.minimum(counts, kk))])),
                        shape=m.shape)
    out.sort_indices()
    return out


# ---- conversions -----------------------------------------------------------------------------------------------------
def to_csr(vectors: Any, vocab_size: int | None = None, what: str = "vectors") -> sp.csr_matrix:
    """Convert (B, V) vectors to a float32 CSR matrix with sorted column ids and no explicit zeros.

    Accepts a dense or sparse torch tensor, a numpy array, a scipy sparse matrix / array, or a list of these (stacked
    row-wise). Raises ``ValueError`` for a wrong rank, a vocabulary size other than ``vocab_size``, non-finite or
    negative weights.
    """
    if isinstance(vectors, list | tuple) and vectors and not isinstance(vectors[0], int | float):
        parts = [to_csr(v, vocab_size, what) for v in vectors]
        m = sp.vstack(parts, format="csr") if parts else None
        return sp.csr_matrix(m)
    if isinstance(vectors, torch.Tensor):
        t = vectors.detach().cpu()
        if t.dim() == 1:
            t = t[None]
        if t.dim() != 2:
            raise ValueError(f"{what} must be (B, V), got shape {tuple(t.shape)}")
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.float()
        rows, cols = torch.nonzero(t, as_tuple=True)
        m = sp.csr_matrix((t[rows, cols].numpy(), (rows.numpy(), cols.numpy())), shape=tuple(t.shape),
                          dtype=np.float32)
    elif sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float32)
    else:
        a = np.asarray(vectors, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2:
            raise ValueError(f"{what} must be (B, V), got shape {a.shape}")
        m = sp.csr_matrix(a)
    if m.ndim != 2:
        raise ValueError(f"{what} must be (B, V), got shape {m.shape}")
    if vocab_size is not None and m.shape[1] != vocab_size:
        raise ValueError(f"{what} have {m.shape[1]} columns, the index vocabulary has {vocab_size}")
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    if m.nnz:
        if not np.isfinite(m.data).all():
            raise ValueError(f"{what} contain non-finite weights (e.g. {m.data[~np.isfinite(m.data)][0]})")
        if m.data.min() < 0:
            raise ValueError(f"{what} must be non-negative (lexical vectors), found weight {float(m.data.min())}")
    return m


def vocabulary(tokenizer_or_vocab: Any, size: int | None = None) -> list[str]:
    """Id -> token strings of a Hugging Face tokenizer (``convert_ids_to_tokens``) or of a given sequence.

    ``size`` (the vector length) pads missing ids with ``"[id]"`` names and truncates longer vocabularies.
    """
    if tokenizer_or_vocab is None:
        raise ValueError("a tokenizer or a vocabulary list is needed, got None")
    if hasattr(tokenizer_or_vocab, "convert_ids_to_tokens"):
        n = len(tokenizer_or_vocab) if size is None else size
        n_tok = min(n, len(tokenizer_or_vocab))
        words = [str(w) for w in tokenizer_or_vocab.convert_ids_to_tokens(list(range(n_tok)))]
    else:
        words = [str(w) for w in tokenizer_or_vocab]
    if size is not None:
        words = words[:size] + [f"[{i}]" for i in range(len(words), size)]
    return words


# ---- search results --------------------------------------------------------------------------------------------------
def stack_batches(batches: Iterable[tuple[Any, Sequence[str]]], k: int | None) -> tuple[sp.csr_matrix, list[str]]:
    """(N, V) CSR documents and their N keys from ``(vectors (B, V), keys (B,))`` batches, each batch cut to its top
    ``k`` terms per row (``None``: no cut) and made sparse as it arrives, so the dense (N, V) matrix never exists."""
    parts, keys = [], []
    for vectors, batch_keys in batches:
        m = to_csr(vectors, what="document vectors")
        if len(batch_keys) != m.shape[0]:
            raise ValueError(f"a batch has {m.shape[0]} vectors but {len(batch_keys)} keys")
        parts.append(topk_sparsify_csr(m, k) if k is not None else m)
        keys.extend(str(key) for key in batch_keys)
    if not parts:
        raise ValueError("from_batches got no batch")
    return sp.vstack(parts, format="csr"), keys


class SearchResult(NamedTuple):
    """Top-k results of a batch of queries.

    ids : (Q, k) int64 document positions, ``-1`` where fewer than k documents match.
    scores : (Q, k) float64 dot products (``0`` for padding).
    terms : per query, per hit, the matched ``(term id, q_t * d_t)`` pairs sorted by decreasing contribution
        (``None`` when ``with_terms=False``).
    keys : per query, the key ids of the hits (only real hits, no padding).
    """

    ids: np.ndarray
    scores: np.ndarray
    terms: list[list[list[tuple[int, float]]]] | None
    keys: list[list[str]]

    def records(self, vocab: Sequence[str] | None = None) -> list[list[dict]]:
        """Per query, a list of ``{"rank", "key", "id", "score", "terms"}`` dicts; ``terms`` as ``[token, weight]``
        pairs when ``vocab`` is given, else ``[term id, weight]``."""
        out = []
        for q, keys in enumerate(self.keys):
            rows = []
            for r, key in enumerate(keys):
                rec = {"rank": r + 1, "key": key, "id": int(self.ids[q, r]), "score": float(self.scores[q, r])}
                if self.terms is not None:
                    rec["terms"] = [[vocab[t] if vocab is not None else t, w] for t, w in self.terms[q][r]]
                rows.append(rec)
            out.append(rows)
        return out


def _finish(ids: list[np.ndarray], scores: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    out_scores = np.zeros((len(ids), k), dtype=np.float64)
    for q, (i, s) in enumerate(zip(ids, scores)):
        out_ids[q, : len(i)] = i
        out_scores[q, : len(s)] = s
    return out_ids, out_scores


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
        kk = _check_k(top_k)
        if kk is not None:
            docs = topk_sparsify_csr(docs, kk)
        return cls(docs.T.tocsr(), keys=keys, vocab=vocab, top_k=kk)

    @classmethod
    def from_batches(cls, batches: Iterable[tuple[Any, Sequence[str]]], *, top_k: int | str | None = None,
                     vocab: Sequence[str] | None = None) -> SparseIndex:
        """Index an iterable of ``(vectors (B, V), keys (B,))`` batches; each batch is cut and made sparse as it
        arrives, so the dense (N, V) matrix never exists."""
        kk = _check_k(top_k)
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
        ids, scores = _finish(all_ids, all_scores, k)
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
