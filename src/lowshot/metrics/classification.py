"""Classification metrics of the audio-visual (G)ZSL / GFSL benchmarks (reference §3.1).

* per-class accuracy: correct / total for every class that has samples;
* S / U: mean per-class accuracy over the seen / unseen classes;
* HM = 2 S U / (S + U + eps), eps = float32 machine epsilon as in the published code;
* ZSL: mean per-class accuracy on unseen samples with predictions restricted to unseen
  classes and no calibration.

All functions accept numpy arrays; batched variants take a leading grid axis so that a
whole calibrated-stacking grid is scored in one call.
"""

from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float32).eps)


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Accuracy of each class in ``classes``; NaN for classes without samples.

    Args:
        y_true: ``[N]`` int labels.
        y_pred: ``[N]`` or ``[G, N]`` int predictions (G = grid of settings).
        classes: ``[K]`` sorted, unique class indices to report.

    Returns:
        ``[K]`` or ``[G, K]`` float64 accuracies.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = np.asarray(classes)
    if np.any(classes[1:] <= classes[:-1]):
        raise ValueError("classes must be sorted and unique")
    pos = np.clip(np.searchsorted(classes, y_true), 0, len(classes) - 1)
    member = classes[pos] == y_true
    totals = np.bincount(pos[member], minlength=len(classes)).astype(np.float64)
    correct = (y_pred == y_true) & member
    grid = correct.reshape(-1, len(y_true))  # [G, N]
    flat = (np.arange(grid.shape[0])[:, None] * len(classes) + pos[None, :])[grid]
    hits = np.bincount(flat, minlength=grid.shape[0] * len(classes)).reshape(grid.shape[0], len(classes))
    hits = hits[0] if correct.ndim == 1 else hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / np.maximum(totals, 1), np.nan)


def mean_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> np.ndarray | float:
    """Mean of :func:`per_class_accuracy` over the classes that have samples."""
    acc = per_class_accuracy(y_true, y_pred, classes)
    present = ~np.isnan(acc)
    if not present.any(axis=-1).all():
        raise ValueError("no samples of any of the given classes")
    out = np.nanmean(acc, axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def harmonic_mean(seen: np.ndarray | float, unseen: np.ndarray | float) -> np.ndarray | float:
    """HM = 2 S U / (S + U + eps) (eps keeps HM(0, 0) = 0)."""
    s = np.asarray(seen, dtype=np.float64)
    u = np.asarray(unseen, dtype=np.float64)
    out = 2.0 * s * u / (s + u + EPS)
    return float(out) if out.ndim == 0 else out
