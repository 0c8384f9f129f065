"""``motion-text retrieve`` on a tiny TMR trained on the synthetic set (fixture ``trained_tmr``)."""

import json
import re
from math import comb
from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.cli import main
from motion_text.tools import retrieve as R

# query -> words of the synthetic generator's captions for that action (an item matches when any caption has one)
QUERIES = {
    "a person kicks with the left leg": ("kick",),
    "someone jumps in place": ("jump", "hop", "leap"),
    "a person crawls forward": ("crawl",),
    "a person sits down": ("sits down",),
    "a person walks forward": ("walk", "stroll"),
    "a man runs forward quickly": ("run", "jog", "sprint"),
    "someone waves with the right hand": ("wave",),
    "a person punches with the right arm": ("punch",),
    "a person squats": ("squat",),
    "a person turns around to the left": ("turn", "rotate"),
    "a person raises both arms": ("raises both arms", "lifts both arms", "raises their arms"),
    "a person steps sideways to the right": ("sideways", "side steps", "shuffles to the"),
}


def _matches(captions, words) -> bool:
    return any(re.search(r"\b" + re.escape(w), c) for c in captions for w in words)


def _json(capsys, args) -> dict:
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def _brute_force(method, dataset, text: str) -> list[tuple[str, float]]:
    """Independent ranking: encode every item alone and sort cosines in Python."""
    q = method.encode_text([text])[0].double()
    rows = []
    for i in range(len(dataset)):
        s = dataset[i]
        m = method.encode_motion(s["motion"][None], torch.ones(1, len(s["motion"]), dtype=torch.bool))[0].double()
        rows.append((s["key"], float(q @ m / (q.norm() * m.norm()))))
    return sorted(rows, key=lambda r: -r[1])


def test_text_to_motion_finds_the_action(trained_tmr, capsys):
    args = ["retrieve", "--ckpt", trained_tmr.ckpt, "--data", trained_tmr.data, "-k", "5", "--json", "--quiet"]
    for q in QUERIES:
        args += ["--query", q]
    out = _json(capsys, args)
    assert out["direction"] == "text-to-motion" and len(out["results"]) == len(QUERIES)
    dataset = R.split_dataset(R.load_datamodule(trained_tmr.data), "test")
    all_caps = [dataset.item(i).captions for i in range(len(dataset))]
    n = len(all_caps)
    found, chance = [], []
    for res in out["results"]:
        words = QUERIES[res["query"]]
        hits = res["hits"]
        assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
        assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))
        found.append(any(_matches(h["captions"], words) for h in hits))
        m = sum(_matches(c, words) for c in all_caps)
        chance.append(1 - comb(n - m, 5) / comb(n, 5))  # P(a random top-5 holds a match)
    rate, chance_rate = float(np.mean(found)), float(np.mean(chance))
    with capsys.disabled():
        print(f"\nretrieve top-5 action rate: {sum(found)}/{len(found)} = {rate:.2f} (random ranking: "
              f"{chance_rate:.2f}); misses: {[q for q, f in zip(QUERIES, found) if not f]}")
    assert rate >= 0.75 and rate > chance_rate + 0.2


def test_ranking_matches_brute_force_and_cache(trained_tmr, capsys, monkeypatch):
    query = "a person kicks with the left leg"
    args = ["retrieve", "--ckpt", trained_tmr.ckpt, "--data", trained_tmr.data, "--query", query, "-k", "4",
            "--json", "--quiet"]
    first = _json(capsys, args)["results"][0]["hits"]
    method = R.load_method(trained_tmr.ckpt)
    dm = R.load_datamodule(trained_tmr.data)
    dataset = R.split_dataset(dm, "test")
    ref = _brute_force(method, dataset, query)[:4]
    assert [h["key"] for h in first] == [k for k, _ in ref]
    assert [h["score"] for h in first] == pytest.approx([s for _, s in ref], abs=1e-5)
    cache = R.gallery_cache_path(trained_tmr.ckpt, dm, "test")
    assert cache.is_file() and cache.parent == Path(trained_tmr.ckpt).parent
    assert R.gallery_cache_path(trained_tmr.ckpt, dm, "val") != cache

    def no_encoding(*a, **k):
        raise AssertionError("the gallery should come from the cache")

    monkeypatch.setattr(R, "encode_motions", no_encoding)
    again = _json(capsys, args)["results"][0]["hits"]
    assert again == first


def test_motion_to_text_key_and_npy(trained_tmr, capsys, tmp_path):
    dataset = R.split_dataset(R.load_datamodule(trained_tmr.data), "test")
    item = dataset.item(3)
    base = ["retrieve", "--ckpt", trained_tmr.ckpt, "--data", trained_tmr.data, "-k", "5", "--json", "--quiet"]
    by_key = _json(capsys, base + ["--motion", item.key])
    assert by_key["direction"] == "motion-to-text"
    hits = by_key["results"][0]["hits"]
    assert len(hits) == 5 and all(h["caption"] in h["captions"] for h in hits)
    # the same frames given as an unnormalised .npy file rank the captions identically
    npy = tmp_path / "query.npy"
    np.save(npy, np.load(item.path)[item.start : item.end])
    by_file = _json(capsys, base + ["--motion", str(npy)])["results"][0]["hits"]
    assert [(h["key"], h["caption"]) for h in by_file] == [(h["key"], h["caption"]) for h in hits]
    assert [h["score"] for h in by_file] == pytest.approx([h["score"] for h in hits], abs=1e-5)
    # independent check of the top caption: cosine of every caption of the split with the motion
    method = R.load_method(trained_tmr.ckpt)
    s = dataset[3]
    m = method.encode_motion(s["motion"][None], torch.ones(1, len(s["motion"]), dtype=torch.bool))[0]
    caps = sorted({c for i in range(len(dataset)) for c in dataset.item(i).captions})
    t = method.encode_text(caps)
    best = caps[int(torch.argmax(t @ m))]
    assert hits[0]["caption"] == best


def test_table_output_and_errors(trained_tmr, capsys):
    base = ["retrieve", "--ckpt", trained_tmr.ckpt, "--data", trained_tmr.data]
    capsys.readouterr()
    main(base + ["--query", "a person crawls forward", "-k", "3"])
    out = capsys.readouterr().out
    assert "rank" in out and "key id" in out and "a person crawls forward" in out
    with pytest.raises(SystemExit, match="neither a .npy file nor a key id"):
        main(base + ["--motion", "no_such_key"])
    with pytest.raises(SystemExit, match="no usable '_class_path'"):
        bad = Path(trained_tmr.work) / "plain.ckpt"
        torch.save({"state_dict": {}, "hyper_parameters": {}}, bad)
        main(["retrieve", "--ckpt", str(bad), "--data", trained_tmr.data, "--query", "x"])


def test_rank_pure():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]])
    q = torch.tensor([[2.0, 0.1]])
    scores, idx = R.rank(q, g, 3)
    cos = [float(q[0] @ r / (q[0].norm() * r.norm())) for r in g]
    order = sorted(range(4), key=lambda i: -cos[i])[:3]
    assert idx[0].tolist() == order and scores[0].tolist() == pytest.approx([cos[i] for i in order])
    dot_scores, dot_idx = R.rank(q, g, 2, normalize=False)
    assert dot_idx[0].tolist() == [2, 0] and dot_scores[0].tolist() == pytest.approx([2.1, 2.0])
    with pytest.raises(ValueError, match="k must be >= 1"):
        R.rank(q, g, 0)
