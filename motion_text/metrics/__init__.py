"""Metrics: a functional core plus thin torchmetrics ``Metric`` classes, each metric in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "RetrievalMetric": "motion_text.metrics.retrieval",
    "retrieval_ranks": "motion_text.metrics.retrieval",
    "rank_metrics": "motion_text.metrics.retrieval",
    "CaptionMetrics": "motion_text.metrics.captioning",
    "BLEU": "motion_text.metrics.captioning",
    "RougeL": "motion_text.metrics.captioning",
    "CIDErD": "motion_text.metrics.captioning",
    "BERTScore": "motion_text.metrics.captioning",
    "caption_metrics": "motion_text.metrics.captioning",
    "DanceQualityMetric": "motion_text.metrics.dance",
    "BeatAlignMetric": "motion_text.metrics.dance",
    "beat_align_score_bailando": "motion_text.metrics.dance",
    "beat_align_score_fact": "motion_text.metrics.dance",
    "kinetic_features": "motion_text.metrics.dance_features",
    "geometric_features": "motion_text.metrics.dance_features",
    "frechet_distance": "motion_text.metrics.distribution",
    "fid": "motion_text.metrics.distribution",
    "pairwise_diversity": "motion_text.metrics.distribution",
    "sampled_diversity": "motion_text.metrics.distribution",
    "top_term_rates": "motion_text.metrics.lexical",
    "caption_terms": "motion_text.metrics.lexical",
    "caption_term_overlap": "motion_text.metrics.lexical",
}

__all__ = [
    "RetrievalMetric", "retrieval_ranks", "rank_metrics", "CaptionMetrics", "BLEU", "RougeL", "CIDErD", "BERTScore",
    "caption_metrics", "DanceQualityMetric", "BeatAlignMetric", "beat_align_score_bailando", "beat_align_score_fact",
    "kinetic_features", "geometric_features", "frechet_distance", "fid", "pairwise_diversity", "sampled_diversity",
    "top_term_rates", "caption_terms", "caption_term_overlap",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.metrics.captioning import (
        BLEU,
        BERTScore,
        CaptionMetrics,
        CIDErD,
        RougeL,
        caption_metrics,
    )
    from motion_text.metrics.dance import (
        BeatAlignMetric,
        DanceQualityMetric,
        beat_align_score_bailando,
        beat_align_score_fact,
    )
    from motion_text.metrics.dance_features import geometric_features, kinetic_features
    from motion_text.metrics.distribution import fid, frechet_distance, pairwise_diversity, sampled_diversity
    from motion_text.metrics.lexical import caption_term_overlap, caption_terms, top_term_rates
    from motion_text.metrics.retrieval import RetrievalMetric, rank_metrics, retrieval_ranks
