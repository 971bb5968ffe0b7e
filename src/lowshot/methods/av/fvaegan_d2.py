"""f-VAEGAN-D2: feature-generating VAE-GAN on concatenated audio-visual input.

Reference: Y. Xian, S. Sharma, B. Schiele, Z. Akata, "f-VAEGAN-D2: A Feature Generating
Framework for Any-Shot Learning", CVPR 2019; adapted to audio-visual GZSL in the thesis
§2.4.3 (Table 2.2, main features only) with L2-normalised concat[video, audio] as the feature.

Training (each batch, :meth:`FVAEGAND2.training_loss`): the conditional WGAN critic ``D`` is
updated on real vs generated features with the gradient penalty (``lambda1``); every
``critic_iter``-th batch the encoder ``E`` and generator ``G`` are updated too, on
``gan_weight * (-D(G(z_E, w)) - D(G(z, w))) + vae_weight * (recon(G(z_E, w), x) + KL)``, the
VAE term averaged over the batch (per sample, as in Xian et al.'s loss) and ``gan_weight`` 10
(their gamma). E, G and D work on the L2-normalised concat scaled by ``sqrt(D_x)``, i.e. with a
per-dimension RMS of 1, the scale their initialisation and the N(0, 1) noise assume; the
generated features are L2-normalised again before the classifier, so the scale changes no
direction the classifier sees.
After each epoch (:meth:`FVAEGAND2.on_epoch_end`), ``syn_num`` features per unseen class of
the stage are generated in one batched pass and a softmax classifier is fitted on the real
training features + the generated ones; scores are its probabilities over all classes
(``score_kind = "probability"``, so calibrated stacking subtracts beta from seen classes).

Differences from the published code (ExplainableML/AVCA-GZSL @ 2711aeb,
``vae_gan_d2_xu_fsl.py``, ``src/model_gen.py``, ``src/classifier_fsl.py``; reference §6.8):

* **loss scale** (the published weighting switches the VAE half off): the published code trains
  E, G and D on the unit-norm 1024-d (or 4224-d) concat, whose per-dimension values
  (~1/sqrt(D_x)) are ~10x below what a default-initialised generator fed N(0, 1) noise
  outputs, with the VAE loss **summed** over the batch and ``gan_weight`` 1e5. On the
  synthetic UCF-cls data a VAE alone on that scale does not fit even the seen class means
  in 150 steps (centred cosine of generated vs real seen class means 0.00; scaled: 0.47), and
  with gan_weight 1e5 the critic's gradient swamps the reconstruction whatever the scale
  (0.00), so the generator never learns class-conditional features (docs/benchmarks.md).
  Here: features scaled to unit per-dimension RMS, the VAE loss per sample, ``gan_weight``
  10 (Xian et al.'s gamma). Published: ``model.legacy_loss_scale=true model.gan_weight=1e5``
  (the flag restores the unit-norm scale and the summed VAE loss);
* the published inner loop **breaks after the first batch**, so one "epoch" is one critic and
  one generator step. Here an epoch trains ``n_batches`` batches; published:
  ``model.legacy_one_batch_per_epoch=true``;
* the published stage 2 evaluates on the **test set** after every epoch and reports the best
  epoch, and its softmax classifier keeps its best epoch on the evaluated split (test in
  stage 2). Here the epoch is selected on stage-1 validation and transferred (the two-stage
  protocol), and the classifier trains its ``classifier_epochs`` without looking at
  evaluation data. ``model.legacy_select_on_test=true`` restores the classifier's
  best-epoch-on-the-evaluated-split selection (results are then **test-selected**, and the
  method logs a warning); the GAN-epoch selection on test is not reproduced (the protocol
  never selects on test);
* the published code has no calibrated stacking (beta 0: ``protocol.beta_grid=[0, 0, 1]``);
  here beta is searched on validation like every other method, over probabilities;
* ZSL is the protocol's (the GZSL classifier restricted to unseen classes); the published
  code trains a second classifier on generated unseen features only for ZSL;
* critic and generator are updated from one combined loss in one optimiser step (the
  generator term sees the critic's weights detached), not in two sequential steps; the
  second, unconditional critic ``D2`` of the published code is left out: its output never
  reaches the generator's loss (no unlabelled unseen data is used), so it cannot change results;
* the generator's output is linear with a squared-error reconstruction: the scaled features
  leave ``[0, 1]``. The published sigmoid + binary cross-entropy needs features in ``[0, 1]``:
  with ``legacy_loss_scale``, ``model.generator_output=auto`` (default) picks it for
  non-negative features (the released ones) and the linear output for features with
  negative values (e.g. the synthetic SeLaVi-like ones), which a sigmoid cannot produce;
  ``sigmoid`` forces it and then refuses such features;
* ``model.input_norm=per_family`` (default) de-quantises VGGish and L2-normalises C3D, then
  L2-normalises each modality before the concat (equal shares; SeLaVi only gets the latter):
  the published code ran on SeLaVi only; on the cls features the raw uint8 VGGish values
  would make every L2-normalised concat nearly the same vector (``none`` keeps the raw concat);
* concat order is [video, audio] (published [audio, video]; irrelevant to the results);
* generation is one batched pass for all unseen classes (published: a loop over classes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.errors import ConfigError, DataError
from lowshot.layers.input_norm import InputNorm
from lowshot.methods.base import GZSLMethod, InputSpec, LossResult, dense_rows
from lowshot.models.av.compat import joint_input
from lowshot.models.av.fvaegan_d2 import (
    Critic,
    Encoder,
    FVAEGANNetConfig,
    Generator,
    SoftmaxHead,
    gradient_penalty,
)
from lowshot.protocols.calibration import gzsl_scores_over_grid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FVAEGANConfig(FVAEGANNetConfig):
    """Hyperparameters (published values: ``src/args_gen.py`` and the run scripts, reference §4.2).

    Attributes:
        gan_weight: weight of the generator's WGAN term (Xian et al.'s gamma 10; published 1e5
            beside the summed VAE loss of ``legacy_loss_scale``).
        vae_weight: weight of the VAE term (published 1).
        lambda1: gradient-penalty weight (published 10).
        critic_iter: the generator is updated every ``critic_iter``-th batch (published 5).
        adam_beta1: Adam ``beta1`` of the GAN and of the classifier (published 0.5).
        syn_num: generated features per unseen class (run scripts: 1000).
        classifier_epochs: epochs of the softmax classifier (published 30).
        classifier_lr: its learning rate (published 1e-3).
        classifier_batch_size: its batch size (published: ``syn_num``).
        input_norm: per-modality normalisation before the L2-normalised concat
            (:mod:`lowshot.layers.input_norm`): ``per_family`` de-quantises VGGish and
            L2-normalises C3D (SeLaVi unchanged, so the published main-feature input is
            unchanged); ``none`` concatenates the raw features.
        legacy_loss_scale: the published scale: E, G, D on the unit-norm concat and the VAE
            loss summed over the batch (default: features scaled by ``sqrt(D_x)``, VAE loss
            averaged per sample).
        legacy_one_batch_per_epoch: one batch per epoch, as published (reference §6.8).
        legacy_select_on_test: the classifier keeps its epoch of best HM on the evaluated
            split (test in stage 2), as published; results are test-selected.
    """

    gan_weight: float = 10.0
    vae_weight: float = 1.0
    lambda1: float = 10.0
    critic_iter: int = 5
    adam_beta1: float = 0.5
    syn_num: int = 1000
    classifier_epochs: int = 30
    classifier_lr: float = 1e-3
    classifier_batch_size: int = 1000
    input_norm: InputNorm = "per_family"
    legacy_loss_scale: bool = False
    legacy_one_batch_per_epoch: bool = False
    legacy_select_on_test: bool = False

    def __post_init__(self) -> None:
        for name in ("latent_dim", "encoder_hidden", "generator_hidden", "critic_hidden", "critic_iter",
                     "syn_num", "classifier_epochs", "classifier_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gan_weight", "vae_weight", "lambda1"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.adam_beta1 < 1.0:
            raise ConfigError(f"model.adam_beta1 must be in [0, 1), got {self.adam_beta1}")
        if self.generator_output not in ("auto", "sigmoid", "linear"):
            raise ConfigError(
                f"model.generator_output must be 'auto', 'sigmoid' or 'linear', got '{self.generator_output}'"
            )
        if self.generator_output == "sigmoid" and not self.legacy_loss_scale:
            raise ConfigError(
                "model.generator_output=sigmoid needs model.legacy_loss_scale=true (the features scaled to "
                "unit per-dimension RMS leave [0, 1])"
            )
        if self.input_norm not in ("per_family", "none"):
            raise ConfigError(f"model.input_norm must be 'per_family' or 'none', got '{self.input_norm}'")
        if self.classifier_lr <= 0:
            raise ConfigError(f"model.classifier_lr must be positive, got {self.classifier_lr}")


@METHODS.register("fvaegan_d2")
class FVAEGAND2(GZSLMethod):
    """Conditional VAE + WGAN-GP feature generator and a softmax classifier on real + generated features."""

    Config = FVAEGANConfig
    score_kind = "probability"

    def __init__(self, config: FVAEGANConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        x_dim = spec.audio_dim + spec.video_dim
        self.encoder = Encoder(x_dim, spec.text_dim, config)
        self.generator = Generator(x_dim, spec.text_dim, config)
        self.critic = Critic(x_dim, spec.text_dim, config)
        self.head = SoftmaxHead(x_dim)
        self.gan_scale = 1.0 if config.legacy_loss_scale else float(x_dim) ** 0.5
        if config.generator_output == "auto":  # linear unless the published scale (decided on data)
            self.generator.sigmoid = config.legacy_loss_scale
        self._step = 0
        if config.legacy_select_on_test:
            log.warning("fvaegan_d2: legacy_select_on_test=true; the classifier selects its epoch on "
                        "evaluation data, so stage-2 results are TEST-SELECTED")

    # ------------------------------------------------------------------ inputs
    def features(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """``[B, D_a]``, ``[B, D_v]`` -> the L2-normalised concat ``[B, D_x]`` the GAN and the classifier see."""
        return joint_input(audio, video, True, self.config.input_norm, (self.spec.audio_kind, self.spec.video_kind))

    def dense_features(self, features: FeatureSet, device: torch.device) -> torch.Tensor:
        """All samples of ``features`` through :meth:`features`: ``[N, D_x]`` on ``device``."""
        idx = np.arange(len(features))
        return self.features(dense_rows(features.audio, idx).to(device), dense_rows(features.video, idx).to(device))

    # ------------------------------------------------------------------ training
    def param_groups(self) -> list[dict]:
        """One group of E, G and D with Adam betas ``(adam_beta1, 0.999)`` (the classifier head is fitted apart)."""
        return [{"params": list(self.parameters()), "name": "all", "betas": (self.config.adam_beta1, 0.999)}]

    def batches_per_epoch(self, n_batches: int) -> int:
        """``n_batches``, or 1 with ``legacy_one_batch_per_epoch``."""
        return 1 if self.config.legacy_one_batch_per_epoch else n_batches

    def on_epoch_start(self, epoch: int, *context: object) -> None:
        """Restart the critic-iteration count (the generator trains on batch 0, critic_iter, ...)."""
        self._step = 0

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Critic loss on every batch, plus the generator/encoder loss every ``critic_iter``-th batch.

        Args:
            batch: ``audio`` ``[B, D_a]``, ``video`` ``[B, D_v]``, ``targets`` ``[B]``.
            class_embeddings: ``[C_train, D_w]``.

        Returns:
            ``loss`` (critic + generator terms; each part's gradient reaches only its own
            networks) and the terms ``wasserstein`` (``D(real) - D(fake)``) and ``gp``.
        """
        cfg = self.config
        x = self.features(batch.audio, batch.video) * self.gan_scale  # [B, D_x], per-dim RMS 1 (default)
        w = class_embeddings[batch.targets]  # [B, D_w]
        if self._step == 0:
            self._check_output(x)
        train_generator = self._step % cfg.critic_iter == 0
        self._step += 1
        noise = torch.randn(x.shape[0], cfg.latent_dim, device=x.device)
        with torch.set_grad_enabled(train_generator):
            fake = self.generator(noise, w)
        d_real = self.critic(x, w).mean()
        d_fake = self.critic(fake.detach(), w).mean()
        gp = gradient_penalty(self.critic, x, fake.detach(), w, cfg.lambda1)
        loss = d_fake - d_real + gp
        if train_generator:
            mean, log_var = self.encoder(x, w)
            recon = self.generator(mean + torch.randn_like(mean) * torch.exp(0.5 * log_var), w)
            vae = self._reconstruction(recon, x) - 0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
            if not cfg.legacy_loss_scale:
                vae = vae / x.shape[0]  # per sample
            frozen = {k: v.detach() for k, v in self.critic.named_parameters()}
            g_gan = -(functional_call(self.critic, frozen, (recon, w)).mean()
                      + functional_call(self.critic, frozen, (fake, w)).mean())
            loss = loss + cfg.gan_weight * g_gan + cfg.vae_weight * vae
        return {"loss": loss, "loss_terms": {"wasserstein": (d_real - d_fake).detach(), "gp": gp.detach()}}

    def _reconstruction(self, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Summed reconstruction error of ``[B, D_x]`` features: BCE (sigmoid output) or squared error."""
        if self.generator.sigmoid:
            return F.binary_cross_entropy(recon, x, reduction="sum")
        return (recon - x).pow(2).sum()

    def _check_output(self, x: torch.Tensor) -> None:
        """On the first batch of an epoch: resolve ``generator_output=auto`` (sigmoid only for
        non-negative features at the published scale); refuse negative features for ``sigmoid``."""
        negative = bool((x < 0).any())
        if self.config.generator_output == "auto":
            sigmoid = self.config.legacy_loss_scale and not negative
            if self.generator.sigmoid != sigmoid:
                log.info("fvaegan_d2: %s generator output", "sigmoid" if sigmoid else "linear")
            self.generator.sigmoid = sigmoid
        elif negative and self.generator.sigmoid:
            raise DataError(
                "fvaegan_d2: the input features have negative values, which a sigmoid generator cannot "
                "produce (binary cross-entropy needs targets in [0, 1]); set model.generator_output=linear or auto"
            )

    # ------------------------------------------------------------------ classifier phase
    @torch.no_grad()
    def synthesise(self, classes: torch.Tensor, class_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``syn_num`` generated features per class, in one batched pass of the generator.

        Args:
            classes: ``[U]`` int64 global class indices.
            class_embeddings: ``[U, D_w]`` their label embeddings.

        Returns:
            Features ``[U * syn_num, D_x]`` and labels ``[U * syn_num]`` (class-major order).
        """
        n = self.config.syn_num
        w = class_embeddings.repeat_interleave(n, dim=0)
        noise = torch.randn(w.shape[0], self.config.latent_dim, device=w.device)
        return self.generator(noise, w), classes.repeat_interleave(n)

    def on_epoch_end(self, benchmark: GZSLBenchmark, stage: int) -> None:
        """Generate features for the stage's unseen classes and fit the softmax classifier.

        The classifier covers the stage's training classes (real features) and its unseen
        evaluation classes (generated features). Only with ``legacy_select_on_test`` are the
        evaluation samples read (to pick the classifier's epoch).
        """
        device = next(self.parameters()).device
        seen_set, unseen_set, seen_cls, unseen_cls = benchmark.stage_eval(stage)
        train = benchmark.stage_train(stage)
        emb = torch.as_tensor(np.asarray(benchmark.class_embeddings, np.float32), device=device)
        unseen = torch.as_tensor(unseen_cls, dtype=torch.int64, device=device)
        self.generator.eval()
        syn_x, syn_y = self.synthesise(unseen, emb[unseen])
        self.generator.train()
        x = torch.cat([self.dense_features(train, device), F.normalize(syn_x, dim=1)])
        labels = torch.cat([torch.as_tensor(train.labels, dtype=torch.int64, device=device), syn_y])
        classes = torch.unique(labels)  # sorted global indices [K]
        evaluated = None
        if self.config.legacy_select_on_test:
            evaluated = (FeatureSet.concat([seen_set, unseen_set]), seen_cls, unseen_cls)
        self._fit_head(x, torch.searchsorted(classes, labels), classes, benchmark.num_classes, evaluated)

    def _fit_head(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        classes: torch.Tensor,
        n_classes: int,
        evaluated: tuple[FeatureSet, np.ndarray, np.ndarray] | None,
    ) -> None:
        """Fit a linear softmax classifier ``[K, D_x]`` on ``x`` ``[N, D_x]`` with columns ``y`` ``[N]``.

        Adam (``classifier_lr``, betas ``(adam_beta1, 0.999)``), ``classifier_epochs`` passes
        over a fresh permutation in batches of ``classifier_batch_size``. With ``evaluated``
        (legacy), keep the epoch of best HM (beta 0) on that split.
        """
        cfg = self.config
        linear = torch.nn.Linear(x.shape[1], len(classes)).to(x.device)
        torch.nn.init.normal_(linear.weight, 0.0, 0.02)
        torch.nn.init.zeros_(linear.bias)
        opt = torch.optim.Adam(linear.parameters(), lr=cfg.classifier_lr, betas=(cfg.adam_beta1, 0.999))
        best = (-1.0, None)
        eval_x = self.dense_features(evaluated[0], x.device) if evaluated else None
        with torch.enable_grad():
            for _ in range(cfg.classifier_epochs):
                for idx in torch.randperm(len(x), device=x.device).split(cfg.classifier_batch_size):
                    loss = F.cross_entropy(linear(x[idx]), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                if evaluated is not None:
                    self.head.set(linear.weight, linear.bias, classes)
                    with torch.no_grad():
                        scores = self.head(eval_x, n_classes).cpu().numpy()
                    fs, seen_cls, unseen_cls = evaluated
                    hm = float(gzsl_scores_over_grid(scores, fs.labels, seen_cls, unseen_cls, np.zeros(1)).hm[0])
                    if hm > best[0]:
                        best = (hm, (linear.weight.detach().clone(), linear.bias.detach().clone()))
        weight, bias = best[1] if best[1] is not None else (linear.weight, linear.bias)
        self.head.set(weight, bias, classes)

    # ------------------------------------------------------------------ scoring
    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` classifier probabilities (0 for classes the classifier does not cover)."""
        if not self.head.fitted:
            raise RuntimeError("fvaegan_d2: no classifier fitted yet (on_epoch_end runs after each epoch)")
        return self.head(self.features(batch.audio, batch.video), class_embeddings.shape[0])
