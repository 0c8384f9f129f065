"""dagger-MoT++: MoT++ + CCCL with the lexical head injected through the config (as dagger-TMR, test_tmr_lexical)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from motion_text.cli import main
from motion_text.losses.contrastive import cccl
from tests.conftest_text import tiny_bert_dir

from .conftest import build_cli, check_lexical_vectors, fit_tiny, tiny_lexical_head, tiny_mot_config

MAX_FRAMES = 20  # below the clips' length (max_len 60): the frame tokens are resampled, so their mask is MoT++'s


def _dagger_mot(bert) -> dict:
    return tiny_mot_config(MAX_FRAMES, lexical_head=tiny_lexical_head(bert), init_temperature=5.0, lambda_start=0,
                           lambda_end=2)


@pytest.fixture(scope="module")
def dagger(h3d_root, tmp_path_factory):
    return fit_tiny(_dagger_mot(tiny_bert_dir(tmp_path_factory)), h3d_root, tmp_path_factory, "dagger_mot")


def test_vectors_are_lexical_and_trained_on_raw_dot_products(dagger):
    model, batch, p_t, p_m = check_lexical_vectors(dagger)
    assert batch["motion"].shape[1] > MAX_FRAMES
    # CCCL on the raw vectors (normalize=False), not on their cosines
    with torch.no_grad():
        parts = model.contrastive(p_t, p_m, batch)
        sent = model.sentence_embeddings(batch["text"])
        raw = cccl(p_t, p_m, sent, model.log_scales, lam=model.cccl_lambda, normalize=False)
        cos = cccl(p_t, p_m, sent, model.log_scales, lam=model.cccl_lambda)
    assert torch.equal(parts["loss"], raw["loss"]) and not torch.allclose(parts["loss"], cos["loss"])
    logged = set(dagger.trainer.logged_metrics)
    assert {"train/contrastive_nce", "train/contrastive_cons"} <= logged
    assert dagger.trainer.global_step == 3


def test_head_and_motpp_encoder_receive_gradients(dagger):
    """The frame tokens of MoT++ reach the lexical head: its proj and the temporal blocks are trained."""
    model = dagger.model.train()
    batch = next(iter(dagger.datamodule.train_dataloader()))
    model.zero_grad()
    _, p_m = model._motion_forward(batch["motion"], batch["mask"], lexical=True)
    p_m.sum().backward()
    assert model.lexical_head.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.motion_encoder.temporal_blocks.parameters())
    assert not any(p.requires_grad for p in model.lexical_head.text.parameters())
    model.zero_grad()


def test_sparse_tools_on_a_dagger_mot_checkpoint(dagger, h3d_root, tmp_path, capsys):
    """``index`` / ``search`` / ``terms`` read a dagger-MoT++ checkpoint as a lexical one."""
    ckpt = dagger.trainer.checkpoint_callback.last_model_path or dagger.trainer.checkpoint_callback.best_model_path
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"datasets": [{"name": "humanml3d", "root": str(h3d_root)}], "batch_size": 16,
                                    "num_workers": 0, "max_len": 60}))
    index = tmp_path / "motions.npz"
    assert main(["index", "--ckpt", ckpt, "--data", str(data), "--out", str(index), "--top-k", "16", "--quiet"]) == 0
    from motion_text.retrieval.sparse import load_index

    idx = load_index(index)
    assert idx.top_k == 16 and len(idx) == len(dagger.datamodule.test_dataloader().dataset)
    assert idx.documents().nnz > 0
    capsys.readouterr()
    assert main(["search", "--index", str(index), "--ckpt", ckpt, "--query", "a person walks", "-k", "3",
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"][0]["hits"]
    assert len(hits) <= 3 and all(h["caption"] for h in hits)
    out = tmp_path / "terms"
    assert main(["terms", "--ckpt", ckpt, "--data", str(data), "--out", str(out), "--count", "1", "--quiet"]) == 0
    assert len(list(Path(out).glob("*.png"))) == 2


def _packaged(name: str) -> dict:
    from motion_text.cli import resolve_config

    return yaml.safe_load(Path(resolve_config(name)).read_text())


@pytest.mark.parametrize(("dagger_cfg", "dense"), [("mot_cccl_lexical_synthetic.yaml", "mot_cccl_synthetic.yaml"),
                                                   ("mot_cccl_lexical.yaml", "mot_cccl.yaml")])
def test_dagger_configs_are_the_dense_configs_plus_the_head(dagger_cfg, dense):
    """The dagger-MoT++ configs are the MoT++ configs with the head, FLOPS and the initial temperature of raw dot
    products; same encoders, data, schedule and epochs."""
    a, b = _packaged(dagger_cfg), _packaged(dense)
    head = a["model"]["init_args"].pop("lexical_head")
    assert head["class_path"] == "motion_text.models.heads.lexical.VocabularyProjection"
    assert a["model"]["init_args"].pop("lambda_flops") == 1e-4
    assert a["model"]["init_args"].pop("init_temperature") == 5.0
    b["model"]["init_args"].pop("init_temperature", None)
    assert a["model"] == b["model"]
    assert a["data"] == b["data"] and a["trainer"]["max_epochs"] == b["trainer"]["max_epochs"]
    assert "max_time" not in a["trainer"]


def test_synthetic_config_fits(h3d_root, tmp_path):
    """The packaged synthetic config builds and trains (2 steps, the test's small data in place of its 2,000)."""
    cli = build_cli(["--config", "mot_cccl_lexical_synthetic.yaml",
                     f"--data.datasets=[{{name: humanml3d, root: {h3d_root}}}]", "--data.batch_size=8",
                     "--data.num_workers=0", "--trainer.max_steps=2", "--trainer.limit_val_batches=0",
                     "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                     f"--trainer.default_root_dir={tmp_path}", "--trainer.callbacks=[]"])
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 2
    assert torch.allclose(cli.model.log_scales.detach().exp().max(), torch.tensor(0.2), rtol=0.1)
