"""Training-step throughput of each motion encoder against the machine's measured fp32 matrix-product rate.

One step = forward, a mean-square loss on the output, backward and an AdamW update of the encoder alone, on random
inputs with random valid lengths (at least half of the frames). FLOPs of the step are counted with
``torch.utils.flop_counter.FlopCounterMode`` (forward + backward); the reference rate is ``torch.mm`` of two
2048 x 2048 fp32 squares, timed interleaved with the steps. Target: model FLOP/s >= 40 % of that rate for the
transformer encoders (the MDOT convolutional generator is reported only). Runs on the CPU and, when available, CUDA.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.common import Row, StepCost, devices, interleaved, timed

TARGET = 0.40
MM_SIZE = 2048


@dataclass
class Case:
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], tuple]
    batch: int
    transformer: bool = True


def _mask(b: int, t: int, g: torch.Generator) -> torch.Tensor:
    lengths = torch.randint(t // 2, t + 1, (b,), generator=g)
    lengths[0] = t
    return torch.arange(t)[None, :] < lengths[:, None]


def cases(quick: bool) -> list[Case]:
    from motion_text.models.encoders.actor import ACTORStyleEncoder
    from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder
    from motion_text.models.encoders.motpp import MoTPPEncoder
    from motion_text.models.encoders.spatiotemporal import SpatioTemporalEncoder

    b, t = 32, (60 if quick else 100)
    guo = lambda g: (torch.randn(b, t, 263, generator=g), _mask(b, t, g))  # noqa: E731
    out = [
        Case(f"TMR ACTOR encoder (6 layers), B={b}, T={t}", lambda: ACTORStyleEncoder(263), guo, b),
        Case(f"MoT++ encoder, B={b}, T={t}", lambda: MoTPPEncoder("humanml3d"), guo, b),
        Case(f"DropTriple cls transformer, B={b}, T={t}", lambda: ClsTransformerEncoder(263), guo, b),
    ]
    tl = 16 if quick else 32  # activations: B x T x 22 joint tokens per layer
    out.append(Case(f"lexical spatio-temporal encoder, B={b}, T={tl}, J=22",
                    lambda: SpatioTemporalEncoder(22, 3, dim=256, out_dim=384, depth=4, num_heads=8, max_tokens_t=16),
                    lambda g: (torch.randn(b, tl, 22, 3, generator=g), _mask(b, tl, g)), b))
    try:  # the MDOT method may not be part of the tree yet
        from motion_text.data.aistpp import POSE_DIM
        from motion_text.models.encoders.music import DanceConvGenerator
    except ImportError:
        return out
    tm = 120 if quick else 240
    out.append(Case(f"MDOT conv generator, B={b}, T={tm}", lambda: DanceConvGenerator(35 + 16, POSE_DIM),
                    lambda g: (torch.randn(b, tm, 35 + 16, generator=g), _mask(b, tm, g)), b, transformer=False))
    return out


def make_step(model: nn.Module, args: tuple, opt: torch.optim.Optimizer | None = None) -> Callable[[], None]:
    """One AdamW training step of ``model`` on ``args`` with a mean-square loss on its (first) output."""
    opt = opt or torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(*args)
        out = out[0] if isinstance(out, tuple) else out
        out.float().square().mean().backward()
        opt.step()

    return step


def step_flops(model: nn.Module, args: tuple) -> int:
    """FLOPs of forward + backward (the optimizer's elementwise update is not counted)."""
    cost = StepCost()
    cost.start(model)
    out = model(*args)
    out = out[0] if isinstance(out, tuple) else out
    out.float().square().mean().backward()
    cost.stop()
    model.zero_grad(set_to_none=True)
    return cost.flops


def measure(case: Case, dev: torch.device, repeats: int) -> dict:
    """Step time, samples/s, FLOP/s and the fraction of the matmul rate for one encoder on ``dev``."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = case.build().to(dev).train()
    args = tuple(a.to(dev) for a in case.inputs(g))
    flops = step_flops(model, args)
    step = make_step(model, args)
    a = torch.randn(MM_SIZE, MM_SIZE, device=dev)
    bm = torch.randn(MM_SIZE, MM_SIZE, device=dev)
    t = interleaved(lambda: torch.mm(a, bm), step, repeats, dev=dev)
    mm_rate = 2.0 * MM_SIZE**3 / t["ref_s"]
    rate = flops / t["ours_s"]
    return {"step_s": t["ours_s"], "samples_per_s": case.batch / t["ours_s"], "flops_per_step": flops,
            "flops_per_s": rate, "matmul_flops_per_s": mm_rate, "fraction": rate / mm_rate, "timing": t}


def tmr_step_samples_per_s(dev: torch.device | str = "cpu", repeats: int = 3, quick: bool = False) -> float:
    """Samples/s of the TMR ACTOR encoder's training step (the reference of the data-pipeline benchmark)."""
    case = cases(quick)[0]
    g = torch.Generator().manual_seed(0)
    model = case.build().to(dev).train()
    step = make_step(model, tuple(x.to(dev) for x in case.inputs(g)))
    step()
    return case.batch / min(timed(step, dev) for _ in range(repeats))


def run(quick: bool = False, repeats: int | None = None) -> dict:
    rows, details = [], {}
    for dev in devices():
        for case in cases(quick)[: 1 if quick else None]:  # quick: the TMR encoder only
            m = measure(case, dev, repeats or (2 if quick else 3))
            details[f"{dev.type}/{case.name}"] = m
            met = (m["fraction"] >= TARGET) if case.transformer else None
            rows.append(Row(f"train step: {case.name}", "fp32 torch.mm rate",
                            ">= 40 % of it" if case.transformer else "report",
                            f"{100 * m['fraction']:.0f} % ({m['flops_per_s'] / 1e9:.1f} of "
                            f"{m['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s), {m['samples_per_s']:.0f} samples/s",
                            met, dev.type).to_dict())
    return {"rows": rows, "encoders": details}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick)["rows"], indent=2, default=float))
