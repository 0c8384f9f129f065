"""motion-text: motion-language methods (TMR, MoT++ / CCCL, DropTriple, lexical four-phase pretraining, MDOT) as
Lightning modules, their DataModule, encoders, losses and metrics.

``from motion_text import TMR, MotionTextDataModule`` works; names are imported lazily on first use (see
:mod:`motion_text._lazy`), so ``import motion_text`` stays cheap. The command line is :mod:`motion_text.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "TMR": "motion_text.methods.tmr",
    "MoTCCCL": "motion_text.methods.mot_cccl",
    "DropTriple": "motion_text.methods.droptriple",
    "LexicalPretraining": "motion_text.methods.lexical",
    "MDOT": "motion_text.methods.mdot",
    "MotionTextMethod": "motion_text.methods.base",
    "RetrievalMethod": "motion_text.methods.retrieval",
    "MotionTextDataModule": "motion_text.data.datamodule",
    "TextEncoder": "motion_text.models.encoders.text",
    "SentenceEncoder": "motion_text.models.encoders.text",
    "MaskedLMTextEncoder": "motion_text.models.encoders.text",
    "ACTORStyleEncoder": "motion_text.models.encoders.actor",
    "ClsTransformerEncoder": "motion_text.models.encoders.cls_transformer",
    "MoTPPEncoder": "motion_text.models.encoders.motpp",
    "SpatioTemporalEncoder": "motion_text.models.encoders.spatiotemporal",
    "DanceConvGenerator": "motion_text.models.encoders.music",
    "DanceTransformerGenerator": "motion_text.models.encoders.music",
    "info_nce": "motion_text.losses.contrastive",
    "cccl": "motion_text.losses.contrastive",
    "triplet_loss": "motion_text.losses.triplet",
    "drop_triple_loss": "motion_text.losses.triplet",
    "flops": "motion_text.losses.sparsity",
    "sinkhorn_divergence": "motion_text.losses.ot",
    "entropic_gromov_wasserstein": "motion_text.losses.ot",
    "tmr_objective": "motion_text.losses.vae",
    "RetrievalMetric": "motion_text.metrics.retrieval",
    "CaptionMetrics": "motion_text.metrics.captioning",
    "DanceQualityMetric": "motion_text.metrics.dance",
    "BeatAlignMetric": "motion_text.metrics.dance",
    "SparseIndex": "motion_text.retrieval.sparse",
    "load_index": "motion_text.retrieval.sparse",
}

__all__ = [
    "TMR", "MoTCCCL", "DropTriple", "LexicalPretraining", "MDOT", "MotionTextMethod", "RetrievalMethod",
    "MotionTextDataModule", "TextEncoder", "SentenceEncoder", "MaskedLMTextEncoder", "ACTORStyleEncoder",
    "ClsTransformerEncoder", "MoTPPEncoder", "SpatioTemporalEncoder", "DanceConvGenerator", "DanceTransformerGenerator",
    "info_nce", "cccl", "triplet_loss", "drop_triple_loss", "flops", "sinkhorn_divergence",
    "entropic_gromov_wasserstein", "tmr_objective", "RetrievalMetric", "CaptionMetrics", "DanceQualityMetric",
    "BeatAlignMetric", "SparseIndex", "load_index",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.data.datamodule import MotionTextDataModule
    from motion_text.losses.contrastive import cccl, info_nce
    from motion_text.losses.ot import entropic_gromov_wasserstein, sinkhorn_divergence
    from motion_text.losses.sparsity import flops
    from motion_text.losses.triplet import drop_triple_loss, triplet_loss
    from motion_text.losses.vae import tmr_objective
    from motion_text.methods.base import MotionTextMethod
    from motion_text.methods.droptriple import DropTriple
    from motion_text.methods.lexical import LexicalPretraining
    from motion_text.methods.mdot import MDOT
    from motion_text.methods.mot_cccl import MoTCCCL
    from motion_text.methods.retrieval import RetrievalMethod
    from motion_text.methods.tmr import TMR
    from motion_text.metrics.captioning import CaptionMetrics
    from motion_text.metrics.dance import BeatAlignMetric, DanceQualityMetric
    from motion_text.metrics.retrieval import RetrievalMetric
    from motion_text.models.encoders.actor import ACTORStyleEncoder
    from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder
    from motion_text.models.encoders.motpp import MoTPPEncoder
    from motion_text.models.encoders.music import DanceConvGenerator, DanceTransformerGenerator
    from motion_text.models.encoders.spatiotemporal import SpatioTemporalEncoder
    from motion_text.models.encoders.text import MaskedLMTextEncoder, SentenceEncoder, TextEncoder
    from motion_text.retrieval.sparse import SparseIndex, load_index
