"""Text<->motion retrieval metrics with the protocols of TMR (Mathux/TMR ``retrieval.py``, ``src/model/metrics.py``)
and of DropTriple (rehamot ``evaluation.py``).

Functional core on similarity matrices (float64) plus :class:`RetrievalMetric`, a torchmetrics ``Metric`` whose
states are concatenated across processes. torchmetrics' own Retrieval* metrics ignore scores <= 0, which cosine
similarities have, hence these.

Conventions (TMR): ranks are 0-based positions of the correct item in the row sorted by decreasing similarity;
R@k = 100 * mean(rank < k); MedR = median(rank) + 1; ties averaged by default (``optimistic``: best tied position;
``order``: position in a stable argsort, as rehamot).
"""

from __future__ import annotations

import hashlib
import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

__all__ = ["retrieval_ranks", "rank_metrics", "protocol_all", "protocol_threshold", "protocol_subset",
           "protocol_small_batches", "protocol_all_captions", "protocol_motion_patches", "caption_keys", "RetrievalMetric", "format_table", "rich_table",
           "PROTOCOLS"]

log = logging.getLogger(__name__)

PROTOCOLS = ("all", "threshold", "nsim", "guo", "all_captions", "motion_patches")
KS = (1, 2, 3, 5, 10)


def _ranks(s: torch.Tensor, gt: torch.Tensor, gt_col: torch.Tensor, ties: str) -> torch.Tensor:
    """Ranks of the correct similarities ``gt`` (..., N) at columns ``gt_col`` in the rows of ``s`` (..., N, M).

    Counts instead of sorts: ``rank = #{j: s_j > gt}`` plus the tie term, one comparison pass over the matrix each.
    On the CPU the passes run in numpy, whose boolean counting is several times faster than a torch bool sum.
    """
    if s.device.type == "cpu":
        s_, g_, c_ = s.numpy(), gt.unsqueeze(-1).numpy(), gt_col.unsqueeze(-1).numpy()
        cols = np.arange(s.shape[-1])

        def count(m):
            return torch.from_numpy(np.count_nonzero(m, axis=-1).astype(np.int64))
    else:
        s_, g_, c_ = s, gt.unsqueeze(-1), gt_col.unsqueeze(-1)
        cols = torch.arange(s.shape[-1], device=s.device)

        def count(m):
            return m.sum(-1)
    less = count(s_ > g_)
    if ties == "optimistic":
        return less.double()
    equal = s_ == g_
    if ties == "average":
        return less.double() + (count(equal).double() - 1) / 2
    return (less + count(equal & (cols < c_))).double()


