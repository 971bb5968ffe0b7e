"""SLDG as an audio-visual GFSL baseline (thesis Table 4.2).

Reference: N. Bo, R. Lu, X. He (et al.), "Few-shot learning of video action recognition only
based on video contents", WACV 2020 ([30] of the thesis); adapted in thesis §4.3.3: a
two-stream video few-shot learner whose frame features are weighted by normal distributions
over time, with the optical-flow stream replaced by audio.

Re-implemented from Bo et al. (WACV 2020) and the thesis paragraph; no upstream parity reference
(reference §6.9). Per modality, the per-step features go through TCaF's per-step encoder
(``A_enc`` / ``V_enc``, no time or modality code: the Gaussians carry the time); ``gaussians``
normal densities over the relative position ``u_t = (t + 0.5) / T`` of the valid steps, with
learnt centres ``mu_k`` (initialised evenly in (0, 1)) and widths ``sigma_k``, each normalised
over the valid steps, pool the steps into ``K`` vectors (``sum_t w_kt phi_t``). The K pooled
vectors of both modalities are concatenated, projected to ``dim`` and through O_proj, and
classified (CE; probability scores).

Differences from the published code: no code was released (reference §6.9). Differences from the
paper: the exact SLDG segment sampling and its few-shot head are not reproduced (not in the
thesis); the stream fusion is concatenation before one classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.methods.av.gfsl_head import PhaseClasses, TemporalGFSLClassifier, TemporalGFSLConfig
from lowshot.methods.base import InputSpec


def gaussian_weights(valid: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Normalised Gaussian weights over the valid steps ``[B, K, T]`` (0 at padding).

    Args:
        valid: ``[B, T]`` bool, True = valid step (valid steps first).
        mu / sigma: ``[K]`` centres and widths on the relative time axis (0, 1).
    """
    n = valid.sum(1, keepdim=True).clamp(min=1).to(mu.dtype)  # [B, 1]
    u = (torch.arange(valid.shape[1], device=valid.device, dtype=mu.dtype)[None, :] + 0.5) / n  # [B, T]
    logw = -0.5 * ((u[:, None, :] - mu[None, :, None]) / sigma[None, :, None]) ** 2  # [B, K, T]
    logw = logw.masked_fill(~valid[:, None, :], float("-inf"))
    return logw.softmax(-1)  # the normal density normalised over the valid steps


@dataclass(frozen=True)
class SLDGConfig(TemporalGFSLConfig):
    """SLDG: TCaF's inputs and encoders plus the Gaussian pooling.

    Attributes:
        gaussians: ``K`` normal distributions per modality.
        sigma_init: initial width of each Gaussian (relative time).
    """

    #: SLDG uses the per-step encoders, O_proj and ``transformer_dropout`` (after the fusion layer)
    ignored = ("depth", "heads", "dim_head", "mlp_dim", "feed_forward", "token_dropout", "pos_dim",
               "fourier_scale", "time_embedding", "modality_embedding")  # fmt: skip

    gaussians: int = 3
    sigma_init: float = 0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gaussians < 1 or self.sigma_init <= 0 or self.modalities != "both":
            raise ConfigError("sldg: gaussians >= 1, sigma_init > 0 and modalities='both' needed")


@METHODS.register("sldg")
class SLDG(TemporalGFSLClassifier):
    """Gaussian-weighted temporal pooling of audio and video steps, one classifier; probability scores."""

    Config = SLDGConfig

    def __init__(self, config: SLDGConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config
        k = c.gaussians
        self.mu = nn.Parameter(torch.linspace(0.5 / k, 1 - 0.5 / k, k))
        self.log_sigma = nn.Parameter(torch.full((k,), math.log(c.sigma_init)))
        self.fuse = nn.Sequential(nn.Linear(2 * k * c.dim, c.dim), nn.ReLU(), nn.Dropout(c.transformer_dropout))
        self.head = PhaseClasses(c.dim_out, self.num_classes)

    def pooled(self, batch: Batch) -> torch.Tensor:
        """Concatenated Gaussian-pooled features of both modalities ``[B, K*D*2]``."""
        out = []
        for m, x in self._inputs(batch).items():
            phi = self.tokens.enc[m](x.values[x.mask])  # encoder on valid steps only
            steps = phi.new_zeros(*x.mask.shape, phi.shape[-1])
            steps[x.mask] = phi
            w = gaussian_weights(x.mask, self.mu, self.log_sigma.exp())  # [B, K, T]
            out.append((w @ steps).flatten(1))  # [B, K * D]
        return torch.cat(out, dim=1)

    def logits(self, batch: Batch) -> torch.Tensor:
        """Phase logits ``[B, C_p]``."""
        return self.head(self.tokens.o_proj(self.fuse(self.pooled(batch))))
