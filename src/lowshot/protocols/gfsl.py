"""The audio-visual GFSL protocol of AV-Diff (thesis §4.4–4.5, reference §3.5), as a fitted estimator.

Stage 1:

1. **base phase** — ``epochs_base`` epochs on B1 (``stage_1_train_base``); after each epoch
   the base-class accuracy on stage-1 validation (base + novel classes, beta = 0) is measured
   and the best epoch kept (its weights carry into the full phase);
2. **full phase** — ``epochs_full`` epochs on B1 + the N1 shots, the fusion frozen (methods
   implementing :class:`PhaseAware`); the epoch with the best validation HM (at its best beta
   of the grid) is selected; the LR-drop epochs of both phases are recorded (the base phase's
   scheduler steps on validation base accuracy, the full phase's on validation HM).

Stage 2: a fresh model runs the base phase for ``best_base + 1`` epochs on the four stage-1
folders (B2), then one fine-tune per draw for ``best_full + 1`` epochs on B2 + that draw's N2
shots, replaying the recorded LR drops; each fine-tune is evaluated on its own test set
(``stage_2_test_seen`` + ``stage_2_test_novel<draw>``) with the transferred beta.

Reported: B̄, N̄, FSL̄ (means over the draws) and **HM of the means** (thesis tables), per-draw
numbers kept. Calibrated stacking subtracts beta from base-class scores (probabilities for
AV-Diff; any higher-is-better class score for the other methods).

The transferred beta is the selected epoch's, 0 included (``beta_source="last_epoch"``
reproduces the published last-epoch beta, §6.3; ``legacy_beta_zero_search_on_test=True`` the
published re-search of beta = 0 on test data, §6.2 — both off by default, both warn).

Training runs through the GZSL trainer (:class:`~lowshot.recipes.gzsl_trainer.MethodTrainer`)
on per-phase GZSL views of the benchmark (:meth:`GFSLBenchmark.phase`), and evaluation through
:func:`~lowshot.protocols.gzsl.evaluate_gzsl`; nothing here trains or scores by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from lowshot.data.av.featureset import GZSLBenchmark
from lowshot.data.av.fsl import GFSLBenchmark
from lowshot.metrics.classification import harmonic_mean
from lowshot.protocols.gzsl import EpochTrainer, GZSLEvaluation, evaluate_gzsl

log = logging.getLogger(__name__)

Phase = Literal["base", "full"]
BetaSource = Literal["best_epoch", "last_epoch"]


@runtime_checkable
class PhaseAware(Protocol):
    """A method that changes with the GFSL phase (AV-Diff: frozen fusion and generation in ``full``)."""

    def start_phase(
        self, phase: Phase, train_classes: np.ndarray, novel_classes: np.ndarray, stage_classes: np.ndarray | None = None
    ) -> None:
        """Called before each phase's optimiser is built.

        Args:
            phase: ``base`` or ``full``.
            train_classes: sorted global indices of the phase's training classes (the rows of
                the class embeddings ``training_loss`` receives).
            novel_classes: the novel classes among them (empty in the base phase).
            stage_classes: sorted base + novel classes of the stage, in both phases (AV-Diff's
                classifier range); None: ``train_classes``.
        """


#: ``(method, phase view, stream) -> trainer``; ``stream`` separates the sampler RNG of phases
MakeTrainer = Callable[[Any, GZSLBenchmark, int], EpochTrainer]
#: ``(stream) -> a freshly initialised method``
MakeMethod = Callable[[int], Any]


@dataclass(frozen=True)
class DrawResult:
    """One draw's test result (fractions)."""

    draw: int
    evaluation: GZSLEvaluation
    beta_searched_on_test: bool = False


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def start_phase(method: Any, view: GZSLBenchmark, phase: Phase, novel: np.ndarray) -> None:
    """Tell a :class:`PhaseAware` method which phase starts (others train all parameters throughout)."""
    if isinstance(method, PhaseAware):
        train = view.train_classes(1)
        method.start_phase(phase, train, np.intersect1d(novel, train), stage_classes=np.union1d(train, novel))


def legacy_test_view(view: GZSLBenchmark) -> GZSLBenchmark:
    """The view with its test sets in the validation slots (only for the legacy beta re-search on test)."""
    splits = {**view.splits, "stage_1_val_seen": view.splits["stage_2_test_seen"],
              "stage_1_val_unseen": view.splits["stage_2_test_unseen"]}  # fmt: skip
    classes = {**view.split_classes, "stage_1_val_seen": view.split_classes["stage_2_test_seen"],
               "stage_1_val_unseen": view.split_classes["stage_2_test_unseen"]}  # fmt: skip
    return replace(view, splits=splits, split_classes=classes)


