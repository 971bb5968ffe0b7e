"""ClipClap-GZSL architecture (thesis ch. 5, Fig. 5.2): MLP encoders, projections, decoders.

Shapes: ``B`` samples, ``C`` classes, ``D_in`` concatenated input features, ``D_t``
concatenated label embeddings, ``d_model`` = 512, ``d_out`` = 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.mlp import embedding_net, linear_bn_relu


@dataclass(frozen=True)
class ClipClapNetConfig:
    """Architecture of ClipClap-GZSL (the method config extends it: each value is declared once).

    Attributes:
        model_dim: ``d_model``, output of both encoders.
        hidden_dim: ``d_hidden`` of O_proj and D_o.
        out_dim: ``d_out`` of the joint space.
        embedding_dropout / decoder_dropout / additional_dropout: dropout of the encoders,
            of O_proj and D_o (published ``decoder_dropout``), and of W_proj and D_w
            (published ``additional_dropout``).
    """

    model_dim: int = 512
    hidden_dim: int = 512
    out_dim: int = 64
    embedding_dropout: float = 0.1
    decoder_dropout: float = 0.1
    additional_dropout: float = 0.1


@MODELS.register("clipclap")
class ClipClapNet(nn.Module):
    """O_enc, W_enc, O_proj, W_proj, D_o and D_w of ClipClap-GZSL.

    Every Linear, the last ones of O_proj and W_proj included, is followed by BatchNorm, ReLU
    and dropout (thesis §5.3; published ``EmbeddingNet``), so the joint space of theta_o and
    theta_w is non-negative and batch-normalised.

    Args:
        input_dim: ``D_in`` of the concatenated audio-visual input.
        text_dim: ``D_t`` of the concatenated label embedding.
        cfg: the architecture (:class:`ClipClapNetConfig`, or the method config that extends it).
    """

    def __init__(self, input_dim: int, text_dim: int, cfg: ClipClapNetConfig) -> None:
        super().__init__()
        d, h, out = cfg.model_dim, cfg.hidden_dim, cfg.out_dim
        self.o_enc = linear_bn_relu(input_dim, d, cfg.embedding_dropout)  # Eq. 5.1
        self.w_enc = linear_bn_relu(text_dim, d, cfg.embedding_dropout)  # Eq. 5.2
        self.o_proj = embedding_net(d, out, cfg.decoder_dropout, h)  # theta_o
        self.w_proj = linear_bn_relu(d, out, cfg.additional_dropout)  # theta_w
        self.d_o = embedding_net(out, d, cfg.decoder_dropout, h)
        self.d_w = linear_bn_relu(out, d, cfg.additional_dropout)

    def embed_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, D_in]`` -> theta_o ``[B, d_out]``."""
        return self.o_proj(self.o_enc(x))

    def embed_labels(self, w: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``[C, D_t]`` -> (encoded label ``[R, d_model]``, theta_w ``[R, d_out]``).

        With ``rows`` (``[R]`` indices into ``w``) the result equals ``embed_labels(w[rows])``,
        but W_enc's first Linear runs once per class instead of once per row; BatchNorm,
        ReLU and dropout still act on the R gathered rows, so batch statistics are unchanged.
        """
        hidden = self.w_enc[0](w)  # Linear, [C, d_model]
        if rows is not None:
            # gather as a one-hot matmul: its backward is a matmul, which is deterministic on
            # CPU, whereas indexing backward (index_add) sums in thread-dependent order
            hidden = F.one_hot(rows, hidden.shape[0]).to(hidden.dtype) @ hidden
        encoded = self.w_enc[1:](hidden)
        return encoded, self.w_proj(encoded)
