"""``motion-text counts`` through the real CLI: the counts of the Guo-layout fixture data equal those of Guo et al.'s
``Text2MotionDatasetV2`` (``tests/fixtures/guo_filter/reference_items.json``), AIST++ counts its split files."""

from __future__ import annotations

import json

import pytest
import yaml

from motion_text.cli import main
from tests.data.test_guo_reference import REFERENCE


def _config(path, datasets, **extra):
    path.write_text(yaml.safe_dump({"datasets": datasets, "num_workers": 0, **extra}))
    return str(path)


def _counts(capsys, *args) -> dict:
    assert main(["counts", *args, "--json"]) == 0
    return {(r["dataset"], r["split"]): r for r in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize("fmt", ["humanml3d", "kitml"])
def test_counts_equal_the_reference(guo_edge_roots, tmp_path, capsys, fmt):
    cfg = _config(tmp_path / "d.yaml", [{"name": fmt, "root": str(guo_edge_roots[fmt])}])
    rows = _counts(capsys, "--data", cfg)
    assert [s for _, s in rows] == ["train", "val", "test"]
    for split, ref in REFERENCE["datasets"][fmt].items():
        row, want = rows[(fmt, split)], ref["counts"]
        assert (row["ids"], row["kept_ids"], row["items"], row["captions"]) == (
            want["ids"], want["kept_ids"], want["items"], want["captions"])
        assert row["spans"] == sum(it["sub_motion"] for it in ref["items"])
    test = rows[(fmt, "test")]
    assert test["skipped_ids"] == {"too long": 2, "too short": 1}


def test_table_and_overrides(guo_edge_roots, tmp_path, capsys):
    cfg = _config(tmp_path / "d.yaml", [{"name": "humanml3d", "root": str(guo_edge_roots["humanml3d"])}])
    assert main(["counts", "--data", cfg, "--split", "test"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("humanml3d (guo layout") and "40 <= T < 200" in out[0]
    header = next(i for i, ln in enumerate(out) if ln.startswith("dataset"))
    assert out[header].split()[:4] == ["dataset", "split", "ids", "kept"]
    assert out[header + 2].split()[:8] == ["humanml3d", "test", "18", "15", "23", "14", "9", "26"]
    assert any("too long: " in ln and "900003.npy (200 frames)" in ln for ln in out)
    # overrides as in the training CLI: another dataset, and the grouping option (900008's two captions: one item)
    kit = json.dumps([{"name": "kitml", "root": str(guo_edge_roots["kitml"])}])
    rows = _counts(capsys, "--data", cfg, f"--data.datasets={kit}", "--data.init_args.group_spans", "true",
                   "--split", "test")
    assert list(rows) == [("kitml", "test")]
    assert rows[("kitml", "test")]["items"] == REFERENCE["datasets"]["kitml"]["test"]["counts"]["items"] - 2


def test_aistpp_counts(aistpp_root, tmp_path, capsys):
    cfg = _config(tmp_path / "a.yaml", [{"name": "aistpp", "root": str(aistpp_root)}])
    rows = _counts(capsys, "--data", cfg)
    ignore = aistpp_root / "ignore_list.txt"
    ignored = set(ignore.read_text().split()) if ignore.exists() else set()
    for split in ("train", "val", "test"):
        names = (aistpp_root / "splits" / f"crossmodal_{split}.txt").read_text().split()
        row = rows[("aistpp", split)]
        assert (row["ids"], row["items"], row["captions"]) == (len(names), len(set(names) - ignored), None)
        n_ignored = len(set(names) & ignored)
        assert row["skipped_ids"] == ({"in ignore_list.txt": n_ignored} if n_ignored else {})
    assert any(r["skipped_ids"] for r in rows.values()), "the synthetic set lists ignored sequences"


@pytest.mark.parametrize("args,message", [
    (["--data.min_len=abc"], r'error: invalid data config .*"data.min_len".*Given value: abc$'),
    (["--data.datasets.0.root=x"], r"error: --data.datasets.0.root=x: give a whole DataModule argument"),
    (["--data.batch_size"], r"error: --data.batch_size: missing value$"),
    (["--bogus"], r"error: unrecognized argument '--bogus'"),
    (["--data.datasets=[{name: humanml3d, root: /nonexistent/h3d}]"], r"error: /nonexistent/h3d: dataset root"),
])
def test_bad_input_is_one_error_line(guo_edge_roots, tmp_path, args, message):
    cfg = _config(tmp_path / "d.yaml", [{"name": "humanml3d", "root": str(guo_edge_roots["humanml3d"])}])
    with pytest.raises(SystemExit, match=message) as err:
        main(["counts", "--data", cfg, *args])
    assert "\n" not in str(err.value.code)
