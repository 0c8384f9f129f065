"""Lexical four-phase pretraining: phases train, the chain loads the previous phases' weights, curricula."""

import pytest
import torch

from tests.conftest_text import tiny_bert_dir

from .conftest import build_cli, write_config


def _model(bert, phase, **kw):
    return {"class_path": "motion_text.methods.lexical.LexicalPretraining",
            "init_args": {"phase": phase, "text_model": str(bert), "text_max_length": 24, "motion_dim": 16,
                          "motion_depth": 1, "motion_heads": 2, "max_tokens_t": None if phase == 2 else 3,
                          "decoder_layers": 1, "curriculum_epochs": 3, "chunk_size": 16, **kw}}


def _ckpt(cli):
    return cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path


@pytest.fixture(scope="module")
def chain(h3d_root, tmp_path_factory):
    bert = tiny_bert_dir(tmp_path_factory)
    root = tmp_path_factory.mktemp("lexchain")
    clis = {}
    for phase in (1, 2, 3, 4):
        init = []
        if phase == 3:
            init = [{"ckpt": _ckpt(clis[1]), "prefixes": ["text.", "decoder."]},
                    {"ckpt": _ckpt(clis[2]), "prefixes": ["motion_encoder."]}]
        elif phase == 4:
            init = [{"ckpt": _ckpt(clis[3])}]
        (root / f"p{phase}").mkdir()
        cfg = write_config(root / f"p{phase}" / "c.yaml", _model(bert, phase, init_from=init), h3d_root,
                           data={"joints": True, "batch_size": 8, "max_len": 24},
                           trainer={"max_steps": 2, "limit_val_batches": 2})
        cli = build_cli(["--config", str(cfg)])
        cli.trainer.fit(cli.model, cli.datamodule)
        clis[phase] = cli
    return clis


def test_each_phase_trains_and_logs_its_parts(chain):
    expected = {1: {"mlm", "dec", "flops_t"}, 2: {"rec", "vel", "nce"}, 3: {"dec", "flops_m"},
                4: {"nce", "flops_m", "flops_t", "dec_t", "dec_m"}}
    for phase, cli in chain.items():
        logged = {k.split("/", 1)[1] for k in cli.trainer.logged_metrics if k.startswith("train/")}
        assert expected[phase] <= logged, (phase, logged)
        assert torch.isfinite(torch.tensor([float(v) for v in cli.trainer.logged_metrics.values()])).all()


def test_chain_loads_previous_phase_weights(chain):
    def saved(cli):
        return torch.load(_ckpt(cli), map_location="cpu", weights_only=True)["state_dict"]

    p1, p2, p3 = saved(chain[1]), saved(chain[2]), saved(chain[3])
    m3 = chain[3].model
    # phase 3 starts from phase 1's text side and phase 2's motion encoder; its text side stays frozen
    text_keys = [k for k in p1 if k.startswith("text.")]
    assert text_keys and all(torch.equal(m3.state_dict()[k], p1[k]) for k in text_keys)
    assert any(k.startswith("motion_encoder.") for k in m3.init_reports[1]["loaded"])
    # phase 4 starts from everything phase 3 saved
    init4 = chain[4].model.init_reports[0]["loaded"]
    assert set(init4) == set(p3)
    assert not any(k.startswith("text.") and k in p2 for k in init4 if not k.startswith("text."))


def test_lexical_vectors_non_negative_and_vocab_sized(chain):
    model = chain[4].model.eval()
    p = model.encode_text(["a person walks forward", "someone kicks with the left leg"])
    assert p.shape == (2, model.text.vocab_size) and (p >= 0).all()
    batch = next(iter(chain[4].datamodule.val_dataloader()))
    pm = model.encode_batch_motion(batch)
    assert pm.shape == (len(batch["text"]), model.text.vocab_size) and (pm >= 0).all()


def test_decoder_mask_curriculum(chain):
    model = chain[1].model
    from motion_text.models.masking import linear_curriculum

    assert [linear_curriculum(e, 0.5, 1.0, 3) for e in (0, 1, 2, 5)] == [0.5, 0.75, 1.0, 1.0]
    assert model.dec_mask_ratio() == linear_curriculum(model.current_epoch, 0.5, 1.0, 3)
    assert chain[3].model.dec_mask_start == 0.4


def test_missing_previous_phase_names_the_phase(h3d_root, tmp_path, tmp_path_factory):
    bert = tiny_bert_dir(tmp_path_factory)
    init = [{"ckpt": str(tmp_path / "nope" / "last.ckpt"), "hint": "motion-text fit --config lexical_phase3.yaml"}]
    cfg = write_config(tmp_path / "c.yaml", _model(bert, 4, init_from=init), h3d_root, data={"joints": True})
    with pytest.raises(Exception, match=r"lexical_phase3\.yaml"):
        build_cli(["--config", str(cfg)])
