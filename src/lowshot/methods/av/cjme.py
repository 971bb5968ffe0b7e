"""CJME: coordinated joint multimodal embeddings with a modality-attention predictor.

Reference: K. K. Parida, N. Matiyali, T. Guha, G. Sharma, "Coordinated Joint Multimodal
Embeddings for Generalized Audio-Visual Zero-shot Classification and Retrieval of Videos",
WACV 2020; the audio-visual baseline of thesis Tables 2.2, A.1, 3.1 and 5.1 (O.-B. Mercea,
*Multimodal Data Efficient Learning*, 2024, §2.4.3, §3.4.2, §5.4.1).

Loss: attention-weighted triplets with the text anchor, ``(1 - alpha) t(w, a, a^-) +
alpha t(w, v, v^-)`` per sample, + ``MSE(a, v)`` + the attention supervision: ``alpha`` is
regressed (MSE) to 1 when the video predictions are more confident (lower entropy of the
softmax over the dot products with the training classes) by more than ``epsilon``, to 0 when
the audio ones are, and to 0.5 otherwise. Scores: the hard attention ``1[alpha >= 0.5]``
picks the audio or the video L2 distance of each sample.

Differences from the published code (ExplainableML/AVCA-GZSL @ 2711aeb, ``src/model.py``
``CJME``, ``src/loss.py`` ``CJMELoss``), from a line-by-line comparison:

* negatives are other-class samples of the same batch instead of a second batch forwarded
  separately (the negative samples' text is not used by CJME's loss). No switch;
* each sample's two triplet losses are weighted by its own attention ``alpha``; in the
  published loss the ``[B, 1]`` weights broadcast against the ``[B]`` losses, which weighs the
  batch-mean losses by the batch-mean attention (``model.legacy_attention_broadcast=true``);
* the beta transferred to stage 2 is the one of the evaluated (attention-mixed) scores; the
  published code averages the betas of three evaluations (audio only, video only, mixed);
* the model does not own its optimiser (Adam without weight decay and ReduceLROnPlateau on
  val HM as published); stage 2 replays the stage-1 LR drops;
* ``model.text_input_layer`` is the Table 5.1 variant (thesis Eq. 5.9) for CLIP ⊕ CLAP labels;
  it has no published code (reference §6.9: re-implemented; no upstream parity reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.losses.triplet import sample_negatives
from lowshot.methods.base import GZSLMethod, InputSpec, LossResult
from lowshot.models.av.cjme import CJMENet, CJMENetConfig


@dataclass(frozen=True)
class CJMEConfig(CJMENetConfig):
    """CJME hyperparameters: the architecture plus the loss.

    Attributes:
        margin: triplet margin (published ``--margin`` 1).
        epsilon: entropy gap below which the attention target is 0.5 (published 0.1).
        legacy_attention_broadcast: the published weighting of the triplets, where the
            ``[B, 1]`` attention weights broadcast against the ``[B]`` triplet losses into a
            ``[B, B]`` matrix, i.e. ``(1 - mean(alpha)) mean(l_ta) + mean(alpha) mean(l_tv)``.
            Default: each sample's triplets weighted by its own ``alpha``.
    """

    margin: float = 1.0
    epsilon: float = 0.1
    legacy_attention_broadcast: bool = False

    def __post_init__(self) -> None:
        if self.margin <= 0 or self.epsilon < 0:
            raise ConfigError(
                f"cjme: model.margin must be positive and model.epsilon non-negative, got {self.margin}, {self.epsilon}"
            )


def attention_target(
    a: torch.Tensor, v: torch.Tensor, t: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """``[B]`` supervision of the video weight from prediction entropies.

    Args:
        a / v: ``[B, k]`` audio / video embeddings; t: ``[C, k]`` training-class embeddings.
        epsilon: entropy margin.

    Returns:
        1 where the video entropy is lower than the audio one by more than ``epsilon``, 0 where
        it is higher by more than ``epsilon``, 0.5 in between.
    """

    def entropy(x: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(x @ t.T, dim=1)
        return -(logp.exp() * logp).sum(1)

    gap = entropy(v) - entropy(a)  # > 0: video less confident
    target = torch.full_like(gap, 0.5)
    target[gap < -epsilon] = 1.0
    target[gap > epsilon] = 0.0
    return target


def mixed_distances(
    d_audio: torch.Tensor, d_video: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """``(1 - alpha) d_audio + alpha d_video`` for distances ``[B, C]`` and weights ``alpha [B]``."""
    return (1 - alpha)[:, None] * d_audio + alpha[:, None] * d_video


@METHODS.register("cjme")
class CJME(GZSLMethod):
    """CJME (model + loss); scores are minus the attention-selected modality distance."""

    Config = CJMEConfig
    score_kind = "distance"

    def __init__(self, config: CJMEConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        self.net = CJMENet(spec.audio_dim, spec.video_dim, spec.text_dim, config)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Attention-weighted triplets + ``MSE(a, v)`` + attention supervision of one batch.

        Args:
            batch: ``audio`` ``[B, D_a]``, ``video`` ``[B, D_v]``, ``targets`` ``[B]``.
            class_embeddings: ``[C_train, D_w]``.

        Returns:
            ``loss`` and the terms ``ct``, ``av`` and ``att``.
        """
        c, net = self.config, self.net
        w_all = net.text_in(class_embeddings)
        # as published: f_t on the batch's label rows, and separately (train mode) on the
        # training classes for the attention supervision
        t, t_all = (
            net.embed_labels(w_all[batch.targets]),
            net.embed_labels(w_all),
        )  # [B, k], [C_train, k]
        emb, alpha = net(batch.audio, batch.video)
        a, v = emb.audio, emb.video
        neg = sample_negatives(batch.labels.to(a.device))
        l_ta = F.triplet_margin_loss(t, a, a[neg], margin=c.margin, reduction="none")
        l_tv = F.triplet_margin_loss(t, v, v[neg], margin=c.margin, reduction="none")
        if c.legacy_attention_broadcast:  # published: [B, 1] weights x [B] losses -> [B, B]
            ct = (1 - alpha).mean() * l_ta.mean() + alpha.mean() * l_tv.mean()
        else:
            ct = mixed_distances(l_ta[:, None], l_tv[:, None], alpha).mean()
        target = attention_target(a.detach(), v.detach(), t_all.detach(), c.epsilon)
        terms = {"ct": ct, "av": F.mse_loss(a, v), "att": F.mse_loss(alpha, target)}
        return {"loss": torch.stack(list(terms.values())).sum(), "loss_terms": terms}

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]``: minus the distance of the modality picked by the hard attention
        ``1[alpha >= 0.5]`` to each class of ``class_embeddings [C, D_w]``."""
        emb, alpha = self.net(batch.audio, batch.video)
        t = self.net.embed_labels(self.net.text_in(class_embeddings))
        hard = (alpha >= 0.5).to(alpha.dtype)
        return -mixed_distances(torch.cdist(emb.audio, t), torch.cdist(emb.video, t), hard)
