"""Music features for music-to-dance models: the 35-d FACT / EDGE "baseline" audio features.

Per motion frame (google-research/mint ``tools/preprocessing.py::cache_audio_features``; Stanford-TML/EDGE
``data/audio_extraction/baseline_features.py``), with the audio resampled to ``sr = fps * 512`` and a hop of 512
samples, so that one feature frame is one motion frame:

=====================  ====================================================================  =====
column                 content                                                                dims
=====================  ====================================================================  =====
``0``                  onset strength envelope (``librosa.onset.onset_strength``)             1
``1:21``               MFCC (``n_mfcc=20``)                                                   20
``21:33``              chroma CENS (``n_chroma=12``)                                          12
``33``                 onset one-hot (``librosa.onset.onset_detect`` on the envelope)         1
``34``                 beat one-hot (``librosa.beat.beat_track``, ``tightness=100``)           1
=====================  ====================================================================  =====

FACT uses 60 fps (sr 30720), EDGE 30 fps (sr 15360). There is no tempogram in this set (that is Bailando's own
54-d variant). ``librosa`` is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "HOP_LENGTH",
    "MUSIC_FEATURE_DIM",
    "MUSIC_FEATURE_SLICES",
    "aist_tempo_from_name",
    "load_wav",
    "wav_truncation",
    "extract_music_features",
    "music_beats",
    "cached_music_features",
]

log = logging.getLogger(__name__)

#: samples per feature frame; the sampling rate is ``fps * HOP_LENGTH``
HOP_LENGTH = 512
MUSIC_FEATURE_DIM = 35
#: named column ranges of the 35-d feature
MUSIC_FEATURE_SLICES: dict[str, slice] = {
    "onset_envelope": slice(0, 1),
    "mfcc": slice(1, 21),
    "chroma_cens": slice(21, 33),
    "onset": slice(33, 34),
    "beat": slice(34, 35),
}
#: peak amplitude below which a signal counts as silent
SILENCE_THRESHOLD = 1e-6

_AIST_MUSIC = re.compile(r"^m(BR|PO|LO|MH|LH|WA|KR|JS|JB|HO)(\d)$")


def aist_tempo_from_name(name: str | os.PathLike) -> float | None:
    """Tempo (BPM) of an AIST music track from its name (``mBR0`` -> 80, ``mHO3`` -> 125), else None.

    ``m{BR,PO,LO,MH,LH,WA,KR,JS,JB}d`` -> ``10 d + 80``; ``mHOd`` -> ``5 d + 110`` (mint ``_get_tempo``). Accepts
    a bare name, a path (its stem) or an AIST++ sequence name (``gBR_sBM_cAll_d04_mBR0_ch01``).
    """
    stem = Path(name).stem
    for token in [stem, *stem.split("_")]:
        m = _AIST_MUSIC.match(token)
        if m:
            genre, d = m.group(1), int(m.group(2))
            return float(d * 5 + 110) if genre == "HO" else float(d * 10 + 80)
    return None


def _check_fps(fps: float) -> int:
    sr = fps * HOP_LENGTH
    if fps <= 0 or abs(sr - round(sr)) > 1e-9:
        raise ValueError(f"fps must be > 0 with fps * {HOP_LENGTH} an integer sampling rate, got {fps}")
    return int(round(sr))


def wav_truncation(path: str | os.PathLike) -> str | None:
    """Why a RIFF/WAVE file is cut short (its ``data`` chunk declares more bytes than the file holds), else None.

    Decoders read such a file without complaint, up to where it ends: the first 2,000 bytes of a song decode as
    0.01 s of audio. A ``data`` size of 0 or 0xFFFFFFFF (streamed writers) and files that are not RIFF/WAVE are not
    checked.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                held = size - pos - 8
                if length not in (0, 0xFFFFFFFF) and held < length:
                    return f"truncated: its header declares {length:,} bytes of audio, the file holds {held:,}"
                return None
            pos += 8 + length + (length & 1)
    return "truncated: no audio data chunk before the end of the file"


def load_wav(path: str | os.PathLike, sr: int | None = None, allow_silent: bool = False) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32, resampled to ``sr`` (native rate if None).

    Raises
    ------
    ValueError
        Naming the file when it is missing, cut short (:func:`wav_truncation`) or cannot be decoded, when it holds no
        samples, or (unless ``allow_silent``) when its peak amplitude is below :data:`SILENCE_THRESHOLD`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file not found: {str(path)!r}")
    cut = wav_truncation(path)
    if cut:
        raise ValueError(f"cannot read audio file {str(path)!r}: {cut}")
    import librosa

    try:
        with warnings.catch_warnings():  # the soundfile -> audioread fallback warns before it fails
            warnings.filterwarnings("ignore", message="PySoundFile failed", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning, module="librosa")
            y, rate = librosa.load(str(path), sr=sr, mono=True)
    except Exception as err:  # decoders raise many types (soundfile.LibsndfileError, audioread.NoBackendError, ...)
        raise ValueError(f"cannot read audio file {str(path)!r}: {err}") from err
    if y.size == 0:
        raise ValueError(f"audio file {str(path)!r} contains no samples")
    if not allow_silent and float(np.max(np.abs(y))) < SILENCE_THRESHOLD:
        raise ValueError(f"audio file {str(path)!r} is silent (peak amplitude < {SILENCE_THRESHOLD})")
    return y.astype(np.float32, copy=False), int(rate)


