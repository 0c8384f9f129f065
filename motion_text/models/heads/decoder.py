"""ACTOR-style motion decoder of TMR / TEMOS (Petrovich et al., ECCV 2022, Sec. 3.2; TMR ``src/model/actor.py``).

A latent vector z is the single memory token of a post-norm ``nn.TransformerDecoder`` whose queries are the
sinusoidal position codes of the output frames (zeros + positions); a linear layer maps each frame back to the
feature space and padded frames are set to zero. Attribute names follow TMR (``sequence_pos_encoding``,
``seqTransDecoder``, ``final_layer``) so released checkpoints load by prefix only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from motion_text.models.layers import SinusoidalPositionalEncoding, autocast_safe_fastpath

__all__ = ["ACTORStyleDecoder"]


class ACTORStyleDecoder(nn.Module):
    """Decode a latent (B, latent_dim) into a motion (B, T, nfeats) of the lengths given by a validity mask.

    Parameters
    ----------
    nfeats
        Output feature size per frame.
    latent_dim, ff_size, num_layers, num_heads, dropout, activation
        Transformer hyper-parameters (TMR: 256, 1024, 6, 4, 0.1, GELU).
    """

    def __init__(self, nfeats: int, latent_dim: int = 256, ff_size: int = 1024, num_layers: int = 6,
                 num_heads: int = 4, dropout: float = 0.1, activation: str = "gelu") -> None:
        super().__init__()
        self.nfeats = nfeats
        self.latent_dim = latent_dim
        self.sequence_pos_encoding = SinusoidalPositionalEncoding(latent_dim, dropout=dropout, batch_first=True)
        layer = nn.TransformerDecoderLayer(d_model=latent_dim, nhead=num_heads, dim_feedforward=ff_size,
                                           dropout=dropout, activation=activation, batch_first=True)
        self.seqTransDecoder = nn.TransformerDecoder(layer, num_layers=num_layers)
        self.final_layer = nn.Linear(latent_dim, nfeats)

    def forward(self, z: Tensor, mask: Tensor) -> Tensor:
        """Decode ``z`` (B, latent_dim) with validity mask (B, T) bool (True = valid) -> (B, T, nfeats)."""
        if z.ndim != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"expected z of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        if mask.ndim != 2 or mask.shape[0] != z.shape[0]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match a batch of {z.shape[0]} latents")
        mask = mask.bool()
        b, t = mask.shape
        queries = self.sequence_pos_encoding(torch.zeros(b, t, self.latent_dim, device=z.device, dtype=z.dtype))
        with autocast_safe_fastpath(z.device.type):
            out = self.seqTransDecoder(tgt=queries, memory=z[:, None], tgt_key_padding_mask=~mask)
        out = self.final_layer(out)  # (B, T, nfeats)
        return out.masked_fill(~mask[..., None], 0.0)
