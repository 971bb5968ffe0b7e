"""ProtoGan as an audio-visual GFSL baseline (thesis Table 4.2).

Reference: S. K. Dwivedi, V. Gupta, R. Mitra, S. Ahmed, A. Jain, "ProtoGAN: Towards Few Shot
Learning for Action Recognition", ICCV Workshops 2019 ([118] of the thesis); adapted in thesis
§4.3.3: a GAN conditioned on class prototypes (the mean feature of a class's videos), with
the visual and audio features concatenated.

Re-implemented from Dwivedi et al. (ICCV-W 2019) and the thesis paragraph;
no upstream parity reference (reference §6.9). A video is ``x = [mean audio ; mean video]``
(time-averaged inputs, TCaF's per-family input normalisation). The prototype ``p_c`` of a class
is the mean ``x`` of its training samples seen so far (running sums over the training batches,
kept in the state so stage 2 starts from the base prototypes; novel prototypes come from their k
shots). A conditional GAN (the Class Prototype Transfer Network: generator ``G([z ; p_c])``,
discriminator ``D([x ; p_c])``, binary cross-entropy) learns to generate features of a class
from its prototype; the generator also gets a classification loss through the (frozen)
classifier. The classifier (an MLP) trains with CE on real features and, in the full phase, on
one generated feature per real novel sample.

Differences from the published code: no code was released (reference §6.9). Differences from the
paper: one optimiser step updates discriminator, generator and classifier (the generator's terms
run through detached copies of D and the classifier); C3D-only inputs are replaced by audio ⊕
video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet
from lowshot.errors import ConfigError
from lowshot.layers.input_norm import InputNorm, normalize_features
from lowshot.methods.av.avca import averaged_rows
from lowshot.methods.av.gfsl_head import (
    ConditionalCritic,
    ConditionalGenerator,
    GFSLClassifier,
    PhaseClasses,
    detached_call,
    loss_of,
)
from lowshot.methods.base import InputSpec, LossResult, label_tensors


@dataclass(frozen=True)
class ProtoGanConfig:
    """ProtoGan hyperparameters.

    Attributes:
        classifier_hidden: hidden width of the classifier MLP.
        dropout: classifier dropout.
        noise_dim / gan_hidden: generator noise and hidden widths.
        cls_weight: weight of the generator's classification term.
        generate: in the full phase, train the classifier on one generated feature per real novel sample.
        input_norm: per-modality input normalisation (:mod:`lowshot.layers.input_norm`).
    """

    classifier_hidden: int = 512
    dropout: float = 0.2
    noise_dim: int = 64
    gan_hidden: int = 512
    cls_weight: float = 0.1
    generate: bool = True
    input_norm: InputNorm = "per_family"

    def __post_init__(self) -> None:
        if min(self.classifier_hidden, self.noise_dim, self.gan_hidden) < 1 or not 0 <= self.dropout < 1:
            raise ConfigError("protogan: positive widths and dropout in [0, 1) needed")


@METHODS.register("protogan")
class ProtoGan(GFSLClassifier):
    """Prototype-conditioned GAN + MLP classifier on time-averaged audio ⊕ video; probability scores."""

    Config = ProtoGanConfig

    def __init__(self, config: ProtoGanConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config
        x_dim = spec.audio_dim + spec.video_dim
        self.classifier = nn.Sequential(nn.Linear(x_dim, c.classifier_hidden), nn.ReLU(), nn.Dropout(c.dropout))
        self.head = PhaseClasses(c.classifier_hidden, self.num_classes)
        self.generator = ConditionalGenerator(c.noise_dim, x_dim, c.gan_hidden, x_dim)
        self.discriminator = ConditionalCritic(x_dim, x_dim, c.gan_hidden)
        self.register_buffer("proto_sum", torch.zeros(self.num_classes, x_dim))
        self.register_buffer("proto_count", torch.zeros(self.num_classes))

    def collate(
        self,
        features: FeatureSet,
        idx: np.ndarray,
        targets: np.ndarray | None,
        train: bool,
        generator: np.random.Generator | None = None,
    ) -> Batch:
        """Dense batch of time-averaged audio ``[B, D_a]`` and video ``[B, D_v]``."""
        labels, tgt = label_tensors(features, idx, targets)
        return Batch(averaged_rows(features.audio, idx), averaged_rows(features.video, idx), labels, tgt)

    def inputs(self, batch: Batch) -> torch.Tensor:
        """``x = [audio ; video]`` ``[B, D_a + D_v]`` after the input normalisation."""
        s, norm = self.spec, self.config.input_norm
        return torch.cat([normalize_features(batch.audio, s.audio_kind, "audio", norm),
                          normalize_features(batch.video, s.video_kind, "video", norm)], dim=1)  # fmt: skip

    def prototypes(self, labels: torch.Tensor) -> torch.Tensor:
        """Class prototypes ``[B, D_x]`` of ``labels`` ``[B]`` (running means of the training inputs)."""
        return self.proto_sum[labels] / self.proto_count[labels].clamp(min=1)[:, None]

    def logits(self, batch: Batch) -> torch.Tensor:
        """Phase logits ``[B, C_p]``."""
        return self.head(self.classifier(self.inputs(batch)))

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """CE on real features, the GAN terms, and CE on generated novel features.

        Args:
            batch: averaged inputs with global ``labels`` ``[B]``.
            class_embeddings: ``[C_train, D_w]`` (unused: ProtoGan conditions on prototypes).

        Returns:
            ``{"loss", "loss_terms": {"ce", "discriminator", "generator"[, "ce_generated"]}}``.
        """
        x, labels = self.inputs(batch), batch.labels
        if self.training:  # prototypes: running class means of the training inputs
            self.proto_sum.index_add_(0, labels, x.detach())
            self.proto_count.index_add_(0, labels, torch.ones_like(labels, dtype=x.dtype))
        p = self.prototypes(labels)
        terms = {"ce": self.head.ce(self.head(self.classifier(x)), labels)}
        fake = self.generator(p)
        d_real, d_fake = self.discriminator(x, p), self.discriminator(fake.detach(), p)
        terms["discriminator"] = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))  # fmt: skip
        d_gen = detached_call(self.discriminator, fake, p)
        gen_logits = self.head.frozen(detached_call(self.classifier, fake))
        terms["generator"] = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen)) + \
            self.config.cls_weight * self.head.ce(gen_logits, labels)  # fmt: skip
        novel = self.is_novel(labels)
        if self.config.generate and bool(novel.any()):
            terms["ce_generated"] = self.head.ce(self.head(self.classifier(fake[novel].detach())), labels[novel])
        return loss_of(terms)
