"""AVCA architecture (thesis ch. 2, Fig. 2.2): encoders, cross-attention, projections, decoders.

Shapes: ``B`` samples, ``C`` classes, ``D_a`` / ``D_v`` input features, ``D_w`` label
embedding, ``k_f`` = ``dim`` (300), ``k_proj`` = ``dim_out`` (64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.attention import TransformerStack
from lowshot.layers.mlp import embedding_net
from lowshot.models.av.text_input import TextInput

Modalities = Literal["both", "audio", "video"]


@dataclass
class AVCAOutputs:
    """Per-branch embeddings of one batch (None for an inactive branch).

    Attributes:
        phi: modality -> encoder output ``phi_m`` ``[B, k_f]`` (Eq. 2.1).
        theta: modality -> projected output ``theta_m`` ``[B, k_proj]`` (Eq. 2.2).
    """

    phi: dict[str, torch.Tensor]
    theta: dict[str, torch.Tensor]


@dataclass(frozen=True)
class AVCANetConfig:
    """Architecture of AVCA (the method config extends it: each value is declared once).

    Attributes:
        dim: ``k_f``, encoder output and attention width (300).
        encoder_hidden: ``k_f_hidd`` of the encoders (512).
        decoder_hidden: hidden size of A_proj / V_proj (512).
        dim_out: ``k_proj`` (64).
        depth / heads / dim_head / mlp_dim: cross-attention transformer (1 / 3 / 100 / 64).
        embedding_dropout: ``r_enc`` (encoders and attention block).
        decoder_dropout: ``r_proj`` (A_proj, V_proj).
        additional_dropout: ``r_dec`` (W_proj, D, A_rec, V_rec).
        bn_momentum: momentum of the output BatchNorm of the two-layer blocks (published).
        text_input_layer: map the label embeddings through ``W_enc`` first (Table 5.1 variant
            for CLIP ⊕ CLAP labels, :mod:`lowshot.models.av.text_input`).
    """

    dim: int = 300
    encoder_hidden: int = 512
    decoder_hidden: int = 512
    dim_out: int = 64
    depth: int = 1
    heads: int = 3
    dim_head: int = 100
    mlp_dim: int = 64
    embedding_dropout: float = 0.2
    decoder_dropout: float = 0.3
    additional_dropout: float = 0.5
    bn_momentum: float = 0.1
    text_input_layer: bool = False


@MODELS.register("avca")
class AVCANet(nn.Module):
    """A_enc, V_enc, the cross-attention block, A_proj, V_proj, W_proj, D, A_rec and V_rec.

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: the sizes and dropouts (:class:`AVCANetConfig`, or the method config that
            extends it).
        inputs: encoded modalities (``audio``/``video``: Table 2.3 single-modality models).
        branches: modalities with a projection branch and losses (Table 2.4 "with x-att").
        cross_attention: use the cross-attention block (False: Table 2.4 "w/o x-att").
        train_position: optimise the position embedding (the published optimiser leaves its
            random initialisation untouched).
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        text_dim: int,
        cfg: AVCANetConfig,
        *,
        inputs: Modalities = "both",
        branches: Modalities = "both",
        cross_attention: bool = True,
        train_position: bool = True,
    ) -> None:
        super().__init__()
        dim, dim_out, bn = cfg.dim, cfg.dim_out, cfg.bn_momentum
        self.inputs = ("audio", "video") if inputs == "both" else (inputs,)
        self.branches = ("audio", "video") if branches == "both" else (branches,)
        in_dims = {"audio": audio_dim, "video": video_dim}
        self.text_in = TextInput(text_dim, cfg.text_input_layer)  # W_enc or identity
        text_dim = self.text_in.out_dim
        self.enc = nn.ModuleDict(
            {
                m: embedding_net(in_dims[m], dim, cfg.embedding_dropout, cfg.encoder_hidden, bn)
                for m in self.inputs
            }
        )
        self.proj = nn.ModuleDict(
            {
                m: embedding_net(dim, dim_out, cfg.decoder_dropout, cfg.decoder_hidden, bn)
                for m in self.branches
            }
        )
        self.rec = nn.ModuleDict(
            {m: embedding_net(dim_out, dim, cfg.additional_dropout) for m in self.branches}
        )
        self.w_proj = embedding_net(text_dim, dim_out, cfg.additional_dropout)
        self.decoder = embedding_net(dim_out, text_dim, cfg.additional_dropout)  # D (shared)
        self.cross_attention = None
        if cross_attention:
            # learnt per-modality position embedding of the two tokens [phi_a, phi_v]
            self.pos = nn.Parameter(torch.randn(2, dim), requires_grad=train_position)
            self.cross_attention = TransformerStack(
                cfg.depth, dim, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.embedding_dropout
            )

    def forward(self, audio: torch.Tensor | None, video: torch.Tensor | None) -> AVCAOutputs:
        """Embed a batch.

        Args:
            audio: ``[B, D_a]`` (ignored unless audio is an input).
            video: ``[B, D_v]`` (ignored unless video is an input).

        Returns:
            :class:`AVCAOutputs` with ``phi`` for the inputs and ``theta`` for the branches.
        """
        x = {"audio": audio, "video": video}
        phi = {m: self.enc[m](x[m]) for m in self.inputs}  # Eq. 2.1
        fused = dict(phi)
        if self.cross_attention is not None:
            tokens = torch.stack([phi["audio"] + self.pos[0], phi["video"] + self.pos[1]], dim=1)
            att, _ = self.cross_attention(tokens)  # [B, 2, k_f]
            # Eq. 2.2: residual around the whole block (the block has its own residuals)
            fused = {"audio": phi["audio"] + att[:, 0], "video": phi["video"] + att[:, 1]}
        theta = {m: self.proj[m](fused[m]) for m in self.branches}  # Eq. 2.2
        return AVCAOutputs(phi, theta)

    def embed_labels(self, w: torch.Tensor) -> torch.Tensor:
        """``[C, D_w]`` -> theta_w ``[C, k_proj]``."""
        return self.w_proj(w)
