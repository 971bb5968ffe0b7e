"""AVCA: Audio-Visual Cross Attention for audio-visual (G)ZSL.

Reference: O.-B. Mercea, L. Riesch, A. S. Koepke, Z. Akata, "Audio-visual Generalised
Zero-shot Learning with Cross-modal Attention and Language", CVPR 2022; thesis ch. 2 and
app. A (O.-B. Mercea, *Multimodal Data Efficient Learning*, 2024).

Loss (Eq. 2.4): l = l_t + l_c + l_r with l_c = l_rec + l_ct + l_w (Eqs. 2.5-2.10), triplets
with margin ``mu`` and L2 distance. Scores: -||theta_v - theta_w(c)||_2 (Eq. 2.3), or the
theta_a / sum / min variants of Table 2.5.

Differences from the published code (ExplainableML/AVCA-GZSL @ 2711aeb), found by a line-by-line
comparison; the parity harness (``benchmarks/parity``, tables in ``docs/parity.md``) runs the
published code beside the default and beside all legacy options together. On its run A (UCF
main split, 21 videos per class, 5 x 200 batches of 128, 3 seeds) both the default and the
all-legacy setting land within the published seed range on HM and U; with 6 videos per class
(run C) the seed noise is larger than any difference:

* negatives are other-class samples **of the same batch** (class drawn uniformly among the
  other classes present, then a sample of it), not an extra batch of negatives passed
  through the network. This halves the compute; BatchNorm statistics therefore come from
  one batch instead of separate positive and negative batches. Published:
  ``model.legacy_negatives=true``;
* the published step runs extra train-mode passes whose outputs are unused
  (``A_proj(A_rec(theta_a))``, ``V_proj(V_rec(theta_v))``, ``D(theta_w_neg)``, and the training
  loop's ``get_embeddings`` after the optimiser step): they only move BatchNorm running
  statistics, so A_proj/V_proj are evaluated with statistics partly taken from
  reconstructed features. Here they are not run; published: ``model.legacy_bn_passes=true``
  (the ``get_embeddings`` pass then runs before the optimiser step, one Adam step earlier);
* the position embedding is optimised; the published optimiser leaves out ``pos_emb1D``, so
  it keeps its random initialisation. Published: ``model.legacy_fixed_position=true``;
* the model does not own its optimiser or LR scheduler (the recipe does; the published
  stage-2 scheduler quirk is ``protocol.stage2_scheduler=legacy_val_on_train``);
* ablations (Tables 2.3-2.6, A.3, A.4) are config values; the published code has no switches
  for them. ``objective="l_c"`` (Table A.3 "W x-att with l_c loss": the cross-attention model
  trained with the composite loss l_c = l_rec + l_ct + l_w of Eq. 2.6 alone, the loss the
  thesis credits to AVGZSLNet) is re-implemented from the thesis text; its l_rec is AVCA's
  MSE (Eq. 2.7), where the published AVGZSLNet loss uses the L2 distance;
* inputs are the raw released features (as published; no normalisation);
* ``model.text_input_layer=true`` adds the W_enc layer of the Table 5.1 variant (thesis
  Eq. 5.9; the reconstruction targets are then the encoded label embeddings); it has no
  published code (reference §6.9: re-implemented; no upstream parity reference);
* class-label embeddings are attached by class name (``data.legacy_text_order`` reproduces
  the published misalignment, reference §6.1).

As a GFSL baseline (thesis §4.3.3, Table 4.2: "a classifier on the video output"),
``gfsl_classifier=true`` adds a linear classifier on theta_v trained with CE (added to the AVCA
loss) over the classes of the current GFSL phase, and scores are its softmax probabilities
(re-implemented from the thesis paragraph; the AV-Diff repository has only a flag, reference §6.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet, SequenceStore
from lowshot.data.av.sequences import gather_windows
from lowshot.errors import ConfigError
from lowshot.losses.triplet import sample_negatives, triplet
from lowshot.methods.av.gfsl_head import PhaseClasses, num_classes_of
from lowshot.methods.base import GZSLMethod, InputSpec, dense_rows, label_tensors
from lowshot.models.av.avca import AVCANet, AVCANetConfig

LossTerm = Literal["l_t", "l_rec", "l_ct", "l_w", "l_r"]
#: loss terms summed by each ``objective`` (Eq. 2.4: l = l_t + l_c + l_r; Eq. 2.6: l_c)
OBJECTIVE_TERMS: dict[str, tuple[str, ...]] = {
    "l": ("l_t", "l_rec", "l_ct", "l_w", "l_r"),
    "l_c": ("l_rec", "l_ct", "l_w"),
}


@dataclass(frozen=True)
class AVCAConfig(AVCANetConfig):
    """AVCA hyperparameters (defaults: the published UCF-main run, reference §4.1): the
    architecture (:class:`~lowshot.models.av.avca.AVCANetConfig`: sizes, dropouts ``r_enc`` /
    ``r_proj`` / ``r_dec``, BatchNorm momentum), the topology of the ablations and the loss.

    Attributes:
        margin: triplet margin ``mu``.
        inputs: ``both`` or a single modality (Table 2.3: no cross-attention, one branch).
        branches: branches trained and evaluated; a single one with both inputs is Table 2.4
            "Visual/Audio with x-att".
        fusion: ``cross_attention`` or ``none`` (Table 2.4 "w/o x-att": isolated branches,
            distances averaged at evaluation).
        objective: loss summed for training: ``l`` (Eq. 2.4) or ``l_c`` (Eq. 2.6 alone,
            Table A.3 "W x-att with l_c loss").
        drop_loss: remove one loss term of the objective (Table 2.6), ``none`` for all.
        eval_output: branch(es) scored at evaluation (Table 2.5): ``video`` (theta_v),
            ``audio`` (theta_a), ``sum`` (|theta_a - theta_w| + |theta_v - theta_w|),
            ``mean`` (half of ``sum``), ``min`` (closest of the two); ``auto`` = ``video``
            with cross-attention, ``mean`` without, the branch itself for one branch.
        legacy_negatives: the published negatives: per anchor a random sample of a random
            other training class from the whole split, forwarded as a separate batch (its own
            BatchNorm statistics). Default: other-class samples of the same batch.
        legacy_bn_passes: the published extra train-mode passes that only update BatchNorm
            running statistics (``proj(rec(theta))``, ``D(theta_w_neg)``, and the whole
            embedding forward again), so the evaluation statistics of A_proj/V_proj mix
            reconstructed features into the real ones.
        legacy_fixed_position: keep the position embedding at its random initialisation (the
            published optimiser does not include it).
        gfsl_classifier: GFSL baseline (§4.3.3): a classifier on theta_v (CE over the phase's
            classes added to the loss), probability scores; needs recipe gfsl.
    """

    margin: float = 1.0
    inputs: Literal["both", "audio", "video"] = "both"
    branches: Literal["both", "audio", "video"] = "both"
    fusion: Literal["cross_attention", "none"] = "cross_attention"
    objective: Literal["l", "l_c"] = "l"
    drop_loss: Literal["none", "l_t", "l_rec", "l_ct", "l_w", "l_r"] = "none"
    eval_output: Literal["auto", "video", "audio", "sum", "mean", "min"] = "auto"
    legacy_negatives: bool = False
    legacy_bn_passes: bool = False
    legacy_fixed_position: bool = False
    gfsl_classifier: bool = False

    def __post_init__(self) -> None:
        if self.drop_loss != "none" and self.drop_loss not in OBJECTIVE_TERMS[self.objective]:
            raise ConfigError(
                f"avca: drop_loss={self.drop_loss!r} is not a term of objective={self.objective!r}"
            )
        if self.gfsl_classifier and (self.branches == "audio" or self.eval_output not in ("auto", "video")):
            raise ConfigError("avca: gfsl_classifier classifies theta_v; it needs the video branch and eval_output video")
        if self.inputs != "both" and (self.branches != self.inputs or self.fusion != "none"):
            raise ConfigError(
                f"avca: inputs={self.inputs!r} (single modality) needs branches={self.inputs!r} "
                "and fusion='none'"
            )
        if self.inputs == "both" and self.branches != "both" and self.fusion != "cross_attention":
            raise ConfigError(
                "avca: a single branch with both inputs needs fusion='cross_attention'"
            )
        two = self.branches == "both"
        if self.eval_output in ("sum", "mean", "min") and not two:
            raise ConfigError(f"avca: eval_output={self.eval_output!r} needs both branches")
        if self.eval_output in ("audio", "video") and not two and self.eval_output != self.branches:
            raise ConfigError(
                f"avca: eval_output={self.eval_output!r} but only the {self.branches} branch exists"
            )

    def resolved_eval_output(self) -> str:
        """The concrete evaluation output of ``eval_output="auto"``."""
        if self.eval_output != "auto":
            return self.eval_output
        if self.branches != "both":
            return self.branches
        return "video" if self.fusion == "cross_attention" else "mean"


@METHODS.register("avca")
class AVCA(GZSLMethod):
    """AVCA method (model + loss terms); scores are ``-L2`` distances."""

    Config = AVCAConfig
    score_kind = "distance"

    def __init__(self, config: AVCAConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config
        self.net = AVCANet(
            spec.audio_dim,
            spec.video_dim,
            spec.text_dim,
            c,
            inputs=c.inputs,
            branches=c.branches,
            cross_attention=c.fusion == "cross_attention",
            train_position=not c.legacy_fixed_position,
        )
        self.eval_output = c.resolved_eval_output()
        if c.gfsl_classifier:  # GFSL baseline: classifier on theta_v (thesis §4.3.3)
            self.head = PhaseClasses(c.dim_out, num_classes_of(spec, "avca with gfsl_classifier"))
            self.score_kind = "probability"

    def start_phase(
        self, phase: str, train_classes: np.ndarray, novel_classes: np.ndarray, stage_classes: np.ndarray | None = None
    ) -> None:
        """GFSL phase hook: restrict the ``gfsl_classifier`` to ``train_classes`` ``[C_p]`` (no-op without it;
        ``stage_classes`` unused)."""
        if self.config.gfsl_classifier:
            self.head.start(train_classes)

    def collate(
        self,
        features: FeatureSet,
        idx: np.ndarray,
        targets: np.ndarray | None,
        train: bool,
        generator: np.random.Generator | None = None,
    ) -> Batch:
        """Dense batch; temporal features are averaged over their valid steps (AVCA input).

        With ``legacy_negatives`` a training batch holds ``2B`` rows: the ``B`` anchors, then
        one negative per anchor drawn as the published sampler does (a uniformly random
        *other training class*, then a uniformly random sample of it, from the whole split).
        """
        if train and self.config.legacy_negatives:
            if targets is None:
                raise ValueError("legacy_negatives: a training batch needs its targets")
            neg, neg_targets = _published_negatives(features.labels, idx, targets, generator)
            idx, targets = np.concatenate([idx, neg]), np.concatenate([targets, neg_targets])
        labels, tgt = label_tensors(features, idx, targets)
        return Batch(averaged_rows(features.audio, idx), averaged_rows(features.video, idx), labels, tgt)

    def training_loss(
        self, batch: Batch, class_embeddings: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The AVCA loss (Eq. 2.4) and its terms for one batch.

        Args:
            batch: ``audio`` ``[B, D_a]``, ``video`` ``[B, D_v]``, ``targets`` ``[B]`` indexing
                ``class_embeddings`` (with ``legacy_negatives``: ``2B`` rows, anchors first).
            class_embeddings: ``[C_train, D_w]`` label embeddings of the training classes.

        Returns:
            Scalars ``l_t`` (Eq. 2.5), ``l_rec`` (2.7), ``l_ct`` (2.8), ``l_w`` (2.9), ``l_r``
            (2.10), each summed over the branches, and ``loss``: the sum of the terms of
            ``objective`` without ``drop_loss``.
        """
        c, net = self.config, self.net
        m = c.margin
        class_embeddings = net.text_in(class_embeddings)  # W_enc (text_input_layer) or identity
        n = len(batch) // 2 if c.legacy_negatives else len(batch)
        out = net(batch.audio[:n], batch.video[:n])
        w = class_embeddings[batch.targets[:n]]  # [B, D_w]
        theta_w = net.embed_labels(w)  # [B, k_proj]
        rho_w = net.decoder(theta_w)  # [B, D_w]
        if c.legacy_negatives:  # the negatives' own forward (own BatchNorm batch statistics)
            out_neg = net(batch.audio[n:], batch.video[n:])
            theta_w_neg = net.embed_labels(class_embeddings[batch.targets[n:]])
            neg_theta = out_neg.theta
        else:  # in-batch negatives
            neg = sample_negatives(batch.labels.to(w.device))  # [B]
            theta_w_neg = theta_w[neg]
            neg_theta = {mod: t[neg] for mod, t in out.theta.items()}
        zero = w.new_zeros(())
        terms = {"l_t": zero, "l_rec": F.mse_loss(rho_w, w), "l_ct": zero, "l_w": zero, "l_r": zero}
        recon = {}
        for mod in net.branches:
            theta, phi, theta_neg = out.theta[mod], out.phi[mod], neg_theta[mod]
            rho = net.decoder(theta)  # rho_m = D(theta_m)
            rho_neg = net.decoder(theta_neg) if c.legacy_negatives else rho[neg]
            # Eq. 2.5 (base triplets)
            terms["l_t"] = (
                terms["l_t"]
                + triplet(theta, theta_w, theta_neg, m)
                + triplet(theta_w, theta, theta_w_neg, m)
            )
            terms["l_rec"] = terms["l_rec"] + F.mse_loss(rho, w)  # Eq. 2.7
            terms["l_ct"] = terms["l_ct"] + triplet(rho_w, rho, rho_neg, m)  # Eq. 2.8
            # Eq. 2.9
            terms["l_w"] = (
                terms["l_w"]
                + triplet(theta_w, theta, theta_neg, m)
                + triplet(theta, theta_w, theta_w_neg, m)
            )
            recon[mod] = net.rec[mod](theta)
            # Eq. 2.10
            terms["l_r"] = terms["l_r"] + F.mse_loss(recon[mod], phi) + F.mse_loss(theta, theta_w)
        if c.legacy_bn_passes and self.training:
            self._published_bn_passes(batch, n, w, theta_w_neg, recon)
        used = OBJECTIVE_TERMS[c.objective]
        if c.gfsl_classifier:
            terms["ce"] = self.head.ce(self.head(out.theta["video"]), batch.labels[:n])
            used = (*used, "ce")
        kept = [terms[k] for k in used if k != c.drop_loss]
        # Eq. 2.4 (or Eq. 2.6 alone), minus the ablated term, plus CE with the GFSL classifier
        return {"loss": torch.stack(kept).sum(), "loss_terms": terms}

    @torch.no_grad()
    def _published_bn_passes(
        self,
        batch: Batch,
        n: int,
        w: torch.Tensor,
        theta_w_neg: torch.Tensor,
        recon: dict[str, torch.Tensor],
    ) -> None:
        """The forward passes of the published step that only move BatchNorm running statistics.

        The published ``forward`` also computes ``A_proj(A_rec(theta_a))`` /
        ``V_proj(V_rec(theta_v))`` and ``D(theta_w_neg)`` (unused outputs), and the training
        loop calls ``get_embeddings`` on the batch in train mode after the optimiser step
        (here: before it, one Adam step earlier). Gradients are not involved.
        """
        net = self.net
        for mod, rec in recon.items():
            net.proj[mod](rec)  # the published se_em_hat1 / se_em_hat2
        if self.config.legacy_negatives:
            net.decoder(theta_w_neg)  # rho_w_neg
        net(batch.audio[:n], batch.video[:n])  # get_embeddings, train mode
        net.embed_labels(w)

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Negative L2 distances of the evaluated branch(es) to every class (Eq. 2.3, Table 2.5).

        Args:
            batch: ``audio`` ``[B, D_a]``, ``video`` ``[B, D_v]``.
            class_embeddings: ``[C, D_w]`` label embeddings.

        Returns:
            ``[B, C]`` scores ``-||theta - theta_w(c)||_2`` of ``eval_output`` (higher is better).
        """
        out = self.net(batch.audio, batch.video)
        if self.config.gfsl_classifier:  # probabilities of the classifier on theta_v
            return self.head.scatter(self.head(out.theta["video"]).softmax(-1), class_embeddings.shape[0])
        theta_w = self.net.embed_labels(self.net.text_in(class_embeddings))  # [C, k_proj]
        dist = {mod: torch.cdist(theta, theta_w) for mod, theta in out.theta.items()}  # [B, C]
        kind = self.eval_output
        if kind in ("audio", "video"):
            return -dist[kind]
        if kind == "min":
            return -torch.minimum(dist["audio"], dist["video"])
        total = dist["audio"] + dist["video"]
        return -(total / 2 if kind == "mean" else total)

    def embed(self, batch: Batch) -> torch.Tensor:
        """The evaluated embedding (theta_v by default) ``[B, k_proj]``, for figures."""
        out = self.net(batch.audio, batch.video)
        return out.theta["video" if "video" in out.theta else "audio"]


def _published_negatives(
    labels: np.ndarray, idx: np.ndarray, targets: np.ndarray, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """One negative per anchor: a uniformly random other class of ``labels``, then a sample of it.

    Args:
        labels: ``[N]`` class of every sample of the training split.
        idx: ``[B]`` anchor indices; targets: ``[B]`` their training-class indices.
        rng: numpy RNG.

    Returns:
        (``[B]`` negative sample indices, ``[B]`` their training-class indices).
    """
    rng = rng if rng is not None else np.random.default_rng()
    order = np.argsort(labels, kind="stable")
    classes, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError("legacy_negatives needs at least two training classes")
    own = np.searchsorted(classes, labels[idx])
    offset = targets - own  # training-class index = position among the classes with samples + offset
    if np.any(offset != offset[0]):
        raise ValueError("legacy_negatives: targets are not the sorted training classes")
    pick = rng.integers(0, len(classes) - 1, size=len(idx))
    pick = pick + (pick >= own)  # uniform over the other classes
    neg = order[starts[pick] + (rng.random(len(idx)) * counts[pick]).astype(np.int64)]
    return neg, pick + offset[0]


def averaged_rows(features: np.ndarray | SequenceStore, idx: np.ndarray) -> torch.Tensor:
    """``[B, D]`` rows of dense features, or time-averaged temporal ones."""
    if not isinstance(features, SequenceStore):
        return dense_rows(features, idx)
    win = gather_windows(features, idx, np.zeros(len(idx), np.int64), None)
    mean = win.values.sum(1) / win.mask.sum(1, keepdims=True)
    return torch.from_numpy(mean.astype(np.float32))
