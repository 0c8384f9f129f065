"""Procedural human motions on the real skeletons: actions with attributes, composed into sequences.

A motion is described by a list of :class:`ActionSpec` (action name + attributes). Each action renders per-frame pose
parameters (joint angles, root velocity in the body frame, yaw rate, root height offset); they are concatenated,
integrated into a root trajectory and turned into joint positions by forward kinematics on the skeleton's rest pose.
The text of a motion is generated from the same specs, so the text determines the motion up to noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from motion_text.data.skeleton import HUMANML3D, Skeleton

__all__ = ["ActionSpec", "ACTIONS", "sample_program", "render_program", "forward_kinematics"]

ACTIONS = (
    "walk", "run", "jump", "kick", "wave", "punch", "squat", "sit_down", "turn", "raise_arms", "side_step", "crawl",
)  # fmt: skip

#: joint roles of each skeleton for the procedural rig: (left, right) pairs; ``jitter``: std of the i.i.d. noise on
#: every joint and frame, in metres of a HumanML3D-sized body. KIT-ML's contact threshold of 0.05 unit^2 only counts
#: a foot moving under 0.22 units per frame, and the real Mean.npy has foot contacts in 1.7 % of the frames; a jitter
#: of 0.33 mm (0.19 KIT-ML units) gives the synthetic set the same rate (HumanML3D's 0.002 m^2 is far above jitter).
_RIG = {
    "humanml3d": dict(spine=(3, 6, 9), hip=(1, 2), knee=(4, 5), shoulder=(16, 17), elbow=(18, 19), arms_tpose=True,
                      jitter=0.002),
    "kitml": dict(spine=(1, 2), hip=(16, 11), knee=(17, 12), shoulder=(8, 5), elbow=(9, 6), arms_tpose=False,
                  jitter=0.00033),
}

_REFERENCE_BODY = HUMANML3D  # the body the rig's distances (metres) are authored for

_PARAMS = ("pitch", "spine", "hip_flex_l", "hip_flex_r", "hip_abd_l", "hip_abd_r", "knee_l", "knee_r",
           "sh_flex_l", "sh_flex_r", "sh_abd_l", "sh_abd_r", "elbow_l", "elbow_r")  # fmt: skip


@dataclass
class ActionSpec:
    """One action with its attributes. ``limb``: left/right; ``direction``: forward/backward/left/right."""

    action: str
    direction: str | None = None
    speed: str = "normal"  # slowly | normal | quickly
    limb: str | None = None
    reps: int = 1
    angle: int = 90  # turn angle in degrees
    start: float = field(default=0.0, init=False)  # seconds from the clip start, set by rendering
    duration: float = field(default=0.0, init=False)  # seconds, set by rendering


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(a.shape + (3, 3))


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(a.shape + (3, 3))


def forward_kinematics(local_rot: np.ndarray, root_pos: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Joint positions (T, J, 3) from local rotations (T, J, 3, 3) and root positions (T, 3).

    A joint's position is its parent's position plus the parent's global rotation applied to the rest offset.
    """
    t, j = local_rot.shape[:2]
    parents = skeleton.parents
    glob = np.zeros_like(local_rot)
    pos = np.zeros((t, j, 3))
    glob[:, 0] = local_rot[:, 0]
    pos[:, 0] = root_pos
    order = [0] + [b for chain in skeleton.chains for b in chain[1:]]
    for b in order[1:]:
        p = parents[b]
        pos[:, b] = pos[:, p] + np.einsum("tij,j->ti", glob[:, p], skeleton.rest_offsets[b])
        glob[:, b] = glob[:, p] @ local_rot[:, b]
    return pos


# ------------------------------------------------------------------------------------------------------------------
# actions: each returns (n_frames, params dict, forward velocity, lateral velocity, yaw rate, height offset)
# angles in radians, velocities in metres / second, yaw rate in rad / second
# ------------------------------------------------------------------------------------------------------------------

