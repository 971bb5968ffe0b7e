"""The mini-batch a method's ``collate`` builds from a :class:`~lowshot.data.av.featureset.FeatureSet`.

It lives with the data (not with the methods) because protocols read it too: the audio-noise
probe (:mod:`lowshot.protocols.robustness`) rewrites ``audio`` of any method's batches.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    """A mini-batch. Dense features are ``[B, D]``; temporal ones ``[B, T, D]`` with masks.

    Attributes:
        audio: ``[B, D_a]`` or ``[B, T_a, D_a]`` float32.
        video: ``[B, D_v]`` or ``[B, T_v, D_v]`` float32.
        labels: ``[B]`` int64 global class indices.
        targets: ``[B]`` int64 indices into the class-embedding matrix given to
            ``training_loss`` (the training classes); ``-1`` at evaluation.
        audio_mask / video_mask: ``[B, T]`` bool, True = valid step (temporal only).
        audio_times / video_times: ``[B, T]`` float32 time of each step in seconds.
    """

    audio: torch.Tensor
    video: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    audio_mask: torch.Tensor | None = None
    video_mask: torch.Tensor | None = None
    audio_times: torch.Tensor | None = None
    video_times: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor field moved to ``device`` (non-blocking); None fields stay None."""
        return Batch(
            **{
                f.name: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for f in fields(self)
                for v in [getattr(self, f.name)]
            }
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])
