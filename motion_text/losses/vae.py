"""TEMOS / TMR objective terms (Petrovich et al., TEMOS ECCV 2022 and TMR ICCV 2023, ``src/model/losses.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["kl_gaussians", "tmr_objective"]


def kl_gaussians(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor | None = None,
                 logvar_p: torch.Tensor | None = None) -> torch.Tensor:
    """Element-mean closed-form KL(q || p) of diagonal Gaussians; p = N(0, I) when omitted (TMR ``KLLoss``).

    KL = 1/2 [log s_p^2 - log s_q^2 + (s_q^2 + (mu_q - mu_p)^2) / s_p^2 - 1], averaged over all elements.
    Computed in float32.
    """
    mu_q, logvar_q = mu_q.float(), logvar_q.float()
    if mu_p is None:
        mu_p, logvar_p = torch.zeros_like(mu_q), torch.zeros_like(logvar_q)
    mu_p, logvar_p = mu_p.float(), logvar_p.float()
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)
    return kl.mean()


def _masked_smooth_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SmoothL1 averaged over the valid frames (and features) of each sample, then over samples."""
    err = F.smooth_l1_loss(pred.float(), target.float(), reduction="none").mean(-1)  # (B, T)
    m = mask.float()
    return ((err * m).sum(1) / m.sum(1).clamp(min=1)).mean()


def tmr_objective(motion: torch.Tensor, mask: torch.Tensor, m_from_text: torch.Tensor, m_from_motion: torch.Tensor,
                  text_dist: tuple[torch.Tensor, torch.Tensor], motion_dist: tuple[torch.Tensor, torch.Tensor],
                  z_text: torch.Tensor, z_motion: torch.Tensor, contrastive: torch.Tensor,
                  lambda_recons: float = 1.0, lambda_kl: float = 1e-5, lambda_latent: float = 1e-5,
                  lambda_contrastive: float = 0.1) -> dict[str, torch.Tensor]:
    """TMR's total loss (method-details 3.1) with its named parts.

    recons = SmoothL1(dec(z_t), x) + SmoothL1(dec(z_m), x); KL = KL(q_t||q_m) + KL(q_m||q_t) + KL(q_m||N) +
    KL(q_t||N); latent = SmoothL1(z_t, z_m); loss = 1.0 recons + 1e-5 KL + 1e-5 latent + 0.1 L_c.
    (TMR averages the reconstruction over padded tensors whose padding is zero on both sides. Here it is averaged over
    each sample's valid frames, then over samples: the value does not depend on the batch's padding, and the mean of
    equal-sized per-process batches equals the global-batch value, so DDP optimises exactly the 1-process objective.)
    """
    recons = _masked_smooth_l1(m_from_text, motion, mask) + _masked_smooth_l1(m_from_motion, motion, mask)
    (mu_t, lv_t), (mu_m, lv_m) = text_dist, motion_dist
    kl = (kl_gaussians(mu_t, lv_t, mu_m, lv_m) + kl_gaussians(mu_m, lv_m, mu_t, lv_t)
          + kl_gaussians(mu_m, lv_m) + kl_gaussians(mu_t, lv_t))
    latent = F.smooth_l1_loss(z_text.float(), z_motion.float())
    loss = lambda_recons * recons + lambda_kl * kl + lambda_latent * latent + lambda_contrastive * contrastive
    return {"loss": loss, "recons": recons, "kl": kl, "latent": latent, "contrastive": contrastive}
