import numpy as np
from PIL import Image

from motion_text.data.skeleton import HUMANML3D
from motion_text.viz.skeleton import animation_format, render_animation, render_frame


def test_animation_frames_and_duration(h3d_root, tmp_path, monkeypatch):
    joints = np.load(sorted((h3d_root / "new_joints").glob("0*.npy"))[0])[:24]
    monkeypatch.setattr("motion_text.viz.skeleton.shutil.which", lambda name: None)  # force the GIF writer
    assert animation_format() == "gif"
    path = render_animation(joints, HUMANML3D.chains, HUMANML3D.fps, tmp_path / "clip.mp4")
    assert path.suffix == ".gif"
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert len(durations) == len(joints)
    assert sum(durations) / 1000 == __import__("pytest").approx(len(joints) / HUMANML3D.fps, rel=0.05)


def test_frame_png(h3d_root, tmp_path):
    joints = np.load(sorted((h3d_root / "new_joints").glob("0*.npy"))[0])
    path = render_frame(joints, HUMANML3D.chains, tmp_path / "f.png", frame=5)
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L"))
    assert arr.shape[0] > 100 and (arr < 128).sum() > 50  # something dark (the skeleton) was drawn
