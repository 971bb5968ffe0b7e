"""Pseudo-Adverbs: Action Modifier trained with adverb pseudo-labels of unlabelled videos.

Citation: H. Doughty, C. G. M. Snoek, "How Do You Do It? Fine-Grained Action Understanding
with Pseudo-Adverbs", CVPR 2022 (hazeld/PseudoAdverbs @ f96212c, no licence: read only,
never copied); the "Act. Mod. [65]" row of thesis Tables 6.6 / E.2.

Each labelled training batch of B rows is joined by ``B * unlabelled_ratio`` videos drawn
uniformly (with replacement) from ``unlabelled.csv``, whose action is known and whose
adverb is not. With the model in eval mode, every adverb paired with the video's action
is scored, and the ``k`` adverbs with the largest score difference to their antonym
become pseudo-labels (``selection: diff``; ``closest`` ranks by the score itself). The
confidence of label ``a`` is the softmax over ``(s_a, s_ant(a))``, i.e.
``sigmoid(s_a - s_ant(a))``; the adverb triplet of a pseudo-label counts only when its
confidence exceeds the adverb's threshold (``threshold`` tau; 0 disables it). With
``adaptive``, after each epoch with pseudo-labels the thresholds become
``tau_a = (sum of the confidences of label a / mean label count per adverb) ** smoothing * tau``.
The pseudo loss (action triplet + thresholded adverb triplet per pseudo-label, averaged
over the ``k`` labels, weight ``pseudo_weight``) is added from epoch ``pseudo_start``.
Defaults are the published unseen-composition command (``--unlabelled-ratio 1
--pseudo-label-threshold 0.6 --smoothing 0.1 --adaptive-threshold``, k 5, ``diff``); the
Action Modifier schedule (actions only for 200 epochs, then every group at lr x 0.1) is
inherited; the published pseudo weight switches on after epoch 200, i.e. from epoch 201.

Differences from the published code:

* S3D features and S3D text embeddings (the ReGaDa splits) instead of I3D rgb+flow and
  GloVe-300 (as every Action Modifier number of the thesis tables);
* candidates are the adverbs of the video's own action only. The published code ranks all
  pairs after setting the other actions' scores to -1e10, whose adverb-minus-antonym
  difference is 0, so with ``k`` above the number of antonym pairs it can pick adverbs of
  masked pairs; here ``k`` must not exceed the number of adverbs;
* the mean label count of the adaptive thresholds divides by the number of adverbs; the
  published ``bincount`` divides by the largest pseudo-labelled adverb index + 1 (the
  same unless the last adverbs never get a pseudo-label);
* the unlabelled video embedding is computed once per batch for all ``k`` labels (the
  published code re-runs the attention per label, with fresh dropout);
* the published ``--pseudo-action-pretraining`` adds the pseudo action loss as a Python
  float (no gradient); it is not modelled (it is off in the unseen command);
* padding is masked from true lengths; device-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.adverbs.action_modifier import ActionModifierConfig, ActionModifierMethod
from lowshot.methods.adverbs.base import AdverbBatch, VocabText, make_batch, other_index, triplet
from lowshot.protocols.adverbs import AdverbData


@dataclass(frozen=True)
class PseudoAdverbsConfig(ActionModifierConfig):
    """Action Modifier (:class:`ActionModifierConfig`) plus the pseudo-labelling options.

    Attributes:
        k: pseudo-labels per unlabelled video (``--num-pseudo-labelled``).
        selection: ``diff`` (score minus antonym score) or ``closest`` (score).
        threshold: confidence threshold tau (0 = every pseudo-label counts).
        adaptive: per-adverb adaptive thresholds (``--adaptive-threshold``).
        smoothing: lambda of the adaptive thresholds.
        unlabelled_ratio: unlabelled videos per labelled row.
        pseudo_start: first epoch with the pseudo loss.
        pseudo_weight: weight of the pseudo loss.
    """

    k: int = 5
    selection: Literal["diff", "closest"] = "diff"
    threshold: float = 0.6
    adaptive: bool = True
    smoothing: float = 0.1
    unlabelled_ratio: int = 1
    pseudo_start: int = 201
    pseudo_weight: float = 1.0


def pseudo_label(
    scores: torch.Tensor, antonyms: torch.Tensor, k: int, selection: str = "diff"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` adverb pseudo-labels of each video and their confidences.

    Args:
        scores: ``[N, A]`` scores of every adverb paired with each video's action.
        antonyms: ``[A]`` antonym index.
        k: labels per video.
        selection: ``diff`` ranks by ``s_a - s_ant(a)``, ``closest`` by ``s_a``.

    Returns:
        ``(labels [k, N], confidence [k, N])`` with confidence ``sigmoid(s_a - s_ant(a))``
        (the softmax over the adverb and its antonym); rank 0 first.
    """
    diff = scores - scores[:, antonyms]
    key = diff if selection == "diff" else scores
    idx = key.topk(k, dim=1).indices  # [N, k]
    return idx.T, torch.sigmoid(diff.gather(1, idx)).T


