"""Priors: training-set counts of each (adverb, action) pair, identical for every video.

Citation: the Priors baseline of the AIR paper (Moltisanti et al., CVPR 2023) and thesis
Table 6.2.

Differences from the published code: the definition is not released; it was recovered by
exact reproduction of the published numbers (reference §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lowshot._registry import METHODS
from lowshot.methods.adverbs.base import AdverbBatch, AdverbMethod, VocabText
from lowshot.protocols.adverbs import AdverbData, priors_pair_scores


@dataclass(frozen=True)
class PriorsConfig:
    """Priors has no options; the definition (train counts of each pair) is fixed (§6)."""


@METHODS.register("adverbs.priors")
class PriorsMethod(AdverbMethod):
    """Priors: ``S[i, (a, v)] = count_train(a, v)``, identical for every video."""

    Config = PriorsConfig

    trainable = False
    needs_features = False
    needs_text = False

    def __init__(
        self, cfg: PriorsConfig, data: AdverbData, text: VocabText | None, feature_dim: int
    ) -> None:
        super().__init__()
        counts = priors_pair_scores(data.train, data.vocab).reshape(
            data.vocab.n_adverbs, data.vocab.n_actions
        )
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float64))

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Scores ``[B, |A|]`` float64: the training count of each (adverb, ``actions[i]``) pair
        (the video and ``cache`` are unused).
        """
        return self.counts[:, actions].T
