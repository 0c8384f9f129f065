"""MDOT-Net: music-to-dance generation with optimal transport.

A generator ``g_theta`` maps a music feature sequence ``y`` (35-d FACT/EDGE features, 60 fps), a per-sequence noise
vector and optionally a seed pose to a pose sequence ``x~ = g_theta(y)`` (6D rotations of the 24 SMPL joints + root
translation). Training minimises ("Music-to-Dance Generation with Optimal Transport", "Overall Algorithmic
Pipeline")

.. math::
    \\lambda_{OT} \\overline{OT}_\\epsilon(\\tilde X, \\tilde X', X, X') + \\lambda_{GW} GW_\\varepsilon(\\tilde X, \\tilde X', Y, Y')

on two independent mini-batches ``(X, Y)``, ``(X', Y')`` per step (the two halves of every training batch, see
``MotionTextDataModule(window_seconds=...)``): the unbiased six-term entropic OT distance
(:func:`~motion_text.losses.ot.sinkhorn_divergence_unbiased`) under the geodesic pose cost
(:func:`~motion_text.losses.dance.geodesic_pose_cost`), and the entropic Gromov-Wasserstein distance
(:func:`~motion_text.losses.ot.entropic_gromov_wasserstein`) between the cross-batch music distances
``D_ij = d(y_i, y'_j)`` and generated-dance distances ``C_ij = c(x~_i, x~'_j)``.

Choices the paper leaves open, all this project's (each with an option; the paper states no values for ``eps``,
iterations, weights or optimiser settings either, ours are listed in ``mdot.yaml``):

* **Pose cost** ``c``: the paper names only "the geodesic distance over the human pose manifold". Ours is the mean
  joint-rotation geodesic **plus** ``trans_weight`` times the mean root-translation distance (metres), since the
  rotations alone do not see where the dancer is; ``trans_weight: 0`` leaves the rotation geodesic alone.
  ``vel_weight`` adds an optional velocity term (0 by default).
* **Source distance** ``d``: the paper gives none. Ours is :func:`~motion_text.losses.dance.music_cost` on the
  **normalised** music features the generator sees (``(y - mean) / std`` with the training statistics,
  ``gw_music: normalised``). On the raw 35-d features the 20 MFCCs (std ~29) make 99.9 % of the squared frame
  distance, the onset envelope 0.08 %, chroma, onset and beat columns < 0.001 % each (synthetic AIST++, 96
  sequences, seed 0: 64 x 64 pairs of random 4-s windows, training statistics); normalised, the blocks weigh by
  their width (MFCC 56 %, chroma 35 %, onset envelope / onset / beat 3 % each).
  ``gw_music: raw`` keeps the raw features.
* **Scales**: ``D`` and ``C`` are divided by their (detached) means before GW (``gw_normalize``), so the two domains
  are compared on one scale.
* **Plan mass**: plans are probability couplings (sum 1, ``plan_mass: probability``). The paper's listings use unit
  row sums (total mass ``m``), which gives ``m`` times the OT terms and ``m^2`` times the GW term at an effective
  ``gw_eps / m`` (:mod:`motion_text.losses.ot`): relative to OT, our GW weighs ``1/m`` of the paper's.
  ``plan_mass: paper`` reproduces the literal listing.
* **OT value**: the regularised ``OT_eps = <P, C> + eps KL(P | a b^T)`` (geomloss), the function whose gradient both
  ``grad`` modes follow (the paper's listing outputs ``<P, C>``).

``music_weight > 0`` adds ``music_weight * d(y_i, y_j)`` to the OT cost between a generated and a real dance, i.e.
OT between the joint (music, dance) distributions (Courty et al., "Joint distribution optimal transportation",
NeurIPS 2017), which ties each generated dance to real dances of similar music; 0 is the paper's objective.

Evaluation (``test``): FID_k, FID_g, Div_k, Div_g (Bailando protocol) and both Beat Align Scores (Bailando and FACT
variants) of the generated dances of the full test sequences and, as a reference row, of the ground-truth test
dances; FIDs are computed against the ground-truth dances of ``fid_reference`` (default train + test, Bailando's
"all AIST++ motions").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from motion_text.data.aistpp import (
    POSE_DIM,
    features_to_rotmats,
    features_to_smpl,
    save_motion_pkl,
    smpl_forward_kinematics,
)
from motion_text.losses.dance import geodesic_pose_cost, music_cost
from motion_text.losses.ot import (
    entropic_gromov_wasserstein,
    sinkhorn_divergence,
    sinkhorn_divergence_unbiased,
)
from motion_text.methods.base import MotionTextMethod, keyed_noise
from motion_text.metrics.dance import BeatAlignMetric, DanceQualityMetric
from motion_text.metrics.dance_features import ENERGY_TERMS, geometric_features, kinetic_features
from motion_text.models.encoders.music import DanceConvGenerator

__all__ = ["MDOT"]

log = logging.getLogger(__name__)

GeneratorFactory = Callable[[int, int], nn.Module]


class MDOT(MotionTextMethod):
    """MDOT-Net with an injectable generator.

    Parameters
    ----------
    music_dim: music feature channels (linked from the data: 35).
    generator: factory ``(in_dim, out_dim) -> nn.Module`` with ``forward(x, mask)``; default
        :class:`~motion_text.models.encoders.music.DanceConvGenerator`. In YAML: ``class_path`` + ``init_args``
        minus the two dimensions (e.g. ``motion_text.models.encoders.music.DanceTransformerGenerator``).
    noise_dim: per-sequence Gaussian noise channels fed to the generator (0 = deterministic).
    seed_pose: also feed the first ground-truth pose of the window (the mean pose when generating from audio only).
    eps, sinkhorn_iters: entropic regularisation (radians of the pose cost) and iterations L of the OT terms.
    gw_eps, gw_outer_iters, gw_inner_iters: regularisation and iterations (M, L) of the GW term.
    lambda_ot, lambda_gw: loss weights.
    grad: ``envelope`` (detached plans, the gradient of the entropic objective) or ``unrolled`` (backpropagate
        through the iterations); see :mod:`motion_text.losses.ot`.
    trans_weight: weight of the root-translation term of the pose cost (this project's addition; 0 = the rotation
        geodesic alone, the only term the paper names).
    vel_weight: weight of the velocity term of the pose cost (this project's addition, 0 = off).
    music_weight: joint-distribution term of the OT cost (0 = paper).
    music_distance: ``frame_l2`` or ``sqeuclidean`` (see :func:`~motion_text.losses.dance.music_cost`).
    gw_normalize: divide ``D`` and ``C`` by their detached means before GW.
    gw_music: music features of the GW source distance ``D``: ``normalised`` (the generator's input) or ``raw``.
    plan_mass: ``probability`` (plans sum to 1) or ``paper`` (the listings' unit row sums: OT x m, GW x m^2 at
        ``gw_eps / m``).
    lr, weight_decay: AdamW.
    fid_reference: ground-truth splits whose dances form the FID reference set.
    fact_skip_frames: frames skipped at the start of each clip by the FACT Beat Align Score.
    kinetic_energy: energy-expenditure term of the FID_k / Div_k features, ``bailando`` (the published code, so the
        figures compare with published tables) or ``second_difference`` (the intended acceleration); see
        :func:`~motion_text.metrics.dance_features.kinetic_features`.
    smpl_model: optional SMPL model folder / file for joints through ``smplx`` (default: the package skeleton).
    predict_dir: where ``predict`` writes ``<key>.pkl`` (AIST++ layout) and the skeleton render.
    render_stride: ``predict`` renders every ``render_stride``-th frame (0 = no render).
    """

    def __init__(self, music_dim: int = 35, generator: GeneratorFactory | None = None, noise_dim: int = 16,
                 seed_pose: bool = False, eps: float = 0.01, sinkhorn_iters: int = 50, gw_eps: float = 0.05,
                 gw_outer_iters: int = 10, gw_inner_iters: int = 50, lambda_ot: float = 1.0, lambda_gw: float = 1.0,
                 grad: str = "envelope", trans_weight: float = 1.0, vel_weight: float = 0.0, music_weight: float = 0.0,
                 music_distance: str = "frame_l2", gw_normalize: bool = True, gw_music: str = "normalised",
                 plan_mass: str = "probability", lr: float = 1e-3,
                 weight_decay: float = 0.01, fid_reference: list[str] | None = None, fact_skip_frames: int = 0,
                 kinetic_energy: str = "bailando", smpl_model: str | None = None,
                 predict_dir: str = "predictions/mdot", render_stride: int = 3,
                 **kwargs) -> None:
        kwargs.setdefault("nfeats", POSE_DIM)
        kwargs.setdefault("num_joints", 24)
        kwargs.setdefault("fps", 60.0)
        kwargs.setdefault("skeleton", "aistpp")
        super().__init__(music_dim=music_dim, **kwargs)
        self.save_hyperparameters()
        if self.nfeats != POSE_DIM:
            raise ValueError(f"MDOT generates {POSE_DIM}-d AIST++ poses but the data has nfeats={self.nfeats}; "
                             "use data.datasets: [{name: aistpp}]")
        if grad not in ("envelope", "unrolled"):
            raise ValueError(f"grad must be 'envelope' or 'unrolled', got {grad!r}")
        if gw_music not in ("normalised", "raw"):
            raise ValueError(f"gw_music must be 'normalised' or 'raw', got {gw_music!r}")
        if plan_mass not in ("probability", "paper"):
            raise ValueError(f"plan_mass must be 'probability' or 'paper', got {plan_mass!r}")
        if kinetic_energy not in ENERGY_TERMS:
            raise ValueError(f"kinetic_energy must be one of {ENERGY_TERMS}, got {kinetic_energy!r}")
        self.noise_dim, self.seed_pose = noise_dim, seed_pose
        in_dim = music_dim + noise_dim + (POSE_DIM if seed_pose else 0)
        self.generator = (generator or DanceConvGenerator)(in_dim, POSE_DIM)
        self.register_buffer("music_mean", torch.zeros(music_dim))
        self.register_buffer("music_std", torch.ones(music_dim))
        self.register_buffer("pose_mean", torch.zeros(POSE_DIM))
        self.register_buffer("stats_set", torch.tensor(False))
        self.fid_reference = list(fid_reference or ["train", "test"])
        self.test_results: dict[str, float] = {}
        self.apply_init_from()

    # ---- data statistics ---------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Take the music normalisation and mean pose from the training data once (they are saved with the
        checkpoint, so ``predict`` from audio files needs no dataset)."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "predict" or bool(self.stats_set) or dm is None or not hasattr(dm, "dance_stats"):
            return
        stats = dm.dance_stats()
        for name in ("music_mean", "music_std", "pose_mean"):
            getattr(self, name).copy_(stats[name])
        self.stats_set.fill_(True)

    # ---- generation --------------------------------------------------------------------------------------------
    def generate(self, music: Tensor, mask: Tensor, noise: Tensor | None = None, seed: Tensor | None = None) -> Tensor:
        """Dances (B, T, 147) for raw music features (B, T, 35); ``noise`` (B, noise_dim) (standard normal if None);
        ``seed`` (B, 147) the seed pose when ``seed_pose``."""
        parts = [(music - self.music_mean) / self.music_std]
        b, t = music.shape[:2]
        if self.noise_dim:
            if noise is None:
                noise = torch.randn(b, self.noise_dim, device=music.device)
            parts.append(noise.to(music.dtype)[:, None, :].expand(b, t, self.noise_dim))
        if self.seed_pose:
            seed = self.pose_mean.expand(b, POSE_DIM) if seed is None else seed
            parts.append(seed.to(music.dtype)[:, None, :].expand(b, t, POSE_DIM))
        out = self.generator(torch.cat(parts, -1), mask)
        return (self.pose_mean + out.float()) * mask[..., None]

    def _eval_noise(self, keys: list[str]) -> Tensor | None:
        if not self.noise_dim:
            return None
        return keyed_noise([f"mdot:{k}" for k in keys], (self.noise_dim,), 0, self.device)

    def _seed(self, batch: dict) -> Tensor | None:
        return batch["motion"][:, 0] if self.seed_pose else None

    def joints(self, poses: Tensor) -> Tensor:
        """Joint positions (..., T, 24, 3) of pose features (..., T, 147)."""
        rot, trans = features_to_rotmats(poses.float())
        return smpl_forward_kinematics(rot, trans, self.hparams.smpl_model)

    # ---- losses ------------------------------------------------------------------------------------------------
    def pose_cost(self, x: Tensor, y: Tensor) -> Tensor:
        return geodesic_pose_cost(x, y, trans_weight=self.hparams.trans_weight, vel_weight=self.hparams.vel_weight)

    def _joint_cost(self, a: Tensor, b: Tensor) -> Tensor:
        """OT cost on samples ``[pose (147), normalised music]``: pose cost + music_weight * music cost."""
        cost = self.pose_cost(a[..., :POSE_DIM], b[..., :POSE_DIM])
        return cost + self.hparams.music_weight * music_cost(a[..., POSE_DIM:], b[..., POSE_DIM:],
                                                             self.hparams.music_distance)

    def objective(self, gen: Tensor, real: Tensor, music: Tensor) -> dict[str, Tensor]:
        """MDOT-Net's loss for a double batch: the first and second halves are the two independent mini-batches."""
        hp = self.hparams
        m = gen.shape[0] // 2
        if m < 2:
            raise ValueError(f"MDOT needs two mini-batches of >= 2 sequences per step, got a batch of {gen.shape[0]}")
        gen, real, music = gen[: 2 * m], real[: 2 * m].float(), music[: 2 * m].float()
        mn = (music - self.music_mean) / self.music_std  # what the generator sees
        if hp.music_weight:
            xs, ys, cost = torch.cat([gen, mn], -1), torch.cat([real, mn], -1), self._joint_cost
        else:
            xs, ys, cost = gen, real, self.pose_cost
        ot = sinkhorn_divergence_unbiased(xs[:m], xs[m:], ys[:m], ys[m:], hp.eps, cost=cost,
                                          iters=hp.sinkhorn_iters, grad=hp.grad)
        y = mn if hp.gw_music == "normalised" else music
        D = music_cost(y[:m], y[m:], hp.music_distance)
        C = self.pose_cost(gen[:m], gen[m:])
        if hp.gw_normalize:
            D, C = D / D.detach().mean().clamp_min(1e-8), C / C.detach().mean().clamp_min(1e-8)
        paper = hp.plan_mass == "paper"
        gw = entropic_gromov_wasserstein(D, C, hp.gw_eps, outer_iters=hp.gw_outer_iters, inner_iters=hp.gw_inner_iters,
                                         grad=hp.grad, marginals="unit" if paper else "probability")["loss"]
        if paper:  # unit-row-sum plans: every OT term is m times the probability-plan value
            ot = {k: m * v for k, v in ot.items()}
        loss = hp.lambda_ot * ot["loss"] + hp.lambda_gw * gw
        return {"loss": loss, "ot": ot["loss"], "gw": gw, "ot_gen_real": ot["ot_x_y"], "ot_real_real": ot["ot_y_y2"]}

    # ---- steps -------------------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        gen = self.generate(batch["music"], batch["mask"], seed=self._seed(batch))
        parts = self.objective(gen, batch["motion"], batch["music"])
        self.check_finite(parts, batch)
        self.log_parts("train", parts, batch_size=gen.shape[0] // 2)
        return parts["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Debiased Sinkhorn divergence (Genevay et al., AISTATS 2018, eq. 7) between generated and real windows
        under the pose cost, with eval noise seeded per sequence (``val/sinkhorn``, also ``val/loss``)."""
        if batch["motion"].shape[0] < 2:
            return
        gen = self.generate(batch["music"], batch["mask"], self._eval_noise(batch["key"]), self._seed(batch))
        div = sinkhorn_divergence(gen, batch["motion"].float(), self.hparams.eps, cost=self.pose_cost,
                                  iters=self.hparams.sinkhorn_iters)["loss"]
        self.log_parts("val", {"sinkhorn": div, "loss": div}, batch_size=gen.shape[0])

    def _generate_one(self, batch: dict, i: int) -> Tensor:
        n = int(batch["length"][i])
        mask = torch.ones(1, n, dtype=torch.bool, device=self.device)
        noise = self._eval_noise([batch["key"][i]])
        has_seed = self.seed_pose and bool(batch["motion"][i, 0].abs().sum() > 0)  # audio-only input: mean pose
        seed = batch["motion"][i : i + 1, 0] if has_seed else None
        return self.generate(batch["music"][i : i + 1, :n], mask, noise, seed)[0]

    def on_test_epoch_start(self) -> None:
        fps, energy = float(self.fps), self.hparams.kinetic_energy
        self.metrics = nn.ModuleDict({
            "generated_quality": DanceQualityMetric(fps=fps, energy_term=energy),
            "ground_truth_quality": DanceQualityMetric(fps=fps, energy_term=energy),
            "generated_beats": BeatAlignMetric(fps=fps, fact_skip_frames=self.hparams.fact_skip_frames),
            "ground_truth_beats": BeatAlignMetric(fps=fps, fact_skip_frames=self.hparams.fact_skip_frames),
        }).to(self.device)
        dm = self.trainer.datamodule
        if self.global_rank == 0:  # the reference set once (the metric states are concatenated across ranks)
            ref = dm.reference_dances(self.fid_reference)
            joints = [self.joints(r["motion"].to(self.device)).cpu().numpy() for r in ref]
            k = np.stack([kinetic_features(j, fps, energy_term=energy) for j in joints])
            g = np.stack([geometric_features(j) for j in joints])
            for name in ("generated_quality", "ground_truth_quality"):
                self.metrics[name].update_target_features(k, g)
            log.info("FID reference: %d ground-truth dances of %s", len(ref), "+".join(self.fid_reference))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        for i in range(len(batch["key"])):
            n = int(batch["length"][i])
            gen = self.joints(self._generate_one(batch, i))
            gt = self.joints(batch["motion"][i, :n])
            beats = [batch["beats"][i]]
            self.metrics["generated_quality"].update([gen])
            self.metrics["ground_truth_quality"].update([gt])
            self.metrics["generated_beats"].update([gen], beats)
            self.metrics["ground_truth_beats"].update([gt], beats)

    def on_test_epoch_end(self) -> None:
        results = {}
        for row in ("generated", "ground_truth"):
            for kind in ("quality", "beats"):
                for name, value in self.metrics[f"{row}_{kind}"].compute().items():
                    results[f"test/{row}/{name}"] = float(value)
        for name, value in results.items():
            self.log(name, value, sync_dist=False, rank_zero_only=True)
        self.test_results = results
        log.info("MDOT test (FID against the ground truth of %s): %s", "+".join(self.fid_reference), results)

    def predict_step(self, batch: dict, batch_idx: int) -> list[dict]:
        """Generate a dance per music (whole length), write ``<predict_dir>/<key>.pkl`` in the AIST++ motion layout and
        a skeleton animation with beat markers (MP4 with ffmpeg, else GIF)."""
        from motion_text.data.aistpp import AISTPP_SKELETON
        from motion_text.viz.skeleton import render_animation

        out_dir = Path(self.hparams.predict_dir)
        results = []
        for i, key in enumerate(batch["key"]):
            poses = self._generate_one(batch, i).cpu()
            pkl = save_motion_pkl(out_dir / f"{key}.pkl", **features_to_smpl(poses))
            item = {"key": key, "pkl": str(pkl), "frames": len(poses)}
            stride = self.hparams.render_stride
            if stride:
                joints = self.joints(poses).numpy()[::stride]
                beats = np.asarray(batch["beats"][i]) // stride
                item["render"] = str(render_animation(joints, AISTPP_SKELETON.chains, float(self.fps) / stride,
                                                      out_dir / f"{key}", title=f"MDOT: {key}", beats=beats))
            results.append(item)
        return results

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
