"""Retrieval metrics against hand-computed values (reference/adverbs.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowshot.errors import ConfigError
from lowshot.metrics.retrieval import (
    adverb_map,
    antonym_accuracy,
    antonym_predictions,
    gt_action_scores,
    max_over_actions,
    retrieval_metrics,
)
from lowshot.protocols.adverbs import best_validation_epoch, select_metrics, selection_label

pytestmark = pytest.mark.usefixtures("one_thread")

# 5 rows, 2 adverbs. Column 0 (positives rows 0, 2, 4) ranks P N P P N -> AP (1 + 2/3 + 3/4) / 3;
# column 1 (positives rows 1, 3) ranks N P N P N -> AP (1/2 + 2/4) / 2 = 0.5.
Y_TRUE = np.array([0, 1, 0, 1, 0])
Y_SCORE = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.4], [0.5, 0.9]])
AP0 = (1 + 2 / 3 + 3 / 4) / 3
AP1 = 0.5


def test_map_macro_and_weighted_by_hand() -> None:
    assert adverb_map(Y_TRUE, Y_SCORE, "macro") == pytest.approx((AP0 + AP1) / 2)
    assert adverb_map(Y_TRUE, Y_SCORE, "weighted") == pytest.approx((3 * AP0 + 2 * AP1) / 5)


def test_map_accepts_tensors_and_only_present() -> None:
    assert adverb_map(torch.tensor(Y_TRUE), torch.tensor(Y_SCORE)) == pytest.approx((AP0 + AP1) / 2)
    # a third, absent adverb scores 0 in sklearn's macro average unless dropped
    score3 = np.c_[Y_SCORE, np.zeros(5)]
    with pytest.warns(UserWarning):
        assert adverb_map(Y_TRUE, score3, "macro") == pytest.approx((AP0 + AP1) / 3)
    assert adverb_map(Y_TRUE, score3, "macro", only_present=True) == pytest.approx((AP0 + AP1) / 2)


ANT = np.array([1, 0, 3, 2])
A_TRUE = np.array([0, 1, 0, 3, 2])
A_SCORE = np.array(
    [
        [0.5, 0.4, 0.9, 0.9],  # 0 vs 1: correct although adverbs 2/3 score higher
        [0.3, 0.3, 0.0, 0.0],  # tie: first index (0) wins -> wrong
        [0.3, 0.3, 0.0, 0.0],  # tie: first index (0) wins -> correct
        [1.0, 1.0, 0.2, 0.1],  # 3 vs 2: wrong
        [0.0, 0.0, 0.6, 0.5],  # 2 vs 3: correct
    ]
)


def test_antonym_accuracy_tie_rule_by_hand() -> None:
    assert antonym_predictions(A_TRUE, A_SCORE, ANT).tolist() == [0, 0, 0, 2, 2]
    assert antonym_accuracy(A_TRUE, A_SCORE, ANT, "micro") == pytest.approx(3 / 5)
    # per adverb: 0 -> 2/2, 1 -> 0/1, 2 -> 1/1, 3 -> 0/1
    assert antonym_accuracy(A_TRUE, A_SCORE, ANT, "macro") == pytest.approx(0.5)


def test_pair_score_reductions() -> None:
    pair = np.arange(12, dtype=float).reshape(2, 6)  # 2 rows, 2 adverbs x 3 actions
    assert gt_action_scores(pair, np.array([1, 2]), 2, 3).tolist() == [[1, 4], [8, 11]]
    assert max_over_actions(pair, 2, 3).tolist() == [[2, 5], [8, 11]]


def test_retrieval_metrics_keys() -> None:
    m = retrieval_metrics(A_TRUE, A_SCORE, ANT)
    assert set(m) == {"map_w", "map_m", "acc_a", "acc_a_cls"}
    assert set(retrieval_metrics(A_TRUE, A_SCORE, None)) == {"map_w", "map_m"}


HIST = [
    {"epoch": 0, "test": {"map_m": 0.1, "acc_a": 0.9}, "val": {"map_m": 0.3, "acc_a": 0.5}},
    {"epoch": 10, "test": {"map_m": 0.5, "acc_a": 0.6}, "val": {"map_m": 0.2, "acc_a": 0.7}},
    {"epoch": 15, "train": {"loss": 1.0}},
    {"epoch": 20, "test": {"map_m": 0.4, "acc_a": 0.7}, "val": {"map_m": 0.3, "acc_a": 0.5}},
]


def test_selection_protocols() -> None:
    best = select_metrics(HIST, "best_per_metric", ["map_m", "acc_a"])
    assert best["metrics"] == {"map_m": 0.5, "acc_a": 0.9}
    assert best["epochs"] == {"map_m": 10, "acc_a": 0}  # different epochs, as published
    assert select_metrics(HIST, "last", ["map_m"])["metrics"] == {"map_m": 0.4}
    assert select_metrics(HIST, "fixed_epoch", ["acc_a"], epoch=10)["metrics"] == {"acc_a": 0.6}
    with pytest.raises(ConfigError, match="never evaluated"):
        select_metrics(HIST, "fixed_epoch", ["map_m"], epoch=15)
    # validation: the first maximum of one metric, or of the mean of the reported metrics
    assert best_validation_epoch(HIST, ["map_m", "acc_a"], "map_m") == 0
    assert best_validation_epoch(HIST, ["map_m", "acc_a"], None) == 10
    with pytest.raises(ConfigError, match="lack"):
        best_validation_epoch(HIST, ["map_m"], "map_w")


def test_selection_labels_name_the_rule() -> None:
    assert selection_label("best_per_metric").startswith("test-selected (published)")
    assert "test" not in selection_label("validation", ["map_w", "map_m"], None, None, 0.1)
    assert "10%" in selection_label("validation", ["map_w"], None, None, 0.1)
    assert "epoch 7" in selection_label("fixed_epoch", epoch=7)
