"""APN: Attribute Prototype Network on concatenated audio-visual input.

Reference: W. Xu, Y. Xian, J. Wang, B. Schiele, Z. Akata, "Attribute Prototype Network for
Zero-Shot Learning", NeurIPS 2020; adapted to audio-visual GZSL in the thesis §2.4.3 / app. A
(Tables 2.2 and A.1) with concat[video, audio] as the input feature.

Model (:class:`~lowshot.models.av.apn.APNNet`): attributes regressed by a global map and by
attribute prototypes. Loss, for each branch ``b`` with predicted attributes ``a_b = M_b x``:
cross-entropy over the training classes of the compatibilities ``a_b^T w_c`` plus
``MSE(a_b, w_y)``. Scores: ``-||a_global - w_c||_2`` (the prototype branch only trains).

Differences from the published code (ExplainableML/AVCA-GZSL @ 2711aeb, ``src/model.py``
``APN``, ``src/loss.py`` ``APN_Loss``, ``src/train.py``):

* the published loss feeds **softmax probabilities** to ``nn.CrossEntropyLoss``, which applies
  a second softmax (its gradient is then tiny and the MSE terms dominate). Here the
  cross-entropy takes the compatibilities as logits; published: ``model.legacy_double_softmax=true``;
* the branch that is a 1 x 1 convolution + 1 x 1 max-pool in the published code is written as
  the linear map it is (same parameters, same initialisation);
* as published, no dropout (``--dropout_baselines`` is not used by APN) and none of the
  original paper's attribute-decorrelation or similarity-map compactness losses (a clip-level
  vector has no spatial map to make compact);
* each modality is normalised for its feature family before the concat, as for
  ALE/SJE/DEVISE (published: ``model.input_norm=none``);
* around the model as for ALE/SJE/DEVISE (:mod:`lowshot.methods.av.compat`): shared sampler,
  Adam without weight decay, stage-2 LR drops replayed, class embeddings attached by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.methods.base import GZSLMethod, InputSpec, LossResult
from lowshot.models.av.apn import APNNet, APNNetConfig


@dataclass(frozen=True)
class APNConfig(APNNetConfig):
    """Hyperparameters of APN: the architecture plus the published loss quirk.

    Attributes:
        legacy_double_softmax: cross-entropy on softmax probabilities (a second softmax), as
            the published ``APN_Loss`` does; off: on the compatibilities.
    """

    legacy_double_softmax: bool = False


@METHODS.register("apn")
class APN(GZSLMethod):
    """Attribute regression through a global map and prototypes; scores are ``-L2`` distances."""

    Config = APNConfig
    score_kind = "distance"

    def __init__(self, config: APNConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        self.net = APNNet(
            spec.audio_dim, spec.video_dim, spec.text_dim, config, (spec.audio_kind, spec.video_kind)
        )

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` scores ``-||a_global - w_c||_2`` for class embeddings ``[C, D_w]``."""
        return -torch.cdist(self.net(batch.audio, batch.video)[0], class_embeddings)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Cross-entropy over the training classes + attribute regression, for both branches.

        Args:
            batch: ``audio`` ``[B, D_a]``, ``video`` ``[B, D_v]``, ``targets`` ``[B]``.
            class_embeddings: ``[C_train, D_w]``.

        Returns:
            ``loss`` and its terms ``ce_global``, ``mse_global``, ``ce_proto``, ``mse_proto``.
        """
        terms: dict[str, torch.Tensor] = {}
        true_attributes = class_embeddings[batch.targets]  # [B, D_w]
        for name, attributes in zip(("global", "proto"), self.net(batch.audio, batch.video)):
            logits = attributes @ class_embeddings.t()  # [B, C_train]
            if self.config.legacy_double_softmax:
                logits = logits.softmax(dim=1)
            terms[f"ce_{name}"] = F.cross_entropy(logits, batch.targets)
            terms[f"mse_{name}"] = F.mse_loss(attributes, true_attributes)
        return {"loss": sum(terms.values()), "loss_terms": terms}  # type: ignore[typeddict-item]
