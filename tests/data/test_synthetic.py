import numpy as np
import torch

from motion_text.data.features import layout_for, recover_from_ric
from motion_text.data.skeleton import KITML


def test_kit_statistics_in_kit_units(kit_root):
    """The synthetic KIT-ML set has the real set's units: real ``Mean.npy`` root height 559.6 (a ~1000-unit body)
    and foot contacts in 1.7 % of the frames (threshold 0.05 unit^2); millimetres of an adult body gave 964 and 0.61."""
    mean = np.load(kit_root / "Mean.npy")
    lay = layout_for(KITML)
    assert 500 < mean[lay["root_height"]][0] < 620
    assert 0.005 < mean[lay["foot_contact"]].mean() < 0.04


def test_new_joints_are_recovered_features(kit_root):
    """``new_joints`` are written as HumanML3D does: ``recover_from_ric`` of the stored float32 features."""
    key = sorted(p.stem for p in (kit_root / "new_joint_vecs").glob("*.npy"))[0]
    feats = np.load(kit_root / "new_joint_vecs" / f"{key}.npy")
    joints = np.load(kit_root / "new_joints" / f"{key}.npy")
    np.testing.assert_array_equal(joints, recover_from_ric(torch.from_numpy(feats)).numpy())
