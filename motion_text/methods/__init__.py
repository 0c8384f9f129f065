"""The methods, one LightningModule each, on the shared base classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "MotionTextMethod": "motion_text.methods.base",
    "RetrievalMethod": "motion_text.methods.retrieval",
    "TMR": "motion_text.methods.tmr",
    "MoTCCCL": "motion_text.methods.mot_cccl",
    "DropTriple": "motion_text.methods.droptriple",
    "LexicalPretraining": "motion_text.methods.lexical",
    "MDOT": "motion_text.methods.mdot",
}

__all__ = [
    "MotionTextMethod", "RetrievalMethod", "TMR", "MoTCCCL", "DropTriple", "LexicalPretraining", "MDOT",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.methods.base import MotionTextMethod
    from motion_text.methods.droptriple import DropTriple
    from motion_text.methods.lexical import LexicalPretraining
    from motion_text.methods.mdot import MDOT
    from motion_text.methods.mot_cccl import MoTCCCL
    from motion_text.methods.retrieval import RetrievalMethod
    from motion_text.methods.tmr import TMR
