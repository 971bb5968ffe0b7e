"""Seed-batched training (``train.seed_batched: true``): the seeds of ``train.seeds`` trained in one
process as one stacked model, each seed with exactly the results of its separate run.

Design (bit-for-bit equal to separate runs by construction; a test checks results, histories and
checkpoints):

* every seed keeps its own :class:`~lowshot.recipes.gzsl_trainer.MethodTrainer`, built as a
  separate run builds it (``seed_everything(seed + 1000 * stage)``, then the method): own
  parameters, BatchNorm buffers, numpy batch sampler, optimiser (fused Adam) and
  ReduceLROnPlateau scheduler, so per-seed LR drops, checkpoints and resume are those of a
  separate run (a checkpoint of one can be resumed by the other);
* one training step runs the method's own ``training_loss`` once, under :func:`torch.vmap` over
  the seeds' batches, on a copy of the method in which every block of Linear / BatchNorm / ReLU /
  dropout layers (:class:`~lowshot.utils.seed_streams.SeedModule`) runs each seed's own block on
  the seed's slice, on the seed's RNG stream: vmap's batched ``baddbmm`` and BatchNorm rules
  round differently from a separate run's ``addmm`` / BatchNorm, and the published
  architectures' Linear -> BatchNorm biases turn such rounding into LR-sized Adam steps.
  Gradients, running statistics and dropout draws thus land in each seed's own tensors and
  streams; the losses and other element-wise work run batched. A method with weights outside
  such blocks is refused;
* randomness: each seed keeps its own torch RNG state (:mod:`lowshot.utils.seed_streams`), and the
  step runs with ``randomness="error"``, so a random op outside those blocks fails loudly instead
  of sharing one stream between the seeds;
* the protocol (:func:`~lowshot.protocols.gzsl.fit_seed_batched`) runs each seed's selection and
  stage 2 (``best_epoch + 1`` epochs) as its own; a seed whose stage ends earlier leaves the batch
  (as does a seed resumed one epoch behind, until it has caught up).

Only methods with ``seed_batching = True`` (ClipClap, ALE, SJE, DEVISE) are accepted, not under
torchrun. AVCA is not: its in-batch negatives (``theta[neg]``) and the other uses of the same
embeddings accumulate their gradients in another order under vmap (1e-7 differences from the
first step, which training amplifies), and vmap refuses ``sample_negatives``' data-dependent branch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import fields

import numpy as np
import torch

from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet
from lowshot.errors import ConfigError
from lowshot.methods.base import GZSLMethod
from lowshot.recipes.gzsl_trainer import MethodTrainer, autocast
from lowshot.utils import distributed
from lowshot.utils.seed_streams import SeedStreams, seed_batched_copy


def check_seed_batching(method_cls: type[GZSLMethod], method: str) -> None:
    """Raise a ConfigError unless ``method`` can be trained seed-batched here."""
    if not method_cls.seed_batching:
        raise ConfigError(
            f"train.seed_batched: method '{method}' does not support seed-batched training "
            "(supported: clipclap, ale, sje, devise); set train.seed_batched=false"
        )
    if distributed.world_size() > 1:
        raise ConfigError("train.seed_batched is not supported under torchrun (one process per seed batch)")


class SeedTrainer:
    """One seed of a :class:`SeedBatch`: its :class:`MethodTrainer`, with torch's RNG state kept
    per seed (the :class:`~lowshot.protocols.gzsl.EpochTrainer` the seed's protocol sees)."""

    def __init__(self, trainer: MethodTrainer, batch: SeedBatch, index: int) -> None:
        self.trainer, self.batch, self.index = trainer, batch, index

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """This seed alone through the batched step."""
        return self.batch.train_epochs(epoch, [self.index])[0]

    def scores(self, features: FeatureSet) -> np.ndarray:
        """``[N, C]`` evaluation scores (:meth:`MethodTrainer.scores`)."""
        return self.trainer.scores(features)

    def step_scheduler(self, metric: float) -> bool:
        """This seed's plateau scheduler (:meth:`MethodTrainer.step_scheduler`)."""
        return self.trainer.step_scheduler(metric)

    def drop_lr(self) -> None:
        """This seed's LR drop (:meth:`MethodTrainer.drop_lr`)."""
        self.trainer.drop_lr()

    def model_state(self) -> dict[str, torch.Tensor]:
        """This seed's weights (:meth:`MethodTrainer.model_state`)."""
        return self.trainer.model_state()

    def state(self) -> dict[str, torch.Tensor]:
        """:meth:`MethodTrainer.state` with this seed's torch RNG state."""
        with self.batch.streams.use(self.index):
            return self.trainer.state()

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """:meth:`MethodTrainer.load_state` into this seed (its torch RNG state included)."""
        with self.batch.streams.use(self.index):
            self.trainer.load_state(state)


class SeedBatch:
    """Several seeds of one method and stage trained together (a :class:`~lowshot.protocols.gzsl.SeedBatchTrainer`).

    Args:
        make_trainer: ``seed -> MethodTrainer`` of this stage, seeding torch's global RNG as a
            separate run does before building the method.
        seeds: the seeds, in order.
        device: the training device.
    """

    def __init__(self, make_trainer: Callable[[int], MethodTrainer], seeds: Sequence[int], device: torch.device) -> None:
        self.streams = SeedStreams(device)
        self.device = device
        self.trainers: list[SeedTrainer] = []
        for k, seed in enumerate(seeds):
            outer = torch.get_rng_state()
            trainer = make_trainer(seed)
            self.streams.capture()  # where the separate run's training starts drawing
            torch.set_rng_state(outer)
            self.trainers.append(SeedTrainer(trainer, self, k))
        # one seed's loss whose layer blocks run every seed's own block (SeedModule)
        methods = [t.trainer.method for t in self.trainers]
        self.template = seed_batched_copy(copy.deepcopy(methods[0]), methods).train()
        left = [n for n, _ in [*self.template.named_parameters(), *self.template.named_buffers()]]
        if left:
            raise ConfigError(
                f"train.seed_batched: {type(methods[0]).__name__} has weights outside Linear / BatchNorm / "
                f"dropout blocks ({', '.join(left)}), which seed batching does not run per seed"
            )

    def _loss(self, tensors: dict, rest: dict, emb: torch.Tensor) -> dict:
        """One seed's ``training_loss`` (called under vmap over the seeds)."""
        return self.template.training_loss(Batch(**tensors, **rest), emb)

    def train_epochs(self, epoch: int, seeds: Sequence[int]) -> list[dict[str, float]]:
        """Train epoch ``epoch`` of the seeds ``seeds`` (indices into :attr:`trainers`) together, each
        with its own batches, dropout masks, optimiser step and hooks, in a separate run's order.

        Returns:
            Each seed's loss terms averaged over the epoch, in the order of ``seeds``.
        """
        trainers = [self.trainers[i].trainer for i in seeds]
        cfg = trainers[0].config
        self.template.on_epoch_start(epoch)
        for t in trainers:
            t.method.train()
            t.method.on_epoch_start(epoch)
        n_batches = trainers[0].method.batches_per_epoch(cfg.n_batches)
        batches = [t.method.epoch_indices(t.train_set.labels, n_batches, cfg.batch_size, cfg.sampler, t.rng) for t in trainers]
        emb = trainers[0].train_embeddings
        # the class embeddings go in per seed too (expanded, no copy), so a random op on them
        # (ALE/SJE/DEVISE's dropout) is drawn per seed
        emb_s = emb.expand(len(seeds), *emb.shape)
        step = torch.vmap(self._loss, in_dims=(0, None, 0), randomness="error")
        sums: list[dict[str, torch.Tensor]] = [{} for _ in seeds]
        for b in range(n_batches):
            per_seed = [
                t.method.collate(t.train_set, idx[b], t.targets[idx[b]], True, t.rng).to(self.device)
                for t, idx in zip(trainers, batches)
            ]
            tensors, rest = _stacked_fields(per_seed)
            with self.streams.batched(seeds), autocast(cfg.precision, self.device):
                out = step(tensors, rest, emb_s)
            for t in trainers:
                t.optimizer.zero_grad(set_to_none=True)
            out["loss"].sum().backward()  # each seed's gradient reaches its own parameters
            for k, i in enumerate(seeds):
                trainers[k].optimizer.step()
                with self.streams.use(i):
                    trainers[k].method.after_step(per_seed[k], emb)
                for name, v in {**out["loss_terms"], "loss": out["loss"]}.items():
                    sums[k][name] = sums[k].get(name, 0.0) + v[k].detach()
        for t in trainers:
            t.method.on_epoch_end(t.benchmark, t.stage)
        return [{name: float(v) / n_batches for name, v in s.items()} for s in sums]


def _stacked_fields(batches: Sequence[Batch]) -> tuple[dict[str, torch.Tensor], dict[str, None]]:
    """The seeds' batches as ``[S, B, ...]`` tensor fields, and the fields that are None in all."""
    tensors, rest = {}, {}
    for f in fields(Batch):
        values = [getattr(b, f.name) for b in batches]
        if all(v is None for v in values):
            rest[f.name] = None
        else:
            tensors[f.name] = torch.stack(values)
    return tensors, rest


__all__ = ["SeedBatch", "SeedTrainer", "check_seed_batching"]
