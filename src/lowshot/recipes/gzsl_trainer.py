"""The training loop of the audio-visual GZSL methods (an :class:`EpochTrainer`).

One "epoch" is ``n_batches`` mini-batches of ``batch_size`` sample indices, drawn
class-balanced with replacement (a uniformly random training class, then a uniformly random
sample of it — the published sampler) or uniformly. Indices for the whole epoch are drawn
in one vectorised call; features are gathered per batch from the in-memory (or
memory-mapped) feature set, so no DataLoader workers or per-sample Python is involved.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.errors import ConfigError, DataError
from lowshot.methods.base import GZSLMethod
from lowshot.protocols.gzsl import scores_in_batches
from lowshot.recipes.gzsl_config import TrainConfig
from lowshot.utils import distributed
from lowshot.utils.io import pack_state, unpack_state


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The training-step context of ``train.precision``: nothing for fp32, bfloat16 autocast
    on ``device`` for bf16 (matmuls, linear layers and attention in bf16; losses, ``cdist``
    and other ops on autocast's fp32 list in fp32; parameters stay fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support")
    return torch.autocast(device.type, dtype=torch.bfloat16)


class MethodTrainer:
    """The method's optimiser and scheduler (:meth:`GZSLMethod.build_optimizer`; default fused
    Adam + optional ReduceLROnPlateau) around a :class:`GZSLMethod` for one stage.

    Args:
        method: a freshly initialised method (already seeded).
        benchmark: the dataset; the stage picks the training set and classes.
        stage: 1 or 2.
        config: optimisation settings.
        seed: seeds the batch sampler (and torch's global RNG, for dropout).
        device: where the method runs.
    """

    def __init__(
        self,
        method: GZSLMethod,
        benchmark: GZSLBenchmark,
        stage: int,
        config: TrainConfig,
        seed: int,
        device: torch.device,
    ) -> None:
        self.method = method.to(device)
        self.benchmark = benchmark
        self.stage = stage
        self.config = config
        self.device = device
        self.train_set: FeatureSet = benchmark.stage_train(stage)
        classes = benchmark.train_classes(stage)
        pos = np.clip(np.searchsorted(classes, self.train_set.labels), 0, len(classes) - 1)
        if not np.all(classes[pos] == self.train_set.labels):
            raise DataError(f"{benchmark.name}: stage-{stage} training samples outside the training class list")
        self.targets = pos
        embeddings = torch.as_tensor(np.asarray(benchmark.class_embeddings, np.float32), device=device)
        self.class_embeddings = embeddings  # [C, D_w]
        self.train_embeddings = embeddings[torch.as_tensor(classes, device=device)]  # [C_train, D_w]
        self.loss_fn = distributed.training_loss_fn(self.method, device)  # DDP under torchrun
        self.optimizer, self.scheduler = self.method.build_optimizer(config)
        self.rng = np.random.default_rng([seed, stage])

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch of sampled mini-batches (``on_epoch_start``, step, ``after_step``, ``on_epoch_end``).

        The epoch has ``method.batches_per_epoch(n_batches)`` batches, their sample indices drawn
        by ``method.epoch_indices`` (the ``train.sampler`` draw unless a method composes its own).

        Returns:
            Each loss term of ``training_loss`` averaged over the batches that report it (a term
            only some batches have, such as AV-Diff's ``ce_generated`` on novel batches, is the
            mean over those).
        """
        cfg = self.config
        self.method.train()
        self.method.on_epoch_start(epoch)
        n_batches = self.method.batches_per_epoch(cfg.n_batches)
        batches = self.method.epoch_indices(self.train_set.labels, n_batches, cfg.batch_size, cfg.sampler, self.rng)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for idx in batches:
            batch = self.method.collate(self.train_set, idx, self.targets[idx], True, self.rng)
            batch = distributed.shard_batch(batch).to(self.device)  # this rank's slice (all of it in one process)
            with autocast(cfg.precision, self.device):
                out = self.loss_fn(batch, self.train_embeddings)
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            self.optimizer.step()
            self.method.after_step(batch, self.train_embeddings)
            for k, v in {**out["loss_terms"], "loss": out["loss"]}.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
                counts[k] = counts.get(k, 0) + 1
        self.method.on_epoch_end(self.benchmark, self.stage)
        return {k: float(v) / counts[k] for k, v in distributed.mean_over_ranks(sums).items()}

    def scores(self, features: FeatureSet) -> np.ndarray:
        """``[N, C]`` float32 evaluation-mode scores of ``features`` over all benchmark classes."""
        return scores_in_batches(
            self.method, features, self.class_embeddings, self.config.eval_batch_size, self.device
        )

    def step_scheduler(self, metric: float) -> bool:
        """Feed the validation ``metric`` to the plateau scheduler; True if it reduced the LR (False without one)."""
        if self.scheduler is None:
            return False
        before = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(metric)
        return self.optimizer.param_groups[0]["lr"] < before

    def drop_lr(self) -> None:
        """Multiply the LR of every parameter group by ``config.lr_factor``."""
        for group in self.optimizer.param_groups:
            group["lr"] *= self.config.lr_factor

    def model_state(self) -> dict[str, torch.Tensor]:
        """The method's ``state_dict``: parameter/buffer name -> tensor in its own shape."""
        return dict(self.method.state_dict())

    def state(self) -> dict[str, torch.Tensor]:
        """Everything to resume this stage, packed by :func:`~lowshot.utils.io.pack_state`.

        Model, optimiser and scheduler state, torch's global RNG and the sampler's RNG, as flat
        name -> tensor (each in its own shape, plus the ``__meta__`` byte tensor).
        """
        return pack_state(
            {
                "model": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else {},
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": self.rng.bit_generator.state,
            }
        )

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` packed (model, optimiser, scheduler, both RNGs); tensors keep their saved shape."""
        s = unpack_state(state)
        self.method.load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(s["scheduler"])
        torch.set_rng_state(s["torch_rng"])
        self.rng.bit_generator.state = s["numpy_rng"]
