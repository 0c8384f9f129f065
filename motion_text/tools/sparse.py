"""``motion-text index`` / ``search`` / ``sparsity``: sparse lexical retrieval with a trained lexical checkpoint.

* ``index`` encodes the motions of a split into lexical vectors p_m (paper Eq. 2), cuts each to its ``--top-k``
  largest terms (top-k sparsifying, §4.3) and stores an inverted index (term -> postings ``(doc id, weight)`` plus
  the key ids): the exact backend (:class:`~motion_text.retrieval.sparse.SparseIndex`, a ``.npz`` file) or Seismic
  (a folder). ``--export`` also writes the ``{term: weight}`` documents for OpenSearch / Elasticsearch.
* ``search`` ranks the indexed motions for captions (``--query``, encoded by the checkpoint's text branch into p_t)
  or for keywords (``--keywords``, weight 1 on each keyword's vocabulary ids, no text encoder; appendix A.3;
  ``--inflect`` adds the keywords' regular inflections), and prints key ids, scores and the matched terms.
  ``--pair-rate`` measures keyword search instead: for every pair of actions, the share of the top results whose
  saved captions mention both (:func:`keyword_rate`), pooled over the pairs and set against chance.
* ``sparsity`` is the paper's Fig. 4: for each cut k the retrieval R@1 / R@10 (text-to-motion and motion-to-text,
  one caption per motion as in the evaluation loop) and the index size in bytes; CSV, PNG and TensorBoard.

Model loading, data configs, progress bars and tables come from :mod:`motion_text.tools.retrieve`.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from motion_text.retrieval.sparse import (
    load_index,
    to_csr,
    topk_sparsify,
    topk_sparsify_csr,
    vocabulary,
)
from motion_text.retrieval.vectors import check_k as _check_k
from motion_text.tools.common import load_datamodule, load_method, progress_bar, split_dataset

__all__ = ["load_lexical", "encode_lexical_motions", "encode_split", "split_captions", "captions_path", "run_index",
           "run_search", "sparsity_curve", "run_sparsity", "SPARSITY_KS", "keyword_rate", "keyword_summary",
           "ACTION_WORDS", "mentions_action"]

log = logging.getLogger(__name__)

#: The cuts of the sparsity curve (paper Fig. 4); ``None`` = no cut.
SPARSITY_KS: tuple[int | None, ...] = (8, 16, 32, 64, 128, 256, None)


# ---- loading and encoding --------------------------------------------------------------------------------------------
def load_lexical(ckpt: str | Path, device: str = "cpu"):
    """A lexical checkpoint (raw dot-product scores over vocabulary-sized vectors) in eval mode, or ``ValueError``."""
    method = load_method(ckpt, device)
    if getattr(method, "retrieval_normalize", True) or getattr(method, "vocab_tokenizer", None) is None:
        raise ValueError(f"{ckpt}: {type(method).__name__} does not produce lexical vectors; sparse indexing needs a "
                         "lexical checkpoint (motion_text.methods.lexical.LexicalPretraining, or TMR with a "
                         "lexical_head)")
    return method


def lexical_datamodule(method, data, num_workers: int | None = None):
    """The DataModule of a data config, with the joint view switched on when the method reads joints."""
    return load_datamodule(data, num_workers=num_workers,
                           joints=True if hasattr(method, "encode_batch_motion") else None)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def encode_lexical_motions(method, dataset, batch_size: int = 64, num_workers: int = 0, advance=None
                           ) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Yield ``(p_m (B, V) float32 on CPU, keys)`` for the motions of an evaluation dataset, in dataset order."""
    from torch.utils.data import DataLoader

    from motion_text.data.dataset import collate_motion_text

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_motion_text)
    for batch in loader:
        batch = _to(batch, method.device)
        if hasattr(method, "encode_batch_motion"):
            p = method.encode_batch_motion(batch)
        else:
            p = method.encode_motion(batch["motion"], batch["mask"])
        if advance:
            advance(len(batch["key"]))
        yield p.float().cpu(), list(batch["key"])


