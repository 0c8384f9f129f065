"""``motion-text score``: the metric functions against independent references, and the command on real motions."""

import json

import numpy as np
import pytest
import torch

from motion_text.cli import main
from motion_text.tools import retrieve as R
from motion_text.tools import score as S


# ---- pure functions --------------------------------------------------------------------------------------------------
def _r_precision_loop(text, motion, batch_size, top_k, seed):
    """Reference: per motion, count the batch captions scoring at least its own (Python loops, numpy cosines)."""
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    m = motion / np.linalg.norm(motion, axis=1, keepdims=True)
    perm = np.random.RandomState(seed).permutation(len(t))
    hits, total = np.zeros(top_k), 0
    for b in range(len(t) // batch_size):
        idx = perm[b * batch_size : (b + 1) * batch_size]
        for i in idx:
            own = float(m[i] @ t[i])
            better = sum(1 for j in idx if j != i and float(m[i] @ t[j]) >= own)
            for k in range(top_k):
                hits[k] += better <= k
            total += 1
    return hits / total


def test_r_precision_against_loop():
    g = torch.Generator().manual_seed(0)
    text = torch.randn(100, 8, generator=g)
    motion = text + 1.5 * torch.randn(100, 8, generator=g)
    got = S.r_precision(text, motion, batch_size=32, top_k=3, seed=4)
    ref = _r_precision_loop(text.numpy().astype(np.float64), motion.numpy().astype(np.float64), 32, 3, 4)
    assert got == pytest.approx(ref.tolist())
    assert got[0] <= got[1] <= got[2]
    # orthogonal, perfectly matched embeddings: every motion finds its caption first
    eye = torch.eye(32)
    assert S.r_precision(eye, eye) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="at least batch_size=32"):
        S.r_precision(eye[:10], eye[:10])


def test_matching_score_by_hand():
    t = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    m = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    res = S.matching_score(t, m)
    assert res["matching_score"] == pytest.approx((2**-0.5 + -1.0) / 2)
    d0 = np.linalg.norm(np.array([1.0, 0.0]) - np.array([2**-0.5, 2**-0.5]))
    assert res["matching_l2"] == pytest.approx((d0 + 2.0) / 2)


def test_frechet_distance_references():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(150, 5)) @ rng.normal(size=(5, 5)) + 0.3
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    # Tr((S1 S2)^1/2) = sum of the square roots of the (real, non-negative) eigenvalues of S1 S2
    eig = np.linalg.eigvals(s1 @ s2).real
    ref = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())
    assert S.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    assert S.fid(a, b) == pytest.approx(ref, rel=1e-6)
    # diagonal covariances: sum_i (m1 - m2)^2 + (sqrt(v1) - sqrt(v2))^2
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    hand = 1.0**2 + 2.0**2 + 0.0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0.0
    assert S.frechet_distance(np.zeros(3), np.diag(v1), np.array([1.0, 2.0, 0.0]), np.diag(v2)) == pytest.approx(hand)
    assert S.fid(a, a) == pytest.approx(0.0, abs=1e-8)


def test_diversity_against_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4))
    r = np.random.RandomState(7)
    first, second = r.choice(50, 20, replace=False), r.choice(50, 20, replace=False)
    ref = np.mean([np.sqrt(((x[i] - x[j]) ** 2).sum()) for i, j in zip(first, second)])
    assert S.diversity(x, times=20, seed=7) == pytest.approx(ref)
    assert S.diversity(np.zeros((5, 3)), times=300) == 0.0


def test_read_captions(tmp_path):
    tsv = tmp_path / "c.txt"
    tsv.write_text("a\ta person walks\n\n# comment\nb\tsomeone jumps\ta tab inside\na\tsecond caption of a\n")
    assert S.read_captions(tsv) == {"a": "a person walks", "b": "someone jumps\ta tab inside"}
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"x": "a person runs", "y": ["first", "second"]}))
    assert S.read_captions(js) == {"x": "a person runs", "y": "first"}
    bad = tmp_path / "bad.txt"
    bad.write_text("a\tok\nno tab here\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected"):
        S.read_captions(bad)


