"""Triplet losses of DropTriple / MildTriple (Yan et al., arXiv 2305.04195; rehamot ``SoftContrastiveLoss``).

``g(E1, E2)`` with queries E1 and candidates E2 (both L2-normalised, (B, D)):

* S = E1 E2^T; hinge c_ij = max(0, margin + S_ij - S_ii), c_ii = 0.
* **SH** (sum of hinges, VSE++): sum_ij c_ij.  **MH**: sum_i max_j c_ij.  **mild**: per anchor one negative sampled
  with probability proportional to its violation c_ij (the soft-hard variant; rows without violation give 0).
* **Dropping** (method-details 2.2): with the detached intra-modal similarities P = E1 E1^T (query modality) and
  Q = E2 E2^T (candidate modality), negatives with delta_hetero < P_ij < 1 - 1e-6 or delta_homo < Q_ij < 1 - 1e-6
  are dropped. The default follows rehamot@06ed696 ``model/losses/losses.py::SoftContrastiveLoss.compute``: dropping
  sets S_ij = 0 (``drop_mode="zero"``: the hinge margin - S_ii can stay active) and the ``< 1 - 1e-6`` test keeps
  exact duplicates (similarity 1, e.g. two motions with the same caption, frequent in HumanML3D) as negatives
  (``drop_duplicates=False``). Options: ``drop_duplicates=True`` drops them too (they are the false negatives the
  method exists for); ``drop_mode="remove"`` excludes dropped pairs from the hinge altogether.

DropTriple's loss is ``g(m, t) + g(t, m)``: SH without dropping during warm-up, then MH (or mild) with dropping.
"""

from __future__ import annotations

import torch

from motion_text.losses.distributed import gather_features, scale_grad, world_info

__all__ = ["triplet_loss", "drop_mask", "drop_triple_loss"]


def drop_mask(e1: torch.Tensor, e2: torch.Tensor, delta_hetero: float = 0.7, delta_homo: float = 0.9,
              drop_duplicates: bool = False) -> torch.Tensor:
    """(B, B) bool of dropped negatives (never the diagonal); computed without gradient.

    Default as rehamot@06ed696 ``model/losses/losses.py::SoftContrastiveLoss.compute``:
    ``(P > delta_hetero) & (P < 1 - 1e-6) | (Q > delta_homo) & (Q < 1 - 1e-6)``, so exact duplicates stay negatives;
    ``drop_duplicates=True`` drops every pair above the thresholds.
    """
    with torch.no_grad():
        p, q = e1 @ e1.T, e2 @ e2.T
        if drop_duplicates:
            mask = (p > delta_hetero) | (q > delta_homo)
        else:
            hi = 1 - 1e-6
            mask = ((p > delta_hetero) & (p < hi)) | ((q > delta_homo) & (q < hi))
        mask.fill_diagonal_(False)
    return mask


def triplet_loss(e1: torch.Tensor, e2: torch.Tensor, margin: float = 0.2, mining: str = "sum", drop: bool = False,
                 delta_hetero: float = 0.7, delta_homo: float = 0.9, drop_mode: str = "zero",
                 drop_duplicates: bool = False, generator: torch.Generator | None = None, gather: bool = True
                 ) -> dict[str, torch.Tensor]:
    """g(e1, e2): hinge triplet loss with queries ``e1`` and candidates ``e2``. Returns ``loss`` and ``dropped``."""
    if mining not in ("sum", "max", "mild"):
        raise ValueError(f"mining must be 'sum', 'max' or 'mild', got {mining!r}")
    if drop_mode not in ("zero", "remove"):
        raise ValueError(f"drop_mode must be 'zero' or 'remove', got {drop_mode!r}")
    _, world = world_info()
    if gather and world > 1:
        e1, e2 = gather_features(scale_grad(e1, world)), gather_features(scale_grad(e2, world))
    with torch.autocast(device_type=e1.device.type, enabled=False):
        e1, e2 = e1.float(), e2.float()
        s = e1 @ e2.T
        diag = s.diagonal()
        n = len(s)
        eye = torch.eye(n, dtype=torch.bool, device=s.device)
        dropped = drop_mask(e1, e2, delta_hetero, delta_homo, drop_duplicates) if drop else torch.zeros_like(eye)
        if drop and drop_mode == "zero":
            s = s.masked_fill(dropped, 0.0)
        cost = (margin + s - diag[:, None]).clamp(min=0).masked_fill(eye, 0.0)
        if drop and drop_mode == "remove":
            cost = cost.masked_fill(dropped, 0.0)
        if mining == "sum":
            loss = cost.sum()
        elif mining == "max":
            loss = cost.max(dim=1).values.sum()
        else:
            weights = cost.detach()
            has = weights.sum(1) > 0
            safe = torch.where(has[:, None], weights, torch.ones_like(weights).masked_fill(eye, 0.0))
            pick = torch.multinomial(safe, 1, generator=generator).squeeze(1)
            loss = (cost.gather(1, pick[:, None]).squeeze(1) * has).sum()
    return {"loss": loss, "dropped": dropped.sum().float()}


def drop_triple_loss(motion: torch.Tensor, text: torch.Tensor, warm: bool, margin: float = 0.2, mining: str = "max",
                     delta_hetero: float = 0.7, delta_homo: float = 0.9, drop_mode: str = "zero",
                     drop_duplicates: bool = False, generator: torch.Generator | None = None, gather: bool = True
                     ) -> dict[str, torch.Tensor]:
    """DropTriple: g(m, t) + g(t, m); SH without dropping while ``warm``, else ``mining`` with dropping."""
    kw = dict(margin=margin, mining="sum" if warm else mining, drop=not warm, delta_hetero=delta_hetero,
              delta_homo=delta_homo, drop_mode=drop_mode, drop_duplicates=drop_duplicates, generator=generator,
              gather=gather)
    m2t = triplet_loss(motion, text, **kw)
    t2m = triplet_loss(text, motion, **kw)
    return {"loss": m2t["loss"] + t2m["loss"], "m2t": m2t["loss"].detach(), "t2m": t2m["loss"].detach(),
            "dropped": m2t["dropped"] + t2m["dropped"]}
