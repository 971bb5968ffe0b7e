"""Training-batch index sampling of the audio-visual trainers (the published class-balanced sampler)."""

from __future__ import annotations

import numpy as np


def epoch_indices(
    labels: np.ndarray, n_batches: int, batch_size: int, sampler: str, rng: np.random.Generator
) -> np.ndarray:
    """``[n_batches, batch_size]`` sample indices for one epoch, drawn with replacement.

    Args:
        labels: ``[N]`` class of each training sample.
        sampler: ``"class_balanced"`` (a uniformly random class, then a uniformly random
            sample of it) or ``"uniform"``.
        rng: the trainer's sampler RNG.
    """
    total = n_batches * batch_size
    if sampler == "uniform":
        return rng.integers(0, len(labels), size=(n_batches, batch_size))
    order = np.argsort(labels, kind="stable")
    classes, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    pick = rng.integers(0, len(classes), size=total)
    offset = (rng.random(total) * counts[pick]).astype(np.int64)
    return order[starts[pick] + offset].reshape(n_batches, batch_size)
