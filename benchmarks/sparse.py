"""Sparse (lexical) retrieval against the dense paradigm on a synthetic collection.

``run(quick)`` builds N random sparse documents (|V| = 30522, ~64 non-zeros each, Zipf term frequencies: the term
of popularity rank r is drawn with probability proportional to 1 / r) and 1,000 queries of 16 distinct terms drawn
from the same law, then measures

* the exact backend (:class:`motion_text.retrieval.sparse.SparseIndex`) and Seismic (if ``pyseismic-lsr`` is
  installed): build time, index memory, top-10 latency per query (one query per call) and batched cost per query;
* the dense paradigm: exact search over N 256-d float32 embeddings (matrix product + top-k in torch);
* ratios sparse / dense for latency and memory, Seismic recall@10 against the exact backend;
* exactness: the exact backend's top-10 against a dense float64 dot product of the same sparse vectors on the first
  10,000 documents (identical id lists; ties broken by the smaller doc id on both sides).

Seismic settings (:data:`SEISMIC_BUILD`, :data:`SEISMIC_SEARCH`). Its guide's MS MARCO settings
(``n_postings`` 3000, ``centroid_fraction`` 0.2, ``summary_energy`` 0.5, ``query_cut`` 10, ``heap_factor`` 0.8) took
412 s to build on 2 cores for 1,000,000 of these documents, a 1.95 GB index (twice the dense embeddings) and 31 ms per
query (2.4x faster than dense), recall@10 0.999: these random documents have no cluster structure for the block
summaries to exploit, so long posting lists are scanned nearly whole. Shorter posting lists (500 per term) with
sparser summaries build in ~1 minute; the recall printed next to the latency is the price. The test suite checks the
guide's settings on small collections (tests/retrieval).

N = 1,000,000 (``quick``: 100,000). Memory stays within a few GB (postings 8 bytes per non-zero, embeddings 1 KiB
per document). Run alone with ``python -m benchmarks.sparse [--quick]``.

``--stats-from CKPT_OR_NPZ`` replaces the Zipf collection by documents and queries sampled from the statistics of a
trained lexical model's vectors (:mod:`benchmarks.sparse_stats`: per-term document frequency, non-zeros per vector,
per-term weight quantiles; term co-occurrence ignored): a checkpoint (its run's test split encoded as ``motion-text
index`` does), or an ``.npz`` of saved statistics or of raw ``p_m`` / ``p_t`` CSR vectors. It measures the exact
backend on a gallery row (``--gallery``, HumanML3D's 29,232 motions with mirrors) and a large row (``--docs``,
1,000,000): build time (top-k cut + inverted index), index bytes, top-10 latency and batched cost per query,
recall@10 of the top-``--top-k`` (32) index against the exact top-10 of the untruncated vectors, the exact backend
against a dense float64 dot product, and each row's peak RSS (:func:`run_from_stats`). No dense or Seismic rows.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks.common import peak_rss_mb, reset_peak_rss
from motion_text.retrieval.sparse import SparseIndex, topk_sparsify_csr

VOCAB = 30522
DOC_NNZ = 64
QUERY_NNZ = 16
DENSE_DIM = 256
EXACT_CHECK_DOCS = 10_000
#: Seismic build and search settings of this benchmark (see the module docstring)
SEISMIC_BUILD = dict(n_postings=500, centroid_fraction=0.1, summary_energy=0.4)
SEISMIC_SEARCH = dict(query_cut=8, heap_factor=0.7)


def zipf_probabilities(vocab_size: int = VOCAB, s: float = 1.0) -> np.ndarray:
    """p(rank r) proportional to r^-s, r = 1 .. vocab_size."""
    p = 1.0 / np.arange(1, vocab_size + 1, dtype=np.float64) ** s
    return p / p.sum()


def draws_for_unique(p: np.ndarray, target: float) -> int:
    """Number of draws with replacement whose expected number of distinct terms is closest to ``target``."""
    expected = [float((1 - (1 - p) ** m).sum()) for m in range(1, 8 * int(target) + 1)]
    return int(np.argmin(np.abs(np.asarray(expected) - target))) + 1


def random_sparse(n: int, p: np.ndarray, nnz: float, rng: np.random.Generator, term_of_rank: np.ndarray,
                  chunk: int = 50_000) -> sp.csr_matrix:
    """(n, V) float32 CSR: per row, Zipf draws with replacement, duplicates merged (~``nnz`` distinct terms),
    log-normal weights (median 1)."""
    m = draws_for_unique(p, nnz)
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    parts = []
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        ranks = np.searchsorted(cdf, rng.random((b, m)), side="right").astype(np.int32)
        terms = np.sort(term_of_rank[ranks], axis=1)
        keep = np.ones_like(terms, dtype=bool)
        keep[:, 1:] = terms[:, 1:] != terms[:, :-1]
        counts = keep.sum(1)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        indices = terms[keep].astype(np.int32)
        data = rng.lognormal(0.0, 0.5, size=len(indices)).astype(np.float32)
        parts.append(sp.csr_matrix((data, indices, indptr), shape=(b, len(p))))
    return sp.vstack(parts, format="csr")


def random_queries(n: int, p: np.ndarray, nnz: int, rng: np.random.Generator, term_of_rank: np.ndarray
                   ) -> sp.csr_matrix:
    """(n, V) float32 CSR with exactly ``nnz`` distinct Zipf-drawn terms per row."""
    rows = [np.sort(term_of_rank[rng.choice(len(p), size=nnz, replace=False, p=p)]) for _ in range(n)]
    indices = np.concatenate(rows).astype(np.int32)
    data = rng.lognormal(0.0, 0.5, size=len(indices)).astype(np.float32)
    return sp.csr_matrix((data, indices, np.arange(0, n * nnz + 1, nnz)), shape=(n, len(p)))


def _latency(fn, n: int) -> dict:
    times = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - t
    return {"mean_ms": 1e3 * float(times.mean()), "p50_ms": 1e3 * float(np.median(times)),
            "p95_ms": 1e3 * float(np.percentile(times, 95)), "queries": n}


def _batched(fn, n: int, batch: int) -> float:
    t = time.perf_counter()
    for start in range(0, n, batch):
        fn(start, min(start + batch, n))
    return 1e3 * (time.perf_counter() - t) / n


def dense_topk_reference(queries: sp.csr_matrix, docs: sp.csr_matrix, k: int = 10, chunk: int = 1000) -> np.ndarray:
    """Top-k doc ids by a dense float64 dot product of the sparse vectors; ties: smaller doc id first."""
    q = queries.toarray().astype(np.float64)  # (Q, V)
    scores = np.empty((q.shape[0], docs.shape[0]), dtype=np.float64)
    for start in range(0, docs.shape[0], chunk):
        scores[:, start : start + chunk] = q @ docs[start : start + chunk].toarray().astype(np.float64).T
    ids = np.arange(docs.shape[0])
    return np.stack([np.lexsort((ids, -row))[:k] for row in scores])


def run(quick: bool = False, *, n_docs: int | None = None, n_queries: int = 1000, seed: int = 0,
        with_seismic: bool = True, dense_latency_queries: int = 200, verbose: bool = True) -> dict:
    """Run the benchmark and return its figures (``verbose``: print a table).

    Returns a dict with ``config``, ``exact``, ``seismic`` (or ``None``), ``dense``, ``ratios`` and ``exactness``.
    """
    n = n_docs or (100_000 if quick else 1_000_000)
    rng = np.random.default_rng(seed)
    p = zipf_probabilities()
    term_of_rank = rng.permutation(VOCAB).astype(np.int32)  # popular terms spread over the vocabulary
    out: dict = {"config": {"docs": n, "vocab": VOCAB, "doc_nnz_target": DOC_NNZ, "queries": n_queries,
                            "query_nnz": QUERY_NNZ, "zipf_s": 1.0, "dense_dim": DENSE_DIM, "k": 10,
                            "torch_threads": torch.get_num_threads()}}

    t = time.perf_counter()
    docs = random_sparse(n, p, DOC_NNZ, rng, term_of_rank)
    queries = random_queries(n_queries, p, QUERY_NNZ, rng, term_of_rank)
    out["config"]["doc_nnz_mean"] = docs.nnz / n
    out["config"]["generate_s"] = time.perf_counter() - t

    # ---- exact backend ----
    t = time.perf_counter()
    exact = SparseIndex.from_vectors(docs)
    build_s = time.perf_counter() - t
    postings_len = np.diff(exact._post.indptr)
    out["config"]["longest_posting_list"] = int(postings_len.max())
    out["config"]["postings_per_query_mean"] = float(np.mean(
        [postings_len[queries.indices[queries.indptr[i] : queries.indptr[i + 1]]].sum() for i in range(n_queries)]))
    lat = _latency(lambda i: exact.search(queries[i], 10, with_terms=False), n_queries)
    batched = _batched(lambda a, b: exact.search(queries[a:b], 10, with_terms=False, batch_size=32), n_queries, 32)
    exact_res = exact.search(queries, 10, with_terms=False)
    out["exact"] = {"build_s": build_s, "bytes": exact.nbytes, "latency": lat, "batched_ms_per_query": batched}

    # ---- Seismic ----
    out["seismic"] = None
    if with_seismic:
        from motion_text.retrieval.seismic import SeismicSparseIndex, seismic_available

        if seismic_available():
            t = time.perf_counter()
            seis = SeismicSparseIndex.from_vectors(docs, num_threads=0, **SEISMIC_BUILD)
            build_s = time.perf_counter() - t
            lat = _latency(lambda i: seis.search(queries[i], 10, with_terms=False, **SEISMIC_SEARCH), n_queries)
            threads = torch.get_num_threads()
            batched = _batched(lambda a, b: seis.search(queries[a:b], 10, with_terms=False, num_threads=threads,
                                                        **SEISMIC_SEARCH), n_queries, n_queries)
            res = seis.search(queries, 10, with_terms=False, **SEISMIC_SEARCH)
            recall = float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max((b >= 0).sum(), 1)
                                    for a, b in zip(res.ids, exact_res.ids)]))
            out["seismic"] = {"build_s": build_s, "bytes": seis.nbytes, "latency": lat,
                              "batched_ms_per_query": batched, "recall@10": recall,
                              "params": {**seis.build_params, **SEISMIC_SEARCH, "sorted": False}}
            del seis
            gc.collect()

    # ---- exactness on the first 10,000 documents ----
    m = min(EXACT_CHECK_DOCS, n)
    sub = docs[:m]
    small = SparseIndex.from_vectors(sub)
    got = small.search(queries, 10, with_terms=False).ids
    ref = dense_topk_reference(queries, sub, 10)
    same = (got == ref).all(axis=1)
    out["exactness"] = {"docs": m, "queries": n_queries, "identical_top10_rate": float(same.mean())}
    del docs, sub, small
    gc.collect()

    # ---- dense paradigm ----
    gen = torch.Generator().manual_seed(seed)
    emb = torch.empty(n, DENSE_DIM, dtype=torch.float32)
    for start in range(0, n, 100_000):
        block = torch.randn(min(100_000, n - start), DENSE_DIM, generator=gen)
        emb[start : start + len(block)] = torch.nn.functional.normalize(block, dim=-1)
    q_dense = torch.nn.functional.normalize(torch.randn(n_queries, DENSE_DIM, generator=gen), dim=-1)
    nd = min(dense_latency_queries, n_queries)
    with torch.inference_mode():
        torch.topk(emb @ q_dense[0], 10)  # warm-up
        lat = _latency(lambda i: torch.topk(emb @ q_dense[i], 10), nd)
        batched = _batched(lambda a, b: torch.topk(q_dense[a:b] @ emb.T, 10, dim=1), n_queries, 64)
    out["dense"] = {"bytes": emb.numel() * emb.element_size(), "latency": lat, "batched_ms_per_query": batched}
    emb = None  # free the embeddings (a del would unbind the name the lambdas above close over)
    gc.collect()

    dense = out["dense"]
    ratios = {"exact/dense latency": out["exact"]["latency"]["mean_ms"] / dense["latency"]["mean_ms"],
              "exact/dense batched": out["exact"]["batched_ms_per_query"] / dense["batched_ms_per_query"],
              "exact/dense memory": out["exact"]["bytes"] / dense["bytes"]}
    if out["seismic"]:
        s = out["seismic"]
        ratios.update({"seismic/dense latency": s["latency"]["mean_ms"] / dense["latency"]["mean_ms"],
                       "seismic/dense batched": s["batched_ms_per_query"] / dense["batched_ms_per_query"],
                       "seismic/dense memory": s["bytes"] / dense["bytes"]})
    out["ratios"] = ratios
    out["peak_rss_gb"] = peak_rss_mb() / 1024
    if verbose:
        print(format_report(out))
    return out


def format_report(r: dict) -> str:
    """A plain-text table of :func:`run`'s figures."""
    c = r["config"]
    lines = [f"sparse retrieval benchmark: {c['docs']:,} docs (|V|={c['vocab']}, {c['doc_nnz_mean']:.1f} nnz/doc, "
             f"Zipf s={c['zipf_s']}), {c['queries']} queries x {c['query_nnz']} terms, top-{c['k']}, "
             f"torch threads {c['torch_threads']}",
             f"  postings scanned per query (exact): {c['postings_per_query_mean']:,.0f}; longest posting list "
             f"{c['longest_posting_list']:,}",
             f"  {'backend':<14}{'memory MB':>11}{'latency ms (mean/p50/p95)':>30}{'batched ms/q':>14}{'build s':>9}"]
    rows = [("exact sparse", r["exact"]), ("seismic", r["seismic"]), ("dense 256-d", r["dense"])]
    for name, x in rows:
        if x is None:
            lines.append(f"  {name:<14}{'(pyseismic-lsr not installed)':>30}")
            continue
        lat = x["latency"]
        build = f"{x['build_s']:9.1f}" if "build_s" in x else f"{'-':>9}"
        lines.append(f"  {name:<14}{x['bytes'] / 2**20:11.1f}"
                     f"{lat['mean_ms']:12.2f} /{lat['p50_ms']:7.2f} /{lat['p95_ms']:7.2f}"
                     f"{x['batched_ms_per_query']:14.3f}{build}")
    if r["seismic"]:
        lines.append(f"  seismic recall@10 vs exact: {r['seismic']['recall@10']:.4f}  params {r['seismic']['params']}")
    e = r["exactness"]
    lines.append(f"  exact backend vs dense float64 dot product on {e['docs']:,} docs: identical top-10 for "
                 f"{100 * e['identical_top10_rate']:.1f}% of {e['queries']} queries")
    lines.append("  ratios (sparse / dense): " + ", ".join(f"{k} {v:.3f}" for k, v in r["ratios"].items()))
    lines.append(f"  peak RSS {r['peak_rss_gb']:.2f} GB")
    return "\n".join(lines)


