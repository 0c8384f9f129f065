"""FID and diversity (motion_text.metrics.distribution) against hand computations and plain numpy loops."""

import itertools

import numpy as np
import pytest
import torch

from motion_text.metrics.distribution import (
    fid,
    frechet_distance,
    gaussian_fit,
    pairwise_diversity,
    sampled_diversity,
)


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    hand = 1 + 4 + sum(v1 + v2 - 2 * np.sqrt(v1 * v2))  # |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(hand, rel=1e-12)
    with pytest.raises(ValueError, match="shapes differ"):
        frechet_distance(mu1, np.diag(v1), mu2[:2], np.diag(v2[:2]))


def test_fid_fits_mean_and_unbiased_covariance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(1.0, 2.0, size=(40, 4))
    mu, cov = gaussian_fit(a)
    np.testing.assert_allclose(cov, (a - a.mean(0)).T @ (a - a.mean(0)) / 49, rtol=1e-12)
    assert fid(a, b) == frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
    assert fid(torch.from_numpy(a), b) == fid(a, b)
    assert 0.0 <= fid(a, a) < 1e-6  # rounding in (-1e-6, 0) is returned as 0
    assert abs(fid(a, a, clip_rounding=False)) < 1e-6
    with pytest.raises(ValueError, match="feature dims differ"):
        fid(a, b[:, :3])
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid(a[:1], b)


def test_diversities_against_loops():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 3))
    pairs = [np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(12), 2)]
    assert pairwise_diversity(x) == pytest.approx(np.mean(pairs), rel=1e-12)
    r = np.random.RandomState(7)
    first, second = r.choice(12, 5, replace=False), r.choice(12, 5, replace=False)
    assert sampled_diversity(x, times=5, seed=7) == pytest.approx(
        np.mean([np.linalg.norm(x[i] - x[j]) for i, j in zip(first, second)]), rel=1e-12)
    assert sampled_diversity(x, times=300, seed=7) == sampled_diversity(x, times=12, seed=7)  # capped at N
    with pytest.raises(ValueError, match="at least 2"):
        pairwise_diversity(x[:1])
    with pytest.raises(ValueError, match="at least 2"):
        sampled_diversity(x[:1])
