"""Readers for the real on-disk layouts of HumanML3D / KIT-ML (Guo et al.) and TMR.

Both turn one split into a list of :class:`MotionItem` (a frame range of a feature file plus its captions) and the
dataset's normalisation statistics. Structural problems (missing root, split file or statistics, wrong feature
dimension, unreadable motion file) raise :class:`DataError` naming the file; per-item defects that the reference loaders
drop (too short / too long, no usable caption, bad span) are skipped, counted by reason and reported once per split,
or raised with ``strict=True``.

Guo layout, as Guo et al.'s ``Text2MotionDatasetV2.__init__`` (EricGuo5513/text-to-motion, ``data/dataset.py``)
filters: an id whose whole motion has ``T < min_len`` or ``T >= max_len`` is dropped before its captions are read;
the captions tagged ``0#0`` (or NaN) form one whole-motion item; every other caption cuts
``motion[int(start * 20):int(end * 20)]`` (20 even for KIT-ML's 12.5 fps; ``span_fps``) into an item of its own, kept
when ``min_len <= len < max_len`` (a span ending past the motion is clamped like the numpy slice). Differences: item
keys are ``<id>_<start>_<end>`` (``_2``, ``_3``... for further captions of the same span) instead of a random
``X_<id>`` prefix, items are sorted by key instead of by length, and spans that start before 0 are skipped (numpy
would count them from the end). ``group_spans=True`` makes one item of the captions that share a span. A span time
whose frame index is not finite (``1e308`` s) is skipped as ``caption span outside the motion``; Guo et al.'s loader
drops that caption too (its ``OverflowError`` lands in a bare ``except``).

Text files (split files, captions, ``annotations.json``) are UTF-8; a leading byte-order mark is dropped. Split-file
ids and TMR ``path`` entries that would leave the data root (absolute, or with a ``..`` part) stop with a
:class:`DataError` naming the file and the id.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motion_text.data.features import layout_for
from motion_text.data.skeleton import Skeleton

__all__ = ["DataError", "DataConfigError", "MotionItem", "SkipReport", "SplitData", "read_guo_split",
           "read_tmr_split", "load_stats", "parse_caption_line", "check_motion_file", "read_text", "check_inside_root",
           "GUO_LENGTHS", "GUO_SPAN_FPS", "MIN_STD"]

log = logging.getLogger(__name__)

#: default length filter (min_len, max_len) in frames of Guo et al.'s loaders: 40 <= T < 200 (t2m), 24 <= T < 200 (kit)
GUO_LENGTHS = {"humanml3d": (40, 200), "kitml": (24, 200)}
#: seconds -> frames factor of Guo et al.'s sub-motion cut (``int(f_tag * 20)``), for HumanML3D and KIT-ML alike
GUO_SPAN_FPS = 20.0
#: smallest accepted entry of a Std file: dividing by less blows O(1) feature deviations up past 1e6 (their squares past
#: float32's range for entries below ~1e-19); Guo et al. divide by Std as is and TMR by ``std + 1e-12``, neither clamps
MIN_STD = 1e-6


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file, what was expected and what was found."""


class DataConfigError(DataError):
    """A data option has an invalid value; the message names the option, what was expected and what was found."""


@dataclass
class MotionItem:
    key: str  # unique key id of the item (sub-motions: ``<id>_<start>_<end>`` in frames)
    motion_id: str  # the file's id
    path: Path  # feature file (T, D)
    start: int  # frame range in the file
    end: int
    captions: list[str]
    joints_path: Path | None = None  # (T, J, 3) positions when the layout ships them

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def is_mirror(self) -> bool:
        return self.motion_id.startswith("M")


