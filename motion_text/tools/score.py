"""``motion-text score``: a retrieval model (TMR) as the evaluator of text-to-motion generation.

Generated motions (``<id>.npy``, unnormalised Guo features) and their captions are embedded with the checkpoint's
encoders and scored with the metrics of Guo et al. ("Generating Diverse and Natural 3D Human Motions from Text",
CVPR 2022, section 5 / ``eval_t2m.py``), computed in the retrieval model's embedding space (as TMR and later papers
propose to replace Guo et al.'s purpose-built evaluator):

- R-precision (top-1/2/3): the motions are shuffled (seeded) and cut into batches of 32; within a batch each
  motion's ground-truth caption competes with the 31 others, as the paper describes (its evaluation code ranks the
  batch's motions for each caption instead); the fraction of motions whose caption is within the top k (remainder
  batch dropped, as Guo et al.'s ``drop_last`` loader).
- Matching score: Guo et al. average the Euclidean distance between matched text and motion features. The retrieval
  space is compared by cosine, so ``matching_score`` here is the mean cosine similarity of matched pairs (higher is
  better); ``matching_l2`` is the mean Euclidean distance between the (unit) embeddings of matched pairs (lower is
  better, sqrt(2 - 2 cos)).
- FID: Fréchet distance between Gaussians fitted to the generated and the real motion embeddings (Heusel et al.,
  NeurIPS 2017; ``scipy.linalg.sqrtm``, Guo et al.'s ``calculate_frechet_distance``). The real set is a split of the
  data config (``--stats-from``, split ``--real-split``), encoded as the evaluation loop encodes it.
- Diversity: mean Euclidean distance between ``times`` random pairs of motion embeddings (Guo et al.'s
  ``calculate_diversity``, 300 pairs).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from motion_text.tools import user_errors

__all__ = ["r_precision", "matching_score", "frechet_distance", "fid", "diversity", "read_captions",
           "load_generated", "score_embeddings", "run"]

log = logging.getLogger(__name__)


# ---- metrics (pure functions) ----------------------------------------------------------------------------------------
def _cosine(text: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    return F.normalize(text.double(), dim=-1) @ F.normalize(motion.double(), dim=-1).T


def r_precision(text_emb: torch.Tensor, motion_emb: torch.Tensor, batch_size: int = 32, top_k: int = 3,
                seed: int = 0) -> list[float]:
    """R-precision top-1..top_k of Guo et al. (CVPR 2022), with cosine similarity as the score.

    Row i of ``text_emb`` (N, D) is the caption of row i of ``motion_emb`` (N, D). The items are permuted with
    ``np.random.RandomState(seed)``, cut into batches of ``batch_size`` (the remainder dropped) and, in each batch,
    every motion's own caption is ranked among the batch's captions; returns the fractions (in [0, 1]) of motions whose
    caption is within the first 1, ..., ``top_k`` (a tie counts against the ground truth).
    """
    n = text_emb.shape[0]
    if motion_emb.shape[0] != n:
        raise ValueError(f"{n} captions but {motion_emb.shape[0]} motions")
    if n < batch_size:
        raise ValueError(f"R-precision needs at least batch_size={batch_size} motions, got {n}")
    perm = np.random.RandomState(seed).permutation(n)
    hits = np.zeros(top_k)
    n_batches = n // batch_size
    for b in range(n_batches):
        idx = torch.as_tensor(perm[b * batch_size : (b + 1) * batch_size])
        sims = _cosine(motion_emb[idx], text_emb[idx])  # (B motions, B captions)
        gt = sims.diagonal()
        rank = (sims >= gt[:, None]).sum(1) - 1  # captions scoring at least as high as the right one, minus itself
        for k in range(top_k):
            hits[k] += float((rank <= k).sum())
    return (hits / (n_batches * batch_size)).tolist()


def matching_score(text_emb: torch.Tensor, motion_emb: torch.Tensor) -> dict[str, float]:
    """Mean cosine similarity (``matching_score``) and mean Euclidean distance of the L2-normalised embeddings
    (``matching_l2``) of matched (caption, motion) rows; Guo et al.'s matching score is the latter on their features."""
    t, m = F.normalize(text_emb.double(), dim=-1), F.normalize(motion_emb.double(), dim=-1)
    return {"matching_score": float((t * m).sum(-1).mean()), "matching_l2": float((t - m).norm(dim=-1).mean())}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance of two Gaussians: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Heusel et al. 2017, eq. 6).

    As Guo et al.'s ``calculate_frechet_distance``: when the matrix square root is not finite, ``eps`` I is added to
    both covariances; a (numerically) complex root keeps its real part.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes differ: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        log.info("FID: singular product of covariances; adding %g to the diagonals", eps)
        offset = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = float(np.abs(covmean.imag).max())
        if imag > 1e-3:
            log.warning("FID: the matrix square root has an imaginary part of %.3g (ill-conditioned covariances)",
                        imag)
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return 0.0 if -1e-6 < value < 0.0 else value  # rounding of identical distributions


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least 2 embeddings (N, D) to fit a Gaussian, got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def fid(emb_a: torch.Tensor | np.ndarray, emb_b: torch.Tensor | np.ndarray) -> float:
    """FID between two sets of embeddings (N_a, D), (N_b, D) (each fitted with its mean and sample covariance)."""
    a = emb_a.detach().double().cpu().numpy() if torch.is_tensor(emb_a) else emb_a
    b = emb_b.detach().double().cpu().numpy() if torch.is_tensor(emb_b) else emb_b
    return frechet_distance(*_gaussian(a), *_gaussian(b))


