"""Spatio-temporal transformer over skeleton joints (motion encoder of the lexical method).

Lyu et al., "Towards unified human motion-language understanding via sparse interpretable
characterization", Sec. 3.1 (Motion Encoder): joints X (T, J, C_in) are projected to F^0 (T, J, C_f), the
learnable spatial joint embeddings P^S (1, J, C_f) and temporal position embeddings are added, a transformer
with spatial and temporal attention extracts features, and a final linear layer maps them to the shared
embedding space (here ``out_dim``, e.g. the language model's hidden size so its LM head yields vocabulary
logits, Eq. 1).

Each block is pre-norm: spatial attention over the J joints of a frame, temporal attention over the
frames of a joint (padding frames are masked out as keys), then an MLP. Valid outputs therefore do not
depend on padding frames nor on other samples of the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = ["SpatioTemporalEncoder", "masked_temporal_pool"]


class _Attention(nn.Module):
    """Multi-head self-attention over one axis of (B, T, J, C) joint tokens: the J joints of each frame (``spatial``)
    or the T frames of each joint (``temporal``, with a boolean key mask, True = attend). The tokens stay in their
    (B, T, J, C) layout; only q, k, v and the output are rearranged."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """x (B, T, J, C); key_mask None: spatial attention; (B, T) bool: temporal attention -> (B, T, J, C)."""
        b, _, j, _ = x.shape
        p = self.dropout if self.training else 0.0
        if key_mask is None:
            q, k, v = rearrange(self.qkv(x), "b t j (three h d) -> three (b t) h j d", three=3, h=self.num_heads)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            return self.proj(rearrange(out, "(b t) h j d -> b t j (h d)", b=b))
        q, k, v = rearrange(self.qkv(x), "b t j (three h d) -> three (b j) h t d", three=3, h=self.num_heads)
        attend = repeat(key_mask, "b t -> (b j) 1 1 t", j=j)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=p)
        return self.proj(rearrange(out, "(b j) h t d -> b t j (h d)", b=b))


class _Block(nn.Module):
    """Pre-norm spatial attention + temporal attention + MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_s = nn.LayerNorm(dim)
        self.attn_s = _Attention(dim, num_heads, dropout)
        self.norm_t = nn.LayerNorm(dim)
        self.attn_t = _Attention(dim, num_heads, dropout)
        self.norm_m = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )
        self.drop = nn.Dropout(dropout)

    def _spatial(self, x: Tensor) -> Tensor:
        return self.drop(self.attn_s(self.norm_s(x)))

    def _temporal(self, x: Tensor, frame_mask: Tensor) -> Tensor:
        return self.drop(self.attn_t(self.norm_t(x), frame_mask))

    def _mlp(self, x: Tensor) -> Tensor:
        return self.mlp(self.norm_m(x))

    def forward(self, x: Tensor, frame_mask: Tensor, checkpointing: bool = False) -> Tensor:
        """x (B, T, J, C), frame_mask (B, T) bool (True = valid key) -> (B, T, J, C). ``checkpointing``: each of the
        three residual branches keeps only its input and is run again in the backward pass."""
        if not checkpointing:
            x = x + self._spatial(x)
            x = x + self._temporal(x, frame_mask)
            return x + self._mlp(x)
        x = x + checkpoint(self._spatial, x, use_reentrant=False)
        x = x + checkpoint(self._temporal, x, frame_mask, use_reentrant=False)
        return x + checkpoint(self._mlp, x, use_reentrant=False)