def extract_music_features(
    wav_path_or_array: str | os.PathLike | np.ndarray,
    fps: float = 60,
    sr: int | None = None,
    start_bpm: float | None = None,
) -> np.ndarray:
    """The 35-d FACT/EDGE music features, one row per motion frame at ``fps``.

    Parameters
    ----------
    wav_path_or_array : path or array (N,)
        An audio file, or a mono waveform sampled at ``sr``.
    fps : float
        Motion frame rate; the audio is analysed at ``fps * 512`` Hz with hop 512 (60 -> 30720 Hz as FACT,
        30 -> 15360 Hz as EDGE).
    sr : int, optional
        Sampling rate of ``wav_path_or_array`` when it is an array (required then); ignored for paths.
    start_bpm : float, optional
        Tempo prior of the beat tracker. Default: parsed from an AIST music name in the file name
        (:func:`aist_tempo_from_name`, as FACT/EDGE do), otherwise estimated with ``librosa.feature.tempo`` on the
        onset envelope (EDGE estimates it with ``librosa.beat.tempo`` for non-AIST music).

    Returns
    -------
    array (T, 35) float32 with ``T = 1 + N_resampled // 512``; columns per :data:`MUSIC_FEATURE_SLICES`.
    """
    feat_sr = _check_fps(fps)
    import librosa

    if isinstance(wav_path_or_array, np.ndarray):
        if sr is None:
            raise ValueError("sr (the sampling rate of the array) is required when passing a waveform array")
        y = np.asarray(wav_path_or_array, dtype=np.float32)
        if y.ndim == 2:
            y = librosa.to_mono(y)
        if y.ndim != 1 or y.size == 0:
            raise ValueError(f"the waveform must be a non-empty 1-D array, got shape {wav_path_or_array.shape}")
        if not np.isfinite(y).all():
            raise ValueError("the waveform contains non-finite samples")
        if int(sr) != feat_sr:
            y = librosa.resample(y, orig_sr=int(sr), target_sr=feat_sr)
        name = None
    else:
        y, _ = load_wav(wav_path_or_array, sr=feat_sr)
        name = wav_path_or_array

    envelope = librosa.onset.onset_strength(y=y, sr=feat_sr, hop_length=HOP_LENGTH)  # (T,)
    mfcc = librosa.feature.mfcc(y=y, sr=feat_sr, n_mfcc=20, hop_length=HOP_LENGTH).T  # (T, 20)
    chroma = librosa.feature.chroma_cens(y=y, sr=feat_sr, hop_length=HOP_LENGTH, n_chroma=12).T  # (T, 12)

    peak_idxs = librosa.onset.onset_detect(onset_envelope=envelope.flatten(), sr=feat_sr, hop_length=HOP_LENGTH)
    peak_onehot = np.zeros_like(envelope, dtype=np.float32)
    peak_onehot[peak_idxs] = 1.0

    if start_bpm is None and name is not None:
        start_bpm = aist_tempo_from_name(name)
    if start_bpm is None:
        start_bpm = float(np.atleast_1d(
            librosa.feature.tempo(onset_envelope=envelope, sr=feat_sr, hop_length=HOP_LENGTH)
        )[0])
    _, beat_idxs = librosa.beat.beat_track(
        onset_envelope=envelope, sr=feat_sr, hop_length=HOP_LENGTH, start_bpm=start_bpm, tightness=100
    )
    beat_onehot = np.zeros_like(envelope, dtype=np.float32)
    beat_onehot[beat_idxs] = 1.0

    T = min(len(envelope), len(mfcc), len(chroma))
    feats = np.concatenate(
        [envelope[:T, None], mfcc[:T], chroma[:T], peak_onehot[:T, None], beat_onehot[:T, None]], axis=-1
    )
    return feats.astype(np.float32, copy=False)


def music_beats(features: np.ndarray) -> np.ndarray:
    """Frame indices of the music beats: the non-zero entries of the last (beat one-hot) column of (T, 35)."""
    f = np.asarray(features)
    if f.ndim != 2 or f.shape[1] != MUSIC_FEATURE_DIM:
        raise ValueError(f"features must have shape (T, {MUSIC_FEATURE_DIM}), got {f.shape}")
    return np.flatnonzero(f[:, -1] > 0.5)


def cached_music_features(
    path: str | os.PathLike, cache_dir: str | os.PathLike, fps: float = 60, start_bpm: float | None = None
) -> np.ndarray:
    """:func:`extract_music_features` of an audio file, cached as ``.npy`` in ``cache_dir``.

    The cache key hashes the absolute path, the file's modification time (ns) and size, ``fps`` and ``start_bpm``,
    so an edited file or a different frame rate is recomputed. Files are written atomically.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file not found: {str(path)!r}")
    st = path.stat()
    key = f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|fps={float(fps)!r}|bpm={start_bpm!r}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{path.stem}_{digest}.npy"
    if target.is_file():
        try:
            feats = np.load(target)
            if feats.ndim == 2 and feats.shape[1] == MUSIC_FEATURE_DIM:
                return feats
            log.warning("ignoring malformed music-feature cache %s with shape %s", target, feats.shape)
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable music-feature cache %s: %s", target, err)
    feats = extract_music_features(path, fps=fps, start_bpm=start_bpm)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, feats)
    os.replace(tmp, target)
    return feats
