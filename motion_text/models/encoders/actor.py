"""ACTOR-style sequence encoder of TMR (Petrovich et al., ICCV 2023; TEMOS, ECCV 2022).

The same module encodes motions (Guo features, 263/251-d) and texts (frozen token features, 768-d DistilBERT or
384-d MiniLM): a linear projection, learnable distribution tokens prepended, sinusoidal positions and a post-norm
``nn.TransformerEncoder`` with a key padding mask. The output tokens at the distribution-token positions are
(mu, logvar) when ``vae`` is True, or a single embedding otherwise.

Attribute names follow TMR's ``src/model/actor.py`` (``projection``, ``tokens``, ``sequence_pos_encoding``,
``seqTransEncoder``), so a released TMR state dict loads after stripping its module prefix only.

The transformer is built with ``enable_nested_tensor=False`` (PyTorch's prototype nested-tensor conversion only
speeds up inference; results are the same), and runs through :func:`autocast_safe_fastpath` so that evaluation
under CPU autocast works.
"""

from __future__ import annotations

import torch
from einops import repeat
from torch import Tensor, nn

from motion_text.models.layers import SinusoidalPositionalEncoding, autocast_safe_fastpath

__all__ = ["ACTORStyleEncoder"]


class ACTORStyleEncoder(nn.Module):
    """Transformer encoder with learnable distribution tokens (TMR ``ACTORStyleEncoder``).

    Parameters
    ----------
    nfeats
        Input feature size per frame / token.
    vae
        Two output tokens (mu, logvar) when True, one otherwise.
    latent_dim, ff_size, num_layers, num_heads, dropout, activation
        Width, feed-forward size, depth, heads, dropout and activation of the post-norm transformer
        (TMR: 256, 1024, 6, 4, 0.1, GELU).

    Notes
    -----
    ``forward(x, mask)`` takes ``x`` (B, T, nfeats) and ``mask`` (B, T) bool with True = valid, and returns
    (B, n_tokens, latent_dim) with ``n_tokens = 2`` if ``vae`` else 1.
    """

    def __init__(self, nfeats: int, vae: bool = True, latent_dim: int = 256, ff_size: int = 1024,
                 num_layers: int = 6, num_heads: int = 4, dropout: float = 0.1, activation: str = "gelu") -> None:
        super().__init__()
        self.nfeats = nfeats
        self.vae = vae
        self.latent_dim = latent_dim
        self.nbtokens = 2 if vae else 1
        self.projection = nn.Linear(nfeats, latent_dim)
        self.tokens = nn.Parameter(torch.randn(self.nbtokens, latent_dim))
        self.sequence_pos_encoding = SinusoidalPositionalEncoding(latent_dim, dropout=dropout, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model=latent_dim, nhead=num_heads, dim_feedforward=ff_size,
                                           dropout=dropout, activation=activation, batch_first=True)
        self.seqTransEncoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Encode (B, T, nfeats) with validity mask (B, T) -> (B, n_tokens, latent_dim)."""
        return self.encode_sequence(x, mask)[:, : self.nbtokens]

    def encode_sequence(self, x: Tensor, mask: Tensor, return_mask: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Every output token: (B, n_tokens + T, latent_dim), the distribution tokens first, then one per input frame /
        word (the sequence the lexical head of the dagger baselines max-pools, :class:`~motion_text.models.heads.
        lexical.VocabularyProjection`). ``return_mask``: also return the (B, T) bool validity mask of the frame / word
        tokens (here ``mask`` itself; encoders that resample, such as MoT++'s, return theirs)."""
        if x.ndim != 3 or x.shape[-1] != self.nfeats:
            raise ValueError(f"expected input of shape (B, T, {self.nfeats}), got {tuple(x.shape)}")
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match input {tuple(x.shape[:2])}")
        b = x.shape[0]
        x = self.projection(x)  # (B, T, d)
        tokens = repeat(self.tokens, "n d -> b n d", b=b).to(x.dtype)
        xseq = self.sequence_pos_encoding(torch.cat([tokens, x], dim=1))  # (B, n + T, d)
        token_mask = torch.ones(b, self.nbtokens, dtype=torch.bool, device=x.device)
        aug_mask = torch.cat([token_mask, mask.bool()], dim=1)
        with autocast_safe_fastpath(x.device.type):
            out = self.seqTransEncoder(xseq, src_key_padding_mask=~aug_mask)
        return (out, mask.bool()) if return_mask else out
