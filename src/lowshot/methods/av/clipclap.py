"""ClipClap-GZSL: audio-visual GZSL from CLIP image and CLAP audio features.

Reference: D. Kurzendörfer, O.-B. Mercea, A. S. Koepke, Z. Akata, "Audio-visual generalized
zero-shot learning using pre-trained large multi-modal models", CVPR Workshops 2024;
thesis ch. 5 and app. D (O.-B. Mercea, *Multimodal Data Efficient Learning*, 2024).

Loss (Eqs. 5.5–5.7): cross-entropy of theta_o against the projected training-class
embeddings + regression MSE(theta_o, theta_w) + reconstruction of the *encoded* label
embedding W_enc(w) by D_o(theta_o) and D_w(theta_w). Scores: -||theta_o - theta_w(c)||_2.

Differences from the published code (dkurzend/ClipClap-GZSL @ 56b8e1b). The architecture
matches ``src/clipclap_model.py`` layer for layer (every Linear followed by BatchNorm, ReLU
and dropout; O_proj and D_o use ``decoder_dropout``, W_proj and D_w ``additional_dropout``).
Published behaviour that changes numbers is a switch, off by default:

* class-label embeddings are attached by class name (the published ActivityNet/VGGSound runs
  misalign them; ``data.legacy_text_order=true`` reproduces that, reference §6.1);
* training has no extra forward pass. The published ``train_step`` calls ``get_embeddings``
  after every optimiser step in training mode; that only gives the BatchNorm running
  statistics of O_enc, O_proj, W_enc and W_proj a second update per step (on the same batch,
  new dropout masks) and draws dropout masks. ``legacy_train_extra_pass`` reproduces it;
* the model does not own its optimiser or LR scheduler (the trainer builds them through
  ``GZSLMethod.build_optimizer``: Adam + ReduceLROnPlateau, as published). Stage 2 replays
  the stage-1 LR drops at the same epochs (``protocol.stage2_scheduler=replay``); the
  published code keeps stepping the plateau scheduler in stage 2 on HM of the stage-1
  validation folders, which are then training data
  (``protocol.stage2_scheduler=legacy_val_on_train``);
* the ablation switches are explicit config values (``modality``, ``label_embeddings``,
  ``losses``) instead of CLI string slicing;
* one beta is transferred (upstream averages three identical betas plus 1e-10/3, which is
  numerically irrelevant);
* label embeddings of a batch and of the training classes pass W_enc's BatchNorm in two
  calls (as upstream feeds per-sample and per-class text separately).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.methods.base import GZSLMethod, InputSpec
from lowshot.models.av.clipclap import ClipClapNet, ClipClapNetConfig
from lowshot.utils.seed_streams import per_seed

log = logging.getLogger(__name__)
LossTerm = Literal["ce", "reg", "rec"]


@dataclass(frozen=True)
class ClipClapConfig(ClipClapNetConfig):
    """Hyperparameters of ClipClap-GZSL (published values as defaults, thesis §5.4.1): the
    architecture (:class:`~lowshot.models.av.clipclap.ClipClapNetConfig`: sizes and dropouts)
    and the inputs, label embeddings and loss terms.

    Attributes:
        modality: inputs used (Table 5.3): ``both``, ``audio`` (CLAP) or ``visual`` (CLIP).
        label_embeddings: label embeddings used (Table 5.2): ``both``, ``clip`` or ``clap``.
        losses: loss terms (Table 5.4), any of ``ce``, ``reg``, ``rec``.
        clip_text_dim: width of the CLIP part at the front of the concatenated label
            embedding ``[CLIP ; CLAP]`` (``data.text: [clip, clap]``).
        legacy_train_extra_pass: the published extra training-mode forward after every
            optimiser step (see the differences above), off by default.
    """

    modality: Literal["both", "audio", "visual"] = "both"
    label_embeddings: Literal["both", "clip", "clap"] = "both"
    losses: tuple[LossTerm, ...] = ("ce", "reg", "rec")
    clip_text_dim: int = 512
    legacy_train_extra_pass: bool = False


@METHODS.register("clipclap")
class ClipClap(GZSLMethod):
    """ClipClap-GZSL method (model + loss terms)."""

    Config = ClipClapConfig
    score_kind = "distance"
    seed_batching = True

    def __init__(self, config: ClipClapConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        if not config.losses:
            raise ConfigError("clipclap: model.losses must name at least one of ce, reg, rec")
        if config.legacy_train_extra_pass:
            log.warning("clipclap: compatibility switch legacy_train_extra_pass is on (published behaviour)")
        if config.label_embeddings != "both" and not 0 < config.clip_text_dim < spec.text_dim:
            raise ConfigError(
                f"clipclap: label_embeddings={config.label_embeddings!r} needs [CLIP ; CLAP] label "
                f"embeddings wider than clip_text_dim={config.clip_text_dim} (got {spec.text_dim}-d)"
            )
        text_slices = {
            "both": slice(0, spec.text_dim),
            "clip": slice(0, config.clip_text_dim),
            "clap": slice(config.clip_text_dim, spec.text_dim),
        }
        self.text_slice = text_slices[config.label_embeddings]
        input_dim = {"both": spec.audio_dim + spec.video_dim, "audio": spec.audio_dim, "visual": spec.video_dim}
        text_dim = self.text_slice.stop - self.text_slice.start
        self.net = ClipClapNet(input_dim[config.modality], text_dim, config)

    def _inputs(self, batch: Batch) -> torch.Tensor:
        """``[B, D_in]``: concat[video, audio] as published, or one modality."""
        if self.config.modality == "audio":
            return batch.audio
        if self.config.modality == "visual":
            return batch.video
        return torch.cat([batch.video, batch.audio], dim=1)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms of ``model.losses`` for one batch, summed into ``loss``.

        ``ce`` (Eq. 5.5): cross-entropy of ``theta_o [B, d_out]`` against ``theta_w [C_train, d_out]``;
        ``reg`` (Eq. 5.7): MSE of ``theta_o`` to the GT ``theta_w``; ``rec`` (Eq. 5.6): both decoders'
        MSE to the encoded GT label embedding.

        Args:
            batch: pooled ``[B, D_v]`` video / ``[B, D_a]`` audio features and ``targets [B]``.
            class_embeddings: ``[C_train, D_w]`` label embeddings (the configured slice is used).

        Returns:
            ``{"loss": scalar, <term>: scalar, ...}``.
        """
        w = class_embeddings[:, self.text_slice]
        theta_o = self.net.embed_inputs(self._inputs(batch))  # [B, d_out]
        _, theta_w_train = self.net.embed_labels(w)  # [C_train, d_out]
        w_enc, theta_w = self.net.embed_labels(w, batch.targets)  # [B, d_model], [B, d_out]
        terms: dict[str, torch.Tensor] = {}
        if "ce" in self.config.losses:  # Eq. 5.5
            terms["ce"] = per_seed(_ce, False, theta_o, theta_w_train, batch.targets)
        if "reg" in self.config.losses:  # Eq. 5.7
            terms["reg"] = F.mse_loss(theta_o, theta_w)
        if "rec" in self.config.losses:  # Eq. 5.6, target: encoded label embedding
            terms["rec"] = F.mse_loss(self.net.d_o(theta_o), w_enc) + F.mse_loss(self.net.d_w(theta_w), w_enc)
        return {"loss": sum(terms.values()), "loss_terms": terms}

    @torch.no_grad()
    def after_step(self, batch: Batch, class_embeddings: torch.Tensor) -> None:
        """``legacy_train_extra_pass``: the published gradient-free training-mode pass
        (updates BatchNorm running statistics only); ``class_embeddings`` is ``[C_train, D_w]``."""
        if self.config.legacy_train_extra_pass:
            self.embed(batch)
            self.net.embed_labels(class_embeddings[:, self.text_slice], batch.targets)

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, C]``: minus the L2 distance of ``theta_o [B, d_out]`` to each class's
        ``theta_w`` from ``class_embeddings [C, D_w]``.
        """
        return -torch.cdist(self.embed(batch), self.embed_classes(class_embeddings))

    def embed(self, batch: Batch) -> torch.Tensor:
        """theta_o ``[B, d_out]`` (for t-SNE figures)."""
        return self.net.embed_inputs(self._inputs(batch))

    def embed_classes(self, class_embeddings: torch.Tensor) -> torch.Tensor:
        """theta_w ``[C, d_out]`` of label embeddings ``[C, D_t]``."""
        return self.net.embed_labels(class_embeddings[:, self.text_slice])[1]


def _ce(theta_o: torch.Tensor, theta_w: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. 5.5: cross-entropy of ``theta_o [B, d]`` against ``theta_w [C_train, d]`` for ``targets [B]``
    (per seed in a seed-batched step, where vmap's batched matmul and cross-entropy round differently)."""
    return F.cross_entropy(theta_o @ theta_w.T, targets)
