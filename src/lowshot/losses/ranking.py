"""Margin ranking objectives of the linear label-embedding baselines (ALE, SJE, DEVISE).

All three penalise every other class ``c`` whose compatibility comes within ``margin`` of the
true class ``y``: ``h_c = max(0, margin + s_c - s_y)``. They differ in how the hinges of one
sample are reduced:

* ``sum`` (DEVISE, Frome et al. 2013): ``sum_c h_c``;
* ``max`` (SJE, Akata et al. 2015): ``max_c h_c`` (the most violating class only);
* ``weighted`` (ALE, Akata et al. 2013/2016; the WARP weighting of Weston et al. 2011):
  ``l(r) / r * sum_c h_c`` with ``r`` the number of violating classes and
  ``l(r) = sum_{i=1..r} 1/i``, so a sample ranked low weighs more per violation.

The batch loss is the mean over samples.
"""

from __future__ import annotations

from typing import Literal

import torch

Reduction = Literal["sum", "max", "weighted"]


def rank_weights(ranks: torch.Tensor, n_classes: int) -> torch.Tensor:
    """ALE's per-violation weight ``l(r) / r`` (0 where ``r = 0``).

    Args:
        ranks: ``[B]`` int64 number of violating classes per sample (at most ``n_classes``).
        n_classes: ``C``, the number of columns ranked.

    Returns:
        ``[B]`` float32 weights, on the device of ``ranks``.
    """
    steps = 1.0 / torch.arange(1, n_classes + 1, dtype=torch.float32, device=ranks.device)
    harmonic = torch.cat([steps.new_zeros(1), torch.cumsum(steps, 0)])  # [C + 1], l(0) = 0
    return harmonic[ranks] / ranks.clamp(min=1).to(torch.float32)


def ranking_hinge(
    scores: torch.Tensor, targets: torch.Tensor, margin: float, reduction: Reduction
) -> torch.Tensor:
    """Mean over the batch of the reduced hinges ``max(0, margin + s_c - s_y)``, ``c != y``.

    Args:
        scores: ``[B, C]`` compatibilities (higher is better).
        targets: ``[B]`` int64 true-class columns.
        margin: the ranking margin.
        reduction: ``sum`` | ``max`` | ``weighted`` (see the module docstring).

    Returns:
        Scalar loss.
    """
    true = scores.gather(1, targets[:, None])  # [B, 1]
    hinge = (margin + scores - true).clamp(min=0)
    hinge = hinge.scatter(1, targets[:, None], 0.0)  # the true class is no violation
    if reduction == "max":
        per_sample = hinge.max(dim=1).values
    elif reduction == "sum":
        per_sample = hinge.sum(dim=1)
    elif reduction == "weighted":
        ranks = (hinge > 0).sum(dim=1)
        per_sample = rank_weights(ranks, hinge.shape[1]) * hinge.sum(dim=1)
    else:
        raise ValueError(f"unknown reduction '{reduction}' (sum, max, weighted)")
    return per_sample.mean()
