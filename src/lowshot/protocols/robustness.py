"""Robustness to a noisy audio stream (thesis App. B.2.3, Fig. B.1).

A trained method is evaluated on the stage-2 test split (or stage-1 validation) while a
chosen proportion of each video's valid audio time steps is replaced by Gaussian noise with
the per-dimension mean and standard deviation of the batch's valid audio steps (so the noise
lives on the scale of the real features). The result is GZSL S/U/HM/ZSL against the
proportion, with the calibration beta held fixed.

The noise is injected by wrapping the method's ``collate`` (:class:`NoisyAudioCollate`), so
every method with the standard contract can be probed without changes. Like the two-stage
protocol (which names what it needs from a trainer, :class:`~lowshot.protocols.gzsl.EpochTrainer`),
this protocol names what it needs from a method (:class:`~lowshot.protocols.gzsl.ScoringMethod`)
instead of importing the methods, which sit above it, and scores through the trainer's own
loop (:func:`~lowshot.protocols.gzsl.scores_in_batches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from lowshot.data.av.batch import Batch
from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.protocols.gzsl import CollateFn, ScoringMethod, evaluate_gzsl, scores_in_batches


def noise_step_mask(valid: np.ndarray, proportion: float, rng: np.random.Generator) -> np.ndarray:
    """Choose ``round(proportion * n_valid)`` valid steps per row, uniformly at random.

    Args:
        valid: ``[B, T]`` bool, True = valid step.
        proportion: fraction in [0, 1].
        rng: numpy generator.

    Returns:
        ``[B, T]`` bool, True = replace this step by noise (always a subset of ``valid``).
    """
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"proportion must be in [0, 1], got {proportion}")
    keys = np.where(valid, rng.random(valid.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)  # rank of each step among the row
    k = np.rint(proportion * valid.sum(1)).astype(np.int64)
    return valid & (rank < k[:, None])


class NoisyAudioCollate:
    """``collate`` wrapper that replaces a proportion of audio time steps with noise.

    Dense (time-averaged) audio ``[B, D]`` is treated as one step per sample, replaced with
    probability ``proportion``.

    Args:
        collate: the method's collate (same signature).
        proportion: fraction of valid audio steps to replace.
        seed: seed of the step choice and of the noise.
    """

    def __init__(self, collate: CollateFn, proportion: float, seed: int = 0) -> None:
        self.collate = collate
        self.proportion = proportion
        self.rng = np.random.default_rng(seed)

    def __call__(
        self,
        features: FeatureSet,
        idx: np.ndarray,
        targets: np.ndarray | None,
        train: bool,
        generator: np.random.Generator | None = None,
    ) -> Batch:
        batch = self.collate(features, idx, targets, train, generator)
        audio = batch.audio
        dense = audio.dim() == 2
        x = audio.unsqueeze(1) if dense else audio  # [B, T, D]
        if dense:
            valid = np.ones(x.shape[:2], bool)
            chosen = valid & (self.rng.random(valid.shape) < self.proportion)
        else:
            valid = (
                batch.audio_mask.cpu().numpy()
                if batch.audio_mask is not None
                else np.ones(x.shape[:2], bool)
            )
            chosen = noise_step_mask(valid, self.proportion, self.rng)
        if chosen.any():
            v = torch.from_numpy(valid).to(x.device)
            steps = x[v]  # [n_valid, D]
            mean, std = steps.mean(0), steps.std(0, unbiased=False)
            noise = torch.from_numpy(
                self.rng.standard_normal((int(chosen.sum()), x.shape[-1])).astype(np.float32)
            )
            x = x.clone()
            x[torch.from_numpy(chosen).to(x.device)] = mean + std * noise.to(x.device, x.dtype)
        batch.audio = x.squeeze(1) if dense else x
        return batch


def audio_noise_robustness(
    method: ScoringMethod,
    benchmark: GZSLBenchmark,
    proportions: Sequence[float],
    beta: float,
    stage: int = 2,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """GZSL metrics (x100) of a trained method with noisy audio, one row per proportion.

    Args:
        method: a trained method (its ``collate`` is wrapped, the method is not changed).
        benchmark: the dataset.
        proportions: fractions of audio time steps replaced by noise, e.g. ``[0, .25, .5, 1]``.
        beta: the calibration transferred from stage 1 (held fixed for all proportions).
        stage: 2 (test) or 1 (validation).
        seed: noise seed (the same for every proportion).

    Returns:
        ``[{"proportion", "S", "U", "HM", "ZSL"}, ...]``.
    """
    embeddings = torch.as_tensor(np.asarray(benchmark.class_embeddings, np.float32), device=device)
    rows = []
    for p in proportions:
        collate = NoisyAudioCollate(method.collate, float(p), seed)
        score = partial(
            scores_in_batches, method, class_embeddings=embeddings, batch_size=batch_size,
            device=device, collate=collate,
        )  # fmt: skip
        ev = evaluate_gzsl(benchmark, stage, score, beta=beta)
        rows.append({"proportion": float(p), **ev.percent()})
    return rows
