"""AIST++ reader, restricted unpickler, SMPL forward kinematics, synthetic AIST++ and the aistpp DataModule."""

import os
import pickle

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from motion_text.data.aistpp import (
    AISTPP_SKELETON,
    POSE_DIM,
    SMPL_REST_JOINTS,
    features_to_rotmats,
    features_to_smpl,
    load_motion_pkl,
    music_id_of,
    poses_to_features,
    read_aistpp_split,
    save_motion_pkl,
    smpl_forward_kinematics,
)
from motion_text.data.readers import DataError
from motion_text.data.synthetic_motion import forward_kinematics


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_restricted_unpickler_rejects_code_and_reads_motions(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"smpl_poses": _Exploit(marker)}))
    with pytest.raises(DataError, match="bad.pkl.*not allowed"):
        load_motion_pkl(bad)
    assert not marker.exists()
    evil_eval = tmp_path / "eval.pkl"
    evil_eval.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")  # protocol-0 call of builtins.eval
    with pytest.raises(DataError, match="builtins.eval"):
        load_motion_pkl(evil_eval)

    rng = np.random.default_rng(0)
    poses, trans = rng.normal(size=(7, 72)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    path = save_motion_pkl(tmp_path / "ok.pkl", poses, trans, 93.5)
    data = load_motion_pkl(path)
    np.testing.assert_array_equal(data["smpl_poses"], poses)
    np.testing.assert_array_equal(data["smpl_trans"], trans)
    assert data["smpl_scaling"].tolist() == [93.5]


def test_malformed_motion_files_name_the_file(tmp_path):
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps({"smpl_poses": np.zeros((5, 72)), "smpl_trans": np.zeros((5, 3))}))
    with pytest.raises(DataError, match=r"m\.pkl: missing field\(s\) \['smpl_scaling'\]"):
        load_motion_pkl(p)
    p.write_bytes(pickle.dumps({"smpl_poses": np.zeros((5, 69)), "smpl_trans": np.zeros((5, 3)),
                                "smpl_scaling": np.ones(1)}))
    with pytest.raises(DataError, match=r"\(N, 72\)"):
        load_motion_pkl(p)
    p.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="m.pkl"):
        load_motion_pkl(p)


def test_music_id_from_sequence_name():
    assert music_id_of("gBR_sBM_cAll_d04_mBR0_ch01") == "mBR0"
    assert music_id_of("gHO_sFM_c01_d20_mHO5_ch13") == "mHO5"
    assert music_id_of("no_music_here") is None


def test_split_reader_counts_skips(aistpp_root, tmp_path, caplog):
    ignored = (aistpp_root / "ignore_list.txt").read_text().split()
    train_names = (aistpp_root / "splits" / "crossmodal_train.txt").read_text().split()
    with caplog.at_level("INFO", logger="motion_text.data.readers"):
        items = read_aistpp_split(aistpp_root, "train")
    assert len(items) == len(train_names) - 1 and ignored[0] in train_names
    assert "1 in ignore_list.txt" in caplog.text
    assert all(it.wav_path.name == f"{it.music_id}.wav" and it.music_id in it.key for it in items)
    # a copy with a missing motion file and a missing wav: counted, or raised with strict=True
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(aistpp_root, root)
    (root / "motions" / f"{items[0].key}.pkl").unlink()
    (root / "wav" / f"{items[-1].music_id}.wav").unlink()
    kept = read_aistpp_split(root, "train")
    lost = {it.key for it in items} - {it.key for it in kept}
    assert items[0].key in lost and items[-1].key in lost
    with pytest.raises(DataError, match="motion file missing"):
        read_aistpp_split(root, "train", strict=True)
    (root / "splits" / "crossmodal_val.txt").unlink()  # EDGE's / Bailando's layout: val falls back to test
    assert [it.key for it in read_aistpp_split(root, "val")] == [it.key for it in read_aistpp_split(root, "test")]
    (root / "splits" / "crossmodal_test.txt").unlink()
    with pytest.raises(DataError, match="crossmodal_val.txt"):
        read_aistpp_split(root, "val")


def test_forward_kinematics_matches_numpy_reference():
    rng = np.random.default_rng(1)
    aa = rng.normal(scale=0.6, size=(6, 24, 3))
    trans = rng.normal(size=(6, 3))
    rot = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(6, 24, 3, 3)
    ours = smpl_forward_kinematics(torch.tensor(rot), torch.tensor(trans)).numpy()
    ref = forward_kinematics(rot, trans + SMPL_REST_JOINTS[0], AISTPP_SKELETON)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    # identity rotations: the rest joints moved by the translation; batched leading dims
    eye = torch.eye(3, dtype=torch.float64).expand(2, 3, 24, 3, 3)
    rest = smpl_forward_kinematics(eye, torch.ones(2, 3, 3, dtype=torch.float64))
    np.testing.assert_allclose(rest[1, 2].numpy(), SMPL_REST_JOINTS + 1.0, atol=1e-12)