@dataclass
class SkipReport:
    """Skips counted by reason, reported once per split.

    ``reasons`` counts every skip (an id, a caption line, a caption span). After :meth:`finish`, ``ids`` counts the ids
    of the split file that yield no item, each under the reason of its last skip, and ``captions`` the skips inside ids
    that keep at least one item; the message reads ``train: skipped 12 of 23,384: 9 too short, 3 no caption``.
    """

    split: str
    total: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    ids: Counter = field(default_factory=Counter)
    captions: Counter = field(default_factory=Counter)
    _events: dict[str, Counter] = field(default_factory=dict, repr=False)
    _last: dict[str, str] = field(default_factory=dict, repr=False)

    def skip(self, reason: str, where: str, strict: bool, key: str | None = None) -> None:
        """Count one skip of ``key``'s id (``None``: a whole line of the split file, e.g. a duplicate)."""
        if strict:
            raise DataError(f"{where}: {reason} (strict mode turns skips into errors)")
        self.reasons[reason] += 1
        self.examples.setdefault(reason, where)
        if key is None:
            self.ids[reason] += 1
        else:
            self._events.setdefault(key, Counter())[reason] += 1
            self._last[key] = reason

    def finish(self, kept: set[str]) -> None:
        """Split the skips into dropped ids and skips inside kept ids (``kept``: ids with at least one item)."""
        for key, events in self._events.items():
            if key in kept:
                self.captions.update(events)
            else:
                self.ids[self._last[key]] += 1
        self._events, self._last = {}, {}

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    @property
    def skipped_ids(self) -> int:
        return sum(self.ids.values())

    def message(self) -> str:
        if not self.skipped:
            return ""

        def parts(c: Counter) -> str:
            return ", ".join(f"{n:,} {r}" for r, n in c.most_common())

        msg = f"{self.split}: skipped {self.skipped_ids:,} of {self.total:,}"
        if self.ids:
            msg += f": {parts(self.ids)}"
        if self.captions:
            msg += (f"; in kept ids also skipped {sum(self.captions.values()):,} caption(s) or span(s): "
                    f"{parts(self.captions)}")
        return msg

    def log(self) -> None:
        if self.skipped:
            ex = "; ".join(f"{r}: e.g. {w}" for r, w in self.examples.items())
            log.warning("%s (%s)", self.message(), ex)


@dataclass
class SplitData:
    items: list[MotionItem]
    mean: np.ndarray
    std: np.ndarray
    report: SkipReport


def _require(path: Path, what: str, hint: str = "") -> Path:
    if not path.exists():
        raise DataError(f"{path}: {what} not found{(' - ' + hint) if hint else ''}")
    return path


