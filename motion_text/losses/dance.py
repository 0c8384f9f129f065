"""Ground costs of MDOT-Net between pose sequences (target domain) and music sequences (source domain).

MDOT-Net ("Music-to-Dance Generation with Optimal Transport", section "Optimal Transport Distance") suggests the
geodesic distance on the human pose manifold as the cost ``c(x~, x)`` of its OT term, and a source-domain distance
``d(y, y')`` for its Gromov-Wasserstein term without defining it. Here (the root-translation and velocity terms and
the music distance are this project's choices, not the paper's; ``trans_weight=0`` leaves the rotation geodesic):

* :func:`geodesic_pose_cost`: ``c(x, x') = mean_t mean_j theta(R_tj, R'_tj) + w_trans mean_t |t_t - t'_t|``
  (optionally ``+ w_vel mean_t |dx_t - dx'_t|`` on the frame-to-frame change ``dx_t = x_{t+1} - x_t`` of the pose
  features, which penalises jitter that the per-frame terms barely see), with
  ``theta(R, R') = arccos((tr(R^T R') - 1) / 2)`` the rotation angle of ``R^T R'`` (Huynh, J. Math. Imaging Vis.
  2009, Phi_6), evaluated as ``2 arcsin(|R - R'|_F / sqrt 8)`` for a finite gradient near 0;
* :func:`music_cost`: the mean over frames of the L2 distance between feature vectors (``"frame_l2"``), or the
  squared L2 distance of the flattened sequences divided by the number of frames (``"sqeuclidean"``).

Both return an ``(m, n)`` matrix for batches ``(m, T, D)`` and ``(n, T, D)`` of equal length ``T``, in float32 (or
float64 for float64 input) with autocast disabled.
"""

from __future__ import annotations

import torch
from torch import Tensor

from motion_text.data.aistpp import features_to_rotmats

__all__ = ["rotation_geodesic", "geodesic_pose_cost", "frame_l2", "music_cost"]


def _dtype(*xs: Tensor) -> torch.dtype:
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def _safe_sqrt(sq: Tensor) -> Tensor:
    """sqrt with value and gradient 0 at 0 (no 0/0)."""
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def rotation_geodesic(trace: Tensor) -> Tensor:
    """Rotation angle ``theta`` from ``tr(R^T R')`` of two rotations: ``2 arcsin(sqrt((3 - tr) / 4))``.

    ``|R - R'|_F^2 = 6 - 2 tr(R^T R') = 8 sin^2(theta / 2)``; the argument is clamped to [0, 1 - 1e-7] so the
    gradient stays finite at ``theta = pi``.
    """
    half_chord = _safe_sqrt(((3.0 - trace) / 4.0).clamp_min(0.0)).clamp_max(1.0 - 1e-7)
    return 2.0 * torch.asin(half_chord)


def _check_pair(x: Tensor, y: Tensor, name: str) -> None:
    if x.ndim != 3 or y.ndim != 3 or x.shape[1:] != y.shape[1:]:
        raise ValueError(f"{name}: expected batches (m, T, D) and (n, T, D) of equal T and D, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")


def frame_l2(a: Tensor, b: Tensor) -> Tensor:
    """``mean_t |a_it - b_jt|_2`` for ``a`` (m, T, D), ``b`` (n, T, D) -> (m, n)."""
    at, bt = a.transpose(0, 1), b.transpose(0, 1)  # (T, m, D), (T, n, D)
    sq = (at * at).sum(-1)[:, :, None] + (bt * bt).sum(-1)[:, None, :] - 2.0 * at @ bt.transpose(1, 2)
    return _safe_sqrt(sq.clamp_min(0.0)).mean(0)


def geodesic_pose_cost(x: Tensor, y: Tensor, trans_weight: float = 1.0, rot_weight: float = 1.0,
                       vel_weight: float = 0.0) -> Tensor:
    """Pose-sequence cost ``C_ij = rot_weight mean_tj theta + trans_weight mean_t |t - t'| + vel_weight mean_t |dx - dx'|``.

    Parameters
    ----------
    x : Tensor, shape (m, T, 147)
    y : Tensor, shape (n, T, 147)
        Pose features ``[6D x 24 joints, root translation (m)]`` (:mod:`motion_text.data.aistpp`); the 6D parts are
        mapped to rotations by Gram-Schmidt.
    trans_weight, rot_weight : float
        Weights of the root-translation term (metres) and of the joint-rotation term (radians).
    vel_weight : float
        Weight of the velocity term: the mean over frames of the L2 distance between the frame-to-frame changes of
        the two 147-d feature sequences (0 = off).

    Returns
    -------
    Tensor of shape (m, n).
    """
    _check_pair(x, y, "geodesic_pose_cost")
    dtype = _dtype(x, y)
    with torch.autocast(device_type=x.device.type, enabled=False):
        rx, tx = features_to_rotmats(x.to(dtype))
        ry, ty = features_to_rotmats(y.to(dtype))
        trace = torch.einsum("mtjab,ntjab->mntj", rx, ry)  # tr(R^T R') = sum of elementwise products
        cost = rot_weight * rotation_geodesic(trace).mean((-1, -2))
        if trans_weight:
            cost = cost + trans_weight * frame_l2(tx, ty)
        if vel_weight and x.shape[1] > 1:
            cost = cost + vel_weight * frame_l2(x.to(dtype).diff(dim=1), y.to(dtype).diff(dim=1))
    return cost


def music_cost(a: Tensor, b: Tensor, kind: str = "frame_l2") -> Tensor:
    """Music-sequence cost matrix for ``a`` (m, T, D), ``b`` (n, T, D): ``"frame_l2"`` or ``"sqeuclidean"``."""
    _check_pair(a, b, "music_cost")
    dtype = _dtype(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        a, b = a.to(dtype), b.to(dtype)
        if kind == "frame_l2":
            return frame_l2(a, b)
        if kind == "sqeuclidean":
            af, bf = a.flatten(1), b.flatten(1)
            sq = (af * af).sum(-1)[:, None] + (bf * bf).sum(-1)[None, :] - 2.0 * af @ bf.T
            return sq.clamp_min(0.0) / a.shape[1]
    raise ValueError(f"unknown music cost {kind!r}; use 'frame_l2' or 'sqeuclidean'")
