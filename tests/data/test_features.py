import numpy as np
import pytest
import torch

from motion_text.data.features import joints_to_features, layout_for, recover_from_ric
from motion_text.data.skeleton import HUMANML3D, KITML
from motion_text.data.synthetic_motion import render_program, sample_program


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
        feats, canon = joints_to_features(joints, sk)
        assert feats.shape == (len(joints) - 1, layout_for(sk).dim)
        rec = recover_from_ric(torch.from_numpy(feats).double()).numpy()
        scale = 1.0 / sk.unit_scale  # tolerance 1e-3 metres in the dataset's unit
        assert np.abs(rec - canon).max() < 1e-3 * scale
        # canonical frame: on the floor and starting at the XZ origin
        assert abs(canon[..., 1].min()) < 1e-3 * scale
        assert np.abs(canon[0, 0, [0, 2]]).max() < 1e-3 * scale


def test_recover_handles_full_turns():
    """Root yaw crossing +-180 degrees is recovered (the reference's arcsin of a w<0 delta is not)."""
    sk = HUMANML3D
    rng = np.random.default_rng(0)
    from motion_text.data.synthetic_motion import ActionSpec

    specs = [ActionSpec("turn", direction="left", angle=180), ActionSpec("turn", direction="left", angle=180)]
    joints = render_program(specs, sk, rng)
    feats, canon = joints_to_features(joints, sk)
    rec = recover_from_ric(feats).numpy()
    assert np.abs(rec - canon).max() < 1e-3


def test_feature_dim_errors():
    with pytest.raises(ValueError, match="263 or 251"):
        recover_from_ric(torch.zeros(3, 100))
    with pytest.raises(ValueError, match="shape"):
        joints_to_features(np.zeros((10, 5, 3)), HUMANML3D)
