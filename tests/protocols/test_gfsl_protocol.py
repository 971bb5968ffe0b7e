"""GFSL protocol: epoch and beta selection per phase, beta transfer, LR-drop replay, HM of the means."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lowshot.protocols.gfsl as gfsl
from lowshot.data.av.fsl import gfsl_from_gzsl
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import GZSLEvaluation

BASE_ACC = [0.5, 0.7, 0.6]  # best base epoch 1
FULL_HM = [0.2, 0.4, 0.3, 0.1]  # best full epoch 1
FULL_BETA = [0.3, 0.0, 0.5, 0.8]  # beta of the selected epoch is 0.0, last epoch 0.8
DRAWS = [(0.8, 0.2), (0.6, 0.4), (0.7, 0.3)]  # test (B, N) per draw


class FakeTrainer:
    """Scripted trainer: the method's weight records the last epoch; drops recorded."""

    def __init__(self, method: nn.Module, view, stream: int, log: dict) -> None:
        self.method, self.view, self.stream, self.log = method, view, stream, log
        log.setdefault("start_weights", {})[stream] = float(method.w.detach())
        self.epoch = -1
        self.drops: list[int] = []
        log.setdefault("trainers", {})[stream] = self

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.epoch = epoch
        with torch.no_grad():
            self.method.w.fill_(100 * self.stream + epoch)
        return {"loss": 1.0}

    def scores(self, features):  # evaluate_gzsl is scripted below
        return np.zeros((len(features), 20), np.float32)

    def step_scheduler(self, metric: float) -> bool:
        return (self.stream, self.epoch) in {(1, 0), (2, 0), (2, 2)}

    def drop_lr(self) -> None:
        self.drops.append(self.epoch)

    def model_state(self) -> dict[str, torch.Tensor]:
        return dict(self.method.state_dict())


class FakeMethod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


def scripted_evaluate(log: dict):
    def evaluate(view, stage, score_fn, *, beta=None, betas=None):
        trainer = score_fn.__self__
        if "stage2" in view.name:
            if stage == 1:  # legacy re-search on test
                log.setdefault("test_searches", []).append(trainer.stream)
                beta = 0.7
            else:
                log.setdefault("test_betas", []).append(beta)
            s, u = DRAWS[trainer.stream - 10]
            return GZSLEvaluation(s, u, 2 * s * u / (s + u), u + 0.05, beta)
        if trainer.stream == 1:
            assert list(betas) == [0.0]
            return GZSLEvaluation(BASE_ACC[trainer.epoch], 0.0, 0.0, 0.0, 0.0)
        assert len(betas) == 11
        return GZSLEvaluation(0.5, 0.5, FULL_HM[trainer.epoch], 0.1, FULL_BETA[trainer.epoch])

    return evaluate


def _fit(tiny_temporal, monkeypatch, **kw):
    log: dict = {}
    monkeypatch.setattr(gfsl, "evaluate_gzsl", scripted_evaluate(log))
    bench = gfsl_from_gzsl(tiny_temporal, 2, seed=0)
    proto = gfsl.GFSLProtocol(3, 4, beta_grid(0, 1, 11), **kw).fit(
        bench, lambda stream: FakeMethod(), lambda m, view, stream: FakeTrainer(m, view, stream, log)
    )
    return proto, log


def test_selection_transfer_and_replay(tiny_temporal, monkeypatch) -> None:
    proto, log = _fit(tiny_temporal, monkeypatch)
    assert proto.best_base_epoch_ == 1 and proto.best_full_epoch_ == 1
    assert log["start_weights"][2] == 100 * 1 + 1  # the full phase starts from the best base epoch
    assert proto.beta_ == 0.0  # the selected epoch's beta; 0 is a value
    assert log["test_betas"] == [0.0, 0.0, 0.0] and "test_searches" not in log
    assert proto.base_lr_drops_ == [0] and proto.full_lr_drops_ == [0, 2]
    tr = log["trainers"]
    assert tr[3].epoch == 1 and tr[3].drops == [0]  # stage-2 base: best+1 epochs, drop replayed
    for d in (10, 11, 12):
        assert tr[d].epoch == 1 and tr[d].drops == [0]  # each draw: best+1 epochs (drop at 2 not reached)
        assert log["start_weights"][d] == 300 + 1  # every fine-tune starts from the stage-2 base model


def test_hm_of_the_means(tiny_temporal, monkeypatch) -> None:
    proto, _ = _fit(tiny_temporal, monkeypatch)
    out = proto.summary()
    b, n = np.mean([s for s, _ in DRAWS]), np.mean([u for _, u in DRAWS])
    assert out["B"] == pytest.approx(100 * b) and out["N"] == pytest.approx(100 * n)
    assert out["HM"] == pytest.approx(100 * 2 * b * n / (b + n))
    mean_of_hms = np.mean([d["HM"] for d in out["per_draw"]])
    assert abs(out["HM"] - mean_of_hms) > 1.0  # the two differ here, and the table takes HM of the means
    assert out["FSL"] == pytest.approx(100 * (n + 0.05))
    assert len(out["per_draw"]) == 3


def test_legacy_beta_options(tiny_temporal, monkeypatch) -> None:
    proto, log = _fit(tiny_temporal, monkeypatch, beta_source="last_epoch")
    assert proto.beta_ == pytest.approx(0.8) and log["test_betas"] == [pytest.approx(0.8)] * 3
    proto, log = _fit(tiny_temporal, monkeypatch, legacy_beta_zero_search_on_test=True)
    assert log["test_searches"] == [10, 11, 12]
    assert all(d["beta_searched_on_test"] for d in proto.summary()["per_draw"])
