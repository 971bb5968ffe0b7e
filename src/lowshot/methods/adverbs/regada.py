"""ReGaDa: video-adverb retrieval with residually gated adverb-action embeddings.

Citation: T. Hummel, O.-B. Mercea, A. S. Koepke, Z. Akata, "Video-adverb retrieval with
compositional adverb-action embeddings", BMVC 2023 (thesis chapter 6, Eqs. 6.1-6.7, Tables
6.3-6.5, App. E.3); code ExplainableML/ReGaDa @ d9d0bfb (read, never copied).

Differences from the published code: same losses, sampling and scores; device-agnostic;
the ablations are config switches (``main``/``aux``, ``residual``/``sigmoid``/
``shared_weights``, ``lambda_*``, ``use_antonyms``) instead of code paths; the first
BatchNorm + Linear of the text encoder is computed per table row (exact, faster; see
:mod:`lowshot.models.adverbs.regada`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.methods.adverbs.base import (
    AdverbBatch,
    AdverbMethod,
    VocabText,
    antonym_or_random,
    other_index,
    triplet,
)
from lowshot.models.adverbs.regada import ReGaDa, ReGaDaNetConfig
from lowshot.protocols.adverbs import AdverbData


@dataclass(frozen=True)
class ReGaDaConfig(ReGaDaNetConfig):
    """ReGaDa hyperparameters (defaults = ``config/model/regada.yaml`` + ``default.yaml``):
    the architecture (:class:`~lowshot.models.adverbs.regada.ReGaDaNetConfig`) and the loss.

    ``main``/``aux`` reproduce Table 6.3, ``residual``/``sigmoid``/``shared_weights`` Table 6.5,
    ``lambda_*`` = 0 Table 6.4. ``use_antonyms`` False is App. E.3 (random adverb negative).
    """

    lambda_act: float = 1.0
    lambda_adv: float = 1.0
    lambda_reg: float = 1.0
    margin: float = 1.0


@METHODS.register("adverbs.regada")
class ReGaDaMethod(AdverbMethod):
    """ReGaDa: L = l_act Trip(o, t(a,v), t(a,v-)) + l_adv Trip(o, t(a,v), t(ant(a),v)) + l_reg MSE(o, t(a,v)).

    Eqs. 6.4-6.7 on unnormalised embeddings; scores are cosine similarities. The action
    negative is uniform over actions != GT (it may be a test-only action, as published).
    """

    Config = ReGaDaConfig

    def __init__(
        self, cfg: ReGaDaConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        needs_pairs = cfg.main == "composition" or cfg.aux == "composition"
        self.model = ReGaDa(
            text.adverb_emb(),
            text.action_emb(),
            feature_dim,
            cfg,
            pair_emb=text.pair_emb() if needs_pairs else None,
        )
        self.n_adverbs, self.n_actions = data.vocab.n_adverbs, data.vocab.n_actions
        ant = data.antonyms
        self.register_buffer("antonyms", None if ant is None else torch.as_tensor(ant))

    def pair(self, adverbs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Flat pair index ``adverb * V + action`` (adverb-major), same shape as the inputs."""
        return adverbs * self.n_actions + actions

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """Eq. 6.7: ``lambda_act`` x action triplet (Eq. 6.4) + ``lambda_adv`` x adverb triplet
        (Eq. 6.5, antonym or random adverb negative) + ``lambda_reg`` x MSE to the GT pair (Eq. 6.6).

        Returns:
            ``{"loss": scalar tensor, "loss_terms": {name: float}}``, terms ``trip_act``, ``trip_adv``, ``reg``.
        """
        c = self.cfg
        o = self.model.video_embeddings(batch.video, batch.lengths, batch.actions)  # [B, d]
        text = self.model.text_embeddings()  # [P, d]
        pos = text[self.pair(batch.adverbs, batch.actions)]
        neg_act = text[self.pair(batch.adverbs, other_index(batch.actions, self.n_actions, gen))]
        neg_adv_idx = antonym_or_random(batch.adverbs, self.antonyms, self.n_adverbs, gen)
        neg_adv = text[self.pair(neg_adv_idx, batch.actions)]
        terms = {
            "trip_act": triplet(o, pos, neg_act, c.margin),  # Eq. 6.4
            "trip_adv": triplet(o, pos, neg_adv, c.margin),  # Eq. 6.5
            "reg": F.mse_loss(o, pos),  # Eq. 6.6
        }
        loss = (
            c.lambda_act * terms["trip_act"]
            + c.lambda_adv * terms["trip_adv"]
            + c.lambda_reg * terms["reg"]
        )
        return {
            "loss": loss,
            "loss_terms": {k: float(v.detach()) for k, v in terms.items()},
        }  # Eq. 6.7

    def eval_cache(self) -> torch.Tensor:
        """``[|A|, V, d]`` L2-normalised text embeddings of every (adverb, action) pair."""
        text = F.normalize(self.model.text_embeddings(), dim=-1)
        return text.view(self.n_adverbs, self.n_actions, -1)  # [A, V, d]

    def action_scores(
        self, batch: AdverbBatch, actions: torch.Tensor, cache: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``[B, |A|]``: cosine of the video embedding (queried by ``actions [B]``) with the
        cached ``[|A|, V, d]`` pair embeddings of each row's action.
        """
        o = F.normalize(self.model.video_embeddings(batch.video, batch.lengths, actions), dim=-1)
        return torch.einsum("bd,abd->ba", o, cache[:, actions])  # cosine, [B, A]
