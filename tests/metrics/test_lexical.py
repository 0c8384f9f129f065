"""Interpretability metrics of lexical vectors (motion_text.metrics.lexical): hand-computed examples."""

import pytest
import torch

from tests.conftest_text import tiny_bert_dir


def test_top_term_rates_hand_example():
    from motion_text.metrics.lexical import top_term_rates

    p = torch.tensor([[0.0, 3, 1, 0, 2], [5, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
    has = torch.tensor([True, True, False, False])
    # top-2 terms: row 0 {1, 4} hit; row 1 {0, 3} miss; row 2 all zero: miss; row 3 {4, 3} miss
    r = top_term_rates(p, has, [1], k=2)
    assert (r["rate"], r["rate_without"], r["base_rate"], r["n_with"], r["n"]) == (50.0, 0.0, 25.0, 2, 4)
    assert top_term_rates(p, has, [0, 4], k=1)["base_rate"] == 50.0  # top-1: rows 1 (term 0) and 3 (term 4) hit
    with pytest.raises(ValueError, match="k must be"):
        top_term_rates(p, has, [1], k=6)


def test_caption_term_overlap_hand_example():
    from motion_text.metrics.lexical import caption_term_overlap

    p = torch.tensor([[0.0, 3, 1, 0, 2], [5, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    terms = [{1, 2}, {0, 4}, {1, 3, 4}]
    # top-2 positive terms: row 0 {1, 4}, row 1 {0, 3}, row 2 none
    # overlaps: row 0 with sets 0/1/2: 1, 1, 2; row 1: 0, 1, 1; row 2: 0, 0, 0
    r = caption_term_overlap(p, terms, k=2)
    assert r["own"].tolist() == [1.0, 1.0, 0.0]
    assert r["other"].tolist() == [1.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="one term set per row"):
        caption_term_overlap(p, terms[:2], k=2)


def test_caption_terms_drop_specials_and_stopwords(tmp_path_factory):
    from transformers import AutoTokenizer

    from motion_text.metrics.lexical import caption_terms

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir(tmp_path_factory))
    (got,) = caption_terms(tok, ["[CLS] a person walks to the left"])
    want = set(tok.convert_tokens_to_ids([w for w in tok.tokenize("person walks left")]))
    assert got == want and tok.cls_token_id not in got


def test_term_ranks_and_frequent_top_terms_hand_example():
    from motion_text.metrics.lexical import frequent_top_terms, term_ranks

    p = torch.tensor([[0.0, 3.0, 1.0, 2.0, 0.0],
                      [0.0, 1.0, 4.0, 0.5, 0.0],
                      [0.0, 0.0, 2.0, 1.0, 0.0]])
    # term 3: larger entries in row 0: {3.0} -> rank 2; row 1: {1.0, 4.0} -> 3; row 2: {2.0} -> 2
    assert term_ranks(p, [3]).tolist() == [2, 3, 2]
    # best of terms {1, 3}: row 0 takes 1 (rank 1), row 1 takes 1 (rank 2), row 2 takes 3 (term 1 is zero: rank 2)
    assert term_ranks(p, [1, 3]).tolist() == [1, 2, 2]
    # an inactive term ranks V + 1
    assert term_ranks(p, [4]).tolist() == [6, 6, 6]
    # top-2 positive terms per row: {1, 3}, {2, 1}, {2, 3}: 1, 2 and 3 twice each (ties: smaller id first)
    assert frequent_top_terms(p, k=2, n=2) == [(1, 2), (2, 2)]
    assert frequent_top_terms(p, k=2, n=5) == [(1, 2), (2, 2), (3, 2)]