def test_pose_features_round_trip():
    rng = np.random.default_rng(2)
    aa = rng.normal(scale=0.8, size=(5, 72))
    trans = rng.normal(size=(5, 3))
    feats = poses_to_features(aa, trans)
    assert feats.shape == (5, POSE_DIM)
    rot, t = features_to_rotmats(feats.double())
    ref = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(5, 24, 3, 3)
    np.testing.assert_allclose(rot.numpy(), ref, atol=1e-6)
    back = features_to_smpl(feats, scaling=2.0)
    np.testing.assert_allclose(back["smpl_trans"], trans * 2.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(Rotation.from_rotvec(back["smpl_poses"].reshape(-1, 3)).as_matrix(),
                               ref.reshape(-1, 3, 3), atol=1e-5)


def test_synthetic_dance_beats_land_on_music_beats():
    """Kinematic beats of a synthetic dance sit on its beat grid: FACT BAS ~1 aligned, low when the grid is shifted."""
    from motion_text.data.synthetic_aistpp import beat_times, synth_dance
    from motion_text.metrics.dance import beat_align_score_fact

    rng = np.random.default_rng(3)
    poses, trans = synth_dance("PO", 120.0, 360, 0.3, rng)
    feats = poses_to_features(poses, trans).double()
    joints = smpl_forward_kinematics(*features_to_rotmats(feats)).numpy()
    beats = np.round(beat_times(120.0, 6.0, 0.3) * 60).astype(int)
    aligned = beat_align_score_fact(joints, beats)
    shifted = beat_align_score_fact(joints, beats + 15)  # half a beat at 120 BPM
    assert aligned > 0.95 and shifted < 0.1


def test_aistpp_datamodule_windows_and_facts(aistpp_root):
    from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule
    from motion_text.data.music import MUSIC_FEATURE_DIM

    dm = MotionTextDataModule([DatasetSpec(name="aistpp", root=str(aistpp_root))], batch_size=2, num_workers=0,
                              window_seconds=2.0)
    assert (dm.feature_dim, dm.music_dim, dm.num_joints, dm.fps) == (POSE_DIM, MUSIC_FEATURE_DIM, 24, 60.0)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["motion"].shape == (4, 120, POSE_DIM) and batch["music"].shape == (4, 120, MUSIC_FEATURE_DIM)
    assert bool(batch["mask"].all())
    # the horizontal root position starts at 0 in every window; music and beats are aligned with the motion
    assert torch.allclose(batch["motion"][:, 0, [-3, -1]], torch.zeros(4, 2), atol=1e-5)
    for b, music in zip(batch["beats"], batch["music"]):
        np.testing.assert_array_equal(b, np.flatnonzero(music[:, -1].numpy() > 0.5))
    dm.setup("test")
    test = next(iter(dm.test_dataloader()))
    assert test["length"].min() >= 4.5 * 60 - 1  # full sequences
    stats = dm.dance_stats()
    assert stats["music_std"].shape == (MUSIC_FEATURE_DIM,) and bool((stats["music_std"] > 0).all())
    with pytest.raises(ValueError, match="cannot be combined"):
        MotionTextDataModule([DatasetSpec(name="aistpp", root="x"), DatasetSpec(name="humanml3d")])
    with pytest.raises(DataError, match="motion-text synth --format aistpp"):
        MotionTextDataModule([DatasetSpec(name="aistpp", root=str(aistpp_root / "nope"))]).prepare_data()


def test_synth_cli_writes_aistpp_layout(tmp_path):
    from motion_text.cli import main

    assert main(["synth", "--format", "aistpp", "--out", str(tmp_path / "s"), "--num", "10", "--quiet"]) == 0
    root = tmp_path / "s"
    names = [n for s in ("train", "val", "test") for n in (root / "splits" / f"crossmodal_{s}.txt").read_text().split()]
    assert len(names) == 10 and all((root / "motions" / f"{n}.pkl").is_file() for n in names)
    assert all((root / "wav" / f"{music_id_of(n)}.wav").is_file() for n in names)
    test_music = {music_id_of(n) for n in (root / "splits" / "crossmodal_test.txt").read_text().split()}
    train_music = {music_id_of(n) for n in (root / "splits" / "crossmodal_train.txt").read_text().split()}
    assert test_music and not test_music & train_music  # cross-modal protocol: unseen music in test
