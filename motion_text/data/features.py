"""The Guo et al. (CVPR 2022) motion feature representation used by HumanML3D (263-d) and KIT-ML (251-d).

Per frame, with J joints (Guo et al. ``motion_representation.ipynb`` / TMR ``guofeats/motion_representation.py``):

=================  ==================================================================  ==========
slice              content                                                             dims
=================  ==================================================================  ==========
``root_rot_vel``   root angular velocity about Y (half-angle, ``arcsin`` of the          1
                   quaternion delta's y component)
``root_lin_vel``   root linear velocity (x, z) in the root's facing frame                2
``root_height``    root height y                                                         1
``ric``            rotation-invariant joint positions of joints 1..J-1 relative to       (J-1)*3
                   the root, in its facing frame
``rot6d``          continuous 6D rotations of joints 1..J-1                               (J-1)*6
``local_vel``      velocities of all J joints in the root's facing frame                J*3
``foot_contact``   left (2) and right (2) foot-contact labels                             4
=================  ==================================================================  ==========

Total ``4 + 9(J-1) + 3J + 4``: 263 for J = 22, 251 for J = 21.

This module holds the layout (named slices, no magic numbers), the forward computation from joint positions
(:func:`joints_to_features`, used by the synthetic generator) and the inverse :func:`recover_from_ric`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from motion_text.data import rotations as R
from motion_text.data.skeleton import Skeleton

__all__ = ["FeatureLayout", "layout_for", "joints_to_features", "canonicalize_joints", "recover_from_ric",
           "recover_root_rot_pos"]

#: squared per-frame foot displacement (in metres^2) below which a foot counts as in contact (Guo et al.: 0.002)
CONTACT_THRESHOLD = 0.002


@dataclass(frozen=True)
class FeatureLayout:
    """Named slices of the Guo feature vector for ``num_joints`` joints."""

    num_joints: int

    @cached_property
    def slices(self) -> dict[str, slice]:
        j = self.num_joints
        sizes = [
            ("root_rot_vel", 1),
            ("root_lin_vel", 2),
            ("root_height", 1),
            ("ric", (j - 1) * 3),
            ("rot6d", (j - 1) * 6),
            ("local_vel", j * 3),
            ("foot_contact", 4),
        ]
        out, start = {}, 0
        for name, size in sizes:
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def dim(self) -> int:
        return self.slices["foot_contact"].stop

    @property
    def root(self) -> slice:
        """The four root features (rot. vel., lin. vel. x/z, height)."""
        return slice(0, self.slices["root_height"].stop)

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]


def layout_for(skeleton_or_joints: Skeleton | int) -> FeatureLayout:
    """Feature layout for a skeleton (or a joint count)."""
    j = skeleton_or_joints if isinstance(skeleton_or_joints, int) else skeleton_or_joints.num_joints
    return FeatureLayout(j)


# ----------------------------------------------------------------------------------------------------------------
# forward: joints -> features (numpy; used by the synthetic generator and for checks)
# ----------------------------------------------------------------------------------------------------------------


def _facing_quat(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(T, 4) quaternions rotating each frame's facing direction onto +Z (pure Y rotations)."""
    r_hip, l_hip, sdr_r, sdr_l = skeleton.face_joints
    across = (positions[:, r_hip] - positions[:, l_hip]) + (positions[:, sdr_r] - positions[:, sdr_l])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(np.array([[0.0, 1.0, 0.0]]), across)
    forward[:, 1] = 0.0
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    target = np.broadcast_to(np.array([0.0, 0.0, 1.0]), forward.shape)
    return R.qbetween_np(forward, target)


