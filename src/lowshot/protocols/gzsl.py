"""The two-stage audio-visual GZSL protocol (reference §3.4), as a fitted estimator.

Stage 1 trains on ``stage_1_train`` and, after every epoch, scores ``stage_1_val_seen`` and
``stage_1_val_unseen``; the epoch with the best validation HM (at its best calibration beta)
is selected, and that epoch's beta is transferred. Stage 2 trains a fresh model on the
union of the three stage-1 folders for ``best_epoch + 1`` epochs and evaluates
``stage_2_test_seen`` + ``stage_2_test_unseen`` with the transferred beta. The transferred
beta is used exactly, 0 included: nothing is ever searched on test data.

Like ``GridSearchCV(refit=True)``: ``fit`` returns self; learned state ends in ``_``
(``best_epoch_``, ``beta_``, ``result_``, ``history_``).

The training itself is delegated to an :class:`EpochTrainer` (see ``lowshot.recipes.gzsl``),
so the protocol runs any method. Progress is checkpointed after every epoch (a
:class:`~lowshot.utils.checkpoint.CheckpointChain`: safetensors + a checksummed JSON commit
record written last, the previous commit kept as a fallback) and a killed run resumes where
it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.errors import LowshotError
from lowshot.metrics.classification import mean_class_accuracy
from lowshot.protocols.calibration import (
    CalibratedStacking,
    gzsl_scores_over_grid,
)
from lowshot.utils.checkpoint import CheckpointChain
from lowshot.utils.distributed import is_main
from lowshot.utils.io import save_state

log = logging.getLogger(__name__)

#: ``(features, idx [B], targets [B] | None, train, generator=None) -> Batch``
CollateFn = Callable[..., Batch]


class ScoringMethod(Protocol):
    """What scoring needs from a method (every ``GZSLMethod`` has it)."""

    collate: CollateFn

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` scores against ``[C, D_w]`` class embeddings (higher is better)."""

    def eval(self) -> Any:
        """Switch to evaluation mode (``nn.Module.eval``)."""


@torch.no_grad()
def scores_in_batches(
    method: ScoringMethod,
    features: FeatureSet,
    class_embeddings: torch.Tensor,
    batch_size: int,
    device: torch.device | str = "cpu",
    collate: CollateFn | None = None,
) -> np.ndarray:
    """``[N, C]`` float32 scores of every sample of ``features``, in evaluation mode.

    The one scoring loop of the GZSL trainer and the robustness probe.

    Args:
        method: the (trained) method.
        features: the samples to score.
        class_embeddings: ``[C, D_w]`` label embeddings of all benchmark classes, on ``device``.
        batch_size: samples per forward pass.
        device: where the method runs.
        collate: builds the evaluation batches (default: the method's own ``collate``).
    """
    method.eval()
    collate = collate or method.collate
    out = []
    for start in range(0, len(features), batch_size):
        idx = np.arange(start, min(start + batch_size, len(features)))
        batch = collate(features, idx, None, False).to(device)
        out.append(method.class_scores(batch, class_embeddings).float().cpu())
    return torch.cat(out).numpy()


