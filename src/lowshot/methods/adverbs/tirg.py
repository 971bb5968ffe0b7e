"""TIRG composition as a video-adverb baseline (thesis §6.5).

Citation: N. Vo, L. Jiang, C. Sun, K. Murphy, L.-J. Li, L. Fei-Fei, J. Hays, "Composing
Text and Image for Image Retrieval - an Empirical Odyssey", CVPR 2019 (google/tirg @
c58daa0, read, never copied).

Differences from the published code: the adverb adaptation of thesis §6.5 is unreleased:
ReGaDa's video encoder, the action embedding modified by the adverb (TIRG's gating and
residual blocks, :class:`lowshot.models.adverbs.regada.TIRGComposer`), softmax
cross-entropy over all pairs with TIRG's learnable scale (initial 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import METHODS
from lowshot.methods.adverbs.base import AdverbBatch, AdverbMethod, VocabText
from lowshot.models.adverbs.regada import ReGaDa, ReGaDaNetConfig, VideoEncoderConfig
from lowshot.protocols.adverbs import AdverbData


@dataclass(frozen=True)
class TIRGConfig(VideoEncoderConfig):
    """TIRG adapted to adverbs (thesis §6.5): ReGaDa's video encoder (its sizes:
    :class:`~lowshot.models.adverbs.regada.VideoEncoderConfig`), the action embedding
    modified by the adverb (TIRG gating), softmax cross-entropy over all pairs with a
    learnable scale (TIRG's normalisation layer, initial scale 4)."""

    init_scale: float = 4.0


@METHODS.register("adverbs.tirg")
class TIRGMethod(AdverbMethod):
    """TIRG baseline (Vo et al., CVPR 2019, google/tirg @ c58daa0; adaptation unreleased)."""

    Config = TIRGConfig

    def __init__(
        self, cfg: TIRGConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        net = ReGaDaNetConfig.video_only(cfg, main="action", aux="adverb")
        self.model = ReGaDa(text.adverb_emb(), text.action_emb(), feature_dim, net, composer="tirg")
        self.scale = nn.Parameter(torch.tensor(float(cfg.init_scale)))
        self.n_adverbs, self.n_actions = data.vocab.n_adverbs, data.vocab.n_actions

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """Softmax cross-entropy over all ``P = |A| * V`` pairs of ``scale`` x cosine(video, pair
        embedding), target the GT pair.

        Returns:
            ``{"loss": scalar tensor, "loss_terms": {name: float}}``, term ``ce``.
        """
        o = self.model.video_embeddings(batch.video, batch.lengths, batch.actions)
        logits = self.scale * ReGaDa.cosine(o, self.model.text_embeddings())  # [B, P]
        loss = F.cross_entropy(logits, batch.adverbs * self.n_actions + batch.actions)
        return {"loss": loss, "loss_terms": {"ce": float(loss.detach())}}

    def eval_cache(self) -> torch.Tensor:
        """``[|A|, V, d]`` L2-normalised TIRG-composed embeddings of every (adverb, action) pair."""
        return F.normalize(self.model.text_embeddings(), dim=-1).view(
            self.n_adverbs, self.n_actions, -1
        )

    def action_scores(
        self, batch: AdverbBatch, actions: torch.Tensor, cache: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``[B, |A|]``: cosine of the video embedding (queried by ``actions [B]``) with the
        cached ``[|A|, V, d]`` pair embeddings of each row's action (the scale is not applied).
        """
        o = F.normalize(self.model.video_embeddings(batch.video, batch.lengths, actions), dim=-1)
        return torch.einsum("bd,abd->ba", o, cache[:, actions])