def diversity(emb: torch.Tensor | np.ndarray, times: int = 300, seed: int = 0) -> float:
    """Guo et al.'s diversity: mean distance between ``times`` random pairs (two draws of ``times`` distinct rows,
    ``np.random.RandomState(seed)``); ``times`` is reduced to N when fewer embeddings are given."""
    x = emb.detach().double().cpu().numpy() if torch.is_tensor(emb) else np.asarray(emb, np.float64)
    n = len(x)
    if n < 2:
        raise ValueError(f"diversity needs at least 2 embeddings, got {n}")
    if times > n:
        log.info("diversity: %d pairs requested but only %d motions; using %d", times, n, n)
        times = n
    rng = np.random.RandomState(seed)
    first, second = rng.choice(n, times, replace=False), rng.choice(n, times, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def score_embeddings(text_emb: torch.Tensor, motion_emb: torch.Tensor, real_emb: torch.Tensor | None = None,
                     batch_size: int = 32, diversity_times: int = 300, seed: int = 0) -> dict[str, float]:
    """All metrics of generated motions (N, D) with their captions (N, D), FID against ``real_emb`` when given."""
    top = r_precision(text_emb, motion_emb, batch_size=batch_size, top_k=3, seed=seed)
    out = {f"R_precision_top{k + 1}": v for k, v in enumerate(top)}
    out.update(matching_score(text_emb, motion_emb))
    if real_emb is not None:
        out["fid"] = fid(motion_emb, real_emb)
    out["diversity"] = diversity(motion_emb, diversity_times, seed)
    out["num_motions"] = float(len(motion_emb))
    return out


# ---- inputs ----------------------------------------------------------------------------------------------------------
def read_captions(path: str | Path) -> dict[str, str]:
    """``<id>\\t<caption>`` lines (blank and ``#`` lines skipped; the first caption of a repeated id is kept) or a
    JSON object ``{id: caption}`` (a list value: its first caption)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions file not found")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        out = {}
        for k, v in data.items():
            v = v[0] if isinstance(v, list) and v else v
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{path}: caption of {k!r} must be a non-empty string, got {v!r}")
            out[str(k)] = v.strip()
        return out
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{n}: expected '<id>\\t<caption>', got {line!r}")
        key, caption = line.split("\t", 1)
        if not caption.strip():
            raise ValueError(f"{path}:{n}: empty caption for {key!r}")
        out.setdefault(key.strip(), caption.strip())
    return out


def load_generated(motions_dir: str | Path, captions: dict[str, str], nfeats: int) -> tuple[list[str], list]:
    """The ids with both a ``<id>.npy`` and a caption (sorted) and their unnormalised features (T, nfeats)."""
    from motion_text.tools.retrieve import load_feature_file

    root = Path(motions_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: motions folder not found")
    files = {p.stem: p for p in root.glob("*.npy")}
    missing = sorted(set(captions) - set(files))
    if missing:
        raise ValueError(f"{root}: no .npy for {len(missing)} captioned ids, e.g. {missing[:5]}")
    extra = set(files) - set(captions)
    if extra:
        log.info("%d motions of %s have no caption and are ignored (e.g. %s)", len(extra), root, sorted(extra)[:3])
    ids = sorted(captions)
    return ids, [load_feature_file(files[i], nfeats) for i in ids]


# ---- command ---------------------------------------------------------------------------------------------------------
def _load_stat(path: str, option: str) -> np.ndarray:
    """A ``Mean.npy`` / ``Std.npy`` given on the command line, finite and (for ``--std``) positive."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {option} file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - truncated, random bytes, pickled objects: one message naming the file
        raise ValueError(f"{path}: not a readable .npy file for {option} ({type(e).__name__}: {str(e)[:160]})"
                         ) from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: {option} must be a numeric array")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: {option} contains NaN or Inf")
    if option == "--std" and (arr <= 0).any():
        raise ValueError(f"{path}: {int((arr <= 0).sum())} of {arr.size} entries are <= 0; normalising would "
                         "divide by zero")
    return arr


