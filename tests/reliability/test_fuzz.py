"""Fuzz: randomly corrupted copies of a tiny dataset (byte flips, truncations, deletions) either load with a skip
report that accounts for every dropped id (each one counted under a reason), or stop with the project's own ``DataError`` naming a file; never another
exception, never a hang. Run with ``-s`` to see the outcome counts."""

from __future__ import annotations

import logging
import signal
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.data.dataset import MotionTextDataset, Source
from motion_text.data.readers import DataError, read_guo_split, read_tmr_split
from motion_text.data.skeleton import HUMANML3D

from .conftest import clone, put

#: files the readers open (new_joints/ and the unused lists are never read, corrupting them proves nothing)
READ = {"guo": ("new_joint_vecs/*.npy", "texts/*.txt", "train.txt", "val.txt", "Mean.npy", "Std.npy"),
        "tmr": ("motions/**/*.npy", "annotations.json", "splits/train.txt", "splits/val.txt", "stats/*")}
FOLDERS = {"guo": 200, "tmr": 50}
HANG_SECONDS = 20


def corrupt(root: Path, layout: str, rng: np.random.Generator) -> list[str]:
    files = sorted({p for pattern in READ[layout] for p in root.glob(pattern) if p.is_file()})
    done = []
    for _ in range(int(rng.integers(1, 4))):
        files = [p for p in files if p.exists()]
        path = files[int(rng.integers(len(files)))]
        data = bytearray(path.read_bytes())
        kind = ("flip", "truncate", "delete")[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
        if kind == "delete":
            path.unlink()
        elif kind == "truncate":
            put(path, bytes(data[: int(rng.integers(0, max(len(data), 1)))]))
        else:
            for i in rng.integers(0, max(len(data), 1), size=int(rng.integers(1, 9))):
                if data:
                    data[i] ^= int(rng.integers(1, 256))
            put(path, bytes(data))
        done.append(f"{kind} {path.relative_to(root)}")
    return done


def _split_ids(root: Path, layout: str, split: str) -> set[str]:
    path = root / (f"{split}.txt" if layout == "guo" else f"splits/{split}.txt")
    return {i.strip() for i in path.read_text(encoding="utf-8", errors="replace").splitlines() if i.strip()}


def _timeout(signum, frame):
    raise TimeoutError(f"reader still running after {HANG_SECONDS} s")


def check_folder(root: Path, layout: str, caplog) -> str:
    """'loaded', 'skipped' or 'DataError'; raises AssertionError on anything else."""
    reader = read_guo_split if layout == "guo" else read_tmr_split
    outcome = "loaded"
    for split in ("train", "val"):
        caplog.clear()
        try:
            data = reader(root, split, HUMANML3D)
        except DataError as e:
            assert str(root) in str(e), f"DataError names no file of the dataset: {e}"
            return "DataError"
        report = data.report
        warned = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert len(warned) == (1 if report.skipped else 0), warned
        dropped = _split_ids(root, layout, split) - {it.motion_id for it in data.items}
        assert len(dropped) == report.skipped_ids - report.ids["duplicate id"], (dropped, report.ids)
        assert report.skipped >= report.skipped_ids + sum(report.captions.values())
        if report.skipped:
            outcome = "skipped"
            with pytest.raises(DataError, match="strict mode"):
                reader(root, split, HUMANML3D, strict=True)
        if data.items:  # every kept item loads with its frame count and the feature dim
            ds = MotionTextDataset([Source("h3d", data.items, data.mean, data.std, 22)], train=False, max_len=None)
            for i in range(len(ds)):
                m = ds[i]["motion"]
                assert isinstance(m, torch.Tensor) and m.shape == (data.items[i].length, 263)
    return outcome


# a flipped exponent bit can leave a finite but huge feature that overflows when normalised (caught in training
# by check_finite); it is not a reader error
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("layout", ["guo", "tmr"])
def test_fuzz_corrupted_folders(layout, tiny_h3d, tiny_tmr, tmp_path, caplog):
    base = tiny_h3d if layout == "guo" else tiny_tmr
    counts: Counter = Counter()
    failures = []
    old = signal.signal(signal.SIGALRM, _timeout)
    caplog.set_level(logging.WARNING, logger="motion_text.data.readers")
    try:
        for seed in range(FOLDERS[layout]):
            root = clone(base, tmp_path / f"f{seed}")
            what = corrupt(root, layout, np.random.default_rng([seed, len(layout)]))
            signal.alarm(HANG_SECONDS)
            try:
                counts[check_folder(root, layout, caplog)] += 1
            except Exception:  # noqa: BLE001 - collected and reported below with the corruption that caused it
                failures.append(f"seed {seed} ({'; '.join(what)}):\n{traceback.format_exc(limit=3)}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, old)
    print(f"\nfuzz {layout}: {sum(counts.values())} folders: {counts['loaded']} loaded clean, "
          f"{counts['skipped']} loaded with a skip report, {counts['DataError']} DataError")
    assert not failures, f"{len(failures)} folders failed:\n" + "\n".join(failures[:5])
    assert all(counts[k] for k in ("loaded", "skipped", "DataError")), counts
