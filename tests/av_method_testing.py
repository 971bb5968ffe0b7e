"""Helpers shared by the AV baseline method tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import numpy as np
import torch
from av_tiny import tiny_spec

from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import GZSLBenchmark
from lowshot.methods.base import GZSLMethod


def method_and_train_batch(
    method_cls: type[GZSLMethod],
    config: object,
    bench: GZSLBenchmark,
    temporal: bool,
    seed: int = 0,
) -> tuple[GZSLMethod, Batch]:
    """A freshly seeded method on the tiny spec and the whole stage-1 training split as one batch."""
    torch.manual_seed(seed)
    method = method_cls(config, tiny_spec(temporal=temporal))
    fs = bench.splits["stage_1_train"]
    idx = np.arange(len(fs))
    return method, method.collate(fs, idx, fs.labels[idx], train=True)


def loss_before_and_after(
    method: GZSLMethod,
    batch: Batch,
    class_embeddings: torch.Tensor,
    steps: int = 40,
    lr: float = 1e-2,
) -> tuple[float, float]:
    """The loss of ``batch`` before and after ``steps`` Adam steps on it."""
    opt = torch.optim.Adam(method.parameters(), lr=lr)
    first = method.training_loss(batch, class_embeddings)["loss"].item()
    for _ in range(steps):
        opt.zero_grad()
        method.training_loss(batch, class_embeddings)["loss"].backward()
        opt.step()
    return first, method.training_loss(batch, class_embeddings)["loss"].item()
