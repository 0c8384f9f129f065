"""Command lines of ``motion-text index``, ``search``, ``sparsity`` and ``terms`` (no torch import, for CLI start-up
time); the work is done in :mod:`motion_text.tools.sparse` and :mod:`motion_text.viz.lexical`."""

from __future__ import annotations

import argparse

__all__ = ["top_k_arg", "seismic_param", "add_index_parser", "add_search_parser", "add_sparsity_parser", "add_terms_parser",
           "SPARSE_TOOL_NAMES"]

SPARSE_TOOL_NAMES = ("index", "search", "sparsity", "terms")


def top_k_arg(value: str) -> int | None:
    """``--top-k`` values: a positive integer, or ``all`` (no cut)."""
    if value.lower() in ("all", "none"):
        return None
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {value!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {value!r}")
    return k


def seismic_param(value: str) -> tuple[str, int | float | bool]:
    """``--seismic NAME=VALUE``: a Seismic parameter, the value read as an integer, a float or true/false."""
    name, sep, raw = value.partition("=")
    if not sep or not name.strip() or not raw.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. n_postings=1000), got {value!r}")
    raw = raw.strip()
    if raw.lower() in ("true", "false"):
        return name.strip(), raw.lower() == "true"
    for cast in (int, float):
        try:
            return name.strip(), cast(raw)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"{name}: expected a number or true/false, got {raw!r}")


def _common(p: argparse.ArgumentParser, batch: bool = True) -> None:
    p.add_argument("--device", default="cpu", help="torch device, or 'auto' (cuda when available)")
    if batch:
        p.add_argument("--split", default="test", help="split to encode (default test)")
        p.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default 64)")
        p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the data config's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_index_parser(sub) -> argparse.ArgumentParser:
    """Register ``index``."""
    p = sub.add_parser("index", help="encode a motion collection into a sparse lexical index",
                       description="Encode the motions of a split with a lexical checkpoint, keep the --top-k "
                                   "largest terms of each vector and store an inverted index (term -> postings of "
                                   "(doc id, weight), plus the key ids).")
    p.add_argument("--ckpt", required=True, help="lexical checkpoint (LexicalPretraining, phase 3 or 4)")
    p.add_argument("--data", required=True, help="data config (DataModule init args, a packaged name, or a full "
                                                 "training config) or its data section")
    p.add_argument("--out", required=True, help="index path: a .npz file (exact) or a folder (seismic)")
    p.add_argument("--top-k", type=top_k_arg, default=None, help="terms kept per motion vector, or 'all' (default)")
    p.add_argument("--backend", choices=["exact", "seismic"], default="exact",
                   help="exact inverted index (default) or Seismic (pip install motion-text[seismic])")
    p.add_argument("--seismic", type=seismic_param, action="append", default=[], metavar="NAME=VALUE",
                   help="Seismic build parameter (repeatable), e.g. --seismic n_postings=500 --seismic "
                        "summary_energy=0.4 (defaults: n_postings=3000 centroid_fraction=0.2 summary_energy=0.5)")
    p.add_argument("--export", default=None, metavar="JSONL",
                   help="also write the documents as {term: weight} JSON Lines (OpenSearch / Elasticsearch)")
    _common(p)
    return p


def add_search_parser(sub) -> argparse.ArgumentParser:
    """Register ``search``."""
    p = sub.add_parser("search", help="search a sparse lexical index with a caption or keywords",
                       description="Rank the indexed motions by dot product with the query's lexical vector and "
                                   "show the matched terms. Keywords get weight 1 on their vocabulary ids (no text "
                                   "encoder); motions matching every keyword are ranked first.")
    p.add_argument("--index", required=True, help="index written by `motion-text index`")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", action="append", help="caption (repeatable); needs --ckpt")
    q.add_argument("--keywords", nargs="+", help="keywords, e.g. --keywords run jump")
    q.add_argument("--pair-rate", nargs="*", metavar="ACTION",
                   help="measure keyword search: for each pair of these actions (default: all the synthetic "
                        "generator's actions), the share of the top results whose captions (saved with the index) "
                        "mention both, against chance")
    p.add_argument("--ckpt", default=None, help="lexical checkpoint whose text branch encodes --query")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--query-top-k", type=top_k_arg, default=None, help="terms kept per query vector (default all)")
    p.add_argument("--no-coverage", action="store_true",
                   help="rank keyword results by score only (default: motions matching all keywords first)")
    p.add_argument("--seismic", type=seismic_param, action="append", default=[], metavar="NAME=VALUE",
                   help="Seismic search parameter (repeatable): query_cut (10), heap_factor (0.8), sorted (false), "
                        "num_threads (1)")
    p.add_argument("--inflect", action="store_true",
                   help="keywords also match their regular inflections (kick: kicks, kicked, kicking)")
    p.add_argument("--terms", type=int, default=6, help="matched terms shown per hit (default 6)")
    _common(p, batch=False)
    return p


def add_sparsity_parser(sub) -> argparse.ArgumentParser:
    """Register ``sparsity``."""
    p = sub.add_parser("sparsity", help="retrieval and index size against the top-k cut (paper Fig. 4)",
                       description="For each top-k cut: text-to-motion / motion-to-text R@1 and R@10 on a split "
                                   "and the size of the exact index in bytes; writes sparsity.csv, sparsity.png and "
                                   "TensorBoard events (tb/) into --out.")
    p.add_argument("--ckpt", required=True, help="lexical checkpoint")
    p.add_argument("--data", required=True, help="data config")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--ks", nargs="+", default=["8", "16", "32", "64", "128", "256", "all"],
                   help="cuts (default 8 16 32 64 128 256 all)")
    _common(p)
    return p


def add_terms_parser(sub) -> argparse.ArgumentParser:
    """Register ``terms``."""
    p = sub.add_parser("terms", help="term clouds and top-term charts of motions and their captions",
                       description="For motions of a split: the term cloud of p_m next to that of its caption's "
                                   "p_t, and bar charts of their top terms (paper Fig. 5(a)); PNG files in --out.")
    p.add_argument("--ckpt", required=True, help="lexical checkpoint")
    p.add_argument("--data", required=True, help="data config")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--motion", action="append", help="key id of the split (repeatable; default: the first --count)")
    p.add_argument("--count", type=int, default=4, help="motions drawn when no --motion is given (default 4)")
    p.add_argument("--top", type=int, default=20, help="terms per chart (default 20)")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--device", default="cpu", help="torch device, or 'auto'")
    p.add_argument("--quiet", action="store_true", help="do not list the files written")
    return p
