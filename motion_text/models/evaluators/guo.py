"""The text-to-motion evaluator of Guo et al. ("Generating Diverse and Natural 3D Human Motions from Text", CVPR 2022).

Every text-to-motion generation paper reports R-precision, FID, MM-Dist, diversity and multimodality in the space of
the contrastive text / motion encoders that Guo et al. trained for it (EricGuo5513/text-to-motion,
``train_tex_mot_match.py``; released as ``checkpoints/{t2m,kit}/text_mot_match/model/finest.tar``). This module
re-implements the three encoders of ``networks/modules.py`` with the same parameter names, so the released state dicts
load strictly, and their input pipeline:

- **text**: a caption is a list of ``word/POS`` tokens (HumanML3D's ``texts/*.txt`` second field, spaCy tags); each
  token becomes its GloVe vector (``glove/our_vab_{data.npy,words.pkl,idx.pkl}``; unknown words -> ``unk``) and a
  one-hot of its POS among :data:`POS_TAGS`, where a word of the hand-made lists (locations, body parts, objects,
  actions, manners) takes its ``*_VIP`` tag and an unknown word ``OTHER`` (``utils/word_vectorizer.py``,
  ``WordVectorizer.__getitem__``). As ``Text2MotionDatasetV2.__getitem__`` (``data/dataset.py``), at most
  ``max_text_len`` = 20 tokens are kept, framed by ``sos/OTHER`` and ``eos/OTHER`` and padded with ``unk/OTHER``.
- **motion**: the normalised features without their last 4 (foot contacts) go through the movement encoder (two
  stride-2 convolutions: one step per ``unit_length`` = 4 frames) and a bidirectional GRU over the first
  ``length // unit_length`` steps (``EvaluatorModelWrapper.get_co_embeddings``); as the evaluation loaders, motions are
  zero-padded to ``max_motion_length`` = 196 frames (the padding is seen by the convolutions' last steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from motion_text.data.safe_pickle import safe_load_pickle

__all__ = ["POS_TAGS", "VIP_WORDS", "GuoVocabulary", "MovementConvEncoder", "TextEncoderBiGRUCo",
           "MotionEncoderBiGRUCo", "GuoEvaluator", "load_guo_state"]

#: POS one-hot order of ``utils/word_vectorizer.py`` (``POS_enumerator``)
POS_TAGS = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV", "Loc_VIP", "Body_VIP", "Obj_VIP",
            "Act_VIP", "Desc_VIP", "OTHER")

#: the hand-made word lists that override the spaCy tag (``VIP_dict``, looked up in this order)
VIP_WORDS = {
    "Loc_VIP": frozenset("left right clockwise counterclockwise anticlockwise forward back backward up down straight "
                         "curve".split()),
    "Body_VIP": frozenset("arm chin foot feet face hand mouth leg waist eye knee shoulder thigh".split()),
    "Obj_VIP": frozenset("stair dumbbell chair window floor car ball handrail baseball basketball".split()),
    "Act_VIP": frozenset("walk run swing pick bring kick put squat throw hop dance jump turn stumble stop sit lift "
                         "lower raise wash stand kneel stroll rub bend balance flap jog shuffle lean rotate spin "
                         "spread climb".split()),
    "Desc_VIP": frozenset("slowly carefully fast careful slow quickly happy angry sad happily angrily sadly".split()),
}


class GuoVocabulary:
    """GloVe vectors of the evaluator's vocabulary and the POS one-hot of a ``word/POS`` token.

    ``GuoVocabulary.from_dir(glove_dir)`` reads the released ``our_vab_data.npy`` (``allow_pickle=False``) and the
    pickled ``our_vab_words.pkl`` / ``our_vab_idx.pkl`` with :func:`motion_text.data.safe_pickle.safe_load_pickle`
    (numpy arrays and builtin containers only: the pickles cannot run code).
    """

    def __init__(self, word2vec: dict[str, np.ndarray]):
        if "unk" not in word2vec:
            raise ValueError("the evaluator vocabulary has no 'unk' word (needed for unknown words)")
        self.word2vec = word2vec
        self.dim = len(word2vec["unk"])

    @classmethod
    def from_dir(cls, root: str | Path, prefix: str = "our_vab") -> GuoVocabulary:
        root = Path(root).expanduser()
        data = root / f"{prefix}_data.npy"
        if not data.is_file():
            raise FileNotFoundError(f"{data}: GloVe vectors of the evaluator not found (text-to-motion's glove/)")
        vectors = np.load(data, allow_pickle=False)
        words = safe_load_pickle(root / f"{prefix}_words.pkl")
        word2idx = safe_load_pickle(root / f"{prefix}_idx.pkl")
        if not isinstance(words, list) or not isinstance(word2idx, dict):
            raise ValueError(f"{root}: expected {prefix}_words.pkl to hold a list and {prefix}_idx.pkl a dict")
        if vectors.ndim != 2:
            raise ValueError(f"{data}: expected a (words, dim) array, got shape {vectors.shape}")
        try:
            return cls({w: vectors[word2idx[w]] for w in words})
        except (KeyError, IndexError) as err:
            raise ValueError(f"{root}: {prefix}_words.pkl / _idx.pkl / _data.npy disagree ({err!r})") from None

    def __len__(self) -> int:
        return len(self.word2vec)

    def token(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """Word vector and POS one-hot of a ``word/POS`` token (``WordVectorizer.__getitem__``)."""
        word, sep, pos = token.rpartition("/")
        if not sep:
            raise ValueError(f"token {token!r} is not 'word/POS' (give HumanML3D's tagged tokens)")
        onehot = np.zeros(len(POS_TAGS), np.float32)
        if word in self.word2vec:
            vec = self.word2vec[word]
            pos = next((tag for tag, ws in VIP_WORDS.items() if word in ws), pos)
        else:
            vec, pos = self.word2vec["unk"], "OTHER"
        onehot[POS_TAGS.index(pos) if pos in POS_TAGS else POS_TAGS.index("OTHER")] = 1.0
        return np.asarray(vec, np.float32), onehot

    def encode(self, tokens: Sequence[str], max_text_len: int = 20) -> tuple[np.ndarray, np.ndarray, int]:
        """(max_text_len + 2, dim) word vectors, (max_text_len + 2, 15) POS one-hots and the caption length with
        ``sos``/``eos`` (``Text2MotionDatasetV2.__getitem__``: crop to ``max_text_len``, pad with ``unk/OTHER``)."""
        toks = ["sos/OTHER", *list(tokens)[:max_text_len], "eos/OTHER"]
        n = len(toks)
        toks += ["unk/OTHER"] * (max_text_len + 2 - n)
        vecs, pos = zip(*(self.token(t) for t in toks))
        return np.stack(vecs), np.stack(pos), n


def _bigru_head(hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, out))


class MovementConvEncoder(nn.Module):
    """Two Conv1d(k=4, s=2, p=1) + LeakyReLU(0.2) and a linear layer: one movement code per 4 frames
    (``networks/modules.py``, ``MovementConvEncoder``; dropout 0.2 after each convolution)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.main = nn.Sequential(nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
                                  nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2))
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, input_size) -> (B, T // 4, output_size)."""
        return self.out_net(self.main(x.transpose(1, 2)).transpose(1, 2))


class _BiGRUCo(nn.Module):
    """A bidirectional GRU from a learned initial state; the concatenated last states through an MLP."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _bigru_head(hidden_size, output_size)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.input_emb(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.expand(-1, x.shape[0], -1).contiguous())
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class TextEncoderBiGRUCo(_BiGRUCo):
    """Text encoder of the evaluator (``networks/modules.py``, ``TextEncoderBiGRUCo``): word vector + linear POS
    embedding, bidirectional GRU over the caption's tokens."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int):
        super().__init__(word_size, hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size)

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(word_embs + self.pos_emb(pos_onehot), lengths)


class MotionEncoderBiGRUCo(_BiGRUCo):
    """Motion encoder of the evaluator (``networks/modules.py``, ``MotionEncoderBiGRUCo``) over movement codes."""

    def forward(self, movements: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(movements, lengths)


_PARTS = ("movement_encoder", "text_encoder", "motion_encoder")


def load_guo_state(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """The three state dicts of an official ``text_mot_match/model/finest.tar``, read by
    :func:`~motion_text.checkpoint.read_checkpoint` (weights only)."""
    from motion_text.checkpoint import read_checkpoint

    path = Path(path).expanduser()
    ckpt = read_checkpoint(path, what="evaluator checkpoint", hint=" (text_mot_match/model/finest.tar)")
    missing = [p for p in _PARTS if p not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a Guo et al. evaluator checkpoint (no {', '.join(missing)}; expected the "
                         f"text_mot_match/model/finest.tar layout)")
    return {p: ckpt[p] for p in _PARTS}


class GuoEvaluator(nn.Module):
    """The three encoders of Guo et al.'s evaluator and their input handling (see the module docstring).

    Parameters
    ----------
    dim_pose
        Motion feature size (263 for HumanML3D, 251 for KIT-ML); the last ``contact_dims`` = 4 are not encoded.
    unit_length, max_text_len, max_motion_length
        4, 20 and 196 as ``EvaluatorModelWrapper`` / ``utils/get_opt.py``.
    crop_to_unit
        Crop each motion to a multiple of ``unit_length`` frames before padding, as the evaluation datasets do
        (``Text2MotionDatasetV2``'s 'single' crop, here from the first frame; generated motions already have such
        lengths). ``False`` keeps every frame (the convolutions then see the partial last unit).
    """

    def __init__(self, dim_pose: int = 263, dim_word: int = 300, dim_movement_hidden: int = 512,
                 dim_movement_latent: int = 512, dim_text_hidden: int = 512, dim_motion_hidden: int = 1024,
                 dim_coemb: int = 512, unit_length: int = 4, max_text_len: int = 20, max_motion_length: int = 196,
                 contact_dims: int = 4, crop_to_unit: bool = True):
        super().__init__()
        self.movement_encoder = MovementConvEncoder(dim_pose - contact_dims, dim_movement_hidden, dim_movement_latent)
        self.text_encoder = TextEncoderBiGRUCo(dim_word, len(POS_TAGS), dim_text_hidden, dim_coemb)
        self.motion_encoder = MotionEncoderBiGRUCo(dim_movement_latent, dim_motion_hidden, dim_coemb)
        self.dim_pose, self.dim_word, self.contact_dims = dim_pose, dim_word, contact_dims
        self.unit_length, self.max_text_len, self.max_motion_length = unit_length, max_text_len, max_motion_length
        self.crop_to_unit = crop_to_unit

    @classmethod
    def from_official(cls, path: str | Path, **options) -> GuoEvaluator:
        """Build the evaluator from an official ``finest.tar``: sizes read from the weights, strict loading;
        ``options`` are the settings that the weights cannot give (``unit_length``, ``max_text_len``, ...)."""
        state = load_guo_state(path)
        try:
            conv1 = state["movement_encoder"]["main.0.weight"]
            sizes = dict(dim_pose=conv1.shape[1] + options.get("contact_dims", 4), dim_movement_hidden=conv1.shape[0],
                         dim_movement_latent=state["movement_encoder"]["main.3.weight"].shape[0],
                         dim_word=state["text_encoder"]["pos_emb.weight"].shape[0],
                         dim_text_hidden=state["text_encoder"]["input_emb.weight"].shape[0],
                         dim_motion_hidden=state["motion_encoder"]["input_emb.weight"].shape[0],
                         dim_coemb=state["text_encoder"]["output_net.3.weight"].shape[0])
        except KeyError as err:
            raise ValueError(f"{path}: not a Guo et al. evaluator checkpoint (missing {err.args[0]})") from None
        model = cls(**sizes, **options)
        for part in _PARTS:
            try:
                getattr(model, part).load_state_dict(state[part], strict=True)
            except RuntimeError as err:
                raise ValueError(f"{path}: {part} does not match the official architecture: {err}") from None
        return model.eval()

    # ---- encoding ---------------------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return self.motion_encoder.hidden.device

    @torch.no_grad()
    def encode_motions(self, motions: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """(N, dim_coemb) embeddings of normalised motions (each (T, dim_pose), T >= unit_length), in input order."""
        unit = self.unit_length
        clips = []
        for i, m in enumerate(motions):
            m = torch.as_tensor(m, dtype=torch.float32)
            if m.ndim != 2 or m.shape[1] != self.dim_pose:
                raise ValueError(f"motion {i}: expected (T, {self.dim_pose}) features, got shape {tuple(m.shape)}")
            if len(m) < unit:
                raise ValueError(f"motion {i}: {len(m)} frame(s); the evaluator needs at least unit_length={unit}")
            clips.append(m[: len(m) // unit * unit] if self.crop_to_unit else m)
        if not clips:
            raise ValueError("no motions to encode")
        lengths = torch.tensor([len(c) for c in clips])
        pad = max(self.max_motion_length, int(lengths.max()))
        batch = torch.zeros(len(clips), pad, self.dim_pose)
        for i, c in enumerate(clips):
            batch[i, : len(c)] = c
        batch = batch.to(self._device())
        movements = self.movement_encoder(batch[..., : self.dim_pose - self.contact_dims])
        return self.motion_encoder(movements, lengths // unit)

    @torch.no_grad()
    def encode_texts(self, captions: Sequence[Sequence[str]], vocab: GuoVocabulary) -> torch.Tensor:
        """(N, dim_coemb) embeddings of captions given as lists of ``word/POS`` tokens, in input order."""
        if vocab.dim != self.dim_word:
            raise ValueError(f"the vocabulary has {vocab.dim}-d word vectors but the evaluator expects {self.dim_word}")
        if not captions:
            raise ValueError("no captions to encode")
        words, pos, lengths = zip(*(vocab.encode(c, self.max_text_len) for c in captions))
        dev = self._device()
        return self.text_encoder(torch.from_numpy(np.stack(words)).to(dev), torch.from_numpy(np.stack(pos)).to(dev),
                                 torch.tensor(lengths))
