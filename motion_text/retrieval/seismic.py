"""Approximate sparse retrieval with Seismic (optional extra ``pip install motion-text[seismic]``).

Seismic (Bruch, Nardini, Rulli, Venturini, "Efficient Inverted Indexes for Approximate Retrieval over Learned
Sparse Representations", SIGIR 2024; package ``pyseismic-lsr``) prunes each posting list to its largest weights,
clusters it into blocks with summary vectors, and skips blocks whose summary cannot beat the current top-k. It is the
engine for large collections; :class:`~motion_text.retrieval.sparse.SparseIndex` is the exact one.

:class:`SeismicSparseIndex` has the interface of :class:`~motion_text.retrieval.sparse.SparseIndex`
(``from_vectors``, ``from_batches``, ``search`` -> :class:`~motion_text.retrieval.sparse.SearchResult`, ``save`` /
``load``, ``nbytes``, ``keys``, ``vocab``). Differences: results are approximate (recall@k < 1 is possible), scores
are Seismic's own (document weights stored as float16), matched terms are computed from Seismic's forward index
(float16 weights), and coverage-first ``groups`` ranking is not available.

Defaults are the settings of Seismic's ``docs/Guidelines.md`` for MS MARCO / SPLADE ("near-exact accuracy"):
``n_postings=3000, centroid_fraction=0.2, min_cluster_size=2, summary_energy=0.5, max_fraction=6`` at build time and
``query_cut=10, heap_factor=0.8, sorted=False`` at search time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
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
    topk_sparsify_csr,
)

__all__ = ["SeismicSparseIndex", "seismic_available", "require_seismic", "BUILD_DEFAULTS", "SEARCH_DEFAULTS"]

log = logging.getLogger(__name__)

#: Build settings of Seismic's docs/Guidelines.md (MS MARCO, SPLADE CoCondenser).
BUILD_DEFAULTS = dict(n_postings=3000, centroid_fraction=0.2, min_cluster_size=2, summary_energy=0.5, max_fraction=6.0)
#: Search settings of the same guide.
SEARCH_DEFAULTS = dict(query_cut=10, heap_factor=0.8, sorted=False)

_INSTALL_HINT = "the Seismic backend needs the optional package pyseismic-lsr: pip install motion-text[seismic]"


def seismic_available() -> bool:
    """Whether ``pyseismic-lsr`` can be imported."""
    try:
        import seismic  # noqa: F401
    except ImportError:
        return False
    return True


def require_seismic():
    """Import and return the ``seismic`` module, or raise ``ImportError`` naming the extra to install."""
    try:
        import seismic
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return seismic


@contextlib.contextmanager
def _captured_stdout() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 1 (Seismic reports progress with Rust ``println!``)."""
    out: list[str] = []
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield out
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))
    for line in out[0].splitlines():
        if line.strip():
            log.debug("seismic: %s", line)


def _space_usage(index) -> int:
    with _captured_stdout() as out:
        index.print_space_usage_byte()
    m = re.search(r"Total:\s*([0-9]+)\s*Bytes", out[0])
    return int(m.group(1)) if m else -1


