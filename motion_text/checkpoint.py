"""Reading checkpoints that may be foreign, damaged or hostile: one error naming the file, nothing unpickled or
imported that the project does not own.

Every reader of a checkpoint (``--ckpt_path``, ``init_from``, ``retrieve`` / ``score`` / ``index`` / ``search`` /
``sparsity`` / ``terms``, ``convert``) goes through :func:`read_checkpoint`; the method class a checkpoint names in
``hyper_parameters["_class_path"]`` is resolved by :func:`method_class`, which checks the name against the project's
method modules before importing anything (importing a module runs its top-level code, so a name such as
``this.Nothing`` in an untrusted file would run the ``this`` module).
"""

from __future__ import annotations

import pickle
import pkgutil
import re
from pathlib import Path

import torch

__all__ = ["CheckpointError", "CheckpointNotFoundError", "read_checkpoint", "method_class", "check_class_paths",
           "check_resume_checkpoint", "class_paths", "METHODS_PACKAGE"]

#: the package whose modules hold the method classes a checkpoint may name
METHODS_PACKAGE = "motion_text.methods"
_CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message starts with the file and says what is wrong."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


def _first_line(e: BaseException, limit: int = 160) -> str:
    """``Type: first line of the message`` without terminal escapes, cut at ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > limit:
        first = first[: limit - 3].rstrip() + "..."
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def read_checkpoint(path: str | Path, *, map_location="cpu", mmap: bool = False,
                    what: str = "checkpoint", hint: str = "", trust_hint: str = "") -> dict:
    """``torch.load(..., weights_only=True)`` of a local checkpoint file (tensors, containers and primitive types
    only), every failure a :class:`CheckpointError` naming the file.

    Parameters
    ----------
    path: the file.
    mmap: memory-map the tensors (zip checkpoints; a legacy file is read without).
    what: the noun used in messages ("checkpoint", "checkpoint for init_from").
    hint: appended to the missing-file message (e.g. what to run first).
    trust_hint: appended when the file holds objects other than weights (e.g. how to allow them).

    Raises
    ------
    CheckpointNotFoundError: no such file (or a folder).
    CheckpointError: empty, truncated, not a torch file, holding pickled objects, or not a dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        kind = "is a folder, not a file" if path.is_dir() else "not found"
        raise CheckpointNotFoundError(f"{path}: {what} {kind}{hint}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: {what} is empty (0 bytes; a write that was interrupted?)")
    kind = "weights-only "
    try:
        try:
            state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            state = torch.load(path, map_location=map_location, weights_only=True)  # legacy file: no mmap
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e).lower() or "unsupported global" in str(e).lower():
            raise CheckpointError(f"{path}: not a readable {kind}{what} ({_first_line(e)}): it holds objects "
                                  f"other than weights and was not loaded{trust_hint}") from None
        raise CheckpointError(f"{path}: not a readable {kind}{what} ({_first_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, random bytes, EOF...: one message naming the file
        raise CheckpointError(f"{path}: not a readable {kind}{what} (truncated or not a torch file; "
                              f"{_first_line(e)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a Lightning checkpoint or a state dict of tensors, found "
                              f"{type(state).__name__}")
    return state


def _method_modules() -> set[str]:
    methods_dir = Path(__file__).resolve().with_name("methods")  # listed from disk: nothing is imported
    return {f"{METHODS_PACKAGE}.{m.name}" for m in pkgutil.iter_modules([str(methods_dir)])}


def _is_method_class(cls: type) -> bool:
    """Whether ``cls`` derives from :class:`motion_text.methods.base.MotionTextMethod` (checked by name, so that this
    module imports no method)."""
    return any(f"{c.__module__}.{c.__qualname__}" == f"{METHODS_PACKAGE}.base.MotionTextMethod" for c in cls.__mro__)


def method_class(class_path: object, base: type | None = None, source: str | Path = "checkpoint") -> type:
    """The project method class named ``class_path`` (``motion_text.methods.<module>.<Class>``), a subclass of
    ``base`` (default :class:`~motion_text.methods.base.MotionTextMethod`).

    The module name is checked against the modules of :data:`METHODS_PACKAGE` (listed without importing them) before
    anything is imported; any other name is a :class:`CheckpointError` naming ``source``.
    """
    if not isinstance(class_path, str) or not _CLASS_PATH.fullmatch(class_path):
        raise CheckpointError(f"{source}: hyper_parameters has no usable '_class_path' (got {class_path!r}); "
                              "expected a checkpoint written by `motion-text fit` or `motion-text convert`")
    module_name, _, name = class_path.rpartition(".")
    if module_name not in _method_modules():
        raise CheckpointError(f"{source}: '_class_path' {class_path!r} is not a method of this project (expected "
                              f"{METHODS_PACKAGE}.<module>.<Class> with <module> one of "
                              f"{sorted(m.rpartition('.')[2] for m in _method_modules())}); nothing was imported")
    import importlib

    cls = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(cls, type) and (issubclass(cls, base) if base is not None else _is_method_class(cls))):
        name, where = (base.__name__, f"{base.__module__}.{base.__qualname__}") if base is not None else (
            "MotionTextMethod", f"{METHODS_PACKAGE}.base.MotionTextMethod")
        raise CheckpointError(f"{source}: {class_path!r} is not a {name} (a subclass of {where})")
    return cls


