"""Distances between sets of features: the Frechet distance of Gaussian fits (FID) and diversity.

One home for what the music-to-dance metrics (:mod:`motion_text.metrics.dance`, Bailando's FID_k / FID_g and
Div_k / Div_g) and the text-to-motion generation metrics (``motion-text score``, Guo et al. CVPR 2022) share:

* :func:`frechet_distance` -- ``|mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` of two Gaussians (Heusel et al.,
  NeurIPS 2017, Eq. 6), with the fallbacks of Guo et al.'s ``calculate_frechet_distance`` and Bailando's ``calc_fid``
  (``eps`` I added to both covariances when the square root is not finite; the real part of a complex root);
* :func:`fid` -- the same between two feature sets (N, D), each fitted with its mean and unbiased covariance
  (:func:`gaussian_fit`);
* :func:`pairwise_diversity` -- mean distance over all unordered pairs (Bailando ``calculate_avg_distance``);
* :func:`sampled_diversity` -- mean distance over ``times`` random pairs (Guo et al.'s ``calculate_diversity``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from scipy import linalg
from torch import Tensor

__all__ = ["as_features", "gaussian_fit", "frechet_distance", "fid", "pairwise_diversity", "sampled_diversity"]

log = logging.getLogger(__name__)


def as_features(feats: np.ndarray | Tensor, name: str, min_rows: int = 1) -> np.ndarray:
    """``feats`` as a float64 (N, D) array with ``N >= min_rows``; ValueError naming ``name`` otherwise."""
    if isinstance(feats, Tensor):
        feats = feats.detach().cpu().to(torch.float64).numpy()
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {f.shape}")
    if f.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {f.shape[0]}")
    return f


def gaussian_fit(x: np.ndarray | Tensor, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of ``x`` (N, D), N >= 2."""
    f = as_features(x, name, 2)
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6, clip_rounding: bool = True) -> float:
    """Frechet distance of two Gaussians: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Heusel et al. 2017, eq. 6).

    As Guo et al.'s ``calculate_frechet_distance`` (and Bailando's ``calc_fid``): when the matrix square root is not
    finite, ``eps`` I is added to both covariances; a (numerically) complex root keeps its real part. The references
    call ``sqrtm(..., disp=False)``, so scipy's warning about a singular product is silenced.

    ``clip_rounding`` returns 0 for values in (-1e-6, 0) (the rounding of identical distributions; the default of
    ``motion-text score``); ``False`` returns the value as computed (Bailando's ``calc_fid``).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes differ: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            log.warning("frechet_distance: singular product of covariances; adding %g to the diagonals", eps)
            offset = np.eye(len(mu1)) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = float(np.abs(covmean.imag).max())
        if imag > 1e-3:
            log.warning("frechet_distance: the matrix square root has an imaginary part of %.3g "
                        "(ill-conditioned covariances)", imag)
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    if clip_rounding and -1e-6 < value < 0.0:
        return 0.0
    return value


def fid(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor, eps: float = 1e-6,
        clip_rounding: bool = True) -> float:
    """:func:`frechet_distance` between the Gaussian fits (:func:`gaussian_fit`) of (N_a, D) and (N_b, D) features."""
    a = as_features(feats_a, "feats_a", 2)
    b = as_features(feats_b, "feats_b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance(*gaussian_fit(a), *gaussian_fit(b), eps=eps, clip_rounding=clip_rounding)


def pairwise_diversity(feats: np.ndarray | Tensor) -> float:
    """Mean pairwise Euclidean distance over all unordered pairs (Bailando ``calculate_avg_distance``).

    feats: (N, D), N >= 2.
    """
    f = as_features(feats, "feats", 2)
    sq = (f * f).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0, None)
    iu = np.triu_indices(f.shape[0], k=1)
    return float(np.sqrt(d2[iu]).mean())


def sampled_diversity(emb: np.ndarray | Tensor, times: int = 300, seed: int = 0) -> float:
    """Guo et al.'s diversity: mean distance between ``times`` random pairs (two draws of ``times`` distinct rows,
    ``np.random.RandomState(seed)``); ``times`` is reduced to N when fewer embeddings are given."""
    x = emb.detach().double().cpu().numpy() if torch.is_tensor(emb) else np.asarray(emb, np.float64)
    n = len(x)
    if n < 2:
        raise ValueError(f"diversity needs at least 2 embeddings, got {n}")
    if times > n:
        log.info("diversity: %d pairs requested but only %d motions; using %d", times, n, n)
        times = n
    rng = np.random.RandomState(seed)
    first, second = rng.choice(n, times, replace=False), rng.choice(n, times, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())
