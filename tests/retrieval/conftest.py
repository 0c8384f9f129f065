"""One tiny phase-4 lexical model trained through the real CLI, shared by the sparse-retrieval and captioning tool
tests (index, search, sparsity, predict with captions)."""

from types import SimpleNamespace

import pytest
import yaml

from tests.conftest_text import tiny_bert_dir
from tests.methods.conftest import build_cli, write_config

MAX_LEN = 24


def tiny_lexical(bert, phase=4, **kw) -> dict:
    return {"class_path": "motion_text.methods.lexical.LexicalPretraining",
            "init_args": {"phase": phase, "text_model": str(bert), "text_max_length": 24, "motion_dim": 16,
                          "motion_depth": 1, "motion_heads": 2, "max_tokens_t": 3, "decoder_layers": 1,
                          "curriculum_epochs": 1, "chunk_size": 16, "lr_all": 3e-3, **kw}}


@pytest.fixture(scope="session")
def trained_lexical(h3d_root, tmp_path_factory):
    """A few steps of a tiny phase-4 lexical model (tiny random BERT, 60 synthetic motions). Returns the
    checkpoint, a data config of the same data (joints on), the model and the work folder."""
    bert = tiny_bert_dir(tmp_path_factory)
    work = tmp_path_factory.mktemp("lexical_tools")
    cfg = write_config(work / "lex.yaml", tiny_lexical(bert), h3d_root, data={"joints": True, "max_len": MAX_LEN},
                       trainer={"max_steps": 4, "limit_val_batches": 0, "num_sanity_val_steps": 0})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    data = work / "data.yaml"
    data.write_text(yaml.safe_dump({"datasets": [{"name": "humanml3d", "root": str(h3d_root)}], "batch_size": 16,
                                    "num_workers": 0, "max_len": MAX_LEN, "joints": True}))
    return SimpleNamespace(ckpt=ckpt, data=str(data), model=cli.model.eval(), work=work, bert=bert, root=h3d_root)