# ---- collections with the statistics of a trained model (--stats-from) ----------------------------------------------
#: HumanML3D's full gallery with mirrors (the gallery row of ``--stats-from``)
GALLERY = 29_232


def _recall(got: np.ndarray, ref: np.ndarray) -> float:
    """Mean share of the reference's (valid, >= 0) top ids found in ``got``."""
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max((b >= 0).sum(), 1) for a, b in zip(got, ref)]))


def truncation_recall(docs, queries, top_k: int = 32, k: int = 10) -> float:
    """Recall@k of an index of the top-``top_k`` cut of ``docs`` against the exact top-k of the untruncated vectors
    (both ranked by the exact backend; queries untruncated), e.g. on a split's real ``p_m`` / ``p_t``."""
    got = SparseIndex.from_vectors(topk_sparsify_csr(sp.csr_matrix(docs), top_k)).search(queries, k, with_terms=False).ids
    return _recall(got, SparseIndex.from_vectors(docs).search(queries, k, with_terms=False).ids)


def stats_row(stats_m, queries: sp.csr_matrix, n: int, seed: int, *, top_k: int = 32, latency_queries: int = 1000,
              exact_check_docs: int = GALLERY, fidelity: bool = False) -> dict:
    """One row of the ``--stats-from`` table: ``n`` documents sampled from ``stats_m``
    (:func:`benchmarks.sparse_stats.sample_lexical`), indexed after the top-``top_k`` cut.

    Figures: generation and build time (cut + inverted index), index bytes, non-zeros per document (before and after
    the cut), top-10 latency (one query per call, the first ``latency_queries``) and batched cost per query (batches
    of 32), recall@10 of the cut index against the exact top-10 of the untruncated documents (exact backend on the
    untruncated vectors), the exact backend against a dense float64 dot product on the first ``exact_check_docs``
    documents (cut), and the peak RSS of the row (``VmHWM`` reset at its start where Linux allows).
    """
    from benchmarks.sparse_stats import compare_stats, lexical_stats, sample_lexical

    reset = reset_peak_rss()
    gc.collect()
    t = time.perf_counter()
    docs = sample_lexical(stats_m, n, seed)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    cut = topk_sparsify_csr(docs, top_k)
    index = SparseIndex.from_vectors(cut, top_k=top_k)
    build_s = time.perf_counter() - t
    row = {"docs": n, "generate_s": gen_s, "build_s": build_s, "bytes": index.nbytes,
           "nnz_per_doc": index.nnz / n, "nnz_per_doc_untruncated": docs.nnz / n}
    nl = min(latency_queries, queries.shape[0])
    index.search(queries[0], 10, with_terms=False)  # warm-up
    row["latency"] = _latency(lambda i: index.search(queries[i], 10, with_terms=False), nl)
    row["batched_ms_per_query"] = _batched(
        lambda a, b: index.search(queries[a:b], 10, with_terms=False, batch_size=32), queries.shape[0], 32)
    got = index.search(queries, 10, with_terms=False).ids
    postings = np.diff(index._post.indptr)
    row["postings_per_query_mean"] = float(np.mean(
        [postings[queries.indices[queries.indptr[i] : queries.indptr[i + 1]]].sum() for i in range(queries.shape[0])]))
    index = None  # free the index (a del would unbind the name the lambdas above close over)
    gc.collect()
    t = time.perf_counter()
    full = SparseIndex.from_vectors(docs)
    ref = full.search(queries, 10, with_terms=False).ids
    row["exact_untruncated_s"] = time.perf_counter() - t
    row["untruncated_bytes"] = full.nbytes
    del full
    gc.collect()
    row[f"recall@10_top{top_k}_vs_untruncated"] = _recall(got, ref)
    m = min(exact_check_docs, n)
    small = SparseIndex.from_vectors(cut[:m]).search(queries, 10, with_terms=False).ids
    dense = dense_topk_reference(queries, cut[:m], 10)
    row["exactness"] = {"docs": m, "queries": queries.shape[0],
                        "identical_top10_rate": float((small == dense).all(axis=1).mean())}
    if fidelity:
        row["fidelity"] = compare_stats(stats_m, lexical_stats(docs, top_k=top_k, levels=stats_m.levels))
    del docs, cut
    gc.collect()
    row["peak_rss_gb"] = peak_rss_mb() / 1024
    row["peak_rss_scope"] = "row" if reset else "process so far"
    return row


