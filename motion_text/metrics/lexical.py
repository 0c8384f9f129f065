"""How interpretable lexical vectors are (Lyu et al., lexical four-phase pretraining, Sec. 4.4): pure functions of
the (N, V) vectors p and of caption token ids.

* :func:`top_term_rates` -- how often given vocabulary terms are among the top-k terms of p;
* :func:`caption_terms` -- the content-word ids of captions (word pieces without special tokens and
  :data:`STOPWORDS`);
* :func:`caption_term_overlap` -- how many of a motion's own caption words are among its top-k terms, against other
  motions' captions.

:func:`motion_text.demo.term_reports` encodes a split with a lexical checkpoint and reports these.
"""

from __future__ import annotations

import torch

__all__ = ["STOPWORDS", "caption_term_overlap", "caption_terms", "frequent_top_terms", "term_ranks", "top_term_rates"]

#: function words left out of a caption's terms by :func:`caption_terms`
STOPWORDS = frozenset(
    "a an the and or then with to of in on at by for from as is are be his her their its it them they he she him "
    "this that while after before again into onto over out".split())


def top_term_rates(p: torch.Tensor, has_word: torch.Tensor, term_ids: list[int], k: int = 10) -> dict[str, float]:
    """How often given vocabulary terms are among the top-k terms of lexical vectors (Sec. 4.4, "interpretable").

    A row hits when one of ``term_ids`` is among its ``k`` largest entries with a positive weight. Returns the hit rate
    over the rows with ``has_word`` (e.g. motions whose captions contain "kick"), over the other rows, and over all
    rows (the base rate), in percent, with the row counts.
    """
    if p.dim() != 2 or has_word.shape != p.shape[:1]:
        raise ValueError(f"p must be (N, V) and has_word (N,), got {tuple(p.shape)} and {tuple(has_word.shape)}")
    if not 0 < k <= p.shape[1]:
        raise ValueError(f"k must be in [1, {p.shape[1]}], got {k}")
    values, top = p.topk(k, dim=1)
    terms = torch.tensor(sorted(set(term_ids)), dtype=top.dtype, device=top.device)
    hit = (torch.isin(top, terms) & (values > 0)).any(dim=1).float()
    has_word = has_word.bool()

    def rate(rows: torch.Tensor) -> float:
        return 100.0 * float(rows.mean()) if len(rows) else float("nan")

    return {"rate": rate(hit[has_word]), "rate_without": rate(hit[~has_word]), "base_rate": rate(hit),
            "n_with": int(has_word.sum()), "n": len(hit)}


def term_ranks(p: torch.Tensor, term_ids: list[int]) -> torch.Tensor:
    """(N,) rank of the best of ``term_ids`` in each row of ``p`` (N, V): 1 + the number of entries strictly larger
    than that term's weight; rows where none of the terms has a positive weight get V + 1 (the term is inactive).
    Why a word misses the top-k: :func:`top_term_rates` hits exactly the rows of rank <= k with a positive weight
    (ties aside)."""
    if p.dim() != 2:
        raise ValueError(f"p must be (N, V), got {tuple(p.shape)}")
    ids = torch.tensor(sorted(set(term_ids)), dtype=torch.long, device=p.device)
    best = p[:, ids].max(dim=1).values
    ranks = 1 + (p > best[:, None]).sum(dim=1)
    return torch.where(best > 0, ranks, torch.full_like(ranks, p.shape[1] + 1))


def frequent_top_terms(p: torch.Tensor, k: int = 10, n: int = 3) -> list[tuple[int, int]]:
    """The ``n`` vocabulary ids most often among the top-``k`` positive terms of the rows of ``p`` (N, V), with the
    number of rows they are in (ties: smaller id first): what fills the top-k when a word is not there."""
    values, top = p.topk(k, dim=1)
    counts = torch.bincount(top[values > 0].flatten(), minlength=p.shape[1])
    order = torch.sort(-counts, stable=True).indices[:n]  # stable: equal counts keep the smaller id first
    return [(int(i), int(counts[i])) for i in order if counts[i] > 0]


def caption_terms(tokenizer, captions: list[str], stopwords=STOPWORDS) -> list[set[int]]:
    """Vocabulary ids of each caption's content words: its word pieces, without special tokens and
    :data:`STOPWORDS` (one set per caption string; join a motion's captions first)."""
    special = set(tokenizer.all_special_ids)
    out = []
    for caption in captions:
        words = [w for w in tokenizer.tokenize(caption) if w not in stopwords]
        out.append(set(tokenizer.convert_tokens_to_ids(words)) - special)
    return out


def caption_term_overlap(p: torch.Tensor, terms: list[set[int]], k: int = 10) -> dict[str, torch.Tensor]:
    """How many of a motion's own caption words are among the top-k terms of its p_m, against other motions' captions.

    ``p`` (N, V) lexical vectors, ``terms[i]`` the content-word ids of row i's captions (:func:`caption_terms`).
    Top-k terms count only with a positive weight. Returns per row (N,): ``own`` = |top-k(p_i) & terms_i| and
    ``other`` = the mean of |top-k(p_i) & terms_j| over the other rows j != i (the chance level: the same top terms
    scored against captions of other motions).
    """
    n, v = p.shape
    if len(terms) != n or n < 2:
        raise ValueError(f"need one term set per row and at least 2 rows, got {len(terms)} sets for {n} rows")
    if not 0 < k <= v:
        raise ValueError(f"k must be in [1, {v}], got {k}")
    values, top = p.float().topk(k, dim=1)
    picked = torch.zeros(n, v).scatter_(1, top, (values > 0).float())  # n v, 1 at the positive top-k terms
    caps = torch.zeros(n, v)
    for i, ids in enumerate(terms):
        caps[i, sorted(ids)] = 1.0
    overlap = picked @ caps.T  # n n: |top-k(p_i) & terms_j|
    own = overlap.diagonal().clone()
    return {"own": own, "other": (overlap.sum(1) - own) / (n - 1)}
