"""``retrieve --render``: one animation per result at the dataset's fps; frames rasterised for TensorBoard."""

import json

import numpy as np
import pytest
from PIL import Image

from motion_text.cli import main
from motion_text.data.features import recover_from_ric
from motion_text.data.skeleton import HUMANML3D
from motion_text.tools import retrieve as R
from motion_text.viz.skeleton import render_frame
from motion_text.viz.tensorboard import render_frames


def _gif_frames(path):
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    return durations


def test_render_writes_one_gif_per_hit_at_real_fps(trained_tmr, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("motion_text.viz.skeleton.shutil.which", lambda name: None)  # no ffmpeg: GIF
    out = tmp_path / "renders"
    capsys.readouterr()
    main(["retrieve", "--ckpt", trained_tmr.ckpt, "--data", trained_tmr.data, "--query", "a person crawls forward",
          "-k", "2", "--render", str(out), "--json", "--quiet"])
    hits = json.loads(capsys.readouterr().out)["results"][0]["hits"]
    files = sorted(out.iterdir())
    assert [f.suffix for f in files] == [".gif", ".gif"] and [h["render"] for h in hits] == [str(f) for f in files]
    dataset = R.split_dataset(R.load_datamodule(trained_tmr.data), "test")
    length = {dataset.item(i).key: dataset.item(i).length for i in range(len(dataset))}
    for h in hits:
        durations = _gif_frames(h["render"])
        t = length[h["key"]]
        assert len(durations) == t  # the whole item, not the max_len crop of the encoder
        assert sum(durations) / 1000 == pytest.approx(t / HUMANML3D.fps, rel=0.02)


def test_item_joints_are_the_recovered_features(trained_tmr):
    dataset = R.split_dataset(R.load_datamodule(trained_tmr.data), "test")
    item = dataset.item(0)
    joints, skel = R.item_joints(dataset, 0)
    raw = np.load(item.path)[item.start : item.end]
    ref = recover_from_ric(raw.astype(np.float64)).numpy()
    assert skel is HUMANML3D and joints.shape == (item.length, 22, 3)
    assert np.allclose(joints, ref, atol=1e-4)  # new_joints/ on disk = recover_from_ric of the features


def test_render_frames_and_png(trained_tmr, tmp_path):
    dataset = R.split_dataset(R.load_datamodule(trained_tmr.data), "test")
    kick = next(i for i in range(len(dataset)) if "kick" in dataset.item(i).captions[0])
    joints, skel = R.item_joints(dataset, kick)
    frames = render_frames(joints, skel.chains, [0, len(joints) // 2, len(joints) - 1], title="kick")
    assert frames.shape[0] == 3 and frames.shape[-1] == 3 and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])  # the pose moved
    png = render_frame(joints, skel.chains, tmp_path / "kick.png", frame=len(joints) // 2,
                       title=dataset.item(kick).captions[0])
    with Image.open(png) as im:
        arr = np.asarray(im.convert("L"))
    assert (arr < 128).sum() > 50
