"""Sequence-length policy of the temporal audio-visual models (TCaF; published AV-Diff shares it): pure, batched.

Two published modes (reference §5.2, §6.6):

- ``"max"``: whole sequences, padded to the longest one in the batch (UCF, VGGSound);
- ``"fixed"``: a window of at most ``maxlen`` video steps, random start in training and
  centred in evaluation (ActivityNet: 60 / 300). The audio window covers the same seconds:
  ``n_a = round(n_v * r_v / r_a)`` and ``start_a = floor(start_v * r_v / r_a)``.
  ``legacy_audio_len=True`` reproduces the published ``round(n_v * r_v * r_a)`` (§6.7).

Everything here is vectorised over the batch: one fancy-indexing gather per feature block,
no per-sample Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from lowshot.data.av.featureset import SequenceStore

SeqlenMode = Literal["max", "fixed"]


@dataclass(frozen=True)
class Window:
    """A padded batch of sequence windows.

    Attributes:
        values: ``[B, T, D]`` float32, zeros at padded steps.
        mask: ``[B, T]`` bool, True = valid step.
        steps: ``[B, T]`` int64 index of each step inside its full sequence.
    """

    values: np.ndarray
    mask: np.ndarray
    steps: np.ndarray

    def times(self, step_seconds: float, relative: bool = False) -> np.ndarray:
        """``[B, T]`` float32 time of each step in seconds (step index x step length).

        Args:
            relative: measure from the window start (the published collator) instead of
                from the start of the video; padded steps are 0 either way.
        """
        steps = np.where(self.mask, self.steps - self.steps[:, :1], 0) if relative else self.steps
        return (steps * step_seconds).astype(np.float32)


def window_starts(
    lengths: np.ndarray,
    window: int | None,
    crop: Literal["random", "center"],
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``[B]`` start steps of windows of ``window`` steps (0 where a sequence is shorter)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if window is None:
        return np.zeros_like(lengths)
    excess = np.maximum(lengths - window, 0)
    if crop == "center":
        return excess // 2
    rng = rng if rng is not None else np.random.default_rng()
    return rng.integers(0, excess + 1)


def audio_window_length(
    video_window: int, video_step: float, audio_step: float, legacy: bool = False
) -> int:
    """Audio steps covering the seconds of ``video_window`` video steps.

    Args:
        legacy: the published ``round(n_v * r_v * r_a)`` (37 instead of 40 for 60 C3D steps).
    """
    if legacy:
        return int(round(video_window * video_step * audio_step))
    return int(round(video_window * video_step / audio_step))


def gather_windows(
    store: SequenceStore, idx: np.ndarray, starts: np.ndarray, window: int | None
) -> Window:
    """Gather windows ``[start, start + window)`` of sequences ``idx``, padded to the batch max.

    Args:
        store: the sequences.
        idx: ``[B]`` sequence indices.
        starts: ``[B]`` first step of each window (clipped into the sequence).
        window: maximum window length, or None for whole sequences.
    """
    idx = np.asarray(idx, dtype=np.int64)
    lengths = store.lengths[idx]
    starts = np.clip(np.asarray(starts, dtype=np.int64), 0, np.maximum(lengths - 1, 0))
    lens = lengths - starts
    if window is not None:
        lens = np.minimum(lens, window)
    t = int(lens.max())
    ar = np.arange(t, dtype=np.int64)
    mask = ar[None, :] < lens[:, None]
    steps = starts[:, None] + ar[None, :]
    rows = store.starts[idx][:, None] + np.where(mask, steps, starts[:, None])
    block_ids = store.block_ids[idx]
    blocks = np.unique(block_ids)
    if len(blocks) == 1:  # one gather straight into the batch (fancy indexing copies): half the memory traffic
        values = np.asarray(store.blocks[int(blocks[0])][rows], dtype=np.float32)
    else:
        values = np.empty((len(idx), t, store.dim), np.float32)
        for b in blocks:
            sel = block_ids == b
            values[sel] = store.blocks[int(b)][rows[sel]]
    values[~mask] = 0.0
    return Window(values, mask, np.where(mask, steps, 0))


def gather_av_windows(
    audio: SequenceStore,
    video: SequenceStore,
    idx: np.ndarray,
    audio_step: float,
    video_step: float,
    mode: SeqlenMode,
    maxlen: int,
    train: bool,
    rng: np.random.Generator | None = None,
    legacy_audio_len: bool = False,
) -> tuple[Window, Window]:
    """Time-aligned audio and video windows of samples ``idx`` under a sequence-length policy.

    Args:
        audio / video: the two modalities' sequences.
        idx: ``[B]`` sample indices.
        audio_step / video_step: seconds per step ``r_a`` / ``r_v``.
        mode: ``"max"`` (whole sequences) or ``"fixed"`` (windows of ``maxlen`` video steps).
        maxlen: video window length in ``fixed`` mode (ignored in ``max`` mode).
        train: random window start (training) or centred (evaluation).
        rng: numpy generator for the random start.
        legacy_audio_len: see :func:`audio_window_length`.

    Returns:
        ``(audio window, video window)``.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if mode == "max":
        zeros = np.zeros(len(idx), np.int64)
        return gather_windows(audio, idx, zeros, None), gather_windows(video, idx, zeros, None)
    v_starts = window_starts(video.lengths[idx], maxlen, "random" if train else "center", rng)
    n_a = audio_window_length(maxlen, video_step, audio_step, legacy_audio_len)
    a_len = audio.lengths[idx]
    a_starts = np.floor(v_starts * video_step / audio_step).astype(np.int64)
    a_starts = np.minimum(a_starts, np.maximum(a_len - n_a, 0))
    return gather_windows(audio, idx, a_starts, n_a), gather_windows(video, idx, v_starts, maxlen)