def _nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the True entries of a 2-D bool tensor, row-major (numpy's is faster on the CPU)."""
    if mask.device.type == "cpu":
        return tuple(torch.from_numpy(i) for i in np.nonzero(mask.numpy()))
    return torch.nonzero(mask, as_tuple=True)


def _masked_row_max(s: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max of each row of ``s`` over its True columns and the first column reaching it (-inf where none).

    A sparse mask (near-duplicate captions: a few entries per row) is read through its nonzero entries instead of a
    masked copy of the whole matrix.
    """
    n, m = s.shape
    if int(mask.sum()) > 0.05 * n * m:  # dense: one masked pass, no index lists
        return s.masked_fill(~mask, -math.inf).max(dim=1)
    rows, cols = _nonzero(mask)
    vals = s[rows, cols]
    gt = torch.full((n,), -math.inf, dtype=s.dtype, device=s.device).scatter_reduce(0, rows, vals, "amax")
    best = vals == gt[rows]
    first = torch.full((n,), m, dtype=torch.long, device=s.device)
    return gt, first.scatter_reduce(0, rows[best], cols[best], "amin")


def retrieval_ranks(sims: torch.Tensor, gt_mask: torch.Tensor | None = None, ties: str = "average") -> torch.Tensor:
    """0-based rank of the correct item in each row of ``sims`` (N, M).

    Without ``gt_mask`` the correct item of row i is column i. With ``gt_mask`` (N, M) bool, the correct distance of a
    row is the smallest distance over its True columns (TMR's threshold protocol: near-duplicate captions count).
    Also accepts a stack of matrices (..., N, M) without ``gt_mask``.
    """
    if ties not in ("average", "optimistic", "order"):
        raise ValueError(f"ties must be 'average', 'optimistic' or 'order', got {ties!r}")
    # Comparisons are exact in any floating dtype, so no up-cast (it would double the memory traffic); row-wise passes
    # over a transposed view would be strided, so the matrix is laid out row-major first.
    s = (sims if sims.dtype in (torch.float32, torch.float64) else sims.double()).contiguous()
    n = s.shape[-2]
    if gt_mask is None:
        if s.shape[-2] > s.shape[-1]:
            raise ValueError(f"without gt_mask the matrix must have at least as many columns as rows, got {s.shape}")
        gt_col = torch.arange(n, device=s.device)
        gt = s.diagonal(dim1=-2, dim2=-1)
    else:
        if gt_mask.shape != s.shape:
            raise ValueError(f"gt_mask shape {tuple(gt_mask.shape)} differs from sims {tuple(s.shape)}")
        # largest similarity = smallest distance over the correct columns (first such column on ties)
        gt, gt_col = _masked_row_max(s, gt_mask.bool())
        if torch.isinf(gt).any():
            raise ValueError("every row of gt_mask needs at least one True column")
    return _ranks(s, gt, gt_col, ties)


def _rank_metrics(r: np.ndarray, ks=KS, medr: str = "tmr") -> dict[str, np.ndarray]:
    """:func:`rank_metrics` of each row of ``r`` (..., N) -> arrays of shape (...)."""
    out = {f"R{k:02d}": 100.0 * (r < k).mean(-1) for k in ks}
    med = np.median(r, axis=-1)
    out["MedR"] = (np.floor(med) if medr == "floor" else med) + 1.0
    out["MeanR"] = r.mean(-1) + 1.0
    return out


def rank_metrics(ranks: torch.Tensor, ks=KS, medr: str = "tmr") -> dict[str, float]:
    """R@k, MedR (``tmr``: median + 1; ``floor``: floor(median) + 1) and MeanR (mean + 1) of 0-based ranks."""
    return {k: float(v) for k, v in _rank_metrics(ranks.double().cpu().numpy(), ks, medr).items()}


def _both(sims: torch.Tensor, gt_mask: torch.Tensor | None = None, ties: str = "average") -> dict[str, dict]:
    return {"t2m": rank_metrics(retrieval_ranks(sims, gt_mask, ties)),
            "m2t": rank_metrics(retrieval_ranks(sims.T, None if gt_mask is None else gt_mask.T, ties))}


def protocol_all(sims: torch.Tensor, ties: str = "average") -> dict[str, dict]:
    """(a) the whole gallery; ``sims[i, j]`` = similarity of text i and motion j, correct pairs on the diagonal."""
    return _both(sims, None, ties)


def protocol_threshold(sims: torch.Tensor, sent_emb: torch.Tensor, threshold: float = 0.95,
                       ties: str = "average", exact_cosine: bool = False) -> dict[str, dict]:
    """(b) a column also counts as correct when its caption's sentence similarity to the row's caption exceeds
    ``threshold`` on the (cos + 1) / 2 scale (cosine > 2 threshold - 1); the diagonal always counts.

    The comparison follows TMR (Mathux/TMR ``src/model/metrics.py::contrastive_metrics``, called from
    ``retrieval.py`` with ``threshold=0.95``): ``text_selfsim = emb @ emb.T`` of the float32 unit sentence
    embeddings, in float32, against ``2 * threshold - 1`` cast to float32 (numpy compares a float32 array with a
    Python float in float32), so a pair whose float32 similarity is exactly float32(0.9) does not count, and one at
    the next float32 (0.90000004) does, whatever its float64 cosine. Embeddings whose rows are not unit vectors (to
    1e-4) are L2-normalised first, in float32. ``exact_cosine=True`` instead compares the float64 cosines of the
    normalised embeddings with ``2 * threshold - 1`` in float64.
    """
    if exact_cosine:
        gt = _cosine_above(F.normalize(sent_emb.double(), dim=-1), 2 * threshold - 1)
    else:
        gt = _tmr_selfsim_above(sent_emb, threshold)
    gt.fill_diagonal_(True)
    return _both(sims, gt, ties)


def _tmr_selfsim_above(sent_emb: torch.Tensor, threshold: float) -> torch.Tensor:
    """TMR's ``text_selfsim > 2 * threshold - 1`` with ``text_selfsim = emb @ emb.T`` in float32 (see above)."""
    e = sent_emb.float()
    if ((e.norm(dim=-1) - 1).abs() > 1e-4).any():
        e = F.normalize(e, dim=-1)
    return (e @ e.T) > torch.tensor(2 * threshold - 1, dtype=torch.float32, device=e.device)


def _cosine_above(e: torch.Tensor, cut: float) -> torch.Tensor:
    """``(e @ e.T) > cut`` for unit rows ``e`` (N, d) in float64, at the cost of a float32 product.

    The float32 cosines are within ``2 (d + 2) eps_32`` of the float64 ones (the forward error bound of a dot product
    of unit vectors, inputs rounded included), so only the entries that close to ``cut`` are recomputed in float64.
    """
    c = e.float() @ e.float().T
    gt = c > cut
    i, j = _nonzero((c - cut).abs() <= 2 * (e.shape[1] + 2) * torch.finfo(torch.float32).eps)
    gt[i, j] = (e[i] * e[j]).sum(-1) > cut
    return gt


def protocol_subset(sims: torch.Tensor, subset: torch.Tensor, ties: str = "average") -> dict[str, dict]:
    """(c) restricted to the items of ``subset`` (bool (N,)), e.g. TMR's dissimilar ``nsim_test`` ids."""
    idx = torch.nonzero(subset.bool(), as_tuple=True)[0]
    return _both(sims[idx[:, None], idx[None, :]], None, ties)


def protocol_small_batches(sims: torch.Tensor, batch_size: int = 32, seed: int = 0,
                           ties: str = "average") -> dict[str, dict]:
    """(d) Guo et al.'s protocol as TMR runs it: items in sorted key-id order are shuffled with
    ``np.random.seed(seed); np.random.shuffle(keyids)``, cut into batches of ``batch_size`` (remainder dropped), and
    the metrics of the batch_size x batch_size sub-matrices are averaged."""
    n = sims.shape[0]
    perm = np.random.RandomState(seed).permutation(n)
    n_batches = n // batch_size
    if n_batches == 0:
        raise ValueError(f"protocol (d) needs at least {batch_size} items, got {n}")
    idx = torch.as_tensor(perm[: n_batches * batch_size], device=sims.device).view(n_batches, batch_size)
    blocks = sims[idx[:, :, None], idx[:, None, :]]  # (n_batches, bs, bs), all batches at once
    per_batch = {d: _rank_metrics(retrieval_ranks(b, ties=ties).cpu().numpy())
                 for d, b in (("t2m", blocks), ("m2t", blocks.transpose(-2, -1)))}
    acc: dict[str, dict[str, float]] = {}
    for b in range(n_batches):  # the mean of the per-batch metrics, summed in batch order
        for direction, metrics in per_batch.items():
            for k, v in metrics.items():
                acc.setdefault(direction, {}).setdefault(k, 0.0)
                acc[direction][k] += float(v[b]) / n_batches
    return acc


def protocol_all_captions(text_emb: torch.Tensor, motion_emb: torch.Tensor, caption_to_motion: torch.Tensor,
                          normalize: bool = True) -> dict[str, dict]:
    """DropTriple's protocol (rehamot ``evaluation.py``): every caption is kept.

    t2m: each caption ranks the unique motions; m2t: each motion ranks all captions and its rank is the best rank of
    any of its own captions. Ties by argsort order; MedR = floor(median) + 1; ``rsum`` = R@1 + R@5 + R@10 of both.
    """
    t, m = text_emb.double(), motion_emb.double()
    if normalize:
        t, m = F.normalize(t, dim=-1), F.normalize(m, dim=-1)
    sims = t @ m.T  # (C, M)
    owner = caption_to_motion.long()
    t2m_ranks = retrieval_ranks(sims, F.one_hot(owner, m.shape[0]).bool(), ties="order")
    d = -sims.T  # (M, C)
    order = torch.argsort(d, dim=1, stable=True)
    pos = torch.empty_like(order)
    pos.scatter_(1, order, torch.arange(d.shape[1], device=d.device).expand_as(order))
    own = owner[None, :] == torch.arange(m.shape[0], device=d.device)[:, None]
    m2t_ranks = pos.double().masked_fill(~own, math.inf).min(dim=1).values
    ks = (1, 5, 10)
    out = {"t2m": rank_metrics(t2m_ranks, ks, medr="floor"), "m2t": rank_metrics(m2t_ranks, ks, medr="floor")}
    out["t2m"]["rsum"] = out["m2t"]["rsum"] = sum(out[d][f"R{k:02d}"] for d in ("t2m", "m2t") for k in ks)
    return out


def caption_keys(texts) -> torch.Tensor:
    """(B,) int64 identity of each caption string (8 bytes of blake2b), for protocols that match captions exactly."""
    return torch.tensor([int.from_bytes(hashlib.blake2b(str(t).encode(), digest_size=8).digest(), "little", signed=True)
                         for t in texts], dtype=torch.long)


def protocol_motion_patches(sims: torch.Tensor, caption_key: torch.Tensor, ties: str = "average") -> dict[str, dict]:
    """The retrieval protocol of Motion Patches (Yu et al., CVPR 2024; line/MotionPatches ``scripts/test.py``,
    ``eval``), which the lexical paper's Tables 1-2 follow: one item per test motion with its first caption (motion
    cropped from its start), the whole test set as gallery, and every item whose caption is the same string as the
    query's counts as correct (in both directions): the rank of a query is the best rank of those items. R@1, 2, 3,
    5, 10 and MedR = median(rank) + 1 (their scores are 100 x cosine: same ranking). Ties: ``ties`` (their
    ``np.argsort(score)[::-1]`` orders tied scores arbitrarily).
    """
    key = caption_key.to(sims.device)
    same = key[:, None] == key[None, :]
    return _both(sims, same, ties)


class RetrievalMetric(Metric):
    """Accumulates text / motion embeddings and computes the configured protocols.

    ``update(text_emb, motion_emb, index, sent_emb=None, in_subset=None, caption_emb=None, caption_owner=None)``:
    ``index`` is the dataset index of each item (evaluation datasets are ordered by key id, so index order = sorted
    key ids). Duplicated indices (``DistributedSampler``-style padding) are counted once. ``caption_emb`` /
    ``caption_owner`` (all captions of the batch's items and the index of their item) feed ``all_captions``;
    ``caption_key`` (:func:`caption_keys` of the item captions) feeds ``motion_patches``.
    ``compute()`` returns a flat dict ``{"<protocol>/<t2m|m2t>/<R01|...|MedR|MeanR>": value}``; protocols whose
    inputs are missing are skipped with one logged note.
    """

    full_state_update = False

    def __init__(self, protocols=("all", "threshold", "nsim", "guo"), threshold: float = 0.95,
                 guo_batch_size: int = 32, seed: int = 0, ties: str = "average", normalize: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        bad = set(protocols) - set(PROTOCOLS)
        if bad:
            raise ValueError(f"unknown protocols {sorted(bad)}; known: {list(PROTOCOLS)}")
        self.protocols = tuple(protocols)
        self.threshold, self.guo_batch_size, self.seed = threshold, guo_batch_size, seed
        self.ties, self.normalize = ties, normalize
        for name in ("text", "motion", "index", "sent", "subset", "cap", "cap_owner", "cap_key"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self._noted: set[str] = set()

    def update(self, text_emb: torch.Tensor, motion_emb: torch.Tensor, index: torch.Tensor,
               sent_emb: torch.Tensor | None = None, in_subset: torch.Tensor | None = None,
               caption_emb: torch.Tensor | None = None, caption_owner: torch.Tensor | None = None,
               caption_key: torch.Tensor | None = None) -> None:
        if text_emb.shape[0] != motion_emb.shape[0] or text_emb.shape[0] != index.shape[0]:
            raise ValueError(f"batch sizes differ: text {text_emb.shape[0]}, motion {motion_emb.shape[0]}, "
                             f"index {index.shape[0]}")
        self.text.append(text_emb.detach().float())
        self.motion.append(motion_emb.detach().float())
        self.index.append(index.detach().long())
        if sent_emb is not None:
            self.sent.append(sent_emb.detach().float())
        if in_subset is not None:
            self.subset.append(in_subset.detach().bool())
        if caption_key is not None:
            self.cap_key.append(caption_key.detach().long())
        if caption_emb is not None and caption_owner is not None:
            self.cap.append(caption_emb.detach().float())
            self.cap_owner.append(caption_owner.detach().long())

    @staticmethod
    def _cat(x) -> torch.Tensor | None:
        if isinstance(x, torch.Tensor):
            return x
        return torch.cat(x) if len(x) else None

    def _note(self, msg: str) -> None:
        if msg not in self._noted:
            self._noted.add(msg)
            log.info(msg)

    def compute(self) -> dict[str, torch.Tensor]:
        index = self._cat(self.index)
        if index is None:
            raise ValueError("RetrievalMetric.compute() called before any update")
        # keep the first occurrence of each index, then sort by index
        uniq, inverse = torch.unique(index, return_inverse=True)
        first = torch.full((len(uniq),), len(index), dtype=torch.long, device=index.device)
        first.scatter_reduce_(0, inverse, torch.arange(len(index), device=index.device), reduce="amin")
        keep = first  # positions of the unique indices, in sorted index order
        text, motion = self._cat(self.text)[keep].double(), self._cat(self.motion)[keep].double()
        if self.normalize:
            text, motion = F.normalize(text, dim=-1), F.normalize(motion, dim=-1)
        sims = text @ motion.T
        sent, subset = self._cat(self.sent), self._cat(self.subset)
        results: dict[str, dict] = {}
        for p in self.protocols:
            if p == "all":
                results[p] = protocol_all(sims, self.ties)
            elif p == "threshold":
                if sent is None or len(sent) != len(index):
                    self._note("protocol (b) threshold skipped: no sentence embeddings were given")
                    continue
                results[p] = protocol_threshold(sims, sent[keep], self.threshold, self.ties)
            elif p == "nsim":
                if subset is None or len(subset) != len(index) or not subset[keep].any():
                    self._note("protocol (c) nsim skipped: no item of the nsim_test list is in the gallery")
                    continue
                results[p] = protocol_subset(sims, subset[keep], self.ties)
            elif p == "guo":
                if len(uniq) < self.guo_batch_size:
                    self._note(f"protocol (d) skipped: {len(uniq)} items < batch size {self.guo_batch_size}")
                    continue
                results[p] = protocol_small_batches(sims, self.guo_batch_size, self.seed, self.ties)
            elif p == "all_captions":
                cap, owner = self._cat(self.cap), self._cat(self.cap_owner)
                if cap is None:
                    self._note("protocol all_captions skipped: no caption embeddings were given")
                    continue
                results[p] = self._all_captions(cap, owner, uniq, motion)
            elif p == "motion_patches":
                key = self._cat(self.cap_key)
                if key is None or len(key) != len(index):
                    self._note("protocol motion_patches skipped: no caption keys were given")
                    continue
                results[p] = protocol_motion_patches(sims, key[keep], self.ties)
        return {f"{p}/{d}/{k}": torch.tensor(v, dtype=torch.float64)
                for p, res in results.items() for d, ms in res.items() for k, v in ms.items()}

    def _all_captions(self, cap: torch.Tensor, owner: torch.Tensor, uniq: torch.Tensor, motion: torch.Tensor):
        # captions come in one block per item; blocks of items seen again (padding) are dropped
        keep, closed, current, dup = [], set(), None, False
        for i, o in enumerate(owner.tolist()):
            if o != current:
                if current is not None:
                    closed.add(current)
                current, dup = o, o in closed
            if not dup:
                keep.append(i)
        pos = torch.searchsorted(uniq, owner)
        keep_t = torch.as_tensor(keep, device=cap.device)
        return protocol_all_captions(cap[keep_t], motion, pos[keep_t], normalize=self.normalize)


def _rows(results: dict) -> list[tuple[str, str, dict[str, float]]]:
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in results.items():
        p, d, k = key.split("/")
        rows.setdefault((p, d), {})[k] = float(value)
    return [(p, d, ms) for (p, d), ms in rows.items()]


_COLUMNS = ("R01", "R02", "R03", "R05", "R10", "MedR")


def format_table(results: dict) -> str:
    """Markdown table: one row per protocol and direction; columns R@1 R@2 R@3 R@5 R@10 MedR."""
    head = "| protocol | dir | R@1 | R@2 | R@3 | R@5 | R@10 | MedR |\n|---|---|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {p} | {d} | " + " | ".join(f"{ms[c]:.2f}" if c in ms else "-" for c in _COLUMNS) + " |\n"
        for p, d, ms in _rows(results))
    return head + body


def rich_table(results: dict):
    """The same table as a ``rich.table.Table`` (printed by the test loop)."""
    from rich.table import Table

    table = Table(title="text-motion retrieval")
    for c in ("protocol", "dir", "R@1", "R@2", "R@3", "R@5", "R@10", "MedR"):
        table.add_column(c, justify="right" if c.startswith(("R", "M")) else "left")
    for p, d, ms in _rows(results):
        table.add_row(p, d, *(f"{ms[c]:.2f}" if c in ms else "-" for c in _COLUMNS))
    return table
