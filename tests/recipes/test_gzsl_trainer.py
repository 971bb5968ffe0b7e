"""The GZSL trainer: optimiser hook of the method, one scoring loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowshot.data.av.synth import make_synthetic_benchmark
from lowshot.methods.av.clipclap import ClipClap, ClipClapConfig
from lowshot.protocols.gzsl import scores_in_batches
from lowshot.recipes.gzsl import input_spec
from lowshot.recipes.gzsl_config import TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer

SMALL = ClipClapConfig(model_dim=16, hidden_dim=12, out_dim=8)
TRAIN = TrainConfig(epochs=1, batch_size=8, n_batches=3, lr=0.01, weight_decay=0.0, eval_batch_size=5)


@pytest.fixture(scope="module")
def bench():
    return make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=0, size=0.02)


class SGDClipClap(ClipClap):
    """A method that picks its own optimiser (plain SGD, no scheduler)."""

    def build_optimizer(self, train):
        return torch.optim.SGD(self.parameters(), lr=train.lr), None


def _trainer(method: ClipClap, bench, train: TrainConfig = TRAIN) -> MethodTrainer:
    torch.manual_seed(0)
    return MethodTrainer(method, bench, 1, train, seed=0, device=torch.device("cpu"))


def test_default_optimiser_is_fused_adam_with_plateau_scheduler(bench) -> None:
    trainer = _trainer(ClipClap(SMALL, input_spec(bench)), bench, TrainConfig(lr=0.02, weight_decay=0.5,
                       lr_scheduler=True, lr_factor=0.25, lr_patience=7))  # fmt: skip
    opt, sched = trainer.optimizer, trainer.scheduler
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"]
    assert (opt.defaults["lr"], opt.defaults["weight_decay"]) == (0.02, 0.5)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (sched.mode, sched.factor, sched.patience) == ("max", 0.25, 7)
    assert _trainer(ClipClap(SMALL, input_spec(bench)), bench).scheduler is None  # lr_scheduler off


def test_a_method_overrides_its_optimiser(bench) -> None:
    torch.manual_seed(0)
    method = SGDClipClap(SMALL, input_spec(bench))
    trainer = _trainer(method, bench)
    assert type(trainer.optimizer) is torch.optim.SGD and trainer.scheduler is None
    before = [p.detach().clone() for p in method.parameters()]
    trainer.train_epoch(0)  # the trainer steps the method's own optimiser
    assert any(not torch.equal(a, p) for a, p in zip(before, method.parameters()))
    assert trainer.step_scheduler(0.5) is False  # no scheduler: nothing to step


def test_trainer_scores_are_the_shared_scoring_loop(bench) -> None:
    trainer = _trainer(ClipClap(SMALL, input_spec(bench)), bench)
    trainer.train_epoch(0)
    features = bench.splits["stage_2_test_unseen"]
    got = trainer.scores(features)
    assert got.shape == (len(features), len(bench.class_embeddings)) and got.dtype == np.float32
    whole = scores_in_batches(trainer.method, features, trainer.class_embeddings, len(features))
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-6)  # batching does not matter
