import shutil

import numpy as np
import pytest

from motion_text.data.readers import DataError, parse_caption_line, read_guo_split, read_tmr_split
from motion_text.data.skeleton import HUMANML3D, KITML


def _expected_items(root, split, fps, lengths=(40, 200)):
    """Independent count (Guo et al.'s rule): ids whose whole motion passes the length filter; in those, one item for
    the whole-motion captions and one per sub-motion caption that passes it."""
    ids = (root / f"{split}.txt").read_text().split()
    n = 0
    for mid in ids:
        frames = np.load(root / "new_joint_vecs" / f"{mid}.npy").shape[0]
        if not lengths[0] <= frames < lengths[1]:
            continue
        spans, whole = [], False
        for line in (root / "texts" / f"{mid}.txt").read_text().splitlines():
            _, _, s, e = line.split("#")
            s, e = float(s), float(e)
            if (s, e) == (0.0, 0.0):
                whole = True
            else:
                spans.append(min(int(e * fps), frames) - int(s * fps))
        n += whole + sum(lengths[0] <= b < lengths[1] for b in spans)
    return n


@pytest.mark.parametrize("split", ["train", "test"])
def test_item_count_matches_files(h3d_root, split):
    data = read_guo_split(h3d_root, split, HUMANML3D)
    assert len(data.items) == _expected_items(h3d_root, split, 20.0)
    subs = [it for it in data.items if it.key != it.motion_id]
    if split == "train":
        assert subs, "the generator writes sub-motion captions"
    assert data.report.total == len((h3d_root / f"{split}.txt").read_text().split())


def test_sub_motion_cut_frames(h3d_root):
    data = read_guo_split(h3d_root, "train", HUMANML3D, lengths=(1, 10**6))
    sub = next(it for it in data.items if it.key != it.motion_id)
    line = next(ln for ln in (h3d_root / "texts" / f"{sub.motion_id}.txt").read_text().splitlines()
                if not ln.endswith("#0.0#0.0"))
    caption, start, end = parse_caption_line(line)
    assert (sub.start, sub.end) == (int(start * 20), int(end * 20))
    assert sub.captions == [caption]
    assert sub.key == f"{sub.motion_id}_{sub.start}_{sub.end}"


@pytest.mark.parametrize("span_fps,factor", [(20.0, 20), (None, 12.5)])
def test_kit_span_fps(kit_root, span_fps, factor):
    """Guo et al. cut KIT-ML spans at 20 frames per second too (the default); ``span_fps=None`` uses its 12.5."""
    data = read_guo_split(kit_root, "train", KITML, lengths=(1, 10**6), span_fps=span_fps)
    sub = next(it for it in data.items if it.key != it.motion_id)
    line = next(ln for ln in (kit_root / "texts" / f"{sub.motion_id}.txt").read_text().splitlines()
                if not ln.endswith("#0.0#0.0"))
    _, start, end = parse_caption_line(line)
    frames = np.load(sub.path, mmap_mode="r").shape[0]
    assert (sub.start, sub.end) == (int(start * factor), min(int(end * factor), frames))


def test_mirrors_optional(h3d_root):
    with_m = read_guo_split(h3d_root, "test", HUMANML3D)
    without = read_guo_split(h3d_root, "test", HUMANML3D, include_mirrors=False)
    assert any(it.is_mirror for it in with_m.items)
    assert not any(it.is_mirror for it in without.items)


def test_tmr_layout(h3d_tmr_root):
    data = read_tmr_split(h3d_tmr_root, "train", HUMANML3D)
    assert data.items and all(it.path.exists() for it in data.items)
    assert data.mean.shape == (263,)


def test_length_filter_counted(h3d_root):
    data = read_guo_split(h3d_root, "train", HUMANML3D, lengths=(80, 200))
    assert data.report.reasons["too short"] > 0
    assert "skipped" in data.report.message()
    with pytest.raises(DataError, match="too short"):
        read_guo_split(h3d_root, "train", HUMANML3D, lengths=(80, 200), strict=True)


def _copy(root, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(root, dst)
    return dst


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        read_guo_split(tmp_path / "nope", "train", HUMANML3D)


def test_missing_split_file(h3d_root, tmp_path):
    root = _copy(h3d_root, tmp_path)
    (root / "val.txt").unlink()
    with pytest.raises(DataError, match=r"val\.txt: split file not found"):
        read_guo_split(root, "val", HUMANML3D)


def test_id_without_motion_file(h3d_root, tmp_path):
    root = _copy(h3d_root, tmp_path)
    with open(root / "val.txt", "a") as f:
        f.write("999999\n")
    with pytest.raises(DataError, match=r"999999\.npy: motion file for id '999999'"):
        read_guo_split(root, "val", HUMANML3D)
    data = read_guo_split(root, "val", HUMANML3D, allow_missing=True)
    assert data.report.reasons["motion file missing"] == 1


def test_wrong_feature_dim(h3d_root, tmp_path):
    root = _copy(h3d_root, tmp_path)
    mid = (root / "val.txt").read_text().split()[0]
    np.save(root / "new_joint_vecs" / f"{mid}.npy", np.zeros((50, 251), np.float32))
    with pytest.raises(DataError, match=rf"{mid}\.npy: expected features of shape \(T, 263\), found \(50, 251\)"):
        read_guo_split(root, "val", HUMANML3D)
