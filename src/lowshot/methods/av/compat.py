"""ALE, SJE and DEVISE: linear label-embedding baselines on concatenated audio-visual input.

References:
  * ALE: Z. Akata, F. Perronnin, Z. Harchaoui, C. Schmid, "Label-Embedding for Image
    Classification", TPAMI 2016 (CVPR 2013) — weighted approximate ranking (WARP weights);
  * SJE: Z. Akata, S. Reed, D. Walter, H. Lee, B. Schiele, "Evaluation of Output Embeddings
    for Fine-Grained Image Classification", CVPR 2015 — structured max-margin (most violating class);
  * DEVISE: A. Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model", NeurIPS 2013 —
    hinge rank loss summed over classes.
  Adapted to audio-visual GZSL in the thesis §2.4.3 / app. A (Tables 2.2 and A.1): the input
  is concat[video, audio] instead of an image feature.

Model: a bias-free linear map ``W`` (:class:`~lowshot.models.av.compat.CompatNet`) with
compatibility ``(W x)^T w_c``, trained with :func:`~lowshot.losses.ranking.ranking_hinge`
(margin 0.1) over the training classes; scores are ``-||W x - w_c||_2`` (as published:
trained with dot products, evaluated with L2 distances; reference §3.2).

Differences from the published code (ExplainableML/AVCA-GZSL @ 2711aeb, ``src/model.py``
``DeviseModel``, ``src/loss.py`` ``ClsContrastiveLoss``, ``main.py``):

* each modality is normalised for its feature family before the concat
  (``model.input_norm=per_family``: VGGish de-quantised to [-2, 2], C3D L2-normalised,
  SeLaVi unchanged, so the main-feature cells see the published input; with
  ``model.norm_inputs`` (the cls cells) each modality is then L2-normalised, so both carry
  half of the normalised concat: de-quantised VGGish would otherwise carry ~0.99). The published code
  concatenates the raw features (reference §6.5): on the cls features the uint8 VGGish
  values (all near 128) then dominate the L2-normalised concat, every sample becomes nearly
  the same vector, and on the synthetic UCF-cls data SJE stayed at chance ZSL on one of three
  seeds. Published: ``model.input_norm=none``;
* otherwise none in the model, the losses or the scores (dropout on the input and on the
  class embeddings in training, margin 0.1, ALE weights ``l(r)/r`` with
  ``l(r) = sum_{i<=r} 1/i``, SJE top-1 violation, DEVISE sum, batch mean);
* around it: batches are the shared class-balanced sampler of the GZSL trainer (as
  published: bs 256, 500 batches per epoch); Adam without weight decay as published (the
  configs set ``train.weight_decay: 0``); stage 2 trains ``best_epoch + 1`` epochs and
  replays the stage-1 LR drops (published: full epochs, checkpoint of the best epoch,
  scheduler stepped on stage-1 validation data, ``protocol.stage2_scheduler=legacy_val_on_train``);
  class embeddings are attached by class name (``data.legacy_text_order`` reproduces
  reference §6.1); one beta is transferred (the published mean of three identical betas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.losses.ranking import Reduction, ranking_hinge
from lowshot.methods.base import GZSLMethod, InputSpec, LossResult
from lowshot.models.av.compat import CompatNet, CompatNetConfig


@dataclass(frozen=True)
class CompatConfig(CompatNetConfig):
    """Hyperparameters of ALE / SJE / DEVISE: the architecture plus the ranking margin.

    Attributes:
        margin: ranking margin between the true class and every other class (published 0.1).
    """

    margin: float = 0.1

    def __post_init__(self) -> None:
        if self.margin <= 0:
            raise ConfigError(f"model.margin must be positive, got {self.margin}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


class LinearCompat(GZSLMethod):
    """Linear compatibility + a ranking loss (``reduction`` per method); scores are ``-L2`` distances."""

    Config = CompatConfig
    score_kind = "distance"
    seed_batching = True
    #: how the hinges of one sample are reduced (see :mod:`lowshot.losses.ranking`)
    reduction: ClassVar[Reduction]

    def __init__(self, config: CompatConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        self.net = CompatNet(
            spec.audio_dim, spec.video_dim, spec.text_dim, config, (spec.audio_kind, spec.video_kind)
        )

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` scores ``-||W x - w_c||_2`` for class embeddings ``[C, D_w]``."""
        return -torch.cdist(self.net(batch.audio, batch.video), class_embeddings)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Ranking loss of the compatibilities ``(W x)^T w_c`` over the training classes.

        Args:
            batch: ``audio`` ``[B, D_a]``, ``video`` ``[B, D_v]``, ``targets`` ``[B]``.
            class_embeddings: ``[C_train, D_w]``.
        """
        scores = self.net.compatibility(batch.audio, batch.video, class_embeddings)  # [B, C_train]
        loss = ranking_hinge(scores, batch.targets, self.config.margin, self.reduction)
        return {"loss": loss, "loss_terms": {}}


@METHODS.register("ale")
class ALE(LinearCompat):
    """ALE: weighted approximate ranking (``l(r)/r`` times the summed hinges)."""

    reduction = "weighted"


@METHODS.register("sje")
class SJE(LinearCompat):
    """SJE: structured max-margin (the most violating class only)."""

    reduction = "max"


@METHODS.register("devise")
class DEVISE(LinearCompat):
    """DEVISE: hinge rank loss summed over the other classes."""

    reduction = "sum"