def run_from_stats(stats_m, stats_t, sizes=(GALLERY, 1_000_000), *, n_queries: int = 1000,
                   latency_queries: int = 1000, top_k: int = 32, seed: int = 0, provenance: dict | None = None,
                   verbose: bool = True) -> dict:
    """The ``--stats-from`` benchmark: one :func:`stats_row` per collection size, the same ``n_queries`` queries
    (sampled from the caption statistics ``stats_t``, untruncated as ``motion-text search`` uses them by default).
    The first row also compares its documents' statistics with the real ones (``fidelity``)."""
    from benchmarks.sparse_stats import compare_stats, lexical_stats, sample_lexical

    seeds = np.random.SeedSequence(seed).spawn(len(sizes) + 1)
    queries = sample_lexical(stats_t, n_queries, np.random.default_rng(seeds[0]))
    out = {"config": {"source": provenance or {}, "queries": n_queries, "top_k": top_k, "k": 10, "seed": seed,
                      "latency_queries": min(latency_queries, n_queries), "torch_threads": torch.get_num_threads(),
                      "query_nnz_mean": queries.nnz / max(n_queries, 1)},
           "stats": {"motions": stats_m.summary(), "captions": stats_t.summary()},
           "query_fidelity": compare_stats(stats_t, lexical_stats(queries, top_k=top_k, levels=stats_t.levels)),
           "rows": []}
    for i, n in enumerate(sizes):
        out["rows"].append(stats_row(stats_m, queries, n, np.random.default_rng(seeds[i + 1]), top_k=top_k,
                                     latency_queries=latency_queries, fidelity=i == 0))
        if verbose:
            print(format_stats_row(out["rows"][-1], top_k), flush=True)
    return out