class SeismicSparseIndex:
    """Seismic index over non-negative sparse vectors, with doc key ids; same interface as ``SparseIndex``.

    Build with :meth:`from_vectors` / :meth:`from_batches`; ``build_params`` override :data:`BUILD_DEFAULTS`.
    """

    backend = "seismic"

    def __init__(self, index: Any, keys: Sequence[str], nonempty: np.ndarray, vocab_size: int,
                 vocab: Sequence[str] | None = None, top_k: int | None = None,
                 build_params: dict | None = None) -> None:
        self._index = index
        self.keys = np.asarray([str(k) for k in keys], dtype=str)
        self._nonempty = np.asarray(nonempty, dtype=np.int64)  # internal id -> doc id
        self._vocab_size = int(vocab_size)
        self.vocab = None if vocab is None else [str(v) for v in vocab]
        if self.vocab is not None and len(self.vocab) != self._vocab_size:
            raise ValueError(f"vocab has {len(self.vocab)} entries, the vectors have {self._vocab_size} terms")
        self.top_k = top_k
        self.build_params = dict(build_params or {})
        self._nbytes: int | None = None

    # -- construction --
    @classmethod
    def from_vectors(cls, vectors: Any, keys: Sequence[str] | None = None, *, top_k: int | str | None = None,
                     vocab: Sequence[str] | None = None, chunk: int = 100_000, num_threads: int = 0,
                     **build_params: Any) -> SeismicSparseIndex:
        """Index (N, V) document vectors (tensor, array, scipy sparse or a list of those)."""
        docs = to_csr(vectors, what="document vectors")
        kk = check_k(top_k)
        if kk is not None:
            docs = topk_sparsify_csr(docs, kk)
        return cls._build(docs, keys, kk, vocab, chunk, num_threads, build_params)

    @classmethod
    def from_batches(cls, batches: Iterable[tuple[Any, Sequence[str]]], *, top_k: int | str | None = None,
                     vocab: Sequence[str] | None = None, num_threads: int = 0,
                     **build_params: Any) -> SeismicSparseIndex:
        """Index an iterable of ``(vectors (B, V), keys (B,))`` batches."""
        kk = check_k(top_k)
        docs, keys = stack_batches(batches, kk)
        return cls._build(docs, keys, kk, vocab, 100_000, num_threads, build_params)

    @classmethod
    def _build(cls, docs: sp.csr_matrix, keys, top_k, vocab, chunk, num_threads, build_params
               ) -> SeismicSparseIndex:
        seismic = require_seismic()
        unknown = set(build_params) - set(BUILD_DEFAULTS) - {"doc_cut", "nknn", "batched_indexing"}
        if unknown:
            raise ValueError(f"unknown Seismic build parameters {sorted(unknown)}; known: "
                             f"{sorted(BUILD_DEFAULTS) + ['batched_indexing', 'doc_cut', 'nknn']}")
        params = {**BUILD_DEFAULTS, **build_params}
        n, v = docs.shape
        keys = [str(i) for i in range(n)] if keys is None else [str(k) for k in keys]
        if len(keys) != n:
            raise ValueError(f"got {len(keys)} keys for {n} documents")
        counts = np.diff(docs.indptr)
        nonempty = np.flatnonzero(counts > 0)
        if len(nonempty) == 0:
            raise ValueError("every document vector is empty (all zeros); nothing to index")
        dataset = seismic.SeismicDataset(dim=v)
        for start in range(0, n, chunk):
            block = docs[start : start + chunk]
            dataset.add_documents_by_id([str(i) for i in range(start, start + block.shape[0])],
                                        block.indices.astype(np.int64), block.data.astype(np.float32),
                                        block.indptr.astype(np.int64))
        with _captured_stdout():
            index = seismic.SeismicIndex.build_from_dataset(dataset, num_threads=num_threads, **params)
        del dataset
        return cls(index, keys, nonempty, v, vocab=vocab, top_k=top_k, build_params=params)

    # -- properties --
    def __len__(self) -> int:
        return len(self.keys)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def nnz(self) -> int:
        return int(self._index.nnz)

    @property
    def nbytes(self) -> int:
        """Seismic's own estimate of its memory (forward index, posting lists, summaries), in bytes."""
        if self._nbytes is None:
            self._nbytes = _space_usage(self._index)
        return self._nbytes

    def __repr__(self) -> str:
        return (f"SeismicSparseIndex(docs={len(self)}, vocab={self.vocab_size}, nnz={self.nnz}, "
                f"top_k={self.top_k}, params={self.build_params})")

    # -- search --
    def search(self, queries: Any, k: int = 10, *, with_terms: bool = True, query_cut: int | None = None,
               heap_factor: float | None = None, sorted: bool | None = None, num_threads: int = 1,
               groups: Sequence[Sequence[int]] | None = None, **_: Any) -> SearchResult:
        """Approximate top-``k`` by dot product; arguments default to :data:`SEARCH_DEFAULTS`.

        ``query_cut``: number of the query's largest terms whose posting lists are visited; ``heap_factor``: block
        skipping aggressiveness (higher = faster, less exact); ``sorted``: visit summaries best first.
        """
        if groups is not None:
            raise ValueError("coverage-first 'groups' ranking needs the exact backend (SparseIndex)")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        seismic = require_seismic()
        st = seismic.get_seismic_string()
        qc = SEARCH_DEFAULTS["query_cut"] if query_cut is None else int(query_cut)
        hf = SEARCH_DEFAULTS["heap_factor"] if heap_factor is None else float(heap_factor)
        srt = SEARCH_DEFAULTS["sorted"] if sorted is None else bool(sorted)
        q = to_csr(queries, self.vocab_size, what="query vectors")
        rows = [(q.indices[q.indptr[r] : q.indptr[r + 1]], q.data[q.indptr[r] : q.indptr[r + 1]])
                for r in range(q.shape[0])]
        live = [r for r, (t, _) in enumerate(rows) if len(t)]
        results: dict[int, list] = {r: [] for r in range(len(rows))}
        if live:
            out = self._index.batch_search(
                np.asarray([str(r) for r in live], dtype=st),
                [np.asarray([str(int(t)) for t in rows[r][0]], dtype=st) for r in live],
                [rows[r][1].astype(np.float32) for r in live],
                k=int(k), query_cut=qc, heap_factor=hf, sorted=srt, num_threads=num_threads)
            # batch_search does not keep the order of the queries: route each hit list by its query id
            for hits in out:
                if hits:
                    results[int(hits[0][0])] = hits
        all_ids, all_scores, all_terms = [], [], []
        for r in range(len(rows)):
            hits = results[r]
            ids = np.asarray([int(h[2]) for h in hits], dtype=np.int64)
            all_ids.append(ids)
            all_scores.append(np.asarray([float(h[1]) for h in hits], dtype=np.float64))
            if with_terms:
                all_terms.append([self._matched(rows[r][0], rows[r][1], int(d)) for d in ids])
        ids, scores = pad_results(all_ids, all_scores, k)
        keys = [[str(self.keys[i]) for i in row] for row in all_ids]
        return SearchResult(ids, scores, all_terms if with_terms else None, keys)

    def _matched(self, q_terms: np.ndarray, q_vals: np.ndarray, doc: int) -> list[tuple[int, float]]:
        internal = int(np.searchsorted(self._nonempty, doc))
        comps, vals = self._index.get(internal)
        weights = dict(zip((int(c) for c in comps), vals))
        pairs = [(int(t), float(w) * float(weights[int(t)])) for t, w in zip(q_terms, q_vals) if int(t) in weights]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))

    # -- persistence --
    def save(self, path: str | Path) -> Path:
        """Write the index into the folder ``path`` (``meta.npz`` + Seismic's ``index.index.seismic``)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "meta.npz", format_version=np.int64(INDEX_FORMAT_VERSION), backend=np.str_(self.backend),
                 keys=self.keys, nonempty=self._nonempty, vocab_size=np.int64(self._vocab_size),
                 vocab=np.asarray(self.vocab if self.vocab is not None else [], dtype=str),
                 has_vocab=np.bool_(self.vocab is not None),
                 top_k=np.int64(-1 if self.top_k is None else self.top_k),
                 build_params=np.str_(json.dumps(self.build_params)))
        with _captured_stdout():
            self._index.save(str(path / "index"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> SeismicSparseIndex:
        """Read an index folder written by :meth:`save`."""
        seismic = require_seismic()
        path = Path(path)
        meta, blob = path / "meta.npz", path / "index.index.seismic"
        if not meta.is_file() or not blob.is_file():
            raise ValueError(f"{str(path)!r} is not a Seismic index folder (needs meta.npz and index.index.seismic)")
        with np.load(meta, allow_pickle=False) as z:
            if str(z["backend"]) != cls.backend:
                raise ValueError(f"{str(path)!r} holds a {str(z['backend'])!r} index, not {cls.backend!r}")
            version = int(z["format_version"])
            if version != INDEX_FORMAT_VERSION:
                raise ValueError(f"{str(path)!r} has index format {version}, this code reads {INDEX_FORMAT_VERSION}")
            keys, nonempty, v = z["keys"], z["nonempty"], int(z["vocab_size"])
            vocab = [str(x) for x in z["vocab"]] if bool(z["has_vocab"]) else None
            top_k = int(z["top_k"])
            params = json.loads(str(z["build_params"]))
        with _captured_stdout():
            index = seismic.SeismicIndex.load(str(blob))
        return cls(index, keys, nonempty, v, vocab=vocab, top_k=None if top_k < 0 else top_k, build_params=params)
