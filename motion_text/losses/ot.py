"""Entropic optimal-transport and Gromov-Wasserstein losses of MDOT-Net (music-to-dance with optimal transport).

The objective of MDOT-Net is ``min_theta OT_eps(mu_theta, nu) + GW_eps(mu_theta, xi)`` ("Music-to-Dance Generation
with Optimal Transport", section "Our Proposed Framework"): an entropic OT distance between generated and real dance
batches, made unbiased with the six-term mini-batch estimator of Salimans et al. (OT-GAN, ICLR 2018), plus an
entropic Gromov-Wasserstein distance between the intra-batch distances of the generated dances and of the music.

Conventions (shared with POT, ``ot.bregman`` / ``ot.gromov``)
---------------------------------------------------------------
* Empirical measures carry **uniform probability weights** ``1/m`` and ``1/n``: a transport plan sums to 1.
  The paper's Sinkhorn listing uses ``a = 1 ./ (K b)``, i.e. plans whose rows and columns sum to 1 (total mass m for
  an ``m x m`` problem). Its transport value is exactly ``m`` times that of :func:`sinkhorn_cost` for square problems (same plan up
  to the factor ``m``). For GW the unit-row-sum plan also enters the linearised cost ``-2 D pi C^T`` ``m`` times
  larger, so the paper's GW is ``m^2`` times :func:`entropic_gromov_wasserstein`'s **at** ``eps / m``, not at
  ``eps``; ``marginals="unit"`` computes it. Probability weights are this project's choice (POT's convention; it
  keeps OT and GW on the batch-size-independent scale of the definitions with ``mu = 1/m sum delta``).
* The entropic term is ``eps KL(P | a b^T) = eps (sum P log P + log(m n))`` for a plan of mass 1, with the natural
  logarithm (the kernel ``K = exp(-C / eps)`` of the paper's algorithm; the constant does not move the plan). The
  paper's ``log_2`` in ``I(gamma)`` would only rescale ``eps`` by ``ln 2``.
* All iterations run in the log domain (``logsumexp`` on ``-C/eps + f + g``), so ``eps`` can be several orders of
  magnitude smaller than the costs without the kernel ``exp(-C/eps)`` underflowing.
* Computation runs with autocast disabled, in float64 when the input is float64 and in float32 otherwise (bf16/fp16
  inputs are upcast); results come back in that compute dtype.

Value and gradient
------------------
The value returned and the function whose gradient is computed are the same in every mode. Two values exist:

* ``value="entropic"`` (default): the regularised ``OT_eps(a, b) = min_P <P, C> + eps KL(P | a b^T)`` of geomloss
  (jeanfeydy/geomloss v0.2.6, ``geomloss/sinkhorn_divergence.py::sinkhorn_cost``, ``debias=False``: the dual value
  ``<a, f> + <b, g>``, equal to the primal at the fixed point) and of POT's ``ot.solve(M, a, b, reg=eps).value``.
  It is evaluated in the primal form ``<P, C> + eps (sum P log(P / (a b^T)) - sum P + 1)`` (the generalised KL, so
  that a plan whose marginals are not yet exact still gives a differentiable value).
  With ``grad="envelope"`` (default) the iterations run under ``torch.no_grad()`` and the gradient with respect to
  the cost is the plan ``P``: by the envelope (Danskin) theorem ``dOT_eps/dC = P*`` (Genevay et al., AISTATS 2018;
  Feydy et al., AISTATS 2019; geomloss obtains the same gradient through its last extrapolation step). It needs no
  activation memory for the L iterations (O(mn) instead of O(L mn)) and cannot produce exploding or NaN gradients
  through long chains of ``logsumexp``; it is exact at convergence. ``grad="unrolled"`` backpropagates through
  every iteration: the exact derivative of the returned value for any number of iterations, at L times the memory.
* ``value="transport"``: the transport term ``<P, C>`` alone (POT's ``ot.sinkhorn2`` and
  ``ot.bregman.empirical_sinkhorn_divergence``; the output ``sum C a K b`` of MDOT-Net's Sinkhorn listing). Its
  derivative is not the plan (it differs from it by ``eps dKL(P(C) | a b^T)/dC``: at eps = 2 the two even have
  opposite signs along some directions), so it is only available with ``grad="unrolled"``.

The debiased divergence of :func:`sinkhorn_divergence` and the six-term estimator of
:func:`sinkhorn_divergence_unbiased` combine terms of the chosen value, and inherit its gradient. For GW the envelope
gradient is the partial derivative of ``sum L(D, C) pi pi`` at the fixed plan, which is the gradient of the entropic
GW objective at a stationary plan.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "sinkhorn_cost",
    "pairwise_cost",
    "sinkhorn_divergence_unbiased",
    "sinkhorn_divergence",
    "entropic_gromov_wasserstein",
]

log = logging.getLogger(__name__)

GradMode = Literal["envelope", "unrolled"]
ValueKind = Literal["entropic", "transport"]
CostKind = Literal["sqeuclidean", "euclidean"] | Callable[[Tensor, Tensor], Tensor]

#: how often (in iterations) the marginal error is checked when a tolerance is given
_CHECK_EVERY = 10


# ----------------------------------------------------------------------------------------------------------------------
# guards and dtype handling
# ----------------------------------------------------------------------------------------------------------------------
#: largest ``max |C| / eps`` solved in float32: past it float32 potentials (ulp ~ 0.1 at 1e6) no longer give plans whose
#: marginals sum to 1, and the problem is promoted to float64 (whose limit, ~1e15, is out of practical reach)
_F32_SCALED_LIMIT = 2.0**20


def _compute_dtype(*tensors: Tensor, scaled_max: float | None = None) -> torch.dtype:
    """float64 if any input is float64, float32 otherwise (never bf16/fp16); float64 too when ``scaled_max``, the
    largest ``|cost| / eps`` of the problem, is beyond what float32 solves accurately (one warning per call site)."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64
    if scaled_max is not None and scaled_max > _F32_SCALED_LIMIT:
        warnings.warn(f"max |cost| / eps = {scaled_max:.3g} is beyond float32 Sinkhorn accuracy "
                      f"({_F32_SCALED_LIMIT:.0e}): solving in float64", RuntimeWarning, stacklevel=3)
        return torch.float64
    return torch.float32


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"the entropic regularisation eps must be a finite number > 0, got {eps}")
    return eps


