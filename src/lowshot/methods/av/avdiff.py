"""AV-Diff: text-to-feature diffusion for audio-visual (generalised) few-shot learning.

Reference: O.-B. Mercea, T. Hummel, A. S. Koepke, Z. Akata, "Text-to-feature diffusion for
audio-visual few-shot learning", DAGM GCPR 2023; thesis ch. 4 and app. C (O.-B. Mercea,
*Multimodal Data Efficient Learning*, 2024). Published code: ExplainableML/AVDIFF-GFSL @ a8c7f70
(``main.py``, ``get_evaluation.py``, ``src/AVDiff.py``, ``src/diffusion_models.py``,
``src/train.py``, ``src/utils.py``, ``config/best/<k>-shot/best_<ds>.yaml``), read line by line
against this file; every hyperparameter of the twelve Table C.1 cells matches its config.

The generated features only help once the diffusion model has learnt: an untrained DDPM
(epsilon loss about 1, i.e. predicting zero) returns noise that CE then labels as novel
classes, one per real novel sample, which cancels what more real shots add. Short schedules
(demo sizes, few hundred steps) and T far below the published 100-300 (the linear schedule
then ends far from noise: sqrt(alpha_bar_T) = 0.90 at T = 20, 0.36 at T = 200) show this; see
docs/benchmarks.md ("AV-Diff low-shot curve").

Model (§4.4.1–4.4.2): TCaF-style temporal tokens fused by L layers whose first Z use
within-modality attention (A_self + A_c) and the rest full attention (A); ``c_o = Proj_net(cls)``;
``CL_net(c_o)`` gives the class scores, one per class of the stage (base + novel) in both
phases (softmax; calibrated stacking subtracts beta from base probabilities). A DDPM whose
epsilon-MLP (``src/AVDiff.py:GeneratorNetDiffusion``: LeakyReLU on ``[x_t ; t ; w]`` with ``t``
the raw integer step, Linear(``generator_hidden``), LeakyReLU, dropout if set, Linear to
``d_out``; LeakyReLU slope 0.01) learns ``c_o`` — after Proj_net, not detached — conditioned
on the class-label embedding ``w`` (Eq. 4.8, MSE mean over elements). The published
``latent_generator`` is read by the code but used by no module, so it is no setting here. In
the full phase every configured batch is two optimiser steps (``src/train.py:
train_step_two_dataloaders``): a class-balanced base batch of ``B`` (CE + diffusion), then a
class-balanced novel batch of ``B`` with ``B`` generated ``c_o``, one per real novel sample
(CE real + CE generated, each a mean, + diffusion). The generated features come from the whole
reverse chain (``sigma_t^2 = beta_t``, no clipping) and keep their graph, so the CE on them
trains epsilon_theta as well as CL_net (thesis §4.4.3: the diffusion model continues to train
on ``L_ce + L_diff``). Frozen in the full phase: encoders, token projections, embeddings,
class token, transformer (``AVDiff.freeze_parameters``). The diffusion model is not used at
inference.

Differences from the published code (each published behaviour that changes numbers is a
switch, off by default, or listed here):

* beta is transferred from the selected stage-1 epoch and a transferred beta of 0 is used as
  is (``protocol.beta_source=last_epoch`` and ``protocol.legacy_beta_zero_search_on_test``
  reproduce ``src/train.py:train`` returning the last epoch's beta and ``src/utils.py:
  get_best_evaluation``'s falsy ``if best_beta``, reference §6.3 / §6.2; see
  :mod:`lowshot.protocols.gfsl`);
* input normalisation, BatchNorm over padding, the ActivityNet audio window and window times
  are TCaF's switches (``input_norm="legacy_tcaf"``, ``legacy_bn_over_padding``,
  ``legacy_audio_len``, ``legacy_window_relative_time``; ``src/AVDiff.py:AVDiff.forward`` /
  ``get_embeddings`` and ``src/dataset.py:DefaultCollator``, §6.5, §6.7); the time embedding sees
  seconds in training and evaluation (as published for AV-Diff);
* the reverse chain adds no noise at its last step (DDPM, Ho et al. Algorithm 2);
  ``src/diffusion_models.py:DenoiseDiffusion.p_sample`` adds ``sqrt(beta_0) z`` there too
  (``legacy_final_step_noise=True``);
* LR drops: the recorded drop epochs are the scheduler's own reductions
  (``ReduceLROnPlateau``, relative threshold 1e-4); the published ``AVDiff.optimize_scheduler``
  records them with its own counter (strict ``>``, no threshold), which can differ from the
  scheduler's drops when a validation score improves by less than 1e-4 relative (no switch).
  The stage-1 base phase steps its scheduler on validation base accuracy (as published) and
  stage 2 replays both phases' drops. ActivityNet's stage-1 validation crop of 30 steps
  (``batch_seqlen_val_maxlen``) is not reproduced (evaluation crops to ``eval_maxlen``);
* the published forward pass runs the reverse chain on every batch, also in the base phase
  and on base batches, where no loss uses it; here it runs only for novel batches (same
  losses, fewer RNG draws);
* the full phase freezes the fusion by ``requires_grad``; BatchNorm statistics of the frozen
  encoders still update in training mode, as published; Proj_net, CL_net and the diffusion
  model train on;
* ablations: ``fusion`` (Table 4.3, incl. ``alternate``), ``modalities`` (Table 4.5, one
  stream uses full attention), ``conditioning="av_prototype"`` (Table 4.6: the running
  per-class mean of the time-averaged, normalised audio ⊕ video inputs of the training
  batches — re-implemented from the thesis text, not in the published code); ``generator="wgan"``
  (Table 4.4 "AV-GAN", re-implemented from the thesis text, no upstream reference: a conditional
  WGAN-GP on ``c_o`` with one-hidden-layer generator and critic of ``generator_hidden`` units,
  noise of ``dim_out``, gradient penalty ``gan_gp_weight``; critic and generator are updated
  in the same optimiser step, one critic update per step; the CE on its generated features
  also reaches the generator).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError, DataError
from lowshot.losses.wgan import wgan_gp_losses
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.methods.base import InputSpec, LossResult
from lowshot.methods.gfsl import GFSLInputSpec
from lowshot.models.av.avdiff import AVDiffNet, AVDiffNetConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AVDiffConfig(AVDiffNetConfig, TCaFConfig):
    """AV-Diff hyperparameters: the architecture (:class:`~lowshot.models.av.avdiff.AVDiffNetConfig`),
    TCaF's input options (sequence policy, normalisation, legacy switches) and the objective.

    Attributes:
        conditioning: ``text`` (class-label embedding ``w``) or ``av_prototype`` (Table 4.6).
        gan_gp_weight: gradient-penalty weight of ``generator="wgan"``.
        detach_output: stop the diffusion loss's gradient into Proj_net (published ``false``).
        generate: generate novel features in the full phase (False: CE on real features only).
        legacy_final_step_noise: the published reverse chain also adds ``sqrt(beta_0) z`` at its
            last step (DDPM's Algorithm 2 adds none there).
    """

    conditioning: Literal["text", "av_prototype"] = "text"
    detach_output: bool = False
    generate: bool = True
    legacy_final_step_noise: bool = False
    gan_gp_weight: float = 10.0

    def __post_init__(self) -> None:
        if self.legacy_final_step_noise:
            log.warning("avdiff: legacy_final_step_noise: the reverse chain adds noise at its last step (published)")
        if self.modalities != "both" and self.fusion not in ("full", "self"):
            raise ConfigError(
                f"avdiff: modalities={self.modalities!r} has one stream; use fusion='full' (Table 4.5)"
            )
        if self.diffusion_steps < 1 or self.depth < 1:
            raise ConfigError("avdiff: diffusion_steps and depth must be positive")
        if not 0 <= self.attention_switch <= self.depth:
            raise ConfigError(f"avdiff: attention_switch must lie in 0..depth={self.depth}, got {self.attention_switch}")
        if self.readout != "class_token":
            raise ConfigError("avdiff: the fused feature is the class token (readout='class_token')")
        unused = {"attention": "cross", "objective": "ce_reg_rec", "margin": 1.0,
                  "legacy_eval_integer_timesteps": False, "legacy_train_integer_time_pass": False}  # fmt: skip
        for key, default in unused.items():
            if getattr(self, key) != default:
                raise ConfigError(f"avdiff: model.{key} is a TCaF setting that AV-Diff does not use (see fusion)")


@METHODS.register("avdiff")
class AVDiff(TCaF):
    """AV-Diff method: TCaF inputs and tokens, hybrid fusion, classifier scores, diffusion generation.

    Scores are probabilities (``score_kind = "probability"``). The GFSL protocol calls
    :meth:`start_phase` before each phase.
    """

    Config = AVDiffConfig
    score_kind = "probability"

    def __init__(self, config: AVDiffConfig, spec: InputSpec) -> None:
        num_classes = spec.num_classes if isinstance(spec, GFSLInputSpec) else 0
        if num_classes < 1:
            raise ConfigError("avdiff needs the number of classes (GFSLInputSpec.num_classes); run it with recipe gfsl")
        super().__init__(config, spec)
        cond_dim = spec.text_dim if config.conditioning == "text" else spec.audio_dim + spec.video_dim
        self.net = AVDiffNet(spec.audio_dim, spec.video_dim, cond_dim, num_classes, config,
                             bn_over_padding=config.legacy_bn_over_padding)  # fmt: skip
        self.num_classes = num_classes
        #: classes of the current stage (CE and softmax range), None = all classes
        self.classes_: torch.Tensor | None = None
        #: novel classes of the current phase (generation), empty in the base phase
        self.novel_: torch.Tensor = torch.zeros(0, dtype=torch.long)
        if config.conditioning == "av_prototype":
            self.register_buffer("proto_sum", torch.zeros(num_classes, cond_dim), persistent=False)
            self.register_buffer("proto_count", torch.zeros(num_classes), persistent=False)

    # ----------------------------------------------------------------------------- phases
    def start_phase(
        self, phase: str, train_classes: np.ndarray, novel_classes: np.ndarray, stage_classes: np.ndarray | None = None
    ) -> None:
        """Base phase: everything trains, no generation. Full phase: fusion frozen, generation on.

        Args:
            phase: ``base`` or ``full``.
            train_classes: ``[C_phase]`` global indices of the phase's classes.
            novel_classes: the novel ones among them (generation), empty in the base phase.
            stage_classes: ``[C_stage]`` base + novel classes of the stage: CE and softmax range
                over them in both phases, as published (the classifier has one output per class of
                the stage, AVDIFF-GFSL ``main.py``: ``logits_length``); None: ``train_classes``.
        """
        device = self.net.classifier.weight.device
        classes = train_classes if stage_classes is None else stage_classes
        self.classes_ = torch.as_tensor(np.asarray(classes), dtype=torch.long, device=device)
        self.novel_ = torch.as_tensor(np.asarray(novel_classes), dtype=torch.long, device=device)
        frozen = phase == "full"
        for p in self.net.fusion_parameters():
            p.requires_grad_(not frozen)

    # ----------------------------------------------------------------------------- batches
    def batches_per_epoch(self, n_batches: int) -> int:
        """Full phase: ``2 n_batches`` optimiser steps, a base batch and then a novel batch per
        configured batch (the published fine-tune zips a base and a novel loader of ``n_batches``
        each and steps on each batch, AVDIFF-GFSL ``src/train.py:train_step_two_dataloaders``)."""
        return n_batches if len(self.novel_) == 0 else 2 * n_batches

    def epoch_indices(
        self, labels: np.ndarray, n_batches: int, batch_size: int, sampler: str, rng: np.random.Generator
    ) -> np.ndarray:
        """Base phase: the trainer's draw ``[n_batches, B]``. Full phase: ``[n_batches, B]`` rows
        alternating a base batch (``sampler`` over base-class samples) and a novel batch
        (``sampler`` over the novel shots), one optimiser step each (thesis §4.4.3).

        Args:
            labels: ``[N]`` global class of each training sample of the phase.
            n_batches: rows (:meth:`batches_per_epoch`; even in the full phase).
            rng: the trainer's sampler RNG.
        """
        if len(self.novel_) == 0:
            return super().epoch_indices(labels, n_batches, batch_size, sampler, rng)
        novel = np.isin(labels, self.novel_.cpu().numpy())
        out = np.empty((n_batches, batch_size), dtype=np.int64)
        for k, pool in enumerate((np.flatnonzero(~novel), np.flatnonzero(novel))):
            if len(pool) == 0:
                raise DataError("avdiff full phase: the training set has no " + ("novel" if k else "base") + " samples")
            rows = len(range(k, n_batches, 2))
            out[k::2] = pool[super().epoch_indices(labels[pool], rows, batch_size, sampler, rng)]
        return out

    # ----------------------------------------------------------------------------- losses
    def _logits(self, c_o: torch.Tensor) -> torch.Tensor:
        """CL_net logits over the stage's classes ``[B, C_stage]`` (all classes outside a phase)."""
        logits = self.net.classifier(c_o)
        return logits if self.classes_ is None else logits[:, self.classes_]

    def _rows(self, labels: torch.Tensor) -> torch.Tensor:
        """Column of each global label in :meth:`_logits`."""
        if self.classes_ is None:
            return labels
        return torch.searchsorted(self.classes_, labels)

    def _condition(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Diffusion conditioning of every sample ``[B, D_c]`` (label embedding or a/v prototype)."""
        if self.config.conditioning == "text":
            return class_embeddings[batch.targets]
        inputs = self._inputs(batch)
        means = []
        for m in ("audio", "video"):
            x = inputs[m]
            w = x.mask.unsqueeze(-1).to(x.values.dtype)
            means.append((x.values * w).sum(1) / w.sum(1).clamp(min=1))
        feats = torch.cat(means, dim=1).detach()  # [B, D_a + D_v]
        if self.training:
            self.proto_sum.index_add_(0, batch.labels, feats)
            self.proto_count.index_add_(0, batch.labels, torch.ones_like(batch.labels, dtype=feats.dtype))
        return self.proto_sum[batch.labels] / self.proto_count[batch.labels].clamp(min=1).unsqueeze(-1)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """``L_ce`` (real + generated novel features) + ``L_diff,w`` for one batch.

        Args:
            batch: padded sequences with masks/times, ``labels [B]`` (global) and ``targets [B]``.
            class_embeddings: ``[C_train, D_w]`` label embeddings of the phase's training classes.

        Returns:
            ``{"loss", "loss_terms": {"ce", "diffusion" (or "critic", "generator")[, "ce_generated"]}}``.
        """
        c = self.config
        c_o = self.embed(batch)[0]  # [B, d_out]
        cond = self._condition(batch, class_embeddings)  # [B, D_c]
        rows = self._rows(batch.labels)
        terms = {"ce": F.cross_entropy(self._logits(c_o), rows)}
        x0 = c_o.detach() if c.detach_output else c_o
        novel = torch.isin(batch.labels, self.novel_.to(batch.labels.device))
        if c.generator == "diffusion":
            terms["diffusion"] = self.net.ddpm.loss(self.net.eps_model, x0, cond)  # Eq. 4.8
        else:  # Table 4.4: conditional WGAN-GP on c_o of every real sample (critic and generator in one step)
            terms["critic"], terms["generator"] = wgan_gp_losses(
                self.net.gan_d, x0, self.net.gan_generate(cond), cond, c.gan_gp_weight
            )
        if c.generate and bool(novel.any()):
            fake = self.generate(cond[novel])  # one synthetic c_o per real novel sample, with gradients
            terms["ce_generated"] = F.cross_entropy(self._logits(fake), rows[novel])
        return {"loss": torch.stack(list(terms.values())).sum(), "loss_terms": terms}

    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        """Synthetic fused features ``[N, d_out]`` for conditioning rows ``[N, D_c]`` (one batched
        reverse chain, or one generator pass for ``generator="wgan"``). Gradients flow through
        the chain (as published: the CE on generated features also trains epsilon_theta)."""
        if self.config.generator == "wgan":
            return self.net.gan_generate(cond)
        return self.net.ddpm.sample(self.net.eps_model, cond, self.config.dim_out,
                                    final_noise=self.config.legacy_final_step_noise)  # fmt: skip

    def after_step(self, batch: Batch, class_embeddings: torch.Tensor) -> None:
        """No published extra pass for AV-Diff (TCaF's legacy integer-time pass does not apply);
        ``batch`` ``[B, T, D]`` sequences, ``class_embeddings`` ``[C_train, D_w]``."""

    def embed(self, batch: Batch, return_attention: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``c_o`` ``[B, d_out]`` (and no attention maps)."""
        return self.net(self._inputs(batch)), []

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` softmax probabilities of CL_net over the stage's classes (0 elsewhere);
        ``class_embeddings`` ``[C, D_w]`` only sizes the output."""
        c_o = self.embed(batch)[0]
        probs = torch.softmax(self._logits(c_o), dim=1)
        if self.classes_ is None:
            return probs[:, : class_embeddings.shape[0]]
        out = probs.new_zeros(probs.shape[0], class_embeddings.shape[0])
        out[:, self.classes_] = probs
        return out
