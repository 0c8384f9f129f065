"""``motion-text``: the project's one entry point.

Lightning subcommands (``fit``, ``validate``, ``test``, ``predict``) run through :class:`MotionTextCLI`; the model is
chosen by class path in YAML (subclass mode) and :class:`~motion_text.data.datamodule.MotionTextDataModule` is the
one datamodule. ``--config NAME.yaml`` (and ``--data NAME.yaml``) given as a bare name that is not an existing path is
looked up in the packaged ``lightning_configs/``. Tool subcommands (``synth``, ``convert``, ...) are plain argparse
commands dispatched before Lightning is imported.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

__all__ = ["main", "configs_dir", "resolve_config", "MotionTextCLI", "available_configs"]  # noqa: F822 (lazy)

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def configs_dir() -> Path:
    """The packaged ``lightning_configs/`` (wheel install) or the repository's (source / editable install)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "lightning_configs", here.parent / "lightning_configs"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"lightning_configs/ not found next to {here}")


def available_configs() -> list[str]:
    root = configs_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))


def resolve_config(name: str) -> str:
    """Return ``name`` if it is an existing path, else the packaged config of that name (with or without ``data/``)."""
    if os.path.exists(name) or not name.endswith((".yaml", ".yml")):
        return name
    root = configs_dir()
    for cand in (root / name, root / "data" / name):
        if cand.is_file():
            return str(cand)
    listing = "\n  ".join(available_configs())
    raise SystemExit(f"error: config {name!r} is neither a file nor a packaged config. Available configs:\n  {listing}")


def _resolve_config_args(args: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a in ("--config", "-c", "--data") and i + 1 < len(args):
            out += [a, resolve_config(args[i + 1])]
            i += 2
            continue
        for flag in ("--config=", "--data="):
            if a.startswith(flag):
                a = flag + resolve_config(a[len(flag) :])
        out.append(a)
        i += 1
    return out


def _make_cli_class():
    from lightning.pytorch.cli import LightningCLI

    from motion_text.data.datamodule import MotionTextDataModule
    from motion_text.methods.base import MotionTextMethod

    class MotionTextCLI(LightningCLI):
        """LightningCLI with the project's data->model links and defaults."""

        def add_arguments_to_parser(self, parser) -> None:
            for src, dst in (("feature_dim", "nfeats"), ("num_joints", "num_joints"), ("fps", "fps"),
                             ("skeleton_name", "skeleton"), ("music_dim", "music_dim")):
                parser.link_arguments(f"data.{src}", f"model.init_args.{dst}", apply_on="instantiate")
            # the DataModule's EpochSeededSampler shards across ranks itself and is seeded by (seed, epoch, index)
            parser.set_defaults({"trainer.use_distributed_sampler": False})

        def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
            kwargs = super()._prepare_subcommand_kwargs(subcommand)
            if "weights_only" in kwargs and kwargs["weights_only"] is None:
                # --ckpt_path never unpickles objects unless asked with --weights_only=false (torch < 2.6 would)
                kwargs["weights_only"] = True
            return kwargs

    return MotionTextCLI, MotionTextMethod, MotionTextDataModule


def __getattr__(name: str):
    if name == "MotionTextCLI":
        return _make_cli_class()[0]
    raise AttributeError(name)


def _synth_num(value: str) -> int | str:
    if value == "full":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of motions or 'full', got {value!r}") from None


def _tool_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="motion-text", description="motion-text tools")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synth", help="write a synthetic dataset in a real on-disk layout")
    s.add_argument("--format", choices=["humanml3d", "kitml", "aistpp"], default="humanml3d")
    s.add_argument("--out", required=True)
    s.add_argument("--num", type=_synth_num, default=2000,
                   help="motions (sequences for aistpp), or 'full': the real dataset's size with its split proportions")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--layout", choices=["guo", "tmr"], default="guo")
    s.add_argument("--workers", type=int, default=None, help="processes (default: the cores this process may use)")
    s.add_argument("--splits", choices=["synthetic", "real"], default=None,
                   help="split proportions: 'synthetic' (80/5/15 %%) or 'real' (default with --num full)")
    s.add_argument("--quiet", action="store_true")
    s = sub.add_parser("configs", help="list the packaged configs")
    from motion_text import convert

    convert.add_parser(sub)
    from motion_text import tools

    tools.add_retrieve_parser(sub)
    tools.add_score_parser(sub)
    tools.add_counts_parser(sub)
    from motion_text.tools import sparse_args

    sparse_args.add_index_parser(sub)
    sparse_args.add_search_parser(sub)
    sparse_args.add_sparsity_parser(sub)
    sparse_args.add_terms_parser(sub)
    return p


