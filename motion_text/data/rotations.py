"""Quaternion and 6D-rotation helpers (w, x, y, z convention), numpy for data processing and torch for models."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["qmul_np", "qinv_np", "qrot_np", "qbetween_np", "quat_to_matrix_np", "quat_to_cont6d_np",
           "qinv", "qrot", "cont6d_to_matrix", "matrix_to_cont6d", "axis_angle_to_matrix"]


def qmul_np(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternions (..., 4)."""
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], axis=-1)


def qinv_np(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qrot_np(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    qvec = q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2 * (q[..., :1] * uv + uuv)


def qbetween_np(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unit quaternion rotating direction u onto direction v (both (..., 3))."""
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    w = 1.0 + (u * v).sum(-1, keepdims=True)
    xyz = np.cross(u, v)
    q = np.concatenate([w, xyz], axis=-1)
    # opposite vectors: rotate by pi about any axis orthogonal to u
    opposite = w[..., 0] < 1e-9
    if np.any(opposite):
        uo = u[opposite]
        axis = np.cross(uo, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(axis, axis=-1) < 1e-6
        axis[small] = np.cross(uo[small], np.array([0.0, 1.0, 0.0]))
        q[opposite] = np.concatenate([np.zeros((len(uo), 1)), axis], axis=-1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_to_matrix_np(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


def quat_to_cont6d_np(q: np.ndarray) -> np.ndarray:
    """Continuous 6D representation: the first two columns of the rotation matrix (Zhou et al., CVPR 2019)."""
    m = quat_to_matrix_np(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)


def qinv(q: torch.Tensor) -> torch.Tensor:
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4) (torch)."""
    qvec = q[..., 1:]
    uv = torch.cross(qvec, v, dim=-1)
    uuv = torch.cross(qvec, uv, dim=-1)
    return v + 2 * (q[..., :1] * uv + uuv)


def cont6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """6D (..., 6) -> rotation matrices (..., 3, 3) by Gram-Schmidt; columns are the two given vectors."""
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_cont6d(m: torch.Tensor) -> torch.Tensor:
    return torch.cat([m[..., 0], m[..., 1]], dim=-1)


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle (..., 3) -> rotation matrices (..., 3, 3)."""
    angle = aa.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    axis = aa / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(aa.shape[:-1] + (3, 3))
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)
