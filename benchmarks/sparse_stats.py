"""Synthetic lexical collections with the statistics of real lexical vectors (issue #25: sparse index at full size).

The lexical method (Lyu et al., lexical four-phase pretraining, Eq. 2) gives every motion a non-negative vector p_m and
every caption a vector p_t over the BERT WordPiece vocabulary. A trained checkpoint's vectors of one split are
summarised by :func:`lexical_stats` (:class:`LexicalStats`):

(a) ``df``: per-term document frequency, the share of vectors in which term t is non-zero (untruncated vectors);
(b) ``nnz``: the empirical distribution of non-zeros per vector (the list of row counts). After the index's top-k cut
    a vector keeps ``min(nnz, k)`` terms; the cut's own document frequencies and weight quantiles (``df_topk``,
    ``pooled_topk``) are recorded to compare a synthetic collection against, not to sample from;
(c) weights: per-term quantiles at ``levels`` (41 evenly spaced, 0 .. 1) of the non-zero weights of each term seen
    at least ``min_count`` times; a rarer term gets the typical within-term shape (the mean over the frequent terms of
    their quantile functions divided by their mean weight) times its own mean weight. The pooled quantiles of all
    weights are recorded for comparison.

:func:`sample_lexical` draws N vectors with these statistics: vector i gets a length n_i drawn from the empirical
``nnz`` distribution; its n_i terms are drawn by successive sampling without replacement (each draw picks one of the
remaining terms with probability proportional to a weight w_t); each term's weight is drawn independently from that
term's quantile function (linear interpolation between the stored quantiles). The weights w are calibrated by
:func:`fit_inclusion_weights` so that the marginal inclusion probability of term t equals ``df_t``, through Rosén's
approximation of successive (order) sampling: a vector of length n contains term t with probability
``1 - exp(-w_t tau_n)``, where ``tau_n`` solves ``sum_t (1 - exp(-w_t tau_n)) = n`` (B. Rosén, "On sampling with
probability proportional to size", J. Statist. Plann. Inference 62, 1997; the first n distinct terms of a stream
of independent draws from w/sum(w) are such a sample, which is how it is drawn).

What the synthetic collections ignore: term co-occurrence (terms of a vector are drawn independently of each other,
given its length), any dependence of a weight on the vector's length or its other terms, any relevance between
queries and documents, and terms never seen in the real sample (df 0: never drawn, so the synthetic vocabulary is the
one observed on the split).

The statistics are saved once as a small ``.npz`` (:meth:`LexicalStats.save_pair`, with a provenance record) and read
back by :func:`load_stats`, which also takes an ``.npz`` of raw CSR matrices ``p_m`` / ``p_t`` (:func:`save_vectors`).
:func:`vectors_from_checkpoint` encodes a split with a lexical checkpoint through the project's tools, as
``motion-text index`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["LexicalStats", "lexical_stats", "fit_inclusion_weights", "sample_lexical", "compare_stats", "load_stats",
           "save_vectors", "load_vectors", "vectors_from_checkpoint", "find_run_config", "STATS_FORMAT", "LEVELS"]

#: format tag of a statistics ``.npz``
STATS_FORMAT = "motion-text-lexical-stats-v1"
#: default quantile levels of the weight distributions
LEVELS = np.linspace(0.0, 1.0, 41)
#: a term needs this many non-zero weights on the split for its own quantile function
MIN_COUNT = 20
_SIDES = ("m", "t")


@dataclass
class LexicalStats:
    """Statistics of one side (motions or captions) of a lexical split; arrays cover the observed terms only.

    Attributes
    ----------
    vocab_size : int
        |V|.
    n_rows : int
        Number of vectors summarised.
    term_ids : (T,) int64
        Vocabulary ids of the terms seen at least once (increasing).
    df : (T,) float64
        Document frequency of each observed term (untruncated vectors).
    nnz : (n_rows,) int64
        Non-zeros of each vector (untruncated).
    levels : (Q,) float64
        Quantile levels, 0 .. 1, evenly spaced.
    term_quantiles : (T, Q) float64
        Weight quantile function of each observed term (the typical shape times the term's mean weight for terms seen
        < ``min_count`` times).
    own_quantiles : (T,) bool
        Whether the term has its own quantiles (seen >= ``min_count`` times).
    pooled : (Q,) float64
        Quantiles of all non-zero weights.
    top_k : int
        The index's cut the ``*_topk`` fields describe.
    df_topk : (T,) float64
        Document frequency after the top-k cut.
    pooled_topk : (Q,) float64
        Quantiles of all weights kept by the top-k cut.
    """

    vocab_size: int
    n_rows: int
    term_ids: np.ndarray
    df: np.ndarray
    nnz: np.ndarray
    levels: np.ndarray
    term_quantiles: np.ndarray
    own_quantiles: np.ndarray
    pooled: np.ndarray
    top_k: int
    df_topk: np.ndarray
    pooled_topk: np.ndarray

    def summary(self) -> dict:
        """A few readable figures: rows, observed terms, mean non-zeros (untruncated and after the cut), weights."""
        q = {f"q{a:g}": float(np.interp(a, self.levels, self.pooled)) for a in (0.1, 0.5, 0.9, 0.99)}
        return {"rows": self.n_rows, "vocab": self.vocab_size, "observed_terms": len(self.term_ids),
                "terms_with_own_quantiles": int(self.own_quantiles.sum()), "nnz_mean": float(self.nnz.mean()),
                "nnz_p50": float(np.median(self.nnz)), "nnz_max": int(self.nnz.max()),
                f"nnz_top{self.top_k}_mean": float(np.minimum(self.nnz, self.top_k).mean()),
                "df_max": float(self.df.max()), "weights": q}

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The fields as arrays named ``<prefix>_<field>`` (the per-term quantiles stored as float32)."""
        out = {f"{prefix}_{f.name}": np.asarray(getattr(self, f.name)) for f in fields(self)}
        out[f"{prefix}_term_quantiles"] = out[f"{prefix}_term_quantiles"].astype(np.float32)
        return out

    @classmethod
    def from_arrays(cls, z, prefix: str, source: str) -> LexicalStats:
        kw = {}
        for f in fields(cls):
            key = f"{prefix}_{f.name}"
            if key not in z:
                raise ValueError(f"{source}: statistics file without {key!r}")
            v = np.asarray(z[key])
            kw[f.name] = int(v) if f.name in ("vocab_size", "n_rows", "top_k") else (
                v.astype(np.float64) if v.dtype == np.float32 else v)
        return cls(**kw)

    @staticmethod
    def save_pair(path: str | Path, m: LexicalStats, t: LexicalStats, provenance: dict) -> Path:
        """Write the statistics of motions (``m``) and captions (``t``) and a provenance record into ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, format=np.array(STATS_FORMAT), provenance=np.array(json.dumps(provenance)),
                            **m.arrays("m"), **t.arrays("t"))
        return path


# ---- statistics ------------------------------------------------------------------------------------------------------
def _check_vectors(p, what: str) -> sp.csr_matrix:
    p = sp.csr_matrix(p, dtype=np.float32)
    p.eliminate_zeros()
    p.sort_indices()
    if p.shape[0] == 0 or p.nnz == 0:
        raise ValueError(f"{what}: no non-zero weights (shape {p.shape})")
    if not np.isfinite(p.data).all() or (p.data < 0).any():
        raise ValueError(f"{what}: lexical weights must be finite and non-negative")
    return p


def _segment_quantiles(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles (numpy's linear rule) of consecutive sorted segments ``values[starts[i] : starts[i] + counts[i]]``."""
    pos = levels[None, :] * (counts[:, None] - 1)  # (T, Q)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, counts[:, None] - 1)
    frac = pos - lo
    base = starts[:, None]
    return values[base + lo] * (1 - frac) + values[base + hi] * frac


