"""The Motion Patches protocol (line/MotionPatches scripts/test.py::eval) against the reference's own output."""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from motion_text.metrics.retrieval import (
    RetrievalMetric,
    caption_keys,
    protocol_all,
    protocol_motion_patches,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "motion_patches"


def _load():
    ref = json.loads((FIX / "motion_patches_protocol.json").read_text())
    arrays = np.load(FIX / "motion_patches_protocol.npz")
    return torch.from_numpy(arrays["text"]), torch.from_numpy(arrays["motion"]), ref["captions"], ref["metrics"]


def _expected(metrics: dict, direction: str) -> dict:
    out = {f"R{k:02d}": metrics[f"{direction}_recall_top{k}_correct_composition"] for k in (1, 2, 3, 5, 10)}
    out["MedR"] = metrics[f"{direction}_recall_median_correct_composition"]
    return out


def test_matches_the_reference_evaluation():
    text, motion, captions, metrics = _load()
    sims = F.normalize(text.double(), dim=-1) @ F.normalize(motion.double(), dim=-1).T
    res = protocol_motion_patches(sims, caption_keys(captions))
    for d in ("t2m", "m2t"):
        for k, v in _expected(metrics, d).items():
            assert abs(res[d][k] - v) < 1e-9, (d, k, res[d][k], v)
    # the shared captions matter: protocol (a) (diagonal only) gives other figures on the same matrix
    plain = protocol_all(sims)
    assert any(plain[d][k] != res[d][k] for d in ("t2m", "m2t") for k in ("R01", "R02", "MedR"))


def test_metric_computes_the_named_protocol():
    text, motion, captions, metrics = _load()
    metric = RetrievalMetric(protocols=("motion_patches",))
    for s in range(0, len(text), 16):  # batches, as an evaluation loop gives them
        sl = slice(s, s + 16)
        metric.update(text[sl], motion[sl], torch.arange(len(text))[sl], caption_key=caption_keys(captions[sl]))
    res = metric.compute()
    assert abs(float(res["motion_patches/t2m/R01"]) - metrics["t2m_recall_top1_correct_composition"]) < 1e-9
    assert abs(float(res["motion_patches/m2t/R10"]) - metrics["m2t_recall_top10_correct_composition"]) < 1e-9


def test_caption_keys_match_equal_strings_only():
    k = caption_keys(["a person walks", "a person walks", "a person walks."])
    assert k[0] == k[1] and k[0] != k[2]
