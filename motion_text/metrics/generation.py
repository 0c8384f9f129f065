"""Metrics of text-to-motion generation (Guo et al., "Generating Diverse and Natural 3D Human Motions from Text",
CVPR 2022, section 5), as functions of embeddings.

Each follows the official evaluation code (EricGuo5513/text-to-motion, ``utils/metrics.py`` and
``final_evaluations.py``), so that numbers computed in the space of Guo et al.'s evaluator
(:class:`motion_text.models.evaluators.GuoEvaluator`) compare with the papers' tables:

- :func:`guo_matching`: R-precision top-1..3 and MM-Dist ("matching score") over batches of 32
  (``evaluate_matching_score``);
- :func:`fid` / :func:`frechet_distance` (``calculate_activation_statistics``, ``calculate_frechet_distance``) and
  :func:`diversity` (``calculate_diversity``, 300 pairs), re-exported from their one home,
  :mod:`motion_text.metrics.distribution`;
- :func:`multimodality` (``calculate_multimodality``, 10 pairs per caption out of 30 generations of 100 captions).

:func:`r_precision`, :func:`matching_score` and :func:`score_embeddings` are the same measures in a retrieval model's
embedding space (cosine similarity, ``motion-text score``'s default, as TMR proposes).

The official functions draw their pairs with the global ``np.random``; here a ``seed`` gives
``np.random.RandomState(seed)``, which draws the same pairs as ``np.random.seed(seed)`` followed by the official call.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from motion_text.metrics.distribution import fid, frechet_distance
from motion_text.metrics.distribution import gaussian_fit as activation_statistics
from motion_text.metrics.distribution import sampled_diversity as diversity

__all__ = ["euclidean_distance_matrix", "guo_matching", "activation_statistics", "frechet_distance", "fid",
           "diversity", "multimodality", "r_precision", "matching_score", "score_embeddings"]

log = logging.getLogger(__name__)


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().double().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, np.float64)


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N1, N2) Euclidean distances via ``|a|^2 - 2 a.b + |b|^2`` (``euclidean_distance_matrix``); rounding below
    zero is clipped (the official square root then gives NaN)."""
    a, b = _np(a), _np(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N1, D) and (N2, D) embeddings, got {a.shape} and {b.shape}")
    sq = -2 * a @ b.T + (a * a).sum(1, keepdims=True) + (b * b).sum(1)
    return np.sqrt(np.maximum(sq, 0.0))


