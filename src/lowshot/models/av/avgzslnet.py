"""AVGZSLNet architecture (Mazumder et al., WACV 2021): per-modality embedding networks into a
joint space, a text embedding network and one decoder shared by the three modalities.

Shapes: ``B`` samples, ``C`` classes, ``D_a`` / ``D_v`` input features, ``D_w`` label
embedding (300, or the output of the text input layer), ``k`` = ``dim_out`` (64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import MODELS
from lowshot.models.av.text_input import TextInput

#: hidden width of the text embedding network f_t (published: 300, the fastText width)
TEXT_HIDDEN = 300


def joint_embedding_net(
    d_in: int, hidden: int, d_out: int, dropout: float, batch_norm: bool, out_relu: bool = False
) -> nn.Sequential:
    """The AVGZSLNet/CJME embedding network: ``Linear -> [BN] -> ReLU -> Dropout -> Linear [-> ReLU]``.

    ``[B, d_in] -> [B, d_out]``. Unlike :func:`lowshot.layers.mlp.embedding_net`, the output
    Linear has no BatchNorm and no dropout (AVGZSLNet's output is linear; CJME adds a ReLU).
    """
    layers: list[nn.Module] = [nn.Linear(d_in, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out)]
    if out_relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class AVGZSLNetNetConfig:
    """Architecture of AVGZSLNet (the method config extends it).

    Defaults are the published CLI defaults that the run scripts keep (reference §4.2).

    Attributes:
        embedding_hidden: hidden width of f_a / f_v (``--embeddings_hidden_size`` 1024).
        embedding_dropout: dropout of f_a / f_v / f_t (0.8).
        decoder_hidden: hidden width of the shared decoder f_dec (64).
        decoder_dropout: dropout of f_dec (0.5).
        dim_out: joint space (64).
        embedding_bn / decoder_bn: BatchNorm in the hidden layers (``--embedding_use_bn``,
            ``--decoder_use_bn``, on in every run script).
        normalize_decoder_outputs: L2-normalise the decoder outputs (on in every run script).
        text_input_layer: Table 5.1 W_enc on CLIP ⊕ CLAP label embeddings
            (:mod:`lowshot.models.av.text_input`).
    """

    embedding_hidden: int = 1024
    embedding_dropout: float = 0.8
    decoder_hidden: int = 64
    decoder_dropout: float = 0.5
    dim_out: int = 64
    embedding_bn: bool = True
    decoder_bn: bool = True
    normalize_decoder_outputs: bool = True
    text_input_layer: bool = False


@dataclass
class JointEmbeddings:
    """Joint-space embeddings of one batch: ``audio`` / ``video`` ``[B, k]``."""

    audio: torch.Tensor
    video: torch.Tensor


@MODELS.register("avgzslnet")
class AVGZSLNetNet(nn.Module):
    """f_a, f_v, f_t (joint space) and the shared decoder f_dec (back to label space).

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: :class:`AVGZSLNetNetConfig` (or the method config that extends it).
    """

    def __init__(
        self, audio_dim: int, video_dim: int, text_dim: int, cfg: AVGZSLNetNetConfig
    ) -> None:
        super().__init__()
        self.text_in = TextInput(text_dim, cfg.text_input_layer)
        self.text_dim = self.text_in.out_dim
        k, h, drop, bn = cfg.dim_out, cfg.embedding_hidden, cfg.embedding_dropout, cfg.embedding_bn
        self.f_a = joint_embedding_net(audio_dim, h, k, drop, bn)
        self.f_v = joint_embedding_net(video_dim, h, k, drop, bn)
        self.f_t = joint_embedding_net(self.text_dim, TEXT_HIDDEN, k, drop, bn)
        self.f_dec = joint_embedding_net(
            k, cfg.decoder_hidden, self.text_dim, cfg.decoder_dropout, cfg.decoder_bn
        )
        self.normalize_decoder_outputs = cfg.normalize_decoder_outputs

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> JointEmbeddings:
        """``[B, D_a]``, ``[B, D_v]`` -> joint-space embeddings ``[B, k]`` each."""
        return JointEmbeddings(self.f_a(audio), self.f_v(video))

    def embed_labels(self, w: torch.Tensor) -> torch.Tensor:
        """``[C, D_w]`` label embeddings (after the text input layer) -> ``[C, k]``."""
        return self.f_t(w)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Shared decoder ``[B, k] -> [B, D_w]`` (L2-normalised when configured)."""
        out = self.f_dec(z)
        return F.normalize(out, dim=1) if self.normalize_decoder_outputs else out
