"""Triplet objective with in-batch negatives (AVCA, thesis Eqs. 2.5, 2.8, 2.9)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_negatives(
    labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """For each anchor, the index of an in-batch sample of another class.

    The class is drawn uniformly among the other classes present in the batch, then the
    sample uniformly within that class (the published sampler draws "a random sample of a
    uniformly random other class"). An anchor whose batch holds no other class gets a
    uniformly random index (its triplet terms then carry no signal).

    Args:
        labels: ``[B]`` class labels.
        generator: optional torch RNG.

    Returns:
        ``[B]`` int64 indices into the batch.
    """
    same = labels[:, None] == labels[None, :]
    counts = same.sum(dim=1).to(torch.float32)  # samples per label, indexed by position
    weights = (~same).to(torch.float32) / counts[None, :]
    no_negative = weights.sum(dim=1) == 0
    if bool(no_negative.any()):
        weights[no_negative] = 1.0
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def triplet(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """``t(a, p, n) = mean(max(||a - p||_2 - ||a - n||_2 + margin, 0))`` over ``[B, D]`` rows."""
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin)
