"""Synthetic datasets written in exactly the on-disk layouts of HumanML3D / KIT-ML (Guo et al.) and TMR.

``motion-text synth --format humanml3d --out DIR --num N --seed S`` writes::

    DIR/new_joint_vecs/<id>.npy   (T, 263) float32 features (251 for KIT-ML), HumanML3D's ``process_file``
    DIR/new_joints/<id>.npy       (T, J, 3) float32 joint positions (= recover_from_ric of the features)
    DIR/texts/<id>.txt            3 captions, ``caption#word/POS ...#start#end`` (seconds; 0.0#0.0 = whole motion)
    DIR/Mean.npy, DIR/Std.npy     feature statistics of the train split (Std averaged per feature group, as Guo et al.)
    DIR/train.txt val.txt test.txt all.txt, DIR/nsim_test.txt (100 dissimilar test ids, as TMR ships)

plus ``M<id>`` mirrored copies (left/right swapped in motion and caption), as HumanML3D does. With
``--layout tmr`` the TMR layout is written instead (``annotations.json``, ``motions/<id>.npy``, ``splits/``,
``stats/``) on the 22-joint skeleton at 20 fps with 263-d features, as TMR recomputes KIT-ML from AMASS.

Each motion is one or two procedural actions with attributes; captions are generated from the same description, so the
text determines the motion up to noise. Generation is deterministic for a seed (per-motion generators are seeded by
``(seed, index)``, so the result does not depend on the number of worker processes).
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from motion_text.data.features import joints_to_features, layout_for, recover_from_ric
from motion_text.data.skeleton import HUMANML3D, Skeleton, get_skeleton
from motion_text.data.synthetic_motion import render_program, sample_program
from motion_text.data.synthetic_text import caption_variants, describe, mirror_caption, pos_tokens

__all__ = ["generate_dataset", "grouped_std", "SynthResult", "FULL_SIZE", "REAL_SPLITS", "default_workers"]

log = logging.getLogger(__name__)

_SPLIT_FRACTIONS = (0.8, 0.05, 0.15)
#: train / val / test ids of the real split files, mirrors included: HumanML3D (EricGuo5513/HumanML3D ``train.txt``
#: ``val.txt`` ``test.txt``, 29,228 ids) and KIT-ML as TMR splits it (4,688 / 292 / 786 keyids)
REAL_SPLITS = {"humanml3d": (23384, 1460, 4384), "kitml": (4688, 292, 786)}
#: motions of the real datasets before mirroring (``--num full``): HumanML3D 29,228 / 2 (rounded up: the synthetic set
#: mirrors every motion, 29,232 ids), KIT-ML 3,911, AIST++ 1,408 sequences
FULL_SIZE = {"humanml3d": 14616, "kitml": 3911, "aistpp": 1408}
_DATASET_SEED_OFFSET = {"humanml3d": 0, "kitml": 7919}  # different motions for the two synthetic datasets


@dataclass
class SynthResult:
    root: Path
    num_motions: int
    num_files: int
    splits: dict[str, int]


def grouped_std(std: np.ndarray, num_joints: int) -> np.ndarray:
    """Average the standard deviation within each feature group (Guo et al. ``cal_mean_variance``)."""
    out = std.copy()
    for sl in layout_for(num_joints).slices.values():
        out[sl] = std[sl].mean()
    return np.maximum(out, 1e-6)


def _mirror(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    m = joints[:, skeleton.left_right_permutation].copy()
    m[..., 0] *= -1
    return m


def _features(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    return joints_to_features(joints, skeleton)[0]


def _new_joints(feats: np.ndarray) -> np.ndarray:
    """``new_joints`` as HumanML3D writes them: ``recover_from_ric`` of the float32 features."""
    return recover_from_ric(torch.from_numpy(feats)).numpy()


def _caption_lines(specs, rng: np.random.Generator, fps: float) -> list[tuple[str, float, float]]:
    """Three captions: whole-motion ones, and for two-action clips sometimes one caption of a single action span."""
    whole = caption_variants(specs, rng, 3)
    lines = [(c, 0.0, 0.0) for c in whole]
    if len(specs) == 2 and rng.random() < 0.5:
        k = int(rng.integers(2))
        spec = specs[k]
        text = f"{['a person', 'someone'][int(rng.integers(2))]} {describe(spec, rng)}"
        start = round(spec.start, 2)
        end = round(spec.start + spec.duration, 2)
        lines[2] = (text, start, end)
    return lines


def _format_lines(lines: list[tuple[str, float, float]]) -> str:
    return "".join(f"{c}#{pos_tokens(c)}#{s}#{e}\n" for c, s, e in lines)


def _signature(specs) -> tuple:
    return tuple((s.action, s.direction, s.limb, s.reps) for s in specs)


def _make_one(args) -> tuple[str, tuple, list[tuple[str, np.ndarray, np.ndarray, str]]]:
    """Generate motion ``index``: its id, signature and the (id, features, joints, captions, text file) records to
    write (the POS-tagged text is made here, in the worker, so that the writing process is not the bottleneck)."""
    index, seed, skel_name, with_mirror = args
    skeleton = get_skeleton(skel_name)
    rng = np.random.default_rng([seed, index])
    specs = sample_program(rng)
    joints = render_program(specs, skeleton, rng)
    feats = _features(joints, skeleton)
    lines = _caption_lines(specs, rng, skeleton.fps)
    key = f"{index:06d}"
    records = [(key, feats, _new_joints(feats), lines, _format_lines(lines))]
    if with_mirror:  # HumanML3D mirrors the raw joints, then processes them like any motion
        mfeats = _features(_mirror(joints, skeleton), skeleton)
        mlines = [(mirror_caption(c), s, e) for c, s, e in lines]
        records.append(("M" + key, mfeats, _new_joints(mfeats), mlines, _format_lines(mlines)))
    return key, _signature(specs), records


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity, which ``taskset`` / cgroups restrict), not the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split_ids(num: int, seed: int, fractions: tuple[float, ...] = _SPLIT_FRACTIONS) -> dict[str, list[int]]:
    perm = np.random.default_rng([seed, 10**6]).permutation(num)
    n_train = int(round(fractions[0] * num))
    n_val = max(1, int(round(fractions[1] * num)))
    return {"train": sorted(perm[:n_train]), "val": sorted(perm[n_train : n_train + n_val]),
            "test": sorted(perm[n_train + n_val :])}


def _progress(iterable, total: int, description: str, quiet: bool):
    if quiet:
        yield from iterable
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(description, total=total)
        for x in iterable:
            yield x
            progress.advance(task)


def generate_dataset(out: str | os.PathLike, format: str = "humanml3d", num: int = 2000, seed: int = 0,
                     layout: str = "guo", workers: int | None = None, quiet: bool = False,
                     splits: str = "synthetic") -> SynthResult:
    """Write a synthetic dataset of ``num`` motions (plus mirrors) in the layout of ``format``.

    Parameters
    ----------
    out: target folder (created; existing files of the same names are overwritten).
    format: ``humanml3d`` or ``kitml``.
    num: number of original motions (mirrored ``M`` copies are added for the Guo layout).
    seed: generation seed; the output is a deterministic function of (format, layout, num, seed).
    layout: ``guo`` (HumanML3D / KIT-ML folders) or ``tmr`` (TMR's annotations.json layout, 263-d, 22 joints).
    workers: processes to use (default: every core this process may use, :func:`default_workers`).
    splits: ``synthetic`` (80 / 5 / 15 %, the default of the packaged synthetic configs) or ``real`` (the proportions
        of :data:`REAL_SPLITS`: HumanML3D 80.0 / 5.0 / 15.0 %, KIT-ML as TMR 81.3 / 5.1 / 13.6 %).
    """
    if format not in ("humanml3d", "kitml"):
        raise ValueError(f"unknown synthetic format {format!r}; expected 'humanml3d' or 'kitml' (aistpp: see mdot)")
    if layout not in ("guo", "tmr"):
        raise ValueError(f"unknown layout {layout!r}; expected 'guo' or 'tmr'")
    if splits not in ("synthetic", "real"):
        raise ValueError(f"unknown splits {splits!r}; expected 'synthetic' or 'real'")
    if num < 4:
        raise ValueError(f"num must be >= 4 to fill train/val/test splits, got {num}")
    root = Path(out)
    skeleton = HUMANML3D if layout == "tmr" else get_skeleton(format)
    with_mirror = layout == "guo" or format == "humanml3d"
    gen_seed = seed + _DATASET_SEED_OFFSET[format]
    counts = REAL_SPLITS[format] if splits == "real" else None
    fractions = tuple(c / sum(counts) for c in counts) if counts else _SPLIT_FRACTIONS
    split_of = {i: s for s, ids in _split_ids(num, gen_seed, fractions).items() for i in ids}

    if layout == "guo":
        dirs = {"vec": root / "new_joint_vecs", "joints": root / "new_joints", "text": root / "texts"}
    else:
        dirs = {"vec": root / "motions"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)

    workers = workers or default_workers()
    jobs = [(i, gen_seed, skeleton.name, with_mirror) for i in range(num)]
    dim = layout_for(skeleton).dim
    s1, s2, count = np.zeros(dim), np.zeros(dim), 0
    keys_by_split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    signatures: dict[str, tuple] = {}
    annotations: dict[str, dict] = {}
    n_files = 0
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        results = pool.map(_make_one, jobs, chunksize=16) if pool else map(_make_one, jobs)
        for key, sig, records in _progress(results, num, f"synth {format} ({layout})", quiet):
            index = int(key)
            split = split_of[index]
            signatures[key] = sig
            for rid, feats, canon, lines, text in records:
                keys_by_split[split].append(rid)
                np.save(dirs["vec"] / f"{rid}.npy", feats)
                n_files += 1
                if layout == "guo":
                    np.save(dirs["joints"] / f"{rid}.npy", canon)
                    (dirs["text"] / f"{rid}.txt").write_text(text, encoding="utf-8")
                    n_files += 2
                else:
                    duration = len(feats) / skeleton.fps
                    annotations[rid] = {
                        "path": rid,
                        "duration": round(duration, 3),
                        "annotations": [
                            {"seg_id": f"{rid}_{k}", "text": c, "start": s if e > 0 else 0.0,
                             "end": e if e > 0 else round(duration, 3)}
                            for k, (c, s, e) in enumerate(lines)
                        ],
                    }
                if split == "train":
                    f64 = feats.astype(np.float64)
                    s1 += f64.sum(0)
                    s2 += (f64**2).sum(0)
                    count += len(f64)
    finally:
        if pool:
            pool.shutdown()

    mean = s1 / count
    std = grouped_std(np.sqrt(np.maximum(s2 / count - mean**2, 0.0)), skeleton.num_joints)
    rng = np.random.default_rng([gen_seed, 2 * 10**6])
    test_orig = [k for k in sorted(keys_by_split["test"]) if not k.startswith("M")]
    nsim, seen = [], set()
    for k in rng.permutation(test_orig):
        if signatures[k] not in seen:
            seen.add(signatures[k])
            nsim.append(str(k))
    nsim = sorted(nsim[:100])

    def write_list(path: Path, ids) -> None:
        path.write_text("".join(f"{i}\n" for i in ids))

    if layout == "guo":
        np.save(root / "Mean.npy", mean.astype(np.float32))
        np.save(root / "Std.npy", std.astype(np.float32))
        split_dir = root
        write_list(root / "all.txt", sorted(k for ks in keys_by_split.values() for k in ks))
    else:
        (root / "stats").mkdir(exist_ok=True)
        np.save(root / "stats" / "mean.npy", mean.astype(np.float32))
        np.save(root / "stats" / "std.npy", std.astype(np.float32))
        (root / "annotations.json").write_text(json.dumps(annotations, indent=1))
        split_dir = root / "splits"
        split_dir.mkdir(exist_ok=True)
    for split, keys in keys_by_split.items():
        write_list(split_dir / f"{split}.txt", sorted(keys))
    write_list(split_dir / "nsim_test.txt", nsim)
    log.info("wrote %d motions (%d files) to %s", num, n_files, root)
    return SynthResult(root, num, n_files, {k: len(v) for k, v in keys_by_split.items()})
