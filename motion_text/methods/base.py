"""Shared base of every method: data facts linked from the DataModule, weights-only initialisation, NaN guard."""

from __future__ import annotations

import hashlib
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch

__all__ = ["MotionTextMethod", "InitFrom", "NonFiniteLossError", "load_weights", "keyed_noise", "run_seed"]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss part became NaN/Inf; the message names the step, the part and the batch key ids."""


@dataclass
class InitFrom:
    """Initialise part of a model from a checkpoint (weights only; not a resume).

    ckpt: path of a Lightning checkpoint (or a plain state dict file).
    prefixes: keys of the checkpoint's state dict to take (by prefix); empty = all.
    key_map: rename prefixes, checkpoint prefix -> this model's prefix (e.g. ``{"motion_encoder.": "encoder."}``).
    hint: what to run first when the file is missing (e.g. ``motion-text fit --config lexical_phase1.yaml``).
    """

    ckpt: str
    prefixes: list[str] = field(default_factory=list)
    key_map: dict[str, str] = field(default_factory=dict)
    hint: str = ""


def load_weights(module: torch.nn.Module, spec: InitFrom) -> dict[str, list[str]]:
    """Copy matching tensors from ``spec.ckpt`` into ``module``; return which keys were loaded / are new / skipped.

    Shapes must agree for every selected key (a checkpoint of another vocabulary or method fails with a message
    naming the key and both shapes). The file is read with ``weights_only=True``.
    """
    from motion_text.checkpoint import CheckpointError, read_checkpoint

    path = Path(spec.ckpt).expanduser()
    hint = f" - run `{spec.hint}` first" if spec.hint else ""
    state = read_checkpoint(path, what="checkpoint for init_from", hint=hint)
    state = state.get("state_dict", state)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a Lightning checkpoint or a state dict of tensors, found "
                         f"{type(state).__name__}")
    own = module.state_dict()
    selected: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if spec.prefixes and not any(key.startswith(p) for p in spec.prefixes):
            continue
        new_key = key
        for src, dst in spec.key_map.items():
            if key.startswith(src):
                new_key = dst + key[len(src) :]
                break
        if new_key not in own or not torch.is_tensor(value):
            continue
        if own[new_key].shape != value.shape:
            raise CheckpointError(f"{path}: tensor {key!r} has shape {tuple(value.shape)} but {new_key!r} of "
                             f"{type(module).__name__} has {tuple(own[new_key].shape)} (a checkpoint of another "
                             "method, vocabulary or size?)")
        selected[new_key] = value
    if not selected:
        raise CheckpointError(f"{path}: no tensor matched prefixes {spec.prefixes or ['<all>']} with key map "
                         f"{spec.key_map} in {type(module).__name__} (a checkpoint of another method?)")
    module.load_state_dict(selected, strict=False)
    report = {"loaded": sorted(selected), "new": sorted(set(own) - set(selected))}
    log.info("init_from %s: loaded %d tensors, %d keep their initialisation", path, len(report["loaded"]),
             len(report["new"]))
    return report


def run_seed() -> int:
    """The run's seed (``seed_everything``), 0 when none was set."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def _key_seed(*parts) -> int:
    return int.from_bytes(hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def keyed_noise(keys: list[str], shape: tuple[int, ...], epoch: int, device: torch.device,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise (len(keys), *shape), each row seeded by (run seed, key id, epoch).

    The noise of a sample does not depend on the batch it is in, the process that holds it or whether the run was
    resumed, so DDP and 1-process runs, and resumed and uninterrupted runs, draw the same VAE samples.
    """
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(_key_seed(run_seed(), k, epoch) % 2**63))
            for k in keys]
    return torch.stack(rows).to(device=device, dtype=dtype)


class MotionTextMethod(L.LightningModule):
    """Base LightningModule of all methods.

    Parameters (linked from the DataModule by the CLI; never repeated in YAML)
    ----------
    nfeats: feature dimension of the motion representation (263 HumanML3D, 251 KIT-ML).
    num_joints: joints of the skeleton (22 / 21).
    fps: frames per second.
    skeleton: skeleton name (``humanml3d`` / ``kitml``).
    music_dim: music feature channels (35 for AIST++, 0 for data without music). Every method takes it, so the
        CLI's data link and a checkpoint's saved hyper-parameters agree for all methods (``test --ckpt_path``).
    init_from: weights-only initialisation from earlier checkpoints (see :class:`InitFrom`).
    """

    def __init__(self, nfeats: int = 263, num_joints: int = 22, fps: float = 20.0, skeleton: str = "humanml3d",
                 music_dim: int = 0, init_from: list[InitFrom] | None = None) -> None:
        super().__init__()
        self.nfeats, self.num_joints, self.fps, self.skeleton_name = nfeats, num_joints, fps, skeleton
        self.music_dim = music_dim
        self.init_from = list(init_from or [])
        self.init_reports: list[dict[str, list[str]]] = []

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Lightning's loader; ``init_from`` is not replayed (the checkpoint already holds those weights)."""
        kwargs.setdefault("init_from", [])
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``; a checkpoint whose keys or shapes do not fit this model (one of another
        method or configuration, e.g. a lexical checkpoint under a TMR config) is a
        :class:`~motion_text.checkpoint.CheckpointError` naming the file (Lightning's ``ckpt_path``) with counts and
        examples of the missing, unexpected and misshaped keys, instead of torch's list of every key."""
        from motion_text.checkpoint import CheckpointError

        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as e:
            if "Error(s) in loading state_dict" not in str(e):
                raise
            own = self.state_dict()
            missing = sorted(set(own) - set(state_dict)) if strict else []
            unexpected = sorted(set(state_dict) - set(own)) if strict else []
            shapes = sorted(k for k in set(own) & set(state_dict) if torch.is_tensor(state_dict[k])
                            and tuple(state_dict[k].shape) != tuple(own[k].shape))
            parts = [f"{len(keys)} {label} (e.g. {keys[:3]})" for label, keys in
                     (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if keys]
            source = getattr(self._trainer, "ckpt_path", None) if self._trainer is not None else None
            raise CheckpointError(f"{source or 'checkpoint'}: its weights do not fit {type(self).__name__}: "
                                  f"{'; '.join(parts) or str(e).splitlines()[0]} (a checkpoint of another method "
                                  "or configuration?)") from None

    def configure_callbacks(self):
        """Atomic checkpoint files and a ``last.ckpt`` on SIGTERM (see :class:`~motion_text.callbacks.CrashSafeCheckpoints`);
        a subclass adding callbacks must extend ``super().configure_callbacks()``."""
        from motion_text.callbacks import CrashSafeCheckpoints

        return [CrashSafeCheckpoints()]

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """Re-seed the global RNGs (dropout, sampling) from (run seed, global step) before every step, so a resumed run
        continues with the same random stream as an uninterrupted one (Lightning restores no RNG state, and creating
        a DataLoader iterator draws from the global RNG at points that differ between the two)."""
        seed = _key_seed(run_seed(), "step", self.global_step) % 2**31
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    def apply_init_from(self) -> None:
        """Load every ``init_from`` entry; call at the end of a subclass ``__init__``."""
        self.init_reports = [load_weights(self, spec if isinstance(spec, InitFrom) else InitFrom(**spec))
                             for spec in self.init_from]

    def check_finite(self, parts: dict[str, torch.Tensor], batch: dict | None = None) -> None:
        """Stop training with the step, the loss part and the batch key ids when a loss part is NaN/Inf."""
        for name, value in parts.items():
            if torch.is_tensor(value) and not torch.isfinite(value).all():
                keys = (batch or {}).get("key", [])
                raise NonFiniteLossError(f"loss part {name!r} is {value.detach().float().cpu().tolist()} at global "
                                         f"step {self.global_step} (epoch {self.current_epoch}); batch keys: "
                                         f"{list(keys)[:16]}")

    def log_parts(self, prefix: str, parts: dict[str, torch.Tensor], batch_size: int, **kwargs) -> None:
        for name, value in parts.items():
            if torch.is_tensor(value) and value.numel() == 1:
                self.log(f"{prefix}/{name}", value.detach().float(), batch_size=batch_size,
                         prog_bar=name == "loss", sync_dist=prefix != "train", **kwargs)
