"""Caption generation through the lexical bottleneck decoder at 100 % masking (LexMMM, paper §3.2.3).

"At full masking, the process can be interpreted as a motion captioning task" (Eq. 7): the decoder sees only
E_cbow (Eq. 4) of the motion's lexical vector p_m and a caption made entirely of ``[MASK]`` tokens between ``[CLS]``
and ``[SEP]``, and predicts every position in parallel. The decoder is non-autoregressive, so generation needs a
length and benefits from refinement; :func:`generate_captions` uses mask-predict (Ghazvininejad et al., "Mask-Predict:
Parallel Decoding of Conditional Masked Language Models", EMNLP 2019), which fits the decoder's training: the
curriculum of LexMMM trains it on 40 % .. 100 % masked captions.

Candidate lengths: as in Mask-Predict, the decoder's length classifier (``BottleneckDecoder.predict_lengths``, trained
on sg(E_cbow)) proposes the ``length_beam`` most likely lengths of each motion; an explicit ``lengths`` list instead
tries the same lengths for every motion (a decoder whose length head was never trained falls back to 4 .. 15 with a
warning). For each candidate length L and each motion:

1. start from ``[CLS] [MASK] x L [SEP]``; predict all positions (special tokens excluded from the output);
2. for iterations t = 1 .. T-1, re-mask the ``floor(L (T - t) / T)`` least confident predicted tokens and predict
   them again, keeping the others;
3. score the candidate by the mean log-probability of its tokens (length-normalised).

The caption of a motion is its best-scoring candidate (Mask-Predict's rule among its length candidates), decoded with
the tokenizer (WordPiece pieces merged); adjacent repeated words, the typical artefact of parallel decoding, are
collapsed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["mask_predict", "generate_captions", "collapse_repeats"]

log = logging.getLogger(__name__)

#: lengths tried for every motion when the decoder has no trained length classifier
FALLBACK_LENGTHS = tuple(range(4, 16))


@torch.no_grad()
def mask_predict(decoder, p: Tensor, word_embeddings: Tensor, length: int, *, cls_id: int, sep_id: int,
                 mask_id: int, banned: Sequence[int] = (), iterations: int = 4) -> tuple[Tensor, Tensor]:
    """Mask-predict decoding of captions of ``length`` content tokens from lexical vectors.

    Parameters
    ----------
    decoder : BottleneckDecoder
        ``decoder(p, ids, attention_mask, word_embeddings) -> (B, L + 2, V)`` logits.
    p : Tensor
        (B, V) lexical vectors (p_m of motions, or p_t).
    word_embeddings : Tensor
        (V, d) W^(te) of the language model.
    length : int
        Content tokens per caption (``[CLS]`` and ``[SEP]`` are added).
    cls_id, sep_id, mask_id : int
        Special token ids of the tokenizer.
    banned : sequence of int
        Token ids never generated (special tokens).
    iterations : int
        Mask-predict iterations T (1 = a single parallel prediction).

    Returns
    -------
    (ids (B, length) long, scores (B,) float): the tokens and their mean log-probability.
    """
    if length < 1 or iterations < 1:
        raise ValueError(f"length and iterations must be >= 1, got {length} and {iterations}")
    b = p.shape[0]
    dev = p.device
    tokens = torch.full((b, length), mask_id, dtype=torch.long, device=dev)
    logp = torch.zeros(b, length, device=dev)
    am = torch.ones(b, length + 2, dtype=torch.long, device=dev)
    cls = torch.full((b, 1), cls_id, dtype=torch.long, device=dev)
    sep = torch.full((b, 1), sep_id, dtype=torch.long, device=dev)
    banned_t = torch.as_tensor(list(banned), dtype=torch.long, device=dev)
    masked = torch.ones(b, length, dtype=torch.bool, device=dev)
    for t in range(iterations):
        ids = torch.cat([cls, tokens, sep], 1)
        logits = decoder(p, ids, am, word_embeddings)[:, 1:-1].float()  # b l v
        if banned_t.numel():
            logits[..., banned_t] = float("-inf")
        lp = torch.log_softmax(logits, -1)
        best_lp, best = lp.max(-1)
        tokens = torch.where(masked, best, tokens)
        logp = torch.where(masked, best_lp, logp)
        n = length * (iterations - 1 - t) // iterations
        if n == 0:
            break
        masked = torch.zeros_like(masked)
        masked.scatter_(1, logp.topk(n, dim=1, largest=False).indices, True)
        tokens = tokens.masked_fill(masked, mask_id)
    return tokens, logp.mean(1)


def collapse_repeats(words: str) -> str:
    """Collapse adjacent repeated words (``"a person person walks"`` -> ``"a person walks"``)."""
    out: list[str] = []
    for w in words.split():
        if not out or out[-1] != w:
            out.append(w)
    return " ".join(out)


@torch.no_grad()
def generate_captions(decoder, p: Tensor, word_embeddings: Tensor, tokenizer, lengths: Sequence[int] | None = None,
                      iterations: int = 4, length_beam: int = 3) -> list[str]:
    """Captions of lexical vectors ``p`` (B, V): mask-predict for every candidate length, best mean log-probability.

    ``tokenizer``: the language model's Hugging Face tokenizer (special ids and decoding). ``lengths=None``: each
    motion's ``length_beam`` most likely lengths from the decoder's length classifier (Mask-Predict); a list: these
    lengths for every motion.
    """
    b = p.shape[0]
    if lengths is None:
        if int(getattr(decoder, "length_updates", 0)) > 0:
            candidates = decoder.predict_lengths(p, word_embeddings, beam=length_beam)  # b beam
        else:
            log.warning("the decoder's length classifier was never trained (a checkpoint from before it existed?): "
                        "trying lengths %d..%d for every caption", FALLBACK_LENGTHS[0], FALLBACK_LENGTHS[-1])
            lengths = FALLBACK_LENGTHS
    if lengths is not None:
        lengths = [int(x) for x in lengths]
        if not lengths or min(lengths) < 1:
            raise ValueError(f"lengths must be positive integers, got {lengths}")
        candidates = torch.tensor(lengths, device=p.device).expand(b, -1)
    special = sorted(set(int(i) for i in tokenizer.all_special_ids))
    best_score = torch.full((b,), float("-inf"), device=p.device)
    best_ids: list[list[int]] = [[] for _ in range(b)]
    for length in sorted(set(candidates.flatten().tolist())):
        rows = (candidates == length).any(1).nonzero().flatten()  # motions with this candidate length
        ids, score = mask_predict(decoder, p[rows], word_embeddings, length, cls_id=tokenizer.cls_token_id,
                                  sep_id=tokenizer.sep_token_id, mask_id=tokenizer.mask_token_id, banned=special,
                                  iterations=iterations)
        for r, i in enumerate(rows.tolist()):
            if score[r] > best_score[i]:
                best_score[i] = score[r]
                best_ids[i] = ids[r].tolist()
    return [collapse_repeats(tokenizer.decode(ids, skip_special_tokens=True)) for ids in best_ids]
