"""Researcher-facing tools of the retrieval methods: ``motion-text retrieve`` and ``motion-text score``.

This module only declares the command lines (no torch import, for CLI start-up time); the work is done in
:mod:`motion_text.tools.retrieve` and :mod:`motion_text.tools.score`, imported when a command runs.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

__all__ = ["add_retrieve_parser", "add_score_parser", "add_counts_parser", "TOOL_NAMES", "user_errors",
           "check_counts"]

TOOL_NAMES = ("retrieve", "score", "counts")


def user_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a tool's entry point so that a user error (missing or unwritable file, bad value) ends with one ``error:``
    line instead of a traceback."""

    @functools.wraps(run)
    def wrapped(ns: argparse.Namespace) -> int:
        try:
            return run(ns)
        except (ValueError, OSError) as e:  # OSError: a missing input, an output path that cannot be written
            raise SystemExit(f"error: {e}") from None

    return wrapped


#: the most DataLoader worker processes a tool starts (a typo such as ``--num-workers 80000`` would fork them all)
MAX_WORKERS = 256


def check_counts(ns: argparse.Namespace) -> None:
    """``ValueError`` for a ``--batch-size`` / ``--diversity-times`` / ``--count`` / ``--top`` below 1, a negative
    ``--terms``, a ``--num-workers`` outside [0, :data:`MAX_WORKERS`] or a ``--max-len`` below 2, naming the option and
    the value (those present in ``ns``)."""
    workers = getattr(ns, "num_workers", None)
    if workers is not None and workers > MAX_WORKERS:
        raise ValueError(f"--num-workers must be <= {MAX_WORKERS}, got {workers}")
    for name, low in (("batch_size", 1), ("diversity_times", 1), ("count", 1), ("top", 1), ("terms", 0),
                      ("num_workers", 0), ("max_len", 2)):
        value = getattr(ns, name, None)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def add_retrieve_parser(sub) -> argparse.ArgumentParser:
    """Register ``retrieve`` on an argparse sub-parser collection."""
    p = sub.add_parser("retrieve", help="text-to-motion / motion-to-text search with a trained retrieval checkpoint",
                       description="Rank the motions of a split for a caption (--query), or its captions for a "
                                   "motion (--motion), with the score of the checkpoint's method (cosine for TMR, "
                                   "DropTriple, MoT++).")
    p.add_argument("--ckpt", required=True, help="Lightning checkpoint of a retrieval method")
    p.add_argument("--data", required=True,
                   help="data config (DataModule init args, a packaged name such as synthetic_humanml3d.yaml, or a "
                        "full training config with a data: section)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", action="append", help="caption to search motions for (repeatable)")
    q.add_argument("--motion", action="append",
                   help="key id of the split or a .npy file of unnormalised features: search captions (repeatable)")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=5, help="results per query (default 5)")
    p.add_argument("--split", default="test", help="gallery split (default test)")
    p.add_argument("--render", metavar="DIR", default=None,
                   help="write one skeleton animation per result (MP4 with ffmpeg, else GIF)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (for scripts)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the gallery embedding cache")
    p.add_argument("--device", default="cpu", help="torch device, or 'auto' (cuda when available)")
    p.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default 64)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the data config's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (the results are still printed)")
    return p


def add_score_parser(sub) -> argparse.ArgumentParser:
    """Register ``score`` on an argparse sub-parser collection."""
    p = sub.add_parser("score", help="evaluate generated motions with a retrieval model (R-precision, FID, ...)",
                       description="Text-to-motion generation metrics of Guo et al. (CVPR 2022) computed in the "
                                   "embedding space of a retrieval checkpoint (TMR as the evaluator).")
    p.add_argument("--ckpt", required=True, help="Lightning checkpoint of a retrieval method (e.g. TMR)")
    p.add_argument("--motions", required=True, help="folder of <id>.npy generated motions (unnormalised Guo features)")
    p.add_argument("--captions", required=True, help="'<id>\\t<caption>' lines or a JSON {id: caption}")
    p.add_argument("--stats-from", default=None,
                   help="data config whose Mean/Std normalise the motions and whose --real-split is the FID "
                        "reference")
    p.add_argument("--mean", default=None, help="Mean.npy (overrides the data config's)")
    p.add_argument("--std", default=None, help="Std.npy (overrides the data config's)")
    p.add_argument("--real-split", default="test", help="reference split for FID (default test)")
    p.add_argument("--max-len", type=int, default=None,
                   help="crop generated motions to their first frames (default: the data config's max_len)")
    p.add_argument("--batch-size", type=int, default=32, help="R-precision batch size (Guo et al.: 32)")
    p.add_argument("--diversity-times", type=int, default=300, help="pairs of the diversity metric (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--device", default="cpu", help="torch device, or 'auto'")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the data config's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (the metrics are still printed)")
    _add_guo_score_options(p)
    return p


def add_counts_parser(sub) -> argparse.ArgumentParser:
    """Register ``counts`` on an argparse sub-parser collection (``--data.KEY=VALUE`` overrides are left to
    :func:`motion_text.tools.counts.parse_overrides`)."""
    p = sub.add_parser("counts", help="per-split counts of a data config (ids, items, captions, skips by reason)",
                       description="Read every split of a data config as training does and print the counts: ids "
                                   "of the split file, ids kept, items (whole motions and sub-motion spans), "
                                   "captions and skips by reason. With the default options the Guo-layout counts "
                                   "are those of Guo et al.'s Text2MotionDatasetV2. Overrides as in the training "
                                   "CLI: --data.KEY=VALUE.")
    p.add_argument("--data", required=True,
                   help="data config (DataModule init args, a packaged name such as humanml3d.yaml, or a full "
                        "training config with a data: section)")
    p.add_argument("--split", action="append", choices=["train", "val", "test"],
                   help="only this split (repeatable; default: every split the datasets serve)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    return p


def _add_guo_score_options(p: argparse.ArgumentParser) -> None:
    """``score --evaluator guo``: Guo et al.'s released evaluator instead of a retrieval checkpoint's space."""
    g = p.add_argument_group("Guo et al. evaluator (--evaluator guo; --ckpt is then text_mot_match/model/finest.tar)")
    g.add_argument("--evaluator", choices=["tmr", "guo"], default="tmr",
                   help="embedding space of the metrics: the retrieval checkpoint's (tmr, default) or the released "
                        "evaluator of Guo et al. (guo: numbers comparable with text-to-motion papers)")
    g.add_argument("--glove", default=None, help="folder of the evaluator's our_vab_{data.npy,words.pkl,idx.pkl}")
    g.add_argument("--unit-length", type=int, default=4, help="frames per movement code (Guo et al.: 4)")
    g.add_argument("--max-text-len", type=int, default=20, help="caption tokens kept (Guo et al.: 20)")
    g.add_argument("--max-motion-length", type=int, default=196, help="zero-padded motion length (Guo et al.: 196)")
    g.add_argument("--mm-motions", default=None,
                   help="folder of <id>/<k>.npy repeated generations per caption, for multimodality")
    g.add_argument("--mm-times", type=int, default=10, help="pairs per caption of multimodality (Guo et al.: 10)")
    g.add_argument("--save-embeddings", default=None, help="write the text / motion / real embeddings to this .npz")
