"""A minimal method used to test the CLI and data plumbing: predicts the mean frame of a clip from its caption length."""

import torch

from motion_text.methods.base import MotionTextMethod


class MeanFrame(MotionTextMethod):
    def __init__(self, hidden: int = 8, lr: float = 1e-2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(self.nfeats, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, self.nfeats))

    def _loss(self, batch):
        m, mask = batch["motion"], batch["mask"]
        pred = self.net(m)
        return ((pred - m) ** 2)[mask].mean()

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train/loss", loss, batch_size=len(batch["text"]))
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self._loss(batch), batch_size=len(batch["text"]))

    def test_step(self, batch, batch_idx):
        self.log("test/loss", self._loss(batch), batch_size=len(batch["text"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
