"""Tests for motion_text.losses.sparsity against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motion_text.losses.sparsity import flops, l0


def numpy_flops(p: np.ndarray) -> float:
    """Eq. 3 written as loops: sum over k of (mean over i of |p_k^(i)|)^2."""
    n, v = p.shape
    total = 0.0
    for k in range(v):
        mean_k = sum(abs(float(p[i, k])) for i in range(n)) / n
        total += mean_k**2
    return total


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_flops_matches_numpy(dtype):
    g = torch.Generator().manual_seed(0)
    p = torch.relu(torch.randn(6, 40, generator=g)).to(dtype)
    p[0, 3] = -0.5  # |.| matters
    value = flops(p)
    assert value.dtype == torch.float32 and value.dim() == 0
    expected = numpy_flops(p.float().numpy())
    np.testing.assert_allclose(value.item(), expected, rtol=1e-5)


def test_flops_gradient_and_zero():
    p = torch.zeros(3, 10, requires_grad=True)
    value = flops(p)
    value.backward()
    assert value.item() == 0.0 and torch.all(p.grad == 0)
    q = torch.rand(4, 10, requires_grad=True)
    flops(q).backward()
    expected = 2 * q.detach().abs().mean(0, keepdim=True) / 4 * torch.sign(q.detach())
    torch.testing.assert_close(q.grad, expected.expand_as(q))


def test_l0_counts_non_zeros():
    p = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, -1.0, 0.0, 5.0]])
    expected = np.mean([np.count_nonzero(row) for row in p.numpy()])
    assert l0(p).item() == pytest.approx(expected)


def test_rejects_non_matrix():
    with pytest.raises(ValueError, match="shape"):
        flops(torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        l0(torch.ones(2, 3, 4))
