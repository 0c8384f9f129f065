"""``make demo`` / ``make lexical-demo``: train and evaluate on the synthetic set from a fresh machine.

``python -m motion_text.demo tmr``: generates the synthetic HumanML3D-layout set (2,000 motions, cached), trains the
small TMR of ``tmr_demo.yaml``, tests the best checkpoint and prints the protocol table.

``python -m motion_text.demo lexical [ROW ...]`` (``make lexical-demo``): on the same synthetic split and with fixed
step counts, the four-phase lexical chain (:func:`run_chain`), dagger-TMR (``tmr_lexical_synthetic.yaml``) and dense
TMR (``tmr_demo.yaml``); prints the comparison table (protocols (a) and (d), grounding of the generator's action
words, index size, time per row) and the grounding table per action word (:func:`lexical_demo`).

``python -m motion_text.demo chain``: the four phases, then lexical retrieval on the test split and, for eight action
words, how often the word (and its regular inflections) is among the top-10 terms of p_m for the motions whose
captions contain it, how many of a motion's own caption words are among them against other motions' captions, how
often keyword search (``--keywords a b --inflect``) puts motions of both actions first (:func:`keyword_report`), and
captions of the test motions with their metrics against a random-caption baseline
(``lexical_caption_synthetic.yaml``).
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# MKL may otherwise run a product on fewer threads than asked when the machine is busy (MKL_DYNAMIC), which changes
# the order of float sums from one run to the next; read when MKL starts, so set before torch's first product
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("OMP_DYNAMIC", "FALSE")

import torch  # noqa: E402

from motion_text.cli import main, resolve_config  # noqa: E402
from motion_text.metrics.lexical import (  # noqa: E402
    caption_term_overlap,
    caption_terms,
    frequent_top_terms,
    term_ranks,
    top_term_rates,
)
from motion_text.retrieval.query import inflections  # noqa: E402

if TYPE_CHECKING:
    from motion_text.methods.retrieval import RetrievalMethod

__all__ = ["comparison_table", "fit_and_test", "fix_determinism", "grounding", "grounding_table", "index_size",
           "keyword_report", "motion_vectors", "lexical_demo", "run_chain", "term_report", "term_reports", "tmr_demo"]


#: intra-op threads of the demos: ``make demo`` / ``make lexical-demo`` are sized for 2 cores, and a fixed count keeps
#: the order of parallel float sums, hence every printed figure, the same from one run to the next on a machine
DEMO_THREADS = 2


def fix_determinism(threads: int = DEMO_THREADS) -> None:
    """Settings for identical reruns: ``threads`` intra-op threads (1 inter-op thread where still settable),
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` (deterministic kernels where torch has them, a
    warning where it has none) and cuBLAS's deterministic workspace. Data order, crops, caption choice, dropout and
    VAE noise are seeded by (seed, epoch, index / step) already (``EpochSeededSampler``,
    ``MotionTextMethod.on_train_batch_start``, ``keyed_noise``), so DataLoader workers draw nothing unseeded."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started: inter-op threads do not reorder sums
        pass
    torch.use_deterministic_algorithms(True, warn_only=True)


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
    """``make demo``: a fixed amount of work (``tmr_demo.yaml``'s epochs, no wall-clock budget), so two runs on a
    machine print the same figures (:func:`fix_determinism`); prints the time it took."""
    fix_determinism()
    t0 = time.time()
    cfg = resolve_config("tmr_demo.yaml")
    main(["fit", "--config", cfg])
    ckpt = _best_ckpt("runs/tmr_demo")
    main(["test", "--config", cfg, "--ckpt_path", ckpt])
    print(f"demo finished in {time.time() - t0:.0f} s; checkpoint: {ckpt}")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (DataLoader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def fit_and_test(config: str, *overrides: str) -> tuple:
    """Fit ``config`` with ``overrides`` (CLI arguments; a fixed number of steps) and test the final weights (equal
    steps for every row): the CLI objects and ``(wall s, CPU s)``."""
    from motion_text.cli import _make_cli_class, _resolve_config_args

    t0, c0 = time.time(), _cpu_seconds()
    cli_cls, method_cls, dm_cls = _make_cli_class()
    cli = cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False,
                  args=_resolve_config_args(["--config", config, *overrides]))
    cli.trainer.fit(cli.model, cli.datamodule)
    cli.trainer.test(cli.model, cli.datamodule)
    return cli, (time.time() - t0, _cpu_seconds() - c0)


def index_size(model, dataset, top_k: int = 32) -> dict:
    """Size of the test split's index: lexical vectors cut to their ``top_k`` largest terms (``motion-text index
    --top-k``, CSR bytes) or dense float32 embeddings."""
    from motion_text.retrieval.sparse import SparseIndex, topk_sparsify_csr
    from motion_text.tools.sparse import encode_split

    if getattr(model, "vocab_tokenizer", None) is None:
        n = len(dataset)
        batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=_collate())))
        dim = model.encode_motion(batch["motion"].to(model.device), batch["mask"].to(model.device)).shape[1]
        return {"bytes": n * dim * 4, "terms": float(dim), "what": f"dense {dim}-d float32"}
    docs, keys = encode_split(model, dataset, quiet=True)
    index = SparseIndex.from_vectors(topk_sparsify_csr(docs, top_k), keys, top_k=top_k)
    return {"bytes": index.nbytes, "terms": index.nnz / max(len(index), 1), "what": f"top-{top_k} CSR"}


def _collate():
    from motion_text.data.dataset import collate_motion_text

    return collate_motion_text


def grounding(reports: dict) -> dict[str, dict]:
    """Per action word, from :func:`term_reports`' ``inflected`` entries: ``own`` / ``other`` = % of its motions / of
    the others whose top-10 terms of p_m hold the word or an inflection; and, to show why a word misses: ``rank`` =
    the median rank of the word in p_m over its motions (V + 1 where it is inactive), ``text_rank`` = its median
    rank in p_t over the captions that contain it, and ``fills`` = the terms most often in those motions' top 10."""
    return {w: {"own": r["inflected"]["rate"], "other": r["inflected"]["rate_without"],
                "rank": r["inflected"]["median_rank"], "text_rank": r["inflected"]["text_rank"],
                "fills": r["inflected"]["fills"]}
            for w, r in reports.items() if w != "*"}


def _grounded(g: dict) -> bool:
    return g["own"] >= 50 and g["other"] <= 10


def comparison_table(rows: dict[str, dict]) -> str:
    """Markdown table of the rows (dense TMR, dagger-TMR, the chain): protocols (a) and (d), grounding, index size,
    time."""
    head = ("| method | (a) t2m R@1 | (a) t2m R@10 | (a) m2t R@10 | (d) t2m R@10 | words grounded (>= 50 % vs <= 10 %) "
            "| mean rate own / other | index (test split) | wall s | CPU s |")
    lines = [head, "|" + "---|" * 10]
    for name, r in rows.items():
        res, g = r["test"], r.get("grounding")
        ok = f"{sum(map(_grounded, g.values()))} of {len(g)}" if g else "-"
        mean = (f"{sum(x['own'] for x in g.values()) / len(g):.1f} / {sum(x['other'] for x in g.values()) / len(g):.1f}"
                if g else "-")
        idx = r["index"]
        lines.append(f"| {name} | {res.get('all/t2m/R01', float('nan')):.1f} | {res.get('all/t2m/R10', float('nan')):.1f} "
                     f"| {res.get('all/m2t/R10', float('nan')):.1f} | {res.get('guo/t2m/R10', float('nan')):.1f} | {ok} "
                     f"| {mean} | {idx['bytes'] / 1024:.0f} KiB ({idx['what']}, {idx['terms']:.1f} per motion) "
                     f"| {r['time'][0]:.0f} | {r['time'][1]:.0f} |")
    return "\n".join(lines)


def grounding_table(rows: dict[str, dict]) -> str:
    """Markdown table: per action word and lexical row, the share of its motions / of the others with the word among
    the top-10 terms of p_m, the word's median rank in p_m over its motions and in p_t over its captions, and the
    terms most often in the motions' top 10 (what takes the word's place when it misses)."""
    named = {n: r["grounding"] for n, r in rows.items() if r.get("grounding")}
    words = sorted({w for g in named.values() for w in g})
    lines = ["| word | " + " | ".join(f"{n}: its motions / others (%) | {n}: median rank in p_m / in p_t; most "
                                      "frequent top-10 terms of p_m" for n in named) + " |",
             "|" + "---|" * (2 * len(named) + 1)]
    for w in words:
        cells = [f"{g[w]['own']:.1f} / {g[w]['other']:.1f} | {g[w]['rank']:.0f} / {g[w]['text_rank']:.0f}; "
                 f"{g[w]['fills']}" if w in g
                 else "- | -" for g in named.values()]
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: the dense and dagger-TMR rows of ``make lexical-demo``: the same 48 steps for both (a fixed count, sized with the
#: chain for the demo's 10 minutes on 2 cores), and one text cache for their frozen text and sentence models (the same
#: captions: the second row reads the first row's features)
TMR_ROW_OVERRIDES = ("--trainer.max_epochs=1", "--trainer.limit_train_batches=48",
                     "--model.init_args.text_cache_dir=runs/text_cache_synthetic")


def lexical_demo(rows: tuple[str, ...] = ("chain", "dagger-TMR", "TMR")) -> dict:
    """``make lexical-demo``: the four-phase chain (:func:`run_chain`), dagger-TMR (``tmr_lexical_synthetic.yaml``)
    and dense TMR (``tmr_demo.yaml``, same steps) on the same synthetic split, then the comparison table (protocols
    (a) and (d) of the final weights, grounding of every action word of the generator, index size at top-k 32, each
    row's wall and CPU time) and the grounding table. Fixed step counts and :func:`fix_determinism`: the same
    command twice prints the same figures on a machine."""
    from motion_text.tools.sparse import ACTION_WORDS

    fix_determinism()
    words = tuple(ACTION_WORDS)
    out: dict[str, dict] = {}
    if "chain" in rows:
        t0, c0 = time.time(), _cpu_seconds()
        chain = run_chain(synthetic=True, words=words, extras=False)
        out["chain (4 phases)"] = {"test": chain["test"], "grounding": grounding(chain["terms"]),
                                   "index": chain["index"], "time": (time.time() - t0, _cpu_seconds() - c0)}
    for name, config in (("dagger-TMR", "tmr_lexical_synthetic.yaml"), ("TMR", "tmr_demo.yaml")):
        if name not in rows:
            continue
        cli, spent = fit_and_test(config, *TMR_ROW_OVERRIDES)
        test_ds = cli.datamodule.test_dataloader().dataset
        row = {"test": dict(cli.model.test_results), "time": spent, "index": index_size(cli.model, test_ds)}
        if getattr(cli.model, "vocab_tokenizer", None) is not None:
            row["grounding"] = grounding(term_reports(cli.model, cli.datamodule.test_dataloader(), words))
        out[name] = row
    print("\nComparison on the synthetic test split (final weights; protocol (a): whole gallery, (d): batches of 32; "
          "grounding: an action word among the top-10 terms of p_m, with its inflections)")
    print(comparison_table(out))
    if any(r.get("grounding") for r in out.values()):
        print("\nGrounding per action word (share of the motions whose captions hold it / of the others)")
        print(grounding_table(out))
    return out


@torch.no_grad()
def term_reports(model: RetrievalMethod, loader, words=("kick",), k: int = 10) -> dict[str, dict]:
    """:func:`top_term_rates` of the motion lexical vectors p_m over a data split, one report per caption word.

    ``inflected`` repeats the rates with the word's regular inflections added to the terms (:func:`inflections`; e.g.
    "kicked", which may appear in no caption), with the median rank of those terms in p_m over the word's motions
    (:func:`term_ranks`), the 3 terms most often in their top k (:func:`frequent_top_terms`) and, on the text side,
    the median rank of those terms in p_t over the single captions that contain the word (``text_rank``: whether
    the text encoder names the word at all). Each report also has ``own_words`` / ``other_words``: for the motions
    with the word, the mean number of their own caption content words among their top-k terms, and the same against
    the other motions' captions (chance level, :func:`caption_term_overlap`); the ``"*"`` entry has these over all
    motions. The split is encoded once. A motion "has" a word when one of its captions contains a word starting with it
    ("kicks" for "kick"); the terms are the first word pieces of the word and of those caption words (``kick``,
    ``kicks``).
    """
    patterns = {w: re.compile(rf"\b{re.escape(w)}\w*", re.IGNORECASE) for w in words}
    model.eval()
    ps, captions, single = [], [], []
    for batch in loader:
        batch = {key: v.to(model.device) if torch.is_tensor(v) else v for key, v in batch.items()}
        ps.append(motion_vectors(model, batch).float().cpu())
        captions += [" ".join(caps) for caps in batch["all_texts"]]
        single += [c for caps in batch["all_texts"] for c in caps]
    p = torch.cat(ps)
    single = [c for c in single if any(pattern.search(c) for pattern in patterns.values())]
    p_t = torch.cat([model.encode_text(single[i:i + 64]).float().cpu() for i in range(0, len(single), 64)]) \
        if single else torch.zeros(0, p.shape[1])
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
        own = p[has]
        out[word]["inflected"] = {
            **top_term_rates(p, has, lemma_ids, k), "terms": " ".join(tok.convert_ids_to_tokens(lemma_ids)),
            "median_rank": float(term_ranks(own, lemma_ids).float().median()) if len(own) else float("nan"),
            "fills": " ".join(tok.convert_ids_to_tokens([i for i, _ in frequent_top_terms(own, k, 3)]))}
        with_word = torch.tensor([bool(pattern.search(c)) for c in single], dtype=torch.bool)
        out[word]["inflected"]["text_rank"] = (float(term_ranks(p_t[with_word], lemma_ids).float().median())
                                               if bool(with_word.any()) else float("nan"))
        out[word].update({f"{side}_words": float(overlap[side][has].mean()) if bool(has.any()) else float("nan")
                          for side in ("own", "other")})
    return out


def term_report(model: RetrievalMethod, loader, word: str = "kick", k: int = 10) -> dict[str, float]:
    """:func:`term_reports` for one word."""
    return term_reports(model, loader, (word,), k)[word]


def run_chain(synthetic: bool = True, words=("kick", "walk", "jump", "squat", "punch", "wave", "sit", "turn"),
              extras: bool = True, overrides: dict[int, list[str]] | None = None, phases=(1, 2, 3, 4)) -> dict:
    """Run the four phases in sequence through the CLI, then test phase 4 and (``extras``) report keyword search and
    caption the test motions with it (``lexical_caption{suffix}.yaml``); ``make lexical-demo`` runs it without the
    extras, ``python -m motion_text.demo chain`` with them.

    Prints the lexical retrieval table of the test split (p_t . p_m, TMR's protocols) and, for each of ``words``, how
    often its terms are among the top-10 terms of p_m for test motions whose captions contain it, against the other
    motions and the base rate over all test motions (:func:`term_reports`). Returns the test metrics and the reports.
    """
    from motion_text.cli import _make_cli_class, _resolve_config_args

    t0 = time.time()
    suffix = "_synthetic" if synthetic else ""
    overrides = overrides or {}
    for k in phases:
        main(["fit", "--config", f"lexical_phase{k}{suffix}.yaml", *overrides.get(k, [])])
    cli_cls, method_cls, dm_cls = _make_cli_class()
    cli = cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False,
                  args=_resolve_config_args(["--config", f"lexical_phase4{suffix}.yaml", *overrides.get(4, [])]))
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
    out = {"test": dict(cli.model.test_results), "terms": reports,
           "index": index_size(cli.model, cli.datamodule.test_dataloader().dataset)}
    if not extras:
        print(f"lexical chain finished in {time.time() - t0:.0f} s; checkpoint: {ckpt}")
        return out
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
    return {**out, "keywords": keywords, "captions": captions}


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
    if which not in ("tmr", "lexical", "chain"):
        raise SystemExit(f"usage: python -m motion_text.demo [tmr | lexical [ROW ...] | chain] (ROW: chain, dagger-TMR, "
                         f"TMR); got {which!r}")
    if which == "tmr":
        tmr_demo()
    elif which == "chain":  # the four phases with keyword search and captions
        fix_determinism()
        run_chain(synthetic=True)
    else:
        lexical_demo(tuple(sys.argv[2:]) or ("chain", "dagger-TMR", "TMR"))
