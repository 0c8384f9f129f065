"""Music-to-dance metrics: FID_k / FID_g, Div_k / Div_g (Bailando, CVPR 2022) and two Beat Align Scores.

Functional core in numpy/scipy, thin torchmetrics wrappers at the end. The motion features (kinetic, geometric,
kinematic beats) are in :mod:`motion_text.metrics.dance_features`; the Frechet distance and the diversity are shared
with the text-to-motion metrics in :mod:`motion_text.metrics.distribution`.

Both feature sets are z-normalised with the ground-truth mean and std (:func:`normalize_by`), then FID is the Frechet
distance between the Gaussian fits (:func:`frechet_distance`) and Div the mean pairwise L2 distance
(:func:`diversity`).

Beat Align Score: the two published variants differ, so both are implemented and named.

* ``BAS_bailando`` (Bailando ``utils/beat_align_score.py``): kinematic beats are local minima of the mean joint
  speed smoothed by a Gaussian (sigma 5 frames); the score averages, over **music** beats, the kernel
  ``exp(-d^2 / (2 * 3^2))`` of the distance ``d`` (frames) to the nearest kinematic beat.
* ``BAS_fact`` (google-research/mint ``tools/calculate_beat_scores.py``): kinematic beats are local minima
  (``argrelextrema``, order 10) of the summed joint-speed envelope; the score averages the same kernel over
  **motion** beats, each to its nearest music beat.

All frame constants (sigma 3 and 5, order 10) are defined at 60 fps, the AIST++ rate, and are rescaled by ``fps/60``
for other frame rates. Joint positions are SMPL joints in metres, Y up (AIST++ convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from motion_text.metrics.dance_features import (
    MAX_FEATURE_FRAMES,
    as_joints,
    check_energy_term,
    fps_scale,
    geometric_features,
    kinematic_beats_bailando,
    kinematic_beats_fact,
    kinetic_features,
)
from motion_text.metrics.distribution import as_features, fid, pairwise_diversity

__all__ = [
    "frechet_distance",
    "normalize_by",
    "diversity",
    "beat_align_score_bailando",
    "beat_align_score_fact",
    "DanceQualityMetric",
    "BeatAlignMetric",
]


# ----------------------------------------------------------------------------------------------------------------------
# FID and diversity
# ----------------------------------------------------------------------------------------------------------------------
def frechet_distance(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor, offset: float = 1e-5) -> float:
    """Frechet distance between Gaussian fits of two feature sets (Bailando ``calc_fid``; Heusel et al. 2017).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)`` with unbiased covariances; when ``sqrtm`` returns
    non-finite values, ``offset`` is added to both diagonals; an imaginary part of the square root is dropped
    (:func:`motion_text.metrics.distribution.fid`, without clipping negative rounding).

    feats_a: (N_a, D), feats_b: (N_b, D), N >= 2.
    """
    return fid(feats_a, feats_b, eps=offset, clip_rounding=False)


def normalize_by(gt_feats: np.ndarray | Tensor, *others: np.ndarray | Tensor) -> tuple[np.ndarray, ...]:
    """Z-normalise ``gt_feats`` and every array of ``others`` with the mean and std of ``gt_feats``.

    ``(f - mean_gt) / (std_gt + 1e-10)`` (population std), Bailando ``metrics_new.normalize``. Returns
    ``(gt_normalised, *others_normalised)``.
    """
    gt = as_features(gt_feats, "gt_feats")
    mean, std = gt.mean(0), gt.std(0)
    outs = [(gt - mean) / (std + 1e-10)]
    for k, o in enumerate(others):
        f = as_features(o, f"others[{k}]")
        if f.shape[1] != gt.shape[1]:
            raise ValueError(f"others[{k}] has {f.shape[1]} features, gt_feats has {gt.shape[1]}")
        outs.append((f - mean) / (std + 1e-10))
    return tuple(outs)


#: Div_k / Div_g: mean pairwise Euclidean distance over all unordered pairs (Bailando ``calculate_avg_distance``)
diversity = pairwise_diversity


# ----------------------------------------------------------------------------------------------------------------------
# beat alignment
# ----------------------------------------------------------------------------------------------------------------------
def _as_beats(beats: np.ndarray | Tensor | Sequence[int], name: str = "music_beats") -> np.ndarray:
    if isinstance(beats, Tensor):
        beats = beats.detach().cpu().numpy()
    b = np.asarray(beats)
    if b.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of frame indices, got shape {b.shape}")
    if b.dtype == bool:
        raise ValueError(f"{name} must hold frame indices, not a boolean mask (use np.flatnonzero)")
    if b.size and (np.any(b < 0) or np.any(b != np.round(b))):
        raise ValueError(f"{name} must hold non-negative integer frame indices, got {b[:8]}...")
    return b.astype(np.int64)


def beat_align_score_bailando(
    joints: np.ndarray | Tensor,
    music_beats: np.ndarray | Tensor | Sequence[int],
    fps: float = 60.0,
    sigma: float = 3.0,
) -> float:
    """Beat Align Score of Bailando (``utils/beat_align_score.py``), averaged over **music** beats.

    ``BA = 1/|B_m| sum_{b in B_m} exp(-min_{k in B_d} (k - b)^2 / (2 sigma^2))`` with the kinematic beats ``B_d`` of
    :func:`kinematic_beats_bailando` and the music beats ``B_m`` restricted, as in the original, to frames before the
    end of the speed curve (``b < T - 1``). ``sigma`` is in frames at 60 fps (rescaled by ``fps / 60``).
    Returns 0 when the dance has no kinematic beat; raises ValueError when no music beat falls inside the dance.
    """
    x = as_joints(joints, min_frames=2)
    mb = _as_beats(music_beats)
    mb = mb[mb < x.shape[0] - 1]
    if mb.size == 0:
        raise ValueError(f"no music beat inside the {x.shape[0]}-frame dance: {_as_beats(music_beats)[:8]}")
    db = kinematic_beats_bailando(x, fps)
    if db.size == 0:
        return 0.0
    s = sigma * fps_scale(fps)
    dist2 = ((db[None, :] - mb[:, None]).astype(np.float64) ** 2).min(axis=1)
    return float(np.exp(-dist2 / (2.0 * s * s)).mean())


def beat_align_score_fact(
    joints: np.ndarray | Tensor,
    music_beats: np.ndarray | Tensor | Sequence[int],
    fps: float = 60.0,
    sigma: float = 3.0,
    skip_frames: int = 0,
) -> float:
    """Beat Align Score of FACT (mint ``tools/calculate_beat_scores.py``), averaged over **motion** beats.

    ``BA = 1/|B_d| sum_{k in B_d} exp(-min_{b in B_m} (k - b)^2 / (2 sigma^2))`` with the kinematic beats of
    :func:`kinematic_beats_fact`. Beats of both kinds before ``skip_frames`` are ignored (FACT skips the 120 seed
    frames of generated dances) and music beats are restricted to the dance's frames. ``sigma`` is in frames at
    60 fps. Returns 0 when the dance has no kinematic beat (as the original); raises ValueError when there is no
    music beat.
    """
    x = as_joints(joints, min_frames=2)
    if skip_frames < 0:
        raise ValueError(f"skip_frames must be >= 0, got {skip_frames}")
    mb = _as_beats(music_beats)
    mb = mb[(mb >= skip_frames) & (mb < x.shape[0])]
    if mb.size == 0:
        raise ValueError(
            f"no music beat within frames [{skip_frames}, {x.shape[0]}): {_as_beats(music_beats)[:8]}"
        )
    db = kinematic_beats_fact(x, fps)
    db = db[db >= skip_frames]
    if db.size == 0:
        return 0.0
    s = sigma * fps_scale(fps)
    dist2 = ((db[:, None] - mb[None, :]).astype(np.float64) ** 2).min(axis=1)
    return float(np.exp(-dist2 / (2.0 * s * s)).mean())


# ----------------------------------------------------------------------------------------------------------------------
# torchmetrics wrappers
# ----------------------------------------------------------------------------------------------------------------------
def _split_batch(
    joints: Tensor | np.ndarray | Sequence[Tensor | np.ndarray],
    lengths: Sequence[int] | Tensor | None,
    name: str,
) -> list[np.ndarray]:
    """A padded batch (B, T, J, 3) with optional lengths, or a sequence of (T_i, J, 3) clips -> list of arrays."""
    if isinstance(joints, (Tensor, np.ndarray)) and np.ndim(joints) == 4:
        items = [joints[b] for b in range(joints.shape[0])]
    elif isinstance(joints, (Tensor, np.ndarray)):
        raise ValueError(f"{name} must be (B, T, J, 3) or a sequence of (T, J, 3), got shape {tuple(joints.shape)}")
    else:
        items = list(joints)
    if lengths is not None:
        lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, Tensor) else lengths)]
        if len(lengths) != len(items):
            raise ValueError(f"{name}: got {len(lengths)} lengths for {len(items)} clips")
        items = [it[:n] for it, n in zip(items, lengths)]
    return [as_joints(it, name) for it in items]


def _is_empty(state: list[Tensor] | Tensor) -> bool:
    """A list state before any update (a synchronised state may already be one concatenated tensor)."""
    return len(state) == 0 if isinstance(state, list) else state.numel() == 0


class DanceQualityMetric(Metric):
    """FID_k, FID_g, Div_k, Div_g of generated dances against ground-truth dances (Bailando protocol).

    ``update(preds, target=None)`` extracts :func:`kinetic_features` and :func:`geometric_features` per clip (clips
    may differ in length) and stores them; ground truth comes either as joints (``target``) or as precomputed
    features (:meth:`update_target_features`). ``compute`` z-normalises both sets with the ground-truth statistics
    and returns ``{"FID_k", "FID_g", "Div_k", "Div_g"}`` (Div of the generated set).

    ``energy_term`` selects the kinetic energy-expenditure term (:func:`kinetic_features`): ``"bailando"`` (default,
    the published code, comparable with published FID_k / Div_k) or ``"second_difference"`` (the intended one).
    Features given to :meth:`update_target_features` must have been computed with the same choice.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(self, fps: float = 60.0, max_frames: int | None = MAX_FEATURE_FRAMES, energy_term: str = "bailando",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        check_energy_term(energy_term)
        self.fps = float(fps)
        self.max_frames = max_frames
        self.energy_term = energy_term
        for name in ("pred_kinetic", "pred_geometric", "target_kinetic", "target_geometric"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def _features(self, clips: list[np.ndarray]) -> tuple[Tensor, Tensor]:
        k = np.stack([kinetic_features(c, self.fps, self.max_frames, energy_term=self.energy_term) for c in clips])
        g = np.stack([geometric_features(c, self.max_frames) for c in clips])  # (B, 32)
        return torch.from_numpy(k).to(self.device), torch.from_numpy(g).to(self.device)

    def update(
        self,
        preds: Tensor | Sequence[Tensor | np.ndarray],
        target: Tensor | Sequence[Tensor | np.ndarray] | None = None,
        pred_lengths: Sequence[int] | Tensor | None = None,
        target_lengths: Sequence[int] | Tensor | None = None,
    ) -> None:
        clips = _split_batch(preds, pred_lengths, "preds")
        if clips:
            k, g = self._features(clips)
            self.pred_kinetic.append(k)
            self.pred_geometric.append(g)
        if target is not None:
            clips = _split_batch(target, target_lengths, "target")
            if clips:
                k, g = self._features(clips)
                self.target_kinetic.append(k)
                self.target_geometric.append(g)

    def update_target_features(self, kinetic: Tensor | np.ndarray, geometric: Tensor | np.ndarray) -> None:
        """Add precomputed ground-truth features, kinetic (N, 72) and geometric (N, 32)."""
        k = torch.as_tensor(as_features(kinetic, "kinetic"), device=self.device)
        g = torch.as_tensor(as_features(geometric, "geometric"), device=self.device)
        if k.shape[0] != g.shape[0]:
            raise ValueError(f"kinetic and geometric features differ in count: {k.shape[0]} vs {g.shape[0]}")
        self.target_kinetic.append(k)
        self.target_geometric.append(g)

    def compute(self) -> dict[str, Tensor]:
        if _is_empty(self.pred_kinetic) or _is_empty(self.target_kinetic):
            raise ValueError("DanceQualityMetric needs generated and ground-truth dances before compute()")
        out = {}
        for tag, pred, gt in (
            ("k", self.pred_kinetic, self.target_kinetic),
            ("g", self.pred_geometric, self.target_geometric),
        ):
            pred_np = dim_zero_cat(pred).cpu().numpy()
            gt_np = dim_zero_cat(gt).cpu().numpy()
            gt_n, pred_n = normalize_by(gt_np, pred_np)
            out[f"FID_{tag}"] = torch.tensor(frechet_distance(pred_n, gt_n), dtype=torch.float64)
            out[f"Div_{tag}"] = torch.tensor(diversity(pred_n), dtype=torch.float64)
        return out


class BeatAlignMetric(Metric):
    """Mean Beat Align Scores of both published variants: ``{"BAS_bailando", "BAS_fact"}``.

    ``update(joints, music_beats)``: joints (B, T, J, 3) (optional ``lengths``) or a sequence of (T_i, J, 3);
    ``music_beats``: one 1-D array of music-beat frame indices per clip (e.g. from
    :func:`motion_text.data.music.music_beats`).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, fps: float = 60.0, fact_skip_frames: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if fact_skip_frames < 0:
            raise ValueError(f"fact_skip_frames must be >= 0, got {fact_skip_frames}")
        self.fps = float(fps)
        self.fact_skip_frames = int(fact_skip_frames)
        self.add_state("bailando", default=[], dist_reduce_fx="cat")
        self.add_state("fact", default=[], dist_reduce_fx="cat")

    def update(
        self,
        joints: Tensor | Sequence[Tensor | np.ndarray],
        music_beats: Sequence[np.ndarray | Tensor | Sequence[int]],
        lengths: Sequence[int] | Tensor | None = None,
    ) -> None:
        clips = _split_batch(joints, lengths, "joints")
        if len(music_beats) != len(clips):
            raise ValueError(f"got {len(music_beats)} music-beat arrays for {len(clips)} clips")
        if not clips:
            return
        ba = [beat_align_score_bailando(c, b, self.fps) for c, b in zip(clips, music_beats)]
        fa = [beat_align_score_fact(c, b, self.fps, skip_frames=self.fact_skip_frames) for c, b in zip(clips, music_beats)]
        self.bailando.append(torch.tensor(ba, dtype=torch.float64, device=self.device))
        self.fact.append(torch.tensor(fa, dtype=torch.float64, device=self.device))

    def compute(self) -> dict[str, Tensor]:
        if _is_empty(self.bailando):
            raise ValueError("BeatAlignMetric.compute() called before any update()")
        return {"BAS_bailando": dim_zero_cat(self.bailando).mean(), "BAS_fact": dim_zero_cat(self.fact).mean()}
