"""Callbacks shared by the methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

__all__ = ["EmbeddingWriter"]


class EmbeddingWriter(BasePredictionWriter):
    """Write ``predict`` outputs (dicts of tensors plus ``key`` lists) to ``output_dir``.

    Each tensor field becomes ``<name>.npy`` (rows in key order) and everything is also saved together in
    ``predictions.pt`` (loadable with ``torch.load(..., weights_only=True)``); keys go to ``keys.txt``.
    With several processes each rank writes ``rank<r>/``.
    """

    def __init__(self, output_dir: str = "predictions") -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        out = Path(self.output_dir)
        if trainer.world_size > 1:
            out = out / f"rank{trainer.global_rank}"
        out.mkdir(parents=True, exist_ok=True)
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        keys: list[str] = []
        fields: dict[str, list[torch.Tensor]] = {}
        for b in batches:
            keys.extend(b["key"])
            for name, value in b.items():
                if torch.is_tensor(value):
                    fields.setdefault(name, []).append(value.detach().float().cpu())
        merged = {name: torch.cat(vs) for name, vs in fields.items()}
        for name, value in merged.items():
            np.save(out / f"{name}.npy", value.numpy())
        (out / "keys.txt").write_text("".join(f"{k}\n" for k in keys))
        torch.save({"keys": keys, **merged}, out / "predictions.pt")
