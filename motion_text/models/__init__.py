"""nn.Modules only: motion, text and music encoders (:mod:`.encoders`), heads (:mod:`.heads`), layers, masking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "TextEncoder": "motion_text.models.encoders.text",
    "SentenceEncoder": "motion_text.models.encoders.text",
    "MaskedLMTextEncoder": "motion_text.models.encoders.text",
    "ACTORStyleEncoder": "motion_text.models.encoders.actor",
    "ClsTransformerEncoder": "motion_text.models.encoders.cls_transformer",
    "MoTPPEncoder": "motion_text.models.encoders.motpp",
    "SpatioTemporalEncoder": "motion_text.models.encoders.spatiotemporal",
    "DanceConvGenerator": "motion_text.models.encoders.music",
    "DanceTransformerGenerator": "motion_text.models.encoders.music",
    "ACTORStyleDecoder": "motion_text.models.heads.decoder",
    "BottleneckDecoder": "motion_text.models.heads.bottleneck",
    "LexicalHead": "motion_text.models.heads.lexical",
}

__all__ = [
    "TextEncoder", "SentenceEncoder", "MaskedLMTextEncoder", "ACTORStyleEncoder", "ClsTransformerEncoder",
    "MoTPPEncoder", "SpatioTemporalEncoder", "DanceConvGenerator", "DanceTransformerGenerator", "ACTORStyleDecoder",
    "BottleneckDecoder", "LexicalHead",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.models.encoders.actor import ACTORStyleEncoder
    from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder
    from motion_text.models.encoders.motpp import MoTPPEncoder
    from motion_text.models.encoders.music import DanceConvGenerator, DanceTransformerGenerator
    from motion_text.models.encoders.spatiotemporal import SpatioTemporalEncoder
    from motion_text.models.encoders.text import MaskedLMTextEncoder, SentenceEncoder, TextEncoder
    from motion_text.models.heads.bottleneck import BottleneckDecoder
    from motion_text.models.heads.decoder import ACTORStyleDecoder
    from motion_text.models.heads.lexical import LexicalHead
