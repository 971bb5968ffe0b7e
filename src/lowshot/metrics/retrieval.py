"""Video-adverb retrieval metrics (pure functions, sklearn-style argument order).

Definitions follow ReGaDa's evaluator (derived from Action Modifiers), see
``reference/adverbs.md`` §5. All functions take ``y_true`` (ground-truth adverb index
per test row, ``[N]``) first and an adverb-score matrix ``y_score`` (``[N, n_adverbs]``)
second. Adverb scores of a row are the scores of every adverb *paired with the row's
ground-truth action* (:func:`gt_action_scores`) or, for the no-action-GT variant, the
maximum over actions (:func:`max_over_actions`).

* mAP M / mAP W: adverb -> video retrieval, ``sklearn.metrics.average_precision_score``
  on the one-hot ``y_true`` with ``average="macro"`` / ``"weighted"`` (column APs weighted
  by the number of test positives).
* Acc-A: video -> adverb, binary choice between the GT adverb and its antonym; argmax
  with the first-index tie rule over the vocabulary order (§4). Instance average; the
  class average (``average="macro"``) is the unseen-composition metric "Acc-A (cls)".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.metrics import average_precision_score

_MASKED = -1e10  # the published value for adverbs outside {GT, antonym}


def _as_np(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()  # type: ignore[union-attr]
    return np.asarray(x)


def gt_action_scores(
    pair_scores: np.ndarray, action_idx: np.ndarray, n_adverbs: int, n_actions: int
) -> np.ndarray:
    """Adverb scores with the ground-truth action.

    Args:
        pair_scores: ``[N, n_adverbs * n_actions]`` scores, adverb-major pair order.
        action_idx: ``[N]`` GT action index of each row.
        n_adverbs: number of adverbs.
        n_actions: number of actions.

    Returns:
        ``[N, n_adverbs]`` with ``out[i, a] = pair_scores[i, a * n_actions + action_idx[i]]``.
    """
    s = _as_np(pair_scores).reshape(-1, n_adverbs, n_actions)
    idx = _as_np(action_idx).astype(np.int64)
    return s[np.arange(s.shape[0]), :, idx]


def max_over_actions(pair_scores: np.ndarray, n_adverbs: int, n_actions: int) -> np.ndarray:
    """No-action-GT adverb scores ``out[i, a] = max_v pair_scores[i, (a, v)]`` ``[N, n_adverbs]``."""
    return _as_np(pair_scores).reshape(-1, n_adverbs, n_actions).max(axis=2)


def adverb_map(
    y_true: np.ndarray,
    y_score: np.ndarray,
    average: Literal["macro", "weighted"] = "macro",
    only_present: bool = False,
) -> float:
    """Adverb -> video mean average precision (mAP M for macro, mAP W for weighted).

    Args:
        y_true: ``[N]`` GT adverb index per row.
        y_score: ``[N, n_adverbs]`` adverb scores (higher = more likely).
        average: ``"macro"`` (mAP M) or ``"weighted"`` (mAP W, weights = test positives).
        only_present: drop adverb columns without positives (sklearn scores them 0 with a
            warning). Off for the published test sets, where every adverb occurs; on for
            small validation subsets.
    """
    y_true = _as_np(y_true).astype(np.int64)
    y_score = _as_np(y_score).astype(np.float64)
    onehot = np.zeros_like(y_score, dtype=np.int64)
    onehot[np.arange(len(y_true)), y_true] = 1
    if only_present:
        keep = onehot.sum(axis=0) > 0
        onehot, y_score = onehot[:, keep], y_score[:, keep]
    return float(average_precision_score(onehot, y_score, average=average))


def antonym_predictions(
    y_true: np.ndarray, y_score: np.ndarray, antonyms: np.ndarray
) -> np.ndarray:
    """Predicted adverb of each row when only the GT adverb and its antonym compete.

    Other adverbs get -1e10, then ``argmax`` (first index wins a tie, i.e. the adverb earlier
    in the frequency-ordered vocabulary).

    Args:
        y_true: ``[N]`` GT adverb index.
        y_score: ``[N, n_adverbs]`` adverb scores.
        antonyms: ``[n_adverbs]`` antonym index of each adverb.

    Returns:
        ``[N]`` predicted adverb index.
    """
    y_true = _as_np(y_true).astype(np.int64)
    y_score = _as_np(y_score).astype(np.float64)
    antonyms = _as_np(antonyms).astype(np.int64)
    rows = np.arange(len(y_true))
    masked = np.full_like(y_score, _MASKED)
    masked[rows, y_true] = y_score[rows, y_true]
    masked[rows, antonyms[y_true]] = y_score[rows, antonyms[y_true]]
    return masked.argmax(axis=1)


def antonym_accuracy(
    y_true: np.ndarray,
    y_score: np.ndarray,
    antonyms: np.ndarray,
    average: Literal["micro", "macro"] = "micro",
) -> float:
    """Acc-A: binary GT-vs-antonym accuracy.

    Args:
        y_true: ``[N]`` GT adverb index.
        y_score: ``[N, n_adverbs]`` adverb scores.
        antonyms: ``[n_adverbs]`` antonym index of each adverb.
        average: ``"micro"`` (instance mean, Acc-A) or ``"macro"`` (mean over the adverbs
            present in ``y_true`` of their per-adverb accuracy, Acc-A (cls)).
    """
    y_true = _as_np(y_true).astype(np.int64)
    correct = antonym_predictions(y_true, y_score, antonyms) == y_true
    if average == "micro":
        return float(correct.mean())
    classes = np.unique(y_true)
    return float(np.mean([correct[y_true == c].mean() for c in classes]))


def retrieval_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    antonyms: np.ndarray | None,
    only_present: bool = False,
) -> dict[str, float]:
    """All four metrics from one adverb-score matrix.

    Args:
        y_true: ``[N]`` GT adverb index.
        y_score: ``[N, n_adverbs]`` adverb scores.
        antonyms: ``[n_adverbs]`` antonym indices, or None (then Acc-A is not computed).
        only_present: see :func:`adverb_map`.

    Returns:
        ``{"map_w", "map_m"}`` plus ``{"acc_a", "acc_a_cls"}`` when antonyms are given.
    """
    out = {
        "map_w": adverb_map(y_true, y_score, "weighted", only_present),
        "map_m": adverb_map(y_true, y_score, "macro", only_present),
    }
    if antonyms is not None:
        out["acc_a"] = antonym_accuracy(y_true, y_score, antonyms, "micro")
        out["acc_a_cls"] = antonym_accuracy(y_true, y_score, antonyms, "macro")
    return out
