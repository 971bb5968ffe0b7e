"""Input normalisation of pre-extracted audio-visual features (reference §6.5).

``"per_family"`` (default) depends on the feature family of :class:`lowshot.methods.base.InputSpec`:

- ``vggish``: the released values are 8-bit quantised to 0..255 from [-2, 2]; de-quantise
  with ``x * 4 / 255 - 2``;
- ``c3d``: L2 normalisation of each time step over the feature axis;
- ``selavi``, ``clip``, ``clap``, ``generic``: unchanged (already float / already normalised).

``"legacy_tcaf"`` reproduces the published TCaF/AV-Diff code: every audio input divided by
255 (SeLaVi included) and the video L2-normalised over the *time* axis per channel
(``F.normalize`` on ``[B, T, D]`` with its default ``dim=1``), so values shrink with the
sequence length and depend on the crop. ``"none"`` feeds raw features (AVCA, ClipClap).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

InputNorm = Literal["per_family", "legacy_tcaf", "none"]


def normalize_features(
    x: torch.Tensor, kind: str, modality: Literal["audio", "video"], mode: InputNorm
) -> torch.Tensor:
    """Normalise ``[B, D]`` or ``[B, T, D]`` features of feature family ``kind``.

    Padded steps must be zero on input; they stay zero (or become the constant the
    de-quantisation maps 0 to, which is harmless because padded steps are masked later).
    """
    if mode == "none":
        return x
    if mode == "legacy_tcaf":
        if modality == "audio":
            return x / 255.0
        return F.normalize(x, dim=1)  # over time for [B, T, D] (published quirk)
    if kind == "vggish":
        return x * (4.0 / 255.0) - 2.0
    if kind == "c3d":
        return F.normalize(x, dim=-1)
    return x
