"""Callbacks shared by the methods."""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path

import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

__all__ = ["EmbeddingWriter", "AtomicCheckpointIO", "CrashSafeCheckpoints", "remove_stale_tmp_files"]

log = logging.getLogger(__name__)


class EmbeddingWriter(BasePredictionWriter):
    """Write ``predict`` outputs (dicts of tensors plus ``key`` lists) to ``output_dir``.

    Each tensor field becomes ``<name>.npy`` (rows in key order) and everything is also saved together in
    ``predictions.pt`` (loadable with ``torch.load(..., weights_only=True)``); keys go to ``keys.txt``.
    With several processes each rank writes ``rank<r>/``.
    """

    def __init__(self, output_dir: str = "predictions") -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        out = Path(self.output_dir)
        if trainer.world_size > 1:
            out = out / f"rank{trainer.global_rank}"
        out.mkdir(parents=True, exist_ok=True)
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        keys: list[str] = []
        fields: dict[str, list[torch.Tensor]] = {}
        for b in batches:
            keys.extend(b["key"])
            for name, value in b.items():
                if torch.is_tensor(value):
                    fields.setdefault(name, []).append(value.detach().float().cpu())
        merged = {name: torch.cat(vs) for name, vs in fields.items()}
        for name, value in merged.items():
            np.save(out / f"{name}.npy", value.numpy())
        (out / "keys.txt").write_text("".join(f"{k}\n" for k in keys))
        torch.save({"keys": keys, **merged}, out / "predictions.pt")


_HOST = socket.gethostname().split(".")[0].replace(".", "_") or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_tmp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files ``.<name>.<host>.<pid>.tmp`` that :class:`AtomicCheckpointIO` left in ``folder``
    when its process was killed while writing (SIGKILL after SIGTERM, OOM killer), for processes of this host that no
    longer run; files of live processes and of other hosts (a shared filesystem) are kept. Returns the files removed."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        parts = tmp.name[:-len(".tmp")].rsplit(".", 2)
        if len(parts) != 3 or parts[1] != _HOST or not parts[2].isdigit():
            continue
        if int(parts[2]) != os.getpid() and not _pid_alive(int(parts[2])):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                continue
    if removed:
        log.warning("removed %d temporary checkpoint file(s) of killed runs in %s: %s", len(removed), folder,
                    ", ".join(p.name for p in removed))
    return removed


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write a checkpoint to a temporary file in the target's folder, fsync it and ``os.replace`` it over the target.

    A crash while saving leaves the previous ``last.ckpt`` intact. Lightning's own writer (``_atomic_save``) stages the
    bytes in the system temp folder and moves them with ``shutil.move``: a rename when that folder is on the
    checkpoint's filesystem, but a plain, non-atomic copy otherwise (``/tmp`` local, runs on NFS / Lustre), and
    without an fsync. Remote paths (``s3://`` ...) keep Lightning's writer. The temporary file is
    ``.<name>.<host>.<pid>.tmp``; a process killed while writing (SIGKILL) leaves it behind, and the next save into
    that folder removes those of dead processes (:func:`remove_stale_tmp_files`). Local checkpoints are read through
    :func:`~motion_text.checkpoint.read_checkpoint` (one error naming a damaged file).
    """

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        """Lightning's loader for local files through :func:`~motion_text.checkpoint.read_checkpoint`: a missing,
        empty, truncated or foreign ``--ckpt_path`` is a :class:`~motion_text.checkpoint.CheckpointError` naming the
        file (the CLI prints it as one ``error:`` line)."""
        if weights_only is False or not isinstance(get_filesystem(path), LocalFileSystem):
            # a checkpoint the user trusts (--weights_only=false), or a remote one: Lightning's loader
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        from motion_text.checkpoint import read_checkpoint

        return read_checkpoint(path, map_location=map_location or (lambda storage, loc: storage),
                               trust_hint="; pass --weights_only=false only for a checkpoint you trust")

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp_files(path.parent)
        tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp")  # not matched by ModelCheckpoint's last*.ckpt
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        try:  # make the rename itself durable
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass


class CrashSafeCheckpoints(Callback):
    """Atomic checkpoint files, and a ``last.ckpt`` when a fit is stopped by SIGTERM; added by every method.

    * Replaces the strategy's default :class:`TorchCheckpointIO` by :class:`AtomicCheckpointIO`.
    * On SIGTERM (preemption, ``scancel``, a SLURM time limit) Lightning finishes the current batch and raises
      ``SIGTERMException``; this writes the mid-epoch state to ``<ModelCheckpoint dirpath>/last.ckpt`` so that
      ``--ckpt_path last`` resumes the run. Nothing is written when checkpointing is disabled.
    * A fit stopped by SIGTERM then exits with status 143 (128 + SIGTERM, what schedulers expect of a terminated
      job) rather than Lightning's 0, which would read as a finished run; the checkpoint is written first.
    * Temporary files of killed writers in the checkpoint folder are removed at start-up (``setup``, when the folder
      is already known) and before every save (:func:`remove_stale_tmp_files`).
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        ckpt = trainer.checkpoint_callback
        folder = getattr(ckpt, "dirpath", None)
        if folder and trainer.is_global_zero and isinstance(get_filesystem(folder), LocalFileSystem) \
                and os.path.isdir(folder):
            remove_stale_tmp_files(folder)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        exception.code = 128 + signal.SIGTERM  # Lightning's SIGTERMException is SystemExit(None): exit status 0
        ckpt = trainer.checkpoint_callback
        if ckpt is None or not ckpt.dirpath:
            return
        path = os.path.join(ckpt.dirpath, ckpt.CHECKPOINT_NAME_LAST + ckpt.FILE_EXTENSION)
        if hasattr(ckpt, "last_model_path"):  # ModelCheckpoint then overwrites this last.ckpt instead of last-v1.ckpt
            ckpt.last_model_path = path
        trainer.save_checkpoint(path)
        log.warning("SIGTERM at global step %d: saved %s; resume with --ckpt_path last", trainer.global_step, path)
