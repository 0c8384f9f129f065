"""Skeletons of the supported datasets: joint names, kinematic chains, rest offsets, fps and body-part groups.

The HumanML3D ("t2m") skeleton is the 22-joint SMPL body used by Guo et al. (CVPR 2022); KIT-ML uses the 21-joint
MMM-derived skeleton of the same work. Chains, raw offsets, foot and facing joints follow
``EricGuo5513/HumanML3D`` (``paramUtil.py``, ``motion_representation.ipynb``).

Coordinate convention of both: Y up, the body faces +Z at rest, and for HumanML3D the subject's left is +X.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Skeleton", "HUMANML3D", "KITML", "SKELETONS", "get_skeleton"]


@dataclass(frozen=True)
class Skeleton:
    """A kinematic skeleton and the dataset facts tied to it.

    Attributes
    ----------
    name: dataset key (``"humanml3d"`` / ``"kitml"``).
    joint_names: one name per joint; index 0 is the root.
    chains: kinematic chains as lists of joint indices, each starting at an already-placed joint.
    raw_offsets: (J, 3) unit directions of each bone in the rest pose (used by inverse kinematics).
    rest_offsets: (J, 3) bone vectors of the rest pose in the dataset's unit (used by the synthetic generator).
    fps: frames per second of the processed features.
    foot_left / foot_right: joint indices used for the foot-contact labels.
    face_joints: (r_hip, l_hip, r_shoulder, l_shoulder) used to find the facing direction.
    parts: named body-part groups (MoT++): root, feet (the contact token), right/left arm, torso, right/left leg.
        Joint indices refer to the 23-token layout of MoT++: 0 = root token, 1..J-1 = joints, J = feet-contact token.
    unit_scale: metres per unit of the dataset's positions (KIT-ML positions are millimetre-scale, see ``KITML``).
    target_lengths: (J,) bone lengths of the target skeleton every motion is retargeted to before its features are
        computed (Guo et al. ``uniform_skeleton``; the target offsets are ``target_lengths[:, None] * raw_offsets``).
        ``None``: the lengths of ``rest_offsets``.
    leg_bones: the two bones (child joint indices) whose lengths set the root scale in ``uniform_skeleton``
        (Guo et al. ``l_idx1, l_idx2``).
    contact_threshold: squared per-frame foot displacement, in the dataset's unit squared, below which a foot joint
        counts as in contact (Guo et al. ``feet_thre``: 0.002 for HumanML3D, 0.05 for KIT-ML).
    """

    name: str
    joint_names: tuple[str, ...]
    chains: tuple[tuple[int, ...], ...]
    raw_offsets: np.ndarray = field(repr=False)
    rest_offsets: np.ndarray = field(repr=False)
    fps: float
    foot_left: tuple[int, int]
    foot_right: tuple[int, int]
    face_joints: tuple[int, int, int, int]
    parts: dict[str, tuple[int, ...]] = field(repr=False)
    unit_scale: float = 1.0
    target_lengths: np.ndarray | None = field(default=None, repr=False)
    leg_bones: tuple[int, int] | None = None
    contact_threshold: float = 0.002

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def target_offsets(self) -> np.ndarray:
        """(J, 3) bone vectors of the target skeleton: ``target_lengths`` along the ``raw_offsets`` directions."""
        lengths = self.target_lengths
        if lengths is None:
            lengths = np.linalg.norm(self.rest_offsets, axis=-1)
        return np.asarray(lengths, dtype=np.float64)[:, None] * self.raw_offsets

    @property
    def parents(self) -> list[int]:
        parents = [-1] * self.num_joints
        for chain in self.chains:
            for a, b in zip(chain[:-1], chain[1:]):
                parents[b] = a
        return parents

    @property
    def left_right_permutation(self) -> list[int]:
        """Index permutation that swaps left and right joints (used for mirroring)."""
        names = list(self.joint_names)
        perm = []
        for n in names:
            if n.startswith("left_"):
                perm.append(names.index("right_" + n[5:]))
            elif n.startswith("right_"):
                perm.append(names.index("left_" + n[6:]))
            else:
                perm.append(names.index(n))
        return perm

    @property
    def num_part_tokens(self) -> int:
        """Tokens per frame in the MoT++ layout: root token + (J-1) joint tokens + feet-contact token."""
        return self.num_joints + 1


_T2M_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
_T2M_CHAINS = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
_T2M_RAW = np.array(
    [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0],
     [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0],
     [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0]], dtype=np.float64,
)  # fmt: skip
# Rest pose (metres), arms in T-pose along +-X; parent of each joint from the chains above.
_T2M_REST = np.array(
    [[0, 0, 0], [0.06, -0.09, 0], [-0.06, -0.09, 0], [0, 0.11, 0], [0, -0.38, 0], [0, -0.38, 0], [0, 0.13, 0],
     [0, -0.40, 0], [0, -0.40, 0], [0, 0.05, 0], [0, -0.05, 0.12], [0, -0.05, 0.12], [0, 0.22, 0],
     [0.08, 0.12, 0], [-0.08, 0.12, 0], [0, 0.10, 0.05], [0.10, 0.03, 0], [-0.10, 0.03, 0], [0.26, 0, 0],
     [-0.26, 0, 0], [0.25, 0, 0], [-0.25, 0, 0]], dtype=np.float64,
)  # fmt: skip
# Bone lengths (metres) of HumanML3D's target skeleton: Guo et al. retarget every motion onto the offsets of AMASS
# example 000021 (``motion_representation.ipynb``, ``tgt_skel.get_offsets_joints(example_data[0])``). That file is not
# distributed; the lengths are measured on the official sample ``HumanML3D/new_joints/012314.npy``
# (EricGuo5513/HumanML3D@9176e8f), whose bones all have these lengths (constant over its frames to 1.3e-6).
_T2M_TARGET_LENGTHS = np.array(
    [0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.14319, 0.432433, 0.425643, 0.057365, 0.143382,
     0.149419, 0.21936, 0.137487, 0.143383, 0.103039, 0.131614, 0.122984, 0.25684, 0.263092, 0.266012, 0.269876],
    dtype=np.float64,
)  # fmt: skip

HUMANML3D = Skeleton(
    name="humanml3d",
    joint_names=_T2M_NAMES,
    chains=_T2M_CHAINS,
    raw_offsets=_T2M_RAW,
    rest_offsets=_T2M_REST,
    fps=20.0,
    foot_left=(7, 10),
    foot_right=(8, 11),
    face_joints=(2, 1, 17, 16),
    target_lengths=_T2M_TARGET_LENGTHS,
    leg_bones=(5, 8),
    contact_threshold=0.002,
    # MoT++ `skeleton_parts_ids_v2['humanml']`; 22 = the feet-contact token.
    parts={
        "root": (0,),
        "feet": (22,),
        "right_arm": (14, 17, 19, 21),
        "left_arm": (13, 16, 18, 20),
        "torso": (3, 6, 9, 12, 15),
        "right_leg": (2, 5, 8, 11),
        "left_leg": (1, 4, 7, 10),
    },
)

# KIT-ML: joint semantics from Guo et al.'s processing code (face joints r_hip=11, l_hip=16, sdr_r=5, sdr_l=8;
# feet r=[14, 15], l=[19, 20]). The rest pose below faces +Z with the subject's left at +X, as for HumanML3D
# (``raw_offsets`` keep Guo et al.'s directions; inverse kinematics only needs them to be fixed).
_KIT_NAMES = (
    "root", "spine_lower", "spine_upper", "neck", "head", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "right_toe_base",
    "right_toe", "left_hip", "left_knee", "left_ankle", "left_toe_base", "left_toe",
)  # fmt: skip
_KIT_CHAINS = ((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10))
_KIT_RAW = np.array(
    [[0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [-1, 0, 0],
     [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0],
     [0, -1, 0], [0, 0, 1], [0, 0, 1]], dtype=np.float64,
)  # fmt: skip
# Rest pose in KIT-ML's unit. KIT-ML positions are millimetre-scale, but its processed body stands about 1000 units
# tall: the real ``Mean.npy`` has a root height of 559.6 and ric heights of 636 / 743 / 782 / 803 for joints 1-4, with
# the hips exactly lateral of the root (x = -+44.9 at the root height) and the shoulders lateral of joint 3. The
# offsets below follow those figures (a 1 m body in millimetres); KIT-ML's target skeleton (Guo et al.'s example
# 03950) is not distributed, so these rest lengths (whole numbers, exact in float32) serve as the target lengths.
_KIT_REST = np.array(
    [[0, 0, 0], [0, 76, 0], [0, 107, 0], [0, 39, 0], [0, 20, 15], [-97, 0, 0], [0, -165, 0], [0, -140, 0],
     [97, 0, 0], [0, -165, 0], [0, -140, 0], [-45, 0, 0], [0, -250, 0], [0, -250, 0], [0, -36, 48],
     [0, -20, 48], [45, 0, 0], [0, -250, 0], [0, -250, 0], [0, -36, 48], [0, -20, 48]], dtype=np.float64,
)  # fmt: skip

KITML = Skeleton(
    name="kitml",
    joint_names=_KIT_NAMES,
    chains=_KIT_CHAINS,
    raw_offsets=_KIT_RAW,
    rest_offsets=_KIT_REST,
    fps=12.5,
    foot_left=(19, 20),
    foot_right=(14, 15),
    face_joints=(11, 16, 5, 8),
    leg_bones=(17, 18),
    contact_threshold=0.05,
    # Same seven groups for the 21-joint skeleton; 21 = the feet-contact token.
    parts={
        "root": (0,),
        "feet": (21,),
        "right_arm": (5, 6, 7),
        "left_arm": (8, 9, 10),
        "torso": (1, 2, 3, 4),
        "right_leg": (11, 12, 13, 14, 15),
        "left_leg": (16, 17, 18, 19, 20),
    },
    unit_scale=1e-3,
)

SKELETONS: dict[str, Skeleton] = {"humanml3d": HUMANML3D, "kitml": KITML}


def get_skeleton(name: str) -> Skeleton:
    """Return the skeleton registered under ``name``; raises ``ValueError`` listing the known ones."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None