def canonicalize_joints(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Put a joint sequence (T, J, 3) on the floor, at the XZ origin and facing +Z at frame 0 (Guo et al.)."""
    positions = np.asarray(positions, dtype=np.float64).copy()
    positions[..., 1] -= positions[..., 1].min()
    positions -= positions[0:1, 0:1] * np.array([1.0, 0.0, 1.0])
    q0 = _facing_quat(positions[:1], skeleton)[0]
    return R.qrot_np(np.broadcast_to(q0, positions.shape[:-1] + (4,)), positions)


def _inverse_kinematics(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Local joint quaternions (T, J, 4) from positions, as Guo et al.'s ``Skeleton.inverse_kinematics_np``.

    The root quaternion is the facing rotation; each joint's rotation aligns its rest bone direction
    (``raw_offsets``) with the observed bone, expressed relative to the accumulated parent rotation. The facing
    direction is not temporally smoothed here (Guo et al. smooth it with a Gaussian of sigma 20), so that
    :func:`recover_from_ric` inverts :func:`joints_to_features` exactly.
    """
    t = positions.shape[0]
    quats = np.zeros((t, skeleton.num_joints, 4))
    quats[..., 0] = 1.0
    root_quat = _facing_quat(positions, skeleton)
    quats[:, 0] = root_quat
    for chain in skeleton.chains:
        rot = root_quat
        for a, b in zip(chain[:-1], chain[1:]):
            u = np.broadcast_to(skeleton.raw_offsets[b], (t, 3))
            v = positions[:, b] - positions[:, a]
            v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
            rot_uv = R.qbetween_np(u, v)
            local = R.qmul_np(R.qinv_np(rot), rot_uv)
            quats[:, b] = local
            rot = R.qmul_np(rot, local)
    return quats


def joints_to_features(positions: np.ndarray, skeleton: Skeleton, canonicalize: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Compute Guo features (T-1, D) from joint positions (T, J, 3).

    Returns ``(features, joints)`` where ``joints`` (T-1, J, 3) are the canonicalised positions of the frames that
    the features describe; ``recover_from_ric(features)`` returns them (the layout of HumanML3D's ``new_joints``).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"expected joints of shape (T, {skeleton.num_joints}, 3), got {positions.shape}")
    if positions.shape[0] < 2:
        raise ValueError(f"need at least 2 frames to compute velocities, got {positions.shape[0]}")
    if canonicalize:
        positions = canonicalize_joints(positions, skeleton)
    layout = layout_for(skeleton)
    t, j = positions.shape[:2]

    # foot contacts from squared per-frame displacement, threshold in metres
    thr = CONTACT_THRESHOLD / skeleton.unit_scale**2

    def contact(idx: tuple[int, int]) -> np.ndarray:
        d = positions[1:, list(idx)] - positions[:-1, list(idx)]
        return ((d**2).sum(-1) < thr).astype(np.float64)

    feet_l, feet_r = contact(skeleton.foot_left), contact(skeleton.foot_right)

    quats = _inverse_kinematics(positions, skeleton)
    r_rot = quats[:, 0]  # (T, 4) world -> facing frame
    cont6d = R.quat_to_cont6d_np(quats)  # (T, J, 6)

    velocity = R.qrot_np(r_rot[1:], positions[1:, 0] - positions[:-1, 0])  # (T-1, 3)
    delta = R.qmul_np(r_rot[1:], R.qinv_np(r_rot[:-1]))
    delta = delta * np.where(delta[:, :1] < 0, -1.0, 1.0)  # canonical sign, w >= 0 (robust at +-180 deg)
    r_velocity = np.arcsin(np.clip(delta[:, 2:3], -1.0, 1.0))

    ric = positions.copy()
    ric[..., 0] -= ric[:, 0:1, 0]
    ric[..., 2] -= ric[:, 0:1, 2]
    ric = R.qrot_np(np.repeat(r_rot[:, None], j, axis=1), ric)

    local_vel = R.qrot_np(np.repeat(r_rot[:-1, None], j, axis=1), positions[1:] - positions[:-1])

    feats = np.zeros((t - 1, layout.dim))
    feats[:, layout["root_rot_vel"]] = r_velocity
    feats[:, layout["root_lin_vel"]] = velocity[:, [0, 2]]
    feats[:, layout["root_height"]] = positions[:-1, 0, 1:2]
    feats[:, layout["ric"]] = ric[:-1, 1:].reshape(t - 1, -1)
    feats[:, layout["rot6d"]] = cont6d[:-1, 1:].reshape(t - 1, -1)
    feats[:, layout["local_vel"]] = local_vel.reshape(t - 1, -1)
    feats[:, layout["foot_contact"]] = np.concatenate([feet_l, feet_r], axis=-1)
    return feats.astype(np.float32), positions[:-1].astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# inverse: features -> joints (torch; also accepts numpy)
# ----------------------------------------------------------------------------------------------------------------


def recover_root_rot_pos(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate the root: returns (quaternion (..., T, 4), position (..., T, 3)) from features (..., T, D)."""
    rot_vel = data[..., 0]
    ang = torch.zeros_like(rot_vel)
    ang[..., 1:] = rot_vel[..., :-1]
    ang = torch.cumsum(ang, dim=-1)
    quat = torch.zeros(data.shape[:-1] + (4,), dtype=data.dtype, device=data.device)
    quat[..., 0] = torch.cos(ang)
    quat[..., 2] = torch.sin(ang)
    pos = torch.zeros(data.shape[:-1] + (3,), dtype=data.dtype, device=data.device)
    pos[..., 1:, 0] = data[..., :-1, 1]
    pos[..., 1:, 2] = data[..., :-1, 2]
    pos = R.qrot(R.qinv(quat), pos)
    pos = torch.cumsum(pos, dim=-2)
    pos[..., 1] = data[..., 3]
    return quat, pos


def recover_from_ric(data: torch.Tensor | np.ndarray, num_joints: int | None = None) -> torch.Tensor:
    """Joint positions (..., T, J, 3) from Guo features (..., T, D) (Guo et al. ``recover_from_ric``).

    ``num_joints`` is inferred from the feature dimension (263 -> 22, 251 -> 21) when omitted.
    """
    data = torch.as_tensor(data)
    if num_joints is None:
        d = data.shape[-1]
        if (d + 1) % 12 != 0:
            raise ValueError(f"feature dim {d} does not match the Guo layout 12*J - 1 (263 or 251)")
        num_joints = (d + 1) // 12
    layout = FeatureLayout(num_joints)
    if data.shape[-1] != layout.dim:
        raise ValueError(f"expected {layout.dim}-d features for {num_joints} joints, got {data.shape[-1]}")
    quat, root = recover_root_rot_pos(data)
    ric = data[..., layout["ric"]].reshape(data.shape[:-1] + (num_joints - 1, 3))
    inv = R.qinv(quat)[..., None, :].expand(ric.shape[:-1] + (4,))
    pos = R.qrot(inv, ric)
    pos[..., 0] = pos[..., 0] + root[..., None, 0]
    pos[..., 2] = pos[..., 2] + root[..., None, 2]
    return torch.cat([root[..., None, :], pos], dim=-2)
