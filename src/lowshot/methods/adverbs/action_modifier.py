"""Action Modifier: adverbs as linear maps of the action embedding, triplet losses.

Citation: H. Doughty, I. Laptev, W. Mayol-Cuevas, D. Damen, "Action Modifiers: Learning
from Adverbs in Instructional Videos", CVPR 2020 (hazeld/action-modifiers @ ca4937a, no
licence: read only).

Differences from the published code: S3D features and S3D text embeddings instead of I3D +
GloVe (the S3D-feature version used in the published tables is unreleased); the action
triplet uses the modified pair embedding; padding is masked from true lengths (the
published code has no mask: its clips have a fixed length). ``video_mlp`` adds an MLP on
the attention output for the "MLP + Act Mod" row of thesis Table E.5, whose code is
unreleased (the architecture is inferred; off by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lowshot._registry import METHODS
from lowshot.methods.adverbs.base import (
    AdverbBatch,
    AdverbMethod,
    VocabText,
    antonym_or_random,
    other_index,
    triplet,
)
from lowshot.models.adverbs.baselines import ActionModifierModel, ActionModifierNetConfig
from lowshot.protocols.adverbs import AdverbData


@dataclass(frozen=True)
class ActionModifierConfig(ActionModifierNetConfig):
    """Action Modifier: the architecture
    (:class:`~lowshot.models.adverbs.baselines.ActionModifierNetConfig`); triplet margin 0.5; actions only until ``adverb_start`` epochs
    (modifier lr 0), then every group at ``lr * late_lr_factor`` (0.1), as published;
    ``dropout`` on the attention weights (published default 0.1)."""

    margin: float = 0.5
    adverb_start: int = 200
    late_lr_factor: float = 0.1


@METHODS.register("adverbs.action_modifier")
class ActionModifierMethod(AdverbMethod):
    """Action Modifier (Doughty et al., CVPR 2020); score = -||video - ReLU(A_a e_v)||."""

    Config = ActionModifierConfig

    def __init__(
        self, cfg: ActionModifierConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = ActionModifierModel(text.action_emb(), data.vocab.n_adverbs, feature_dim, cfg)
        ant = data.antonyms
        self.register_buffer("antonyms", None if ant is None else torch.as_tensor(ant))
        self.n_adverbs, self.n_actions = data.vocab.n_adverbs, data.vocab.n_actions
        self._adverbs_on = cfg.adverb_start <= 0

    def param_groups(self) -> list[dict[str, Any]]:
        """Two groups: ``video`` (everything but the modifiers) and ``modifiers`` (the adverb matrices)."""
        others = [p for n, p in self.named_parameters() if not n.endswith("modifiers")]
        return [
            {"params": others, "name": "video"},
            {"params": [self.model.modifiers], "name": "modifiers"},
        ]

    def on_epoch_start(self, epoch: int, optimizer: torch.optim.Optimizer, lr: float) -> None:
        """Before ``adverb_start``: modifiers at lr 0, the rest at ``lr``; from then on every group at
        ``lr * late_lr_factor`` (``lr`` when ``adverb_start <= 0``). Also switches the adverb triplet on.
        """
        self._adverbs_on = epoch >= self.cfg.adverb_start
        for group in optimizer.param_groups:
            if not self._adverbs_on:
                group["lr"] = 0.0 if group.get("name") == "modifiers" else lr
            else:
                group["lr"] = lr * (self.cfg.late_lr_factor if self.cfg.adverb_start > 0 else 1.0)

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """Triplet loss against a random other action (``trip_act``) and, once adverbs are on,
        against the antonym or a random other adverb (``trip_adv``); the anchor is the ``[B, d]``
        video embedding, the positive the GT pair embedding.

        Returns:
            ``{"loss": scalar tensor, "loss_terms": {name: float}}``.
        """
        o = self.model.video_embeddings(batch.video, batch.lengths, batch.actions)
        pos = self.model.pair_embeddings(batch.adverbs, batch.actions)
        neg_act = self.model.pair_embeddings(
            batch.adverbs, other_index(batch.actions, self.n_actions, gen)
        )
        terms = {"trip_act": triplet(o, pos, neg_act, self.cfg.margin)}
        loss = terms["trip_act"]
        if self._adverbs_on:
            neg_adv_idx = antonym_or_random(batch.adverbs, self.antonyms, self.n_adverbs, gen)
            terms["trip_adv"] = triplet(
                o, pos, self.model.pair_embeddings(neg_adv_idx, batch.actions), self.cfg.margin
            )
            loss = loss + terms["trip_adv"]
        return {"loss": loss, "loss_terms": {k: float(v.detach()) for k, v in terms.items()}}

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Scores ``[B, |A|]``: minus the L2 distance of the ``[B, d]`` video embedding (queried by
        ``actions [B]``) to each adverb's modified action embedding (``cache`` unused).
        """
        o = self.model.video_embeddings(batch.video, batch.lengths, actions)  # [B, d]
        return -(o[:, None] - self.model.all_adverb_embeddings(actions)).norm(dim=-1)
