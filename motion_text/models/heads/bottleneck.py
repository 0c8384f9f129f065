"""Lexical bottleneck masked decoder (LexMLM / LexMMM / LexCMLP auxiliary loss).

Lyu et al., "Towards unified human motion-language understanding via sparse interpretable
characterization", Sec. 3.1 (Eq. 4) and Sec. 3.2 (second term of Eq. 5, first term of Eq. 7), after
LexMAE (Shen et al., ICLR 2023):

    E_cbow = p . sg(W^(te))                                                         (Eq. 4)

a continuous bag of words built from the lexical vector p (B, |V|) and the language model's word
embeddings W^(te) (|V|, d) under stop-gradient. E_cbow is the first token of a shallow transformer whose
other inputs are the embeddings of a heavily masked caption; the decoder predicts the masked tokens
through the shared LM head, so the only route from the encoder to the reconstruction is p.

Normalisation of p. Eq. 4 writes the plain product. The LexMAE reference code
(``generate_bottleneck_repre`` in taoshen58/LexMAE) normalises before the product: its default
applies a softmax to the max-pooled raw logits, and its ``"logits_sat"`` variant -- the one that starts,
like Eq. 4, from the saturated vector p = log(1 + ReLU(.)) -- divides p by ``sum(p) + 1e-4``.
``normalize="sum"`` (default) is that variant: E_cbow is a weighted average of the embeddings of the
active words only, independent of the scale of p (which the FLOPS term shrinks). ``"softmax"`` applies a
softmax to p (inactive words then share the remaining mass); ``"none"`` is Eq. 4 verbatim. The decoder
input [E_cbow; word embeddings of the masked caption] plus learnable positions then goes through a
LayerNorm, as in BERT's embedding layer. LexMAE puts the bottleneck in the [CLS] slot; here it is
prepended as an extra first token and its output slot is dropped.

Caption length. At 100 % masking the decoder is a non-autoregressive captioner (Sec. 3.2.3) and needs the caption
length in advance. As in Mask-Predict (Ghazvininejad et al., EMNLP 2019, Sec. 3), a length classifier predicts it,
here from E_cbow alone: ``length_head`` reads ``sg(E_cbow)`` and is trained with cross-entropy on the number of content
tokens (:meth:`BottleneckDecoder.length_loss`). Its input is detached, so it adds nothing to the gradients of p, the
encoders or the decoder: the paper's objective (Eq. 5, 7, 8) is unchanged. ``length_updates`` counts its training
steps (a checkpoint whose length head was never trained is detectable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BottleneckDecoder", "masked_lm_loss"]

_NORMALIZE = ("sum", "softmax", "none")


def masked_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over masked positions only (labels != -100).

    Parameters
    ----------
    logits : Tensor
        (B, L, V) vocabulary logits.
    labels : Tensor
        (B, L) long, original token ids at masked positions and -100 elsewhere.

    Returns
    -------
    Tensor
        Scalar float32 loss; 0 (with a graph to ``logits``) when nothing is masked.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    selected = labels != -100
    if not bool(selected.any()):
        return logits.float().sum() * 0.0
    return F.cross_entropy(logits[selected].float(), labels[selected])


class BottleneckDecoder(nn.Module):
    """Shallow transformer that reconstructs a masked caption from a lexical bottleneck (Eq. 4).

    Parameters
    ----------
    hidden_size : int
        d, the language model's hidden size (= word-embedding width).
    lm_head : nn.Module
        Shared LM head (..., d) -> (..., |V|), e.g. ``MaskedLMTextEncoder.lm_head``.
    num_layers : int
        Transformer layers (2 by default, a "weakened" decoder as in LexMAE).
    num_heads : int, optional
        Attention heads; default ``max(1, hidden_size // 64)``.
    ff_mult : int
        Feed-forward width as a multiple of ``hidden_size``.
    dropout : float
        Dropout in the embeddings and the transformer layers.
    max_len : int
        Longest caption (in tokens) the learnable positions cover; the bottleneck takes one extra slot.
    normalize : {"sum", "softmax", "none"}
        How p is normalised before the product with sg(W^(te)) (see module docstring).
    """

    def __init__(
        self,
        hidden_size: int,
        lm_head: nn.Module,
        num_layers: int = 2,
        num_heads: int | None = None,
        ff_mult: int = 4,
        dropout: float = 0.1,
        max_len: int = 128,
        normalize: str = "sum",
    ) -> None:
        super().__init__()
        if normalize not in _NORMALIZE:
            raise ValueError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}")
        if hidden_size < 1 or num_layers < 1 or max_len < 1:
            raise ValueError(
                f"hidden_size, num_layers and max_len must be positive, got {hidden_size}, {num_layers}, {max_len}"
            )
        num_heads = num_heads if num_heads is not None else max(1, hidden_size // 64)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.hidden_size = hidden_size
        self.max_len = max_len
        self.normalize = normalize
        self.position = nn.Embedding(max_len + 1, hidden_size)  # slot 0: bottleneck
        nn.init.normal_(self.position.weight, std=0.02)
        self.norm_in = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            dim_feedforward=ff_mult * hidden_size,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(hidden_size)
        self.lm_head = lm_head
        # caption length (content tokens, 0 .. max_len) from sg(E_cbow); see the module docstring
        self.length_head = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, max_len + 1))
        self.register_buffer("length_updates", torch.zeros((), dtype=torch.long))

    def cbow(self, p: Tensor, word_embeddings: Tensor) -> Tensor:
        """Eq. 4: E_cbow (B, d) = normalise(p) (B, |V|) @ sg(W^(te)) (|V|, d); no gradient reaches W^(te)."""
        if p.dim() != 2 or word_embeddings.dim() != 2 or p.shape[1] != word_embeddings.shape[0]:
            raise ValueError(
                f"p must be (B, V) and word_embeddings (V, d) with the same V, got {tuple(p.shape)} "
                f"and {tuple(word_embeddings.shape)}"
            )
        if self.normalize == "softmax":
            weights = torch.softmax(p.float(), dim=-1)
        elif self.normalize == "sum":
            weights = p.float() / (p.float().sum(dim=-1, keepdim=True) + 1e-4)
        else:
            weights = p.float()
        w_te = word_embeddings.detach()  # sg(.)
        return weights.to(w_te.dtype) @ w_te

    def forward(
        self, p: Tensor, masked_ids: Tensor, attention_mask: Tensor, word_embeddings: Tensor,
        select: Tensor | None = None,
    ) -> Tensor:
        """Predict the caption tokens from the bottleneck and the masked caption.

        Parameters
        ----------
        p : Tensor
            (B, |V|) lexical vector (text or motion branch).
        masked_ids : Tensor
            (B, L) long ids of the heavily masked caption (see ``motion_text.models.masking.mask_tokens``).
        attention_mask : Tensor
            (B, L), non-zero at real tokens.
        word_embeddings : Tensor
            (|V|, d) the language model's word-embedding matrix W^(te); used under stop-gradient, both for
            E_cbow and for the caption's input embeddings.
        select : Tensor, optional
            (B, L) bool: score only these positions (e.g. the masked ones, the only ones the loss reads).

        Returns
        -------
        Tensor
            (B, L, |V|) logits for the caption positions (the bottleneck slot is dropped), or (K, |V|) for the K
            selected positions.
        """
        if masked_ids.dim() != 2 or masked_ids.shape != attention_mask.shape:
            raise ValueError(
                f"masked_ids and attention_mask must both be (B, L), got {tuple(masked_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        b, length = masked_ids.shape
        if length > self.max_len:
            raise ValueError(f"caption length {length} exceeds max_len={self.max_len}")
        w_te = word_embeddings.detach()
        bottleneck = self.cbow(p, w_te).unsqueeze(1)  # b 1 d
        words = F.embedding(masked_ids, w_te)  # b l d
        x = torch.cat([bottleneck.to(words.dtype), words], dim=1)  # b (1+l) d
        x = x + self.position.weight[: length + 1].unsqueeze(0)
        x = self.dropout(self.norm_in(x))
        valid = torch.cat(
            [torch.ones_like(attention_mask[:, :1], dtype=torch.bool), attention_mask.bool()], 1
        )
        x = self.layers(x, src_key_padding_mask=~valid)
        x = self.norm_out(x[:, 1:])  # b l d
        return self.lm_head(x if select is None else x[select])

    def length_logits(self, p: Tensor, word_embeddings: Tensor) -> Tensor:
        """(B, max_len + 1) logits of the caption's content length, from sg(E_cbow) of p (B, |V|)."""
        return self.length_head(self.cbow(p.detach(), word_embeddings).detach())

    def length_loss(self, p: Tensor, word_embeddings: Tensor, lengths: Tensor) -> Tensor:
        """Cross-entropy of the length classifier against ``lengths`` (B,) content tokens per caption (clipped to
        ``max_len``); trains ``length_head`` only. Counts an update in ``length_updates`` in training mode."""
        if lengths.shape != p.shape[:1]:
            raise ValueError(f"lengths must be (B,) = {tuple(p.shape[:1])}, got {tuple(lengths.shape)}")
        if self.training:
            self.length_updates += 1
        logits = self.length_logits(p, word_embeddings).float()
        return F.cross_entropy(logits, lengths.long().clamp(0, self.max_len))

    def predict_lengths(self, p: Tensor, word_embeddings: Tensor, beam: int = 3, min_length: int = 1) -> Tensor:
        """(B, beam) long: the ``beam`` most likely caption lengths (>= ``min_length``), most likely first.

        Lengths count content tokens; a caption also holds [CLS] and [SEP], so at most ``max_len - 2`` are proposed.
        """
        logits = self.length_logits(p, word_embeddings).float()
        logits[:, :min_length] = float("-inf")
        logits[:, self.max_len - 1:] = float("-inf")
        return logits.topk(min(beam, self.max_len - 1 - min_length), dim=1).indices

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy on the masked positions (second term of Eq. 5, first term of Eq. 7)."""
        return masked_lm_loss(logits, labels)
