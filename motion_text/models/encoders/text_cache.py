"""Per-caption cache of text-encoder outputs (memory, optionally mirrored on disk) and its fixed-order filling."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["CaptionCache", "precompute_captions"]

logger = logging.getLogger(__name__)


class CaptionCache:
    """Per-caption cache of tensors: a dict in memory, optionally mirrored as torch files on disk.

    Disk entries are ``<cache_dir>/<sha1>.pt`` where the hash covers ``namespace`` (model name and the
    settings that change the output) and the caption; they are written with ``torch.save`` (atomically,
    through a temporary file) and read with ``torch.load(weights_only=True)``.
    """

    def __init__(self, namespace: str, cache_dir: str | os.PathLike | None) -> None:
        self.namespace = namespace
        self.memory: dict[str, dict[str, Tensor]] = {}
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def _file(self, text: str) -> Path:
        assert self.cache_dir is not None
        key = hashlib.sha1(f"{self.namespace}\x00{text}".encode()).hexdigest()
        return self.cache_dir / f"{key}.pt"

    def get(self, text: str) -> dict[str, Tensor] | None:
        hit = self.memory.get(text)
        if hit is not None or self.cache_dir is None:
            return hit
        file = self._file(text)
        if not file.exists():
            return None
        try:
            hit = torch.load(file, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as err:  # a truncated or foreign file: recompute it
            logger.warning("ignoring unreadable cache file %s (%s)", file, err)
            return None
        self.memory[text] = hit
        return hit

    def put(self, text: str, value: dict[str, Tensor]) -> None:
        # Own copies (not views of the batch) and normal tensors even when filled under
        # ``torch.inference_mode`` (e.g. Lightning validation), so later training steps can use them.
        with torch.inference_mode(False):
            value = {k: v.detach().clone() for k, v in value.items()}
        self.memory[text] = value
        if self.cache_dir is not None:
            file = self._file(text)
            tmp = file.with_suffix(f".{os.getpid()}.tmp")
            torch.save(value, tmp)
            os.replace(tmp, file)

    def __len__(self) -> int:
        return len(self.memory)


def precompute_captions(encode, cache: CaptionCache, texts: Sequence[str], batch_size: int = 128) -> int:
    """Fill ``cache`` for ``texts`` in a fixed order; return the number of captions encoded.

    The sorted unique captions are cut into fixed chunks and a chunk with any missing caption is encoded whole. A
    caption's features then do not depend on the batch in which it was first met (padding changes a language model's
    output in the last bits), so resumed, multi-process and uninterrupted runs use identical features.
    """
    uniq = sorted(set(texts))
    done = 0
    for i in range(0, len(uniq), batch_size):
        chunk = uniq[i : i + batch_size]
        if any(cache.get(t) is None for t in chunk):
            for t in chunk:
                cache.memory.pop(t, None)
            encode(chunk)
            done += len(chunk)
    return done
