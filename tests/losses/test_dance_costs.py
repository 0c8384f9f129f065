"""MDOT-Net ground costs against scipy / numpy references."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from motion_text.data.aistpp import POSE_DIM, poses_to_features
from motion_text.losses.dance import geodesic_pose_cost, music_cost, rotation_geodesic


def _seqs(rng, n, t=5):
    aa = rng.normal(scale=0.9, size=(n, t, 72))
    trans = rng.normal(size=(n, t, 3))
    feats = torch.stack([poses_to_features(a, tr).double() for a, tr in zip(aa, trans)])
    return aa, trans, feats


def test_geodesic_pose_cost_matches_scipy_angles():
    rng = np.random.default_rng(0)
    aa_x, tr_x, x = _seqs(rng, 3)
    aa_y, tr_y, y = _seqs(rng, 4)
    got = geodesic_pose_cost(x, y, trans_weight=0.5).numpy()
    ref = np.zeros((3, 4))
    for i in range(3):
        for j in range(4):
            rx = Rotation.from_rotvec(aa_x[i].reshape(-1, 3))
            ry = Rotation.from_rotvec(aa_y[j].reshape(-1, 3))
            angles = (rx.inv() * ry).magnitude()  # geodesic distance on SO(3)
            ref[i, j] = angles.mean() + 0.5 * np.linalg.norm(tr_x[i] - tr_y[j], axis=-1).mean()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def test_geodesic_zero_on_itself_with_finite_gradient():
    rng = np.random.default_rng(1)
    _, _, x = _seqs(rng, 3)
    x = x.clone().requires_grad_()
    C = geodesic_pose_cost(x, x.detach())
    assert C.diagonal().abs().max() < 1e-5 and (C + torch.eye(3) * 1e3).min() > 0
    C.sum().backward()
    assert torch.isfinite(x.grad).all()
    # angle pi (trace -1) stays finite too
    tr = torch.tensor([-1.0, 3.0, 1.0], dtype=torch.float64, requires_grad=True)
    theta = rotation_geodesic(tr)
    np.testing.assert_allclose(theta.detach().numpy(), [np.pi, 0.0, np.pi / 2], atol=1e-3)
    theta.sum().backward()
    assert torch.isfinite(tr.grad).all()


def test_music_costs_match_numpy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 6, 35)), rng.normal(size=(2, 6, 35))
    fl2 = music_cost(torch.tensor(a), torch.tensor(b)).numpy()
    ref = np.linalg.norm(a[:, None] - b[None], axis=-1).mean(-1)
    np.testing.assert_allclose(fl2, ref, rtol=1e-10)
    sq = music_cost(torch.tensor(a), torch.tensor(b), "sqeuclidean").numpy()
    np.testing.assert_allclose(sq, ((a[:, None] - b[None]) ** 2).sum((-1, -2)) / 6, rtol=1e-10)
    with pytest.raises(ValueError, match="unknown music cost"):
        music_cost(torch.tensor(a), torch.tensor(b), "cosine")
    with pytest.raises(ValueError, match="equal T"):
        geodesic_pose_cost(torch.zeros(2, 5, POSE_DIM), torch.zeros(2, 6, POSE_DIM))


def test_velocity_term_matches_numpy():
    rng = np.random.default_rng(3)
    _, _, x = _seqs(rng, 2, t=6)
    _, _, y = _seqs(rng, 3, t=6)
    extra = (geodesic_pose_cost(x, y, vel_weight=0.7) - geodesic_pose_cost(x, y)).numpy()
    dx, dy = np.diff(x.numpy(), axis=1), np.diff(y.numpy(), axis=1)
    ref = 0.7 * np.linalg.norm(dx[:, None] - dy[None], axis=-1).mean(-1)
    np.testing.assert_allclose(extra, ref, rtol=1e-8, atol=1e-10)
    # a constant offset of the whole sequence changes the per-frame terms only
    shifted = x + 0.1
    np.testing.assert_allclose((geodesic_pose_cost(x, shifted, trans_weight=0.0, rot_weight=0.0,
                                                   vel_weight=1.0)).diagonal().numpy(), 0.0, atol=1e-6)
