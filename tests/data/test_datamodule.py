import numpy as np
import pytest
import torch

from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule
from motion_text.data.dataset import EpochSeededSampler
from motion_text.data.features import recover_from_ric


def _dm(*specs, **kw):
    kw.setdefault("batch_size", 6)
    kw.setdefault("num_workers", 0)
    dm = MotionTextDataModule(list(specs), **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_collate_shapes_masks_lengths(h3d_root):
    dm = _dm(DatasetSpec("humanml3d", str(h3d_root)), max_len=60, joints=True)
    batch = next(iter(dm.train_dataloader()))
    b, t, d = batch["motion"].shape
    assert (b, d) == (6, 263)
    assert t == int(batch["length"].max()) and t <= 60
    assert batch["mask"].shape == (b, t)
    assert torch.equal(batch["mask"].sum(1), batch["length"])
    # padded frames are zero
    assert (batch["motion"][~batch["mask"]] == 0).all()
    assert batch["joints"].shape == (b, t, 22, 3)
    assert len(batch["text"]) == len(batch["key"]) == b
    for text, all_texts in zip(batch["text"], batch["all_texts"]):
        assert text in all_texts


def test_normalisation_and_joints_view(h3d_root):
    dm = _dm(DatasetSpec("humanml3d", str(h3d_root)), max_len=None, joints=True)
    ds = dm.datasets["val"]
    item = ds.item(0)
    sample = ds[0]
    raw = np.load(item.path)[item.start : item.end]
    mean, std = np.load(h3d_root / "Mean.npy"), np.load(h3d_root / "Std.npy")
    np.testing.assert_allclose(sample["motion"].numpy(), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    # the joints view equals recover_from_ric of the raw features (new_joints/ holds exactly that)
    np.testing.assert_allclose(sample["joints"].numpy(), recover_from_ric(torch.from_numpy(raw).double()).numpy(),
                               atol=1e-4)
    assert sample["text"] == item.captions[0]  # first caption in evaluation


def test_joint_dataset_batches(h3d_tmr_root, kit_tmr_root):
    dm = _dm(DatasetSpec("kitml", str(kit_tmr_root), layout="tmr", stages=["train"]),
             DatasetSpec("humanml3d", str(h3d_tmr_root), layout="tmr"), batch_size=64)
    assert dm.feature_dim == 263
    ds = dm.datasets["train"]
    assert {s.name for s in ds.sources} == {"kitml", "humanml3d"}
    batch = next(iter(dm.train_dataloader()))
    assert set(batch["dataset"].tolist()) == {0, 1}
    assert {s.name for s in dm.datasets["val"].sources} == {"humanml3d"}
    # each dataset normalised by its own statistics
    k_src = next(s for s in ds.sources if s.name == "kitml")
    np.testing.assert_allclose(k_src.mean, np.load(kit_tmr_root / "stats" / "mean.npy"))


def test_mixed_layouts_rejected(h3d_root, kit_root):
    with pytest.raises(ValueError, match="different feature layouts"):
        MotionTextDataModule([DatasetSpec("humanml3d", str(h3d_root)), DatasetSpec("kitml", str(kit_root))])


def test_sampler_seeded_by_epoch_and_sharded():
    s = EpochSeededSampler(10, shuffle=True, seed=3, num_replicas=1, rank=0)
    s.set_epoch(2)
    a = list(s)
    s2 = EpochSeededSampler(10, shuffle=True, seed=3, num_replicas=1, rank=0)
    s2.set_epoch(2)
    assert a == list(s2)  # a resumed run at epoch 2 draws the same order
    s2.set_epoch(3)
    assert [i for i, _ in a] != [i for i, _ in s2]
    shards = [list(EpochSeededSampler(10, shuffle=False, num_replicas=3, rank=r)) for r in range(3)]
    idx = sorted(i for sh in shards for i, _ in sh)
    assert len(idx) == 12 and set(idx) == set(range(10))  # padded by repetition, nothing missing


def test_item_randomness_depends_on_seed_epoch_index(h3d_root):
    dm = _dm(DatasetSpec("humanml3d", str(h3d_root)), max_len=40)
    ds = dm.datasets["train"]
    a, b = ds[(3, 1)], ds[(3, 1)]
    assert torch.equal(a["motion"], b["motion"]) and a["text"] == b["text"]
    differs = any(not torch.equal(ds[(i, 1)]["motion"], ds[(i, 2)]["motion"]) for i in range(len(ds)))
    assert differs


def test_pair_sample_unit(h3d_root):
    dm = _dm(DatasetSpec("humanml3d", str(h3d_root)), sample_unit="pair")
    ds = dm.datasets["train"]
    assert len(ds) == sum(len(it.captions) for s in ds.sources for it in s.items)


def test_missing_root_message(tmp_path):
    dm = MotionTextDataModule([DatasetSpec("humanml3d", str(tmp_path / "HumanML3D"))])
    with pytest.raises(Exception, match="new_joint_vecs.*HumanML3D"):
        dm.prepare_data()


def test_synthetic_generated_on_first_use(tmp_path):
    dm = MotionTextDataModule([DatasetSpec("humanml3d", str(tmp_path / "s"), synthetic=12)], num_workers=0)
    dm.prepare_data()
    assert (tmp_path / "s" / "Mean.npy").exists()
    dm.setup("fit")
    assert len(dm.datasets["train"]) > 0


def test_exclude_test_ids(h3d_root, tmp_path):
    base = _dm(DatasetSpec("humanml3d", str(h3d_root)))
    base.setup("test")
    keys = [it.motion_id for s in base.datasets["test"].sources for it in s.items]
    drop = tmp_path / "overlap.txt"
    drop.write_text(f"{keys[0]}\n{keys[1]}\n")
    dm = _dm(DatasetSpec("humanml3d", str(h3d_root), exclude_test=str(drop)))
    dm.setup("test")
    left = [it.motion_id for s in dm.datasets["test"].sources for it in s.items]
    assert keys[0] not in left and keys[1] not in left
    assert len(left) == len(keys) - sum(k in (keys[0], keys[1]) for k in keys)


def test_synthetic_cache_folder_names_the_generator_version(monkeypatch, tmp_path):
    """A cache written by an older generator (other features) is never read by a newer one."""
    from motion_text.data import datamodule as dm_mod

    monkeypatch.setenv("MOTION_TEXT_CACHE", str(tmp_path))
    spec = dm_mod.DatasetSpec(name="humanml3d", synthetic=10)
    now = spec.resolved_root()
    monkeypatch.setattr(dm_mod, "SYNTHETIC_GENERATION", dm_mod.SYNTHETIC_GENERATION + 1)
    assert spec.resolved_root() != now and now.parent == tmp_path / "synthetic"