def masked_temporal_pool(x: Tensor, mask: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Average valid frames in non-overlapping windows of ``stride`` frames.

    Parameters
    ----------
    x : Tensor
        (B, T, J, C) features.
    mask : Tensor
        (B, T) bool, True at valid frames.
    stride : int
        Window length; the last window may be shorter (the input is padded with invalid frames).

    Returns
    -------
    pooled : Tensor
        (B, ceil(T / stride), J, C), the mean of each window's valid frames (zero if none).
    pooled_mask : Tensor
        (B, ceil(T / stride)) bool, True where the window holds at least one valid frame.
    """
    if stride == 1:
        return x, mask
    b, t = mask.shape
    t_out = math.ceil(t / stride)
    pad = t_out * stride - t
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        mask = F.pad(mask, (0, pad), value=False)
    w = rearrange(mask.to(x.dtype), "b (t k) -> b t k 1 1", k=stride)
    x = rearrange(x, "b (t k) j c -> b t k j c", k=stride)
    count = w.sum(dim=2)  # b t 1 1
    pooled = (x * w).sum(dim=2) / count.clamp_min(1.0)
    return pooled, rearrange(count, "b t 1 1 -> b t") > 0


class SpatioTemporalEncoder(nn.Module):
    """Spatial + temporal attention transformer over joint tokens.

    Parameters
    ----------
    num_joints : int
        J.
    in_dim : int
        C_in, features per joint (e.g. 3 for positions, 12 for rotation + position + velocity).
    dim : int
        C_f, transformer width (256 by default).
    out_dim : int
        Width of the output tokens (e.g. the language model's hidden size H).
    depth : int
        Number of spatial + temporal blocks.
    num_heads : int
        Attention heads (must divide ``dim``).
    mlp_ratio : float
        MLP hidden width as a multiple of ``dim``.
    dropout : float
        Dropout on attention weights, residual branches and embeddings.
    max_len : int
        Longest clip (frames) the learnable temporal embeddings cover.
    max_tokens_t : int, optional
        If set, frames are average-pooled (over valid frames only) in windows of
        ``ceil(T / max_tokens_t)`` frames after the transformer blocks, so at most ``max_tokens_t`` time
        steps reach the output. This bounds the T' x J tokens that the lexical head must score against the
        whole vocabulary. The window length depends only on the padded length T of the batch, so
        outputs do not depend on other samples; adding padding frames changes the outputs only when it
        changes the window length (never without pooling).
    checkpointing : bool
        Activation checkpointing of each block's three residual branches (spatial attention, temporal attention,
        MLP; ``torch.utils.checkpoint``): in training a branch keeps only its input and runs again in the backward
        pass (dropout draws replayed), so outputs and gradients are those of the plain forward while the activations
        kept for the backward pass shrink from about 24 (B, T, J, ``dim``) tensors plus the attention maps per block
        to three, and the recomputation holds one branch at a time. Costs one more forward pass of the blocks
        (docs/scale.md §4: at T = 196 frames x 22 joints one sample's blocks keep ~0.9 GB without it).

    Notes
    -----
    Forward returns ``tokens`` (B, T', J, out_dim), zero at invalid time steps, and ``token_mask``
    (B, T', J) bool. A clip without any valid frame gets unmasked temporal attention (to avoid NaNs)
    and an all-False token mask.
    """

    def __init__(
        self,
        num_joints: int,
        in_dim: int,
        dim: int = 256,
        out_dim: int = 768,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        max_len: int = 512,
        max_tokens_t: int | None = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        for name, value in dict(
            num_joints=num_joints, in_dim=in_dim, dim=dim, out_dim=out_dim, depth=depth, max_len=max_len
        ).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if max_tokens_t is not None and (not isinstance(max_tokens_t, int) or max_tokens_t < 1):
            raise ValueError(f"max_tokens_t must be a positive integer or None, got {max_tokens_t!r}")
        self.num_joints = num_joints
        self.in_dim = in_dim
        self.dim = dim
        self.out_dim = out_dim
        self.max_len = max_len
        self.max_tokens_t = max_tokens_t
        self.checkpointing = checkpointing
        self.input_proj = nn.Linear(in_dim, dim)
        self.joint_embed = nn.Parameter(torch.zeros(1, 1, num_joints, dim))  # P^S, broadcast over b, t
        self.time_embed = nn.Parameter(torch.zeros(1, max_len, 1, dim))  # P^T, broadcast over b, j
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        self.embed_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.output_proj = nn.Linear(dim, out_dim)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode joints.

        Parameters
        ----------
        x : Tensor
            (B, T, J, C_in) joint features.
        mask : Tensor
            (B, T) bool, True at valid frames.

        Returns
        -------
        tokens : Tensor
            (B, T', J, out_dim), T' = T without pooling, else ``ceil(T / ceil(T / max_tokens_t))``.
        token_mask : Tensor
            (B, T', J) bool.
        """
        if x.dim() != 4 or x.shape[2] != self.num_joints or x.shape[3] != self.in_dim:
            raise ValueError(
                f"x must be (B, T, {self.num_joints}, {self.in_dim}), got shape {tuple(x.shape)}"
            )
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask must be (B, T) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"clip length T={t} exceeds max_len={self.max_len}")
        mask = mask.bool()
        h = self.input_proj(x) + self.joint_embed + self.time_embed[:, :t]  # b t j c
        h = self.embed_drop(h)
        # keys for temporal attention; a clip with no valid frame attends to all frames (avoids NaN)
        key_mask = mask | ~mask.any(dim=1, keepdim=True)
        recompute = self.checkpointing and torch.is_grad_enabled()
        for block in self.blocks:
            h = block(h, key_mask, checkpointing=recompute)
        h = self.norm(h)
        if self.max_tokens_t is not None:
            h, mask = masked_temporal_pool(h, mask, math.ceil(t / self.max_tokens_t))
        tokens = self.output_proj(h) * rearrange(mask, "b t -> b t 1 1").to(h.dtype)
        token_mask = repeat(mask, "b t -> b t j", j=self.num_joints)
        return tokens, token_mask
