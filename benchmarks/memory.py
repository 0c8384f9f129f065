"""Peak memory of a short TMR fit (``tmr_demo.yaml``, synthetic HumanML3D), precision bf16-mixed against 32.

Each fit runs in its own interpreter (``python -m benchmarks.memory --child PRECISION``) for a few optimisation
steps on a 256-motion synthetic set without validation, checkpoints or logger; the child reports its peak resident set size and, on CUDA, the peak
allocated GPU memory. Reported only (no target).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.common import Row, peak_rss_mb

#: motions of the synthetic set (generated once into ``$MOTION_TEXT_CACHE``); few, so caption caching stays short
SYNTHETIC = 256


def child(precision: str, steps: int) -> dict:
    import torch

    from motion_text.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        main(["fit", "--config", "tmr_demo.yaml", f"--trainer.precision={precision}", f"--trainer.max_steps={steps}",
              "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0", "--trainer.logger=false",
              "--trainer.enable_checkpointing=false", "--trainer.callbacks=[]", "--trainer.enable_progress_bar=false",
              "--trainer.enable_model_summary=false", f"--trainer.default_root_dir={tmp}", "--data.num_workers=0",
              f"--data.datasets=[{{name: humanml3d, synthetic: {SYNTHETIC}}}]"])
    out = {"peak_rss_mb": peak_rss_mb()}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure(precision: str, steps: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", precision, "--steps", str(steps)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict:
    steps = 2 if quick else 5
    res = {p: measure(p, steps) for p in ("32", "bf16-mixed")}
    key = "peak_cuda_mb" if "peak_cuda_mb" in res["32"] else "peak_rss_mb"
    a, b = res["32"][key], res["bf16-mixed"][key]
    what = "GPU allocated" if key == "peak_cuda_mb" else "RSS"
    row = Row(f"peak memory, TMR fit ({steps} steps)", "precision 32", "report",
              f"peak {what}: 32 {a:.0f} MB, bf16-mixed {b:.0f} MB ({b / a:.2f}x)", None,
              "cuda" if key == "peak_cuda_mb" else "cpu")
    return {"rows": [row.to_dict()], "steps": steps, "fits": res}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", metavar="PRECISION")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
    else:
        print(json.dumps(run(args.quick), indent=2, default=float))
