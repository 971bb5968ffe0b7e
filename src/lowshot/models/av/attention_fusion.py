"""Attention Fusion adapted to (G)ZSL (thesis app. B.1.1): TCaF's encoders, temporal averaging,
a sigmoid gate between the two modalities, and TCaF's projection and text heads.

Shapes: ``B`` samples, ``T_a`` / ``T_v`` steps (padded), ``D_a`` / ``D_v`` input features,
``D`` = ``dim`` (``d_dim``), ``D_w`` label embedding.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.models.av.tcaf import TCaFNet, TCaFNetConfig, TemporalInput


def tcaf_net_config(cfg: TCaFNetConfig, **changes: object) -> TCaFNetConfig:
    """A plain :class:`TCaFNetConfig` with ``cfg``'s architecture values and ``changes``
    (the method configs that extend it validate values the baselines do not use, e.g. depth)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TCaFNetConfig)}
    return TCaFNetConfig(**{**values, **changes})


def masked_time_mean(enc: nn.Module, x: TemporalInput) -> torch.Tensor:
    """``enc`` applied to the valid steps of ``x`` (``[B, T, D_m]``), averaged over time: ``[B, D]``.

    BatchNorm inside ``enc`` sees the valid steps only (TCaF's default).
    """
    valid = enc(x.values[x.mask])  # [n, D], rows in batch order
    rows = torch.nonzero(x.mask)[:, 0]
    total = valid.new_zeros(x.values.shape[0], valid.shape[1]).index_add_(0, rows, valid)
    return total / x.mask.sum(1, keepdim=True).to(valid.dtype)


@MODELS.register("attention_fusion")
class AttentionFusionNet(TCaFNet):
    """A_enc, V_enc, ``f_attn`` and TCaF's O_proj, D_o, W_proj, D_w (no transformer).

    ``o_c = alpha * phi_a + (1 - alpha) * phi_v`` with
    ``alpha = sigmoid(f_attn([phi_a ; phi_v]))`` (``f_attn``: Linear ``2 D -> D``) on the
    temporally averaged encoder outputs.

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: TCaF's architecture config (its transformer, token and time settings are unused).
    """

    def __init__(self, audio_dim: int, video_dim: int, text_dim: int, cfg: TCaFNetConfig) -> None:
        # TCaF without transformer layers, class token or position code: encoders and heads only
        bare = tcaf_net_config(
            cfg, depth=0, readout="mean", time_embedding="none", modality_embedding=False
        )
        super().__init__(audio_dim, video_dim, text_dim, bare)
        del self.token_proj  # the position encoder block is not part of Attention Fusion
        self.f_attn = nn.Linear(2 * cfg.dim, cfg.dim)

    def gate(self, phi_a: torch.Tensor, phi_v: torch.Tensor) -> torch.Tensor:
        """``alpha = sigmoid(f_attn([phi_a ; phi_v]))`` ``[B, D]`` for ``[B, D]`` inputs."""
        return torch.sigmoid(self.f_attn(torch.cat([phi_a, phi_v], dim=1)))

    def forward(
        self, inputs: dict[str, TemporalInput], return_attention: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output token ``o_c`` ``[B, D]`` (and an empty list: there are no attention maps)."""
        phi_a = masked_time_mean(self.enc["audio"], inputs["audio"])
        phi_v = masked_time_mean(self.enc["video"], inputs["video"])
        alpha = self.gate(phi_a, phi_v)
        return alpha * phi_a + (1 - alpha) * phi_v, []
