"""Skeleton renders with matplotlib: an MP4 (GIF when ffmpeg is absent) animation and a single-frame PNG.

Joints are (T, J, 3), Y up. Each kinematic chain is drawn as a poly-line; a ground plane and the root trajectory are
drawn under the body. matplotlib is imported lazily (CLI start-up time).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

__all__ = ["render_frame", "render_animation", "animation_format"]

_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def animation_format() -> str:
    """``"mp4"`` when an ffmpeg binary is available, else ``"gif"``."""
    return "mp4" if shutil.which("ffmpeg") else "gif"


def _setup(joints: np.ndarray, title: str | None):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4, 4), dpi=80)
    ax = fig.add_subplot(111, projection="3d")
    ax.view_init(elev=15, azim=-60)
    mins, maxs = joints.min((0, 1)), joints.max((0, 1))
    center = (mins + maxs) / 2
    radius = max((maxs - mins).max() / 2, 1e-6)
    # matplotlib's z axis is up: plot (x, z, y)
    ax.set_xlim(center[0] - radius, center[0] + radius)
    ax.set_ylim(center[2] - radius, center[2] + radius)
    ax.set_zlim(mins[1], mins[1] + 2 * radius)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8, wrap=True)
    gx, gz = np.meshgrid(np.linspace(center[0] - radius, center[0] + radius, 2),
                         np.linspace(center[2] - radius, center[2] + radius, 2))
    ax.plot_surface(gx, gz, np.full_like(gx, mins[1]), color="0.85", alpha=0.5)
    ax.plot(joints[:, 0, 0], joints[:, 0, 2], np.full(len(joints), mins[1]), color="0.4", lw=1)
    return fig, ax, plt


def _draw_pose(ax, pose: np.ndarray, chains) -> list:
    artists = []
    for k, chain in enumerate(chains):
        c = list(chain)
        (line,) = ax.plot(pose[c, 0], pose[c, 2], pose[c, 1], color=_COLORS[k % len(_COLORS)], lw=2.5, marker="o",
                          ms=2)
        artists.append((line, c))
    return artists


def _check(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[-1] != 3 or len(joints) == 0:
        raise ValueError(f"expected joints of shape (T, J, 3) with T >= 1, got {joints.shape}")
    return joints


def render_frame(joints: np.ndarray, chains, path: str | Path, frame: int = 0, title: str | None = None) -> Path:
    """Write one frame of a joint sequence (T, J, 3) as a PNG."""
    joints = _check(joints)
    fig, ax, plt = _setup(joints, title)
    _draw_pose(ax, joints[frame], chains)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def render_animation(joints: np.ndarray, chains, fps: float, path: str | Path, title: str | None = None,
                     beats: np.ndarray | None = None) -> Path:
    """Write an animation of (T, J, 3) joints at ``fps``; MP4 with ffmpeg, otherwise a GIF (suffix adjusted).

    ``beats``: optional frame indices (e.g. music beats) at which a marker is shown.
    Returns the written path (its suffix tells the format).
    """
    from matplotlib import animation

    joints = _check(joints)
    fmt = animation_format()
    path = Path(path).with_suffix("." + fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax, plt = _setup(joints, title)
    artists = _draw_pose(ax, joints[0], chains)
    beat_set = set(int(b) for b in beats) if beats is not None else set()
    marker = ax.text2D(0.05, 0.92, "", transform=ax.transAxes, color="red", fontsize=14)

    def update(t: int):
        for line, c in artists:
            line.set_data_3d(joints[t, c, 0], joints[t, c, 2], joints[t, c, 1])
        marker.set_text("\u25cf beat" if t in beat_set else "")
        return [a for a, _ in artists] + [marker]

    anim = animation.FuncAnimation(fig, update, frames=len(joints), interval=1000 / fps, blit=False)
    writer = animation.FFMpegWriter(fps=fps) if fmt == "mp4" else animation.PillowWriter(fps=fps)
    anim.save(str(path), writer=writer)
    plt.close(fig)
    return path
