"""Entropic Gromov-Wasserstein between two intra-batch distance matrices against POT.

``D``, ``C``: Euclidean distance matrices of 256 (quick: 128) random points in 32 and 180 dimensions, divided by
their maximum, float64 (POT's inner solver for GW is the scaling-domain Sinkhorn, which needs the range). Our
``eps`` corresponds to POT's ``epsilon = 2 eps`` (POT linearises with the full derivative ``2 E``). Both run POT's
default stopping rules: at most 1000 outer iterations with tolerance 1e-9 on the plan change, inner Sinkhorn to a
marginal error of 1e-9 (at most 1000 iterations). Reference ``ot.gromov.entropic_gromov_wasserstein``, ours
:func:`motion_text.losses.ot.entropic_gromov_wasserstein`. Target: plans equal to 1e-4, >= 1x.
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import Row, device, interleaved
from motion_text.losses.ot import entropic_gromov_wasserstein, pairwise_cost

EPS = 5e-3
OUTER, TOL, INNER, INNER_TOL = 1000, 1e-9, 1000, 1e-9


def problem(m: int, dev: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, 32, generator=g, dtype=torch.float64)
    y = torch.randn(m, 180, generator=g, dtype=torch.float64)
    D, C = pairwise_cost(x, x, "euclidean"), pairwise_cost(y, y, "euclidean")
    return (D / D.max()).to(dev), (C / C.max()).to(dev)


def run(quick: bool = False, m: int | None = None, repeats: int | None = None) -> dict:
    import ot

    dev = device()
    m = m or (128 if quick else 256)
    D, C = problem(m, dev)

    def ref():
        return ot.gromov.entropic_gromov_wasserstein(D, C, epsilon=2 * EPS, max_iter=OUTER, tol=TOL,
                                                     numItermax=INNER, stopThr=INNER_TOL, log=True)

    def ours():
        return entropic_gromov_wasserstein(D, C, EPS, outer_iters=OUTER, inner_iters=INNER, tol=TOL,
                                           inner_tol=INNER_TOL)

    plan_ref, log_ref = ref()
    out = ours()
    plan_diff = float((plan_ref - out["plan"]).abs().max())
    value_rel = abs(float(out["loss"]) - float(log_ref["gw_dist"])) / abs(float(log_ref["gw_dist"]))
    t = interleaved(ref, ours, repeats or (3 if quick else 5), dev=dev)
    ok = plan_diff <= 1e-4 and value_rel <= 1e-4 and t["speedup"] >= 1.0
    row = Row(f"entropic GW, m = {m}", "POT entropic_gromov_wasserstein", "plan/value diff <= 1e-4, >= 1x",
              f"plan diff {plan_diff:.1e}, value rel. {value_rel:.1e}, {t['speedup']:.1f}x "
              f"({t['ref_s'] * 1e3:.0f} -> {t['ours_s'] * 1e3:.0f} ms)", ok, dev.type)
    return {"rows": [row.to_dict()], "m": m, "eps": EPS, "plan_max_abs_diff": plan_diff, "value_rel_diff": value_rel,
            "plan_max": float(plan_ref.max()), "timing": t}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick), indent=2, default=float))