def load_stats(mean_path: Path, std_path: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Load Mean/Std (.npy, or TMR's .pt) and check shape and zeros."""
    out = []
    for p in (mean_path, std_path):
        _require(p, "normalisation statistics")
        try:
            if p.suffix == ".pt":
                import torch

                arr = torch.load(p, map_location="cpu", weights_only=True).numpy()
            else:
                arr = np.load(p, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - any decoding failure is a data error naming the file
            raise DataError(f"{p}: cannot read statistics ({type(e).__name__}: {e})") from None
        arr = np.asarray(arr, dtype=np.float32).reshape(-1)
        if arr.shape != (dim,):
            raise DataError(f"{p}: expected shape ({dim},), found {arr.shape}")
        if not np.isfinite(arr).all():
            raise DataError(f"{p}: contains NaN or Inf")
        out.append(arr)
    zeros = int((out[1] <= 0).sum())
    if zeros:
        raise DataError(f"{std_path}: {zeros} of {dim} entries are <= 0; normalising would divide by zero")
    tiny = np.flatnonzero(out[1] < MIN_STD)
    if tiny.size:
        i = int(tiny[0])
        raise DataError(f"{std_path}: {tiny.size} of {dim} entries are below {MIN_STD:g} (index {i}: {out[1][i]:.3g}); "
                        "normalising would blow those features up to non-finite values")
    return out[0], out[1]


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path`` without a leading byte-order mark; non-UTF-8 bytes raise :class:`DataError` naming the
    file, ``what`` it is and the byte offset."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: {what} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def check_inside_root(name: str, where: str | Path, what: str = "id") -> str:
    """Return ``name`` if joining it to a data folder stays inside that folder; an absolute path or a ``..`` part raises
    :class:`DataError` naming ``where`` (the file that lists it) and the name."""
    p = Path(name)
    if p.is_absolute() or p.anchor or ".." in p.parts:
        raise DataError(f"{where}: {what} {name!r} leaves the data root (an absolute path or '..'); "
                        "ids must name files inside it")
    return name


def read_split_file(path: Path) -> list[str]:
    _require(path, "split file")
    ids = [line.strip() for line in path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()]
    return [check_inside_root(i, path) for i in ids if i]


def check_motion_file(path: Path, dim: int) -> int:
    """Validate a feature file without keeping it in memory; return its frame count (raises DataError)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: not a readable .npy motion file ({type(e).__name__}: {e})") from None
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise DataError(f"{path}: expected features of shape (T, {dim}), found {arr.shape}")
    if arr.dtype.kind != "f":
        raise DataError(f"{path}: expected float features, found dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: contains NaN or Inf values")
    return int(arr.shape[0])


def parse_caption_line(line: str) -> tuple[str, float, float]:
    """``caption#tokens#start#end`` -> (caption, start, end); NaN tags become 0 as in Guo et al."""
    parts = line.strip().split("#")
    if len(parts) < 4:
        raise ValueError(f"expected 'caption#tokens#start#end', found {len(parts)} field(s)")
    start, end = float(parts[2]), float(parts[3])
    if np.isinf(start) or np.isinf(end):
        raise ValueError(f"start/end must be finite seconds, found {parts[2]!r}#{parts[3]!r}")
    start = 0.0 if np.isnan(start) else start
    end = 0.0 if np.isnan(end) else end
    return parts[0].strip(), start, end


def _items_from_captions(motion_id: str, path: Path, n_frames: int, spans: list[tuple[str, float, float]],
                         fps: float, lengths: tuple[int, int], report: SkipReport, strict: bool,
                         joints_path: Path | None, where: str, group_spans: bool = True) -> list[MotionItem]:
    """Items of one motion: the ``0#0`` captions form the whole-motion item; a span caption cuts
    ``[int(start * fps), int(end * fps))``, clamped to the motion as a numpy slice is; length filter on each item.

    ``group_spans``: captions sharing a span form one item (a span equal to the whole motion joins the ``0#0``
    captions); otherwise each span caption is its own item, as ``Text2MotionDatasetV2`` builds them.
    """
    min_len, max_len = lengths
    whole = (0, n_frames)
    groups: dict[tuple[int, int], list[str]] = {}
    singles: list[tuple[tuple[int, int], str]] = []
    for caption, start, end in spans:
        if not caption:
            report.skip("empty caption", where, strict, motion_id)
            continue
        if start == 0.0 and end == 0.0:
            groups.setdefault(whole, []).append(caption)
            continue
        if end <= start:
            report.skip("caption span end <= start", f"{where} ({start}-{end} s)", strict, motion_id)
            continue
        if not (math.isfinite(start * fps) and math.isfinite(end * fps)):  # int() would overflow
            report.skip("caption span outside the motion", f"{where} ({start}-{end} s, {n_frames} frames)",
                        strict, motion_id)
            continue
        s, e = int(start * fps), int(end * fps)
        if start < 0 or s >= n_frames:
            report.skip("caption span outside the motion", f"{where} ({start}-{end} s, {n_frames} frames)",
                        strict, motion_id)
            continue
        span = (s, min(e, n_frames))
        if group_spans:
            groups.setdefault(span, []).append(caption)
        else:
            singles.append((span, caption))
    candidates = [(span, caps, span == whole) for span, caps in groups.items()]
    candidates += [(span, [caption], False) for span, caption in singles]
    items, taken = [], Counter()
    for (s, e), caps, is_whole in candidates:
        n = e - s
        if n < min_len or n >= max_len:
            reason = ("too short" if n < min_len else "too long") if is_whole else (
                "caption span too short" if n < min_len else "caption span too long")
            report.skip(reason, f"{where} [{s}:{e}]", strict, motion_id)
            continue
        key = motion_id if is_whole else f"{motion_id}_{s}_{e}"
        taken[key] += 1
        if taken[key] > 1:
            key = f"{key}_{taken[key]}"
        items.append(MotionItem(key, motion_id, path, s, e, caps, joints_path))
    return items


def read_guo_split(root: str | Path, split: str, skeleton: Skeleton, lengths: tuple[int, int] | None = None,
                   strict: bool = False, allow_missing: bool = False, include_mirrors: bool = True,
                   span_fps: float | None = GUO_SPAN_FPS, group_spans: bool = False) -> SplitData:
    """Read ``<root>/<split>.txt`` of a HumanML3D / KIT-ML folder (``new_joint_vecs``, ``texts``, Mean/Std).

    Filters as ``Text2MotionDatasetV2.__init__`` (EricGuo5513/text-to-motion, ``data/dataset.py``; see the module
    docstring): ids whose whole motion fails ``lengths`` (default :data:`GUO_LENGTHS`) are dropped first, counted as
    ``too short`` / ``too long``. ``span_fps``: seconds -> frames factor of sub-motion captions (the reference's 20;
    ``None``: the skeleton's fps, 12.5 for KIT-ML). ``group_spans``: one item per distinct span instead of one per
    caption.
    """
    root = Path(root)
    _require(root, "dataset root", f"expected a {skeleton.name} folder with new_joint_vecs/, texts/, Mean.npy, "
             "Std.npy and train/val/test.txt")
    dim = layout_for(skeleton).dim
    mean, std = load_stats(root / "Mean.npy", root / "Std.npy", dim)
    ids = read_split_file(root / f"{split}.txt")
    lengths = lengths or GUO_LENGTHS[skeleton.name]
    report = SkipReport(split, total=len(ids))
    items: list[MotionItem] = []
    vec_dir, text_dir, joint_dir = root / "new_joint_vecs", root / "texts", root / "new_joints"
    for d, what in ((vec_dir, "feature folder"), (text_dir, "caption folder")):
        if not d.is_dir():
            raise DataError(f"{d}: {what} not found (expected the {skeleton.name} layout: new_joint_vecs/, texts/, "
                            "Mean.npy, Std.npy, train/val/test.txt)")
    seen: set[str] = set()
    for mid in ids:
        if mid in seen:
            report.skip("duplicate id", f"{root / (split + '.txt')} [{mid}]", strict)
            continue
        seen.add(mid)
        if not include_mirrors and mid.startswith("M"):
            report.total -= 1
            continue
        path = vec_dir / f"{mid}.npy"
        if not path.exists():
            if allow_missing:
                report.skip("motion file missing", str(path), strict, mid)
                continue
            raise DataError(f"{path}: motion file for id {mid!r} listed in {root / (split + '.txt')} not found "
                            "(set allow_missing: true to skip such ids)")
        n_frames = check_motion_file(path, dim)
        if n_frames < 2:
            report.skip("fewer than 2 frames", str(path), strict, mid)
            continue
        if not lengths[0] <= n_frames < lengths[1]:  # the whole id goes, whatever its captions (as the reference)
            report.skip("too short" if n_frames < lengths[0] else "too long", f"{path} ({n_frames} frames)", strict,
                        mid)
            continue
        tpath = text_dir / f"{mid}.txt"
        if not tpath.exists():
            report.skip("caption file missing", str(tpath), strict, mid)
            continue
        try:
            lines = tpath.read_bytes().decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as e:
            report.skip("caption file not UTF-8", f"{tpath} ({e.reason} at byte {e.start})", strict, mid)
            continue
        spans = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                spans.append(parse_caption_line(line))
            except ValueError as e:
                report.skip("malformed caption line", f"{tpath}:{lineno} ({e})", strict, mid)
        if not spans:
            report.skip("no caption", str(tpath), strict, mid)
            continue
        jpath = joint_dir / f"{mid}.npy"
        items.extend(_items_from_captions(mid, path, n_frames, spans, span_fps or skeleton.fps, lengths, report,
                                          strict, jpath if jpath.exists() else None, str(tpath), group_spans))
    report.finish({it.motion_id for it in items})
    report.log()
    return SplitData(sorted(items, key=lambda it: it.key), mean, std, report)


def _tmr_spans(entry: dict, default_duration: float, fps: float) -> list[tuple[str, float, float]]:
    """(text, start, end) of one annotations.json entry; the whole-clip span becomes ``0#0`` (raises on bad types)."""
    duration = float(entry.get("duration", default_duration))
    spans = []
    for a in entry.get("annotations", []):
        start, end = float(a.get("start", 0.0)), float(a.get("end", 0.0))
        if not (np.isfinite(start) and np.isfinite(end) and np.isfinite(duration)):
            raise ValueError(f"start/end/duration must be finite, found {start}, {end}, {duration}")
        whole = start <= 0.0 and end >= duration - 1.0 / fps
        spans.append((str(a.get("text", "")).strip(), 0.0 if whole else start, 0.0 if whole else end))
    return spans


def read_tmr_split(root: str | Path, split: str, skeleton: Skeleton, lengths: tuple[int, int] | None = None,
                   strict: bool = False, allow_missing: bool = False, include_mirrors: bool = True,
                   length_filter: bool = True) -> SplitData:
    """Read a split in TMR's layout: ``annotations.json``, ``splits/<split>.txt``, ``motions/<path>.npy``,
    ``stats/{mean,std}.{npy,pt}``.

    Each keyid's annotations are grouped by span; the whole-clip span is the main item. TMR filters train/val
    annotations to 2-10 s and leaves test unfiltered (``length_filter=False`` for test reproduces that).
    """
    root = Path(root)
    _require(root, "dataset root", "expected TMR's layout: annotations.json, splits/, motions/, stats/")
    dim = layout_for(skeleton).dim
    stats = root / "stats"
    suffix = ".npy" if (stats / "mean.npy").exists() else ".pt"
    mean, std = load_stats(stats / f"mean{suffix}", stats / f"std{suffix}", dim)
    ann_path = _require(root / "annotations.json", "annotations file")
    try:
        annotations = json.loads(ann_path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{ann_path}: not valid JSON ({e})") from None
    if not isinstance(annotations, dict):
        raise DataError(f"{ann_path}: expected a JSON object keyid -> annotation, found {type(annotations).__name__}")
    ids = read_split_file(root / "splits" / f"{split}.txt")
    lengths = (lengths or (2 * int(skeleton.fps), 10 * int(skeleton.fps) + 1)) if length_filter else (1, 10**9)
    report = SkipReport(split, total=len(ids))
    items: list[MotionItem] = []
    seen: set[str] = set()
    for kid in ids:
        if kid in seen:
            report.skip("duplicate id", f"{root / 'splits' / (split + '.txt')} [{kid}]", strict)
            continue
        seen.add(kid)
        if not include_mirrors and kid.startswith("M"):
            report.total -= 1
            continue
        entry = annotations.get(kid)
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            report.skip("no annotation", f"{ann_path} [{kid}]", strict, kid)
            continue
        path = root / "motions" / f"{check_inside_root(entry['path'], f'{ann_path} [{kid}]', 'path')}.npy"
        if not path.exists():
            if allow_missing:
                report.skip("motion file missing", str(path), strict, kid)
                continue
            raise DataError(f"{path}: motion file of keyid {kid!r} ({ann_path}) not found")
        n_frames = check_motion_file(path, dim)
        try:
            spans = _tmr_spans(entry, n_frames / skeleton.fps, skeleton.fps)
        except (TypeError, ValueError, AttributeError) as e:
            report.skip("malformed annotation", f"{ann_path} [{kid}] ({e})", strict, kid)
            continue
        if not spans:
            report.skip("no caption", f"{ann_path} [{kid}]", strict, kid)
            continue
        items.extend(_items_from_captions(kid, path, n_frames, spans, skeleton.fps, lengths, report, strict, None,
                                          f"{ann_path} [{kid}]"))
    report.finish({it.motion_id for it in items})
    report.log()
    return SplitData(sorted(items, key=lambda it: it.key), mean, std, report)
