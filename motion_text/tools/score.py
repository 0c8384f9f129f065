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

from motion_text.data.readers import read_text
from motion_text.metrics.generation import (  # noqa: F401  (re-exported: the metrics of this command)
    diversity,
    fid,
    frechet_distance,
    matching_score,
    r_precision,
    score_embeddings,
)
from motion_text.tools import check_counts, user_errors

__all__ = ["r_precision", "matching_score", "frechet_distance", "fid", "diversity", "read_captions",
           "load_generated", "score_embeddings", "run", "run_guo", "caption_tokens"]

log = logging.getLogger(__name__)


# ---- inputs ----------------------------------------------------------------------------------------------------------
def read_captions(path: str | Path) -> dict[str, str]:
    """``<id>\\t<caption>`` lines (blank and ``#`` lines skipped; the first caption of a repeated id is kept) or a
    JSON object ``{id: caption}`` (a list value: its first caption)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions file not found")
    text = read_text(path, "captions file")  # UTF-8 without a BOM; other bytes: an error naming the file
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


def _inputs(ns, nfeats: int, who: str):
    """The data both evaluators read: the DataModule of ``--stats-from`` and its real split (if given), Mean / Std,
    the captions and the generated motions, normalised and cut to ``max_len``."""
    from motion_text.tools import common as C

    dm = real_ds = None
    if ns.stats_from:
        dm = C.load_datamodule(ns.stats_from, num_workers=ns.num_workers)
        if dm.feature_dim != nfeats:
            raise ValueError(f"data config {ns.stats_from!r} has {dm.feature_dim}-d features but {who} expects "
                             f"{nfeats}")
        real_ds = C.split_dataset(dm, ns.real_split)
    mean, std = _stats(ns, dm, real_ds)
    if mean.shape != (nfeats,) or std.shape != (nfeats,):
        raise ValueError(f"Mean/Std of shape {mean.shape} / {std.shape} do not match {nfeats}-d features")
    max_len = ns.max_len if ns.max_len is not None else (dm.max_len if dm is not None else None)
    captions = read_captions(ns.captions)
    ids, raw = load_generated(ns.motions, captions, nfeats)
    return dm, real_ds, mean, std, max_len, captions, ids, [(r[:max_len] - mean) / std for r in raw]


@user_errors
def run(ns) -> int:
    """Entry point of ``motion-text score`` (``ns`` from :func:`motion_text.tools.add_score_parser`)."""
    from motion_text.tools import retrieve as R

    check_counts(ns)
    if getattr(ns, "evaluator", "tmr") == "guo":
        return run_guo(ns)
    method = R.load_method(ns.ckpt, ns.device)
    dm, real_ds, mean, std, max_len, captions, ids, feats = _inputs(ns, method.nfeats, "the checkpoint's model")
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


# ---- --evaluator guo -------------------------------------------------------------------------------------------------
def caption_tokens(caption: str) -> list[str]:
    """``word/POS`` tokens of a caption for Guo et al.'s evaluator: a HumanML3D line ``caption#tokens#start#end``
    gives its tokens field; a caption whose words are all ``word/POS`` is used as is; any other caption is tagged
    with the closed-vocabulary tagger of the synthetic captions (:func:`motion_text.data.synthetic_text.pos_tokens`:
    right for the synthetic set, an approximation of the spaCy tags of HumanML3D for other text)."""
    if "#" in caption:
        caption = caption.split("#")[1]
    words = caption.split()
    if words and all("/" in w for w in words):
        return words
    from motion_text.data.synthetic_text import pos_tokens

    log.info("caption %r has no word/POS tokens; tagging it with the synthetic set's tagger", caption)
    return pos_tokens(caption).split()


def _guo_batches(encode, items: list, batch_size: int, advance) -> torch.Tensor:
    out = []
    for lo in range(0, len(items), batch_size):
        out.append(encode(items[lo : lo + batch_size]).float().cpu())
        advance(len(items[lo : lo + batch_size]))
    return torch.cat(out)


def _load_mm(root: str | Path, nfeats: int, mean: np.ndarray, std: np.ndarray, max_len: int | None) -> list[list]:
    from motion_text.tools.retrieve import load_feature_file

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: multimodality folder not found (expected <id>/<k>.npy)")
    groups = [sorted(d.glob("*.npy")) for d in sorted(p for p in root.iterdir() if p.is_dir())]
    sizes = {len(g) for g in groups}
    if not groups or len(sizes) != 1:
        raise ValueError(f"{root}: expected one sub-folder per caption with the same number of .npy generations, "
                         f"found {len(groups)} sub-folders with {sorted(sizes)} files")
    return [[(load_feature_file(f, nfeats)[:max_len] - mean) / std for f in g] for g in groups]


def _print_results(res: dict[str, float], title: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in res.items():
        table.add_row(k, f"{int(v)}" if k == "num_motions" else f"{v:.4f}")
    Console().print(table)


def run_guo(ns) -> int:
    """``motion-text score --evaluator guo``: the metrics of :mod:`motion_text.metrics.generation` in the space of
    Guo et al.'s released evaluator (``--ckpt`` = ``text_mot_match/model/finest.tar``, ``--glove`` = its vocabulary).

    As ``final_evaluations.py``: R-precision top-1/2/3 and MM-Dist on batches of ``--batch-size`` 32 (seeded order,
    remainder dropped), FID of the generated against the real (``--stats-from``, ``--real-split``) motions,
    diversity over ``--diversity-times`` 300 pairs and, with ``--mm-motions``, multimodality over ``--mm-times`` 10
    pairs per caption.
    """
    from motion_text.metrics.generation import guo_matching, multimodality
    from motion_text.models.evaluators.guo import GuoEvaluator, GuoVocabulary
    from motion_text.tools import retrieve as R

    if not ns.glove:
        raise ValueError("--evaluator guo needs --glove <folder of the evaluator's our_vab_* vocabulary files>")
    device = torch.device("cuda" if ns.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if ns.device == "auto" else ns.device))
    ev = GuoEvaluator.from_official(ns.ckpt, unit_length=ns.unit_length, max_text_len=ns.max_text_len,
                                    max_motion_length=ns.max_motion_length).to(device)
    vocab = GuoVocabulary.from_dir(ns.glove)
    dm, real_ds, mean, std, max_len, captions, ids, feats = _inputs(ns, ev.dim_pose, f"the evaluator {ns.ckpt}")
    bs = 64
    with R.progress_bar("encoding generated motions", len(feats), ns.quiet) as adv:
        motion_emb = _guo_batches(ev.encode_motions, feats, bs, adv)
    tokens = [caption_tokens(captions[i]) for i in ids]
    with R.progress_bar("encoding captions", len(ids), ns.quiet) as adv:
        text_emb = _guo_batches(lambda c: ev.encode_texts(c, vocab), tokens, bs, adv)
    res = guo_matching(text_emb, motion_emb, batch_size=ns.batch_size, seed=ns.seed)
    arrays = {"ids": np.array(ids), "text": text_emb.numpy(), "motion": motion_emb.numpy()}
    if real_ds is not None:
        real = []
        for i in range(len(real_ds)):
            it = real_ds.item(i)
            real.append((np.load(it.path)[it.start : it.end][:max_len] - mean) / std)
        with R.progress_bar(f"encoding real {ns.real_split} motions", len(real), ns.quiet) as adv:
            real_emb = _guo_batches(ev.encode_motions, real, bs, adv)
        res["fid"] = fid(real_emb, motion_emb)  # calculate_frechet_distance(gt_mu, gt_cov, mu, cov)
        arrays["real"] = real_emb.numpy()
    else:
        log.info("no --stats-from data config: FID against real motions is skipped")
    res["diversity"] = diversity(motion_emb, ns.diversity_times, ns.seed)
    if real_ds is not None:
        res["real_diversity"] = diversity(arrays["real"], ns.diversity_times, ns.seed)
    if ns.mm_motions:
        groups = _load_mm(ns.mm_motions, ev.dim_pose, mean, std, max_len)
        mm = torch.stack([ev.encode_motions(g).float().cpu() for g in groups])
        res["multimodality"] = multimodality(mm, ns.mm_times, ns.seed)
        arrays["mm"] = mm.numpy()
    res["num_motions"] = float(len(motion_emb))
    if ns.save_embeddings:
        np.savez(Path(ns.save_embeddings).expanduser(), **arrays)
    _print_results(res, f"generation metrics in the space of Guo et al.'s evaluator ({Path(ns.ckpt).name})", ns.json)
    return 0