def encode_split(method, dataset, batch_size: int = 64, num_workers: int = 0, quiet: bool = False
                 ) -> tuple[sp.csr_matrix, list[str]]:
    """All motions of a split as an (N, V) CSR matrix (exact zeros dropped) and their key ids."""
    parts, keys = [], []
    with progress_bar("encoding motions", len(dataset), quiet) as adv:
        for p, k in encode_lexical_motions(method, dataset, batch_size, num_workers, adv):
            parts.append(to_csr(p, what="motion vectors"))
            keys.extend(k)
    return sp.vstack(parts, format="csr"), keys


def split_captions(dataset) -> dict[str, list[str]]:
    """Key id -> captions of every item of an evaluation dataset (what ``index`` saves beside the index)."""
    return {dataset.item(i).key: list(dataset.item(i).captions) for i in range(len(dataset))}


def captions_path(index_path: str | Path) -> Path:
    """The side file ``<index>.captions.json`` (key id -> captions) written by ``index``."""
    p = Path(index_path)
    return p.with_name(p.name.removesuffix(".npz") + ".captions.json")


# ---- index -----------------------------------------------------------------------------------------------------------
def run_index(ns) -> int:
    """Entry point of ``motion-text index``."""
    try:
        return _run_index(ns)
    except (ValueError, OSError, ImportError) as e:
        raise SystemExit(f"error: {e}") from None


def _run_index(ns) -> int:
    from motion_text.tools import check_counts

    check_counts(ns)
    top_k = _check_k(ns.top_k)
    method = load_lexical(ns.ckpt, ns.device)
    dm = lexical_datamodule(method, ns.data, ns.num_workers)
    dataset = split_dataset(dm, ns.split)
    workers = dm.num_workers if ns.num_workers is None else ns.num_workers
    docs, keys = encode_split(method, dataset, ns.batch_size, workers, ns.quiet)
    if top_k is not None:
        docs = topk_sparsify_csr(docs, top_k)
    vocab = vocabulary(method.vocab_tokenizer, docs.shape[1])
    out = Path(ns.out)
    if ns.seismic and ns.backend != "seismic":
        raise ValueError("--seismic parameters need --backend seismic")
    if ns.backend == "seismic":
        from motion_text.retrieval.seismic import SeismicSparseIndex

        index = SeismicSparseIndex.from_vectors(docs, keys, top_k=top_k, vocab=vocab, **dict(ns.seismic))
    else:
        from motion_text.retrieval.sparse import SparseIndex

        index = SparseIndex.from_vectors(docs, keys, top_k=top_k, vocab=vocab)
    written = index.save(out)
    captions_path(written).write_text(json.dumps(split_captions(dataset)))
    if ns.export:
        from motion_text.retrieval.query import export_documents

        export_documents(docs, keys, ns.export, vocab)
    summary = {"index": str(written), "backend": index.backend, "docs": len(keys), "vocab": docs.shape[1],
               "top_k": top_k, "nnz": int(docs.nnz), "terms_per_doc": docs.nnz / max(len(keys), 1),
               "bytes": int(index.nbytes), "export": ns.export}
    if ns.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif not ns.quiet:
        print(f"indexed {summary['docs']} motions ({summary['terms_per_doc']:.1f} terms each, top-k "
              f"{top_k or 'all'}) into {written} [{index.backend}, {summary['bytes']:,} bytes]"
              + (f"; documents exported to {ns.export}" if ns.export else ""))
    return 0


# ---- search ----------------------------------------------------------------------------------------------------------
def run_search(ns) -> int:
    """Entry point of ``motion-text search``."""
    try:
        return _run_search(ns)
    except (ValueError, OSError, ImportError) as e:
        raise SystemExit(f"error: {e}") from None


