"""Losses as pure functions returning named parts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from motion_text._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "info_nce": "motion_text.losses.contrastive",
    "cccl": "motion_text.losses.contrastive",
    "cccl_lambda": "motion_text.losses.contrastive",
    "filter_mask": "motion_text.losses.contrastive",
    "cc_kl": "motion_text.losses.contrastive",
    "triplet_loss": "motion_text.losses.triplet",
    "drop_mask": "motion_text.losses.triplet",
    "drop_triple_loss": "motion_text.losses.triplet",
    "flops": "motion_text.losses.sparsity",
    "l0": "motion_text.losses.sparsity",
    "sinkhorn_cost": "motion_text.losses.ot",
    "pairwise_cost": "motion_text.losses.ot",
    "sinkhorn_divergence": "motion_text.losses.ot",
    "sinkhorn_divergence_unbiased": "motion_text.losses.ot",
    "entropic_gromov_wasserstein": "motion_text.losses.ot",
    "kl_gaussians": "motion_text.losses.vae",
    "tmr_objective": "motion_text.losses.vae",
    "rotation_geodesic": "motion_text.losses.dance",
    "geodesic_pose_cost": "motion_text.losses.dance",
    "frame_l2": "motion_text.losses.dance",
    "music_cost": "motion_text.losses.dance",
    "gather_features": "motion_text.losses.distributed",
}

__all__ = [
    "info_nce", "cccl", "cccl_lambda", "filter_mask", "cc_kl", "triplet_loss", "drop_mask", "drop_triple_loss", "flops",
    "l0", "sinkhorn_cost", "pairwise_cost", "sinkhorn_divergence", "sinkhorn_divergence_unbiased",
    "entropic_gromov_wasserstein", "kl_gaussians", "tmr_objective", "rotation_geodesic", "geodesic_pose_cost",
    "frame_l2", "music_cost", "gather_features",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names are resolved lazily
    from motion_text.losses.contrastive import cc_kl, cccl, cccl_lambda, filter_mask, info_nce
    from motion_text.losses.dance import frame_l2, geodesic_pose_cost, music_cost, rotation_geodesic
    from motion_text.losses.distributed import gather_features
    from motion_text.losses.ot import (
        entropic_gromov_wasserstein,
        pairwise_cost,
        sinkhorn_cost,
        sinkhorn_divergence,
        sinkhorn_divergence_unbiased,
    )
    from motion_text.losses.sparsity import flops, l0
    from motion_text.losses.triplet import drop_mask, drop_triple_loss, triplet_loss
    from motion_text.losses.vae import kl_gaussians, tmr_objective