def _run_tool(args: list[str]) -> int:
    parser = _tool_parser()
    ns, extra = parser.parse_known_args(args)
    if ns.command == "counts":  # --data.KEY=VALUE overrides, as the Lightning subcommands take them
        from motion_text.tools import counts

        ns.overrides = extra
        return counts.run(ns)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if ns.command == "synth":
        from motion_text.data.synthetic import FULL_SIZE

        full = ns.num == "full"
        num = FULL_SIZE[ns.format] if full else ns.num
        splits = ns.splits or ("real" if full else "synthetic")
        if ns.format == "aistpp":
            from motion_text.data.synthetic_aistpp import FULL_DURATION, generate_aistpp

            generate_aistpp(ns.out, num=num, seed=ns.seed, quiet=ns.quiet, workers=ns.workers, splits=splits,
                            **({"duration": FULL_DURATION} if full else {}))
        else:
            from motion_text.data.synthetic import generate_dataset

            r = generate_dataset(ns.out, ns.format, num, ns.seed, layout=ns.layout, workers=ns.workers,
                                 quiet=ns.quiet, splits=splits)
            if not ns.quiet:
                print(f"wrote {r.num_motions} motions ({r.num_files} files) to {r.root}; splits {r.splits}")
        return 0
    if ns.command == "convert":
        from motion_text import convert

        return convert.run(ns)
    if ns.command == "configs":
        print("\n".join(available_configs()))
        return 0
    if ns.command == "retrieve":
        from motion_text.tools import retrieve

        return retrieve.run(ns)
    if ns.command == "score":
        from motion_text.tools import score

        return score.run(ns)
    if ns.command == "terms":
        from motion_text.viz.lexical import run_terms

        return run_terms(ns)
    if ns.command in ("index", "search", "sparsity"):
        from motion_text.tools import sparse

        return {"index": sparse.run_index, "search": sparse.run_search, "sparsity": sparse.run_sparsity}[ns.command](ns)
    return 2


TOOL_COMMANDS = ("synth", "configs", "convert", "retrieve", "score", "index", "search", "sparsity", "terms",
                 "counts")


def main(args: list[str] | None = None) -> int:
    """Console entry point; ``args`` defaults to ``sys.argv[1:]``."""
    args = list(sys.argv[1:] if args is None else args)
    if args and args[0] in TOOL_COMMANDS:
        return _run_tool(args)
    args = _resolve_config_args(args)
    import warnings

    # main() always passes the (resolved) command line explicitly
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cli_cls, method_cls, dm_cls = _make_cli_class()
    from motion_text.data.readers import DataError

    try:
        cli_cls(method_cls, dm_cls, subclass_mode_model=True, args=args, save_config_kwargs={"overwrite": True})
    except DataError as e:  # a dataset problem: one message naming the file, no traceback
        raise SystemExit(f"error: {e}") from None
    except pickle.UnpicklingError as e:  # a --ckpt_path holding objects other than weights
        first = str(e).strip().splitlines()[0]
        raise SystemExit(f"error: the checkpoint holds objects other than weights and was not loaded ({first}); "
                         "pass --weights_only=false only for a checkpoint you trust") from None
    except ValueError as e:  # jsonargparse wraps a missing text model into its own error: show the model's message
        lines = [ln.strip(" -") for ln in str(e).splitlines() if "Could not load text model" in ln]
        if lines:
            raise SystemExit(f"error: {lines[0]}") from None
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
