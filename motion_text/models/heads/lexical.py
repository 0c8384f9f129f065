"""Lexical disentanglement head: token features -> sparse vocabulary-sized vector.

Lyu et al., "Towards unified human motion-language understanding via sparse interpretable
characterization", Sec. 3.1, Eq. 1-2 (after SPLADE, Formal et al. 2021):

    E_lex = LM-Head(E_embed)                              (Eq. 1), per token, in R^|V|
    p     = log(1 + ReLU(MaxPool_tokens(E_lex)))          (Eq. 2), in R^|V|

``t -> log(1 + ReLU(t))`` is non-decreasing, so ``max_n log1p(relu(x_n)) == log1p(relu(max_n x_n))``: the
head takes the max of the raw logits over the valid tokens first and applies the saturation once, to a
(B, |V|) tensor instead of a (B, N, |V|) one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = ["LexicalHead", "lexical_pool"]


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
        O(B * chunk * V + n_chunks * B * V) rather than O(B * N * V).

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
    return torch.log1p(torch.relu(running))


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
    """

    def __init__(self, lm_head: nn.Module, chunk_size: int = 64, use_checkpoint: bool = True) -> None:
        super().__init__()
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.lm_head = lm_head
        self.chunk_size = chunk_size
        self.use_checkpoint = use_checkpoint

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """(B, N, H) or (B, T, J, H) tokens + bool mask -> p (B, |V|) >= 0."""
        return lexical_pool(self.lm_head, tokens, mask, self.chunk_size, self.use_checkpoint)
