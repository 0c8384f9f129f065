"""``make demo`` / ``make lexical-demo``: train and evaluate on the synthetic set from a fresh machine.

``python -m motion_text.demo tmr``: generates the synthetic HumanML3D-layout set (2,000 motions, cached), trains the
small TMR of ``tmr_demo.yaml``, tests the best checkpoint and prints the protocol table.

``python -m motion_text.demo lexical``: the four ``lexical_phase{1..4}_synthetic.yaml`` phases in a row on the same set
(:func:`motion_text.methods.lexical.run_chain`), then lexical retrieval (p_t . p_m) on the test split and, for "kick"
and seven other action words, how often the word (and, separately, its regular inflections) is among the top-10 terms
of p_m for the motions whose captions contain it, how many of a motion's own caption words are among them
against other motions' captions, how often keyword search (``--keywords a b --inflect``) puts motions of both
actions first (:func:`motion_text.methods.lexical.keyword_report`), and captions of the test motions with their
metrics against a random-caption baseline (``lexical_caption_synthetic.yaml``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from motion_text.cli import main, resolve_config


def _best_ckpt(root: str) -> str:
    ckpts = sorted(Path(root).rglob("best-rsum*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise FileNotFoundError(f"no best-rsum checkpoint under {root}")
    return str(ckpts[-1])


def tmr_demo() -> None:
    t0 = time.time()
    cfg = resolve_config("tmr_demo.yaml")
    main(["fit", "--config", cfg])
    ckpt = _best_ckpt("runs/tmr_demo")
    main(["test", "--config", cfg, "--ckpt_path", ckpt])
    print(f"demo finished in {time.time() - t0:.0f} s; checkpoint: {ckpt}")


def lexical_demo() -> None:
    from motion_text.methods.lexical import run_chain

    run_chain(synthetic=True)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "tmr"
    {"tmr": tmr_demo, "lexical": lexical_demo}[which]()