def lexical_stats(p, *, top_k: int = 32, levels: np.ndarray = LEVELS, min_count: int = MIN_COUNT,
                  what: str = "vectors") -> LexicalStats:
    """Statistics (a)-(c) of the module docstring of (N, V) non-negative lexical vectors ``p`` (any scipy / numpy
    matrix; exact zeros are not terms)."""
    from motion_text.retrieval.sparse import topk_sparsify_csr

    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    levels = np.asarray(levels, dtype=np.float64)
    if levels.ndim != 1 or len(levels) < 2 or levels[0] != 0 or levels[-1] != 1 or (np.diff(levels) <= 0).any():
        raise ValueError("levels must increase from 0 to 1")
    p = _check_vectors(p, what)
    n, v = p.shape
    counts_all = np.bincount(p.indices, minlength=v)
    term_ids = np.nonzero(counts_all)[0]
    counts = counts_all[term_ids]
    # weights sorted by (term, weight): one segment per observed term
    order = np.lexsort((p.data, p.indices))
    values = p.data[order].astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    own = counts >= min_count
    pooled = np.quantile(values, levels)
    tq = np.empty((len(term_ids), len(levels)))
    tq[own] = _segment_quantiles(values, starts[own], counts[own], levels)
    means = np.add.reduceat(values, starts) / counts
    if own.any():  # within-term shape: the mean of the frequent terms' quantile functions, each over its mean
        shape = (tq[own] / means[own, None]).mean(0)
    else:
        shape = pooled / values.mean()
    tq[~own] = shape[None, :] * means[~own, None]
    cut = topk_sparsify_csr(p, top_k)
    df_topk = np.bincount(cut.indices, minlength=v)[term_ids] / n
    return LexicalStats(vocab_size=v, n_rows=n, term_ids=term_ids.astype(np.int64), df=counts / n,
                        nnz=np.diff(p.indptr).astype(np.int64), levels=levels, term_quantiles=tq, own_quantiles=own,
                        pooled=pooled, top_k=int(top_k), df_topk=df_topk,
                        pooled_topk=np.quantile(cut.data.astype(np.float64), levels))


