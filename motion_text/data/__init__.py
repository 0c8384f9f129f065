"""Data: skeletons and feature layouts, the HumanML3D / KIT-ML / AIST++ readers, the synthetic generators and the one
DataModule. Names are imported lazily on first use (:mod:`motion_text._lazy`)."""

from __future__ import annotations

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "MotionTextDataModule": "motion_text.data.datamodule",
    "DatasetSpec": "motion_text.data.datamodule",
    "DataError": "motion_text.data.readers",
    "DataConfigError": "motion_text.data.readers",
    "read_guo_split": "motion_text.data.readers",
    "read_tmr_split": "motion_text.data.readers",
    "read_aistpp_split": "motion_text.data.aistpp",
    "joints_to_features": "motion_text.data.features",
    "recover_from_ric": "motion_text.data.features",
    "generate_dataset": "motion_text.data.synthetic",
    "generate_aistpp": "motion_text.data.synthetic_aistpp",
    "default_cache_dir": "motion_text.data.cache",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
