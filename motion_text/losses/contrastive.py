"""Contrastive losses: TMR's filtered InfoNCE and MoT++'s Cross-Consistent Contrastive Loss (CCCL).

Both take the local batch of each rank and, when torch.distributed is initialised (``gather=True``), build the global
similarity matrices from every rank's features (:func:`~motion_text.losses.distributed.gather_features`); the gradient
is scaled so that DDP's averaged gradient equals the 1-process gradient on the global batch. All logits and softmaxes
are computed in float32, even under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from motion_text.losses.distributed import gather_features, scale_grad, world_info

__all__ = ["info_nce", "cccl", "cccl_lambda", "filter_mask", "cc_kl"]


def _fp32(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


def _gather(gather: bool, *xs: torch.Tensor | None) -> tuple[list[torch.Tensor | None], int]:
    _, world = world_info()
    if not gather or world == 1:
        return list(xs), 1
    # the local features' gradient is scaled by the world size (see scale_grad), parameters used on every rank are not
    return [gather_features(scale_grad(x, world)) if x is not None else None for x in xs], world


def filter_mask(sent_emb: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N, N) bool: off-diagonal pairs whose captions are near-duplicates and are removed from the negatives.

    ``threshold`` is on TMR's (cos + 1) / 2 scale: 0.8 -> cosine > 0.6 of L2-normalised sentence embeddings.
    """
    e = F.normalize(sent_emb.float(), dim=-1)
    sim = e @ e.T
    mask = sim > 2 * threshold - 1
    mask.fill_diagonal_(False)
    return mask


def info_nce(text: torch.Tensor, motion: torch.Tensor, temperature: float = 0.1, sent_emb: torch.Tensor | None = None,
             filter_threshold: float | None = 0.8, gather: bool = True, normalize: bool = True
             ) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE (TMR, ``src/model/losses.py::InfoNCE_with_filtering``).

    S = norm(t) norm(m)^T / temperature (raw dot products with ``normalize=False``, e.g. lexical vectors);
    negatives whose captions' sentence similarity exceeds ``filter_threshold`` are set to -inf;
    L = 1/2 [CE(S, I) + CE(S^T, I)].

    Returns ``loss``, ``t2m``, ``m2t`` and ``filtered`` (number of removed negative pairs).
    """
    with _fp32(text.device):
        (t, m, z), _ = _gather(gather, text.float(), motion.float(), sent_emb)
        if normalize:
            t, m = F.normalize(t, dim=-1), F.normalize(m, dim=-1)
        logits = t @ m.T / temperature
        n_filtered = torch.zeros((), device=logits.device)
        if z is not None and filter_threshold is not None:
            drop = filter_mask(z, filter_threshold)
            logits = logits.masked_fill(drop, float("-inf"))
            n_filtered = drop.sum().float()
        target = torch.arange(len(logits), device=logits.device)
        t2m = F.cross_entropy(logits, target)
        m2t = F.cross_entropy(logits.T, target)
        loss = (t2m + m2t) / 2
    return {"loss": loss, "t2m": t2m.detach(), "m2t": m2t.detach(), "filtered": n_filtered}


def cc_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """cc(P, Q) = mean_i KL(softmax(P_i) || softmax(Q_i)); P is the target, gradients reach both (MoT++)."""
    lp, lq = F.log_softmax(p, dim=-1), F.log_softmax(q, dim=-1)
    return (lp.exp() * (lp - lq)).sum(-1).mean()


def cccl_lambda(epoch: int, start: int = 40, end: int = 100) -> float:
    """lambda(e) = clamp((e - e_s) / (e_e - e_s), 0, 1) (MoT++: e_s = 40, e_e = 100)."""
    if end <= start:
        return float(epoch >= start)
    return float(min(max((epoch - start) / (end - start), 0.0), 1.0))


def cccl(text: torch.Tensor, motion: torch.Tensor, sent_emb: torch.Tensor, log_scales: torch.Tensor, lam: float,
         filter_threshold: float | None = None, nce_temperature: float = 0.1, gather: bool = True,
         normalize: bool = True) -> dict[str, torch.Tensor]:
    """Cross-Consistent Contrastive Loss (MoT++, ``InfoNCECrossConsistent``; method-details 1.1).

    With A = norm(text), B = norm(motion), Z = norm(sent_emb) and s = exp(log_scales) = [s_c, s_t, s_m, s_z]:
    C = s_c A B^T, T = s_t A A^T, M = s_m B B^T, Zt = s_z Z Z^T;
    L_nce = 1/2 [CE(C, I) + CE(C^T, I)];
    L_teach = cc(Zt, T) + cc(Zt, M);
    L_cons = 1/4 [cc(T, C) + cc(T, C^T) + cc(C, T) + cc(C^T, T)] + 1/4 [the same with M];
    L = L_nce + lam L_cons + (1 - lam) L_teach.

    With ``filter_threshold`` set, L_nce is TMR's filtered InfoNCE instead, as MoT++ runs it
    (``src/model/losses/info_nce_cross_consistent.py::InfoNCECrossConsistent`` with
    ``infonce_loss_fn=src/model/losses/tmr_losses.py::InfoNCE_with_filtering``, the
    ``info-nce-with-filtering-cross-consistent-*`` configurations): logits A B^T / ``nce_temperature`` with the
    *fixed* temperature 0.1 of that configuration, near-duplicate negatives (:func:`filter_mask`) set to -inf. The
    learnable s_c then only enters L_cons and receives no gradient from L_nce.

    ``normalize=False`` (dagger-MoT++, lexical vectors p_t, p_m): A = text and B = motion as given, so C, T, M (and
    the filtered logits) are raw dot products; the teacher Z, dense sentence embeddings, stays normalised.
    """
    with _fp32(text.device):
        (a, b, z), _ = _gather(gather, text.float(), motion.float(), sent_emb.float())
        if normalize:
            a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
        z = F.normalize(z, dim=-1)
        s_c, s_t, s_m, s_z = log_scales.float().exp().unbind()
        c = s_c * a @ b.T
        t = s_t * a @ a.T
        m = s_m * b @ b.T
        zt = s_z * z @ z.T
        logits = c
        if filter_threshold is not None:
            logits = (a @ b.T / nce_temperature).masked_fill(filter_mask(z, filter_threshold), float("-inf"))
        target = torch.arange(len(c), device=c.device)
        nce = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        teach = cc_kl(zt, t) + cc_kl(zt, m)
        cons = sum((cc_kl(u, c) + cc_kl(u, c.T) + cc_kl(c, u) + cc_kl(c.T, u)) / 4 for u in (t, m))
        loss = nce + lam * cons + (1 - lam) * teach
    return {"loss": loss, "nce": nce.detach(), "cons": cons.detach(), "teach": teach.detach()}
