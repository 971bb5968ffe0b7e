"""CJME architecture (Parida et al., WACV 2020): audio, video and text embedding networks into a
joint space and an attention predictor that weighs the two modalities.

Shapes: ``B`` samples, ``C`` classes, ``D_a`` / ``D_v`` input features, ``D_w`` label
embedding (300, or the output of the text input layer), ``k`` = ``dim_out`` (64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.models.av.avgzslnet import TEXT_HIDDEN, JointEmbeddings, joint_embedding_net
from lowshot.models.av.text_input import TextInput


@dataclass(frozen=True)
class CJMENetConfig:
    """Architecture of CJME (the method config extends it); published values (reference §4.2).

    Attributes:
        embedding_hidden: hidden width of f_a / f_v (``--embeddings_hidden_size`` 1024).
        dropout: dropout of f_a / f_v / f_t (``--dropout_baselines``: 0.2, VGGSound 0.0).
        dim_out: joint space (64).
        embedding_bn: BatchNorm in the hidden layers (``--embedding_use_bn``).
        text_input_layer: Table 5.1 W_enc on CLIP ⊕ CLAP label embeddings.
    """

    embedding_hidden: int = 1024
    dropout: float = 0.2
    dim_out: int = 64
    embedding_bn: bool = True
    text_input_layer: bool = False


@MODELS.register("cjme")
class CJMENet(nn.Module):
    """f_a, f_v, f_t (each ending in a ReLU) and the attention predictor.

    The predictor is ``sigmoid(Linear(BN(concat[x_a, x_v])))`` on the raw inputs: the weight
    ``alpha`` of the video distance (``1 - alpha`` weighs the audio distance).

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: :class:`CJMENetConfig` (or the method config that extends it).
    """

    def __init__(self, audio_dim: int, video_dim: int, text_dim: int, cfg: CJMENetConfig) -> None:
        super().__init__()
        self.text_in = TextInput(text_dim, cfg.text_input_layer)
        k, h, drop, bn = cfg.dim_out, cfg.embedding_hidden, cfg.dropout, cfg.embedding_bn
        self.f_a = joint_embedding_net(audio_dim, h, k, drop, bn, out_relu=True)
        self.f_v = joint_embedding_net(video_dim, h, k, drop, bn, out_relu=True)
        self.f_t = joint_embedding_net(
            self.text_in.out_dim, TEXT_HIDDEN, k, drop, bn, out_relu=True
        )
        self.attention = nn.Sequential(
            nn.BatchNorm1d(audio_dim + video_dim), nn.Linear(audio_dim + video_dim, 1), nn.Sigmoid()
        )

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor
    ) -> tuple[JointEmbeddings, torch.Tensor]:
        """``[B, D_a]``, ``[B, D_v]`` -> (joint embeddings ``[B, k]`` each, video weight ``alpha [B]``)."""
        alpha = self.attention(torch.cat([audio, video], dim=1)).squeeze(1)
        return JointEmbeddings(self.f_a(audio), self.f_v(video)), alpha

    def embed_labels(self, w: torch.Tensor) -> torch.Tensor:
        """``[C, D_w]`` label embeddings (after the text input layer) -> ``[C, k]``."""
        return self.f_t(w)
