import pytest

from motion_text.losses.contrastive import cccl_lambda

from .conftest import EpochRecorder, build_cli, tiny_mot_config, write_config


def test_mot_cccl_learns_with_lambda_schedule(h3d_learn_root, tmp_path):
    # consistency from the first epoch collapses an untrained space (the paper starts it at epoch 40 of 250):
    # lambda = 0, 0, 0, 0.25, 0.5, 0.75 over this short run (4 epochs reached 2x chance for 2 of 3 seeds, 6 for 3 of 3)
    cfg = write_config(tmp_path / "m.yaml", tiny_mot_config(lambda_start=2, lambda_end=6), h3d_learn_root,
                       trainer={"max_epochs": 6})
    cli = build_cli(["--config", str(cfg)])
    rec = EpochRecorder("cccl_lambda")
    cli.trainer.callbacks.append(rec)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert rec.seen == {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.25, 4: 0.5, 5: 0.75}
    cli.trainer.test(cli.model, cli.datamodule)
    res = cli.model.test_results
    print("MoT++/CCCL tiny fit:", {k: round(v, 2) for k, v in res.items() if k.endswith(("R01", "R10"))})
    assert res["guo/t2m/R10"] > 2 * 100 * 10 / 32
    # the four scales are trained
    assert (cli.model.log_scales.detach() != cli.model.log_scales.new_full((4,), 2.302585)).all()
    # lambda after a resume comes from the restored epoch
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    cfg2 = write_config(tmp_path / "m2.yaml", tiny_mot_config(lambda_start=0, lambda_end=8), h3d_learn_root,
                        trainer={"max_epochs": 7, "limit_train_batches": 1, "limit_val_batches": 1})
    cli2 = build_cli(["--config", str(cfg2)])
    rec2 = EpochRecorder("cccl_lambda")
    cli2.trainer.callbacks.append(rec2)
    cli2.trainer.fit(cli2.model, cli2.datamodule, ckpt_path=ckpt)
    assert rec2.seen == {6: pytest.approx(cccl_lambda(6, 0, 8))}


def test_joint_dataset_fit_and_cross_dataset_test(h3d_tmr_root, kit_tmr_root, tmp_path):
    cfg = write_config(tmp_path / "j.yaml", tiny_mot_config(), h3d_tmr_root, trainer={"max_epochs": 1, "limit_train_batches": 3},
                       data={"datasets": [
                           {"name": "kitml", "root": str(kit_tmr_root), "layout": "tmr", "stages": ["train"]},
                           {"name": "humanml3d", "root": str(h3d_tmr_root), "layout": "tmr"}]})
    cli = build_cli(["--config", str(cfg)])
    assert {s.name for s in (cli.datamodule.setup("fit") or cli.datamodule.datasets["train"]).sources} == {
        "kitml", "humanml3d"}
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    # cross-dataset: test the joint checkpoint on KIT-ML's test split
    cfg_k = write_config(tmp_path / "k.yaml", tiny_mot_config(), kit_tmr_root,
                         data={"datasets": [{"name": "kitml", "root": str(kit_tmr_root), "layout": "tmr"}]})
    cli_k = build_cli(["--config", str(cfg_k)])
    cli_k.trainer.test(cli_k.model, cli_k.datamodule, ckpt_path=ckpt)
    assert "all/t2m/R10" in cli_k.model.test_results
