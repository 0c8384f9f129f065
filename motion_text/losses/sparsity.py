"""Sparsity regularisers and statistics for lexical (vocabulary-sized) representations.

FLOPS regulariser: Paria et al., "Minimizing FLOPs to learn efficient sparse representations", ICLR
2020, as used by SPLADE (Formal et al., 2021) and by Lyu et al. (lexical four-phase pretraining), Eq. 3:

    R_FLOPS = sum_{k in V} ( (1/N) sum_{i=1}^{N} |p_k^(i)| )^2
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["flops", "l0"]


def _check(p: Tensor) -> None:
    if p.dim() != 2:
        raise ValueError(f"p must be a (B, V) tensor, got shape {tuple(p.shape)}")
    if p.shape[0] == 0:
        raise ValueError(f"p must hold at least one row, got shape {tuple(p.shape)}")


def flops(p: Tensor) -> Tensor:
    """FLOPS regulariser (Eq. 3): squared batch-mean absolute weight, summed over the vocabulary.

    Parameters
    ----------
    p : Tensor
        (B, V) lexical representations of one batch.

    Returns
    -------
    Tensor
        Scalar, float32 (computed in float32 whatever the input precision).
    """
    _check(p)
    return p.float().abs().mean(dim=0).square().sum()


def l0(p: Tensor) -> Tensor:
    """Mean number of non-zero entries per row of ``p`` (B, V); a float32 scalar for logging."""
    _check(p)
    return (p != 0).float().sum(dim=1).mean()
