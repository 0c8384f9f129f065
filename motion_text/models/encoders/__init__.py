"""Motion, text and music encoders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "TextEncoder": "motion_text.models.encoders.text",
    "SentenceEncoder": "motion_text.models.encoders.text",
    "MaskedLMTextEncoder": "motion_text.models.encoders.text",
    "TextOutput": "motion_text.models.encoders.text",
    "ModelNotAvailableError": "motion_text.models.encoders.text_loading",
    "resolve_text_model": "motion_text.models.encoders.text_loading",
    "ACTORStyleEncoder": "motion_text.models.encoders.actor",
    "ClsTransformerEncoder": "motion_text.models.encoders.cls_transformer",
    "MoTPPEncoder": "motion_text.models.encoders.motpp",
    "SpatioTemporalEncoder": "motion_text.models.encoders.spatiotemporal",
    "DanceConvGenerator": "motion_text.models.encoders.music",
    "DanceTransformerGenerator": "motion_text.models.encoders.music",
}

__all__ = [
    "TextEncoder", "SentenceEncoder", "MaskedLMTextEncoder", "TextOutput", "ModelNotAvailableError",
    "resolve_text_model", "ACTORStyleEncoder", "ClsTransformerEncoder", "MoTPPEncoder", "SpatioTemporalEncoder",
    "DanceConvGenerator", "DanceTransformerGenerator",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.models.encoders.actor import ACTORStyleEncoder
    from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder
    from motion_text.models.encoders.motpp import MoTPPEncoder
    from motion_text.models.encoders.music import DanceConvGenerator, DanceTransformerGenerator
    from motion_text.models.encoders.spatiotemporal import SpatioTemporalEncoder
    from motion_text.models.encoders.text import MaskedLMTextEncoder, SentenceEncoder, TextEncoder, TextOutput
    from motion_text.models.encoders.text_loading import ModelNotAvailableError, resolve_text_model
