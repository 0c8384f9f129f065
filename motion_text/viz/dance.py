"""TensorBoard views of MDOT-Net's validation: :class:`DanceBoard`, a Lightning callback.

Every ``render_every_n_epochs`` validation epochs (0 = never; rank 0, not during the sanity check, only with a
TensorBoard logger) it takes the first ``num_dances`` sequences of the first validation batch (crops from frame 0),
generates their dances with the module's evaluation noise, and writes

- ``val/dance/<key>``: the generated dance (top row) and the ground-truth dance (bottom row) as skeleton frames
  evenly spaced over the window; a frame within one frame of a music beat carries a red bar (the beat marker). With
  moviepy installed, ``val/dance_video/<key>`` adds the generated dance as a video whose beat frames are marked the
  same way;
- ``val/dance_music/<key>``: the music waveform of the window with its beats (from the beat one-hot of the 35-d music
  features), over the mean joint speed of the generated and ground-truth dances and their kinematic beats (local minima
  of the smoothed speed, as Bailando's Beat Align Score finds them).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from motion_text.viz.tensorboard import _has_moviepy, render_frames

__all__ = ["DanceBoard", "mark_beats", "mean_joint_speed"]

log = logging.getLogger(__name__)


def mean_joint_speed(joints: np.ndarray, fps: float) -> np.ndarray:
    """Mean joint speed (T,) in m/s of a joint sequence (T, J, 3); the first frame repeats the second's value."""
    v = np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean(-1) * fps  # (T-1,)
    return np.concatenate([v[:1], v]) if len(v) else np.zeros(len(joints))


def mark_beats(images: np.ndarray, frames: np.ndarray, beats: np.ndarray, tolerance: int = 1) -> np.ndarray:
    """Copy of ``images`` (F, H, W, 3) uint8 with a red bar along the top of every image whose frame index
    (``frames``, (F,)) lies within ``tolerance`` frames of a beat."""
    out = images.copy()
    if len(beats) == 0:
        return out
    near = np.abs(np.asarray(frames)[:, None] - np.asarray(beats)[None, :]).min(1) <= tolerance
    bar = max(2, images.shape[1] // 20)
    out[near, :bar] = np.array([220, 30, 30], dtype=np.uint8)
    return out


class DanceBoard(Callback):
    """TensorBoard views of a music-to-dance method (see the module docstring).

    Parameters
    ----------
    render_every_n_epochs: render every that many validation epochs (0: never).
    num_dances: sequences of the first validation batch shown.
    frames: skeleton frames per row of the image strip.
    video_stride: frame stride of the video (60 fps / 4 = 15 fps by default).
    """

    def __init__(self, render_every_n_epochs: int = 0, num_dances: int = 2, frames: int = 8,
                 video_stride: int = 4) -> None:
        if render_every_n_epochs < 0 or num_dances < 1 or frames < 1 or video_stride < 1:
            raise ValueError(f"DanceBoard: render_every_n_epochs >= 0, num_dances, frames, video_stride >= 1; got "
                             f"{render_every_n_epochs}, {num_dances}, {frames}, {video_stride}")
        self.every, self.num_dances, self.frames, self.video_stride = (render_every_n_epochs, num_dances, frames,
                                                                       video_stride)
        self._batch: dict | None = None

    def _writer(self, trainer):
        from lightning.pytorch.loggers import TensorBoardLogger

        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                return logger.experiment
        return None

    def _active(self, trainer) -> bool:
        return (self.every > 0 and not trainer.sanity_checking and trainer.is_global_zero
                and (trainer.current_epoch + 1) % self.every == 0)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if batch_idx == 0 and self._active(trainer):
            self._batch = batch

    def on_validation_end(self, trainer, pl_module) -> None:
        batch, self._batch = self._batch, None
        writer = self._writer(trainer) if batch is not None else None
        if writer is None:
            return
        from motion_text.data.aistpp import AISTPP_SKELETON

        fps, step = float(pl_module.fps), trainer.global_step
        dataset = getattr(trainer.val_dataloaders, "dataset", None)
        with torch.no_grad():
            for i in range(min(self.num_dances, len(batch["key"]))):
                n, key = int(batch["length"][i]), batch["key"][i]
                gen = pl_module.joints(pl_module._generate_one(batch, i)).float().cpu().numpy()
                gt = pl_module.joints(batch["motion"][i, :n]).float().cpu().numpy()
                beats = np.asarray(batch["beats"][i])
                idx = np.linspace(0, n - 1, min(self.frames, n)).round().astype(int)
                rows = [mark_beats(render_frames(j, AISTPP_SKELETON.chains, idx, title=t), idx, beats)
                        for j, t in ((gen, "generated"), (gt, "ground truth"))]
                writer.add_image(f"val/dance/{key}", np.concatenate([np.concatenate(r, 1) for r in rows], 0), step,
                                 dataformats="HWC")
                if _has_moviepy():
                    vidx = np.arange(0, n, self.video_stride)
                    vid = mark_beats(render_frames(gen, AISTPP_SKELETON.chains, vidx), vidx, beats,
                                     tolerance=self.video_stride // 2)
                    writer.add_video(f"val/dance_video/{key}", torch.from_numpy(vid).permute(0, 3, 1, 2)[None], step,
                                     fps=fps / self.video_stride)
                wav = self._wav(dataset, int(batch["index"][i]), n / fps)
                writer.add_figure(f"val/dance_music/{key}", self._music_figure(wav, beats, gen, gt, fps), step)

    @staticmethod
    def _wav(dataset, index: int, seconds: float) -> tuple[np.ndarray, int] | None:
        """The first ``seconds`` of the sequence's wav (None when the dataset does not name it or it is unreadable:
        the figure then shows the beats only, and one warning is logged)."""
        from motion_text.data.music import load_wav

        items = getattr(dataset, "items", None)
        if items is None or not hasattr(items[index], "wav_path"):
            return None
        try:
            audio, sr = load_wav(items[index].wav_path, allow_silent=True)
        except (OSError, ValueError) as e:
            log.warning("DanceBoard: no waveform for %s: %s", items[index].wav_path, e)
            return None
        return audio[: int(seconds * sr)], sr

    @staticmethod
    def _music_figure(wav, beats: np.ndarray, gen: np.ndarray, gt: np.ndarray, fps: float):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from motion_text.metrics.dance_features import kinematic_beats_bailando

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4), sharex=True)
        if wav is not None:
            audio, sr = wav
            top.plot(np.arange(len(audio)) / sr, audio, lw=0.4, color="0.3")
        top.set_ylabel("music")
        for b in beats:
            top.axvline(b / fps, color="tab:red", lw=0.8)
            bottom.axvline(b / fps, color="tab:red", lw=0.8, alpha=0.4)
        for joints, name, colour in ((gen, "generated", "tab:blue"), (gt, "ground truth", "tab:green")):
            t = np.arange(len(joints)) / fps
            speed = mean_joint_speed(joints, fps)
            bottom.plot(t, speed, color=colour, lw=1, label=name)
            kb = kinematic_beats_bailando(joints, fps=fps)
            bottom.plot(t[kb], speed[kb], "v", color=colour, ms=4)
        bottom.set_xlabel("seconds")
        bottom.set_ylabel("mean joint speed (m/s)")
        bottom.legend(loc="upper right", fontsize=7)
        fig.tight_layout()
        return fig
