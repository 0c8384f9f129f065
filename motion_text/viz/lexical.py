"""Views of lexical vectors (paper §4.4, Fig. 5(a) and appendix Fig. 6): term clouds and top-term bar charts.

"We visualize the lexical representations of motion and text ... using wordcloud, where larger words represent higher
lexical values." :func:`term_cloud_figure` draws the cloud of a motion's p_m next to the cloud of its caption's p_t
(``wordcloud`` package, optional extra ``motion-text[wordcloud]``; without it the panels list the top terms as text);
:func:`top_terms_figure` draws the 20 largest terms of both as bar charts.

:class:`LexicalBoard` is a Lightning callback that writes both figures to TensorBoard for a few fixed validation items
every ``every_n_epochs`` validation epochs, like :class:`~motion_text.viz.tensorboard.RetrievalBoard`;
``motion-text terms`` (:func:`run_terms`) writes them as PNG files for motions of a split.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["top_terms", "term_cloud_image", "term_cloud_figure", "top_terms_figure", "LexicalBoard", "run_terms"]

log = logging.getLogger(__name__)


def _is_special(token: str) -> bool:
    return token.startswith("[") and token.endswith("]")


def top_terms(p: torch.Tensor | np.ndarray, vocab: Sequence[str], n: int = 20) -> list[tuple[str, float]]:
    """The ``n`` largest positive terms of one lexical vector as ``(token, weight)``, special tokens (``[CLS]``,
    ``[unused0]``, ...) left out; equal weights: smaller vocabulary id first."""
    w = torch.as_tensor(p).detach().float().cpu().flatten()
    if w.numel() != len(vocab):
        raise ValueError(f"the vector has {w.numel()} terms, the vocabulary {len(vocab)}")
    order = torch.sort(w, descending=True, stable=True).indices.tolist()
    out = []
    for i in order:
        if w[i] <= 0 or len(out) == n:
            break
        if not _is_special(str(vocab[i])):
            out.append((str(vocab[i]), float(w[i])))
    return out


def _has_wordcloud() -> bool:
    return importlib.util.find_spec("wordcloud") is not None


def term_cloud_image(terms: Sequence[tuple[str, float]], width: int = 400, height: int = 240, seed: int = 0
                     ) -> np.ndarray | None:
    """(H, W, 3) uint8 word cloud of ``(token, weight)`` pairs (font size ~ weight), or ``None`` without the
    ``wordcloud`` package or terms."""
    if not terms or not _has_wordcloud():
        return None
    from wordcloud import WordCloud

    freqs: dict[str, float] = {}
    for t, w in terms:
        freqs[t] = max(freqs.get(t, 0.0), float(w))
    wc = WordCloud(width=width, height=height, background_color="white", random_state=seed, prefer_horizontal=0.9)
    return wc.generate_from_frequencies(freqs).to_array()


def _text_panel(ax, terms: Sequence[tuple[str, float]]) -> None:
    ax.text(0.02, 0.98, "\n".join(f"{t}  {w:.2f}" for t, w in terms[:12]) or "(no active term)", va="top",
            family="monospace", fontsize=8, transform=ax.transAxes)


def term_cloud_figure(motion_terms, text_terms, caption: str = "", key: str = "", width: int = 400,
                      height: int = 240):
    """Side-by-side term clouds of a motion (p_m) and of its caption (p_t)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2 * width / 100 + 0.4, height / 100 + 0.8))
    for ax, terms, title in ((axes[0], motion_terms, f"motion {key}".strip()), (axes[1], text_terms, "caption")):
        img = term_cloud_image(terms, width, height)
        if img is not None:
            ax.imshow(img, interpolation="bilinear")
        else:
            _text_panel(ax, terms)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    if caption:
        fig.suptitle(caption[:100], fontsize=9)
    fig.tight_layout()
    return fig