class EpochTrainer(Protocol):
    """What the protocol needs from a training loop (one fresh trainer per stage)."""

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Run one epoch; return mean loss terms."""

    def scores(self, features: FeatureSet) -> np.ndarray:
        """``[N, C]`` float32 scores (higher is better) over all benchmark classes."""

    def step_scheduler(self, metric: float) -> bool:
        """Feed validation HM to the LR scheduler; True if the LR was reduced."""

    def drop_lr(self) -> None:
        """Reduce the LR by the scheduler's factor (stage-2 replay)."""

    def state(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume (model, optimiser, RNG) as flat tensors of any shape."""

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned (flat name -> tensor, each in its saved shape)."""

    def model_state(self) -> dict[str, torch.Tensor]:
        """Model weights only (what a user loads for inference): name -> tensor in its own shape."""


@dataclass(frozen=True)
class GZSLEvaluation:
    """Result of one GZSL evaluation; accuracies are fractions (x100 for the tables)."""

    seen: float
    unseen: float
    hm: float
    zsl: float
    beta: float
    per_class: dict[str, float] = field(default_factory=dict)

    def percent(self) -> dict[str, float]:
        """S / U / HM / ZSL x100 (the table convention)."""
        return {"S": 100 * self.seen, "U": 100 * self.unseen, "HM": 100 * self.hm, "ZSL": 100 * self.zsl}


def _check_finite(scores: np.ndarray, where: str) -> None:
    if np.isnan(scores).any():
        raise LowshotError(f"the model produced NaN scores on {where} (training diverged?)")


def evaluate_gzsl(
    benchmark: GZSLBenchmark,
    stage: int,
    score_fn: Callable[[FeatureSet], np.ndarray],
    *,
    beta: float | None = None,
    betas: np.ndarray | None = None,
) -> GZSLEvaluation:
    """Evaluate one stage: S, U, HM with calibrated stacking and ZSL without it.

    Args:
        benchmark: the dataset.
        stage: 1 (validation) or 2 (test).
        score_fn: features -> ``[N, C]`` scores over all classes.
        beta: calibration to apply as is (stage 2 always passes one, 0 included).
        betas: grid to search (only allowed at stage 1, where it selects beta by val HM).
    """
    if (beta is None) == (betas is None):
        raise ValueError("pass exactly one of beta (apply) or betas (search)")
    if stage == 2 and beta is None:
        raise ValueError("beta search on test data is not allowed; pass the transferred beta")
    seen_set, unseen_set, seen_cls, unseen_cls = benchmark.stage_eval(stage)
    evaluated = FeatureSet.concat([seen_set, unseen_set])
    scores = np.asarray(score_fn(evaluated), dtype=np.float32)
    _check_finite(scores, f"{benchmark.name} stage {stage}")
    labels = evaluated.labels
    if beta is None:
        cs = CalibratedStacking(betas).fit(scores, labels, seen_cls, unseen_cls)
        beta = cs.beta_
    grid = gzsl_scores_over_grid(scores, labels, seen_cls, unseen_cls, np.array([beta], np.float32))
    # ZSL: unseen samples, unseen classes only, no calibration
    is_unseen = np.isin(labels, unseen_cls)
    restricted = np.full_like(scores[is_unseen], -np.inf)
    restricted[:, unseen_cls] = scores[is_unseen][:, unseen_cls]
    zsl = mean_class_accuracy(labels[is_unseen], restricted.argmax(1), unseen_cls)
    per_class = {
        benchmark.class_names[c]: float(a) for c, a in zip(grid.classes, grid.per_class[0]) if not np.isnan(a)
    }
    return GZSLEvaluation(
        float(grid.seen[0]), float(grid.unseen[0]), float(grid.hm[0]), float(zsl), float(beta), per_class
    )


class TwoStageProtocol:
    """Select epoch and beta on stage-1 validation, refit on train+val, test once.

    Args:
        epochs: maximum stage-1 epochs.
        betas: calibrated-stacking grid searched on stage-1 validation.
        checkpoint_dir: where resumable state goes (None: no checkpoints, no resume).
        stage2_scheduler: ``"replay"`` (repeat the stage-1 LR drops at the same epochs) or
            ``"legacy_val_on_train"`` (step on HM of the stage-1 validation folders, which
            are training data in stage 2 — AVCA's published behaviour, reference §6.10).
        on_epoch: optional callback(record) after every epoch (logging, TensorBoard).
    """

    def __init__(
        self,
        epochs: int,
        betas: np.ndarray,
        checkpoint_dir: Path | None = None,
        stage2_scheduler: str = "replay",
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if epochs < 1:
            raise ValueError("epochs must be >= 1")
        self.epochs = epochs
        self.betas = np.asarray(betas, dtype=np.float32)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.stage2_scheduler = stage2_scheduler
        self.on_epoch = on_epoch

    # ----------------------------------------------------------------- checkpoints
    def _resume(self, stage: int, trainer: EpochTrainer, fresh: dict[str, Any]) -> tuple[CheckpointChain | None, dict]:
        """The stage's checkpoint chain and loop state (``fresh`` when nothing was committed)."""
        if self.checkpoint_dir is None:
            return None, fresh
        chain = self._chain(stage)
        restored = chain.restore()
        if restored is None:
            return chain, fresh
        epoch, state, tensors = restored
        trainer.load_state(tensors)
        log.info("resumed stage %d after epoch %d", stage, epoch)
        return chain, {**state, "epoch": epoch}

    @staticmethod
    def _commit(chain: CheckpointChain | None, trainer: EpochTrainer, state: dict[str, Any]) -> None:
        if chain is not None and is_main():  # under torchrun only rank 0 writes
            chain.commit(state["epoch"], trainer.state(), {k: v for k, v in state.items() if k != "epoch"})

    def _chain(self, stage: int) -> CheckpointChain:
        """The checkpoint chain of stage ``stage`` (``checkpoints/stage<stage>*``)."""
        return CheckpointChain(self.checkpoint_dir, f"stage{stage}")

    def discard_resume_state(self) -> None:
        """Delete both stages' epoch checkpoints once the result is written (the selected stage-1
        model and the final model stay); a finished seed is never resumed."""
        if self.checkpoint_dir is not None and is_main():
            for stage in (1, 2):
                self._chain(stage).discard()

    # ----------------------------------------------------------------- stages
    def _start_stage1(self, trainer: EpochTrainer) -> tuple[CheckpointChain | None, dict[str, Any]]:
        return self._resume(1, trainer, {
            "epoch": -1, "history": [], "best_epoch": None, "best_hm": None, "beta": None, "lr_drops": []
        })

    def _end_stage1_epoch(
        self,
        benchmark: GZSLBenchmark,
        trainer: EpochTrainer,
        chain: CheckpointChain | None,
        state: dict[str, Any],
        epoch: int,
        losses: dict[str, float],
    ) -> None:
        """After stage-1 epoch ``epoch`` was trained: validate, step the scheduler, select, commit."""
        ev = evaluate_gzsl(benchmark, 1, trainer.scores, betas=self.betas)
        dropped = trainer.step_scheduler(ev.hm)
        record = {"stage": 1, "epoch": epoch, **losses, **{f"val_{k}": v for k, v in ev.percent().items()},
                  "val_beta": ev.beta, "lr_dropped": dropped}
        state["history"].append(record)
        if dropped:
            state["lr_drops"].append(epoch)
        if state["best_hm"] is None or ev.hm > state["best_hm"]:  # None = not set; 0 is a value
            state.update(best_epoch=epoch, best_hm=ev.hm, beta=ev.beta)
            if self.checkpoint_dir is not None and is_main():
                save_state(self.checkpoint_dir / "stage1_best_model.safetensors", trainer.model_state())
        state["epoch"] = epoch
        self._commit(chain, trainer, state)
        if self.on_epoch:
            self.on_epoch(record)

    def _start_stage2(self, trainer: EpochTrainer) -> tuple[CheckpointChain | None, dict[str, Any]]:
        return self._resume(2, trainer, {"epoch": -1, "history": []})

    def _end_stage2_epoch(
        self,
        benchmark: GZSLBenchmark,
        trainer: EpochTrainer,
        chain: CheckpointChain | None,
        state: dict[str, Any],
        selected: dict[str, Any],
        epoch: int,
        losses: dict[str, float],
    ) -> None:
        """After stage-2 epoch ``epoch`` was trained: replay (or legacy-step) the LR schedule, commit."""
        record: dict[str, Any] = {"stage": 2, "epoch": epoch, **losses}
        if self.stage2_scheduler == "replay":
            if epoch in selected["lr_drops"]:
                trainer.drop_lr()
                record["lr_dropped"] = True
        else:  # legacy_val_on_train: HM on stage-1 validation folders (now training data)
            ev = evaluate_gzsl(benchmark, 1, trainer.scores, betas=self.betas)
            record["lr_dropped"] = trainer.step_scheduler(ev.hm)
        state["history"].append(record)
        state["epoch"] = epoch
        self._commit(chain, trainer, state)
        if self.on_epoch:
            self.on_epoch(record)

    def _finish(
        self, benchmark: GZSLBenchmark, trainer2: EpochTrainer, s1: dict[str, Any], s2: dict[str, Any]
    ) -> TwoStageProtocol:
        """Test with the transferred beta, save the final model, set the fitted attributes."""
        test = evaluate_gzsl(benchmark, 2, trainer2.scores, beta=s1["beta"])
        if self.checkpoint_dir is not None and is_main():
            save_state(self.checkpoint_dir / "final_model.safetensors", trainer2.model_state())
        self.best_epoch_ = int(s1["best_epoch"])
        self.beta_ = float(s1["beta"])
        self.val_hm_ = float(s1["best_hm"])
        self.lr_drops_ = list(s1["lr_drops"])
        self.history_ = s1["history"] + s2["history"]
        self.result_ = test
        self.trainer_ = trainer2
        return self

    def fit(self, benchmark: GZSLBenchmark, make_trainer: Callable[[int], EpochTrainer]) -> TwoStageProtocol:
        """Run both stages. ``make_trainer(stage)`` returns a fresh trainer for that stage."""
        trainer1 = make_trainer(1)
        chain, s1 = self._start_stage1(trainer1)
        for epoch in range(s1["epoch"] + 1, self.epochs):
            self._end_stage1_epoch(benchmark, trainer1, chain, s1, epoch, trainer1.train_epoch(epoch))
        del trainer1
        trainer2 = make_trainer(2)
        chain, s2 = self._start_stage2(trainer2)
        for epoch in range(s2["epoch"] + 1, s1["best_epoch"] + 1):
            self._end_stage2_epoch(benchmark, trainer2, chain, s2, s1, epoch, trainer2.train_epoch(epoch))
        return self._finish(benchmark, trainer2, s1, s2)

    def summary(self) -> dict[str, Any]:
        """JSON-able result: test S/U/HM/ZSL (x100), selected epoch and beta, per-class accuracies."""
        res = self.result_
        return {
            **res.percent(),
            "beta": self.beta_,
            "best_epoch": self.best_epoch_,
            "val_HM": 100 * self.val_hm_,
            "lr_drop_epochs": self.lr_drops_,
            "per_class_accuracy": {k: 100 * v for k, v in res.per_class.items()},
        }


class SeedBatchTrainer(Protocol):
    """What :func:`fit_seed_batched` needs: one trainer per seed plus one step that trains
    several of them together (one fresh instance per stage)."""

    trainers: Sequence[EpochTrainer]

    def train_epochs(self, epoch: int, seeds: Sequence[int]) -> list[dict[str, float]]:
        """Run epoch ``epoch`` of the trainers ``seeds`` together; their mean loss terms, in that order."""


def _lockstep(
    batch: SeedBatchTrainer,
    first: Sequence[int],
    stop: Sequence[int],
    end_epoch: Callable[[int, int, dict[str, float]], None],
) -> None:
    """Train seed ``i`` from epoch ``first[i]`` to ``stop[i] - 1``, all due seeds together each epoch
    (a seed resumed one epoch behind the others catches up alone); ``end_epoch(i, epoch, losses)``
    after each."""
    nxt = list(first)
    while True:
        due = [i for i in range(len(nxt)) if nxt[i] < stop[i]]
        if not due:
            return
        epoch = min(nxt[i] for i in due)
        due = [i for i in due if nxt[i] == epoch]
        for i, losses in zip(due, batch.train_epochs(epoch, due)):
            end_epoch(i, epoch, losses)
            nxt[i] += 1


def fit_seed_batched(
    protocols: Sequence[TwoStageProtocol],
    benchmark: GZSLBenchmark,
    make_batch: Callable[[int], SeedBatchTrainer],
) -> list[TwoStageProtocol]:
    """:meth:`TwoStageProtocol.fit` of several seeds (one protocol each: own checkpoints, selection
    and LR schedule) whose epochs are trained together by ``make_batch(stage)``.

    Each seed's stage 1 and stage 2 have the epochs its separate run would have; a seed whose
    stage 2 (``best_epoch + 1`` epochs) is shorter simply leaves the batch early.
    """
    batch = make_batch(1)
    s1 = [p._start_stage1(t) for p, t in zip(protocols, batch.trainers)]
    _lockstep(
        batch,
        [s["epoch"] + 1 for _, s in s1],
        [p.epochs for p in protocols],
        lambda i, epoch, losses: protocols[i]._end_stage1_epoch(benchmark, batch.trainers[i], *s1[i], epoch, losses),
    )
    selected = [s for _, s in s1]
    del batch  # release the stage-1 models first
    batch = make_batch(2)
    s2 = [p._start_stage2(t) for p, t in zip(protocols, batch.trainers)]
    _lockstep(
        batch,
        [s["epoch"] + 1 for _, s in s2],
        [s["best_epoch"] + 1 for s in selected],
        lambda i, epoch, losses: protocols[i]._end_stage2_epoch(
            benchmark, batch.trainers[i], *s2[i], selected[i], epoch, losses
        ),
    )
    return [p._finish(benchmark, t, a, b[1]) for p, t, a, b in zip(protocols, batch.trainers, selected, s2)]


__all__ = ["EpochTrainer", "GZSLEvaluation", "SeedBatchTrainer", "evaluate_gzsl", "fit_seed_batched", "TwoStageProtocol"]
