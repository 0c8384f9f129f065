"""``motion-text``: the project's one entry point.

Lightning subcommands (``fit``, ``validate``, ``test``, ``predict``) run through :class:`MotionTextCLI`; the model is
chosen by class path in YAML (subclass mode) and :class:`~motion_text.data.datamodule.MotionTextDataModule` is the
one datamodule. ``--config NAME.yaml`` (and ``--data NAME.yaml``) given as a bare name that is not an existing path is
looked up in the packaged ``lightning_configs/``. Tool subcommands (``synth``, ``convert``, ...) are plain argparse
commands dispatched before Lightning is imported.
"""

from __future__ import annotations

import argparse
import pickle
import sys

__all__ = ["main", "configs_dir", "resolve_config", "MotionTextCLI", "available_configs"]  # noqa: F822 (lazy)

from motion_text.configs import available_configs, configs_dir, resolve_config  # noqa: F401 (re-exported)
from motion_text.configs import resolve_config_args as _resolve_config_args


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

        def parse_arguments(self, parser, args) -> None:
            """Parse, then check ``--ckpt_path`` (missing / damaged file, another method's checkpoint, class paths
            outside the package) before LightningCLI reads its hyper-parameters into the config."""
            super().parse_arguments(parser, args)
            from motion_text.checkpoint import check_resume_checkpoint

            sub = self.config.get("subcommand")
            seed = self.config[sub].get("seed_everything") if sub else None
            if not isinstance(seed, bool) and isinstance(seed, int) and not 0 <= seed < 2**32:
                raise SystemExit(f"error: --seed_everything must be in [0, 2**32 - 1] (numpy's range), got {seed}")
            if sub and "weights_only" in self.config[sub] and self.config[sub]["weights_only"] is None:
                # --ckpt_path never unpickles objects unless asked with --weights_only=false
                self.config[sub]["weights_only"] = True
            if sub:
                check_resume_checkpoint(self.config[sub].get("ckpt_path"), self.config[sub].get("model"),
                                        trust_hint="; pass --weights_only=false only for a checkpoint you trust")

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


#: the Lightning subcommands, with their line of ``motion-text --help``
LIGHTNING_HELP = {
    "fit": "train a method (--config NAME.yaml; --model.*, --data.*, --trainer.* override it)",
    "validate": "evaluate a checkpoint on the validation split (--config ... --ckpt_path CKPT)",
    "test": "evaluate a checkpoint on the test split: the protocol tables (--config ... --ckpt_path CKPT)",
    "predict": "write embeddings, captions or dances of a checkpoint (--config ... --ckpt_path CKPT)",
}


class _Listing:
    """Wraps argparse's sub-parser collection and records each command's help line for ``motion-text --help``."""

    def __init__(self, sub) -> None:
        self.sub, self.lines = sub, {}

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        self.lines[name] = kwargs.get("help", "")
        return self.sub.add_parser(name, **kwargs)


def _tool_parser(listing: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The tools' argparse front; ``listing`` (if given) receives ``{command: help line}``."""
    p = argparse.ArgumentParser(prog="motion-text", description="motion-text tools")
    sub = _Listing(p.add_subparsers(dest="command", required=True))
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
    from motion_text.tools import convert

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
    if listing is not None:
        listing.update(sub.lines)
    return p


def usage() -> str:
    """``motion-text --help``: every subcommand with its one line."""
    tools: dict[str, str] = {}
    _tool_parser(tools)
    width = max(map(len, [*LIGHTNING_HELP, *tools])) + 2
    rows = [f"  {name:<{width}}{line}" for name, line in LIGHTNING_HELP.items()]
    rows += [""] + [f"  {name:<{width}}{tools[name]}" for name in TOOL_COMMANDS]
    return ("usage: motion-text COMMAND [options]      (motion-text COMMAND --help: the options of one command)\n\n"
            "Training and evaluation (Lightning CLI):\n" + "\n".join(rows[:len(LIGHTNING_HELP)]) +
            "\n\nData and tools:\n" + "\n".join(rows[len(LIGHTNING_HELP) + 1:]) + "\n\n"
            "Configs: a bare --config NAME.yaml is a packaged config (motion-text configs lists them).\n")


def _synth(ns: argparse.Namespace) -> int:
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
        try:
            return _synth(ns)
        except (ValueError, OSError) as e:  # a bad --num / --workers, an --out that cannot be written
            raise SystemExit(f"error: {e}") from None
    if ns.command == "convert":
        from motion_text.tools import convert

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


def _wrapped_user_error(e: BaseException, types: tuple[type, ...]) -> BaseException | None:
    """The first exception of ``types`` in ``e``'s chain of causes (jsonargparse re-raises errors of a class's
    ``__init__``, such as a damaged ``init_from`` checkpoint, inside its own)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, types):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


TOOL_COMMANDS = ("synth", "configs", "counts", "convert", "retrieve", "score", "index", "search", "sparsity", "terms")


def main(args: list[str] | None = None) -> int:
    """Console entry point; ``args`` defaults to ``sys.argv[1:]``."""
    args = list(sys.argv[1:] if args is None else args)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return 0
    if args[0] in TOOL_COMMANDS:
        return _run_tool(args)
    if not args[0].startswith("-") and args[0] not in LIGHTNING_HELP:
        raise SystemExit(f"error: unknown command {args[0]!r}; the commands are "
                         f"{', '.join([*LIGHTNING_HELP, *TOOL_COMMANDS])} (motion-text --help)")
    args = _resolve_config_args(args)
    import warnings

    # main() always passes the (resolved) command line explicitly
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cli_cls, method_cls, dm_cls = _make_cli_class()
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from motion_text.checkpoint import CheckpointError
    from motion_text.data.readers import DataError

    try:
        cli_cls(method_cls, dm_cls, subclass_mode_model=True, args=args, save_config_kwargs={"overwrite": True})
    except (DataError, CheckpointError) as e:  # a dataset or checkpoint problem: one message naming the file
        raise SystemExit(f"error: {e}") from None
    except MisconfigurationException as e:  # Lightning's check of trainer arguments (fast_dev_run=-1, ...)
        raise SystemExit(f"error: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
    except pickle.UnpicklingError as e:  # a --ckpt_path holding objects other than weights
        first = str(e).strip().splitlines()[0]
        raise SystemExit(f"error: the checkpoint holds objects other than weights and was not loaded ({first}); "
                         "pass --weights_only=false only for a checkpoint you trust") from None
    except ValueError as e:  # jsonargparse wraps errors raised while building the model into its own
        cause = _wrapped_user_error(e, (DataError, CheckpointError))
        if cause is not None:
            raise SystemExit(f"error: {cause}") from None
        lines = [ln.strip(" -") for ln in str(e).splitlines() if "Could not load text model" in ln]
        if lines:
            raise SystemExit(f"error: {lines[0]}") from None
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
