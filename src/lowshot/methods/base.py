"""The method contract (:class:`Method`) and the audio-visual GZSL/GFSL family (:class:`GZSLMethod`).

A method is an ``nn.Module`` that composes a model with its loss terms. Every registered
method subclasses :class:`Method`: it names its hyperparameter schema (``Config``) and its
``family``, and offers the training hooks (``training_loss``, ``param_groups``,
``build_optimizer``, ``on_epoch_start``, ``after_step``); its state is its ``state_dict``.
Scoring is family-specific: :meth:`GZSLMethod.class_scores` here,
:meth:`~lowshot.methods.adverbs.base.AdverbMethod.action_scores` for video adverbs. A recipe
builds only methods of its own family (:func:`method_of_family`).

The GZSL runner only calls :meth:`GZSLMethod.collate`, :meth:`GZSLMethod.training_loss`,
:meth:`GZSLMethod.class_scores`, the batch hook :meth:`GZSLMethod.epoch_indices` (which samples
form each batch) and the two epoch hooks :meth:`GZSLMethod.batches_per_epoch`
and :meth:`GZSLMethod.on_epoch_end` (a two-phase method, e.g. a generative one that fits a
classifier on synthesised features after each epoch, uses the latter); it never looks inside.

Score convention: ``class_scores`` returns *higher is better* scores. Distance-based methods
return ``-distance`` and set ``score_kind = "distance"``; classifier methods return
probabilities and set ``score_kind = "probability"``. Calibrated stacking then subtracts
beta from seen-class scores in both cases, which is exactly "add beta to seen distances"
or "subtract beta from seen probabilities" of the published code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypedDict, TypeVar

import numpy as np
import torch
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark, SequenceStore
from lowshot.data.av.sampling import epoch_indices
from lowshot.errors import ConfigError

__all__ = [
    "GZSLMethod",
    "AdamSettings",
    "InputSpec",
    "Method",
    "OptimizerSettings",
    "dense_rows",
    "label_tensors",
    "method_of_family",
]

Family = Literal["av_gzsl", "adverbs", "comm"]
M = TypeVar("M", bound="Method")
#: how an error message names each family
FAMILY_NAMES: dict[str, str] = {
    "av_gzsl": "an audio-visual GZSL (av_gzsl)",
    "adverbs": "a video-adverb (adverbs)",
    "comm": "a communication (comm)",
}

#: the LR scheduler of a stage: stepped once per stage-1 epoch with validation HM, or None
Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau


@dataclass(frozen=True)
class InputSpec:
    """What a method needs to know about its inputs to build itself.

    Attributes:
        audio_dim / video_dim: feature dimensions ``D_a`` / ``D_v``.
        text_dim: class-label embedding dimension ``D_w``.
        audio_step / video_step: seconds per time step for temporal features, else None.
        audio_kind / video_kind: feature family, e.g. ``"vggish"``, ``"c3d"``, ``"selavi"``,
            ``"clap"``, ``"clip"`` (drives published input normalisation), or ``"generic"``.
    """

    audio_dim: int
    video_dim: int
    text_dim: int
    audio_step: float | None = None
    video_step: float | None = None
    audio_kind: str = "generic"
    video_kind: str = "generic"


def label_tensors(features: FeatureSet, idx: np.ndarray, targets: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels ``[B]``, targets ``[B]``) as int64 tensors; targets are -1 at evaluation."""
    labels = torch.from_numpy(features.labels[idx].astype(np.int64))
    if targets is None:
        return labels, torch.full_like(labels, -1)
    return labels, torch.from_numpy(targets.astype(np.int64))


def dense_rows(features: np.ndarray | SequenceStore, idx: np.ndarray) -> torch.Tensor:
    """Rows ``idx`` of dense features as float32 ``[B, D]``."""
    if isinstance(features, SequenceStore):
        raise TypeError("this method needs dense (averaged or vector) features, got temporal ones")
    return torch.from_numpy(np.asarray(features[idx], dtype=np.float32))


class AdamSettings(Protocol):
    """The optimiser settings every recipe's ``TrainConfig`` has."""

    lr: float
    weight_decay: float


class OptimizerSettings(AdamSettings, Protocol):
    """What the default optimiser hook reads from the recipe's training settings (``TrainConfig``)."""

    lr_scheduler: bool
    lr_factor: float
    lr_patience: int


class LossResult(TypedDict):
    """What ``training_loss`` returns in every family.

    ``loss`` is the scalar tensor the optimiser steps on; ``loss_terms`` are its named parts
    (scalar tensors or floats, logged per epoch; the ablated ones are left out of ``loss``).
    """

    loss: torch.Tensor
    loss_terms: dict[str, torch.Tensor | float]


