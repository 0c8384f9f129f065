"""MoT++ motion encoder: a factorised spatio-temporal transformer over body-part tokens.

Messina et al., "MoT++ / CCCL" (arXiv 2407.02104), official code ``mesnico/MOTpp``
(``src/model/motions/movit_v2.py``, ``transformer_core.py``, ``src/guofeats/motion_representation.py``), config
``movit-v2-factenc-bodyparts-timemask-uniformsample-200frames-ff1024-4heads-4layers`` (2 spatial + 2 temporal
layers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum, rearrange, repeat
from torch import Tensor, nn

from motion_text.data.features import layout_for
from motion_text.data.skeleton import Skeleton, get_skeleton
from motion_text.models.layers import PreNormBlock, SinusoidalPositionalEncoding, lengths_to_mask

__all__ = ["MoTPPEncoder", "PART_ORDER", "TOKEN_DIM", "guo_frame_tokens", "uniform_resample"]

#: Order of the seven body-part tokens (MoT++ ``movit_v2.py`` stacks them in this order).
PART_ORDER: tuple[str, ...] = ("root", "feet", "right_arm", "left_arm", "torso", "right_leg", "left_leg")
#: Features per joint token (MoT++ data representation ``cont_6d_plus_rifke_vels``).
TOKEN_DIM = 12


def guo_frame_tokens(features: Tensor, skeleton: Skeleton) -> Tensor:
    """Split Guo features (..., T, D) into per-frame joint tokens (..., T, J+1, 12) (MoT++ ``recover_rot_pos_bis``).

    Token layout (J joints; slices from :func:`motion_text.data.features.layout_for`):

    * token 0, root: ``[root_rot_vel, root_lin_vel (x, z), root_height]`` (4), then the root's own entry of
      ``local_vel`` (3), zero-padded to 12;
    * tokens 1..J-1, joints: ``[rot6d (6), ric position (3), local_vel (3)]`` of that joint;
    * token J, feet: the four ``foot_contact`` labels, zero-padded to 12.

    As in the reference, no joint positions are recovered: the tokens are a regrouping of the feature vector.
    """
    layout = layout_for(skeleton)
    if features.shape[-1] != layout.dim:
        raise ValueError(f"expected {layout.dim}-d Guo features for skeleton {skeleton.name!r}, "
                         f"got {features.shape[-1]}")
    j = skeleton.num_joints
    lead = features.shape[:-1]
    root = features[..., layout.root]  # (..., 4)
    vel = features[..., layout["local_vel"]].reshape(*lead, j, 3)  # velocities of all J joints
    rot = features[..., layout["rot6d"]].reshape(*lead, j - 1, 6)
    ric = features[..., layout["ric"]].reshape(*lead, j - 1, 3)
    contact = features[..., layout["foot_contact"]]  # (..., 4)

    root_tok = torch.cat([root, vel[..., 0, :]], dim=-1)
    root_tok = F.pad(root_tok, (0, TOKEN_DIM - root_tok.shape[-1]))[..., None, :]  # (..., 1, 12)
    joint_tok = torch.cat([rot, ric, vel[..., 1:, :]], dim=-1)  # (..., J-1, 12)
    feet_tok = F.pad(contact, (0, TOKEN_DIM - contact.shape[-1]))[..., None, :]  # (..., 1, 12)
    return torch.cat([root_tok, joint_tok, feet_tok], dim=-2)


def uniform_resample(x: Tensor, mask: Tensor, max_frames: int) -> tuple[Tensor, Tensor]:
    """Bring a padded batch to at most ``max_frames`` frames (MoT++ ``uniform_sample``).

    A clip with L > ``max_frames`` valid frames is resampled to ``max_frames`` by nearest-neighbour
    interpolation of its first L frames (frame i takes source frame ``floor(i * L / max_frames)``, as
    ``F.interpolate(mode="nearest")``); shorter clips are cropped to ``max_frames`` (only padding is dropped).

    Parameters
    ----------
    x
        (B, T, D) padded frames.
    mask
        (B, T) bool validity mask; valid frames must come first when T > ``max_frames``.
    max_frames
        Target length.

    Returns
    -------
    (x, mask)
        (B, min(T, max_frames), D) and the matching validity mask.
    """
    b, t = mask.shape
    if t <= max_frames:
        return x, mask
    lengths = mask.sum(dim=1)
    if not torch.equal(mask, lengths_to_mask(lengths, t)):
        raise ValueError("resampling to max_frames needs masks whose valid frames come first")
    i = torch.arange(max_frames, device=x.device)
    idx = torch.where(lengths[:, None] > max_frames, i[None, :] * lengths[:, None] // max_frames, i[None, :])
    x = torch.gather(x, 1, repeat(idx, "b t -> b t d", d=x.shape[-1]))
    return x, lengths_to_mask(lengths.clamp(max=max_frames), max_frames)


class MoTPPEncoder(nn.Module):
    """MoT++ motion encoder (MoViT++ with body-part tokens, factorised space-then-time attention).

    Pipeline for Guo features ``x`` (B, T, D) and validity mask (B, T):

    1. **Length.** Clips longer than ``max_frames`` are resampled to ``max_frames`` frames with nearest
       interpolation (the reference's ``uniform_sample``); see :func:`uniform_resample`.
    2. **Tokens.** Each frame becomes J+1 tokens of 12 features (:func:`guo_frame_tokens`), grouped into seven
       body parts from ``skeleton.parts`` (:data:`PART_ORDER`); each part's tokens are concatenated (12 n) and
       mapped to ``latent_dim`` by its own linear layer.
    3. **Spatial stage**, per valid frame: 2 learnable CLS tokens (mu, logvar; zero-init; 1 when ``vae`` is False)
       are prepended to the 7 part tokens, a learnable part embedding ((7 + n_cls) x d, zero-init) is added, then
       dropout and ``num_spatial_layers`` pre-norm blocks.
    4. **Temporal stage**: the mean of the 7 part outputs of each frame forms a (B, T, d) sequence; each sample's
       CLS tokens are prepended, fixed sinusoidal time codes (positions 0..n_cls+T-1) are added, then dropout and
       ``num_temporal_layers`` pre-norm blocks attending only to the CLS tokens and the valid frames.
    5. **Head**: LayerNorm (eps 1e-6) -> ReLU -> Dropout -> Linear(d, d) on the CLS outputs, returned as
       (B, 2, d) = (mu, logvar), or (B, 1, d) when ``vae`` is False -- the same interface as
       :class:`motion_text.models.encoders.actor.ACTORStyleEncoder`. :meth:`encode_sequence` also returns the
       frame outputs after that LayerNorm (the tokens dagger-MoT++'s lexical head pools).

    Blocks: ``num_heads`` heads with a qkv bias, FFN d -> ``ff_size`` -> d with GELU, no dropout inside the blocks (the reference's
    ``attn_drop``/``proj_drop``/FFN dropout are 0); DropPath grows linearly from 0 to ``drop_path`` over all
    spatial and temporal blocks taken in order (the reference restarts the 0 -> 0.1 ramp in each stage, which for
    two layers per stage gives (0, 0.1, 0, 0.1) instead of (0, 1/30, 2/30, 0.1)). ``dropout`` is the rate after
    the spatial and temporal embeddings and in the head.

    Differences from the reference code, on purpose:

    * **Padding.** The reference builds a time padding mask but never applies it in its ``fact_encoder`` mode,
      so padded frames are attended. Here padded frames are skipped by the spatial stage and masked out as keys
      in the temporal stage; the output does not depend on the amount of padding.
    * **CLS tokens per sample.** The reference takes the temporal CLS tokens from ``x[:b, 0:2]`` of the
      ``(b t)`` layout, i.e. from the first b frames of sample 0, shared by the whole batch. Here the temporal CLS
      tokens are a learnable parameter (zero-init) to which each sample adds the average of its own spatial CLS
      outputs over its valid frames, so no sample sees another one. (The reference reuses one ``cls_token``
      parameter for both stages; here the spatial and temporal CLS parameters are separate.)

    Parameters
    ----------
    skeleton
        ``"humanml3d"`` (22 joints, 263-d features) or ``"kitml"`` (21 joints, 251-d).
    latent_dim
        Token width d (256).
    ff_size, num_heads
        Feed-forward width (1024) and attention heads (4) of every block.
    num_spatial_layers, num_temporal_layers
        Depth of the two stages (2 and 2).
    dropout
        Embedding and head dropout (0.1).
    drop_path
        Largest stochastic-depth rate (0.1).
    max_frames
        Longest sequence kept; longer clips are resampled (200).
    vae
        Two output tokens (mu, logvar) when True, one otherwise.
    official_forward
        Reproduce ``MoViT_v2.forward`` of mesnico/MOTpp with its quirks, for released weights converted by
        ``motion-text convert --from motpp``: clips are zero-padded (or cut) to ``max_frames`` frames and every frame,
        padding included, is encoded and attended (no mask, no resampling: the reference's pad-to-``num_frames``
        already cuts longer clips); the temporal CLS tokens are the spatial CLS outputs of the batch's first b rows of
        the ``(b t)`` layout (frames 0..b-1 of the first clip) plus ``temporal_cls`` (zero after conversion).
        The output then depends on the batch composition, as in the reference; off by default.
    """

    def __init__(self, skeleton: str | int = "humanml3d", latent_dim: int = 256, ff_size: int = 1024,
                 num_heads: int = 4, num_spatial_layers: int = 2, num_temporal_layers: int = 2,
                 dropout: float = 0.1, drop_path: float = 0.1, max_frames: int = 200, vae: bool = True,
                 official_forward: bool = False) -> None:
        super().__init__()
        self.official_forward = official_forward
        if isinstance(skeleton, int):  # called as a factory with the feature dimension (methods inject nfeats)
            by_dim = {layout_for(get_skeleton(n)).dim: n for n in ("humanml3d", "kitml")}
            if skeleton not in by_dim:
                raise ValueError(f"MoT++ needs Guo features (263 or 251 dims), got nfeats={skeleton}")
            skeleton = by_dim[skeleton]
        self.skeleton = get_skeleton(skeleton)
        if max_frames < 1:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        self.nfeats = layout_for(self.skeleton).dim
        self.latent_dim = latent_dim
        self.max_frames = max_frames
        self.vae = vae
        self.num_cls = 2 if vae else 1
        self.part_indices = self._check_parts(self.skeleton)

        self.part_proj = nn.ModuleDict(
            {name: nn.Linear(TOKEN_DIM * len(idx), latent_dim) for name, idx in self.part_indices.items()}
        )
        n_tokens = self.num_cls + len(PART_ORDER)
        self.spatial_cls = nn.Parameter(torch.zeros(self.num_cls, latent_dim))
        self.spatial_pos = nn.Parameter(torch.zeros(n_tokens, latent_dim))
        self.spatial_drop = nn.Dropout(dropout)
        rates = torch.linspace(0.0, drop_path, num_spatial_layers + num_temporal_layers).tolist()
        self.spatial_blocks = nn.ModuleList(
            PreNormBlock(latent_dim, num_heads, ff_size, dropout=0.0, attn_dropout=0.0, drop_path=rates[i])
            for i in range(num_spatial_layers)
        )
        self.temporal_cls = nn.Parameter(torch.zeros(self.num_cls, latent_dim))
        self.time_encoding = SinusoidalPositionalEncoding(latent_dim, dropout=dropout,
                                                          max_len=max_frames + self.num_cls, batch_first=True)
        self.temporal_blocks = nn.ModuleList(
            PreNormBlock(latent_dim, num_heads, ff_size, dropout=0.0, attn_dropout=0.0,
                         drop_path=rates[num_spatial_layers + i])
            for i in range(num_temporal_layers)
        )
        self.norm = nn.LayerNorm(latent_dim, eps=1e-6)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(latent_dim, latent_dim))

    @staticmethod
    def _check_parts(skeleton: Skeleton) -> dict[str, tuple[int, ...]]:
        parts = dict(skeleton.parts)
        if set(parts) != set(PART_ORDER):
            raise ValueError(f"skeleton {skeleton.name!r} parts {sorted(parts)} differ from {sorted(PART_ORDER)}")
        flat = sorted(i for name in PART_ORDER for i in parts[name])
        if flat != list(range(skeleton.num_part_tokens)):
            raise ValueError(f"skeleton {skeleton.name!r} parts must cover tokens 0..{skeleton.num_joints} exactly "
                             f"once, got {flat}")
        return {name: tuple(parts[name]) for name in PART_ORDER}

    def frame_tokens(self, features: Tensor) -> Tensor:
        """Per-frame joint tokens (B, T, J+1, 12) of Guo features (B, T, D); see :func:`guo_frame_tokens`."""
        return guo_frame_tokens(features, self.skeleton)

    def part_tokens(self, tokens: Tensor) -> Tensor:
        """Embed the seven body parts: joint tokens (..., J+1, 12) -> (..., 7, d) in :data:`PART_ORDER`."""
        return torch.stack(
            [self.part_proj[name](tokens[..., list(idx), :].flatten(-2)) for name, idx in self.part_indices.items()],
            dim=-2,
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Encode Guo features (B, T, D) with validity mask (B, T) (True = valid) -> (B, n_cls, d)."""
        seq, _ = self._temporal(x, mask)
        return self.head(self.norm(seq[:, : self.num_cls]))

    def encode_sequence(self, x: Tensor, mask: Tensor, return_mask: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Every output token: (B, n_cls + T', d), the distribution tokens (exactly :meth:`forward`'s output) first,
        then one token per encoded frame -- the sequence the lexical head of dagger-MoT++ max-pools
        (:class:`~motion_text.models.heads.lexical.VocabularyProjection`), as
        :meth:`ACTORStyleEncoder.encode_sequence <motion_text.models.encoders.actor.ACTORStyleEncoder.encode_sequence>`.

        The frame tokens are the temporal stage's frame outputs after the same final LayerNorm as the CLS tokens
        (not the CLS head, which makes (mu, logvar)). The MoT++ paper and code have no per-frame output; this choice is
        the project's. T' is the number of encoded frames: T, except that clips longer than ``max_frames`` are
        resampled (:func:`uniform_resample`), so T' = min(T, ``max_frames``) (``max_frames`` with
        ``official_forward``). ``return_mask``: also return the (B, T') bool validity mask of the frame tokens
        (the resampled mask; with ``official_forward``, the valid input frames among the ``max_frames`` encoded).
        """
        seq, frame_mask = self._temporal(x, mask)
        n = self.num_cls
        out = torch.cat([self.head(self.norm(seq[:, :n])), self.norm(seq[:, n:])], dim=1)
        return (out, frame_mask) if return_mask else out

    def _temporal(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Output of the last temporal block (B, n_cls + T', d) before the final norm, and the frame mask (B, T')."""
        if x.ndim != 3 or x.shape[-1] != self.nfeats:
            raise ValueError(f"expected input of shape (B, T, {self.nfeats}), got {tuple(x.shape)}")
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match input {tuple(x.shape[:2])}")
        mask = mask.bool()
        if self.official_forward:
            return self._official_temporal(x, mask)
        x, mask = uniform_resample(x, mask, self.max_frames)
        b, t = mask.shape
        n = self.num_cls

        # spatial stage on the valid frames only: (N valid frames, n + 7, d)
        parts = self.part_tokens(self.frame_tokens(x[mask]))  # (N, 7, d)
        cls = repeat(self.spatial_cls, "n d -> f n d", f=parts.shape[0]).to(parts.dtype)
        h = self.spatial_drop(torch.cat([cls, parts], dim=1) + self.spatial_pos)
        for block in self.spatial_blocks:
            h = block(h)
        per_frame = torch.cat([h[:, :n], h[:, n:].mean(dim=1, keepdim=True)], dim=1)  # (N, n + 1, d)

        # back to the padded layout: padded frames are zeros and are masked out below
        full = per_frame.new_zeros(b, t, n + 1, per_frame.shape[-1])
        full[mask] = per_frame
        weights = mask.to(full.dtype) / mask.sum(dim=1, keepdim=True).clamp(min=1).to(full.dtype)  # (B, T)
        frame_cls = einsum(full[:, :, :n], weights, "b t n d, b t -> b n d")  # mean over valid frames
        frames = full[:, :, n]  # (B, T, d)

        # temporal stage
        seq = torch.cat([self.temporal_cls + frame_cls, frames], dim=1)  # (B, n + T, d)
        seq = self.time_encoding(seq)
        pad = torch.cat([torch.zeros(b, n, dtype=torch.bool, device=mask.device), ~mask], dim=1)
        for block in self.temporal_blocks:
            seq = block(seq, key_padding_mask=pad)
        return seq, mask

    def _official_temporal(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``MoViT_v2.forward`` (fact_encoder, body parts) of mesnico/MOTpp up to its final norm; see
        ``official_forward``."""
        b, t, n = x.shape[0], self.max_frames, self.num_cls
        x = (x * mask[..., None].to(x.dtype))[:, :t]
        x = F.pad(x, (0, 0, 0, t - x.shape[1]))
        parts = rearrange(self.part_tokens(self.frame_tokens(x)), "b t p d -> (b t) p d")
        cls = repeat(self.spatial_cls, "n d -> f n d", f=parts.shape[0]).to(parts.dtype)
        h = self.spatial_drop(torch.cat([cls, parts], dim=1) + self.spatial_pos)
        for block in self.spatial_blocks:
            h = block(h)
        frames = rearrange(h[:, n:], "(b t) p d -> b t p d", b=b).mean(dim=2)
        seq = self.time_encoding(torch.cat([self.temporal_cls + h[:b, :n], frames], dim=1))
        for block in self.temporal_blocks:
            seq = block(seq)
        return seq, F.pad(mask[:, :t], (0, t - min(t, mask.shape[1])))

    def extra_repr(self) -> str:
        return f"skeleton={self.skeleton.name!r}, nfeats={self.nfeats}, max_frames={self.max_frames}, vae={self.vae}"

