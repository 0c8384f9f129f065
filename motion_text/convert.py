"""``motion-text convert --from tmr``: turn an official TMR release into a checkpoint of :class:`TMR`.

The official TMR (Mathux/TMR) saves ``<run>/last_weights/{motion_encoder,text_encoder,motion_decoder}.pt`` (one state
dict per module) and Lightning ``.ckpt`` files whose ``state_dict`` keys start with those module names. Our modules use
the same attribute names (``projection``, ``tokens``, ``sequence_pos_encoding``, ``seqTransEncoder``,
``seqTransDecoder``, ``final_layer``), so the conversion keeps the keys, drops the positional-encoding tables
(recomputed, not saved here) and writes a checkpoint with plain ``class_path``/``init_args`` hyper-parameters that
``TMR.load_from_checkpoint(out, weights_only=True)`` loads without a training config.
"""

from __future__ import annotations

from pathlib import Path

import torch

from motion_text.checkpoint import read_checkpoint

__all__ = ["convert_tmr", "tmr_hparams", "official_state", "write_checkpoint", "TMR_MODULES"]

TMR_MODULES = ("motion_encoder", "text_encoder", "motion_decoder")


def tmr_hparams(text_model: str = "distilbert-base-uncased", latent_dim: int = 256, ff_size: int = 1024,
                num_layers: int = 6, num_heads: int = 4, nfeats: int = 263) -> dict:
    """Hyper-parameters of the official TMR (``configs/model/tmr.yaml``) in the CLI's saved format."""
    enc = {"latent_dim": latent_dim, "ff_size": ff_size, "num_layers": num_layers, "num_heads": num_heads,
           "dropout": 0.1, "activation": "gelu"}
    return {
        "_class_path": "motion_text.methods.tmr.TMR",
        "text_model": text_model,
        "sentence_model": "sentence-transformers/all-mpnet-base-v2",
        "motion_encoder": {"class_path": "motion_text.models.encoders.actor.ACTORStyleEncoder", "init_args": enc},
        "text_encoder": {"class_path": "motion_text.models.encoders.actor.ACTORStyleEncoder", "init_args": enc},
        "motion_decoder": {"class_path": "motion_text.models.heads.decoder.ACTORStyleDecoder", "init_args": enc},
        "temperature": 0.1,
        "filter_threshold": 0.8,
        "lr": 1e-4,
        "nfeats": nfeats,
        "num_joints": 22,
        "fps": 20.0,
        "skeleton": "humanml3d",
        "_instantiator": "lightning.pytorch.cli.instantiate_module",
    }


def official_state(src: Path, modules: tuple[str, ...] | None = TMR_MODULES,
                   source: str = "TMR") -> dict[str, torch.Tensor]:
    """Flat ``<module>.<key>`` tensors of a TMR-style run folder (``last_weights/<module>.pt``, one state dict per
    module: ``modules``, each required, or every ``*.pt`` with ``None``) or of a Lightning ``.ckpt`` (its
    ``state_dict``), each file read by :func:`~motion_text.checkpoint.read_checkpoint` (weights only). ``source``
    names the release in messages (MoT++ run folders share TMR's layout)."""
    if src.is_dir():
        wdir = src / "last_weights" if (src / "last_weights").is_dir() else src
        if modules is None:
            files = sorted(wdir.glob("*.pt"))
            if not files:
                raise FileNotFoundError(f"{wdir}: no <module>.pt files (expected last_weights/motion_encoder.pt, ...)")
        else:
            files = [wdir / f"{name}.pt" for name in modules]
            for f in files:
                if not f.exists():
                    raise FileNotFoundError(f"{f}: missing; expected {source}'s last_weights/"
                                            f"{{{','.join(modules)}}}.pt")
        return {f"{f.stem}.{k}": v for f in files
                for k, v in read_checkpoint(f, what=f"{source} weights file").items()}
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such {source} run folder or checkpoint")
    ckpt = read_checkpoint(src, what=f"{source} checkpoint")
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict):
        raise ValueError(f"{src}: 'state_dict' is a {type(state).__name__}, not a dict of tensors")
    return {str(k): v for k, v in state.items() if torch.is_tensor(v)}


def convert_tmr(src: str | Path, out: str | Path, text_model: str = "distilbert-base-uncased") -> Path:
    """Convert an official TMR run folder or ``.ckpt`` into a checkpoint of :class:`motion_text.methods.tmr.TMR`."""
    state = official_state(Path(src))
    kept = {k: v for k, v in state.items() if k.split(".")[0] in TMR_MODULES and not k.endswith(".pe")}
    if not kept:
        raise ValueError(f"{src}: no motion_encoder./text_encoder./motion_decoder. tensors found")
    try:
        proj = kept["motion_encoder.projection.weight"]
        ff = kept["motion_encoder.seqTransEncoder.layers.0.linear1.weight"].shape[0]
    except KeyError as e:
        raise ValueError(f"{src}: not a TMR checkpoint (missing {e.args[0]})") from None
    n_layers = len({k.split(".")[3] for k in kept if k.startswith("motion_encoder.seqTransEncoder.layers.")})
    hp = tmr_hparams(text_model=text_model, latent_dim=proj.shape[0], ff_size=ff, num_layers=n_layers,
                     nfeats=proj.shape[1])
    return write_checkpoint(kept, hp, out)


def write_checkpoint(state: dict, hp: dict, out: str | Path) -> Path:
    """Write ``state`` and ``hp`` as a Lightning checkpoint that ``<Class>.load_from_checkpoint(out,
    weights_only=True)`` loads without a training config (a temporary file, then a rename)."""
    import lightning

    ckpt = {"state_dict": state, "hyper_parameters": hp, "pytorch-lightning_version": lightning.__version__,
            "epoch": 0, "global_step": 0}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(out)
    return out
