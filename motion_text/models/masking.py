"""Token and frame masking for the lexical four-phase pretraining.

Lyu et al., "Towards unified human motion-language understanding via sparse interpretable
characterization", Sec. 3.2 and appendix B:

* LexMLM (Eq. 5): the encoder input masks 30 % of the tokens; the bottleneck decoder input is masked
  "heavily", with a curriculum from 50 % to 100 % (Table 6).
* CMMM (Eq. 6): the masked motion pathway drops 50 % of the frames (Table 7).
* LexMMM (Eq. 7): decoder curriculum 50 % -> 100 % in Sec. 3.2.3; Table 8 reports 40 % -> 100 %.

Counts use round-half-up, ``floor(ratio * n + 0.5)``, so they do not depend on Python's banker's rounding.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["linear_curriculum", "mask_frames", "mask_tokens"]

IGNORE_INDEX = -100


def _check_ratio(ratio: float, low_inclusive: bool = False) -> float:
    span = "[0, 1]" if low_inclusive else "(0, 1]"
    if not isinstance(ratio, numbers.Real):
        raise ValueError(f"ratio must be a number in {span}, got {ratio!r}")
    ok = (0.0 <= ratio <= 1.0) if low_inclusive else (0.0 < ratio <= 1.0)
    if not ok:
        raise ValueError(f"ratio must be in {span}, got {ratio!r}")
    return float(ratio)


def _count(ratio: float, n: Tensor) -> Tensor:
    """round-half-up(ratio * n) for an integer tensor n."""
    return torch.floor(ratio * n.double() + 0.5).long()


def _random_select(eligible: Tensor, k: Tensor, generator: torch.Generator | None) -> Tensor:
    """Pick exactly ``k[b]`` eligible positions per row uniformly at random: (B, L) bool."""
    gen_device = generator.device if generator is not None else eligible.device
    scores = torch.rand(eligible.shape, generator=generator, device=gen_device).to(eligible.device)
    scores = scores.masked_fill(~eligible, 2.0)  # ineligible positions sort last
    order = scores.argsort(dim=1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return (rank < k.unsqueeze(1)) & eligible


def mask_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    ratio: float,
    mask_token_id: int,
    special_ids: Sequence[int],
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
    bert_style: bool = False,
) -> tuple[Tensor, Tensor]:
    """Mask a fixed fraction of each caption's tokens for masked language modelling.

    Parameters
    ----------
    input_ids : Tensor
        (B, L) long token ids.
    attention_mask : Tensor
        (B, L), non-zero at real tokens.
    ratio : float
        Fraction in (0, 1] of each sequence's maskable tokens (real, non-special) to mask. Exactly
        ``max(1, floor(ratio * n + 0.5))`` positions are masked in a sequence with ``n >= 1`` maskable tokens;
        at ``ratio = 1`` every maskable token is masked; a sequence with none is left unchanged.
    mask_token_id : int
        Id of [MASK].
    special_ids : sequence of int
        Ids never masked ([CLS], [SEP], [PAD], ...).
    generator : torch.Generator, optional
        Source of randomness (for reproducible masks).
    vocab_size : int, optional
        Needed for ``bert_style``: random replacement tokens are drawn from the non-special ids below it.
    bert_style : bool
        If True, selected positions become [MASK] with probability 0.8, a random token with 0.1 and stay
        unchanged with 0.1 (Devlin et al., 2019). If False (the paper's wording, "replaced by the [MASK]
        token"), every selected position becomes [MASK].

    Returns
    -------
    masked_ids : Tensor
        (B, L) long, the corrupted input.
    labels : Tensor
        (B, L) long, the original id at selected positions and -100 elsewhere.
    """
    if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids and attention_mask must both be (B, L), got {tuple(input_ids.shape)} "
            f"and {tuple(attention_mask.shape)}"
        )
    ratio = _check_ratio(ratio)
    if bert_style and (vocab_size is None or vocab_size <= len(set(special_ids))):
        raise ValueError(
            f"bert_style masking needs vocab_size larger than the special ids, got {vocab_size!r}"
        )
    specials = torch.tensor(
        sorted(set(int(i) for i in special_ids)), dtype=input_ids.dtype, device=input_ids.device
    )
    eligible = attention_mask.bool() & ~torch.isin(input_ids, specials)  # b l
    n = eligible.sum(dim=1)
    k = torch.minimum(_count(ratio, n).clamp_min(1), n)
    selected = _random_select(eligible, k, generator)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    masked = input_ids.clone()
    if not bert_style:
        masked[selected] = mask_token_id
        return masked, labels
    gen_device = generator.device if generator is not None else input_ids.device
    u = torch.rand(input_ids.shape, generator=generator, device=gen_device).to(input_ids.device)
    allowed = torch.ones(int(vocab_size), dtype=torch.bool, device=input_ids.device)
    allowed[specials[specials < vocab_size]] = False
    pool = allowed.nonzero().squeeze(1)
    pick = torch.randint(len(pool), input_ids.shape, generator=generator, device=gen_device).to(
        input_ids.device
    )
    masked = torch.where(selected & (u < 0.8), torch.full_like(masked, mask_token_id), masked)
    masked = torch.where(selected & (u >= 0.8) & (u < 0.9), pool[pick].to(masked.dtype), masked)
    return masked, labels


def mask_frames(mask: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Randomly hide a fixed fraction of each clip's valid frames (CMMM's masked pathway, 50 % in the paper).

    Parameters
    ----------
    mask : Tensor
        (B, T) bool, True at valid frames.
    ratio : float
        Fraction in [0, 1] of valid frames to hide: ``floor(ratio * n + 0.5)`` frames, capped at ``n - 1``
        so that at least one valid frame is kept (an empty clip would make attention undefined).
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    Tensor
        keep (B, T) bool: True at valid frames that stay visible; False at hidden and padding frames.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be (B, T), got shape {tuple(mask.shape)}")
    ratio = _check_ratio(ratio, low_inclusive=True)
    valid = mask.bool()
    n = valid.sum(dim=1)
    k = torch.minimum(_count(ratio, n), (n - 1).clamp_min(0))
    hidden = _random_select(valid, k, generator)
    return valid & ~hidden


def linear_curriculum(epoch: int, start_ratio: float, end_ratio: float, num_epochs: int) -> float:
    """Masking ratio of a linear curriculum over one training phase.

    ``ratio(e) = start + (end - start) * min(e / (num_epochs - 1), 1)``: the phase's first epoch (0) uses
    ``start_ratio``, its last epoch (``num_epochs - 1``) and any later one use ``end_ratio``; the ratio is
    constant within an epoch (derived from the epoch counter, never from wall-clock time). With
    ``num_epochs == 1`` the single epoch uses ``start_ratio``. The paper uses 0.5 -> 1.0 (LexMLM, LexMMM).

    Parameters
    ----------
    epoch : int
        Zero-based epoch index within the phase.
    start_ratio, end_ratio : float
        Ratios in [0, 1] at the first and last epoch.
    num_epochs : int
        Number of epochs in the phase (>= 1).
    """
    if not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    start = _check_ratio(start_ratio, low_inclusive=True)
    end = _check_ratio(end_ratio, low_inclusive=True)
    progress = 0.0 if num_epochs == 1 else min(epoch / (num_epochs - 1), 1.0)
    return start + (end - start) * progress
