"""Music-to-pose sequence generators ``g_theta`` of MDOT-Net: per-frame music features in, per-frame poses out.

Two interchangeable modules with the factory signature ``(in_dim, out_dim) -> nn.Module`` and
``forward(x (B, T, in_dim), mask (B, T) bool) -> (B, T, out_dim)``:

* :class:`DanceConvGenerator` (default): a non-causal dilated residual temporal-convolution stack (WaveNet /
  TCN style; kernel 3, dilations doubling to ``2^(L-1)``). Its receptive field, ``1 + 2 (2^L - 1)`` frames (255 at
  L = 7, 4.25 s at 60 fps), covers a 4-beat bar at AIST++ tempi, it is translation-equivariant in time (so it
  generates any length, as the full test sequences need) and it is fast on CPU.
* :class:`DanceTransformerGenerator`: a pre-norm transformer encoder over frames with sinusoidal positions, as the
  FACT / Bailando family uses; global context, but quadratic in the sequence length.

Swap them in YAML / on the command line through ``model.init_args.generator``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from motion_text.models.layers import SinusoidalPositionalEncoding, autocast_safe_fastpath

__all__ = ["DanceConvGenerator", "DanceTransformerGenerator"]


class _ResBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)
        self.norm = nn.GroupNorm(1, channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, keep: Tensor) -> Tensor:
        a, b = self.conv(self.norm(h)).chunk(2, dim=1)
        return (h + self.drop(self.out(torch.tanh(a) * torch.sigmoid(b)))) * keep  # gated activation


class DanceConvGenerator(nn.Module):
    """Dilated residual temporal convolutions (gated, GroupNorm), non-causal.

    Parameters
    ----------
    in_dim, out_dim
        Input (music features + noise + seed pose) and output (pose) channels per frame.
    hidden
        Channels of the residual stream.
    num_layers
        Residual blocks; block ``l`` has dilation ``2^l``.
    dropout
        Dropout inside the residual branches.
    smooth
        Length (odd, frames) of a fixed normalised Hann window applied to the output along time (1 = off). Music
        features change every frame and an untrained or briefly trained network passes that on as pose jitter;
        the low-pass (9 frames: ~0.15 s at 60 fps, cut-off ~7 Hz) leaves dance motion, whose energy is below a few
        Hz, and removes the jitter by construction.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, num_layers: int = 7, dropout: float = 0.0,
                 smooth: int = 9) -> None:
        super().__init__()
        if smooth < 1 or smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd number >= 1, got {smooth}")
        self.inp = nn.Conv1d(in_dim, hidden, 1)
        self.blocks = nn.ModuleList(_ResBlock(hidden, 2**i, dropout) for i in range(num_layers))
        self.head = nn.Sequential(nn.GroupNorm(1, hidden), nn.GELU(), nn.Conv1d(hidden, out_dim, 1))
        window = torch.hann_window(smooth + 2, periodic=False)[1:-1] if smooth > 1 else torch.ones(1)
        self.register_buffer("window", (window / window.sum()).view(1, 1, -1), persistent=False)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(b.conv.dilation[0] for b in self.blocks)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask[:, None, :].to(x.dtype)  # (B, 1, T)
        h = self.inp(x.transpose(1, 2)) * keep  # (B, C, T)
        for block in self.blocks:
            h = block(h, keep)
        return _lowpass(self.head(h), keep, self.window).transpose(1, 2)


def _lowpass(y: Tensor, keep: Tensor, window: Tensor) -> Tensor:
    """Normalised convolution of ``y`` (B, C, T) with ``window`` (1, 1, K) over the valid frames ``keep`` (B, 1, T)."""
    k = window.shape[-1]
    if k == 1:
        return y
    b, c, t = y.shape
    w = window.to(y.dtype)
    num = nn.functional.conv1d((y * keep).reshape(b * c, 1, t), w, padding=k // 2).reshape(b, c, t)
    den = nn.functional.conv1d(keep, w, padding=k // 2).clamp_min(1e-6)
    return num / den * keep


class DanceTransformerGenerator(nn.Module):
    """Pre-norm transformer encoder over frames with sinusoidal positions and a key padding mask.

    Parameters
    ----------
    in_dim, out_dim
        Input and output channels per frame.
    latent_dim, ff_size, num_layers, num_heads, dropout
        Transformer width, feed-forward size, depth, heads, dropout.
    max_len
        Longest sequence (frames) of the position table.
    """

    def __init__(self, in_dim: int, out_dim: int, latent_dim: int = 128, ff_size: int = 512, num_layers: int = 4,
                 num_heads: int = 4, dropout: float = 0.1, max_len: int = 20000) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, latent_dim)
        self.pos = SinusoidalPositionalEncoding(latent_dim, dropout, max_len=max_len)
        layer = nn.TransformerEncoderLayer(latent_dim, num_heads, ff_size, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(latent_dim), nn.Linear(latent_dim, out_dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.pos(self.inp(x))
        with autocast_safe_fastpath(x.device.type):
            h = self.encoder(h, src_key_padding_mask=~mask)
        return self.head(h)
