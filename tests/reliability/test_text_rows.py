"""Text row: a caption longer than an encoder's ``max_length`` is truncated with one warning per encoder, for the
sentence and masked-LM encoders too (the frozen-token encoder: tests/models/test_text.py::test_truncation_warns_once).
"""

from __future__ import annotations

import logging

import pytest

from motion_text.models.encoders.text import MaskedLMTextEncoder, SentenceEncoder
from tests.conftest_text import tiny_bert_dir

LONG = ["a person walks forward and then turns left and jumps twice", "a man runs"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory)


def _sentence(path, tmp_path):
    """Returns a function texts -> the encoder's output and the token length it may have (None: pooled)."""
    enc = SentenceEncoder(str(path), max_length=5, cache_dir=str(tmp_path))
    return lambda texts: enc.encode(texts), None


def _masked_lm(path, tmp_path):
    enc = MaskedLMTextEncoder(str(path), max_length=5)
    return lambda texts: enc.tokenize(texts)[0], 5


@pytest.mark.parametrize("build", [_sentence, _masked_lm], ids=["SentenceEncoder", "MaskedLMTextEncoder"])
def test_long_caption_truncated_with_one_warning(bert_dir, tmp_path, build, caplog):
    run, tokens = build(bert_dir, tmp_path)
    with caplog.at_level(logging.WARNING, logger="motion_text.models.encoders.text"):
        out = run(LONG)
        run(["someone kicks with the right leg and then waves both arms"])
    warnings = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "max_length=5" in warnings[0]
    assert out.shape[0] == len(LONG) and (tokens is None or out.shape[1] == tokens)
