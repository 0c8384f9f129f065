"""Mask-predict caption generation from a lexical vector (the bottleneck decoder at 100 % masking)."""

import math

import pytest
import torch

from motion_text.models.heads.generation import collapse_repeats, generate_captions, mask_predict

V, CLS, SEP, MASK, PAD = 12, 2, 3, 4, 0


class FixedDecoder(torch.nn.Module):
    """Logits that prefer ``target[i]`` at content position i (scale ``sharp`` for ``good_len`` content tokens,
    1 otherwise) and prefer the special token [MASK] even more (it must never be generated). Records its inputs."""

    def __init__(self, target, good_len, sharp=8.0):
        super().__init__()
        self.target, self.good_len, self.sharp = target, good_len, sharp
        self.calls = []

    def forward(self, p, ids, am, we):
        self.calls.append(ids.clone())
        b, l2 = ids.shape
        length = l2 - 2
        out = torch.zeros(b, l2, V)
        scale = self.sharp if length == self.good_len else 1.0
        for i in range(length):
            out[:, i + 1, self.target[i % len(self.target)]] = scale
            out[:, i + 1, MASK] = scale + 5
        return out


class Tok:
    all_special_ids = [PAD, 1, CLS, SEP, MASK]
    cls_token_id, sep_token_id, mask_token_id = CLS, SEP, MASK
    words = {5: "a", 6: "person", 7: "walks", 8: "forward", 9: "##s"}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(self.words[i] for i in ids if i not in self.all_special_ids)


def test_mask_predict_fills_every_position_and_bans_special_tokens():
    dec = FixedDecoder([5, 6, 7], good_len=3)
    ids, score = mask_predict(dec, torch.rand(2, V), torch.zeros(V, 4), 3, cls_id=CLS, sep_id=SEP, mask_id=MASK,
                              banned=Tok.all_special_ids, iterations=3)
    assert ids.tolist() == [[5, 6, 7], [5, 6, 7]]
    # 7 allowed tokens (5 special ids banned): the target at logit 8, six others at 0
    assert torch.allclose(score, torch.full((2,), 8.0 - math.log(math.exp(8.0) + 6)), atol=1e-5)
    # first call: [CLS] [MASK]*3 [SEP]; later calls re-mask fewer tokens (3 -> 2 -> 1 masked)
    assert dec.calls[0][0].tolist() == [CLS, MASK, MASK, MASK, SEP]
    assert [int((c[0] == MASK).sum()) for c in dec.calls] == [3, 2, 1]


def test_generate_picks_the_most_confident_length_and_collapses_repeats():
    dec = FixedDecoder([5, 6, 6, 7, 8], good_len=5)
    caps = generate_captions(dec, torch.rand(3, V), torch.zeros(V, 4), Tok(), lengths=[2, 5, 7], iterations=2)
    assert caps == ["a person walks forward"] * 3  # length 5 wins; "person person" collapsed
    with pytest.raises(ValueError, match="lengths"):
        generate_captions(dec, torch.rand(1, V), torch.zeros(V, 4), Tok(), lengths=[])


class LengthDecoder(FixedDecoder):
    """FixedDecoder with a length classifier: row i proposes ``proposals[i]``."""

    def __init__(self, proposals, trained=True, **kwargs):
        super().__init__(**kwargs)
        self.proposals = torch.tensor(proposals)
        self.length_updates = torch.tensor(int(trained))

    def predict_lengths(self, p, we, beam=3):
        return self.proposals[:, :beam]


def test_generate_uses_each_rows_predicted_lengths():
    # target length 5 is the confident one; row 0 proposes it, row 1 does not (its best among 2, 3 wins)
    dec = LengthDecoder([[5, 2, 7], [2, 3, 4]], target=[5, 6, 6, 7, 8], good_len=5)
    caps = generate_captions(dec, torch.rand(2, V), torch.zeros(V, 4), Tok(), iterations=1)
    assert caps[0] == "a person walks forward"
    # row 1: its lengths 2, 3, 4 score alike (logit 1 on the target everywhere); the first (shortest) is kept
    assert caps[1] == "a person"
    decoded = sorted((c.shape[1] - 2, c.shape[0]) for c in dec.calls)  # (length, rows) per mask-predict call
    assert decoded == [(2, 2), (3, 1), (4, 1), (5, 1), (7, 1)]  # each length once, only for the rows proposing it
    # beam 1: the most likely length only
    dec.calls.clear()
    generate_captions(dec, torch.rand(2, V), torch.zeros(V, 4), Tok(), iterations=1, length_beam=1)
    assert sorted(c.shape[1] - 2 for c in dec.calls) == [2, 5]


def test_generate_falls_back_to_a_length_scan_without_a_trained_length_head(caplog):
    dec = LengthDecoder([[2, 3, 4]], trained=False, target=[5, 6, 6, 7, 8], good_len=5)
    caps = generate_captions(dec, torch.rand(1, V), torch.zeros(V, 4), Tok(), iterations=1)
    assert caps == ["a person walks forward"]  # length 5 is in the fallback scan 4..15
    assert "never trained" in caplog.text
    assert sorted(c.shape[1] - 2 for c in dec.calls) == list(range(4, 16))


def test_collapse_repeats():
    assert collapse_repeats("a a person walks walks forward a") == "a person walks forward a"
