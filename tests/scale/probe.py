"""A callback used by the scale tests: records the step-1 loss (averaged over ranks, as DDP optimises it) and the
test metrics, written by rank 0 to a JSON file."""

import json
import os

import lightning as L
import torch.distributed as dist


class Probe(L.Callback):
    def __init__(self, out: str = "probe.json") -> None:
        self.out = out
        self.data: dict = {}

    def _write(self, trainer) -> None:
        if trainer.global_rank == 0:
            old = json.load(open(self.out)) if os.path.exists(self.out) else {}
            with open(self.out, "w") as f:
                json.dump({**old, **self.data}, f)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == 1 and "step1_loss" not in self.data:
            loss = outputs["loss"].detach().double().clone()
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(loss)
                loss /= dist.get_world_size()
            self.data["step1_loss"] = float(loss)
            self._write(trainer)

    def on_test_end(self, trainer, pl_module) -> None:
        self.data["test"] = getattr(pl_module, "test_results", {})
        self._write(trainer)
