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
    unit_scale: metres per unit of the dataset's positions (KIT-ML positions are in millimetres).
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

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

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
# Rest pose in millimetres (KIT-ML positions are stored in mm); arms hang down as in the raw offsets.
_KIT_REST = np.array(
    [[0, 0, 0], [0, 110, 0], [0, 180, 0], [0, 220, 0], [0, 120, 40], [-170, 0, 0], [0, -270, 0], [0, -250, 0],
     [170, 0, 0], [0, -270, 0], [0, -250, 0], [-90, -40, 0], [0, -420, 0], [0, -420, 0], [0, -60, 100],
     [0, 0, 60], [90, -40, 0], [0, -420, 0], [0, -420, 0], [0, -60, 100], [0, 0, 60]], dtype=np.float64,
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
