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

The official functions draw their pairs with the global ``np.random``; here a ``seed`` gives
``np.random.RandomState(seed)``, which draws the same pairs as ``np.random.seed(seed)`` followed by the official call.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from motion_text.metrics.distribution import fid, frechet_distance
from motion_text.metrics.distribution import gaussian_fit as activation_statistics
from motion_text.metrics.distribution import sampled_diversity as diversity

__all__ = ["euclidean_distance_matrix", "guo_matching", "activation_statistics", "frechet_distance", "fid",
           "diversity", "multimodality"]

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