# ---- calibration and sampling ------------------------------------------------------------------------------------------
def _tau(w: np.ndarray, lengths: np.ndarray, tau0: np.ndarray | None = None, iters: int = 100) -> np.ndarray:
    """``tau_n`` with ``sum_t (1 - exp(-w_t tau_n)) = n`` for each length (Newton; the left side is concave and
    increasing in tau, so the iterates increase monotonically to the root after the first step)."""
    target = np.minimum(lengths.astype(np.float64), len(w) - 1e-3)
    tau = np.zeros(len(lengths)) if tau0 is None else tau0.copy()
    for _ in range(iters):
        e = np.exp(-np.outer(tau, w))  # (L, T)
        f = (1 - e).sum(1) - target
        step = f / (e * w).sum(1)
        tau = np.maximum(tau - step, 0.0)
        if np.all(np.abs(f) <= 1e-9 * np.maximum(target, 1)):
            break
    return tau


def fit_inclusion_weights(df: np.ndarray, nnz: np.ndarray, *, iters: int = 500, tol: float = 1e-6
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights ``w`` of successive sampling such that a vector with length drawn from ``nnz`` contains term t with
    probability ``df_t`` (Rosén's approximation, module docstring).

    Returns ``(w, lengths, tau)``: the weights (sum 1), the distinct lengths and their ``tau_n``. ``df`` is clipped
    to ``[0, 1 - 0.5 / len(nnz)]`` (a term seen in every vector gets a large finite weight). Fixed point
    ``w <- w * df / predicted``.
    """
    df = np.asarray(df, dtype=np.float64)
    nnz = np.asarray(nnz)
    if len(df) == 0 or (df <= 0).any():
        raise ValueError("fit_inclusion_weights needs the observed terms' positive document frequencies")
    target = np.minimum(df, 1 - 0.5 / len(nnz))
    lengths, freq = np.unique(nnz, return_counts=True)
    prob = freq / freq.sum()
    w = -np.log1p(-target)
    w /= w.sum()
    tau = None
    for _ in range(iters):
        tau = _tau(w, lengths, tau)
        pred = prob @ (1 - np.exp(-np.outer(tau, w)))
        ratio = target / pred
        w = w * ratio
        w /= w.sum()
        if np.max(np.abs(ratio - 1)) < tol:
            break
    tau = _tau(w, lengths, None)
    return w, lengths, tau


def _first_distinct(draws: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the first ``n[i]`` distinct values of each row of ``draws`` (in order of first appearance) and the
    number of distinct values each row has."""
    b, m = draws.shape
    order = np.argsort(draws, axis=1, kind="stable")
    s = np.take_along_axis(draws, order, 1)
    first_sorted = np.ones((b, m), dtype=bool)
    first_sorted[:, 1:] = s[:, 1:] != s[:, :-1]
    first = np.zeros((b, m), dtype=bool)
    np.put_along_axis(first, order, first_sorted, 1)
    rank = np.cumsum(first, axis=1)
    return first & (rank <= n[:, None]), rank[:, -1]


def sample_lexical(stats: LexicalStats, n: int, seed: int | np.random.Generator = 0, *, chunk_draws: int = 4_000_000
                   ) -> sp.csr_matrix:
    """``n`` synthetic (n, |V|) float32 CSR vectors with the statistics ``stats`` (module docstring), seeded.

    Lengths come from the empirical ``nnz`` distribution (capped at the number of observed terms); terms from
    successive sampling with :func:`fit_inclusion_weights`'s weights (drawn as the first distinct terms of a stream
    of independent draws); weights from each term's quantile function. Rows are drawn by chunks of similar length, of
    about ``chunk_draws`` stream draws each (~25 bytes per draw beyond the result), written in place into the CSR
    arrays.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    w, lengths, tau = fit_inclusion_weights(stats.df, stats.nnz)
    cdf = np.cumsum(w)
    cdf[-1] = 1.0
    t_obs = len(w)
    q = stats.term_quantiles
    n_levels = q.shape[1]
    row_len = np.minimum(rng.choice(stats.nnz, size=n), t_obs).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(row_len)])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.float32)

    def draws_for(length: int) -> int:  # tau_n is the expected number of stream draws (w sums to 1)
        x = float(np.interp(length, lengths, tau)) if length < t_obs else float(tau.max())
        return int(np.ceil(1.3 * x + 4 * np.sqrt(x) + 8))

    order = np.argsort(row_len, kind="stable")  # rows of similar length share a chunk (and its stream width)
    chunk = max(1, chunk_draws // draws_for(int(row_len.max()))) if n else 1
    for start in range(0, n, chunk):
        rows = order[start : start + chunk]
        lens = row_len[rows]
        terms = np.empty(int(lens.sum()), dtype=np.int64)  # observed-term positions, rows in ``rows`` order
        offsets = np.concatenate([[0], np.cumsum(lens)])
        todo = np.arange(len(rows))
        m = draws_for(int(lens.max()))
        while len(todo):
            draws = np.searchsorted(cdf, rng.random((len(todo), m)), side="right")
            keep, distinct = _first_distinct(draws, lens[todo])
            done = distinct >= lens[todo]
            dest = todo[done]
            terms[_ranges(offsets[dest], lens[dest])] = draws[done][keep[done]]
            todo = todo[~done]
            m *= 2
        u = rng.random(len(terms)) * (n_levels - 1)
        lo = np.minimum(u.astype(np.int64), n_levels - 2)
        frac = u - lo
        vals = q[terms, lo] * (1 - frac) + q[terms, lo + 1] * frac
        pos = _ranges(indptr[rows], lens)
        indices[pos] = stats.term_ids[terms]
        data[pos] = np.maximum(vals, np.finfo(np.float32).tiny)
    out = sp.csr_matrix((data, indices, indptr), shape=(n, stats.vocab_size))
    out.sort_indices()
    return out


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each pair."""
    total = int(lengths.sum())
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(starts - first, lengths) + np.arange(total)


def compare_stats(real: LexicalStats, synth: LexicalStats) -> dict:
    """How far a synthetic collection's statistics are from the real ones: document frequencies (untruncated and
    after the top-k cut; max absolute difference, mean absolute difference over the real terms, correlation), mean
    non-zeros, and pooled weight quantiles at 0.1 / 0.5 / 0.9 / 0.99."""

    def on_real_terms(s: LexicalStats, values: np.ndarray) -> np.ndarray:
        full = np.zeros(s.vocab_size)
        full[s.term_ids] = values
        return full[real.term_ids]

    out = {}
    for name, a, b, nnz_real, nnz_syn, pr, ps in (
            ("untruncated", real.df, on_real_terms(synth, synth.df), real.nnz, synth.nnz, real.pooled, synth.pooled),
            (f"top{real.top_k}", real.df_topk, on_real_terms(synth, synth.df_topk), np.minimum(real.nnz, real.top_k),
             np.minimum(synth.nnz, synth.top_k), real.pooled_topk, synth.pooled_topk)):
        out[name] = {"df_max_abs_diff": float(np.abs(a - b).max()), "df_mean_abs_diff": float(np.abs(a - b).mean()),
                     "df_corr": float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan"),
                     "nnz_mean": [float(nnz_real.mean()), float(nnz_syn.mean())],
                     "weights": {f"q{x:g}": [float(np.interp(x, real.levels, pr)), float(np.interp(x, synth.levels, ps))]
                                 for x in (0.1, 0.5, 0.9, 0.99)}}
    out["new_terms"] = int(len(np.setdiff1d(synth.term_ids, real.term_ids)))
    return out


# ---- files -------------------------------------------------------------------------------------------------------------
def save_vectors(path: str | Path, p_m, p_t, provenance: dict | None = None) -> Path:
    """Write raw lexical vectors as an ``.npz`` of CSR parts ``p_m_data``, ``p_m_indices``, ``p_m_indptr``,
    ``p_m_shape`` (and ``p_t_*``), readable by :func:`load_stats`."""
    path = Path(path)
    arrays = {}
    for name, p in (("p_m", p_m), ("p_t", p_t)):
        p = sp.csr_matrix(p, dtype=np.float32)
        arrays.update({f"{name}_data": p.data, f"{name}_indices": p.indices, f"{name}_indptr": p.indptr,
                       f"{name}_shape": np.asarray(p.shape)})
    np.savez_compressed(path, provenance=np.array(json.dumps(provenance or {})), **arrays)
    return path


def load_vectors(path: str | Path) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
    """``(p_m, p_t)`` of an ``.npz`` written by :func:`save_vectors`, ``None`` for a statistics file."""
    with np.load(path, allow_pickle=False) as z:
        if "format" in z.files:
            return None
        return tuple(_csr(z, n, str(path)) for n in ("p_m", "p_t"))


def _csr(z, name: str, source: str) -> sp.csr_matrix:
    try:
        return sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]),
                             shape=tuple(int(x) for x in z[f"{name}_shape"]))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{source}: {name} is not a valid CSR matrix ({e})") from None


