"""Calibrated stacking (Chao et al., 2016) for generalised zero-/few-shot evaluation.

Seen-class scores are lowered by beta before the arg-max, trading seen for unseen accuracy.
Both published forms are the same operation on *higher-is-better* scores:

* distance form (AVCA, TCaF, ClipClap): add beta to seen-class distances and take the
  arg-min; with scores = -distance this is ``scores - beta * seen``, bit for bit in float32;
* probability form (AV-Diff): subtract beta from seen-class probabilities, then arg-max.

The whole beta grid is scored at once: per sample only the best seen and the best unseen
candidate matter, so predictions for G betas cost O(N C + G N) instead of O(G N C).
Ties resolve to the lower class index, as ``argmin``/``argmax`` do in the published code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowshot.metrics.classification import harmonic_mean, per_class_accuracy


def beta_grid(start: float, stop: float, num: int) -> np.ndarray:
    """``linspace(start, stop, num)`` as float32 (the dtype the published code adds).

    Published grids: (0, 3, 16) AVCA/TCaF, (0, 5, 76) ClipClap, (0, 1, 11) AV-Diff.
    """
    if num < 1:
        raise ValueError("a beta grid needs at least one value")
    return np.linspace(start, stop, int(num), dtype=np.float64).astype(np.float32)


def calibrated_predictions(
    scores: np.ndarray, seen: np.ndarray, candidates: np.ndarray, betas: np.ndarray
) -> np.ndarray:
    """Predicted classes for every beta.

    Args:
        scores: ``[N, C]`` float32 scores, higher is better.
        seen: ``[C]`` bool, classes that are lowered by beta.
        candidates: ``[C]`` bool, classes that may be predicted (the evaluated split).
        betas: ``[G]`` calibration values.

    Returns:
        ``[G, N]`` int64 predicted class indices.
    """
    scores = np.asarray(scores, dtype=np.float32)
    betas = np.asarray(betas, dtype=np.float32)
    if not candidates.any():
        raise ValueError("no candidate classes to predict")
    seen_c = seen & candidates
    unseen_c = ~seen & candidates
    neg_inf = np.float32(-np.inf)
    s_seen = np.where(seen_c, scores, neg_inf)
    s_unseen = np.where(unseen_c, scores, neg_inf)
    arg_s, arg_u = s_seen.argmax(1), s_unseen.argmax(1)
    best_s = np.take_along_axis(s_seen, arg_s[:, None], 1)[:, 0]
    best_u = np.take_along_axis(s_unseen, arg_u[:, None], 1)[:, 0]
    lowered = best_s[None, :] - betas[:, None]  # [G, N], float32 like the published add
    tie = np.minimum(arg_s, arg_u)[None, :]
    pred = np.where(lowered > best_u[None, :], arg_s[None, :], arg_u[None, :])
    pred = np.where(lowered == best_u[None, :], tie, pred)
    if not unseen_c.any():
        pred[:] = arg_s[None, :]
    if not seen_c.any():
        pred[:] = arg_u[None, :]
    return pred.astype(np.int64)


@dataclass(frozen=True)
class GZSLScores:
    """S, U, HM (fractions, not x100) for each beta of a grid, and per-class accuracies."""

    betas: np.ndarray  # [G]
    seen: np.ndarray  # [G]
    unseen: np.ndarray  # [G]
    hm: np.ndarray  # [G]
    classes: np.ndarray  # [K] evaluated classes (seen and unseen, sorted)
    per_class: np.ndarray  # [G, K] accuracy per class (NaN: no samples)


def gzsl_scores_over_grid(
    scores: np.ndarray,
    labels: np.ndarray,
    seen_classes: np.ndarray,
    unseen_classes: np.ndarray,
    betas: np.ndarray,
) -> GZSLScores:
    """S / U / HM for every beta on one evaluation set (seen and unseen samples together).

    Predictions range over the split's seen and unseen classes; per-class accuracy is taken
    over the classes with samples; S and U average it over seen / unseen classes.

    Args:
        scores: ``[N, C]`` scores over all C classes of the benchmark.
        labels: ``[N]`` true class indices.
        seen_classes / unseen_classes: sorted class indices of the split.
        betas: ``[G]`` grid.
    """
    seen = np.zeros(scores.shape[1], bool)
    seen[seen_classes] = True
    candidates = seen.copy()
    candidates[unseen_classes] = True
    pred = calibrated_predictions(scores, seen, candidates, betas)
    classes = np.flatnonzero(candidates)
    acc = np.atleast_2d(per_class_accuracy(labels, pred, classes))
    is_seen = seen[classes]
    if np.isnan(acc[:, is_seen]).all() or np.isnan(acc[:, ~is_seen]).all():
        raise ValueError("evaluation needs samples of at least one seen and one unseen class")
    s = np.nanmean(acc[:, is_seen], axis=1)
    u = np.nanmean(acc[:, ~is_seen], axis=1)
    return GZSLScores(np.asarray(betas), s, u, np.asarray(harmonic_mean(s, u)).reshape(-1), classes, acc)


class CalibratedStacking:
    """Estimator that picks beta by validation HM (first index on ties) and applies it.

    Example:
        >>> cs = CalibratedStacking(beta_grid(0, 3, 16)).fit(scores, y, seen, unseen)
        >>> cs.beta_, cs.hm_
    """

    def __init__(self, betas: np.ndarray) -> None:
        self.betas = np.asarray(betas, dtype=np.float32)

    def fit(
        self, scores: np.ndarray, labels: np.ndarray, seen_classes: np.ndarray, unseen_classes: np.ndarray
    ) -> CalibratedStacking:
        """Pick the beta of the grid with the best validation HM (first on ties).

        Args:
            scores: ``[N, C]`` validation scores over all benchmark classes.
            labels: ``[N]`` true class indices.
            seen_classes / unseen_classes: sorted class indices of the split.

        Returns:
            ``self``, with ``grid_`` (S/U/HM per beta), ``beta_`` and ``hm_`` set.
        """
        grid = gzsl_scores_over_grid(scores, labels, seen_classes, unseen_classes, self.betas)
        best = int(np.argmax(grid.hm))  # first index on ties
        self.grid_ = grid
        self.beta_ = float(self.betas[best])
        self.hm_ = float(grid.hm[best])
        return self
