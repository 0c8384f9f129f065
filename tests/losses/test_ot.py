"""Entropic OT / GW losses of MDOT-Net against POT, geomloss's outputs and hand references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ot
import pytest
import torch

from motion_text.losses.ot import (
    entropic_gromov_wasserstein,
    pairwise_cost,
    sinkhorn_cost,
    sinkhorn_divergence,
    sinkhorn_divergence_unbiased,
)

POT_KW = dict(method="sinkhorn_log", numItermax=20000, stopThr=1e-13)
CONVERGED = dict(iters=20000, tol=1e-13)
TRANSPORT = dict(value="transport", grad="unrolled")  # <P, C>, POT's sinkhorn2 convention
GEOMLOSS = Path(__file__).resolve().parents[1] / "fixtures" / "sinkhorn" / "geomloss_sinkhorn.npz"


def _unif(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def _pot_ot(x: np.ndarray, y: np.ndarray, eps: float, metric: str = "sqeuclidean") -> float:
    C = ot.dist(x.reshape(len(x), -1), y.reshape(len(y), -1), metric=metric)
    return float(ot.sinkhorn2(_unif(len(x)), _unif(len(y)), C, reg=eps, **POT_KW))


def _pot_ot_eps(x: np.ndarray, y: np.ndarray, eps: float) -> float:
    """Regularised OT_eps = <P, C> + eps KL(P | a b^T) (POT ``ot.solve(..., reg=eps).value``)."""
    C = ot.dist(x.reshape(len(x), -1), y.reshape(len(y), -1), metric="sqeuclidean")
    return float(ot.solve(C, _unif(len(x)), _unif(len(y)), reg=eps, max_iter=20000, tol=1e-13).value)


# ----------------------------------------------------------------------------------------------------------------------
# sinkhorn_cost
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m,n,eps", [(5, 7, 0.05), (8, 8, 0.3), (6, 4, 2.0)])
def test_sinkhorn_cost_matches_pot(m, n, eps):
    rng = np.random.default_rng(m * 100 + n)
    C = rng.random((m, n)) * 2.0
    ref = float(ot.sinkhorn2(_unif(m), _unif(n), C, reg=eps, **POT_KW))
    got = sinkhorn_cost(torch.tensor(C), eps, **CONVERGED, **TRANSPORT)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.item(), ref, rtol=1e-5)
    # the default value is the regularised OT_eps (POT's ot.solve value, geomloss's OT_eps)
    ref_eps = float(ot.solve(C, _unif(m), _unif(n), reg=eps, max_iter=20000, tol=1e-13).value)
    np.testing.assert_allclose(sinkhorn_cost(torch.tensor(C), eps, **CONVERGED).item(), ref_eps, rtol=1e-7)

    _, plan = sinkhorn_cost(torch.tensor(C), eps, return_plan=True, **CONVERGED)
    ref_plan = ot.sinkhorn(_unif(m), _unif(n), C, reg=eps, **POT_KW)
    np.testing.assert_allclose(plan.numpy(), ref_plan, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(plan.sum(-1).numpy(), _unif(m), atol=1e-9)
    np.testing.assert_allclose(plan.sum(-2).numpy(), _unif(n), atol=1e-9)


def test_sinkhorn_cost_batched_equals_loop():
    rng = np.random.default_rng(1)
    C = torch.tensor(rng.random((3, 2, 5, 6)))
    batched = sinkhorn_cost(C, 0.1, iters=300)
    assert batched.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            torch.testing.assert_close(batched[i, j], sinkhorn_cost(C[i, j], 0.1, iters=300))


def test_paper_scaling_is_m_times():
    """The paper's listing (a = 1 ./ K b, unit row/column sums) gives m times our value for m x m problems."""
    rng = np.random.default_rng(2)
    m, eps, L = 6, 0.2, 5000
    C = rng.random((m, m))
    K = np.exp(-C / eps)
    b = np.ones(m)
    for _ in range(L):
        a = 1.0 / (K @ b)
        b = 1.0 / (K.T @ a)
    paper = float((C * a[:, None] * K * b[None, :]).sum())
    ours = sinkhorn_cost(torch.tensor(C), eps, **CONVERGED, **TRANSPORT).item()
    np.testing.assert_allclose(paper, m * ours, rtol=1e-8)


