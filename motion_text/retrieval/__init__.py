"""Sparse lexical retrieval: lexical vectors (:mod:`.vectors`), the exact inverted index (:mod:`.sparse`), the
Seismic approximate backend (:mod:`.seismic`, optional extra), keyword queries and document export (:mod:`.query`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "topk_sparsify": "motion_text.retrieval.vectors",
    "topk_sparsify_csr": "motion_text.retrieval.vectors",
    "to_csr": "motion_text.retrieval.vectors",
    "vocabulary": "motion_text.retrieval.vectors",
    "SearchResult": "motion_text.retrieval.vectors",
    "SparseIndex": "motion_text.retrieval.sparse",
    "load_index": "motion_text.retrieval.sparse",
    "SeismicSparseIndex": "motion_text.retrieval.seismic",
    "seismic_available": "motion_text.retrieval.seismic",
    "KeywordQuery": "motion_text.retrieval.query",
    "keyword_query": "motion_text.retrieval.query",
    "inflections": "motion_text.retrieval.query",
    "export_documents": "motion_text.retrieval.query",
}

__all__ = [
    "topk_sparsify", "topk_sparsify_csr", "to_csr", "vocabulary", "SearchResult", "SparseIndex", "load_index",
    "SeismicSparseIndex", "seismic_available", "KeywordQuery", "keyword_query", "inflections", "export_documents",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.retrieval.query import KeywordQuery, export_documents, inflections, keyword_query
    from motion_text.retrieval.seismic import SeismicSparseIndex, seismic_available
    from motion_text.retrieval.sparse import SparseIndex, load_index
    from motion_text.retrieval.vectors import (
        SearchResult,
        to_csr,
        topk_sparsify,
        topk_sparsify_csr,
        vocabulary,
    )
