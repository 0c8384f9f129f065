"""Text-motion retrieval evaluation of a HumanML3D-test-sized gallery (4,384 x 4,384), protocols (a)-(d).

Random 256-d text / motion embeddings (motion = text + noise), 384-d sentence embeddings with 10 % near-duplicate
captions for the threshold protocol, half of the items in the nsim subset. Ours: :class:`RetrievalMetric`
(``update`` + ``compute``) with protocols all / threshold / nsim / guo; reference: the same protocols written
straightforwardly in numpy (float64 similarities, ranks by comparison counts, a loop over the Guo batches). Every
figure must agree. Target: < 2 s in total on 2 CPU cores (quick: 2,048 items, reported only).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from benchmarks.common import Row, interleaved, per_device
from motion_text.metrics.retrieval import RetrievalMetric

N = 4384
KS = (1, 2, 3, 5, 10)
PROTOCOLS = ("all", "threshold", "nsim", "guo")


def embeddings(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(n, 256, generator=g)
    motion = text + 1.2 * torch.randn(n, 256, generator=g)
    sent = torch.randn(n, 384, generator=g)
    dup = torch.randperm(n, generator=g)[: n // 10]
    sent[dup] = sent[torch.roll(dup, 1)] + 0.01 * torch.randn(len(dup), 384, generator=g)
    subset = torch.rand(n, generator=g) < 0.5
    return {"text": text, "motion": motion, "sent": sent, "subset": subset}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _ranks(s: np.ndarray, gt_mask: np.ndarray | None = None) -> np.ndarray:
    gt = np.diag(s) if gt_mask is None else np.where(gt_mask, s, -np.inf).max(axis=1)
    less = (s > gt[:, None]).sum(axis=1)
    equal = (s == gt[:, None]).sum(axis=1)
    return less + (equal - 1) / 2


def _metrics(r: np.ndarray) -> dict[str, float]:
    out = {f"R{k:02d}": 100.0 * float(np.mean(r < k)) for k in KS}
    out["MedR"] = float(np.median(r)) + 1.0
    out["MeanR"] = float(np.mean(r)) + 1.0
    return out


def numpy_reference(emb: dict[str, torch.Tensor], threshold: float = 0.95, batch_size: int = 32,
                    seed: int = 0) -> dict[str, float]:
    """The four protocols in plain numpy; keys as :meth:`RetrievalMetric.compute`."""
    t = _unit(emb["text"].double().numpy())
    m = _unit(emb["motion"].double().numpy())
    sims = t @ m.T
    res = {"all": (_metrics(_ranks(sims)), _metrics(_ranks(sims.T)))}
    e = _unit(emb["sent"].double().numpy())
    gt = e @ e.T > 2 * threshold - 1
    np.fill_diagonal(gt, True)
    res["threshold"] = (_metrics(_ranks(sims, gt)), _metrics(_ranks(sims.T, gt.T)))
    idx = np.nonzero(emb["subset"].numpy())[0]
    sub = sims[np.ix_(idx, idx)]
    res["nsim"] = (_metrics(_ranks(sub)), _metrics(_ranks(sub.T)))
    perm = np.random.RandomState(seed).permutation(len(sims))
    nb = len(sims) // batch_size
    acc = [dict.fromkeys(res["all"][0], 0.0), dict.fromkeys(res["all"][0], 0.0)]
    for b in range(nb):
        ids = perm[b * batch_size : (b + 1) * batch_size]
        block = sims[np.ix_(ids, ids)]
        for a, s in zip(acc, (block, block.T)):
            for k, v in _metrics(_ranks(s)).items():
                a[k] += v / nb
    res["guo"] = tuple(acc)
    return {f"{p}/{d}/{k}": v for p, pair in res.items() for d, ms in zip(("t2m", "m2t"), pair) for k, v in ms.items()}


def evaluate(emb: dict[str, torch.Tensor], dev: torch.device | str = "cpu") -> dict[str, float]:
    metric = RetrievalMetric(protocols=PROTOCOLS).to(dev)
    n = len(emb["text"])
    metric.update(emb["text"].to(dev), emb["motion"].to(dev), torch.arange(n, device=dev),
                  sent_emb=emb["sent"].to(dev), in_subset=emb["subset"].to(dev))
    return {k: float(v) for k, v in metric.compute().items()}


def measure(dev: torch.device, quick: bool = False, n: int | None = None, repeats: int | None = None) -> dict:
    n = n or (2048 if quick else N)
    emb = embeddings(n)
    ref_vals, ours_vals = numpy_reference(emb), evaluate(emb, dev)
    diff = max(abs(ref_vals[k] - ours_vals[k]) for k in ref_vals)
    same_keys = set(ref_vals) == set(ours_vals)
    t = interleaved(lambda: numpy_reference(emb), lambda: evaluate(emb, dev), repeats or (2 if quick else 3), dev=dev)
    ok = same_keys and diff < 1e-9 and (t["ours_s"] < 2.0 if n == N else None)
    row = Row(f"retrieval eval {n} x {n}, 4 protocols", "numpy implementation",
              "< 2 s total" + ("" if n == N else " (at 4,384)"),
              f"{t['ours_s']:.2f} s (numpy {t['ref_s']:.2f} s, {t['speedup']:.1f}x); max diff {diff:.0e}",
              ok if n == N else None, dev.type)
    return {"row": row.to_dict(), "n": n, "max_abs_diff": diff, "timing": t, "metrics": ours_vals}


def run(quick: bool = False) -> dict:
    """On the CPU and, when available, on CUDA (a GPU row; the numpy reference stays on the CPU)."""
    return per_device(measure, quick)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    out = run(ap.parse_args().quick)
    for m in out.values():
        if isinstance(m, dict):
            m.pop("metrics", None)
    print(json.dumps(out, indent=2, default=float))