def _run_search(ns) -> int:
    from motion_text.tools import check_counts

    if ns.k < 1:
        raise ValueError(f"-k must be >= 1, got {ns.k}")
    check_counts(ns)
    for q in ns.query or []:
        if not q.strip():
            raise ValueError(f"--query {q!r}: empty caption (give the words to search for)")
    index = load_index(ns.index)
    vocab = index.vocab
    if (ns.keywords or ns.pair_rate is not None) and vocab is None:
        raise ValueError(f"{ns.index}: the index has no vocabulary; keyword search needs one")
    caps_file = captions_path(ns.index if str(ns.index).endswith(".npz") or Path(ns.index).is_dir()
                              else str(ns.index) + ".npz")
    captions = {}
    if caps_file.is_file():
        try:
            captions = json.loads(caps_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{caps_file}: not a readable captions file ({type(e).__name__}: {e})") from None
        if not isinstance(captions, dict) or not all(isinstance(v, list) for v in captions.values()):
            raise ValueError(f"{caps_file}: expected a JSON object {{key id: [captions]}}")
    if ns.pair_rate is not None:
        return _pair_rate(ns, index, captions, caps_file)
    groups = None
    if ns.keywords:
        from motion_text.retrieval.query import keyword_query

        kq = keyword_query(ns.keywords, vocab, inflect=ns.inflect)
        if kq.unknown:
            log.warning("not in the vocabulary, ignored: %s", ", ".join(kq.unknown))
        queries, labels = kq.vector, [" ".join(kq.keywords)]
        if not ns.no_coverage and len(kq.groups) > 1:
            if index.backend == "exact":
                groups = kq.groups
            else:
                log.warning("coverage-first ranking needs the exact backend; ranking by score only")
    else:
        if not ns.ckpt:
            raise ValueError("--query needs --ckpt (the text branch encodes the captions); --keywords does not")
        method = load_lexical(ns.ckpt, ns.device)
        queries = method.encode_text(list(ns.query)).float().cpu()
        if queries.shape[1] != index.vocab_size:
            raise ValueError(f"the checkpoint's vectors have {queries.shape[1]} terms, the index {index.vocab_size}")
        queries = topk_sparsify(queries, ns.query_top_k)
        labels = list(ns.query)
    res = index.search(queries, ns.k, groups=groups, **_search_params(ns, index))
    results = []
    for label, recs in zip(labels, res.records(vocab)):
        for r in recs:
            r["caption"] = (captions.get(r["key"]) or [""])[0]
        results.append({"query": label, "hits": recs})
    if ns.json:
        sys.stdout.write(json.dumps({"index": str(ns.index), "results": results}, indent=2) + "\n")
    else:
        _print_hits(results, ns.terms)
    return 0


def _search_params(ns, index) -> dict:
    """``--seismic NAME=VALUE`` search parameters, checked against the backend and Seismic's names."""
    params = dict(ns.seismic)
    if not params:
        return {}
    if index.backend != "seismic":
        raise ValueError(f"--seismic parameters need a Seismic index; {ns.index} is {index.backend}")
    from motion_text.retrieval.seismic import SEARCH_DEFAULTS

    unknown = set(params) - set(SEARCH_DEFAULTS) - {"num_threads"}
    if unknown:
        raise ValueError(f"unknown Seismic search parameters {sorted(unknown)}; known: "
                         f"{sorted(SEARCH_DEFAULTS) + ['num_threads']}")
    return params


def _pair_rate(ns, index, captions: dict[str, list[str]], caps_file: Path) -> int:
    """``search --pair-rate``: :func:`keyword_rate` over all pairs of the given actions, a table and the pooled rate."""
    import itertools

    if not captions:
        raise ValueError(f"{caps_file}: no captions saved with the index (written by `motion-text index`); "
                         "--pair-rate needs them to know which motions are relevant")
    actions = list(ns.pair_rate) or list(ACTION_WORDS)
    coverage = not ns.no_coverage
    if coverage and index.backend != "exact":
        log.warning("coverage-first ranking needs the exact backend; ranking by score only")
    rows = keyword_rate(index, captions, list(itertools.combinations(actions, 2)), ns.k, coverage, ns.inflect,
                        _search_params(ns, index))
    summary = keyword_summary(rows)
    if ns.json:
        sys.stdout.write(json.dumps({"index": str(ns.index), "k": ns.k, "inflect": ns.inflect, "coverage": coverage,
                                     "summary": summary, "pairs": rows}, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keyword pairs, top-{ns.k} (n = min(k, relevant))", title_justify="left")
    for col in ("keywords", "relevant", "n", "hits", "rate", "chance"):
        table.add_column(col, justify="left" if col == "keywords" else "right")
    for r in rows:
        if r["n"]:
            table.add_row(r["keywords"], str(r["relevant"]), str(r["n"]), str(r["hits"]), f"{r['rate']:.2f}",
                          f"{r['chance']:.3f}")
    Console().print(table)
    if summary["slots"]:
        print(f"{summary['hits']} of {summary['slots']} top results relevant ({100 * summary['rate']:.1f} %) over "
              f"{summary['pairs']} keyword pairs; chance {100 * summary['chance']:.1f} %; "
              f"{summary['pairs_without_relevant']} pairs have no motion with both actions among {len(captions)}")
    else:
        print(f"no motion among {len(captions)} has captions mentioning both actions of any pair of {actions}")
    return 0


def _print_hits(results: list[dict], n_terms: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for res in results:
        table = Table(title=f"search: {res['query']}", title_justify="left")
        for col, just in (("rank", "right"), ("key id", "left"), ("score", "right"), ("matched terms", "left"),
                          ("caption", "left")):
            table.add_column(col, justify=just)
        for h in res["hits"]:
            terms = ", ".join(f"{t}:{w:.2f}" for t, w in h.get("terms", [])[:n_terms])
            table.add_row(str(h["rank"]), h["key"], f"{h['score']:.4f}", terms, h["caption"])
        if not res["hits"]:
            table.add_row("-", "(no motion shares a term with the query)", "", "", "")
        console.print(table)


# ---- sparsity curve (paper Fig. 4) -------------------------------------------------------------------------------------
def _recalls(scores: np.ndarray, ks=(1, 10)) -> dict[str, float]:
    """R@k of a square (queries x gallery) score matrix with ground truth on the diagonal; ties are counted
    pessimistically (an item scoring equal to the ground truth ranks before it), so an all-zero row is a miss."""
    gt = np.diag(scores)[:, None]
    rank = (scores > gt).sum(1) + (scores == gt).sum(1) - 1
    return {f"R@{k}": 100.0 * float((rank < k).mean()) for k in ks}


def sparsity_curve(p_m: torch.Tensor, p_t: torch.Tensor, ks=SPARSITY_KS) -> list[dict]:
    """Retrieval and index size for each top-k cut of motion (documents) and text (queries) vectors.

    Parameters
    ----------
    p_m, p_t : Tensor
        (N, V) lexical vectors of N motions and of one caption each (pair i = ground truth).
    ks : sequence of int or None
        Cuts; ``None`` keeps every non-zero term.

    Returns
    -------
    list of dict
        Per k: ``k``, text-to-motion and motion-to-text ``R@1`` / ``R@10`` (percent), ``index_bytes`` (the exact
        backend's postings: doc ids, weights, term offsets), mean terms per motion / caption.
    """
    from motion_text.retrieval.sparse import SparseIndex

    rows = []
    for k in ks:
        m = topk_sparsify(p_m.float(), k).double()
        t = topk_sparsify(p_t.float(), k).double()
        s = (t @ m.T).numpy()
        t2m, m2t = _recalls(s), _recalls(s.T)
        index = SparseIndex.from_vectors(m.float())
        rows.append({"k": "all" if k is None else int(k), "t2m_R@1": t2m["R@1"], "t2m_R@10": t2m["R@10"],
                     "m2t_R@1": m2t["R@1"], "m2t_R@10": m2t["R@10"], "index_bytes": index.nbytes,
                     "terms_per_motion": index.nnz / max(len(index), 1),
                     "terms_per_caption": float((t > 0).sum(1).double().mean())})
    return rows


def write_sparsity(rows: list[dict], out: str | Path, title: str = "") -> dict[str, Path]:
    """Write ``sparsity.csv`` and ``sparsity.png`` (R@1 / R@10 and index size against k) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "sparsity.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fig = sparsity_figure(rows, title)
    fig.savefig(out / "sparsity.png", dpi=120)
    plt.close(fig)
    return {"csv": out / "sparsity.csv", "png": out / "sparsity.png"}


def sparsity_figure(rows: list[dict], title: str = ""):
    """Matplotlib figure of the sparsity curve: recalls (left axis) and index size in MB (right axis)."""
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, style in (("t2m_R@1", "o-"), ("t2m_R@10", "s-"), ("m2t_R@1", "o--"), ("m2t_R@10", "s--")):
        ax.plot(x, [r[key] for r in rows], style, label=key)
    ax.set_xticks(x, [str(r["k"]) for r in rows])
    ax.set_xlabel("top-k terms kept per vector")
    ax.set_ylabel("recall (%)")
    ax2 = ax.twinx()
    ax2.bar(x, [r["index_bytes"] / 2**20 for r in rows], alpha=0.2, color="gray", label="index size")
    ax2.set_ylabel("index size (MB)")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "sparsity vs retrieval (paper Fig. 4)")
    fig.tight_layout()
    return fig


def run_sparsity(ns) -> int:
    """Entry point of ``motion-text sparsity``."""
    try:
        return _run_sparsity(ns)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None


def _run_sparsity(ns) -> int:
    from motion_text.tools import check_counts

    check_counts(ns)
    from motion_text.tools.sparse_args import top_k_arg

    ks = [top_k_arg(str(k)) for k in ns.ks]
    method = load_lexical(ns.ckpt, ns.device)
    dm = lexical_datamodule(method, ns.data, ns.num_workers)
    dataset = split_dataset(dm, ns.split)
    workers = dm.num_workers if ns.num_workers is None else ns.num_workers
    docs, keys = encode_split(method, dataset, ns.batch_size, workers, ns.quiet)
    texts = [dataset.item(i).captions[0] for i in range(len(dataset))]  # the evaluation loop's caption
    with torch.no_grad():
        p_t = torch.cat([method.encode_text(texts[i : i + ns.batch_size]).float().cpu()
                         for i in range(0, len(texts), ns.batch_size)])
    p_m = torch.from_numpy(docs.toarray())
    rows = sparsity_curve(p_m, p_t, ks)
    files = write_sparsity(rows, ns.out, f"sparsity, {ns.split} split ({len(keys)} motions)")
    _log_tensorboard(rows, Path(ns.out) / "tb")
    if ns.json:
        sys.stdout.write(json.dumps({"rows": rows, **{k: str(v) for k, v in files.items()}}, indent=2) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"sparsity curve ({len(keys)} motions, {ns.split})", title_justify="left")
        for col in rows[0]:
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(*(f"{v:.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                            for v in r.values()))
        Console().print(table)
        print(f"wrote {files['csv']}, {files['png']} and TensorBoard events in {Path(ns.out) / 'tb'}")
    return 0


def _log_tensorboard(rows: list[dict], log_dir: Path) -> None:
    """Scalars per k (step = position in the curve, the k in the tag's text) and the figure."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as w:
        for step, r in enumerate(rows):
            for key in ("t2m_R@1", "t2m_R@10", "m2t_R@1", "m2t_R@10", "index_bytes"):
                w.add_scalar(f"sparsity/{key}", r[key], step)
        w.add_text("sparsity/table", "\n".join(["| " + " | ".join(rows[0]) + " |",
                                                 "|" + "---|" * len(rows[0])]
                                                + ["| " + " | ".join(str(v) for v in r.values()) + " |"
                                                   for r in rows]))
        w.add_figure("sparsity/curve", sparsity_figure(rows))


# ---- keyword search quality ------------------------------------------------------------------------------------------
#: Caption words of the synthetic generator (motion_text.data.synthetic_text) for the actions used in keyword checks.
ACTION_WORDS: dict[str, tuple[str, ...]] = {
    "run": ("runs", "jogs", "sprints"), "jump": ("jumps", "hops", "leaps"), "walk": ("walks", "strolls"),
    "kick": ("kicks",), "wave": ("waves",), "punch": ("punches", "punch"), "squat": ("squats", "squat"),
    "turn": ("turns", "rotates"), "crawl": ("crawls",), "sit": ("sits",), "raise": ("raises", "lifts"),
}


def mentions_action(captions: list[str], action: str) -> bool:
    """Whether one of ``captions`` holds one of the action's caption words (:data:`ACTION_WORDS`) as a whole word."""
    import re

    words = ACTION_WORDS.get(action, (action,))
    return any(re.search(r"\b" + re.escape(w) + r"\b", c.lower()) for c in captions for w in words)


def keyword_rate(index, captions: dict[str, list[str]], pairs, k: int = 10, coverage: bool = True,
                 inflect: bool = False, search_params: dict | None = None) -> list[dict]:
    """How often keyword search puts motions related to *all* keywords first.

    For each keyword pair (a, b), the relevant motions are those whose captions mention both actions
    (:data:`ACTION_WORDS`); with ``n = min(k, #relevant)``, ``hits`` counts the relevant motions among the top-``n``
    results of the query ``--keywords a b`` and ``rate = hits / n`` (1.0: every motion of both actions that fits is
    ranked first). ``chance = #relevant / N`` is the rate of a random ranking of the ``N`` indexed motions. Pairs
    without a relevant motion are reported with ``rate = None``. ``inflect``: keyword queries with inflections
    (:func:`~motion_text.retrieval.query.keyword_query`); ``search_params`` go to ``index.search`` (Seismic's).
    """
    from motion_text.retrieval.query import keyword_query

    rows = []
    for a, b in pairs:
        relevant = {key for key, caps in captions.items() if mentions_action(caps, a) and mentions_action(caps, b)}
        n = min(k, len(relevant))
        row = {"keywords": f"{a} {b}", "relevant": len(relevant), "n": n, "hits": 0, "rate": None,
               "chance": len(relevant) / max(len(captions), 1)}
        if n:
            kq = keyword_query([a, b], index.vocab, inflect=inflect)
            res = index.search(kq.vector, n, with_terms=False,
                               groups=kq.groups if coverage and index.backend == "exact" else None,
                               **(search_params or {}))
            row["hits"] = sum(key in relevant for key in res.keys[0])
            row["rate"] = row["hits"] / n
        rows.append(row)
    return rows


def keyword_summary(rows: list[dict]) -> dict:
    """Pool :func:`keyword_rate` rows over the pairs that have relevant motions: ``rate`` = relevant results / result
    slots (each pair weighted by its ``n``), ``chance`` = the same for random rankings."""
    used = [r for r in rows if r["n"]]
    slots = sum(r["n"] for r in used)
    hits = sum(r["hits"] for r in used)
    return {"pairs": len(used), "pairs_without_relevant": len(rows) - len(used), "slots": slots, "hits": hits,
            "rate": hits / slots if slots else None,
            "chance": sum(r["n"] * r["chance"] for r in used) / slots if slots else None}