def adaptive_thresholds(
    counts: torch.Tensor, conf_sums: torch.Tensor, tau: float, smoothing: float
) -> torch.Tensor:
    """``[A]`` thresholds ``(conf_sums[a] / mean count per adverb) ** smoothing * tau``.

    Args:
        counts: ``[A]`` number of pseudo-labels of each adverb over the epoch.
        conf_sums: ``[A]`` sum of their confidences.
        tau / smoothing: base threshold and exponent lambda.
    """
    mean_count = counts.sum() / counts.numel()
    return (conf_sums / mean_count) ** smoothing * tau


@METHODS.register("adverbs.pseudo_adverbs")
class PseudoAdverbsMethod(ActionModifierMethod):
    """Pseudo-Adverbs (Doughty & Snoek, CVPR 2022): Action Modifier + pseudo-labelled videos."""

    Config = PseudoAdverbsConfig
    needs_unlabelled = True

    def __init__(
        self, cfg: PseudoAdverbsConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__(cfg, data, text, feature_dim)
        if data.unlabelled is None:
            raise ConfigError(
                "adverbs.pseudo_adverbs needs the unlabelled videos (data.unseen: true, "
                "unlabelled.csv)"
            )
        if self.antonyms is None:
            raise ConfigError("adverbs.pseudo_adverbs needs antonyms (data.use_antonyms: true)")
        if not 1 <= cfg.k <= self.n_adverbs or cfg.unlabelled_ratio < 1:
            raise ConfigError(
                f"model.k must be in [1, {self.n_adverbs}] and model.unlabelled_ratio >= 1"
            )
        self.unlabelled = data.unlabelled
        self._pseudo_on = False
        a = self.n_adverbs
        self.register_buffer("thresholds", torch.full((a,), float(cfg.threshold)))
        self.register_buffer("label_counts", torch.zeros(a))  # this epoch's pseudo-labels
        self.register_buffer("conf_sums", torch.zeros(a))

    def on_epoch_start(self, epoch: int, optimizer: torch.optim.Optimizer, lr: float) -> None:
        """The Action Modifier schedule; adaptive thresholds from the previous epoch's
        pseudo-labels; the pseudo loss from epoch ``pseudo_start``."""
        super().on_epoch_start(epoch, optimizer, lr)
        c = self.cfg
        if c.adaptive and c.threshold > 0 and self.label_counts.sum() > 0:
            self.thresholds.copy_(
                adaptive_thresholds(self.label_counts, self.conf_sums, c.threshold, c.smoothing)
            )
        self.label_counts.zero_()
        self.conf_sums.zero_()
        self._pseudo_on = epoch >= c.pseudo_start

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """Action Modifier loss on ``batch``, plus (from ``pseudo_start``) ``pseudo_weight`` x
        the mean over the ``k`` pseudo-labels of the action triplet and the thresholded adverb
        triplet on ``len(batch) * unlabelled_ratio`` unlabelled videos drawn with ``gen``.

        Returns:
            ``{"loss", "loss_terms"}``; pseudo terms ``pseudo``, ``pseudo_kept`` (fraction
            above threshold) and ``diag_pseudo_top1_acc`` (rank-0 labels vs. the CSV's hidden
            adverbs: a diagnostic, never used for training or selection).
        """
        out = super().training_loss(batch, gen)
        if not self._pseudo_on:
            return out
        c = self.cfg
        n = len(batch) * c.unlabelled_ratio
        idx = torch.randint(len(self.unlabelled), (n,), generator=gen).numpy()
        ub = make_batch(self.unlabelled, idx, batch.adverbs.device)
        self.eval()
        with torch.no_grad():
            scores = self.action_scores(ub, ub.actions, None)  # [n, A]
        self.train()
        labels, conf = pseudo_label(scores, self.antonyms, c.k, c.selection)  # [k, n]
        keep = conf > self.thresholds[labels] if c.threshold > 0 else torch.ones_like(conf) > 0
        self.label_counts.index_add_(0, labels.flatten(), torch.ones_like(conf.flatten()))
        self.conf_sums.index_add_(0, labels.flatten(), conf.flatten())

        o = self.model.video_embeddings(ub.video, ub.lengths, ub.actions)  # [n, d]
        neg_act = other_index(ub.actions, self.n_actions, gen)
        pseudo = o.new_zeros(())
        for lab, kept in zip(labels, keep):
            pos = self.model.pair_embeddings(lab, ub.actions)
            pseudo = pseudo + triplet(o, pos, self.model.pair_embeddings(lab, neg_act), c.margin)
            neg_adv = self.model.pair_embeddings(self.antonyms[lab], ub.actions)
            per_row = F.triplet_margin_loss(o, pos, neg_adv, margin=c.margin, reduction="none")
            pseudo = pseudo + (per_row * kept).sum() / kept.sum().clamp_min(1)
        pseudo = pseudo / c.k
        hidden = torch.as_tensor(self.unlabelled.adverbs[idx], device=labels.device)
        out["loss"] = out["loss"] + c.pseudo_weight * pseudo
        out["loss_terms"] |= {
            "pseudo": float(pseudo.detach()),
            "pseudo_kept": float(keep.float().mean()),
            "diag_pseudo_top1_acc": float((labels[0] == hidden).float().mean()),
        }
        return out
