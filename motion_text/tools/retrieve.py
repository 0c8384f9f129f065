"""``motion-text retrieve``: search the motions of a split for a caption, or its captions for a motion.

The method is restored with ``<Class>.load_from_checkpoint(ckpt, weights_only=True)``, its class named by the
checkpoint's ``hyper_parameters["_class_path"]`` (checked against the project's method modules before it is imported,
then required to be a :class:`~motion_text.methods.retrieval.RetrievalMethod`; nothing is unpickled). The gallery is the split of the
:class:`~motion_text.data.datamodule.MotionTextDataModule` described by a data config, encoded exactly as the
evaluation loop does (normalised features, first ``max_len`` frames); its embeddings are cached next to the
checkpoint in ``<ckpt stem>.gallery-<split>-<hash>.pt``, the hash covering the checkpoint file (path, size, mtime),
the dataset roots and the split options. Scores are the method's retrieval score: cosine similarity when
``retrieval_normalize`` is set (TMR, DropTriple, MoT++), the raw dot product otherwise (lexical vectors).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from motion_text.tools import check_counts, user_errors
from motion_text.tools.common import (  # noqa: F401 (re-exported: the tools' shared loaders)
    Advance,
    checkpoint_class,
    load_datamodule,
    load_method,
    progress_bar,
    split_dataset,
)

__all__ = ["load_method", "checkpoint_class", "load_datamodule", "split_dataset", "encode_motions", "encode_arrays",
           "encode_texts", "rank", "Hit", "Gallery", "build_gallery", "gallery_cache_path",
           "gallery_fingerprint", "load_feature_file", "search_motions",
           "search_captions", "resolve_motion_query", "item_joints", "skeleton_for", "render_hits", "run"]

log = logging.getLogger(__name__)

_CACHE_VERSION = 1


# ---- encoding --------------------------------------------------------------------------------------------------------
def _finish(method, emb: torch.Tensor) -> torch.Tensor:
    emb = emb.float().cpu()
    return F.normalize(emb, dim=-1) if getattr(method, "retrieval_normalize", True) else emb


@torch.no_grad()
def encode_motions(method, dataset, batch_size: int = 64, num_workers: int = 0,
                   advance: Advance | None = None) -> torch.Tensor:
    """Motion embeddings (N, D) of every item of an evaluation dataset, in dataset order (L2-normalised for cosine
    methods)."""
    from torch.utils.data import DataLoader

    from motion_text.data.dataset import collate_motion_text

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_motion_text)
    out = []
    for batch in loader:
        out.append(method.encode_motion(batch["motion"].to(method.device), batch["mask"].to(method.device)).float())
        if advance:
            advance(len(batch["key"]))
    return _finish(method, torch.cat(out))


@torch.no_grad()
def encode_arrays(method, motions: Sequence[np.ndarray | torch.Tensor], batch_size: int = 64,
                  advance: Advance | None = None) -> torch.Tensor:
    """Motion embeddings (N, D) of normalised feature arrays (T_i, nfeats) of any lengths (padded and masked)."""
    out = []
    for lo in range(0, len(motions), batch_size):
        chunk = [torch.as_tensor(np.asarray(m), dtype=torch.float32) for m in motions[lo : lo + batch_size]]
        lengths = torch.tensor([len(m) for m in chunk])
        x = torch.zeros(len(chunk), int(lengths.max()), chunk[0].shape[-1])
        for i, m in enumerate(chunk):
            x[i, : len(m)] = m
        mask = torch.arange(x.shape[1])[None] < lengths[:, None]
        out.append(method.encode_motion(x.to(method.device), mask.to(method.device)).float())
        if advance:
            advance(len(chunk))
    return _finish(method, torch.cat(out))


@torch.no_grad()
def encode_texts(method, texts: Sequence[str], batch_size: int = 64, advance: Advance | None = None) -> torch.Tensor:
    """Text embeddings (N, D) of captions (L2-normalised for cosine methods)."""
    out = []
    for lo in range(0, len(texts), batch_size):
        chunk = list(texts[lo : lo + batch_size])
        out.append(method.encode_text(chunk).float())
        if advance:
            advance(len(chunk))
    return _finish(method, torch.cat(out))


# ---- ranking ---------------------------------------------------------------------------------------------------------
def rank(query: torch.Tensor, gallery: torch.Tensor, k: int, normalize: bool = True
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` gallery rows of each query by decreasing score.

    Parameters
    ----------
    query: (Q, D) embeddings; gallery: (N, D) embeddings.
    k: results per query (clipped to N).
    normalize: cosine similarity (True; TMR, DropTriple, MoT++ retrieve by cosine) or the raw dot product.

    Returns
    -------
    scores (Q, k) float64 and gallery indices (Q, k); ties keep gallery order (stable sort).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"expected query (Q, D) and gallery (N, D), got {tuple(query.shape)} and "
                         f"{tuple(gallery.shape)}")
    q, g = query.double(), gallery.double()
    if normalize:
        q, g = F.normalize(q, dim=-1), F.normalize(g, dim=-1)
    scores = q @ g.T  # (Q, N)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, : min(k, g.shape[0])]
    return scores.gather(1, order), order


@dataclass
class Hit:
    """One result: 1-based rank, the gallery item's key id, the score, the caption shown (the ranked caption for
    motion-to-text, the item's first caption for text-to-motion), all captions of the item and the rendered file."""

    rank: int
    key: str
    score: float
    caption: str
    captions: list[str] = field(default_factory=list)
    render: str | None = None


