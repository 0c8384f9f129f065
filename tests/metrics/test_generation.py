"""Generation metrics against the official evaluation functions' values (tests/fixtures/guo_evaluator)."""

from pathlib import Path

import numpy as np
import pytest

from motion_text.metrics import generation as G

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "guo_evaluator" / "reference.npz"


@pytest.fixture(scope="module")
def ref():
    return np.load(FIX)


def test_matching_fid_diversity_multimodality_match_official(ref):
    res = G.guo_matching(ref["gen_text"], ref["gen_motion"], batch_size=int(ref["batch_size"]), seed=None)
    got = [res[f"R_precision_top{k}"] for k in (1, 2, 3)]
    assert np.abs(np.array(got) - ref["r_precision"]).max() <= 1e-12
    assert res["mm_dist"] == pytest.approx(float(ref["mm_dist"]), abs=1e-10)
    assert G.fid(ref["real_motion"], ref["gen_motion"]) == pytest.approx(float(ref["fid"]), abs=1e-8)
    assert G.diversity(ref["gen_motion"], int(ref["diversity_times"]), int(ref["diversity_seed"])) == pytest.approx(
        float(ref["diversity"]), abs=1e-12)
    assert G.multimodality(ref["mm_emb"], int(ref["multimodality_times"]), int(ref["multimodality_seed"])) == \
        pytest.approx(float(ref["multimodality"]), abs=1e-12)


def test_matching_by_hand():
    t = np.eye(4)
    m = np.eye(4)[[1, 0, 2, 3]] * 0.9
    res = G.guo_matching(t, m, batch_size=4)
    # captions 2, 3 find their motion first; 0 and 1 second
    assert [res["R_precision_top1"], res["R_precision_top2"], res["R_precision_top3"]] == [0.5, 1.0, 1.0]
    d = np.sqrt(1 + 0.81)
    assert res["mm_dist"] == pytest.approx((2 * d + 2 * 0.1) / 4)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        G.guo_matching(t, m, batch_size=0)
    with pytest.raises(ValueError, match="more than 10 generations"):
        G.multimodality(np.zeros((2, 10, 3)))
