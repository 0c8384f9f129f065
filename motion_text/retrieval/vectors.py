"""Lexical vectors shared by the sparse retrieval backends: top-k sparsification, conversion to CSR, vocabularies,
the search result type and the index file format version.

Both the exact backend (:mod:`motion_text.retrieval.sparse`) and the Seismic backend
(:mod:`motion_text.retrieval.seismic`) build on these; neither imports the other at module level.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["INDEX_FORMAT_VERSION", "check_k", "topk_sparsify", "topk_sparsify_csr", "to_csr", "vocabulary",
           "stack_batches", "SearchResult", "pad_results"]

INDEX_FORMAT_VERSION = 1


# ---- top-k sparsification --------------------------------------------------------------------------------------------
def check_k(k: int | str | None) -> int | None:
    """A top-k argument as an int, or ``None`` for no cut (``None`` / ``"all"``); ValueError otherwise."""
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
    kk = check_k(k)
    if x.dim() == 0:
        raise ValueError(f"x must have at least one dimension, got a scalar of shape {tuple(x.shape)}")
    if kk is None or kk >= x.shape[-1]:
        return x.clone()
    order = torch.sort(x, dim=-1, descending=True, stable=True).indices[..., :kk]  # (..., k)
    out = torch.zeros_like(x)
    return out.scatter(-1, order, x.gather(-1, order))


def topk_sparsify_csr(m: sp.csr_matrix, k: int | str | None, *, chunk_elements: int = 1 << 20) -> sp.csr_matrix:
    """:func:`topk_sparsify` for a scipy CSR matrix (rows = vectors); same tie rule (smaller column first).

    Only rows with more than ``k`` stored entries are cut; the others are copied as they are. Stored entries count as
    entries, explicit zeros included. The long rows are processed in blocks of similar lengths: each block's weights
    are laid out in a (rows, longest row) array, in ascending column order, and sorted stably by decreasing weight, so
    that equal weights keep the smaller column first; the first ``k`` positions of each row are kept. A NaN weight
    ranks last (below every number). The dtype is preserved and float64 weights are compared in float64.

    Parameters
    ----------
    m : scipy sparse matrix
        (N, V) vectors (converted to CSR; not modified).
    k : int, None or "all"
        Entries kept per row (:func:`check_k`); ``None`` / ``"all"`` keeps everything (a copy).
    chunk_elements : int
        Upper bound on the size of one block's padded array (rows x longest row; ~30 bytes per element in all).

    Returns
    -------
    scipy.sparse.csr_matrix
        At most ``k`` entries per row; the cut rows have sorted column ids.
    """
    kk = check_k(k)
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int | np.integer) or chunk_elements < 1:
        raise ValueError(f"chunk_elements must be a positive integer, got {chunk_elements!r}")
    m = sp.csr_matrix(m)
    if kk is None:
        return m.copy()
    counts = np.diff(m.indptr)
    if counts.size == 0 or counts.max() <= kk:
        return m.copy()
    if not m.has_sorted_indices:  # a row's positions must follow its columns (a copy: the caller's matrix stays)
        m = m.copy()
        m.sort_indices()
    data = m.data
    # float32 / float64 weights compared as they are, other dtypes as float64
    key_dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.float64
    long_rows = np.flatnonzero(counts > kk)
    long_rows = long_rows[np.argsort(counts[long_rows], kind="stable")]  # blocks of similar lengths: little padding
    keep = np.repeat(counts <= kk, counts)  # entries of the short rows; the long rows' kept ones are added below
    s = 0
    while s < len(long_rows):
        e = min(len(long_rows), s + max(1, chunk_elements // (kk + 1)))
        if (e - s) * int(counts[long_rows[e - 1]]) > chunk_elements:  # long rows: fewer of them per block
            e = s + max(1, chunk_elements // int(counts[long_rows[e - 1]]))
        rows = long_rows[s:e]
        width = int(counts[rows[-1]])
        starts, lengths = m.indptr[rows], counts[rows]
        pos = np.arange(width)
        valid = pos[None, :] < lengths[:, None]
        # negated weights, ascending; NaN padding sorts after every weight (a NaN weight too: stable sort)
        neg = np.full((len(rows), width), np.nan, dtype=key_dtype)
        neg[valid] = -data[(starts[:, None] + pos[None, :])[valid]].astype(key_dtype)
        first = np.argsort(neg, axis=1, kind="stable")[:, :kk]
        keep[(starts[:, None] + first).ravel()] = True
        s = e
    out = sp.csr_matrix((data[keep], m.indices[keep], np.concatenate([[0], np.cumsum(np.minimum(counts, kk))])),
                        shape=m.shape)
    out.has_sorted_indices = True
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


def pad_results(ids: list[np.ndarray], scores: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) id and score arrays from per-query hits, padded with id ``-1`` and score ``0``."""
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    out_scores = np.zeros((len(ids), k), dtype=np.float64)
    for q, (i, s) in enumerate(zip(ids, scores)):
        out_ids[q, : len(i)] = i
        out_scores[q, : len(s)] = s
    return out_ids, out_scores
