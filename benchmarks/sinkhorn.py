"""Sinkhorn divergence of two batches of motion sequences against POT (log-domain), on torch tensors.

``x``, ``y``: 256 sequences of 60 x 144 (quick: 128), float32, ``y`` shifted and rescaled so the divergence is
clearly positive; squared Euclidean cost on the flattened sequences, ``eps`` = 1 % of the median cost. Both sides
run exactly 100 iterations (the paper's L; POT with ``stopThr=0``) and compute the same three transport terms:
reference ``ot.bregman.empirical_sinkhorn_divergence(..., method="sinkhorn_log")``, ours
:func:`motion_text.losses.ot.sinkhorn_divergence` with ``value="transport"`` (POT's transport terms; no gradient is
taken, so ``grad="unrolled"`` runs the same iterations as the default). Target: equal to 1e-5 relative, >= 1.5x faster. CPU, plus CUDA when available.
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import Row, interleaved, per_device
from motion_text.losses.ot import pairwise_cost, sinkhorn_divergence

ITERS = 100


def measure(dev: torch.device, quick: bool = False, batch: int | None = None, repeats: int | None = None) -> dict:
    import ot

    b = batch or (128 if quick else 256)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 60, 144, generator=g).to(dev)
    y = (1.1 * torch.randn(b, 60, 144, generator=g) + 0.1).to(dev)
    eps = float(0.01 * pairwise_cost(x, y).median())

    def ref():
        return ot.bregman.empirical_sinkhorn_divergence(
            x.reshape(b, -1), y.reshape(b, -1), eps, metric="sqeuclidean", method="sinkhorn_log",
            numIterMax=ITERS, stopThr=0.0, warn=False)

    def ours():
        return sinkhorn_divergence(x, y, eps, iters=ITERS, value="transport", grad="unrolled")["loss"]

    r, o = float(ref()), float(ours())
    rel = abs(o - r) / abs(r)
    t = interleaved(ref, ours, repeats or (3 if quick else 5), dev=dev)
    ok = rel <= 1e-5 and t["speedup"] >= 1.5
    row = Row(f"Sinkhorn divergence, batch {b}, 60x144", "POT empirical_sinkhorn_divergence (sinkhorn_log)",
              "rel. diff <= 1e-5, >= 1.5x", f"rel. diff {rel:.1e}, {t['speedup']:.1f}x "
              f"({t['ref_s'] * 1e3:.0f} -> {t['ours_s'] * 1e3:.0f} ms)", ok, dev.type)
    return {"row": row.to_dict(), "batch": b, "eps": eps, "iters": ITERS, "value_ref": r, "value_ours": o,
            "rel_diff": rel, "timing": t}


def run(quick: bool = False) -> dict:
    """On the CPU and, when available, on CUDA (a GPU row)."""
    return per_device(measure, quick)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick), indent=2, default=float))
