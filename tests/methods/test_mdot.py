"""MDOT-Net: objective, learning on synthetic AIST++, test metrics, predict, bf16-mixed and 2-process DDP fits."""

import math

import numpy as np
import pytest
import torch
import yaml

from motion_text.data.aistpp import POSE_DIM, load_motion_pkl, poses_to_features
from motion_text.losses.dance import geodesic_pose_cost, music_cost
from motion_text.losses.ot import entropic_gromov_wasserstein, sinkhorn_divergence_unbiased
from motion_text.methods.mdot import MDOT

from .test_precision_ddp import _run

TINY_GEN = {"class_path": "motion_text.models.encoders.music.DanceConvGenerator",
            "init_args": {"hidden": 32, "num_layers": 4}}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors on a shared 2-core machine: one intra-op thread avoids spinning threads."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(**kw):
    from motion_text.models.encoders.music import DanceConvGenerator

    return MDOT(generator=lambda i, o: DanceConvGenerator(i, o, hidden=16, num_layers=2), noise_dim=4,
                sinkhorn_iters=30, gw_outer_iters=5, gw_inner_iters=30, **kw)


def _batch(b=6, t=20, seed=0):
    rng = np.random.default_rng(seed)
    motion = torch.stack([poses_to_features(rng.normal(scale=0.5, size=(t, 72)), rng.normal(size=(t, 3)))
                          for _ in range(b)])
    music = torch.tensor(rng.normal(size=(b, t, 35)), dtype=torch.float32)
    return motion, music


@pytest.mark.parametrize("grad", ["envelope", "unrolled"])
def test_objective_is_the_papers_sum_with_finite_gradients(grad):
    model = _model(grad=grad, music_weight=0.0)
    motion, music = _batch()
    gen = model.generate(music, torch.ones(6, 20, dtype=torch.bool))
    parts = model.objective(gen, motion, music)
    # by hand: six-term unbiased OT on the two halves + GW of the mean-normalised cross-batch distances
    ot = sinkhorn_divergence_unbiased(gen[:3], gen[3:], motion[:3], motion[3:], 0.01, cost=geodesic_pose_cost,
                                      iters=30)["loss"]
    D, C = music_cost(music[:3], music[3:]), geodesic_pose_cost(gen[:3], gen[3:])
    gw = entropic_gromov_wasserstein(D / D.mean(), C / C.mean(), 0.05, outer_iters=5, inner_iters=30)["loss"]
    torch.testing.assert_close(parts["ot"], ot)
    torch.testing.assert_close(parts["gw"], gw)
    torch.testing.assert_close(parts["loss"], ot + gw)
    parts["loss"].backward()
    grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    # X~ = X, X~' = X' (generated batches not independent of the real ones): the six terms reduce to
    # OT(X, X) + OT(X', X') - 2 OT(X, X'), where the entropic self-terms OT_eps(X, X) ~ eps log m (a near-diagonal
    # plan) are not 0; the estimator is zero only in expectation over independent batches
    same = model.objective(motion, motion, music)
    terms = sinkhorn_divergence_unbiased(motion[:3], motion[3:], motion[:3], motion[3:], 0.01,
                                         cost=geodesic_pose_cost, iters=30)
    torch.testing.assert_close(terms["ot_x_y"], torch.tensor(0.01 * math.log(3)), rtol=1e-2, atol=0)
    torch.testing.assert_close(same["ot"], terms["ot_x_y"] + terms["ot_x2_y2"] - 2 * terms["ot_x_x2"],
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="two mini-batches"):
        model.objective(gen[:3], motion[:3], music[:3])


def _with_music_stats(model, seed=1):
    """Training statistics far from (0, 1), one scale per feature block, as on real music features."""
    rng = np.random.default_rng(seed)
    model.music_mean.copy_(torch.tensor(rng.normal(size=35) * 10, dtype=torch.float32))
    model.music_std.copy_(torch.tensor(np.exp(rng.normal(size=35) * 2), dtype=torch.float32))
    return model