# ---- the command on a trained TMR ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_test_set(trained_tmr, tmp_path_factory):
    """The test split's motions written as a 'generated' folder (unnormalised features) with their first captions."""
    out = tmp_path_factory.mktemp("real_as_generated")
    ds = R.split_dataset(R.load_datamodule(trained_tmr.data), "test")
    caps = {}
    for i in range(len(ds)):
        it = ds.item(i)
        np.save(out / f"{it.key}.npy", np.load(it.path)[it.start : it.end])
        caps[it.key] = it.captions[0]
    return out, caps, ds


def _score(capsys, trained_tmr, motions, captions_file, extra=()):
    capsys.readouterr()
    assert main(["score", "--ckpt", trained_tmr.ckpt, "--motions", str(motions), "--captions", str(captions_file),
                 "--json", "--quiet", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_real_and_shuffled(trained_tmr, real_test_set, tmp_path, capsys):
    motions, caps, ds = real_test_set
    good = tmp_path / "caps.txt"
    good.write_text("".join(f"{k}\t{v}\n" for k, v in caps.items()))
    res = _score(capsys, trained_tmr, motions, good, ["--stats-from", trained_tmr.data])
    chance = [k / 32 for k in (1, 2, 3)]
    with capsys.disabled():
        print("\nscore, real test motions:", {k: round(v, 4) for k, v in res.items()})
    assert res["num_motions"] == len(caps) >= 64
    assert res["fid"] == pytest.approx(0.0, abs=1e-6)
    assert res["diversity"] == pytest.approx(res["real_diversity"])
    assert res["R_precision_top1"] > 3 * chance[0] and res["R_precision_top3"] > 2 * chance[2]
    # the same captions assigned to the wrong motions
    keys = sorted(caps)
    perm = np.random.RandomState(0).permutation(len(keys))
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps({k: caps[keys[p]] for k, p in zip(keys, perm)}))
    bad = _score(capsys, trained_tmr, motions, shuffled, ["--stats-from", trained_tmr.data])
    with capsys.disabled():
        print("score, shuffled captions:", {k: round(v, 4) for k, v in bad.items()})
    assert bad["R_precision_top3"] < res["R_precision_top3"] - 0.2
    assert bad["matching_score"] < res["matching_score"]
    assert bad["fid"] == pytest.approx(0.0, abs=1e-6)  # the motions are unchanged
    # explicit Mean/Std files give the same embeddings (no real set: no FID)
    src = ds.sources[0]
    np.save(tmp_path / "mean.npy", src.mean)
    np.save(tmp_path / "std.npy", src.std)
    alone = _score(capsys, trained_tmr, motions, good, ["--mean", str(tmp_path / "mean.npy"), "--std",
                                                        str(tmp_path / "std.npy"), "--max-len", "60"])
    assert "fid" not in alone
    assert alone["R_precision_top3"] == pytest.approx(res["R_precision_top3"])
    assert alone["matching_score"] == pytest.approx(res["matching_score"], abs=1e-6)


def test_score_collapsed_generator(trained_tmr, real_test_set, tmp_path, capsys):
    """A generator that outputs one motion for every caption: FID grows, diversity vanishes."""
    motions, caps, ds = real_test_set
    collapsed = tmp_path / "collapsed"
    collapsed.mkdir()
    one = np.load(motions / f"{sorted(caps)[0]}.npy")
    for k in caps:
        np.save(collapsed / f"{k}.npy", one)
    good = tmp_path / "caps.txt"
    good.write_text("".join(f"{k}\t{v}\n" for k, v in caps.items()))
    res = _score(capsys, trained_tmr, collapsed, good, ["--stats-from", trained_tmr.data])
    with capsys.disabled():
        print("\nscore, collapsed generator:", {k: round(v, 4) for k, v in res.items()})
    assert res["diversity"] == pytest.approx(0.0, abs=1e-6) and res["real_diversity"] > 0.5
    assert res["fid"] > 0.5
    missing = tmp_path / "missing.txt"
    missing.write_text("nope\ta person walks\n")
    with pytest.raises(SystemExit, match="no .npy for 1 captioned ids"):
        main(["score", "--ckpt", trained_tmr.ckpt, "--motions", str(collapsed), "--captions", str(missing),
              "--stats-from", trained_tmr.data])
    with pytest.raises(SystemExit, match="--stats-from <data config> or both --mean and --std"):
        main(["score", "--ckpt", trained_tmr.ckpt, "--motions", str(collapsed), "--captions", str(good)])
