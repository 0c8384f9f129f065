"""RetrievalBoard: events written during the shared fit, the video path, the no-logger no-op; the progress bar."""

import logging
import math
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from motion_text.tools import retrieve as R
from motion_text.viz import tensorboard as TB


def _events(log_dir):
    ea = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    ea.Reload()
    return ea


def test_events_written_during_fit(trained_tmr):
    ea = _events(trained_tmr.log_dir)
    tags = ea.Tags()
    assert {"val/similarity", "val/embedding_projection", "val/top2_query0", "val/top2_query1"} <= set(tags["images"])
    assert {"val/retrieval_table/text_summary", "val/top_retrievals/text_summary"} <= set(tags["tensors"])
    steps = [e.step for e in ea.Images("val/similarity")]
    assert len(steps) == 3  # every validation epoch, not the sanity check
    assert [e.step for e in ea.Images("val/top2_query0")] == steps[-1:]  # render_every_n_epochs=3 of 3 epochs
    table = tensor_util.make_ndarray(ea.Tensors("val/retrieval_table/text_summary")[-1].tensor_proto).item().decode()
    r10 = ea.Scalars("val/guo_t2m_R10")[-1].value
    assert "| guo | t2m |" in table and f"{r10:.2f}" in table.split("| guo | t2m |")[1].splitlines()[0]
    strip = ea.Images("val/top2_query0")[-1]
    assert strip.height > 100 and strip.width > 3 * strip.height / 2  # 4 frames side by side, 2 rows


def test_progress_bar_is_rich_with_headline_metrics(trained_tmr):
    trainer = trained_tmr.trainer
    assert isinstance(trainer.progress_bar_callback, RichProgressBar)  # Lightning's default when rich is installed
    assert {"val/all_t2m_R10", "val/all_m2t_R10", "val/guo_t2m_R10"} <= set(trainer.progress_bar_metrics)


def test_video_path_and_fps(trained_tmr, tmp_path, monkeypatch):
    """With moviepy, add_video gets (top_k, T, 3, H, W) uint8 clips whose frame count / fps is the motion's length."""
    calls = []
    monkeypatch.setattr(TB, "_has_moviepy", lambda: True)
    monkeypatch.setattr("torch.utils.tensorboard.SummaryWriter.add_video",
                        lambda self, tag, vid, step=None, fps=4, **kw: calls.append((tag, vid, fps)))
    board = TB.RetrievalBoard(render_every_n_epochs=1, queries=1, max_points=16, top_k=2, max_frames=20)
    dm = R.load_datamodule(trained_tmr.data)
    trainer = L.Trainer(logger=TensorBoardLogger(str(tmp_path)), callbacks=[board], limit_val_batches=1,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(trained_tmr.model, datamodule=dm)
    assert len(calls) == 1
    tag, vid, fps = calls[0]
    assert tag == "val/top2_query0" and vid.dtype == torch.uint8 and vid.shape[:3] == (2, vid.shape[1], 3)
    assert vid.shape[1] <= 20
    ds = dm.datasets["val"]
    lengths = {ds.item(i).key: ds.item(i).length for i in range(len(ds))}
    (query, keys), = board.last_rendered
    longest = max(lengths[k] for k in keys)
    stride = math.ceil(longest / 20)
    assert fps == pytest.approx(20.0 / stride) and vid.shape[1] == math.ceil(longest / stride)
    assert vid.shape[1] / fps == pytest.approx(longest / 20.0, abs=stride / 20.0)  # the clip lasts as long as the motion
    ea = _events(trainer.logger.log_dir)
    assert "val/similarity" in ea.Tags()["images"]  # validate() alone also writes the dashboards


def test_no_tensorboard_logger_is_a_noop(caplog):
    board = TB.RetrievalBoard()
    from motion_text.methods.retrieval import RetrievalMethod

    class Boom(RetrievalMethod):
        def encode_text(self, texts):
            raise AssertionError("must not encode without a TensorBoard logger")

    trainer = SimpleNamespace(loggers=[CSVLogger("/tmp")], is_global_zero=True, sanity_checking=False)
    with caplog.at_level(logging.INFO, logger="motion_text.viz.tensorboard"):
        board.setup(trainer, Boom(sentence_model=None), "fit")
        board.setup(trainer, Boom(sentence_model=None), "validate")
    assert [r.message for r in caplog.records].count("RetrievalBoard: no TensorBoard logger; nothing will be "
                                                     "written") == 1
    batch = {"text": ["a"], "motion": torch.zeros(1, 4, 263), "mask": torch.ones(1, 4, dtype=torch.bool),
             "index": torch.tensor([0])}
    board.on_validation_batch_end(trainer, Boom(sentence_model=None), None, batch, 0)
    board.on_validation_end(trainer, Boom(sentence_model=None))


def test_action_word_examples():
    cases = {
        "a person walks forward": "walk", "someone kicks with the left leg": "kick",
        "the figure does a squat": "squat", "a man throws a punch with the right arm": "punch",
        "a person is waving his hand": "wave", "the man is dancing": "dance", "person jogging in place": "jog",
        "A woman sits down.": "sit", "someone is squatting": "squat", "the person rotates to the left": "rotate",
        "a person crosses the arms": "cross", "he picks something up": "pick", "": "other",
    }
    assert {c: TB.action_word(c) for c in cases} == cases


def test_pca_2d_against_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)) * np.array([5.0, 2.0, 1.0, 0.5, 0.1])
    xy = TB.pca_2d(x)
    cov = np.cov(x, rowvar=False)
    w, v = np.linalg.eigh(cov)
    ref = (x - x.mean(0)) @ v[:, ::-1][:, :2]
    for j in range(2):  # principal axes are defined up to sign
        assert np.allclose(np.abs(xy[:, j]), np.abs(ref[:, j]), atol=1e-8)
    assert np.var(xy[:, 0], ddof=1) == pytest.approx(w[-1])


def test_results_from_logged_metric_names():
    logged = {"val/all_t2m_R01": 10.0, "val/all_captions_m2t_R05": 3.0, "val/guo_t2m_MedR": 2.0, "val/rsum": 1.0,
              "train/loss": 0.1}
    assert TB.retrieval_results_from_metrics(logged) == {"all/t2m/R01": 10.0, "all_captions/m2t/R05": 3.0,
                                                         "guo/t2m/MedR": 2.0}
    with pytest.raises(ValueError, match="render_every_n_epochs"):
        TB.RetrievalBoard(render_every_n_epochs=-1)
