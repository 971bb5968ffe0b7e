"""Attribute Prototype Network (APN) head on concatenated audio-visual input (thesis §2.4.3).

APN regresses the class attributes (here: the class-label embedding) from an input feature
twice: through a global attribute map ``A`` and through attribute prototypes ``P``. On
images the prototypes are convolved over a spatial feature map and max-pooled; a clip-level
audio-visual vector is a 1 x 1 map, so both branches reduce to bias-free linear maps
``[D_w, D_v + D_a]``, initialised uniformly in ``[0, 2e-4)`` as published.

Shapes: ``B`` samples, ``C`` classes, ``D_a`` / ``D_v`` input features, ``D_w`` label embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.models.av.compat import JointInput, JointInputConfig

#: published initial scale of both attribute maps (uniform in [0, INIT_SCALE))
INIT_SCALE = 2e-4


@dataclass(frozen=True)
class APNNetConfig(JointInputConfig):
    """Architecture (the method config extends it): only the input (``norm_inputs``, ``input_norm``)."""


@MODELS.register("apn")
class APNNet(nn.Module):
    """Global and prototype attribute regressors of concat[video, audio].

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: :class:`APNNetConfig` (or the method config that extends it).
        kinds: feature families ``(audio_kind, video_kind)`` (``InputSpec``), for ``input_norm``.
    """

    def __init__(
        self, audio_dim: int, video_dim: int, text_dim: int, cfg: APNNetConfig,
        kinds: tuple[str, str] = ("generic", "generic"),
    ) -> None:
        super().__init__()
        self.input = JointInput(cfg, kinds)
        shape = (text_dim, video_dim + audio_dim)
        self.global_map = nn.Parameter(INIT_SCALE * torch.rand(shape))
        self.prototypes = nn.Parameter(INIT_SCALE * torch.rand(shape))

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, D_a]``, ``[B, D_v]`` -> (global attributes ``[B, D_w]``, prototype attributes ``[B, D_w]``)."""
        x = self.input(audio, video)
        return x @ self.global_map.t(), x @ self.prototypes.t()