def _check_grad(grad: str) -> None:
    if grad not in ("envelope", "unrolled"):
        raise ValueError(f"grad must be 'envelope' or 'unrolled', got {grad!r}")


def _check_value(value: str, grad: str) -> None:
    if value not in ("entropic", "transport"):
        raise ValueError(f"value must be 'entropic' or 'transport', got {value!r}")
    if value == "transport" and grad == "envelope":
        raise ValueError("value='transport' (<P, C>) needs grad='unrolled': the envelope gradient (the plan) is the "
                         "gradient of the entropic value, not of <P, C>")


def _check_iters(name: str, iters: int) -> int:
    if int(iters) < 1:
        raise ValueError(f"{name} must be >= 1, got {iters}")
    return int(iters)


def _check_cost_matrix(C: Tensor, name: str = "C") -> None:
    if C.ndim < 2:
        raise ValueError(f"{name} must have shape (..., m, n), got shape {tuple(C.shape)}")
    if C.shape[-2] == 0 or C.shape[-1] == 0:
        raise ValueError(f"{name} describes an empty batch: shape {tuple(C.shape)}")
    if not torch.isfinite(C.detach()).all():
        bad = int((~torch.isfinite(C.detach())).sum())
        raise ValueError(f"{name} contains {bad} non-finite entries (NaN or inf)")


def _check_batch(x: Tensor, name: str) -> None:
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of shape (m, ...), got shape {tuple(x.shape)}")


# ----------------------------------------------------------------------------------------------------------------------
# log-domain Sinkhorn
# ----------------------------------------------------------------------------------------------------------------------
def _log_iteration(neg: Tensor, f: Tensor, g: Tensor, log_a: float, log_b: float) -> tuple[Tensor, Tensor]:
    """One log-domain Sinkhorn iteration: the ``f`` update, then the ``g`` update."""
    f = log_a - torch.logsumexp(neg + g.unsqueeze(-2), dim=-1)  # (..., m)
    g = log_b - torch.logsumexp(neg + f.unsqueeze(-1), dim=-2)  # (..., n)
    return f, g


def _log_row_error(neg: Tensor, f: Tensor, g: Tensor, log_a: float) -> Tensor:
    """Worst L1 error of the row marginals of ``exp(neg + f + g)`` (columns are exact after a ``g`` update)."""
    rows = torch.logsumexp(neg + f.unsqueeze(-1) + g.unsqueeze(-2), dim=-1).exp()  # (..., m)
    return (rows - math.exp(log_a)).abs().sum(-1).max()


