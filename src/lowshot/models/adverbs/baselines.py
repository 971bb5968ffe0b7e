"""Architectures of the video-adverb baselines (AC_CLS/AC_REG and Action Modifier).

* AC: D. Moltisanti, F. Keller, H. Bilen, L. Sevilla-Lara, "Learning Action Changes by
  Measuring Verb-Adverb Textual Relationships", CVPR 2023 (dmoltisanti/air-cvpr23 @
  4b09522, ``model.py::RegClsAdverbModel``, read not copied). Differences: padding is
  masked from true lengths in training *and* evaluation (the published training marks
  steps whose feature channel 0 is zero as padding and the published evaluation does not
  mask at all; ``legacy_zero_value_padding_mask`` / ``legacy_unmasked_eval`` restore
  both), device-agnostic code. Same dropout (0.1) on the attention weights and in ``rho``.
* Action Modifier: H. Doughty, I. Laptev, W. Mayol-Cuevas, D. Damen, "Action Modifiers:
  Learning from Adverbs in Instructional Videos", CVPR 2020 (hazeld/action-modifiers @
  ca4937a, no licence: read only). Differences: S3D features and S3D text embeddings (as
  in the AIR/ReGaDa tables) instead of I3D + GloVe; the action query embedding has the
  text-embedding size; padding masked from true lengths (the published code has no mask:
  its HowTo100M clips have a fixed length). Attention-weight dropout 0.1 as published.

TIRG reuses :class:`lowshot.models.adverbs.regada.ReGaDa` with ``composer="tirg"``; the
zero-shot and Priors baselines have no parameters (see :mod:`lowshot.methods.adverbs.s3d` and :mod:`lowshot.methods.adverbs.priors`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.attention import SlicedQueryAttention
from lowshot.layers.masks import key_padding, zero_value_key_padding


@dataclass(frozen=True)
class ACNetConfig:
    """Architecture of the AC model (air-cvpr23 defaults).

    Attributes:
        heads: attention slices (4).
        d_k: total key/value size (512).
        hidden: widths of ``rho``'s hidden layers (512, 512, 512).
        dropout: dropout in ``rho`` and on the attention weights (published: one value).
        legacy_unmasked_eval: do not mask padding when not training, as the published AC
            evaluation does: a clip then also attends to the zero padding up to the longest
            clip of its evaluation batch, so its scores depend on the batch it lands in
            (published: 512 unshuffled test rows). Off by default.
        legacy_zero_value_padding_mask: mark step ``t`` as padding when ``x[:, t, 0] == 0``
            (:func:`~lowshot.layers.masks.zero_value_key_padding`), as the published AC
            training does; a real step whose channel 0 is zero is then masked too. Off by
            default.
    """

    heads: int = 4
    d_k: int = 512
    hidden: tuple[int, ...] = (512, 512, 512)
    dropout: float = 0.1
    legacy_unmasked_eval: bool = False
    legacy_zero_value_padding_mask: bool = False


@dataclass(frozen=True)
class ActionModifierNetConfig:
    """Architecture of the Action Modifier model.

    Attributes:
        heads / d_k: attention slices and total key/value size.
        dropout: dropout on the attention weights (published ``SDPAttention`` default 0.1).
        video_mlp: hidden widths of an MLP (``[Linear, ReLU, Dropout(dropout)]`` per width, then
            ``Linear -> d``) on the attention output: "MLP + Act Mod" of thesis Table E.5
            (unreleased; inferred). Empty (default) = the published Action Modifier.
    """

    heads: int = 4
    d_k: int = 512
    dropout: float = 0.1
    video_mlp: tuple[int, ...] = ()


def relu_mlp(d_in: int, hidden: tuple[int, ...], d_out: int, dropout: float) -> nn.Sequential:
    """``[Linear, ReLU, Dropout]`` per hidden width, then ``Linear -> d_out`` (AC's ``rho``)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), nn.ReLU(), nn.Dropout(dropout)]
        d_in = h
    return nn.Sequential(*layers, nn.Linear(d_in, d_out))


@MODELS.register("adverbs.ac")
class ACModel(nn.Module):
    """Verb-query attention + MLP ``rho`` giving one output per adverb.

    Args:
        action_emb: ``[V, d_theta]`` initial verb embeddings (fine-tuned, as published).
        n_adverbs: output size ``|A|``.
        feature_dim: ``d_model`` of the features (1024).
        cfg: the architecture (:class:`ACNetConfig`).
    """

    def __init__(
        self, action_emb: torch.Tensor, n_adverbs: int, feature_dim: int, cfg: ACNetConfig
    ) -> None:
        super().__init__()
        d_theta = action_emb.shape[1]
        self.verbs = nn.Embedding.from_pretrained(action_emb.float().clone(), freeze=False)
        self.attn = SlicedQueryAttention(
            feature_dim, d_theta, cfg.heads, cfg.d_k, d_theta, cfg.dropout
        )
        self.legacy_zero_value_padding_mask = cfg.legacy_zero_value_padding_mask
        self.legacy_unmasked_eval = cfg.legacy_unmasked_eval
        self.rho = relu_mlp(d_theta, cfg.hidden, n_adverbs, cfg.dropout)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``x [B, T, d_x]``, ``lengths [B]``, ``actions [B]`` -> ``[B, |A|]`` adverb outputs."""
        if self.legacy_unmasked_eval and not self.training:
            valid = None
        elif self.legacy_zero_value_padding_mask:
            valid = zero_value_key_padding(x)
        else:
            valid = key_padding(lengths, x.shape[1])
        return self.rho(self.attn(x, self.verbs(actions), valid))


@MODELS.register("adverbs.action_modifier")
class ActionModifierModel(nn.Module):
    """Action-query attention video embedding; adverbs as linear maps of the action.

    Pair embedding ``m(a, v) = ReLU(A_a e_v)`` with ``A_a`` initialised to the identity;
    score ``-||video - m(a, v)||``.

    Args:
        action_emb: ``[V, d]`` frozen action embeddings ``e_v`` (also the queries).
        n_adverbs: number of adverbs.
        feature_dim: ``d_model`` of the features.
        cfg: the architecture (:class:`ActionModifierNetConfig`).
    """

    def __init__(
        self,
        action_emb: torch.Tensor,
        n_adverbs: int,
        feature_dim: int,
        cfg: ActionModifierNetConfig,
    ) -> None:
        super().__init__()
        d = action_emb.shape[1]
        self.register_buffer("action_emb", action_emb.float().clone())
        self.attn = SlicedQueryAttention(feature_dim, d, cfg.heads, cfg.d_k, d, cfg.dropout)
        self.modifiers = nn.Parameter(torch.eye(d).repeat(n_adverbs, 1, 1))  # [A, d, d]
        self.video_mlp = (
            relu_mlp(d, cfg.video_mlp, d, cfg.dropout) if cfg.video_mlp else nn.Identity()
        )

    def video_embeddings(
        self, x: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``[B, T, d_x]`` -> ``[B, d]`` with the action ``actions [B]`` as query (then ``video_mlp``)."""
        return self.video_mlp(
            self.attn(x, self.action_emb[actions], key_padding(lengths, x.shape[1]))
        )

    def pair_embeddings(self, adverbs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``m(a_b, v_b)`` for index vectors ``[B]`` -> ``[B, d]``."""
        return torch.relu(
            torch.einsum("bij,bj->bi", self.modifiers[adverbs], self.action_emb[actions])
        )

    def all_adverb_embeddings(self, actions: torch.Tensor) -> torch.Tensor:
        """``m(a, v_b)`` for every adverb ``a`` -> ``[B, A, d]``."""
        return torch.relu(torch.einsum("aij,bj->bai", self.modifiers, self.action_emb[actions]))
