"""DanceBoard: dance strips with beat markers and the music/speed figure written to TensorBoard by a real MDOT fit."""

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from motion_text.viz.dance import DanceBoard, mark_beats, mean_joint_speed
from tests.methods.conftest import build_cli
from tests.methods.test_mdot import _config


def test_mark_beats_marks_only_frames_near_beats():
    images = np.zeros((4, 40, 10, 3), np.uint8)
    out = mark_beats(images, np.array([0, 10, 20, 30]), np.array([11, 29]), tolerance=1)
    red = (out[:, 0] == [220, 30, 30]).all(-1).all(-1)
    assert red.tolist() == [False, True, False, True]
    assert not images.any()  # input untouched
    assert (mark_beats(images, np.array([0, 1, 2, 3]), np.array([], int)) == 0).all()


def test_mean_joint_speed_by_hand():
    j = np.zeros((3, 2, 3))
    j[1, 0, 0], j[2, 0, 0] = 1.0, 3.0  # joint 0 moves 1 m then 2 m; joint 1 rests
    assert mean_joint_speed(j, fps=10.0).tolist() == pytest.approx([5.0, 5.0, 10.0])


def test_fit_writes_dance_views(aistpp_root, tmp_path):
    board = {"class_path": "motion_text.viz.dance.DanceBoard",
             "init_args": {"render_every_n_epochs": 2, "num_dances": 1, "frames": 3}}
    logger = {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": str(tmp_path)}}
    cfg = _config(tmp_path / "c.yaml", aistpp_root,
                  trainer={"max_epochs": 2, "limit_train_batches": 1, "limit_val_batches": 1, "logger": logger,
                           "callbacks": [board], "num_sanity_val_steps": 1})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    ea = EventAccumulator(cli.trainer.logger.log_dir, size_guidance={"images": 0})
    ea.Reload()
    strips = [t for t in ea.Tags()["images"] if t.startswith("val/dance/")]
    figures = [t for t in ea.Tags()["images"] if t.startswith("val/dance_music/")]
    assert len(strips) == 1 and len(figures) == 1
    events = ea.Images(strips[0])
    assert len(events) == 1 and events[0].step == cli.trainer.global_step  # epoch 2 of 2 only, not the sanity check
    assert 2 * events[0].width == 3 * events[0].height  # 3 square frames side by side, 2 rows (generated, truth)


def test_arguments_checked():
    with pytest.raises(ValueError, match="num_dances"):
        DanceBoard(num_dances=0)
