"""``motion-text synth`` at the real datasets' sizes and split proportions (``--num full``, ``--splits real``)."""

import hashlib

import pytest

from motion_text import cli
from motion_text.data import synthetic, synthetic_aistpp


def _lines(path):
    return path.read_text().split()


@pytest.mark.parametrize("fmt,expected", [("humanml3d", 14616), ("kitml", 3911), ("aistpp", 1408)])
def test_num_full_is_the_real_size_with_real_splits(monkeypatch, tmp_path, fmt, expected):
    seen = {}

    def fake(out, *args, **kwargs):
        seen.update(kwargs, args=args)
        return synthetic.SynthResult(tmp_path, 0, 0, {})

    monkeypatch.setattr(synthetic, "generate_dataset", fake)
    monkeypatch.setattr(synthetic_aistpp, "generate_aistpp", fake)
    assert cli.main(["synth", "--format", fmt, "--out", str(tmp_path), "--num", "full", "--quiet"]) == 0
    num = seen["num"] if fmt == "aistpp" else seen["args"][1]
    assert num == expected and seen["splits"] == "real"
    if fmt == "aistpp":
        assert seen["duration"][1] == 60.0


def test_num_must_be_a_number_or_full(capsys):
    with pytest.raises(SystemExit):
        cli.main(["synth", "--out", "x", "--num", "lots"])
    assert "'full'" in capsys.readouterr().err


def test_real_kit_splits_follow_tmr(tmp_path):
    r = synthetic.generate_dataset(tmp_path, "kitml", 200, layout="guo", workers=1, quiet=True, splits="real")
    # TMR's KIT-ML: 4,688 / 292 / 786 -> 81.3 / 5.1 / 13.6 % of 200 motions (x2 with mirrors)
    assert r.splits == {"train": 2 * 163, "val": 2 * 10, "test": 2 * 27}
    with pytest.raises(ValueError, match="splits"):
        synthetic.generate_dataset(tmp_path, "kitml", 20, splits="paper")


def test_real_humanml3d_proportions_match_the_split_files():
    n = synthetic.REAL_SPLITS["humanml3d"]
    fr = tuple(c / sum(n) for c in n)
    ids = synthetic._split_ids(14616, 0, fr)
    assert [2 * len(ids[s]) for s in ("train", "val", "test")] == [23388, 1460, 4384]  # test and val exactly as the real files


def _digest(root):
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_aistpp_workers_and_real_splits(tmp_path):
    one = synthetic_aistpp.generate_aistpp(tmp_path / "a", 30, quiet=True, duration=(2.0, 2.5), workers=1)
    synthetic_aistpp.generate_aistpp(tmp_path / "b", 30, quiet=True, duration=(2.0, 2.5), workers=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert sum(one.splits.values()) == 30
    real = synthetic_aistpp.generate_aistpp(tmp_path / "c", 30, quiet=True, duration=(2.0, 2.5), workers=1,
                                            splits="real")
    assert real.splits == {"train": 21, "val": 1, "test": 1}  # 980 / 20 / 20 of 1,408
    train = set(_lines(tmp_path / "c" / "splits" / "crossmodal_train.txt"))
    test = _lines(tmp_path / "c" / "splits" / "crossmodal_test.txt")
    assert not {t.rsplit("_", 2)[1] for t in test} & {t.rsplit("_", 2)[1] for t in train}  # unseen music
