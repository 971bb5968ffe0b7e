"""TSL as an audio-visual GFSL baseline (thesis Table 4.2).

Reference: Y. Xian, B. Korbar, M. Douze, L. Torresani, B. Schiele, Z. Akata, "Generalized
Few-Shot Video Classification with Video Retrieval and Feature Generation", IEEE TPAMI 2021
([264] of the thesis); adapted in thesis §4.3.3: a classifier on short segments whose scores
are averaged over the video, and a GAN that generates features of the novel classes; audio
and visual features are concatenated.

Re-implemented from Xian et al. (TPAMI 2021) and the thesis paragraph;
no upstream parity reference (reference §6.9). A video is cut into segments of
``segment_seconds`` (by the time of each step); a segment's feature is ``[mean audio ; mean
video]`` of its steps (TCaF's input normalisation; a segment without audio steps takes the
video's mean audio). The classifier (an MLP) is trained with CE on every segment, with the
video's label; a video's score is the mean of its segments' softmax probabilities. A conditional
WGAN-GP (f-CLSWGAN, which TSL uses) generates segment features from the class-label embedding
``w`` and noise; the generator also gets a classification loss through the (frozen) classifier.
In the full phase the classifier also trains on one generated feature per real novel segment
(the retrieval of extra novel videos of TSL is not part of the benchmark and is not used).

Differences from the published code: no code was released (reference §6.9). Differences from the
paper: one optimiser step updates critic, generator and classifier together (the generator's
adversarial and classification terms run through detached copies of the critic and classifier);
no pre-trained R(2+1)D backbone or video retrieval.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.methods.av.gfsl_head import (
    ConditionalCritic,
    ConditionalGenerator,
    PhaseClasses,
    TemporalGFSLClassifier,
    TemporalGFSLConfig,
    detached_call,
    loss_of,
)
from lowshot.methods.base import InputSpec, LossResult
from lowshot.models.av.tcaf import TemporalInput


def segment_means(x: TemporalInput, seconds: float, n_seg: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature of each time segment ``[B, S, D]`` and its step count ``[B, S]``.

    Args:
        x: padded steps with masks and times (seconds).
        seconds: segment length; step ``t`` is in segment ``floor(time_t / seconds)``.
        n_seg: ``S``; later steps go into the last segment.
    """
    seg = torch.div(x.times, seconds, rounding_mode="floor").long().clamp(0, n_seg - 1)  # [B, T]
    w = x.mask.to(x.values.dtype)
    b, _, d = x.values.shape
    sums = x.values.new_zeros(b, n_seg, d).scatter_add_(1, seg[..., None].expand(-1, -1, d), x.values * w[..., None])
    counts = w.new_zeros(b, n_seg).scatter_add_(1, seg, w)
    return sums / counts.clamp(min=1)[..., None], counts


@dataclass(frozen=True)
class TSLConfig(TemporalGFSLConfig):
    """TSL: TCaF's input policy plus segments, classifier and WGAN-GP sizes.

    Attributes:
        segment_seconds: segment length in seconds.
        classifier_hidden: hidden width of the segment classifier (``dim`` is not used).
        noise_dim / gan_hidden: generator noise and hidden widths.
        gp_weight: WGAN gradient-penalty weight (10). cls_weight: the generator's classification term.
        generate: in the full phase, train the classifier on one generated feature per real novel segment.
    """

    #: TSL works on the input features: of TCaF's keys it uses the input policy and ``decoder_dropout``
    ignored = ("dim", "encoder_hidden", "decoder_hidden", "dim_out", "pos_dim", "depth", "heads", "dim_head",
               "mlp_dim", "fourier_scale", "embedding_dropout", "token_dropout", "transformer_dropout",
               "time_embedding", "modality_embedding", "feed_forward")  # fmt: skip

    segment_seconds: float = 5.12
    classifier_hidden: int = 512
    noise_dim: int = 64
    gan_hidden: int = 512
    gp_weight: float = 10.0
    cls_weight: float = 0.1
    generate: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.segment_seconds <= 0 or self.modalities != "both":
            raise ConfigError("tsl: segment_seconds must be positive and modalities 'both'")


