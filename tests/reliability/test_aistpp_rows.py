"""AIST++ and audio rows: motion pickles are read with the restricted unpickler and checked field by field; the split
reader drops ignore-list / incomplete sequences by reason; unreadable, empty or silent wavs stop with the file name."""

from __future__ import annotations

import logging
import os
import pickle
import wave

import numpy as np
import pytest

from motion_text.data.aistpp import load_motion_pkl, music_id_of, read_aistpp_split, save_motion_pkl
from motion_text.data.music import load_wav
from motion_text.data.readers import DataError


class RunsCommand:
    """A pickle payload that would run a shell command when unpickled with plain ``pickle.load``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _fields(n: int = 4, **override):
    d = {"smpl_poses": np.zeros((n, 72), np.float32), "smpl_trans": np.zeros((n, 3), np.float32),
         "smpl_scaling": np.ones(1, np.float32)}
    d.update(override)
    return {k: v for k, v in d.items() if v is not None}


PICKLES = [
    ("missing keys", lambda m: _fields(smpl_trans=None, smpl_scaling=None),
     r"missing field\(s\) \['smpl_trans', 'smpl_scaling'\]"),
    ("payload a list", lambda m: [1, 2], r"expected a dict with smpl_poses/smpl_trans/smpl_scaling, got list"),
    ("code-running global", lambda m: _fields(smpl_poses=RunsCommand(m)), r"global '\w+\.system' is not allowed"),
    ("poses wrong shape", lambda m: _fields(smpl_poses=np.zeros((4, 63))), r"smpl_poses must be \(N, 72\)"),
    ("trans frame count", lambda m: _fields(smpl_trans=np.zeros((3, 3))), r"smpl_trans must be \(4, 3\)"),
    ("poses NaN", lambda m: _fields(smpl_poses=np.full((4, 72), np.nan)), r"non-finite values"),
    ("scaling zero", lambda m: _fields(smpl_scaling=np.zeros(1)), r"smpl_scaling must be one positive number"),
    ("poses a string", lambda m: _fields(smpl_poses="not an array"), r"must be numeric arrays"),
    ("trans a dict", lambda m: _fields(smpl_trans={"x": 1}), r"must be numeric arrays"),
    ("poses ragged", lambda m: _fields(smpl_poses=[[0.0] * 72, [0.0]]), r"must be numeric arrays"),
]


@pytest.mark.parametrize("payload,pattern", [p[1:] for p in PICKLES], ids=[p[0] for p in PICKLES])
def test_motion_pickle_rows(tmp_path, payload, pattern):
    path, marker = tmp_path / "gBR_sBM_cAll_d04_mBR0_ch01.pkl", tmp_path / "pwned"
    path.write_bytes(pickle.dumps(payload(marker)))
    with pytest.raises(DataError, match=pattern) as err:
        load_motion_pkl(path)
    assert str(path) in str(err.value)
    assert not marker.exists(), "nothing in the pickle ran"


def test_truncated_motion_pickle(tmp_path):
    path = save_motion_pkl(tmp_path / "a.pkl", np.zeros((4, 72)), np.zeros((4, 3)))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match=rf"{path}: not a readable AIST\+\+ motion pickle"):
        load_motion_pkl(path)


def _wav(path, samples: np.ndarray, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _tone(n: int = 800) -> np.ndarray:
    return 0.5 * np.sin(np.linspace(0, 200, n))


WAVS = [
    ("not audio", lambda p: p.write_bytes(b"RIFF nonsense"), r"cannot read audio file"),
    ("truncated", lambda p: (_wav(p, _tone()), p.write_bytes(p.read_bytes()[:20])), r"cannot read audio file"),
    ("silent", lambda p: _wav(p, np.zeros(800)), r"is silent \(peak amplitude"),
    ("no samples", lambda p: _wav(p, np.zeros(0)), r"contains no samples|cannot read audio file"),
    ("missing", lambda p: None, r"audio file not found"),
]


@pytest.mark.parametrize("write,pattern", [w[1:] for w in WAVS], ids=[w[0] for w in WAVS])
def test_wav_rows(tmp_path, write, pattern):
    path = tmp_path / "mBR0.wav"
    write(path)
    with pytest.raises(ValueError, match=pattern) as err:
        load_wav(path)
    assert str(path) in str(err.value)


def test_a_readable_wav_loads(tmp_path):
    _wav(tmp_path / "mBR0.wav", _tone())
    y, rate = load_wav(tmp_path / "mBR0.wav")
    assert rate == 8000 and y.shape == (800,) and np.abs(y).max() > 0.4


SEQS = {  # name -> (motion file, wav file)
    "gBR_sBM_cAll_d04_mBR0_ch01": (True, True),
    "gBR_sBM_cAll_d04_mBR0_ch02": (True, True),  # listed in ignore_list.txt
    "gBR_sBM_cAll_d04_mBR1_ch01": (False, True),  # motion missing
    "gBR_sBM_cAll_d04_mBR2_ch01": (True, False),  # wav missing
    "gBR_sBM_cAll_d04_ch09": (True, False),  # no music id in the name
}


@pytest.fixture
def aist_root(tmp_path):
    root = tmp_path / "aist"
    (root / "splits").mkdir(parents=True)
    (root / "splits" / "crossmodal_train.txt").write_text("\n".join(SEQS) + "\n")
    (root / "ignore_list.txt").write_text("gBR_sBM_cAll_d04_mBR0_ch02\n")
    for name, (motion, audio) in SEQS.items():
        if motion:
            save_motion_pkl(root / "motions" / f"{name}.pkl", np.zeros((4, 72)), np.zeros((4, 3)))
        if audio:
            _wav(root / "wav" / f"{music_id_of(name)}.wav", _tone())
    return root


def test_split_drops_by_reason_and_reports_once(aist_root, caplog):
    with caplog.at_level(logging.INFO, logger="motion_text.data.readers"):
        items = read_aistpp_split(aist_root, "train")
    assert [it.key for it in items] == ["gBR_sBM_cAll_d04_mBR0_ch01"]
    reports = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(reports) == 1 and reports[0].levelno == logging.WARNING
    assert reports[0].getMessage().startswith("aistpp train: skipped 4 of 5: ")
    for reason in ("1 in ignore_list.txt", "1 motion file missing", "1 wav missing", "1 no music id in the name"):
        assert reason in reports[0].getMessage()


def test_split_strict_raises_on_the_first_incomplete_sequence(aist_root):
    with pytest.raises(DataError, match=r"crossmodal_train\.txt: sequence 'gBR_sBM_cAll_d04_mBR1_ch01': motion file missing"):
        read_aistpp_split(aist_root, "train", strict=True)
