"""A small fit that can be killed: ``python -m tests.reliability.sigterm_fit ROOT CKPT_DIR READY_FILE``.

After batch ``KILL_AFTER`` of epoch 0 it writes READY_FILE and slows down, so the test can send SIGTERM mid-epoch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule
from tests.cli.minimal import MeanFrame

KILL_AFTER = 2
MAX_EPOCHS = 2


class SlowAfter(L.Callback):
    def __init__(self, ready: Path | None):
        self.ready = ready

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.ready is not None and trainer.current_epoch == 0 and batch_idx >= KILL_AFTER:
            self.ready.write_text(str(trainer.global_step))
            time.sleep(0.5)


def make(root: str, ckpt_dir: str, ready: Path | None = None) -> tuple[L.Trainer, MeanFrame, MotionTextDataModule]:
    L.seed_everything(0, verbose=False)
    dm = MotionTextDataModule([DatasetSpec(root=root)], batch_size=2, num_workers=1, max_len=40)
    trainer = L.Trainer(max_epochs=MAX_EPOCHS, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=ckpt_dir, num_sanity_val_steps=0,
                        callbacks=[ModelCheckpoint(dirpath=ckpt_dir, save_last=True), SlowAfter(ready)])
    return trainer, MeanFrame(), dm


if __name__ == "__main__":
    trainer, model, dm = make(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
    trainer.fit(model, dm)