def _kernel_iterations(neg: Tensor, f: Tensor, g: Tensor, steps: int, log_a: float, log_b: float,
                       with_error: bool) -> tuple[Tensor, Tensor, Tensor | None] | None:
    """``steps`` Sinkhorn iterations in the scaling domain on the kernel with the current potentials absorbed.

    ``K = exp(neg + f 1^T + 1 g^T)`` is formed once; ``u = a / (K v)``, ``v = b / (K^T u)`` from ``v = 1`` are the
    log-domain updates ``f + log u``, ``g + log v`` computed with matrix-vector products instead of one
    ``logsumexp`` over the matrix per half-step (Schmitzer, "Stabilized sparse scaling algorithms", SIAM J. Sci.
    Comput. 2019, absorption). Kernel entries below the smallest normal float are set to 0, so no denormal is
    produced. Returns ``None`` when a scaling leaves the floating-point range (the caller redoes the steps in the log
    domain), else the new potentials and, with ``with_error``, the row-marginal error of :func:`_log_row_error`.
    """
    x = neg + f.unsqueeze(-1) + g.unsqueeze(-2)
    K = x.masked_fill_(x < math.log(torch.finfo(x.dtype).tiny), -math.inf).exp_()  # (..., m, n)
    Kt = K.transpose(-2, -1)
    a, b = math.exp(log_a), math.exp(log_b)
    v = torch.ones_like(g).unsqueeze(-1)  # (..., n, 1)
    for _ in range(steps):
        u = a / (K @ v)  # (..., m, 1)
        v = b / (Kt @ u)
    log_u, log_v = u.log().squeeze(-1), v.log().squeeze(-1)
    if not bool(torch.isfinite(log_u).all() & torch.isfinite(log_v).all()):
        return None
    err = (u * (K @ v) - a).abs().sum(dim=(-2, -1)).max() if with_error else None
    return f + log_u, g + log_v, err


def _sinkhorn_potentials(scaled: Tensor, iters: int, tol: float | None) -> tuple[Tensor, Tensor]:
    """Log-domain Sinkhorn-Knopp on ``scaled = C / eps`` with uniform marginals.

    With ``a = 1/m``, ``b = 1/n`` and the scalings ``u = exp(f)``, ``v = exp(g)`` of the plan
    ``P = diag(u) exp(-C/eps) diag(v)``, the paper's updates ``u = a ./ (K v)``, ``v = b ./ (K^T u)`` (starting from
    ``v = 1``) read ``f = log a - LSE_j(g_j - C_ij/eps)``, ``g = log b - LSE_i(f_i - C_ij/eps)``.

    Without autograd through the iterations, the first iteration runs in the log domain and the following ones in
    blocks of up to ``_CHECK_EVERY`` scaling-domain iterations on an absorbed kernel (:func:`_kernel_iterations`,
    one exponential of the matrix per block); a block whose scalings under- or overflow is redone in the log domain,
    and the last ``g`` update is recomputed in the log domain. Both compute the same iterates. With autograd (``grad="unrolled"``) every iteration is a log-domain one.

    scaled: (..., m, n). Returns f (..., m) and g (..., n).
    """
    m, n = scaled.shape[-2], scaled.shape[-1]
    log_a = -math.log(m)
    log_b = -math.log(n)
    neg = -scaled
    g = torch.zeros(scaled.shape[:-2] + (n,), dtype=scaled.dtype, device=scaled.device)
    f = torch.zeros(scaled.shape[:-1], dtype=scaled.dtype, device=scaled.device)
    f, g = _log_iteration(neg, f, g, log_a, log_b)
    fast = not (torch.is_grad_enabled() and neg.requires_grad)
    absorbed = False
    done = 1
    while done < iters:
        steps = min(_CHECK_EVERY - done % _CHECK_EVERY, iters - done)
        check = tol is not None and (done + steps) % _CHECK_EVERY == 0
        out = _kernel_iterations(neg, f, g, steps, log_a, log_b, check) if fast else None
        if out is not None:
            f, g, err = out
            absorbed = True
        else:
            for _ in range(steps):
                f, g = _log_iteration(neg, f, g, log_a, log_b)
            if check:
                with torch.no_grad():
                    err = _log_row_error(neg, f, g, log_a)
        done += steps
        if check and err.item() < tol:
            break
    if absorbed:
        # the last update again, in the log domain: g from f exactly (not g + log v), so that the columns of the
        # plan sum to b to rounding even when the potentials are large (a small eps in float32)
        g = log_b - torch.logsumexp(neg + f.unsqueeze(-1), dim=-2)
    return f, g