def test_gw_source_distance_uses_the_normalised_music_the_generator_sees():
    model = _with_music_stats(_model())
    motion, music = _batch()
    gen = model.generate(music, torch.ones(6, 20, dtype=torch.bool)).detach()
    parts = model.objective(gen, motion, music)
    # by hand: D on (y - mean) / std, C on the generated dances, both mean-normalised
    mn = (music - model.music_mean) / model.music_std
    D, C = music_cost(mn[:3], mn[3:]), geodesic_pose_cost(gen[:3], gen[3:])
    gw = entropic_gromov_wasserstein(D / D.mean(), C / C.mean(), 0.05, outer_iters=5, inner_iters=30)["loss"]
    torch.testing.assert_close(parts["gw"], gw)
    # invariant to a per-column rescaling of the features (statistics rescaled alike, as training would give)
    scale = torch.tensor(np.exp(np.random.default_rng(2).normal(size=35) * 3), dtype=torch.float32)
    scaled = _with_music_stats(_model())
    scaled.music_mean.mul_(scale)
    scaled.music_std.mul_(scale)
    torch.testing.assert_close(scaled.objective(gen, motion, music * scale)["gw"], parts["gw"], rtol=1e-4, atol=1e-6)
    # gw_music: raw (the earlier behaviour) is not: the largest columns dominate D
    raw = _with_music_stats(_model(gw_music="raw"))
    D_raw = music_cost(music[:3], music[3:])
    gw_raw = entropic_gromov_wasserstein(D_raw / D_raw.mean(), C / C.mean(), 0.05, outer_iters=5,
                                         inner_iters=30)["loss"]
    torch.testing.assert_close(raw.objective(gen, motion, music)["gw"], gw_raw)
    D_raw_scaled = music_cost((music * scale)[:3], (music * scale)[3:])
    assert not torch.allclose(D_raw_scaled / D_raw_scaled.mean(), D_raw / D_raw.mean(), rtol=1e-2)


def test_plan_mass_paper_is_the_listings_weighting():
    """Unit-row-sum plans: every OT term m times, GW m^2 times at gw_eps / m (m = 3 per mini-batch)."""
    motion, music = _batch()
    ours, paper = _model(), _model(plan_mass="paper")
    paper.load_state_dict(ours.state_dict())
    gen = ours.generate(music, torch.ones(6, 20, dtype=torch.bool), noise=torch.zeros(6, 4)).detach()
    a, b = ours.objective(gen, motion, music), paper.objective(gen, motion, music)
    torch.testing.assert_close(b["ot"], 3 * a["ot"])
    D, C = music_cost(music[:3], music[3:]), geodesic_pose_cost(gen[:3], gen[3:])
    gw = entropic_gromov_wasserstein(D / D.mean(), C / C.mean(), 0.05 / 3, outer_iters=5, inner_iters=30)["loss"]
    torch.testing.assert_close(b["gw"], 9 * gw)
    torch.testing.assert_close(b["loss"], 3 * a["ot"] + 9 * gw)
    with pytest.raises(ValueError, match="plan_mass"):
        _model(plan_mass="unit")
    with pytest.raises(ValueError, match="gw_music"):
        _model(gw_music="normalized")
    with pytest.raises(ValueError, match="kinetic_energy"):
        _model(kinetic_energy="central")


def test_root_translation_term_is_ours_and_can_be_turned_off():
    """Same joint rotations, root shifted by a constant delta: cost = trans_weight |delta| (0 when turned off)."""
    rng = np.random.default_rng(4)
    aa, tr = rng.normal(scale=0.5, size=(20, 72)), rng.normal(size=(20, 3))
    delta = np.array([0.3, -0.4, 1.2])  # |delta| = 1.3
    x = poses_to_features(aa, tr)[None].double()
    y = poses_to_features(aa, tr + delta)[None].double()
    for w in (1.0, 0.5, 0.0):
        torch.testing.assert_close(_model(trans_weight=w).pose_cost(x, y), torch.tensor([[1.3 * w]],
                                                                                        dtype=torch.float64))


