"""Metrics and calibrated stacking against hand-computed values and brute force."""

import numpy as np
import pytest

from lowshot.metrics.classification import harmonic_mean, mean_class_accuracy, per_class_accuracy
from lowshot.protocols.calibration import (
    CalibratedStacking,
    beta_grid,
    calibrated_predictions,
    gzsl_scores_over_grid,
)


def test_per_class_accuracy_by_hand():
    y_true = np.array([0, 0, 1, 1, 1, 3])
    y_pred = np.array([0, 1, 1, 1, 0, 3])
    acc = per_class_accuracy(y_true, y_pred, np.array([0, 1, 2, 3]))
    np.testing.assert_allclose(acc[[0, 1, 3]], [0.5, 2 / 3, 1.0])
    assert np.isnan(acc[2])  # no samples: not counted
    assert mean_class_accuracy(y_true, y_pred, np.array([0, 1, 2, 3])) == pytest.approx((0.5 + 2 / 3 + 1) / 3)


def test_per_class_accuracy_grid_matches_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 50)
    preds = rng.integers(0, 5, (4, 50))
    classes = np.arange(5)
    grid = per_class_accuracy(y, preds, classes)
    for g in range(4):
        np.testing.assert_allclose(grid[g], per_class_accuracy(y, preds[g], classes))


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.25) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert harmonic_mean(0.0, 0.0) == 0.0


def brute_force_distance_form(dist, seen, cand, betas):
    """The published form: add beta to seen distances, mask others with 1e14, argmin."""
    out = []
    for b in betas:
        d = dist.astype(np.float32).copy()
        d[:, seen] = d[:, seen] + np.float32(b)
        d[:, ~cand] = np.float32(1e14)
        out.append(d.argmin(1))
    return np.stack(out)


def test_grid_predictions_equal_published_distance_form():
    rng = np.random.default_rng(1)
    dist = rng.random((200, 12)).astype(np.float32) * 3
    dist[:20, 3] = dist[:20, 7] - 0.4  # near ties across the seen/unseen boundary
    seen = np.zeros(12, bool)
    seen[[0, 1, 2, 3, 4]] = True
    cand = seen.copy()
    cand[[7, 8, 9]] = True
    betas = beta_grid(0, 5, 76)
    ours = calibrated_predictions(-dist, seen, cand, betas)
    np.testing.assert_array_equal(ours, brute_force_distance_form(dist, seen, cand, betas))


def test_probability_form_subtracts_beta_from_seen():
    probs = np.array([[0.5, 0.3, 0.2]], np.float32)
    seen = np.array([True, False, False])
    pred = calibrated_predictions(probs, seen, np.ones(3, bool), np.array([0.0, 0.1, 0.3], np.float32))
    assert pred[:, 0].tolist() == [0, 0, 1]


def test_ties_resolve_to_lower_index():
    scores = np.array([[1.0, 0.5, 0.5]], np.float32)  # seen class 2, unseen class 1
    seen = np.array([False, False, True])
    pred = calibrated_predictions(scores, seen, np.array([False, True, True]), np.array([0.0], np.float32))
    assert pred[0, 0] == 1
    seen = np.array([False, True, False])
    pred = calibrated_predictions(scores, seen, np.array([False, True, True]), np.array([0.0], np.float32))
    assert pred[0, 0] == 1


def test_beta_selection_picks_first_best():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(6), 10)
    scores = rng.normal(size=(60, 6)).astype(np.float32)
    scores[np.arange(60), labels] += 1.0
    scores[:, :3] += 0.8  # bias towards seen classes 0..2
    betas = beta_grid(0, 3, 16)
    cs = CalibratedStacking(betas).fit(scores, labels, np.arange(3), np.arange(3, 6))
    grid = gzsl_scores_over_grid(scores, labels, np.arange(3), np.arange(3, 6), betas)
    assert cs.hm_ == pytest.approx(grid.hm.max())
    assert cs.beta_ == betas[int(np.flatnonzero(grid.hm == grid.hm.max())[0])]
    assert cs.beta_ > 0  # the bias is corrected
    assert grid.hm[0] < cs.hm_
