"""Where generated files live: synthetic datasets and music features (``$MOTION_TEXT_CACHE`` or
``~/.cache/motion_text``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SYNTHETIC_GENERATION", "default_cache_dir"]

#: version of the synthetic generators' output, part of the cache folder name: bump it whenever generated files change
#: (2: features of HumanML3D's process_file, KIT-ML units), so a cache of an older generator is never read
SYNTHETIC_GENERATION = 2


def default_cache_dir() -> Path:
    """Where generated synthetic datasets live: ``$MOTION_TEXT_CACHE`` or ``~/.cache/motion_text``."""
    return Path(os.environ.get("MOTION_TEXT_CACHE", Path.home() / ".cache" / "motion_text"))