def _config(path, root, model_args=None, data=None, trainer=None):
    cfg = {
        "seed_everything": 0,
        "model": {"class_path": "motion_text.methods.mdot.MDOT",
                  "init_args": {"generator": TINY_GEN, "noise_dim": 4, "sinkhorn_iters": 30, "gw_outer_iters": 5,
                                "gw_inner_iters": 30, "predict_dir": str(path.parent / "pred"),
                                **(model_args or {})}},
        "data": {"datasets": [{"name": "aistpp", "root": str(root)}], "batch_size": 2, "num_workers": 0,
                 "window_seconds": 1.0, **(data or {})},
        "trainer": {"logger": False, "enable_progress_bar": False, "max_epochs": 1,
                    "default_root_dir": str(path.parent), "enable_model_summary": False, **(trainer or {})},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_lowers_val_sinkhorn_and_test_reports_both_rows(aistpp_root, tmp_path):
    """A cheap version of the learning check: 40 steps on 7 training sequences lower the validation Sinkhorn
    divergence; ``test`` reports FID/Div/BAS for the generated and the ground-truth dances."""
    from tests.methods.conftest import build_cli

    cfg = _config(tmp_path / "c.yaml", aistpp_root, {"lr": 3e-3},
                  trainer={"max_epochs": 40, "check_val_every_n_epoch": 1000, "num_sanity_val_steps": 0})
    cli = build_cli(["--config", str(cfg)])
    trainer, model, dm = cli.trainer, cli.model, cli.datamodule
    before = trainer.validate(model, datamodule=dm, verbose=False)[0]["val/sinkhorn"]
    trainer.fit(model, datamodule=dm)
    after = trainer.validate(model, datamodule=dm, verbose=False)[0]["val/sinkhorn"]
    assert after < 0.5 * before, (before, after)

    trainer.test(model, datamodule=dm, verbose=False)
    res = model.test_results
    for row in ("generated", "ground_truth"):
        for name in ("FID_k", "FID_g", "Div_k", "Div_g", "BAS_bailando", "BAS_fact"):
            assert np.isfinite(res[f"test/{row}/{name}"])
    # synthetic ground truth: kinematic beats on the music beats
    assert res["test/ground_truth/BAS_fact"] > 0.8


def test_cli_predict_writes_aistpp_pkl_and_render(aistpp_root, tmp_path):
    from motion_text.cli import main

    wav = sorted((aistpp_root / "wav").glob("*.wav"))[0]
    cfg = _config(tmp_path / "c.yaml", aistpp_root, {"render_stride": 30}, data={"predict_music": [str(wav)]})
    main(["fit", "--config", str(cfg), "--trainer.max_steps=1", "--trainer.limit_val_batches=1"])
    ckpt = next((tmp_path).rglob("*.ckpt"))
    main(["predict", "--config", str(cfg), "--ckpt_path", str(ckpt)])
    out = tmp_path / "pred"
    data = load_motion_pkl(out / f"{wav.stem}.pkl")  # readable by the restricted loader
    assert data["smpl_poses"].shape[1] == 72 and len(data["smpl_poses"]) > 200
    renders = [p for p in out.iterdir() if p.suffix in (".gif", ".mp4")]
    assert len(renders) == 1 and renders[0].stat().st_size > 0


def test_bf16_mixed_fit(aistpp_root, tmp_path):
    from motion_text.cli import main

    cfg = _config(tmp_path / "c.yaml", aistpp_root, {"generator": {**TINY_GEN, "class_path":
                  "motion_text.models.encoders.music.DanceTransformerGenerator",
                  "init_args": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2}}})
    main(["fit", "--config", str(cfg), "--trainer.precision=bf16-mixed", "--trainer.fast_dev_run=2"])


def test_two_process_ddp_fit(aistpp_root, tmp_path):
    cfg = _config(tmp_path / "c.yaml", aistpp_root)
    out = _run(["fit", "--config", str(cfg), "--trainer.strategy=ddp", "--trainer.devices=2",
                "--trainer.accelerator=cpu", "--trainer.max_steps=2", "--trainer.max_epochs=5", "--trainer.limit_val_batches=1",
                "--trainer.num_sanity_val_steps=0"], tmp_path)
    assert "max_steps=2" in out


def test_pose_dim_guard():
    with pytest.raises(ValueError, match="147-d AIST\\+\\+ poses"):
        MDOT(nfeats=263)
    assert POSE_DIM == 147
