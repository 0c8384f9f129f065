"""``motion-text convert``: released weights (TMR, MoT++, DropTriple) to motion-text checkpoints.

The conversions themselves live in :mod:`motion_text.convert` (TMR) and :mod:`motion_text.convert_official` (MoT++,
DropTriple); this module is their command line.
"""

from __future__ import annotations

import argparse

from motion_text.convert import convert_tmr

__all__ = ["add_parser", "run", "OFFICIAL_SOURCES"]

#: sources converted by :mod:`motion_text.convert_official`
OFFICIAL_SOURCES = ("motpp", "rehamot")


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert an official checkpoint (TMR, MoT++, DropTriple) into a motion-text "
                                       "checkpoint")
    p.add_argument("src", help="official run folder (with last_weights/) or .ckpt")
    p.add_argument("--from", dest="source", choices=["tmr", *OFFICIAL_SOURCES], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--text-model", default="distilbert-base-uncased")
    add_official_options(p)


def run(ns: argparse.Namespace) -> int:
    if ns.source in OFFICIAL_SOURCES:
        return run_official(ns)
    try:
        out = convert_tmr(ns.src, ns.out, text_model=ns.text_model)
    except (ValueError, OSError) as e:  # a missing, damaged or foreign source, an unwritable --out: one line
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}")
    return 0


def add_official_options(p) -> None:
    """Options of ``--from motpp|rehamot`` that the weights cannot give (the references' defaults)."""
    g = p.add_argument_group("--from motpp / rehamot")
    g.add_argument("--max-frames", type=int, default=200, help="MoT++ num_frames (default 200)")
    g.add_argument("--num-heads", type=int, default=4, help="attention heads of the motion encoder (default 4)")
    g.add_argument("--sim", choices=["cosine", "cpsmapping"], default=None,
                   help="rehamot similarity (default: the run's .hydra/config.yaml, else cosine; only cosine converts)")


def run_official(ns: argparse.Namespace) -> int:
    from motion_text import convert_official as C

    try:
        if ns.source == "rehamot":
            out = C.convert_rehamot(ns.src, ns.out, text_model=ns.text_model, num_heads=ns.num_heads, sim=ns.sim)
        else:
            out = C.convert_motpp(ns.src, ns.out, text_model=ns.text_model, max_frames=ns.max_frames,
                                  num_heads=ns.num_heads)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"wrote {out}")
    return 0
