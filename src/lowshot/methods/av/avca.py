"""AVCA: Audio-Visual Cross Attention for audio-visual (G)ZSL.

Reference: O.-B. Mercea, L. Riesch, A. S. Koepke, Z. Akata, "Audio-visual Generalised
Zero-shot Learning with Cross-modal Attention and Language", CVPR 2022; thesis ch. 2 and
app. A (O.-B. Mercea, *Multimodal Data Efficient Learning*, 2024).

Loss (Eq. 2.4): l = l_t + l_c + l_r with l_c = l_rec + l_ct + l_w (Eqs. 2.5-2.10), triplets
with margin ``mu`` and L2 distance. Scores: -||theta_v - theta_w(c)||_2 (Eq. 2.3), or the
theta_a / sum / min variants of Table 2.5.

Differences from the published code (ExplainableML/AVCA-GZSL @ 2711aeb):

* negatives are other-class samples **of the same batch** (class drawn uniformly among the
  other classes present, then a sample of it), not an extra batch of negatives passed
  through the network. This halves the compute; BatchNorm statistics therefore come from
  one batch instead of separate positive and negative batches;
* the model does not own its optimiser or LR scheduler (the recipe does; the published
  stage-2 scheduler quirk is ``protocol.stage2_scheduler=legacy_val_on_train``);
* ablations (Tables 2.3-2.6) are config values; the published code has no switches for them;
* inputs are the raw released features (as published; no normalisation);
* class-label embeddings are attached by class name (``data.legacy_text_order`` reproduces
  the published misalignment, reference §6.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.data.av.featureset import FeatureSet, SequenceStore
from lowshot.data.av.sequences import gather_windows
from lowshot.errors import ConfigError
from lowshot.losses.triplet import sample_negatives, triplet
from lowshot.methods.base import Batch, GZSLMethod, InputSpec, dense_rows, label_tensors
from lowshot.models.av.avca import AVCANet

LossTerm = Literal["l_t", "l_rec", "l_ct", "l_w", "l_r"]


@dataclass(frozen=True)
class AVCAConfig:
    """AVCA hyperparameters (defaults: the published UCF-main run, reference §4.1).

    Attributes:
        embedding_dropout / decoder_dropout / additional_dropout: ``r_enc`` / ``r_proj`` / ``r_dec``.
        bn_momentum: BatchNorm momentum (PyTorch convention) of the two-layer blocks.
        margin: triplet margin ``mu``.
        inputs: ``both`` or a single modality (Table 2.3: no cross-attention, one branch).
        branches: branches trained and evaluated; a single one with both inputs is Table 2.4
            "Visual/Audio with x-att".
        fusion: ``cross_attention`` or ``none`` (Table 2.4 "w/o x-att": isolated branches,
            distances averaged at evaluation).
        drop_loss: remove one loss term (Table 2.6), ``none`` for the full loss.
        eval_output: branch(es) scored at evaluation (Table 2.5): ``video`` (theta_v),
            ``audio`` (theta_a), ``sum`` (|theta_a - theta_w| + |theta_v - theta_w|),
            ``mean`` (half of ``sum``), ``min`` (closest of the two); ``auto`` = ``video``
            with cross-attention, ``mean`` without, the branch itself for one branch.
    """

    dim: int = 300
    encoder_hidden: int = 512
    decoder_hidden: int = 512
    dim_out: int = 64
    depth: int = 1
    heads: int = 3
    dim_head: int = 100
    mlp_dim: int = 64
    embedding_dropout: float = 0.2
    decoder_dropout: float = 0.3
    additional_dropout: float = 0.5
    bn_momentum: float = 0.1
    margin: float = 1.0
    inputs: Literal["both", "audio", "video"] = "both"
    branches: Literal["both", "audio", "video"] = "both"
    fusion: Literal["cross_attention", "none"] = "cross_attention"
    drop_loss: Literal["none", "l_t", "l_rec", "l_ct", "l_w", "l_r"] = "none"
    eval_output: Literal["auto", "video", "audio", "sum", "mean", "min"] = "auto"

    def __post_init__(self) -> None:
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
            spec.audio_dim, spec.video_dim, spec.text_dim, c.dim, c.encoder_hidden, c.decoder_hidden,
            c.dim_out, c.depth, c.heads, c.dim_head, c.mlp_dim, c.embedding_dropout, c.decoder_dropout,
            c.additional_dropout, c.bn_momentum, c.inputs, c.branches, c.fusion == "cross_attention",
        )  # fmt: skip
        self.eval_output = c.resolved_eval_output()

    def collate(
        self,
        features: FeatureSet,
        idx: np.ndarray,
        targets: np.ndarray | None,
        train: bool,
        generator: np.random.Generator | None = None,
    ) -> Batch:
        """Dense batch; temporal features are averaged over their valid steps (AVCA input)."""
        labels, tgt = label_tensors(features, idx, targets)
        return Batch(_averaged(features.audio, idx), _averaged(features.video, idx), labels, tgt)

    def training_loss(
        self, batch: Batch, class_embeddings: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        m = self.config.margin
        out = self.net(batch.audio, batch.video)
        w = class_embeddings[batch.targets]  # [B, D_w]
        theta_w = self.net.embed_labels(w)  # [B, k_proj]
        rho_w = self.net.decoder(theta_w)  # [B, D_w]
        neg = sample_negatives(batch.labels.to(w.device))  # [B] in-batch other-class samples
        zero = w.new_zeros(())
        terms = {"l_t": zero, "l_rec": F.mse_loss(rho_w, w), "l_ct": zero, "l_w": zero, "l_r": zero}
        for mod in self.net.branches:
            theta, phi = out.theta[mod], out.phi[mod]
            rho = self.net.decoder(theta)  # rho_m = D(theta_m)
            # Eq. 2.5 (base triplets)
            terms["l_t"] = (
                terms["l_t"]
                + triplet(theta, theta_w, theta[neg], m)
                + triplet(theta_w, theta, theta_w[neg], m)
            )
            terms["l_rec"] = terms["l_rec"] + F.mse_loss(rho, w)  # Eq. 2.7
            terms["l_ct"] = terms["l_ct"] + triplet(rho_w, rho, rho[neg], m)  # Eq. 2.8
            # Eq. 2.9
            terms["l_w"] = (
                terms["l_w"]
                + triplet(theta_w, theta, theta[neg], m)
                + triplet(theta, theta_w, theta_w[neg], m)
            )
            # Eq. 2.10
            terms["l_r"] = (
                terms["l_r"]
                + F.mse_loss(self.net.rec[mod](theta), phi)
                + F.mse_loss(theta, theta_w)
            )
        kept = [v for k, v in terms.items() if k != self.config.drop_loss]
        terms["loss"] = torch.stack(kept).sum()  # Eq. 2.4 (minus the ablated term)
        return terms

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        out = self.net(batch.audio, batch.video)
        theta_w = self.net.embed_labels(class_embeddings)  # [C, k_proj]
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


def _averaged(features: np.ndarray | SequenceStore, idx: np.ndarray) -> torch.Tensor:
    """``[B, D]`` rows of dense features, or time-averaged temporal ones."""
    if not isinstance(features, SequenceStore):
        return dense_rows(features, idx)
    win = gather_windows(features, idx, np.zeros(len(idx), np.int64), None)
    mean = win.values.sum(1) / win.mask.sum(1, keepdims=True)
    return torch.from_numpy(mean.astype(np.float32))
