"""The one DataModule of the project: HumanML3D, KIT-ML (Guo or TMR layout), several at once for joint training;
AIST++ music-dance windows (:mod:`motion_text.data.aistpp`) for music-to-dance."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from motion_text.data.aistpp import MUSIC_TOLERANCE_S
from motion_text.data.cache import SYNTHETIC_GENERATION, default_cache_dir
from motion_text.data.dataset import EpochSeededSampler, MotionTextDataset, Source, collate_motion_text
from motion_text.data.features import layout_for
from motion_text.data.readers import (
    GUO_SPAN_FPS,
    DataConfigError,
    DataError,
    SplitData,
    read_guo_split,
    read_text,
    read_tmr_split,
)
from motion_text.data.skeleton import HUMANML3D, Skeleton, get_skeleton

__all__ = ["DatasetSpec", "MotionTextDataModule", "default_cache_dir"]

log = logging.getLogger(__name__)

_STAGES = ("train", "val", "test")
_SOURCES = {
    "humanml3d": "HumanML3D: https://github.com/EricGuo5513/HumanML3D (build new_joint_vecs/ with its scripts)",
    "kitml": "KIT-ML in HumanML3D's processed format: https://github.com/EricGuo5513/HumanML3D",
    "aistpp": "AIST++: https://google.github.io/aistplusplus_dataset (motions/, wav/, splits/, ignore_list.txt)",
}


@dataclass
class DatasetSpec:
    """One dataset of the DataModule.

    name: ``humanml3d``, ``kitml`` or ``aistpp`` (music-dance; its layout is always ``aistpp``).
    root: folder of the dataset; for synthetic data, optional (a cache folder is used).
    layout: ``guo`` (new_joint_vecs/, texts/, Mean.npy ...) or ``tmr`` (annotations.json, motions/, splits/, stats/;
        263-d on the 22-joint skeleton for both datasets, as TMR and MoT++ use for joint training).
    stages: which of train / val / test this dataset serves (joint training: KIT-ML ``[train]`` +
        HumanML3D ``[train, val, test]``).
    synthetic: if > 0, generate that many synthetic motions into ``root`` when it does not exist yet.
    synthetic_seed: seed of the generator.
    exclude_test: optional file of key ids (one per line) removed from this dataset's test split, e.g. the motions
        a HumanML3D test set shares with KIT-ML (MoT++'s ``humanml3d_test_wokit`` / ``kitml_test_wohumanml3d``).
    """

    name: str = "humanml3d"
    root: str | None = None
    layout: str = "guo"
    stages: list[str] = field(default_factory=lambda: list(_STAGES))
    synthetic: int = 0
    synthetic_seed: int = 0
    exclude_test: str | None = None

    @property
    def skeleton(self) -> Skeleton:
        if self.name == "aistpp":
            from motion_text.data.aistpp import AISTPP_SKELETON

            return AISTPP_SKELETON
        return HUMANML3D if self.layout == "tmr" else get_skeleton(self.name)

    @property
    def feature_dim(self) -> int:
        if self.name == "aistpp":
            from motion_text.data.aistpp import POSE_DIM

            return POSE_DIM
        return layout_for(self.skeleton).dim

    def resolved_root(self) -> Path:
        if self.root:
            return Path(self.root).expanduser()
        if self.synthetic > 0:
            return default_cache_dir() / "synthetic" / (
                f"{self.name}_{self.layout}_{self.synthetic}_s{self.synthetic_seed}_g{SYNTHETIC_GENERATION}")
        raise DataConfigError(f"dataset {self.name!r}: no root given (set data.datasets[].root)")


class MotionTextDataModule(L.LightningDataModule):
    """Motion-text data for every method.

    Parameters
    ----------
    datasets: one or several :class:`DatasetSpec`. Several with the ``train`` stage = joint-dataset training; all must
        share one feature layout (use ``layout: tmr`` for HumanML3D + KIT-ML), each is normalised by its own stats.
    batch_size / eval_batch_size: per-process batch sizes.
    num_workers: DataLoader workers.
    max_len: crop length in frames (random crop in training, first frames in evaluation); ``null`` = no crop.
    min_len / max_len_filter: override the reference length filter (HumanML3D 40 <= T < 200, KIT-ML 24 <= T < 200).
    span_fps: Guo layout: seconds -> frames factor of sub-motion captions (Guo et al.'s 20, for KIT-ML as well);
        ``null``: each dataset's own fps.
    group_spans: Guo layout: one item per distinct sub-motion span (its captions together) instead of Guo et al.'s
        one item per sub-motion caption. ``motion-text counts`` prints the resulting per-split counts.
    sample_unit: ``motion`` (one sample per motion, random caption) or ``pair`` (one per (motion, caption) pair).
    seed: seed of shuffling, crops and caption choice (combined with epoch and index).
    joints: also return the joints view (B, T, J, 3) (from ``new_joints/`` or ``recover_from_ric``).
    include_mirrors_in_test: keep HumanML3D's mirrored ``M`` copies in the test gallery (the reference does).
    strict: turn every counted skip into an error.
    allow_missing: skip (and count) ids of a split file whose motion file is missing instead of failing.
    predict_split: split used by ``predict``.
    window_seconds: AIST++ only: length of the aligned music/dance crops (random in training, from frame 0 in
        validation; test uses full sequences). Each training batch holds two independent mini-batches of
        ``batch_size`` (the two halves of one shuffled draw of ``2 * batch_size`` sequences), as MDOT-Net's steps need.
    predict_music: AIST++ only: audio files to generate dances for in ``predict`` (instead of ``predict_split``).
    music_tolerance_seconds: AIST++ only: how much shorter than its motion a wav may be (the pair is cut to the music);
        a wav shorter by more is skipped and counted (see :class:`~motion_text.data.aistpp.AISTPPDataset`).

    An option of the wrong sign or kind (``batch_size: -1``, ``max_len: 0``, an unknown dataset name) raises
    :class:`~motion_text.data.readers.DataConfigError` naming the option: one ``error:`` line from the CLI.
    """

    def __init__(self, datasets: list[DatasetSpec] | None = None, batch_size: int = 32,
                 eval_batch_size: int | None = None, num_workers: int = 2, max_len: int | None = 200,
                 min_len: int | None = None, max_len_filter: int | None = None, sample_unit: str = "motion",
                 seed: int = 1234, joints: bool = False, include_mirrors_in_test: bool = True, strict: bool = False,
                 allow_missing: bool = False, predict_split: str = "test", window_seconds: float = 4.0,
                 predict_music: list[str] | None = None, span_fps: float | None = GUO_SPAN_FPS,
                 group_spans: bool = False, music_tolerance_seconds: float = MUSIC_TOLERANCE_S) -> None:
        super().__init__()
        self.specs = list(datasets) if datasets else [DatasetSpec()]
        if len(self.specs) > 1 and any(s.name == "aistpp" for s in self.specs):
            raise DataConfigError("data.datasets: aistpp cannot be combined with other datasets")
        for s in self.specs:
            if s.name == "aistpp":
                s.layout = "aistpp"
            if s.name not in _SOURCES:
                raise DataConfigError(f"data.datasets: unknown dataset {s.name!r}; known: {sorted(_SOURCES)}")
            if s.layout not in ("guo", "tmr") and s.name != "aistpp":
                raise DataConfigError(f"dataset {s.name!r}: layout must be 'guo' or 'tmr', got {s.layout!r}")
            bad = set(s.stages) - set(_STAGES)
            if bad:
                raise DataConfigError(f"dataset {s.name!r}: unknown stages {sorted(bad)}; expected {list(_STAGES)}")
        dims = {s.feature_dim for s in self.specs}
        if len(dims) > 1:
            raise DataConfigError(
                f"datasets {[s.name for s in self.specs]} have different feature layouts {sorted(dims)}; joint "
                "training needs one layout: use layout: tmr (263-d on the 22-joint skeleton) for every dataset")
        if sample_unit not in ("motion", "pair"):
            raise DataConfigError(f"data.sample_unit must be 'motion' or 'pair', got {sample_unit!r}")
        _check_number("batch_size", batch_size, 1)
        _check_number("eval_batch_size", eval_batch_size, 1, optional=True)
        _check_number("num_workers", num_workers, 0)
        _check_number("max_len", max_len, 1, optional=True)
        _check_number("window_seconds", window_seconds, 0.0, integer=False, strict=True)
        _check_number("music_tolerance_seconds", music_tolerance_seconds, 0.0, integer=False)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.max_len = num_workers, max_len
        self.min_len, self.max_len_filter = min_len, max_len_filter
        self.sample_unit, self.seed, self.joints = sample_unit, seed, joints
        self.include_mirrors_in_test, self.strict, self.allow_missing = include_mirrors_in_test, strict, allow_missing
        self.predict_split = predict_split
        self.span_fps, self.group_spans = span_fps, group_spans
        self.window_seconds, self.predict_music = window_seconds, predict_music
        self.music_tolerance_seconds = music_tolerance_seconds
        self.dance = self.specs[0].name == "aistpp"
        if self.dance and predict_music:
            self.predict_split = "music"
        self.datasets: dict[str, MotionTextDataset] = {}

    # ---- facts linked into the models (known without reading any file) -------------------------------------------
    @property
    def skeleton(self) -> Skeleton:
        return self.specs[0].skeleton

    @property
    def feature_dim(self) -> int:
        return self.specs[0].feature_dim

    @property
    def music_dim(self) -> int:
        """Music feature channels (35 for AIST++, 0 for the text datasets)."""
        from motion_text.data.music import MUSIC_FEATURE_DIM

        return MUSIC_FEATURE_DIM if self.dance else 0

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def skeleton_name(self) -> str:
        return self.skeleton.name

    @property
    def fps(self) -> float:
        return self.skeleton.fps

    # ---- Lightning hooks ----------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        for spec in self.specs:
            root = spec.resolved_root()
            if spec.synthetic > 0 and not _complete(root, spec.layout) and spec.name == "aistpp":
                from motion_text.data.synthetic_aistpp import generate_aistpp

                log.info("generating synthetic aistpp (%d sequences) into %s", spec.synthetic, root)
                generate_aistpp(root, spec.synthetic, spec.synthetic_seed, quiet=True)
            elif spec.synthetic > 0 and not _complete(root, spec.layout):
                from motion_text.data.synthetic import generate_dataset

                log.info("generating synthetic %s (%d motions) into %s", spec.name, spec.synthetic, root)
                generate_dataset(root, spec.name, spec.synthetic, spec.synthetic_seed, layout=spec.layout)
            elif not root.exists() and spec.name == "aistpp":
                raise DataError(f"{root}: AIST++ root not found (expected motions/, wav/, splits/). Data source: "
                                f"{_SOURCES['aistpp']}. Or try `motion-text synth --format aistpp --out {root}`")
            elif not root.exists():
                raise DataError(
                    f"{root}: dataset root of {spec.name!r} not found. Expected the {spec.layout} layout "
                    f"({'new_joint_vecs/, texts/, Mean.npy, Std.npy, train/val/test.txt' if spec.layout == 'guo' else 'annotations.json, motions/, splits/, stats/'}). "
                    f"Data source: {_SOURCES[spec.name]}. Or try the synthetic config: "
                    f"--data=synthetic_{spec.name}.yaml / `motion-text synth --format {spec.name} --out {root}`")

    def read_split(self, spec: DatasetSpec, split: str) -> SplitData:
        lengths = None
        if self.min_len is not None or self.max_len_filter is not None:
            from motion_text.data.readers import GUO_LENGTHS

            d_min, d_max = GUO_LENGTHS.get(spec.skeleton.name, (40, 200))
            lengths = (self.min_len or d_min, self.max_len_filter or d_max)
        include_mirrors = self.include_mirrors_in_test or split != "test"
        reader = read_guo_split if spec.layout == "guo" else read_tmr_split
        if spec.layout == "tmr":
            kwargs = {"length_filter": split != "test"}
        else:
            kwargs = {"span_fps": self.span_fps, "group_spans": self.group_spans}
        return reader(spec.resolved_root(), split, spec.skeleton, lengths=lengths, strict=self.strict,
                      allow_missing=self.allow_missing, include_mirrors=include_mirrors, **kwargs)

    def split_items(self, spec: DatasetSpec, split: str, data: SplitData) -> list:
        """The items of ``data`` that ``split`` uses: on test, minus those of ``spec.exclude_test``."""
        items = data.items
        if split == "test" and spec.exclude_test:
            path = Path(spec.exclude_test).expanduser()
            if not path.exists():
                raise DataError(f"{path}: exclude_test list of {spec.name!r} not found")
            drop = {k.strip() for k in read_text(path, "exclude_test list").splitlines() if k.strip()}
            items = [it for it in items if it.motion_id not in drop and it.key not in drop]
            log.info("%s test: removed %d items listed in %s", spec.name, len(data.items) - len(items), path)
        return items

    def _build(self, split: str) -> MotionTextDataset:
        if split in self.datasets:
            return self.datasets[split]
        if self.dance:
            from motion_text.data import aistpp

            self.datasets[split] = aistpp.build_dataset(self, split)
            return self.datasets[split]
        stage = split if split in _STAGES else "test"
        sources = []
        for i, spec in enumerate(self.specs):
            if stage not in spec.stages:
                continue
            data = self.read_split(spec, split)
            items = self.split_items(spec, split, data)
            sources.append(Source(spec.name, items, data.mean, data.std, spec.skeleton.num_joints, i))
        if not sources:
            raise DataConfigError(f"no dataset serves the {stage!r} stage; set stages in data.datasets")
        if sum(len(s.items) for s in sources) == 0:
            raise DataError(f"split {split!r} of {[s.name for s in sources]} is empty after filtering")
        train = split == "train"
        ds = MotionTextDataset(sources, train=train, max_len=self.max_len, seed=self.seed,
                               sample_unit=self.sample_unit if train else "motion", joints=self.joints)
        self.datasets[split] = ds
        return ds

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": (self.predict_split,)}
        for split in wanted.get(stage, ("train", "val", "test")):
            self._build(split)

    def dance_stats(self) -> dict:
        """AIST++: training statistics (music feature mean / std, mean pose), see ``AISTPPDataset.stats``."""
        return self._build("train").stats()

    def reference_dances(self, splits: list[str]):
        """AIST++: full ground-truth sequences of ``splits`` (the FID reference set), see
        :func:`motion_text.data.aistpp.reference_dances`."""
        from motion_text.data import aistpp

        return aistpp.reference_dances(self, splits)

    def nsim_keys(self) -> set[str] | None:
        """Key ids of TMR's dissimilar test subset (``nsim_test.txt``) of the test datasets, or None if absent."""
        keys: set[str] = set()
        found = False
        for spec in self.specs:
            if "test" not in spec.stages:
                continue
            root = spec.resolved_root()
            for cand in (root / "nsim_test.txt", root / "splits" / "nsim_test.txt"):
                if cand.exists():
                    keys |= {k.strip() for k in read_text(cand, "key list").splitlines() if k.strip()}
                    found = True
                    break
        return keys if found else None

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        ds = self._build(split)
        sampler = EpochSeededSampler(len(ds), shuffle=shuffle, seed=self.seed)
        collate, paired = collate_motion_text, False
        if self.dance:
            from motion_text.data.aistpp import collate_dance

            collate, paired = collate_dance, split == "train" and shuffle
        loader = (TrainLoader if split == "train" else DataLoader)(
            ds, batch_size=2 * batch_size if paired else batch_size, sampler=sampler, num_workers=self.num_workers,
            collate_fn=collate, persistent_workers=self.num_workers > 0, drop_last=paired)
        if split == "train":
            loader.drawn_batches = self._drawn_batches
        return loader

    def _drawn_batches(self) -> int:
        """Batches of the running training epoch already drawn (after a mid-epoch resume: those before the
        checkpoint; at the start of an epoch: 0)."""
        trainer = self.trainer
        if trainer is None or not trainer.training or trainer.state.status != "running":
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.current.ready

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, False, self.eval_batch_size)


class TrainLoader(DataLoader):
    """The training DataLoader: its iterator starts (and worker processes draw indices from the sampler) at the first
    batch instead of at ``iter()``, and it leaves out the batches an interrupted epoch had already drawn.

    Lightning creates the first training iterator before it sets the sampler's epoch, so with workers a resumed run
    would draw its first epoch in epoch 0's order; and it continues an interrupted epoch from a fresh iterator, which
    would repeat the epoch's first batches. With both fixed, ``fit`` + mid-epoch SIGTERM + ``--ckpt_path last`` gives
    the same weights as an uninterrupted ``fit``.
    """

    drawn_batches = None  # callable -> batches of the current epoch already drawn (set by the DataModule)

    def __iter__(self):
        return _StartAtFirstBatch(self)

    def state_dict(self) -> dict:
        """Nothing to save (the position comes from the trainer's restored batch progress); having these two methods
        tells Lightning that the loader resumes mid-epoch, so it does not warn that it cannot."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _StartAtFirstBatch:
    def __init__(self, loader: TrainLoader) -> None:
        self.loader, self.iterator = loader, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.iterator is None:
            drawn = self.loader.drawn_batches() if self.loader.drawn_batches else 0
            self.loader.sampler.skip = drawn * self.loader.batch_size
            self.iterator = DataLoader.__iter__(self.loader)
        return next(self.iterator)


def _check_number(name: str, value, low: float, optional: bool = False, integer: bool = True,
                  strict: bool = False) -> None:
    """Raise :class:`DataConfigError` unless ``value`` is a (finite) number ``>= low`` (``> low`` if ``strict``), an int
    if ``integer``, or None if ``optional``."""
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        kind = "an integer" if integer else "a number"
        bound = f"> {low:g}" if strict else f">= {low:g}"
        none = " or null" if optional else ""
        raise DataConfigError(f"data.{name} must be {kind} {bound}{none}, got {value!r}")


def _complete(root: Path, layout: str) -> bool:
    marker = root / {"guo": "test.txt", "aistpp": "splits/crossmodal_test.txt"}.get(layout, "splits/test.txt")
    return marker.exists()