@dataclass
class Gallery:
    """Embeddings of one split: motions (N, D) in dataset order and/or every caption (C, D) with its item index."""

    keys: list[str]
    captions: list[list[str]]
    motion_emb: torch.Tensor | None = None
    caption_emb: torch.Tensor | None = None
    caption_owner: torch.Tensor | None = None

    def flat_captions(self) -> tuple[list[str], torch.Tensor]:
        flat = [c for caps in self.captions for c in caps]
        owner = torch.repeat_interleave(torch.arange(len(self.captions)),
                                        torch.tensor([len(c) for c in self.captions]))
        return flat, owner


def gallery_cache_path(ckpt: str | Path, dm, split: str) -> Path:
    """``<ckpt dir>/<ckpt stem>.gallery-<split>-<hash>.pt``; the hash covers the checkpoint file (resolved path, size,
    mtime) and what decides the gallery: dataset roots / layouts, the split, crop length and filters."""
    ckpt = Path(ckpt).expanduser().resolve()
    st = ckpt.stat()
    ident = {
        "ckpt": [str(ckpt), st.st_size, st.st_mtime_ns],
        "data": [[str(s.resolved_root().expanduser().resolve()), s.name, s.layout, s.exclude_test] for s in dm.specs],
        "split": split, "max_len": dm.max_len, "min_len": dm.min_len, "max_len_filter": dm.max_len_filter,
        "mirrors": dm.include_mirrors_in_test,
    }
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    safe_split = re.sub(r"[^\w.-]", "_", split)
    return ckpt.with_name(f"{ckpt.stem}.gallery-{safe_split}-{digest}.pt")