@METHODS.register("tsl")
class TSL(TemporalGFSLClassifier):
    """Segment classifier with averaged segment scores and a conditional WGAN-GP; probability scores."""

    Config = TSLConfig

    def __init__(self, config: TSLConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config
        x_dim = spec.audio_dim + spec.video_dim
        del self.tokens  # TSL works on the (normalised) input features, not on tokens
        self.classifier = nn.Sequential(nn.Linear(x_dim, c.classifier_hidden), nn.ReLU(), nn.Dropout(c.decoder_dropout))
        self.head = PhaseClasses(c.classifier_hidden, self.num_classes)
        self.generator = ConditionalGenerator(c.noise_dim, spec.text_dim, c.gan_hidden, x_dim)
        self.critic = ConditionalCritic(x_dim, spec.text_dim, c.gan_hidden)

    def segments(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment features ``[B, S, D_a + D_v]`` and validity ``[B, S]`` (a segment has video steps)."""
        inputs = self._inputs(batch)
        a, v = inputs["audio"], inputs["video"]
        end = max(float(a.times[a.mask].max()), float(v.times[v.mask].max())) if bool(v.mask.any()) else 0.0
        n_seg = int(end // self.config.segment_seconds) + 1
        seg_a, count_a = segment_means(a, self.config.segment_seconds, n_seg)
        seg_v, count_v = segment_means(v, self.config.segment_seconds, n_seg)
        w = a.mask.to(a.values.dtype)[..., None]
        clip_a = (a.values * w).sum(1) / w.sum(1).clamp(min=1)  # [B, D_a]
        seg_a = torch.where(count_a[..., None] > 0, seg_a, clip_a[:, None])
        return torch.cat([seg_a, seg_v], dim=-1), count_v > 0

    def segment_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., D_a + D_v]`` -> phase logits ``[..., C_p]``."""
        return self.head(self.classifier(x))

    def probs(self, batch: Batch) -> torch.Tensor:
        """Mean over a video's segments of the segment softmax ``[B, C_p]``."""
        x, valid = self.segments(batch)
        p = self.segment_logits(x).softmax(-1) * valid[..., None]
        return p.sum(1) / valid.sum(1, keepdim=True).clamp(min=1)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Segment CE, WGAN-GP critic and generator terms, and CE on generated novel segments.

        Args:
            batch: temporal batch; ``labels`` ``[B]`` global, ``targets`` ``[B]`` rows of ``class_embeddings``.
            class_embeddings: ``[C_train, D_w]``.

        Returns:
            ``{"loss", "loss_terms": {"ce", "critic", "generator"[, "ce_generated"]}}``.
        """
        c = self.config
        x, valid = self.segments(batch)
        rows = valid.nonzero(as_tuple=True)
        real, labels = x[rows], batch.labels[rows[0]]  # [n, D_x], [n]
        w = class_embeddings[batch.targets[rows[0]]]  # [n, D_w]
        terms = {"ce": self.head.ce(self.segment_logits(real), labels)}
        fake = self.generator(w)
        d_fake, d_real = self.critic(fake.detach(), w), self.critic(real, w)
        terms["critic"] = d_fake.mean() - d_real.mean() + c.gp_weight * self._gradient_penalty(real, fake.detach(), w)
        gen_logits = self.head.frozen(detached_call(self.classifier, fake))
        terms["generator"] = -detached_call(self.critic, fake, w).mean() + c.cls_weight * self.head.ce(gen_logits, labels)
        novel = self.is_novel(labels)
        if c.generate and bool(novel.any()):
            terms["ce_generated"] = self.head.ce(self.segment_logits(fake[novel].detach()), labels[novel])
        return loss_of(terms)

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """WGAN-GP: ``(||grad_x D(x_hat, w)|| - 1)^2`` on random interpolates ``x_hat``."""
        alpha = torch.rand(real.shape[0], 1, device=real.device)
        x_hat = (alpha * real.detach() + (1 - alpha) * fake).requires_grad_(True)
        grad = torch.autograd.grad(self.critic(x_hat, w).sum(), x_hat, create_graph=True)[0]
        return ((grad.norm(dim=1) - 1) ** 2).mean()

    def logits(self, batch: Batch) -> torch.Tensor:
        """Not defined per video (scores are averaged segment probabilities ``[B, C_p]``, see :meth:`probs`)."""
        raise NotImplementedError("tsl scores videos by averaging segment probabilities (probs)")
