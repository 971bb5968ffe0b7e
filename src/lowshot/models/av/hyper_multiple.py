"""Hyper-multiple (Hong et al., ICCV 2023): AVCA with a hyperbolic alignment module whose
curvatures are predicted per sample.

Shapes: ``B`` samples, ``K`` curvatures, ``D`` = ``dim`` (``k_f`` = 300, the encoder outputs
``phi_a`` / ``phi_v`` before cross-attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import MODELS
from lowshot.models.av.avca import AVCANet, AVCANetConfig, AVCAOutputs

#: relative margin that keeps projected points strictly inside the ball (tanh rounds to 1 in
#: float32 for ``sqrt(c) ||x|| > ~9``, which would put them on its boundary)
BALL_EPS = 1e-5


def expmap0(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Exponential map at the origin of the Poincaré ball of curvature ``-c``.

    ``exp_0^c(x) = tanh(sqrt(c) ||x||) x / (sqrt(c) ||x||)``, its norm capped at
    ``(1 - BALL_EPS) / sqrt(c)`` so that the image lies strictly inside the ball
    ``||y|| < 1 / sqrt(c)``.

    Args:
        x: ``[B, D]`` tangent vectors.
        c: ``[B, 1]`` (or broadcastable) positive curvatures.

    Returns:
        ``[B, D]`` points of the ball.
    """
    sqrt_c = c.sqrt()
    norm = x.norm(dim=-1, keepdim=True).clamp_min(1e-15)
    radius = torch.tanh(sqrt_c * norm).clamp_max(1 - BALL_EPS) / sqrt_c  # ||exp_0^c(x)||
    return radius * x / norm


def cosine_similarities(x: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` cosine similarities between the rows of ``x`` ``[B, D]``."""
    x = F.normalize(x, dim=1)
    return x @ x.T


def alignment_loss(phi_a: torch.Tensor, phi_v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Hyperbolic alignment: MSE between the intra-modal similarity matrices of the projected
    video and audio features, averaged over the ``K`` curvatures.

    Args:
        phi_a / phi_v: ``[B, D]`` encoder outputs.
        c: ``[B, K]`` per-sample curvatures.

    Returns:
        Scalar loss.
    """
    terms = [
        F.mse_loss(
            cosine_similarities(expmap0(phi_v, c[:, k : k + 1])),
            cosine_similarities(expmap0(phi_a, c[:, k : k + 1])),
        )
        for k in range(c.shape[1])
    ]
    return torch.stack(terms).mean()


@MODELS.register("hyper_multiple")
class HyperMultipleNet(AVCANet):
    """AVCA's network plus the curvature head ``c = c_max * sigmoid(Linear([phi_v ; phi_a]))``.

    In training mode every forward with gradients adds its alignment loss to :attr:`align_terms` (the method
    reads and clears it), so AVCA's loss code runs unchanged.

    Args:
        audio_dim / video_dim / text_dim / cfg / kwargs: as :class:`AVCANet`.
        n_curvatures: ``K``.
        max_curvature: ``c_max`` (the curvature scale of the paper, 0.01).
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        text_dim: int,
        cfg: AVCANetConfig,
        *,
        n_curvatures: int,
        max_curvature: float,
        **kwargs: object,
    ) -> None:
        super().__init__(audio_dim, video_dim, text_dim, cfg, **kwargs)
        self.curvature_head = nn.Linear(2 * cfg.dim, n_curvatures)
        self.max_curvature = max_curvature
        self.align_terms: list[torch.Tensor] = []

    def curvatures(self, phi_a: torch.Tensor, phi_v: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` curvatures in ``(0, c_max)`` from ``[B, D]`` encoder outputs."""
        return self.max_curvature * torch.sigmoid(
            self.curvature_head(torch.cat([phi_v, phi_a], dim=1))
        )

    def forward(self, audio: torch.Tensor | None, video: torch.Tensor | None) -> AVCAOutputs:
        """AVCA's forward (``[B, D_a]``, ``[B, D_v]`` -> :class:`AVCAOutputs`); in training mode it
        also records the alignment loss of the batch."""
        out = super().forward(audio, video)
        if (
            self.training and torch.is_grad_enabled()
        ):  # not the gradient-free legacy BatchNorm passes
            phi_a, phi_v = out.phi["audio"], out.phi["video"]
            self.align_terms.append(alignment_loss(phi_a, phi_v, self.curvatures(phi_a, phi_v)))
        return out
