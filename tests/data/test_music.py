"""35-d FACT/EDGE music features on a synthetic click track, file handling and caching."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from motion_text.data import music
from motion_text.data.music import (
    MUSIC_FEATURE_SLICES,
    aist_tempo_from_name,
    cached_music_features,
    extract_music_features,
    load_wav,
    music_beats,
)

FPS = 60
CLICK_PERIOD = 0.5  # seconds (120 BPM)
DURATION = 6.0
CLICK_TIMES = np.arange(CLICK_PERIOD, DURATION - 0.25, CLICK_PERIOD)


def _click_track(sr: int) -> np.ndarray:
    """Short decaying 1 kHz bursts every 0.5 s (independent of librosa)."""
    y = np.zeros(int(DURATION * sr), dtype=np.float32)
    burst_t = np.arange(int(0.03 * sr)) / sr
    burst = (np.sin(2 * np.pi * 1000 * burst_t) * np.exp(-burst_t / 0.005)).astype(np.float32)
    for t in CLICK_TIMES:
        start = int(round(t * sr))
        y[start : start + len(burst)] += burst
    return y


@pytest.fixture(scope="module")
def click_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "clicks.wav"
    sf.write(path, _click_track(22050), 22050)
    return path


@pytest.fixture(scope="module")
def click_features(click_wav):
    return extract_music_features(click_wav, fps=FPS)


def _assert_events_at_clicks(frames: np.ndarray, min_hits: int) -> None:
    click_frames = CLICK_TIMES * FPS
    # every event lies within one frame of a click, and each click gets at most one event
    dist = np.abs(frames[:, None] - click_frames[None, :]).min(axis=1)
    assert np.all(dist <= 1), (frames, click_frames)
    nearest = np.abs(frames[:, None] - click_frames[None, :]).argmin(axis=1)
    assert len(np.unique(nearest)) == len(frames)
    assert len(frames) >= min_hits, (frames, click_frames)


def test_click_track_beats_and_onsets(click_features):
    feats = click_features
    n_samples = int(DURATION * FPS * 512)
    assert feats.shape == (1 + n_samples // 512, 35)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    beats = music_beats(feats)
    # the beat tracker may trim the first / last beat; all interior clicks must be found
    _assert_events_at_clicks(beats, min_hits=len(CLICK_TIMES) - 2)
    onsets = np.flatnonzero(feats[:, MUSIC_FEATURE_SLICES["onset"]][:, 0])
    _assert_events_at_clicks(onsets, min_hits=len(CLICK_TIMES) - 1)
    # the onset envelope peaks at the onsets
    env = feats[:, 0]
    assert np.all(env[onsets] > 5 * np.median(env))


def test_array_input_matches_file_input(click_features):
    sr = FPS * 512
    # an array already at the analysis rate, and a resampled one, give the same beat frames as the file
    import librosa

    y = librosa.resample(_click_track(22050), orig_sr=22050, target_sr=sr)
    feats = extract_music_features(y, fps=FPS, sr=sr, start_bpm=120.0)
    np.testing.assert_array_equal(music_beats(feats), music_beats(click_features))
    with pytest.raises(ValueError, match="sr"):
        extract_music_features(y, fps=FPS)


def test_unreadable_missing_and_silent_files(tmp_path):
    bad = tmp_path / "broken_song.wav"
    bad.write_bytes(b"RIFF\x00\x00 this is not a wav file at all")
    with pytest.raises(ValueError, match="broken_song.wav"):
        extract_music_features(bad)
    with pytest.raises(ValueError, match="missing.wav"):
        load_wav(tmp_path / "missing.wav")
    silent = tmp_path / "quiet.wav"
    sf.write(silent, np.zeros(4000, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="quiet.wav.*silent"):
        load_wav(silent)
    y, sr = load_wav(silent, allow_silent=True)
    assert sr == 16000 and y.shape == (4000,)


def test_cache_hit_and_key(click_wav, click_features, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = cached_music_features(click_wav, cache, fps=FPS)
    np.testing.assert_array_equal(first, click_features)
    assert len(list(cache.glob("*.npy"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("features recomputed despite a cache entry")

    monkeypatch.setattr(music, "extract_music_features", fail)
    np.testing.assert_array_equal(cached_music_features(click_wav, cache, fps=FPS), first)
    with pytest.raises(AssertionError, match="recomputed"):  # another fps is another key
        cached_music_features(click_wav, cache, fps=30)


def test_tempo_from_name_and_beats_column():
    assert aist_tempo_from_name("mBR0") == 80
    assert aist_tempo_from_name("/data/wav/mJB5.wav") == 130
    assert aist_tempo_from_name("gHO_sBM_cAll_d19_mHO3_ch01") == 125
    assert aist_tempo_from_name("my_song.wav") is None
    feats = np.zeros((10, 35))
    feats[[2, 7], -1] = 1
    np.testing.assert_array_equal(music_beats(feats), [2, 7])
    with pytest.raises(ValueError, match="35"):
        music_beats(np.zeros((10, 34)))
