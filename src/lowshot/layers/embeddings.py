"""Time embeddings for audio-visual token sequences."""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierTimeEmbedding(nn.Module):
    """Random Fourier features of a time in seconds, followed by a learnt linear map.

    ``pos_t = Linear([sin(2 pi t f), cos(2 pi t f)])`` with fixed frequencies
    ``f ~ N(0, scale^2)`` (thesis §3.3.2, Tancik et al.). Because the input is the real time
    in seconds, audio and video tokens with different step rates (0.96 s VGGish, 0.64 s C3D)
    that cover the same moment get the same code.

    The published code draws a ``[2, d/2]`` matrix and multiplies ``[t, t]`` with it, i.e.
    frequencies distributed as ``N(0, 2 scale^2)``; we draw one vector with ``scale * sqrt(2)``
    standard deviation, which is the same distribution. The argument ``2 pi t f`` is an
    element-wise product, so it stays fp32 under bf16 autocast (a matmul such as the published
    ``[t, t] @ B`` would be rounded to bf16, several radians at ``|t f|`` in the thousands);
    only ``proj`` runs in bf16 there.

    Args:
        dim: embedding size ``d_pos`` (even).
        scale: ``fourier_scale`` (10 in all published configs).
    """

    def __init__(self, dim: int, scale: float = 10.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"FourierTimeEmbedding needs an even dimension, got {dim}")
        self.register_buffer("freqs", torch.randn(dim // 2) * scale * math.sqrt(2.0))
        self.proj = nn.Linear(dim, dim)

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` seconds -> ``[B, T, d_pos]``."""
        ang = 2.0 * math.pi * times.unsqueeze(-1).float() * self.freqs
        return self.proj(torch.cat([ang.sin(), ang.cos()], dim=-1))
