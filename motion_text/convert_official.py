"""``motion-text convert --from motpp|rehamot``: released weights of MoT++ (mesnico/MOTpp) and DropTriple
(eanson023/rehamot, :func:`convert_rehamot`) -> checkpoints of :class:`MoTCCCL` / :class:`DropTriple`.

MoT++ is trained with the TMR code base: its runs hold ``<run>/last_weights/{motion_encoder,text_encoder,
motion_decoder,contrastive_loss}.pt`` (``src/load.py``, ``extract_ckpt``) or a Lightning ``logs/checkpoints/*.ckpt``
whose ``state_dict`` keys start with those module names. The text encoder and motion decoder are TMR's ACTOR-style
modules (kept as :func:`motion_text.convert.convert_tmr` keeps them); the motion encoder is ``MoViT_v2``
(``src/model/motions/movit_v2.py``, fact-encoder on body parts) whose keys are renamed to
:class:`motion_text.models.encoders.motpp.MoTPPEncoder`'s, built with ``official_forward=True`` so that the encodings
equal the reference's. The four learnable logit scales of the CCCL loss
(``src/model/losses/info_nce_cross_consistent.py``: multimodal, t2t, m2m, text-teacher) become ``log_scales``
(c, t, m, z); the loss's unused ``sentence_proj`` / ``pose_proj`` heads are dropped.

Sizes (width, FFN width, heads, depth, VAE, body parts, feature size) are read from the weights and checked against
the converted model by a strict load; ``max_frames`` (200) and the text model cannot be read and are flags with the
reference's defaults.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from motion_text.checkpoint import read_checkpoint
from motion_text.convert import TMR_MODULES, official_state, tmr_hparams, write_checkpoint
from motion_text.models.encoders.motpp import MoTPPEncoder

__all__ = ["MOTPP_PARTS", "motpp_motion_keys", "convert_motpp", "convert_rehamot"]

#: official ``layer1_*_enc`` names -> our body-part names
MOTPP_PARTS = {"root": "root", "feet": "feet", "rarm": "right_arm", "larm": "left_arm", "torso": "torso",
               "rleg": "right_leg", "lleg": "left_leg"}

_BLOCK = {"attentions.0.norm": "norm1", "attentions.0.attn.qkv": "qkv", "attentions.0.attn.proj": "proj",
          "ffns.0.norm": "norm2", "ffns.0.layers.0.0": "mlp.fc1", "ffns.0.layers.1": "mlp.fc2"}
_STAGES = {"0": "spatial_blocks", "1": "temporal_blocks"}


def _rename(key: str) -> str | None:
    if key == "cls_token":
        return "spatial_cls"
    if key == "pos_embed":
        return "spatial_pos"
    if key.startswith(("norm.", "pose_proj.2.")):
        return key.replace("pose_proj.", "head.")
    m = re.fullmatch(r"layer1_(\w+)_enc\.mlp\.(weight|bias)", key)
    if m and m.group(1) in MOTPP_PARTS:
        return f"part_proj.{MOTPP_PARTS[m.group(1)]}.{m.group(2)}"
    m = re.fullmatch(r"transformer_layers\.([01])\.layers\.(\d+)\.(.+)\.(weight|bias)", key)
    if m and m.group(3) in _BLOCK:
        return f"{_STAGES[m.group(1)]}.{m.group(2)}.{_BLOCK[m.group(3)]}.{m.group(4)}"
    return None


def motpp_motion_keys(state: dict[str, torch.Tensor], where: str = "motion_encoder") -> dict[str, torch.Tensor]:
    """Rename an official ``MoViT_v2`` state dict (fact encoder, body parts) to :class:`MoTPPEncoder` keys.

    ``cls_token`` (1, n, d) and ``pos_embed`` (1, n + 7, d) lose their batch axis; ``temporal_cls`` (which the
    reference does not have) is zero. Raises ``ValueError`` naming ``where`` and the first key that has no
    counterpart (another MoViT variant: full-body tokens, divided attention, learnable time embedding, ...).
    """
    out = {}
    for k, v in state.items():
        new = _rename(k)
        if new is None:
            raise ValueError(f"{where}: key {k!r} is not part of MoT++'s MoViT_v2 (fact_encoder, body-parts); "
                             "only that configuration converts")
        out[new] = v[0] if k in ("cls_token", "pos_embed") else v
    if "spatial_cls" not in out:
        raise ValueError(f"{where}: no cls_token: not a MoViT_v2 motion encoder")
    out["temporal_cls"] = torch.zeros_like(out["spatial_cls"])
    return out


def _layers(state: dict, prefix: str) -> int:
    return len({k.split(".")[1] for k in state if k.startswith(prefix + ".")})


def convert_motpp(src: str | Path, out: str | Path, text_model: str = "distilbert-base-uncased",
                  max_frames: int = 200, num_heads: int = 4, lambda_start: int = 40, lambda_end: int = 100) -> Path:
    """Convert an official MoT++ run folder or ``.ckpt`` into a checkpoint of
    :class:`motion_text.methods.mot_cccl.MoTCCCL` (see the module docstring)."""
    src = Path(src)
    state = official_state(src, modules=None, source="MoT++")
    by_module: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        head, _, rest = k.partition(".")
        by_module.setdefault(head, {})[rest] = v
    if "motion_encoder" not in by_module or "cls_token" not in by_module["motion_encoder"]:
        raise ValueError(f"{src}: not a MoT++ checkpoint (no motion_encoder.cls_token of MoViT_v2)")
    motion = motpp_motion_keys(by_module["motion_encoder"], f"{src}: motion_encoder")
    kept = {f"motion_encoder.{k}": v for k, v in motion.items()}
    for name in TMR_MODULES[1:]:
        kept.update({f"{name}.{k}": v for k, v in by_module.get(name, {}).items() if not k.endswith(".pe")})
    loss = by_module.get("contrastive_loss", {})
    scales = [loss.get(f"{n}_logit_scale") for n in ("multimod", "t2t", "m2m", "t_teacher")]
    if all(s is not None for s in scales):
        kept["log_scales"] = torch.stack([s.reshape(()) for s in scales])
    try:
        d = motion["spatial_cls"].shape[-1]
        ff = motion["spatial_blocks.0.mlp.fc1.weight"].shape[0]
        text_proj = kept["text_encoder.projection.weight"]
        text_ff = kept["text_encoder.seqTransEncoder.layers.0.linear1.weight"].shape[0]
    except KeyError as e:
        raise ValueError(f"{src}: not a MoT++ checkpoint (missing {e.args[0]})") from None
    nfeats = 263 if motion["part_proj.torso.weight"].shape[1] == 60 else 251
    if motion["head.2.weight"].shape != (d, d):
        raise ValueError(f"{src}: motion latent size {motion['head.2.weight'].shape[0]} differs from the token "
                         f"width {d}; MoTPPEncoder needs them equal")
    text_layers = _layers({k[len("text_encoder.seqTransEncoder."):]: v for k, v in kept.items()
                           if k.startswith("text_encoder.seqTransEncoder.")}, "layers")
    hp = tmr_hparams(text_model=text_model, latent_dim=text_proj.shape[0], ff_size=text_ff, num_layers=text_layers,
                     nfeats=nfeats)
    hp["_class_path"] = "motion_text.methods.mot_cccl.MoTCCCL"
    hp["motion_encoder"] = {
        "class_path": "motion_text.models.encoders.motpp.MoTPPEncoder",
        "init_args": {"latent_dim": d, "ff_size": ff,
                      "num_heads": num_heads, "num_spatial_layers": _layers(motion, "spatial_blocks"),
                      "num_temporal_layers": _layers(motion, "temporal_blocks"), "max_frames": max_frames,
                      "vae": motion["spatial_cls"].shape[0] == 2, "official_forward": True},
    }
    _check_strict(MoTPPEncoder, {"skeleton": nfeats, **hp["motion_encoder"]["init_args"]}, motion,
                  f"{src}: motion_encoder")
    hp.update({"lambda_start": lambda_start, "lambda_end": lambda_end, "init_temperature": 0.1, "lr": 5e-5,
               "filter_threshold": None})
    return _write(kept, hp, out)


def _check_strict(cls, init_args: dict, state: dict, where: str) -> None:
    """Build ``cls(**init_args)`` and load ``state`` strictly: a ``ValueError`` naming ``where`` on any mismatch."""
    try:
        cls(**init_args).load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{where} does not match {cls.__name__}({init_args}): {err}") from None


def _write(state: dict, hp: dict, out: str | Path) -> Path:
    return write_checkpoint(state, hp, out)


# ---- rehamot (DropTriple) -------------------------------------------------------------------------------------------
def _rehamot_sim(src: Path) -> str | None:
    """``model.sim`` of the run's saved hydra config (``<run>/.hydra/config.yaml``), when there is one."""
    for root in (src, src.parent, src.parent.parent):
        cfg = root / ".hydra" / "config.yaml"
        if cfg.is_file():
            import yaml

            try:
                return (yaml.safe_load(cfg.read_text()) or {}).get("model", {}).get("sim")
            except yaml.YAMLError as err:
                raise ValueError(f"{cfg}: not a readable hydra config ({err})") from None
    return None


