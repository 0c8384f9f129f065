"""Cross-rank helpers for the contrastive losses (negatives from every rank, as open_clip's ``gather_features``)."""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["world_info", "gather_features", "scale_grad"]


def world_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B_r, ...) of every rank along dim 0, in rank order.

    The local slice keeps its autograd graph; the other ranks' slices are constants. Ranks may hold different batch
    sizes (padded for the collective, then trimmed). Identity without an initialised process group.
    """
    rank, world = world_info()
    if world == 1:
        return x
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    pad = max(sizes) - x.shape[0]
    xp = torch.cat([x.detach(), x.new_zeros((pad,) + x.shape[1:])]) if pad else x.detach().contiguous()
    parts = [torch.zeros_like(xp) for _ in range(world)]
    dist.all_gather(parts, xp)
    parts = [p[:n] for p, n in zip(parts, sizes)]
    parts[rank] = x
    return torch.cat(parts)


def scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Same value, gradient multiplied by ``factor``.

    Each rank evaluates the loss of the whole global batch, with gradients only through its local features; DDP then
    averages the ranks' gradients, which divides by the world size. Scaling the gradient that reaches the LOCAL
    FEATURES by the world size (applied before :func:`gather_features`) makes the averaged gradient equal the
    1-process gradient of the same global batch; parameters used directly in the loss on every rank (e.g. CCCL's
    logit scales) already get the full gradient on each rank and are not scaled. The logged loss is the global loss.
    """
    if factor == 1 or not x.requires_grad:
        return x
    return x + (factor - 1) * (x - x.detach())