def gallery_fingerprint(ckpt: str | Path, dataset) -> str:
    """Hash of what the cached embeddings were computed from: the checkpoint file (size, mtime), every motion file
    of the split (path, size, mtime, frame range; also its joints file), the captions and the Mean/Std values.

    Stored in the cache and compared when it is read, so motion files rewritten in place (same names, new content)
    or new statistics re-encode the gallery instead of serving the old rankings.
    """
    h = hashlib.sha1()
    st = Path(ckpt).expanduser().stat()
    h.update(f"ckpt {st.st_size} {st.st_mtime_ns}\n".encode())
    stats: dict[Path, tuple[int, int]] = {}

    def stat(p: Path | None) -> tuple[int, int]:
        if p is None:
            return (-1, -1)
        if p not in stats:
            try:
                s = Path(p).stat()
                stats[p] = (s.st_size, s.st_mtime_ns)
            except OSError:
                stats[p] = (-1, -1)
        return stats[p]

    for si, src in enumerate(dataset.sources):
        h.update(f"source {si} {src.name}\n".encode())
        h.update(np.ascontiguousarray(src.mean, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(src.std, dtype=np.float64).tobytes())
    for si, ii, *_ in dataset.entries:
        item = dataset.sources[si].items[ii]
        h.update(json.dumps([item.key, str(item.path), stat(item.path), item.start, item.end,
                             str(item.joints_path), stat(item.joints_path), list(item.captions)]).encode())
    return h.hexdigest()


def _read_cache(path: Path | None, keys: list[str], fingerprint: str | None = None) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: recompute
        log.warning("ignoring unreadable gallery cache %s (%s)", path, e)
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or data.get("keys") != keys:
        log.info("gallery cache %s does not match the split; recomputing", path)
        return {}
    if fingerprint is not None and data.get("fingerprint") != fingerprint:
        log.info("gallery cache %s: the checkpoint or the split's files changed; recomputing", path)
        return {}
    return data


def _write_cache(path: Path | None, data: dict) -> None:
    if path is None:
        return
    try:
        tmp = path.with_suffix(".tmp")
        torch.save(data, tmp)
        tmp.replace(path)
    except OSError as e:
        log.warning("could not write the gallery cache %s (%s)", path, e)


def build_gallery(method, dataset, motions: bool = True, captions: bool = False, cache: Path | None = None,
                  batch_size: int = 64, num_workers: int = 0, quiet: bool = False,
                  fingerprint: str | None = None) -> Gallery:
    """Encode (or read from ``cache``) the motions and/or all captions of an evaluation dataset; a cache whose
    ``fingerprint`` (:func:`gallery_fingerprint`) differs is recomputed."""
    keys = [dataset.item(i).key for i in range(len(dataset))]
    caps = [list(dataset.item(i).captions) for i in range(len(dataset))]
    gallery = Gallery(keys, caps)
    data = _read_cache(cache, keys, fingerprint)
    dirty = False
    if motions:
        if "motion_emb" not in data:
            with progress_bar("encoding gallery motions", len(dataset), quiet) as adv:
                data["motion_emb"] = encode_motions(method, dataset, batch_size, num_workers, adv)
            dirty = True
        gallery.motion_emb = data["motion_emb"]
    if captions:
        flat, owner = gallery.flat_captions()
        if "caption_emb" not in data or data.get("captions") != flat:
            with progress_bar("encoding gallery captions", len(flat), quiet) as adv:
                data["caption_emb"] = encode_texts(method, flat, batch_size, adv)
            data["captions"] = flat
            dirty = True
        gallery.caption_emb, gallery.caption_owner = data["caption_emb"], owner
    if dirty:
        data.update(version=_CACHE_VERSION, keys=keys, fingerprint=fingerprint)
        _write_cache(cache, data)
    return gallery


def search_motions(method, gallery: Gallery, queries: Sequence[str], k: int) -> list[list[Hit]]:
    """Text-to-motion: the top-``k`` motions of the gallery for each caption."""
    if gallery.motion_emb is None:
        raise ValueError("the gallery has no motion embeddings (build_gallery(..., motions=True))")
    q = encode_texts(method, list(queries))
    scores, idx = rank(q, gallery.motion_emb, k, normalize=getattr(method, "retrieval_normalize", True))
    return [[Hit(r + 1, gallery.keys[j], float(s), gallery.captions[j][0], gallery.captions[j])
             for r, (s, j) in enumerate(zip(srow.tolist(), irow.tolist()))] for srow, irow in zip(scores, idx)]


def search_captions(method, gallery: Gallery, motion_emb: torch.Tensor, k: int) -> list[list[Hit]]:
    """Motion-to-text: the top-``k`` captions of the gallery (every caption of every item) for each motion (Q, D)."""
    if gallery.caption_emb is None:
        raise ValueError("the gallery has no caption embeddings (build_gallery(..., captions=True))")
    flat, owner = gallery.flat_captions()
    scores, idx = rank(motion_emb, gallery.caption_emb, k, normalize=getattr(method, "retrieval_normalize", True))
    hits = []
    for srow, irow in zip(scores, idx):
        row = []
        for r, (s, c) in enumerate(zip(srow.tolist(), irow.tolist())):
            o = int(owner[c])
            row.append(Hit(r + 1, gallery.keys[o], float(s), flat[c], gallery.captions[o]))
        hits.append(row)
    return hits


# ---- motions: queries and renders ------------------------------------------------------------------------------------
def skeleton_for(num_joints: int):
    """The registered skeleton with ``num_joints`` joints (22: HumanML3D / TMR layout, 21: KIT-ML)."""
    from motion_text.data.skeleton import SKELETONS

    for skel in SKELETONS.values():
        if skel.num_joints == num_joints:
            return skel
    raise ValueError(f"no skeleton with {num_joints} joints; known: "
                     f"{ {s.name: s.num_joints for s in SKELETONS.values()} }")


def item_joints(dataset, index: int, max_frames: int | None = None):
    """Joint positions (T, J, 3) of a dataset item (``new_joints/`` when the layout ships them, else
    ``recover_from_ric`` of the unnormalised features) and its skeleton. The whole item unless ``max_frames``."""
    from motion_text.data.features import recover_from_ric

    si, ii, _ = dataset.entries[index]
    src = dataset.sources[si]
    item = src.items[ii]
    end = item.end if max_frames is None else min(item.end, item.start + max_frames)
    if item.joints_path is not None:
        joints = np.array(np.load(item.joints_path, mmap_mode="r", allow_pickle=False)[item.start : end])
    else:
        raw = np.array(np.load(item.path, mmap_mode="r", allow_pickle=False)[item.start : end], dtype=np.float64)
        joints = recover_from_ric(torch.from_numpy(raw), src.num_joints).numpy()
    return joints.astype(np.float32), skeleton_for(src.num_joints)


def load_feature_file(path: str | Path, nfeats: int) -> np.ndarray:
    """Unnormalised features (T, nfeats), T >= 2, from a ``.npy`` file (leading singleton axes are dropped); any
    problem (not a numpy file, pickled objects, wrong shape or dtype, fewer than 2 frames, NaN) is a ``ValueError``
    naming the file. The data readers skip motions of fewer than 2 frames (``fewer than 2 frames``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: motion file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - truncated, random bytes, pickled objects: one message naming the file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path}: not a readable .npy motion file ({type(e).__name__}: {first[:160]})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise ValueError(f"{path}: expected a .npy array, found a .npz archive")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{path}: expected numeric features, found dtype {arr.dtype}")
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[1] != nfeats or len(arr) == 0:
        raise ValueError(f"{path}: expected unnormalised features of shape (T, {nfeats}), got {arr.shape}")
    if len(arr) < 2:
        raise ValueError(f"{path}: {len(arr)} frame; a motion needs at least 2 frames (the data readers skip such "
                         "motions as 'fewer than 2 frames')")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: features contain NaN or Inf")
    return arr.astype(np.float32)


def resolve_motion_query(spec: str, dataset, nfeats: int, max_len: int | None):
    """A ``--motion`` argument: a ``.npy`` file of unnormalised features or a key / motion id of the split.

    Returns (label, normalised features (T, nfeats) tensor, joints (T, J, 3), skeleton). Files are normalised with
    the split's (first dataset's) Mean/Std and cropped to ``max_len`` frames, as gallery motions are.
    """
    from motion_text.data.features import recover_from_ric

    if spec.endswith(".npy") or Path(spec).expanduser().is_file():
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ValueError(f"--motion {spec!r}: no such .npy file")
        raw = load_feature_file(path, nfeats)
        src = dataset.sources[0]
        feats = (raw[:max_len] - src.mean) / src.std
        num_joints = (nfeats + 1) // 12
        joints = recover_from_ric(torch.from_numpy(raw).double(), num_joints).float().numpy()
        return path.stem, torch.from_numpy(np.asarray(feats, dtype=np.float32)), joints, skeleton_for(num_joints)
    for i in range(len(dataset)):
        item = dataset.item(i)
        if spec in (item.key, item.motion_id):
            joints, skel = item_joints(dataset, i)
            return item.key, dataset[i]["motion"], joints, skel
    examples = ", ".join(dataset.item(i).key for i in range(min(5, len(dataset))))
    raise ValueError(f"--motion {spec!r} is neither a .npy file nor a key id of the split (e.g. {examples})")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)


def render_hits(dataset, hits: list[Hit], out_dir: str | Path, prefix: str = "", quiet: bool = False) -> None:
    """Write one skeleton animation per hit (real fps, dataset kinematic chain); sets ``hit.render``."""
    from motion_text.viz.skeleton import render_animation

    index = {dataset.item(i).key: i for i in range(len(dataset))}
    with progress_bar("rendering", len(hits), quiet) as adv:
        for h in hits:
            joints, skel = item_joints(dataset, index[h.key])
            title = f"#{h.rank} {h.key}  score {h.score:.3f}\n{h.caption[:70]}"
            path = Path(out_dir) / f"{prefix}{h.rank:02d}_{_safe(h.key)}.mp4"
            h.render = str(render_animation(joints, skel.chains, skel.fps, path, title=title))
            adv(1)


# ---- command ---------------------------------------------------------------------------------------------------------
def _print_tables(results: list[dict], direction: str, show_files: bool = True) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for res in results:
        table = Table(title=f"{direction}: {res['query']}", title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("key id")
        table.add_column("score", justify="right")
        table.add_column("caption")
        for h in res["hits"]:
            table.add_row(str(h["rank"]), h["key"], f"{h['score']:.4f}", h["caption"])
        console.print(table)
        files = [h["render"] for h in res["hits"] if h.get("render")]
        if files and show_files:
            console.print("rendered: " + ", ".join(files))


@user_errors
def run(ns) -> int:
    """Entry point of ``motion-text retrieve`` (``ns`` from :func:`motion_text.tools.add_retrieve_parser`)."""
    if ns.k < 1:
        raise ValueError(f"-k must be >= 1, got {ns.k}")
    check_counts(ns)
    for q in ns.query or []:
        if not q.strip():
            raise ValueError(f"--query {q!r}: empty caption (give the words to search for)")
    for m in ns.motion or []:
        if not m.strip():
            raise ValueError("--motion '': give a key id of the split or a .npy file")
    method = load_method(ns.ckpt, ns.device)
    dm = load_datamodule(ns.data, num_workers=ns.num_workers)
    if dm.feature_dim != method.nfeats:
        raise ValueError(f"data config {ns.data!r} has {dm.feature_dim}-d features but the checkpoint's model "
                         f"expects {method.nfeats}")
    dataset = split_dataset(dm, ns.split)
    cache = None if ns.no_cache else gallery_cache_path(ns.ckpt, dm, ns.split)
    fingerprint = None if ns.no_cache else gallery_fingerprint(ns.ckpt, dataset)
    workers = dm.num_workers if ns.num_workers is None else ns.num_workers
    if ns.query:
        direction = "text-to-motion"
        gallery = build_gallery(method, dataset, motions=True, cache=cache, batch_size=ns.batch_size,
                                num_workers=workers, quiet=ns.quiet, fingerprint=fingerprint)
        labels = list(ns.query)
        hits = search_motions(method, gallery, labels, ns.k)
        if ns.render:
            for qi, row in enumerate(hits):
                render_hits(dataset, row, ns.render, prefix=f"q{qi}_" if len(hits) > 1 else "", quiet=ns.quiet)
    else:
        direction = "motion-to-text"
        gallery = build_gallery(method, dataset, motions=False, captions=True, cache=cache,
                                batch_size=ns.batch_size, num_workers=workers, quiet=ns.quiet,
                                fingerprint=fingerprint)
        queries = [resolve_motion_query(m, dataset, method.nfeats, dm.max_len) for m in ns.motion]
        labels = [q[0] for q in queries]
        emb = encode_arrays(method, [q[1] for q in queries], ns.batch_size)
        hits = search_captions(method, gallery, emb, ns.k)
        if ns.render:
            from motion_text.viz.skeleton import render_animation

            for (label, _, joints, skel), row in zip(queries, hits):
                out = render_animation(joints, skel.chains, skel.fps, Path(ns.render) / f"query_{_safe(label)}.mp4",
                                       title=f"{label}\n{row[0].caption[:70] if row else ''}")
                for h in row:
                    h.render = str(out)
    results = [{"query": q, "hits": [asdict(h) for h in row]} for q, row in zip(labels, hits)]
    if ns.json:
        sys.stdout.write(json.dumps({"direction": direction, "ckpt": str(ns.ckpt), "split": ns.split,
                                     "results": results}, indent=2) + "\n")
    else:
        _print_tables(results, direction, show_files=not ns.quiet)
    return 0
