"""``motion-text counts``: the per-split counts of a data config, to compare with the reference loaders' before training.

For each dataset of the config and each split it serves: the ids of the split file, the ids that keep at least one
item, the items (whole motions and sub-motion spans), their captions, and the skips by reason as the readers count
them (:class:`~motion_text.data.readers.SkipReport`: dropped ids under the reason of their last skip, then the
captions / spans dropped inside kept ids). HumanML3D / KIT-ML in the Guo layout are read as Guo et al.'s
``Text2MotionDatasetV2`` reads them (see :mod:`motion_text.data.readers`), so with the default options ``items`` is
the length of that dataset (``len(data_dict)``). AIST++: the sequences of ``crossmodal_<split>.txt`` and the skips of
:func:`~motion_text.data.aistpp.read_aistpp_split` (sequences shorter than the training window, dropped later when
the music features exist, are not counted here).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import yaml

from motion_text.tools import user_errors

__all__ = ["SplitCounts", "split_counts", "format_counts", "parse_overrides", "run"]


@dataclass
class SplitCounts:
    dataset: str
    split: str
    ids: int  # ids of the split file (duplicates count, as skips; mirrors left out of the test split do not)
    kept_ids: int  # ids with at least one item
    items: int  # motion-caption items (AIST++: sequences)
    whole: int | None  # whole-motion items (None for AIST++)
    spans: int | None  # sub-motion items
    captions: int | None
    skipped_ids: dict[str, int] = field(default_factory=dict)
    skipped_in_kept: dict[str, int] = field(default_factory=dict)
    excluded: int = 0  # test items removed by the dataset's exclude_test list
    examples: dict[str, str] = field(default_factory=dict)


@contextmanager
def _quiet_readers():
    """The table reports the skips; the readers' one warning per split would repeat it."""
    logger = logging.getLogger("motion_text.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _counter(c: Counter) -> dict[str, int]:
    return dict(c.most_common())


def split_counts(dm, splits: list[str] | None = None) -> list[SplitCounts]:
    """Counts of every (dataset, split) that ``dm`` (a :class:`MotionTextDataModule`) serves; synthetic sets are
    generated first if needed. ``splits``: restrict to these splits."""
    dm.prepare_data()
    rows = []
    with _quiet_readers():
        for spec in dm.specs:
            for split in spec.stages:
                if splits and split not in splits:
                    continue
                if dm.dance:
                    from motion_text.data.aistpp import read_aistpp_split

                    items, report = read_aistpp_split(spec.resolved_root(), split, strict=dm.strict,
                                                      return_report=True)
                    rows.append(SplitCounts(spec.name, split, report.total, len(items), len(items), None, None, None,
                                            _counter(report.ids), _counter(report.captions),
                                            examples=dict(report.examples)))
                    continue
                data = dm.read_split(spec, split)
                items = dm.split_items(spec, split, data)
                whole = sum(it.key == it.motion_id for it in items)
                r = data.report
                rows.append(SplitCounts(spec.name, split, r.total, len({it.motion_id for it in items}), len(items),
                                        whole, len(items) - whole, sum(len(it.captions) for it in items),
                                        _counter(r.ids), _counter(r.captions), len(data.items) - len(items),
                                        dict(r.examples)))
    return rows


def _settings(dm) -> list[str]:
    from motion_text.data.readers import GUO_LENGTHS

    out = []
    for spec in dm.specs:
        if spec.layout == "guo":
            lo, hi = GUO_LENGTHS[spec.skeleton.name]
            lo, hi = dm.min_len or lo, dm.max_len_filter or hi
            fps = dm.span_fps or spec.skeleton.fps
            unit = "one item per distinct span" if dm.group_spans else "one item per span caption"
            out.append(f"{spec.name} (guo layout, {spec.resolved_root()}): ids with {lo} <= T < {hi} frames; "
                       f"spans cut at {fps:g} frames/s, {unit}")
        elif spec.layout == "tmr":
            out.append(f"{spec.name} (tmr layout, {spec.resolved_root()}): train/val spans of 2-10 s, test unfiltered")
        else:
            out.append(f"{spec.name} ({spec.resolved_root()}): crossmodal splits minus ignore_list.txt")
    return out


def _reasons(d: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {r}" for r, n in d.items()) or "-"


def format_counts(rows: list[SplitCounts], settings: list[str] = ()) -> str:
    """A plain-text table of ``rows`` (one line per dataset and split), the settings above and examples below."""
    head = ["dataset", "split", "ids", "kept ids", "items", "whole", "spans", "captions", "skipped ids",
            "skipped in kept ids"]
    def num(n: int | None) -> str:
        return "-" if n is None else f"{n:,}"

    body = [[r.dataset, r.split, num(r.ids), num(r.kept_ids), num(r.items), num(r.whole), num(r.spans),
             num(r.captions), _reasons(r.skipped_ids), _reasons(r.skipped_in_kept)] for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    right = {2, 3, 4, 5, 6, 7}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = list(settings) + ([""] if settings else [])
    out += [line(c).rstrip() for c in [head, ["-" * w for w in widths]] + body]
    for r in rows:
        if r.excluded:
            out.append(f"{r.dataset} {r.split}: {r.excluded:,} items removed by exclude_test (not in the counts)")
    examples = [(r, reason, where) for r in rows for reason, where in r.examples.items()]
    if examples:
        out += ["", "examples of skips:"]
        out += [f"  {r.dataset} {r.split}, {reason}: {where}" for r, reason, where in examples]
    return "\n".join(out)


def parse_overrides(args: list[str]) -> dict:
    """``--data.KEY=VALUE`` / ``--data.KEY VALUE`` (also ``--data.init_args.KEY``) -> ``{KEY: yaml value}``."""
    out, i = {}, 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--data."):
            raise ValueError(f"unrecognized argument {a!r}; expected --data CONFIG and --data.KEY=VALUE overrides")
        key, eq, value = a[len("--data."):].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ValueError(f"{a}: missing value")
            value, i = args[i + 1], i + 1
        key = key.removeprefix("init_args.")
        if not key or "." in key:
            raise ValueError(f"{a}: give a whole DataModule argument, e.g. "
                             "--data.datasets='[{name: humanml3d, root: /data/HumanML3D}]'")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"{a}: value is not valid YAML ({str(e).splitlines()[0]})") from None
        i += 1
    return out


@user_errors
def run(ns: argparse.Namespace) -> int:
    from motion_text.tools.common import load_datamodule

    overrides = parse_overrides(list(getattr(ns, "overrides", None) or []))
    try:
        dm = load_datamodule(ns.data, **overrides)
    except ValueError as e:  # jsonargparse explains a bad value over several lines: keep the key and the value
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        keep = [ln for ln in lines[1:] if ln.startswith(("Subtypes:", "Given value:"))]
        raise ValueError(" ".join(lines[:1] + keep)) from None
    rows = split_counts(dm, ns.split)
    if not rows:
        raise ValueError(f"no dataset of {ns.data!r} serves the split(s) {ns.split}")
    if ns.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(format_counts(rows, _settings(dm)))
    return 0
