"""Transformer building blocks shared by the motion and text encoders.

* :func:`lengths_to_mask` -- the project's one lengths -> validity-mask helper (True = valid frame).
* :func:`sinusoidal_table` / :class:`SinusoidalPositionalEncoding` -- fixed sine/cosine position codes
  (Vaswani et al., "Attention is all you need", Sec. 3.5), with the attribute/buffer names of TMR's
  ``PositionalEncoding`` (``pe``, ``dropout``).
* :class:`DropPath` -- stochastic depth per sample (Huang et al., ECCV 2016).
* :class:`MLP` and :class:`PreNormBlock` -- the pre-norm ViT block used by MoT++ (multi-head self-attention with
  a qkv bias, then a feed-forward network, each in a residual branch behind a LayerNorm and DropPath).
* :func:`reparameterize` -- the VAE sampling step z = mu + eps * exp(logvar / 2) (Kingma & Welling, ICLR 2014).
* :func:`autocast_safe_fastpath` -- keeps ``nn.TransformerEncoder``/``nn.MultiheadAttention`` off their fused
  inference kernels while CPU autocast is active (those kernels only recognise CUDA autocast).

Dropout, attention and the post-norm transformer layers are PyTorch's own (``nn.Dropout``,
``F.scaled_dot_product_attention``, ``nn.TransformerEncoderLayer``), used through their public interfaces only
(``tests/models/test_layers.py`` fails if a private torch method is overridden in the package).

Mask conventions: *validity* masks (``mask``) are True on real frames, as in TMR; *key padding* masks
(``key_padding_mask``) are True on padding, as in :class:`torch.nn.MultiheadAttention`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = [
    "DropPath",
    "MLP",
    "PreNormBlock",
    "SinusoidalPositionalEncoding",
    "autocast_safe_fastpath",
    "lengths_to_mask",
    "reparameterize",
    "sinusoidal_table",
]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}

def lengths_to_mask(lengths: Tensor | Sequence[int], max_len: int | None = None) -> Tensor:
    """Validity mask of padded sequences.

    Parameters
    ----------
    lengths
        (B,) number of valid frames of each sequence (tensor or list of ints).
    max_len
        Padded length T; ``max(lengths)`` when omitted.

    Returns
    -------
    Tensor
        (B, T) bool, ``mask[b, t] = t < lengths[b]`` (True = valid), on the device of ``lengths``.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D, got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be non-negative, got {lengths.tolist()}")
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        max_len = longest
    elif max_len < longest:
        raise ValueError(f"max_len={max_len} is shorter than the longest sequence ({longest})")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def sinusoidal_table(num_positions: int, d_model: int) -> Tensor:
    """Sine/cosine position table (num_positions, d_model), float32.

    ``pe[p, 2i] = sin(p / 10000^(2i/d))`` and ``pe[p, 2i+1] = cos(p / 10000^(2i/d))`` (Vaswani et al. 2017,
    Sec. 3.5; the same table as TMR's ``PositionalEncoding`` and MoT++'s ``get_sine_cosine_pos_emb``).
    Computed in float64 and rounded once.
    """
    if num_positions < 0 or d_model <= 0:
        raise ValueError(f"need num_positions >= 0 and d_model > 0, got {num_positions}, {d_model}")
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(num_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
    return pe.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Add fixed sinusoidal position codes, then dropout (TMR ``PositionalEncoding``).

    The table is a non-persistent buffer named ``pe`` (as in TMR), so it is not part of ``state_dict`` and
    checkpoints of the reference code load without renaming.

    Parameters
    ----------
    d_model
        Feature size.
    dropout
        Dropout probability applied after the addition.
    max_len
        Longest sequence supported.
    batch_first
        Input layout (B, T, d) when True, (T, B, d) otherwise.
    """

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000, batch_first: bool = True) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.dropout = nn.Dropout(p=dropout)
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)  # (max_len, d)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1] if self.batch_first else x.shape[0]
        if t > self.pe.shape[0]:
            raise ValueError(f"sequence of length {t} exceeds the positional table's max_len={self.pe.shape[0]}")
        pe = self.pe[:t]
        pe = pe[None] if self.batch_first else pe[:, None]
        return self.dropout(x + pe)


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a random subset of samples (dim 0), scale the rest by 1/(1-p).

    Identity in eval mode or when ``p == 0``.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """Two-layer feed-forward network ``fc2(drop(act(fc1(x))))`` followed by dropout."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 activation: str = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        out_features = in_features if out_features is None else out_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = _activation(activation)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class PreNormBlock(nn.Module):
    """Pre-norm transformer block: ``x + DropPath(MHSA(LN(x)))`` then ``x + DropPath(FFN(LN(x)))``.

    The attention uses a single ``qkv`` projection with bias and an output projection ``proj``, as the ViViT-style
    blocks of MoT++ (``transformer_core.py``: ``Attention(qkv_bias=True)``, ``FFNWithPreNorm``).

    Parameters
    ----------
    d
        Model width.
    heads
        Number of attention heads (must divide ``d``).
    ff
        Hidden width of the feed-forward network.
    dropout
        Dropout on the attention output and inside/after the feed-forward network.
    attn_dropout
        Dropout on the attention weights.
    drop_path
        Stochastic-depth probability of both residual branches.
    activation
        ``"gelu"`` or ``"relu"``.
    """

    def __init__(self, d: int, heads: int, ff: int, dropout: float = 0.0, attn_dropout: float = 0.0,
                 drop_path: float = 0.0, activation: str = "gelu") -> None:
        super().__init__()
        if d % heads != 0:
            raise ValueError(f"model width {d} is not divisible by the number of heads {heads}")
        self.heads = heads
        self.attn_dropout = float(attn_dropout)
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=True)
        self.proj = nn.Linear(d, d)
        self.proj_drop = nn.Dropout(dropout)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = MLP(d, ff, d, activation=activation, dropout=dropout)
        self.drop_path2 = DropPath(drop_path)

    def attention(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """Multi-head self-attention of (B, N, d) tokens; ``key_padding_mask`` (B, N) True = ignored key."""
        q, k, v = rearrange(self.qkv(x), "b n (three h c) -> three b h n c", three=3, h=self.heads)
        attn_mask = None
        if key_padding_mask is not None:
            if key_padding_mask.shape != x.shape[:2]:
                raise ValueError(f"key_padding_mask of shape {tuple(key_padding_mask.shape)} does not match "
                                 f"tokens of shape {tuple(x.shape[:2])}")
            attn_mask = ~key_padding_mask.bool()[:, None, None, :]  # (B, 1, 1, N) True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.attn_dropout if self.training else 0.0)
        return self.proj_drop(self.proj(rearrange(out, "b h n c -> b n (h c)")))

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        x = x + self.drop_path1(self.attention(self.norm1(x), key_padding_mask))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Sample z = mu + eps * exp(logvar / 2), eps ~ N(0, I) (Kingma & Welling 2014, Eq. 10).

    Parameters
    ----------
    mu, logvar
        Mean and log-variance of a diagonal Gaussian, same shape.
    generator
        Optional random generator (on the device of ``mu``) for reproducible draws.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4 has no device argument
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())


@contextlib.contextmanager
def autocast_safe_fastpath(device_type: str) -> Iterator[None]:
    """Disable PyTorch's fused transformer inference path while autocast is on for ``device_type``.

    In eval mode without gradients ``nn.TransformerEncoderLayer`` and ``nn.MultiheadAttention`` switch to fused
    kernels; their eligibility test looks at CUDA autocast only, so under ``torch.autocast("cpu", bfloat16)`` they
    receive bfloat16 activations with float32 weights and fail. Inside this context, when autocast is active, the
    fast path is switched off via ``torch.backends.mha.set_fastpath_enabled`` and restored on exit; otherwise
    nothing changes.
    """
    if not _autocast_enabled(device_type):
        yield
        return
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
