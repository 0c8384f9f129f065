"""DropTriple's motion encoder (Yan et al., "Cross-modal retrieval for motion and text via DropTriple loss",
arXiv 2305.04195; rehamot ``model/motionencoder/transformer.py`` @06ed696).

Per frame a linear embedding to 256-d, one learnable embedding token prepended, sinusoidal positions + dropout, a
3-layer post-norm ``nn.TransformerEncoder`` with a key padding mask; the output at the token position is
L2-normalised, projected to the 1024-d joint space and L2-normalised again.

Attribute names follow the reference (``skel_embedding``, ``emb_token``, ``sequence_pos_encoding``,
``seqTransEncoder``, ``fc``). The reference runs the transformer sequence-first; the weights are the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import repeat
from torch import Tensor, nn

from motion_text.models.layers import SinusoidalPositionalEncoding, autocast_safe_fastpath

__all__ = ["ClsTransformerEncoder"]


class ClsTransformerEncoder(nn.Module):
    """Transformer motion encoder read out at a learnable [cls] token, projected to a unit-norm joint space.

    Parameters
    ----------
    nfeats
        Input feature size per frame (263 HumanML3D, 251 KIT-ML).
    latent_dim
        Transformer width (256).
    embed_dim
        Joint-space size (1024).
    ff_size, num_layers, num_heads, dropout, activation
        Post-norm transformer hyper-parameters (1024, 3, 4, 0.1, GELU).
    """

    def __init__(self, nfeats: int, latent_dim: int = 256, embed_dim: int = 1024, ff_size: int = 1024,
                 num_layers: int = 3, num_heads: int = 4, dropout: float = 0.1, activation: str = "gelu") -> None:
        super().__init__()
        self.nfeats = nfeats
        self.latent_dim = latent_dim
        self.embed_dim = embed_dim
        self.skel_embedding = nn.Linear(nfeats, latent_dim)
        self.emb_token = nn.Parameter(torch.randn(latent_dim))
        self.sequence_pos_encoding = SinusoidalPositionalEncoding(latent_dim, dropout=dropout, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model=latent_dim, nhead=num_heads, dim_feedforward=ff_size,
                                           dropout=dropout, activation=activation, batch_first=True)
        self.seqTransEncoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
        self.fc = nn.Linear(latent_dim, embed_dim)

    def backbone(self, x: Tensor, mask: Tensor) -> Tensor:
        """Transformer output at the [cls] position, (B, latent_dim), before any normalisation or projection.

        ``x`` is (B, T, nfeats) and ``mask`` (B, T) bool with True = valid frame.
        """
        if x.ndim != 3 or x.shape[-1] != self.nfeats:
            raise ValueError(f"expected input of shape (B, T, {self.nfeats}), got {tuple(x.shape)}")
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match input {tuple(x.shape[:2])}")
        b = x.shape[0]
        x = self.skel_embedding(x)  # (B, T, d)
        token = repeat(self.emb_token, "d -> b 1 d", b=b).to(x.dtype)
        xseq = self.sequence_pos_encoding(torch.cat([token, x], dim=1))  # (B, 1 + T, d)
        aug_mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=x.device), mask.bool()], dim=1)
        with autocast_safe_fastpath(x.device.type):
            return self.seqTransEncoder(xseq, src_key_padding_mask=~aug_mask)[:, 0]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Unit-norm joint-space embedding (B, embed_dim): ``normalize(fc(normalize(backbone(x, mask))))``."""
        h = F.normalize(self.backbone(x, mask), dim=-1)
        return F.normalize(self.fc(h), dim=-1)