def load_stats(path: str | Path, *, top_k: int = 32) -> tuple[LexicalStats, LexicalStats, dict]:
    """``(motion stats, caption stats, provenance)`` from a statistics ``.npz`` (:meth:`LexicalStats.save_pair`) or
    from an ``.npz`` of raw CSR vectors (:func:`save_vectors`; statistics computed with ``top_k``)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    with z:
        keys = set(z.files)
        prov = json.loads(str(z["provenance"])) if "provenance" in keys else {}
        if "format" in keys:
            if str(z["format"]) != STATS_FORMAT:
                raise ValueError(f"{path}: statistics format {str(z['format'])!r}, expected {STATS_FORMAT!r}")
            m, t = (LexicalStats.from_arrays(z, s, str(path)) for s in _SIDES)
            return m, t, prov
        need = {f"{n}_{part}" for n in ("p_m", "p_t") for part in ("data", "indices", "indptr", "shape")}
        if not need <= keys:
            raise ValueError(f"{path}: expected a statistics file (key 'format') or CSR vectors with keys "
                             f"{sorted(need)}; missing {sorted(need - keys)}")
        mats = {n: _csr(z, n, str(path)) for n in ("p_m", "p_t")}
    if mats["p_m"].shape[1] != mats["p_t"].shape[1]:
        raise ValueError(f"{path}: p_m has {mats['p_m'].shape[1]} terms, p_t {mats['p_t'].shape[1]}")
    return (lexical_stats(mats["p_m"], top_k=top_k, what=f"{path}: p_m"),
            lexical_stats(mats["p_t"], top_k=top_k, what=f"{path}: p_t"), prov)


# ---- from a checkpoint ---------------------------------------------------------------------------------------------------
def find_run_config(ckpt: str | Path) -> Path:
    """The training config saved with a checkpoint's run: ``config.yaml`` beside the checkpoint or one level up,
    else the newest ``lightning_logs/version_*/config.yaml`` there; ``ValueError`` when there is none."""
    ckpt = Path(ckpt)
    found: list[Path] = []
    for d in (ckpt.parent, ckpt.parent.parent):
        if (d / "config.yaml").is_file():
            return d / "config.yaml"
        found += list(d.glob("lightning_logs/version_*/config.yaml"))
    if not found:
        raise ValueError(f"{ckpt}: no config.yaml of its run beside it or in lightning_logs/ (give --data)")
    return max(found, key=lambda p: p.stat().st_mtime)


def vectors_from_checkpoint(ckpt: str | Path, data: str | Path | None = None, split: str = "test",
                            batch_size: int = 64, device: str = "cpu", quiet: bool = True
                            ) -> tuple[sp.csr_matrix, sp.csr_matrix, dict]:
    """``(p_m, p_t, provenance)`` of a split: the motions encoded as ``motion-text index`` does
    (:func:`motion_text.tools.sparse.encode_split`), and every caption of the split (``p_t``) through the text
    branch. ``data``: a data config; default the run's own training config (:func:`find_run_config`)."""
    import datetime

    import torch

    from motion_text.retrieval.sparse import to_csr
    from motion_text.tools.common import split_dataset
    from motion_text.tools.sparse import encode_split, lexical_datamodule, load_lexical, split_captions

    data = find_run_config(ckpt) if data is None else data
    method = load_lexical(ckpt, device)
    dm = lexical_datamodule(method, data, 0)
    dataset = split_dataset(dm, split)
    p_m, keys = encode_split(method, dataset, batch_size, 0, quiet)
    captions = [c for caps in split_captions(dataset).values() for c in caps]
    with torch.no_grad():
        p_t = sp.vstack([to_csr(method.encode_text(captions[i : i + batch_size]).float().cpu(), what="caption vectors")
                         for i in range(0, len(captions), batch_size)], format="csr")
    step = int(torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True).get("global_step", -1))
    prov = {"checkpoint": str(Path(ckpt).resolve()), "global_step": step, "method": type(method).__name__,
            "phase": getattr(method, "phase", None), "data": str(data), "split": split, "motions": len(keys),
            "captions": len(captions), "vocab": int(p_m.shape[1]),
            "made": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return p_m, p_t, prov
