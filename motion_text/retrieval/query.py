"""Keyword queries and document export for lexical (vocabulary-sized) vectors.

Keyword search (paper appendix A.3, Fig. 10, and "Inference Efficiency" in appendix D): "our model supports
keyword-based searches by directly activating specific feature dimensions with weights set to 1, thereby eliminating
the need for a text encoder during retrieval". :func:`keyword_query` builds that vector from the index vocabulary
alone: each keyword is split into WordPiece units by greedy longest-match-first over the vocabulary (the algorithm of
BERT's ``WordpieceTokenizer``: lower-cased, a word-initial piece, then ``##`` continuation pieces; a word that cannot
be split maps to nothing and is reported), and every resulting vocabulary id gets weight 1.

Multi-keyword search ranks "coverage first": a document that matches every keyword comes before one that matches
fewer, whatever their scores (the paper's Fig. 10 asks for motions "simultaneously related to both 'run' and
'jump'"). A keyword's *group* is its word-initial pieces (``##`` pieces such as ``##s`` are too common to signal the
keyword); see :meth:`motion_text.retrieval.sparse.SparseIndex.search` (``groups``).

:func:`export_documents` writes the collection as JSON Lines in the ``{term: weight}`` document format of the sparse
vector fields of OpenSearch (``rank_features``, neural sparse search) and Elasticsearch (``sparse_vector``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["KeywordQuery", "wordpiece", "inflections", "keyword_query", "document_terms", "export_documents"]


def wordpiece(word: str, vocab: dict[str, int], max_chars: int = 100) -> list[int]:
    """Greedy longest-match-first WordPiece split of one lower-cased word; ``[]`` when it cannot be split.

    Parameters
    ----------
    word : str
        One keyword (no spaces).
    vocab : dict
        Token string -> vocabulary id.
    """
    word = word.lower()
    if not word or len(word) > max_chars:
        return []
    ids, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return []
        ids.append(found)
        start = end
    return ids


def inflections(word: str, vocab) -> list[str]:
    """Regular inflections (-s/-es, -ed/-d, -ing, with e-dropping and consonant doubling) of an English word that are
    whole entries of ``vocab``, the word included: ``kick`` -> kick, kicked, kicking, kicks; ``sit`` -> sit, sits,
    sitting (not "sites"); irregular forms ("sat") are not derived."""
    w = word.lower()
    vowels = "aeiou"
    third = w + "es" if w.endswith(("s", "x", "z", "ch", "sh", "o")) else w + "s"
    if w.endswith("e"):
        past, cont = w + "d", (w if w.endswith("ee") else w[:-1]) + "ing"
    elif 3 <= len(w) <= 4 and w[-1] not in vowels + "wxy" and w[-2] in vowels and w[-3] not in vowels:
        # short consonant-vowel-consonant ending: sit -> sitting
        past, cont = w + w[-1] + "ed", w + w[-1] + "ing"
    else:
        past, cont = w + "ed", w + "ing"
    return sorted(f for f in {w, third, past, cont} if f in vocab)


@dataclass
class KeywordQuery:
    """A keyword query: the (1, V) vector, one id group per keyword (for coverage ranking) and unknown words."""

    vector: sp.csr_matrix
    groups: list[list[int]]
    keywords: list[str]
    unknown: list[str]


def keyword_query(keywords: Sequence[str], vocab: Sequence[str], weight: float = 1.0, inflect: bool = False
                  ) -> KeywordQuery:
    """Query vector with ``weight`` (1, as in the paper) on the vocabulary ids of each keyword.

    A keyword may itself hold several words (``"left leg"``); each word is split with :func:`wordpiece`. With
    ``inflect``, each word's regular inflections that are whole vocabulary entries (:func:`inflections`: ``kick`` ->
    kicked, kicking, kicks) get the weight too and join the keyword's coverage group, so ``--keywords kick`` also
    matches a motion whose vector holds "kicked" (query expansion; the paper's keyword vectors hold the keyword's own
    ids only, the default).

    Raises
    ------
    ValueError
        If no keyword is given, or none of them maps to a vocabulary id.
    """
    words = [k.strip() for k in keywords if k and k.strip()]
    if not words:
        raise ValueError(f"no keyword given (got {list(keywords)!r})")
    if weight <= 0:
        raise ValueError(f"keyword weight must be positive, got {weight}")
    table = {str(t): i for i, t in enumerate(vocab)}
    groups, unknown, all_ids = [], [], set()
    for kw in words:
        ids = []
        for w in kw.split():
            pieces = wordpiece(w, table)
            forms = [table[f] for f in inflections(w, table) if table[f] not in pieces] if inflect else []
            if not pieces and not forms:
                unknown.append(w)
            ids.extend(pieces + forms)
        if not ids:
            continue
        all_ids.update(ids)
        heads = [i for i in ids if not str(vocab[i]).startswith("##")]
        groups.append(sorted(set(heads or ids)))
    if not all_ids:
        raise ValueError(f"none of the keywords {words} is in the vocabulary")
    cols = np.asarray(sorted(all_ids), dtype=np.int32)
    vec = sp.csr_matrix((np.full(len(cols), weight, dtype=np.float32), cols, [0, len(cols)]), shape=(1, len(vocab)))
    return KeywordQuery(vec, groups, words, unknown)


def document_terms(docs: sp.csr_matrix, row: int, vocab: Sequence[str] | None = None, digits: int = 6
                   ) -> dict[Any, float]:
    """``{term: weight}`` of one document row (terms as vocabulary strings, or ids without ``vocab``)."""
    lo, hi = docs.indptr[row], docs.indptr[row + 1]
    out: dict[Any, float] = {}
    for t, w in zip(docs.indices[lo:hi], docs.data[lo:hi]):
        name = str(vocab[int(t)]) if vocab is not None else int(t)
        out[name] = max(out.get(name, 0.0), round(float(w), digits))  # duplicate token strings: keep the largest
    return out


def export_documents(docs: Any, keys: Sequence[str], path: str | Path, vocab: Sequence[str] | None = None,
                     field: str = "motion_terms", digits: int = 6) -> Path:
    """Write documents as JSON Lines ``{"id": key, field: {term: weight}}``, one motion per line.

    ``docs``: (N, V) vectors (anything :func:`~motion_text.retrieval.sparse.to_csr` reads, or an index with a
    ``documents()`` method). The ``field`` value is the document format of an OpenSearch ``rank_features`` /
    Elasticsearch ``sparse_vector`` field (a bulk request adds the action line). Terms are the vocabulary's token
    strings (WordPiece, ``##`` for continuation pieces); without a vocabulary the ids are written as strings.
    """
    from motion_text.retrieval.sparse import to_csr

    m = docs.documents() if hasattr(docs, "documents") else to_csr(docs, what="document vectors")
    if len(keys) != m.shape[0]:
        raise ValueError(f"got {len(keys)} keys for {m.shape[0]} documents")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row, key in enumerate(keys):
            terms = document_terms(m, row, vocab, digits)
            f.write(json.dumps({"id": str(key), field: {str(k): v for k, v in terms.items()}}) + "\n")
    return path
