"""Tiny datasets for the reliability tests: generated once per session, cloned per test with hard links.

A clone shares every file with the base until :func:`put` replaces one, so corrupting a copy is cheap; never open a
cloned file for writing in place (that would write through the link into the base).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: the id every row corrupts: a clean 60-frame motion with two whole-clip captions (see ``tiny_h3d``)
TARGET = "000002"
TARGET_FRAMES = 60
CLEAN_CAPTIONS = "a person walks forward#a/DET person/NOUN walk/VERB#0.0#0.0\nsomeone walks#someone/PRON#0.0#0.0\n"


def put(path: Path, data: bytes | str | np.ndarray) -> None:
    """Replace ``path`` (unlinking it first, so a hard-linked base stays untouched) with bytes, text or an array."""
    path.unlink(missing_ok=True)
    if isinstance(data, np.ndarray):
        with open(path, "wb") as f:
            np.save(f, data)
    else:
        path.write_bytes(data.encode() if isinstance(data, str) else data)


def clone(src: Path, dst: Path) -> Path:
    """Hard-link copy of a dataset folder."""
    for dirpath, _, files in os.walk(src):
        out = dst / Path(dirpath).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(dirpath) / name, out / name)
    return dst


def _generate(tmp_path_factory, name: str, fmt: str, num: int, layout: str = "guo") -> Path:
    from motion_text.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp(name)
    generate_dataset(root, fmt, num, seed=1, layout=layout, workers=1, quiet=True)
    return root


@pytest.fixture(scope="session")
def tiny_h3d(tmp_path_factory) -> Path:
    """10 synthetic HumanML3D motions (+ mirrors), Guo layout; ``TARGET`` (a train id) made clean and known."""
    root = _generate(tmp_path_factory, "rel_h3d", "humanml3d", 10)
    assert TARGET in (root / "train.txt").read_text().split()
    motion = np.load(root / "new_joint_vecs" / f"{TARGET}.npy")[:TARGET_FRAMES]
    put(root / "new_joint_vecs" / f"{TARGET}.npy", motion)
    put(root / "texts" / f"{TARGET}.txt", CLEAN_CAPTIONS)
    return root


@pytest.fixture(scope="session")
def tiny_kit(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "rel_kit", "kitml", 4)


@pytest.fixture(scope="session")
def tiny_tmr(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "rel_tmr", "humanml3d", 6, layout="tmr")


@pytest.fixture
def h3d_copy(tiny_h3d, tmp_path) -> Path:
    return clone(tiny_h3d, tmp_path / "h3d")
