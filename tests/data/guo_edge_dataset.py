"""A small synthetic set in the Guo layout with the length / span edge cases of ``Text2MotionDatasetV2``.

Used by ``test_guo_reference.py`` and by ``tests/fixtures/guo_filter/make_fixture.py``, which ran the reference loader
(EricGuo5513/text-to-motion) on exactly this data. The base is ``generate_dataset(fmt, 12, seed=5)``; the edge ids
below are added to ``test.txt`` with random features of the given length. Span times are seconds; the reference cuts
``int(start * 20):int(end * 20)`` (20 even for KIT-ML).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from motion_text.data.features import layout_for
from motion_text.data.skeleton import get_skeleton

__all__ = ["EDGE_CASES", "build_edge_dataset", "fingerprint", "MIN_LEN"]

#: the reference's min_motion_len (``40 if dataset_name == 't2m' else 24``)
MIN_LEN = {"humanml3d": 40, "kitml": 24}

W = "a person walks forward"
K = "someone kicks with the left leg"


def _edge_cases(min_len: int) -> list[tuple[str, int, list[str]]]:
    """(id, frames, caption lines ``text#start#end``); ``min_len`` places the short-motion boundary."""
    return [
        ("900001", min_len - 1, [f"{W}#0.0#0.0", f"{K}#0.0#1.0"]),  # whole id below min_len: dropped
        ("900002", min_len, [f"{W}#0.0#0.0"]),  # exactly min_len: kept
        ("900003", 200, [f"{W}#0.0#0.0", f"{K}#1.0#4.0"]),  # T = 200: whole id dropped, its span too
        ("900004", 250, [f"{K}#0.5#5.0"]),  # T >= 200, span only: dropped
        ("900005", 199, [f"{W}#0.0#0.0"]),  # T = 199: kept
        ("900006", 100, [f"{W}#0.0#0.0", f"{K}#2.0#8.0"]),  # span 40:160 past the end -> 40:100 (60 frames), kept
        ("900007", 100, [f"{W}#0.0#0.0", f"{K}#3.5#9.0"]),  # 70:180 -> 70:100 (30 frames): kept for KIT only
        ("900008", 120, [f"{W}#0.0#0.0", f"{K}#1.0#4.0", "someone kicks#1.0#4.0"]),  # two captions, one span
        ("900009", 120, [f"{W}#nan#nan", "a man walks#0.0#0.0"]),  # NaN tags = whole motion
        ("900010", 120, [f"{W}#0.0#0.0", f"{K}#0.0#3.0"]),  # span starting at 0 (not the whole motion)
        ("900011", 120, [f"{W}#0.0#0.0", f"{K}#7.0#9.0"]),  # span starting past the end: empty slice
        ("900012", 120, [f"{W}#0.0#0.0", f"{K}#4.0#2.0"]),  # end before start: empty slice
        ("900013", 150, [f"{K}#1.0#3.5"]),  # span captions only: no whole-motion item
        ("900014", 120, [f"{W}#0.0#0.0", f"{K}#0.0#6.0"]),  # span equal to the whole motion: its own item
        ("900015", 120, [f"{W}#0.0#0.0", f"{K}#1.0#2.5"]),  # span of 30 frames: kept for KIT only
        ("900016", 120, [f"{W}#0.0#0.0", f"{K}#0.5#10.9"]),  # span 10:218 -> 10:120 (110 frames), kept
    ]


EDGE_CASES = {name: _edge_cases(n) for name, n in MIN_LEN.items()}


def _tokens(text: str) -> str:
    return " ".join(f"{w}/OTHER" for w in text.split())


def build_edge_dataset(root: str | Path, fmt: str) -> Path:
    """Write the base synthetic set and the edge ids of ``fmt`` (``humanml3d`` or ``kitml``) into ``root``."""
    from motion_text.data.synthetic import generate_dataset

    root = Path(root)
    generate_dataset(root, fmt, 12, 5, workers=1, quiet=True)
    dim = layout_for(get_skeleton(fmt)).dim
    rng = np.random.default_rng(7)
    with open(root / "test.txt", "a", encoding="utf-8") as split:
        for mid, frames, lines in EDGE_CASES[fmt]:
            np.save(root / "new_joint_vecs" / f"{mid}.npy", rng.standard_normal((frames, dim)).astype(np.float32))
            text = "".join(f"{t}#{_tokens(t)}#{s}#{e}\n" for t, s, e in (ln.split("#") for ln in lines))
            (root / "texts" / f"{mid}.txt").write_text(text, encoding="utf-8")
            split.write(f"{mid}\n")
    return root


def fingerprint(root: str | Path, split: str) -> dict[str, str]:
    """``{id: "<frames>:<sha1 of the caption file>"}`` of a split, to check that the data still matches a fixture."""
    root = Path(root)
    out = {}
    for mid in (root / f"{split}.txt").read_text().split():
        frames = np.load(root / "new_joint_vecs" / f"{mid}.npy", mmap_mode="r").shape[0]
        out[mid] = f"{frames}:{hashlib.sha1((root / 'texts' / f'{mid}.txt').read_bytes()).hexdigest()[:12]}"
    return out
