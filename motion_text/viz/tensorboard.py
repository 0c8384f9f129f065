"""TensorBoard dashboards of the retrieval methods: :class:`RetrievalBoard`, a Lightning callback.

After every validation epoch (rank 0, not during the sanity check) it writes to the TensorBoard logger:

- ``val/retrieval_table``: the R@k / MedR table of every validation protocol (markdown text);
- ``val/similarity``: heat map of the text x motion similarity matrix of the first validation batch;
- ``val/embedding_projection``: a 2-D PCA (or t-SNE) projection of up to ``max_points`` text and motion embeddings,
  coloured by the caption's action word (its first verb, :func:`action_word`);
- every ``render_every_n_epochs`` epochs (0 = never): skeleton renders of the top-``top_k`` motions retrieved for
  ``queries`` fixed validation captions among the collected validation motions, as videos (``add_video``, needs
  moviepy) or, without moviepy, as image strips (a few frames side by side, one row per retrieved motion).

The embeddings are recomputed by the callback with the module's ``encode_text`` / ``encode_motion`` for the first
validation batches, up to ``max_points`` items; the method itself is untouched. Without a TensorBoard logger the
callback does nothing (one info log).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

__all__ = ["RetrievalBoard", "action_word", "pca_2d", "retrieval_results_from_metrics", "render_frames"]

log = logging.getLogger(__name__)

# words skipped before the first verb of a caption: subjects, determiners, auxiliaries, adverbs
_SKIP = frozenset("""
a an the this that his her their its one some person persons people man men woman women someone somebody figure
human individual character guy lady boy girl child kid he she they it subject stick who is are was were be being
been has have had then first now slowly quickly carefully gently rapidly fast slow and also begins starts continues
""".split())
# verbs whose object names the action ("does a squat", "throws a punch", "takes a step")
_LIGHT = frozenset({"do", "perform", "make", "take", "give", "throw", "execute"})
_IRREGULAR = {"does": "do", "goes": "go", "is": "be", "ran": "run", "sat": "sit", "stood": "stand", "went": "go",
              "threw": "throw", "took": "take", "made": "make", "did": "do"}
_DETERMINERS = frozenset({"a", "an", "the", "some", "his", "her", "their", "its", "few", "couple", "of", "small",
                          "big", "large", "quick", "slow", "little"})


def _lemma(word: str) -> str:
    """Crude English verb lemma: third person and -ing forms ("walks", "waving", "jogging", "punches")."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ing") and len(word) > 4:
        stem = word[:-3]
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":  # jogging, sitting, squatting
            return stem[:-1]
        if re.search(r"([cvz]|[aeiou]s|at|ak)$", stem) and not stem.endswith(("eat", "oat", "eak")):
            return stem + "e"  # waving, dancing, raising, rotating, shaking
        return stem
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def action_word(caption: str) -> str:
    """The action word of a caption: its first verb, lemmatised (``"a person walks forward"`` -> ``"walk"``).

    A heuristic without a tagger: leading subjects, determiners, auxiliaries and adverbs are skipped; a light verb
    ("does a squat", "throws a punch") gives its object. ``"other"`` when nothing is left.
    """
    words = re.findall(r"[a-z]+", caption.lower())
    i = 0
    while i < len(words) and words[i] in _SKIP:
        i += 1
    if i == len(words):
        return "other"
    verb = _lemma(words[i])
    if verb in _LIGHT:
        j = i + 1
        while j < len(words) and words[j] in _DETERMINERS:
            j += 1
        if j < len(words):
            return _lemma(words[j])
    return verb


