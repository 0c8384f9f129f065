"""What the tools share: loading a method from a checkpoint (class names checked before any import), a DataModule
from a data config, the dataset of a split, and the progress bar (on stderr, so ``--json`` output stays clean)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["Advance", "checkpoint_class", "load_method", "load_datamodule", "split_dataset", "progress_bar"]

# ---- loading ---------------------------------------------------------------------------------------------------------
def checkpoint_class(ckpt: str | Path) -> type:
    """The :class:`RetrievalMethod` subclass named by a checkpoint's ``hyper_parameters["_class_path"]``.

    The file is read with ``weights_only=True`` (:func:`~motion_text.checkpoint.read_checkpoint`); the name must be a
    class of the project's method modules, checked before anything is imported, and subclass
    :class:`~motion_text.methods.retrieval.RetrievalMethod` (:func:`~motion_text.checkpoint.method_class`); otherwise
    a :class:`~motion_text.checkpoint.CheckpointError` (a ``ValueError``) names the file and what was found.
    """
    from motion_text.checkpoint import check_class_paths, method_class, read_checkpoint
    from motion_text.methods.retrieval import RetrievalMethod

    path = Path(ckpt).expanduser()
    state = read_checkpoint(path, mmap=True)
    hp = state.get("hyper_parameters")
    class_path = hp.get("_class_path") if isinstance(hp, dict) else None
    cls = method_class(class_path, RetrievalMethod, source=path)
    check_class_paths(hp, source=path)
    return cls


def load_method(ckpt: str | Path, device: str | torch.device = "cpu"):
    """Restore a retrieval method from a checkpoint (weights only), in eval mode on ``device``."""
    from motion_text.checkpoint import CheckpointError

    cls = checkpoint_class(ckpt)
    device = _device(device)
    path = Path(ckpt).expanduser()
    try:
        method = cls.load_from_checkpoint(str(path), map_location="cpu", weights_only=True)
    except CheckpointError as e:  # weights that do not fit the class the checkpoint names
        raise CheckpointError(str(e).replace("checkpoint: ", f"{path}: ", 1)) from None
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as e:  # hyper-parameters of another version
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: cannot rebuild {cls.__name__} from the checkpoint's hyper_parameters "
                              f"({type(e).__name__}: {first})") from None
    return method.to(device).eval()


def _device(device: str | torch.device) -> torch.device:
    """``--device``: ``auto`` (cuda when available) or a torch device that exists here, else ``ValueError``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device {device!r}: {str(e).splitlines()[0] if str(e) else 'not a torch device'}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"--device {device!r}: {torch.cuda.device_count()} CUDA device(s) available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device!r}: expected cpu, cuda[:N], mps or auto")
    return dev


def load_datamodule(data: str | Path | dict, **overrides):
    """A :class:`MotionTextDataModule` from a data config.

    ``data``: a YAML file or packaged config name holding the DataModule's init args (``lightning_configs/data/``),
    a full training config whose ``data:`` section is used (inline, or a file name resolved next to the config or
    among the packaged ones), or the init args as a dict. ``overrides`` (``None`` values ignored) replace init args,
    e.g. ``num_workers=0``. Values are checked and converted by jsonargparse, as the training CLI does.
    """
    import yaml
    from jsonargparse import ArgumentParser

    from motion_text.configs import resolve_config
    from motion_text.data.datamodule import MotionTextDataModule

    if isinstance(data, dict):
        cfg, base = dict(data), Path.cwd()
    else:
        path = Path(resolve_config(str(data))).expanduser()
        if not path.is_file():
            raise ValueError(f"data config {str(data)!r} is neither a file nor a packaged config")
        try:
            cfg, base = yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path.parent
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ValueError(f"{path}: not a readable YAML data config ({type(e).__name__}: {first[:160]})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"data config {data!r} must be a mapping of DataModule init args, got {type(cfg).__name__}")
    if "data" in cfg and {"model", "trainer", "seed_everything"} & set(cfg):  # a full training config
        sub = cfg["data"]
        if isinstance(sub, str):
            near = base / sub
            return load_datamodule(str(near) if near.is_file() else sub, **overrides)
        cfg = dict(sub or {})
    if "init_args" in cfg:
        cfg = dict(cfg["init_args"] or {})
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(MotionTextDataModule, "data")
    try:
        parsed = parser.parse_object({"data": cfg})
    except Exception as e:  # jsonargparse's ArgumentError: a user error in the config
        raise ValueError(f"invalid data config {data if not isinstance(data, dict) else '<dict>'!r}: {e}") from None
    inst = parser.instantiate(parsed) if hasattr(parser, "instantiate") else parser.instantiate_classes(parsed)
    return inst.data


def split_dataset(dm, split: str):
    """Prepare the data (synthetic sets are generated on first use) and return the evaluation dataset of ``split``."""
    dm.prepare_data()
    dm.predict_split = split
    dm.setup("predict")
    return dm.datasets[split]


Advance = Callable[[int], None]


@contextmanager
def progress_bar(description: str, total: int, quiet: bool = False) -> Iterator[Advance]:
    """A transient rich progress bar on stderr (stdout stays clean for ``--json``); ``advance(n)`` moves it.
    Silent with ``quiet``."""
    if quiet:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, console=Console(stderr=True)) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)
