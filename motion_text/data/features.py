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
(:func:`joints_to_features`, HumanML3D's ``process_file``, used by the synthetic generator) and the inverse
:func:`recover_from_ric`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from motion_text.data import rotations as R
from motion_text.data.skeleton import Skeleton

__all__ = ["FeatureLayout", "layout_for", "joints_to_features", "uniform_skeleton", "canonicalize_joints",
           "recover_from_ric", "recover_root_rot_pos"]


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

#: sigma (frames) of the Gaussian that smooths the facing direction of the rotation features (Guo et al.: 20)
FACING_SMOOTH_SIGMA = 20.0


def _facing_quat(across: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """(T, 4) quaternions rotating the forward direction ``y x across`` onto +Z (pure Y rotations).

    ``across`` (T, 3) is normalised, crossed with +Y and, for ``sigma > 0``, smoothed over time with
    ``scipy.ndimage.gaussian_filter1d(..., sigma, mode="nearest")`` before the forward vector is normalised, as in
    Guo et al.'s ``Skeleton.inverse_kinematics_np(..., smooth_forward=True)``.
    """
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(np.array([[0.0, 1.0, 0.0]]), across)
    if sigma > 0:
        forward = gaussian_filter1d(forward, sigma, axis=0, mode="nearest")
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    return R.qbetween_np(forward, np.broadcast_to(np.array([0.0, 0.0, 1.0]), forward.shape))


def uniform_skeleton(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Retarget joint positions (T, J, 3) onto ``skeleton.target_offsets`` (Guo et al. ``uniform_skeleton``).

    Guo et al. run inverse kinematics on the source joints and forward kinematics with the target offsets; since every
    bone's global rotation takes its raw direction onto the observed bone, this keeps each bone's direction and sets
    its length to the target's. The root trajectory is scaled by the ratio of the two ``leg_bones`` lengths (target
    over source, frame 0; each length read as ``abs(offset).max()`` as in the reference).
    """
    if skeleton.leg_bones is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no leg_bones, needed to scale the root in uniform_skeleton")
    parents = np.array(skeleton.parents)
    bones = positions[:, 1:] - positions[:, parents[1:]]
    norms = np.linalg.norm(bones, axis=-1)
    if not norms.all():
        frame, bone = np.argwhere(norms == 0)[0]
        raise ValueError(f"joints {parents[bone + 1]} and {bone + 1} coincide in frame {frame}: the bone between them "
                         "has no direction")
    tgt = skeleton.target_offsets
    src = np.concatenate([[0.0], norms[0]])[:, None] * skeleton.raw_offsets
    legs = list(skeleton.leg_bones)
    scale = np.abs(tgt[legs]).max(-1).sum() / np.abs(src[legs]).max(-1).sum()
    directions = np.concatenate([np.zeros_like(bones[:, :1]), bones / norms[..., None]], axis=1)
    tgt_len = np.linalg.norm(tgt, axis=-1)
    out = np.zeros_like(positions)
    out[:, 0] = positions[:, 0] * scale
    for chain in skeleton.chains:
        for a, b in zip(chain[:-1], chain[1:]):
            out[:, b] = out[:, a] + tgt_len[b] * directions[:, b]
    return out


def canonicalize_joints(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Put a joint sequence (T, J, 3) on the floor, at the XZ origin and facing +Z at frame 0 (Guo et al.).

    The frame-0 facing uses ``(r_hip - l_hip) + (r_shoulder - l_shoulder)`` of ``skeleton.face_joints``, as
    ``process_file`` does.
    """
    positions = np.asarray(positions, dtype=np.float64).copy()
    positions[..., 1] -= positions[..., 1].min()
    positions -= positions[0:1, 0:1] * np.array([1.0, 0.0, 1.0])
    r_hip, l_hip, sdr_r, sdr_l = skeleton.face_joints
    first = positions[:1]
    q0 = _facing_quat((first[:, r_hip] - first[:, l_hip]) + (first[:, sdr_r] - first[:, sdr_l]))[0]
    return R.qrot_np(np.broadcast_to(q0, positions.shape[:-1] + (4,)), positions)


def _inverse_kinematics(positions: np.ndarray, skeleton: Skeleton, sigma: float) -> np.ndarray:
    """Local joint quaternions (T, J, 4) from positions, as Guo et al.'s ``Skeleton.inverse_kinematics_np``.

    Reference quirks kept: the facing direction unpacks ``face_joints`` as ``l_hip, r_hip, sdr_r, sdr_l`` (the hips
    swapped with respect to ``process_file``), so it is ``(l_hip - r_hip) + (r_shoulder - l_shoulder)``; it is
    smoothed with a Gaussian of ``sigma`` frames; and the root rotation of frame 0 is the identity (the motion was
    canonicalised to face +Z there, and ``recover_from_ric`` starts its integration from the identity). Each joint's
    rotation aligns its rest direction (``raw_offsets``) with the observed bone, relative to the accumulated parent
    rotation; every chain starts from the root rotation.
    """
    t = positions.shape[0]
    quats = np.zeros((t, skeleton.num_joints, 4))
    quats[..., 0] = 1.0
    r_hip, l_hip, sdr_r, sdr_l = skeleton.face_joints
    across = (positions[:, l_hip] - positions[:, r_hip]) + (positions[:, sdr_r] - positions[:, sdr_l])
    root_quat = _facing_quat(across, sigma)
    root_quat[0] = np.array([1.0, 0.0, 0.0, 0.0])
    quats[:, 0] = root_quat
    for chain in skeleton.chains:
        rot = root_quat
        for a, b in zip(chain[:-1], chain[1:]):
            u = np.broadcast_to(skeleton.raw_offsets[b], (t, 3))
            v = positions[:, b] - positions[:, a]
            v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
            local = R.qmul_np(R.qinv_np(rot), R.qbetween_np(u, v))
            quats[:, b] = local
            rot = R.qmul_np(rot, local)
    return quats


def joints_to_features(positions: np.ndarray, skeleton: Skeleton, turn_sign_fix: bool = False,
                       dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Compute Guo features (T-1, D) from joint positions (T, J, 3), as HumanML3D's ``process_file``.

    The pose representation of Guo et al., "Generating Diverse and Natural 3D Human Motions from Text" (CVPR 2022).

    Follows EricGuo5513/HumanML3D ``motion_representation.ipynb`` (``process_file``, KIT-ML settings from
    EricGuo5513/text-to-motion ``scripts/motion_process.py``): retarget onto the target skeleton
    (:func:`uniform_skeleton`), put on the floor, move frame 0's root to the XZ origin and turn it to face +Z
    (:func:`canonicalize_joints`); foot contacts are squared per-frame displacements of the foot joints below
    ``skeleton.contact_threshold``; root rotation, linear velocity, rifke positions and local velocities use the
    smoothed facing rotation of :func:`_inverse_kinematics`, whose root rotation is the identity at frame 0.
    Checked against the official code to 1e-5 (``tests/fixtures/humanml3d_features``).

    Parameters
    ----------
    turn_sign_fix: the reference takes ``arcsin`` of the y component of the frame-to-frame root quaternion, whose sign
        flips when the facing crosses +-180 degrees from frame 0's, so :func:`recover_from_ric` turns the wrong way for
        one frame. ``True`` takes the delta with ``w >= 0`` first, which makes the recovery exact through full turns.
    dtype: of the returned arrays (computed in float64; HumanML3D / KIT-ML store float32).

    Returns ``(features, joints)`` where ``joints`` (T-1, J, 3) are the canonicalised positions of the frames that
    the features describe (``recover_from_ric(features)`` returns them; exactly so with ``turn_sign_fix``).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"expected joints of shape (T, {skeleton.num_joints}, 3), got {positions.shape}")
    if positions.shape[0] < 2:
        raise ValueError(f"need at least 2 frames to compute velocities, got {positions.shape[0]}")
    if not np.isfinite(positions).all():
        raise ValueError("joint positions contain NaN or infinite values")
    positions = canonicalize_joints(uniform_skeleton(positions, skeleton), skeleton)
    layout = layout_for(skeleton)
    t, j = positions.shape[:2]

    def contact(idx: tuple[int, int]) -> np.ndarray:
        d = positions[1:, list(idx)] - positions[:-1, list(idx)]
        return ((d**2).sum(-1) < skeleton.contact_threshold).astype(np.float64)

    feet_l, feet_r = contact(skeleton.foot_left), contact(skeleton.foot_right)

    quats = _inverse_kinematics(positions, skeleton, FACING_SMOOTH_SIGMA)
    r_rot = quats[:, 0]  # (T, 4) world -> facing frame
    cont6d = R.quat_to_cont6d_np(quats)  # (T, J, 6)

    velocity = R.qrot_np(r_rot[1:], positions[1:, 0] - positions[:-1, 0])  # (T-1, 3)
    delta = R.qmul_np(r_rot[1:], R.qinv_np(r_rot[:-1]))
    if turn_sign_fix:
        delta = delta * np.where(delta[:, :1] < 0, -1.0, 1.0)
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
    return feats.astype(dtype), positions[:-1].astype(dtype)


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