def format_stats_row(r: dict, top_k: int = 32) -> str:
    lat = r["latency"]
    return (f"{r['docs']:>10,} docs: build {r['build_s']:.1f} s, index {r['bytes'] / 2**20:.1f} MB, "
            f"{r['nnz_per_doc']:.1f} nnz/doc ({r['nnz_per_doc_untruncated']:.1f} untruncated), top-10 "
            f"{lat['mean_ms']:.2f} ms/query (p50 {lat['p50_ms']:.2f}, p95 {lat['p95_ms']:.2f}), batched "
            f"{r['batched_ms_per_query']:.2f} ms/query, recall@10 top-{top_k} vs untruncated "
            f"{r[f'recall@10_top{top_k}_vs_untruncated']:.4f}, exact = dense float64 on "
            f"{r['exactness']['docs']:,} docs for {100 * r['exactness']['identical_top10_rate']:.1f}% of queries, "
            f"peak RSS {r['peak_rss_gb']:.2f} GB ({r['peak_rss_scope']})")


def stats_from(source: str, *, data: str | None = None, split: str = "test", top_k: int = 32,
               save: str | None = None):
    """``(motion stats, caption stats, provenance, (p_m, p_t) or None)`` from a lexical checkpoint (its ``split``
    encoded; ``data``: the run's config by default) or an ``.npz`` (statistics, or raw CSR vectors: returned too);
    ``save``: write the statistics."""
    from pathlib import Path

    from benchmarks.sparse_stats import (
        LexicalStats,
        lexical_stats,
        load_stats,
        load_vectors,
        vectors_from_checkpoint,
    )

    path = Path(source)
    if not path.is_file():
        raise ValueError(f"--stats-from {source}: no such file")
    vectors = None
    if path.suffix == ".npz":
        m, t, prov = load_stats(path, top_k=top_k)
        prov = {**prov, "stats_file": str(path)}
        vectors = load_vectors(path)
    else:
        p_m, p_t, prov = vectors_from_checkpoint(path, data, split)
        m, t = lexical_stats(p_m, top_k=top_k), lexical_stats(p_t, top_k=top_k)
        vectors = p_m, p_t
    if save:
        LexicalStats.save_pair(save, m, t, prov)
    return m, t, prov, vectors


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 documents instead of 1,000,000")
    ap.add_argument("--no-seismic", action="store_true")
    g = ap.add_argument_group("collections with the statistics of a trained model")
    g.add_argument("--stats-from", metavar="CKPT_OR_NPZ",
                   help="a lexical checkpoint (its --split encoded) or an .npz of statistics / p_m, p_t CSR vectors")
    g.add_argument("--docs", type=int, default=1_000_000, help="documents of the large row (0: none)")
    g.add_argument("--gallery", type=int, default=GALLERY, help="documents of the gallery row (0: none)")
    g.add_argument("--queries", type=int, default=1000)
    g.add_argument("--latency-queries", type=int, default=1000, help="queries timed one per call")
    g.add_argument("--top-k", type=int, default=32, help="terms kept per document in the index")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--data", help="data config of the checkpoint (default: the run's config.yaml)")
    g.add_argument("--split", default="test")
    g.add_argument("--save-stats", metavar="NPZ", help="write the statistics (with provenance) to this .npz")
    g.add_argument("--out", metavar="JSON", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.stats_from is None:
        run(args.quick, with_seismic=not args.no_seismic)
        return
    import json

    sizes = [n for n in (args.gallery, args.docs) if n > 0]
    if not sizes or args.queries < 1 or args.top_k < 1:
        raise SystemExit("error: need a positive --gallery or --docs, --queries and --top-k")
    try:
        m, t, prov, vectors = stats_from(args.stats_from, data=args.data, split=args.split, top_k=args.top_k,
                                         save=args.save_stats)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"statistics of {prov.get('checkpoint', args.stats_from)} ({prov.get('split', '?')} split): motions "
          f"{m.summary()}, captions {t.summary()}", flush=True)
    out = run_from_stats(m, t, sizes, n_queries=args.queries, latency_queries=args.latency_queries, top_k=args.top_k,
                         seed=args.seed, provenance=prov)
    if vectors is not None:  # the same recall on the real vectors (documents: p_m, queries: every caption's p_t)
        out["real_reference"] = {"docs": vectors[0].shape[0], "queries": vectors[1].shape[0],
                                 f"recall@10_top{args.top_k}_vs_untruncated": truncation_recall(*vectors, args.top_k)}
        print(f"real vectors: {out['real_reference']}")
    out["peak_rss_gb"] = peak_rss_mb() / 1024
    if args.out:
        from benchmarks.common import machine

        out["machine"] = machine()
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
