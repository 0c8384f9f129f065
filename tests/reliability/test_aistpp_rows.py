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


# issue #22 / #21 rows: truncated or short wavs, names leaving the root, EDGE/Bailando splits, stray ignore entries -----
def _song(path, seconds: float = 2.5, rate: int = 44100) -> None:
    """A wav like AIST's: 16-bit stereo at 44.1 kHz."""
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    y = 0.4 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    soundfile.write(path, np.stack([y, y], 1), rate, subtype="PCM_16")


def test_wav_cut_to_its_first_2000_bytes_stops(tmp_path):
    path = tmp_path / "mBR0.wav"
    _song(path)
    path.write_bytes(path.read_bytes()[:2000])  # decoders read 0.01 s of it without complaint
    with pytest.raises(ValueError, match=rf"cannot read audio file '{path}': truncated: its header declares 441,000 "
                                         r"bytes of audio, the file holds 1,956"):
        load_wav(path)


def _dance_root(tmp_path, wav_seconds: dict[str, float], frames: int = 120):
    """One 2-s sequence per music id, with a wav of the given length."""
    from motion_text.data.aistpp import DanceItem

    items = []
    for mid, seconds in wav_seconds.items():
        name = f"gBR_sBM_cAll_d04_{mid}_ch01"
        motion = save_motion_pkl(tmp_path / "motions" / f"{name}.pkl", np.zeros((frames, 72)), np.zeros((frames, 3)))
        _wav(tmp_path / "wav" / f"{mid}.wav", 0.5 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * 8000)) / 8000))
        items.append(DanceItem(name, motion, tmp_path / "wav" / f"{mid}.wav", mid))
    return items


@pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")  # librosa's CQT on 1-s signals
def test_wav_shorter_than_its_motion_is_a_counted_skip_naming_it(tmp_path, caplog):
    from motion_text.data.aistpp import AISTPPDataset

    items = _dance_root(tmp_path, {"mBR0": 2.5, "mBR1": 1.8, "mBR2": 1.0})  # 2-s motions, tolerance 0.5 s
    with caplog.at_level(logging.WARNING, logger="motion_text.data.readers"):
        ds = AISTPPDataset(items, None, train=False, music_cache_dir=tmp_path / "cache")
    assert [it.music_id for it in ds.items] == ["mBR0", "mBR1"]
    assert ds.lengths == [120, 1 + int(1.8 * 30720) // 512]  # within the tolerance: cut to the music (109 frames)
    assert ds.report.message() == "aistpp: skipped 1 of 3: 1 music shorter than the motion"
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"{tmp_path}/wav/mBR2.wav (1.02 s for the 2.00 s of gBR_sBM_cAll_d04_mBR2_ch01; tolerance 0.5 s)" in warning
    with pytest.raises(DataError, match=r"mBR2\.wav .*: music shorter than the motion \(strict mode"):
        AISTPPDataset(items, None, train=False, music_cache_dir=tmp_path / "cache", strict=True)
    kept = AISTPPDataset(items, None, train=False, music_cache_dir=tmp_path / "cache", music_tolerance=1.0)
    assert len(kept) == 3


def test_truncated_wav_stops_the_dataset_and_short_sequences_are_reported(tmp_path, caplog):
    from motion_text.data.aistpp import AISTPPDataset

    items = _dance_root(tmp_path, {"mBR0": 2.5, "mBR1": 2.5})
    with caplog.at_level(logging.WARNING, logger="motion_text.data.readers"):
        AISTPPDataset(items, 200, train=True, music_cache_dir=tmp_path / "cache")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "aistpp: skipped 2 of 2: 2 shorter than the 200-frame window"]
    _song(items[1].wav_path)
    items[1].wav_path.write_bytes(items[1].wav_path.read_bytes()[:2000])
    with pytest.raises(DataError, match=rf"cannot read audio file '{items[1].wav_path}': truncated"):
        AISTPPDataset(items, None, train=False, music_cache_dir=tmp_path / "cache")


def test_split_name_leaving_the_root_is_refused(aist_root, tmp_path):
    outside = "../outside/gBR_sBM_cAll_d04_mBR0_ch03"  # from motions/: a readable pickle next to the dataset
    save_motion_pkl(tmp_path / "outside" / "gBR_sBM_cAll_d04_mBR0_ch03.pkl", np.zeros((4, 72)), np.zeros((4, 3)))
    split = aist_root / "splits" / "crossmodal_train.txt"
    split.write_text(split.read_text() + outside + "\n")
    with pytest.raises(DataError, match=rf"{split}: sequence '{outside}' leaves the data root"):
        read_aistpp_split(aist_root, "train")


def test_edge_bailando_splits_validate_on_test_and_say_so_once(aist_root, caplog):
    (aist_root / "splits" / "crossmodal_test.txt").write_text("gBR_sBM_cAll_d04_mBR0_ch01\n")
    with caplog.at_level(logging.WARNING, logger="motion_text.data.aistpp"):
        for _ in range(2):
            assert [it.key for it in read_aistpp_split(aist_root, "val")] == ["gBR_sBM_cAll_d04_mBR0_ch01"]
    notes = [r.getMessage() for r in caplog.records if r.name == "motion_text.data.aistpp"]
    assert notes == [f"{aist_root}/splits/crossmodal_val.txt not found (EDGE and Bailando ship only crossmodal "
                     f"train/test): validating on {aist_root}/splits/crossmodal_test.txt"]


def test_ignore_entries_matching_no_sequence_are_reported_once(aist_root, caplog):
    ignore = aist_root / "ignore_list.txt"
    ignore.write_text(ignore.read_text() + "gBR_sBM_c01_d04_mBR0_ch02\n")  # a camera id instead of cAll: a typo
    with caplog.at_level(logging.WARNING, logger="motion_text.data.aistpp"):
        read_aistpp_split(aist_root, "train")
        read_aistpp_split(aist_root, "train")
    notes = [r.getMessage() for r in caplog.records if r.name == "motion_text.data.aistpp"]
    assert notes == [f"{ignore}: 1 of 2 entries match no sequence (in no split file, no motions/<name>.pkl), "
                     "e.g. ['gBR_sBM_c01_d04_mBR0_ch02']"]


@pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")  # librosa's CQT on 0.1-s signals
def test_fit_without_val_split_builds_val_from_test(aist_root, tmp_path, monkeypatch):
    from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule

    monkeypatch.setenv("MOTION_TEXT_CACHE", str(tmp_path / "cache"))
    (aist_root / "splits" / "crossmodal_test.txt").write_text("gBR_sBM_cAll_d04_mBR0_ch01\n")
    dm = MotionTextDataModule([DatasetSpec(name="aistpp", root=str(aist_root))], num_workers=0, window_seconds=0.05)
    dm.setup("fit")
    assert [it.key for it in dm.datasets["val"].items] == ["gBR_sBM_cAll_d04_mBR0_ch01"]