def class_paths(node: object) -> set[str]:
    """Every ``class_path`` / ``_class_path`` string in a nested config or hyper-parameter dict."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("class_path", "_class_path") and isinstance(value, str):
                found.add(value)
            found |= class_paths(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found |= class_paths(value)
    return found


def check_class_paths(hparams: object, source: str | Path = "checkpoint", trusted: set[str] = frozenset()) -> None:
    """Refuse saved hyper-parameters naming a ``class_path`` outside the ``motion_text`` package (and not in
    ``trusted``, e.g. the names of the user's own config).

    Lightning rebuilds the nested modules (encoders, decoders) of a checkpoint with jsonargparse, which imports every
    ``class_path`` it finds; a name outside the package is a :class:`CheckpointError` before anything is imported.
    """
    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("class_path", "_class_path") and value not in trusted and not (
                        isinstance(value, str) and _CLASS_PATH.fullmatch(value) and value.startswith("motion_text.")):
                    raise CheckpointError(f"{source}: hyper-parameter {where}{key} = {value!r} is not a class of the "
                                          "motion_text package; nothing was imported")
                walk(value, f"{where}{key}.")
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f"{where}{i}.")

    walk(hparams, "")


#: ``--ckpt_path`` values Lightning resolves itself
_SPECIAL_CKPT = ("best", "last", "hpc")


def check_resume_checkpoint(ckpt_path: object, config_model: object, trust_hint: str = "") -> None:
    """Check a ``--ckpt_path`` before LightningCLI reads its hyper-parameters into the config.

    LightningCLI merges the checkpoint's ``hyper_parameters`` (class paths included) into the model's config and so
    imports whatever class they name. Here: a missing or damaged file is a :class:`CheckpointError` naming it; a
    checkpoint of another method than the config's model (a lexical checkpoint under a TMR config) is refused with
    both names; without a model in the config, the checkpoint's class must be a project method
    (:func:`method_class`); nested class paths must belong to ``motion_text`` or to the config.
    """
    if not isinstance(ckpt_path, (str, Path)) or not str(ckpt_path):
        return
    text = str(ckpt_path)
    if text in _SPECIAL_CKPT or text.startswith("registry") or "://" in text:
        return
    state = read_checkpoint(text, mmap=True, trust_hint=trust_hint)
    hp = state.get("hyper_parameters")
    if hp is None:
        return
    if not isinstance(hp, dict):
        raise CheckpointError(f"{text}: 'hyper_parameters' is a {type(hp).__name__}, not a dict")
    saved = hp.get("_class_path")
    config = config_model if isinstance(config_model, dict) else getattr(config_model, "__dict__", {})
    configured = config.get("class_path") if isinstance(config, dict) else None
    if saved is not None and configured and saved != configured:
        raise CheckpointError(f"{text}: a checkpoint of {saved}, but the config builds {configured}; give the "
                              "config the checkpoint was trained with (or use init_from to copy matching weights)")
    if saved is not None and not configured:
        method_class(saved, source=text)
    trusted = class_paths(_plain(config_model))
    check_class_paths(hp, source=text, trusted=trusted)


def _plain(node: object) -> object:
    """A jsonargparse Namespace (or nested ones) as plain dicts and lists."""
    if hasattr(node, "as_dict"):
        return node.as_dict()
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node
