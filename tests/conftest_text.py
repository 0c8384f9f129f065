"""Offline tiny BERT for tests: a random ``BertForMaskedLM`` and a small WordPiece vocabulary.

Usage in a test module::

    from tests.conftest_text import tiny_bert_dir

    @pytest.fixture(scope="module")
    def bert_dir(tmp_path_factory):
        return tiny_bert_dir(tmp_path_factory)

The folder is written once per pytest session (under the session's base temp dir) and reused.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["MOTION_WORDS", "TINY_BERT_CONFIG", "tiny_bert_dir", "tiny_vocab"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

#: Lowercase words that appear in motion captions (HumanML3D / KIT-ML style).
MOTION_WORDS = """
a an the person man woman someone figure human he she they his her their it is are was while and then
with to from in on of at into onto over under up down around back forth again slowly quickly fast slow
walks walk walking walked runs run running jogs jog jogging jumps jump jumping hops hop hopping kicks kick
kicking punches punch punching throws throw throwing catches catch catching waves wave waving turns turn
turning spins spin spinning steps step stepping sits sit sitting stands stand standing squats squat
crouches crouch kneels kneel lies lie crawls crawl climbs climb dances dance dancing waltz bends bend
leans lean stretches stretch raises raise raising lifts lift lowers lower swings swing swinging claps clap
shakes shake picks pick puts put places place pushes push pulls pull rotates rotate balances balance
stumbles stumble falls fall moves move moving goes go comes come looks look holds hold reaches reach
left right leg legs arm arms hand hands foot feet knee knees head body hip hips shoulder shoulders elbow
wrist ankle torso chest back waist finger fingers toe toes forward backward backwards sideways side
straight circle clockwise counterclockwise diagonally direction front behind above below ground floor
chair stairs object ball air place position line twice three times several small large big little high
low far near other one two first second both each all some time motion action exercise movement stroke
swimming boxing golf tennis baseball jacks jumping_jacks
""".split()

#: Architecture of the tiny model (hidden 32, 2 layers, 2 heads, intermediate 64).
TINY_BERT_CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
    type_vocab_size=2,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)


def tiny_vocab() -> list[str]:
    """Special tokens, motion words, a few suffix pieces and punctuation (no duplicates)."""
    words = [w for w in MOTION_WORDS if "_" not in w]
    extra = ["##s", "##ing", "##ed", "##ly", ".", ",", "-", "'"]
    return list(dict.fromkeys(SPECIAL_TOKENS + words + extra))


def _build_tokenizer(vocab_file: Path):
    from transformers import BertTokenizer

    try:  # transformers >= 5: the tokenizers-backed BertTokenizer takes ``vocab`` (a path or a dict)
        return BertTokenizer(vocab=str(vocab_file), do_lower_case=True, model_max_length=128)
    except TypeError:  # transformers 4.x
        from transformers import BertTokenizerFast

        return BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True, model_max_length=128)


def tiny_bert_dir(tmp_path_factory) -> Path:
    """Write (once per session) and return a folder with a tiny random BertForMaskedLM + tokenizer."""
    from transformers import BertConfig, BertForMaskedLM

    folder = Path(tmp_path_factory.getbasetemp()) / "tiny_bert"
    if (folder / "config.json").exists() and (folder / "tokenizer_config.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = _build_tokenizer(vocab_file)
    config = BertConfig(vocab_size=len(vocab), pad_token_id=0, **TINY_BERT_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertForMaskedLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
