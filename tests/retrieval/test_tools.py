"""``motion-text index`` / ``search`` / ``sparsity`` end to end on a tiny lexical checkpoint."""

import argparse
import csv
import json

import numpy as np
import pytest
import torch

from motion_text.cli import main
from motion_text.retrieval.query import keyword_query, wordpiece
from motion_text.retrieval.sparse import SparseIndex, load_index, topk_sparsify
from motion_text.tools import sparse as S


def _json(capsys, args):
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def built(trained_lexical, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx")
    assert main(["index", "--ckpt", trained_lexical.ckpt, "--data", trained_lexical.data, "--out",
                 str(out / "motions.npz"), "--top-k", "32", "--export", str(out / "docs.jsonl"), "--quiet"]) == 0
    return out


def test_index_stores_top_k_vectors_of_the_split(trained_lexical, built):
    index = load_index(built / "motions.npz")
    assert isinstance(index, SparseIndex) and index.top_k == 32
    model = trained_lexical.model
    dm = S.lexical_datamodule(model, trained_lexical.data, 0)
    ds = S.split_dataset(dm, "test")
    assert list(index.keys) == [ds.item(i).key for i in range(len(ds))]
    # the stored vectors are the model's p_m cut to the 32 largest terms
    batch = next(iter(S.encode_lexical_motions(model, ds, batch_size=len(ds))))[0]
    np.testing.assert_allclose(index.documents().toarray(), topk_sparsify(batch, 32).numpy(), rtol=1e-6)
    assert np.diff(index.documents().indptr).max() <= 32
    assert index.vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_export_is_term_weight_json(built):
    index = load_index(built / "motions.npz")
    lines = (built / "docs.jsonl").read_text().splitlines()
    assert len(lines) == len(index)
    first = json.loads(lines[0])
    assert first["id"] == index.keys[0]
    row = index.documents()[0]
    expected = {index.vocab[t]: float(w) for t, w in zip(row.indices, row.data)}
    assert set(first["motion_terms"]) == set(expected)
    for t, w in first["motion_terms"].items():
        assert w == pytest.approx(expected[t], abs=1e-6)


def test_search_query_equals_dense_ranking_and_reports_terms(trained_lexical, built, capsys):
    query = "a person kicks with the left leg"
    out = _json(capsys, ["search", "--index", str(built / "motions.npz"), "--ckpt", trained_lexical.ckpt,
                         "--query", query, "-k", "10", "--json"])
    hits = out["results"][0]["hits"]
    index = load_index(built / "motions.npz")
    q = trained_lexical.model.encode_text([query]).double().numpy()
    scores = (q @ index.documents().toarray().astype(np.float64).T)[0]
    order = np.lexsort((np.arange(len(scores)), -scores))
    order = order[scores[order] > 0][:10]
    assert [h["key"] for h in hits] == [str(index.keys[i]) for i in order]
    for h in hits:
        assert h["score"] == pytest.approx(scores[h["id"]])
        assert sum(w for _, w in h["terms"]) == pytest.approx(h["score"], rel=1e-9)
        assert all(isinstance(t, str) for t, _ in h["terms"]) and h["caption"]


def test_keyword_search_ranks_motions_with_all_keywords_first(built, capsys):
    index = load_index(built / "motions.npz")
    kq = keyword_query(["kick", "left"], index.vocab)
    assert kq.vector.data.tolist() == [1.0] * kq.vector.nnz and len(kq.groups) == 2
    out = _json(capsys, ["search", "--index", str(built / "motions.npz"), "--keywords", "kick", "left", "-k", "15",
                         "--json"])
    docs = index.documents().toarray()
    has_all = [all(docs[h["id"], g].any() for g in kq.groups) for h in out["results"][0]["hits"]]
    n_all = sum(all(docs[i, g].any() for g in kq.groups) for i in range(len(index)))
    # coverage first: every motion matching both keywords (up to k) precedes the others
    assert has_all == sorted(has_all, reverse=True)
    assert sum(has_all) == min(n_all, 15)


def test_wordpiece_and_unknown_keywords():
    vocab = ["[PAD]", "kick", "##s", "run", "##ning", "left"]
    table = {t: i for i, t in enumerate(vocab)}
    assert wordpiece("Kicks", table) == [1, 2]
    assert wordpiece("running", table) == [3, 4]
    assert wordpiece("xyz", table) == []
    kq = keyword_query(["kicks", "xyz"], vocab)
    assert kq.unknown == ["xyz"] and kq.groups == [[1]]
    assert sorted(kq.vector.indices.tolist()) == [1, 2]
    with pytest.raises(ValueError, match="vocabulary"):
        keyword_query(["xyz"], vocab)


def test_inflected_keywords_join_the_keyword_group():
    vocab = ["[PAD]", "kick", "##s", "kicked", "kicks", "kicking", "sit", "sitting", "sites", "left"]
    kq = keyword_query(["kick", "sit"], vocab, inflect=True)
    assert kq.groups == [[1, 3, 4, 5], [6, 7]]  # "sites" is not an inflection of "sit"
    assert sorted(kq.vector.indices.tolist()) == [1, 3, 4, 5, 6, 7]
    assert keyword_query(["kick", "sit"], vocab).groups == [[1], [6]]  # the paper's vector: the keywords' own ids
    # a word that is no whole entry but has inflected entries is not unknown with inflect
    only_forms = keyword_query(["kick"], ["[PAD]", "kicked"], inflect=True)
    assert only_forms.groups == [[1]] and not only_forms.unknown


def test_search_needs_ckpt_for_captions(built):
    with pytest.raises(SystemExit, match="--ckpt"):
        main(["search", "--index", str(built / "motions.npz"), "--query", "a person walks"])


def test_sparsity_curve_csv_png_tensorboard(trained_lexical, tmp_path, capsys):
    out = _json(capsys, ["sparsity", "--ckpt", trained_lexical.ckpt, "--data", trained_lexical.data, "--out",
                         str(tmp_path), "--ks", "4", "16", "all", "--json", "--quiet"])
    rows = out["rows"]
    assert [r["k"] for r in rows] == [4, 16, "all"]
    sizes = [r["index_bytes"] for r in rows]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert all(r["terms_per_motion"] <= 4 for r in rows[:1])
    with open(tmp_path / "sparsity.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert (tmp_path / "sparsity.png").stat().st_size > 0
    assert any((tmp_path / "tb").iterdir())


def test_sparsity_recalls_match_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    p_m = torch.relu(torch.randn(30, 50, generator=g))
    p_t = p_m + 0.3 * torch.relu(torch.randn(30, 50, generator=g))
    rows = S.sparsity_curve(p_m, p_t, ks=(5, None))
    for row, k in zip(rows, (5, None)):
        s = topk_sparsify(p_t, k).double() @ topk_sparsify(p_m, k).double().T
        rank = (s > s.diag()[:, None]).sum(1)  # no ties in continuous random data
        assert row["t2m_R@1"] == pytest.approx(100 * (rank < 1).double().mean().item())
        assert row["t2m_R@10"] == pytest.approx(100 * (rank < 10).double().mean().item())


def test_keyword_rate_counts_motions_with_both_actions():
    vocab = ["[PAD]", "run", "jump", "walk"]
    docs = np.array([[0, 9.0, 0, 0],    # runs only, large weight
                     [0, 0.2, 0.3, 0],  # runs and jumps
                     [0, 0, 8.0, 0],    # jumps only
                     [0, 0.1, 0.1, 0],  # runs and jumps
                     [0, 0, 0, 1.0]], dtype=np.float32)
    keys = ["m0", "m1", "m2", "m3", "m4"]
    caps = {"m0": ["a person runs forward"], "m1": ["someone jogs then hops up"], "m2": ["a man jumps"],
            "m3": ["a person sprints and then leaps forward"], "m4": ["a person walks"]}
    index = SparseIndex.from_vectors(docs, keys, vocab=vocab)
    cov = S.keyword_rate(index, caps, [("run", "jump"), ("walk", "jump")], k=10)
    assert cov[0] == {"keywords": "run jump", "relevant": 2, "n": 2, "hits": 2, "rate": 1.0, "chance": 2 / 5}
    assert cov[1]["rate"] is None and cov[1]["relevant"] == 0
    by_score = S.keyword_rate(index, caps, [("run", "jump")], k=10, coverage=False)
    assert by_score[0]["rate"] == 0.0  # the two single-action motions have the largest scores
    one = S.keyword_rate(index, caps, [("run", "jump")], k=1, coverage=False)[0]
    assert (one["n"], one["hits"]) == (1, 0)
    pooled = S.keyword_summary(cov + by_score + [{**one, "hits": 1}])
    # slots 2 + 2 + 1, hits 2 + 0 + 1; chance weighted by slots: (2 * 0.4 + 2 * 0.4 + 1 * 0.4) / 5
    assert pooled == {"pairs": 3, "pairs_without_relevant": 1, "slots": 5, "hits": 3, "rate": 3 / 5,
                      "chance": pytest.approx(0.4)}


def test_pair_rate_cli_equals_keyword_rate_on_the_index(built, capsys):
    index = load_index(built / "motions.npz")
    captions = json.loads(S.captions_path(built / "motions.npz").read_text())
    out = _json(capsys, ["search", "--index", str(built / "motions.npz"), "--pair-rate", "kick", "walk", "jump",
                         "--inflect", "--json"])
    ref = S.keyword_rate(index, captions, [("kick", "walk"), ("kick", "jump"), ("walk", "jump")], inflect=True)
    assert out["pairs"] == ref and out["summary"] == S.keyword_summary(ref)
    assert out["summary"]["pairs"] + out["summary"]["pairs_without_relevant"] == 3
    capsys.readouterr()
    assert main(["search", "--index", str(built / "motions.npz"), "--pair-rate"]) == 0
    text = capsys.readouterr().out
    assert "chance" in text and "keyword pairs" in text


def test_seismic_backend_through_the_cli(trained_lexical, built, tmp_path, capsys):
    pytest.importorskip("seismic")
    assert main(["index", "--ckpt", trained_lexical.ckpt, "--data", trained_lexical.data, "--out",
                 str(tmp_path / "seis"), "--top-k", "32", "--backend", "seismic", "--quiet"]) == 0
    index = load_index(built / "motions.npz")
    lengths = np.diff(index._post.indptr)
    word = next(index.vocab[t] for t in np.argsort(-lengths, kind="stable") if index.vocab[t].isalpha())
    exact = _json(capsys, ["search", "--index", str(built / "motions.npz"), "--keywords", word, "--json"])
    approx = _json(capsys, ["search", "--index", str(tmp_path / "seis"), "--keywords", word, "--json"])
    got = [h["key"] for h in approx["results"][0]["hits"]]
    ref = [h["key"] for h in exact["results"][0]["hits"]]
    assert len(ref) == 10 and len(set(got) & set(ref)) >= 9 and approx["results"][0]["hits"][0]["caption"]
    # parameters from the command line: a build that keeps at most 2 postings per term (n_postings is the mean list
    # length, max_fraction the cap relative to it), and a search visiting 1 query term
    assert main(["index", "--ckpt", trained_lexical.ckpt, "--data", trained_lexical.data, "--out",
                 str(tmp_path / "seis2"), "--top-k", "32", "--backend", "seismic", "--quiet",
                 "--seismic", "n_postings=2", "--seismic", "max_fraction=1", "--seismic", "summary_energy=0.3"]) == 0
    small = load_index(tmp_path / "seis2")
    assert small.build_params["n_postings"] == 2 and small.build_params["summary_energy"] == 0.3
    narrow = _json(capsys, ["search", "--index", str(tmp_path / "seis2"), "--keywords", word, "--json",
                            "--seismic", "query_cut=1", "--seismic", "heap_factor=1.0"])
    assert 1 <= len(narrow["results"][0]["hits"]) <= 2  # only the 2 postings kept for the term can be found
    with pytest.raises(SystemExit, match="unknown Seismic search parameters"):
        main(["search", "--index", str(tmp_path / "seis2"), "--keywords", word, "--seismic", "cut=1"])
    with pytest.raises(SystemExit, match="need a Seismic index"):
        main(["search", "--index", str(built / "motions.npz"), "--keywords", word, "--seismic", "query_cut=1"])


def test_seismic_param_values():
    from motion_text.tools.sparse_args import seismic_param

    assert seismic_param("n_postings=500") == ("n_postings", 500)
    assert seismic_param(" heap_factor = 0.7") == ("heap_factor", 0.7)
    assert seismic_param("sorted=True") == ("sorted", True)
    for bad in ("n_postings", "=3", "query_cut=many"):
        with pytest.raises(argparse.ArgumentTypeError):
            seismic_param(bad)


def test_keyword_report_equals_pair_rate_of_the_cli_index(trained_lexical, built, capsys):
    from motion_text.demo import keyword_report
    from motion_text.tools.retrieve import split_dataset

    dataset = split_dataset(S.lexical_datamodule(trained_lexical.model, trained_lexical.data), "test")
    report = keyword_report(trained_lexical.model, dataset, top_k=32, inflect=False)
    out = _json(capsys, ["search", "--index", str(built / "motions.npz"), "--pair-rate", "--json"])
    assert report["pairs"] == out["pairs"] and report["summary"] == out["summary"]
