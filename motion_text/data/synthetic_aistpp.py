"""Synthetic AIST++: genre-dependent music and dances whose kinematic beats land on the music beats.

Written in exactly the AIST++ layout (:mod:`motion_text.data.aistpp`): ``motions/<seq>.pkl`` (SMPL axis-angle poses,
translation, scaling), ``wav/<music_id>.wav``, ``splits/crossmodal_{train,val,test}.txt`` and ``ignore_list.txt``.

Music. Each track has an AIST music id ``m<GENRE><d>`` whose tempo follows the AIST naming rule (``10 d + 80`` BPM,
:func:`~motion_text.data.music.aist_tempo_from_name`), a kick on every beat (accented on the first beat of each
4-beat bar), a genre-specific rhythm layer (snare, claps, hi-hats or none) and a chord pad with a genre-specific
timbre and chord progression (one chord per bar). It is rendered at ``60 * 512`` Hz, the rate of the 60 fps music
features, so feature extraction needs no resampling.

Dance. Each genre has four key poses (SMPL joint rotations), one per beat of the bar. The body is exactly at key pose
``k mod 4`` on beat ``k`` and moves to the next one with a cosine ease, so joint speeds vanish on the beats
(kinematic beats = music beats) and peak between them; the root goes down and up on alternate beats and sways per genre, with the same ease. Dancers
differ by amplitude, a static per-joint offset, facing direction and body scale. Given the music (tempo, beat
positions, bar accents, genre timbre) the dance is determined up to these dancer factors: learnable by design.

Splits follow AIST++'s cross-modal protocol: val and test use music tracks that no training sequence uses.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motion_text.data.aistpp import AISTPP_FPS, NUM_SMPL_JOINTS, save_motion_pkl
from motion_text.data.music import HOP_LENGTH

__all__ = ["GENRES", "generate_aistpp", "synth_music", "synth_dance", "beat_times", "REAL_CROSSMODAL", "FULL_DURATION"]

log = logging.getLogger(__name__)

GENRES = ("BR", "PO", "LO", "JB")
#: sequences of AIST++'s ``splits/crossmodal_{train,val,test}.txt`` among its 1,408 (the other 388 are in no list)
REAL_CROSSMODAL = {"train": 980, "val": 20, "test": 20, "all": 1408}
#: dance lengths (seconds) of ``motion-text synth --format aistpp --num full``: AIST++ sequences last up to ~1 min
FULL_DURATION = (8.0, 60.0)
SAMPLE_RATE = int(AISTPP_FPS * HOP_LENGTH)  # 30720
#: standing root height (metres): puts the rest-pose feet of the SMPL template on the floor y = 0
STAND_HEIGHT = 1.14

# joint indices (SMPL)
_L_HIP, _R_HIP, _L_KNEE, _R_KNEE, _SPINE2, _SPINE3 = 1, 2, 4, 5, 6, 9
_NECK, _L_SH, _R_SH, _L_EL, _R_EL, _L_WR, _R_WR = 12, 16, 17, 18, 19, 20, 21


def _pose(**joints) -> np.ndarray:
    """A (24, 3) axis-angle pose from ``name=(ax, ay, az)`` keywords (names of the module constants)."""
    p = np.zeros((NUM_SMPL_JOINTS, 3))
    for name, aa in joints.items():
        p[globals()[f"_{name.upper()}"]] = aa
    return p


# Four key poses per genre (SMPL local frames: Y up, facing +Z, left = +X; arms along +-X at rest).
_KEYS = {
    "BR": [_pose(l_hip=(-0.4, 0, 0), r_hip=(-0.4, 0, 0), l_knee=(0.8, 0, 0), r_knee=(0.8, 0, 0), l_sh=(0, 0, -1.0),
                 r_sh=(0, 0, 1.0), l_el=(0, -1.2, 0), r_el=(0, 1.2, 0)),
           _pose(l_sh=(0, -1.3, 0), r_sh=(0, 0, 1.2), spine3=(0, 0.4, 0)),
           _pose(l_hip=(-0.4, 0, 0), r_hip=(-0.4, 0, 0), l_knee=(0.8, 0, 0), r_knee=(0.8, 0, 0), l_sh=(0, -1.2, -0.3),
                 r_sh=(0, 1.2, 0.3), l_el=(0, -0.8, 0), r_el=(0, 0.8, 0)),
           _pose(r_sh=(0, 1.3, 0), l_sh=(0, 0, -1.2), spine3=(0, -0.4, 0))],
    "PO": [_pose(l_sh=(0, 0, 1.2), r_sh=(0, 0, 1.2), l_el=(0, 0, 0.6)),
           _pose(l_sh=(0, 0, -1.2), r_sh=(0, 0, 1.2), neck=(0, 0, 0.4)),
           _pose(l_sh=(0, 0, -1.2), r_sh=(0, 0, -1.2), r_el=(0, 0, -0.6)),
           _pose(l_sh=(0, -1.0, -0.4), r_sh=(0, 1.0, 0.4), l_el=(0, -1.5, 0), r_el=(0, 1.5, 0), neck=(0, 0, -0.4))],
    "LO": [_pose(l_sh=(0, -1.4, 0), r_sh=(0, 1.4, 0), l_hip=(-1.0, 0, 0), l_knee=(1.4, 0, 0)),
           _pose(l_sh=(0, 0, 0.6), r_sh=(0, 0, -0.6), l_el=(0, 0, 1.4), r_el=(0, 0, -1.4)),
           _pose(l_sh=(0, -1.4, 0), r_sh=(0, 1.4, 0), r_hip=(-1.0, 0, 0), r_knee=(1.4, 0, 0)),
           _pose(l_sh=(0, 0, -1.3), r_sh=(0, 0, 1.3), l_wr=(1.0, 0, 0), r_wr=(1.0, 0, 0))],
    "JB": [_pose(l_sh=(0, 0, 1.3), r_sh=(0, 0, -1.3), spine2=(-0.25, 0, 0), neck=(-0.2, 0, 0)),
           _pose(l_hip=(0, 0, 0.5), spine2=(0, 0, -0.2)),
           _pose(l_sh=(0, 0, 1.3), r_sh=(0, 0, -1.3), spine2=(-0.25, 0, 0), neck=(-0.2, 0, 0)),
           _pose(r_hip=(0, 0, -0.5), spine2=(0, 0, 0.2), l_sh=(0, -0.6, -0.9), r_sh=(0, 0.6, 0.9))],
}
#: per genre: root dip (m) at key poses 0 and 2, sideways sway (m) at key poses 0..3
_ROOT = {"BR": (0.07, (0.0, 0.05, 0.0, -0.05)), "PO": (0.03, (0.08, 0.0, -0.08, 0.0)),
         "LO": (0.04, (0.0, 0.06, 0.0, -0.06)), "JB": (0.02, (0.0, 0.12, 0.0, -0.12))}
#: per genre music: kick pitch (Hz), rhythm layer, chord qualities / bar roots (MIDI), timbre (harmonic amplitudes)
_MUSIC = {
    "BR": dict(kick=55.0, layer="snare", major=False, roots=(57, 53, 55, 52), harm=(1, 0.5, 0.33, 0.25, 0.2, 0.17)),
    "PO": dict(kick=70.0, layer="clap", major=True, roots=(60, 67, 69, 65), harm=(1, 0, 0.33, 0, 0.2, 0, 0.14)),
    "LO": dict(kick=62.0, layer="hats", major=False, roots=(64, 62, 60, 59), harm=(1, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2)),
    "JB": dict(kick=48.0, layer="none", major=True, roots=(65, 62, 58, 60), harm=(1, 0.3)),
}


def beat_times(bpm: float, duration: float, offset: float) -> np.ndarray:
    """Beat times (seconds) ``offset + k * 60 / bpm`` within ``[0, duration)``."""
    return np.arange(offset, duration, 60.0 / bpm)


def _burst(y: np.ndarray, start: float, env_tau: float, signal, length: float, amp: float) -> None:
    i0 = int(round(start * SAMPLE_RATE))
    n = min(int(length * SAMPLE_RATE), len(y) - i0)
    if n <= 0:
        return
    t = np.arange(n) / SAMPLE_RATE
    y[i0 : i0 + n] += amp * np.exp(-t / env_tau) * signal(t)


def synth_music(genre: str, bpm: float, duration: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    """Mono waveform at :data:`SAMPLE_RATE` (peak 0.9) of one synthetic track; beats at :func:`beat_times`."""
    spec = _MUSIC[genre]
    y = np.zeros(int(duration * SAMPLE_RATE))
    spb = 60.0 / bpm
    beats = beat_times(bpm, duration, offset)
    noise = rng.standard_normal(int(0.3 * SAMPLE_RATE))
    for k, tb in enumerate(beats):
        f0 = spec["kick"]
        _burst(y, tb, 0.09, lambda t, f0=f0: np.sin(2 * np.pi * f0 * (t + 0.04 * (1 - np.exp(-t / 0.02)))), 0.3,
               1.0 if k % 4 == 0 else 0.7)
        _burst(y, tb, 0.008, lambda t: noise[: len(t)], 0.05, 0.8)  # the kick's click: a broadband onset
        if k % 4 == 0:  # bar accent: a short crash
            _burst(y, tb, 0.12, lambda t: noise[: len(t)], 0.3, 0.25)
        layer = spec["layer"]
        if layer == "snare" and k % 2 == 1:
            _burst(y, tb, 0.06, lambda t: noise[: len(t)], 0.2, 0.45)
        elif layer == "clap":
            _burst(y, tb + spb / 2, 0.03, lambda t: noise[: len(t)], 0.1, 0.12)
        elif layer == "hats":
            for q in (1, 2, 3):
                _burst(y, tb + q * spb / 4, 0.012, lambda t: noise[: len(t)], 0.05, 0.05)
    # chord pad: one chord per bar, starting on the downbeats
    third = 4 if spec["major"] else 3
    bar_starts = list(beats[::4])
    if not bar_starts or bar_starts[0] > 0:
        bar_starts = [0.0] + bar_starts
    for b, start in enumerate(bar_starts):
        i0 = int(round(start * SAMPLE_RATE))
        i1 = int(round(bar_starts[b + 1] * SAMPLE_RATE)) if b + 1 < len(bar_starts) else len(y)
        t = np.arange(i1 - i0) / SAMPLE_RATE
        attack = np.minimum(t / 0.02, 1.0)
        root = spec["roots"][b % len(spec["roots"])]
        for semis in (0, third, 7):
            f = 440.0 * 2 ** ((root + semis - 69) / 12)
            for h, a in enumerate(spec["harm"], start=1):
                if a:
                    y[i0:i1] += 0.06 * a * attack * np.sin(2 * np.pi * f * h * t)
    return (0.9 * y / np.abs(y).max()).astype(np.float32)


def synth_dance(genre: str, bpm: float, num_frames: int, offset: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """One dance: ``(smpl_poses (N, 72) axis-angle, root translation (N, 3) metres)`` at 60 fps.

    On beat ``k`` the body is at key pose ``k mod 4`` of ``genre`` (scaled by a dancer amplitude, plus a static
    per-joint offset) and between beats it moves to the next with the cosine ease ``(1 - cos(pi u)) / 2``, whose
    derivative vanishes at ``u = 0`` and ``u = 1``.
    """
    keys = np.stack(_KEYS[genre])  # (4, 24, 3)
    amp = rng.uniform(0.75, 1.15)
    keys = amp * keys + rng.normal(0.0, 0.04, size=(1, NUM_SMPL_JOINTS, 3))
    keys[:, 0] = 0.0
    bounce, sway = _ROOT[genre]
    sway = amp * np.asarray(sway)
    t = np.arange(num_frames) / AISTPP_FPS
    beat_pos = (t - offset) * bpm / 60.0  # beats since the first beat
    k = np.floor(beat_pos).astype(int)
    u = beat_pos - k
    ease = (1 - np.cos(np.pi * u)) / 2
    before = beat_pos < 0
    k, ease = np.where(before, 0, k), np.where(before, 0.0, ease)
    a, b = keys[k % 4], keys[(k + 1) % 4]
    poses = a + ease[:, None, None] * (b - a)  # (N, 24, 3)
    yaw = rng.uniform(-np.pi / 4, np.pi / 4)
    poses[:, 0] = (0.0, yaw, 0.0)
    side = sway[k % 4] + ease * (sway[(k + 1) % 4] - sway[k % 4])
    low = bounce * amp * (np.arange(4) % 2 == 0)  # down on beats 0 and 2 of the bar, eased like the key poses
    dip = low[k % 4] + ease * (low[(k + 1) % 4] - low[k % 4])
    trans = np.stack([np.cos(yaw) * side, STAND_HEIGHT - dip, -np.sin(yaw) * side], -1)
    return poses.reshape(num_frames, 72).astype(np.float32), trans.astype(np.float32)


@dataclass
class AISTSynthResult:
    root: Path
    num_sequences: int
    num_tracks: int
    splits: dict[str, int]


def _write_track(args) -> None:
    path, genre, bpm, track_len, offset, seed, j = args
    import soundfile

    wav = synth_music(genre, bpm, track_len, offset, np.random.default_rng([seed, j, 1]))
    soundfile.write(path, wav, SAMPLE_RATE, subtype="PCM_16")


def _write_dance(args) -> None:
    path, genre, bpm, offset, seed, i, duration = args
    r = np.random.default_rng([seed, i, 2])
    frames = int(round(r.uniform(*duration) * AISTPP_FPS))
    poses, trans = synth_dance(genre, bpm, frames, offset, r)
    scaling = float(r.uniform(85.0, 100.0))
    save_motion_pkl(path, poses, trans * scaling, scaling)


def generate_aistpp(out: str | os.PathLike, num: int = 48, seed: int = 0, quiet: bool = False,
                    duration: tuple[float, float] = (8.0, 10.0), workers: int | None = None,
                    splits: str = "synthetic") -> AISTSynthResult:
    """Write ``num`` synthetic AIST++ sequences (and their music) into ``out``.

    Parameters
    ----------
    out: target folder (``motions/``, ``wav/``, ``splits/``, ``ignore_list.txt``).
    num: number of dance sequences (>= 10); about one music track per three sequences, genres interleaved.
    seed: generation seed; the output is a deterministic function of (num, seed, duration).
    duration: range of the dance lengths in seconds (tracks last ``duration[1] + 0.5`` s).
    workers: processes writing tracks and sequences (default: the cores this process may use); every file is seeded
        by its own index, so the output does not depend on it.
    splits: ``synthetic`` (every sequence listed; val and test get the sequences of every fifth track each) or
        ``real``: AIST++'s proportions :data:`REAL_CROSSMODAL` (980 / 20 / 20 listed sequences per 1,408, the rest in
        no list), still with val / test music that no training sequence uses.
    """
    from concurrent.futures import ProcessPoolExecutor

    from motion_text.data.synthetic import default_workers

    if splits not in ("synthetic", "real"):
        raise ValueError(f"unknown splits {splits!r}; expected 'synthetic' or 'real'")
    if num < 10:
        raise ValueError(f"num must be >= 10 to fill the train/val/test splits, got {num}")
    root = Path(out)
    for d in ("motions", "wav", "splits"):
        (root / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 9])
    n_tracks = int(np.clip(round(num / 3), 5, 40))
    track_len = duration[1] + 0.5
    tracks, track_jobs = [], []
    for j in range(n_tracks):
        genre, digit = GENRES[j % len(GENRES)], (j // len(GENRES)) % 10
        music_id, bpm = f"m{genre}{digit}", 10.0 * digit + 80.0
        offset = float(rng.uniform(0.2, 0.2 + 60.0 / bpm))
        track_jobs.append((root / "wav" / f"{music_id}.wav", genre, bpm, track_len, offset, seed, j))
        every = 10 if splits == "real" else 5  # real: 80 % of the tracks for training, >= 70 % of the sequences
        split = "test" if j % every == 2 else "val" if j % every == 4 else "train"
        tracks.append((music_id, genre, bpm, offset, split))
    names: dict[str, list[str]] = {s: [] for s in ("train", "val", "test")}
    dance_jobs = []
    for i in range(num):
        music_id, genre, bpm, offset, split = tracks[i % n_tracks]
        name = f"g{genre}_sBM_cAll_d{i % 30:02d}_{music_id}_ch{i // n_tracks + 1:02d}"
        dance_jobs.append((root / "motions" / f"{name}.pkl", genre, bpm, offset, seed, i, duration))
        names[split].append(name)
    workers = workers or default_workers()
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_track, track_jobs))
            list(pool.map(_write_dance, dance_jobs, chunksize=8))
    else:
        for job in track_jobs:
            _write_track(job)
        for job in dance_jobs:
            _write_dance(job)
    if splits == "real":  # list AIST++'s share of the sequences; the others stay on disk in no list, as there
        for split, seqs in names.items():
            names[split] = seqs[: max(1, round(num * REAL_CROSSMODAL[split] / REAL_CROSSMODAL["all"]))]
    for split, seqs in names.items():
        (root / "splits" / f"crossmodal_{split}.txt").write_text("".join(f"{s}\n" for s in sorted(seqs)))
    # like AIST++, an ignore list (sequences with bad motion capture): here the last training sequence
    (root / "ignore_list.txt").write_text(f"{sorted(names['train'])[-1]}\n")
    counts = {s: len(v) for s, v in names.items()}
    if not quiet:
        print(f"wrote {num} sequences and {n_tracks} music tracks to {root}; splits {counts}")
    log.info("synthetic AIST++: %d sequences, %d tracks in %s", num, n_tracks, root)
    return AISTSynthResult(root, num, n_tracks, counts)