_SPEED = {"slowly": 0.7, "normal": 1.0, "quickly": 1.45}


def _base(n: int) -> dict[str, np.ndarray]:
    p = {k: np.zeros(n) for k in _PARAMS}
    p["sh_abd_l"][:] = p["sh_abd_r"][:] = np.deg2rad(8)
    p["elbow_l"][:] = p["elbow_r"][:] = np.deg2rad(10)
    return p


def _bump(x: np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 over x in [0, 1]."""
    return np.sin(np.pi * np.clip(x, 0, 1)) ** 2


def _gait(spec: ActionSpec, fps: float, run: bool) -> tuple:
    f = _SPEED[spec.speed]
    dur = (3.0 if run else 3.5) / np.sqrt(f)
    n = int(dur * fps)
    t = np.arange(n) / fps
    freq = (2.6 if run else 1.7) * f
    amp = np.deg2rad(40 if run else 25) * (0.8 + 0.2 * f)
    ph = 2 * np.pi * freq * t
    p = _base(n)
    p["hip_flex_l"], p["hip_flex_r"] = amp * np.sin(ph), -amp * np.sin(ph)
    knee_amp = np.deg2rad(85 if run else 45)
    p["knee_l"] = knee_amp * np.clip(np.sin(ph + np.pi / 2), 0, None)
    p["knee_r"] = knee_amp * np.clip(np.sin(ph + 3 * np.pi / 2), 0, None)
    p["sh_flex_l"], p["sh_flex_r"] = -0.8 * p["hip_flex_l"], -0.8 * p["hip_flex_r"]
    if run:
        p["elbow_l"][:] = p["elbow_r"][:] = np.deg2rad(90)
        p["pitch"][:] = np.deg2rad(12)
    sign = -1.0 if spec.direction == "backward" else 1.0
    v = sign * (3.0 if run else 1.2) * f * np.ones(n)
    height = (0.05 if run else 0.02) * np.abs(np.sin(ph))
    return n, p, v, np.zeros(n), np.zeros(n), height


def _jump(spec: ActionSpec, fps: float) -> tuple:
    rep_n = int(1.1 * fps)
    n = rep_n * spec.reps
    x = (np.arange(n) % rep_n) / rep_n
    p = _base(n)
    crouch = _bump(x / 0.3) * (x < 0.3) + _bump((x - 0.75) / 0.25) * (x >= 0.75)
    flight = np.clip(np.sin(np.pi * (x - 0.3) / 0.45), 0, None) * ((x >= 0.3) & (x < 0.75))
    for s in "lr":
        p[f"knee_{s}"] = np.deg2rad(70) * crouch
        p[f"hip_flex_{s}"] = np.deg2rad(50) * crouch
        p[f"sh_abd_{s}"] = np.deg2rad(8) + np.deg2rad(140) * flight
    p["pitch"] = np.deg2rad(15) * crouch
    height = 0.45 * flight - 0.2 * crouch
    v = (1.6 * flight) if spec.direction == "forward" else np.zeros(n)
    return n, p, v, np.zeros(n), np.zeros(n), height


def _limb_reps(spec: ActionSpec, fps: float, rep_s: float) -> tuple[int, np.ndarray, str]:
    rep_n = int(rep_s / _SPEED[spec.speed] * fps)
    n = rep_n * spec.reps
    return n, (np.arange(n) % rep_n) / rep_n, "l" if spec.limb == "left" else "r"


def _kick(spec: ActionSpec, fps: float) -> tuple:
    n, x, s = _limb_reps(spec, fps, 0.9)
    p = _base(n)
    p[f"hip_flex_{s}"] = np.deg2rad(85) * _bump(x)
    p[f"knee_{s}"] = np.deg2rad(70) * _bump(x * 2) * (x < 0.5)
    other = "r" if s == "l" else "l"
    p[f"sh_abd_{other}"] = np.deg2rad(8 + 40 * 1.0) * np.ones(n)
    p["pitch"] = -np.deg2rad(10) * _bump(x)
    return n, p, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)


def _wave(spec: ActionSpec, fps: float) -> tuple:
    n, x, s = _limb_reps(spec, fps, 0.6)
    n += int(0.8 * fps)  # raise and lower around the waves
    t = np.arange(n) / (n - 1)
    p = _base(n)
    up = np.clip(np.minimum(t / 0.15, (1 - t) / 0.15), 0, 1)
    p[f"sh_abd_{s}"] = np.deg2rad(8) + np.deg2rad(140) * up
    ph = 2 * np.pi * spec.reps * np.clip((t - 0.15) / 0.7, 0, 1)
    p[f"elbow_{s}"] = np.deg2rad(10) + up * np.deg2rad(35) * (1 - np.cos(ph))
    return n, p, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)


def _punch(spec: ActionSpec, fps: float) -> tuple:
    n, x, s = _limb_reps(spec, fps, 0.7)
    p = _base(n)
    ext = _bump(x)
    p[f"sh_flex_{s}"] = np.deg2rad(40) + np.deg2rad(50) * ext
    p[f"elbow_{s}"] = np.deg2rad(120) * (1 - ext)
    other = "r" if s == "l" else "l"
    p[f"sh_flex_{other}"][:] = np.deg2rad(40)
    p[f"elbow_{other}"][:] = np.deg2rad(120)
    return n, p, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)


def _squat(spec: ActionSpec, fps: float) -> tuple:
    rep_n = int(1.6 / _SPEED[spec.speed] * fps)
    n = rep_n * spec.reps
    b = _bump((np.arange(n) % rep_n) / rep_n)
    p = _base(n)
    for s in "lr":
        p[f"knee_{s}"] = np.deg2rad(110) * b
        p[f"hip_flex_{s}"] = np.deg2rad(95) * b
        p[f"sh_flex_{s}"] = np.deg2rad(80) * b
    p["pitch"] = np.deg2rad(35) * b
    return n, p, np.zeros(n), np.zeros(n), np.zeros(n), -0.38 * b


def _sit_down(spec: ActionSpec, fps: float) -> tuple:
    n = int(2.6 * fps)
    x = np.clip(np.arange(n) / (1.4 * fps), 0, 1)
    s_ = 0.5 - 0.5 * np.cos(np.pi * x)
    p = _base(n)
    for s in "lr":
        p[f"knee_{s}"] = np.deg2rad(90) * s_
        p[f"hip_flex_{s}"] = np.deg2rad(90) * s_
    p["pitch"] = np.deg2rad(20) * np.sin(np.pi * x)
    return n, p, np.zeros(n), np.zeros(n), np.zeros(n), -0.45 * s_


def _turn(spec: ActionSpec, fps: float) -> tuple:
    n = int((1.2 + spec.angle / 180) * fps)
    t = np.arange(n) / fps
    p = _base(n)
    ph = 2 * np.pi * 1.6 * t
    p["hip_flex_l"], p["hip_flex_r"] = np.deg2rad(12) * np.sin(ph), -np.deg2rad(12) * np.sin(ph)
    sign = 1.0 if spec.direction == "left" else -1.0
    yaw = sign * np.deg2rad(spec.angle) / (n / fps) * np.ones(n)
    return n, p, np.zeros(n), np.zeros(n), yaw, np.zeros(n)


def _raise_arms(spec: ActionSpec, fps: float) -> tuple:
    n = int(2.4 * fps)
    t = np.arange(n) / (n - 1)
    up = np.clip(np.minimum(t / 0.35, (1 - t) / 0.35), 0, 1)
    p = _base(n)
    for s in "lr":
        p[f"sh_abd_{s}"] = np.deg2rad(8) + np.deg2rad(160) * up
    return n, p, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)


def _side_step(spec: ActionSpec, fps: float) -> tuple:
    rep_n = int(0.8 / _SPEED[spec.speed] * fps)
    n = rep_n * spec.reps
    b = _bump((np.arange(n) % rep_n) / rep_n)
    p = _base(n)
    lead = "l" if spec.direction == "left" else "r"
    p[f"hip_abd_{lead}"] = np.deg2rad(25) * b
    sign = 1.0 if spec.direction == "left" else -1.0
    lat = sign * 0.5 / (rep_n / fps) * np.ones(n)
    return n, p, np.zeros(n), lat, np.zeros(n), np.zeros(n)


def _crawl(spec: ActionSpec, fps: float) -> tuple:
    n = int(4.0 * fps)
    t = np.arange(n) / fps
    ramp = np.clip(t / 0.8, 0, 1)
    ph = 2 * np.pi * 1.0 * t
    p = _base(n)
    p["pitch"] = np.deg2rad(75) * ramp
    for s, sh in (("l", 0.0), ("r", np.pi)):
        p[f"hip_flex_{s}"] = ramp * (np.deg2rad(80) + np.deg2rad(15) * np.sin(ph + sh))
        p[f"knee_{s}"] = ramp * np.deg2rad(95)
        p[f"sh_flex_{s}"] = ramp * (np.deg2rad(80) + np.deg2rad(15) * np.sin(ph + sh + np.pi))
    return n, p, 0.35 * ramp, np.zeros(n), np.zeros(n), -0.5 * ramp


_RENDER = {
    "walk": lambda s, f: _gait(s, f, run=False),
    "run": lambda s, f: _gait(s, f, run=True),
    "jump": _jump,
    "kick": _kick,
    "wave": _wave,
    "punch": _punch,
    "squat": _squat,
    "sit_down": _sit_down,
    "turn": _turn,
    "raise_arms": _raise_arms,
    "side_step": _side_step,
    "crawl": _crawl,
}


def sample_program(rng: np.random.Generator) -> list[ActionSpec]:
    """Draw one or two actions with random attributes."""
    n_actions = 1 if rng.random() < 0.6 else 2
    specs = []
    for _ in range(n_actions):
        a = ACTIONS[rng.integers(len(ACTIONS))]
        spec = ActionSpec(a)
        if a in ("walk", "run"):
            spec.direction = "backward" if (a == "walk" and rng.random() < 0.3) else "forward"
            spec.speed = ("slowly", "normal", "quickly")[rng.integers(3)]
        elif a == "jump":
            spec.direction = "forward" if rng.random() < 0.5 else None
            spec.reps = int(rng.integers(1, 4))
        elif a in ("kick", "wave", "punch"):
            spec.limb = "left" if rng.random() < 0.5 else "right"
            spec.reps = int(rng.integers(1, 4))
        elif a == "squat":
            spec.reps = int(rng.integers(1, 3))
        elif a == "turn":
            spec.direction = "left" if rng.random() < 0.5 else "right"
            spec.angle = 90 if rng.random() < 0.6 else 180
        elif a == "side_step":
            spec.direction = "left" if rng.random() < 0.5 else "right"
            spec.reps = int(rng.integers(2, 4))
        specs.append(spec)
    return specs


def render_program(specs: list[ActionSpec], skeleton: Skeleton, rng: np.random.Generator,
                   noise: float = 1.0) -> np.ndarray:
    """Joint positions (T, J, 3) in the skeleton's unit for a list of actions (sets each spec's duration)."""
    fps = skeleton.fps
    parts = []
    idle0 = int(rng.uniform(0.2, 0.5) * fps)
    offset = idle0
    for spec in specs:
        n, p, v, lat, yaw, h = _RENDER[spec.action](spec, fps)
        spec.start, spec.duration = offset / fps, n / fps
        offset += n
        parts.append((n, p, v, lat, yaw, h))
    idle1 = int(rng.uniform(0.2, 0.5) * fps)
    # concatenate with idle frames before and after
    n_total = idle0 + sum(x[0] for x in parts) + idle1
    params = _base(n_total)
    vel, lat, yawr, height = (np.zeros(n_total) for _ in range(4))
    o = idle0
    for n, p, v, la, y, h in parts:
        for k in _PARAMS:
            params[k][o : o + n] = p[k]
        vel[o : o + n], lat[o : o + n], yawr[o : o + n], height[o : o + n] = v, la, y, h
        o += n
    # smooth transitions between actions (moving average over ~0.25 s) and add per-motion jitter
    k = max(1, int(0.25 * fps))
    kern = np.ones(k) / k
    for key in _PARAMS:
        x = np.pad(params[key], (k // 2, k - 1 - k // 2), mode="edge")
        params[key] = np.convolve(x, kern, mode="valid") + noise * np.deg2rad(1.5) * rng.standard_normal()
    for arr in (vel, lat, yawr, height):
        x = np.pad(arr, (k // 2, k - 1 - k // 2), mode="edge")
        arr[:] = np.convolve(x, kern, mode="valid")

    return _pose_to_joints(params, vel, lat, yawr, height, skeleton, rng, noise)


def _leg_height(skeleton: Skeleton) -> float:
    """Height of the root above the ankle in the rest pose, in the skeleton's unit."""
    rest, parents = skeleton.rest_offsets, skeleton.parents
    hip, knee = _RIG[skeleton.name]["hip"][0], _RIG[skeleton.name]["knee"][0]
    return -(rest[hip][1] + rest[knee][1] + rest[parents.index(knee)][1])