def test_fixed_iterations_follow_paper_order():
    """Without tolerance exactly ``iters`` updates (a first, then b, from b = 1) are applied."""
    rng = np.random.default_rng(3)
    m, n, eps, L = 4, 5, 0.5, 3
    C = rng.random((m, n))
    K = np.exp(-C / eps)
    v = np.ones(n)
    for _ in range(L):
        u = (1.0 / m) / (K @ v)
        v = (1.0 / n) / (K.T @ u)
    ref_plan = u[:, None] * K * v[None, :]
    _, plan = sinkhorn_cost(torch.tensor(C), eps, iters=L, return_plan=True)
    np.testing.assert_allclose(plan.numpy(), ref_plan, rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# divergences
# ----------------------------------------------------------------------------------------------------------------------
def test_pairwise_cost_matches_pot_dist():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 3, 2)), rng.normal(size=(6, 3, 2))
    for kind in ("sqeuclidean", "euclidean"):
        ref = ot.dist(x.reshape(5, -1), y.reshape(6, -1), metric=kind)
        np.testing.assert_allclose(pairwise_cost(torch.tensor(x), torch.tensor(y), kind).numpy(), ref, rtol=1e-10)
    # euclidean self-distance: ~0 on the diagonal and finite gradients there
    xt = torch.tensor(x, requires_grad=True)
    D = pairwise_cost(xt, xt, "euclidean")
    assert torch.all(D.diagonal().abs() < 1e-6)
    D.sum().backward()
    assert torch.isfinite(xt.grad).all()
    # a zero squared distance gives a zero value and gradient (no 0/0 through the square root)
    z = torch.zeros(2, 3, requires_grad=True)
    E = pairwise_cost(z, z, "euclidean")
    E.sum().backward()
    assert torch.all(E == 0) and torch.all(z.grad == 0)


def test_unbiased_divergence_matches_six_pot_terms():
    rng = np.random.default_rng(5)
    x, x2 = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    y, y2 = rng.normal(size=(6, 4)) + 0.5, rng.normal(size=(6, 4)) + 0.5
    eps = 0.5
    ref = (
        _pot_ot(x, y, eps) + _pot_ot(x2, y, eps) + _pot_ot(x, y2, eps) + _pot_ot(x2, y2, eps)
        - 2 * _pot_ot(x, x2, eps) - 2 * _pot_ot(y, y2, eps)
    )
    out = sinkhorn_divergence_unbiased(*(torch.tensor(a) for a in (x, x2, y, y2)), eps=eps, **CONVERGED, **TRANSPORT)
    np.testing.assert_allclose(out["loss"].item(), ref, rtol=1e-5)
    np.testing.assert_allclose(out["ot_y_y2"].item(), _pot_ot(y, y2, eps), rtol=1e-5)
    assert set(out) == {"loss", "ot_x_y", "ot_x2_y", "ot_x_y2", "ot_x2_y2", "ot_x_x2", "ot_y_y2"}
    # default: the same six terms of the regularised OT_eps
    ref_eps = (
        _pot_ot_eps(x, y, eps) + _pot_ot_eps(x2, y, eps) + _pot_ot_eps(x, y2, eps) + _pot_ot_eps(x2, y2, eps)
        - 2 * _pot_ot_eps(x, x2, eps) - 2 * _pot_ot_eps(y, y2, eps)
    )
    out = sinkhorn_divergence_unbiased(*(torch.tensor(a) for a in (x, x2, y, y2)), eps=eps, **CONVERGED)
    np.testing.assert_allclose(out["loss"].item(), ref_eps, rtol=1e-6)


def test_classic_divergence_matches_pot_empirical():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 1.0
    eps = 0.4
    # POT 0.9.x returns max(0, W(a,b) - (W(a,a) + W(b,b)) / 2) with the transport terms <P, M> only (no entropy);
    # the 1/2 factors are inside POT, so the two values are compared directly. The batches are shifted so the
    # clamp at 0 is inactive.
    # (The self-terms stall at a marginal error ~1e-7 in float64, hence warn=False; values agree to ~1e-9.)
    ref = float(ot.bregman.empirical_sinkhorn_divergence(
        x, y, eps, metric="sqeuclidean", numIterMax=1000, stopThr=1e-9, warn=False, method="sinkhorn_log"
    ))
    out = sinkhorn_divergence(torch.tensor(x), torch.tensor(y), eps, iters=1000, **TRANSPORT)
    assert ref > 0
    np.testing.assert_allclose(out["loss"].item(), ref, rtol=1e-5)
    np.testing.assert_allclose(out["loss"].item(), out["ot_x_y"].item() - 0.5 * (out["ot_x_x"] + out["ot_y_y"]).item())