def _stats(ns, dm, real_ds) -> tuple[np.ndarray, np.ndarray]:
    mean = std = None
    if real_ds is not None:
        mean, std = real_ds.sources[0].mean, real_ds.sources[0].std
    if ns.mean:
        mean = _load_stat(ns.mean, "--mean")
    if ns.std:
        std = _load_stat(ns.std, "--std")
    if mean is None or std is None:
        raise ValueError("normalisation statistics needed: give --stats-from <data config> or both --mean and --std")
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


@user_errors
def run(ns) -> int:
    """Entry point of ``motion-text score`` (``ns`` from :func:`motion_text.tools.add_score_parser`)."""
    from motion_text.tools import check_counts
    from motion_text.tools import retrieve as R

    check_counts(ns)
    method = R.load_method(ns.ckpt, ns.device)
    dm = real_ds = None
    if ns.stats_from:
        dm = R.load_datamodule(ns.stats_from, num_workers=ns.num_workers)
        if dm.feature_dim != method.nfeats:
            raise ValueError(f"data config {ns.stats_from!r} has {dm.feature_dim}-d features but the checkpoint's "
                             f"model expects {method.nfeats}")
        real_ds = R.split_dataset(dm, ns.real_split)
    mean, std = _stats(ns, dm, real_ds)
    if mean.shape != (method.nfeats,) or std.shape != (method.nfeats,):
        raise ValueError(f"Mean/Std of shape {mean.shape} / {std.shape} do not match {method.nfeats}-d features")
    max_len = ns.max_len if ns.max_len is not None else (dm.max_len if dm is not None else None)
    captions = read_captions(ns.captions)
    ids, raw = load_generated(ns.motions, captions, method.nfeats)
    feats = [(r[:max_len] - mean) / std for r in raw]
    with R.progress_bar("encoding generated motions", len(feats), ns.quiet) as adv:
        motion_emb = R.encode_arrays(method, feats, advance=adv)
    with R.progress_bar("encoding captions", len(ids), ns.quiet) as adv:
        text_emb = R.encode_texts(method, [captions[i] for i in ids], advance=adv)
    real_emb = None
    if real_ds is not None:
        workers = dm.num_workers if ns.num_workers is None else ns.num_workers
        with R.progress_bar(f"encoding real {ns.real_split} motions", len(real_ds), ns.quiet) as adv:
            real_emb = R.encode_motions(method, real_ds, num_workers=workers, advance=adv)
    else:
        log.info("no --stats-from data config: FID against real motions is skipped")
    res = score_embeddings(text_emb, motion_emb, real_emb, batch_size=ns.batch_size,
                           diversity_times=ns.diversity_times, seed=ns.seed)
    if real_emb is not None:
        res["real_diversity"] = diversity(real_emb, ns.diversity_times, ns.seed)
    if ns.json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"generation metrics in the embedding space of {Path(ns.ckpt).name}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in res.items():
            table.add_row(k, f"{int(v)}" if k == "num_motions" else f"{v:.4f}")
        Console().print(table)
    return 0