class Method(nn.Module):
    """The contract every registered method fulfils (one per family subclass, then one per method).

    Class attributes: ``Config`` (the hyperparameter schema, a frozen dataclass validated
    strictly from the config's ``model`` block) and ``family`` (which recipe can run it).
    The ``*context`` of the hooks is family-defined: GZSL passes the training-class
    embeddings ``[C_train, D_w]``, video adverbs a ``torch.Generator`` (negatives) to
    ``training_loss`` and ``(optimizer, lr)`` to ``on_epoch_start``.
    """

    #: the method's hyperparameter schema (a frozen dataclass); subclasses set it
    Config: ClassVar[type]
    #: the recipe family that builds it (``av_gzsl``, ``adverbs``, ``comm``); family base classes set it
    family: ClassVar[Family]

    def training_loss(self, batch: Any, *context: Any) -> LossResult:
        """The loss of one batch: ``{"loss": scalar tensor, "loss_terms": {name: scalar}}``."""
        raise NotImplementedError

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; by default one group ``all`` of the trainable parameters."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "name": "all"}]

    def build_optimizer(self, train: OptimizerSettings) -> tuple[torch.optim.Optimizer, Scheduler | None]:
        """Optimiser and LR scheduler of one training stage (the trainer calls it once per stage).

        Default: Adam over :meth:`param_groups` (fused: one pass over the parameters instead
        of ~10, a third of a ClipClap step on CPU) with ``lr`` and ``weight_decay``, and, when
        ``lr_scheduler`` is on, ``ReduceLROnPlateau`` on the validation metric (mode max,
        ``lr_factor``, ``lr_patience``). Override for another optimiser; a scheduler must
        accept ``step(metric)`` and reduce the LR in place.
        """
        optimizer = torch.optim.Adam(self.param_groups(), lr=train.lr, weight_decay=train.weight_decay, fused=True)
        if not train.lr_scheduler:
            return optimizer, None
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=train.lr_factor, patience=train.lr_patience
        )
        return optimizer, scheduler

    def on_epoch_start(self, epoch: int, *context: Any) -> None:
        """Hook for epoch-dependent behaviour (schedules); default: nothing."""

    def after_step(self, batch: Any, *context: Any) -> None:
        """Hook after each optimiser step, in training mode, with ``training_loss``'s arguments; default: nothing."""


def method_of_family(name: str, base: type[M], recipe: str) -> type[M]:
    """The method class registered as ``name``, checked to be of ``base``'s family.

    Args:
        name: registered method name.
        base: the family base class the recipe runs (``GZSLMethod``, ``AdverbMethod``).
        recipe: the recipe's name, for the error message.

    Raises:
        ConfigError: unknown name (with a did-you-mean), or a method of another family.
    """
    cls = METHODS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"'{name}' is registered as a method but is not a lowshot Method")
    if not issubclass(cls, base):
        raise ConfigError(
            f"'{name}' is {FAMILY_NAMES[cls.family]} method; the {recipe} recipe needs "
            f"{FAMILY_NAMES[base.family]} method"
        )
    return cls


class GZSLMethod(Method):
    """Base class of audio-visual (G)ZSL / GFSL methods, built as ``cls(config, InputSpec)``.

    Subclasses set ``score_kind`` and implement :meth:`training_loss` and
    :meth:`class_scores`; temporal methods also override :meth:`collate`. The hook context
    is the training-class embeddings ``[C_train, D_w]``.
    """

    family: ClassVar[Family] = "av_gzsl"
    score_kind: ClassVar[Literal["distance", "probability"]] = "distance"
    #: ``train.seed_batched`` is allowed: ``training_loss`` runs under ``torch.vmap`` and draws
    #: randomness only through ``nn.Dropout`` or :func:`lowshot.utils.seed_streams.random_op`
    #: (:mod:`lowshot.recipes.gzsl_seed_batched`)
    seed_batching: ClassVar[bool] = False

    def __init__(self, config: object, spec: InputSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec

    def collate(
        self,
        features: FeatureSet,
        idx: np.ndarray,
        targets: np.ndarray | None,
        train: bool,
        generator: np.random.Generator | None = None,
    ) -> Batch:
        """Build a batch of samples ``idx`` (dense features; override for sequences).

        Args:
            features: the split to draw from.
            idx: ``[B]`` sample indices into ``features``.
            targets: ``[B]`` training-class indices, or None at evaluation.
            train: training (random crops etc.) or evaluation (deterministic).
            generator: numpy RNG for stochastic collation.
        """
        labels, tgt = label_tensors(features, idx, targets)
        return Batch(dense_rows(features.audio, idx), dense_rows(features.video, idx), labels, tgt)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Loss of one batch.

        Args:
            batch: with ``targets`` indexing rows of ``class_embeddings``.
            class_embeddings: ``[C_train, D_w]`` embeddings of the training classes.

        Returns:
            ``{"loss": scalar, "loss_terms": {<term>: scalar, ...}}``.
        """
        raise NotImplementedError

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, C]`` against ``class_embeddings`` ``[C, D_w]`` (higher is better)."""
        raise NotImplementedError

    def epoch_indices(
        self, labels: np.ndarray, n_batches: int, batch_size: int, sampler: str, rng: np.random.Generator
    ) -> np.ndarray:
        """``[n_batches, B']`` training-sample indices of one epoch; default: ``sampler``'s draw
        (:func:`~lowshot.data.av.sampling.epoch_indices`) with ``B' = batch_size``.

        Args:
            labels: ``[N]`` class of each training sample.
            sampler: ``train.sampler`` (``class_balanced`` or ``uniform``).
            rng: the trainer's sampler RNG.
        """
        return epoch_indices(labels, n_batches, batch_size, sampler, rng)

    def batches_per_epoch(self, n_batches: int) -> int:
        """How many of the configured ``n_batches`` one epoch trains on; default: all of them."""
        return n_batches

    def on_epoch_end(self, benchmark: GZSLBenchmark, stage: int) -> None:
        """Hook after each training epoch, before the epoch's model is scored; default: nothing.

        A two-phase method fits what scoring needs here (e.g. a classifier on synthesised
        unseen-class features). It may read the stage's training data and class lists
        (``benchmark.stage_train(stage)``, ``benchmark.train_classes(stage)``) and the classes
        the stage evaluates (``benchmark.stage_eval(stage)``); a default method never reads
        evaluation samples here, and any state it fits belongs in its ``state_dict``.

        Args:
            benchmark: the dataset.
            stage: 1 or 2.
        """