class GFSLProtocol:
    """Stage 1 (base phase, full phase) selects epochs and beta; stage 2 refits and tests every draw.

    Args:
        epochs_base: stage-1 base-phase epochs (published 30).
        epochs_full: stage-1 full-phase epochs (published ``epochs_fine_tune`` 20).
        betas: calibrated-stacking grid searched on validation in the full phase (published 0:0.1:1).
        beta_source: ``best_epoch`` (default) or the published ``last_epoch`` (§6.3).
        legacy_beta_zero_search_on_test: published: a transferred beta of exactly 0 is re-searched
            on each test set (§6.2). Results are then test-selected.
        on_epoch: callback(record) after every epoch.
    """

    def __init__(
        self,
        epochs_base: int,
        epochs_full: int,
        betas: np.ndarray,
        beta_source: BetaSource = "best_epoch",
        legacy_beta_zero_search_on_test: bool = False,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if epochs_base < 1 or epochs_full < 1:
            raise ValueError("epochs_base and epochs_full must be >= 1")
        if beta_source not in ("best_epoch", "last_epoch"):
            raise ValueError(f"beta_source must be 'best_epoch' or 'last_epoch', got {beta_source!r}")
        self.epochs_base = epochs_base
        self.epochs_full = epochs_full
        self.betas = np.asarray(betas, dtype=np.float32)
        self.beta_source = beta_source
        self.legacy_beta_zero_search_on_test = legacy_beta_zero_search_on_test
        self.on_epoch = on_epoch
        if beta_source == "last_epoch":
            log.warning("gfsl: beta_source=last_epoch transfers the last epoch's beta (published, §6.3)")
        if legacy_beta_zero_search_on_test:
            log.warning("gfsl: legacy_beta_zero_search_on_test: a beta of 0 is re-searched on test data (§6.2)")

    def _log(self, record: dict[str, Any]) -> None:
        self.history_.append(record)
        if self.on_epoch:
            self.on_epoch(record)

    # ------------------------------------------------------------------ stage 1
    def _select(self, trainer: EpochTrainer, view: GZSLBenchmark, phase: Phase, epochs: int) -> dict[str, Any]:
        """Train ``epochs`` epochs of one stage-1 phase, selecting by val base accuracy (base) or HM (full)."""
        best: dict[str, Any] = {"epoch": None, "score": None, "beta": None, "state": None, "drops": [], "last_beta": None}
        betas = np.zeros(1, np.float32) if phase == "base" else self.betas
        for epoch in range(epochs):
            losses = trainer.train_epoch(epoch)
            ev = evaluate_gzsl(view, 1, trainer.scores, betas=betas)
            score = ev.seen if phase == "base" else ev.hm
            dropped = trainer.step_scheduler(score)
            if dropped:
                best["drops"].append(epoch)
            best["last_beta"] = ev.beta
            if best["score"] is None or score > best["score"]:  # None = not set; 0 is a value
                best.update(epoch=epoch, score=score, beta=ev.beta, state=_clone(trainer.model_state()))
            self._log({"stage": 1, "phase": phase, "epoch": epoch, **losses,
                       **{f"val_{k}": v for k, v in ev.percent().items()}, "val_beta": ev.beta, "lr_dropped": dropped})  # fmt: skip
        return best

    # ------------------------------------------------------------------ stage 2
    def _replay(self, trainer: EpochTrainer, epochs: int, drops: list[int], phase: Phase, draw: int | None) -> None:
        """Train ``epochs`` epochs, dropping the LR after each recorded stage-1 drop epoch."""
        for epoch in range(epochs):
            losses = trainer.train_epoch(epoch)
            dropped = epoch in drops
            if dropped:
                trainer.drop_lr()
            self._log({"stage": 2, "phase": phase, "draw": draw, "epoch": epoch, **losses, "lr_dropped": dropped})

    def _test(self, view: GZSLBenchmark, trainer: EpochTrainer, draw: int) -> DrawResult:
        if self.legacy_beta_zero_search_on_test and self.beta_ == 0.0:
            ev = evaluate_gzsl(legacy_test_view(view), 1, trainer.scores, betas=self.betas)
            log.warning("gfsl draw %d: beta re-searched on TEST data (legacy): %.2f", draw, ev.beta)
            return DrawResult(draw, ev, beta_searched_on_test=True)
        return DrawResult(draw, evaluate_gzsl(view, 2, trainer.scores, beta=self.beta_))

    def fit(self, bench: GFSLBenchmark, make_method: MakeMethod, make_trainer: MakeTrainer) -> GFSLProtocol:
        """Run both stages on every draw of ``bench``.

        Args:
            bench: the k-shot benchmark.
            make_method: stream -> fresh method (seeded by the caller).
            make_trainer: (method, phase view, stream) -> trainer of that phase.
        """
        self.history_: list[dict[str, Any]] = []
        novel_1, novel_2 = bench.partition.novel_1, bench.partition.novel_2
        # stage 1
        method = make_method(1)
        view = bench.phase(1, "base")
        start_phase(method, view, "base", novel_1)
        base = self._select(make_trainer(method, view, 1), view, "base", self.epochs_base)
        method.load_state_dict(base["state"])
        view = bench.phase(1, "full")
        start_phase(method, view, "full", novel_1)
        full = self._select(make_trainer(method, view, 2), view, "full", self.epochs_full)
        del method
        self.best_base_epoch_, self.best_full_epoch_ = int(base["epoch"]), int(full["epoch"])
        self.base_lr_drops_, self.full_lr_drops_ = list(base["drops"]), list(full["drops"])
        self.val_base_acc_, self.val_hm_ = float(base["score"]), float(full["score"])
        self.beta_ = float(full["beta"] if self.beta_source == "best_epoch" else full["last_beta"])
        # stage 2: shared base phase, then one fine-tune per draw
        method = make_method(2)
        view = bench.phase(2, "base")
        start_phase(method, view, "base", novel_2)
        self._replay(make_trainer(method, view, 3), self.best_base_epoch_ + 1, self.base_lr_drops_, "base", None)
        base_state = _clone(method.state_dict())
        self.draws_: list[DrawResult] = []
        for d in range(bench.n_draws):
            method = make_method(10 + d)
            method.load_state_dict(base_state)
            view = bench.phase(2, "full", d)
            start_phase(method, view, "full", novel_2)
            trainer = make_trainer(method, view, 10 + d)
            self._replay(trainer, self.best_full_epoch_ + 1, self.full_lr_drops_, "full", d)
            self.draws_.append(self._test(view, trainer, d))
        self.trainer_ = trainer
        return self

    def summary(self) -> dict[str, Any]:
        """B, N, HM (of the means), FSL (x100, means over draws), per-draw numbers, selections."""
        return gfsl_summary(self.draws_) | {
            "beta": self.beta_,
            "best_base_epoch": self.best_base_epoch_,
            "best_full_epoch": self.best_full_epoch_,
            "base_lr_drop_epochs": self.base_lr_drops_,
            "full_lr_drop_epochs": self.full_lr_drops_,
            "val_base_accuracy": 100 * self.val_base_acc_,
            "val_HM": 100 * self.val_hm_,
        }


def gfsl_summary(draws: list[DrawResult]) -> dict[str, Any]:
    """Means over draws of B (seen), N (unseen) and FSL; HM of the mean B and mean N (thesis tables).

    Returns:
        ``{"B", "N", "HM", "FSL"}`` x100 plus ``per_draw`` (each draw's B/N/HM/FSL x100 and beta).
    """
    b = float(np.mean([d.evaluation.seen for d in draws]))
    n = float(np.mean([d.evaluation.unseen for d in draws]))
    fsl = float(np.mean([d.evaluation.zsl for d in draws]))
    per_draw = [
        {"draw": d.draw, "B": 100 * d.evaluation.seen, "N": 100 * d.evaluation.unseen,
         "HM": 100 * d.evaluation.hm, "FSL": 100 * d.evaluation.zsl, "beta": d.evaluation.beta,
         "beta_searched_on_test": d.beta_searched_on_test}
        for d in draws
    ]  # fmt: skip
    return {"B": 100 * b, "N": 100 * n, "HM": 100 * float(harmonic_mean(b, n)), "FSL": 100 * fsl, "per_draw": per_draw}


__all__ = ["DrawResult", "GFSLProtocol", "PhaseAware", "gfsl_summary", "start_phase", "legacy_test_view"]
