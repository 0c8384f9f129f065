"""``make demo`` / ``make lexical-demo``: train and evaluate on the synthetic set from a fresh machine.

``python -m motion_text.demo tmr``: generates the synthetic HumanML3D-layout set (2,000 motions, cached), trains the
small TMR of ``tmr_demo.yaml``, tests the best checkpoint and prints the protocol table.

``python -m motion_text.demo lexical``: the four ``lexical_phase{1..4}_synthetic.yaml`` phases in a row on the same set
(:func:`run_chain`), then lexical retrieval (p_t . p_m) on the test split and, for "kick"
and seven other action words, how often the word (and, separately, its regular inflections) is among the top-10 terms
of p_m for the motions whose captions contain it, how many of a motion's own caption words are among them
against other motions' captions, how often keyword search (``--keywords a b --inflect``) puts motions of both
actions first (:func:`keyword_report`), and captions of the test motions with their
metrics against a random-caption baseline (``lexical_caption_synthetic.yaml``).
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from motion_text.cli import main, resolve_config
from motion_text.metrics.lexical import caption_term_overlap, caption_terms, top_term_rates
from motion_text.retrieval.query import inflections

if TYPE_CHECKING:
    from motion_text.methods.retrieval import RetrievalMethod

__all__ = ["keyword_report", "lexical_demo", "run_chain", "term_report", "term_reports", "tmr_demo"]


def motion_vectors(model, batch: dict) -> torch.Tensor:
    """p_m of a collated batch: the chain encodes joints (``encode_batch_motion``), dagger-TMR motion features."""
    if hasattr(model, "encode_batch_motion"):
        return model.encode_batch_motion(batch)
    return model.encode_motion(batch["motion"], batch["mask"])


def _best_ckpt(root: str) -> str:
    ckpts = sorted(Path(root).rglob("best-rsum*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise FileNotFoundError(f"no best-rsum checkpoint under {root}")
    return str(ckpts[-1])


def tmr_demo() -> None:
    t0 = time.time()
    cfg = resolve_config("tmr_demo.yaml")
    main(["fit", "--config", cfg])
    ckpt = _best_ckpt("runs/tmr_demo")
    main(["test", "--config", cfg, "--ckpt_path", ckpt])
    print(f"demo finished in {time.time() - t0:.0f} s; checkpoint: {ckpt}")


def lexical_demo() -> None:
    run_chain(synthetic=True)


@torch.no_grad()
def term_reports(model: RetrievalMethod, loader, words=("kick",), k: int = 10) -> dict[str, dict]:
    """:func:`top_term_rates` of the motion lexical vectors p_m over a data split, one report per caption word.

    ``inflected`` repeats the rates with the word's regular inflections added to the terms (:func:`inflections`; e.g.
    "kicked", which may appear in no caption). Each report also has ``own_words`` / ``other_words``: for the motions
    with the word, the mean number of their own caption content words among their top-k terms, and the same against
    the other motions' captions (chance level, :func:`caption_term_overlap`); the ``"*"`` entry has these over all
    motions. The split is encoded once. A motion "has" a word when one of its captions contains a word starting with it
    ("kicks" for "kick"); the terms are the first word pieces of the word and of those caption words (``kick``,
    ``kicks``).
    """
    patterns = {w: re.compile(rf"\b{re.escape(w)}\w*", re.IGNORECASE) for w in words}
    model.eval()
    ps, captions = [], []
    for batch in loader:
        batch = {key: v.to(model.device) if torch.is_tensor(v) else v for key, v in batch.items()}
        ps.append(motion_vectors(model, batch).float().cpu())
        captions += [" ".join(caps) for caps in batch["all_texts"]]
    p = torch.cat(ps)
    tok = model.vocab_tokenizer
    overlap = caption_term_overlap(p, caption_terms(tok, captions), k)
    out = {"*": {"own_words": float(overlap["own"].mean()), "other_words": float(overlap["other"].mean()),
                 "n": len(p)}}
    for word, pattern in patterns.items():
        found = [pattern.findall(c) for c in captions]
        forms = {word} | {w.lower() for f in found for w in f}
        term_ids = sorted({tok.convert_tokens_to_ids(tok.tokenize(w)[0]) for w in forms})
        has = torch.tensor([bool(f) for f in found])
        out[word] = top_term_rates(p, has, term_ids, k)
        out[word]["terms"] = " ".join(tok.convert_ids_to_tokens(term_ids))
        lemma_ids = sorted(set(term_ids) | set(tok.convert_tokens_to_ids(inflections(word, tok.get_vocab()))))
        out[word]["inflected"] = {**top_term_rates(p, has, lemma_ids, k),
                                  "terms": " ".join(tok.convert_ids_to_tokens(lemma_ids))}
        out[word].update({f"{side}_words": float(overlap[side][has].mean()) if bool(has.any()) else float("nan")
                          for side in ("own", "other")})
    return out


def term_report(model: RetrievalMethod, loader, word: str = "kick", k: int = 10) -> dict[str, float]:
    """:func:`term_reports` for one word."""
    return term_reports(model, loader, (word,), k)[word]


def run_chain(synthetic: bool = True, words=("kick", "walk", "jump", "squat", "punch", "wave", "sit", "turn")) -> dict:
    """Run the four phases in sequence through the CLI (``make lexical-demo``), then test phase 4 and caption the test
    motions with it (``lexical_caption{suffix}.yaml``).

    Prints the lexical retrieval table of the test split (p_t . p_m, TMR's protocols) and, for each of ``words``, how
    often its terms are among the top-10 terms of p_m for test motions whose captions contain it, against the other
    motions and the base rate over all test motions (:func:`term_reports`). Returns the test metrics and the reports.
    """
    from motion_text.cli import _make_cli_class, _resolve_config_args

    t0 = time.time()
    suffix = "_synthetic" if synthetic else ""
    for k in (1, 2, 3, 4):
        main(["fit", "--config", f"lexical_phase{k}{suffix}.yaml"])
    cli_cls, method_cls, dm_cls = _make_cli_class()
    cli = cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False,
                  args=_resolve_config_args(["--config", f"lexical_phase4{suffix}.yaml"]))
    ckpt = Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    cli.trainer.test(cli.model, cli.datamodule, ckpt_path=str(ckpt))
    reports = term_reports(cli.model, cli.datamodule.test_dataloader(), words)
    r = reports["*"]
    print(f"top-10 terms of p_m on the test split: {r['own_words']:.2f} of the motion's own caption words on average "
          f"over all {r['n']} motions, {r['other_words']:.2f} of another motion's caption words (chance level)")
    for w, r in reports.items():
        if w == "*":
            continue
        print(f"  {w!r} ({r['terms']}) in {r['rate']:.1f} % of the {r['n_with']} motions whose captions contain it, "
              f"{r['rate_without']:.1f} % of the others, {r['base_rate']:.1f} % of all {r['n']} (base rate); those "
              f"motions' own caption words: {r['own_words']:.2f}, other captions' words {r['other_words']:.2f}")
        i = r["inflected"]
        if i["terms"] != r["terms"]:
            print(f"    with its inflections ({i['terms']}): {i['rate']:.1f} % of those motions, "
                  f"{i['rate_without']:.1f} % of the others")
    keywords = keyword_report(cli.model, cli.datamodule.test_dataloader().dataset)
    s = keywords["summary"]
    print(f"keyword pairs (search --keywords a b --inflect, index top-32, coverage first): {s['hits']} of the "
          f"{s['slots']} top results mention both actions ({100 * s['rate']:.1f} %, chance {100 * s['chance']:.1f} %) "
          f"over {s['pairs']} pairs; best: " + ", ".join(
              f"{r['keywords']} {r['hits']}/{r['n']}" for r in sorted(keywords["pairs"], key=lambda r: -r["hits"])[:4]))
    from motion_text.tools.caption import CaptionWriter, action_agreement, random_caption_baseline

    cap = cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False,
                  args=_resolve_config_args(["--config", f"lexical_caption{suffix}.yaml"]))
    cap.trainer.predict(cap.model, cap.datamodule, return_predictions=False)  # prints the captioning metrics
    writer = next(c for c in cap.trainer.callbacks if isinstance(c, CaptionWriter))
    captions = writer.result
    items = list(captions["captions"].values())
    refs = [c["references"] for c in items]
    agree = {"model": action_agreement([c["caption"] for c in items], refs),  # the writer's random captions:
             "random": action_agreement(random_caption_baseline(refs, writer.seed), refs)}
    print(f"captions naming an action of their motion's references: {100 * agree['model']['named']:.1f} % of "
          f"{len(items)} (precision {agree['model']['precision']:.2f}), random captions "
          f"{100 * agree['random']['named']:.1f} % (precision {agree['random']['precision']:.2f}); "
          f"{len(set(c['caption'] for c in items))} distinct captions")
    captions["actions"] = agree
    print(f"lexical chain finished in {time.time() - t0:.0f} s; checkpoint: {ckpt}")
    return {"test": dict(cli.model.test_results), "terms": reports, "keywords": keywords, "captions": captions}


def keyword_report(model: RetrievalMethod, dataset, top_k: int | None = 32, k: int = 10, inflect: bool = True
                   ) -> dict:
    """Keyword search quality on a split (what ``motion-text search --pair-rate`` measures on a saved index).

    Encodes the split's motions into p_m, keeps the ``top_k`` largest terms (as ``motion-text index --top-k``),
    and for every pair of the synthetic generator's actions ranks the motions for the query ``a b`` (coverage first):
    :func:`motion_text.tools.sparse.keyword_rate` rows and their pooled :func:`~motion_text.tools.sparse.keyword_summary`.
    """
    from motion_text.retrieval.sparse import SparseIndex, topk_sparsify_csr, vocabulary
    from motion_text.tools.sparse import (
        ACTION_WORDS,
        encode_split,
        keyword_rate,
        keyword_summary,
        split_captions,
    )

    docs, keys = encode_split(model, dataset, quiet=True)
    if top_k is not None:
        docs = topk_sparsify_csr(docs, top_k)
    index = SparseIndex.from_vectors(docs, keys, top_k=top_k, vocab=vocabulary(model.vocab_tokenizer, docs.shape[1]))
    rows = keyword_rate(index, split_captions(dataset), list(itertools.combinations(ACTION_WORDS, 2)), k, inflect=inflect)
    return {"summary": keyword_summary(rows), "pairs": rows}


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "tmr"
    {"tmr": tmr_demo, "lexical": lexical_demo}[which]()