def guo_matching(text_emb: torch.Tensor | np.ndarray, motion_emb: torch.Tensor | np.ndarray, batch_size: int = 32,
                 top_k: int = 3, seed: int | None = None) -> dict[str, float]:
    """R-precision and MM-Dist of Guo et al. (``final_evaluations.py``, ``evaluate_matching_score``).

    Row i of ``text_emb`` is the caption of row i of ``motion_emb``. The rows (permuted with
    ``np.random.RandomState(seed)`` unless ``seed`` is None) are cut into batches of ``batch_size``, the remainder
    dropped (the loaders' ``drop_last``). In each batch every caption ranks the batch's motions by Euclidean distance
    (``np.argsort``); ``R_precision_top{k}`` is the fraction of captions whose motion is within the first k, and
    ``mm_dist`` the mean distance of the matched pairs (the trace of the batch distance matrices).
    """
    t, m = _np(text_emb), _np(motion_emb)
    if t.shape != m.shape or t.ndim != 2:
        raise ValueError(f"text and motion embeddings must both be (N, D), got {t.shape} and {m.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(t)
    if n < batch_size:
        raise ValueError(f"R-precision needs at least batch_size={batch_size} pairs, got {n}")
    order = np.arange(n) if seed is None else np.random.RandomState(seed).permutation(n)
    hits, dist_sum, size = np.zeros(top_k), 0.0, 0
    for b in range(n // batch_size):
        idx = order[b * batch_size:(b + 1) * batch_size]
        dist = euclidean_distance_matrix(t[idx], m[idx])
        dist_sum += float(dist.trace())
        ranked = np.argsort(dist, axis=1)[:, :top_k] == np.arange(batch_size)[:, None]
        hits += np.cumsum(ranked, axis=1).astype(bool).sum(0)
        size += batch_size
    out = {f"R_precision_top{k + 1}": float(hits[k] / size) for k in range(top_k)}
    out["mm_dist"] = dist_sum / size
    return out


def multimodality(emb: torch.Tensor | np.ndarray, times: int = 10, seed: int = 0) -> float:
    """Guo et al.'s multimodality (``calculate_multimodality``): ``emb`` is (captions, generations per caption, D);
    two draws of ``times`` distinct generation indices (``np.random.RandomState(seed)``), shared by all captions,
    and the mean distance of the paired generations."""
    x = _np(emb)
    if x.ndim != 3:
        raise ValueError(f"multimodality needs (captions, generations, D) embeddings, got shape {x.shape}")
    if x.shape[1] <= times:
        raise ValueError(f"multimodality with times={times} needs more than {times} generations per caption, got "
                         f"{x.shape[1]}")
    rng = np.random.RandomState(seed)
    first, second = rng.choice(x.shape[1], times, replace=False), rng.choice(x.shape[1], times, replace=False)
    return float(np.linalg.norm(x[:, first] - x[:, second], axis=2).mean())


# ---- in a retrieval model's space (cosine similarity; motion-text score's default) ------------------------------------
def _cosine(text: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    return F.normalize(text.double(), dim=-1) @ F.normalize(motion.double(), dim=-1).T


def r_precision(text_emb: torch.Tensor, motion_emb: torch.Tensor, batch_size: int = 32, top_k: int = 3,
                seed: int = 0) -> list[float]:
    """R-precision top-1..top_k of Guo et al. (CVPR 2022), with cosine similarity as the score.

    Row i of ``text_emb`` (N, D) is the caption of row i of ``motion_emb`` (N, D). The items are permuted with
    ``np.random.RandomState(seed)``, cut into batches of ``batch_size`` (the remainder dropped) and, in each batch,
    every motion's own caption is ranked among the batch's captions; returns the fractions (in [0, 1]) of motions whose
    caption is within the first 1, ..., ``top_k`` (a tie counts against the ground truth).
    """
    n = text_emb.shape[0]
    if motion_emb.shape[0] != n:
        raise ValueError(f"{n} captions but {motion_emb.shape[0]} motions")
    if n < batch_size:
        raise ValueError(f"R-precision needs at least batch_size={batch_size} motions, got {n}")
    perm = np.random.RandomState(seed).permutation(n)
    hits = np.zeros(top_k)
    n_batches = n // batch_size
    for b in range(n_batches):
        idx = torch.as_tensor(perm[b * batch_size : (b + 1) * batch_size])
        sims = _cosine(motion_emb[idx], text_emb[idx])  # (B motions, B captions)
        gt = sims.diagonal()
        rank = (sims >= gt[:, None]).sum(1) - 1  # captions scoring at least as high as the right one, minus itself
        for k in range(top_k):
            hits[k] += float((rank <= k).sum())
    return (hits / (n_batches * batch_size)).tolist()


def matching_score(text_emb: torch.Tensor, motion_emb: torch.Tensor) -> dict[str, float]:
    """Mean cosine similarity (``matching_score``) and mean Euclidean distance of the L2-normalised embeddings
    (``matching_l2``) of matched (caption, motion) rows; Guo et al.'s matching score is the latter on their features."""
    t, m = F.normalize(text_emb.double(), dim=-1), F.normalize(motion_emb.double(), dim=-1)
    return {"matching_score": float((t * m).sum(-1).mean()), "matching_l2": float((t - m).norm(dim=-1).mean())}


def score_embeddings(text_emb: torch.Tensor, motion_emb: torch.Tensor, real_emb: torch.Tensor | None = None,
                     batch_size: int = 32, diversity_times: int = 300, seed: int = 0) -> dict[str, float]:
    """All metrics of generated motions (N, D) with their captions (N, D), FID against ``real_emb`` when given."""
    top = r_precision(text_emb, motion_emb, batch_size=batch_size, top_k=3, seed=seed)
    out = {f"R_precision_top{k + 1}": v for k, v in enumerate(top)}
    out.update(matching_score(text_emb, motion_emb))
    if real_emb is not None:
        out["fid"] = fid(motion_emb, real_emb)
    out["diversity"] = diversity(motion_emb, diversity_times, seed)
    out["num_motions"] = float(len(motion_emb))
    return out
