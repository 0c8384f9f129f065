"""Heads on top of the encoders: motion decoder, lexical head, lexical-bottleneck decoder, caption generation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ACTORStyleDecoder": "motion_text.models.heads.decoder",
    "LexicalHead": "motion_text.models.heads.lexical",
    "BottleneckDecoder": "motion_text.models.heads.bottleneck",
    "masked_lm_loss": "motion_text.models.heads.bottleneck",
    "generate_captions": "motion_text.models.heads.generation",
}

__all__ = [
    "ACTORStyleDecoder", "LexicalHead", "BottleneckDecoder", "masked_lm_loss", "generate_captions",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.models.heads.bottleneck import BottleneckDecoder, masked_lm_loss
    from motion_text.models.heads.decoder import ACTORStyleDecoder
    from motion_text.models.heads.generation import generate_captions
    from motion_text.models.heads.lexical import LexicalHead
