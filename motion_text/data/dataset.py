"""Torch datasets, the epoch-seeded sampler and the collate function shared by every method."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from motion_text.data.features import recover_from_ric
from motion_text.data.readers import DataError, MotionItem

__all__ = ["Source", "MotionTextDataset", "EpochSeededSampler", "collate_motion_text"]


@dataclass
class Source:
    """One dataset's items and normalisation."""

    name: str
    items: list[MotionItem]
    mean: np.ndarray
    std: np.ndarray
    num_joints: int
    dataset_id: int = 0


def _read_rows(path, lo: int, hi: int) -> np.ndarray:
    """Frames ``[lo, hi)`` of a ``.npy`` file as float32; a file that became unreadable after start-up (or a joints file,
    which the readers do not open) raises :class:`DataError` naming it."""
    try:
        return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[lo:hi], dtype=np.float32)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a data error naming the file
        raise DataError(f"{path}: cannot read frames {lo}:{hi} ({type(e).__name__}: {e})") from None


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class MotionTextDataset(Dataset):
    """Items of one or several sources (joint-dataset training); each normalised by its own Mean/Std.

    ``__getitem__`` accepts an index or an ``(index, epoch)`` pair (from :class:`EpochSeededSampler`); every random
    choice (crop offset, caption) is drawn from a generator seeded by ``(seed, epoch, index)``, so a resumed run
    sees the same samples. With ``train=False`` crops start at frame 0 and the first caption is used.

    ``sample_unit="pair"`` makes every (item, caption) pair a sample, as DropTriple trains.
    """

    def __init__(self, sources: list[Source], train: bool, max_len: int | None = 200, seed: int = 0,
                 sample_unit: str = "motion", joints: bool = False) -> None:
        if sample_unit not in ("motion", "pair"):
            raise ValueError(f"sample_unit must be 'motion' or 'pair', got {sample_unit!r}")
        self.sources = sources
        self.train, self.max_len, self.seed, self.joints = train, max_len, seed, joints
        self.entries: list[tuple[int, int, int]] = []  # (source, item, caption index or -1)
        for si, src in enumerate(sources):
            for ii, item in enumerate(src.items):
                if sample_unit == "pair":
                    self.entries.extend((si, ii, ci) for ci in range(len(item.captions)))
                else:
                    self.entries.append((si, ii, -1))

    def __len__(self) -> int:
        return len(self.entries)

    def item(self, index: int) -> MotionItem:
        si, ii, _ = self.entries[index]
        return self.sources[si].items[ii]

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index, epoch = (key, 0) if isinstance(key, (int, np.integer)) else key
        si, ii, ci = self.entries[index]
        src = self.sources[si]
        item = src.items[ii]
        rng = _rng(self.seed, epoch, index)
        n = item.length
        if self.max_len is not None and n > self.max_len:
            offset = int(rng.integers(0, n - self.max_len + 1)) if self.train else 0
            n = self.max_len
        else:
            offset = 0
        lo, hi = item.start + offset, item.start + offset + n
        raw = _read_rows(item.path, lo, hi)
        motion = (raw - src.mean) / src.std
        if ci >= 0:
            text = item.captions[ci]
        elif self.train:
            text = item.captions[int(rng.integers(len(item.captions)))]
        else:
            text = item.captions[0]
        out = {
            "motion": torch.from_numpy(motion),
            "text": text,
            "all_texts": list(item.captions),
            "key": item.key,
            "index": index,
            "dataset": src.dataset_id,
        }
        if self.joints:
            if item.joints_path is not None:
                j = _read_rows(item.joints_path, lo, hi)
            else:
                j = recover_from_ric(torch.from_numpy(raw).double(), src.num_joints).float().numpy()
            out["joints"] = torch.from_numpy(j)
        return out


def collate_motion_text(batch: list[dict]) -> dict:
    """Pad motions to the longest in the batch.

    Returns ``motion`` (B, T, D), ``length`` (B,), ``mask`` (B, T) bool (True = valid frame), ``text`` (list of B),
    ``all_texts`` (list of lists), ``key`` (list), ``index`` (B,), ``dataset`` (B,), and ``joints`` (B, T, J, 3)
    when requested.
    """
    lengths = torch.tensor([b["motion"].shape[0] for b in batch], dtype=torch.long)
    t = int(lengths.max())
    motion = torch.zeros((len(batch), t, batch[0]["motion"].shape[-1]))
    for i, b in enumerate(batch):
        motion[i, : lengths[i]] = b["motion"]
    out = {
        "motion": motion,
        "length": lengths,
        "mask": torch.arange(t)[None, :] < lengths[:, None],
        "text": [b["text"] for b in batch],
        "all_texts": [b["all_texts"] for b in batch],
        "key": [b["key"] for b in batch],
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
        "dataset": torch.tensor([b["dataset"] for b in batch], dtype=torch.long),
    }
    if "joints" in batch[0]:
        j = torch.zeros((len(batch), t) + tuple(batch[0]["joints"].shape[1:]))
        for i, b in enumerate(batch):
            j[i, : lengths[i]] = b["joints"]
        out["joints"] = j
    return out


class EpochSeededSampler(Sampler):
    """Shuffles with a permutation seeded by ``(seed, epoch)`` and yields ``(index, epoch)`` pairs.

    Shards across distributed ranks itself (like ``DistributedSampler``: padded by repeating the first indices so every
    rank gets the same count; evaluation metrics de-duplicate by index). The epoch is set by Lightning through
    :meth:`set_epoch`, and it is restored on resume from the trainer's epoch, so a resumed run draws the same order.
    """

    def __init__(self, size: int, shuffle: bool, seed: int = 0, num_replicas: int | None = None,
                 rank: int | None = None, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                num_replicas = torch.distributed.get_world_size()
                rank = torch.distributed.get_rank()
            else:
                num_replicas, rank = 1, 0
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.epoch = 0
        self.skip = 0  # samples of this rank to leave out once, at the next iteration (a mid-epoch resume)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.num_replicas
        return math.ceil(self.size / self.num_replicas)

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist()
        else:
            order = list(range(self.size))
        per = len(self)
        total = per * self.num_replicas
        if total > len(order):
            order = order + order[: total - len(order)] * (1 + (total - len(order)) // max(len(order), 1))
            order = order[:total]
        order = order[:total]
        skip, self.skip = self.skip, 0
        for i in order[self.rank : total : self.num_replicas][skip:]:
            yield (i, self.epoch)
