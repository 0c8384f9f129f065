from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.data.features import joints_to_features, layout_for, recover_from_ric, uniform_skeleton
from motion_text.data.skeleton import HUMANML3D, KITML, get_skeleton
from motion_text.data.synthetic_motion import ActionSpec, render_program, sample_program

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "humanml3d_features" / "process_file.npz"
CASES = ["humanml3d_turn", "humanml3d_random", "kitml_turn", "kitml_random"]


@pytest.fixture(scope="module")
def official():
    return dict(np.load(FIXTURE))


@pytest.mark.parametrize("case", CASES)
def test_matches_official_process_file(official, case):
    """Features of HumanML3D's ``process_file`` (official code run in float64) to 1e-5; see the fixture's README."""
    sk = get_skeleton(case.rsplit("_", 1)[0])
    np.testing.assert_allclose(sk.target_offsets, official[f"{sk.name}_target_offsets"], rtol=0, atol=1e-12)
    feats, _ = joints_to_features(official[f"{case}_input"].astype(np.float64), sk, dtype=np.float64)
    ref = official[f"{case}_features_f64"].astype(np.float64)
    assert feats.shape == ref.shape
    # HumanML3D's reference is stored as float32 (values of order 1, rounding < 3e-7)
    np.testing.assert_allclose(feats, ref, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(feats[:, layout_for(sk)["foot_contact"]], ref[:, layout_for(sk)["foot_contact"]])
    # the official new_joints: recover_from_ric of the features
    rec = recover_from_ric(torch.from_numpy(feats)).numpy()
    np.testing.assert_allclose(rec, official[f"{case}_joints_f64"], rtol=0, atol=1e-5)
    # the official code as is computes its quaternions in float32: its own rounding (measured: 1.5e-5 HumanML3D;
    # 1.5e-3 on KIT-ML's ~1000-unit values, 2.2e-3 on a rot6d entry of a bone nearly opposite its rest direction)
    atol = 1e-4 if sk is HUMANML3D else 5e-3
    np.testing.assert_allclose(feats, official[f"{case}_features_f32"], rtol=0, atol=atol)


def test_uniform_skeleton_sets_target_lengths_and_keeps_directions():
    rng = np.random.default_rng(1)
    joints = render_program(sample_program(rng), HUMANML3D, rng) * 1.2
    out = uniform_skeleton(joints, HUMANML3D)
    parents = HUMANML3D.parents
    bones_in, bones_out = joints[:, 1:] - joints[:, parents[1:]], out[:, 1:] - out[:, parents[1:]]
    lengths = np.linalg.norm(bones_out, axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(HUMANML3D.target_lengths[1:], lengths.shape), atol=1e-12)
    cos = (bones_in * bones_out).sum(-1) / (np.linalg.norm(bones_in, axis=-1) * lengths)
    np.testing.assert_allclose(cos, 1.0, atol=1e-12)
    # root scaled by the ratio of the right thigh + shin lengths (target / source at frame 0)
    legs = [5, 8]
    src = np.linalg.norm(joints[0, legs] - joints[0, [parents[b] for b in legs]], axis=-1).sum()
    np.testing.assert_allclose(out[:, 0], joints[:, 0] * HUMANML3D.target_lengths[legs].sum() / src, atol=1e-12)


def test_slices_sum_to_layout_dims():
    for sk, dim in ((HUMANML3D, 263), (KITML, 251)):
        lay = layout_for(sk)
        sizes = [s.stop - s.start for s in lay.slices.values()]
        assert sum(sizes) == dim == lay.dim
        # contiguous and ordered
        stops = [s.stop for s in lay.slices.values()]
        starts = [s.start for s in lay.slices.values()]
        assert starts[1:] == stops[:-1]
        j = sk.num_joints
        assert sizes == [1, 2, 1, (j - 1) * 3, (j - 1) * 6, j * 3, 4]


@pytest.mark.parametrize("sk", [HUMANML3D, KITML], ids=lambda s: s.name)
def test_round_trip_generated_joints(sk):
    rng = np.random.default_rng(5)
    for _ in range(5):
        joints = render_program(sample_program(rng), sk, rng)
        feats, canon = joints_to_features(joints, sk, turn_sign_fix=True)
        assert feats.shape == (len(joints) - 1, layout_for(sk).dim)
        rec = recover_from_ric(torch.from_numpy(feats).double()).numpy()
        scale = 1.0 / sk.unit_scale  # tolerance 1e-3 metres in the dataset's unit
        assert np.abs(rec - canon).max() < 1e-3 * scale
        # canonical frame: on the floor and starting at the XZ origin
        assert abs(canon[..., 1].min()) < 1e-3 * scale
        assert np.abs(canon[0, 0, [0, 2]]).max() < 1e-3 * scale


def test_turn_sign_fix_recovers_full_turns():
    """Root yaw crossing +-180 degrees from frame 0's: the reference's arcsin of a w<0 delta turns the recovered root
    the wrong way for one frame (kept by default); ``turn_sign_fix`` recovers the motion exactly."""
    sk = HUMANML3D
    rng = np.random.default_rng(0)
    specs = [ActionSpec("turn", direction="left", angle=180), ActionSpec("turn", direction="left", angle=180)]
    joints = render_program(specs, sk, rng)
    feats, canon = joints_to_features(joints, sk, turn_sign_fix=True)
    assert np.abs(recover_from_ric(feats).numpy() - canon).max() < 1e-3
    ref_feats, ref_canon = joints_to_features(joints, sk)
    np.testing.assert_array_equal(ref_canon, canon)
    flipped = np.nonzero(ref_feats[:, 0] != feats[:, 0])[0]
    assert len(flipped) >= 1
    np.testing.assert_allclose(ref_feats[flipped, 0], -feats[flipped, 0], atol=1e-6)
    assert np.abs(recover_from_ric(ref_feats).numpy() - canon).max() > 1e-2


def test_feature_dim_errors():
    with pytest.raises(ValueError, match="263 or 251"):
        recover_from_ric(torch.zeros(3, 100))
    with pytest.raises(ValueError, match="shape"):
        joints_to_features(np.zeros((10, 5, 3)), HUMANML3D)
    with pytest.raises(ValueError, match="NaN"):
        joints_to_features(np.full((10, 22, 3), np.nan), HUMANML3D)
    with pytest.raises(ValueError, match="coincide"):
        joints_to_features(np.zeros((10, 22, 3)), HUMANML3D)