def _pose_to_joints(params, vel, lat, yawr, height, skeleton: Skeleton, rng, noise) -> np.ndarray:
    fps, n = skeleton.fps, len(vel)
    rig = _RIG[skeleton.name]
    # distances are authored in metres for a HumanML3D-sized body and scaled with the skeleton's legs (KIT-ML's body
    # is ~1000 units tall, see ``skeleton.KITML``), so speeds stay in proportion to the body
    leg = _leg_height(skeleton)
    scale = leg / _leg_height(_REFERENCE_BODY)
    yaw0 = rng.uniform(-np.pi, np.pi)
    yaw = yaw0 + np.cumsum(yawr) / fps
    heading_v = np.stack([np.sin(yaw) * vel + np.cos(yaw) * lat, np.zeros(n), np.cos(yaw) * vel - np.sin(yaw) * lat],
                         -1)
    root = np.cumsum(heading_v, 0) / fps * scale
    root[:, 1] = leg + height * scale
    root[:, [0, 2]] += rng.uniform(-1, 1, 2) * scale

    local = np.broadcast_to(np.eye(3), (n, skeleton.num_joints, 3, 3)).copy()
    local[:, 0] = _ry(yaw) @ _rx(params["pitch"])
    for j in rig["spine"]:
        local[:, j] = _rx(params["spine"] / len(rig["spine"]))
    for side, sgn, hj, kj, sj, ej in (("l", 1.0, rig["hip"][0], rig["knee"][0], rig["shoulder"][0], rig["elbow"][0]),
                                      ("r", -1.0, rig["hip"][1], rig["knee"][1], rig["shoulder"][1], rig["elbow"][1])):
        local[:, hj] = _rx(-params[f"hip_flex_{side}"]) @ _rz(sgn * params[f"hip_abd_{side}"])
        local[:, kj] = _rx(params[f"knee_{side}"])
        # ``down``: rotates the rest arm direction to hanging down (T-pose skeletons)
        down = _rz(np.full(n, -sgn * np.pi / 2)) if rig["arms_tpose"] else np.broadcast_to(np.eye(3), (n, 3, 3))
        local[:, sj] = _rx(-params[f"sh_flex_{side}"]) @ _rz(sgn * params[f"sh_abd_{side}"]) @ down
        local[:, ej] = np.swapaxes(down, -1, -2) @ _rx(-params[f"elbow_{side}"]) @ down
    joints = forward_kinematics(local, root, skeleton)
    joints += noise * rig["jitter"] * scale * rng.standard_normal(joints.shape)
    return joints
