"""Fault rows: SIGTERM mid-epoch leaves a loadable last.ckpt and a run that resumes exactly; a crash while a checkpoint is written
leaves the previous file intact; init_from refuses foreign checkpoints with a message naming the file and the reason."""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from motion_text.callbacks import AtomicCheckpointIO
from motion_text.methods.base import InitFrom, load_weights

from . import sigterm_fit

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_mid_epoch_leaves_a_resumable_checkpoint(tiny_h3d, tmp_path):
    ckpt_dir, ready = tmp_path / "ckpt", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.sigterm_fit", str(tiny_h3d), str(ckpt_dir),
                             str(ready)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert proc.poll() is None, f"the fit ended before it was killed:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "the fit never reached the kill point"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    last = ckpt_dir / "last.ckpt"
    assert last.exists(), out
    assert "SIGTERM at global step" in out
    assert proc.returncode == 128 + signal.SIGTERM, "a preempted fit must not exit 0 like a finished one"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    steps_per_epoch = -(-len((tiny_h3d / "train.txt").read_text().split()) // 2)
    killed_at = ckpt["global_step"]
    assert sigterm_fit.KILL_AFTER < killed_at < steps_per_epoch, "saved mid-epoch, after the kill point"
    assert ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] == 0
    assert not list(ckpt_dir.glob(".*.tmp")), "no temporary file left behind"

    trainer, model, dm = sigterm_fit.make(str(tiny_h3d), str(ckpt_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, dm, ckpt_path="last")
    assert not [w for w in caught if "not resumable" in str(w.message)]
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert trainer.current_epoch == sigterm_fit.MAX_EPOCHS
    assert trainer.global_step == sigterm_fit.MAX_EPOCHS * steps_per_epoch
    # the resumed run continued the interrupted epoch where it stopped: same weights as an uninterrupted fit
    full_trainer, full, full_dm = sigterm_fit.make(str(tiny_h3d), str(tmp_path / "full"))
    full_trainer.fit(full, full_dm)
    for name, value in full.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == trainer.global_step
    assert sorted(p.name for p in ckpt_dir.iterdir()) == [f"epoch={sigterm_fit.MAX_EPOCHS - 1}-step={trainer.global_step}.ckpt", "last.ckpt"]


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    writer = AtomicCheckpointIO()
    last = tmp_path / "last.ckpt"
    writer.save_checkpoint({"global_step": 1, "w": torch.ones(1000)}, last)
    real_save = torch.save

    def crash_halfway(obj, f):
        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr("motion_text.callbacks.torch.save", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        writer.save_checkpoint({"global_step": 2, "w": torch.zeros(1000)}, last)
    monkeypatch.undo()
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 1 and torch.equal(ckpt["w"], torch.ones(1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    writer.save_checkpoint({"global_step": 3, "w": torch.zeros(1000)}, last)
    assert torch.load(last, weights_only=True)["global_step"] == 3


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    from motion_text.callbacks import _HOST

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".last.ckpt.{_HOST}.{dead.pid}.tmp"  # what SIGKILL while writing leaves (0 bytes)
    live = tmp_path / f".last.ckpt.{_HOST}.{os.getppid()}.tmp"  # another process still writing
    remote = tmp_path / f".last.ckpt.otherhost.{dead.pid}.tmp"  # a writer on another node of a shared filesystem
    for p in (stale, live, remote):
        p.write_bytes(b"")
    AtomicCheckpointIO().save_checkpoint({"global_step": 1}, tmp_path / "last.ckpt")
    assert not stale.exists() and live.exists() and remote.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, remote.name, "last.ckpt"])


# ---- init_from ------------------------------------------------------------------------------------------------------
class Vocab(torch.nn.Module):
    def __init__(self, size: int = 30):
        super().__init__()
        self.head = torch.nn.Embedding(size, 8)


def _write(path: Path, kind: str) -> None:
    if kind == "different vocabulary":
        torch.save({"state_dict": Vocab(40).state_dict()}, path)
    elif kind == "another method":
        torch.save({"state_dict": {"motion_encoder.w": torch.ones(3)}}, path)
    elif kind == "pickled object":
        torch.save({"state_dict": argparse.Namespace(x=1)}, path)
    elif kind == "truncated":
        torch.save({"state_dict": Vocab().state_dict()}, path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "not a state dict":
        torch.save(torch.zeros(3), path)


INIT_FROM = [
    ("different vocabulary", r"tensor 'head\.weight' has shape \(40, 8\) but 'head\.weight' of Vocab has \(30, 8\)"),
    ("another method", r"no tensor matched .* \(a checkpoint of another method\?\)"),
    ("pickled object", r"not a readable weights-only checkpoint for init_from \(UnpicklingError"),
    ("truncated", r"not a readable weights-only checkpoint"),
    ("not a state dict", r"expected a Lightning checkpoint or a state dict of tensors, found Tensor"),
]


@pytest.mark.parametrize("kind,pattern", INIT_FROM, ids=[k for k, _ in INIT_FROM])
def test_init_from_foreign_checkpoint_names_file_and_reason(tmp_path, kind, pattern):
    path = tmp_path / "other.ckpt"
    _write(path, kind)
    with pytest.raises(ValueError, match=pattern) as err:
        load_weights(Vocab(30), InitFrom(str(path)))
    assert str(path) in str(err.value)


def test_init_from_missing_checkpoint_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt: checkpoint for init_from not found - run `motion"):
        load_weights(Vocab(), InitFrom(str(tmp_path / "nope.ckpt"), hint="motion-text fit --config tmr.yaml"))
