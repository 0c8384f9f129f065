"""CLI rows: configuration and data errors end the run at start-up with one message (no traceback); a skip report is
printed once per split and ``--data.strict=true`` turns a skip into that message.

Covered elsewhere: ``--config`` naming no file or packaged config (tests/cli/test_cli.py::
test_unknown_config_lists_available), a missing data root (test_missing_data_root_is_one_clear_message)."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest
import yaml

from motion_text.cli import main

from .conftest import TARGET, put


def _config(tmp_path, root, **data) -> str:
    cfg = {
        "model": {"class_path": "tests.cli.minimal.MeanFrame"},
        "data": {"datasets": [{"name": "humanml3d", "root": str(root)}], "batch_size": 4, "num_workers": 0,
                 "max_len": 40, **data},
        "trainer": {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                    "enable_model_summary": False, "default_root_dir": str(tmp_path)},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_unknown_config_key_is_rejected(h3d_copy, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", _config(tmp_path, h3d_copy, bogus_option=3), "--trainer.fast_dev_run=1"])
    assert "bogus_option" in capsys.readouterr().err


def _too_short(root):
    put(root / "new_joint_vecs" / f"{TARGET}.npy", np.ones((10, 263), np.float32))


def _std_zeros(root):
    put(root / "Std.npy", np.zeros(263, np.float32))


def _std_tiny(root):
    put(root / "Std.npy", np.r_[np.ones(7), 1e-30, np.ones(255)].astype(np.float32))


@pytest.mark.parametrize("corrupt,args,message", [
    (_too_short, ["--data.strict=true"],
     rf"error: .*new_joint_vecs/{TARGET}\.npy \(10 frames\): too short \(strict mode"),
    (_std_zeros, [], r"error: .*Std\.npy: 263 of 263 entries are <= 0"),
    (_std_tiny, [], r"error: .*Std\.npy: 1 of 263 entries are below 1e-06 \(index 7: 1e-30\)"),
], ids=["strict skip", "Std zeros", "Std 1e-30"])
def test_data_error_is_one_message_at_start_up(h3d_copy, tmp_path, corrupt, args, message):
    corrupt(h3d_copy)
    with pytest.raises(SystemExit, match=message):
        main(["fit", "--config", _config(tmp_path, h3d_copy), "--trainer.fast_dev_run=1", *args])


def test_skip_report_once_per_split_without_strict(h3d_copy, tmp_path, caplog):
    _too_short(h3d_copy)
    with caplog.at_level(logging.WARNING, logger="motion_text.data.readers"):
        main(["fit", "--config", _config(tmp_path, h3d_copy), "--trainer.fast_dev_run=1"])
    reports = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(reports) == 1 and reports[0].startswith("train: skipped 1 of 16: 1 too short")


@pytest.mark.parametrize("extra,expected", [([], True), (["--weights_only=false"], False)], ids=["default", "opt-in"])
def test_resume_loads_weights_only_unless_asked(h3d_copy, tmp_path, monkeypatch, extra, expected):
    import lightning as L
    import torch

    seen = {}

    @functools.wraps(L.Trainer.fit)  # the CLI reads fit's signature for its arguments
    def record(self, *args, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(L.Trainer, "fit", record)
    torch.save({"state_dict": {}}, tmp_path / "last.ckpt")
    main(["fit", "--config", _config(tmp_path, h3d_copy), "--ckpt_path", str(tmp_path / "last.ckpt"), *extra])
    assert seen["weights_only"] is expected


def test_checkpoint_holding_objects_is_refused(h3d_copy, tmp_path):
    import argparse

    import torch

    bad = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": argparse.Namespace(a=1)}}, bad)
    with pytest.raises(SystemExit, match=r"holds objects other than weights.*--weights_only=false"):
        main(["fit", "--config", _config(tmp_path, h3d_copy), "--ckpt_path", str(bad), "--trainer.fast_dev_run=1"])


@pytest.mark.parametrize("data,message", [
    ({"datasets": [{"name": "humanml4"}]}, r"error: data\.datasets: unknown dataset 'humanml4'; known: \['aistpp', "
                                            r"'humanml3d', 'kitml'\]$"),
    ({"batch_size": -1}, r"error: data\.batch_size must be an integer >= 1, got -1$"),
    ({"max_len": 0}, r"error: data\.max_len must be an integer >= 1 or null, got 0$"),
    ({"num_workers": -2}, r"error: data\.num_workers must be an integer >= 0, got -2$"),
    ({"window_seconds": 0.0}, r"error: data\.window_seconds must be a number > 0, got 0\.0$"),
], ids=["unknown dataset", "batch_size -1", "max_len 0", "num_workers -2", "window_seconds 0"])
def test_bad_data_option_is_one_message_at_start_up(h3d_copy, tmp_path, data, message):
    if "datasets" in data:
        data["datasets"][0]["root"] = str(h3d_copy)
    with pytest.raises(SystemExit, match=message):
        main(["fit", "--config", _config(tmp_path, h3d_copy, **data), "--trainer.fast_dev_run=1"])
