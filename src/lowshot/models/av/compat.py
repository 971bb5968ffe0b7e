"""Linear compatibility network of the image-ZSL baselines ALE, SJE and DEVISE (thesis §2.4.3).

One bias-free linear map ``W`` takes concat[video, audio] into the class-label embedding
space; the compatibility of a sample ``x`` with class ``c`` is ``(W x)^T w_c``.

Shapes: ``B`` samples, ``C`` classes, ``D_a`` / ``D_v`` input features, ``D_w`` label embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.input_norm import InputNorm, normalize_features


def joint_input(
    audio: torch.Tensor,
    video: torch.Tensor,
    normalise: bool,
    input_norm: InputNorm = "none",
    kinds: tuple[str, str] = ("generic", "generic"),
) -> torch.Tensor:
    """concat[video, audio] ``[B, D_v + D_a]``, L2-normalised per sample when ``normalise``.

    The image-ZSL baselines take this vector in place of an image feature (thesis §2.4.3).
    Each modality first goes through ``input_norm`` (:mod:`lowshot.layers.input_norm`) for its
    feature family ``kinds = (audio_kind, video_kind)``. With ``normalise`` and ``per_family``,
    each modality is also L2-normalised before the concat, so that both carry half of its
    squared norm (de-quantised 128-d VGGish has a norm ~10x that of L2-normalised C3D and would
    otherwise be almost all of the normalised concat).
    """
    audio = normalize_features(audio, kinds[0], "audio", input_norm)
    video = normalize_features(video, kinds[1], "video", input_norm)
    if normalise and input_norm == "per_family":
        audio, video = F.normalize(audio, dim=1), F.normalize(video, dim=1)
    x = torch.cat([video, audio], dim=1)
    return F.normalize(x, dim=1) if normalise else x


@dataclass(frozen=True)
class JointInputConfig:
    """How concat[video, audio] is formed (the baselines' configs extend it).

    Attributes:
        norm_inputs: L2-normalise concat[video, audio] (published ``--norm_inputs``; on for
            the cls features).
        input_norm: per-modality normalisation before the concat
            (:mod:`lowshot.layers.input_norm`): ``per_family`` de-quantises VGGish and
            L2-normalises C3D (SeLaVi unchanged) and, with ``norm_inputs``, L2-normalises each
            modality before the concat (equal shares); ``none`` (published) concatenates the raw
            features, so on the cls features the uint8 VGGish values (offset ~128) dominate.
    """

    norm_inputs: bool = False
    input_norm: InputNorm = "per_family"


class JointInput(nn.Module):
    """``[B, D_a]``, ``[B, D_v]`` -> :func:`joint_input` ``[B, D_v + D_a]`` as ``cfg`` asks.

    Args:
        cfg: :class:`JointInputConfig` (or a config that extends it).
        kinds: feature families ``(audio_kind, video_kind)`` (``InputSpec``), for ``input_norm``.
    """

    def __init__(self, cfg: JointInputConfig, kinds: tuple[str, str] = ("generic", "generic")) -> None:
        super().__init__()
        self.norm_inputs, self.input_norm, self.kinds = cfg.norm_inputs, cfg.input_norm, kinds

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """``[B, D_a]``, ``[B, D_v]`` -> ``[B, D_v + D_a]``."""
        return joint_input(audio, video, self.norm_inputs, self.input_norm, self.kinds)


@dataclass(frozen=True)
class CompatNetConfig(JointInputConfig):
    """Architecture (the method config extends it).

    Attributes:
        dropout: dropout on the input and, in training, on the class embeddings (published
            ``--dropout_baselines``: 0.2, 0.0 on VGGSound).
    """

    dropout: float = 0.2


@MODELS.register("compat")
class CompatNet(nn.Module):
    """``W``: concat[video, audio] ``[B, D_v + D_a]`` -> label space ``[B, D_w]``.

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: :class:`CompatNetConfig` (or the method config that extends it).
        kinds: feature families ``(audio_kind, video_kind)`` (``InputSpec``), for ``input_norm``.
    """

    def __init__(
        self, audio_dim: int, video_dim: int, text_dim: int, cfg: CompatNetConfig,
        kinds: tuple[str, str] = ("generic", "generic"),
    ) -> None:
        super().__init__()
        self.input = JointInput(cfg, kinds)
        self.dropout = nn.Dropout(cfg.dropout)
        self.w = nn.Linear(video_dim + audio_dim, text_dim, bias=False)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """``[B, D_a]``, ``[B, D_v]`` -> projected inputs ``W x`` ``[B, D_w]``."""
        return self.w(self.dropout(self.input(audio, video)))

    def compatibility(
        self, audio: torch.Tensor, video: torch.Tensor, class_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """Bilinear compatibilities ``(W x)^T w_c`` ``[B, C]`` for ``class_embeddings`` ``[C, D_w]``."""
        return self(audio, video) @ self.dropout(class_embeddings).t()
