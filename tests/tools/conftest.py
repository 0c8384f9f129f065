"""One tiny TMR trained through the real CLI, shared by the tool tests (retrieve, score, TensorBoard)."""

from types import SimpleNamespace

import pytest
import yaml

from tests.methods.conftest import build_cli, tiny_tmr_config, write_config

MAX_LEN = 60


@pytest.fixture(scope="session")
def trained_tmr(h3d_learn_root, tmp_path_factory):
    """3 epochs of a tiny TMR on the 400-motion synthetic set, with the TensorBoard logger, the RetrievalBoard
    callback (rendering at the last epoch) and the default progress bar. Returns the checkpoint, a data config of
    the same data, the trainer and the TensorBoard log folder."""
    work = tmp_path_factory.mktemp("tools_tmr")
    board = {"class_path": "motion_text.viz.tensorboard.RetrievalBoard",
             "init_args": {"render_every_n_epochs": 3, "queries": 2, "max_points": 64, "top_k": 2}}
    trainer = {"max_epochs": 3, "enable_progress_bar": True, "callbacks": [board],
               "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                          "init_args": {"save_dir": str(work / "tb"), "name": "tiny_tmr"}}}
    cfg = write_config(work / "tmr.yaml", tiny_tmr_config(), h3d_learn_root, trainer=trainer,
                       data={"max_len": MAX_LEN})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback.best_model_path or cli.trainer.checkpoint_callback.last_model_path
    data = work / "data.yaml"
    data.write_text(yaml.safe_dump({"datasets": [{"name": "humanml3d", "root": str(h3d_learn_root)}],
                                    "batch_size": 16, "num_workers": 0, "max_len": MAX_LEN}))
    return SimpleNamespace(ckpt=ckpt, data=str(data), root=h3d_learn_root, trainer=cli.trainer, model=cli.model,
                           log_dir=cli.trainer.logger.log_dir, work=work)
