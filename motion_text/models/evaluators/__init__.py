"""Purpose-built evaluators of text-to-motion generation (as opposed to the retrieval methods' own encoders)."""

from motion_text.models.evaluators.guo import (
    POS_TAGS,
    GuoEvaluator,
    GuoVocabulary,
    MotionEncoderBiGRUCo,
    MovementConvEncoder,
    TextEncoderBiGRUCo,
)

__all__ = ["POS_TAGS", "GuoEvaluator", "GuoVocabulary", "MotionEncoderBiGRUCo", "MovementConvEncoder",
           "TextEncoderBiGRUCo"]
