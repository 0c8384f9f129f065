"""The Guo-layout reader against the reference loader's own output on the same data.

``tests/fixtures/guo_filter/reference_items.json`` holds the items that Guo et al.'s ``Text2MotionDatasetV2``
(EricGuo5513/text-to-motion, ``data/dataset.py``) keeps on ``guo_edge_dataset.build_edge_dataset`` (ids shorter than
min_motion_len or >= 200 frames, spans past the end, shared spans, NaN tags ...); see its ``provenance`` and
``make_fixture.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from motion_text.data.readers import read_guo_split
from motion_text.data.skeleton import get_skeleton

from .guo_edge_dataset import fingerprint

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guo_filter" / "reference_items.json"
REFERENCE = json.loads(FIXTURE.read_text())


@pytest.fixture(scope="session")
def edge_roots(guo_edge_roots) -> dict[str, Path]:
    return guo_edge_roots


def _signature(items) -> Counter:
    return Counter((it["motion_id"], it["start"], it["end"], tuple(it["captions"])) for it in items)


CASES = [(fmt, split) for fmt, per in REFERENCE["datasets"].items() for split in per]


@pytest.mark.parametrize("fmt,split", CASES)
def test_items_match_reference(edge_roots, fmt, split):
    ref = REFERENCE["datasets"][fmt][split]
    root = edge_roots[fmt]
    assert fingerprint(root, split) == ref["fingerprint"], (
        "the edge-case data changed (synthetic generator?): rerun tests/fixtures/guo_filter/make_fixture.py")
    data = read_guo_split(root, split, get_skeleton(fmt))
    got = [{"motion_id": it.motion_id, "start": it.start, "end": it.end, "captions": it.captions} for it in data.items]
    assert _signature(got) == _signature(ref["items"])
    assert len(data.items) == ref["counts"]["items"]
    assert sum(len(it.captions) for it in data.items) == ref["counts"]["captions"]
    assert len({it.motion_id for it in data.items}) == ref["counts"]["kept_ids"]
    assert len({it.key for it in data.items}) == len(data.items), "keys are unique"


def test_skips_by_reason(edge_roots):
    data = read_guo_split(edge_roots["humanml3d"], "test", get_skeleton("humanml3d"))
    r = data.report
    assert r.ids == Counter({"too short": 1, "too long": 2}), "900001 (39 frames), 900003 (200), 900004 (250)"
    assert r.captions == Counter({"caption span too short": 2, "caption span outside the motion": 1,
                                  "caption span end <= start": 1})  # 900007, 900015; 900011; 900012
    assert r.total == 18 and r.skipped_ids == 3


def test_span_past_the_end_is_clamped(edge_roots):
    items = {it.key: it for it in read_guo_split(edge_roots["humanml3d"], "test", get_skeleton("humanml3d")).items}
    assert (items["900006_40_100"].start, items["900006_40_100"].end) == (40, 100)  # 2.0-8.0 s of a 100-frame motion
    assert "900008_20_80" in items and "900008_20_80_2" in items  # two captions of one span: two items
    assert items["900014"].captions == ["a person walks forward"] and "900014_0_120" in items


def test_options_group_spans_and_own_fps(edge_roots):
    h3d = read_guo_split(edge_roots["humanml3d"], "test", get_skeleton("humanml3d"), group_spans=True)
    keys = {it.key: it for it in h3d.items}
    assert keys["900008_20_80"].captions == ["someone kicks with the left leg", "someone kicks"]
    assert "900014_0_120" not in keys and len(keys["900014"].captions) == 2
    kit = read_guo_split(edge_roots["kitml"], "test", get_skeleton("kitml"), span_fps=None)
    assert {(it.start, it.end) for it in kit.items if it.motion_id == "900006"} == {(0, 100), (25, 100)}