def test_divergences_zero_for_identical_positive_for_shifted():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    same = sinkhorn_divergence(x, x.clone(), 0.1, iters=500)["loss"]
    assert abs(same.item()) < 1e-10
    same6 = sinkhorn_divergence_unbiased(x, x, x, x, 0.1, iters=500)["loss"]
    assert abs(same6.item()) < 1e-10
    shifted = sinkhorn_divergence(x, x + 2.0, 0.1, iters=500)["loss"]
    assert shifted.item() > 1.0
    x2 = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y, y2 = x + 2.0, x2 + 2.0
    shifted6 = sinkhorn_divergence_unbiased(x, x2, y, y2, 0.1, iters=500)["loss"]
    assert shifted6.item() > 1.0


# ----------------------------------------------------------------------------------------------------------------------
# stability and gradients
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", ["envelope", "unrolled"])
def test_small_eps_large_costs_stay_finite(dtype, grad):
    g = torch.Generator().manual_seed(8)
    C = (torch.rand(6, 7, generator=g, dtype=torch.float64) * 100 + 50).to(dtype).requires_grad_()
    eps = 1e-3
    assert torch.all(torch.exp(-C.detach().double() / eps) == 0), "a plain kernel underflows here"
    value, plan = sinkhorn_cost(C, eps, iters=200, grad=grad, return_plan=True)
    assert torch.isfinite(value) and value.dtype == dtype
    (dC,) = torch.autograd.grad(value, C)
    assert torch.isfinite(dC).all()
    torch.testing.assert_close(plan.sum().double(), torch.tensor(1.0, dtype=torch.float64), atol=1e-4, rtol=0)

    x = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 5).to(dtype).requires_grad_()
    y = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 5 + 3).to(dtype)
    loss = sinkhorn_divergence(x, y, eps, iters=100, grad=grad)["loss"]
    (dx,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(loss) and torch.isfinite(dx).all()


def test_envelope_gradient_is_gradient_of_entropic_objective():
    """Envelope gradient P* == autograd (unrolled, converged) of the returned OT_eps = <P, C> + eps KL(P | a b^T)."""
    g = torch.Generator().manual_seed(9)
    m, n, eps = 5, 6, 0.1
    C0 = torch.rand(m, n, generator=g, dtype=torch.float64)

    C = C0.clone().requires_grad_()
    (g_env,) = torch.autograd.grad(sinkhorn_cost(C, eps, **CONVERGED), C)

    C = C0.clone().requires_grad_()
    (g_unrolled,) = torch.autograd.grad(sinkhorn_cost(C, eps, iters=3000, grad="unrolled"), C)

    torch.testing.assert_close(g_env, g_unrolled, rtol=1e-7, atol=1e-9)
    # and the envelope gradient is the plan itself
    _, plan = sinkhorn_cost(C0, eps, return_plan=True, **CONVERGED)
    torch.testing.assert_close(g_env, plan)


@pytest.mark.parametrize("value", ["entropic", "transport"])
def test_unrolled_gradient_matches_finite_differences(value):
    g = torch.Generator().manual_seed(10)
    C = torch.rand(3, 4, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda c: sinkhorn_cost(c, 0.3, iters=30, grad="unrolled", value=value), (C,))


def _directional(fn, x: torch.Tensor, d: torch.Tensor, h: float = 1e-5) -> tuple[float, float]:
    """(autograd gradient . d, central finite difference of fn along d) for a scalar fn."""
    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(fn(xg), xg)
    with torch.no_grad():
        fd = (fn(x + h * d) - fn(x - h * d)) / (2 * h)
    return float((grad * d).sum()), float(fd)


@pytest.mark.parametrize("eps", [0.3, 2.0])
@pytest.mark.parametrize("mode", ["envelope", "unrolled", "transport"])
@pytest.mark.parametrize("which", ["cost", "divergence", "unbiased"])
def test_each_mode_differentiates_its_returned_value(which, mode, eps):
    """In every mode the gradient is the derivative of the value returned (central finite differences along a
    random direction): ``envelope`` and ``unrolled`` of OT_eps, ``transport`` (unrolled) of <P, C>."""
    g = torch.Generator().manual_seed(15)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64) + 0.5
    x2 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y2 = torch.randn(4, 3, generator=g, dtype=torch.float64) + 0.5
    d = torch.randn(5, 3, generator=g, dtype=torch.float64)
    kw = dict(iters=3000, tol=1e-12, grad="envelope") if mode == "envelope" else dict(iters=40, grad="unrolled")
    kw["value"] = "transport" if mode == "transport" else "entropic"
    fn = {
        "cost": lambda z: sinkhorn_cost(pairwise_cost(z, y), eps, **kw),
        "divergence": lambda z: sinkhorn_divergence(z, y, eps, **kw)["loss"],
        "unbiased": lambda z: sinkhorn_divergence_unbiased(z, x2, y, y2, eps, **kw)["loss"],
    }[which]
    analytic, fd = _directional(fn, x, d)
    assert analytic == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_transport_value_is_not_differentiated_by_the_plan():
    """Why ``value="transport"`` needs ``grad="unrolled"``: at eps = 2 the plan (envelope gradient) and the derivative
    of <P, C> disagree, in sign along this direction."""
    g = torch.Generator().manual_seed(16)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64) + 0.5
    d = torch.randn(5, 3, generator=g, dtype=torch.float64)
    _, fd_transport = _directional(lambda z: sinkhorn_divergence(z, y, 2.0, **CONVERGED, **TRANSPORT)["loss"], x, d)
    envelope, fd_entropic = _directional(lambda z: sinkhorn_divergence(z, y, 2.0, **CONVERGED)["loss"], x, d)
    assert envelope == pytest.approx(fd_entropic, rel=1e-6)
    assert abs(envelope - fd_transport) > 0.1 * abs(envelope)
    with pytest.raises(ValueError, match="unrolled"):
        sinkhorn_cost(torch.rand(3, 3), 0.1, value="transport")
    with pytest.raises(ValueError, match="value"):
        sinkhorn_divergence(x, y, 0.1, value="dual")