def pca_2d(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Projection (N, 2) of the centred rows of ``x`` (N, D) on their two principal axes (SVD); fewer than two
    non-degenerate axes give zero columns."""
    x = np.asarray(x.detach().cpu().numpy() if torch.is_tensor(x) else x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 1:
        raise ValueError(f"expected (N, D) points with N >= 1, got shape {x.shape}")
    xc = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    out = np.zeros((len(x), 2))
    k = min(2, vt.shape[0])
    out[:, :k] = xc @ vt[:k].T
    return out


_METRIC_NAME = re.compile(r"^val/(?P<p>.+)_(?P<d>t2m|m2t)_(?P<m>R\d\d|MedR|MeanR|rsum)$")


def retrieval_results_from_metrics(metrics: dict) -> dict[str, float]:
    """``{"<protocol>/<dir>/<metric>": value}`` from logged names ``val/<protocol>_<dir>_<metric>`` (the
    :class:`~motion_text.methods.retrieval.RetrievalMethod` validation logs), for
    :func:`~motion_text.metrics.retrieval.format_table`."""
    out = {}
    for name, value in metrics.items():
        m = _METRIC_NAME.match(name)
        if m:
            out[f"{m['p']}/{m['d']}/{m['m']}"] = float(value)
    return out


def render_frames(joints: np.ndarray, chains, frames, title: str | None = None, dpi: int = 40) -> np.ndarray:
    """RGB images (F, H, W, 3) uint8 of the given frame indices of a joint sequence (T, J, 3), drawn as
    :mod:`motion_text.viz.skeleton` draws them (ground plane, root trajectory, kinematic chains)."""
    from motion_text.viz.skeleton import _check, _draw_pose, _setup

    joints = _check(joints)
    fig, ax, plt = _setup(joints, title)
    fig.set_dpi(dpi)
    artists = _draw_pose(ax, joints[0], chains)
    images = []
    try:
        for t in frames:
            for line, c in artists:
                line.set_data_3d(joints[t, c, 0], joints[t, c, 2], joints[t, c, 1])
            fig.canvas.draw()
            images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(fig)
    return np.stack(images)


def _has_moviepy() -> bool:
    return importlib.util.find_spec("moviepy") is not None


class RetrievalBoard(Callback):
    """TensorBoard views of a retrieval method's validation (see the module docstring).

    Parameters
    ----------
    render_every_n_epochs: render the top retrievals of the fixed queries every n validation epochs (0 = never).
    queries: number of fixed validation captions (the first captions of evenly spaced validation items), or the
        captions themselves.
    max_points: validation items whose embeddings are collected per epoch (projection and render gallery).
    top_k: retrieved motions rendered per query.
    projection: ``pca`` or ``tsne`` (t-SNE needs scikit-learn).
    max_frames: longest rendered clip in frames (longer motions are subsampled; the video fps is reduced so that
        the clip keeps its real duration).
    strip_frames: frames per motion in the image-strip fallback.
    """

    def __init__(self, render_every_n_epochs: int = 0, queries: int | list[str] = 4, max_points: int = 500,
                 top_k: int = 3, projection: str = "pca", max_frames: int = 60, strip_frames: int = 4) -> None:
        super().__init__()
        if render_every_n_epochs < 0:
            raise ValueError(f"render_every_n_epochs must be >= 0, got {render_every_n_epochs}")
        if isinstance(queries, int) and queries < 0:
            raise ValueError(f"queries must be >= 0 or a list of captions, got {queries}")
        if max_points < 2:
            raise ValueError(f"max_points must be >= 2, got {max_points}")
        if projection not in ("pca", "tsne"):
            raise ValueError(f"projection must be 'pca' or 'tsne', got {projection!r}")
        if top_k < 1 or max_frames < 1 or strip_frames < 1:
            raise ValueError(f"top_k, max_frames and strip_frames must be >= 1, got {top_k}, {max_frames}, "
                             f"{strip_frames}")
        self.render_every_n_epochs, self.queries, self.max_points = render_every_n_epochs, queries, max_points
        self.top_k, self.projection, self.max_frames, self.strip_frames = top_k, projection, max_frames, strip_frames
        self._writer = None
        self._checked = False
        self._query_texts: list[str] | None = None
        #: (query, key ids of the rendered motions) of the last render, for inspection
        self.last_rendered: list[tuple[str, list[str]]] = []
        self._reset()

    def _reset(self) -> None:
        self._text: list[torch.Tensor] = []
        self._motion: list[torch.Tensor] = []
        self._index: list[int] = []
        self._captions: list[str] = []
        self._heat: tuple[torch.Tensor, list[str]] | None = None

    # ---- discovery -----------------------------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._checked:
            return
        self._checked = True
        from lightning.pytorch.loggers import TensorBoardLogger

        from motion_text.methods.retrieval import RetrievalMethod

        if not isinstance(pl_module, RetrievalMethod):
            log.info("RetrievalBoard: %s is not a retrieval method; nothing will be written", type(pl_module).__name__)
            return
        tb = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not tb:
            log.info("RetrievalBoard: no TensorBoard logger; nothing will be written")
            return
        self._writer = tb[0].experiment if trainer.is_global_zero else None

    def _active(self, trainer) -> bool:
        return self._writer is not None and trainer.is_global_zero and not trainer.sanity_checking

    # ---- collection ----------------------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._reset()

    @torch.no_grad()
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if not self._active(trainer) or dataloader_idx != 0:
            return
        room = self.max_points - len(self._index)
        if room <= 0:
            return
        texts = list(batch["text"])
        t = self._norm(pl_module, pl_module.encode_text(texts).float())
        m = self._norm(pl_module, pl_module.encode_motion(batch["motion"], batch["mask"]).float())
        if self._heat is None:
            self._heat = ((t @ m.T).cpu(), texts)
        self._text.append(t[:room].cpu())
        self._motion.append(m[:room].cpu())
        self._index.extend(int(i) for i in batch["index"][:room])
        self._captions.extend(texts[:room])

    @staticmethod
    def _norm(pl_module, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) if getattr(pl_module, "retrieval_normalize", True) else x

    # ---- writing -------------------------------------------------------------------------------------------------
    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._active(trainer) or not self._index:
            return
        step, epoch = trainer.global_step, trainer.current_epoch
        from motion_text.metrics.retrieval import format_table

        res = retrieval_results_from_metrics(trainer.callback_metrics)
        if res:
            self._writer.add_text("val/retrieval_table", format_table(res), step)
        self._writer.add_figure("val/similarity", self._heat_figure(), step)
        self._writer.add_figure("val/embedding_projection", self._projection_figure(), step)
        n = self.render_every_n_epochs
        if n > 0 and (epoch + 1) % n == 0:
            was = pl_module.training
            pl_module.eval()
            try:
                with torch.no_grad():
                    self._render(trainer, pl_module, step)
            finally:
                pl_module.train(was)
        self._writer.flush()

    def _heat_figure(self):
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        sims, texts = self._heat
        fig, ax = plt.subplots(figsize=(5, 4.5), dpi=80)
        im = ax.imshow(sims.numpy(), cmap="viridis")
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_xlabel("motion (batch order)")
        ax.set_ylabel("text (batch order)")
        ax.set_title("similarity of one validation batch (diagonal = pairs)", fontsize=9)
        fig.tight_layout()
        return fig

    def _projection_figure(self):
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        t, m = torch.cat(self._text).numpy(), torch.cat(self._motion).numpy()
        both = np.concatenate([t, m])
        if self.projection == "tsne":
            try:
                from sklearn.manifold import TSNE
            except ImportError:
                raise ValueError("projection='tsne' needs scikit-learn; use projection='pca'") from None
            xy = TSNE(2, perplexity=min(30.0, max(2.0, (len(both) - 1) / 3)), init="pca",
                      random_state=0).fit_transform(both)
        else:
            xy = pca_2d(both)
        words = [action_word(c) for c in self._captions]
        top = [w for w, _ in Counter(words).most_common(10)]
        cmap = plt.get_cmap("tab10")
        color = {w: cmap(i) for i, w in enumerate(top)}
        n = len(t)
        fig, ax = plt.subplots(figsize=(6, 5), dpi=80)
        for w in top + ["other"]:
            sel = np.array([(x if x in color else "other") == w for x in words])
            if not sel.any():
                continue
            c = color.get(w, (0.6, 0.6, 0.6, 1.0))
            ax.scatter(xy[:n][sel, 0], xy[:n][sel, 1], marker="^", s=14, color=c, alpha=0.8, label=w)
            ax.scatter(xy[n:][sel, 0], xy[n:][sel, 1], marker="o", s=14, color=c, alpha=0.8,
                       edgecolors="k", linewidths=0.3)
        ax.set_title(f"{self.projection.upper()} of {n} text (^) and motion (o) embeddings", fontsize=9)
        ax.legend(fontsize=7, markerscale=1.2, loc="best", title="action word", title_fontsize=7)
        fig.tight_layout()
        return fig

    def _queries_for(self, dataset) -> list[str]:
        if self._query_texts is None:
            if isinstance(self.queries, int):
                n = min(self.queries, len(dataset))
                idx = sorted(set(np.linspace(0, len(dataset) - 1, n).round().astype(int).tolist())) if n else []
                self._query_texts = [dataset.item(i).captions[0] for i in idx]
            else:
                self._query_texts = [str(q) for q in self.queries]
        return self._query_texts

    def _render(self, trainer, pl_module, step: int) -> None:
        from motion_text.tools.retrieve import item_joints

        dm = getattr(trainer, "datamodule", None)
        dataset = getattr(dm, "datasets", {}).get("val") if dm is not None else None
        if dataset is None:
            log.info("RetrievalBoard: no validation dataset to render from")
            return
        queries = self._queries_for(dataset)
        if not queries:
            return
        q = self._norm(pl_module, pl_module.encode_text(queries).float()).cpu()
        gallery = torch.cat(self._motion)
        scores = q @ gallery.T
        k = min(self.top_k, gallery.shape[0])
        top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        video = _has_moviepy()
        lines = ["| query | rank | key | score | caption |", "|---|---|---|---|---|"]
        self.last_rendered = []
        for qi, (text, row) in enumerate(zip(queries, top.tolist())):
            motions = []
            for r, j in enumerate(row):
                item = dataset.item(self._index[j])
                score = float(scores[qi, j])
                motions.append((*item_joints(dataset, self._index[j]), f"#{r + 1} {item.key} ({score:.2f})"))
                lines.append(f"| {text} | {r + 1} | {item.key} | {score:.3f} | {item.captions[0]} |")
            self.last_rendered.append((text, [dataset.item(self._index[j]).key for j in row]))
            tag = f"val/top{k}_query{qi}"
            if video:
                # one temporal stride for the query's clips: <= max_frames frames, played at fps / stride (real time)
                stride = max(1, -(-max(len(jn) for jn, _, _ in motions) // self.max_frames))
                clips = [render_frames(jn, sk.chains, range(0, len(jn), stride), title=tt) for jn, sk, tt in motions]
                t_max = max(len(c) for c in clips)
                padded = [np.concatenate([c, np.repeat(c[-1:], t_max - len(c), 0)]) for c in clips]
                vid = torch.from_numpy(np.stack(padded)).permute(0, 1, 4, 2, 3)  # (N, T, C, H, W) uint8
                self._writer.add_video(tag, vid, step, fps=motions[0][1].fps / stride)
            else:
                clips = [render_frames(jn, sk.chains, np.linspace(0, len(jn) - 1, min(self.strip_frames, len(jn)))
                                       .round().astype(int), title=tt) for jn, sk, tt in motions]
                width = max(c.shape[0] for c in clips)
                rows = [np.concatenate(list(c) + [np.full_like(c[0], 255)] * (width - len(c)), axis=1) for c in clips]
                self._writer.add_image(tag, np.concatenate(rows, axis=0), step, dataformats="HWC")
        self._writer.add_text("val/top_retrievals", "\n".join(lines), step)
