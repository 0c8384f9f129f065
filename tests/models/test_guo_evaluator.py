"""Guo et al.'s evaluator against the official code's outputs (tests/fixtures/guo_evaluator, see its README)."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.models.evaluators.guo import POS_TAGS, GuoEvaluator, GuoVocabulary, load_guo_state

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "guo_evaluator"


@pytest.fixture(scope="module")
def ref():
    return np.load(FIX / "reference.npz")


def _motions(ref):
    off = np.cumsum([0, *ref["lengths"]])
    return [(ref["raw_motions"][a:b] - ref["mean"]) / ref["std"] for a, b in zip(off[:-1], off[1:])]


def test_vocabulary_tokens_match_official(ref):
    vocab = GuoVocabulary.from_dir(FIX)
    enc = [vocab.encode(c.split(" ")) for c in ref["captions"]]
    np.testing.assert_array_equal(np.stack([e[0] for e in enc]), ref["word_embs"])
    np.testing.assert_array_equal(np.stack([e[1] for e in enc]), ref["pos_ohot"])
    assert [e[2] for e in enc] == ref["sent_lens"].tolist()
    # a VIP word overrides its tag, an unknown word is unk/OTHER
    assert vocab.token("left/ADV")[1][POS_TAGS.index("Loc_VIP")] == 1
    assert vocab.token("zebra/NOUN")[1][POS_TAGS.index("OTHER")] == 1
    with pytest.raises(ValueError, match="not 'word/POS'"):
        vocab.token("walk")


def test_encodings_match_official(ref):
    ev = GuoEvaluator.from_official(FIX / "finest.tar", max_motion_length=40, crop_to_unit=False)
    vocab = GuoVocabulary.from_dir(FIX)
    motion = ev.encode_motions(_motions(ref)).numpy()
    text = ev.encode_texts([c.split(" ") for c in ref["captions"]], vocab).numpy()
    order = ref["align"]  # the official wrapper returns the batch sorted by motion length
    assert np.abs(motion[order] - ref["motion_emb"]).max() <= 1e-5
    assert np.abs(text[order] - ref["text_emb"]).max() <= 1e-5
    # the padded length matters only where the last convolution steps reach it (the 40-frame motion): as the
    # official loaders, always pad to max_motion_length; the default crop to whole units changes 37, 25, 33 frames
    long = GuoEvaluator.from_official(FIX / "finest.tar", crop_to_unit=False).encode_motions(_motions(ref)).numpy()
    short = ref["lengths"] < 40
    assert np.abs(long[short] - motion[short]).max() <= 1e-6
    assert np.abs(long[~short] - motion[~short]).max() > 1e-4
    cropped = GuoEvaluator.from_official(FIX / "finest.tar").encode_motions(_motions(ref)).numpy()
    same = ref["lengths"] % 4 == 0
    assert np.abs(cropped[same] - long[same]).max() <= 1e-6
    assert np.abs(cropped[~same] - long[~same]).max() > 1e-4
    with pytest.raises(ValueError, match="at least unit_length=4"):
        ev.encode_motions([np.zeros((3, 12), np.float32)])


def test_bad_files(tmp_path):
    torch.save({"text_encoder": {}}, tmp_path / "x.tar")
    with pytest.raises(ValueError, match=r"x.tar: not a Guo et al. evaluator checkpoint \(no movement_encoder"):
        load_guo_state(tmp_path / "x.tar")
    state = torch.load(FIX / "finest.tar", weights_only=True)
    state["motion_encoder"]["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.tar")
    with pytest.raises(ValueError, match="motion_encoder does not match the official architecture"):
        GuoEvaluator.from_official(tmp_path / "extra.tar")
    (tmp_path / "trunc.tar").write_bytes((FIX / "finest.tar").read_bytes()[:100])
    with pytest.raises(ValueError, match="trunc.tar: not a readable weights-only evaluator checkpoint"):
        load_guo_state(tmp_path / "trunc.tar")


class _RunsCode:
    def __reduce__(self):
        return (eval, ("1",))


def test_vocabulary_pickles_are_read_safely(tmp_path):
    for f in ("our_vab_data.npy", "our_vab_idx.pkl"):
        (tmp_path / f).write_bytes((FIX / f).read_bytes())
    (tmp_path / "our_vab_words.pkl").write_bytes(pickle.dumps([_RunsCode()]))
    with pytest.raises(ValueError, match=r"our_vab_words.pkl: not a safe pickle.*builtins.eval' is not allowed"):
        GuoVocabulary.from_dir(tmp_path)