def convert_rehamot(src: str | Path, out: str | Path, text_model: str = "distilbert-base-uncased",
                    num_heads: int = 4, dropout: float = 0.1, sim: str | None = None) -> Path:
    """Convert a DropTriple / rehamot checkpoint (eanson023/rehamot ``train.py``: ``checkpoints/model_best.ckpt``
    holding ``{'model': [motion state, text state], 'epoch', 'best_rsum', ...}``) into a checkpoint of
    :class:`motion_text.methods.droptriple.DropTriple`.

    The motion encoder (``model/motionencoder/transformer.py``) has the attribute names of
    :class:`~motion_text.models.encoders.cls_transformer.ClsTransformerEncoder` (its positional table is dropped);
    the text encoder's ``fc`` (``model/textencoder/distilbert_linear.py``) becomes ``text_proj`` and its frozen
    ``text_model.*`` copy of DistilBERT is dropped (``--text-model`` names the same pretrained model). Sizes are read
    from the weights; ``num_heads`` (4) and ``dropout`` cannot be and are flags. Only ``sim: cosine`` runs convert:
    the cross-perceptual salience mapping (``sim: cpsmapping``) scores token sequences and is not implemented here;
    ``sim`` is read from the run's ``.hydra/config.yaml`` when present (else given, default cosine).
    """
    from motion_text.models.encoders.cls_transformer import ClsTransformerEncoder

    src = Path(src)
    sim = sim or _rehamot_sim(src) or "cosine"
    if sim != "cosine":
        raise ValueError(f"{src}: trained with sim={sim!r}; only the cosine DropTriple model converts (the "
                         "cross-perceptual salience mapping is not implemented)")
    if src.is_dir():
        found = sorted((src / "checkpoints").glob("model_best.ckpt")) or sorted(src.glob("**/model_best.ckpt"))
        if not found:
            raise FileNotFoundError(f"{src}: no checkpoints/model_best.ckpt (rehamot run folder)")
        src = found[0]
    ckpt = read_checkpoint(src, what="rehamot checkpoint")
    parts = ckpt.get("model")
    if not isinstance(parts, (list, tuple)) or len(parts) != 2 or not all(isinstance(p, dict) for p in parts):
        raise ValueError(f"{src}: not a rehamot checkpoint (expected 'model': [motion state dict, text state dict])")
    motion = {k: v for k, v in parts[0].items() if k != "sequence_pos_encoding.pe"}
    text = parts[1]
    try:
        emb = motion["skel_embedding.weight"]
        fc = motion["fc.weight"]
        ff = motion["seqTransEncoder.layers.0.linear1.weight"].shape[0]
        text_fc_w, text_fc_b = text["fc.weight"], text["fc.bias"]
    except KeyError as e:
        raise ValueError(f"{src}: not a rehamot checkpoint (missing {e.args[0]})") from None
    init = {"latent_dim": emb.shape[0], "embed_dim": fc.shape[0], "ff_size": ff,
            "num_layers": _layers({k[len("seqTransEncoder."):]: v for k, v in motion.items()
                                   if k.startswith("seqTransEncoder.")}, "layers"),
            "num_heads": num_heads, "dropout": dropout}
    _check_strict(ClsTransformerEncoder, {"nfeats": emb.shape[1], **init}, motion, f"{src}: motion encoder")
    state = {f"motion_encoder.{k}": v for k, v in motion.items()}
    state.update({"text_proj.weight": text_fc_w, "text_proj.bias": text_fc_b})
    hp = {"_class_path": "motion_text.methods.droptriple.DropTriple", "text_model": text_model,
          "motion_encoder": {"class_path": "motion_text.models.encoders.cls_transformer.ClsTransformerEncoder",
                             "init_args": init},
          "embed_dim": fc.shape[0], "nfeats": emb.shape[1], "num_joints": 22 if emb.shape[1] == 263 else 21,
          "fps": 20.0 if emb.shape[1] == 263 else 12.5, "skeleton": "humanml3d" if emb.shape[1] == 263 else "kitml",
          "_instantiator": "lightning.pytorch.cli.instantiate_module"}
    return _write(state, hp, out)
