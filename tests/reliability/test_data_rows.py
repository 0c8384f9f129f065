"""One row per defect of docs/troubleshooting.md's "What happens when..." table (data part): structural errors stop with one
``DataError`` naming the file and the reason; per-item defects are skipped, counted by reason, reported once per split,
and ``strict=True`` turns each of them into a ``DataError``.

Rows already covered elsewhere: wrong feature dim of one file, ids without a motion file (``allow_missing``), missing
root / split file: tests/data/test_readers.py.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from motion_text.data.readers import DataError, read_guo_split, read_tmr_split
from motion_text.data.skeleton import HUMANML3D

from .conftest import CLEAN_CAPTIONS, TARGET, TARGET_FRAMES, clone, put

D = 263
NPY = f"new_joint_vecs/{TARGET}.npy"
TXT = f"texts/{TARGET}.txt"


def _motion(frames: int = TARGET_FRAMES, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((frames, D)).astype(dtype)


def _with(value, at: int = 0) -> np.ndarray:
    m = _motion()
    m[3, at] = value
    return m


def _truncated(root):
    return (root / NPY).read_bytes()[:400]


def _caption(line: str) -> str:
    return CLEAN_CAPTIONS + line + "\n"


# (id, file to replace, new content (or a function of the root), expected message regex) ------------------------------
ERRORS = [
    ("motion truncated", NPY, _truncated, rf"{TARGET}\.npy: not a readable \.npy motion file"),
    ("motion not a numpy file", NPY, b"this is not an array\n", rf"{TARGET}\.npy: not a readable \.npy motion file"),
    ("motion is a pickled object", NPY, np.array([{"a": 1}], dtype=object),
     rf"{TARGET}\.npy: not a readable \.npy motion file .*Python objects"),
    ("motion int dtype", NPY, _motion(dtype=np.int32), rf"{TARGET}\.npy: expected float features, found dtype int32"),
    ("motion 1-d", NPY, np.zeros(D, np.float32), rf"{TARGET}\.npy: expected features of shape \(T, 263\), found \(263,\)"),
    ("motion NaN", NPY, _with(np.nan), rf"{TARGET}\.npy: contains NaN or Inf"),
    ("motion Inf", NPY, _with(-np.inf, at=100), rf"{TARGET}\.npy: contains NaN or Inf"),
    ("Mean missing", "Mean.npy", None, r"Mean\.npy: normalisation statistics not found"),
    ("Std missing", "Std.npy", None, r"Std\.npy: normalisation statistics not found"),
    ("Std with zeros", "Std.npy", np.r_[np.zeros(3), np.ones(D - 3)].astype(np.float32),
     r"Std\.npy: 3 of 263 entries are <= 0"),
    ("Std not a numpy file", "Std.npy", b"\x00\x01garbage", r"Std\.npy: cannot read statistics"),
    ("Mean wrong dim", "Mean.npy", np.zeros(251, np.float32), r"Mean\.npy: expected shape \(263,\), found \(251,\)"),
    ("caption folder missing", "texts", None, r"texts: caption folder not found"),
    ("split file naming an unknown id", "train.txt", lambda r: (r / "train.txt").read_text() + "123456\n",
     r"123456\.npy: motion file for id '123456' listed in .*train\.txt not found"),
]

# (id, file to replace, new content, expected skip counts, reason the id is dropped for or None if it keeps an item) -
SKIPS = [
    ("too short", NPY, _motion(10), {"too short": 1}, "too short"),
    ("0 frames", NPY, _motion(0), {"fewer than 2 frames": 1}, "fewer than 2 frames"),
    ("1 frame", NPY, _motion(1), {"fewer than 2 frames": 1}, "fewer than 2 frames"),
    ("caption file missing", TXT, None, {"caption file missing": 1}, "caption file missing"),
    ("caption file empty", TXT, b"", {"no caption": 1}, "no caption"),
    ("caption lines lacking # fields", TXT, "a person walks\nsomeone waves#tok\n",
     {"malformed caption line": 2, "no caption": 1}, "no caption"),
    ("one line lacking # fields", TXT, _caption("a person walks"), {"malformed caption line": 1}, None),
    ("caption not UTF-8", TXT, CLEAN_CAPTIONS.encode() + b"a caf\xe9 dance#x#0.0#0.0\n", {"caption file not UTF-8": 1},
     "caption file not UTF-8"),
    ("caption empty text", TXT, _caption("  #tok#0.0#0.0"), {"empty caption": 1}, None),
    ("caption start > end", TXT, _caption("a person kicks#tok#2.0#1.0"), {"caption span end <= start": 1}, None),
    ("caption span outside the motion", TXT, _caption("a person kicks#tok#5.0#9.0"),
     {"caption span outside the motion": 1}, None),
    ("caption span negative", TXT, _caption("a person kicks#tok#-1.0#1.0"), {"caption span outside the motion": 1},
     None),
    ("caption span not numeric", TXT, _caption("a person kicks#tok#one#two"), {"malformed caption line": 1}, None),
    ("caption span infinite", TXT, _caption("a person kicks#tok#0.0#inf"), {"malformed caption line": 1}, None),
    ("duplicate id in split file", "train.txt", lambda r: (r / "train.txt").read_text() + f"{TARGET}\n",
     {"duplicate id": 1}, "duplicate id"),
]


def _apply(root, rel: str, content) -> None:
    path = root / rel
    if content is None:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        return
    put(path, content(root) if callable(content) else content)


@pytest.mark.parametrize("rel,content,pattern", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_structural_error_names_file_and_reason(h3d_copy, rel, content, pattern):
    _apply(h3d_copy, rel, content)
    with pytest.raises(DataError, match=pattern) as err:
        read_guo_split(h3d_copy, "train", HUMANML3D)
    assert str(h3d_copy) in str(err.value), "the message names the file by its full path"


def test_base_dataset_has_no_skips(tiny_h3d):
    assert read_guo_split(tiny_h3d, "train", HUMANML3D).report.skipped == 0


@pytest.mark.parametrize("rel,content,expected,dropped", [c[1:] for c in SKIPS], ids=[c[0] for c in SKIPS])
def test_item_defect_is_skipped_counted_and_reported_once(h3d_copy, rel, content, expected, dropped, caplog):
    _apply(h3d_copy, rel, content)
    with caplog.at_level(logging.WARNING, logger="motion_text.data.readers"):
        data = read_guo_split(h3d_copy, "train", HUMANML3D)
    assert data.report.reasons == Counter(expected)
    total = len((h3d_copy / "train.txt").read_text().split())  # lines of the split file
    msg = data.report.message()
    if dropped:
        assert msg == f"train: skipped 1 of {total}: 1 {dropped}"
    else:
        assert msg == (f"train: skipped 0 of {total}; in kept ids also skipped 1 caption(s) or span(s): "
                       f"1 {next(iter(expected))}")
    reports = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(reports) == 1 and reports[0].getMessage().startswith(msg + " (")
    kept = {it.motion_id for it in data.items}
    assert (TARGET in kept) == (dropped is None or dropped == "duplicate id")


@pytest.mark.parametrize("rel,content,expected", [c[1:4] for c in SKIPS], ids=[c[0] for c in SKIPS])
def test_strict_turns_every_skip_into_an_error(h3d_copy, rel, content, expected):
    _apply(h3d_copy, rel, content)
    first = next(iter(expected))
    where = "train.txt" if rel == "train.txt" else TARGET
    with pytest.raises(DataError, match=rf"{where}.*: {re.escape(first)} \(strict mode"):
        read_guo_split(h3d_copy, "train", HUMANML3D, strict=True)


def test_kit_folder_read_as_humanml3d(tiny_kit):
    with pytest.raises(DataError, match=r"Mean\.npy: expected shape \(263,\), found \(251,\)"):
        read_guo_split(tiny_kit, "train", HUMANML3D)


# TMR layout (annotations.json) ----------------------------------------------------------------------------------------
def _ann(mutate):
    def edit(root):
        ann = json.loads((root / "annotations.json").read_text())
        kid = (root / "splits" / "train.txt").read_text().split()[0]
        mutate(ann, kid)
        return json.dumps(ann)
    return edit


TMR_ROWS = [
    ("annotations not JSON", b'{"000000": {"path": ', r"annotations\.json: not valid JSON"),
    ("annotations a list", b"[1, 2]", r"annotations\.json: expected a JSON object keyid -> annotation, found list"),
    ("annotation missing", _ann(lambda a, k: a.pop(k)), {"no annotation": 1}),
    ("path not a string", _ann(lambda a, k: a[k].update(path=7)), {"no annotation": 1}),
    ("annotations not a list", _ann(lambda a, k: a[k].update(annotations="walks")), {"malformed annotation": 1}),
    ("start not a number", _ann(lambda a, k: a[k]["annotations"][0].update(start=None)), {"malformed annotation": 1}),
]


@pytest.mark.parametrize("content,expected", [c[1:] for c in TMR_ROWS], ids=[c[0] for c in TMR_ROWS])
def test_tmr_annotation_rows(tiny_tmr, tmp_path, content, expected):
    root = clone(tiny_tmr, tmp_path / "tmr")
    _apply(root, "annotations.json", content)
    if isinstance(expected, str):
        with pytest.raises(DataError, match=expected):
            read_tmr_split(root, "train", HUMANML3D)
        return
    base = read_tmr_split(tiny_tmr, "train", HUMANML3D).report.reasons
    got = read_tmr_split(root, "train", HUMANML3D).report.reasons
    assert got - base == Counter(expected)
    with pytest.raises(DataError, match=re.escape(next(iter(expected)))):
        read_tmr_split(root, "train", HUMANML3D, strict=True)


def test_motion_file_broken_after_start_up_names_it(h3d_copy):
    from motion_text.data.dataset import MotionTextDataset, Source

    data = read_guo_split(h3d_copy, "train", HUMANML3D)
    ds = MotionTextDataset([Source("h3d", data.items, data.mean, data.std, 22)], train=False)
    index = next(i for i, it in enumerate(data.items) if it.motion_id == TARGET)
    put(h3d_copy / NPY, b"gone")
    with pytest.raises(DataError, match=rf"{TARGET}\.npy: cannot read frames 0:{TARGET_FRAMES}"):
        ds[index]


# issue #22 rows: ids leaving the root, huge caption times, tiny Std entries, BOM, non-UTF-8 caption files -------------
@pytest.mark.parametrize("form", ["absolute", "dotdot"])
def test_split_id_leaving_the_root_is_refused(h3d_copy, tmp_path, form):
    outside = tmp_path / "outside"  # a valid motion and caption file next to the dataset, not inside it
    outside.mkdir()
    np.save(outside / "x.npy", _motion())
    (outside / "x.txt").write_text(CLEAN_CAPTIONS)
    mid = str(outside / "x") if form == "absolute" else "../../outside/x"  # from new_joint_vecs/ and texts/
    put(h3d_copy / "train.txt", (h3d_copy / "train.txt").read_text() + mid + "\n")
    for allow_missing in (False, True):
        with pytest.raises(DataError, match=rf"{h3d_copy}/train\.txt: id '{re.escape(mid)}' leaves the data root"):
            read_guo_split(h3d_copy, "train", HUMANML3D, allow_missing=allow_missing)


def test_tmr_path_leaving_the_root_is_refused(tiny_tmr, tmp_path):
    root = clone(tiny_tmr, tmp_path / "tmr")
    _apply(root, "annotations.json", _ann(lambda a, k: a[k].update(path="../../outside/x")))
    with pytest.raises(DataError, match=r"annotations\.json \[\w+\]: path '\.\./\.\./outside/x' leaves the data root"):
        read_tmr_split(root, "train", HUMANML3D)


@pytest.mark.parametrize("line,reason", [
    ("a person kicks#tok#0.0#1e308", "caption span outside the motion"),
    ("a person kicks#tok#1e308#1e308", "caption span end <= start"),
    ("a person kicks#tok#-1e308#1.0", "caption span outside the motion"),
], ids=["end 1e308", "both 1e308", "start -1e308"])
def test_huge_caption_time_is_a_counted_span_skip(h3d_copy, line, reason):
    """Guo et al.'s Text2MotionDatasetV2 drops such a caption (int(1e308 * 20) raises OverflowError inside a bare
    except); here it is counted as a span skip, the item keeps its other captions."""
    put(h3d_copy / TXT, _caption(line))
    data = read_guo_split(h3d_copy, "train", HUMANML3D)
    assert data.report.captions == Counter({reason: 1}) and not data.report.ids
    item = next(it for it in data.items if it.motion_id == TARGET)
    assert item.captions == ["a person walks forward", "someone walks"]
    with pytest.raises(DataError, match=rf"{TARGET}\.txt .*: {reason} \(strict mode"):
        read_guo_split(h3d_copy, "train", HUMANML3D, strict=True)


def test_tiny_std_entry_stops_at_load_naming_std_and_index(h3d_copy):
    std = np.load(h3d_copy / "Std.npy")
    std[5] = 1e-30
    put(h3d_copy / "Std.npy", std)
    with pytest.raises(DataError, match=rf"{h3d_copy}/Std\.npy: 1 of 263 entries are below 1e-06 \(index 5: 1e-30\)"):
        read_guo_split(h3d_copy, "train", HUMANML3D)


def test_utf8_bom_is_dropped_from_caption_and_split_files(h3d_copy, tiny_tmr, tmp_path):
    bom = "\ufeff"
    put(h3d_copy / TXT, (bom + CLEAN_CAPTIONS).encode())
    put(h3d_copy / "train.txt", (bom + (h3d_copy / "train.txt").read_text()).encode())
    data = read_guo_split(h3d_copy, "train", HUMANML3D)
    assert data.report.skipped == 0
    assert next(it for it in data.items if it.motion_id == TARGET).captions[0] == "a person walks forward"
    root = clone(tiny_tmr, tmp_path / "tmr")
    put(root / "annotations.json", (bom + (root / "annotations.json").read_text()).encode())
    assert len(read_tmr_split(root, "train", HUMANML3D).items) == len(read_tmr_split(tiny_tmr, "train", HUMANML3D).items)


def test_captions_file_not_utf8_names_the_file(tmp_path):
    """The caption reader of ``score`` (tools/score.py::read_captions) through the shared :func:`read_text`."""
    from motion_text.tools.score import read_captions

    path = tmp_path / "captions.tsv"
    path.write_bytes(b"a\tcaf\xe9 dance\n")
    with pytest.raises(DataError, match=rf"{path}: captions file is not UTF-8 text \(invalid continuation byte at byte 5\)"):
        read_captions(path)
    path.write_bytes("\ufeffa\ta person walks\n".encode())
    assert read_captions(path) == {"a": "a person walks"}