@pytest.mark.parametrize("grad,eps", [("envelope", 0.4), ("envelope", 2.0), ("unrolled", 2.0)])
def test_default_value_and_gradient_match_geomloss(grad, eps):
    """OT_eps and the debiased S_eps with their gradients, against geomloss v0.2.6's ``sinkhorn_loop`` /
    ``sinkhorn_cost`` (converged at a fixed eps; tests/fixtures/sinkhorn/make_fixture.py), squared Euclidean cost."""
    ref = np.load(GEOMLOSS)
    iters = CONVERGED if grad == "envelope" else dict(iters=300)
    for key in ("ot", "debiased"):
        x = torch.tensor(ref["x"], requires_grad=True)
        y = torch.tensor(ref["y"], requires_grad=True)
        if key == "ot":
            value = sinkhorn_cost(pairwise_cost(x, y), eps, grad=grad, **iters)
        else:
            value = sinkhorn_divergence(x, y, eps, grad=grad, **iters)["loss"]
        gx, gy = torch.autograd.grad(value, (x, y))
        name = f"{key}_eps{eps}"
        np.testing.assert_allclose(value.item(), ref[f"{name}_value"], rtol=1e-7)
        np.testing.assert_allclose(gx.numpy(), ref[f"{name}_grad_x"], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(gy.numpy(), ref[f"{name}_grad_y"], rtol=1e-6, atol=1e-9)


def test_low_precision_inputs_are_upcast():
    g = torch.Generator().manual_seed(11)
    C = torch.rand(5, 5, generator=g, dtype=torch.float64)
    ref = sinkhorn_cost(C, 0.05, iters=300)
    for dt in (torch.bfloat16, torch.float16):
        got = sinkhorn_cost(C.to(dt), 0.05, iters=300)
        assert got.dtype == torch.float32
        ref_rounded = sinkhorn_cost(C.to(dt).double(), 0.05, iters=300)
        torch.testing.assert_close(got.double(), ref_rounded, rtol=1e-5, atol=1e-6)
    assert torch.isclose(ref, ref_rounded, rtol=5e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = sinkhorn_cost(C.float(), 0.05, iters=300)
    assert inside.dtype == torch.float32


def test_guards():
    C = torch.rand(3, 4)
    for eps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            sinkhorn_cost(C, eps)
    with pytest.raises(ValueError, match="empty"):
        sinkhorn_cost(torch.rand(0, 4), 0.1)
    bad = C.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        sinkhorn_cost(bad, 0.1)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        entropic_gromov_wasserstein(torch.rand(4, 4), bad[:3, :3], 0.1)
    with pytest.raises(ValueError, match="non-empty"):
        sinkhorn_divergence(torch.rand(0, 3), torch.rand(4, 3), 0.1)
    with pytest.raises(ValueError, match="grad"):
        sinkhorn_cost(C, 0.1, grad="implicit")
    with pytest.raises(ValueError, match="value"):
        sinkhorn_cost(C, 0.1, value="dual")
    with pytest.raises(ValueError, match="eps"):
        entropic_gromov_wasserstein(torch.rand(4, 4), torch.rand(3, 3), 0.0)


# ----------------------------------------------------------------------------------------------------------------------
# entropic Gromov-Wasserstein
# ----------------------------------------------------------------------------------------------------------------------
def _gw_inputs(seed: int, m: int = 6, n: int = 7):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(m, 3)), rng.normal(size=(n, 2))
    return ot.dist(X, X, metric="euclidean"), ot.dist(Y, Y, metric="euclidean")


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_entropic_gw_matches_pot_with_doubled_epsilon(eps):
    D, C = _gw_inputs(12)
    out = entropic_gromov_wasserstein(
        torch.tensor(D), torch.tensor(C), eps, outer_iters=200, inner_iters=1000, tol=1e-10, inner_tol=1e-11
    )
    # POT's linearisation is gwggrad = 2 E, so the paper's eps corresponds to POT's epsilon = 2 eps
    plan_ref, log_ref = ot.gromov.entropic_gromov_wasserstein(
        D, C, epsilon=2 * eps, max_iter=1000, tol=1e-12, log=True, numItermax=20000, stopThr=1e-13
    )
    np.testing.assert_allclose(out["plan"].numpy(), plan_ref, atol=1e-4)
    np.testing.assert_allclose(out["loss"].item(), log_ref["gw_dist"], rtol=1e-4)


def test_entropic_gw_epsilon_factor_matters():
    """POT with epsilon = eps (instead of 2 eps) gives a clearly different plan: the factor 2 is real."""
    D, C = _gw_inputs(12)
    eps = 0.3
    out = entropic_gromov_wasserstein(torch.tensor(D), torch.tensor(C), eps, outer_iters=100, inner_iters=500,
                                      tol=1e-10, inner_tol=1e-11)
    kw = dict(max_iter=1000, tol=1e-12, numItermax=20000, stopThr=1e-13)
    plan_right = ot.gromov.entropic_gromov_wasserstein(D, C, epsilon=2 * eps, **kw)
    plan_wrong = ot.gromov.entropic_gromov_wasserstein(D, C, epsilon=eps, **kw)
    assert np.abs(plan_right - out["plan"].numpy()).max() < 1e-5
    assert np.abs(plan_wrong - out["plan"].numpy()).max() > 1e-2


def test_entropic_gw_value_is_four_index_sum_and_plan_is_coupling():
    D, C = _gw_inputs(13, 5, 4)
    out = entropic_gromov_wasserstein(torch.tensor(D), torch.tensor(C), 0.1, outer_iters=30, inner_iters=300)
    P = out["plan"].numpy()
    L = (D[:, None, :, None] - C[None, :, None, :]) ** 2  # (i, j, k, l) = (D_ik - C_jl)^2
    ref = np.einsum("ijkl,ij,kl->", L, P, P)
    np.testing.assert_allclose(out["loss"].item(), ref, rtol=1e-10)
    np.testing.assert_allclose(P.sum(1), _unif(5), atol=1e-4)
    np.testing.assert_allclose(P.sum(0), _unif(4), atol=1e-9)


def test_entropic_gw_gradients_finite_and_batched():
    D, C = _gw_inputs(14, 5, 5)
    Dt = torch.tensor(D, requires_grad=True)
    Ct = (torch.tensor(C) * 100).requires_grad_()
    for grad in ("envelope", "unrolled"):
        out = entropic_gromov_wasserstein(Dt, Ct, 1e-3, outer_iters=5, inner_iters=50, grad=grad)
        dD, dC = torch.autograd.grad(out["loss"], (Dt, Ct))
        assert torch.isfinite(out["loss"]) and torch.isfinite(dD).all() and torch.isfinite(dC).all()
    # envelope gradient = partial derivative of sum (D_ik - C_jl)^2 pi_ij pi_kl at the fixed plan
    out = entropic_gromov_wasserstein(Dt, torch.tensor(C), 0.1, outer_iters=10, inner_iters=200)
    (dD,) = torch.autograd.grad(out["loss"], Dt)
    P = out["plan"].numpy()
    ref = 2 * np.einsum("ijkl,ij,kl->ik", D[:, None, :, None] - C[None, :, None, :], P, P)
    np.testing.assert_allclose(dD.numpy(), ref, rtol=1e-8, atol=1e-12)
    # batched call equals two single calls
    Db = torch.stack([torch.tensor(D), torch.tensor(D) * 2])
    Cb = torch.stack([torch.tensor(C), torch.tensor(C)])
    outb = entropic_gromov_wasserstein(Db, Cb, 0.1, outer_iters=10, inner_iters=200)
    for b in range(2):
        single = entropic_gromov_wasserstein(Db[b], Cb[b], 0.1, outer_iters=10, inner_iters=200)
        torch.testing.assert_close(outb["loss"][b], single["loss"])


def test_entropic_gw_unit_marginals_follow_the_papers_listing():
    """``marginals="unit"`` against a literal transcription of the paper's "Computing the GW Distance" listing:
    ``pi^(0) = 1/m``, ``E = D^2 1 1^T / m + 1 1^T C^2 / m - 2 D pi C^T``, ``a = 1 ./ (K b)``, ``b = 1 ./ (K^T a)``."""
    rng = np.random.default_rng(21)
    m, eps, M, L = 5, 2.0, 20, 2000  # inner loops run to convergence (the constant parts of E only shift the start)
    y, x = rng.normal(size=(m, 3)), rng.normal(size=(m, 2))
    D = np.linalg.norm(y[:, None] - y[None], axis=-1)
    C = np.linalg.norm(x[:, None] - x[None], axis=-1)
    pi = np.full((m, m), 1.0 / m)
    ones = np.ones((m, m))
    for _ in range(M):
        E = (D**2) @ ones / m + ones @ (C**2) / m - 2.0 * D @ pi @ C.T
        K = np.exp(-E / eps)
        b = np.ones(m)
        for _ in range(L):
            a = 1.0 / (K @ b)
            b = 1.0 / (K.T @ a)
        pi = a[:, None] * K * b[None, :]
    paper = np.einsum("ijkl,ij,kl->", (D[:, None, :, None] - C[None, :, None, :]) ** 2, pi, pi)
    out = entropic_gromov_wasserstein(torch.tensor(D), torch.tensor(C), eps, outer_iters=M, inner_iters=L,
                                      marginals="unit")
    np.testing.assert_allclose(out["plan"].numpy(), pi, atol=1e-6)
    np.testing.assert_allclose(out["loss"].item(), paper, rtol=1e-5)
    np.testing.assert_allclose(out["plan"].numpy().sum(1), 1.0, atol=1e-6)
    # not the probability value times m^2 at the same eps: the cross term is m times larger (eps / m)
    prob = entropic_gromov_wasserstein(torch.tensor(D), torch.tensor(C), eps, outer_iters=M, inner_iters=L)
    assert abs(m**2 * prob["loss"].item() - paper) > 1e-3 * paper
    with pytest.raises(ValueError, match="m == n"):
        entropic_gromov_wasserstein(torch.tensor(D), torch.tensor(C[:4, :4]), eps, marginals="unit")
    with pytest.raises(ValueError, match="marginals"):
        entropic_gromov_wasserstein(torch.tensor(D), torch.tensor(C), eps, marginals="mass")