def top_terms_figure(motion_terms, text_terms, caption: str = "", n: int = 20):
    """Bar charts of the ``n`` largest terms of p_m and p_t (largest at the top)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.0, 0.18 * n + 1.2))
    for ax, terms, title, color in ((axes[0], motion_terms[:n], "motion p_m", "tab:blue"),
                                    (axes[1], text_terms[:n], "caption p_t", "tab:orange")):
        names = [t for t, _ in terms][::-1]
        ax.barh(range(len(names)), [w for _, w in terms][::-1], color=color)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{title}: top {n} terms", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    if caption:
        fig.suptitle(caption[:100], fontsize=9)
    fig.tight_layout()
    return fig


class LexicalBoard(Callback):
    """Term clouds and top-20 bar charts of fixed validation items, written to TensorBoard.

    The first ``items`` motions of the first validation batch are kept; after every ``every_n_epochs``-th
    validation epoch (0 = never; rank 0, not during the sanity check) their p_m and the p_t of their captions are
    recomputed with the module's ``encode_batch_motion`` / ``encode_text`` and written as ``lexical/term_cloud_<i>``
    and ``lexical/top_terms_<i>``. Without a TensorBoard logger, or for a module without lexical vectors, it does
    nothing (one info log).

    Parameters
    ----------
    every_n_epochs : int
        Validation epochs between two writes (0 disables the callback).
    items : int
        Validation items shown.
    top : int
        Terms per bar chart (and per cloud).
    width, height : int
        Cloud size in pixels.
    """

    def __init__(self, every_n_epochs: int = 1, items: int = 2, top: int = 20, width: int = 400, height: int = 240
                 ) -> None:
        super().__init__()
        if every_n_epochs < 0 or items < 1 or top < 1:
            raise ValueError(f"every_n_epochs must be >= 0, items and top >= 1; got {every_n_epochs}, {items}, {top}")
        self.every_n_epochs, self.items, self.top, self.width, self.height = every_n_epochs, items, top, width, height
        self._writer = None
        self._vocab: list[str] | None = None
        self._batch: dict | None = None
        #: tags written by the last call, for inspection
        self.written: list[str] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._writer is not None or self.every_n_epochs == 0:
            return
        from lightning.pytorch.loggers import TensorBoardLogger

        if getattr(pl_module, "vocab_tokenizer", None) is None:
            log.info("LexicalBoard: %s has no lexical vectors; nothing will be written", type(pl_module).__name__)
            return
        tb = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not tb:
            log.info("LexicalBoard: no TensorBoard logger; nothing will be written")
            return
        if not _has_wordcloud():
            log.info("LexicalBoard: the wordcloud package is missing (pip install motion-text[wordcloud]); term "
                     "clouds are drawn as term lists")
        self._writer = tb[0].experiment if trainer.is_global_zero else None

    def _due(self, trainer) -> bool:
        return (self._writer is not None and trainer.is_global_zero and not trainer.sanity_checking
                and (trainer.current_epoch + 1) % self.every_n_epochs == 0)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if self._batch is not None or not self._due(trainer) or dataloader_idx != 0:
            return
        n = self.items
        self._batch = {k: (v[:n].detach().cpu() if isinstance(v, torch.Tensor) else list(v[:n]))
                       for k, v in batch.items() if isinstance(v, torch.Tensor | list)}

    @torch.no_grad()
    def on_validation_end(self, trainer, pl_module) -> None:
        if self._batch is None or not self._due(trainer):
            return
        import matplotlib.pyplot as plt

        step = trainer.global_step
        figures = lexical_figures(pl_module, self._batch, self.top, self.width, self.height)
        self.written = []
        for i, (cloud, bars) in enumerate(figures):
            for tag, fig in ((f"lexical/term_cloud_{i}", cloud), (f"lexical/top_terms_{i}", bars)):
                self._writer.add_figure(tag, fig, step)
                plt.close(fig)
                self.written.append(tag)
        self._writer.flush()
        self._batch = None


@torch.no_grad()
def lexical_figures(pl_module, batch: dict, top: int = 20, width: int = 400, height: int = 240) -> list[tuple]:
    """``(term cloud figure, top-terms figure)`` per item of a (CPU) batch, encoded by ``pl_module``."""
    from motion_text.retrieval.sparse import vocabulary

    was = pl_module.training
    pl_module.eval()
    try:
        dev = pl_module.device
        b = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        p_m = (pl_module.encode_batch_motion(b) if hasattr(pl_module, "encode_batch_motion")  # joints (the chain)
               else pl_module.encode_motion(b["motion"], b["mask"])).float().cpu()  # features (dagger-TMR)
        p_t = pl_module.encode_text(list(batch["text"])).float().cpu()
    finally:
        pl_module.train(was)
    vocab = vocabulary(pl_module.vocab_tokenizer, p_m.shape[1])
    out = []
    for i in range(len(p_m)):
        mt, tt = top_terms(p_m[i], vocab, top), top_terms(p_t[i], vocab, top)
        caption, key = str(batch["text"][i]), str(batch["key"][i])
        out.append((term_cloud_figure(mt, tt, caption, key, width, height), top_terms_figure(mt, tt, caption, top)))
    return out


def run_terms(ns) -> int:
    """Entry point of ``motion-text terms``: PNG term clouds and top-term charts of motions of a split."""
    try:
        return _run_terms(ns)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None


def _run_terms(ns) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from motion_text.data.dataset import collate_motion_text
    from motion_text.tools import check_counts
    from motion_text.tools.sparse import lexical_datamodule, load_lexical, split_dataset

    check_counts(ns)
    method = load_lexical(ns.ckpt, ns.device)
    dm = lexical_datamodule(method, ns.data, 0)
    dataset = split_dataset(dm, ns.split)
    keys = [dataset.item(i).key for i in range(len(dataset))]
    if ns.motion:
        missing = [m for m in ns.motion if m not in keys]
        if missing:
            raise ValueError(f"not key ids of the {ns.split} split: {missing} (e.g. {keys[:3]})")
        idx = [keys.index(m) for m in ns.motion]
    else:
        idx = list(range(min(ns.count, len(dataset))))
    batch = collate_motion_text([dataset[i] for i in idx])
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (cloud, bars) in zip(idx, lexical_figures(method, batch, ns.top)):
        for name, fig in ((f"{keys[i]}_cloud.png", cloud), (f"{keys[i]}_top{ns.top}.png", bars)):
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            written.append(str(out / name))
    if not ns.quiet:
        print("\n".join(written))
    return 0