def _log_plan(scaled: Tensor, f: Tensor, g: Tensor) -> Tensor:
    return -scaled + f.unsqueeze(-1) + g.unsqueeze(-2)


def _ot_value(plan: Tensor, log_plan: Tensor, C: Tensor, eps: float, value: str) -> Tensor:
    """``<P, C>`` or ``<P, C> + eps KL(P | a b^T)`` (generalised KL, uniform a, b) over the last two dimensions."""
    transport = (plan * C).sum(dim=(-2, -1))
    if value == "transport":
        return transport
    log_ab = -math.log(C.shape[-2] * C.shape[-1])
    kl = (plan * (log_plan - log_ab)).sum(dim=(-2, -1)) - plan.sum(dim=(-2, -1)) + 1.0
    return transport + eps * kl


def sinkhorn_cost(
    C: Tensor,
    eps: float,
    iters: int = 100,
    tol: float | None = None,
    grad: GradMode = "envelope",
    return_plan: bool = False,
    value: ValueKind = "entropic",
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Entropic OT between two uniform empirical measures (MDOT-Net "Computing the OT Distance").

    Solves ``P_eps = argmin_{P in U(1/m, 1/n)} <P, C> + eps KL(P | a b^T)`` with ``iters`` log-domain Sinkhorn-Knopp
    iterations and returns, by default, the regularised value ``OT_eps = <P_eps, C> + eps KL(P_eps | a b^T)`` of
    geomloss (``sinkhorn_divergence.py::sinkhorn_cost`` with ``debias=False``) and POT's
    ``ot.solve(C, reg=eps).value``, whose gradient is the plan (see the module docstring). ``value="transport"``
    returns ``<P_eps, C>`` instead (``ot.sinkhorn2(a, b, C, reg=eps, method="sinkhorn_log")``), differentiated
    through the iterations.

    The paper's output ``sum_ij C_ij a_i K_ij b_j`` is the transport term with plans of unit row/column sums; for
    ``m x m`` batches it equals ``m * sinkhorn_cost(C, eps, value="transport", grad="unrolled")``.

    Parameters
    ----------
    C : Tensor, shape (..., m, n)
        Cost matrices; leading dimensions are independent problems solved in one batched call.
    eps : float
        Entropic regularisation (> 0), in the unit of ``C``.
    iters : int
        Maximum number of Sinkhorn iterations (the paper's L).
    tol : float, optional
        Stop early once the L1 error of the row marginals is below ``tol`` (checked every 10 iterations, the worst
        problem of the batch decides). ``None`` runs exactly ``iters`` iterations.
    grad : {"envelope", "unrolled"}
        ``"envelope"``: iterate without autograd; the gradient with respect to ``C`` is the plan ``P``, the gradient
        of the entropic value at convergence (only with ``value="entropic"``). ``"unrolled"``: differentiate the
        returned value through the iterations.
    return_plan : bool
        Also return the plan ``P`` (..., m, n) (detached with ``grad="envelope"``).
    value : {"entropic", "transport"}
        The returned value: ``OT_eps`` (default) or ``<P, C>`` (needs ``grad="unrolled"``).

    Returns
    -------
    Tensor of shape (...), or ``(value, plan)`` when ``return_plan``.
    """
    eps = _check_eps(eps)
    _check_grad(grad)
    _check_value(value, grad)
    iters = _check_iters("iters", iters)
    _check_cost_matrix(C)
    dtype = _compute_dtype(C, scaled_max=float(C.detach().abs().max()) / eps)
    with torch.autocast(device_type=C.device.type, enabled=False):
        Cc = C.to(dtype)
        if grad == "envelope":
            with torch.no_grad():
                scaled = Cc.detach() / eps
                f, g = _sinkhorn_potentials(scaled, iters, tol)
                log_plan = _log_plan(scaled, f, g)
                plan = log_plan.exp()
                fixed = _ot_value(plan, log_plan, Cc.detach(), eps, value)
            # the value of OT_eps with the gradient P (the added term is zero)
            cost = fixed + (plan * (Cc - Cc.detach())).sum(dim=(-2, -1))
        else:
            scaled = Cc / eps
            f, g = _sinkhorn_potentials(scaled, iters, tol)
            log_plan = _log_plan(scaled, f, g)
            plan = log_plan.exp()
            cost = _ot_value(plan, log_plan, Cc, eps, value)
        out_dtype = _compute_dtype(C)
        cost, plan = cost.to(out_dtype), plan.to(out_dtype)
    if return_plan:
        return cost, plan
    return cost


# ----------------------------------------------------------------------------------------------------------------------
# costs and divergences
# ----------------------------------------------------------------------------------------------------------------------
def pairwise_cost(x: Tensor, y: Tensor, kind: CostKind = "sqeuclidean") -> Tensor:
    """Ground-cost matrix between two batches of samples.

    Parameters
    ----------
    x : Tensor, shape (m, ...)
    y : Tensor, shape (n, ...)
        Samples; trailing dimensions are flattened (a sequence ``(T, D)`` becomes one ``T*D`` vector).
    kind : {"sqeuclidean", "euclidean"} or callable
        ``"sqeuclidean"``: ``||x_i - y_j||^2`` (POT ``ot.dist(..., metric="sqeuclidean")``, computed the same way as
        ``|x|^2 + |y|^2 - 2 x.y`` clamped at 0, so identical samples get ~1e-15 rather than exactly 0);
        ``"euclidean"``: its square root, with a zero value and gradient where the squared distance is 0. A callable ``kind(x, y) -> (m, n)`` is used as is.

    Returns
    -------
    Tensor of shape (m, n), in float32 or float64.
    """
    _check_batch(x, "x")
    _check_batch(y, "y")
    if callable(kind):
        C = kind(x, y)
        if C.shape != (x.shape[0], y.shape[0]):
            raise ValueError(f"the cost callable must return shape {(x.shape[0], y.shape[0])}, got {tuple(C.shape)}")
        return C
    if kind not in ("sqeuclidean", "euclidean"):
        raise ValueError(f"unknown cost kind {kind!r}; use 'sqeuclidean', 'euclidean' or a callable")
    if x.shape[1:].numel() != y.shape[1:].numel():
        raise ValueError(f"x and y samples differ in size: {tuple(x.shape[1:])} vs {tuple(y.shape[1:])}")
    dtype = _compute_dtype(x, y)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xf = x.reshape(x.shape[0], -1).to(dtype)  # (m, d)
        yf = y.reshape(y.shape[0], -1).to(dtype)  # (n, d)
        sq = (xf * xf).sum(-1).unsqueeze(1) + (yf * yf).sum(-1).unsqueeze(0) - 2.0 * xf @ yf.T
        sq = sq.clamp_min(0.0)
        if kind == "sqeuclidean":
            return sq
        pos = sq > 0
        return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def sinkhorn_divergence_unbiased(
    x: Tensor,
    x2: Tensor,
    y: Tensor,
    y2: Tensor,
    eps: float,
    cost: CostKind = "sqeuclidean",
    iters: int = 100,
    tol: float | None = None,
    grad: GradMode = "envelope",
    value: ValueKind = "entropic",
) -> dict[str, Tensor]:
    r"""Unbiased mini-batch OT distance of MDOT-Net's training pipeline (OT-GAN mini-batch energy distance).

    .. math::
        \overline{OT}_\epsilon = OT_\epsilon(\tilde X, X) + OT_\epsilon(\tilde X', X) + OT_\epsilon(\tilde X, X')
        + OT_\epsilon(\tilde X', X') - 2\,OT_\epsilon(\tilde X, \tilde X') - 2\,OT_\epsilon(X, X')

    (MDOT-Net, "Overall Algorithmic Pipeline"; Salimans et al., "Improving GANs Using Optimal Transport", ICLR 2018,
    eq. 6), each ``OT_eps`` being :func:`sinkhorn_cost` on ``pairwise_cost``: by default the regularised value
    (geomloss's OT_eps), whose gradient is the envelope gradient; ``value="transport"`` (with ``grad="unrolled"``)
    uses the transport terms ``<P, C>`` of the paper's listing.

    Parameters
    ----------
    x, x2 : Tensor, shapes (m, ...), (m', ...)
        Two independent generated batches (X~, X~').
    y, y2 : Tensor, shapes (n, ...), (n', ...)
        Two independent real batches (X, X').
    eps, cost, iters, tol, grad, value
        See :func:`sinkhorn_cost` and :func:`pairwise_cost`.

    Returns
    -------
    dict with ``loss`` and the six terms ``ot_x_y``, ``ot_x2_y``, ``ot_x_y2``, ``ot_x2_y2``, ``ot_x_x2``,
    ``ot_y_y2`` (scalars).
    """
    kw = dict(eps=eps, iters=iters, tol=tol, grad=grad, value=value)
    parts = {
        "ot_x_y": sinkhorn_cost(pairwise_cost(x, y, cost), **kw),
        "ot_x2_y": sinkhorn_cost(pairwise_cost(x2, y, cost), **kw),
        "ot_x_y2": sinkhorn_cost(pairwise_cost(x, y2, cost), **kw),
        "ot_x2_y2": sinkhorn_cost(pairwise_cost(x2, y2, cost), **kw),
        "ot_x_x2": sinkhorn_cost(pairwise_cost(x, x2, cost), **kw),
        "ot_y_y2": sinkhorn_cost(pairwise_cost(y, y2, cost), **kw),
    }
    loss = (
        parts["ot_x_y"] + parts["ot_x2_y"] + parts["ot_x_y2"] + parts["ot_x2_y2"]
        - 2.0 * parts["ot_x_x2"] - 2.0 * parts["ot_y_y2"]
    )
    return {"loss": loss, **parts}


def sinkhorn_divergence(
    x: Tensor,
    y: Tensor,
    eps: float,
    cost: CostKind = "sqeuclidean",
    iters: int = 100,
    tol: float | None = None,
    grad: GradMode = "envelope",
    value: ValueKind = "entropic",
) -> dict[str, Tensor]:
    r"""Debiased Sinkhorn divergence ``S_eps = OT(x, y) - 1/2 OT(x, x) - 1/2 OT(y, y)`` (Genevay et al., AISTATS 2018,
    eq. 7; Feydy et al., AISTATS 2019, eq. 4).

    By default each term is the regularised ``OT_eps`` of :func:`sinkhorn_cost`, as geomloss
    (v0.2.6 ``geomloss/sinkhorn_divergence.py::sinkhorn_cost`` with ``debias=True``,
    ``SamplesLoss("sinkhorn", debias=True)``), with the envelope gradient of that same value (``grad="unrolled"``:
    autograd through the iterations). ``value="transport"`` with ``grad="unrolled"`` combines the transport terms
    ``<P_eps, C>`` instead, the convention of POT's ``ot.bregman.empirical_sinkhorn_divergence`` (which
    additionally clamps the result at 0; this function does not, so that the gradient never vanishes silently).

    Parameters
    ----------
    x : Tensor, shape (m, ...)
    y : Tensor, shape (n, ...)
    eps, cost, iters, tol, grad, value
        See :func:`sinkhorn_cost` and :func:`pairwise_cost`.

    Returns
    -------
    dict with ``loss``, ``ot_x_y``, ``ot_x_x``, ``ot_y_y``.
    """
    kw = dict(eps=eps, iters=iters, tol=tol, grad=grad, value=value)
    ot_xy = sinkhorn_cost(pairwise_cost(x, y, cost), **kw)
    ot_xx = sinkhorn_cost(pairwise_cost(x, x, cost), **kw)
    ot_yy = sinkhorn_cost(pairwise_cost(y, y, cost), **kw)
    return {"loss": ot_xy - 0.5 * (ot_xx + ot_yy), "ot_x_y": ot_xy, "ot_x_x": ot_xx, "ot_y_y": ot_yy}


# ----------------------------------------------------------------------------------------------------------------------
# entropic Gromov-Wasserstein
# ----------------------------------------------------------------------------------------------------------------------
def _gw_tensor(D: Tensor, C: Tensor, plan: Tensor) -> Tensor:
    """``(L (x) pi)_ij = sum_kl (D_ik - C_jl)^2 pi_kl`` for the square loss and uniform marginals.

    Expanded as ``D^2 p 1^T + 1 (C^2 q)^T - 2 D pi C^T`` (Peyre et al., ICML 2016, Prop. 1; MDOT-Net's ``E``), with
    ``p = 1/m``, ``q = 1/n``. D: (..., m, m), C: (..., n, n), plan: (..., m, n) -> (..., m, n).
    """
    row = (D * D).mean(-1).unsqueeze(-1)  # (..., m, 1): sum_k D_ik^2 / m
    col = (C * C).mean(-1).unsqueeze(-2)  # (..., 1, n): sum_l C_jl^2 / n
    return row + col - 2.0 * D @ plan @ C.transpose(-2, -1)


def _gw_value(D: Tensor, C: Tensor, plan: Tensor) -> Tensor:
    """``sum_ijkl (D_ik - C_jl)^2 pi_ij pi_kl = r^T D^2 r + c^T C^2 c - 2 <D pi C^T, pi>`` with the plan's own
    marginals ``r = pi 1``, ``c = pi^T 1`` (exact even when the inner Sinkhorn loops are truncated). -> (...)."""
    r, c = plan.sum(-1), plan.sum(-2)  # (..., m), (..., n)
    rr = (r.unsqueeze(-2) @ (D * D) @ r.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    cc = (c.unsqueeze(-2) @ (C * C) @ c.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    cross = (D @ plan @ C.transpose(-2, -1) * plan).sum(dim=(-2, -1))
    return rr + cc - 2.0 * cross


def _gw_linearised_cost(D: Tensor, C: Tensor, plan: Tensor) -> Tensor:
    """Symmetrised ``E`` (the two transposed tensors averaged), equal to ``_gw_tensor`` for symmetric D and C."""
    return 0.5 * (_gw_tensor(D, C, plan) + _gw_tensor(D.transpose(-2, -1), C.transpose(-2, -1), plan))


def _gw_linearisation(D: Tensor, C: Tensor) -> Callable[[Tensor], Tensor]:
    """``plan -> E`` of :func:`_gw_linearised_cost` with the plan-independent terms computed once; for exactly
    symmetric D and C (distance matrices) the two transposed tensors are equal and only one is formed."""
    if not (torch.equal(D, D.transpose(-2, -1)) and torch.equal(C, C.transpose(-2, -1))):
        return lambda plan: _gw_linearised_cost(D, C, plan)
    const = (D * D).mean(-1).unsqueeze(-1) + (C * C).mean(-1).unsqueeze(-2)  # (..., m, n)
    return lambda plan: const - 2.0 * D @ plan @ C.transpose(-2, -1)


def entropic_gromov_wasserstein(
    D: Tensor,
    C: Tensor,
    eps: float,
    outer_iters: int = 20,
    inner_iters: int = 100,
    tol: float | None = None,
    inner_tol: float | None = None,
    grad: GradMode = "envelope",
    marginals: Literal["probability", "unit"] = "probability",
) -> dict[str, Tensor]:
    r"""Entropic Gromov-Wasserstein distance by projected Sinkhorn iterations (MDOT-Net "Computing the GW Distance").

    Starting from ``pi^(0) = p q^T`` (``p = 1/m``, ``q = 1/n``), each of the M outer iterations linearises the
    quadratic objective at the current plan,

    .. math::
        E = \frac{1}{m} D^{\odot 2} \mathbb 1_m \mathbb 1_n^T + \frac{1}{n} \mathbb 1_m \mathbb 1_n^T C^{\odot 2}
            - 2 D \pi^{(l-1)} C^T,

    and replaces the plan by the entropic OT plan for the cost ``E`` (L log-domain Sinkhorn iterations,
    ``K = exp(-E / eps)``). This is Peyre, Cuturi & Solomon (ICML 2016), Algorithm 1 with a unit step. The result is

    .. math:: GW = \sum_{ijkl} (D_{ik} - C_{jl})^2 \pi_{ij} \pi_{kl}

    evaluated with the plan's own marginals (POT's ``gwloss`` assumes exact ``p``, ``q``; identical at convergence).

    ``E`` is the derivative of ``1/2 GW``; POT's ``ot.gromov.entropic_gromov_wasserstein`` uses the full derivative
    ``2 E`` (``gwggrad``) with ``exp(-2E / epsilon)``, so this function with ``eps`` equals POT with
    ``epsilon = 2 * eps``. For non-symmetric D or C the two transposed linearisations are averaged, as POT does.

    Parameters
    ----------
    D : Tensor, shape (..., m, m)
        Intra-batch distances of the source batch (music, ``d(y_i, y'_k)``).
    C : Tensor, shape (..., n, n)
        Intra-batch distances of the target batch (generated dances, ``c(x~_j, x~'_l)``).
    eps : float
        Entropic regularisation of every inner problem (the paper's varepsilon), in the unit of ``D^2``.
    outer_iters : int
        Number of projections M.
    inner_iters : int
        Sinkhorn iterations L per projection.
    tol : float, optional
        Stop the outer loop once the Frobenius change of the plan is below ``tol`` (every iteration).
    inner_tol : float, optional
        Early-stopping tolerance of the inner Sinkhorn loops (see :func:`sinkhorn_cost`).
    grad : {"envelope", "unrolled"}
        ``"envelope"``: iterate without autograd, then evaluate ``GW`` with the plan detached.
        ``"unrolled"``: backpropagate through all M x L iterations.
    marginals : {"probability", "unit"}
        ``"probability"`` (default, this project's convention): ``p = 1/m``, ``q = 1/n``, the plan sums to 1.
        ``"unit"``: the paper's literal listing (square problems only): ``Pi`` has unit row and column sums,
        ``pi^(0) = 1/m``, ``a = 1 ./ (K b)``. Its plan is ``m`` times the probability plan computed at ``eps / m``
        (the row- and column-constant parts of ``E`` do not change a Sinkhorn plan; the cross term ``-2 D pi C^T``
        is ``m`` times larger), and its value ``m^2`` times that plan's value; both are returned that way.

    Returns
    -------
    dict with ``loss`` (..., the GW value) and ``plan`` (..., m, n).
    """
    eps = _check_eps(eps)
    _check_grad(grad)
    if marginals not in ("probability", "unit"):
        raise ValueError(f"marginals must be 'probability' or 'unit', got {marginals!r}")
    outer_iters = _check_iters("outer_iters", outer_iters)
    inner_iters = _check_iters("inner_iters", inner_iters)
    for name, M in (("D", D), ("C", C)):
        _check_cost_matrix(M, name)
        if M.shape[-1] != M.shape[-2]:
            raise ValueError(f"{name} must be square (..., k, k), got shape {tuple(M.shape)}")
    if marginals == "unit":
        if D.shape[-1] != C.shape[-1]:
            raise ValueError(f"marginals='unit' (unit row and column sums) needs m == n, got {D.shape[-1]} and "
                             f"{C.shape[-1]}")
        m = D.shape[-1]
        out = entropic_gromov_wasserstein(D, C, eps / m, outer_iters, inner_iters, tol, inner_tol, grad)
        return {"loss": out["loss"] * m**2, "plan": out["plan"] * m}
    # the linearised cost E = D^2/m + C^2/n - 2 D P C^T is bounded by max D^2 + max C^2
    dtype = _compute_dtype(D, C, scaled_max=(float(D.detach().abs().max()) ** 2
                                             + float(C.detach().abs().max()) ** 2) / eps)
    with torch.autocast(device_type=D.device.type, enabled=False):
        Dc, Cc = D.to(dtype), C.to(dtype)
        m, n = Dc.shape[-1], Cc.shape[-1]
        batch = torch.broadcast_shapes(Dc.shape[:-2], Cc.shape[:-2])

        def solve(Dk: Tensor, Ck: Tensor) -> Tensor:
            plan = torch.full(batch + (m, n), 1.0 / (m * n), dtype=dtype, device=Dk.device)
            # unrolled: the averaged form, whose derivative in D and C is the one of the definition
            linearised = _gw_linearisation(Dk, Ck) if grad == "envelope" else partial(_gw_linearised_cost, Dk, Ck)
            for _ in range(outer_iters):
                scaled = linearised(plan) / eps
                f, g = _sinkhorn_potentials(scaled, inner_iters, inner_tol)
                new_plan = _log_plan(scaled, f, g).exp()
                delta = (new_plan - plan).detach().flatten(-2).norm(dim=-1).max().item() if tol is not None else None
                plan = new_plan
                if delta is not None and delta < tol:
                    break
            return plan

        if grad == "envelope":
            with torch.no_grad():
                plan = solve(Dc.detach(), Cc.detach())
        else:
            plan = solve(Dc, Cc)
        loss = _gw_value(Dc, Cc, plan)
    out_dtype = _compute_dtype(D, C)
    return {"loss": loss.to(out_dtype), "plan": plan.to(out_dtype)}
