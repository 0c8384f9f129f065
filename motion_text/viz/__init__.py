"""Visualisation: skeleton animations, TensorBoard boards for retrieval, lexical terms and dance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "render_animation": "motion_text.viz.skeleton",
    "render_frame": "motion_text.viz.skeleton",
    "RetrievalBoard": "motion_text.viz.tensorboard",
    "LexicalBoard": "motion_text.viz.lexical",
    "DanceBoard": "motion_text.viz.dance",
}

__all__ = [
    "render_animation", "render_frame", "RetrievalBoard", "LexicalBoard", "DanceBoard",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.viz.dance import DanceBoard
    from motion_text.viz.lexical import LexicalBoard
    from motion_text.viz.skeleton import render_animation, render_frame
    from motion_text.viz.tensorboard import RetrievalBoard
